//! The web front, served by `pqwatch run` when [web] listen is set: pages to browse answers and
//! statistics, sign-up and the manage, confirm and unsubscribe links of emails, an Atom feed and
//! `/healthz`. axum routes ([`routes`]), askama templates (`templates/`, escaped by the engine),
//! a stylesheet served as a file (`assets/`, so the CSP forbids inline script and style), and
//! [`server`]'s connection limits. Pages read through read-only connections of their own
//! ([`ReadPool`]), never the pass's connection; the few writes (sign-up, confirm, manage,
//! unsubscribe) use the web's own connection.

pub mod chart;
pub mod limiter;
pub mod routes;
pub mod server;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::WebSettings;
use crate::links::SharedSigner;
use crate::pipeline::AlertSettings;
use crate::store::{ReadPool, Store};

pub use server::Limits;

/// The Content-Security-Policy of every response: no script at all, styles and images only
/// from this site, forms only to this site, never framed.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the handlers share.
pub struct Web {
    /// Read-only connections for pages.
    pub reads: ReadPool,
    /// The web's own connection for its few writes.
    pub writes: Mutex<Store>,
    /// The key that signs links, as last read from the database (every link verification reads
    /// it again, so a rotation by any process counts at once); shared with `alerts`.
    pub links: SharedSigner,
    /// Signed links, Message-IDs and the mailto address for the emails the web queues.
    pub alerts: AlertSettings,
    pub settings: WebSettings,
    /// The watch list's keywords: the sign-up form's and the statistics filter's choices.
    pub keywords: Vec<String>,
    /// `[schedule] stale_after_minutes`, for `/healthz`.
    pub stale_after_minutes: u64,
    /// `[mail] public_base_url` without a trailing slash (may be empty).
    pub public_base_url: String,
    /// Woken when a write queued an email, so the daemon sends it now, not at the next pass.
    pub outbox: Arc<tokio::sync::Notify>,
    /// Sign-ups per IP address in the last hour.
    pub signups_by_ip: limiter::RateLimiter,
}

pub type AppState = Arc<Web>;

impl Web {
    /// Runs `f` on a read-only connection, off the async executor.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, PageError>
    where
        F: FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let me = self.clone();
        match tokio::task::spawn_blocking(move || me.reads.read(f)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(PageError::Internal(format!("{e:#}"))),
            Err(e) => Err(PageError::Internal(e.to_string())),
        }
    }

    /// Runs `f` on the web's write connection, off the async executor.
    pub async fn write<T, F>(self: &Arc<Self>, f: F) -> Result<T, PageError>
    where
        F: FnOnce(&mut Store) -> anyhow::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let me = self.clone();
        let done = tokio::task::spawn_blocking(move || {
            let mut s = me
                .writes
                .lock()
                .map_err(|_| anyhow::anyhow!("the web's store lock was poisoned"))?;
            f(&mut s)
        })
        .await;
        match done {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(PageError::Internal(format!("{e:#}"))),
            Err(e) => Err(PageError::Internal(e.to_string())),
        }
    }
}

/// A request that cannot be answered with its page.
#[derive(Debug)]
pub enum PageError {
    NotFound,
    Internal(String),
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::NotFound => routes::message(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no page at this address.",
            ),
            PageError::Internal(e) => {
                tracing::error!("web request failed: {e}");
                routes::message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Please try again later.",
                )
            }
        }
    }
}

/// The whole web front: routes, then (outermost first) tracing, the security headers, the
/// compression, the body limit and the request timeout.
pub fn router(state: AppState) -> Router {
    let s = &state.settings;
    let body_limit = s.max_body_bytes;
    let timeout = Duration::from_secs(s.request_timeout_secs);
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    routes::routes()
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(set(header::CONTENT_SECURITY_POLICY, CSP))
                .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .layer(set(header::REFERRER_POLICY, "same-origin"))
                .layer(set(header::X_FRAME_OPTIONS, "DENY"))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                ))
                .layer(CompressionLayer::new())
                .layer(RequestBodyLimitLayer::new(body_limit))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    timeout,
                )),
        )
}

/// 128 random bits from the operating system, hex.
pub fn random_hex() -> anyhow::Result<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Deletes sign-ups never confirmed, now and every hour.
async fn prune_unconfirmed(state: AppState) {
    let days = i64::from(state.settings.prune_unconfirmed_days);
    loop {
        let before = chrono::Utc::now() - chrono::Duration::days(days);
        match state.write(move |s| s.prune_unconfirmed(before)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "deleted sign-ups never confirmed"),
            Err(e) => tracing::warn!("pruning unconfirmed sign-ups failed: {e:?}"),
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// Serves the web front on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) {
    let pruner = tokio::spawn(prune_unconfirmed(state.clone()));
    let _stop_pruner = scopeguard(pruner);
    let s = &state.settings;
    let limits = Limits {
        header_read_timeout: Duration::from_secs(s.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(s.idle_timeout_secs),
        max_connections: s.max_connections,
        max_header_bytes: 16 * 1024,
    };
    server::serve(listener, router(state), limits).await
}

/// Aborts a task when dropped (the serving task is aborted to stop the web front).
struct AbortGuard(tokio::task::JoinHandle<()>);

impl Drop for AbortGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn scopeguard(h: tokio::task::JoinHandle<()>) -> AbortGuard {
    AbortGuard(h)
}
