//! The browsing pages: `/` (the latest answers with new or revised figures), `/statistics`
//! (search, keyword filter, pages), `/statistics/{id}` (chart, values, editions, CSV) and
//! `/answers/{id}` (the answer, its tables and what it changed). Views are plain strings and
//! numbers; the templates escape every one.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::page;
use crate::model::DocKind;
use crate::store::{AnswerChanges, SeriesDetail, SeriesSummary};
use crate::web::chart::{chart, Chart};
use crate::web::{AppState, PageError};

const PER_PAGE: usize = 25;
const HOME_ANSWERS: usize = 30;

/// "HC 12345" style reference of an answer.
pub fn reference(house: Option<&str>, uin: Option<&str>) -> String {
    let h = match house {
        Some("Commons") => "HC",
        Some("Lords") => "HL",
        Some(other) => other,
        None => "",
    };
    format!("{h} {}", uin.unwrap_or("-")).trim().to_owned()
}

/// What an answer changed, in words: "2 new figures and 1 revised figure".
pub fn what_changed(a: &AnswerChanges) -> String {
    let mut parts = Vec::new();
    if a.new > 0 {
        parts.push(format!(
            "{} new {}",
            a.new,
            if a.new == 1 { "figure" } else { "figures" }
        ));
    }
    if a.revised > 0 {
        parts.push(format!(
            "{} revised {}",
            a.revised,
            if a.revised == 1 { "figure" } else { "figures" }
        ));
    }
    parts.join(" and ")
}

pub struct HomeAnswer {
    pub id: i64,
    pub heading: String,
    pub reference: String,
    pub date: Option<String>,
    pub correction: bool,
    pub new: i64,
    pub revised: i64,
    pub what: String,
    pub statistics: Vec<(i64, String)>,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub answers: Vec<HomeAnswer>,
}

pub async fn home(State(web): State<AppState>) -> Result<Response, PageError> {
    let rows = web
        .read(|s| s.recent_answer_changes(None, HOME_ANSWERS))
        .await?;
    let answers = rows
        .iter()
        .map(|a| HomeAnswer {
            id: a.question_id,
            heading: a.heading.clone().unwrap_or_else(|| "(no heading)".into()),
            reference: reference(a.house.as_deref(), a.uin.as_deref()),
            date: a.date_answered.map(|d| d.to_string()),
            correction: a.is_correction,
            new: a.new,
            revised: a.revised,
            what: what_changed(a),
            statistics: a.statistics.clone(),
        })
        .collect();
    Ok(page(StatusCode::OK, &HomePage { answers }))
}

#[derive(Deserialize, Default)]
pub struct StatisticsQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub keyword: String,
    #[serde(default)]
    pub page: Option<usize>,
}

pub struct StatisticRow {
    pub id: i64,
    pub title: String,
    pub answering_body: String,
    pub unit: String,
    pub periods: String,
    pub sources: i64,
    pub observations: i64,
}

fn periods(s: &SeriesSummary) -> String {
    match (&s.first_period, &s.last_period) {
        (Some(a), Some(b)) if a == b => a.clone(),
        (Some(a), Some(b)) => format!("{a} to {b}"),
        _ => "no periods".into(),
    }
}

#[derive(Template)]
#[template(path = "statistics.html")]
pub struct StatisticsPageView {
    pub q: String,
    pub keyword: String,
    pub keywords: Vec<String>,
    pub total: i64,
    pub first: usize,
    pub last: usize,
    pub rows: Vec<StatisticRow>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// A query string value, percent-encoded.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub async fn statistics(
    State(web): State<AppState>,
    query: Result<Query<StatisticsQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(q) = query.unwrap_or_default();
    let words: Vec<String> =
        q.q.split_whitespace()
            .take(8)
            .map(|w| w.chars().take(60).collect())
            .collect();
    let keyword = web
        .keywords
        .iter()
        .find(|k| k.eq_ignore_ascii_case(q.keyword.trim()))
        .cloned();
    let page_no = q.page.unwrap_or(1).clamp(1, 100_000);
    let offset = (page_no - 1) * PER_PAGE;
    let (w, k) = (words.clone(), keyword.clone());
    let found = web
        .read(move |s| s.statistics_page(&w, k.as_deref(), offset, PER_PAGE))
        .await?;
    let link = |p: usize| {
        format!(
            "/statistics?q={}&keyword={}&page={p}",
            encode(&words.join(" ")),
            encode(keyword.as_deref().unwrap_or(""))
        )
    };
    let shown = found.rows.len();
    let view = StatisticsPageView {
        q: words.join(" "),
        keyword: keyword.clone().unwrap_or_default(),
        keywords: web.keywords.clone(),
        total: found.total,
        first: offset + 1,
        last: offset + shown,
        prev: (page_no > 1).then(|| link(page_no - 1)),
        next: ((offset + shown) < found.total as usize).then(|| link(page_no + 1)),
        rows: found
            .rows
            .iter()
            .map(|s| StatisticRow {
                id: s.id,
                title: s.title.clone(),
                answering_body: s.answering_body.clone(),
                unit: s.unit.clone(),
                periods: periods(s),
                sources: s.sources,
                observations: s.observations,
            })
            .collect(),
    };
    Ok(page(StatusCode::OK, &view))
}

pub struct ValueRow {
    pub cell: String,
    pub period: String,
    pub raw: String,
    pub change: String,
    pub source: String,
    pub url: Option<String>,
    pub question_id: i64,
}

pub struct EditionRow {
    pub reference: String,
    pub url: Option<String>,
    pub date: Option<String>,
    pub correction: bool,
    pub caption: Option<String>,
    pub question_id: i64,
}

#[derive(Template)]
#[template(path = "statistic.html")]
pub struct StatisticView {
    pub id: i64,
    pub title: String,
    pub unit: String,
    pub body: String,
    pub periods: String,
    pub dimension_word: String,
    pub chart: Chart,
    pub values: Vec<ValueRow>,
    pub sources: Vec<EditionRow>,
}

/// The `{id}` of a statistic or answer: a positive number, or no such page.
fn id_of(raw: &str) -> Result<i64, PageError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or(PageError::NotFound)
}

async fn detail(web: &AppState, id: i64) -> Result<SeriesDetail, PageError> {
    web.read(move |s| s.series_detail(id))
        .await?
        .ok_or(PageError::NotFound)
}

pub async fn statistic(
    State(web): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = id_of(&id)?;
    let d = detail(&web, id).await?;
    let s = &d.summary;
    let view = StatisticView {
        id,
        title: s.title.clone(),
        unit: s.unit.clone(),
        body: s.answering_body.clone(),
        periods: periods(s),
        dimension_word: "breakdown".into(),
        chart: chart(&d.values, &s.title),
        values: d
            .values
            .iter()
            .map(|v| ValueRow {
                cell: if v.cell.is_empty() {
                    "(all)".into()
                } else {
                    v.cell.clone()
                },
                period: v.period.clone().unwrap_or_else(|| "-".into()),
                raw: v.raw.clone(),
                change: v.change.clone().unwrap_or_default(),
                source: format!(
                    "{}, {}",
                    reference(v.source.house.as_deref(), v.source.uin.as_deref()),
                    v.source
                        .date_answered
                        .map_or("undated".into(), |d| d.to_string())
                ),
                url: v.source.url.clone(),
                question_id: v.source.question_id,
            })
            .collect(),
        sources: d
            .sources
            .iter()
            .map(|src| EditionRow {
                reference: reference(src.source.house.as_deref(), src.source.uin.as_deref()),
                url: src.source.url.clone(),
                date: src.source.date_answered.map(|d| d.to_string()),
                correction: src.source.is_correction,
                caption: src.caption.clone().filter(|c| !c.is_empty()),
                question_id: src.source.question_id,
            })
            .collect(),
    };
    Ok(page(StatusCode::OK, &view))
}

/// The same CSV as `pqwatch series export ID --csv`.
pub async fn statistic_csv(
    State(web): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = id_of(&id)?;
    let d = detail(&web, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"pqwatch-statistic-{id}.csv\""),
            ),
        ],
        crate::export::series_csv(&d),
    )
        .into_response())
}

pub struct Cell {
    pub text: String,
    pub class: &'static str,
}

pub struct TableView {
    pub number: usize,
    pub caption: Option<String>,
    pub head: Vec<Vec<Cell>>,
    pub body: Vec<Vec<Cell>>,
    pub notes: Vec<String>,
}

pub struct ChangeView {
    pub change: String,
    pub statistic_id: i64,
    pub statistic: String,
    pub cell: String,
    pub period: Option<String>,
    pub raw: String,
    pub previous_raw: Option<String>,
}

#[derive(Template)]
#[template(path = "answer.html")]
pub struct AnswerView {
    pub heading: String,
    pub reference: String,
    pub asked_by: Option<String>,
    pub answered_by: Option<String>,
    pub body: Option<String>,
    pub tabled: Option<String>,
    pub answered: Option<String>,
    pub corrected: Option<String>,
    pub url: Option<String>,
    pub question: Option<String>,
    pub changes: Vec<ChangeView>,
    pub tables: Vec<TableView>,
    /// (stored at, holding, correction) of each version.
    pub versions: Vec<(String, bool, bool)>,
}

fn looks_numeric(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_digit() || ",.%£-–*~ ".contains(c))
        && t.chars().any(|c| c.is_ascii_digit())
}

pub async fn answer(
    State(web): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = id_of(&id)?;
    let (detail, changes) = web
        .read(move |s| {
            Ok((
                s.answer_detail(DocKind::Question, id)?,
                s.answer_changes(DocKind::Question, id)?,
            ))
        })
        .await?;
    let d = detail.ok_or(PageError::NotFound)?;
    let latest = d.answer_versions.last();
    let latest_no = latest.map_or(0, |v| v.version);
    let extraction = crate::extract::extract(latest.map_or("", |v| v.answer_html.as_str()));
    let tables = extraction
        .tables
        .iter()
        .map(|t| {
            let changed = |r: usize, c: usize| -> &'static str {
                match changes.iter().find(|ch| {
                    ch.version == latest_no
                        && ch.table_index == t.index as i64
                        && ch.grid_row == r as i64
                        && ch.grid_col == c as i64
                }) {
                    Some(ch) if ch.change == "revised" => "num changed-revised",
                    Some(_) => "num changed-new",
                    None => "",
                }
            };
            let cells = |rows: &[Vec<String>], first: usize| -> Vec<Vec<Cell>> {
                rows.iter()
                    .enumerate()
                    .map(|(ri, row)| {
                        row.iter()
                            .enumerate()
                            .map(|(ci, text)| {
                                let mark = changed(first + ri, ci);
                                Cell {
                                    text: text.clone(),
                                    class: if !mark.is_empty() {
                                        mark
                                    } else if looks_numeric(text) {
                                        "num"
                                    } else {
                                        ""
                                    },
                                }
                            })
                            .collect()
                    })
                    .collect()
            };
            TableView {
                number: t.index + 1,
                caption: t.caption.clone(),
                head: cells(&t.header_rows, 0),
                body: cells(&t.rows, t.header_rows.len()),
                notes: t.notes.clone(),
            }
        })
        .collect();
    let a = &d.answer;
    let view = AnswerView {
        heading: a.heading.clone().unwrap_or_else(|| "(no heading)".into()),
        reference: reference(a.house.as_deref(), a.uin.as_deref()),
        asked_by: a.asking_member.clone(),
        answered_by: a.answering_member.clone(),
        body: a.answering_body.clone(),
        tabled: a.date_tabled.map(|d| d.to_string()),
        answered: a.date_answered.map(|d| d.to_string()),
        corrected: a.date_corrected.map(|d| d.to_string()),
        url: a.url.clone(),
        question: d.question_text.clone().filter(|q| !q.trim().is_empty()),
        changes: changes
            .iter()
            .map(|c| ChangeView {
                change: c.change.clone(),
                statistic_id: c.statistic_id,
                statistic: c.statistic.clone(),
                cell: c.cell.clone(),
                period: c.period.clone(),
                raw: c.raw.clone(),
                previous_raw: c.previous_raw.clone(),
            })
            .collect(),
        tables,
        versions: d
            .answer_versions
            .iter()
            .map(|v| (v.stored_at.clone(), v.is_holding, v.is_correction))
            .collect(),
    };
    Ok(page(StatusCode::OK, &view))
}
