//! Ingest against a real HTTP server on 127.0.0.1: paging, shortened list text, corrections,
//! holding answers, faults and retries, malformed records, and the cursor rule.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use pqwatch::model::DocKind;
use pqwatch::pipeline::{run_once, Deps, Mode, PassReport};
use pqwatch::progress::Progress;
use serde_json::{json, Value};

use crate::support::fake_api::{FakeApi, Fault};
use crate::support::{corpus_question, deps, question, settings};

const CORPUS: &[&str] = &[
    "2015-03-19-serious-assaults-on-staff-london-prisons",
    "2015-12-noms-staff-dismissed-corruption",
    "2017-02-28-prisons-corruption-staff",
    "2020-staff-hospitalised-urine-excreta",
    "2024-02-01-prison-officers-dismissal",
    "2024-assaults-on-staff-maidstone-huntercombe-morton-hall",
    "2025-probation-spend-greater-manchester-oldham",
];

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn noon(s: &str) -> DateTime<Utc> {
    let d = day(s);
    Utc.from_utc_datetime(&d.and_hms_opt(12, 0, 0).unwrap())
}

/// The seven corpus answers, answered on consecutive days from 2024-02-05, plus the three real
/// list records of the API samples (DEFRA answers that must not match).
fn world() -> Vec<Value> {
    let mut qs: Vec<Value> = CORPUS
        .iter()
        .enumerate()
        .map(|(i, name)| corpus_question(name, 100 + i as i64, &format!("2024-02-{:02}", 5 + i)))
        .collect();
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::fixture_path(
            "api/list-page-shortened-answers.json",
        ))
        .unwrap(),
    )
    .unwrap();
    for r in sample["results"].as_array().unwrap() {
        let mut v = r["value"].clone();
        v["dateAnswered"] = json!("2024-02-06T00:00:00");
        qs.push(v);
    }
    qs
}

async fn backfill(deps: &Deps, from: &str, to: &str) -> PassReport {
    let mode = Mode::Backfill {
        from: day(from),
        to: day(to),
    };
    run_once(deps, mode, noon("2024-03-01"), &Progress::quiet())
        .await
        .unwrap()
}

async fn steady(deps: &Deps, today: &str) -> PassReport {
    run_once(deps, Mode::Steady, noon(today), &Progress::quiet())
        .await
        .unwrap()
}

fn counts(deps: &Deps) -> (i64, i64, i64) {
    deps.store.lock().unwrap().counts().unwrap()
}

fn cursor(deps: &Deps) -> Option<NaiveDate> {
    deps.store
        .lock()
        .unwrap()
        .cursor(DocKind::Question)
        .unwrap()
}

#[tokio::test]
async fn a_backfill_pages_through_every_answer_and_stores_only_the_matching_ones() {
    let api = FakeApi::start();
    api.set_questions(world());
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&settings(&api.base_url(), dir.path()));

    let r = backfill(&deps, "2024-02-01", "2024-02-29").await;

    assert!(r.complete(), "{r:?}");
    assert_eq!(r.seen, 10);
    assert_eq!(r.stored_new, 7, "{r:?}");
    // The three DEFRA answers show no keyword in their list records and are not read in full.
    assert_eq!(r.skipped_by_prefilter, 3, "{r:?}");
    assert_eq!(r.detail_requests, 7, "{r:?}");
    assert_eq!(counts(&deps), (7, 7, 7));
    // Page size 3 over 10 answers: several list pages were requested.
    let list_pages = api
        .requests()
        .iter()
        .filter(|p| p.contains("answeredWhenFrom") && p.contains("skip=3"))
        .count();
    assert!(list_pages >= 1);
}

#[tokio::test]
async fn the_full_answer_is_fetched_so_a_keyword_beyond_the_shortened_text_still_matches() {
    let api = FakeApi::start();
    let long_preamble = "The department keeps these figures under review. ".repeat(10);
    let html = format!("<p>{long_preamble}</p><p>Figures for HMP Leeds are below.</p>");
    api.set_questions(vec![question(1, "2024-02-05", "Staff: Assaults", &html)]);
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&settings(&api.base_url(), dir.path()));

    backfill(&deps, "2024-02-01", "2024-02-29").await;

    let d = deps
        .store
        .lock()
        .unwrap()
        .answer_detail(DocKind::Question, 1)
        .unwrap()
        .expect("stored");
    assert_eq!(d.answer.matched_keywords, vec!["HMP"]);
    assert_eq!(d.answer_versions[0].answer_html, html);
    assert!(api.requests().iter().any(|p| p.ends_with("/questions/1")));
}

#[tokio::test]
async fn re_running_the_same_window_stores_nothing_twice_and_fetches_no_details() {
    let api = FakeApi::start();
    api.set_questions(world());
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&settings(&api.base_url(), dir.path()));
    steady(&deps, "2024-02-12").await;
    assert_eq!(counts(&deps).0, 7);
    api.clear_requests();

    let r = steady(&deps, "2024-02-12").await;

    assert_eq!((r.stored_new, r.stored_versions, r.fetched), (0, 0, 0));
    assert_eq!(counts(&deps), (7, 7, 7));
    assert!(
        api.requests().iter().all(|p| p.contains("skip=")),
        "only list pages: {:?}",
        api.requests()
    );
}

#[tokio::test]
async fn a_correction_arriving_later_is_stored_as_a_new_version() {
    let api = FakeApi::start();
    api.set_questions(world());
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&settings(&api.base_url(), dir.path()));
    steady(&deps, "2024-02-12").await;

    // Corrected a month later: only the correctedWhen query can find it.
    api.update_question(104, |q| {
        let text = q["answerText"]
            .as_str()
            .unwrap()
            .replace("<td>21</td>", "<td>23</td>");
        q["originalAnswerText"] = q["answerText"].clone();
        q["answerText"] = json!(text);
        q["answerIsCorrection"] = json!(true);
        q["dateAnswerCorrected"] = json!("2024-03-14T00:00:00");
    });
    let r = steady(&deps, "2024-03-14").await;

    assert_eq!(r.stored_versions, 1, "{r:?}");
    let d = deps
        .store
        .lock()
        .unwrap()
        .answer_detail(DocKind::Question, 104)
        .unwrap()
        .unwrap();
    assert_eq!(d.answer_versions.len(), 2);
    assert!(!d.answer_versions[0].is_correction);
    assert!(d.answer_versions[1].is_correction);
    assert!(d.answer_versions[1].answer_html.contains("<td>23</td>"));
    assert_eq!(d.answer.date_corrected, Some(day("2024-03-14")));
    assert!(api
        .requests()
        .iter()
        .any(|p| p.contains("correctedWhenFrom")));
}

#[tokio::test]
async fn a_holding_answer_later_replaced_keeps_both_versions() {
    let api = FakeApi::start();
    let mut q = question(
        5,
        "2024-02-05",
        "Prisons: Drones",
        "<p>I will write to the honourable member.</p>",
    );
    q["answerIsHolding"] = json!(true);
    api.set_questions(vec![q]);
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&settings(&api.base_url(), dir.path()));
    steady(&deps, "2024-02-05").await;

    api.update_question(5, |q| {
        q["answerIsHolding"] = json!(false);
        q["dateHoldingAnswer"] = json!("2024-02-05T00:00:00");
        q["dateAnswered"] = json!("2024-02-07T00:00:00");
        q["answerText"] = json!("<table><tr><th>Year</th><th>Drone incidents</th></tr><tr><td>2023</td><td>1,214</td></tr></table>");
    });
    steady(&deps, "2024-02-07").await;

    let d = deps
        .store
        .lock()
        .unwrap()
        .answer_detail(DocKind::Question, 5)
        .unwrap()
        .unwrap();
    let holding: Vec<bool> = d.answer_versions.iter().map(|v| v.is_holding).collect();
    assert_eq!(holding, vec![true, false]);
    assert_eq!(d.answer.date_answered, Some(day("2024-02-07")));
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_retried() {
    let api = FakeApi::start();
    api.set_questions(world());
    api.fail_next(
        "questions?",
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&settings(&api.base_url(), dir.path()));

    let t = Instant::now();
    let r = backfill(&deps, "2024-02-01", "2024-02-07").await;

    assert!(r.complete(), "{r:?}");
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(counts(&deps).0, 3);
}

#[tokio::test]
async fn a_500_then_success_and_a_timeout_then_success_both_store_the_answer() {
    let api = FakeApi::start();
    api.set_questions(world());
    api.fail_next("/questions/100", Fault::Status(500));
    api.fail_next("/questions/101", Fault::Stall(Duration::from_millis(1500)));
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&settings(&api.base_url(), dir.path()));

    let r = backfill(&deps, "2024-02-01", "2024-02-29").await;

    assert!(r.complete(), "{r:?}");
    assert_eq!(counts(&deps).0, 7);
    let tries = |p: &str| api.requests().iter().filter(|r| r.ends_with(p)).count();
    assert_eq!(tries("/questions/100"), 2);
    assert_eq!(tries("/questions/101"), 2);
}

#[tokio::test]
async fn a_malformed_record_is_held_and_the_cursor_stays_before_it_until_it_is_stored() {
    let api = FakeApi::start();
    let mut qs = world();
    // Answered 2024-02-07; its id is not a number.
    qs[2]["id"] = json!("102x");
    api.set_questions(qs);
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&settings(&api.base_url(), dir.path()));

    let r = steady(&deps, "2024-02-12").await;

    assert_eq!(r.held, 1, "{r:?}");
    assert!(!r.complete());
    assert_eq!(counts(&deps).0, 6, "the rest of the page was stored");
    assert_eq!(cursor(&deps), Some(day("2024-02-06")));

    // Fixed at the source: the next pass reaches back far enough to store it.
    api.state.lock().unwrap().questions[2]["id"] = json!(102);
    let r = steady(&deps, "2024-02-12").await;
    assert!(r.complete(), "{r:?}");
    assert_eq!(counts(&deps).0, 7);
    assert_eq!(cursor(&deps), Some(day("2024-02-12")));
}

#[tokio::test]
async fn a_held_record_is_stored_on_a_later_pass_and_then_the_cursor_moves_on() {
    let api = FakeApi::start();
    api.set_questions(world());
    // Every request for 102's detail fails for now.
    api.state
        .lock()
        .unwrap()
        .sticky
        .push(("/questions/102".into(), Fault::Status(503)));
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&settings(&api.base_url(), dir.path()));

    let r = steady(&deps, "2024-02-12").await;
    assert_eq!((r.held, counts(&deps).0), (1, 6), "{r:?}");
    assert_eq!(cursor(&deps), Some(day("2024-02-06")));

    api.state.lock().unwrap().sticky.clear();
    let r = steady(&deps, "2024-02-12").await;
    assert!(r.complete(), "{r:?}");
    assert_eq!(counts(&deps).0, 7);
    assert_eq!(cursor(&deps), Some(day("2024-02-12")));
}

#[tokio::test]
async fn a_detail_that_answers_404_is_skipped_without_holding_the_cursor() {
    let api = FakeApi::start();
    api.set_questions(world());
    api.state
        .lock()
        .unwrap()
        .sticky
        .push(("/questions/103".into(), Fault::Status(404)));
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&settings(&api.base_url(), dir.path()));

    let r = steady(&deps, "2024-02-12").await;

    assert_eq!((r.skipped, r.held), (1, 0), "{r:?}");
    assert_eq!(counts(&deps).0, 6);
    assert_eq!(cursor(&deps), Some(day("2024-02-12")));
    let tries = api
        .requests()
        .iter()
        .filter(|p| p.ends_with("/questions/103"))
        .count();
    assert_eq!(tries, 1, "a 404 is not retried");
}

#[tokio::test]
async fn a_list_page_that_keeps_failing_leaves_the_cursor_where_it_was() {
    let api = FakeApi::start();
    api.set_questions(world());
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&settings(&api.base_url(), dir.path()));
    steady(&deps, "2024-02-06").await;
    assert_eq!(cursor(&deps), Some(day("2024-02-06")));

    api.state
        .lock()
        .unwrap()
        .sticky
        .push(("skip=3".into(), Fault::Garbage));
    let r = steady(&deps, "2024-02-12").await;

    assert_eq!(r.pages_failed, 1, "{r:?}");
    assert_eq!(cursor(&deps), Some(day("2024-02-06")));
}

#[tokio::test]
async fn unknown_extra_fields_are_ignored_and_kept_in_the_stored_record() {
    let api = FakeApi::start();
    let mut q = corpus_question("2024-02-01-prison-officers-dismissal", 9, "2024-02-01");
    q["someFieldAddedIn2027"] = json!({"nested": [1, 2]});
    q["answeringMember"] = Value::Null;
    api.set_questions(vec![q]);
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&settings(&api.base_url(), dir.path()));

    let r = backfill(&deps, "2024-02-01", "2024-02-01").await;

    assert!(r.complete(), "{r:?}");
    let d = deps
        .store
        .lock()
        .unwrap()
        .answer_detail(DocKind::Question, 9)
        .unwrap()
        .unwrap();
    assert_eq!(d.answer.answering_member, None);
    assert_eq!(d.answer.uin.as_deref(), Some("10009"));
}

#[tokio::test]
async fn a_finished_backfill_range_is_not_listed_again() {
    let api = FakeApi::start();
    api.set_questions(world());
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&settings(&api.base_url(), dir.path()));
    backfill(&deps, "2024-02-01", "2024-02-29").await;
    api.clear_requests();

    backfill(&deps, "2024-02-01", "2024-02-29").await;

    assert!(api.requests().is_empty(), "{:?}", api.requests());
}

#[tokio::test]
async fn written_statements_are_ingested_the_same_way() {
    let api = FakeApi::start();
    api.state.lock().unwrap().statements = vec![
        json!({"id": 77, "uin": "HCWS200", "house": "Commons", "dateMade": "2024-02-06T00:00:00",
               "title": "Prison Capacity", "text": "<p>The prison population stands at 88,220.</p>",
               "answeringBodyId": 54, "answeringBodyName": "Ministry of Justice",
               "memberId": 4861, "memberName": "Edward Argar", "attachments": [],
               "linkedStatements": []}),
        json!({"id": 78, "uin": "HCWS201", "house": "Commons", "dateMade": "2024-02-06T00:00:00",
               "title": "Bus Services", "text": "<p>Funding for buses.</p>", "answeringBodyId": 27}),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&api.base_url(), dir.path());
    s.api.statements = true;
    let deps = deps(&s);

    let r = backfill(&deps, "2024-02-01", "2024-02-07").await;

    assert!(r.complete(), "{r:?}");
    let store = deps.store.lock().unwrap();
    let d = store
        .answer_detail(DocKind::Statement, 77)
        .unwrap()
        .unwrap();
    assert_eq!(d.answer.heading.as_deref(), Some("Prison Capacity"));
    assert_eq!(d.answer.answering_member.as_deref(), Some("Edward Argar"));
    assert_eq!(
        d.answer.url.as_deref(),
        Some("https://questions-statements.parliament.uk/written-statements/detail/2024-02-06/HCWS200")
    );
    assert!(store
        .answer_detail(DocKind::Statement, 78)
        .unwrap()
        .is_none());
    assert!(api
        .requests()
        .iter()
        .any(|p| p.contains("madeWhenFrom=2024-02-01")));
}
