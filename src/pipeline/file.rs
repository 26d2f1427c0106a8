//! Figure filing: one new answer version's tables → statistics → diff → changes and queued
//! alerts, written through the store's `Recorder` inside the version's own transaction.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{uk_today, AlertSettings};
use crate::diff::{self, ChangeKind};
use crate::extract;
use crate::model::Document;
use crate::notify::render;
use crate::series;
use crate::store::{Recorder, VersionRef};
use crate::subscribers::Frequency;
use crate::watch::{html_text, Matcher};

/// Candidates whose figures are read and weighed, per draft.
const VALUE_CANDIDATES: usize = 8;

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
        question: doc.question_text.clone().unwrap_or_default(),
        prose: html_text(&doc.body_html),
    };
    // Two tables of one answer are never one statistic.
    let mut used = HashSet::new();
    for table in &extraction.tables {
        for draft in series::drafts(table, &ctx) {
            if draft.figures.is_empty() {
                continue;
            }
            let unit = series::unit_key(draft.unit);
            let (measure_words, topic_words) = series::lookup_words(&draft);
            let found: Vec<_> = rec
                .candidates(&draft.answering_body, unit, (&measure_words, &topic_words))?
                .into_iter()
                .filter(|k| !used.contains(&k.id))
                .collect();
            // Figures are read for the closest few only, so the cost stays flat.
            let mut known = series::closest(&draft, found, VALUE_CANDIDATES);
            for k in &mut known {
                rec.read_values(k)?;
            }
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
                &draft.description,
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
                let manage = settings.manage_url(&s.token);
                let r = render::alert(
                    &content,
                    &render::Unsubscribe {
                        url: url.as_deref(),
                        mailto: &settings.mailto,
                        manage: manage.as_deref(),
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
            Frequency::Daily | Frequency::Weekly => {
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
