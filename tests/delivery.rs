//! Delivery under concurrent commands, long mail outages, bounces, key rotation and hostile
//! links: the `pqwatch` binary, a local API and a real SMTP server process (aiosmtpd) with
//! fault modes.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::{Days, Utc};
use serde_json::Value;

use crate::support::fake_api::FakeApi;
use crate::support::smtp::SmtpSink;
use crate::support::web::{post_form, web_state};
use crate::support::{self, corpus_question};

fn pqwatch(api: &str, dir: &Path, smtp: &str, args: &[&str]) -> Command {
    let mut cmd = support::pqwatch(api, dir, args);
    cmd.env("PQWATCH_MAIL_SMTP_URL", smtp)
        .env("PQWATCH_MAIL_FROM", "pqwatch <alerts@pqwatch.test>")
        .env("PQWATCH_MAIL_RETRY_BASE_SECS", "0");
    cmd
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn json(o: Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap()
}

fn today() -> String {
    pqwatch::pipeline::uk_today(Utc::now()).to_string()
}

/// A matching answer (the drug-conveyance statistic) with this id, answered `days_ago`; each id
/// revises the 2023 figure, so each is an alert for every follower.
fn answer(id: i64, days_ago: u64) -> Value {
    let day = (pqwatch::pipeline::uk_today(Utc::now()) - Days::new(days_ago)).to_string();
    let mut q = corpus_question("2024-02-01-prison-officers-dismissal", id, &day);
    let html = q["answerText"].as_str().unwrap().replace(
        "<tr><td>2023</td><td>21</td></tr>",
        &format!("<tr><td>2023</td><td>{}</td></tr>", 20 + id),
    );
    q["answerText"] = Value::String(html);
    q
}

fn wait_until(what: &str, secs: u64, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the daemon did not stop on SIGTERM");
}

fn import_confirmed(api: &str, dir: &Path, smtp: &str, n: usize) {
    let csv = dir.join("list.csv");
    let mut rows = String::from("email,keywords,confirmed\n");
    for i in 0..n {
        rows.push_str(&format!("rep{i}@union.test,drugs,yes\n"));
    }
    std::fs::write(&csv, rows).unwrap();
    ok(pqwatch(
        api,
        dir,
        smtp,
        &["subscribers", "import", csv.to_str().unwrap()],
    )
    .output()
    .unwrap());
}

#[test]
fn subscribing_while_the_daemon_sends_a_big_queue_sends_no_message_twice() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    // 20 ms a message, one at a time: 300 messages take the daemon several seconds.
    let sink = SmtpSink::start(&dir.path().join("smtp"), &["--delay", "0.02"]);
    let (url, smtp) = (api.base_url(), sink.url());
    api.set_questions(vec![answer(1, 0)]);
    import_confirmed(&url, dir.path(), &smtp, 300);

    let daemon = pqwatch(&url, dir.path(), &smtp, &["run"])
        .env("PQWATCH_SCHEDULE_CRON", "0 0 0 1 1 *")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the daemon to start sending", 60, || {
        sink.received().len() >= 20
    });
    for i in 0..3 {
        let o = ok(pqwatch(
            &url,
            dir.path(),
            &smtp,
            &[
                "subscribe",
                &format!("new{i}@union.test"),
                "--keywords",
                "drugs",
            ],
        )
        .output()
        .unwrap());
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("the running pqwatch service sends it"),
            "the command queues and leaves sending to the service: {out}"
        );
    }
    assert!(
        sink.received().len() < 300,
        "the subscribes ran while the queue was being sent"
    );
    wait_until("every alert and confirmation", 120, || {
        sink.received().len() >= 303
    });
    // Time for any duplicate to arrive.
    std::thread::sleep(Duration::from_millis(500));
    terminate(daemon);

    let ids = sink.message_ids();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids.len() - unique.len(), 0, "duplicate Message-IDs");
    assert_eq!(unique.len(), 303, "300 alerts and 3 confirmations");
}

#[test]
fn a_symlinked_database_path_takes_the_same_pass_lock_as_the_real_one() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let smtp = "smtp+plain://127.0.0.1:9";
    let daemon = pqwatch(&api.base_url(), dir.path(), smtp, &["run"])
        .env("PQWATCH_SCHEDULE_CRON", "0 0 0 1 1 *")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db = dir.path().join("db.sqlite");
    wait_until("the database", 30, || db.exists());
    let link = dir.path().join("other-name.sqlite");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    let o = pqwatch(&api.base_url(), dir.path(), smtp, &["poll", "--once"])
        .env("PQWATCH_DATABASE_PATH", &link)
        .output()
        .unwrap();
    terminate(daemon);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("already polling"), "{err}");
}

/// The link in a received email's text that starts with `prefix`.
fn link_in(text: &str, prefix: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} link in {text}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_links_are_fresh_for_every_sign_up_expire_work_once_and_die_with_a_rotated_key() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let settings = support::settings(&api.base_url(), dir.path());
    let mut sink = SmtpSink::start(&dir.path().join("smtp"), &[]);
    let smtp = sink.url();
    let base = "https://pqwatch.test";
    let db = settings.database.path.clone();
    let run = |args: &[&str]| {
        let mut c = pqwatch(&api.base_url(), dir.path(), &smtp, args);
        c.env("PQWATCH_DATABASE_PATH", &db)
            .env("PQWATCH_MAIL_PUBLIC_BASE_URL", base);
        c.output().unwrap()
    };
    let path = |link: &str| link.strip_prefix(base).unwrap().to_owned();
    let confirmed = |email: &str| -> Option<bool> {
        let list = json(ok(run(&["subscribers", "list", "--json"])));
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["email"] == email)
            .map(|s| s["confirmed"].as_bool().unwrap())
    };
    let confirm_prefix = format!("{base}/confirm?t=");

    // Two sign-ups, two different links, each in its own email.
    ok(run(&["subscribe", "rep@union.test", "--keywords", "drugs"]));
    ok(run(&["subscribe", "rep@union.test"]));
    let got = sink.received();
    assert_eq!(got.len(), 2);
    let first = link_in(&got[0].text, &confirm_prefix);
    let second = link_in(&got[1].text, &confirm_prefix);
    assert_ne!(first, second, "a fresh token for every sign-up");
    assert_ne!(got[0].header("Message-ID"), got[1].header("Message-ID"));
    assert!(got[0].text.contains("works for 7 days"), "{}", got[0].text);

    let web = web_state(&settings);
    // Expired: the second link's time is up.
    let token = second
        .split_once("?t=")
        .unwrap()
        .1
        .split_once('.')
        .unwrap()
        .0
        .to_owned();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE confirmations SET expires_at = '2000-01-01T00:00:00+00:00' WHERE token = ?1",
            [&token],
        )
        .unwrap();
    let r = post_form(&web, &path(&second), "", &[]).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    assert!(r.body.contains("expired"), "{}", r.body);
    assert_eq!(confirmed("rep@union.test"), Some(false));

    // Forged: a real token with a made-up signature.
    let forged = format!("/confirm?t={token}.{}", "0".repeat(64));
    let r = post_form(&web, &forged, "", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The first link confirms, once.
    let r = post_form(&web, &path(&first), "", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(confirmed("rep@union.test"), Some(true));
    let r = post_form(&web, &path(&first), "", &[]).await;
    assert!(
        r.body.contains("Already confirmed") && r.body.contains("nothing was changed"),
        "a replayed link is spent: {}",
        r.body
    );

    // Unsubscribed, the old link cannot bring the address back; subscribing again sends a
    // new confirmation with a new link.
    ok(run(&["unsubscribe", "rep@union.test"]));
    let r = post_form(&web, &path(&first), "", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(confirmed("rep@union.test"), None);
    ok(run(&["subscribe", "rep@union.test", "--keywords", "drugs"]));
    let got = sink.received();
    assert_eq!(got.len(), 3, "a returning address gets a new confirmation");
    let third = link_in(&got[2].text, &confirm_prefix);
    assert!(third != first && third != second);
    assert_eq!(confirmed("rep@union.test"), Some(false));
    let r = post_form(&web, &path(&first), "", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = post_form(&web, &path(&third), "", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(confirmed("rep@union.test"), Some(true));

    // Rotation by another process: the unsubscribe link of an email already sent stops working
    // in this (running) web front at once, and an email queued before the rotation is sent
    // with links signed by the new key.
    let header = got[2].header("List-Unsubscribe").unwrap();
    let old_unsubscribe = header
        .split(", ")
        .find_map(|v| v.strip_prefix('<').and_then(|v| v.strip_prefix(base)))
        .map(|v| v.trim_end_matches('>').to_owned())
        .expect("a one-click link");
    sink.stop();
    let o = ok(run(&[
        "subscribe",
        "late@union.test",
        "--keywords",
        "drugs",
    ]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("queued"));
    let o = ok(run(&["keys", "rotate"]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("rotated"));
    let r = post_form(&web, &old_unsubscribe, "List-Unsubscribe=One-Click", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(r.body.contains("Link not recognised"), "{}", r.body);
    assert_eq!(confirmed("rep@union.test"), Some(true), "nothing changed");

    sink.resume();
    ok(run(&["poll", "--once"]));
    let got = sink.received();
    assert_eq!(got.len(), 4, "the queued confirmation went out");
    let late = link_in(&got[3].text, &confirm_prefix);
    let r = post_form(&web, &path(&late), "", &[]).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "signed again with the new key: {}",
        r.body
    );
    assert_eq!(confirmed("late@union.test"), Some(true));
    let _ = today();
}

/// The sink's fault file: `Some(line)` sets a fault, `None` clears it.
fn fault(file: &Path, line: Option<&str>) {
    match line {
        Some(l) => std::fs::write(file, l).unwrap(),
        None => {
            let _ = std::fs::remove_file(file);
        }
    }
}

fn alerts(api: &str, dir: &Path, smtp: &str) -> Vec<Value> {
    json(ok(pqwatch(api, dir, smtp, &["alerts", "list", "--json"])
        .output()
        .unwrap()))
    .as_array()
    .unwrap()
    .clone()
}

/// Moves every alert's queue time `hours` into the past, as if the outage had lasted that long.
fn age_alerts(dir: &Path, hours: i64) {
    let at = (Utc::now() - chrono::Duration::hours(hours)).to_rfc3339();
    rusqlite::Connection::open(dir.join("db.sqlite"))
        .unwrap()
        .execute("UPDATE alerts SET created_at = ?1", [at])
        .unwrap();
}

#[test]
fn a_mail_outage_longer_than_the_old_retry_window_loses_nothing_and_status_says_so() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("fault");
    let sink = SmtpSink::start(
        &dir.path().join("smtp"),
        &["--fault-file", faults.to_str().unwrap()],
    );
    let (url, smtp) = (api.base_url(), sink.url());
    import_confirmed(&url, dir.path(), &smtp, 3);
    api.set_questions(vec![answer(1, 0)]);
    let poll = || {
        ok(pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
            .env("PQWATCH_MAIL_SMTP_TIMEOUT_SECS", "1")
            .output()
            .unwrap())
    };
    let status = || {
        pqwatch(&url, dir.path(), &smtp, &["status", "--json"])
            .output()
            .unwrap()
    };

    // Every kind of temporary failure, at every step, many more times than the old limit of
    // 8 attempts: the alerts wait.
    for (i, f) in [
        "mail 451", "rcpt 451", "data 451", "drop", "silent", "mail 421", "rcpt 452", "data 452",
        "drop", "rcpt 451", "data 451", "mail 451",
    ]
    .iter()
    .enumerate()
    {
        fault(&faults, Some(f));
        poll();
        let a = alerts(&url, dir.path(), &smtp);
        assert_eq!(a.len(), 3);
        assert!(
            a.iter().all(|a| a["status"] == "pending"),
            "after {} attempts ({f}): {a:?}",
            i + 1
        );
    }
    // A relay refusing our sender for good is the relay's fault, not a bounce.
    fault(&faults, Some("mail 550"));
    poll();
    let subs = json(ok(pqwatch(
        &url,
        dir.path(),
        &smtp,
        &["subscribers", "list", "--json"],
    )
    .output()
    .unwrap()));
    assert!(
        subs.as_array()
            .unwrap()
            .iter()
            .all(|s| s["bounces"] == 0 && s["suspended"] == false),
        "{subs}"
    );
    assert!(alerts(&url, dir.path(), &smtp)
        .iter()
        .all(|a| a["status"] == "pending"));
    assert!(sink.received().is_empty());

    // Healthy while the alerts are fresh; unhealthy once they are overdue.
    assert!(status().status.success());
    age_alerts(dir.path(), 5);
    let o = status();
    assert_eq!(o.status.code(), Some(1));
    let s = json(o);
    assert_eq!(s["healthy"], false);
    assert_eq!(s["alerts"]["overdue"], 3);
    assert_eq!(s["alerts"]["overdue_after_minutes"], 60);

    // The relay comes back after five hours: every alert arrives once, and all is well.
    fault(&faults, None);
    poll();
    let mut ids = sink.message_ids();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    assert_eq!(sink.received().len(), 3);
    assert!(status().status.success());

    // Past [mail] give_up_after_hours a message that still fails is given up.
    api.set_questions(vec![answer(1, 0), answer(2, 0)]);
    fault(&faults, Some("rcpt 451"));
    poll();
    let a = alerts(&url, dir.path(), &smtp);
    assert_eq!(
        a.iter().filter(|a| a["status"] == "pending").count(),
        3,
        "{a:?}"
    );
    age_alerts(dir.path(), 121);
    poll();
    let a = alerts(&url, dir.path(), &smtp);
    assert_eq!(
        a.iter().filter(|a| a["status"] == "failed").count(),
        3,
        "{a:?}"
    );
    assert_eq!(
        a.iter().filter(|a| a["status"] == "sent").count(),
        3,
        "{a:?}"
    );
}

#[test]
fn permanent_failures_for_one_address_suspend_its_subscriber_until_reactivated() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&dir.path().join("smtp"), &["--reject", "gone@union.test"]);
    let (url, smtp) = (api.base_url(), sink.url());
    let run = |args: &[&str]| {
        pqwatch(&url, dir.path(), &smtp, args)
            .env("PQWATCH_MAIL_SUSPEND_AFTER_BOUNCES", "2")
            .output()
            .unwrap()
    };
    for email in ["a@union.test", "gone@union.test"] {
        ok(run(&[
            "subscribe",
            email,
            "--keywords",
            "drugs",
            "--confirmed",
        ]));
    }
    let gone = || -> Value {
        json(ok(run(&["subscribers", "list", "--json"])))
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["email"] == "gone@union.test")
            .unwrap()
            .clone()
    };
    let mut answers = vec![];
    for id in 1..=2 {
        answers.push(answer(id, 0));
        api.set_questions(answers.clone());
        ok(run(&["poll", "--once"]));
    }
    let g = gone();
    assert_eq!(g["bounces"], 2);
    assert_eq!(g["suspended"], true, "{g}");
    let text = String::from_utf8_lossy(&ok(run(&["subscribers", "list"])).stdout).to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("gone@union.test") && l.contains("suspended")),
        "{text}"
    );

    // Suspended: nothing more is queued for the address.
    answers.push(answer(3, 0));
    api.set_questions(answers.clone());
    ok(run(&["poll", "--once"]));
    let to_gone = |dir: &Path| {
        alerts(&url, dir, &smtp)
            .iter()
            .filter(|a| a["email"] == "gone@union.test")
            .count()
    };
    assert_eq!(to_gone(dir.path()), 2);
    let to_a = sink
        .received()
        .iter()
        .filter(|m| m.header("To").as_deref() == Some("a@union.test"))
        .count();
    assert_eq!(to_a, 3, "the others go on getting theirs");

    // Reactivated by an administrator, it is sent alerts again.
    ok(run(&["subscribers", "reactivate", "gone@union.test"]));
    let g = gone();
    assert_eq!(g["suspended"], false);
    assert_eq!(g["bounces"], 0);
    answers.push(answer(4, 0));
    api.set_questions(answers);
    ok(run(&["poll", "--once"]));
    assert_eq!(to_gone(dir.path()), 3);
}

/// The pqwatch binary under `sh -c 'umask 022; exec pqwatch ...'`, with the test settings.
fn under_umask_022(api: &str, state: &Path, args: &[&str]) -> Command {
    let settings = support::pqwatch(api, state, args);
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(settings.get_program())
        .args(settings.get_args());
    for (k, v) in settings.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh
}

#[test]
fn the_database_its_journal_backups_and_the_outbox_are_private_under_umask_022() {
    use std::os::unix::fs::PermissionsExt as _;
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let url = api.base_url();
    ok(under_umask_022(
        &url,
        &state,
        &["subscribe", "a@union.test", "--keywords", "drugs"],
    )
    .output()
    .unwrap());
    let backup = dir.path().join("backup.sqlite");
    ok(
        under_umask_022(&url, &state, &["backup", backup.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    // The journal files exist while the database is open: look at them under a running daemon.
    let daemon = under_umask_022(&url, &state, &["run"])
        .env("PQWATCH_SCHEDULE_CRON", "0 0 0 1 1 *")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the write-ahead log", 30, || {
        state.join("db.sqlite-wal").exists() && state.join("db.sqlite-shm").exists()
    });
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let modes: Vec<(&str, u32)> = ["db.sqlite", "db.sqlite-wal", "db.sqlite-shm", "db.lock"]
        .into_iter()
        .map(|f| (f, mode(&state.join(f))))
        .collect();
    terminate(daemon);
    for (f, m) in modes {
        assert_eq!(m, 0o600, "{f}: {m:o}");
    }
    assert_eq!(mode(&state), 0o700, "the database folder");
    assert_eq!(mode(&backup), 0o600, "the backup");
    let outbox = state.join("outbox");
    assert_eq!(mode(&outbox), 0o700, "the outbox folder");
    let emls: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(emls.len(), 1);
    assert_eq!(mode(&emls[0]), 0o600, "the .eml file");
}
