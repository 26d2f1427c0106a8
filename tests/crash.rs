//! The crash test: `pqwatch run` killed with SIGKILL at random moments, across ingest and
//! sending, with API and SMTP faults on the way; then every answer must be stored once and every
//! alert delivered, a resend only ever under its own Message-ID. The short version runs in CI;
//! `cargo test --test integration crash:: -- --ignored` runs the long one (docs/reliability.md).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use serde_json::Value;

use crate::support::fake_api::{FakeApi, Fault};
use crate::support::smtp::SmtpSink;
use crate::support::{self, corpus_question};

/// A small deterministic random source (xorshift), seeded per run and printed, so a failing run
/// can be repeated with CRASH_SEED.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An answer revising the drug-conveyance statistic, so each is an alert for every follower.
fn answer(id: i64, days_ago: u64) -> Value {
    let day = (pqwatch::pipeline::uk_today(Utc::now()) - Days::new(days_ago)).to_string();
    let mut q = corpus_question("2024-02-01-prison-officers-dismissal", id, &day);
    let html = q["answerText"].as_str().unwrap().replace(
        "<tr><td>2023</td><td>21</td></tr>",
        &format!("<tr><td>2023</td><td>{}</td></tr>", 100 + id),
    );
    q["answerText"] = Value::String(html);
    q
}

fn pqwatch(api: &str, dir: &Path, smtp: &str, args: &[&str]) -> Command {
    let mut cmd = support::pqwatch(api, dir, args);
    cmd.env("PQWATCH_MAIL_SMTP_URL", smtp)
        .env("PQWATCH_MAIL_FROM", "pqwatch <alerts@pqwatch.test>")
        .env("PQWATCH_MAIL_RETRY_BASE_SECS", "0")
        .env("PQWATCH_MAIL_SMTP_TIMEOUT_SECS", "2")
        .env("PQWATCH_API_TIMEOUT_SECS", "2")
        .env("PQWATCH_API_MAX_RETRIES", "1")
        // A pass every two seconds, so a daemon that lives a while runs several.
        .env("PQWATCH_SCHEDULE_CRON", "*/2 * * * * *");
    cmd
}

/// What a crash run found.
#[derive(Debug, Default)]
pub struct CrashReport {
    pub kills: u32,
    pub kills_while_sending: u32,
    pub faults: u32,
    pub answers: usize,
    pub alerts: usize,
    pub received: usize,
    pub duplicates: usize,
    pub lost: usize,
}

fn crash_run(kills: u32) -> CrashReport {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1);
    eprintln!("crash test seed {seed} (CRASH_SEED={seed} repeats it)");
    let mut rng = Rng(seed);
    let api = FakeApi::start();
    api.state.lock().unwrap().detail_delay = Duration::from_millis(30);
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("smtp-fault");
    // 5 ms a message on the server, so a kill often lands mid-batch.
    let sink = SmtpSink::start(
        &dir.path().join("smtp"),
        &["--delay", "0.005", "--fault-file", faults.to_str().unwrap()],
    );
    let (url, smtp) = (api.base_url(), sink.url());
    let csv = dir.path().join("list.csv");
    let mut rows = String::from("email,keywords,confirmed\n");
    for i in 0..12 {
        rows.push_str(&format!("rep{i}@union.test,drugs,yes\n"));
    }
    std::fs::write(&csv, rows).unwrap();
    let o = pqwatch(
        &url,
        dir.path(),
        &smtp,
        &["subscribers", "import", csv.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{o:?}");

    let mut report = CrashReport::default();
    let mut answers = vec![];
    let mut next_id = 1;
    for _ in 0..kills {
        // New answers keep arriving, so later runs ingest as well as send.
        for _ in 0..1 + rng.below(3) {
            answers.push(answer(next_id, 0));
            next_id += 1;
        }
        api.set_questions(answers.clone());
        // Now and then a fault: an API 500 or timeout, or an SMTP 4xx, a drop or silence.
        match rng.below(6) {
            0 => {
                api.fail_next("/api/writtenquestions/questions", Fault::Status(500));
                report.faults += 1;
            }
            1 => {
                api.fail_next(
                    "/api/writtenquestions/questions/",
                    Fault::Stall(Duration::from_secs(3)),
                );
                report.faults += 1;
            }
            2 => {
                let f =
                    ["rcpt 451", "data 451", "mail 421", "drop", "silent"][rng.below(5) as usize];
                std::fs::write(&faults, f).unwrap();
                report.faults += 1;
            }
            _ => {
                let _ = std::fs::remove_file(&faults);
            }
        }
        let before = sink.received().len();
        let mut child = pqwatch(&url, dir.path(), &smtp, &["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + rng.below(1500)));
        // SIGKILL: no chance to tidy up.
        child.kill().unwrap();
        child.wait().unwrap();
        report.kills += 1;
        if sink.received().len() > before {
            report.kills_while_sending += 1;
        }
        let _ = std::fs::remove_file(&faults);
    }

    // A last clean run: everything still due is sent.
    let _ = std::fs::remove_file(&faults);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let o = pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
            .output()
            .unwrap();
        let pending: Value = serde_json::from_slice(
            &pqwatch(
                &url,
                dir.path(),
                &smtp,
                &["alerts", "list", "--pending", "--json"],
            )
            .output()
            .unwrap()
            .stdout,
        )
        .unwrap();
        if o.status.success() && pending.as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox never emptied: {pending}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Every answer stored once.
    let stored: Value = serde_json::from_slice(
        &pqwatch(&url, dir.path(), &smtp, &["answers", "list", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let ids: Vec<i64> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "an answer stored twice");
    assert_eq!(unique.len(), answers.len(), "every answer stored");
    report.answers = unique.len();

    // Every alert delivered; repeats only under their own Message-ID.
    let all: Value = serde_json::from_slice(
        &pqwatch(&url, dir.path(), &smtp, &["alerts", "list", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let all = all.as_array().unwrap();
    let expected: HashSet<String> = all
        .iter()
        .map(|a| format!("<{}>", a["message_id"].as_str().unwrap()))
        .collect();
    let failed: Vec<&Value> = all.iter().filter(|a| a["status"] != "sent").collect();
    assert!(failed.is_empty(), "alerts not sent: {failed:?}");
    let mut counts: HashMap<String, usize> = HashMap::new();
    for id in sink.message_ids() {
        *counts.entry(id).or_default() += 1;
    }
    report.alerts = expected.len();
    report.received = counts.values().sum();
    report.duplicates = counts.values().map(|n| n - 1).sum();
    report.lost = expected
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .count();
    let strangers: Vec<&String> = counts.keys().filter(|id| !expected.contains(*id)).collect();
    assert!(
        strangers.is_empty(),
        "messages no alert explains: {strangers:?}"
    );
    assert_eq!(report.lost, 0, "{report:?}");
    eprintln!("crash test: {report:?}");
    report
}

#[test]
fn killed_at_random_moments_the_daemon_stores_every_answer_once_and_delivers_every_alert() {
    let r = crash_run(8);
    assert!(r.kills == 8 && r.alerts > 0, "{r:?}");
}

/// The long run recorded in docs/reliability.md (60 kills; several minutes).
#[test]
#[ignore]
fn sixty_random_kills_lose_nothing_and_double_nothing_but_in_flight_resends() {
    let r = crash_run(60);
    assert!(r.kills == 60 && r.alerts > 0, "{r:?}");
}
