//! Sending built messages: SMTP to a relay (STARTTLS or implicit TLS, AUTH, reused
//! connections, a deadline on every step; see `smtp`), .eml files in a folder when no SMTP server
//! is configured, or memory in unit tests. It knows nothing of what a message says or of the
//! database.

mod smtp;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::Message;

use smtp::{Relay, Security};

use crate::config::{ConfigError, MailSettings};

/// Messages sent at once, each on its own SMTP connection: the outbox keeps this many in flight
/// and the relay keeps at most this many connections.
pub const SEND_CONCURRENCY: usize = 8;

/// A message ready to send: every text already rendered and escaped.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Without angle brackets: `pqwatch.7.42@host`.
    pub message_id: String,
    pub to: String,
    pub to_name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The List-Unsubscribe value, e.g. `<https://…>, <mailto:…>`.
    pub list_unsubscribe: String,
}

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A 4xx, a refused or dropped connection, a timeout: try again later.
    #[error("temporary: {0}")]
    Transient(String),
    /// A 5xx for this address, or a message that cannot be built: do not try again.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The relay cannot be used at all (unreachable, silent, no TLS, login refused): nothing
    /// was sent; try this message later and send no more in this batch.
    #[error("SMTP relay: {0}")]
    Relay(String),
}

pub enum Mailer {
    Smtp {
        relay: Relay,
        from: Mailbox,
    },
    Files {
        dir: PathBuf,
        from: Mailbox,
    },
    Memory {
        sent: Arc<Mutex<Vec<Vec<u8>>>>,
        from: Mailbox,
    },
}

#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

fn invalid(key: &str, message: String, fix: &str) -> ConfigError {
    ConfigError::Setting {
        key: key.to_owned(),
        origin: "the config".into(),
        message,
        fix: fix.to_owned(),
    }
}

impl Mailer {
    pub fn from_settings(mail: &MailSettings) -> Result<Mailer, ConfigError> {
        let from: Mailbox = mail.from.parse().map_err(|e| {
            invalid(
                "mail.from",
                format!("{:?}: {e}", mail.from),
                "use a mailbox such as \"pqwatch <alerts@union.org.uk>\"",
            )
        })?;
        if mail.smtp_url.is_empty() {
            return Ok(Mailer::Files {
                dir: mail.outbox_dir.clone(),
                from,
            });
        }
        let url = reqwest::Url::parse(&mail.smtp_url).map_err(|e| {
            invalid(
                "mail.smtp_url",
                format!("{:?}: {e}", mail.smtp_url),
                "use smtp://host:587 or smtps://host:465",
            )
        })?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let extra_root = if mail.tls_ca_file.is_empty() {
            None
        } else {
            let pem = std::fs::read(&mail.tls_ca_file).map_err(|e| {
                invalid(
                    "mail.tls_ca_file",
                    format!("cannot read {}: {e}", mail.tls_ca_file),
                    "point it at a PEM certificate, or set it to \"\"",
                )
            })?;
            Some(Certificate::from_pem(&pem).map_err(|e| {
                invalid(
                    "mail.tls_ca_file",
                    format!("{}: {e}", mail.tls_ca_file),
                    "give a PEM certificate",
                )
            })?)
        };
        let tls = |h: &str| {
            let mut b = TlsParameters::builder(h.to_owned());
            if let Some(root) = extra_root.clone() {
                b = b.add_root_certificate(root);
            }
            b.build().map_err(|e| {
                invalid(
                    "mail.smtp_url",
                    format!("TLS for {h}: {e}"),
                    "check the host name",
                )
            })
        };
        let (security, port) = match url.scheme() {
            "smtps" => (Security::Implicit(tls(&host)?), 465),
            "smtp" => (Security::StartTls(tls(&host)?), 587),
            _ => (Security::Plain, 25),
        };
        let credentials = mail
            .password()?
            .map(|password| Credentials::new(mail.smtp_username.clone(), password));
        Ok(Mailer::Smtp {
            relay: Relay::new(
                host,
                url.port().unwrap_or(port),
                security,
                credentials,
                Duration::from_secs(mail.smtp_timeout_secs),
                SEND_CONCURRENCY,
            ),
            from,
        })
    }

    /// A mailer that keeps the formatted messages, for unit tests.
    pub fn memory(from: &str) -> (Mailer, Arc<Mutex<Vec<Vec<u8>>>>) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let from = from.parse().expect("a test's From is valid");
        (
            Mailer::Memory {
                sent: sent.clone(),
                from,
            },
            sent,
        )
    }

    fn from(&self) -> &Mailbox {
        match self {
            Mailer::Smtp { from, .. }
            | Mailer::Files { from, .. }
            | Mailer::Memory { from, .. } => from,
        }
    }

    /// Builds the multipart message with its stable Message-ID and unsubscribe headers.
    pub fn build(&self, m: &Outgoing) -> Result<Message, SendError> {
        let to: Mailbox = format!(
            "{} <{}>",
            super::render::header_text(&m.to_name).replace(['"', '<', '>', ','], ""),
            m.to
        )
        .parse()
        .or_else(|_| m.to.parse())
        .map_err(|e| SendError::Permanent(format!("address {:?}: {e}", m.to)))?;
        Message::builder()
            .from(self.from().clone())
            .to(to)
            .subject(super::render::header_text(&m.subject))
            .message_id(Some(format!("<{}>", m.message_id)))
            .header(ListUnsubscribe(m.list_unsubscribe.clone()))
            .header(ListUnsubscribePost)
            .multipart(MultiPart::alternative_plain_html(
                m.text.clone(),
                m.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(format!("building the message: {e}")))
    }

    /// Closes the connections kept open for the batch that just ended.
    pub async fn close_idle(&self) {
        if let Mailer::Smtp { relay, .. } = self {
            relay.close_idle().await;
        }
    }

    /// Sends one message. Returns only when the server (or the folder) has it.
    pub async fn send(&self, m: &Outgoing) -> Result<(), SendError> {
        self.send_reporting(m).await.map(drop)
    }

    /// Sends one message and says where it went: the relay's reply, or the .eml file written.
    pub async fn send_reporting(&self, m: &Outgoing) -> Result<String, SendError> {
        let message = self.build(m)?;
        match self {
            Mailer::Smtp { relay, .. } => {
                relay.send(message.envelope(), &message.formatted()).await
            }
            Mailer::Files { dir, .. } => {
                // Named by Message-ID and written by rename: a resend replaces, never doubles.
                let name: String = m
                    .message_id
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let bytes = message.formatted();
                let dir = dir.clone();
                let path = dir.join(format!("{name}.eml"));
                let written = path.display().to_string();
                // 0600 files in a 0700 folder: they hold addresses and unsubscribe tokens.
                tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    use std::io::Write as _;
                    crate::private_files::create_dir(&dir)?;
                    let tmp = dir.join(format!(".{name}.tmp"));
                    let mut f = crate::private_files::file_options()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(&tmp)?;
                    f.write_all(&bytes)?;
                    f.sync_all()?;
                    std::fs::rename(&tmp, &path)?;
                    Ok(())
                })
                .await
                .map_err(|e| SendError::Transient(e.to_string()))?
                .map_err(|e| SendError::Transient(format!("writing to {}: {e:#}", m.to)))?;
                Ok(format!("written to {written}"))
            }
            Mailer::Memory { sent, .. } => {
                sent.lock()
                    .map_err(|_| SendError::Transient("lock".into()))?
                    .push(message.formatted());
                Ok("kept in memory".to_owned())
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing() -> Outgoing {
        Outgoing {
            message_id: "pqwatch.1.2@localhost".into(),
            to: "ops@union.org.uk".into(),
            to_name: "Ops\r\nBcc: victim@example.org".into(),
            subject: "1 new figure: Prisons\r\nBcc: victim@example.org".into(),
            text: "plain".into(),
            html: "<p>html</p>".into(),
            list_unsubscribe: "<mailto:u@x.org?subject=unsubscribe>".into(),
        }
    }

    #[tokio::test]
    async fn a_message_carries_its_message_id_unsubscribe_headers_and_both_parts() {
        let (m, sent) = Mailer::memory("pqwatch <pq@localhost>");
        m.send(&outgoing()).await.unwrap();
        let raw = String::from_utf8(sent.lock().unwrap()[0].clone()).unwrap();
        assert!(raw.contains("Message-ID: <pqwatch.1.2@localhost>"), "{raw}");
        assert!(raw.contains("List-Unsubscribe: <mailto:u@x.org?subject=unsubscribe>"));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
    }

    #[tokio::test]
    async fn header_injection_through_the_subject_or_name_is_neutralised() {
        let (m, sent) = Mailer::memory("pq@localhost");
        m.send(&outgoing()).await.unwrap();
        let raw = String::from_utf8(sent.lock().unwrap()[0].clone()).unwrap();
        let headers = raw.split("\r\n\r\n").next().unwrap();
        assert!(!headers.lines().any(|l| l.starts_with("Bcc:")), "{headers}");
    }

    #[tokio::test]
    async fn the_file_outbox_writes_one_eml_per_message_id_even_when_resent() {
        let dir = tempfile::tempdir().unwrap();
        let m = Mailer::Files {
            dir: dir.path().join("outbox"),
            from: "pq@localhost".parse().unwrap(),
        };
        m.send(&outgoing()).await.unwrap();
        m.send(&outgoing()).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1);
    }
}
