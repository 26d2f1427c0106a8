//! The web front: handler tests against a store filled from the real corpus, and the real
//! binary's connection limits and timeouts over loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;

use crate::support::web::{get, post_form, send, web_state};
use crate::support::{pqwatch, settings};

fn assert_safe_headers(r: &crate::support::web::Reply, what: &str) {
    let h = |n: &str| {
        r.headers
            .get(n)
            .unwrap_or_else(|| panic!("{what}: no {n}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let csp = h("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(h("referrer-policy"), "same-origin", "{what}");
}

#[tokio::test]
async fn healthz_is_503_until_a_successful_poll_and_200_while_it_is_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings("http://127.0.0.1:9", dir.path());
    let web = web_state(&s);
    let r = get(&web, "/healthz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(j["healthy"], false);

    let long_ago =
        Utc::now() - chrono::Duration::minutes(s.schedule.stale_after_minutes as i64 + 5);
    web.writes
        .lock()
        .unwrap()
        .record_poll(long_ago, long_ago, "steady", true, "{}", None)
        .unwrap();
    assert_eq!(
        get(&web, "/healthz").await.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "stale"
    );

    let now = Utc::now();
    web.writes
        .lock()
        .unwrap()
        .record_poll(now, now, "steady", true, "{}", None)
        .unwrap();
    let r = get(&web, "/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    let j: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(j["healthy"], true);
    assert_eq!(j["last_successful_poll_at"], now.to_rfc3339());
    assert_eq!(
        r.headers["content-type"].to_str().unwrap(),
        "application/json"
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers_even_errors() {
    let dir = tempfile::tempdir().unwrap();
    let web = web_state(&settings("http://127.0.0.1:9", dir.path()));
    for uri in [
        "/healthz",
        "/no/such/page",
        "/confirm?t=00.11",
        "/unsubscribe",
        "/assets/style.css",
    ] {
        let r = get(&web, uri).await;
        assert_safe_headers(&r, uri);
    }
    let r = post_form(&web, "/unsubscribe?t=ab.cd", &"x".repeat(100_000), &[]).await;
    assert_safe_headers(&r, "an oversized POST");
}

#[tokio::test]
async fn a_request_body_over_the_limit_is_refused_and_a_forged_link_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let web = web_state(&settings("http://127.0.0.1:9", dir.path()));
    let big = "List-Unsubscribe=One-Click&x=".to_owned() + &"y".repeat(20_000);
    let token = "0123456789abcdef0123456789abcdef";
    let links = pqwatch::app::link_signer(&mut web.writes.lock().unwrap()).unwrap();
    let signed = links.sign(pqwatch::links::Action::Unsubscribe, token);
    let r = post_form(&web, &format!("/unsubscribe?t={signed}"), &big, &[]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    for forged in [
        format!("/unsubscribe?t={token}.{}", "0".repeat(64)),
        format!("/confirm?t={signed}"),
        format!("/unsubscribe?t={}", &signed[..signed.len() - 1]),
    ] {
        let r = post_form(&web, &forged, "List-Unsubscribe=One-Click", &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{forged}");
        assert!(r.body.contains("Link not recognised"), "{forged}");
        assert!(r.body.contains("nothing was changed"), "{forged}");
    }
    let r = get(&web, "/unsubscribe").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(
        &web,
        Request::delete("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// `pqwatch run` serving the web front on a free port, with short timeouts; never polls.
fn serve(dir: &std::path::Path, extra: &[(&str, &str)]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = pqwatch("http://127.0.0.1:9", dir, &["run"]);
    cmd.env("PQWATCH_WEB_LISTEN", format!("127.0.0.1:{port}"))
        .env("PQWATCH_SCHEDULE_CRON", "0 0 0 1 1 *")
        .env("PQWATCH_WEB_HEADER_READ_TIMEOUT_SECS", "2")
        .env("PQWATCH_WEB_IDLE_TIMEOUT_SECS", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the web front did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// One GET on a fresh connection: the status line, or an error.
fn fetch(addr: &str, path: &str, timeout: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.lines().next().unwrap_or_default().to_owned())
}

/// Whether the server has closed `s` (EOF or reset) within `within`.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn raise_open_file_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[test]
fn two_thousand_idle_connections_neither_pin_the_server_nor_stay_open_past_the_timeouts() {
    raise_open_file_limit();
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = serve(dir.path(), &[]);
    let mut idle: Vec<TcpStream> = (0..2000)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    // And one that sent a request, got its answer, and then went quiet (keep-alive).
    let mut kept = TcpStream::connect(&addr).unwrap();
    write!(kept, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 64];
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = kept.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 503"));

    let started = Instant::now();
    let status = fetch(&addr, "/healthz", Duration::from_secs(5)).unwrap();
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a real request waited {:?} behind 2,000 idle connections",
        started.elapsed()
    );

    // Header-read timeout 2 s, idle timeout 3 s: every one is closed by the server soon after.
    std::thread::sleep(Duration::from_secs(4));
    let mut still_open = 0;
    for s in idle.iter_mut() {
        if !closed_by_server(s, Duration::from_millis(1)) {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, 0,
        "idle connections still open after the timeouts"
    );
    assert!(
        closed_by_server(&mut kept, Duration::from_secs(2)),
        "an idle keep-alive connection stays open"
    );
    stop(child);
}

#[test]
fn with_every_connection_slot_taken_a_new_client_waits_for_one_and_is_then_served() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = serve(dir.path(), &[("PQWATCH_WEB_MAX_CONNECTIONS", "20")]);
    let _idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let status = fetch(&addr, "/healthz", Duration::from_secs(10)).unwrap();
    let waited = started.elapsed();
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_secs(5),
        "served after {waited:?}: it should wait for the idle ones' 2 s header timeout, no longer"
    );
    stop(child);
}

mod pages {
    use std::collections::BTreeMap;

    use axum::http::StatusCode;

    use crate::support::web::{corpus_web, get, HOSTILE};

    /// The `data-*` attributes of every `<circle class="point…">` in a page's SVG.
    fn points(html: &str, class: &str) -> Vec<BTreeMap<String, String>> {
        html.split("<circle ")
            .skip(1)
            .filter(|c| c.starts_with(&format!("class=\"{class}")))
            .map(|c| {
                let tag = &c[..c.find('>').unwrap()];
                tag.split("data-")
                    .skip(1)
                    .map(|kv| {
                        let (k, v) = kv.split_once("=\"").unwrap();
                        (k.to_owned(), v[..v.find('"').unwrap()].to_owned())
                    })
                    .collect()
            })
            .collect()
    }

    #[tokio::test]
    async fn pages_show_the_corpus_with_each_figure_traced_and_revisions_marked() {
        let f = corpus_web().await;
        let home = get(&f.web, "/").await;
        assert_eq!(home.status, StatusCode::OK);
        assert!(
            home.body.contains("Prison Officers: Dismissal"),
            "{}",
            home.body
        );
        assert!(
            home.body.contains("1 new figure and 1 revised figure in"),
            "the home page says what changed"
        );
        let first = home.body.find("/answers/9\"").unwrap();
        assert!(
            first < home.body.find("/answers/8\"").unwrap(),
            "newest first"
        );

        let (id, detail) = {
            let store = f.deps.store.lock().unwrap();
            let c = store.changes(None, None).unwrap();
            let revised = c.iter().find(|c| c.change == "revised").unwrap();
            let d = store.series_detail(revised.statistic_id).unwrap().unwrap();
            (revised.statistic_id, d)
        };
        let page = get(&f.web, &format!("/statistics/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        // Each period's latest numeric value is one point, with the value stored.
        let mut latest: BTreeMap<String, f64> = BTreeMap::new();
        for v in &detail.values {
            if let (Some(x), Some(p)) = (v.value, v.period.clone()) {
                latest.insert(p, x);
            }
        }
        let drawn: BTreeMap<String, f64> = points(&page.body, "point")
            .into_iter()
            .map(|p| (p["period"].clone(), p["value"].parse().unwrap()))
            .collect();
        assert_eq!(drawn, latest);
        let earlier = points(&page.body, "earlier");
        assert_eq!(earlier.len(), 1, "one revised value");
        assert_eq!(earlier[0]["value"], "21");
        assert_eq!(latest[&earlier[0]["period"]], 23.0);
        // Every value links to the official page of its answer.
        for v in &detail.values {
            let url = v.source.url.as_ref().unwrap();
            assert!(page.body.contains(&format!("href=\"{url}\"")), "{url}");
        }
        assert!(page.body.contains("Edition history"));
        assert!(page.body.contains(&format!("/statistics/{id}/export.csv")));

        let answer = get(&f.web, "/answers/8").await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(answer.body.contains("(was 21)"));
        assert!(answer.body.contains("class=\"num changed-revised\">23<"));
        assert!(answer.body.contains("class=\"num changed-new\">30<"));
        assert!(answer.body.contains("Edward Argar"));

        for missing in [
            "/statistics/999999",
            "/statistics/abc",
            "/answers/424242",
            "/answers/-1",
        ] {
            assert_eq!(
                get(&f.web, missing).await.status,
                StatusCode::NOT_FOUND,
                "{missing}"
            );
        }
    }

    #[tokio::test]
    async fn the_statistics_list_is_searched_by_words_filtered_by_keyword_and_paged() {
        let f = corpus_web().await;
        let all = f.deps.store.lock().unwrap().series_list().unwrap();
        let page = get(&f.web, "/statistics").await;
        assert!(
            page.body.contains(&format!("{} statistics", all.len())),
            "{}",
            page.body
        );
        let dismissal = all
            .iter()
            .find(|s| s.title.to_lowercase().contains("dismiss"))
            .unwrap();
        let found = get(&f.web, "/statistics?q=DISMISS").await;
        assert!(found
            .body
            .contains(&format!("/statistics/{}\"", dismissal.id)));
        let n = all
            .iter()
            .filter(|s| s.title.to_lowercase().contains("dismiss"))
            .count();
        assert!(
            found.body.contains(&format!("{n} statistic")),
            "{}",
            found.body
        );
        let none = get(&f.web, "/statistics?q=zzzz%25").await;
        assert!(none.body.contains("0 statistics"));

        let probation = get(&f.web, "/statistics?keyword=probation").await;
        let drones = get(&f.web, "/statistics?keyword=prison&q=drone").await;
        assert!(drones.body.contains("1 statistic;"), "{}", drones.body);
        assert!(!probation
            .body
            .contains(&format!("/statistics/{}\"", dismissal.id)));

        let listed = |b: &str| b.matches("<h2 class=\"h3\"><a href=\"/statistics/").count();
        assert_eq!(listed(&page.body), all.len().min(25));
        assert_eq!(page.body.contains("rel=\"next\""), all.len() > 25);
        let second = get(&f.web, "/statistics?page=2").await;
        assert!(second.body.contains("rel=\"prev\""));
        assert_eq!(listed(&second.body), all.len().saturating_sub(25).min(25));
    }

    #[tokio::test]
    async fn hostile_html_in_an_answer_is_escaped_in_every_page_and_feed() {
        let f = corpus_web().await;
        let stat = f
            .deps
            .store
            .lock()
            .unwrap()
            .series_list()
            .unwrap()
            .into_iter()
            .max_by_key(|s| s.id)
            .unwrap();
        for uri in [
            "/".to_owned(),
            "/statistics".into(),
            "/statistics?q=drones".into(),
            format!("/statistics/{}", stat.id),
            format!("/statistics/{}/export.csv", stat.id),
            "/answers/9".into(),
            "/feeds/changes.atom".into(),
            "/feeds/changes.atom?keyword=prison".into(),
        ] {
            let r = get(&f.web, &uri).await;
            assert_eq!(r.status, StatusCode::OK, "{uri}");
            for raw in ["<script", "<img", "onerror=alert(2)>"] {
                assert!(
                    !r.body.contains(raw) || uri.ends_with(".csv"),
                    "{uri} has {raw} unescaped"
                );
            }
            // The pages that show the answer's heading show it as text.
            if uri == "/" || uri.starts_with("/answers") || uri.starts_with("/feeds") {
                assert!(
                    r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
                        || r.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
                    "{uri} lost the text: {}",
                    r.body
                );
            }
        }
        let _ = HOSTILE;
    }

    #[tokio::test]
    async fn the_csv_download_is_byte_for_byte_what_series_export_prints() {
        let f = corpus_web().await;
        let ids: Vec<i64> = f
            .deps
            .store
            .lock()
            .unwrap()
            .series_list()
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        for id in [ids[0], *ids.last().unwrap()] {
            let web = get(&f.web, &format!("/statistics/{id}/export.csv")).await;
            assert_eq!(web.status, StatusCode::OK);
            assert!(web.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv"));
            let mut cmd = crate::support::pqwatch(
                "http://127.0.0.1:9",
                f.dir.path(),
                &["series", "export", &id.to_string(), "--csv"],
            );
            cmd.env("PQWATCH_DATABASE_PATH", &f.settings.database.path);
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(web.body, String::from_utf8(out.stdout).unwrap());
        }
    }

    #[tokio::test]
    async fn the_atom_feed_filters_by_keyword() {
        let f = corpus_web().await;
        let all = get(&f.web, "/feeds/changes.atom").await;
        assert_eq!(
            all.headers["content-type"].to_str().unwrap(),
            "application/atom+xml; charset=utf-8"
        );
        let entries = |b: &str| b.matches("<entry>").count();
        assert!(entries(&all.body) >= 8, "{}", all.body);
        let probation = get(&f.web, "/feeds/changes.atom?keyword=probation").await;
        assert!(entries(&probation.body) >= 1);
        assert!(entries(&probation.body) < entries(&all.body));
        let none = get(&f.web, "/feeds/changes.atom?keyword=no-such-word").await;
        assert_eq!(entries(&none.body), 0);
        assert!(none
            .body
            .contains("<feed xmlns=\"http://www.w3.org/2005/Atom\">"));
    }
}

mod signup {
    use axum::http::StatusCode;
    use chrono::Utc;
    use pqwatch::links::Action;

    use crate::support::settings;
    use crate::support::web::{get, post_form, web_state, Reply};

    /// The cookie and signed field a browser would get from the form page.
    async fn form(web: &std::sync::Arc<pqwatch::web::Web>) -> (String, String) {
        let r = get(web, "/subscribe").await;
        assert_eq!(r.status, StatusCode::OK);
        let cookie = r.headers["set-cookie"].to_str().unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let field = r.body.split("name=\"csrf\" value=\"").nth(1).unwrap();
        (cookie, field[..field.find('"').unwrap()].to_owned())
    }

    async fn sign_up(
        web: &std::sync::Arc<pqwatch::web::Web>,
        (cookie, csrf): &(String, String),
        body: &str,
        ip: &str,
    ) -> Reply {
        post_form(
            web,
            "/subscribe",
            &format!("{body}&csrf={csrf}"),
            &[("cookie", cookie), ("x-forwarded-for", ip)],
        )
        .await
    }

    fn confirmations(web: &pqwatch::web::Web) -> Vec<String> {
        web.writes
            .lock()
            .unwrap()
            .alerts(false)
            .unwrap()
            .into_iter()
            .filter(|a| a.kind == "confirmation")
            .map(|a| a.message_id)
            .collect()
    }

    #[tokio::test]
    async fn a_sign_up_is_double_opt_in_and_signing_up_again_neither_duplicates_nor_reveals() {
        let dir = tempfile::tempdir().unwrap();
        let web = web_state(&settings("http://127.0.0.1:9", dir.path()));
        let f = form(&web).await;
        let first = sign_up(
            &web,
            &f,
            "email=Rep%40Union.test&keywords=drones%2C+assaults+on+staff&frequency=weekly",
            "10.0.0.1",
        )
        .await;
        assert_eq!(first.status, StatusCode::OK);
        assert!(first.body.contains("Check your email"));
        let subs = web.writes.lock().unwrap().subscribers().unwrap();
        assert_eq!(subs.len(), 1);
        let s = &subs[0];
        assert_eq!((s.email.as_str(), s.confirmed), ("Rep@union.test", false));
        assert_eq!(s.keywords, ["drones", "assaults on staff"]);
        assert_eq!(s.frequency.as_str(), "weekly");
        assert_eq!(confirmations(&web).len(), 1);

        // Again, unconfirmed: one subscriber, a fresh confirmation, the same page.
        let again = sign_up(
            &web,
            &f,
            "email=Rep%40union.test&keywords=drones&frequency=daily",
            "10.0.0.1",
        )
        .await;
        assert_eq!(
            again.body,
            first.body.replace("Rep@Union.test", "Rep@union.test")
        );
        assert_eq!(web.writes.lock().unwrap().subscribers().unwrap().len(), 1);
        assert_eq!(confirmations(&web).len(), 2);

        // Confirm by the link; a second click says so and changes nothing.
        // The confirm link carries the sign-up's own token (fresh per sign-up).
        let token = web
            .writes
            .lock()
            .unwrap()
            .latest_confirm_token("Rep@union.test")
            .unwrap()
            .unwrap();
        let link = format!(
            "/confirm?t={}",
            web.links.get().sign(Action::Confirm, &token)
        );
        let done = post_form(&web, &link, "", &[]).await;
        assert!(done.body.contains("<h1>Confirmed</h1>"), "{}", done.body);
        let twice = post_form(&web, &link, "", &[]).await;
        assert_eq!(twice.status, StatusCode::OK);
        assert!(twice.body.contains("Already confirmed"));

        // A confirmed address signed up by someone else: same page, nothing sent or changed.
        let stranger = sign_up(
            &web,
            &f,
            "email=Rep%40union.test&keywords=cats&frequency=instant",
            "10.0.0.2",
        )
        .await;
        assert!(stranger.body.contains("Check your email"));
        let s = &web.writes.lock().unwrap().subscribers().unwrap()[0];
        assert!(s.confirmed);
        assert_eq!(s.keywords, ["drones"]);
        assert_eq!(confirmations(&web).len(), 2);
    }

    #[tokio::test]
    async fn forged_forms_bots_and_floods_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let web = web_state(&settings("http://127.0.0.1:9", dir.path()));
        let f = form(&web).await;
        let body = "email=a%40b.test&keywords=drones&frequency=instant";
        // No field, a field from another cookie, a cross-site post.
        let other = form(&web).await;
        for (cookie, csrf, extra) in [
            (f.0.clone(), String::new(), None),
            (f.0.clone(), other.1.clone(), None),
            (
                f.0.clone(),
                f.1.clone(),
                Some(("origin", "https://evil.example")),
            ),
            (
                f.0.clone(),
                f.1.clone(),
                Some(("sec-fetch-site", "cross-site")),
            ),
        ] {
            let mut headers = vec![("cookie", cookie.as_str())];
            headers.extend(extra);
            let r = post_form(&web, "/subscribe", &format!("{body}&csrf={csrf}"), &headers).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{headers:?}");
        }
        // The honeypot: the same page as a person gets, and nothing stored.
        let bot = sign_up(
            &web,
            &f,
            &format!("{body}&website=http%3A%2F%2Fspam"),
            "10.0.0.9",
        )
        .await;
        assert!(bot.body.contains("Check your email"));
        assert!(web.writes.lock().unwrap().subscribers().unwrap().is_empty());

        // Bad input is named, and the form keeps what was typed.
        let bad = sign_up(
            &web,
            &f,
            "email=not-an-address&keywords=&frequency=hourly",
            "10.0.0.8",
        )
        .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            bad.body.contains("Email address:")
                && bad.body.contains("Subjects:")
                && bad.body.contains("How often:")
        );
        assert!(bad.body.contains("value=\"not-an-address\""));

        // Per address: 3 confirmation emails a day, then the same page and no email.
        for i in 0..5 {
            let r = sign_up(&web, &f, body, &format!("10.1.0.{i}")).await;
            assert!(r.body.contains("Check your email"));
        }
        assert_eq!(confirmations(&web).len(), 3);
        // Per IP: 10 an hour (the bad and bot posts above were from other addresses).
        let mut statuses = Vec::new();
        for i in 0..12 {
            let r = sign_up(
                &web,
                &f,
                &format!("email=x{i}%40b.test&keywords=drones"),
                "10.2.0.1",
            )
            .await;
            statuses.push(r.status.as_u16());
        }
        assert_eq!(statuses[..10], [200; 10]);
        assert_eq!(statuses[10..], [429, 429]);
        assert_eq!(web.writes.lock().unwrap().subscribers().unwrap().len(), 11);
    }

    #[tokio::test]
    async fn the_manage_link_changes_keywords_and_frequency_and_a_forged_one_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let web = web_state(&settings("http://127.0.0.1:9", dir.path()));
        let f = form(&web).await;
        sign_up(
            &web,
            &f,
            "email=rep%40union.test&keywords=drones&frequency=instant",
            "10.0.0.1",
        )
        .await;
        let token = web.writes.lock().unwrap().subscribers().unwrap()[0]
            .token
            .clone();
        let link = format!("/manage?t={}", web.links.get().sign(Action::Manage, &token));
        let page = get(&web, &link).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("rep@union.test") && page.body.contains("value=\"drones\""));
        let saved = post_form(
            &web,
            &link,
            &format!(
                "keywords=parole%2C+licence+recall&frequency=daily&csrf={}",
                f.1
            ),
            &[("cookie", &f.0)],
        )
        .await;
        assert!(saved.body.contains("Saved."), "{}", saved.body);
        let s = &web.writes.lock().unwrap().subscribers().unwrap()[0];
        assert_eq!(s.keywords, ["parole", "licence recall"]);
        assert_eq!(s.frequency.as_str(), "daily");

        for forged in [
            format!(
                "/manage?t={}",
                web.links.get().sign(Action::Unsubscribe, &token)
            ),
            format!("/manage?t={token}.{}", "ab".repeat(32)),
        ] {
            let r = post_form(
                &web,
                &forged,
                &format!("keywords=cats&csrf={}", f.1),
                &[("cookie", &f.0)],
            )
            .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            assert_eq!(get(&web, &forged).await.status, StatusCode::NOT_FOUND);
        }
        let no_csrf = post_form(
            &web,
            &link,
            "keywords=cats&frequency=daily",
            &[("cookie", &f.0)],
        )
        .await;
        assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
        assert_eq!(
            web.writes.lock().unwrap().subscribers().unwrap()[0].keywords,
            ["parole", "licence recall"]
        );

        // Leaving from the manage page: its unsubscribe form posts to the signed link.
        let unsub = page.body.split("action=\"/unsubscribe?t=").nth(1).unwrap();
        let unsub = format!("/unsubscribe?t={}", &unsub[..unsub.find('"').unwrap()]);
        assert!(post_form(&web, &unsub, "", &[])
            .await
            .body
            .contains("Unsubscribed"));
        assert_eq!(
            get(&web, &link).await.status,
            StatusCode::NOT_FOUND,
            "a spent manage link"
        );
    }

    #[tokio::test]
    async fn sign_ups_never_confirmed_are_pruned_after_the_configured_days() {
        let dir = tempfile::tempdir().unwrap();
        let web = web_state(&settings("http://127.0.0.1:9", dir.path()));
        let f = form(&web).await;
        sign_up(&web, &f, "email=old%40b.test&keywords=drones", "10.0.0.1").await;
        let mut store = web.writes.lock().unwrap();
        assert_eq!(
            store
                .prune_unconfirmed(Utc::now() - chrono::Duration::days(7))
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .prune_unconfirmed(Utc::now() + chrono::Duration::seconds(1))
                .unwrap(),
            1
        );
        assert!(store.subscribers().unwrap().is_empty());
        assert!(store.alerts(false).unwrap().is_empty());
    }
}

/// Writes the corpus store (with its revision and hostile answer) to `$PQWATCH_BROWSER_DB`, for
/// the browser tests (`tests/browser/test_web.py`, run by `scripts/test`).
#[tokio::test]
#[ignore = "run by tests/browser/test_web.py to make its database"]
async fn browser_fixture_database() {
    let path = std::env::var("PQWATCH_BROWSER_DB").expect("PQWATCH_BROWSER_DB");
    let f = crate::support::web::corpus_web().await;
    f.deps
        .store
        .lock()
        .unwrap()
        .backup(std::path::Path::new(&path))
        .unwrap();
}

mod digests {
    use chrono::{Datelike, Days, TimeZone as _, Utc, Weekday};
    use pqwatch::pipeline::{compile_digests, flush_outbox, uk_today};
    use pqwatch::subscribers::{Frequency, NewSubscriber};

    use crate::support::fake_api::FakeApi;
    use crate::support::web::poll_day;
    use crate::support::{corpus_question, deps, settings};

    fn subscriber(email: &str, frequency: Frequency) -> NewSubscriber {
        NewSubscriber {
            email: email.into(),
            name: String::new(),
            keywords: vec!["prison".into()],
            bodies: vec![],
            houses: vec![],
            frequency,
            include_no_figures: false,
            confirmed: true,
        }
    }

    #[tokio::test]
    async fn a_weekly_subscriber_gets_one_digest_on_monday_and_nothing_on_other_days() {
        let api = FakeApi::start();
        let dir = tempfile::tempdir().unwrap();
        let mut deps = deps(&settings(&api.base_url(), dir.path()));
        deps.alerts.on_backfill = true;
        // No digest during the pass itself (it runs at 12:00): only the compiles below.
        deps.alerts.digest_hour = 23;
        {
            let mut s = deps.store.lock().unwrap();
            for (i, (email, f)) in [
                ("weekly@union.test", Frequency::Weekly),
                ("daily@union.test", Frequency::Daily),
            ]
            .into_iter()
            .enumerate()
            {
                s.add_subscriber(
                    &subscriber(email, f),
                    &format!("{i:032x}"),
                    (&format!("c{i:031x}"), Utc::now()),
                    |_, _| unreachable!("a confirmed subscriber gets no confirmation"),
                    Utc::now(),
                )
                .unwrap();
            }
        }
        let today = uk_today(Utc::now());
        poll_day(
            &api,
            &deps,
            corpus_question(
                "2024-02-01-prison-officers-dismissal",
                1,
                &today.to_string(),
            ),
        )
        .await;
        deps.alerts.digest_hour = 7;
        let next = |wd: Weekday| {
            let d = (1..=7)
                .map(|n| today + Days::new(n))
                .find(|d| d.weekday() == wd)
                .unwrap();
            Utc.from_utc_datetime(&d.and_hms_opt(12, 0, 0).unwrap())
        };
        let tuesday = next(Weekday::Tue);
        assert_eq!(
            compile_digests(&deps, tuesday).await.unwrap(),
            1,
            "the daily one only"
        );
        let monday = next(Weekday::Mon);
        assert_eq!(
            compile_digests(&deps, monday).await.unwrap(),
            1,
            "the weekly one"
        );
        assert_eq!(compile_digests(&deps, monday).await.unwrap(), 0, "once");
        let sent = flush_outbox(&deps, monday + chrono::Duration::days(1))
            .await
            .unwrap();
        assert_eq!(sent.sent, 2);
        let alerts = deps.store.lock().unwrap().alerts(false).unwrap();
        let weekly = alerts
            .iter()
            .find(|a| a.email == "weekly@union.test")
            .unwrap();
        let week = monday.iso_week();
        assert_eq!(
            weekly.message_id,
            format!(
                "pqwatch.w{}.{}-W{:02}@localhost",
                1,
                week.year(),
                week.week()
            )
            .replace("@localhost", &format!("@{}", deps.alerts.id_host))
        );
        assert!(
            weekly.subject.starts_with("Weekly digest"),
            "{}",
            weekly.subject
        );
        let daily = alerts
            .iter()
            .find(|a| a.email == "daily@union.test")
            .unwrap();
        assert!(
            daily.subject.starts_with("Daily digest"),
            "{}",
            daily.subject
        );
    }
}

#[tokio::test]
async fn an_expired_confirm_link_gets_a_clear_page_and_confirms_nothing() {
    use pqwatch::links::Action;
    use pqwatch::subscribers::{Frequency, NewSubscriber};
    let dir = tempfile::tempdir().unwrap();
    let web = web_state(&settings("http://127.0.0.1:9", dir.path()));
    let confirm_token = "fedcba9876543210fedcba9876543210";
    let past = Utc::now() - chrono::Duration::days(30);
    web.writes
        .lock()
        .unwrap()
        .add_subscriber(
            &NewSubscriber {
                email: "late@union.test".into(),
                name: String::new(),
                keywords: vec!["drones".into()],
                bodies: vec![],
                houses: vec![],
                frequency: Frequency::Instant,
                include_no_figures: false,
                confirmed: false,
            },
            "0123456789abcdef0123456789abcdef",
            (confirm_token, past + chrono::Duration::days(7)),
            |id, _| {
                (
                    format!("pqwatch.c{id}@test"),
                    pqwatch::notify::render::confirmation("there", &[], None, "a@b.test", 7),
                )
            },
            past,
        )
        .unwrap();
    let signed = web.links.get().sign(Action::Confirm, confirm_token);
    let r = post_form(&web, &format!("/confirm?t={signed}"), "", &[]).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert!(r.body.contains("This link has expired"), "{}", r.body);
    assert!(r.body.contains("nothing was changed"));
    let subs = web.writes.lock().unwrap().subscribers().unwrap();
    assert!(!subs[0].confirmed, "an expired link confirms nothing");
}
