//! The `pqwatch` binary as a user runs it: exit codes, messages, JSON output, and a backfill
//! killed half-way and run again.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::fake_api::FakeApi;
use crate::support::{self, corpus_question, question};

fn pqwatch(api: &str, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = support::pqwatch(api, dir, args);
    cmd.env("PQWATCH_API_TIMEOUT_SECS", "2");
    cmd
}

fn run(api: &str, dir: &Path, args: &[&str]) -> Output {
    pqwatch(api, dir, args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn answers_list_json_carries_the_fields_scripts_rely_on() {
    let api = FakeApi::start();
    api.set_questions(vec![corpus_question(
        "2024-02-01-prison-officers-dismissal",
        1689000,
        "2024-02-01",
    )]);
    let dir = tempfile::tempdir().unwrap();
    let url = api.base_url();
    let o = run(
        &url,
        dir.path(),
        &[
            "poll",
            "--once",
            "--from",
            "2024-01-29",
            "--to",
            "2024-02-02",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let o = run(
        &url,
        dir.path(),
        &["answers", "list", "--since", "2024-01-01", "--json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = &list[0];
    assert_eq!(a["id"], 1689000);
    assert_eq!(a["uin"], "1699000");
    assert_eq!(a["house"], "Commons");
    assert_eq!(a["date_tabled"], "2024-02-01");
    assert_eq!(a["date_answered"], "2024-02-01");
    assert_eq!(a["heading"], "Prison Officers: Dismissal");
    assert_eq!(a["answering_body"], "Ministry of Justice");
    assert_eq!(a["answering_body_id"], 54);
    assert_eq!(
        a["url"],
        "https://questions-statements.parliament.uk/written-questions/detail/2024-02-01/1699000"
    );

    let o = run(
        &url,
        dir.path(),
        &["answers", "list", "--since", "2024-02-02", "--json"],
    );
    let later: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(later.as_array().unwrap().len(), 0);

    let o = run(&url, dir.path(), &["answers", "show", "1689000", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["id"], 1689000);
    assert!(d["question_text"].as_str().unwrap().contains("dismissed"));
    assert!(d["answer_versions"][0]["answer_html"]
        .as_str()
        .unwrap()
        .contains("<td>2023</td>"));
}

#[test]
fn showing_an_unknown_answer_exits_3_and_says_how_to_find_one() {
    let dir = tempfile::tempdir().unwrap();
    // A database to look in.
    run(
        "http://127.0.0.1:9",
        dir.path(),
        &[
            "subscribe",
            "ops@union.org.uk",
            "--keywords",
            "x",
            "--confirmed",
        ],
    );
    let o = run("http://127.0.0.1:9", dir.path(), &["answers", "show", "42"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("answers list"), "{}", stderr(&o));
}

#[test]
fn a_bad_setting_exits_2_naming_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let o = pqwatch("http://127.0.0.1:9", dir.path(), &["poll", "--once"])
        .env("PQWATCH_API_PAGE_SIZE", "0")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("[api.page_size]") && e.contains("fix:"), "{e}");

    let o = Command::new(env!("CARGO_BIN_EXE_pqwatch"))
        .args(["--config", "/nonexistent.toml", "poll", "--once"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent.toml"), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).matches("No such file or directory").count(),
        1,
        "the cause is said once: {}",
        stderr(&o)
    );
}

#[test]
fn a_setting_found_wrong_only_when_used_blames_the_variable_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    // A listen address that cannot be bound: `run` stops before polling.
    let mut cmd = pqwatch("http://127.0.0.1:9", dir.path(), &["run"]);
    cmd.env("PQWATCH_WEB_LISTEN", "nonsense");
    let o = support::within(cmd, 30);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("environment variable PQWATCH_WEB_LISTEN")
            && e.contains("[web.listen]")
            && e.contains("fix:")
            && !e.contains("config file"),
        "{e}"
    );

    // A database path from the environment that does not exist, for a command that only reads.
    let o = pqwatch("http://127.0.0.1:9", dir.path(), &["status"])
        .env(
            "PQWATCH_DATABASE_PATH",
            dir.path().join("mistyped/db.sqlite"),
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("does not exist") && e.contains("environment variable PQWATCH_DATABASE_PATH"),
        "{e}"
    );
}

#[test]
fn bad_command_lines_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let url = "http://127.0.0.1:9";
    let o = run(url, dir.path(), &["poll"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--once"), "{}", stderr(&o));

    let o = run(
        url,
        dir.path(),
        &[
            "poll",
            "--once",
            "--from",
            "2024-02-02",
            "--to",
            "2024-02-01",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("after --to"), "{}", stderr(&o));

    let o = run(
        url,
        dir.path(),
        &[
            "poll",
            "--once",
            "--from",
            "02/01/2024",
            "--to",
            "2024-02-01",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--from") && stderr(&o).contains("YYYY-MM-DD"),
        "{}",
        stderr(&o)
    );
    for bad in ["2024-13-01", "2026-02-30", "yesterday"] {
        let o = run(url, dir.path(), &["backfill", "--since", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let e = stderr(&o);
        assert!(
            e.contains(bad) && e.contains("--since") && e.contains("give one as YYYY-MM-DD"),
            "{e}"
        );
    }

    let o = run(url, dir.path(), &["poll", "--once", "--from", "2024-02-01"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_poll_that_cannot_reach_the_api_exits_1_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let o = pqwatch("http://127.0.0.1:9", dir.path(), &["poll", "--once"])
        .env("PQWATCH_API_MAX_RETRIES", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("retried on the next pass"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_backfill_killed_half_way_then_run_again_stores_every_answer_exactly_once() {
    let api = FakeApi::start();
    let qs: Vec<Value> = (0..40)
        .map(|i| {
            question(
                500 + i,
                &format!("2024-01-{:02}", 1 + i % 28),
                "Prisons: Staff",
                &format!("<p>Prison officers in post: {}</p>", 1000 + i),
            )
        })
        .collect();
    api.set_questions(qs);
    api.state.lock().unwrap().detail_delay = Duration::from_millis(60);
    let dir = tempfile::tempdir().unwrap();
    let url = api.base_url();
    let args = [
        "poll",
        "--once",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-31",
    ];

    let mut child = pqwatch(&url, dir.path(), &args)
        .env("PQWATCH_API_CONCURRENCY", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once some, but not all, details have been fetched.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let details = api.requests().iter().filter(|p| !p.contains('?')).count();
        if details >= 15 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first_details = api.requests().iter().filter(|p| !p.contains('?')).count();
    assert!(
        first_details < 40,
        "killed before the end ({first_details})"
    );

    api.state.lock().unwrap().detail_delay = Duration::ZERO;
    let o = run(&url, dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = run(&url, dir.path(), &["answers", "list", "--json"]);
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = list.as_array().unwrap();
    let mut ids: Vec<i64> = list.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, (500..540).collect::<Vec<_>>());
    assert!(
        list.iter().all(|a| a["versions"] == 1),
        "no answer stored twice"
    );
    let all_details = api.requests().iter().filter(|p| !p.contains('?')).count();
    assert!(
        all_details < 40 + first_details,
        "the re-run resumed rather than starting again ({all_details})"
    );
}

#[test]
fn extract_reads_a_single_question_api_response_and_prints_the_stable_json() {
    let dir = tempfile::tempdir().unwrap();
    let q = corpus_question("2015-12-noms-staff-dismissed-corruption", 7, "2015-12-15");
    let file = dir.path().join("answer.json");
    std::fs::write(
        &file,
        serde_json::json!({"value": q, "links": []}).to_string(),
    )
    .unwrap();

    // No config is needed: run it from an empty folder.
    let o = Command::new(env!("CARGO_BIN_EXE_pqwatch"))
        .current_dir(dir.path())
        .args(["extract", "answer.json", "--json"])
        .output()
        .unwrap();

    assert!(o.status.success(), "{}", stderr(&o));
    let x: Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = &x["tables"][0];
    for key in [
        "caption",
        "header_rows",
        "rows",
        "observations",
        "notes",
        "problems",
    ] {
        assert!(t.get(key).is_some(), "{key} missing from {t}");
    }
    assert_eq!(
        t["header_rows"][0],
        serde_json::json!(["Year", "Dismissals"])
    );
    let total = t["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["row"] == serde_json::json!(["Total"]))
        .unwrap();
    for key in ["row", "column", "raw", "value", "kind", "unit"] {
        assert!(total.get(key).is_some(), "{key} missing from {total}");
    }
    assert_eq!(total["value"], 79.0);
    assert_eq!(total["kind"], "number");
    assert_eq!(total["unit"], "count");
}

#[test]
fn extract_renders_html_and_text_readably_and_refuses_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("a.html");
    std::fs::write(&html, "<p>Drone finds</p><table><tr><th>Year</th><th>Finds</th></tr><tr><td>2023</td><td>1,667</td></tr></table>").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pqwatch"))
        .args(["extract"])
        .arg(&html)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Table 1: Drone finds"), "{out}");
    assert!(out.contains("1,667"), "{out}");

    let o = Command::new(env!("CARGO_BIN_EXE_pqwatch"))
        .args(["extract", "/nonexistent/answer.json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/answer.json"));
}

#[test]
fn series_and_changes_commands_show_history_with_sources_and_export_tidy_csv() {
    let api = FakeApi::start();
    let first = corpus_question("2024-02-01-prison-officers-dismissal", 1, "2024-02-01");
    let html = first["answerText"].as_str().unwrap().replace(
        "<tr><td>2023</td><td>21</td></tr>",
        "<tr><td>2023</td><td>23</td></tr><tr><td>2024</td><td>30</td></tr>",
    );
    let second = question(2, "2025-02-03", "Prison Officers: Dismissal", &html);
    api.set_questions(vec![first, second]);
    let dir = tempfile::tempdir().unwrap();
    let url = api.base_url();
    for (from, to) in [("2024-02-01", "2024-02-01"), ("2025-02-03", "2025-02-03")] {
        let o = run(
            &url,
            dir.path(),
            &["poll", "--once", "--from", from, "--to", to],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }

    let o = run(&url, dir.path(), &["series", "list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &list[0];
    assert_eq!(list.as_array().unwrap().len(), 1);
    for key in [
        "id",
        "title",
        "unit",
        "first_period",
        "last_period",
        "sources",
    ] {
        assert!(s.get(key).is_some(), "{key}");
    }
    assert_eq!(
        (s["first_period"].as_str(), s["last_period"].as_str()),
        (Some("2019"), Some("2024"))
    );
    assert_eq!(s["sources"], 2);
    let id = s["id"].to_string();

    let o = run(&url, dir.path(), &["series", "show", &id, "--json"]);
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["values"].as_array().unwrap().len(), 11);
    assert_eq!(d["revisions"].as_array().unwrap().len(), 1);
    assert_eq!(d["revisions"][0]["previous_raw"], "21");
    let reason = &d["sources"][1]["reason"];
    assert_eq!(reason["matched"].to_string(), id, "{reason}");
    assert!(
        reason["why"]
            .as_str()
            .unwrap()
            .starts_with("matched statistic"),
        "{reason}"
    );

    let o = run(&url, dir.path(), &["changes", "--json"]);
    let ch: Value = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<&str> = ch
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    // Newest first: the second answer's 2024 (new) and 2023 (revised), then the first's five.
    assert_eq!(kinds, ["new", "revised", "new", "new", "new", "new", "new"]);
    assert_eq!(ch[0]["period_key"], "2024");
    assert_eq!(ch[0]["source"]["uin"], "10002");
    assert_eq!(
        ch[0]["source"]["url"],
        "https://questions-statements.parliament.uk/written-questions/detail/2025-02-03/10002"
    );
    let o = run(
        &url,
        dir.path(),
        &["changes", "--since", "2999-01-01", "--json"],
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).unwrap(),
        serde_json::json!([])
    );

    let o = run(&url, dir.path(), &["series", "export", &id, "--csv"]);
    let csv = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("statistic_id,statistic,unit,cell,period_key"));
    assert_eq!(lines.len(), 12, "a header and one row per observation");
    assert!(lines
        .iter()
        .any(|l| l.contains(",2023,") && l.contains(",23,")));

    let o = run(&url, dir.path(), &["series", "export", &id]);
    assert_eq!(o.status.code(), Some(2), "--csv is required");
    let o = run(&url, dir.path(), &["series", "show", "999"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("series list"));
}
