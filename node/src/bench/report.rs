//! The report of one step: what was offered, what committed, latency percentiles from an HDR
//! histogram, the signature ceiling and the fraction of it reached, refusals per node, and each
//! node's consensus view before and after. Printed as text (a block for one run, a table row per
//! rate for a sweep) or as JSON.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::ceiling::Ceiling;
use super::submit::NodeStats;

/// The slowest latency the histogram holds exactly (an hour, in microseconds); longer ones are
/// recorded as this (no run waits that long).
const LATENCY_MAX_US: u64 = 3_600_000_000;
/// Significant digits kept by the histogram: values are exact to 0.1%.
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// Submit-to-commit latency percentiles, in milliseconds; `None` when nothing committed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyMs {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// An HDR histogram of latencies in microseconds.
pub struct Latencies(Histogram<u64>);

impl Latencies {
    pub fn new() -> Self {
        Self(
            Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGNIFICANT_DIGITS)
                .expect("the latency histogram's bounds are valid"),
        )
    }

    pub fn record(&mut self, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, LATENCY_MAX_US);
        self.0.record(us).expect("clamped into the histogram's range");
    }

    pub fn percentiles(&self) -> LatencyMs {
        let ms = |us: u64| Some(round(us as f64 / 1000.0, 1));
        if self.0.is_empty() {
            return LatencyMs { p50: None, p90: None, p99: None, max: None };
        }
        LatencyMs {
            p50: ms(self.0.value_at_quantile(0.50)),
            p90: ms(self.0.value_at_quantile(0.90)),
            p99: ms(self.0.value_at_quantile(0.99)),
            max: ms(self.0.max()),
        }
    }
}

/// One node's part of a step.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub url: String,
    #[serde(flatten)]
    pub stats: NodeStats,
    /// The node's PBFT view (or Raft term) before and after the step; `None` if it did not answer.
    pub view_before: Option<u64>,
    pub view_after: Option<u64>,
    /// `ordo_consensus_view_changes_total` from `/metrics`, where the node serves it.
    pub view_changes_total_before: Option<u64>,
    pub view_changes_total_after: Option<u64>,
    /// CPU seconds the node's process used during the step (`ordo_process_cpu_seconds_total`
    /// after less before), where the node serves it.
    pub cpu_seconds: Option<f64>,
    /// Ed25519 signatures the node checked during the step (`ordo_signature_checks_total`, in
    /// batches and singly), where the node serves it.
    pub signature_checks: Option<u64>,
}

impl NodeReport {
    /// View changes seen at this node: from the metric where the node serves it, else from the
    /// view number (which counts every view entered, one per change).
    pub fn view_changes(&self) -> Option<u64> {
        match (self.view_changes_total_before, self.view_changes_total_after) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b)),
            _ => Some(self.view_after?.saturating_sub(self.view_before?)),
        }
    }
}

/// The report of one step (one run, or one rate of a sweep).
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub nodes: Vec<String>,
    pub validators: usize,
    pub txs: usize,
    pub senders: usize,
    /// Offered transactions per second; 0 = as fast as admitted.
    pub offered_rate: u64,
    pub duration_seconds: Option<u64>,
    pub batch: usize,
    pub clients: usize,
    pub value_size: usize,
    /// The offered rate achieved between the first and the last request's first offer.
    pub offered_actual_tx_per_s: Option<f64>,
    pub requests: u64,
    pub admitted: usize,
    pub committed: usize,
    /// Transactions that did not commit (`txs - committed`).
    pub failed: usize,
    /// Of those, the ones refused for good by a node (4xx, bad item).
    pub rejected: u64,
    /// Of those, the ones still unsent when the deadline passed.
    pub never_offered: usize,
    pub all_committed: bool,
    /// Transaction refusals, all nodes and reasons together (per node below).
    pub refusals: u64,
    pub blocks: u64,
    pub first_height: Option<u64>,
    pub last_height: Option<u64>,
    pub submit_seconds: f64,
    pub commit_window_seconds: f64,
    /// Committed transactions per second over the commit window; only when all committed.
    pub throughput_tx_per_s: Option<f64>,
    pub ceiling_tx_per_s: f64,
    pub fraction_of_ceiling: Option<f64>,
    pub ceiling: Ceiling,
    pub latency_ms: LatencyMs,
    /// The most view changes any node saw during the step.
    pub view_changes: Option<u64>,
    /// CPU seconds all the nodes' processes used during the step, when every node reported it.
    pub node_cpu_seconds: Option<f64>,
    /// `node_cpu_seconds` per committed transaction, in microseconds: the committee's work per
    /// transaction. On a shared machine it moves far less than throughput does, so it is the
    /// figure to compare two builds by when a change removes work.
    pub node_cpu_us_per_tx: Option<f64>,
    /// CPU seconds this bench process used from the first offer to the last commit it saw: its
    /// submitters, the chain follower and any subscribers (not the signing, done before). It
    /// runs on the nodes' cores, so what it takes they cannot use.
    pub bench_cpu_seconds: f64,
    /// `bench_cpu_seconds` per committed transaction, in microseconds.
    pub bench_cpu_us_per_tx: Option<f64>,
    /// Signatures all the nodes checked during the step, when every node reported it.
    pub signature_checks: Option<u64>,
    /// `signature_checks` per committed transaction. Each validator should check each
    /// transaction once, so the floor is the number of validators; what is above it is votes
    /// (a few per block) and transactions checked twice.
    pub signature_checks_per_tx: Option<f64>,
    pub per_node: Vec<NodeReport>,
    /// A few of the step's `tx_id`s, evenly spaced, for spot checks against the chain.
    pub sample_tx_ids: Vec<String>,
    /// What the `--subscribers` event streams received, when there were any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_subscribers: Option<super::subscribe::SubscribersReport>,
}

pub fn round(x: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (x * k).round() / k
}

/// The offered rate achieved: requests evenly paced at `rate` give back `rate`. `offers` are
/// (first offer instant, transactions in the request), in request order.
pub fn achieved_rate(offers: &[(Instant, usize)]) -> Option<f64> {
    let (first, last) = (offers.iter().map(|o| o.0).min()?, offers.iter().map(|o| o.0).max()?);
    let span = last.duration_since(first).as_secs_f64();
    // The transactions offered before the last request went out, over the span they took.
    let before_last: usize = offers.iter().map(|o| o.1).sum::<usize>() - offers.last()?.1;
    (span > 0.0).then(|| round(before_last as f64 / span, 1))
}

/// `ordo_consensus_view_changes_total` from a Prometheus text page (unlabelled, or summed over
/// its labels).
pub fn view_changes_total(metrics: &str) -> Option<u64> {
    metric_sum(metrics, "ordo_consensus_view_changes_total").map(|v| v as u64)
}

/// `ordo_process_cpu_seconds_total` (the node process's CPU time so far) from a Prometheus text page.
pub fn process_cpu_seconds(metrics: &str) -> Option<f64> {
    metric_sum(metrics, "ordo_process_cpu_seconds_total")
}

/// `ordo_signature_checks_total` (every path summed) from a Prometheus text page.
pub fn signature_checks(metrics: &str) -> Option<f64> {
    metric_sum(metrics, "ordo_signature_checks_total")
}

/// The sum of a metric's samples on a Prometheus text page (one unlabelled sample, or every
/// labelled one); `None` when the page has no sample of it.
fn metric_sum(metrics: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        let value = match rest.chars().next() {
            Some(' ') => rest.trim(),
            Some('{') => rest.rsplit_once('}').map_or("", |(_, v)| v.trim()),
            _ => continue,
        };
        // A sample line is `name[{labels}] value [timestamp]`.
        let v: f64 = value.split_whitespace().next()?.parse().ok()?;
        *total.get_or_insert(0.0) += v;
    }
    total
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}"))
}

fn view(v: Option<u64>) -> String {
    v.map_or_else(|| "?".to_string(), |x| x.to_string())
}

pub fn ceiling_line(c: &Ceiling) -> String {
    format!(
        "signature ceiling: {:.0} verifications/s per core x {} cores / {} validators = {:.0} tx/s \
         (TxRules::verify_many, batches of {}, {:.2} s on every core)",
        c.per_core_verify_per_s, c.cores, c.validators, c.tx_per_s, c.batch, c.seconds
    )
}

/// The per-node table: requests, admitted, refusals and rejections by reason, views.
pub fn node_lines(r: &StepReport) -> Vec<String> {
    let width = r.per_node.iter().map(|n| n.url.len()).max().unwrap_or(0);
    let mut lines =
        vec![format!("{:width$}  {:>8}  {:>8}  {:<11}  refused / rejected", "node", "requests", "admitted", "view")];
    for n in &r.per_node {
        let mut what: Vec<String> =
            n.stats.refused.iter().map(|(k, v)| format!("{k} x{} ({} txs)", v.requests, v.txs)).collect();
        what.extend(n.stats.rejected.iter().map(|(k, v)| format!("rejected {k}: {v} txs")));
        lines.push(format!(
            "{:width$}  {:>8}  {:>8}  {:<11}  {}",
            n.url,
            n.stats.requests,
            n.stats.admitted,
            format!("{} -> {}", view(n.view_before), view(n.view_after)),
            if what.is_empty() { "-".to_string() } else { what.join(", ") }
        ));
    }
    lines
}

/// The text report of a single run.
pub fn step_text(r: &StepReport) -> Vec<String> {
    let offered =
        if r.offered_rate == 0 { "as fast as admitted".to_string() } else { format!("at {} tx/s", r.offered_rate) };
    let mut lines = vec![format!(
        "offered {} transactions from {} senders {offered} ({} requests of up to {}, {} clients, {} nodes); \
         achieved offered rate {} tx/s",
        r.txs,
        r.senders,
        r.txs.div_ceil(r.batch),
        r.batch,
        r.clients,
        r.nodes.len(),
        opt(r.offered_actual_tx_per_s, 0)
    )];
    lines.extend(node_lines(r));
    let heights = match (r.first_height, r.last_height) {
        (Some(a), Some(b)) => format!(" (heights {a}..={b})"),
        _ => String::new(),
    };
    lines.push(format!(
        "committed {}/{} in {} blocks{heights} over {:.2} s; {} refusals; {} view changes",
        r.committed,
        r.txs,
        r.blocks,
        r.commit_window_seconds,
        r.refusals,
        view(r.view_changes)
    ));
    if let Some(e) = &r.event_subscribers {
        lines.push(format!(
            "{} event subscribers: {}..{} blocks each, {} MB in all, {} out of order, {} reconnects",
            e.subscribers, e.blocks_min, e.blocks_max, e.megabytes, e.out_of_order, e.reconnects
        ));
    }
    let l = &r.latency_ms;
    lines.push(format!(
        "submit-to-commit latency (ms): p50 {}  p90 {}  p99 {}  max {}",
        opt(l.p50, 1),
        opt(l.p90, 1),
        opt(l.p99, 1),
        opt(l.max, 1)
    ));
    if let (Some(t), Some(f)) = (r.throughput_tx_per_s, r.fraction_of_ceiling) {
        lines.push(format!(
            "throughput: {t:.0} tx/s committed = {f:.3} of this machine's signature ceiling ({:.0} tx/s)",
            r.ceiling_tx_per_s
        ));
    }
    if let (Some(cpu), Some(per_tx)) = (r.node_cpu_seconds, r.node_cpu_us_per_tx) {
        lines.push(format!("node CPU: {cpu:.2} s in all nodes = {per_tx:.1} µs per committed transaction"));
    }
    if let Some(per_tx) = r.bench_cpu_us_per_tx {
        lines.push(format!(
            "bench CPU: {:.2} s offering and following = {per_tx:.1} µs per committed transaction",
            r.bench_cpu_seconds
        ));
    }
    if let (Some(checks), Some(per_tx)) = (r.signature_checks, r.signature_checks_per_tx) {
        lines.push(format!(
            "signature checks: {checks} in the {n} nodes = {per_tx:.2} per committed transaction (one check in \
             each would be {n})",
            n = r.per_node.len()
        ));
    }
    lines
}

/// A node's CPU seconds during a step, from its counter before and after. A counter that went
/// down belongs to a node that restarted during the step, whose CPU before the restart is lost:
/// it gets no figure rather than a wrong one.
pub fn cpu_during(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    counter_delta(before, after).map(|d| round(d, 3))
}

/// How far a node's counter (signature checks) moved during a step; `None` as in [`cpu_during`].
pub fn count_during(before: Option<f64>, after: Option<f64>) -> Option<u64> {
    counter_delta(before, after).map(|d| d as u64)
}

/// A counter's growth from `before` to `after`; `None` when either is missing or it went down
/// (the node restarted, and what it counted before is lost).
fn counter_delta(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    before.zip(after).filter(|(b, a)| a >= b).map(|(b, a)| a - b)
}

/// The nodes' CPU seconds in all, when every node reported its own.
pub fn total_cpu_seconds(per_node: &[NodeReport]) -> Option<f64> {
    per_node.iter().map(|n| n.cpu_seconds).sum::<Option<f64>>().filter(|_| !per_node.is_empty())
}

/// The nodes' signature checks in all, when every node reported its own.
pub fn total_signature_checks(per_node: &[NodeReport]) -> Option<u64> {
    per_node.iter().map(|n| n.signature_checks).sum::<Option<u64>>().filter(|_| !per_node.is_empty())
}

pub fn sweep_header() -> String {
    format!(
        "{:>8}  {:>14}  {:>10}  {:>8}  {:>8}  {:>8}  {:>8}  {:>12}",
        "offered", "committed tx/s", "of ceiling", "p50 ms", "p99 ms", "max ms", "refusals", "view changes"
    )
}

/// One table row of a sweep; a step that did not commit everything shows `committed/txs`.
pub fn sweep_row(r: &StepReport) -> String {
    let committed = match r.throughput_tx_per_s {
        Some(t) => format!("{t:.1}"),
        None => format!("{}/{} only", r.committed, r.txs),
    };
    format!(
        "{:>8}  {:>14}  {:>10}  {:>8}  {:>8}  {:>8}  {:>8}  {:>12}",
        r.offered_rate,
        committed,
        opt(r.fraction_of_ceiling, 3),
        opt(r.latency_ms.p50, 1),
        opt(r.latency_ms.p99, 1),
        opt(r.latency_ms.max, 1),
        r.refusals,
        view(r.view_changes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = Latencies::new();
        assert_eq!(h.percentiles(), LatencyMs { p50: None, p90: None, p99: None, max: None });
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.0.len(), 100);
        let p = h.percentiles();
        assert_eq!(p.p50, Some(50.0));
        assert_eq!(p.p90, Some(90.0));
        assert_eq!(p.p99, Some(99.0));
        assert_eq!(p.max, Some(100.0));
        // Out of range on either side is clamped, not lost.
        h.record(Duration::ZERO);
        h.record(Duration::from_secs(10 * 3600));
        assert_eq!(h.0.len(), 102);
        assert!(h.percentiles().max.unwrap() >= 3_600_000.0 * 0.999);
    }

    #[test]
    fn view_changes_come_from_the_metric_else_from_the_views() {
        let page = "# HELP ordo_consensus_view_changes_total View changes.\n\
                    # TYPE ordo_consensus_view_changes_total counter\n\
                    ordo_consensus_view_changes_total 7\n\
                    ordo_consensus_view_changes_total_other 100\n\
                    ordo_consensus_view 3\n";
        assert_eq!(view_changes_total(page), Some(7));
        let labelled = "ordo_consensus_view_changes_total{reason=\"timeout\"} 2\n\
                        ordo_consensus_view_changes_total{reason=\"request\"} 3 1700000000\n";
        assert_eq!(view_changes_total(labelled), Some(5));
        assert_eq!(view_changes_total("ordo_consensus_view 3\n"), None);
        let cpu = "# TYPE ordo_process_cpu_seconds counter\n# UNIT ordo_process_cpu_seconds seconds\n\
                   ordo_process_cpu_seconds_total 12.5\n";
        assert_eq!(process_cpu_seconds(cpu), Some(12.5));
        assert_eq!(process_cpu_seconds(page), None);
        assert_eq!(view_changes_total("<html>not found</html>"), None);

        let mut n = NodeReport {
            url: "u".into(),
            stats: NodeStats::default(),
            view_before: Some(2),
            view_after: Some(5),
            view_changes_total_before: None,
            view_changes_total_after: None,
            cpu_seconds: Some(1.5),
            signature_checks: Some(4_100),
        };
        assert_eq!(n.view_changes(), Some(3));
        n.view_changes_total_before = Some(10);
        n.view_changes_total_after = Some(11);
        assert_eq!(n.view_changes(), Some(1));
        n.view_changes_total_after = None;
        n.view_after = None;
        assert_eq!(n.view_changes(), None, "a node that stopped answering has no count");

        // The committee's CPU is a total only when every node reported its own.
        let mut other = n.clone();
        other.cpu_seconds = Some(2.0);
        assert_eq!(total_cpu_seconds(&[n.clone(), other.clone()]), Some(3.5));
        other.cpu_seconds = None;
        assert_eq!(total_cpu_seconds(&[n.clone(), other.clone()]), None);
        assert_eq!(total_cpu_seconds(&[]), None);
        assert_eq!(cpu_during(Some(10.0), Some(12.25)), Some(2.25));
        assert_eq!(cpu_during(Some(10.0), Some(0.5)), None, "the node restarted during the step");
        assert_eq!(cpu_during(None, Some(3.0)), None);
        assert_eq!(cpu_during(Some(3.0), None), None);

        // Signature checks: a total, and a count during the step, the same way.
        let checks = "# TYPE ordo_signature_checks counter\n\
                      ordo_signature_checks_total{path=\"batch\"} 4000\n\
                      ordo_signature_checks_total{path=\"single\"} 120\n";
        assert_eq!(signature_checks(checks), Some(4120.0));
        assert_eq!(signature_checks(page), None);
        assert_eq!(count_during(Some(4120.0), Some(8240.0)), Some(4120));
        assert_eq!(count_during(Some(4120.0), Some(10.0)), None, "the node restarted during the step");
        other.signature_checks = Some(3_900);
        assert_eq!(total_signature_checks(&[other.clone(), other.clone()]), Some(7_800));
        other.signature_checks = None;
        assert_eq!(total_signature_checks(&[other]), None);
    }

    #[test]
    fn the_achieved_rate_of_evenly_paced_requests_is_the_rate() {
        let t0 = Instant::now();
        // Requests of 10 every 0.1 s: 100 tx/s.
        let offers: Vec<(Instant, usize)> = (0..5).map(|i| (t0 + Duration::from_millis(100 * i), 10)).collect();
        assert_eq!(achieved_rate(&offers), Some(100.0));
        assert_eq!(achieved_rate(&offers[..1]), None);
        assert_eq!(achieved_rate(&[]), None);
    }
}
