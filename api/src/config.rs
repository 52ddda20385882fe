//! The API's own settings: request timeout, the cap on `wait_ms`, rate limiting, the
//! `Retry-After` hint and how often refusals are summarised in the log. Body and batch limits are not here: they are the chain's `TxLimits`, read
//! from the node's `TxRules`, so one setting governs both the API and the rules.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// The longest a request may take before it is answered 503 `timeout`.
    pub request_timeout_ms: u64,
    /// The cap on `GET /v1/transactions/{tx_id}?wait_ms=N`; larger values are lowered to it. It
    /// must be below `request_timeout_ms`, so a long wait ends with an answer, not a timeout.
    pub tx_wait_max_ms: u64,
    /// Requests per second allowed per client IP address; 0 turns rate limiting off.
    pub rate_limit_per_sec: u32,
    /// How many requests one client IP may send at once before the per-second rate applies.
    pub rate_limit_burst: u32,
    /// The `Retry-After` sent with 503 (mempool full, not ready, timeout).
    pub retry_after_secs: u64,
    /// The shortest interval between two log lines summarising refused requests (see
    /// `crate::refusals`).
    pub refusal_log_interval_ms: u64,
    /// How many `/v1/events` streams may be open at once; one more is answered 503 with
    /// `Retry-After`. Each costs a little memory and, while it replays, store reads.
    pub events_max_subscribers: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            request_timeout_ms: 30_000,
            tx_wait_max_ms: 25_000,
            rate_limit_per_sec: 20_000,
            rate_limit_burst: 20_000,
            retry_after_secs: 1,
            refusal_log_interval_ms: 10_000,
            events_max_subscribers: 256,
        }
    }
}

impl ApiConfig {
    /// Checks every rule once at start-up, naming the broken one.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.request_timeout_ms == 0 {
            return Err(ApiError::ZeroRequestTimeout);
        }
        if self.tx_wait_max_ms >= self.request_timeout_ms {
            return Err(ApiError::WaitNotBelowTimeout {
                wait_ms: self.tx_wait_max_ms,
                timeout_ms: self.request_timeout_ms,
            });
        }
        if self.rate_limit_per_sec > 0 && self.rate_limit_burst == 0 {
            return Err(ApiError::ZeroRateLimitBurst);
        }
        if self.retry_after_secs == 0 {
            return Err(ApiError::ZeroRetryAfter);
        }
        if self.refusal_log_interval_ms == 0 {
            return Err(ApiError::ZeroRefusalLogInterval);
        }
        if self.events_max_subscribers == 0 {
            return Err(ApiError::ZeroEventSubscribers);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        ApiConfig::default().validate().unwrap();
    }

    #[test]
    fn each_rule_is_named() {
        let d = ApiConfig::default();
        let e = ApiConfig { request_timeout_ms: 0, ..d }.validate().unwrap_err();
        assert!(matches!(e, ApiError::ZeroRequestTimeout));
        let e = ApiConfig { tx_wait_max_ms: 30_000, ..d }.validate().unwrap_err();
        assert!(matches!(e, ApiError::WaitNotBelowTimeout { wait_ms: 30_000, timeout_ms: 30_000 }));
        let e = ApiConfig { rate_limit_burst: 0, ..d }.validate().unwrap_err();
        assert!(matches!(e, ApiError::ZeroRateLimitBurst));
        ApiConfig { rate_limit_per_sec: 0, rate_limit_burst: 0, ..d }.validate().unwrap();
        let e = ApiConfig { retry_after_secs: 0, ..d }.validate().unwrap_err();
        assert!(matches!(e, ApiError::ZeroRetryAfter));
        let e = ApiConfig { refusal_log_interval_ms: 0, ..d }.validate().unwrap_err();
        assert!(matches!(e, ApiError::ZeroRefusalLogInterval));
        let e = ApiConfig { events_max_subscribers: 0, ..d }.validate().unwrap_err();
        assert!(matches!(e, ApiError::ZeroEventSubscribers));
    }
}
