//! `/subscribe` (sign up: double opt-in, rate limits, honeypot) and `/manage?t=…` (change
//! keywords or frequency, or leave). A sign-up never says whether an address is known: every
//! accepted form gets the same "check your email" page, whatever was (or was not) done.

use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use chrono::Utc;
use serde::Deserialize;

use super::forms;
use super::links::{verified, Refused};
use super::{message, page};
use crate::links::Action;
use crate::store::AddressStatus;
use crate::subscribers::{self as subs, Frequency, NewSubscriber};
use crate::web::{AppState, PageError};

#[derive(Template)]
#[template(path = "subscribe.html")]
pub struct SubscribePage {
    pub csrf: String,
    pub email: String,
    pub keywords: String,
    pub frequency: String,
    pub examples: String,
    pub errors: Vec<String>,
}

#[derive(Deserialize, Default)]
pub struct SubscribeForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub keywords: String,
    #[serde(default)]
    pub frequency: String,
    #[serde(default)]
    pub website: String,
    #[serde(default)]
    pub csrf: String,
}

fn with_cookie(mut r: Response, set: Option<header::HeaderValue>) -> Response {
    if let Some(v) = set {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn form_page(
    web: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    f: &SubscribeForm,
    errors: Vec<String>,
) -> Result<Response, PageError> {
    let (csrf, set) = forms::issue(web, headers).map_err(|e| PageError::Internal(e.to_string()))?;
    let view = SubscribePage {
        csrf,
        email: f.email.clone(),
        keywords: f.keywords.clone(),
        frequency: if f.frequency.is_empty() {
            "instant".into()
        } else {
            f.frequency.clone()
        },
        examples: web
            .keywords
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        errors,
    };
    Ok(with_cookie(page(status, &view), set))
}

pub async fn subscribe_page(
    State(web): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    form_page(
        &web,
        &headers,
        StatusCode::OK,
        &SubscribeForm::default(),
        vec![],
    )
}

fn check_your_email(email: &str) -> Response {
    message(
        StatusCode::OK,
        "Check your email",
        &format!("If {email} can receive alerts, a message with a confirmation link is on its way. Nothing will be sent until the link is used; it expires if it is not."),
    )
}

fn forged() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "Nothing was changed. Go back, reload the page and send the form again.",
    )
}

/// Frequency as the form names it.
fn frequency(s: &str) -> Result<Frequency, String> {
    match s {
        "instant" | "" => Ok(Frequency::Instant),
        "daily" => Ok(Frequency::Daily),
        "weekly" => Ok(Frequency::Weekly),
        other => Err(format!(
            "frequency {other:?} is not one of instant, daily or weekly"
        )),
    }
}

pub async fn subscribe(
    State(web): State<AppState>,
    parts: Parts,
    form: Result<Form<SubscribeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Ok(Form(f)) = form else {
        return Ok(message(
            StatusCode::BAD_REQUEST,
            "The form could not be read",
            "Nothing was changed. Go back and send the form again.",
        ));
    };
    if !forms::genuine(&web, &parts.headers, &f.csrf) {
        return Ok(forged());
    }
    let s = &web.settings;
    if let Some(ip) = forms::client_ip(&parts) {
        if !web.signups_by_ip.allow(
            &ip,
            s.signups_per_ip_per_hour,
            Duration::from_secs(3600),
            Instant::now(),
        ) {
            let mut r = message(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ups",
                "Too many sign-ups have come from your network in the last hour. Nothing was changed; please try again later.",
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static("3600"),
            );
            return Ok(r);
        }
    }
    let email = subs::parse_email(&f.email);
    let keywords = subs::parse_keywords(&f.keywords);
    let freq = frequency(&f.frequency);
    let mut errors = Vec::new();
    if let Err(e) = &email {
        errors.push(format!("Email address: {e}"));
    }
    if let Err(e) = &keywords {
        errors.push(format!("Subjects: {e}"));
    }
    if let Err(e) = &freq {
        errors.push(format!("How often: {e}"));
    }
    let (Ok(email), Ok(keywords), Ok(freq)) = (email, keywords, freq) else {
        return form_page(
            &web,
            &parts.headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            &f,
            errors,
        );
    };
    // A filled honeypot is a bot: it is told what a person would be, and nothing happens.
    if !f.website.trim().is_empty() {
        tracing::info!("a sign-up filled the honeypot field; ignored");
        return Ok(check_your_email(&email));
    }
    let limit = s.signups_per_address_per_day;
    let alerts = web.alerts.clone();
    let who = email.clone();
    let queued = web
        .write(move |store| {
            let now = Utc::now();
            // A confirmed subscriber's settings are theirs to change, through their own links.
            if store.address_status(&who)? == AddressStatus::Confirmed {
                return Ok(false);
            }
            if !store.take_signup_slot(&who, now - chrono::Duration::days(1), limit, now)? {
                return Ok(false);
            }
            let new = NewSubscriber {
                email: who.clone(),
                name: String::new(),
                keywords: keywords.clone(),
                bodies: vec![],
                houses: vec![],
                frequency: freq,
                include_no_figures: false,
                confirmed: false,
            };
            // A fresh confirm token that expires, under a Message-ID of its own.
            Ok(crate::pipeline::sign_up(store, &alerts, &new, now)?.confirmation_queued)
        })
        .await?;
    if queued {
        web.outbox.notify_one();
    }
    Ok(check_your_email(&email))
}

#[derive(Template)]
#[template(path = "manage.html")]
pub struct ManagePage {
    pub email: String,
    pub signed: String,
    pub unsubscribe: String,
    pub csrf: String,
    pub keywords: String,
    pub frequency: String,
    pub errors: Vec<String>,
    pub saved: bool,
}

#[derive(Deserialize, Default)]
pub struct ManageForm {
    #[serde(default)]
    pub keywords: String,
    #[serde(default)]
    pub frequency: String,
    #[serde(default)]
    pub csrf: String,
}

#[allow(clippy::too_many_arguments)]
fn manage_view(
    web: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    signed: &str,
    token: &str,
    email: String,
    keywords: String,
    frequency: String,
    errors: Vec<String>,
    saved: bool,
) -> Result<Response, PageError> {
    let (csrf, set) = forms::issue(web, headers).map_err(|e| PageError::Internal(e.to_string()))?;
    let view = ManagePage {
        email,
        signed: signed.to_owned(),
        unsubscribe: web.links.get().sign(Action::Unsubscribe, token),
        csrf,
        keywords,
        frequency,
        errors,
        saved,
    };
    Ok(with_cookie(page(status, &view), set))
}

pub async fn manage_page(
    State(web): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let (signed, token) = match verified(&web, Action::Manage, q.as_deref()).await {
        Ok(x) => x,
        Err(r) => return Ok(r.into_response()),
    };
    let t = token.clone();
    let Some(s) = web.read(move |st| st.subscriber_by_token(&t)).await? else {
        return Ok(Refused::NotRecognised.into_response());
    };
    manage_view(
        &web,
        &headers,
        StatusCode::OK,
        &signed,
        &token,
        s.email,
        s.keywords.join(", "),
        s.frequency.as_str().to_owned(),
        vec![],
        false,
    )
}

pub async fn manage(
    State(web): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    form: Result<Form<ManageForm>, FormRejection>,
) -> Result<Response, PageError> {
    let (signed, token) = match verified(&web, Action::Manage, q.as_deref()).await {
        Ok(x) => x,
        Err(r) => return Ok(r.into_response()),
    };
    let Ok(Form(f)) = form else {
        return Ok(message(
            StatusCode::BAD_REQUEST,
            "The form could not be read",
            "Nothing was changed. Go back and send the form again.",
        ));
    };
    if !forms::genuine(&web, &headers, &f.csrf) {
        return Ok(forged());
    }
    let t = token.clone();
    let Some(s) = web.read(move |st| st.subscriber_by_token(&t)).await? else {
        return Ok(Refused::NotRecognised.into_response());
    };
    let keywords = subs::parse_keywords(&f.keywords);
    let freq = frequency(&f.frequency);
    let (Ok(keywords), Ok(freq)) = (&keywords, &freq) else {
        let errors = [
            keywords.err().map(|e| format!("Subjects: {e}")),
            freq.err().map(|e| format!("How often: {e}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        return manage_view(
            &web,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            &signed,
            &token,
            s.email,
            f.keywords.clone(),
            f.frequency.clone(),
            errors,
            false,
        );
    };
    let (t, k, fr) = (token.clone(), keywords.clone(), *freq);
    if !web
        .write(move |st| st.update_preferences(&t, &k, fr))
        .await?
    {
        return Ok(Refused::NotRecognised.into_response());
    }
    manage_view(
        &web,
        &headers,
        StatusCode::OK,
        &signed,
        &token,
        s.email,
        keywords.join(", "),
        freq.as_str().to_owned(),
        vec![],
        true,
    )
}
