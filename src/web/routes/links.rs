//! The signed links in emails: `/confirm?t=…` and `/unsubscribe?t=…`. A GET shows a button and
//! changes nothing (mail scanners follow links); a POST acts, including the RFC 8058 one-click
//! POST a mail client sends with no page. A link whose signature does not verify for its action
//! is refused before the database is asked.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use chrono::Utc;

use super::{message, page, ButtonForm, MessagePage};
use crate::links::{Action, LinkSigner};
use crate::store::Confirmed;
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

/// The signed parameter and its token, for a well-formed link verified for `action` with the
/// key as the database holds it now: a key rotated (`pqwatch keys rotate`) or deleted by any
/// process counts from the next request.
pub async fn verified(
    web: &AppState,
    action: Action,
    query: Option<&str>,
) -> Result<(String, String), Refused> {
    let signed = signed_param(query).ok_or(Refused::Incomplete)?;
    let key = web
        .read(|s| s.existing_secret("links"))
        .await
        .ok()
        .flatten()
        .ok_or(Refused::NotRecognised)?;
    let signer = LinkSigner::new(&key);
    web.links.set(signer.clone());
    let token = signer
        .verify(action, &signed)
        .map(str::to_owned)
        .ok_or(Refused::NotRecognised)?;
    Ok((signed, token))
}

/// The page for a real confirm link past its `[mail] confirm_link_days`.
fn expired() -> Response {
    message(
        StatusCode::GONE,
        "This link has expired",
        "Confirm links work for a few days only, and nothing was changed. Sign up again to get a new one.",
    )
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

/// The confirm link's token is the sign-up's own (fresh, expiring, used once), not the
/// subscriber's.
pub async fn confirm_page(
    State(web): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let (signed, token) = match verified(&web, Action::Confirm, q.as_deref()).await {
        Ok(x) => x,
        Err(r) => return Ok(r.into_response()),
    };
    let state = web
        .read(move |s| Ok(s.confirm_link_state(&token, Utc::now())?.0))
        .await?;
    Ok(match state {
        Confirmed::Unknown => not_recognised(),
        Confirmed::Already => already_confirmed(),
        Confirmed::Expired => expired(),
        Confirmed::Yes { .. } => button_page(
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
    let (_, token) = match verified(&web, Action::Confirm, q.as_deref()).await {
        Ok(x) => x,
        Err(r) => return Ok(r.into_response()),
    };
    let done = web
        .write(move |s| s.confirm_token(&token, Utc::now()))
        .await?;
    Ok(match done {
        Confirmed::Yes { email, token } => {
            let manage = format!("/manage?t={}", web.links.get().sign(Action::Manage, &token));
            page(
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
            )
        }
        Confirmed::Already => already_confirmed(),
        Confirmed::Expired => expired(),
        Confirmed::Unknown => not_recognised(),
    })
}

pub async fn unsubscribe_page(
    State(web): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let (signed, token) = match verified(&web, Action::Unsubscribe, q.as_deref()).await {
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
    let (_, token) = match verified(&web, Action::Unsubscribe, q.as_deref()).await {
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
