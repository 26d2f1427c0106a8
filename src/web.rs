//! The one small web surface: the links in emails. `GET /unsubscribe?t=TOKEN.SIGNATURE` shows a
//! button, `POST` to it (or an RFC 8058 one-click POST from a mail client) unsubscribes;
//! `/confirm` works the same way for confirmations. A link whose signature does not match its
//! action is refused before the database is asked. GETs never change anything, so link
//! scanners in mail systems cannot unsubscribe or confirm anyone. Served by `pqwatch run` when
//! [web] listen is set.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::links::{Action, LinkSigner};
use crate::notify::render::esc;
use crate::store::Store;

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, store: Arc<Mutex<Store>>, links: LinkSigner) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (store, links) = (store.clone(), links.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (store, links) = (store.clone(), links.clone());
                async move { Ok::<_, Infallible>(handle(req, store, &links).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn not_recognised() -> Response<Full<Bytes>> {
    page(
        StatusCode::NOT_FOUND,
        "Link not recognised",
        "<p>This link is not (or no longer) valid.</p>",
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response<Full<Bytes>> {
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    );
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(html)))
        .expect("a static response is valid")
}

/// The `t` parameter: a signed token, in the form `links` makes (hex and one dot).
fn signed(req: &Request<Incoming>) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| {
        kv.strip_prefix("t=")
            .filter(|t| t.len() < 200 && t.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.'))
            .map(str::to_owned)
    })
}

async fn handle(
    req: Request<Incoming>,
    store: Arc<Mutex<Store>>,
    links: &LinkSigner,
) -> Response<Full<Bytes>> {
    let Some(action) = Action::from_path(req.uri().path()) else {
        return page(StatusCode::NOT_FOUND, "Not found", "");
    };
    let confirm = action == Action::Confirm;
    let Some(signed) = signed(&req) else {
        return page(
            StatusCode::BAD_REQUEST,
            "This link is not complete",
            "<p>Use the whole link from the email.</p>",
        );
    };
    let Some(t) = links.verify(action, &signed).map(str::to_owned) else {
        return not_recognised();
    };
    match *req.method() {
        Method::GET => page(
            StatusCode::OK,
            if confirm { "Confirm your pqwatch alerts" } else { "Unsubscribe from pqwatch" },
            &format!(
                "<form method=\"post\" action=\"/{}?t={signed}\"><button type=\"submit\">{}</button></form>",
                action.name(),
                if confirm { "Confirm" } else { "Unsubscribe" }
            ),
        ),
        Method::POST => {
            let done = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<String>> {
                let mut s = store.lock().map_err(|_| anyhow::anyhow!("store lock"))?;
                if confirm {
                    s.confirm_token(&t, chrono::Utc::now())
                } else {
                    s.unsubscribe_token(&t, chrono::Utc::now())
                }
            })
            .await;
            match done {
                Ok(Ok(Some(email))) => page(
                    StatusCode::OK,
                    if confirm { "Confirmed" } else { "Unsubscribed" },
                    &format!(
                        "<p>{} {}.</p>",
                        esc(&email),
                        if confirm { "will now get pqwatch alerts" } else { "will get no more email from pqwatch" }
                    ),
                ),
                Ok(Ok(None)) => not_recognised(),
                _ => page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "<p>Please try again later.</p>"),
            }
        }
        _ => page(StatusCode::METHOD_NOT_ALLOWED, "Not allowed", ""),
    }
}
