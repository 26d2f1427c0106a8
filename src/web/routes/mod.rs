//! The web front's routes and what they share: rendering a template into a response, the plain
//! message page, the stylesheet, and the 404 fallback.

pub mod feed;
pub mod forms;
pub mod health;
pub mod links;
pub mod pages;
pub mod subscribe;

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

/// Every route of the web front.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/statistics", get(pages::statistics))
        .route("/statistics/{id}", get(pages::statistic))
        .route("/statistics/{id}/export.csv", get(pages::statistic_csv))
        .route("/answers/{id}", get(pages::answer))
        .route("/feeds/changes.atom", get(feed::changes))
        .route(
            "/subscribe",
            get(subscribe::subscribe_page).post(subscribe::subscribe),
        )
        .route(
            "/manage",
            get(subscribe::manage_page).post(subscribe::manage),
        )
        .route("/healthz", get(health::healthz))
        .route("/confirm", get(links::confirm_page).post(links::confirm))
        .route(
            "/unsubscribe",
            get(links::unsubscribe_page).post(links::unsubscribe),
        )
        .route("/assets/style.css", get(style))
        .fallback(not_found)
}

/// A template rendered into a response with `status`.
pub fn page(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("rendering a page failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "rendering failed").into_response()
        }
    }
}

/// A form of one button on a message page.
pub struct ButtonForm {
    pub action: String,
    pub hidden: Vec<(String, String)>,
    pub button: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub title: String,
    pub text: String,
    pub form: Option<ButtonForm>,
    pub links: Vec<(String, String)>,
}

/// A page with a heading and one paragraph.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(
        status,
        &MessagePage {
            title: title.to_owned(),
            text: text.to_owned(),
            form: None,
            links: vec![("/".into(), "Go to the home page".into())],
        },
    )
}

async fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no page at this address.",
    )
}

const STYLE: &str = include_str!("../assets/style.css");

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}
