//! What every form shares: the anti-forgery cookie and field (a random cookie, and a hidden
//! field signed over it, so another site can post neither), the Origin check, and the client's
//! address for rate limits (the peer, or the last X-Forwarded-For hop when the peer is a reverse
//! proxy on loopback).

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};

use crate::links::Action;
use crate::web::{random_hex, AppState};

pub const COOKIE: &str = "pqw_csrf";

/// The anti-forgery cookie's value, if the request carries a well-formed one.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            kv.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_owned)
        })
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A form's anti-forgery pair: the hidden field's value, and the Set-Cookie header to send
/// when the visitor has no cookie yet.
pub fn issue(web: &AppState, headers: &HeaderMap) -> anyhow::Result<(String, Option<HeaderValue>)> {
    let (value, set) = match cookie(headers) {
        Some(v) => (v, false),
        None => (random_hex()?, true),
    };
    let field = web.links.get().sign(Action::Form, &value);
    let secure = if web.alerts.public_base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let header = set
        .then(|| {
            HeaderValue::from_str(&format!(
                "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{secure}"
            ))
            .ok()
        })
        .flatten();
    Ok((field, header))
}

/// Whether a form POST came from this site's own page: the field is signed over the cookie,
/// and the browser does not say it is cross-site.
pub fn genuine(web: &AppState, headers: &HeaderMap, field: &str) -> bool {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site" || v == "same-site")
    {
        return false;
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let base = web.alerts.public_base_url.as_str();
        let ours = (!base.is_empty()
            && base.starts_with(origin)
            && base[origin.len()..].chars().next().is_none_or(|c| c == '/'))
            || origin == format!("http://{host}")
            || origin == format!("https://{host}");
        if !ours {
            return false;
        }
    }
    match cookie(headers) {
        Some(c) => web.links.get().verify(Action::Form, field) == Some(c.as_str()),
        None => false,
    }
}

/// The client's address: the peer, or the last X-Forwarded-For hop if the peer is loopback
/// (a reverse proxy on the same machine).
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    match (peer, forwarded) {
        (Some(p), Some(f)) if p.is_loopback() => Some(f),
        (Some(p), _) => Some(p),
        (None, f) => f,
    }
}
