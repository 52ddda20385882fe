//! What the API writes to the log when it refuses requests: no ERROR and no line per request,
//! only summaries that add up to every refusal; and a real fault is still an ERROR.
//!
//! This binary installs a global subscriber that captures the log, so it holds this one test:
//! another running beside it would write into the same capture.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ordo_api::{ApiConfig, MempoolConfig, Readiness};
use reqwest::StatusCode;
use serde_json::Value;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The captured log, shared with the subscriber's writer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Captures everything the API and tower-http log, down to DEBUG.
    fn install() -> Capture {
        let capture = Capture::default();
        let writer = capture.clone();
        let format =
            tracing_subscriber::fmt::layer().without_time().with_ansi(false).with_writer(move || writer.clone());
        let targets =
            Targets::new().with_target("ordo_api", LevelFilter::DEBUG).with_target("tower_http", LevelFilter::DEBUG);
        tracing_subscriber::registry().with(format).with(targets).init();
        capture
    }

    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap()).lines().map(str::to_string).collect()
    }

    /// The lines logged at `level` (`ERROR`, `WARN`, `INFO`, ...).
    fn at(&self, level: &str) -> Vec<String> {
        self.lines().into_iter().filter(|l| l.split_whitespace().next() == Some(level)).collect()
    }
}

/// Adds up the counts of every summary line: `refused N requests in the last S s: a 1, b 2`.
fn summarised(capture: &Capture) -> BTreeMap<String, u64> {
    let mut totals = BTreeMap::new();
    for line in capture.at("INFO") {
        let Some(at) = line.find("refused ") else { continue };
        let (head, counts) = line[at..].split_once(": ").expect("a summary names its reasons");
        let mut line_total = 0;
        for item in counts.split(", ") {
            let (reason, n) = item.rsplit_once(' ').expect("`reason count`");
            let n: u64 = n.replace(',', "").parse().expect("a count");
            *totals.entry(reason.to_string()).or_insert(0) += n;
            line_total += n;
        }
        let stated: u64 = head.split_whitespace().nth(1).unwrap().replace(',', "").parse().unwrap();
        assert_eq!(stated, line_total, "the total is the sum of the reasons: {line}");
    }
    totals
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_summarised_and_only_faults_are_errors() {
    let capture = Capture::install();
    let started = std::time::Instant::now();
    let config = ApiConfig {
        request_timeout_ms: 1_000,
        tx_wait_max_ms: 500,
        rate_limit_per_sec: 1,
        rate_limit_burst: 40,
        refusal_log_interval_ms: 1_000,
        ..ApiConfig::default()
    };
    let h = Harness::start_with(config, MempoolConfig { max_txs: 1, max_bytes: 1 << 20 }).await;
    let tx = |nonce| serde_json::to_value(put(nonce, "k", "v")).unwrap();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut expect = |reason: &str| *expected.entry(reason.to_string()).or_insert(0) += 1;

    assert_eq!(h.post_json("/v1/transactions", &tx(1)).await.status(), StatusCode::ACCEPTED);
    for nonce in 2..5 {
        assert_error(
            h.post_json("/v1/transactions", &tx(nonce)).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "mempool_full",
        )
        .await;
        expect("mempool_full");
    }
    *h.node.readiness.lock().unwrap() = Readiness::NotReady { reason: "catching up".into() };
    for nonce in 5..7 {
        assert_error(h.post_json("/v1/transactions", &tx(nonce)).await, StatusCode::SERVICE_UNAVAILABLE, "not_ready")
            .await;
        expect("not_ready");
    }
    *h.node.readiness.lock().unwrap() = Readiness::Ready;
    let big = serde_json::to_vec(&put(9, "k", &"v".repeat(2 * 1024 * 1024))).unwrap();
    assert_error(
        h.post_raw("/v1/transactions", "application/json", big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    )
    .await;
    expect("too_large");
    assert_error(h.get("/v1/blocks/99").await, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(h.get("/nowhere").await, StatusCode::NOT_FOUND, "not_found").await;
    expect("not_found");
    expect("not_found");
    assert_error(
        h.post_raw("/v1/transactions", "application/json", b"{".to_vec()).await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    expect("bad_request");
    assert_error(
        h.post_raw("/v1/transactions", "text/plain", b"{}".to_vec()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    expect("unsupported_media_type");
    h.node.status_delay_ms.store(1_500, Ordering::Relaxed);
    assert_error(h.get("/v1/status").await, StatusCode::SERVICE_UNAVAILABLE, "timeout").await;
    expect("timeout");
    h.node.status_delay_ms.store(0, Ordering::Relaxed);

    assert_eq!(capture.at("ERROR"), Vec::<String>::new(), "a refusal is not an error");
    assert_eq!(capture.at("WARN"), Vec::<String>::new(), "a refusal is not a warning");

    // A fault of the node is still an error, once, from the request trace; the API's own line
    // says what failed.
    h.node.status_fails.store(true, Ordering::Relaxed);
    assert_error(h.get("/v1/status").await, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
    h.node.status_fails.store(false, Ordering::Relaxed);
    let errors = capture.at("ERROR");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("response failed") && errors[0].contains("500"), "{errors:#?}");
    let warnings = capture.at("WARN");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("the test node was told to fail"), "{warnings:#?}");

    // Past the burst, the rate limiter refuses.
    let mut limited = false;
    for _ in 0..100 {
        let resp = h.get("/v1/validators").await;
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
            limited = true;
            break;
        }
        let _: Value = resp.json().await.unwrap();
    }
    assert!(limited, "100 requests at once exceed a quota of 1/s with a burst of 40");
    expect("rate_limited");

    // Once the interval is over, the next refusal writes what is left of the window.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_error(h.get("/nowhere").await, StatusCode::NOT_FOUND, "not_found").await;
    expect("not_found");
    assert_eq!(summarised(&capture), expected, "the summaries add up to every refusal:\n{:#?}", capture.lines());
    let summaries: Vec<String> = capture.at("INFO").into_iter().filter(|l| l.contains("refused ")).collect();
    // At most one line per 1 s interval, however long the requests above took.
    let intervals = started.elapsed().as_millis() / 1_000;
    assert!(!summaries.is_empty() && summaries.len() as u128 <= intervals, "{intervals} s: {summaries:#?}");
    assert_eq!(capture.at("ERROR").len(), 1, "still only the fault: {:#?}", capture.at("ERROR"));
}
