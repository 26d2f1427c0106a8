//! Records that can never be read, and bodies too big to take, against the stand-in API and
//! through the real binary: held for `[watch] quarantine_after` passes, then quarantined (kept
//! raw, listed, counted by `status`) so the cursor moves on; tried again when the API changes
//! them. Bodies over `[api] max_body_bytes` are cut off as they stream in.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use pqwatch::config::Settings;
use pqwatch::model::DocKind;
use pqwatch::pipeline::{run_once, Deps, Mode, PassReport};
use pqwatch::progress::Progress;
use serde_json::{json, Value};

use crate::support::fake_api::{FakeApi, Fault};
use crate::support::{self, deps, question, settings};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn noon(s: &str) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day(s).and_hms_opt(12, 0, 0).unwrap())
}

/// Five prison answers, ids 100..=104, answered 2024-02-05..=09.
fn world() -> Vec<Value> {
    (0..5)
        .map(|i| {
            question(
                100 + i,
                &format!("2024-02-{:02}", 5 + i),
                "Prisons: Staff",
                &format!("<p>Prison officers in post: {}</p>", 1000 + i),
            )
        })
        .collect()
}

/// One steady pass on 2024-02-12, each at its own time (a failure counts once per pass).
async fn steady(deps: &Deps) -> PassReport {
    static PASSES: AtomicI64 = AtomicI64::new(0);
    let now =
        noon("2024-02-12") + chrono::Duration::seconds(PASSES.fetch_add(1, Ordering::Relaxed));
    run_once(deps, Mode::Steady, now, &Progress::quiet())
        .await
        .unwrap()
}

/// The shipped settings pointed at `api`, with an overlap that lists the whole world on every
/// pass, so that a record the cursor has passed is still listed again.
fn relisting(api: &FakeApi, dir: &Path) -> Settings {
    let mut s = settings(&api.base_url(), dir);
    s.watch.overlap_days = 10;
    s
}

fn cursor(deps: &Deps) -> Option<NaiveDate> {
    deps.store
        .lock()
        .unwrap()
        .cursor(DocKind::Question)
        .unwrap()
}

fn stored(deps: &Deps) -> i64 {
    deps.store.lock().unwrap().counts().unwrap().0
}

fn quarantined(deps: &Deps) -> Vec<pqwatch::store::QuarantinedRecord> {
    deps.store.lock().unwrap().quarantined().unwrap()
}

#[tokio::test]
async fn a_record_without_a_numeric_id_is_held_three_passes_then_quarantined_and_the_cursor_moves_on(
) {
    let api = FakeApi::start();
    let mut qs = world();
    qs[2]["id"] = json!("102x"); // answered 2024-02-07
    api.set_questions(qs);
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&relisting(&api, dir.path()));

    for attempt in 1..=2 {
        let r = steady(&deps).await;
        assert_eq!((r.held, r.quarantined), (1, 0), "pass {attempt}: {r:?}");
        assert!(!r.complete());
        assert_eq!(cursor(&deps), Some(day("2024-02-06")), "pass {attempt}");
        assert!(quarantined(&deps).is_empty());
    }
    let r = steady(&deps).await;
    assert_eq!((r.held, r.quarantined), (0, 1), "{r:?}");
    assert!(r.complete(), "{r:?}");
    assert_eq!(
        cursor(&deps),
        Some(day("2024-02-12")),
        "the cursor moved on"
    );
    assert_eq!(stored(&deps), 4);
    let q = quarantined(&deps);
    assert_eq!(q.len(), 1);
    assert_eq!((q[0].id, q[0].attempts), (None, 3));
    assert_eq!(q[0].day, Some(day("2024-02-07")));
    assert_eq!(q[0].uin.as_deref(), Some("10102"));
    assert_eq!(q[0].raw["id"], "102x", "kept as the API sent it");
    assert_eq!(q[0].raw["heading"], "Prisons: Staff");
    assert!(q[0].reason.contains("record"), "{}", q[0].reason);

    // Unchanged, it is not tried again and holds nothing.
    let r = steady(&deps).await;
    assert!(r.complete(), "{r:?}");
    assert_eq!((r.still_quarantined, r.held), (1, 0), "{r:?}");

    // Fixed at the source: its fingerprint changed, so it is read, stored and released.
    api.state.lock().unwrap().questions[2]["id"] = json!(102);
    let r = steady(&deps).await;
    assert!(r.complete(), "{r:?}");
    assert_eq!(stored(&deps), 5);
    assert!(quarantined(&deps).is_empty());
}

#[tokio::test]
async fn impossible_and_implausible_dates_are_quarantined_never_stored_or_nulled() {
    let api = FakeApi::start();
    let mut qs = world();
    // An impossible day sorts inside the window the API is asked for (2024-02-01..03-02).
    qs[1]["dateAnswered"] = json!("2024-02-30T00:00:00");
    qs[2]["dateTabled"] = json!("0001-01-01T00:00:00");
    qs[3]["dateTabled"] = json!("9999-12-31T00:00:00");
    api.set_questions(qs);
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&api.base_url(), dir.path());
    s.watch.quarantine_after = 1;
    s.watch.first_poll_days = 30;
    let deps = deps(&s);

    let r = run_once(&deps, Mode::Steady, noon("2024-03-02"), &Progress::quiet())
        .await
        .unwrap();
    assert_eq!((r.quarantined, r.held), (3, 0), "{r:?}");
    assert!(r.complete());
    assert_eq!(stored(&deps), 2);
    let mut reasons: Vec<(Option<i64>, String)> = quarantined(&deps)
        .into_iter()
        .map(|q| (q.id, q.reason))
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 3);
    assert!(reasons[0].1.contains("dateAnswered") && reasons[0].1.contains("2024-02-30"));
    assert!(
        reasons[0].1.contains("not a day of the calendar"),
        "{reasons:?}"
    );
    assert!(reasons[1].1.contains("dateTabled") && reasons[1].1.contains("0001-01-01"));
    assert!(reasons[2].1.contains("9999-12-31") && reasons[2].1.contains("plausible"));
    assert_eq!(
        reasons.iter().map(|r| r.0).collect::<Vec<_>>(),
        [Some(101), Some(102), Some(103)]
    );
}

#[tokio::test]
async fn a_detail_that_is_never_the_contracts_json_is_quarantined_after_its_attempts() {
    let api = FakeApi::start();
    api.set_questions(world());
    api.state
        .lock()
        .unwrap()
        .sticky
        .push(("/questions/103".into(), Fault::Garbage));
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&api.base_url(), dir.path());
    s.watch.quarantine_after = 2;
    let deps = deps(&s);

    let r = steady(&deps).await;
    assert_eq!((r.held, r.quarantined), (1, 0), "{r:?}");
    assert_eq!(cursor(&deps), Some(day("2024-02-07")));
    let r = steady(&deps).await;
    assert_eq!((r.held, r.quarantined), (0, 1), "{r:?}");
    assert_eq!(cursor(&deps), Some(day("2024-02-12")));
    let q = quarantined(&deps);
    assert_eq!(q[0].id, Some(103));
    assert!(
        q[0].reason.contains("not the contract's JSON"),
        "{}",
        q[0].reason
    );
}

#[tokio::test]
async fn an_outage_is_held_for_ever_never_quarantined() {
    let api = FakeApi::start();
    api.set_questions(world());
    api.state
        .lock()
        .unwrap()
        .sticky
        .push(("/questions/103".into(), Fault::Status(503)));
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&api.base_url(), dir.path());
    s.watch.quarantine_after = 1;
    let deps = deps(&s);
    for _ in 0..2 {
        let r = steady(&deps).await;
        assert_eq!((r.held, r.quarantined), (1, 0), "{r:?}");
        assert_eq!(cursor(&deps), Some(day("2024-02-07")));
    }
    assert!(quarantined(&deps).is_empty());
}

fn capped(api: &FakeApi, dir: &Path, body: u64, answer: u64) -> Settings {
    let mut s = settings(&api.base_url(), dir);
    s.api.max_body_bytes = body;
    s.watch.max_answer_bytes = answer;
    s
}

#[tokio::test]
async fn a_body_without_an_end_is_cut_off_at_max_body_bytes_refused_and_the_rest_is_stored() {
    let api = FakeApi::start();
    api.set_questions(world());
    api.fail_next("/questions/102", Fault::Endless);
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(&capped(&api, dir.path(), 200_000, 100_000));

    let r = tokio::time::timeout(Duration::from_secs(20), steady(&deps))
        .await
        .expect("the endless body was cut off");
    assert_eq!((r.refused, r.quarantined, r.held), (1, 1, 0), "{r:?}");
    assert!(r.complete(), "{r:?}");
    assert_eq!(stored(&deps), 4);
    assert_eq!(cursor(&deps), Some(day("2024-02-12")));
    let q = quarantined(&deps);
    assert_eq!(q[0].id, Some(102));
    assert!(q[0].reason.contains("max_body_bytes"), "{}", q[0].reason);
    let requests = api.requests();
    let tries = requests
        .iter()
        .filter(|p| p.ends_with("/questions/102"))
        .count();
    assert_eq!(tries, 1, "a refused body is not asked for again");
}

#[tokio::test]
async fn an_answer_over_max_answer_bytes_is_refused_and_quarantined_and_retried_once_changed() {
    let api = FakeApi::start();
    let mut qs = world();
    let big = format!("<p>Prison staff</p>{}", "<p>Wing A: 12</p>".repeat(10_000));
    qs[4]["answerText"] = json!(big); // 170 KB of HTML
    api.set_questions(qs);
    let dir = tempfile::tempdir().unwrap();
    let mut s = capped(&api, dir.path(), 1_000_000, 100_000);
    s.watch.overlap_days = 10;
    let deps = deps(&s);

    let r = steady(&deps).await;
    assert_eq!((r.refused, r.quarantined), (1, 1), "{r:?}");
    assert!(r.complete());
    assert_eq!(stored(&deps), 4);
    let q = quarantined(&deps);
    assert!(q[0].reason.contains("max_answer_bytes"), "{}", q[0].reason);
    assert!(q[0].reason.contains("170"), "{}", q[0].reason);

    let r = steady(&deps).await;
    assert_eq!((r.still_quarantined, r.refused), (1, 0), "{r:?}");

    api.update_question(104, |q| q["answerText"] = json!("<p>Prison staff: 12</p>"));
    let r = steady(&deps).await;
    assert!(r.complete(), "{r:?}");
    assert_eq!(stored(&deps), 5);
    assert!(quarantined(&deps).is_empty());
}

fn json_out(cmd: &mut Command) -> (Option<i32>, Value) {
    let o = cmd.output().unwrap();
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code(), v)
}

#[test]
fn through_the_binary_a_numeric_answer_text_blocks_three_polls_then_is_quarantined_and_status_recovers(
) {
    let api = FakeApi::start();
    let today = pqwatch::pipeline::uk_today(Utc::now()).to_string();
    let mut qs: Vec<Value> = (1..=3)
        .map(|i| question(i, &today, "Prisons: Staff", "<p>Prison staff: 5</p>"))
        .collect();
    qs[1]["answerText"] = json!(12345);
    api.set_questions(qs);
    let dir = tempfile::tempdir().unwrap();
    let url = api.base_url();
    let pq = |args: &[&str]| support::pqwatch(&url, dir.path(), args);

    for attempt in 1..=2 {
        let o = pq(&["poll", "--once"]).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "pass {attempt} is incomplete");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("could not read 1 record")
                && err.contains(&format!("attempt {attempt} of 3")),
            "{err}"
        );
        let (code, status) = json_out(&mut pq(&["status", "--json"]));
        assert_eq!(code, Some(1), "unhealthy while held: {status}");
        assert_eq!(status["quarantined"], 0);
    }
    let o = pq(&["poll", "--once"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, status) = json_out(&mut pq(&["status", "--json"]));
    assert_eq!(code, Some(0), "healthy again: {status}");
    assert_eq!(status["quarantined"], 1);
    assert_eq!(status["last_poll"]["report"]["quarantined"], 1);
    assert_eq!(status["cursor"]["question"], json!(today));
    let text = pq(&["status"]).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("quarantined:   1 records"));

    let (code, list) = json_out(&mut pq(&["answers", "quarantined", "--json"]));
    assert_eq!(code, Some(0));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["kind"], "question");
    assert_eq!(list[0]["id"], 2);
    assert_eq!(list[0]["attempts"], 3);
    assert_eq!(list[0]["raw"]["answerText"], 12345);
    let reason = list[0]["reason"].as_str().unwrap();
    assert!(reason.contains("invalid type: integer `12345`"), "{reason}");
    let o = pq(&["answers", "quarantined"]).output().unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("question") && table.contains("10002"),
        "{table}"
    );

    // The fourth poll does not ask for it again.
    api.clear_requests();
    let o = pq(&["poll", "--once"]).output().unwrap();
    assert!(o.status.success());
    assert!(!api.requests().iter().any(|p| p.ends_with("/questions/2")));
}

#[test]
fn through_the_binary_an_endless_body_is_refused_and_counted_in_status() {
    let api = FakeApi::start();
    let today = pqwatch::pipeline::uk_today(Utc::now()).to_string();
    api.set_questions(
        (1..=3)
            .map(|i| question(i, &today, "Prisons: Staff", "<p>Prison staff: 5</p>"))
            .collect(),
    );
    api.state
        .lock()
        .unwrap()
        .sticky
        .push(("/questions/3".into(), Fault::Endless));
    let dir = tempfile::tempdir().unwrap();
    let url = api.base_url();
    let pq = |args: &[&str]| {
        let mut c = support::pqwatch(&url, dir.path(), args);
        c.env("PQWATCH_API_MAX_BODY_BYTES", "1_000_000");
        c
    };
    let o = support::within(pq(&["poll", "--once"]), 30);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sent = api.state.lock().unwrap().endless_bytes;
    assert!(
        sent < 50_000_000,
        "the body was cut off as it streamed in ({sent} bytes written)"
    );
    let (code, status) = json_out(&mut pq(&["status", "--json"]));
    assert_eq!(code, Some(0), "{status}");
    assert_eq!(status["last_poll"]["report"]["refused"], 1);
    assert_eq!(status["quarantined"], 1);
    let (_, list) = json_out(&mut pq(&["answers", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 2);
}
