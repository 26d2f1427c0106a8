//! `/healthz`: 200 with JSON while the last successful poll is fresher than
//! `[schedule] stale_after_minutes`, 503 (same JSON) otherwise. For load balancers and monitors.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;

use crate::web::{AppState, PageError};

pub async fn healthz(State(web): State<AppState>) -> Result<Response, PageError> {
    let (last, last_ok) = web.read(|s| s.last_polls()).await?;
    let now = Utc::now();
    let stale =
        chrono::Duration::minutes(web.stale_after_minutes.min(i64::MAX as u64 / 120_000) as i64);
    let last_ok_at = last_ok
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let healthy = last_ok_at.is_some_and(|t| now - t <= stale);
    let body = serde_json::json!({
        "healthy": healthy,
        "last_successful_poll_at": last_ok,
        "last_poll_at": last.as_ref().map(|l| l.0.clone()),
        "last_poll_ok": last.as_ref().map(|l| l.2),
        "stale_after_minutes": web.stale_after_minutes,
        "checked_at": now.to_rfc3339(),
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(body)).into_response())
}
