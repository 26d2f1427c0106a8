//! Backfill through the real binary against a generated year of traffic on 127.0.0.1: only the
//! answers that can match are read in full, every one of them is stored, the range is walked
//! newest first, an interrupted backfill resumes without listing its finished days again, and the
//! cost is reported by kind.

use std::collections::HashSet;
use std::path::Path;

use chrono::NaiveDate;
use pqwatch::watch::{html_text, Matcher};
use serde_json::Value;

use crate::support::fake_api::{shorten, FakeApi};
use crate::support::traffic::{self, Generated, Shape, MOJ};
use crate::support::{pqwatch, within};

fn shipped_keywords() -> Vec<String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pqwatch.toml"))
            .unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    v["watch"]["keywords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

/// What the rules say must be stored, worked out from the records themselves with the same
/// matcher: a Ministry of Justice answer with a keyword anywhere; another body's answer with a
/// keyword in its heading, its question or the list's shortened answer.
fn can_match(matcher: &Matcher, g: &Generated) -> bool {
    let r = &g.record;
    let listed = shorten(r);
    let answer = if r["answeringBodyId"] == MOJ {
        html_text(r["answerText"].as_str().unwrap())
    } else {
        listed["answerText"].as_str().unwrap().to_owned()
    };
    !matcher
        .matches(&[
            r["heading"].as_str().unwrap(),
            r["questionText"].as_str().unwrap(),
            &answer,
        ])
        .is_empty()
}

fn stored_ids(api: &FakeApi, dir: &Path) -> HashSet<i64> {
    let out = within(
        pqwatch(&api.base_url(), dir, &["answers", "list", "--json"]),
        120,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect()
}

fn last_report(api: &FakeApi, dir: &Path) -> Value {
    let out = within(pqwatch(&api.base_url(), dir, &["status", "--json"]), 60);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["last_poll"]["report"].clone()
}

fn is_detail(path: &str) -> bool {
    let p = path.split('?').next().unwrap();
    p.trim_end_matches('/')
        .rsplit('/')
        .next()
        .is_some_and(|last| last.parse::<i64>().is_ok())
}

#[test]
fn a_year_of_traffic_is_backfilled_reading_in_full_only_the_answers_that_can_match() {
    let start: NaiveDate = "2023-01-02".parse().unwrap();
    let year = traffic::year(7, start, 60_000, 1_000_000);
    let matcher = Matcher::new(&shipped_keywords());
    // What must be stored, by shape; and the shapes agree with the rules, checked with the same
    // matcher on every record that has a keyword anywhere and on a sample of the rest.
    let should_match = |s: Shape| {
        matches!(
            s,
            Shape::MojHeading
                | Shape::MojDeep
                | Shape::OtherHeading
                | Shape::OtherQuestion
                | Shape::OtherLead
        )
    };
    for (i, g) in year.iter().enumerate() {
        if !matches!(g.shape, Shape::OtherNone | Shape::MojNone) || i % 25 == 0 {
            assert_eq!(
                can_match(&matcher, g),
                should_match(g.shape),
                "{:?} {}",
                g.shape,
                g.id
            );
        }
    }
    let expected: HashSet<i64> = year
        .iter()
        .filter(|g| should_match(g.shape))
        .map(|g| g.id)
        .collect();
    let moj = year
        .iter()
        .filter(|g| g.record["answeringBodyId"] == MOJ)
        .count();
    let other_visible = year
        .iter()
        .filter(|g| g.record["answeringBodyId"] != MOJ && expected.contains(&g.id))
        .count();
    let deep_elsewhere = year.iter().filter(|g| g.shape == Shape::OtherDeep).count();
    assert!(moj > 3000 && other_visible > 500 && deep_elsewhere > 100);

    let api = FakeApi::start();
    api.set_questions(year.into_iter().map(|g| g.record).collect());
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = pqwatch(
        &api.base_url(),
        dir.path(),
        &["backfill", "--since", "2023-01-02", "--until", "2024-01-01"],
    );
    cmd.env("PQWATCH_API_PAGE_SIZE", "100");
    let out = within(cmd, 900);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Every answer that can match is stored, and nothing else.
    let stored = stored_ids(&api, dir.path());
    let missed: Vec<_> = expected.difference(&stored).collect();
    assert!(
        missed.is_empty(),
        "{} matches missed: {missed:?}",
        missed.len()
    );
    assert_eq!(stored.len(), expected.len());

    // Requests by kind: one detail for each Ministry of Justice answer and each other answer
    // with a visible keyword, none for the rest; the whole year within 6,000 requests.
    let requests = api.requests();
    let details = requests.iter().filter(|r| is_detail(r)).count();
    let lists = requests.len() - details;
    assert_eq!(details, moj + other_visible);
    assert!(lists < 800, "{lists} list requests");
    assert!(requests.len() <= 6_000, "{} requests", requests.len());

    // The pass reports the same cost.
    let report = last_report(&api, dir.path());
    assert_eq!(report["detail_requests"], details as u64);
    assert_eq!(report["list_requests"], lists as u64);
    assert_eq!(report["answers_kept"], expected.len() as u64);
    assert_eq!(
        report["skipped_by_prefilter"],
        (60_000 - moj - other_visible) as u64
    );
    assert!(report["requests_per_sec"].as_f64().unwrap() > 0.0);

    // Newest first: the first list request is for the last week of the range.
    let first = requests.iter().find(|r| !is_detail(r)).unwrap();
    assert!(first.contains("answeredWhenTo=2024-01-01"), "{first}");
}

#[test]
fn an_answer_already_stored_is_read_again_when_its_listing_changes_whatever_its_body() {
    // Another body's answer stored for a keyword in its heading, later corrected under a heading
    // with no keyword: the correction is still read in full and stored as a new version.
    let start: NaiveDate = "2024-03-04".parse().unwrap();
    let mut year = traffic::year(11, start, 3_000, 5_000);
    let g = year
        .iter_mut()
        .find(|g| g.shape == Shape::OtherHeading)
        .expect("a generated answer with prisons in the heading");
    let id = g.id;
    let day = g.record["dateAnswered"].as_str().unwrap()[..10].to_owned();
    let api = FakeApi::start();
    api.set_questions(year.into_iter().map(|g| g.record).collect());
    let dir = tempfile::tempdir().unwrap();
    let run = |since: &str, until: &str| {
        let out = within(
            pqwatch(
                &api.base_url(),
                dir.path(),
                &["backfill", "--since", since, "--until", until],
            ),
            120,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&day, &day);
    assert!(stored_ids(&api, dir.path()).contains(&id));
    api.update_question(id, |q| {
        q["heading"] = "Foreign Nationals".into();
        q["questionText"] = "To ask the Home Office, how many were removed.".into();
        q["answerText"] = "<p>Corrected: the figure was 12.</p>".into();
        q["answerIsCorrection"] = true.into();
        q["dateAnswerCorrected"] = format!("{day}T00:00:00").into();
    });
    api.clear_requests();
    // The day itself is covered now, so read it again through a range that is not.
    let next = (day.parse::<NaiveDate>().unwrap() - chrono::Days::new(1)).to_string();
    run(&next, &day);
    assert!(api
        .requests()
        .iter()
        .any(|r| r.ends_with(&format!("/{id}"))));
    let out = within(
        pqwatch(
            &api.base_url(),
            dir.path(),
            &["answers", "show", &id.to_string(), "--json"],
        ),
        60,
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["answer_versions"].as_array().unwrap().len(), 2, "{v}");
}

#[test]
fn an_interrupted_backfill_resumes_without_listing_the_weeks_it_finished() {
    let start: NaiveDate = "2024-01-01".parse().unwrap();
    let year = traffic::year(3, start, 3_000, 2_000_000);
    let matcher = Matcher::new(&shipped_keywords());
    let expected: HashSet<i64> = year
        .iter()
        .filter(|g| can_match(&matcher, g))
        .map(|g| g.id)
        .collect();
    let api = FakeApi::start();
    api.set_questions(year.into_iter().map(|g| g.record).collect());
    api.state.lock().unwrap().detail_delay = std::time::Duration::from_millis(5);
    let dir = tempfile::tempdir().unwrap();
    let args = ["backfill", "--since", "2024-01-01", "--until", "2024-12-29"];

    // Stop it part-way with SIGTERM, once a few weeks are done.
    let mut child = pqwatch(&api.base_url(), dir.path(), &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while api
        .requests()
        .iter()
        .filter(|r| r.contains("answeredWhenTo"))
        .count()
        < 12
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the backfill made no progress"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "an interrupted backfill does not report success"
    );
    let first_run: Vec<String> = api.requests();
    let stored_first = stored_ids(&api, dir.path());
    assert!(!stored_first.is_empty() && stored_first.len() < expected.len());

    // The rerun lists none of the weeks the first run finished, and completes the year.
    api.clear_requests();
    let out = within(pqwatch(&api.base_url(), dir.path(), &args), 300);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stored_ids(&api, dir.path()), expected);
    let windows = |reqs: &[String]| -> HashSet<String> {
        reqs.iter()
            .filter(|r| r.contains("answeredWhenTo") && r.contains("skip=0&"))
            .map(|r| {
                r.split('&')
                    .filter(|kv| kv.starts_with("answeredWhen"))
                    .collect::<Vec<_>>()
                    .join("&")
            })
            .collect()
    };
    let again = windows(&api.requests());
    let finished_before: Vec<_> = windows(&first_run)
        .into_iter()
        .filter(|w| again.contains(w))
        .collect();
    // At most the week in hand when the stop came is listed again.
    assert!(finished_before.len() <= 1, "{finished_before:?}");
}

#[test]
fn a_backfill_whose_since_is_after_its_until_names_those_flags_and_exits_2() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let out = within(
        pqwatch(
            &api.base_url(),
            dir.path(),
            &["backfill", "--since", "2026-03-01", "--until", "2026-01-01"],
        ),
        60,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--since 2026-03-01 is after --until 2026-01-01") && !err.contains("--from"),
        "{err}"
    );
    assert!(
        api.requests().is_empty(),
        "nothing is fetched: {:?}",
        api.requests()
    );
}
