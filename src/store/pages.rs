//! Read-side queries for the web front's pages and feed: the latest answers with new or
//! revised figures, a searchable, paged list of statistics, one statistic's summary, and the
//! changes an answer brought. Each is bounded, so a page costs the same with 10,000 statistics
//! as with ten.

use chrono::NaiveDate;
use rusqlite::{params, params_from_iter, OptionalExtension};
use serde::Serialize;

use super::{SeriesSummary, Store};
use crate::model::{official_url, DocKind};

/// Changes read back to find the latest answers: a bound on the home page's and feed's cost.
const RECENT_CHANGES: i64 = 1000;

/// One answer version that brought new or revised figures.
#[derive(Clone, Debug, Serialize)]
pub struct AnswerChanges {
    pub kind: DocKind,
    pub question_id: i64,
    pub uin: Option<String>,
    pub house: Option<String>,
    pub heading: Option<String>,
    pub date_answered: Option<NaiveDate>,
    pub version: i64,
    pub is_correction: bool,
    pub url: Option<String>,
    pub new: i64,
    pub revised: i64,
    /// When the changes were recorded (RFC 3339).
    pub recorded_at: String,
    /// The statistics they belong to: (id, title), at most 5.
    pub statistics: Vec<(i64, String)>,
    pub matched_keywords: Vec<String>,
}

/// A new or revised figure of one answer, for its page.
#[derive(Clone, Debug, Serialize)]
pub struct FigureChange {
    pub change: String,
    pub statistic_id: i64,
    pub statistic: String,
    pub cell: String,
    pub period: Option<String>,
    pub raw: String,
    pub previous_raw: Option<String>,
    pub version: i64,
    pub table_index: i64,
    pub grid_row: i64,
    pub grid_col: i64,
}

/// A page of statistics and how many match in all.
#[derive(Clone, Debug, Serialize)]
pub struct StatisticsPage {
    pub total: i64,
    pub rows: Vec<SeriesSummary>,
}

/// `%"keyword"%`: a LIKE pattern for one phrase in a JSON array of keywords.
fn keyword_pattern(keyword: &str) -> String {
    let json = serde_json::to_string(keyword).unwrap_or_default();
    format!("%{}%", like_escape(&json))
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

const SUMMARY_COLUMNS: &str = "st.id, st.title, st.answering_body, st.unit,
    (SELECT min(period_key) FROM observations WHERE statistic_id = st.id AND period_key <> ''),
    (SELECT max(period_key) FROM observations WHERE statistic_id = st.id AND period_key <> ''),
    (SELECT count(*) FROM statistic_sources WHERE statistic_id = st.id),
    (SELECT count(*) FROM observations WHERE statistic_id = st.id)";

fn summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<SeriesSummary> {
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
}

impl Store {
    /// The latest answer versions with new or revised figures, newest first; only those that
    /// matched `keyword` when one is given.
    pub fn recent_answer_changes(
        &self,
        keyword: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<AnswerChanges>> {
        let mut stmt = self.conn.prepare_cached(
            "WITH recent AS (
                 SELECT id, change, statistic_id, observation_id, created_at FROM changes
                 WHERE change IN ('new', 'revised') ORDER BY id DESC LIMIT ?1)
             SELECT d.kind, d.api_id, d.uin, d.house, d.heading, d.date_answered, d.date_tabled,
                    v.version, max(s.is_correction), sum(c.change = 'new'),
                    sum(c.change = 'revised'), max(c.created_at), d.matched_keywords,
                    group_concat(DISTINCT c.statistic_id)
             FROM recent c JOIN observations o ON o.id = c.observation_id
                  JOIN statistic_sources s ON s.id = o.source_id
                  JOIN answer_versions v ON v.id = s.version_id
                  JOIN documents d ON d.id = s.document_id
             WHERE ?2 IS NULL OR d.matched_keywords LIKE ?2 ESCAPE '\\'
             GROUP BY v.id ORDER BY max(c.id) DESC LIMIT ?3",
        )?;
        let pattern = keyword.map(keyword_pattern);
        let rows: Vec<(AnswerChanges, String)> = stmt
            .query_map(params![RECENT_CHANGES, pattern, limit as i64], |r| {
                let kind = DocKind::parse(&r.get::<_, String>(0)?).unwrap_or(DocKind::Question);
                let uin: Option<String> = r.get(2)?;
                let tabled: Option<NaiveDate> = r.get(6)?;
                let keywords: String = r.get(12)?;
                Ok((
                    AnswerChanges {
                        kind,
                        question_id: r.get(1)?,
                        url: official_url(kind, tabled, uin.as_deref()),
                        uin,
                        house: r.get(3)?,
                        heading: r.get(4)?,
                        date_answered: r.get(5)?,
                        version: r.get(7)?,
                        is_correction: r.get(8)?,
                        new: r.get(9)?,
                        revised: r.get(10)?,
                        recorded_at: r.get(11)?,
                        statistics: Vec::new(),
                        matched_keywords: serde_json::from_str(&keywords).unwrap_or_default(),
                    },
                    r.get::<_, Option<String>>(13)?.unwrap_or_default(),
                ))
            })?
            .collect::<Result<_, _>>()?;
        let mut title = self
            .conn
            .prepare_cached("SELECT title FROM statistics WHERE id = ?1")?;
        let mut out = Vec::with_capacity(rows.len());
        for (mut a, ids) in rows {
            for id in ids.split(',').filter_map(|i| i.parse::<i64>().ok()).take(5) {
                if let Some(t) = title.query_row([id], |r| r.get(0)).optional()? {
                    a.statistics.push((id, t));
                }
            }
            out.push(a);
        }
        Ok(out)
    }

    /// Statistics whose title has every one of `words`, from answers that matched `keyword`,
    /// newest first, `per_page` from `offset`.
    pub fn statistics_page(
        &self,
        words: &[String],
        keyword: Option<&str>,
        offset: usize,
        per_page: usize,
    ) -> anyhow::Result<StatisticsPage> {
        let mut cond = vec!["1".to_owned()];
        let mut args: Vec<String> = Vec::new();
        for w in words.iter().take(8) {
            args.push(format!("%{}%", like_escape(w)));
            cond.push(format!("st.title LIKE ?{} ESCAPE '\\'", args.len()));
        }
        if let Some(k) = keyword {
            args.push(keyword_pattern(k));
            cond.push(format!(
                "EXISTS (SELECT 1 FROM statistic_sources s JOIN documents d ON d.id = s.document_id
                         WHERE s.statistic_id = st.id AND d.matched_keywords LIKE ?{} ESCAPE '\\')",
                args.len()
            ));
        }
        let filter = cond.join(" AND ");
        let total: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM statistics st WHERE {filter}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM statistics st WHERE {filter}
             ORDER BY st.id DESC LIMIT {} OFFSET {}",
            per_page.min(500),
            offset
        ))?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), summary)?
            .collect::<Result<_, _>>()?;
        Ok(StatisticsPage { total, rows })
    }

    /// One statistic's summary line, or `None`.
    pub fn series_summary(&self, id: i64) -> anyhow::Result<Option<SeriesSummary>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM statistics st WHERE st.id = ?1"
            ))?
            .query_row([id], summary)
            .optional()?)
    }

    /// The new and revised figures an answer brought, in the order they were recorded.
    pub fn answer_changes(&self, kind: DocKind, api_id: i64) -> anyhow::Result<Vec<FigureChange>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.change, st.id, st.title, o.cell_key, o.period_label, o.raw, p.raw,
                    v.version, s.table_index, o.grid_row, o.grid_col
             FROM documents d JOIN statistic_sources s ON s.document_id = d.id
                  JOIN answer_versions v ON v.id = s.version_id
                  JOIN observations o ON o.source_id = s.id
                  JOIN changes c ON c.observation_id = o.id
                  JOIN statistics st ON st.id = c.statistic_id
                  LEFT JOIN observations p ON p.id = c.prior_observation_id
             WHERE d.kind = ?1 AND d.api_id = ?2 AND c.change IN ('new', 'revised')
             ORDER BY c.id",
        )?;
        let rows = stmt.query_map(params![kind.as_str(), api_id], |r| {
            Ok(FigureChange {
                change: r.get(0)?,
                statistic_id: r.get(1)?,
                statistic: r.get(2)?,
                cell: r.get(3)?,
                period: r.get(4)?,
                raw: r.get(5)?,
                previous_raw: r.get(6)?,
                version: r.get(7)?,
                table_index: r.get(8)?,
                grid_row: r.get(9)?,
                grid_col: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
