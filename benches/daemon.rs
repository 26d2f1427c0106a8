//! Daemon benchmark: `pqwatch run` (release) against a local API serving 500 of today's answers.
//! Its first pass stores them all (peak RSS); then it idles until a fire time far away, and its
//! RSS and CPU are sampled from /proc for PQBENCH_IDLE_SECS (default 600 s).
//!
//! Run: `cargo bench --bench daemon`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use support::fake_api::FakeApi;
use support::question;

fn proc_field(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User + system CPU seconds of a process.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn main() {
    let idle_secs: u64 = std::env::var("PQBENCH_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let api = FakeApi::start();
    let today = pqwatch::pipeline::uk_today(Utc::now()).to_string();
    let html = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "tests/fixtures/corpus/2024-assaults-on-staff-maidstone-huntercombe-morton-hall.json",
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&html).unwrap();
    let body = v["answer_html"].as_str().unwrap();
    api.set_questions(
        (0..500)
            .map(|i| {
                question(
                    1000 + i,
                    &today,
                    "Prisons: Crimes of Violence",
                    &body.replace("<td>25</td>", &format!("<td>{}</td>", 25 + i)),
                )
            })
            .collect(),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pqwatch"))
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pqwatch.toml"))
        .arg("run")
        .env("RUST_LOG", "warn")
        .env("PQWATCH_API_BASE_URL", api.base_url())
        .env("PQWATCH_API_MAX_RPS", "1000")
        .env("PQWATCH_API_STATEMENTS", "false")
        .env("PQWATCH_DATABASE_PATH", dir.path().join("db.sqlite"))
        .env("PQWATCH_MAIL_OUTBOX_DIR", dir.path().join("outbox"))
        .env("PQWATCH_SCHEDULE_CRON", "0 0 0 1 1 *")
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The first pass is done when every detail was fetched and the process has gone quiet.
    let t = Instant::now();
    let mut peak: f64 = 0.0;
    loop {
        peak = peak.max(proc_field(pid, "VmHWM:"));
        let details = api.requests().iter().filter(|p| !p.contains('?')).count();
        if details >= 500 {
            std::thread::sleep(Duration::from_secs(3));
            peak = peak.max(proc_field(pid, "VmHWM:"));
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the first pass did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pass_secs = t.elapsed().as_secs_f64();
    let cpu0 = cpu_secs(pid);
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(idle_secs) {
        samples.push(proc_field(pid, "VmRSS:"));
        std::thread::sleep(Duration::from_secs(5));
    }
    let cpu = cpu_secs(pid) - cpu0;
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    println!("first pass storing 500 answers: {pass_secs:.1} s, peak RSS (VmHWM) {peak:.1} MB");
    println!(
        "idle for {idle_secs} s between polls: RSS median {:.1} MB (min {:.1}, max {:.1}; {} samples), CPU {cpu:.2} s = {:.3}% of one core",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
        samples.len(),
        100.0 * cpu / idle_secs as f64
    );
}
