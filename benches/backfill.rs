//! Backfill cost benchmark: a generated year of traffic (60,000 answers from 24 departments,
//! tests/support/traffic.rs) served on 127.0.0.1, backfilled by the release binary with the
//! list-record prefilter and without it (`[watch] read_every_answer`): requests per year by kind,
//! the time a year takes at the default 5 requests/s, answers kept, and matches missed. Then one
//! real week at the default 5 requests/s, timed, to check that arithmetic, and a steady day's poll.
//!
//! Run: `cargo bench --bench backfill` (PQBENCH_ANSWERS sets the answers per year).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use chrono::{Days, NaiveDate, Utc};
use support::fake_api::FakeApi;
use support::traffic::{self, Shape, MOJ};

fn pqwatch(api: &FakeApi, db: &Path, rps: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-v")
        .arg(env!("CARGO_BIN_EXE_pqwatch"))
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pqwatch.toml"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("PQWATCH_API_BASE_URL", api.base_url())
        .env("PQWATCH_API_MAX_RPS", rps)
        .env("PQWATCH_API_STATEMENTS", "false")
        .env("PQWATCH_DATABASE_PATH", db)
        .env("PQWATCH_MAIL_OUTBOX_DIR", db.with_extension("outbox"));
    cmd
}

fn is_detail(path: &str) -> bool {
    !path.contains('?')
}

fn stored(db: &Path) -> HashSet<i64> {
    let store = pqwatch::store::Store::open(db).unwrap();
    store
        .list_answers(None)
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect()
}

struct Cost {
    lists: usize,
    details: usize,
    kept: usize,
    secs: f64,
}

fn backfill(api: &FakeApi, from: &str, to: &str, rps: &str, every: bool) -> (Cost, HashSet<i64>) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.sqlite");
    api.clear_requests();
    let t = Instant::now();
    let out = pqwatch(api, &db, rps, &["backfill", "--since", from, "--until", to])
        .env("PQWATCH_WATCH_READ_EVERY_ANSWER", every.to_string())
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reqs = api.requests();
    let details = reqs.iter().filter(|r| is_detail(r)).count();
    let ids = stored(&db);
    (
        Cost {
            lists: reqs.len() - details,
            details,
            kept: ids.len(),
            secs,
        },
        ids,
    )
}

fn main() {
    let per_year: usize = std::env::var("PQBENCH_ANSWERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60_000);
    let start = NaiveDate::from_ymd_opt(2023, 1, 2).unwrap();
    let end = start + Days::new(364);
    let year = traffic::year(7, start, per_year, 1_000_000);
    let can_match: HashSet<i64> = year
        .iter()
        .filter(|g| {
            matches!(
                g.shape,
                Shape::MojHeading
                    | Shape::MojDeep
                    | Shape::OtherHeading
                    | Shape::OtherQuestion
                    | Shape::OtherLead
            )
        })
        .map(|g| g.id)
        .collect();
    let beyond_list: HashSet<i64> = year
        .iter()
        .filter(|g| g.shape == Shape::OtherDeep)
        .map(|g| g.id)
        .collect();
    let moj = year
        .iter()
        .filter(|g| g.record["answeringBodyId"] == MOJ)
        .count();
    let api = FakeApi::start();
    api.set_questions(year.into_iter().map(|g| g.record).collect());
    let (from, to) = (start.to_string(), end.to_string());
    println!(
        "a generated year: {per_year} answers, {moj} from the Ministry of Justice, {} that can match by the rules, {} from other bodies with a keyword only beyond the list's shortened answer",
        can_match.len(),
        beyond_list.len()
    );

    for (name, every) in [
        ("prefilter (shipped)", false),
        ("read every answer (before)", true),
    ] {
        let (c, ids) = backfill(&api, &from, &to, "100000", every);
        let missed = can_match.difference(&ids).count();
        let total = c.lists + c.details;
        println!(
            "{name}: {total} requests/year ({} list, {} detail) = {:.2} h/year at 5 requests/s; {} answers kept, {missed} matches missed; {:.1} s here without the rate cap",
            c.lists,
            c.details,
            total as f64 / 5.0 / 3600.0,
            c.kept,
            c.secs,
        );
    }

    // One real week at the shipped 5 requests/s: does the time match requests / 5?
    let week_to = start + Days::new(6);
    let (c, _) = backfill(&api, &from, &week_to.to_string(), "5", false);
    let total = c.lists + c.details;
    println!(
        "one week at 5 requests/s: {total} requests ({} list, {} detail) in {:.1} s; requests / 5 = {:.1} s",
        c.lists,
        c.details,
        c.secs,
        total as f64 / 5.0
    );

    // A steady day's poll: one day of answers, the first poll since the cursor.
    let today = pqwatch::pipeline::uk_today(Utc::now());
    let day: Vec<_> = traffic::year(9, today, 60_000, 5_000_000)
        .into_iter()
        .filter(|g| {
            g.record["dateAnswered"]
                .as_str()
                .unwrap()
                .starts_with(&today.to_string())
        })
        .collect();
    let day_matchable = day
        .iter()
        .filter(|g| {
            g.record["answeringBodyId"] == MOJ
                || matches!(
                    g.shape,
                    Shape::OtherHeading | Shape::OtherQuestion | Shape::OtherLead
                )
        })
        .count();
    let n = day.len();
    api.set_questions(day.into_iter().map(|g| g.record).collect());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("steady.sqlite");
    api.clear_requests();
    let out = pqwatch(&api, &db, "100000", &["poll", "--once"])
        .env("PQWATCH_WATCH_FIRST_POLL_DAYS", "1")
        .env("PQWATCH_API_PAGE_SIZE", "100")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reqs = api.requests();
    let details = reqs.iter().filter(|r| is_detail(r)).count();
    println!(
        "a steady day's poll over {n} answers: {} requests ({} list, {details} detail); answers that can match (Ministry of Justice or a visible keyword): {day_matchable}",
        reqs.len(),
        reqs.len() - details
    );
}
