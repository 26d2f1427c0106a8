//! `/feeds/changes.atom` (and `?keyword=drones`): an Atom feed of the latest answers with new or
//! revised figures, one entry per answer version. Every text is escaped by the template engine.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::pages::{encode, reference, what_changed};
use crate::web::{AppState, PageError};

const ENTRIES: usize = 50;

#[derive(Deserialize, Default)]
pub struct FeedQuery {
    #[serde(default)]
    pub keyword: String,
}

pub struct Entry {
    pub id: String,
    pub title: String,
    pub updated: String,
    pub link: String,
    pub official: Option<String>,
    pub summary: String,
}

#[derive(Template)]
#[template(path = "changes.xml")]
pub struct Feed {
    pub feed_id: String,
    pub title: String,
    pub updated: String,
    pub self_url: String,
    pub base: String,
    pub entries: Vec<Entry>,
}

pub async fn changes(
    State(web): State<AppState>,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(q) = query.unwrap_or_default();
    let wanted = q.keyword.trim().to_owned();
    // A keyword outside the watch list matches nothing: an empty feed, not every change.
    let keyword = (!wanted.is_empty()).then(|| {
        web.keywords
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&wanted))
            .cloned()
            .unwrap_or_else(|| wanted.clone())
    });
    let k = keyword.clone();
    let rows = web
        .read(move |s| s.recent_answer_changes(k.as_deref(), ENTRIES))
        .await?;
    let base = if web.public_base_url.is_empty() {
        "http://localhost".to_owned()
    } else {
        web.public_base_url.clone()
    };
    let self_url = match &keyword {
        Some(k) => format!("{base}/feeds/changes.atom?keyword={}", encode(k)),
        None => format!("{base}/feeds/changes.atom"),
    };
    let entries: Vec<Entry> = rows
        .iter()
        .map(|a| {
            let heading = a.heading.clone().unwrap_or_else(|| "(no heading)".into());
            let titles: Vec<&str> = a.statistics.iter().map(|(_, t)| t.as_str()).collect();
            Entry {
                id: format!("{base}/answers/{}#version-{}", a.question_id, a.version),
                title: format!("{}: {heading}", what_changed(a)),
                updated: a.recorded_at.clone(),
                link: format!("{base}/answers/{}", a.question_id),
                official: a.url.clone(),
                summary: format!(
                    "{}{}{}: {} in {}.",
                    reference(a.house.as_deref(), a.uin.as_deref()),
                    a.date_answered
                        .map(|d| format!(", answered {d}"))
                        .unwrap_or_default(),
                    if a.is_correction { " (correction)" } else { "" },
                    what_changed(a),
                    titles.join("; ")
                ),
            }
        })
        .collect();
    let updated = entries
        .iter()
        .map(|e| e.updated.clone())
        .max()
        .unwrap_or_else(|| "2000-01-01T00:00:00+00:00".into());
    let feed = Feed {
        feed_id: self_url.clone(),
        title: match &keyword {
            Some(k) => format!("pqwatch: new and revised figures on {k}"),
            None => "pqwatch: new and revised figures".into(),
        },
        updated,
        self_url,
        base,
        entries,
    };
    match feed.render() {
        Ok(xml) => Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/atom+xml; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            xml,
        )
            .into_response()),
        Err(e) => Err(PageError::Internal(e.to_string())),
    }
}
