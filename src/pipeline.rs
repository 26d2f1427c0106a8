//! One pass: list → detail → keyword match → store, for every kind and window, and the pass report.
//!
//! This is the only module that composes stages. It isolates failures per record: a record that
//! could not be fetched or read is *held* (retried next pass, and the cursor stays before it), a
//! record the API refuses with a 4xx is *skipped*, and neither aborts the pass. It does not know
//! when it runs (the daemon decides) or how progress is shown (the caller passes a [`Progress`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::config::WatchSettings;
use crate::diff::{self, ChangeKind};
use crate::extract;
use crate::fetch::{Client, DateField, FetchError, ListQuery};
use crate::links::{Action, LinkSigner};
use crate::model::{DocKind, Document};
use crate::notify::mailer::{Mailer, Outgoing, SendError};
use crate::notify::render;
use crate::progress::Progress;
use crate::series;
use crate::store::{Fnv64, Recorder, SaveOutcome, Store, VersionRef};
use crate::subscribers::Frequency;
use crate::watch::{html_text, Matcher};

/// Days per backfill chunk: each chunk is committed and recorded before the next starts, so an
/// interrupted backfill resumes at the chunk it was in.
const BACKFILL_CHUNK_DAYS: u64 = 7;

/// Messages sent at once (each on its own pooled SMTP connection).
pub const SEND_CONCURRENCY: usize = 8;

/// What a pass needs. Built once by the caller and shared by every pass.
pub struct Deps {
    pub client: Arc<Client>,
    pub store: Arc<Mutex<Store>>,
    pub matcher: Matcher,
    pub watch: WatchSettings,
    pub statements: bool,
    pub concurrency: usize,
    /// Set to stop the pass at the next safe point (between records).
    pub stop: Arc<AtomicBool>,
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
    /// Signs the unsubscribe and confirm links.
    pub links: LinkSigner,
    pub mailto: String,
    pub digest_hour: u32,
    pub max_attempts: u32,
    pub retry_base_secs: u64,
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
            links,
            mailto: if mail.unsubscribe_mailto.is_empty() {
                from_addr
            } else {
                mail.unsubscribe_mailto.clone()
            },
            digest_hour: mail.digest_hour,
            max_attempts: mail.max_attempts,
            retry_base_secs: mail.retry_base_secs,
            on_backfill: false,
        }
    }

    fn link(&self, action: Action, token: &str) -> Option<String> {
        (!self.public_base_url.is_empty()).then(|| {
            format!(
                "{}/{}?t={}",
                self.public_base_url,
                action.name(),
                self.links.sign(action, token)
            )
        })
    }

    /// The signed one-click unsubscribe link, if there is a public base URL.
    pub fn unsubscribe_url(&self, token: &str) -> Option<String> {
        self.link(Action::Unsubscribe, token)
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
    /// HTTP requests made, retries included.
    pub requests: u64,
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

/// What one window's ingest left behind.
#[derive(Default)]
struct WindowOutcome {
    /// The earliest day of a held record, if any.
    earliest_held: Option<NaiveDate>,
    /// A page failed or the pass stopped: we cannot say which days are complete.
    incomplete: bool,
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
    let today = uk_today(now);
    let mut report = PassReport::default();
    let mut kinds = vec![DocKind::Question];
    if deps.statements {
        kinds.push(DocKind::Statement);
    }
    let mut done = HashSet::new();
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
                    progress,
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
                let done_through =
                    with_store(deps, move |s| s.backfill_done_through(kind, from, to)).await?;
                let mut start = done_through.and_then(|d| d.succ_opt()).unwrap_or(from);
                if start > to {
                    tracing::info!(kind = kind.as_str(), %from, %to, "backfill range already complete");
                }
                let mut contiguous = true;
                while start <= to && !deps.stop.load(Ordering::Relaxed) {
                    let end = (start + Days::new(BACKFILL_CHUNK_DAYS - 1)).min(to);
                    let out = ingest_window(
                        deps,
                        kind,
                        start,
                        end,
                        (now, true),
                        &mut report,
                        &mut done,
                        progress,
                    )
                    .await?;
                    contiguous &= !out.incomplete && out.earliest_held.is_none();
                    if contiguous {
                        with_store(deps, move |s| {
                            s.set_backfill_done_through(kind, from, to, end, now)
                        })
                        .await?;
                    }
                    progress.log_line(&format!(
                        "{} {start}..{end}: {} seen, {} stored, {} held",
                        kind.as_str(),
                        report.seen,
                        report.stored_new + report.stored_versions,
                        report.held
                    ));
                    start = end + Days::new(1);
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
    report.interrupted = deps.stop.load(Ordering::Relaxed);
    report.requests = deps.client.requests_made() - requests_before;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// The UK calendar day at `now`: the API's dates are UK dates.
pub fn uk_today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&chrono_tz::Europe::London).date_naive()
}

#[allow(clippy::too_many_arguments)]
async fn ingest_window(
    deps: &Deps,
    kind: DocKind,
    from: NaiveDate,
    to: NaiveDate,
    (now, backfill): (DateTime<Utc>, bool),
    report: &mut PassReport,
    done: &mut HashSet<(DocKind, i64)>,
    progress: &Progress,
) -> anyhow::Result<WindowOutcome> {
    let fields: &[DateField] = match kind {
        DocKind::Question => &[DateField::Answered, DateField::Corrected],
        DocKind::Statement => &[DateField::Answered],
    };
    let house = match deps.watch.houses.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    };
    let mut out = WindowOutcome::default();
    for &field in fields {
        let query = ListQuery {
            kind,
            field,
            from,
            to,
            answering_bodies: deps.watch.answering_bodies.clone(),
            house: house.clone(),
        };
        let mut skip = 0u64;
        loop {
            if deps.stop.load(Ordering::Relaxed) {
                out.incomplete = true;
                return Ok(out);
            }
            let page = match deps.client.list_page(&query, skip).await {
                Ok(p) => p,
                Err(e) => {
                    report.pages_failed += 1;
                    report.error(format!("list page skipped: {e}"));
                    out.incomplete = true;
                    break;
                }
            };
            if skip == 0 {
                progress.add_total(page.total_results);
            }
            let n = page.records.len() as u64;
            ingest_page(
                deps,
                &query,
                page.records,
                (now, backfill),
                report,
                done,
                &mut out,
                progress,
            )
            .await?;
            skip += n;
            if n == 0 || skip >= page.total_results {
                break;
            }
        }
    }
    Ok(out)
}

/// A list record that needs its detail fetched.
struct Candidate {
    api_id: i64,
    fingerprint: String,
    day: NaiveDate,
}

#[allow(clippy::too_many_arguments)]
async fn ingest_page(
    deps: &Deps,
    query: &ListQuery,
    records: Vec<serde_json::Value>,
    (now, mode_is_backfill): (DateTime<Utc>, bool),
    report: &mut PassReport,
    done: &mut HashSet<(DocKind, i64)>,
    out: &mut WindowOutcome,
    progress: &Progress,
) -> anyhow::Result<()> {
    let kind = query.kind;
    let mut listed = Vec::new();
    for record in records {
        progress.inc(1);
        let doc = match Document::from_record(kind, &record) {
            Ok(d) => d,
            Err(e) => {
                report.held += 1;
                hold(out, record_day(&record, query));
                report.error(format!(
                    "{} record held: {e}: {}",
                    kind.as_str(),
                    snippet(&record)
                ));
                continue;
            }
        };
        if !done.insert((kind, doc.api_id)) {
            continue;
        }
        report.seen += 1;
        if !wanted(&deps.watch, &doc) {
            continue;
        }
        let day = match query.field {
            DateField::Answered => doc.date_answered,
            DateField::Corrected => doc.date_corrected,
        }
        .unwrap_or(query.from);
        listed.push(Candidate {
            api_id: doc.api_id,
            fingerprint: fingerprint(&record),
            day,
        });
    }
    let listed_count = listed.len();
    let ids: Vec<i64> = listed.iter().map(|c| c.api_id).collect();
    let seen = with_store(deps, move |s| s.seen_fingerprints(kind, &ids)).await?;
    let candidates: Vec<Candidate> = listed
        .into_iter()
        .filter(|c| seen.get(&c.api_id) != Some(&c.fingerprint))
        .collect();
    report.unchanged_listing += (listed_count - candidates.len()) as u64;

    // Details, at most `concurrency` in flight; on shutdown, no new ones are started.
    let mut results: Vec<Option<Result<serde_json::Value, FetchError>>> =
        candidates.iter().map(|_| None).collect();
    let mut set = JoinSet::new();
    let mut next = 0;
    loop {
        while next < candidates.len()
            && set.len() < deps.concurrency.max(1)
            && !deps.stop.load(Ordering::Relaxed)
        {
            let client = deps.client.clone();
            let id = candidates[next].api_id;
            let i = next;
            set.spawn(async move { (i, client.detail(kind, id).await) });
            next += 1;
        }
        match set.join_next().await {
            Some(joined) => {
                let (i, r) = joined.context("a detail request task failed")?;
                results[i] = Some(r);
            }
            None => break,
        }
    }

    let mut items = Vec::new();
    for (c, result) in candidates.iter().zip(results) {
        let detail = match result {
            None => {
                out.incomplete = true;
                continue;
            }
            Some(Ok(v)) => v,
            Some(Err(e @ FetchError::Permanent { .. })) => {
                report.skipped += 1;
                report.error(format!("{} {} skipped: {e}", kind.as_str(), c.api_id));
                continue;
            }
            Some(Err(e)) => {
                report.held += 1;
                hold(out, Some(c.day));
                report.error(format!("{} {} held: {e}", kind.as_str(), c.api_id));
                continue;
            }
        };
        let doc = match Document::from_record(kind, &detail) {
            Ok(d) => d,
            Err(e) => {
                report.held += 1;
                hold(out, Some(c.day));
                report.error(format!(
                    "{} {} held: detail {e}: {}",
                    kind.as_str(),
                    c.api_id,
                    snippet(&detail)
                ));
                continue;
            }
        };
        report.fetched += 1;
        let body_text = html_text(&doc.body_html);
        let keywords = deps.matcher.matches(&[
            doc.heading.as_deref().unwrap_or(""),
            doc.question_text.as_deref().unwrap_or(""),
            &body_text,
        ]);
        items.push((doc, c.fingerprint.clone(), keywords));
    }
    if items.is_empty() {
        return Ok(());
    }
    let alerts = match mode_is_backfill {
        true if !deps.alerts.on_backfill => None,
        _ => Some(deps.alerts.clone()),
    };
    let outcomes = with_store(deps, move |s| {
        s.save_documents(&items, now, |rec, doc, v| {
            record_figures(rec, doc, v, now, alerts.as_ref())
        })
    })
    .await?;
    for (outcome, figures) in outcomes {
        if let Some(f) = figures {
            report.figures_new += f.new;
            report.figures_revised += f.revised;
            report.figures_confirmed += f.confirmed;
            report.statistics_new += f.statistics_new;
            report.alerts_queued += f.alerts_queued;
        }
        match outcome {
            SaveOutcome::NotMatched => {}
            SaveOutcome::New => {
                report.matched += 1;
                report.stored_new += 1;
            }
            SaveOutcome::NewVersion(_) => {
                report.matched += 1;
                report.stored_versions += 1;
            }
            SaveOutcome::Unchanged => report.matched += 1,
        }
    }
    Ok(())
}

/// What filing one answer version's figures did.
#[derive(Clone, Copy, Debug, Default)]
pub struct FigureCounts {
    pub new: u64,
    pub revised: u64,
    pub confirmed: u64,
    pub statistics_new: u64,
    pub alerts_queued: u64,
}

/// Extracts a new answer version's tables, files each under a statistic (a known one when the
/// match is good enough, else a new one), diffs its figures against that statistic's history,
/// and records observations and changes. Runs inside the transaction that stores the version.
pub fn record_figures(
    rec: &Recorder<'_, '_>,
    doc: &Document,
    version: VersionRef,
    now: DateTime<Utc>,
    alerts: Option<&AlertSettings>,
) -> anyhow::Result<FigureCounts> {
    let now_utc = now;
    let now = now.to_rfc3339();
    let mut new_lines = Vec::new();
    let mut revised_lines = Vec::new();
    let mut changed: HashMap<usize, Vec<[usize; 2]>> = HashMap::new();
    let mut counts = FigureCounts::default();
    let extraction = extract::extract(&doc.body_html);
    let ctx = series::Context {
        answering_body: doc
            .answering_body_name
            .clone()
            .or_else(|| doc.answering_body_id.map(|id| id.to_string()))
            .unwrap_or_default(),
        heading: doc.heading.clone().unwrap_or_default(),
    };
    // Two tables of one answer are never one statistic.
    let mut used = HashSet::new();
    for table in &extraction.tables {
        for draft in series::drafts(table, &ctx) {
            if draft.figures.is_empty() {
                continue;
            }
            let unit = series::unit_key(draft.unit);
            let known: Vec<_> = rec
                .candidates(&draft.answering_body, unit, &series::lookup_words(&draft))?
                .into_iter()
                .filter(|k| !used.contains(&k.id))
                .collect();
            let reason = series::best_match(&draft, &known);
            let statistic = match reason.matched {
                Some(id) => {
                    rec.add_dims(id, &draft.dims)?;
                    id
                }
                None => {
                    counts.statistics_new += 1;
                    rec.create_statistic(&draft, unit, &now)?
                }
            };
            used.insert(statistic);
            let mut prior: HashMap<(String, String), diff::Prior> = HashMap::new();
            for (cell, period, p) in rec.history(statistic)? {
                let key = (cell, period);
                if diff::supersedes(prior.get(&key), p.kind) {
                    prior.insert(key, p);
                }
            }
            let changes = diff::diff(&prior, &draft.figures);
            let source = rec.insert_source(
                statistic,
                version,
                draft.table_index,
                &draft.title,
                &reason,
                &now,
            )?;
            let ids = draft
                .figures
                .iter()
                .map(|f| rec.insert_observation(statistic, source, f))
                .collect::<anyhow::Result<Vec<i64>>>()?;
            for c in changes {
                match c.kind {
                    ChangeKind::New => counts.new += 1,
                    ChangeKind::Revised => counts.revised += 1,
                    ChangeKind::Confirmed => counts.confirmed += 1,
                }
                let f = &draft.figures[c.figure];
                if alerts.is_some()
                    && c.kind != ChangeKind::Confirmed
                    && f.kind == crate::extract::Kind::Number
                {
                    let (previous_source, previous_url) = match &c.prior {
                        Some(p) => {
                            let (s, u) = rec.observation_source(p.observation_id)?;
                            (Some(s), u)
                        }
                        None => (None, None),
                    };
                    let line = render::FigureLine {
                        statistic: draft.title.clone(),
                        label: f
                            .row
                            .iter()
                            .chain(&f.column)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(" / "),
                        raw: f.raw.clone(),
                        previous_raw: c.prior.as_ref().map(|p| p.raw.clone()),
                        previous_source,
                        previous_url,
                        table_index: draft.table_index,
                        cell: f.cell,
                    };
                    changed.entry(draft.table_index).or_default().push(f.cell);
                    if c.kind == ChangeKind::New {
                        new_lines.push(line);
                    } else {
                        revised_lines.push(line);
                    }
                }
                rec.insert_change(
                    statistic,
                    ids[c.figure],
                    c.kind,
                    c.prior.map(|p| p.observation_id),
                    version.is_correction,
                    &now,
                )?;
            }
        }
    }
    if let Some(settings) = alerts {
        counts.alerts_queued = queue_alerts(
            rec,
            doc,
            version,
            &extraction,
            new_lines,
            revised_lines,
            changed,
            settings,
            now_utc,
        )?;
    }
    Ok(counts)
}

/// Queues, for each confirmed subscriber who follows this answer, an instant alert or a digest
/// item, in the transaction that records the changes. Returns how many were queued.
#[allow(clippy::too_many_arguments)]
fn queue_alerts(
    rec: &Recorder<'_, '_>,
    doc: &Document,
    version: VersionRef,
    extraction: &extract::Extraction,
    new: Vec<render::FigureLine>,
    revised: Vec<render::FigureLine>,
    changed: HashMap<usize, Vec<[usize; 2]>>,
    settings: &AlertSettings,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let has_figures = !new.is_empty() || !revised.is_empty();
    let subscribers = rec.active_subscribers()?;
    if subscribers.is_empty() {
        return Ok(0);
    }
    let published = if version.is_correction {
        doc.date_corrected.or(doc.date_answered)
    } else {
        doc.date_answered
    };
    let body_text = html_text(&doc.body_html);
    let texts = [
        doc.heading.as_deref().unwrap_or(""),
        doc.question_text.as_deref().unwrap_or(""),
        body_text.as_str(),
    ];
    let tables = extraction
        .tables
        .iter()
        .filter(|t| !has_figures || changed.contains_key(&t.index))
        .filter(|t| !t.observations.is_empty())
        .map(|t| render::TableView {
            caption: t.caption.clone(),
            header_rows: t.header_rows.clone(),
            rows: t.rows.clone(),
            changed: changed.get(&t.index).cloned().unwrap_or_default(),
            notes: t.notes.clone(),
        })
        .collect();
    let content = render::AnswerAlert {
        heading: doc.heading.clone().unwrap_or_default(),
        question: doc.question_text.clone().unwrap_or_default(),
        asked_by: doc.asking_member.clone(),
        answered_by: doc.answering_member.clone(),
        answering_body: doc.answering_body_name.clone(),
        date_answered: published.map(|d| d.to_string()),
        house: doc.house.clone(),
        uin: doc.uin.clone(),
        url: doc.official_url(),
        is_correction: version.is_correction,
        new,
        revised,
        tables,
    };
    let now_s = now.to_rfc3339();
    let mut queued = 0;
    for s in subscribers {
        if !has_figures && !s.include_no_figures {
            continue;
        }
        if !s.bodies.is_empty() && !doc.answering_body_id.is_some_and(|b| s.bodies.contains(&b)) {
            continue;
        }
        if !s.houses.is_empty() && !doc.house.as_ref().is_some_and(|h| s.houses.contains(h)) {
            continue;
        }
        // Never about answers published before the subscriber confirmed.
        let confirmed_day = s
            .confirmed_at
            .as_deref()
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map(|c| uk_today(c.with_timezone(&Utc)));
        if let (Some(p), Some(c)) = (published, confirmed_day) {
            if p < c {
                continue;
            }
        }
        if Matcher::new(&s.keywords).matches(&texts).is_empty() {
            continue;
        }
        match s.frequency {
            Frequency::Instant => {
                let url = settings.unsubscribe_url(&s.token);
                let r = render::alert(
                    &content,
                    &render::Unsubscribe {
                        url: url.as_deref(),
                        mailto: &settings.mailto,
                    },
                );
                let id = format!(
                    "pqwatch.{}.{}@{}",
                    s.id, version.version_id, settings.id_host
                );
                if rec.queue_alert(s.id, &id, &r, &now_s)? {
                    queued += 1;
                }
            }
            Frequency::Daily => {
                rec.queue_digest_item(
                    s.id,
                    version.version_id,
                    &serde_json::to_string(&content)?,
                    content.date_answered.as_deref(),
                    &now_s,
                )?;
                queued += 1;
            }
        }
    }
    Ok(queued)
}

/// What a flush of the outbox did.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutboxReport {
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
}

/// Queues today's digest for each daily subscriber with answers waiting, once their hour has come.
pub async fn compile_digests(deps: &Deps, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let uk = now.with_timezone(&chrono_tz::Europe::London);
    if chrono::Timelike::hour(&uk) < deps.alerts.digest_hour {
        return Ok(0);
    }
    let day = uk.date_naive().to_string();
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
        let url = deps.alerts.unsubscribe_url(&s.token);
        let r = render::digest(
            &day,
            &answers,
            &render::Unsubscribe {
                url: url.as_deref(),
                mailto: &deps.alerts.mailto,
            },
        );
        let id = format!("pqwatch.d{sub}.{day}@{}", deps.alerts.id_host);
        with_store(deps, move |st| st.queue_digest(sub, &items, &id, &r, now)).await?;
        queued += 1;
    }
    Ok(queued)
}

/// Sends every due alert once: sent marks are written only after the server accepted the
/// message; a 4xx or a dropped connection is retried later with backoff; a 5xx for one address
/// fails that alert and the rest go on.
pub async fn flush_outbox(deps: &Deps, now: DateTime<Utc>) -> anyhow::Result<OutboxReport> {
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
            while in_flight.len() < SEND_CONCURRENCY
                && !relay_down
                && !deps.stop.load(Ordering::Relaxed)
            {
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
                in_flight.spawn(async move {
                    let r = mailer.send(&out).await;
                    (a, r)
                });
            }
            let Some(done) = in_flight.join_next().await else {
                break;
            };
            let (a, result) = done.context("a send task failed")?;
            let id = a.id;
            match result {
                Ok(()) => {
                    with_store(deps, move |s| s.mark_sent(id, Utc::now())).await?;
                    report.sent += 1;
                }
                Err(e) => {
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
        if relay_down || deps.stop.load(Ordering::Relaxed) {
            break;
        }
    }
    deps.mailer.close_idle().await;
    Ok(report)
}

/// The house and answering-body filters, applied locally as well as in the query.
fn wanted(watch: &WatchSettings, doc: &Document) -> bool {
    let house_ok = watch.houses.is_empty()
        || doc
            .house
            .as_ref()
            .is_some_and(|h| watch.houses.iter().any(|w| w == h));
    let body_ok = watch.answering_bodies.is_empty()
        || doc
            .answering_body_id
            .is_some_and(|b| watch.answering_bodies.contains(&b));
    house_ok && body_ok
}

fn hold(out: &mut WindowOutcome, day: Option<NaiveDate>) {
    match day {
        Some(d) => out.earliest_held = Some(out.earliest_held.map_or(d, |e| e.min(d))),
        None => out.incomplete = true,
    }
}

/// The day of a record we could not read, if its date field can still be found.
fn record_day(record: &serde_json::Value, query: &ListQuery) -> Option<NaiveDate> {
    let value = record.get("value").unwrap_or(record);
    let key = match (query.kind, query.field) {
        (DocKind::Statement, _) => "dateMade",
        (DocKind::Question, DateField::Answered) => "dateAnswered",
        (DocKind::Question, DateField::Corrected) => "dateAnswerCorrected",
    };
    crate::model::parse_api_date(value.get(key).and_then(|v| v.as_str())).or(Some(query.from))
}

/// A stable fingerprint of a list record (its `value`; serde_json sorts object keys).
fn fingerprint(record: &serde_json::Value) -> String {
    let value = record.get("value").unwrap_or(record);
    let mut h = Fnv64::default();
    h.write(value.to_string().as_bytes());
    format!("{:016x}", h.0)
}

fn snippet(v: &serde_json::Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// Runs a store call off the async executor (SQLite calls block).
async fn with_store<T, F>(deps: &Deps, f: F) -> anyhow::Result<T>
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
