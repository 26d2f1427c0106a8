//! Plain shared data: the API's records as pqwatch reads them, and the documents it stores.
//!
//! Nothing here knows about HTTP, SQL, HTML parsing or email. Every field of an API record may be
//! null or missing (see the contract), so every field is an `Option` and unknown fields are ignored.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The two kinds of item pqwatch ingests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// A written question and its answer (`/api/writtenquestions/questions`).
    Question,
    /// A written ministerial statement (`/api/writtenstatements/statements`).
    Statement,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Question => "question",
            DocKind::Statement => "statement",
        }
    }

    pub fn parse(s: &str) -> Option<DocKind> {
        match s {
            "question" => Some(DocKind::Question),
            "statement" => Some(DocKind::Statement),
            _ => None,
        }
    }
}

/// A member as the API gives it with `expandMember=true`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Member {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub list_as: Option<String>,
    pub party: Option<String>,
}

/// The API's Question object (docs/api-contract.md), every field optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApiQuestion {
    pub id: Option<i64>,
    pub uin: Option<String>,
    pub house: Option<String>,
    pub date_tabled: Option<String>,
    pub date_for_answer: Option<String>,
    pub date_answered: Option<String>,
    pub date_holding_answer: Option<String>,
    pub date_answer_corrected: Option<String>,
    pub question_text: Option<String>,
    pub heading: Option<String>,
    pub answer_text: Option<String>,
    pub original_answer_text: Option<String>,
    pub comparable_answer_text: Option<String>,
    pub answer_is_correction: Option<bool>,
    pub answer_is_holding: Option<bool>,
    pub answering_body_id: Option<i64>,
    pub answering_body_name: Option<String>,
    pub asking_member_id: Option<i64>,
    pub answering_member_id: Option<i64>,
    pub asking_member: Option<Member>,
    pub answering_member: Option<Member>,
    pub is_withdrawn: Option<bool>,
    pub attachment_count: Option<i64>,
}

/// The API's written statement object, every field optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApiStatement {
    pub id: Option<i64>,
    pub uin: Option<String>,
    pub house: Option<String>,
    pub date_made: Option<String>,
    pub title: Option<String>,
    pub text: Option<String>,
    pub answering_body_id: Option<i64>,
    pub answering_body_name: Option<String>,
    pub member_id: Option<i64>,
    pub member_name: Option<String>,
    pub member: Option<Member>,
}

/// One item of either kind, reduced to what pqwatch works with, plus the record exactly as the API
/// sent it (`raw`), so that every contract field (and any the API adds later) is kept.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Document {
    pub kind: DocKind,
    pub api_id: i64,
    pub uin: Option<String>,
    pub house: Option<String>,
    pub heading: Option<String>,
    pub question_text: Option<String>,
    /// The answer (or statement) as HTML.
    pub body_html: String,
    pub date_tabled: Option<NaiveDate>,
    /// The day answered (questions) or made (statements).
    pub date_answered: Option<NaiveDate>,
    pub date_corrected: Option<NaiveDate>,
    pub is_holding: bool,
    pub is_correction: bool,
    pub answering_body_id: Option<i64>,
    pub answering_body_name: Option<String>,
    pub asking_member: Option<String>,
    pub answering_member: Option<String>,
    pub raw: serde_json::Value,
}

/// Why a record from the API could not be turned into a [`Document`].
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RecordError {
    #[error("record has no `value` object")]
    NoValue,
    #[error("record does not have the contract's shape: {0}")]
    Shape(String),
    #[error("record has no numeric `id`")]
    NoId,
}

/// The date part of the API's zone-less date-times (`2024-01-29T00:00:00`), which are UK dates.
pub fn parse_api_date(s: Option<&str>) -> Option<NaiveDate> {
    let s = s?;
    let day = s.get(..10)?;
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

fn member_name(member: Option<&Member>, fallback: Option<&str>) -> Option<String> {
    member
        .and_then(|m| m.name.clone().or_else(|| m.list_as.clone()))
        .or_else(|| fallback.map(str::to_owned))
}

impl Document {
    /// Reads one `{ "value": {...} }` record of the given kind.
    pub fn from_record(kind: DocKind, record: &serde_json::Value) -> Result<Document, RecordError> {
        let value = record.get("value").unwrap_or(record);
        if !value.is_object() {
            return Err(RecordError::NoValue);
        }
        match kind {
            DocKind::Question => {
                let q: ApiQuestion = serde_json::from_value(value.clone())
                    .map_err(|e| RecordError::Shape(e.to_string()))?;
                Ok(Document {
                    kind,
                    api_id: q.id.ok_or(RecordError::NoId)?,
                    uin: q.uin,
                    house: q.house,
                    heading: q.heading,
                    question_text: q.question_text,
                    body_html: q.answer_text.unwrap_or_default(),
                    date_tabled: parse_api_date(q.date_tabled.as_deref()),
                    date_answered: parse_api_date(q.date_answered.as_deref()),
                    date_corrected: parse_api_date(q.date_answer_corrected.as_deref()),
                    is_holding: q.answer_is_holding.unwrap_or(false),
                    is_correction: q.answer_is_correction.unwrap_or(false),
                    answering_body_id: q.answering_body_id,
                    answering_body_name: q.answering_body_name,
                    asking_member: member_name(q.asking_member.as_ref(), None),
                    answering_member: member_name(q.answering_member.as_ref(), None),
                    raw: value.clone(),
                })
            }
            DocKind::Statement => {
                let s: ApiStatement = serde_json::from_value(value.clone())
                    .map_err(|e| RecordError::Shape(e.to_string()))?;
                let made = parse_api_date(s.date_made.as_deref());
                Ok(Document {
                    kind,
                    api_id: s.id.ok_or(RecordError::NoId)?,
                    uin: s.uin,
                    house: s.house,
                    heading: s.title,
                    question_text: None,
                    body_html: s.text.unwrap_or_default(),
                    date_tabled: made,
                    date_answered: made,
                    date_corrected: None,
                    is_holding: false,
                    is_correction: false,
                    answering_body_id: s.answering_body_id,
                    answering_body_name: s.answering_body_name,
                    asking_member: None,
                    answering_member: member_name(s.member.as_ref(), s.member_name.as_deref()),
                    raw: value.clone(),
                })
            }
        }
    }

    /// The official public page, the link every alert and listing carries.
    pub fn official_url(&self) -> Option<String> {
        official_url(self.kind, self.date_tabled, self.uin.as_deref())
    }
}

/// `https://questions-statements.parliament.uk/written-questions/detail/{dateTabled}/{uin}`, or the
/// written-statements equivalent.
pub fn official_url(kind: DocKind, date: Option<NaiveDate>, uin: Option<&str>) -> Option<String> {
    let (date, uin) = (date?, uin?);
    let section = match kind {
        DocKind::Question => "written-questions",
        DocKind::Statement => "written-statements",
    };
    Some(format!(
        "https://questions-statements.parliament.uk/{section}/detail/{}/{uin}",
        date.format("%Y-%m-%d")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_with_nulls_and_unknown_fields_still_reads() {
        let rec = serde_json::json!({"value": {"id": 7, "uin": null, "heading": null,
            "brandNewField": {"x": 1}, "dateAnswered": "2024-02-01T00:00:00", "answerText": null}});
        let doc = Document::from_record(DocKind::Question, &rec).unwrap();
        assert_eq!(doc.api_id, 7);
        assert_eq!(doc.date_answered, NaiveDate::from_ymd_opt(2024, 2, 1));
        assert_eq!(doc.body_html, "");
        assert_eq!(doc.raw["brandNewField"]["x"], 1);
    }

    #[test]
    fn a_record_whose_id_is_a_string_is_a_shape_error() {
        let rec = serde_json::json!({"value": {"id": "seven"}});
        assert!(matches!(
            Document::from_record(DocKind::Question, &rec),
            Err(RecordError::Shape(_))
        ));
        let rec = serde_json::json!({"value": {"uin": "1"}});
        assert_eq!(
            Document::from_record(DocKind::Question, &rec),
            Err(RecordError::NoId)
        );
    }

    #[test]
    fn the_official_link_uses_the_tabling_date_and_uin() {
        let url = official_url(
            DocKind::Question,
            NaiveDate::from_ymd_opt(2024, 1, 29),
            Some("12345"),
        );
        assert_eq!(
            url.as_deref(),
            Some("https://questions-statements.parliament.uk/written-questions/detail/2024-01-29/12345")
        );
    }
}
