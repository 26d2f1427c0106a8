//! Delivery: compile due digests and send every due alert from the outbox, marking each sent
//! only after the server accepted it.

use std::collections::HashSet;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use super::{with_store, AlertSettings, Deps};
use crate::links::{self, Action, LinkSigner};
use crate::notify::mailer::{Outgoing, SendError, SEND_CONCURRENCY};
use crate::notify::render;
use crate::store::Store;
use crate::subscribers::NewSubscriber;

/// The longest wait between two attempts at a message that fails temporarily.
const RETRY_CAP_SECS: u64 = 3600;

/// `n` random bytes from the operating system, as lower-case hex.
pub fn random_hex(n: usize) -> anyhow::Result<String> {
    let mut b = vec![0u8; n];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn random_key() -> anyhow::Result<[u8; 32]> {
    let mut fresh = [0u8; 32];
    getrandom::getrandom(&mut fresh)
        .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(fresh)
}

/// The key that signs links, as it is in the database now (made from the OS's randomness the
/// first time). Read again at every pass, flush and sign-up, so a rotation is honoured.
pub fn link_signer(store: &mut Store) -> anyhow::Result<LinkSigner> {
    let key = store
        .secret("links", &random_key()?)
        .context("reading the key that signs links")?;
    Ok(LinkSigner::new(&key))
}

/// A new key for links (`pqwatch keys rotate`): every link signed before stops working, in
/// every process, at its next request, flush or pass.
pub fn rotate_link_key(store: &mut Store) -> anyhow::Result<()> {
    store
        .replace_secret("links", &random_key()?)
        .context("storing a new key for links")
}

/// What a sign-up did.
#[derive(Clone, Copy, Debug)]
pub struct SignUp {
    pub id: i64,
    /// A confirmation email was queued (for the holder of the pass lock to send).
    pub confirmation_queued: bool,
}

/// Adds or updates a subscriber (`pqwatch subscribe`, the web front's sign-up) and, unless they
/// are confirmed and active, queues a confirmation email with a fresh token that works for
/// `[mail] confirm_link_days`, under a Message-ID of its own. It only queues: sending is the
/// pass lock holder's. Blocking (SQLite).
pub fn sign_up(
    store: &mut Store,
    alerts: &AlertSettings,
    s: &NewSubscriber,
    now: DateTime<Utc>,
) -> anyhow::Result<SignUp> {
    alerts.links.set(link_signer(store)?);
    let token = random_hex(16)?;
    let confirm = random_hex(16)?;
    let days = alerts.confirm_link_days;
    let expires = now + chrono::Duration::days(days.into());
    let (id, queued) = store.add_subscriber(
        s,
        &token,
        (&confirm, expires),
        |id, confirm_token| {
            let url = alerts.confirm_url(confirm_token);
            let r = render::confirmation(
                if s.name.is_empty() { "there" } else { &s.name },
                &s.keywords,
                url.as_deref(),
                &alerts.mailto,
                days,
            );
            let id = format!("pqwatch.c{id}.{}@{}", &confirm_token[..12], alerts.id_host);
            (id, r)
        },
        now,
    )?;
    Ok(SignUp {
        id,
        confirmation_queued: queued,
    })
}

/// How long a send in flight may still take after a shutdown is asked for. Well inside the 10 s
/// a stop may take, and long enough for any relay that is answering at all.
const SEND_GRACE: std::time::Duration = std::time::Duration::from_secs(4);

/// What a flush of the outbox did.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutboxReport {
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
}

/// Queues today's digest for each daily subscriber with answers waiting, once their hour has
/// come; weekly subscribers get theirs on Mondays (UK) at that hour.
pub async fn compile_digests(deps: &Deps, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let uk = now.with_timezone(&chrono_tz::Europe::London);
    if chrono::Timelike::hour(&uk) < deps.alerts.digest_hour {
        return Ok(0);
    }
    let day = uk.date_naive().to_string();
    let monday = chrono::Datelike::weekday(&uk) == chrono::Weekday::Mon;
    let week = chrono::Datelike::iso_week(&uk);
    let week = format!("{}-W{:02}", week.year(), week.week());
    let items = with_store(deps, |s| s.pending_digest_items()).await?;
    let mut by_sub: std::collections::BTreeMap<i64, (Vec<i64>, Vec<render::AnswerAlert>)> =
        Default::default();
    for (sub, item, json) in items {
        let e = by_sub.entry(sub).or_default();
        e.0.push(item);
        e.1.push(serde_json::from_str(&json).context("reading a digest item")?);
    }
    let subscribers = with_store(deps, |s| s.subscribers()).await?;
    let mut queued = 0;
    for (sub, (items, answers)) in by_sub {
        let Some(s) = subscribers.iter().find(|s| s.id == sub) else {
            continue;
        };
        let weekly = s.frequency == crate::subscribers::Frequency::Weekly;
        if weekly && !monday {
            continue;
        }
        let url = deps.alerts.unsubscribe_url(&s.token);
        let manage = deps.alerts.manage_url(&s.token);
        let r = render::digest(
            &day,
            &answers,
            &render::Unsubscribe {
                url: url.as_deref(),
                mailto: &deps.alerts.mailto,
                manage: manage.as_deref(),
            },
        );
        let r = if weekly {
            render::Rendered {
                subject: r.subject.replacen("Daily digest", "Weekly digest", 1),
                text: r.text.replacen("daily digest", "weekly digest", 1),
                html: r.html.replacen("daily digest", "weekly digest", 1),
            }
        } else {
            r
        };
        let id = if weekly {
            format!("pqwatch.w{sub}.{week}@{}", deps.alerts.id_host)
        } else {
            format!("pqwatch.d{sub}.{day}@{}", deps.alerts.id_host)
        };
        with_store(deps, move |st| st.queue_digest(sub, &items, &id, &r, now)).await?;
        queued += 1;
    }
    Ok(queued)
}

/// Sends every due alert once: sent marks are written only after the server accepted the
/// message; a 4xx or a dropped connection is retried later with backoff; a 5xx for one address
/// fails that alert and the rest go on.
pub async fn flush_outbox(deps: &Deps, now: DateTime<Utc>) -> anyhow::Result<OutboxReport> {
    // One flush at a time in a process (a pass's and the web front's sign-up email): two
    // would pick up the same due alert and send it twice.
    static FLUSHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = FLUSHING.lock().await;
    let mut report = OutboxReport::default();
    let mut tried = HashSet::new();
    // The key as it is now: links in messages queued before a rotation are signed again.
    let signer = with_store(deps, link_signer).await?;
    deps.alerts.links.set(signer.clone());
    let base = deps.alerts.public_base_url.clone();
    // Set when the relay itself fails (unreachable, silent, login refused): the sends in
    // flight finish, no new ones start, and the rest wait for the next pass.
    let mut relay_down = false;
    loop {
        let due = with_store(deps, move |s| s.due_alerts(now, 100)).await?;
        let fresh: Vec<_> = due.into_iter().filter(|a| tried.insert(a.id)).collect();
        if fresh.is_empty() {
            break;
        }
        // Several messages in flight: lettre writes a message's end marker as a second small
        // write without TCP_NODELAY, so each message waits ~40 ms for the server's delayed ACK;
        // one connection alone manages only ~20 messages a second.
        let mut in_flight = JoinSet::new();
        let mut queue = fresh.into_iter();
        loop {
            while in_flight.len() < SEND_CONCURRENCY && !relay_down && !deps.stop.is_cancelled() {
                let Some(a) = queue.next() else { break };
                let ours = |action: Action, token: &str| match action {
                    Action::Unsubscribe | Action::Manage => token == a.token,
                    Action::Confirm => a.kind == "confirmation",
                    Action::Form => false,
                };
                let out = Outgoing {
                    message_id: a.message_id.clone(),
                    to: a.email.clone(),
                    to_name: a.name.clone(),
                    subject: a.subject.clone(),
                    text: links::resign(&a.text, &base, &signer, ours),
                    html: links::resign(&a.html, &base, &signer, ours),
                    list_unsubscribe: deps.alerts.list_unsubscribe(&a.token),
                };
                let mailer = deps.mailer.clone();
                let stop = deps.stop.clone();
                // On shutdown a send in flight gets SEND_GRACE to finish (a healthy relay
                // takes milliseconds, and a finished send is never repeated); a session still
                // hanging then (connect, TLS, AUTH or DATA) is dropped rather than waited out.
                in_flight.spawn(async move {
                    let r = tokio::select! {
                        r = mailer.send(&out) => Some(r),
                        _ = async {
                            stop.cancelled().await;
                            tokio::time::sleep(SEND_GRACE).await;
                        } => None,
                    };
                    (a, r)
                });
            }
            let Some(done) = in_flight.join_next().await else {
                break;
            };
            let (a, result) = done.context("a send task failed")?;
            let id = a.id;
            match result {
                // Stopped mid-session: the relay may or may not have the message. It stays due,
                // no attempt counted, and is sent after restart under the same Message-ID.
                None => {
                    tracing::info!(to = %a.email, message_id = %a.message_id, "send stopped by shutdown; it stays due");
                }
                Some(Ok(())) => {
                    with_store(deps, move |s| s.mark_sent(id, Utc::now())).await?;
                    report.sent += 1;
                }
                // A 5xx for this address: the alert fails, and the address's run of bounces
                // grows; at [mail] suspend_after_bounces its subscriber is suspended.
                Some(Err(SendError::Permanent(why))) => {
                    let (msg, limit) = (
                        format!("permanent: {why}"),
                        deps.alerts.suspend_after_bounces,
                    );
                    let b = with_store(deps, move |s| s.mark_bounce(id, &msg, limit, Utc::now()))
                        .await?;
                    tracing::warn!(to = %a.email, message_id = %a.message_id, bounces = b.bounces, "alert refused for good: {why}");
                    if b.suspended {
                        tracing::error!(to = %a.email, "subscriber suspended after {} permanent failures in a row; `pqwatch subscribers reactivate {}` lifts it", b.bounces, a.email);
                    }
                    report.failed += 1;
                }
                Some(Err(e)) => {
                    if let SendError::Relay(why) = &e {
                        if !relay_down {
                            tracing::error!("the SMTP relay cannot be used, so sending stops until the next pass: {why}");
                        }
                        relay_down = true;
                    }
                    let attempts = a.attempts as u32 + 1;
                    // A temporary failure (a 4xx, a dropped connection, a relay that is down) is
                    // retried with capped back-off until [mail] give_up_after_hours after the
                    // alert was queued; a relay that cannot be used is no fault of the message,
                    // so only the message's own failures count towards max_attempts.
                    let queued_at = DateTime::parse_from_rfc3339(&a.created_at)
                        .map_or(now, |t| t.with_timezone(&Utc));
                    let give_up = Utc::now() - queued_at >= deps.alerts.give_up_after
                        || (matches!(e, SendError::Transient(_))
                            && attempts >= deps.alerts.max_attempts);
                    let wait = deps
                        .alerts
                        .retry_base_secs
                        .saturating_mul(1 << attempts.min(12))
                        .min(RETRY_CAP_SECS);
                    let next = Utc::now() + chrono::Duration::seconds(wait as i64);
                    tracing::warn!(to = %a.email, message_id = %a.message_id, give_up, "alert not sent: {e}");
                    let msg = e.to_string();
                    with_store(deps, move |s| s.mark_retry(id, &msg, next, give_up)).await?;
                    if give_up {
                        report.failed += 1;
                    } else {
                        report.retried += 1;
                    }
                }
            }
        }
        if relay_down || deps.stop.is_cancelled() {
            break;
        }
    }
    // QUIT on idle connections, unless a shutdown comes first: then they are simply dropped.
    tokio::select! {
        _ = deps.mailer.close_idle() => {}
        _ = deps.stop.cancelled() => {}
    }
    Ok(report)
}
