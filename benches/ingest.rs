//! Ingest benchmark: a backfill of 10,000 answers from a local server, run as the real release
//! binary under `/usr/bin/time -v` (answers/s and peak RSS, median of runs), and the HTTP requests
//! one steady-state poll makes.
//!
//! Run: `cargo bench --bench ingest` (set PQBENCH_RUNS to change the number of runs).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use chrono::{Days, NaiveDate, Utc};
use serde_json::Value;
use support::fake_api::FakeApi;
use support::{corpus_question, question};

const ANSWERS: i64 = 10_000;

const CORPUS: &[&str] = &[
    "2015-03-19-serious-assaults-on-staff-london-prisons",
    "2015-12-noms-staff-dismissed-corruption",
    "2017-02-28-prisons-corruption-staff",
    "2020-staff-hospitalised-urine-excreta",
    "2024-02-01-prison-officers-dismissal",
    "2024-assaults-on-staff-maidstone-huntercombe-morton-hall",
    "2025-probation-spend-greater-manchester-oldham",
];

/// `n` answers over the days from `start`, `per_day` a day; four in five are corpus answers
/// (which match), one in five a non-matching answer.
fn answers(n: i64, start: NaiveDate, per_day: i64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let day = (start + Days::new((i / per_day) as u64))
                .format("%Y-%m-%d")
                .to_string();
            if i % 5 == 4 {
                question(
                    1_000_000 + i,
                    &day,
                    "Roads: Maintenance",
                    "<p>Local highway authorities are responsible for their roads.</p>",
                )
            } else {
                corpus_question(CORPUS[(i as usize) % CORPUS.len()], 1_000_000 + i, &day)
            }
        })
        .collect()
}

fn pqwatch(api: &FakeApi, db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-v")
        .arg(env!("CARGO_BIN_EXE_pqwatch"))
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pqwatch.toml"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("PQWATCH_API_BASE_URL", api.base_url())
        .env("PQWATCH_API_MAX_RPS", "100000")
        .env("PQWATCH_API_STATEMENTS", "false")
        .env("PQWATCH_DATABASE_PATH", db);
    cmd
}

fn max_rss_kb(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("PQBENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let api = FakeApi::start();
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    api.set_questions(answers(ANSWERS, start, 100));
    let end = start + Days::new((ANSWERS / 100) as u64 - 1);
    let (from, to) = (start.to_string(), end.to_string());

    let mut rates = Vec::new();
    let mut rss = Vec::new();
    for run in 1..=runs {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bench.sqlite");
        api.clear_requests();
        let t = Instant::now();
        let out = pqwatch(&api, &db, &["poll", "--once", "--from", &from, "--to", &to])
            .output()
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let stored = pqwatch::store::Store::open(&db)
            .unwrap()
            .counts()
            .unwrap()
            .0;
        assert_eq!(stored, ANSWERS * 4 / 5, "every matching answer stored");
        let kb = max_rss_kb(&stderr);
        println!(
            "backfill run {run}: {ANSWERS} answers in {secs:.2} s = {:.0} answers/s, peak RSS {:.1} MB, {} requests",
            ANSWERS as f64 / secs,
            kb as f64 / 1024.0,
            api.requests().len()
        );
        rates.push(ANSWERS as f64 / secs);
        rss.push(kb as f64 / 1024.0);
    }
    println!(
        "backfill of {ANSWERS} answers: median {:.0} answers/s, median peak RSS {:.1} MB ({runs} runs; min {:.0}, max {:.0} answers/s)",
        median(rates.clone()),
        median(rss),
        rates.iter().cloned().fold(f64::INFINITY, f64::min),
        rates.iter().cloned().fold(0.0, f64::max),
    );

    // Steady state: 400 answers a day over the last three UK days; the first poll stores them,
    // the second is the steady-state poll whose requests we count.
    let today = pqwatch::pipeline::uk_today(Utc::now());
    api.set_questions(answers(1200, today - Days::new(2), 400));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("steady.sqlite");
    let first = pqwatch(&api, &db, &["poll", "--once"]).output().unwrap();
    assert!(first.status.success());
    api.clear_requests();
    let second = pqwatch(&api, &db, &["poll", "--once"]).output().unwrap();
    assert!(second.status.success());
    let reqs = api.requests();
    let details = reqs.iter().filter(|p| !p.contains('?')).count();
    println!(
        "steady-state poll over 2 days holding 800 answers, page_size 100, nothing new: {} requests ({} list pages, {} detail requests)",
        reqs.len(),
        reqs.len() - details,
        details
    );
}
