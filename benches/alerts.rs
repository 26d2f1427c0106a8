//! Alerts benchmark: the time from a poll that finds new figures to the last of 1,000
//! subscribers' emails accepted by a local SMTP server (aiosmtpd), and messages per second.
//!
//! Run: `cargo bench --bench alerts` (needs aiosmtpd; `bash scripts/test` installs it).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use chrono::{Days, Utc};
use support::fake_api::FakeApi;
use support::smtp::SmtpSink;
use support::{corpus_question, question};

const SUBSCRIBERS: usize = 1000;

fn pqwatch(api: &str, dir: &Path, smtp: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pqwatch"));
    cmd.args(args)
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pqwatch.toml"))
        .env("RUST_LOG", "warn")
        .env("PQWATCH_API_BASE_URL", api)
        .env("PQWATCH_API_MAX_RPS", "1000")
        .env("PQWATCH_API_STATEMENTS", "false")
        .env("PQWATCH_DATABASE_PATH", dir.join("db.sqlite"))
        .env("PQWATCH_MAIL_SMTP_URL", smtp)
        .env("PQWATCH_MAIL_FROM", "pqwatch <alerts@pqwatch.test>");
    cmd
}

fn main() {
    let runs: usize = std::env::var("PQBENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let today = pqwatch::pipeline::uk_today(Utc::now());
    let yesterday = (today - Days::new(1)).to_string();
    let mut totals = Vec::new();
    for run in 1..=runs {
        let api = FakeApi::start();
        let dir = tempfile::tempdir().unwrap();
        let sink = SmtpSink::start(&dir.path().join("smtp"), &[]);
        let (url, smtp) = (api.base_url(), sink.url());
        let first = corpus_question("2024-02-01-prison-officers-dismissal", 1, &yesterday);
        let html = first["answerText"].as_str().unwrap().replace(
            "<tr><td>2023</td><td>21</td></tr>",
            "<tr><td>2023</td><td>23</td></tr><tr><td>2024</td><td>30</td></tr>",
        );
        api.set_questions(vec![first]);
        let o = pqwatch(
            &url,
            dir.path(),
            &smtp,
            &["poll", "--once", "--from", &yesterday, "--to", &yesterday],
        )
        .output()
        .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let csv = dir.path().join("list.csv");
        let mut rows = String::from("email,name,keywords,confirmed\n");
        for i in 0..SUBSCRIBERS {
            rows.push_str(&format!(
                "rep{i}@union.test,Rep {i},\"conveyance, drugs\",yes\n"
            ));
        }
        std::fs::write(&csv, rows).unwrap();
        assert!(pqwatch(
            &url,
            dir.path(),
            &smtp,
            &["subscribers", "import", csv.to_str().unwrap()]
        )
        .status()
        .unwrap()
        .success());
        api.state.lock().unwrap().questions.push(question(
            2,
            &today.to_string(),
            "Prison Officers: Dismissal",
            &html,
        ));

        let t = Instant::now();
        let o = pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
            .output()
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got = sink.received().len();
        assert_eq!(got, SUBSCRIBERS, "every subscriber's email accepted");
        println!(
            "run {run}: poll finding new figures -> last of {SUBSCRIBERS} emails accepted: {secs:.2} s ({:.0} messages/s)",
            SUBSCRIBERS as f64 / secs
        );
        totals.push(secs);
    }
    totals.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let med = totals[totals.len() / 2];
    println!(
        "median {med:.2} s for {SUBSCRIBERS} emails = {:.0} messages/s (min {:.2} s, max {:.2} s, {runs} runs)",
        SUBSCRIBERS as f64 / med,
        totals[0],
        totals[totals.len() - 1]
    );
}
