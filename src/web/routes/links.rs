//! The signed links in emails: `/confirm?t=…` and `/unsubscribe?t=…`. A GET shows a button and
//! changes nothing (mail scanners follow links); a POST acts, including the RFC 8058 one-click
//! POST a mail client sends with no page. A link whose signature does not verify for its action
//! is refused before the database is asked.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use chrono::Utc;

use super::{message, page, ButtonForm, MessagePage};
use crate::links::Action;
use crate::web::{AppState, PageError};

/// The `t` parameter: a signed token in the form `links` makes (hex and dots), if well formed.
pub fn signed_param(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|kv| {
        kv.strip_prefix("t=")
            .filter(|t| {
                !t.is_empty()
                    && t.len() < 300
                    && t.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.')
            })
            .map(str::to_owned)
    })
}

/// The page for a link that is forged, spent or from a rotated key.
pub fn not_recognised() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Link not recognised",
        "This link is not (or no longer) valid, and nothing was changed. Use the newest email from pqwatch, or sign up again.",
    )
}

fn incomplete() -> Response {
    message(
        StatusCode::BAD_REQUEST,
        "This link is not complete",
        "Use the whole link from the email; nothing was changed.",
    )
}

/// Why a link was refused.
pub enum Refused {
    Incomplete,
    NotRecognised,
}

impl axum::response::IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Incomplete => incomplete(),
            Refused::NotRecognised => not_recognised(),
        }
    }
}

/// The signed parameter and its token, for a well-formed link verified for `action`.
pub fn verified(
    web: &AppState,
    action: Action,
    query: Option<&str>,
) -> Result<(String, String), Refused> {
    let signed = signed_param(query).ok_or(Refused::Incomplete)?;
    let token = web
        .links
        .verify(action, &signed)
        .map(str::to_owned)
        .ok_or(Refused::NotRecognised)?;
    Ok((signed, token))
}

fn button_page(action: Action, signed: &str, title: &str, text: &str, button: &str) -> Response {
    page(
        StatusCode::OK,
        &MessagePage {
            title: title.into(),
            text: text.into(),
            form: Some(ButtonForm {
                action: format!("/{}?t={signed}", action.name()),
                hidden: vec![],
                button: button.into(),
            }),
            links: vec![],
        },
    )
}

/// Whether the holder of `token` is still subscribed (`None`), and if so whether confirmed.
async fn standing(web: &AppState, token: &str) -> Result<Option<bool>, PageError> {
    let t = token.to_owned();
    web.read(move |s| s.token_confirmed(&t)).await
}

fn already_confirmed() -> Response {
    message(
        StatusCode::OK,
        "Already confirmed",
        "This address is already confirmed and gets pqwatch alerts; nothing was changed.",
    )
}

pub async fn confirm_page(
    State(web): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let (signed, token) = match verified(&web, Action::Confirm, q.as_deref()) {
        Ok(x) => x,
        Err(r) => return Ok(r.into_response()),
    };
    Ok(match standing(&web, &token).await? {
        None => not_recognised(),
        Some(true) => already_confirmed(),
        Some(false) => button_page(
            Action::Confirm,
            &signed,
            "Confirm your pqwatch alerts",
            "Press the button to start getting the alerts you asked for.",
            "Confirm",
        ),
    })
}

pub async fn confirm(
    State(web): State<AppState>,
    RawQuery(q): RawQuery,
    _body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (_, token) = match verified(&web, Action::Confirm, q.as_deref()) {
        Ok(x) => x,
        Err(r) => return Ok(r.into_response()),
    };
    let manage = format!("/manage?t={}", web.links.sign(Action::Manage, &token));
    let done = web
        .write(move |s| {
            if s.token_confirmed(&token)? == Some(true) {
                return Ok(Err(()));
            }
            Ok(Ok(s.confirm_token(&token, Utc::now())?))
        })
        .await?;
    Ok(match done {
        Err(()) => already_confirmed(),
        Ok(Some(email)) => page(
            StatusCode::OK,
            &MessagePage {
                title: "Confirmed".into(),
                text: format!("{email} will now get pqwatch alerts. Every email has a link to change what you follow or leave."),
                form: None,
                links: vec![
                    (manage, "Change what you follow or how often".into()),
                    ("/".into(), "See the latest figures".into()),
                ],
            },
        ),
        Ok(None) => not_recognised(),
    })
}

pub async fn unsubscribe_page(
    State(web): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let (signed, token) = match verified(&web, Action::Unsubscribe, q.as_deref()) {
        Ok(x) => x,
        Err(r) => return Ok(r.into_response()),
    };
    Ok(match standing(&web, &token).await? {
        None => not_recognised(),
        Some(_) => button_page(
            Action::Unsubscribe,
            &signed,
            "Unsubscribe from pqwatch",
            "Press the button to stop all email from pqwatch to this address.",
            "Unsubscribe",
        ),
    })
}

/// The button's POST and RFC 8058's one-click POST (`List-Unsubscribe=One-Click`) alike: the
/// signed link is the authority, so no page or cookie is needed.
pub async fn unsubscribe(
    State(web): State<AppState>,
    RawQuery(q): RawQuery,
    _body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let (_, token) = match verified(&web, Action::Unsubscribe, q.as_deref()) {
        Ok(x) => x,
        Err(r) => return Ok(r.into_response()),
    };
    let done = web
        .write(move |s| s.unsubscribe_token(&token, Utc::now()))
        .await?;
    Ok(match done {
        Some(email) => message(
            StatusCode::OK,
            "Unsubscribed",
            &format!("{email} will get no more email from pqwatch."),
        ),
        None => not_recognised(),
    })
}
