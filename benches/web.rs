//! Web front benchmark: requests per second and p50/p99 latency of `/statistics/{id}` and `/`
//! with a store of 10,000 statistics, measured on loopback with `oha` while `pqwatch run` is
//! polling, and the daemon's peak RSS (`/usr/bin/time -v`) while it serves.
//!
//! Run: `bash scripts/bench-web` (installs oha with `cargo install oha --locked` if missing,
//! then `cargo bench --bench web`). `PQBENCH_SECS` sets each load run's length (default 10),
//! `PQBENCH_CONNECTIONS` the concurrent connections (default 8).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Utc};
use serde_json::Value;
use support::fake_api::FakeApi;
use support::question;

const STATISTICS: i64 = 10_000;

/// A made-up word for answer `i`, slot `k`: statistics that share no measure words.
fn word(i: i64, k: i64) -> String {
    let mut n = (i * 7919 + k * 104_729 + 12_345) as u64 * 2_654_435_761 % 308_915_776;
    (0..6)
        .map(|_| {
            let c = (b'a' + (n % 26) as u8) as char;
            n /= 26;
            c
        })
        .collect()
}

/// An answer whose one table is a statistic of its own: a year series with made-up measure words.
fn answer(i: i64, day: &str) -> Value {
    let (a, b, c) = (word(i, 1), word(i, 2), word(i, 3));
    let html = format!(
        "<p>The number of prison {a} {b} incidents is in the table below.</p>\
         <table><tr><th>Year</th><th>{a} {b} {c} incidents</th></tr>\
         <tr><td>2020</td><td>{}</td></tr><tr><td>2021</td><td>{}</td></tr>\
         <tr><td>2022</td><td>{}</td></tr><tr><td>2023</td><td>{}</td></tr></table>",
        100 + i % 97,
        120 + i % 89,
        90 + i % 83,
        130 + i % 79
    );
    question(2_000_000 + i, day, &format!("Prisons: {a} {b}"), &html)
}

fn answers(from: i64, n: i64, start: NaiveDate, per_day: i64) -> Vec<Value> {
    (from..from + n)
        .map(|i| {
            let day = start + Days::new(((i - from) / per_day) as u64);
            answer(i, &day.format("%Y-%m-%d").to_string())
        })
        .collect()
}

fn pqwatch(api: &FakeApi, db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pqwatch"));
    cmd.arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pqwatch.toml"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("PQWATCH_API_BASE_URL", api.base_url())
        .env("PQWATCH_API_MAX_RPS", "1000")
        .env("PQWATCH_API_STATEMENTS", "false")
        .env("PQWATCH_DATABASE_PATH", db);
    cmd
}

fn oha() -> String {
    std::env::var("OHA").unwrap_or_else(|_| "oha".into())
}

/// One load run: (requests/s, p50 ms, p99 ms, requests, non-200 responses).
fn load(url: &str, secs: u64, connections: u32) -> (f64, f64, f64, u64, u64) {
    let out = Command::new(oha())
        .args(["-z", &format!("{secs}s"), "-c", &connections.to_string()])
        .args(["--no-tui", "--output-format", "json", url])
        .output()
        .expect("oha runs (cargo install oha --locked)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes = j["statusCodeDistribution"].as_object().unwrap();
    let total: u64 = codes.values().map(|v| v.as_u64().unwrap()).sum();
    let ok = codes.get("200").and_then(Value::as_u64).unwrap_or(0);
    (
        j["summary"]["requestsPerSec"].as_f64().unwrap(),
        j["latencyPercentiles"]["p50"].as_f64().unwrap() * 1000.0,
        j["latencyPercentiles"]["p99"].as_f64().unwrap() * 1000.0,
        total,
        total - ok,
    )
}

fn main() {
    let secs: u64 = std::env::var("PQBENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let connections: u32 = std::env::var("PQBENCH_CONNECTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.sqlite");

    // 10,000 statistics, by a backfill of 10,000 answers of one new statistic each.
    let start = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    api.set_questions(answers(0, STATISTICS, start, 100));
    let end = start + Days::new((STATISTICS / 100) as u64 - 1);
    let t = Instant::now();
    let out = pqwatch(
        &api,
        &db,
        &[
            "poll",
            "--once",
            "--from",
            &start.to_string(),
            "--to",
            &end.to_string(),
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = pqwatch::store::Store::open(&db).unwrap();
    let statistics = store.statistics_count().unwrap();
    let id = store.series_list().unwrap().last().unwrap().id;
    drop(store);
    println!(
        "store: {statistics} statistics from {STATISTICS} answers, built in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert!(statistics >= STATISTICS * 9 / 10, "{statistics} statistics");

    // While the daemon polls: 3,000 new answers today, each detail slowed to 40 ms, and a
    // schedule that starts a pass every second, so passes run throughout the load.
    let today = pqwatch::pipeline::uk_today(Utc::now());
    api.set_questions(answers(STATISTICS, 3000, today, 3000));
    api.state.lock().unwrap().detail_delay = Duration::from_millis(40);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut daemon = {
        let mut time = Command::new("/usr/bin/time");
        time.arg("-v").arg(env!("CARGO_BIN_EXE_pqwatch"));
        let inner = pqwatch(&api, &db, &["run"]);
        time.args(inner.get_args())
            .envs(inner.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .env("PQWATCH_WEB_LISTEN", format!("127.0.0.1:{port}"))
            .env("PQWATCH_SCHEDULE_CRON", "* * * * * *")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        time.spawn().unwrap()
    };
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the daemon did not start serving"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    for (name, url) in [
        ("/statistics/{id}", format!("{base}/statistics/{id}")),
        ("/", format!("{base}/")),
    ] {
        let before = api.requests().len();
        let (rps, p50, p99, n, bad) = load(&url, secs, connections);
        let polled = api.requests().len() - before;
        println!(
            "{name}: {rps:.0} requests/s, p50 {p50:.2} ms, p99 {p99:.2} ms ({n} requests, {bad} not 200, {connections} connections, {secs} s; {polled} API requests by the poll meanwhile)"
        );
    }
    // SIGTERM to pqwatch itself (time's child), so time reports its peak RSS.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", daemon.id()))
        .unwrap_or_default();
    for pid in children.split_whitespace() {
        let _ = Command::new("kill").args(["-TERM", pid]).status();
    }
    let out = daemon.wait_with_output_or_kill();
    let kb = out
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!(
        "pqwatch run peak RSS while serving and polling: {:.1} MB",
        kb as f64 / 1024.0
    );
}

trait WaitOrKill {
    fn wait_with_output_or_kill(&mut self) -> String;
}

impl WaitOrKill for std::process::Child {
    fn wait_with_output_or_kill(&mut self) -> String {
        let mut err = self.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut err, &mut s).ok();
            s
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.kill();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        reader.join().unwrap()
    }
}
