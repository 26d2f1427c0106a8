//! `pqwatch run` as a child process against a local API server: SIGTERM mid-pass, a second
//! instance refused, SIGKILL and restart, and `status` as a monitor reads it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

use crate::support::fake_api::FakeApi;
use crate::support::{self, question};

fn pqwatch(api: &str, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = support::pqwatch(api, dir, args);
    cmd.env("RUST_LOG", "info")
        .env("PQWATCH_API_CONCURRENCY", "1");
    cmd
}

/// 40 answers today, each detail slow, so a pass takes seconds.
fn slow_api() -> FakeApi {
    let api = FakeApi::start();
    let today = pqwatch::pipeline::uk_today(Utc::now()).to_string();
    api.set_questions(
        (0..40)
            .map(|i| {
                question(
                    700 + i,
                    &today,
                    "Prisons: Staff",
                    &format!("<p>Prison staff: {i}</p>"),
                )
            })
            .collect(),
    );
    api.state.lock().unwrap().detail_delay = Duration::from_millis(100);
    api
}

fn details(api: &FakeApi) -> usize {
    api.requests().iter().filter(|p| !p.contains('?')).count()
}

fn wait_for(api: &FakeApi, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while details(api) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn stored(api: &str, dir: &Path) -> Vec<Value> {
    let o = pqwatch(api, dir, &["answers", "list", "--json"])
        .output()
        .unwrap();
    serde_json::from_slice::<Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn sigterm_mid_pass_exits_0_promptly_with_a_consistent_store_and_a_rerun_completes_it() {
    let api = slow_api();
    let dir = tempfile::tempdir().unwrap();
    let sink = crate::support::smtp::SmtpSink::start(&dir.path().join("smtp"), &[]);
    let url = api.base_url();
    let with_smtp = |args: &[&str]| {
        let mut c = pqwatch(&url, dir.path(), args);
        c.env("PQWATCH_MAIL_SMTP_URL", sink.url());
        c
    };
    let o = with_smtp(&[
        "subscribe",
        "rep@union.test",
        "--keywords",
        "prison staff",
        "--include-no-figures",
        "--confirmed",
    ])
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut child = with_smtp(&["run"]).stderr(Stdio::null()).spawn().unwrap();
    wait_for(&api, 8);

    // A second instance on the same database refuses.
    let o = pqwatch(&url, dir.path(), &["run"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("another pqwatch") && e.contains("is already polling"),
        "{e}"
    );

    let t = Instant::now();
    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stopped within the unit's stop timeout"
    );
    let partial = stored(&url, dir.path());
    assert!(partial.len() < 40, "stopped mid-pass ({})", partial.len());
    assert!(partial.iter().all(|a| a["versions"] == 1));

    api.state.lock().unwrap().detail_delay = Duration::ZERO;
    let o = with_smtp(&["poll", "--once"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let all = stored(&url, dir.path());
    assert_eq!(all.len(), 40);
    assert!(all.iter().all(|a| a["versions"] == 1), "nothing doubled");
    // Each answer's alert arrived exactly once across the stop and the rerun.
    let got = sink.received();
    let mut ids = sink.message_ids();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (40, 40));
}

#[test]
fn sigkill_mid_pass_then_restart_loses_nothing_and_doubles_nothing() {
    let api = slow_api();
    let dir = tempfile::tempdir().unwrap();
    let url = api.base_url();
    let mut child = pqwatch(&url, dir.path(), &["run"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&api, 12);
    child.kill().unwrap();
    child.wait().unwrap();

    api.state.lock().unwrap().detail_delay = Duration::ZERO;
    let mut child = pqwatch(&url, dir.path(), &["run"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored(&url, dir.path()).len() < 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());
    let all = stored(&url, dir.path());
    assert_eq!(all.len(), 40);
    assert!(all.iter().all(|a| a["versions"] == 1));
}

#[test]
fn status_exits_1_before_any_poll_and_when_stale_and_0_when_healthy() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let url = api.base_url();
    let o = pqwatch(&url, dir.path(), &["status", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "no database yet: a config error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
    // A database (made by a subscriber) with no poll yet.
    let o = pqwatch(
        &url,
        dir.path(),
        &[
            "subscribe",
            "ops@union.org.uk",
            "--keywords",
            "x",
            "--confirmed",
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = pqwatch(&url, dir.path(), &["status", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no successful poll yet"));

    let o = pqwatch(&url, dir.path(), &["poll", "--once"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = pqwatch(&url, dir.path(), &["status", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "healthy",
        "last_poll",
        "next_poll_at",
        "cursor",
        "answers",
        "statistics",
        "alerts",
        "last_error",
    ] {
        assert!(s.get(key).is_some(), "{key}");
    }
    assert_eq!(s["healthy"], true);
    assert_eq!(s["last_poll"]["ok"], true);

    let o = pqwatch(&url, dir.path(), &["status"])
        .env("PQWATCH_SCHEDULE_STALE_AFTER_MINUTES", "0")
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn backup_copies_the_live_database_to_a_new_file() {
    let api = FakeApi::start();
    let today = pqwatch::pipeline::uk_today(Utc::now()).to_string();
    api.set_questions(vec![question(1, &today, "Prisons: Staff", "<p>prison</p>")]);
    let dir = tempfile::tempdir().unwrap();
    let url = api.base_url();
    let o = pqwatch(&url, dir.path(), &["poll", "--once"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let copy = dir.path().join("copy.sqlite");
    let o = pqwatch(&url, dir.path(), &["backup", copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let store = pqwatch::store::Store::open(&copy).unwrap();
    assert_eq!(store.counts().unwrap().0, 1);
    let o = pqwatch(&url, dir.path(), &["backup", copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "an existing file is not overwritten: a usage error"
    );
}

#[test]
fn under_systemd_run_reports_ready_watchdog_and_stopping_on_the_notify_socket() {
    use std::os::unix::net::UnixDatagram;
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut child = pqwatch(&api.base_url(), dir.path(), &["run"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000")
        .env("PQWATCH_SCHEDULE_CRON", "0 0 0 1 1 *")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !(seen.iter().any(|m: &String| m.starts_with("READY=1"))
        && seen.iter().any(|m| m == "WATCHDOG=1"))
    {
        let n = sock.recv(&mut buf).expect("a notification within 10 s");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    signal(&child, "-TERM");
    loop {
        let n = sock.recv(&mut buf).expect("STOPPING within 10 s");
        if &buf[..n] == b"STOPPING=1" {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(seen[0].starts_with("READY=1"), "{seen:?}");
}
