//! `GET /metrics` (protocol §7.3), parsed by the Prometheus project's own OpenMetrics parser
//! (Python `prometheus_client`, installed by `scripts/setup.sh --tests`): every name of §7.3 is
//! there, values follow what happened (commits, refusals, requests), and no label holds a height,
//! hash or id.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use common::{put, Harness};
use serde_json::{json, Value};

/// (sample name, sorted labels) -> value.
type Samples = BTreeMap<(String, Vec<(String, String)>), f64>;

/// Parses with `parse_metrics.py`; fails the test if the parser refuses the body.
fn parse(body: &str) -> (Vec<Value>, Samples) {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/parse_metrics.py");
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run {python}: {e}"));
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "Python's prometheus_client is missing: run scripts/setup.sh --tests"
    );
    assert!(out.status.success(), "the Prometheus parser refused /metrics: {stderr}\n{body}");
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let families = parsed["families"].as_array().unwrap().clone();
    let mut samples = Samples::new();
    for f in &families {
        for s in f["samples"].as_array().unwrap() {
            let mut labels: Vec<(String, String)> = s["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            labels.sort();
            samples.insert((s["name"].as_str().unwrap().to_string(), labels), s["value"].as_f64().unwrap());
        }
    }
    (families, samples)
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut labels: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    labels.sort();
    samples.get(&(name.to_string(), labels)).copied()
}

#[tokio::test]
async fn every_spec_name_parses_and_follows_what_happened() {
    let h = Harness::start().await;
    // Two commits, one accepted submission, one refused for its signature, a few reads.
    h.commit_block(&[put(1, "a", "1"), put(2, "b", "2")]);
    h.commit_block(&[put(3, "c", "3")]);
    let ok = h.post_json("/v1/transactions", &serde_json::to_value(put(4, "d", "4")).unwrap()).await;
    assert_eq!(ok.status(), 202);
    let mut bad = serde_json::to_value(put(5, "e", "5")).unwrap();
    bad["nonce"] = json!(6); // the signature no longer matches
    assert_eq!(h.post_json("/v1/transactions", &bad).await.status(), 422);
    assert_eq!(h.get("/v1/blocks/1").await.status(), 200);
    assert_eq!(h.get("/v1/blocks/2").await.status(), 200);
    assert_eq!(h.get("/v1/blocks/99").await.status(), 404);
    assert_eq!(h.get("/no/such/route").await.status(), 404);

    let resp = h.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
    let body = resp.text().await.unwrap();
    let (families, samples) = parse(&body);

    let names: Vec<&str> = families.iter().map(|f| f["name"].as_str().unwrap()).collect();
    for (name, kind) in [
        ("ordo_consensus_height", "gauge"),
        ("ordo_consensus_view", "gauge"),
        ("ordo_consensus_is_leader", "gauge"),
        ("ordo_consensus_view_changes", "counter"),
        ("ordo_consensus_validators", "gauge"),
        ("ordo_consensus_missing_validators", "gauge"),
        ("ordo_consensus_block_interval_seconds", "histogram"),
        ("ordo_consensus_txs_committed", "counter"),
        ("ordo_mempool_size", "gauge"),
        ("ordo_mempool_rejected", "counter"),
        ("ordo_p2p_peers", "gauge"),
        ("ordo_storage_commit_duration_seconds", "histogram"),
        ("ordo_http_requests", "counter"),
        ("ordo_http_request_duration_seconds", "histogram"),
        ("ordo_events_subscribers", "gauge"),
        ("ordo_build_info", "gauge"),
    ] {
        let f = families
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing; families: {names:?}"));
        assert_eq!(f["type"], kind, "{name}");
    }

    let status: Value = h.get("/v1/status").await.json().await.unwrap();
    assert_eq!(value(&samples, "ordo_consensus_height", &[]), status["height"].as_f64());
    assert_eq!(value(&samples, "ordo_consensus_txs_committed_total", &[]), Some(3.0));
    assert_eq!(value(&samples, "ordo_consensus_validators", &[]), Some(4.0));
    assert_eq!(value(&samples, "ordo_mempool_size", &[]), Some(1.0));
    assert_eq!(value(&samples, "ordo_mempool_rejected_total", &[("reason", "invalid")]), Some(1.0));
    assert_eq!(value(&samples, "ordo_storage_commit_duration_seconds_count", &[]), Some(2.0));
    // Block 1 followed genesis and block 2 followed block 1: two intervals.
    assert_eq!(value(&samples, "ordo_consensus_block_interval_seconds_count", &[]), Some(2.0));
    assert_eq!(
        value(
            &samples,
            "ordo_http_requests_total",
            &[("route", "/v1/blocks/{height}"), ("method", "GET"), ("status", "200")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &samples,
            "ordo_http_requests_total",
            &[("route", "/v1/transactions"), ("method", "POST"), ("status", "202")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "ordo_http_requests_total", &[("route", "unmatched"), ("method", "GET"), ("status", "404")]),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "ordo_build_info", &[("version", env!("CARGO_PKG_VERSION")), ("consensus", "pbft")]),
        Some(1.0)
    );

    // Bounded labels: no label value is a height, a hash or an id.
    for (name, labels) in samples.keys() {
        for (k, v) in labels {
            let is_hex_id = v.len() >= 32 && v.chars().all(|c| c.is_ascii_hexdigit());
            let has_number_path =
                k == "route" && v.split('/').any(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit()));
            assert!(!is_hex_id && !has_number_path, "{name} label {k}={v:?} holds an id or height");
        }
    }
}
