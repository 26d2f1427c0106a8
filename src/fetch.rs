//! The Parliament API client: base URL, User-Agent, rate cap, timeouts, paging, retry and backoff.
//!
//! It returns raw JSON records (`{ "value": {...} }`) and knows nothing of tables, SQLite or email.
//! Its error enum tells the caller whether to skip a record (permanent) or hold it for the next
//! poll (transient, malformed). Every request, its retries and its back-off sleeps end at once
//! when the client's stop token is cancelled (SIGTERM), with [`FetchError::Cancelled`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use reqwest::{StatusCode, Url};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::ApiSettings;
use crate::model::DocKind;

/// Longest single wait between retries, and the most a Retry-After header may ask for.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Why a request did not give a usable JSON body.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Timeouts, dropped connections, 429 and 5xx, still failing after every retry: try next poll.
    #[error("GET {url} still failing after {attempts} attempts: {last}")]
    Transient {
        url: String,
        attempts: u32,
        last: String,
    },
    /// A 4xx other than 429: asking again will not help, so the record is logged and skipped.
    #[error("GET {url} answered HTTP {status}")]
    Permanent { url: String, status: u16 },
    /// A 200 whose body is not the contract's JSON, after every retry: try next poll.
    #[error("GET {url} returned a body that is not the contract's JSON: {message}")]
    Malformed { url: String, message: String },
    /// The body grew past `[api] max_body_bytes` as it streamed in, and was cut off there.
    /// Asking again gives the same body, so it is not retried.
    #[error("GET {url} refused: the body is larger than [api] max_body_bytes ({limit} bytes)")]
    TooLarge { url: String, limit: u64 },
    /// Stopped by shutdown before an answer came: nothing was learnt; ask again next pass.
    #[error("GET {url} stopped by shutdown")]
    Cancelled { url: String },
}

/// Which date the list endpoint filters on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateField {
    /// `answeredWhenFrom`/`answeredWhenTo` (questions) or `madeWhenFrom`/`madeWhenTo` (statements).
    Answered,
    /// `correctedWhenFrom`/`correctedWhenTo` (questions only).
    Corrected,
}

/// One list query: a kind, a date field and an inclusive window of UK days.
#[derive(Clone, Debug)]
pub struct ListQuery {
    pub kind: DocKind,
    pub field: DateField,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub answering_bodies: Vec<i64>,
    /// `Some` only when exactly one house is watched.
    pub house: Option<String>,
}

/// One page of the list endpoint.
#[derive(Debug)]
pub struct Page {
    pub total_results: u64,
    pub records: Vec<serde_json::Value>,
}

pub struct Client {
    http: reqwest::Client,
    base: Url,
    page_size: u32,
    max_retries: u32,
    retry_base: Duration,
    interval: Duration,
    next_slot: Mutex<Instant>,
    requests: AtomicU64,
    /// Of `requests`, those to the list and to the single-item endpoints.
    list_requests: AtomicU64,
    detail_requests: AtomicU64,
    /// Cancelled on shutdown: ends every request, retry and back-off sleep in flight.
    stop: CancellationToken,
    max_body_bytes: u64,
}

impl Client {
    /// A client whose requests all end, with [`FetchError::Cancelled`], once `stop` is cancelled.
    pub fn new(api: &ApiSettings, stop: CancellationToken) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .user_agent(api.user_agent.clone())
            .timeout(Duration::from_secs(api.timeout_secs))
            .connect_timeout(Duration::from_secs(api.timeout_secs.min(10)))
            .build()?;
        let mut base = Url::parse(&api.base_url)?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Client {
            http,
            base,
            page_size: api.page_size,
            max_retries: api.max_retries,
            retry_base: Duration::from_millis(api.retry_base_ms),
            interval: Duration::from_secs_f64(1.0 / api.max_rps),
            next_slot: Mutex::new(Instant::now()),
            requests: AtomicU64::new(0),
            list_requests: AtomicU64::new(0),
            detail_requests: AtomicU64::new(0),
            stop,
            max_body_bytes: api.max_body_bytes,
        })
    }

    /// HTTP requests sent so far (retries included).
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// List-endpoint requests sent so far (retries included).
    pub fn list_requests_made(&self) -> u64 {
        self.list_requests.load(Ordering::Relaxed)
    }

    /// Single-item requests sent so far (retries included).
    pub fn detail_requests_made(&self) -> u64 {
        self.detail_requests.load(Ordering::Relaxed)
    }

    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// One page of a list query, starting at `skip`.
    pub async fn list_page(&self, q: &ListQuery, skip: u64) -> Result<Page, FetchError> {
        let url = self.list_url(q, skip);
        let body = self.get_json(url.clone(), &self.list_requests).await?;
        parse_page(&body).map_err(|message| FetchError::Malformed {
            url: url.to_string(),
            message,
        })
    }

    /// The single-item endpoint, whose `answerText` is never shortened.
    pub async fn detail(&self, kind: DocKind, id: i64) -> Result<serde_json::Value, FetchError> {
        let url = self
            .base
            .join(&format!("{}/{id}", endpoint(kind)))
            .expect("a path joined to a valid base URL is valid");
        self.get_json(url, &self.detail_requests).await
    }

    fn list_url(&self, q: &ListQuery, skip: u64) -> Url {
        let mut url = self
            .base
            .join(endpoint(q.kind))
            .expect("a path joined to a valid base URL is valid");
        {
            let mut qp = url.query_pairs_mut();
            let (from, to) = match (q.kind, q.field) {
                (DocKind::Statement, _) => ("madeWhenFrom", "madeWhenTo"),
                (DocKind::Question, DateField::Answered) => ("answeredWhenFrom", "answeredWhenTo"),
                (DocKind::Question, DateField::Corrected) => {
                    ("correctedWhenFrom", "correctedWhenTo")
                }
            };
            if q.kind == DocKind::Question {
                qp.append_pair("answered", "Answered");
            }
            qp.append_pair(from, &q.from.format("%Y-%m-%d").to_string());
            qp.append_pair(to, &q.to.format("%Y-%m-%d").to_string());
            for body in &q.answering_bodies {
                qp.append_pair("answeringBodies", &body.to_string());
            }
            if let Some(house) = &q.house {
                qp.append_pair("house", house);
            }
            qp.append_pair("expandMember", "true");
            qp.append_pair("skip", &skip.to_string());
            qp.append_pair("take", &self.page_size.to_string());
        }
        url
    }

    /// GET with the rate cap, retrying transient failures with exponential backoff and jitter,
    /// until the stop token is cancelled: then the request in flight (or the wait for a rate
    /// slot, or the back-off sleep) is dropped at once. Each attempt is counted in `requests`
    /// and in `counter` (the endpoint's own count).
    async fn get_json(
        &self,
        url: Url,
        counter: &AtomicU64,
    ) -> Result<serde_json::Value, FetchError> {
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => Err(FetchError::Cancelled { url: url.to_string() }),
            r = self.get_json_retrying(&url, counter) => r,
        }
    }

    async fn get_json_retrying(
        &self,
        url: &Url,
        counter: &AtomicU64,
    ) -> Result<serde_json::Value, FetchError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            self.wait_for_slot().await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            counter.fetch_add(1, Ordering::Relaxed);
            let (last, retry_after) = match self.http.get(url.clone()).send().await {
                Err(e) => (describe(&e), None),
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        match read_capped(resp, self.max_body_bytes).await {
                            Err(Capped::TooLarge) => {
                                return Err(FetchError::TooLarge {
                                    url: url.to_string(),
                                    limit: self.max_body_bytes,
                                })
                            }
                            Err(Capped::Http(e)) => (describe(&e), None),
                            Ok(bytes) => match serde_json::from_slice(&bytes) {
                                Ok(v) => return Ok(v),
                                Err(e) if attempt > self.max_retries => {
                                    return Err(FetchError::Malformed {
                                        url: url.to_string(),
                                        message: e.to_string(),
                                    })
                                }
                                Err(e) => (format!("malformed JSON: {e}"), None),
                            },
                        }
                    } else if status == StatusCode::TOO_MANY_REQUESTS {
                        let ra = retry_after(resp.headers());
                        (format!("HTTP {status}"), ra)
                    } else if status.is_server_error() {
                        (format!("HTTP {status}"), None)
                    } else {
                        return Err(FetchError::Permanent {
                            url: url.to_string(),
                            status: status.as_u16(),
                        });
                    }
                }
            };
            if attempt > self.max_retries {
                return Err(FetchError::Transient {
                    url: url.to_string(),
                    attempts: attempt,
                    last,
                });
            }
            let backoff = backoff(self.retry_base, attempt);
            let wait = retry_after.map_or(backoff, |ra| ra.max(backoff));
            // Each retry is routine: the failure that outlasts them is reported once, by the pass.
            tracing::debug!(%url, attempt, error = %last, wait_ms = wait.as_millis() as u64, "request failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn wait_for_slot(&self) {
        let at = {
            let mut next = self.next_slot.lock().await;
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

enum Capped {
    TooLarge,
    Http(reqwest::Error),
}

/// Reads a body chunk by chunk as it arrives, giving up as soon as it would pass `limit`: a
/// declared Content-Length over the limit is refused before anything is read, and a body
/// without one (chunked, or gzip-decoded) is cut off at the limit, so no more than `limit`
/// bytes are ever held.
async fn read_capped(mut resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, Capped> {
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > limit) {
        return Err(Capped::TooLarge);
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(Capped::Http)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(Capped::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn endpoint(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Question => "api/writtenquestions/questions",
        DocKind::Statement => "api/writtenstatements/statements",
    }
}

/// What went wrong, briefly: the innermost cause ("Connection refused (os error 111)"), with
/// the host for a connection that could not be made. The outer layers only repeat the URL.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    if e.is_timeout() {
        return "no answer in time (timed out)".to_owned();
    }
    let mut inner = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        inner = cause.to_string();
        src = cause.source();
    }
    match e.url().filter(|_| e.is_connect()) {
        Some(u) => format!(
            "cannot connect to {}:{}: {inner}",
            u.host_str().unwrap_or("?"),
            u.port_or_known_default().unwrap_or(0)
        ),
        None => inner,
    }
}

impl FetchError {
    /// The failure in a few words, without the URL: "cannot connect to host:443: … (6 attempts)".
    pub fn cause(&self) -> String {
        match self {
            FetchError::Transient { attempts, last, .. } => {
                format!("{last} ({attempts} attempts)")
            }
            FetchError::Permanent { status, .. } => format!("the API answered HTTP {status}"),
            FetchError::Malformed { message, .. } => {
                format!("the answer is not the API's JSON ({message})")
            }
            FetchError::TooLarge { limit, .. } => {
                format!("the answer is larger than [api] max_body_bytes ({limit} bytes)")
            }
            FetchError::Cancelled { .. } => "stopped by shutdown".to_owned(),
        }
    }

    /// What an operator should check.
    pub fn check(&self) -> &'static str {
        match self {
            FetchError::Transient { last, .. } if last.starts_with("cannot connect") => {
                "the network, DNS and [api] base_url"
            }
            FetchError::Transient { .. } => {
                "the API's availability (nothing to do if it recovers); [api] timeout_secs if it is slow"
            }
            FetchError::Permanent { .. } => "[api] base_url and the API's documented shape",
            FetchError::Malformed { .. } => {
                "that [api] base_url points at the Parliament API, not a proxy or captive portal"
            }
            FetchError::TooLarge { .. } => {
                "[api] max_body_bytes, if the API really sends bodies this large; otherwise [api] base_url"
            }
            FetchError::Cancelled { .. } => "nothing: it was asked to stop",
        }
    }
}

/// `base * 2^(attempt-1)`, capped, with "equal jitter": half fixed, half random, so retries from
/// many clients spread out but never come back at once.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(MAX_BACKOFF);
    let half = exp / 2;
    half + half.mul_f64(fastrand::f64())
}

/// Retry-After as delta-seconds or an HTTP date, capped.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
        (when.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// `{ "totalResults": int, "results": [...] }`. Records are returned as they are; each is read on
/// its own later, so one bad record does not spoil the page.
fn parse_page(body: &serde_json::Value) -> Result<Page, String> {
    let total_results = body
        .get("totalResults")
        .and_then(serde_json::Value::as_u64)
        .ok_or("no numeric totalResults")?;
    let records = body
        .get("results")
        .and_then(serde_json::Value::as_array)
        .ok_or("no results array")?
        .clone();
    Ok(Page {
        total_results,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        for attempt in 1..=20 {
            let d = backoff(base, attempt);
            let full = base
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(MAX_BACKOFF);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_is_capped() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after", "999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    #[test]
    fn a_page_without_total_results_is_malformed() {
        assert!(parse_page(&serde_json::json!({"results": []})).is_err());
        let p = parse_page(&serde_json::json!({"totalResults": 2, "results": [1, {}]})).unwrap();
        assert_eq!((p.total_results, p.records.len()), (2, 2));
    }
}
