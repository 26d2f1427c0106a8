//! Ingest: list a window page by page, fetch the details of new or changed records, match
//! keywords and store, holding, quarantining or skipping records that cannot be read, never
//! aborting the pass.

use std::collections::HashSet;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::task::JoinSet;

use super::{record_figures, with_store, Deps, PassReport};
use crate::config::WatchSettings;
use crate::fetch::{DateField, FetchError, ListQuery};
use crate::model::{DocKind, Document};
use crate::store::{Failure, Fnv64, SaveOutcome};
use crate::watch::html_text;

/// What one window's ingest left behind.
#[derive(Default)]
pub(super) struct WindowOutcome {
    /// The earliest day of a held record, if any.
    pub(super) earliest_held: Option<NaiveDate>,
    /// A page failed or the pass stopped: we cannot say which days are complete.
    pub(super) incomplete: bool,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn ingest_window(
    deps: &Deps,
    kind: DocKind,
    from: NaiveDate,
    to: NaiveDate,
    (now, backfill): (DateTime<Utc>, bool),
    report: &mut PassReport,
    done: &mut HashSet<(DocKind, i64)>,
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
            if deps.stop.is_cancelled() {
                out.incomplete = true;
                return Ok(out);
            }
            let page = match deps.client.list_page(&query, skip).await {
                Ok(p) => p,
                Err(FetchError::Cancelled { .. }) => {
                    out.incomplete = true;
                    return Ok(out);
                }
                Err(e) => {
                    report.pages_failed += 1;
                    let what = match (kind, field) {
                        (DocKind::Question, DateField::Answered) => "questions answered",
                        (DocKind::Question, DateField::Corrected) => "answers corrected",
                        (DocKind::Statement, _) => "statements made",
                    };
                    report.error(format!(
                        "could not list the {what} {from}..{to} (from record {skip}): {}; retried on the next pass; check {}",
                        e.cause(),
                        e.check()
                    ));
                    out.incomplete = true;
                    break;
                }
            };
            let n = page.records.len() as u64;
            ingest_page(
                deps,
                &query,
                page.records,
                (now, backfill),
                report,
                done,
                &mut out,
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
    key: String,
    fingerprint: String,
    day: NaiveDate,
    record: serde_json::Value,
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
) -> anyhow::Result<()> {
    let kind = query.kind;
    // A record quarantined with this very fingerprint is not read again: the API has not
    // changed it, so it would fail the same way.
    let keyed: Vec<(String, String, serde_json::Value)> = records
        .into_iter()
        .map(|r| {
            let fp = fingerprint(&r);
            (record_key(&r, &fp), fp, r)
        })
        .collect();
    let keys: Vec<String> = keyed.iter().map(|(k, _, _)| k.clone()).collect();
    let quarantined = with_store(deps, move |s| s.quarantined_fingerprints(kind, &keys)).await?;
    let mut failures = Vec::new();
    let mut listed_docs = Vec::new();
    for (key, fp, record) in keyed {
        if quarantined.get(&key) == Some(&fp) {
            report.still_quarantined += 1;
            continue;
        }
        let doc = match Document::from_record(kind, &record) {
            Ok(d) => d,
            Err(e) => {
                let day = record_day(&record, query);
                failures.push(failure(
                    kind,
                    key,
                    fp,
                    day,
                    format!("list record: {e}"),
                    record,
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
        listed_docs.push((doc, record, key, fp));
    }
    // Records already stored are always read (a correction or a new version may follow); new
    // ones only where something in the list record can still match.
    let ids: Vec<i64> = listed_docs.iter().map(|(d, ..)| d.api_id).collect();
    let stored = with_store(deps, move |s| s.stored_ids(kind, &ids)).await?;
    let mut listed = Vec::new();
    for (doc, record, key, fingerprint) in listed_docs {
        if !stored.contains(&doc.api_id) && !worth_reading(deps, &doc) {
            report.skipped_by_prefilter += 1;
            continue;
        }
        let day = match query.field {
            DateField::Answered => doc.date_answered,
            DateField::Corrected => doc.date_corrected,
        }
        .unwrap_or(query.from);
        listed.push(Candidate {
            api_id: doc.api_id,
            key,
            fingerprint,
            day,
            record,
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
            && !deps.stop.is_cancelled()
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
    for (c, result) in candidates.into_iter().zip(results) {
        let detail = match result {
            // Not started, or stopped by shutdown: nothing was learnt, so the window is not
            // complete and the cursor stays; the next pass asks again.
            None | Some(Err(FetchError::Cancelled { .. })) => {
                out.incomplete = true;
                continue;
            }
            Some(Ok(v)) => v,
            Some(Err(e @ FetchError::Permanent { .. })) => {
                report.skipped += 1;
                report.error(format!(
                    "{} {} skipped: {}; not asked for again; check {}",
                    kind.as_str(),
                    c.api_id,
                    e.cause(),
                    e.check()
                ));
                continue;
            }
            // Too big to read, now or on any later pass: refused, and quarantined at once.
            Some(Err(e @ FetchError::TooLarge { .. })) => {
                report.refused += 1;
                let mut f = failure(
                    kind,
                    c.key,
                    c.fingerprint,
                    Some(c.day),
                    e.to_string(),
                    c.record,
                );
                f.at_once = true;
                failures.push(f);
                continue;
            }
            // Not the contract's JSON after every retry: counts towards quarantine.
            Some(Err(e @ FetchError::Malformed { .. })) => {
                failures.push(failure(
                    kind,
                    c.key,
                    c.fingerprint,
                    Some(c.day),
                    e.to_string(),
                    c.record,
                ));
                continue;
            }
            // An outage (timeouts, 429, 5xx) is no fault of the record: held, however long.
            Some(Err(e)) => {
                report.held += 1;
                hold(out, Some(c.day));
                report.error(format!(
                    "could not read {} {} in full: {}; retried on the next pass; check {}",
                    kind.as_str(),
                    c.api_id,
                    e.cause(),
                    e.check()
                ));
                continue;
            }
        };
        let doc = match Document::from_record(kind, &detail) {
            Ok(d) => d,
            Err(e) => {
                let raw = detail.get("value").cloned().unwrap_or(detail);
                failures.push(failure(
                    kind,
                    c.key,
                    c.fingerprint,
                    Some(c.day),
                    format!("detail: {e}"),
                    raw,
                ));
                continue;
            }
        };
        if doc.body_html.len() as u64 > deps.watch.max_answer_bytes {
            report.refused += 1;
            let reason = format!(
                "refused: the answer is {} bytes of HTML, more than [watch] max_answer_bytes ({})",
                doc.body_html.len(),
                deps.watch.max_answer_bytes
            );
            let mut f = failure(kind, c.key, c.fingerprint, Some(c.day), reason, c.record);
            f.at_once = true;
            failures.push(f);
            continue;
        }
        report.fetched += 1;
        let body_text = html_text(&doc.body_html);
        let keywords = deps.matcher.matches(&[
            doc.heading.as_deref().unwrap_or(""),
            doc.question_text.as_deref().unwrap_or(""),
            &body_text,
        ]);
        items.push((doc, c.fingerprint, keywords));
    }
    record_failures(deps, failures, now, report, out).await?;
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

/// Whether a new list record is worth its detail request: its body's answers are always read
/// in full, or a keyword shows in what the list gives (the heading, the question, and the start
/// of the answer, which the list shortens to about 250 characters of text).
fn worth_reading(deps: &Deps, doc: &Document) -> bool {
    deps.watch.read_every_answer
        || doc
            .answering_body_id
            .is_some_and(|b| deps.watch.deep_read_bodies.contains(&b))
        || !deps
            .matcher
            .matches(&[
                doc.heading.as_deref().unwrap_or(""),
                doc.question_text.as_deref().unwrap_or(""),
                &html_text(&doc.body_html),
            ])
            .is_empty()
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

/// Counts this page's failures: each is held (the cursor kept before its day) until it has
/// failed `[watch] quarantine_after` passes, or was refused for its size; then it is quarantined
/// and no longer holds the cursor.
async fn record_failures(
    deps: &Deps,
    failures: Vec<Failure>,
    now: DateTime<Utc>,
    report: &mut PassReport,
    out: &mut WindowOutcome,
) -> anyhow::Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    let after = deps.watch.quarantine_after;
    let summaries: Vec<(Option<NaiveDate>, String)> = failures
        .iter()
        .map(|f| {
            let who = match f.api_id {
                Some(id) => format!("{} {id}", f.kind.as_str()),
                None => format!("{} record {}", f.kind.as_str(), snippet(&f.raw)),
            };
            (f.day, format!("{who}: {}", f.reason))
        })
        .collect();
    let states = with_store(deps, move |s| s.record_failures(&failures, now, after)).await?;
    for ((day, what), state) in summaries.into_iter().zip(states) {
        if state.quarantined {
            report.quarantined += 1;
            report.error(format!(
                "quarantined (`pqwatch answers quarantined` lists it; it is tried again when the API changes it) {what}"
            ));
        } else {
            report.held += 1;
            hold(out, day);
            report.error(format!(
                "held (attempt {} of {after}) {what}",
                state.attempts
            ));
        }
    }
    Ok(())
}

fn failure(
    kind: DocKind,
    key: String,
    fingerprint: String,
    day: Option<NaiveDate>,
    reason: String,
    record: serde_json::Value,
) -> Failure {
    let raw = match record.get("value") {
        Some(v) if v.is_object() => v.clone(),
        _ => record,
    };
    let text = |k: &str| raw.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    Failure {
        kind,
        api_id: raw.get("id").and_then(serde_json::Value::as_i64),
        uin: text("uin"),
        house: text("house"),
        key,
        day,
        fingerprint,
        reason,
        raw,
        at_once: false,
    }
}

/// What identifies a record across passes: its numeric id, or (without one) its fingerprint.
fn record_key(record: &serde_json::Value, fingerprint: &str) -> String {
    let value = record.get("value").unwrap_or(record);
    match value.get("id").and_then(serde_json::Value::as_i64) {
        Some(id) => format!("id:{id}"),
        None => format!("fp:{fingerprint}"),
    }
}

fn hold(out: &mut WindowOutcome, day: Option<NaiveDate>) {
    match day {
        Some(d) => out.earliest_held = Some(out.earliest_held.map_or(d, |e| e.min(d))),
        None => out.incomplete = true,
    }
}

/// The day of a record we could not read: its date field if that is a day of the window,
/// else the window's first day (so the cursor stays before it whatever its dates say).
fn record_day(record: &serde_json::Value, query: &ListQuery) -> Option<NaiveDate> {
    let value = record.get("value").unwrap_or(record);
    let key = match (query.kind, query.field) {
        (DocKind::Statement, _) => "dateMade",
        (DocKind::Question, DateField::Answered) => "dateAnswered",
        (DocKind::Question, DateField::Corrected) => "dateAnswerCorrected",
    };
    crate::model::parse_api_date(value.get(key).and_then(|v| v.as_str()))
        .ok()
        .flatten()
        .filter(|d| (query.from..=query.to).contains(d))
        .or(Some(query.from))
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
