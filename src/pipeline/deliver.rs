//! Delivery: compile due digests and send every due alert from the outbox, marking each sent
//! only after the server accepted it.

use std::collections::HashSet;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use super::{with_store, Deps};
use crate::notify::mailer::{Outgoing, SendError, SEND_CONCURRENCY};
use crate::notify::render;

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
                let out = Outgoing {
                    message_id: a.message_id.clone(),
                    to: a.email.clone(),
                    to_name: a.name.clone(),
                    subject: a.subject.clone(),
                    text: a.text.clone(),
                    html: a.html.clone(),
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
                Some(Err(e)) => {
                    let permanent = matches!(e, SendError::Permanent(_));
                    if let SendError::Relay(why) = &e {
                        if !relay_down {
                            tracing::error!("the SMTP relay cannot be used, so sending stops until the next pass: {why}");
                        }
                        relay_down = true;
                    }
                    let attempts = a.attempts as u32 + 1;
                    // A relay that cannot be used is no fault of the message: it waits, with
                    // backoff, however long the relay takes to come back, and is never failed.
                    let give_up = permanent
                        || (!matches!(e, SendError::Relay(_))
                            && attempts >= deps.alerts.max_attempts);
                    let wait = deps
                        .alerts
                        .retry_base_secs
                        .saturating_mul(1 << attempts.min(12))
                        .min(6 * 3600);
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
