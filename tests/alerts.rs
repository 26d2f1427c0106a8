//! Alerts end to end: the `pqwatch` binary polls a local API server and delivers to a real SMTP
//! server process (aiosmtpd) on 127.0.0.1; what that server received is asserted byte by byte.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use serde_json::Value;

use crate::support::fake_api::FakeApi;
use crate::support::smtp::SmtpSink;
use crate::support::{self, corpus_question, question, within};

fn pqwatch(api: &str, dir: &Path, smtp: &str, args: &[&str]) -> Command {
    let mut cmd = support::pqwatch(api, dir, args);
    cmd.env("PQWATCH_MAIL_SMTP_URL", smtp)
        .env("PQWATCH_MAIL_FROM", "pqwatch <alerts@pqwatch.test>")
        .env("PQWATCH_MAIL_RETRY_BASE_SECS", "0");
    cmd
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn day(offset: u64) -> String {
    (pqwatch::pipeline::uk_today(Utc::now()) - Days::new(offset)).to_string()
}

/// Two editions of the drug-conveyance statistic: the first answered `first`, the second (2023
/// revised from 21 to 23, 2024 new) answered today.
fn editions(first: &str) -> (Value, Value) {
    let a = corpus_question("2024-02-01-prison-officers-dismissal", 1, first);
    let html = a["answerText"].as_str().unwrap().replace(
        "<tr><td>2023</td><td>21</td></tr>",
        "<tr><td>2023</td><td>23</td></tr><tr><td>2024</td><td>30</td></tr>",
    );
    let b = question(2, &day(0), "Prison Officers: Dismissal", &html);
    (a, b)
}

#[test]
fn a_follower_gets_exactly_one_email_with_the_new_and_revised_figures_and_others_get_none() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&dir.path().join("smtp"), &[]);
    let (url, smtp) = (api.base_url(), sink.url());
    let (first, second) = editions(&day(3));
    api.set_questions(vec![first]);
    // History first, silently.
    let d = day(3);
    ok(pqwatch(
        &url,
        dir.path(),
        &smtp,
        &["poll", "--once", "--from", &d, "--to", &d],
    )
    .output()
    .unwrap());
    for (email, keywords) in [
        ("rep@union.test", "conveyance of drugs, dismissal"),
        ("other@charity.test", "parole, remand"),
    ] {
        ok(pqwatch(
            &url,
            dir.path(),
            &smtp,
            &[
                "subscribe",
                email,
                "--keywords",
                keywords,
                "--confirmed",
                "--name",
                "Rep",
            ],
        )
        .output()
        .unwrap());
    }
    assert!(
        sink.received().is_empty(),
        "confirmed subscribers get no confirmation email"
    );

    api.state.lock().unwrap().questions.push(second);
    ok(pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
        .output()
        .unwrap());

    let got = sink.received();
    assert_eq!(got.len(), 1, "exactly one email");
    let m = &got[0];
    assert_eq!(m.header("To").as_deref(), Some("Rep <rep@union.test>"));
    assert_eq!(
        m.header("Subject").as_deref(),
        Some(
            "New and revised figures: Prison Officer (and PCO) Conveyance of Drugs 2019- Dec 2023"
        )
    );
    assert!(m.text.contains("New figures:\n  Prison Officer (and PCO) Conveyance of Drugs 2019- Dec 2023\n    2024 / Amount: 30"), "{}", m.text);
    assert_eq!(
        m.text
            .matches("\n  Prison Officer (and PCO) Conveyance of Drugs 2019- Dec 2023\n    ")
            .count(),
        2,
        "the title heads each group once: {}",
        m.text
    );
    assert!(
        m.text
            .contains("2023 / Amount: 21 -> 23 (was given in Commons 10001"),
        "{}",
        m.text
    );
    assert!(m.text.contains(
        "Official record: https://questions-statements.parliament.uk/written-questions/detail/"
    ));
    assert!(m.text.contains("| 2023 | *23* |"), "{}", m.text);
    assert!(m.html.contains("background:#ffe066"));
    let id = m.header("Message-ID").unwrap();
    assert!(
        id.starts_with("<pqwatch.1.") && id.ends_with("@pqwatch.test>"),
        "{id}"
    );
    assert!(m
        .header("List-Unsubscribe")
        .unwrap()
        .contains("mailto:alerts@pqwatch.test"));
    assert_eq!(
        m.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );

    // Another pass sends nothing again.
    ok(pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
        .output()
        .unwrap());
    assert_eq!(sink.received().len(), 1);
    let o = ok(
        pqwatch(&url, dir.path(), &smtp, &["alerts", "list", "--json"])
            .output()
            .unwrap(),
    );
    let alerts: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(alerts[0]["status"], "sent");
    assert_eq!(alerts[0]["email"], "rep@union.test");
}

#[test]
fn header_injection_and_hostile_html_in_an_answer_are_neutralised_in_the_received_bytes() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&dir.path().join("smtp"), &[]);
    let (url, smtp) = (api.base_url(), sink.url());
    let html = "<p>Drone finds <script>alert('x')</script><img src=x onerror=alert(1)></p>\
        <table><tr><th>Year</th><th>Drone finds <b onmouseover=\"alert(2)\">(all)</b></th></tr><tr><td>2024</td><td>1,667</td></tr></table>\
        <p>Source: <a href=\"javascript:alert(1)\">click</a> &lt;script&gt;steal()&lt;/script&gt;</p>";
    let mut q = question(5, &day(0), "Prisons: Drones\r\nBcc: victim@evil.test", html);
    q["questionText"] = Value::String("Drones?\r\nX-Injected: yes".into());
    api.set_questions(vec![q]);
    ok(pqwatch(
        &url,
        dir.path(),
        &smtp,
        &[
            "subscribe",
            "rep@union.test",
            "--keywords",
            "drones",
            "--confirmed",
        ],
    )
    .output()
    .unwrap());

    ok(pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
        .output()
        .unwrap());

    let got = sink.received();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    let head = m.raw.split("\r\n\r\n").next().unwrap();
    assert!(
        !head
            .lines()
            .any(|l| l.starts_with("Bcc:") || l.starts_with("X-Injected:")),
        "{head}"
    );
    assert!(m.html.contains("Drone finds"), "{}", m.html);
    for bad in ["<script", "<img", "javascript:", "onerror"] {
        assert!(!m.html.to_lowercase().contains(bad), "{bad} in {}", m.html);
    }
    assert!(m.html.contains("&lt;script&gt;"));
}

#[test]
fn alerts_queued_while_the_smtp_server_is_down_wait_untouched_and_arrive_once_when_it_is_back() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let mut sink = SmtpSink::new(&dir.path().join("smtp"), &[]);
    let (url, smtp) = (api.base_url(), sink.url());
    let (first, second) = editions(&day(0));
    let mut second = second;
    second["dateAnswered"] = first["dateAnswered"].clone();
    api.set_questions(vec![first]);
    for i in 0..12 {
        ok(pqwatch(
            &url,
            dir.path(),
            &smtp,
            &[
                "subscribe",
                &format!("rep{i}@union.test"),
                "--keywords",
                "drugs",
                "--confirmed",
            ],
        )
        .output()
        .unwrap());
    }

    // The server is down: the pass stores the answer and queues the alerts, and says so.
    let o = pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ok(pqwatch(
        &url,
        dir.path(),
        &smtp,
        &["alerts", "list", "--pending", "--json"],
    )
    .output()
    .unwrap());
    let pending: Value = serde_json::from_slice(&o.stdout).unwrap();
    let pending = pending.as_array().unwrap();
    assert_eq!(pending.len(), 12);
    // Only the sends already in flight tried; the rest wait untouched for the next pass.
    let tried: Vec<&Value> = pending.iter().filter(|a| a["attempts"] == 1).collect();
    assert!(
        !tried.is_empty() && tried.len() <= pqwatch::notify::mailer::SEND_CONCURRENCY,
        "{pending:?}"
    );
    assert!(pending
        .iter()
        .all(|a| a["attempts"] == 1 || a["attempts"] == 0));
    let why = tried[0]["last_error"].as_str().unwrap();
    assert!(why.contains("SMTP relay: connecting to 127.0.0.1"), "{why}");
    // A monitor sees it too.
    let o = ok(pqwatch(&url, dir.path(), &smtp, &["status", "--json"])
        .output()
        .unwrap());
    let status: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["alerts"]["pending"], 12);
    assert_eq!(status["alerts"]["last_error"], why);
    assert!(status["alerts"]["oldest_pending_at"].is_string());

    sink.resume();
    api.state.lock().unwrap().questions.push(second);
    ok(pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
        .output()
        .unwrap());

    let got = sink.received();
    let mut ids = sink.message_ids();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "no message twice");
    assert_eq!(ids.len(), 24, "12 subscribers × 2 answers");
    let mut peers: Vec<&str> = got.iter().map(|m| m.peer.as_str()).collect();
    peers.sort();
    peers.dedup();
    assert!(
        peers.len() <= pqwatch::notify::mailer::SEND_CONCURRENCY,
        "connections are reused: {} for 24 messages",
        peers.len()
    );
}

#[test]
fn a_5xx_for_one_address_fails_that_alert_and_the_rest_are_delivered() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&dir.path().join("smtp"), &["--reject", "gone@union.test"]);
    let (url, smtp) = (api.base_url(), sink.url());
    let (first, _) = editions(&day(0));
    api.set_questions(vec![first]);
    for email in ["a@union.test", "gone@union.test", "b@union.test"] {
        ok(pqwatch(
            &url,
            dir.path(),
            &smtp,
            &["subscribe", email, "--keywords", "drugs", "--confirmed"],
        )
        .output()
        .unwrap());
    }
    ok(pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
        .output()
        .unwrap());

    let to: Vec<String> = sink
        .received()
        .iter()
        .map(|m| m.header("To").unwrap())
        .collect();
    assert_eq!(to.len(), 2, "{to:?}");
    let o = ok(
        pqwatch(&url, dir.path(), &smtp, &["alerts", "list", "--json"])
            .output()
            .unwrap(),
    );
    let alerts: Value = serde_json::from_slice(&o.stdout).unwrap();
    let failed: Vec<&Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["email"], "gone@union.test");
}

#[test]
fn a_4xx_for_one_address_is_retried_after_its_backoff_and_arrives_once() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&dir.path().join("smtp"), &["--defer", "grey@union.test"]);
    let (url, smtp) = (api.base_url(), sink.url());
    let (first, _) = editions(&day(0));
    api.set_questions(vec![first]);
    for email in ["a@union.test", "grey@union.test"] {
        ok(pqwatch(
            &url,
            dir.path(),
            &smtp,
            &["subscribe", email, "--keywords", "drugs", "--confirmed"],
        )
        .output()
        .unwrap());
    }
    // A first retry after 2 × 2 s.
    let poll = || {
        ok(pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
            .env("PQWATCH_MAIL_RETRY_BASE_SECS", "2")
            .output()
            .unwrap())
    };
    let to = || -> Vec<String> {
        let mut to: Vec<String> = sink
            .received()
            .iter()
            .map(|m| m.header("To").unwrap())
            .collect();
        to.sort();
        to
    };
    poll();
    assert_eq!(to(), ["a@union.test"]);
    let o = ok(pqwatch(
        &url,
        dir.path(),
        &smtp,
        &["alerts", "list", "--pending", "--json"],
    )
    .output()
    .unwrap());
    let pending: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(pending[0]["email"], "grey@union.test");
    assert_eq!(pending[0]["attempts"], 1);
    assert!(
        pending[0]["last_error"].as_str().unwrap().contains("451"),
        "{pending}"
    );

    poll();
    assert_eq!(to(), ["a@union.test"], "not before its backoff");
    std::thread::sleep(Duration::from_millis(4100));
    poll();
    assert_eq!(to(), ["a@union.test", "grey@union.test"]);
    poll();
    assert_eq!(to().len(), 2, "and only once");
}

#[test]
fn killed_mid_batch_every_alert_arrives_and_only_those_in_flight_repeat_with_their_message_id() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    // Each message takes 150 ms to be accepted, so the kill lands mid-batch.
    let sink = SmtpSink::start(&dir.path().join("smtp"), &["--delay", "0.15"]);
    let (url, smtp) = (api.base_url(), sink.url());
    let (first, _) = editions(&day(0));
    api.set_questions(vec![first]);
    let csv = dir.path().join("list.csv");
    let mut rows = String::from("email,keywords,confirmed\n");
    for i in 0..20 {
        rows.push_str(&format!("rep{i}@union.test,drugs,yes\n"));
    }
    std::fs::write(&csv, rows).unwrap();
    ok(pqwatch(
        &url,
        dir.path(),
        &smtp,
        &["subscribers", "import", csv.to_str().unwrap()],
    )
    .output()
    .unwrap());

    let mut child = pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sink.received().len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let at_kill = sink.received().len();
    assert!((5..20).contains(&at_kill), "killed mid-batch ({at_kill})");

    ok(pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
        .output()
        .unwrap());

    let got = sink.received();
    let mut ids = sink.message_ids();
    ids.dedup();
    assert_eq!(ids.len(), 20, "every alert arrived");
    // A message whose end of data reached the server before the kill, but whose reply never
    // came back, is one the server keeps and pqwatch cannot know about (RFC 1047): it is resent
    // with the same Message-ID, so a mail client shows it once. Only the messages in flight,
    // at most SEND_CONCURRENCY, can be in that state. (Here it is typically 3: the test server
    // goes on accepting what it had read after the client is gone.)
    let bound = 20 + pqwatch::notify::mailer::SEND_CONCURRENCY;
    assert!(
        got.len() <= bound,
        "at most the messages in flight repeat ({})",
        got.len()
    );
}

#[test]
fn an_unconfirmed_subscriber_gets_only_the_confirmation_email() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&dir.path().join("smtp"), &[]);
    let (url, smtp) = (api.base_url(), sink.url());
    let (first, _) = editions(&day(0));
    api.set_questions(vec![first]);
    ok(pqwatch(
        &url,
        dir.path(),
        &smtp,
        &["subscribe", "new@union.test", "--keywords", "drugs"],
    )
    .output()
    .unwrap());
    ok(pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
        .output()
        .unwrap());

    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].header("Subject").as_deref(),
        Some("Please confirm your pqwatch alerts")
    );
}

#[test]
fn bad_subscriber_input_is_refused_with_the_line_or_flag_named() {
    let dir = tempfile::tempdir().unwrap();
    let o = pqwatch(
        "http://127.0.0.1:9",
        dir.path(),
        "",
        &["subscribe", "not-an-address", "--keywords", "x"],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an email address"));
    let o = pqwatch(
        "http://127.0.0.1:9",
        dir.path(),
        "",
        &[
            "subscribe",
            "a@b.test",
            "--keywords",
            "x",
            "--digest",
            "hourly",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("--digest") && e.contains("\"instant\"") && e.contains("\"weekly\""),
        "the message lists every value accepted: {e}"
    );

    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "email,keywords\nok@union.test,prison\nbroken,prison\n",
    )
    .unwrap();
    let o = pqwatch(
        "http://127.0.0.1:9",
        dir.path(),
        "",
        &["subscribers", "import", csv.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("line 3") && e.contains("nothing imported"),
        "{e}"
    );
    assert!(
        !dir.path().join("db.sqlite").exists(),
        "nothing half-written: the database was not even created"
    );
}

#[test]
fn a_daily_subscriber_gets_one_digest_of_the_answers_newest_first_at_their_hour() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&dir.path().join("smtp"), &[]);
    let (url, smtp) = (api.base_url(), sink.url());
    let (mut first, second) = editions(&day(0));
    first["answerText"] = Value::String(
        first["answerText"]
            .as_str()
            .unwrap()
            .replace("Dec 2023", "Dec 2022"),
    );
    api.set_questions(vec![first, second]);
    ok(pqwatch(
        &url,
        dir.path(),
        &smtp,
        &[
            "subscribe",
            "daily@union.test",
            "--keywords",
            "drugs",
            "--digest",
            "daily",
            "--confirmed",
        ],
    )
    .output()
    .unwrap());
    ok(pqwatch(
        &url,
        dir.path(),
        &smtp,
        &[
            "subscribe",
            "instant@union.test",
            "--keywords",
            "drugs",
            "--confirmed",
        ],
    )
    .output()
    .unwrap());

    // The digest hour has passed (hour 0), so the digest goes out in this pass.
    ok(pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
        .env("PQWATCH_MAIL_DIGEST_HOUR", "0")
        .output()
        .unwrap());

    let got = sink.received();
    let daily: Vec<_> = got
        .iter()
        .filter(|m| m.header("To").unwrap().contains("daily@"))
        .collect();
    let instant: Vec<_> = got
        .iter()
        .filter(|m| m.header("To").unwrap().contains("instant@"))
        .collect();
    assert_eq!(instant.len(), 2, "one instant alert per answer");
    assert_eq!(daily.len(), 1, "one digest");
    let subject = daily[0].header("Subject").unwrap();
    assert!(
        subject.starts_with(&format!("Daily digest {}:", day(0))),
        "{subject}"
    );
    assert!(subject.ends_with("in 2 answers"), "{subject}");
    assert!(daily[0].text.contains("=========="));

    // A second pass the same day sends no second digest.
    ok(pqwatch(&url, dir.path(), &smtp, &["poll", "--once"])
        .env("PQWATCH_MAIL_DIGEST_HOUR", "0")
        .output()
        .unwrap());
    assert_eq!(sink.received().len(), 3);
}

#[test]
fn a_backfill_is_silent_unless_asked_to_alert() {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&dir.path().join("smtp"), &[]);
    let (url, smtp) = (api.base_url(), sink.url());
    let (first, mut second) = editions(&day(0));
    second["dateAnswered"] = first["dateAnswered"].clone();
    api.set_questions(vec![first]);
    ok(pqwatch(
        &url,
        dir.path(),
        &smtp,
        &[
            "subscribe",
            "rep@union.test",
            "--keywords",
            "drugs",
            "--confirmed",
        ],
    )
    .output()
    .unwrap());
    let d = day(0);
    ok(pqwatch(
        &url,
        dir.path(),
        &smtp,
        &["poll", "--once", "--from", &d, "--to", &d],
    )
    .output()
    .unwrap());
    assert!(sink.received().is_empty(), "history is built silently");

    api.state.lock().unwrap().questions.push(second);
    let o = pqwatch(
        &url,
        dir.path(),
        &smtp,
        &["poll", "--once", "--from", &d, "--to", &d, "--alert"],
    )
    .output()
    .unwrap();
    ok(o);
    // The range was already complete; a new range with --alert picks up the new answer.
    let y = day(1);
    ok(pqwatch(
        &url,
        dir.path(),
        &smtp,
        &["poll", "--once", "--from", &y, "--to", &d, "--alert"],
    )
    .output()
    .unwrap());
    let got = sink.received();
    assert_eq!(got.len(), 1, "{}", got.len());
    assert_eq!(
        got[0].header("Subject").as_deref(),
        Some(
            "New and revised figures: Prison Officer (and PCO) Conveyance of Drugs 2019- Dec 2023"
        )
    );
}

#[test]
fn signed_links_in_emails_confirm_and_unsubscribe_by_post_and_forged_links_or_a_get_change_nothing()
{
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&dir.path().join("smtp"), &[]);
    let (url, smtp) = (api.base_url(), sink.url());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let with_web = |args: &[&str]| {
        let mut c = pqwatch(&url, dir.path(), &smtp, args);
        c.env("PQWATCH_WEB_LISTEN", format!("127.0.0.1:{port}"))
            .env("PQWATCH_MAIL_PUBLIC_BASE_URL", &base);
        c
    };
    ok(
        with_web(&["subscribe", "rep@union.test", "--keywords", "drugs"])
            .output()
            .unwrap(),
    );
    let confirm = sink.received()[0].text.clone();
    let link = confirm
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{base}/confirm?t=")))
        .expect("a confirm link")
        .to_owned();

    let mut daemon = with_web(&["run"])
        .env("PQWATCH_SCHEDULE_CRON", "0 0 0 1 1 *")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let get = loop {
        match client.get(&link).send() {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(get.status(), 200);
    assert!(get.text().unwrap().contains("<form method=\"post\""));
    let list =
        |c: &mut Command| -> Value { serde_json::from_slice(&c.output().unwrap().stdout).unwrap() };
    assert_eq!(
        list(&mut with_web(&["subscribers", "list", "--json"]))[0]["confirmed"],
        false,
        "a GET changes nothing"
    );

    let post = client.post(&link).send().unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(
        list(&mut with_web(&["subscribers", "list", "--json"]))[0]["confirmed"],
        true
    );

    // Links are signed for their action: the confirm link's token cannot unsubscribe, and
    // neither can the bare token (the mailto unsubscribe subject shows it).
    let (_, signed) = link.split_once("?t=").unwrap();
    let (token, _) = signed.split_once('.').unwrap();
    for forged in [
        link.replace("/confirm?", "/unsubscribe?"),
        format!("{base}/unsubscribe?t={token}"),
        format!("{base}/unsubscribe?t={token}.{}", "0".repeat(64)),
    ] {
        let r = client.post(&forged).send().unwrap();
        assert_eq!(r.status(), 404, "{forged}");
    }
    assert_eq!(
        list(&mut with_web(&["subscribers", "list", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        1,
        "forged links change nothing"
    );

    // RFC 8058 one-click unsubscribe, as a mail client sends it, from the List-Unsubscribe
    // header that every email carries.
    let header = sink.received()[0].header("List-Unsubscribe").unwrap();
    let unsubscribe = header
        .split(", ")
        .find_map(|v| v.strip_prefix(&format!("<{base}/unsubscribe?t=")))
        .map(|v| format!("{base}/unsubscribe?t={}", v.trim_end_matches('>')))
        .expect("a one-click link");
    // The mailto carries the subscriber's own token (the confirm link's is another, fresh per
    // sign-up).
    let (own, _) = unsubscribe
        .split_once("?t=")
        .unwrap()
        .1
        .split_once('.')
        .unwrap();
    assert_ne!(own, token);
    assert!(header.contains(&format!(
        "mailto:alerts@pqwatch.test?subject=unsubscribe%20{own}"
    )));
    let r = client
        .post(&unsubscribe)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        list(&mut with_web(&["subscribers", "list", "--json"])),
        serde_json::json!([])
    );
    let r = client.post(&unsubscribe).send().unwrap();
    assert_eq!(r.status(), 404, "an unsubscribed holder's link is spent");

    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    assert!(daemon.wait().unwrap().success());
}

#[test]
fn a_relay_with_starttls_or_implicit_tls_and_auth_gets_mail_and_a_wrong_password_is_refused() {
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let (cert, key) = (tls.join("localhost.pem"), tls.join("localhost.key"));
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    for (mode, scheme) in [("--starttls", "smtp"), ("--tls", "smtps")] {
        let dir = tempfile::tempdir().unwrap();
        let sink = SmtpSink::start(
            &dir.path().join("smtp"),
            &[mode, cert, key, "--auth", "pqwatch", "s3cret"],
        );
        // The certificate names localhost, signed by a private CA that only tls_ca_file trusts.
        let smtp = format!("{scheme}://localhost:{}", sink.port);
        // The password from the environment for STARTTLS, from a credentials file for TLS.
        let run = |args: &[&str], password: &str| {
            let mut cmd = pqwatch("http://127.0.0.1:9", dir.path(), &smtp, args);
            cmd.env("PQWATCH_MAIL_TLS_CA_FILE", tls.join("ca.pem"))
                .env("PQWATCH_MAIL_SMTP_USERNAME", "pqwatch")
                .env("PQWATCH_MAIL_MAX_ATTEMPTS", "1")
                .env("PQWATCH_MAIL_RETRY_BASE_SECS", "3600");
            if scheme == "smtp" {
                cmd.env("PQWATCH_MAIL_SMTP_PASSWORD", password);
            } else {
                let creds = dir.path().join("creds");
                std::fs::create_dir_all(&creds).unwrap();
                std::fs::write(creds.join("smtp-password"), format!("{password}\n")).unwrap();
                cmd.env("CREDENTIALS_DIRECTORY", &creds)
                    .env("PQWATCH_MAIL_SMTP_PASSWORD_FILE", "smtp-password");
            }
            within(cmd, 60)
        };
        // `subscribe` sends the confirmation email at once.
        run(
            &["subscribe", "a@union.test", "--keywords", "drugs"],
            "wrong",
        );
        assert!(
            sink.received().is_empty(),
            "{mode}: a wrong password sends nothing"
        );
        let o = ok(run(&["alerts", "list", "--json"], "wrong"));
        let alerts: Value = serde_json::from_slice(&o.stdout).unwrap();
        // The relay's fault, not the message's: it waits (max_attempts is 1 here).
        assert_eq!(alerts[0]["status"], "pending", "{mode}: {alerts}");
        assert!(
            alerts[0]["last_error"].as_str().unwrap().contains("535"),
            "{mode}: {alerts}"
        );

        // Without the private CA the relay's certificate is not trusted, and nothing is sent.
        let mut untrusted = pqwatch(
            "http://127.0.0.1:9",
            dir.path(),
            &smtp,
            &["subscribe", "c@union.test", "--keywords", "drugs"],
        );
        untrusted
            .env("PQWATCH_MAIL_SMTP_USERNAME", "pqwatch")
            .env("PQWATCH_MAIL_SMTP_PASSWORD", "s3cret")
            .env("PQWATCH_MAIL_MAX_ATTEMPTS", "1")
            .env("PQWATCH_MAIL_RETRY_BASE_SECS", "3600");
        within(untrusted, 60);
        assert!(
            sink.received().is_empty(),
            "{mode}: an untrusted certificate is refused"
        );
        let o = ok(run(&["alerts", "list", "--json"], "s3cret"));
        let alerts: Value = serde_json::from_slice(&o.stdout).unwrap();
        let c = alerts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["email"] == "c@union.test")
            .unwrap();
        assert!(
            c["last_error"].as_str().unwrap().contains("certificate"),
            "{mode}: {c}"
        );
        assert_eq!(c["status"], "pending", "{mode}: {c}");

        ok(run(
            &["subscribe", "b@union.test", "--keywords", "drugs"],
            "s3cret",
        ));
        let got = sink.received();
        assert_eq!(got.len(), 1, "{mode}");
        assert_eq!(got[0].header("To").as_deref(), Some("b@union.test"));
        assert_eq!(
            got[0].header("Subject").as_deref(),
            Some("Please confirm your pqwatch alerts")
        );
    }
}

#[test]
fn a_relay_that_accepts_but_never_replies_times_out_and_the_alert_waits_for_the_next_pass() {
    let dir = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp = format!("smtp+plain://{}", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming() {
            held.push(c);
        }
    });
    let started = Instant::now();
    let mut cmd = pqwatch(
        "http://127.0.0.1:9",
        dir.path(),
        &smtp,
        &["subscribe", "a@union.test", "--keywords", "drugs"],
    );
    cmd.env("PQWATCH_MAIL_SMTP_TIMEOUT_SECS", "1");
    let o = within(cmd, 30);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(started.elapsed() < Duration::from_secs(25));
    let o = ok(pqwatch(
        "http://127.0.0.1:9",
        dir.path(),
        &smtp,
        &["alerts", "list", "--json"],
    )
    .output()
    .unwrap());
    let alerts: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(alerts[0]["status"], "pending", "{alerts}");
    assert!(
        alerts[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("no reply within 1 s"),
        "{alerts}"
    );
}
