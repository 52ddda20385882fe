//! The layers around the handlers: per-client-IP rate limiting (the `governor` crate), the
//! request timeout's error answer, a guard that gives any error response that is not already
//! ours the protocol §7 error body, the counting of refused requests, and what the request trace
//! calls a failure.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower_http::classify::ServerErrorsFailureClass;
use tracing::Span;

use crate::config::ApiConfig;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::refusals::{Refusal, RefusalCounter};

/// How often idle clients are dropped from the rate limiter's table, which would otherwise grow
/// with every address ever seen.
const RATE_LIMIT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// A token bucket per client IP address.
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    last_cleanup: Mutex<Instant>,
}

impl RateLimit {
    /// `None` when rate limiting is off (`rate_limit_per_sec = 0`).
    pub fn new(config: &ApiConfig) -> Option<Arc<Self>> {
        let per_sec = NonZeroU32::new(config.rate_limit_per_sec)?;
        let burst = NonZeroU32::new(config.rate_limit_burst).unwrap_or(per_sec);
        let quota = Quota::per_second(per_sec).allow_burst(burst);
        Some(Arc::new(Self { limiter: RateLimiter::keyed(quota), last_cleanup: Mutex::new(Instant::now()) }))
    }

    /// `Err(seconds to wait)` when `ip` is over its quota.
    fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.maybe_cleanup();
        self.limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            // Retry-After counts whole seconds; round up so a client that obeys it succeeds.
            u64::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(u64::MAX).max(1)
        })
    }

    fn maybe_cleanup(&self) {
        let mut last = self.last_cleanup.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= RATE_LIMIT_CLEANUP_INTERVAL {
            *last = Instant::now();
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

/// Refuses a request over its client's quota with 429 and `Retry-After`. A request without a
/// peer address (served without connect info, as in in-process tests) counts as 0.0.0.0.
pub async fn rate_limit(State(limit): State<Arc<RateLimit>>, request: Request, next: Next) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip());
    match limit.check(ip) {
        Ok(()) => next.run(request).await,
        Err(retry_after_secs) => ApiError::RateLimited { retry_after_secs }.into_response(),
    }
}

/// Turns the timeout layer's error into the 503 `timeout` answer.
pub fn timeout_error(error: tower::BoxError, config: &ApiConfig) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::Timeout { timeout_ms: config.request_timeout_ms, retry_after_secs: config.retry_after_secs }
    } else {
        ApiError::Internal { reason: error.to_string() }
    }
}

/// Every error answer is JSON of the SPEC shape, except the explorer's HTML error pages. Ours
/// already are; this rewrites any other (from a layer or an axum default this crate did not
/// replace), keeping its status code.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_ours = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(b"application/json") || v.starts_with(b"text/html")
    });
    if !(status.is_client_error() || status.is_server_error()) || is_ours {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_server_error() => "internal",
        _ => "error",
    };
    let message = status.canonical_reason().unwrap_or("error").to_string();
    let body = serde_json::to_vec(&ErrorBody { error: ErrorDetail { code: code.to_string(), message } })
        .expect("an error body always serializes");
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Counts every refused request (see [`crate::refusals`]) and logs the summary when a window
/// ends. The reason is the one the `ApiError` put in the response, else the status's; an
/// answer that is not an error costs one status check.
pub async fn count_refusals(State(counter): State<Arc<RefusalCounter>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        let reason = response.extensions().get::<Refusal>().copied().or_else(|| Refusal::from_status(status));
        if let Some(summary) = reason.and_then(|r| counter.record(r, Instant::now())) {
            tracing::info!("{summary}");
        }
    }
    response
}

/// What tower-http's request trace logs for a response it classifies as a failure (any 5xx).
/// Its default writes every one as an ERROR; a 503 here is back-pressure (mempool full, not
/// ready, timeout), counted with the other refusals instead, so only the other 5xx, faults of
/// the node, and errors of the response itself are logged as errors.
pub fn trace_failure(class: ServerErrorsFailureClass, latency: Duration, _span: &Span) {
    if let ServerErrorsFailureClass::StatusCode(StatusCode::SERVICE_UNAVAILABLE) = class {
        return;
    }
    tracing::error!(classification = %class, latency_ms = latency.as_millis(), "response failed");
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    async fn call(router: Router) -> (StatusCode, Option<String>, Vec<u8>) {
        let router = router.layer(axum::middleware::from_fn(json_errors));
        let response = router.oneshot(Request::new(Body::empty())).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
        (status, content_type, body)
    }

    #[tokio::test]
    async fn plain_error_gets_the_spec_body() {
        let (status, content_type, body) =
            call(Router::new().route("/", get(|| async { (StatusCode::PAYLOAD_TOO_LARGE, "too big") }))).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(content_type.as_deref(), Some("application/json"));
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.error.code, "body_too_large");
    }

    #[tokio::test]
    async fn json_errors_and_successes_pass_untouched() {
        let ours = || async { ApiError::NotFound { what: "thing".into() } };
        let (status, _, body) = call(Router::new().route("/", get(ours))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.error.message, "thing not found");
        let (status, _, body) = call(Router::new().route("/", get(|| async { "plain ok" }))).await;
        assert_eq!((status, body), (StatusCode::OK, b"plain ok".to_vec()));
    }

    #[test]
    fn rate_limit_refuses_past_the_burst_and_says_when() {
        let config = ApiConfig { rate_limit_per_sec: 1, rate_limit_burst: 2, ..ApiConfig::default() };
        let limit = RateLimit::new(&config).unwrap();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(limit.check(a), Ok(()));
        assert_eq!(limit.check(a), Ok(()));
        assert_eq!(limit.check(a), Err(1));
        assert_eq!(limit.check(b), Ok(()), "each address has its own bucket");
        assert!(RateLimit::new(&ApiConfig { rate_limit_per_sec: 0, ..config }).is_none());
    }
}
