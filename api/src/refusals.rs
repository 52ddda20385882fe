//! Refused requests, counted and summarised.
//!
//! Under overload a node refuses thousands of requests a second (429 rate limited, 503 mempool
//! full, ...). Each refusal is the node protecting itself, not a fault, and one log line apiece
//! buries everything else, so none is logged on its own: each is counted, per reason, with one
//! atomic add, and at most one line per interval says how many of each there were, e.g.
//! `refused 1,234 requests in the last 10 s: mempool_full 1,200, not_ready 34`.
//!
//! The line is written by the request that finds the interval over, so an idle node writes
//! nothing; what a burst leaves in the last interval is written by the next refusal (its line
//! names the longer window) or when the router is dropped at shutdown.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::http::StatusCode;

/// Why a request was refused: a fixed set, so the counters are a fixed array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 429: the client IP is over its quota.
    RateLimited,
    /// 503: the mempool has no room.
    MempoolFull,
    /// 503: the node is not ready.
    NotReady,
    /// 503: the request took longer than the request timeout.
    Timeout,
    /// 413: body or batch over its limit.
    TooLarge,
    /// 415: not JSON.
    UnsupportedMediaType,
    /// 422: a well-formed transaction that breaks a rule.
    InvalidTx,
    /// 404: no such transaction, block, key or route.
    NotFound,
    /// 405: a known path with another method.
    MethodNotAllowed,
    /// 400, and any other 4xx: a malformed request.
    BadRequest,
}

impl Refusal {
    pub const ALL: [Refusal; 10] = [
        Refusal::RateLimited,
        Refusal::MempoolFull,
        Refusal::NotReady,
        Refusal::Timeout,
        Refusal::TooLarge,
        Refusal::UnsupportedMediaType,
        Refusal::InvalidTx,
        Refusal::NotFound,
        Refusal::MethodNotAllowed,
        Refusal::BadRequest,
    ];

    /// The name in the summary line.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::RateLimited => "rate_limited",
            Refusal::MempoolFull => "mempool_full",
            Refusal::NotReady => "not_ready",
            Refusal::Timeout => "timeout",
            Refusal::TooLarge => "too_large",
            Refusal::UnsupportedMediaType => "unsupported_media_type",
            Refusal::InvalidTx => "invalid_tx",
            Refusal::NotFound => "not_found",
            Refusal::MethodNotAllowed => "method_not_allowed",
            Refusal::BadRequest => "bad_request",
        }
    }

    /// The refusal an answer's status alone implies, for the answers not built from an
    /// `ApiError` (which says its own). A 5xx is a fault, not a refusal: `None`.
    pub fn from_status(status: StatusCode) -> Option<Refusal> {
        match status {
            StatusCode::TOO_MANY_REQUESTS => Some(Refusal::RateLimited),
            StatusCode::PAYLOAD_TOO_LARGE => Some(Refusal::TooLarge),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(Refusal::UnsupportedMediaType),
            StatusCode::UNPROCESSABLE_ENTITY => Some(Refusal::InvalidTx),
            StatusCode::NOT_FOUND => Some(Refusal::NotFound),
            StatusCode::METHOD_NOT_ALLOWED => Some(Refusal::MethodNotAllowed),
            s if s.is_client_error() => Some(Refusal::BadRequest),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How many requests were refused for each reason over one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalSummary {
    counts: [u64; Refusal::ALL.len()],
    /// How long the window lasted.
    pub window_ms: u64,
}

impl RefusalSummary {
    pub fn count(&self, reason: Refusal) -> u64 {
        self.counts[reason.index()]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// `refused 1,234 requests in the last 10 s: mempool_full 1,200, not_ready 34`, the largest
/// count first.
impl fmt::Display for RefusalSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        let noun = if total == 1 { "request" } else { "requests" };
        let window_secs = self.window_ms.div_ceil(1000);
        write!(f, "refused {} {noun} in the last {} s:", thousands(total), thousands(window_secs))?;
        let mut reasons: Vec<Refusal> = Refusal::ALL.into_iter().filter(|r| self.count(*r) > 0).collect();
        reasons.sort_by_key(|r| std::cmp::Reverse(self.count(*r)));
        for (i, reason) in reasons.into_iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{} {}", reason.name(), thousands(self.count(reason)))?;
        }
        Ok(())
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The counters of one router: one per reason, and the start of the current window.
#[derive(Debug)]
pub struct RefusalCounter {
    counts: [AtomicU64; Refusal::ALL.len()],
    /// Window starts are kept as milliseconds since `epoch`, so they fit one atomic.
    epoch: Instant,
    window_start_ms: AtomicU64,
    interval_ms: u64,
}

impl RefusalCounter {
    /// A counter whose first window starts `now` and lasts at least `interval_ms`.
    pub fn new(interval_ms: u64, now: Instant) -> Self {
        Self { counts: Default::default(), epoch: now, window_start_ms: AtomicU64::new(0), interval_ms }
    }

    /// Counts one refusal at `now`, and returns the summary to log when this refusal ends a
    /// window. Concurrent callers never lose a count: a refusal counted while a window closes
    /// lands in that summary or the next.
    pub fn record(&self, reason: Refusal, now: Instant) -> Option<RefusalSummary> {
        self.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
        let now_ms = self.millis_since_epoch(now);
        let start_ms = self.window_start_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(start_ms) < self.interval_ms {
            return None;
        }
        // Of the requests that find the window over, one closes it.
        self.window_start_ms.compare_exchange(start_ms, now_ms, Ordering::AcqRel, Ordering::Relaxed).ok()?;
        self.take(now_ms - start_ms)
    }

    /// Empties the counters into a summary of a window of `window_ms`; `None` when they were
    /// empty.
    fn take(&self, window_ms: u64) -> Option<RefusalSummary> {
        let counts = std::array::from_fn(|i| self.counts[i].swap(0, Ordering::Relaxed));
        let summary = RefusalSummary { counts, window_ms };
        (summary.total() > 0).then_some(summary)
    }

    fn millis_since_epoch(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }
}

/// What the last window counted is written when the router goes away, so a shutdown during a
/// burst still reports it.
impl Drop for RefusalCounter {
    fn drop(&mut self) {
        let window_ms =
            self.millis_since_epoch(Instant::now()).saturating_sub(self.window_start_ms.load(Ordering::Relaxed));
        if let Some(summary) = self.take(window_ms) {
            tracing::info!("{summary}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn counts_per_reason_until_the_interval_ends() {
        let t0 = Instant::now();
        let counter = RefusalCounter::new(10_000, t0);
        for i in 0..1_200u64 {
            assert_eq!(counter.record(Refusal::MempoolFull, t0 + Duration::from_millis(i)), None);
        }
        for _ in 0..33 {
            assert_eq!(counter.record(Refusal::NotReady, t0 + Duration::from_millis(9_999)), None);
        }
        let summary = counter.record(Refusal::NotReady, t0 + Duration::from_millis(10_000)).expect("window over");
        assert_eq!(summary.count(Refusal::MempoolFull), 1_200);
        assert_eq!(summary.count(Refusal::NotReady), 34);
        assert_eq!(summary.count(Refusal::RateLimited), 0);
        assert_eq!(summary.total(), 1_234);
        assert_eq!(summary.window_ms, 10_000);
        assert_eq!(summary.to_string(), "refused 1,234 requests in the last 10 s: mempool_full 1,200, not_ready 34");
    }

    #[test]
    fn a_summary_resets_the_counts_and_starts_a_new_window() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let counter = RefusalCounter::new(10_000, t0);
        counter.record(Refusal::RateLimited, at(1));
        assert!(counter.record(Refusal::RateLimited, at(10_500)).is_some());
        // The new window started at 10,500: nothing is due before 20,500, and nothing is counted twice.
        assert_eq!(counter.record(Refusal::TooLarge, at(20_499)), None);
        let next = counter.record(Refusal::TooLarge, at(20_500)).expect("second window over");
        assert_eq!((next.total(), next.count(Refusal::TooLarge), next.window_ms), (2, 2, 10_000));
        // After a quiet hour the first refusal is reported at once, over the whole quiet window.
        let late = counter.record(Refusal::NotFound, at(3_620_500)).expect("window over");
        assert_eq!(late.to_string(), "refused 1 request in the last 3,600 s: not_found 1");
    }

    #[test]
    fn every_status_maps_to_at_most_one_reason_and_faults_to_none() {
        assert_eq!(Refusal::from_status(StatusCode::TOO_MANY_REQUESTS), Some(Refusal::RateLimited));
        assert_eq!(Refusal::from_status(StatusCode::BAD_REQUEST), Some(Refusal::BadRequest));
        assert_eq!(Refusal::from_status(StatusCode::REQUEST_TIMEOUT), Some(Refusal::BadRequest));
        assert_eq!(Refusal::from_status(StatusCode::INTERNAL_SERVER_ERROR), None);
        assert_eq!(Refusal::from_status(StatusCode::OK), None);
        for (i, r) in Refusal::ALL.into_iter().enumerate() {
            assert_eq!(r.index(), i, "ALL is in declaration order, which indexes the counters");
        }
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(9_335), "9,335");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
