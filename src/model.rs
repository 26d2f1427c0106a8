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
    /// A date that is not a real day (2024-02-30), not in the API's form, or outside any
    /// plausible range (0001-01-01, 9999-12-31): never stored, never silently dropped.
    #[error("`{field}` {value:?} {problem}")]
    Date {
        field: &'static str,
        value: String,
        problem: DateProblem,
    },
}

/// What is wrong with a date the API sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DateProblem {
    #[error("is not a date of the form YYYY-MM-DDThh:mm:ss")]
    NotADate,
    #[error("is not a day of the calendar")]
    Impossible,
    #[error("is outside any plausible range ({EARLIEST_DATE} to {LATEST_DATE})")]
    Implausible,
}

/// The earliest and latest days a Parliament record can plausibly carry. Written answers and
/// statements go back to the 19th century in Hansard; nothing is dated after this century.
pub const EARLIEST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1800, 1, 1) {
    Some(d) => d,
    None => panic!("a valid constant date"),
};
pub const LATEST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2099, 12, 31) {
    Some(d) => d,
    None => panic!("a valid constant date"),
};

/// The date part of the API's zone-less date-times (`2024-01-29T00:00:00`), which are UK dates.
/// `None` (or a missing field) is no date; anything else must be a real, plausible day.
pub fn parse_api_date(s: Option<&str>) -> Result<Option<NaiveDate>, DateProblem> {
    let Some(s) = s else { return Ok(None) };
    let day = s.get(..10).ok_or(DateProblem::NotADate)?;
    let rest = &s[10..];
    let shape_ok = day.len() == 10
        && day.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
        && (rest.is_empty() || rest.starts_with('T'));
    if !shape_ok {
        return Err(DateProblem::NotADate);
    }
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| DateProblem::Impossible)?;
    if !(EARLIEST_DATE..=LATEST_DATE).contains(&date) {
        return Err(DateProblem::Implausible);
    }
    Ok(Some(date))
}

/// A date field of a record, read by [`parse_api_date`], its problem naming the field.
fn date_field(field: &'static str, s: Option<&str>) -> Result<Option<NaiveDate>, RecordError> {
    parse_api_date(s).map_err(|problem| RecordError::Date {
        field,
        value: s.unwrap_or_default().chars().take(40).collect(),
        problem,
    })
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
                    date_tabled: date_field("dateTabled", q.date_tabled.as_deref())?,
                    date_answered: date_field("dateAnswered", q.date_answered.as_deref())?,
                    date_corrected: date_field(
                        "dateAnswerCorrected",
                        q.date_answer_corrected.as_deref(),
                    )?,
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
                let made = date_field("dateMade", s.date_made.as_deref())?;
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
    fn impossible_implausible_and_malformed_dates_are_problems_not_values_or_nulls() {
        let read = |field: &str, date: &str| {
            let mut v = serde_json::json!({"id": 7, "dateAnswered": "2024-02-01T00:00:00"});
            v[field] = serde_json::json!(date);
            Document::from_record(DocKind::Question, &serde_json::json!({ "value": v }))
        };
        for (field, date, problem) in [
            (
                "dateAnswered",
                "2024-02-30T00:00:00",
                DateProblem::Impossible,
            ),
            (
                "dateTabled",
                "0001-01-01T00:00:00",
                DateProblem::Implausible,
            ),
            (
                "dateAnswerCorrected",
                "9999-12-31T00:00:00",
                DateProblem::Implausible,
            ),
            ("dateAnswered", "2024-13-01", DateProblem::Impossible),
            ("dateTabled", "yesterday", DateProblem::NotADate),
            ("dateTabled", "2024-1-5T00:00:00", DateProblem::NotADate),
            ("dateTabled", "2024-01-05 junk", DateProblem::NotADate),
        ] {
            match read(field, date) {
                Err(RecordError::Date {
                    field: f,
                    problem: p,
                    ..
                }) => assert_eq!((f, p), (field, problem), "{date}"),
                other => panic!("{field} {date}: {other:?}"),
            }
        }
        let e = read("dateTabled", "0001-01-01T00:00:00")
            .unwrap_err()
            .to_string();
        assert!(e.contains("dateTabled") && e.contains("0001-01-01"), "{e}");
        // A leap day, a date alone, and the edges of the plausible range are fine.
        let ok = read("dateAnswered", "2024-02-29T00:00:00").unwrap();
        assert_eq!(ok.date_answered, NaiveDate::from_ymd_opt(2024, 2, 29));
        assert!(read("dateTabled", "2024-02-29").is_ok());
        assert!(read("dateTabled", "1800-01-01T00:00:00").is_ok());
        assert!(read("dateTabled", "2099-12-31T00:00:00").is_ok());
        let st = serde_json::json!({"value": {"id": 1, "dateMade": "2023-02-29T00:00:00"}});
        assert!(matches!(
            Document::from_record(DocKind::Statement, &st),
            Err(RecordError::Date {
                field: "dateMade",
                ..
            })
        ));
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
