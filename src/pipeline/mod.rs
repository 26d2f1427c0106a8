//! One pass: list → detail → keyword match → store → notify, for every kind and window, and the pass report.
//!
//! This is the only module that composes stages, and [`run_once`] is the only function that does.
//! Its rooms: [`ingest`] lists and fetches records and stores the matching ones, isolating
//! failures per record (a record that could not be fetched or read is *held*: retried next pass,
//! and the cursor stays before it; after `[watch] quarantine_after` passes, or at once when it
//! is too big to take, it is *quarantined* and the cursor moves on; a record the API refuses
//! with a 4xx is *skipped*); [`file`] files a new answer version's figures under statistics and
//! queues alerts, inside the version's transaction; [`deliver`] compiles digests and sends the
//! outbox. It does not know when it runs (the daemon decides) or how progress is shown (the
//! caller passes a [`Progress`]).

mod deliver;
mod file;
mod ingest;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::WatchSettings;
use crate::fetch::Client;
use crate::links::{Action, LinkSigner, SharedSigner};
use crate::model::DocKind;
use crate::notify::mailer::Mailer;
use crate::progress::Progress;
use crate::store::Store;
use crate::watch::Matcher;

pub use deliver::{
    compile_digests, flush_outbox, link_signer, random_hex, rotate_link_key, sign_up, OutboxReport,
    SignUp,
};
pub use file::{record_figures, FigureCounts};
use ingest::ingest_window;

/// Days per backfill chunk: each chunk is committed and recorded before the next starts, so an
/// interrupted backfill resumes at the chunk it was in.
const BACKFILL_CHUNK_DAYS: u64 = 7;

/// What a pass needs. Built once by the caller and shared by every pass.
pub struct Deps {
    pub client: Arc<Client>,
    pub store: Arc<Mutex<Store>>,
    pub matcher: Matcher,
    pub watch: WatchSettings,
    pub statements: bool,
    pub concurrency: usize,
    /// Cancelled on shutdown: requests, retries, back-off sleeps and SMTP sessions in flight
    /// end at once, no new ones start, and the pass returns with what it has committed. The
    /// client holds a clone of the same token.
    pub stop: CancellationToken,
    pub mailer: Arc<Mailer>,
    pub alerts: AlertSettings,
}

/// What queuing and sending alerts needs to know.
#[derive(Clone, Debug)]
pub struct AlertSettings {
    /// The domain of Message-IDs (the From address's).
    pub id_host: String,
    /// Base of one-click unsubscribe links; empty for mailto only.
    pub public_base_url: String,
    /// Signs the unsubscribe and confirm links: read again from the database at every pass and
    /// every flush, so a key rotated by another process is honoured.
    pub links: SharedSigner,
    pub mailto: String,
    pub digest_hour: u32,
    pub max_attempts: u32,
    pub retry_base_secs: u64,
    pub give_up_after: chrono::Duration,
    pub suspend_after_bounces: u32,
    pub confirm_link_days: u32,
    /// Queue alerts during a backfill too (`poll --once --from --to --alert`).
    pub on_backfill: bool,
}

impl AlertSettings {
    pub fn from_mail(mail: &crate::config::MailSettings, links: LinkSigner) -> AlertSettings {
        let from_addr = mail
            .from
            .parse::<lettre::message::Mailbox>()
            .map(|m| m.email.to_string())
            .unwrap_or_else(|_| "pqwatch@localhost".into());
        let id_host = from_addr
            .rsplit_once('@')
            .map_or("localhost".to_owned(), |(_, h)| h.to_owned());
        AlertSettings {
            id_host,
            public_base_url: mail.public_base_url.trim_end_matches('/').to_owned(),
            links: SharedSigner::new(links),
            mailto: if mail.unsubscribe_mailto.is_empty() {
                from_addr
            } else {
                mail.unsubscribe_mailto.clone()
            },
            digest_hour: mail.digest_hour,
            max_attempts: mail.max_attempts,
            retry_base_secs: mail.retry_base_secs,
            give_up_after: chrono::Duration::hours(mail.give_up_after_hours as i64),
            suspend_after_bounces: mail.suspend_after_bounces,
            confirm_link_days: mail.confirm_link_days,
            on_backfill: false,
        }
    }

    fn link(&self, action: Action, token: &str) -> Option<String> {
        (!self.public_base_url.is_empty()).then(|| {
            format!(
                "{}/{}?t={}",
                self.public_base_url,
                action.name(),
                self.links.get().sign(action, token)
            )
        })
    }

    /// The signed one-click unsubscribe link, if there is a public base URL.
    pub fn unsubscribe_url(&self, token: &str) -> Option<String> {
        self.link(Action::Unsubscribe, token)
    }

    /// The signed link to the manage page (change keywords, frequency, or leave), if there is a
    /// public base URL.
    pub fn manage_url(&self, token: &str) -> Option<String> {
        self.link(Action::Manage, token)
    }

    /// The signed confirmation link, if there is a public base URL.
    pub fn confirm_url(&self, token: &str) -> Option<String> {
        self.link(Action::Confirm, token)
    }

    /// The List-Unsubscribe header: the one-click link (if any) and a mailto.
    pub fn list_unsubscribe(&self, token: &str) -> String {
        let mailto = format!("<mailto:{}?subject=unsubscribe%20{token}>", self.mailto);
        match self.unsubscribe_url(token) {
            Some(u) => format!("<{u}>, {mailto}"),
            None => mailto,
        }
    }
}

/// Which days a pass covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Mode {
    /// From each kind's cursor (less the overlap) to today, then move the cursor.
    Steady,
    /// A fixed range, in committed chunks, resumable; the steady cursor is left alone.
    Backfill { from: NaiveDate, to: NaiveDate },
}

/// Counts from one pass, logged as one line and stored for `pqwatch status`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PassReport {
    /// Records the list endpoint returned (after de-duplication within the pass).
    pub seen: u64,
    /// Records whose list fingerprint was unchanged, so no detail was fetched.
    pub unchanged_listing: u64,
    /// Details fetched and read.
    pub fetched: u64,
    /// Items that matched the watch keywords (or were already stored).
    pub matched: u64,
    /// Items stored for the first time.
    pub stored_new: u64,
    /// New answer versions of items already stored (a holding answer replaced, a correction).
    pub stored_versions: u64,
    /// Records the API refused with a 4xx: logged and skipped.
    pub skipped: u64,
    /// Records that could not be fetched or read: retried next pass, cursor kept before them.
    pub held: u64,
    /// Records put in quarantine this pass: unreadable for `[watch] quarantine_after` passes,
    /// or refused for their size. The cursor moves past them.
    pub quarantined: u64,
    /// Records refused this pass for their size (`[api] max_body_bytes`, `[watch]
    /// max_answer_bytes`); each is also counted in `quarantined`.
    pub refused: u64,
    /// Listed records skipped because they are quarantined and the API has not changed them.
    pub still_quarantined: u64,
    /// List pages that failed after every retry.
    pub pages_failed: u64,
    /// Figures published for the first time, revised, and repeated unchanged.
    pub figures_new: u64,
    pub figures_revised: u64,
    pub figures_confirmed: u64,
    /// Statistics seen for the first time.
    pub statistics_new: u64,
    /// Alerts queued this pass (instant alerts and digest items), sent, retried later, failed.
    pub alerts_queued: u64,
    pub alerts_sent: u64,
    pub alerts_retried: u64,
    pub alerts_failed: u64,
    /// HTTP requests made, retries included: all, to the list endpoint, and for single items.
    pub requests: u64,
    pub list_requests: u64,
    pub detail_requests: u64,
    /// New records not read in full because nothing in the list record could match (another
    /// body's answer with no keyword in its heading, question or shortened answer).
    pub skipped_by_prefilter: u64,
    /// Answers stored or updated this pass (first versions and new versions).
    pub answers_kept: u64,
    /// Requests per second over the pass.
    pub requests_per_sec: f64,
    pub duration_ms: u64,
    /// Whether the pass was stopped early by a shutdown.
    pub interrupted: bool,
    /// The first few problems, for the log and `status`.
    pub errors: Vec<String>,
}

impl PassReport {
    /// Everything listed was stored or deliberately skipped.
    pub fn complete(&self) -> bool {
        self.held == 0 && self.pages_failed == 0 && !self.interrupted
    }

    fn error(&mut self, e: String) {
        tracing::warn!("{e}");
        if self.errors.len() < 20 {
            self.errors.push(e);
        }
    }
}

/// Runs one pass. Store failures abort it (nothing after them would be safe); everything else is
/// counted in the report.
pub async fn run_once(
    deps: &Deps,
    mode: Mode,
    now: DateTime<Utc>,
    progress: &Progress,
) -> anyhow::Result<PassReport> {
    let started = Instant::now();
    let requests_before = deps.client.requests_made();
    let lists_before = deps.client.list_requests_made();
    let details_before = deps.client.detail_requests_made();
    let today = uk_today(now);
    let mut report = PassReport::default();
    let mut kinds = vec![DocKind::Question];
    if deps.statements {
        kinds.push(DocKind::Statement);
    }
    if let Mode::Backfill { from, to } = mode {
        let days = (to - from).num_days().max(0) as u64 + 1;
        progress.add_total(days * kinds.len() as u64);
    }
    let mut done = HashSet::new();
    // The key as it is now in the database: another process may have rotated it.
    deps.alerts.links.set(with_store(deps, link_signer).await?);
    for kind in kinds {
        match mode {
            Mode::Steady => {
                let cursor = with_store(deps, move |s| s.cursor(kind)).await?;
                let from = match cursor {
                    Some(c) => c - Days::new(deps.watch.overlap_days.into()),
                    None => today - Days::new(deps.watch.first_poll_days.into()),
                };
                let out = ingest_window(
                    deps,
                    kind,
                    from,
                    today,
                    (now, false),
                    &mut report,
                    &mut done,
                )
                .await?;
                let new_cursor = if out.incomplete {
                    None
                } else {
                    match out.earliest_held {
                        Some(day) => day.pred_opt(),
                        None => Some(today),
                    }
                };
                if let Some(day) = new_cursor.filter(|d| Some(*d) != cursor) {
                    with_store(deps, move |s| s.set_cursor(kind, day, now)).await?;
                }
            }
            Mode::Backfill { from, to } => {
                // Newest first, so the last years' statistics are there first. A chunk already
                // covered by an earlier backfill (of any range) is skipped; a chunk is recorded
                // as covered only when everything listed in it was stored.
                let covered = with_store(deps, move |s| s.backfill_coverage(kind)).await?;
                let is_covered =
                    |a: NaiveDate, b: NaiveDate| covered.iter().any(|&(f, l)| f <= a && b <= l);
                let mut end = to;
                loop {
                    if deps.stop.is_cancelled() {
                        report.interrupted = true;
                        break;
                    }
                    let start = end
                        .checked_sub_days(Days::new(BACKFILL_CHUNK_DAYS - 1))
                        .map_or(from, |d| d.max(from));
                    let days = (end - start).num_days() as u64 + 1;
                    // This chunk's own counts, not the pass's running totals.
                    let chunk_requests = deps.client.requests_made();
                    let chunk_lists = deps.client.list_requests_made();
                    let chunk_details = deps.client.detail_requests_made();
                    let chunk_kept = report.stored_new + report.stored_versions;
                    let covered_before = is_covered(start, end);
                    if !covered_before {
                        let out = ingest_window(
                            deps,
                            kind,
                            start,
                            end,
                            (now, true),
                            &mut report,
                            &mut done,
                        )
                        .await?;
                        if !out.incomplete && out.earliest_held.is_none() {
                            with_store(deps, move |s| {
                                s.add_backfill_coverage(kind, start, end, now)
                            })
                            .await?;
                        }
                    }
                    progress.inc(days);
                    let requests = deps.client.requests_made() - requests_before;
                    progress.log_line(&if covered_before {
                        format!(
                            "{}s {start}..{end}: covered by an earlier backfill, skipped",
                            kind.as_str()
                        )
                    } else {
                        format!(
                            "{}s {start}..{end}: answers kept {}, requests {} (list {}, detail {}); whole pass so far: requests {requests}, {:.1} requests/s",
                            kind.as_str(),
                            report.stored_new + report.stored_versions - chunk_kept,
                            deps.client.requests_made() - chunk_requests,
                            deps.client.list_requests_made() - chunk_lists,
                            deps.client.detail_requests_made() - chunk_details,
                            requests as f64 / started.elapsed().as_secs_f64().max(1e-3),
                        )
                    });
                    match start.pred_opt() {
                        Some(prev) if start > from => end = prev,
                        _ => break,
                    }
                }
            }
        }
    }
    // Notify: digests whose hour has come, then every due alert (this pass's and any left over
    // from before a crash or an outage).
    compile_digests(deps, now).await?;
    let sent = flush_outbox(deps, now).await?;
    report.alerts_sent = sent.sent;
    report.alerts_retried = sent.retried;
    report.alerts_failed = sent.failed;
    report.interrupted = deps.stop.is_cancelled();
    report.requests = deps.client.requests_made() - requests_before;
    report.list_requests = deps.client.list_requests_made() - lists_before;
    report.detail_requests = deps.client.detail_requests_made() - details_before;
    report.answers_kept = report.stored_new + report.stored_versions;
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.requests_per_sec = report.requests as f64 / started.elapsed().as_secs_f64().max(1e-3);
    Ok(report)
}

/// The UK calendar day at `now`: the API's dates are UK dates.
pub fn uk_today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&chrono_tz::Europe::London).date_naive()
}

/// Runs a store call off the async executor (SQLite calls block).
pub async fn with_store<T, F>(deps: &Deps, f: F) -> anyhow::Result<T>
where
    F: FnOnce(&mut Store) -> anyhow::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let store = deps.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = store
            .lock()
            .map_err(|_| anyhow::anyhow!("the store lock was poisoned by an earlier panic"))?;
        f(&mut s)
    })
    .await
    .context("a store task failed")?
}
