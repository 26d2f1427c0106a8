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
                "weekly",
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
