//! The one error type of the `api` crate and its HTTP form.
//!
//! Every error the API answers with, its own or axum's, leaves as
//! `{"error":{"code":"<snake_case>","message":"..."}}` (protocol §7) with the status code chosen
//! here, so the mapping from failure to status lives in one place.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ordo_chain::ChainError;
use serde::{Deserialize, Serialize};

use crate::refusals::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A chain rule rejected the input (400 when malformed, 422 when invalid), or the store
    /// failed (500).
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("request body is not JSON: {reason}")]
    MalformedJson { reason: String },
    #[error("request body does not match the expected shape: {reason}")]
    InvalidJson { reason: String },
    #[error("could not read the request body: {reason}")]
    UnreadableBody { reason: String },
    #[error("invalid path: {reason}")]
    InvalidPath { reason: String },
    #[error("invalid query: {reason}")]
    InvalidQuery { reason: String },
    #[error("request body is over the limit of {limit_bytes} bytes")]
    BodyTooLarge { limit_bytes: usize },
    #[error("a batch holds at most {max_txs} transactions")]
    BatchTooLarge { max_txs: usize },
    #[error("expected Content-Type: application/json, got {got:?}")]
    UnsupportedMediaType { got: Option<String> },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("no route for {path}")]
    NoRoute { path: String },
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("too many requests from this address; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the mempool is full; retry after {retry_after_secs} s")]
    MempoolFull { retry_after_secs: u64 },
    #[error("the node is not ready: {reason}")]
    NotReady { reason: String, retry_after_secs: u64 },
    #[error("the request took longer than {timeout_ms} ms")]
    Timeout { timeout_ms: u64, retry_after_secs: u64 },
    #[error("{max} event streams are open on this node, its limit; retry after {retry_after_secs} s")]
    TooManySubscribers { max: usize, retry_after_secs: u64 },
    #[error("internal error: {reason}")]
    Internal { reason: String },

    // ---- Configuration rules, checked once at start-up by `ApiConfig::validate` ----
    #[error("api config: request_timeout_ms must be positive")]
    ZeroRequestTimeout,
    #[error("api config: tx_wait_max_ms ({wait_ms}) must be below request_timeout_ms ({timeout_ms})")]
    WaitNotBelowTimeout { wait_ms: u64, timeout_ms: u64 },
    #[error("api config: rate_limit_burst must be positive when rate limiting is on")]
    ZeroRateLimitBurst,
    #[error("api config: retry_after_secs must be positive")]
    ZeroRetryAfter,
    #[error("api config: refusal_log_interval_ms must be positive")]
    ZeroRefusalLogInterval,
    #[error("api config: events_max_subscribers must be positive")]
    ZeroEventSubscribers,

    /// The listener failed while serving.
    #[error("serving the API: {0}")]
    Serve(#[from] std::io::Error),
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl ApiError {
    /// The stable snake_case code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Chain(e) => e.code(),
            ApiError::MalformedJson { .. } => "malformed_json",
            ApiError::InvalidJson { .. } => "invalid_json",
            ApiError::UnreadableBody { .. } => "unreadable_body",
            ApiError::InvalidPath { .. } => "invalid_path",
            ApiError::InvalidQuery { .. } => "invalid_query",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::BatchTooLarge { .. } => "batch_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::MempoolFull { .. } => "mempool_full",
            ApiError::NotReady { .. } => "not_ready",
            ApiError::Timeout { .. } => "timeout",
            ApiError::TooManySubscribers { .. } => "too_many_subscribers",
            ApiError::Internal { .. } | ApiError::Serve(_) => "internal",
            ApiError::ZeroRequestTimeout
            | ApiError::WaitNotBelowTimeout { .. }
            | ApiError::ZeroRateLimitBurst
            | ApiError::ZeroRetryAfter
            | ApiError::ZeroRefusalLogInterval
            | ApiError::ZeroEventSubscribers => "invalid_config",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Chain(e) if e.is_malformed() => StatusCode::BAD_REQUEST,
            ApiError::Chain(e) if is_rule_violation(e) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Chain(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::MalformedJson { .. }
            | ApiError::InvalidJson { .. }
            | ApiError::UnreadableBody { .. }
            | ApiError::InvalidPath { .. }
            | ApiError::InvalidQuery { .. } => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge { .. } | ApiError::BatchTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MempoolFull { .. }
            | ApiError::NotReady { .. }
            | ApiError::Timeout { .. }
            | ApiError::TooManySubscribers { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. }
            | ApiError::Serve(_)
            | ApiError::ZeroRequestTimeout
            | ApiError::WaitNotBelowTimeout { .. }
            | ApiError::ZeroRateLimitBurst
            | ApiError::ZeroRetryAfter
            | ApiError::ZeroRefusalLogInterval
            | ApiError::ZeroEventSubscribers => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Seconds a client should wait before retrying, for the answers that carry `Retry-After`.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_secs }
            | ApiError::MempoolFull { retry_after_secs }
            | ApiError::NotReady { retry_after_secs, .. }
            | ApiError::Timeout { retry_after_secs, .. }
            | ApiError::TooManySubscribers { retry_after_secs, .. } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The reason counted when this error refuses a request; `None` for a fault of the node
    /// (500), which is logged on its own (see [`crate::refusals`]).
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            ApiError::RateLimited { .. } => Some(Refusal::RateLimited),
            ApiError::MempoolFull { .. } => Some(Refusal::MempoolFull),
            ApiError::NotReady { .. } => Some(Refusal::NotReady),
            ApiError::Timeout { .. } => Some(Refusal::Timeout),
            _ => Refusal::from_status(self.status()),
        }
    }

    /// The JSON body, also used for one failed item of a batch.
    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: ErrorDetail { code: self.code().to_string(), message: self.to_string() } }
    }
}

/// The protocol §3 rules a well-formed transaction can break: HTTP 422.
fn is_rule_violation(e: &ChainError) -> bool {
    matches!(
        e,
        ChainError::ChainIdTooLong { .. }
            | ChainError::WrongChainId { .. }
            | ChainError::EmptyKey
            | ChainError::KeyTooLong { .. }
            | ChainError::ValueTooLong { .. }
            | ChainError::BadSignature { .. }
            | ChainError::SenderNotAdmitted { .. }
    )
}

/// A refusal is logged at debug level only: refusals are counted and summarised from the
/// [`Refusal`] this puts in the response's extensions. A fault is a warning with its reason.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let refusal = self.refusal();
        if refusal.is_some() {
            tracing::debug!(error = %self, "api request refused");
        } else {
            tracing::warn!(error = %self, "api request failed");
        }
        let mut response = (self.status(), Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(self, ApiError::BodyTooLarge { .. }) {
            // The body may not have been read to its end (see `crate::body`), so the connection
            // cannot carry another request; saying so lets the client know before it tries.
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(refusal) = refusal {
            response.extensions_mut().insert(refusal);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use ordo_chain::crypto::SigError;
    use ordo_chain::{Hash, PublicKey};

    use super::*;

    #[test]
    fn chain_errors_map_to_400_422_500() {
        let bad_hex = ApiError::from(ChainError::BadHex { field: "hash", reason: "odd".into() });
        assert_eq!((bad_hex.status(), bad_hex.code()), (StatusCode::BAD_REQUEST, "bad_hex"));
        let sig = ApiError::from(ChainError::BadSignature { tx_id: Hash::ZERO, reason: SigError::Invalid });
        assert_eq!((sig.status(), sig.code()), (StatusCode::UNPROCESSABLE_ENTITY, "bad_signature"));
        let admitted = ApiError::from(ChainError::SenderNotAdmitted { sender: PublicKey::ZERO });
        assert_eq!(admitted.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let io = ApiError::from(ChainError::Io("disk".into()));
        assert_eq!(io.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn retry_after_only_on_throttling_answers() {
        assert_eq!(ApiError::MempoolFull { retry_after_secs: 2 }.retry_after_secs(), Some(2));
        assert_eq!(ApiError::NotFound { what: "x".into() }.retry_after_secs(), None);
        let r = ApiError::RateLimited { retry_after_secs: 3 }.into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
    }

    #[test]
    fn refusals_are_marked_for_counting_and_faults_are_not() {
        let cases = [
            (ApiError::RateLimited { retry_after_secs: 1 }, Some(Refusal::RateLimited)),
            (ApiError::MempoolFull { retry_after_secs: 1 }, Some(Refusal::MempoolFull)),
            (ApiError::NotReady { reason: "x".into(), retry_after_secs: 1 }, Some(Refusal::NotReady)),
            (ApiError::Timeout { timeout_ms: 1, retry_after_secs: 1 }, Some(Refusal::Timeout)),
            (ApiError::BodyTooLarge { limit_bytes: 1 }, Some(Refusal::TooLarge)),
            (ApiError::BatchTooLarge { max_txs: 1 }, Some(Refusal::TooLarge)),
            (ApiError::MalformedJson { reason: "x".into() }, Some(Refusal::BadRequest)),
            (ApiError::from(ChainError::SenderNotAdmitted { sender: PublicKey::ZERO }), Some(Refusal::InvalidTx)),
            (ApiError::NoRoute { path: "/".into() }, Some(Refusal::NotFound)),
            (ApiError::Internal { reason: "bug".into() }, None),
            (ApiError::from(ChainError::Io("disk".into())), None),
        ];
        for (error, expected) in cases {
            let name = error.to_string();
            assert_eq!(error.refusal(), expected, "{name}");
            assert_eq!(error.into_response().extensions().get::<Refusal>().copied(), expected, "{name}");
        }
    }

    #[test]
    fn body_too_large_closes_the_connection() {
        let r = ApiError::BodyTooLarge { limit_bytes: 1 }.into_response();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.headers()[header::CONNECTION], "close");
        let r = ApiError::BatchTooLarge { max_txs: 1 }.into_response();
        assert!(r.headers().get(header::CONNECTION).is_none(), "a batch over its count was read whole");
    }
}
