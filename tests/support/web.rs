//! The web front under test: a store filled by real passes over the real corpus answers (plus a
//! second edition with a revision and an answer full of hostile HTML), the router built on it,
//! and requests sent to it in process.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use chrono::{NaiveDate, TimeZone as _, Utc};
use pqwatch::config::Settings;
use pqwatch::pipeline::{run_once, Deps, Mode};
use pqwatch::progress::Progress;
use pqwatch::store::{ReadPool, Store};
use pqwatch::web::{router, Web};
use serde_json::Value;
use tower::ServiceExt as _;

use super::fake_api::FakeApi;
use super::{corpus_question, deps, question, settings};

/// The corpus answers with the day each is filed under.
pub const CORPUS: &[(&str, &str)] = &[
    (
        "2015-03-19-serious-assaults-on-staff-london-prisons",
        "2015-03-19",
    ),
    ("2015-12-noms-staff-dismissed-corruption", "2015-12-15"),
    ("2017-02-28-prisons-corruption-staff", "2017-02-28"),
    ("2020-staff-hospitalised-urine-excreta", "2020-06-10"),
    ("2024-02-01-prison-officers-dismissal", "2024-02-01"),
    (
        "2024-assaults-on-staff-maidstone-huntercombe-morton-hall",
        "2024-05-14",
    ),
    (
        "2025-probation-spend-greater-manchester-oldham",
        "2025-01-20",
    ),
];

/// Text that would run script if any page or feed copied it unescaped.
pub const HOSTILE: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>";

pub struct WebFixture {
    pub _api: FakeApi,
    pub dir: tempfile::TempDir,
    pub settings: Settings,
    pub deps: Deps,
    pub web: Arc<Web>,
}

pub async fn poll_day(api: &FakeApi, deps: &Deps, q: Value) {
    let day = q["dateAnswered"].as_str().unwrap()[..10].to_owned();
    api.state.lock().unwrap().questions.push(q);
    let d: NaiveDate = day.parse().unwrap();
    let now = Utc.from_utc_datetime(&d.and_hms_opt(12, 0, 0).unwrap());
    let r = run_once(
        deps,
        Mode::Backfill { from: d, to: d },
        now,
        &Progress::quiet(),
    )
    .await
    .unwrap();
    assert!(r.complete(), "{r:?}");
}

/// Every corpus answer (ids 1..=7), then a second edition of the dismissals table (id 8: 2023
/// revised from 21 to 23, 2024 new), then an answer whose heading, question and table carry
/// hostile HTML (id 9).
pub async fn corpus_web() -> WebFixture {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&api.base_url(), dir.path());
    let deps = deps(&settings);
    for (i, (name, day)) in CORPUS.iter().enumerate() {
        poll_day(&api, &deps, corpus_question(name, i as i64 + 1, day)).await;
    }
    let first = corpus_question("2024-02-01-prison-officers-dismissal", 1, "2024-02-01");
    let html = first["answerText"]
        .as_str()
        .unwrap()
        .replace("Dec 2023", "Dec 2024")
        .replace(
            "<tr><td>2023</td><td>21</td></tr>",
            "<tr><td>2023</td><td>23</td></tr><tr><td>2024</td><td>30</td></tr>",
        );
    poll_day(
        &api,
        &deps,
        question(8, "2025-02-03", "Prison Officers: Dismissal", &html),
    )
    .await;
    let hostile_html = format!(
        "<p>Figures on prison drones {HOSTILE}</p><table><tr><th>Year</th><th>Drone incidents {HOSTILE}</th></tr>\
         <tr><td>2022</td><td>12</td></tr><tr><td>2023</td><td>15</td></tr></table>"
    );
    let mut q = question(
        9,
        "2025-03-03",
        &format!("Prisons: Drones {HOSTILE}"),
        &hostile_html,
    );
    q["questionText"] = Value::String(format!("To ask about prison drones {HOSTILE}"));
    poll_day(&api, &deps, q).await;
    let web = web_state(&settings);
    WebFixture {
        _api: api,
        dir,
        settings,
        deps,
        web,
    }
}

/// The web front's shared state on the database of `settings`.
pub fn web_state(settings: &Settings) -> Arc<Web> {
    let path = &settings.database.path;
    let mut writes = Store::open(path).unwrap();
    writes.begin_transactions_immediately();
    let links = pqwatch::app::link_signer(&mut writes).unwrap();
    let mut mail = settings.mail.clone();
    mail.public_base_url = "https://pqwatch.test".into();
    let alerts = pqwatch::pipeline::AlertSettings::from_mail(&mail, links);
    Arc::new(Web {
        reads: ReadPool::new(path).unwrap(),
        writes: Mutex::new(writes),
        links: alerts.links.clone(),
        alerts,
        signups_by_ip: Default::default(),
        settings: settings.web.clone(),
        keywords: settings.watch.keywords.clone(),
        stale_after_minutes: settings.schedule.stale_after_minutes,
        public_base_url: "https://pqwatch.test".into(),
        outbox: Arc::new(tokio::sync::Notify::new()),
    })
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// Sends one request to the router in process.
pub async fn send(web: &Arc<Web>, req: Request<Body>) -> Reply {
    let res = router(web.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub async fn get(web: &Arc<Web>, uri: &str) -> Reply {
    send(web, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// A form POST with `body` (already URL-encoded) and extra headers.
pub async fn post_form(web: &Arc<Web>, uri: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut b = Request::post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", body.len());
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(web, b.body(Body::from(body.to_owned())).unwrap()).await
}

pub fn db_path(dir: &Path) -> std::path::PathBuf {
    dir.join("pqwatch.sqlite")
}
