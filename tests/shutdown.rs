//! SIGTERM stops `pqwatch run` within 10 s whatever is in flight (a hung API request, a back-off
//! sleep between retries, a silent SMTP relay), exits 0, and leaves everything resumable: a
//! rerun completes the pass, stores each answer once and delivers each alert once.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

use crate::support::fake_api::{FakeApi, Fault};
use crate::support::smtp::SmtpSink;
use crate::support::{self, question};

/// The shipped timeout and retries (30 s × 5): before cancellation, a hung request held a
/// SIGTERM for minutes.
fn pqwatch(api: &str, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = support::pqwatch(api, dir, args);
    cmd.env("PQWATCH_API_TIMEOUT_SECS", "30")
        .env("PQWATCH_API_MAX_RETRIES", "5")
        .env("PQWATCH_API_CONCURRENCY", "1");
    cmd
}

/// Five prison answers today, ids 1..=5.
fn api_with_answers() -> FakeApi {
    let api = FakeApi::start();
    let today = pqwatch::pipeline::uk_today(Utc::now()).to_string();
    api.set_questions(
        (1..=5)
            .map(|i| {
                question(
                    i,
                    &today,
                    "Prisons: Staff",
                    &format!("<p>Prison staff numbers: {i}</p>"),
                )
            })
            .collect(),
    );
    api
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM and returns how long the process took to exit, asserting it exited 0.
fn terminate(mut child: Child) -> Duration {
    let t = Instant::now();
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pqwatch was still running 30 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = t.elapsed();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    took
}

fn json(cmd: &mut Command) -> Value {
    let o = cmd.output().unwrap();
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
}

fn stored_ids(api: &str, dir: &Path) -> Vec<i64> {
    let list = json(&mut pqwatch(api, dir, &["answers", "list", "--json"]));
    let mut ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

fn detail_requests(api: &FakeApi, id: i64) -> usize {
    let path = format!("/api/writtenquestions/questions/{id}");
    api.requests().iter().filter(|r| **r == path).count()
}

#[test]
fn sigterm_while_an_api_request_hangs_exits_0_within_10_s_and_a_rerun_completes_the_pass() {
    let api = api_with_answers();
    // Answer 3's detail hangs for far longer than any stop timeout.
    api.state.lock().unwrap().sticky.push((
        "/questions/3".into(),
        Fault::Stall(Duration::from_secs(600)),
    ));
    let dir = tempfile::tempdir().unwrap();
    let url = api.base_url();
    let child = pqwatch(&url, dir.path(), &["run"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the hung request", || detail_requests(&api, 3) == 1);
    std::thread::sleep(Duration::from_millis(300));

    let took = terminate(child);
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    assert_eq!(
        stored_ids(&url, dir.path()),
        [1, 2],
        "what was committed stays"
    );
    let status = json(&mut pqwatch(&url, dir.path(), &["status", "--json"]));
    assert_eq!(status["last_poll"]["ok"], false, "{status}");
    assert_eq!(
        status["last_poll"]["report"]["interrupted"], true,
        "{status}"
    );
    assert_eq!(
        status["cursor"]["question"],
        Value::Null,
        "the cursor did not move"
    );

    api.state.lock().unwrap().sticky.clear();
    let o = pqwatch(&url, dir.path(), &["poll", "--once"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stored_ids(&url, dir.path()), [1, 2, 3, 4, 5]);
    let versions = json(&mut pqwatch(
        &url,
        dir.path(),
        &["answers", "show", "3", "--json"],
    ));
    assert_eq!(versions["answer_versions"].as_array().unwrap().len(), 1);
}

#[test]
fn sigterm_during_a_back_off_sleep_between_retries_exits_0_within_10_s() {
    let api = api_with_answers();
    api.state
        .lock()
        .unwrap()
        .sticky
        .push(("/questions/2".into(), Fault::Status(503)));
    let dir = tempfile::tempdir().unwrap();
    let url = api.base_url();
    // The first retry waits 30-60 s.
    let child = pqwatch(&url, dir.path(), &["run"])
        .env("PQWATCH_API_RETRY_BASE_MS", "60000")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the first 503", || detail_requests(&api, 2) == 1);
    std::thread::sleep(Duration::from_millis(300));

    let took = terminate(child);
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    assert_eq!(detail_requests(&api, 2), 1, "no retry after the stop");
    assert_eq!(stored_ids(&url, dir.path()), [1]);

    api.state.lock().unwrap().sticky.clear();
    let o = pqwatch(&url, dir.path(), &["poll", "--once"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stored_ids(&url, dir.path()), [1, 2, 3, 4, 5]);
}

/// A relay that accepts connections and never says a word (counts them; holds them open).
fn silent_relay() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    (port, accepted)
}

#[test]
fn sigterm_while_the_smtp_relay_hangs_exits_0_within_10_s_and_every_alert_arrives_once_later() {
    let api = api_with_answers();
    let dir = tempfile::tempdir().unwrap();
    let url = api.base_url();
    let (port, accepted) = silent_relay();
    let silent = format!("smtp+plain://127.0.0.1:{port}");
    let o = pqwatch(
        &url,
        dir.path(),
        &[
            "subscribe",
            "rep@union.test",
            "--keywords",
            "prison staff",
            "--include-no-figures",
            "--confirmed",
        ],
    )
    .env("PQWATCH_MAIL_SMTP_URL", &silent)
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The shipped SMTP step deadline is 60 s: the greeting never comes.
    let child = pqwatch(&url, dir.path(), &["run"])
        .env("PQWATCH_MAIL_SMTP_URL", &silent)
        .env("PQWATCH_MAIL_SMTP_TIMEOUT_SECS", "60")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("a connection to the relay", || {
        accepted.load(Ordering::SeqCst) > 0
    });
    std::thread::sleep(Duration::from_millis(300));

    let took = terminate(child);
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    assert_eq!(stored_ids(&url, dir.path()), [1, 2, 3, 4, 5]);
    let pending = json(&mut pqwatch(
        &url,
        dir.path(),
        &["alerts", "list", "--json"],
    ));
    let pending = pending.as_array().unwrap();
    assert_eq!(pending.len(), 5);
    assert!(
        pending
            .iter()
            .all(|a| a["status"] == "pending" && a["attempts"] == 0),
        "a stopped send is not an attempt: {pending:?}"
    );

    let sink = SmtpSink::start(&dir.path().join("smtp"), &[]);
    let o = pqwatch(&url, dir.path(), &["poll", "--once"])
        .env("PQWATCH_MAIL_SMTP_URL", sink.url())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut ids = sink.message_ids();
    assert_eq!(ids.len(), 5);
    ids.dedup();
    assert_eq!(ids.len(), 5, "each alert once");
}
