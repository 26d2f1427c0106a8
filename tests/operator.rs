//! The operator's first hour, through the real binary: one configuration found the same way by
//! the service and a shell, settings checked before use, exit codes that mean one thing each,
//! read-only commands that create nothing, and output that reads well in a log.

use std::path::Path;
use std::process::{Command, Output};

use crate::support;

/// `pqwatch` with no inherited `PQWATCH_*` or log settings, run in `cwd`.
fn bare(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pqwatch"));
    cmd.current_dir(cwd).args(args).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("PQWATCH_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn settings_that_would_overflow_later_exit_2_naming_the_variable_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, args) in [
        (
            "PQWATCH_SCHEDULE_STALE_AFTER_MINUTES",
            "9223372036854775807",
            &["status"][..],
        ),
        ("PQWATCH_API_MAX_RPS", "1e-300", &["poll", "--once"][..]),
        (
            "PQWATCH_WATCH_FIRST_POLL_DAYS",
            "4000000000",
            &["poll", "--once"][..],
        ),
        (
            "PQWATCH_WATCH_OVERLAP_DAYS",
            "4000000000",
            &["poll", "--once"][..],
        ),
        ("PQWATCH_SCHEDULE_CRON", "0 0 0 30 2 *", &["run"][..]),
    ] {
        let mut cmd = support::pqwatch("http://127.0.0.1:9", dir.path(), args);
        cmd.env(var, value);
        let o = support::within(cmd, 30);
        assert_eq!(o.status.code(), Some(2), "{var}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(var) && e.contains("fix:"), "{e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn the_config_file_is_found_by_flag_then_environment_and_its_relative_paths_are_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    let shell = dir.path().join("shell");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&shell).unwrap();
    std::fs::write(
        etc.join("pqwatch.toml"),
        "[database]\npath = \"state/service.sqlite\"\n",
    )
    .unwrap();
    std::fs::write(
        etc.join("other.toml"),
        "[database]\npath = \"state/other.sqlite\"\n",
    )
    .unwrap();

    // PQWATCH_CONFIG, as an administrator's profile would set it, from another folder.
    let o = bare(
        &shell,
        &[
            "subscribe",
            "ops@union.org.uk",
            "--keywords",
            "drones",
            "--confirmed",
        ],
    )
    .env("PQWATCH_CONFIG", etc.join("pqwatch.toml"))
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(etc.join("state/service.sqlite").exists());
    assert_eq!(
        std::fs::read_dir(&shell).unwrap().count(),
        0,
        "nothing is written where the command was run"
    );

    // --config beats PQWATCH_CONFIG.
    let o = bare(
        &shell,
        &[
            "--config",
            "../etc/other.toml",
            "subscribers",
            "list",
            "--json",
        ],
    )
    .env("PQWATCH_CONFIG", etc.join("pqwatch.toml"))
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "other.sqlite does not exist yet");
    assert!(stderr(&o).contains("other.sqlite"), "{}", stderr(&o));

    // `status` says which file it read.
    let o = bare(&shell, &["status"])
        .env("PQWATCH_CONFIG", etc.join("pqwatch.toml"))
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains(&etc.join("pqwatch.toml").display().to_string()),
        "{}",
        stdout(&o)
    );
}

fn subscribers_json(dir: &Path) -> serde_json::Value {
    let o = support::pqwatch(
        "http://127.0.0.1:9",
        dir,
        &["subscribers", "list", "--json"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn changing_one_setting_of_a_subscriber_changes_only_that_and_shows_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        support::pqwatch("http://127.0.0.1:9", dir.path(), args)
            .output()
            .unwrap()
    };
    let o = run(&[
        "subscribe",
        "ops@union.org.uk",
        "--keywords",
        "drones",
        "--digest",
        "daily",
        "--bodies",
        "54",
        "--houses",
        "Commons",
        "--name",
        "Ops Team",
        "--include-no-figures",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("subscribed ops@union.org.uk"),
        "{}",
        stdout(&o)
    );

    let o = run(&[
        "subscribe",
        "ops@union.org.uk",
        "--keywords",
        "assaults on staff",
        "--confirmed",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("updated ops@union.org.uk"), "{out}");
    for shown in [
        "assaults on staff",
        "daily",
        "54",
        "Commons",
        "Ops Team",
        "yes, 20",
    ] {
        assert!(out.contains(shown), "{shown} in {out}");
    }
    let s = &subscribers_json(dir.path())[0];
    assert_eq!(s["keywords"], serde_json::json!(["assaults on staff"]));
    assert_eq!(s["frequency"], "daily");
    assert_eq!(s["bodies"], serde_json::json!([54]));
    assert_eq!(s["houses"], serde_json::json!(["Commons"]));
    assert_eq!(s["name"], "Ops Team");
    assert_eq!(s["include_no_figures"], true);
    assert_eq!(s["confirmed"], true);

    // Each setting can be changed back on its own, and a confirmation is never lost.
    let o = run(&[
        "subscribe",
        "ops@union.org.uk",
        "--digest",
        "instant",
        "--include-no-figures=no",
        "--houses",
        "",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = &subscribers_json(dir.path())[0];
    assert_eq!(s["frequency"], "instant");
    assert_eq!(s["include_no_figures"], false);
    assert_eq!(s["houses"], serde_json::json!([]));
    assert_eq!(s["keywords"], serde_json::json!(["assaults on staff"]));
    assert_eq!(s["confirmed"], true);

    let o = run(&["subscribe", "new@union.org.uk", "--digest", "daily"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--keywords"), "{}", stderr(&o));
}

#[test]
fn a_confirmation_written_to_the_outbox_is_not_called_sent() {
    let dir = tempfile::tempdir().unwrap();
    let o = support::pqwatch(
        "http://127.0.0.1:9",
        dir.path(),
        &["subscribe", "ops@union.org.uk", "--keywords", "drones"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("email sent"), "{out}");
    assert!(
        out.contains(".eml") && out.contains(&dir.path().join("outbox").display().to_string()),
        "{out}"
    );
}

#[test]
fn bad_subscriber_input_is_refused_naming_the_field_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let long_name = "n".repeat(100_000);
    for (args, field) in [
        (vec!["a@b", "--keywords", "drones"], "EMAIL"),
        (
            vec!["Ops <ops@union.org.uk>", "--keywords", "drones"],
            "EMAIL",
        ),
        (vec!["ops@union.org.uk", "--keywords=--"], "--keywords"),
        (
            vec!["ops@union.org.uk", "--keywords", "drones\r\nBcc: x@y.org"],
            "--keywords",
        ),
        (
            vec![
                "ops@union.org.uk",
                "--keywords",
                "drones",
                "--name",
                "Ops\r\nBcc: x@y.org",
            ],
            "--name",
        ),
        (
            vec![
                "ops@union.org.uk",
                "--keywords",
                "drones",
                "--name",
                &long_name,
            ],
            "--name",
        ),
        (
            vec![
                "ops@union.org.uk",
                "--keywords",
                "drones",
                "--digest",
                "fortnightly",
            ],
            "--digest",
        ),
    ] {
        let mut full = vec!["subscribe"];
        full.extend(args.iter().copied());
        let o = support::pqwatch("http://127.0.0.1:9", dir.path(), &full)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(field), "{field}: {e}");
        assert!(
            e.len() < 1000,
            "the message does not echo 100 KB back: {} bytes",
            e.len()
        );
    }
    assert!(!dir.path().join("db.sqlite").exists(), "nothing was stored");
}

#[test]
fn read_only_commands_on_a_missing_database_create_nothing_and_say_how_to_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    for args in [
        &["status"][..],
        &["answers", "list"],
        &["answers", "show", "1"],
        &["series", "list"],
        &["series", "export", "1", "--csv"],
        &["changes"],
        &["subscribers", "list"],
        &["alerts", "list"],
        &["unsubscribe", "ops@union.org.uk"],
        &["backup", "/tmp/never-written.sqlite"],
    ] {
        let o = support::pqwatch("http://127.0.0.1:9", &missing, args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("does not exist") && e.contains("poll --once") && e.contains("typo"),
            "{e}"
        );
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
}

#[test]
fn each_exit_code_means_one_kind_of_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        support::pqwatch("http://127.0.0.1:9", dir.path(), args)
            .output()
            .unwrap()
    };
    let o = run(&[
        "subscribe",
        "ops@union.org.uk",
        "--keywords",
        "drones",
        "--confirmed",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // 2: usage: a file named that cannot be used, a bad flag.
    let existing = dir.path().join("exists.sqlite");
    std::fs::write(&existing, "keep me").unwrap();
    let o = run(&["backup", existing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
    assert_eq!(run(&["answers", "list", "--nope"]).status.code(), Some(2));

    // 3: the thing named does not exist.
    for args in [
        &["unsubscribe", "nobody@union.org.uk"][..],
        &["answers", "show", "42"],
        &["series", "show", "42"],
        &["series", "export", "42", "--csv"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
    }

    // extract: standard input and a file fail alike.
    let bad = dir.path().join("latin1.html");
    std::fs::write(&bad, b"<p>caf\xe9</p>").unwrap();
    let o = bare(dir.path(), &["extract", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let mut child = bare(dir.path(), &["extract", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"<p>caf\xe9</p>").unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("standard input"), "{}", stderr(&o));
    let o = bare(dir.path(), &["extract", "/nonexistent/a.html"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// Runs pqwatch on a pseudo-terminal (Python's pty module), returning what the terminal showed.
fn on_a_terminal(dir: &Path, envs: &[(&str, &str)], args: &[&str]) -> String {
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg("import pty, sys; pty.spawn(sys.argv[1:])")
        .arg(env!("CARGO_BIN_EXE_pqwatch"))
        .args(args)
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pqwatch.toml"))
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env("PQWATCH_API_BASE_URL", "http://127.0.0.1:9")
        .env("PQWATCH_API_MAX_RETRIES", "0")
        .env("PQWATCH_API_STATEMENTS", "false")
        .env("PQWATCH_DATABASE_PATH", dir.join("db.sqlite"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    stdout(&support::within(cmd, 60))
}

#[test]
fn logs_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let o = support::pqwatch("http://127.0.0.1:9", dir.path(), &["poll", "--once"])
        .env("PQWATCH_API_MAX_RETRIES", "0")
        .output()
        .unwrap();
    assert!(stderr(&o).contains("WARN"), "{}", stderr(&o));
    assert!(!stderr(&o).contains('\u{1b}'), "piped: no colour codes");

    let shown = on_a_terminal(dir.path(), &[], &["poll", "--once"]);
    assert!(
        shown.contains("WARN") && shown.contains('\u{1b}'),
        "{shown:?}"
    );
    let shown = on_a_terminal(dir.path(), &[("NO_COLOR", "1")], &["poll", "--once"]);
    assert!(
        shown.contains("WARN") && !shown.contains('\u{1b}'),
        "{shown:?}"
    );
}

#[test]
fn an_offline_poll_prints_one_line_per_failure_saying_what_is_retried_and_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let o = support::pqwatch("http://127.0.0.1:9", dir.path(), &["poll", "--once"])
        .env("PQWATCH_API_MAX_RETRIES", "2")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    let warns: Vec<&str> = e.lines().filter(|l| l.contains("WARN")).collect();
    // Statements are off in tests: answered and corrected questions, one line each.
    assert_eq!(warns.len(), 2, "{e}");
    for w in &warns {
        assert!(w.contains("could not list the"), "{w}");
        assert!(w.contains("cannot connect to 127.0.0.1:9"), "{w}");
        assert!(
            w.contains("3 attempts") && w.contains("retried on the next pass"),
            "{w}"
        );
        assert!(w.contains("check the network"), "{w}");
        assert!(w.len() < 300, "one readable line: {w}");
    }
    let last = e.lines().last().unwrap();
    assert!(
        last.starts_with("pqwatch: the pass could not read 2 list pages; they are retried")
            && last.contains("First: could not list the questions answered"),
        "{last}"
    );
}

#[test]
fn the_user_agent_warning_is_said_by_run_and_status_only() {
    let dir = tempfile::tempdir().unwrap();
    let o = support::pqwatch(
        "http://127.0.0.1:9",
        dir.path(),
        &[
            "subscribe",
            "ops@union.org.uk",
            "--keywords",
            "drones",
            "--confirmed",
        ],
    )
    .output()
    .unwrap();
    assert!(!stderr(&o).contains("user_agent"), "{}", stderr(&o));
    let o = support::pqwatch("http://127.0.0.1:9", dir.path(), &["subscribers", "list"])
        .output()
        .unwrap();
    assert!(!stderr(&o).contains("user_agent"), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim(), "1 subscriber", "singular for one");
    let o = support::pqwatch("http://127.0.0.1:9", dir.path(), &["status"])
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains("warning:       [api] user_agent has no contact"),
        "{}",
        stdout(&o)
    );
    let o = support::pqwatch("http://127.0.0.1:9", dir.path(), &["status", "--json"])
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["warnings"].as_array().unwrap().len(), 1);
    let o = support::pqwatch("http://127.0.0.1:9", dir.path(), &["status", "--json"])
        .env("PQWATCH_API_USER_AGENT", "pqwatch (ops@union.org.uk)")
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["warnings"], serde_json::json!([]));
}

#[test]
fn extract_does_not_number_a_caption_that_numbers_itself() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("a.html");
    std::fs::write(
        &html,
        "<p>Table 1: Drone finds</p><table><tr><th>Year</th><th>Finds</th></tr><tr><td>2023</td><td>1,667</td></tr></table>\
         <p>Assaults</p><table><tr><th>Year</th><th>Assaults</th></tr><tr><td>2023</td><td>9</td></tr></table>",
    )
    .unwrap();
    let o = bare(dir.path(), &["extract", "a.html"]).output().unwrap();
    let out = stdout(&o);
    assert!(out.contains("Table 1: Drone finds"), "{out}");
    assert!(!out.contains("Table 1: Table 1"), "{out}");
    assert!(out.contains("Table 2: Assaults"), "{out}");
}

#[test]
fn a_second_poll_is_refused_naming_the_process_that_holds_the_database() {
    let api = crate::support::fake_api::FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = support::pqwatch(&api.base_url(), dir.path(), &["run"])
        .env("PQWATCH_SCHEDULE_CRON", "0 0 0 1 1 *")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lock = dir.path().join("db.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(&lock).map_or(true, |s| s.trim().is_empty()) {
        assert!(std::time::Instant::now() < deadline, "run took its lock");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = support::pqwatch(&api.base_url(), dir.path(), &["poll", "--once"])
        .output()
        .unwrap();
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("pid {}", daemon.id())) && e.contains(" run"),
        "names the holder and its command: {e}"
    );
}

#[test]
fn a_poll_stopped_by_sigterm_says_so_plainly() {
    let api = crate::support::fake_api::FakeApi::start();
    let today = pqwatch::pipeline::uk_today(chrono::Utc::now()).to_string();
    api.set_questions(
        (0..20)
            .map(|i| {
                support::question(
                    100 + i,
                    &today,
                    "Prisons: Staff",
                    "<p>Prison officers: 9</p>",
                )
            })
            .collect(),
    );
    api.state.lock().unwrap().detail_delay = std::time::Duration::from_millis(300);
    let dir = tempfile::tempdir().unwrap();
    let child = support::pqwatch(&api.base_url(), dir.path(), &["poll", "--once"])
        .env("PQWATCH_API_CONCURRENCY", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !api.requests().iter().any(|p| !p.contains('?')) {
        assert!(
            std::time::Instant::now() < deadline,
            "a detail was asked for"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("stopped by a signal"), "{e}");
    assert!(!e.contains("did not store everything"), "{e}");
}

#[test]
fn backfill_progress_counts_each_window_on_its_own() {
    let api = crate::support::fake_api::FakeApi::start();
    api.set_questions(vec![support::question(
        7,
        "2024-01-10",
        "Prisons: Staff",
        "<p>Prison officers in post: 1000</p>",
    )]);
    let dir = tempfile::tempdir().unwrap();
    let o = support::pqwatch(
        &api.base_url(),
        dir.path(),
        &[
            "poll",
            "--once",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-14",
        ],
    )
    .env("PQWATCH_API_STATEMENTS", "true")
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let windows: Vec<&str> = e
        .lines()
        .filter(|l| l.contains(": answers kept "))
        .collect();
    assert_eq!(windows.len(), 4, "two 7-day windows of each kind: {e}");
    let kept: Vec<&str> = windows
        .iter()
        .map(|l| {
            l.split(": answers kept ")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
        })
        .collect();
    // The answer of 2024-01-10 is in the questions' first (newest) window, and no other.
    assert_eq!(kept, ["1", "0", "0", "0"], "{e}");
    assert!(windows[2].contains("statements"), "{}", windows[2]);
}

#[test]
fn a_backup_restored_as_a_new_database_file_serves_status_and_history() {
    let api = crate::support::fake_api::FakeApi::start();
    api.set_questions(vec![support::corpus_question(
        "2024-02-01-prison-officers-dismissal",
        1689000,
        "2024-02-01",
    )]);
    let dir = tempfile::tempdir().unwrap();
    let url = api.base_url();
    let run = |db_dir: &Path, args: &[&str]| support::pqwatch(&url, db_dir, args).output().unwrap();
    let o = run(
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
        dir.path(),
        &[
            "subscribe",
            "ops@union.org.uk",
            "--keywords",
            "prison",
            "--confirmed",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let backup = dir.path().join("backup.sqlite");
    let o = run(dir.path(), &["backup", backup.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The README's restore: the backup becomes the database file of a fresh state folder.
    let restored = dir.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&backup, restored.join("db.sqlite")).unwrap();
    for args in [
        &["answers", "list", "--json"][..],
        &["subscribers", "list", "--json"],
        &["series", "list", "--json"],
    ] {
        let before = run(dir.path(), args);
        let after = run(&restored, args);
        assert!(after.status.success(), "{args:?}: {}", stderr(&after));
        assert_eq!(stdout(&before), stdout(&after), "{args:?}");
    }
    let o = run(&restored, &["status", "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["answers"], 1);
    assert_eq!(
        j["database"],
        restored.join("db.sqlite").display().to_string()
    );
    // And it carries on: a poll over the same days stores nothing twice.
    let o = run(
        &restored,
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
    let o = run(&restored, &["answers", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list[0]["versions"], 1);
}

#[test]
fn the_docs_cite_only_files_in_the_repository_and_the_unit_is_complete() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    let mut stack = vec![
        root.join("src"),
        root.join("docs"),
        root.join("tests/fixtures/api"),
    ];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("rs" | "md")) {
                files.push(p);
            }
        }
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for word in text.split(|c: char| !(c.is_alphanumeric() || "/._-".contains(c))) {
            let cited = word.trim_end_matches('.');
            if !cited.ends_with(".md") || cited.starts_with("/usr/") || cited.starts_with("http") {
                continue;
            }
            let found = root.join(cited).exists() || f.parent().unwrap().join(cited).exists();
            assert!(
                found,
                "{} cites {cited}, which is not in the repository",
                f.display()
            );
        }
    }

    let unit = std::fs::read_to_string(root.join("systemd/pqwatch.service")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let doc = unit
        .lines()
        .find_map(|l| l.strip_prefix("Documentation=file://"))
        .unwrap();
    assert!(
        readme.contains(doc),
        "the README's install steps install {doc}"
    );
    let deny = unit
        .lines()
        .find_map(|l| l.strip_prefix("IPAddressDeny="))
        .unwrap();
    assert!(!deny.trim().is_empty(), "IPAddressDeny= is set");
    assert!(
        !unit.contains("Environment=PQWATCH_DATABASE_PATH"),
        "paths live in the config file"
    );

    // The service's config: absolute state paths, and it loads.
    let s = pqwatch::config::Settings::load(&root.join("systemd/pqwatch.toml"), []).unwrap();
    assert_eq!(
        s.database.path,
        Path::new("/var/lib/pqwatch/pqwatch.sqlite")
    );
    assert_eq!(s.mail.outbox_dir, Path::new("/var/lib/pqwatch/outbox"));
}

#[test]
fn mail_test_sends_one_message_through_smtp_and_prints_the_servers_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sink = crate::support::smtp::SmtpSink::start(&dir.path().join("sink"), &[]);
    let o = support::pqwatch(
        "http://127.0.0.1:9",
        dir.path(),
        &["mail", "test", "ops@union.org.uk"],
    )
    .env("PQWATCH_MAIL_SMTP_URL", sink.url())
    .env("PQWATCH_MAIL_FROM", "pqwatch <alerts@pqwatch.test>")
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("answered 250"),
        "the server's reply is shown: {out}"
    );
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].header("Subject").as_deref(),
        Some("pqwatch test message")
    );
    assert!(
        !dir.path().join("db.sqlite").exists(),
        "no database is needed or made"
    );

    // A refusal is shown with the server's words, and exits 1.
    let refusing = crate::support::smtp::SmtpSink::start(
        &dir.path().join("sink2"),
        &["--reject", "ops@union.org.uk"],
    );
    let o = support::pqwatch(
        "http://127.0.0.1:9",
        dir.path(),
        &["mail", "test", "ops@union.org.uk"],
    )
    .env("PQWATCH_MAIL_SMTP_URL", refusing.url())
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("550"), "{}", stderr(&o));
}

#[test]
fn mail_test_without_smtp_writes_an_eml_file_to_the_configured_outbox_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("pqwatch.toml"),
        "[mail]\noutbox_dir = \"outbox\"\n",
    )
    .unwrap();
    let o = bare(
        dir.path(),
        &[
            "--config",
            "etc/pqwatch.toml",
            "mail",
            "test",
            "ops@union.org.uk",
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let emls: Vec<_> = std::fs::read_dir(etc.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        emls.len(),
        1,
        "written beside the config file, not in the working directory"
    );
    assert!(out.contains(&emls[0].display().to_string()), "{out}");
    assert!(!dir.path().join("data").exists());
}
