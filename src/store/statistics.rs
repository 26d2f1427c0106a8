//! The statistics tables: filing figures under statistics inside an answer version's own
//! transaction ([`Recorder`]), and reading series, sources and changes back for the CLI.

use std::collections::{BTreeSet, HashMap};

use anyhow::Context as _;
use chrono::NaiveDate;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use super::Store;
use crate::diff::{ChangeKind, Prior};
use crate::extract::Kind;
use crate::model::{official_url, DocKind};
use crate::series::{Draft, Figure, Known, MatchReason};

/// Postings read per lookup word, and words read per lookup: bounds that keep a lookup's cost
/// independent of how many statistics are stored.
const LOOKUP_WORDS: usize = 4;
/// Measure words read per lookup (before the rarest topic words).
const MEASURE_WORDS: usize = 2;
const POSTINGS_PER_WORD: usize = 200;

/// The answer version a table came from.
#[derive(Clone, Copy, Debug)]
pub struct VersionRef {
    pub document_id: i64,
    pub version_id: i64,
    pub version: i64,
    pub is_correction: bool,
}

/// Writes statistics, sources, observations and changes inside the transaction that stores the
/// answer version, so a crash keeps all of them or none.
pub struct Recorder<'t, 'c> {
    pub(super) tx: &'t Transaction<'c>,
}

fn kind_str(k: Kind) -> &'static str {
    match k {
        Kind::Number => "number",
        Kind::Suppressed => "suppressed",
        Kind::Nil => "nil",
        Kind::NotAvailable => "not_available",
        Kind::Text => "text",
    }
}

fn kind_from(s: &str) -> Kind {
    match s {
        "number" => Kind::Number,
        "suppressed" => Kind::Suppressed,
        "nil" => Kind::Nil,
        "not_available" => Kind::NotAvailable,
        _ => Kind::Text,
    }
}

impl Recorder<'_, '_> {
    /// Known statistics of this body and unit that share one of the draft's rarest measure
    /// words or rarest topic words (values not yet read: see [`Recorder::read_values`]).
    pub fn candidates(
        &self,
        answering_body: &str,
        unit: &str,
        (measure, topic): (&[String], &[String]),
    ) -> anyhow::Result<Vec<Known>> {
        let mut count = self
            .tx
            .prepare_cached("SELECT n FROM word_counts WHERE word = ?1")?;
        let mut rarest = |words: &[String]| -> anyhow::Result<Vec<String>> {
            let mut counted = Vec::new();
            for w in words {
                if let Some(n) = count.query_row([w], |r| r.get::<_, i64>(0)).optional()? {
                    counted.push((n, w.clone()));
                }
            }
            counted.sort();
            Ok(counted.into_iter().map(|(_, w)| w).collect())
        };
        let mut chosen: Vec<String> = rarest(measure)?.into_iter().take(MEASURE_WORDS).collect();
        for w in rarest(topic)? {
            if chosen.len() >= MEASURE_WORDS + LOOKUP_WORDS {
                break;
            }
            if !chosen.contains(&w) {
                chosen.push(w);
            }
        }
        let mut ids = BTreeSet::new();
        let mut postings = self.tx.prepare_cached(
            "SELECT statistic_id FROM statistic_words WHERE word = ?1 ORDER BY statistic_id DESC LIMIT ?2",
        )?;
        for w in &chosen {
            for id in postings.query_map(params![w, POSTINGS_PER_WORD as i64], |r| r.get(0))? {
                ids.insert(id?);
            }
        }
        let mut load = self.tx.prepare_cached(
            "SELECT measure_json, dims_json, topic_json, scope_json FROM statistics
             WHERE id = ?1 AND answering_body = ?2 AND unit = ?3",
        )?;
        let mut out = Vec::new();
        for id in ids {
            if let Some((m, d, t, s)) = load
                .query_row(params![id, answering_body, unit], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .optional()?
            {
                out.push(Known {
                    id,
                    measure: serde_json::from_str(&m)?,
                    dims: serde_json::from_str(&d)?,
                    topic: serde_json::from_str(&t)?,
                    scope: serde_json::from_str(&s)?,
                    values: Vec::new(),
                });
            }
        }
        Ok(out)
    }

    /// Reads a candidate's latest number for each cell and period, for weighing figures.
    pub fn read_values(&self, k: &mut Known) -> anyhow::Result<()> {
        let mut latest: HashMap<(String, String), Prior> = HashMap::new();
        for (cell, period, p) in self.history(k.id)? {
            let key = (cell, period);
            if crate::diff::supersedes(latest.get(&key), p.kind) {
                latest.insert(key, p);
            }
        }
        k.values = latest
            .into_iter()
            .filter_map(|((c, p), prior)| {
                let v = match prior.kind {
                    Kind::Number => prior.value,
                    Kind::Nil => Some(0.0),
                    _ => None,
                }?;
                Some((c, p, v))
            })
            .collect();
        Ok(())
    }

    pub fn create_statistic(&self, d: &Draft, unit: &str, now: &str) -> anyhow::Result<i64> {
        let measure = &d.measure;
        let topic: BTreeSet<String> = d.topic.union(&d.heading).cloned().collect();
        let id: i64 = self.tx.query_row(
            "INSERT INTO statistics (title, answering_body, unit, measure_json, dims_json, created_at,
                 description, measure_label, topic_json, scope_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
            params![
                d.title,
                d.answering_body,
                unit,
                serde_json::to_string(measure)?,
                serde_json::to_string(&d.dims)?,
                now,
                d.description,
                d.measure_label,
                serde_json::to_string(&topic)?,
                serde_json::to_string(&d.scope)?
            ],
            |r| r.get(0),
        )?;
        let mut post = self.tx.prepare_cached(
            "INSERT OR IGNORE INTO statistic_words (word, statistic_id) VALUES (?1, ?2)",
        )?;
        let mut count = self.tx.prepare_cached(
            "INSERT INTO word_counts (word, n) VALUES (?1, 1)
             ON CONFLICT (word) DO UPDATE SET n = n + 1",
        )?;
        for w in measure.iter().chain(&topic) {
            if post.execute(params![w, id])? > 0 {
                count.execute([w])?;
            }
        }
        Ok(id)
    }

    /// Adds newly seen dimension values (a prison named for the first time) to a statistic.
    pub fn add_dims(&self, id: i64, dims: &BTreeSet<String>) -> anyhow::Result<()> {
        let current: String = self.tx.query_row(
            "SELECT dims_json FROM statistics WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        let mut all: BTreeSet<String> = serde_json::from_str(&current)?;
        let before = all.len();
        all.extend(dims.iter().cloned());
        if all.len() != before {
            self.tx.execute(
                "UPDATE statistics SET dims_json = ?2 WHERE id = ?1",
                params![id, serde_json::to_string(&all)?],
            )?;
        }
        Ok(())
    }

    /// Every earlier figure of a statistic, oldest first: (cell key, period key, value).
    pub fn history(&self, id: i64) -> anyhow::Result<Vec<(String, String, Prior)>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, cell_key, period_key, kind, value, raw FROM observations
             WHERE statistic_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                Prior {
                    observation_id: r.get(0)?,
                    kind: kind_from(&r.get::<_, String>(3)?),
                    value: r.get(4)?,
                    raw: r.get(5)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn insert_source(
        &self,
        statistic_id: i64,
        v: VersionRef,
        table_index: usize,
        caption: &str,
        reason: &MatchReason,
        now: &str,
    ) -> anyhow::Result<i64> {
        Ok(self.tx.query_row(
            "INSERT INTO statistic_sources (statistic_id, document_id, version_id, table_index,
                 caption, reason_json, is_correction, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
            params![
                statistic_id,
                v.document_id,
                v.version_id,
                table_index as i64,
                caption,
                serde_json::to_string(reason)?,
                v.is_correction,
                now
            ],
            |r| r.get(0),
        )?)
    }

    pub fn insert_observation(
        &self,
        statistic_id: i64,
        source_id: i64,
        f: &Figure,
    ) -> anyhow::Result<i64> {
        Ok(self
            .tx
            .prepare_cached(
                "INSERT INTO observations (statistic_id, source_id, cell_key, period_key,
                     period_label, row_json, column_json, grid_row, grid_col, raw, value, kind,
                     measure)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) RETURNING id",
            )?
            .query_row(
                params![
                    statistic_id,
                    source_id,
                    f.cell_key,
                    f.period_key,
                    f.period_label,
                    serde_json::to_string(&f.row)?,
                    serde_json::to_string(&f.column)?,
                    f.cell[0] as i64,
                    f.cell[1] as i64,
                    f.raw,
                    f.value,
                    kind_str(f.kind),
                    f.measure
                ],
                |r| r.get(0),
            )?)
    }

    pub fn insert_change(
        &self,
        statistic_id: i64,
        observation_id: i64,
        kind: ChangeKind,
        prior: Option<i64>,
        is_correction: bool,
        now: &str,
    ) -> anyhow::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO changes (statistic_id, observation_id, change, prior_observation_id,
                     is_correction, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                statistic_id,
                observation_id,
                kind.as_str(),
                prior,
                is_correction,
                now
            ])?;
        Ok(())
    }
}

/// Where a figure was published: enough to find it on the official page.
#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    pub question_id: i64,
    pub kind: DocKind,
    pub uin: Option<String>,
    pub house: Option<String>,
    pub heading: Option<String>,
    pub date_answered: Option<NaiveDate>,
    pub version: i64,
    pub table_index: i64,
    /// `[row, column]` in the table's expanded grid.
    pub cell: [i64; 2],
    pub url: Option<String>,
    pub is_correction: bool,
}

/// One line of `pqwatch series list`.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesSummary {
    pub id: i64,
    pub title: String,
    pub answering_body: String,
    pub unit: String,
    pub first_period: Option<String>,
    pub last_period: Option<String>,
    pub sources: i64,
    pub observations: i64,
}

/// One published value of a statistic, with where it came from.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesValue {
    pub observation_id: i64,
    pub cell: String,
    pub period_key: String,
    pub period: Option<String>,
    pub row: Vec<String>,
    pub column: Vec<String>,
    pub raw: String,
    pub value: Option<f64>,
    pub kind: String,
    pub change: Option<String>,
    pub source: Provenance,
}

/// A new or revised figure, for `pqwatch changes` and `series show`. It reads alone: the
/// statistic's title, the measure label, the row and column labels as published (markers
/// apart), the period, old and new value, and where both were published.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeRow {
    pub id: i64,
    pub statistic_id: i64,
    pub statistic: String,
    /// The statistic's title (the same as `statistic`, named for scripts).
    pub title: String,
    /// The label naming what is measured ("Conveyance of drugs"); "" if the table had none.
    pub measure: String,
    /// Row labels as published, outermost first, footnote markers apart.
    pub row: Vec<String>,
    /// Column labels as published, outermost first, footnote markers apart.
    pub column: Vec<String>,
    /// The period as published ("2014", "2019-20"), or null.
    pub period_label: Option<String>,
    pub unit: String,
    pub change: String,
    pub cell: String,
    pub period_key: String,
    pub period: Option<String>,
    pub raw: String,
    pub value: Option<f64>,
    pub kind: String,
    pub previous_raw: Option<String>,
    pub previous_value: Option<f64>,
    pub previous_source: Option<Provenance>,
    pub is_correction: bool,
    pub created_at: String,
    pub source: Provenance,
}

/// How a source table was filed under its statistic.
#[derive(Clone, Debug, Serialize)]
pub struct SourceRow {
    pub caption: Option<String>,
    pub reason: serde_json::Value,
    pub source: Provenance,
}

#[derive(Clone, Debug, Serialize)]
pub struct SeriesDetail {
    #[serde(flatten)]
    pub summary: SeriesSummary,
    pub dimensions: Vec<String>,
    pub sources: Vec<SourceRow>,
    /// Every published value, oldest first.
    pub values: Vec<SeriesValue>,
    pub revisions: Vec<ChangeRow>,
}

const PROVENANCE: &str =
    "d.api_id, d.kind, d.uin, d.house, d.heading, d.date_answered, d.date_tabled,
     v.version, s.table_index, o.grid_row, o.grid_col, s.is_correction";

fn provenance(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Provenance> {
    let kind = DocKind::parse(&r.get::<_, String>(at + 1)?).unwrap_or(DocKind::Question);
    let uin: Option<String> = r.get(at + 2)?;
    let tabled: Option<NaiveDate> = r.get(at + 6)?;
    Ok(Provenance {
        question_id: r.get(at)?,
        kind,
        url: official_url(kind, tabled, uin.as_deref()),
        uin,
        house: r.get(at + 3)?,
        heading: r.get(at + 4)?,
        date_answered: r.get(at + 5)?,
        version: r.get(at + 7)?,
        table_index: r.get(at + 8)?,
        cell: [r.get(at + 9)?, r.get(at + 10)?],
        is_correction: r.get(at + 11)?,
    })
}

/// Stored labels, footnote markers apart ("Prison Officer (1)" → "Prison Officer").
fn labels(json: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(json)
        .unwrap_or_default()
        .iter()
        .map(|l| crate::extract::value::split_markers(l).0)
        .collect()
}

const FROM_OBS: &str = "observations o
     JOIN statistic_sources s ON s.id = o.source_id
     JOIN documents d ON d.id = s.document_id
     JOIN answer_versions v ON v.id = s.version_id";

impl Store {
    pub fn series_list(&self) -> anyhow::Result<Vec<SeriesSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT st.id, st.title, st.answering_body, st.unit,
                (SELECT min(period_key) FROM observations WHERE statistic_id = st.id AND period_key <> ''),
                (SELECT max(period_key) FROM observations WHERE statistic_id = st.id AND period_key <> ''),
                (SELECT count(*) FROM statistic_sources WHERE statistic_id = st.id),
                (SELECT count(*) FROM observations WHERE statistic_id = st.id)
             FROM statistics st ORDER BY st.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(SeriesSummary {
                id: r.get(0)?,
                title: r.get(1)?,
                answering_body: r.get(2)?,
                unit: r.get(3)?,
                first_period: r.get(4)?,
                last_period: r.get(5)?,
                sources: r.get(6)?,
                observations: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn series_detail(&self, id: i64) -> anyhow::Result<Option<SeriesDetail>> {
        let Some(summary) = self.series_summary(id)? else {
            return Ok(None);
        };
        let dims: String = self.conn.query_row(
            "SELECT dims_json FROM statistics WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare(
            "SELECT s.caption, s.reason_json, d.api_id, d.kind, d.uin, d.house, d.heading,
                    d.date_answered, d.date_tabled, v.version, s.table_index, 0, 0, s.is_correction
             FROM statistic_sources s JOIN documents d ON d.id = s.document_id
                  JOIN answer_versions v ON v.id = s.version_id
             WHERE s.statistic_id = ?1 ORDER BY s.id",
        )?;
        let sources = stmt
            .query_map([id], |r| {
                let reason: String = r.get(1)?;
                Ok(SourceRow {
                    caption: r.get(0)?,
                    reason: serde_json::from_str(&reason).unwrap_or_default(),
                    source: provenance(r, 2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT o.id, o.cell_key, o.period_key, o.period_label, o.row_json, o.column_json,
                    o.raw, o.value, o.kind,
                    (SELECT change FROM changes c WHERE c.observation_id = o.id), {PROVENANCE}
             FROM {FROM_OBS} WHERE o.statistic_id = ?1 ORDER BY o.id"
        ))?;
        let values = stmt
            .query_map([id], |r| {
                Ok(SeriesValue {
                    observation_id: r.get(0)?,
                    cell: r.get(1)?,
                    period_key: r.get(2)?,
                    period: r.get(3)?,
                    row: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
                    column: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
                    raw: r.get(6)?,
                    value: r.get(7)?,
                    kind: r.get(8)?,
                    change: r.get(9)?,
                    source: provenance(r, 10)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let revisions = self
            .changes(None, Some(id))?
            .into_iter()
            .filter(|c| c.change == "revised")
            .collect();
        Ok(Some(SeriesDetail {
            summary,
            dimensions: serde_json::from_str(&dims)?,
            sources,
            values,
            revisions,
        }))
    }

    /// New and revised figures, newest first; `since` filters on the date they were recorded.
    pub fn changes(
        &self,
        since: Option<NaiveDate>,
        statistic: Option<i64>,
    ) -> anyhow::Result<Vec<ChangeRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT c.id, c.statistic_id, st.title, st.unit, c.change, o.cell_key, o.period_key,
                    o.period_label, o.raw, o.value, o.kind, p.raw, p.value, c.is_correction,
                    c.created_at, p.id, o.measure, o.row_json, o.column_json, {PROVENANCE}
             FROM changes c JOIN statistics st ON st.id = c.statistic_id
                  JOIN observations o ON o.id = c.observation_id
                  JOIN statistic_sources s ON s.id = o.source_id
                  JOIN documents d ON d.id = s.document_id
                  JOIN answer_versions v ON v.id = s.version_id
                  LEFT JOIN observations p ON p.id = c.prior_observation_id
             WHERE c.change IN ('new', 'revised')
               AND (?1 IS NULL OR c.created_at >= ?1)
               AND (?2 IS NULL OR c.statistic_id = ?2)
             ORDER BY c.id DESC"
        ))?;
        let rows: Vec<(ChangeRow, Option<i64>)> = stmt
            .query_map(params![since.map(|d| d.to_string()), statistic], |r| {
                Ok((
                    ChangeRow {
                        id: r.get(0)?,
                        statistic_id: r.get(1)?,
                        statistic: r.get(2)?,
                        title: r.get(2)?,
                        measure: r.get(16)?,
                        row: labels(&r.get::<_, String>(17)?),
                        column: labels(&r.get::<_, String>(18)?),
                        period_label: r.get(7)?,
                        unit: r.get(3)?,
                        change: r.get(4)?,
                        cell: r.get(5)?,
                        period_key: r.get(6)?,
                        period: r.get(7)?,
                        raw: r.get(8)?,
                        value: r.get(9)?,
                        kind: r.get(10)?,
                        previous_raw: r.get(11)?,
                        previous_value: r.get(12)?,
                        previous_source: None,
                        is_correction: r.get(13)?,
                        created_at: r.get(14)?,
                        source: provenance(r, 19)?,
                    },
                    r.get(15)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let mut prev = self.conn.prepare(&format!(
            "SELECT {PROVENANCE} FROM {FROM_OBS} WHERE o.id = ?1"
        ))?;
        let mut out = Vec::with_capacity(rows.len());
        for (mut row, prior) in rows {
            if let Some(p) = prior {
                row.previous_source = prev.query_row([p], |r| provenance(r, 0)).optional()?;
            }
            out.push(row);
        }
        Ok(out)
    }

    /// Counts by change kind, for tests and benchmarks.
    pub fn change_counts(&self) -> anyhow::Result<HashMap<String, i64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT change, count(*) FROM changes GROUP BY change")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>().context("counting changes")
    }
}
