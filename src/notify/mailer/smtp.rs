//! SMTP sessions with the relay: connect, STARTTLS or implicit TLS, AUTH, reuse of open
//! connections, and a deadline on every step. lettre's own timeout covers only the TCP connect
//! (lettre issue #1027), so a relay that accepts a connection and then says nothing would
//! otherwise hold a pass, and every alert behind it, for ever.

use std::sync::Mutex;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use super::{error_chain, SendError};

/// How the connection is secured.
pub enum Security {
    /// `smtp+plain://`: no TLS (a relay on loopback).
    Plain,
    /// `smtp://`: STARTTLS, required; a relay that does not offer it is refused.
    StartTls(TlsParameters),
    /// `smtps://`: TLS from the first byte.
    Implicit(TlsParameters),
}

pub struct Relay {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    /// The longest any one step (connect, TLS, AUTH, one message) may take.
    deadline: Duration,
    /// Connections kept open between messages, at most this many.
    max_idle: usize,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    hello: ClientId,
}

impl Relay {
    pub fn new(
        host: String,
        port: u16,
        security: Security,
        credentials: Option<Credentials>,
        deadline: Duration,
        max_idle: usize,
    ) -> Relay {
        Relay {
            host,
            port,
            security,
            credentials,
            deadline,
            max_idle,
            idle: Mutex::new(Vec::new()),
            hello: ClientId::default(),
        }
    }

    /// Sends one message; returns only once the relay has accepted it, with the relay's reply
    /// ("host:port answered 250 …"), or with why not.
    pub async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<String, SendError> {
        let mut conn = self.checkout().await?;
        match tokio::time::timeout(self.deadline, transaction(&mut conn, envelope, bytes)).await {
            Ok(Ok(reply)) => {
                self.checkin(conn);
                Ok(format!(
                    "{}:{} answered {} {}",
                    self.host,
                    self.port,
                    reply.code(),
                    reply.message().collect::<Vec<_>>().join(" ")
                ))
            }
            Ok(Err(e)) => {
                conn.abort().await;
                Err(e)
            }
            // Dropped without QUIT: the relay may or may not have the message, so it is sent
            // again later under the same Message-ID.
            Err(_) => Err(SendError::Transient(format!(
                "no reply from {}:{} within {} s while sending",
                self.host,
                self.port,
                self.deadline.as_secs()
            ))),
        }
    }

    /// Says QUIT on every idle connection: called after each batch, so that no connection
    /// sits open between passes.
    pub async fn close_idle(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for mut c in idle {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.quit()).await;
        }
    }

    fn checkin(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    /// An idle connection that still answers NOOP, or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, SendError> {
        loop {
            let parked = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let Some(mut c) = parked else { break };
            if let Ok(true) = tokio::time::timeout(self.deadline, c.test_connected()).await {
                return Ok(c);
            }
        }
        self.connect().await
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let mut conn = match &self.security {
            Security::Implicit(p) => {
                self.step(
                    "connecting to",
                    AsyncSmtpConnection::connect_tokio1(
                        (self.host.as_str(), self.port),
                        Some(self.deadline),
                        &self.hello,
                        Some(p.clone()),
                        None,
                    ),
                )
                .await?
            }
            // Our own socket, so that it can have TCP_NODELAY: lettre writes a message's
            // end-of-data marker as a second small write, which otherwise waits ~40 ms for the
            // relay's delayed ACK. STARTTLS upgrades this same socket.
            _ => {
                let tcp = self
                    .step("connecting to", async {
                        let tcp =
                            tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
                        tcp.set_nodelay(true)?;
                        Ok::<_, std::io::Error>(tcp)
                    })
                    .await?;
                self.step(
                    "greeting from",
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello),
                )
                .await?
            }
        };
        if let Security::StartTls(p) = &self.security {
            self.step("STARTTLS with", conn.starttls(p.clone(), &self.hello))
                .await?;
        }
        if let Some(credentials) = &self.credentials {
            self.step("logging in to", conn.auth(DEFAULT_MECHANISMS, credentials))
                .await?;
        }
        Ok(conn)
    }

    /// One step of setting up a connection, under the deadline. Any failure here is the
    /// relay's, not the message's.
    async fn step<T, E: std::error::Error>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, SendError> {
        let (host, port) = (&self.host, self.port);
        match tokio::time::timeout(self.deadline, f).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(SendError::Relay(format!(
                "{what} {host}:{port}: {}",
                error_chain(&e)
            ))),
            Err(_) => Err(SendError::Relay(format!(
                "{what} {host}:{port}: no reply within {} s",
                self.deadline.as_secs()
            ))),
        }
    }
}

/// One message: MAIL, RCPT, DATA and the content, each reply classified by its step. A 5xx to
/// MAIL FROM refuses our sender, whoever the message is for: the relay's fault
/// ([`SendError::Relay`]), never a bounce counted against a subscriber. A 5xx to RCPT or to
/// the content is this address's ([`SendError::Permanent`]); any 4xx is temporary.
async fn transaction(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    bytes: &[u8],
) -> Result<lettre::transport::smtp::response::Response, SendError> {
    use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
    use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
    let mut options = vec![];
    let non_ascii = |a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii();
    if envelope.from().is_some_and(non_ascii) || envelope.to().iter().any(non_ascii) {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(SendError::Permanent(
                "the address is not ASCII and the relay does not offer SMTPUTF8".into(),
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !bytes.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(SendError::Permanent(
                "the message is not ASCII and the relay does not offer 8BITMIME".into(),
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let recipient = |step: &str, e: lettre::transport::smtp::Error| {
        let why = format!("{step}: {}", error_chain(&e));
        if e.is_permanent() {
            SendError::Permanent(why)
        } else {
            SendError::Transient(why)
        }
    };
    conn.command(Mail::new(envelope.from().cloned(), options))
        .await
        .map_err(|e| {
            let why = format!("MAIL FROM: {}", error_chain(&e));
            if e.is_permanent() {
                SendError::Relay(format!("the relay refuses our sender: {why}"))
            } else {
                SendError::Transient(why)
            }
        })?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), vec![]))
            .await
            .map_err(|e| recipient("RCPT TO", e))?;
    }
    conn.command(Data).await.map_err(|e| recipient("DATA", e))?;
    conn.message(bytes)
        .await
        .map_err(|e| recipient("end of data", e))
}
