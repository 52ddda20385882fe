//! Prometheus metrics (protocol §7.3), served at `GET /metrics`.
//!
//! One [`Metrics`] per node, owned by its [`crate::LocalChain`], so every part that changes a
//! value (the commit path, the consensus driver, the mempool, the p2p loop, the HTTP layer, the
//! event stream) updates it where the change happens; the handler only encodes. Nothing is
//! polled from `/v1/status` at scrape time.
//!
//! Names follow §7.3: `ordo_` prefix, base units (seconds), counters end in `_total` (the
//! encoder appends it), and no label ever holds a height, hash or id. Every label set is bounded:
//! `reason` is one of [`RejectReason`], `route` is the router's path template (or `unmatched`),
//! `method` one of seven, `status` a status code.
//!
//! The body is the OpenMetrics text format (the `prometheus-client` crate's encoder), which
//! Prometheus scrapes natively; its content type says so.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::routes::AppState;

/// The content type of `GET /metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why a transaction was not admitted to the mempool (`ordo_mempool_rejected_total{reason}`).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RejectReason {
    /// The mempool had no room (503 `mempool_full`).
    full,
    /// A rule or signature failed (422), from a client or from gossip.
    invalid,
    /// Already pending or committed: not admitted again.
    duplicate,
    /// The node was not ready (503 `not_ready`).
    not_ready,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: RejectReason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    consensus: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 0.5 ms to ~16 s (doubling).
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric of §7.3. Cheap to update from any thread (atomics, and a read lock on the
/// families' maps once a label set exists).
pub struct Metrics {
    registry: Registry,
    /// `ordo_consensus_height`: the newest committed height.
    pub height: Gauge,
    /// `ordo_consensus_view` (PBFT) or `ordo_consensus_term` (Raft).
    pub round: Gauge,
    /// `ordo_consensus_is_leader`: 1 while this node is the primary or leader.
    pub is_leader: Gauge,
    /// `ordo_consensus_view_changes_total`: view changes (or new terms) this node entered.
    pub view_changes: Counter,
    /// `ordo_consensus_validators`: n.
    pub validators: Gauge,
    /// `ordo_consensus_missing_validators`: validators this node has no connection to.
    pub missing_validators: Gauge,
    /// `ordo_consensus_block_interval_seconds`: between consecutive blocks' timestamps.
    pub block_interval: Histogram,
    /// `ordo_consensus_txs_committed_total`: transactions in committed blocks (duplicates included).
    pub txs_committed: Counter,
    /// `ordo_mempool_size`: transactions waiting.
    pub mempool_size: Gauge,
    mempool_rejected: Family<ReasonLabels, Counter>,
    /// `ordo_p2p_peers`: validators connected.
    pub p2p_peers: Gauge,
    /// `ordo_storage_commit_duration_seconds`: one block's synced write.
    pub storage_commit_duration: Histogram,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    /// `ordo_events_subscribers`: open `/v1/events` streams.
    pub events_subscribers: Gauge,
}

impl Metrics {
    /// The metrics of a node running `consensus` (`"pbft"` or `"raft"`), with `validators` = n.
    pub fn new(consensus: &str, validators: usize) -> Arc<Self> {
        let mut r = Registry::default();
        let m = Metrics {
            height: Gauge::default(),
            round: Gauge::default(),
            is_leader: Gauge::default(),
            view_changes: Counter::default(),
            validators: Gauge::default(),
            missing_validators: Gauge::default(),
            block_interval: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            txs_committed: Counter::default(),
            mempool_size: Gauge::default(),
            mempool_rejected: Family::default(),
            p2p_peers: Gauge::default(),
            storage_commit_duration: latency_histogram(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            events_subscribers: Gauge::default(),
            registry: Registry::default(),
        };
        m.validators.set(validators as i64);
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION"), consensus: consensus.to_string() })
            .set(1);
        let round = if consensus == "raft" { "ordo_consensus_term" } else { "ordo_consensus_view" };
        r.register("ordo_consensus_height", "Height of the newest committed block", m.height.clone());
        r.register(round, "Current PBFT view or Raft term", m.round.clone());
        r.register("ordo_consensus_is_leader", "1 while this node is the primary or leader", m.is_leader.clone());
        r.register(
            "ordo_consensus_view_changes",
            "View changes (PBFT) or new terms (Raft) this node entered",
            m.view_changes.clone(),
        );
        r.register("ordo_consensus_validators", "Validators in the committee", m.validators.clone());
        r.register(
            "ordo_consensus_missing_validators",
            "Validators this node has no connection to",
            m.missing_validators.clone(),
        );
        r.register_with_unit(
            "ordo_consensus_block_interval",
            "Time between consecutive blocks' timestamps",
            Unit::Seconds,
            m.block_interval.clone(),
        );
        r.register("ordo_consensus_txs_committed", "Transactions in committed blocks", m.txs_committed.clone());
        r.register("ordo_mempool_size", "Transactions waiting in the mempool", m.mempool_size.clone());
        r.register("ordo_mempool_rejected", "Transactions not admitted to the mempool", m.mempool_rejected.clone());
        r.register("ordo_p2p_peers", "Validators connected over p2p", m.p2p_peers.clone());
        r.register_with_unit(
            "ordo_storage_commit_duration",
            "Time to write one block durably",
            Unit::Seconds,
            m.storage_commit_duration.clone(),
        );
        r.register("ordo_http_requests", "HTTP requests answered", m.http_requests.clone());
        r.register_with_unit(
            "ordo_http_request_duration",
            "Time to answer an HTTP request (to the first byte of a stream)",
            Unit::Seconds,
            m.http_duration.clone(),
        );
        r.register("ordo_events_subscribers", "Open /v1/events streams", m.events_subscribers.clone());
        r.register("ordo_build_info", "This build's version and consensus engine (always 1)", build);
        r.register_collector(Box::new(ProcessCpu));
        r.register_collector(Box::new(SignatureChecks));
        Arc::new(Metrics { registry: r, ..m })
    }

    /// Counts `n` transactions not admitted for `reason`.
    pub fn rejected(&self, reason: RejectReason, n: u64) {
        if n > 0 {
            self.mempool_rejected.get_or_create(&ReasonLabels { reason }).inc_by(n);
        }
    }

    /// The current count for `reason`.
    pub fn rejected_count(&self, reason: RejectReason) -> u64 {
        self.mempool_rejected.get_or_create(&ReasonLabels { reason }).get()
    }

    /// Counts one answered request.
    pub fn http(&self, route: &str, method: &Method, status: StatusCode, seconds: f64) {
        let method = match *method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::HEAD => "HEAD",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            Method::OPTIONS => "OPTIONS",
            _ => "other",
        };
        self.http_requests
            .get_or_create(&HttpLabels { route: route.to_string(), method, status: status.as_u16() })
            .inc();
        self.http_duration.get_or_create(&RouteLabels { route: route.to_string() }).observe(seconds);
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String never fails");
        out
    }
}

/// `ordo_process_cpu_seconds_total`: the CPU time (user and system, every thread) this node's
/// process has used, read from the kernel at each scrape. `ordo bench` reads it before and after
/// a step, so that a report says how much CPU the committee spent per committed transaction: a
/// figure that moves far less than throughput when other work shares the machine.
#[derive(Debug)]
struct ProcessCpu;

impl Collector for ProcessCpu {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(process_cpu_seconds());
        let metric = encoder.encode_descriptor(
            "ordo_process_cpu",
            "CPU time this node's process has used, user and system",
            Some(&Unit::Seconds),
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}

/// `ordo_signature_checks_total{path}`: ed25519 signatures this node has checked, `path="batch"`
/// (transactions, in batches) or `"single"` (consensus votes, and the items of a batch that failed,
/// checked again alone). Transactions dominate the node's CPU, and each validator should check
/// each one once: `ordo bench` divides the committee's checks by the committed transactions.
#[derive(Debug)]
struct SignatureChecks;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: &'static str,
}

impl Collector for SignatureChecks {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (batch, single) = ordo_chain::crypto::signatures_checked();
        let mut family = encoder.encode_descriptor(
            "ordo_signature_checks",
            "Ed25519 signatures this node has checked, in batches or singly",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (path, n) in [("batch", batch), ("single", single)] {
            ConstCounter::new(n).encode(family.encode_family(&PathLabels { path })?)?;
        }
        Ok(())
    }
}

/// User plus system CPU time of this process so far, in seconds (`getrusage(RUSAGE_SELF)`).
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes one `rusage` into the zeroed value it is given and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0.0;
        }
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// `GET /metrics`.
pub async fn serve(State(app): State<AppState>) -> Response {
    let body = app.node.chain().metrics().encode();
    ([(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))], body).into_response()
}

/// Counts every request by route template, method and status, and times it. The route is the
/// router's template (`/v1/blocks/{height}`), never the raw path, so the label set stays bounded.
pub async fn track_http(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_deref().unwrap_or("unmatched");
    metrics.http(route, &method, response.status(), started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_name_of_the_spec() {
        let m = Metrics::new("pbft", 4);
        m.height.set(7);
        m.rejected(RejectReason::full, 3);
        m.http("/v1/blocks/{height}", &Method::GET, StatusCode::OK, 0.002);
        m.txs_committed.inc_by(10);
        m.block_interval.observe(0.05);
        let text = m.encode();
        for name in [
            "ordo_consensus_height 7",
            "ordo_consensus_view ",
            "ordo_consensus_is_leader ",
            "ordo_consensus_view_changes_total ",
            "ordo_consensus_validators 4",
            "ordo_consensus_missing_validators ",
            "ordo_consensus_block_interval_seconds_bucket",
            "ordo_consensus_txs_committed_total 10",
            "ordo_mempool_size ",
            "ordo_mempool_rejected_total{reason=\"full\"} 3",
            "ordo_p2p_peers ",
            "ordo_storage_commit_duration_seconds_count",
            "ordo_http_requests_total{route=\"/v1/blocks/{height}\",method=\"GET\",status=\"200\"} 1",
            "ordo_http_request_duration_seconds_count{route=\"/v1/blocks/{height}\"} 1",
            "ordo_events_subscribers ",
            "ordo_build_info{version=\"",
            "ordo_process_cpu_seconds_total ",
        ] {
            assert!(text.contains(name), "{name:?} missing from:\n{text}");
        }
        assert!(text.contains("consensus=\"pbft\"} 1"));
        assert!(Metrics::new("raft", 3).encode().contains("ordo_consensus_term "));
    }

    #[test]
    fn process_cpu_time_counts_this_process_and_grows_with_work() {
        let before = process_cpu_seconds();
        // Busy for at least 50 ms of CPU, however slow or loaded the machine.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while process_cpu_seconds() < before + 0.05 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            assert!(started.elapsed().as_secs() < 60, "60 s of wall time without 50 ms of CPU");
        }
        std::hint::black_box(x);
        let text = Metrics::new("pbft", 4).encode();
        let line =
            text.lines().find(|l| l.starts_with("ordo_process_cpu_seconds_total ")).expect("the metric is served");
        let served: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(served >= before + 0.05, "served {served}, was {before} before 50 ms of work");
        assert!(text.contains("# TYPE ordo_process_cpu_seconds counter"), "{text}");
    }

    #[test]
    fn signature_checks_are_served_by_path_and_grow() {
        let served = |text: &str, path: &str| -> u64 {
            let prefix = format!("ordo_signature_checks_total{{path=\"{path}\"}} ");
            let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{prefix} in {text}"));
            line[prefix.len()..].parse().unwrap()
        };
        let m = Metrics::new("pbft", 4);
        let before = m.encode();
        let key = ordo_chain::Keypair::from_seed([4; 32]);
        let sig = key.sign(b"m");
        let public = key.public();
        public.verify_strict(b"m", &sig).unwrap();
        let items = [ordo_chain::crypto::SigCheck { key: &public, msg: b"m", sig: &sig }; 1];
        assert!(ordo_chain::crypto::verify_batch(&items)[0].is_ok());
        let after = m.encode();
        assert!(served(&after, "single") > served(&before, "single"));
        assert!(served(&after, "batch") > served(&before, "batch"));
        assert!(after.contains("# TYPE ordo_signature_checks counter"), "{after}");
    }
}
