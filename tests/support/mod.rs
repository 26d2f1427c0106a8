//! Test harness: the local fake API, record builders in the contract's shape, settings that point
//! at 127.0.0.1, and a temporary SQLite file.

#![allow(dead_code)]

pub mod fake_api;
pub mod score;
pub mod smtp;
pub mod traffic;
pub mod web;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use pqwatch::config::Settings;
use pqwatch::fetch::Client;
use pqwatch::pipeline::Deps;
use pqwatch::store::Store;
use pqwatch::watch::Matcher;
use serde_json::{json, Value};

/// The `pqwatch` binary with the shipped config, pointed at a local API and a database and
/// outbox in `dir`; fast retries, no statements, and no inherited RUST_LOG.
pub fn pqwatch(api: &str, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pqwatch"));
    cmd.args(args)
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pqwatch.toml"))
        .env_remove("RUST_LOG")
        .env("PQWATCH_API_BASE_URL", api)
        .env("PQWATCH_API_MAX_RPS", "1000")
        .env("PQWATCH_API_RETRY_BASE_MS", "20")
        .env("PQWATCH_API_STATEMENTS", "false")
        .env("PQWATCH_DATABASE_PATH", dir.join("db.sqlite"))
        .env("PQWATCH_MAIL_OUTBOX_DIR", dir.join("outbox"));
    cmd
}

/// Runs a command to its end, killing it if it has not finished in `secs` seconds.
pub fn within(mut cmd: Command, secs: u64) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()).unwrap());
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("pqwatch did not finish within {secs} s");
        }
    }
}

pub fn fixture_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A full Question object with every contract field, answered on `day` (YYYY-MM-DD).
pub fn question(id: i64, day: &str, heading: &str, answer_html: &str) -> Value {
    json!({
        "id": id, "askingMemberId": 4410, "askingMember": {"id": 4410, "name": "Jim McMahon",
            "listAs": "McMahon, Jim", "party": "Labour", "partyAbbreviation": "Lab",
            "partyColour": "d50000", "memberFrom": "Oldham West, Chadderton and Royton",
            "thumbnailUrl": "https://members-api.parliament.uk/api/Members/4410/Thumbnail"},
        "house": "Commons", "memberHasInterest": false,
        "dateTabled": format!("{}T00:00:00", day), "dateForAnswer": format!("{}T00:00:00", day),
        "uin": format!("{}", 10000 + id), "questionText": format!("To ask the Secretary of State for Justice, about {heading}."),
        "answeringBodyId": 54, "answeringBodyName": "Ministry of Justice",
        "isWithdrawn": false, "isNamedDay": false, "groupedQuestions": [],
        "answerIsHolding": false, "answerIsCorrection": false, "answeringMemberId": 4861,
        "answeringMember": {"id": 4861, "name": "Edward Argar", "listAs": "Argar, Edward",
            "party": "Conservative", "partyAbbreviation": "Con", "partyColour": "0000ff",
            "memberFrom": "Melton and Syston", "thumbnailUrl": ""},
        "correctingMemberId": null, "correctingMember": null,
        "dateAnswered": format!("{}T00:00:00", day), "answerText": answer_html,
        "originalAnswerText": "", "comparableAnswerText": "", "dateAnswerCorrected": null,
        "dateHoldingAnswer": null, "attachmentCount": 0, "heading": heading,
        "attachments": [], "groupedQuestionsDates": []
    })
}

/// A corpus answer (tests/fixtures/corpus/NAME.json) as a full API Question with this id and day.
pub fn corpus_question(name: &str, id: i64, day: &str) -> Value {
    let c: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_path(&format!("corpus/{name}.json"))).unwrap(),
    )
    .unwrap();
    let mut q = question(
        id,
        day,
        c["heading"].as_str().unwrap(),
        c["answer_html"].as_str().unwrap(),
    );
    q["questionText"] = c["question_text"].clone();
    q
}

/// The shipped config, pointed at a local server and a database under `dir`, with fast retries.
pub fn settings(base_url: &str, dir: &Path) -> Settings {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pqwatch.toml"))
            .unwrap();
    let env = [
        ("PQWATCH_API_BASE_URL", base_url.to_owned()),
        ("PQWATCH_API_PAGE_SIZE", "3".into()),
        ("PQWATCH_API_MAX_RPS", "1000".into()),
        ("PQWATCH_API_TIMEOUT_SECS", "1".into()),
        ("PQWATCH_API_MAX_RETRIES", "3".into()),
        ("PQWATCH_API_RETRY_BASE_MS", "20".into()),
        ("PQWATCH_API_STATEMENTS", "false".into()),
        (
            "PQWATCH_DATABASE_PATH",
            dir.join("pqwatch.sqlite").display().to_string(),
        ),
        (
            "PQWATCH_MAIL_OUTBOX_DIR",
            dir.join("outbox").display().to_string(),
        ),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    Settings::from_toml(Path::new("config/pqwatch.toml"), &text, env).unwrap()
}

pub fn deps(settings: &Settings) -> Deps {
    let mut store = Store::open(&settings.database.path).unwrap();
    let links = pqwatch::app::link_signer(&mut store).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    Deps {
        client: Arc::new(Client::new(&settings.api, stop.clone()).unwrap()),
        store: Arc::new(Mutex::new(store)),
        matcher: Matcher::new(&settings.watch.keywords),
        watch: settings.watch.clone(),
        statements: settings.api.statements,
        concurrency: settings.api.concurrency,
        stop,
        mailer: Arc::new(pqwatch::notify::mailer::Mailer::from_settings(&settings.mail).unwrap()),
        alerts: pqwatch::pipeline::AlertSettings::from_mail(&settings.mail, links),
    }
}
