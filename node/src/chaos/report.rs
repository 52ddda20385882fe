//! The report of `ordo chaos`: what was injected, how long the committee took to commit again
//! after each fault, what the workload got acknowledged and what the check found. Printed for a
//! person, or as JSON with `--json`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::check::CheckOutcome;
use crate::cli::ChaosFault;

/// The most violations listed one by one; the total is always given.
pub const VIOLATIONS_SHOWN_MAX: usize = 100;

pub fn fault_name(k: ChaosFault) -> &'static str {
    match k {
        ChaosFault::Kill => "kill",
        ChaosFault::Pause => "pause",
        ChaosFault::Restart => "restart",
        ChaosFault::Leader => "leader",
    }
}

/// One injected fault and what followed it.
#[derive(Debug, Clone)]
pub struct FaultRecord {
    pub kind: ChaosFault,
    pub node: String,
    /// When it was injected, from the start of the run.
    pub at: Duration,
    /// How long the node was left down or paused before its restart or resume (0 for `restart`).
    pub down: Duration,
    /// From the fault to the first commit, on a node not faulty, of a block formed after it.
    pub recovery: Option<Duration>,
    /// From the fault until the node itself was back: ready and caught up.
    pub back: Option<Duration>,
}

/// A percentile summary, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank percentiles of `samples`; `None` when there are none.
pub fn spread(samples: &[Duration]) -> Option<Spread> {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let pick = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    (!ms.is_empty()).then(|| Spread { count: ms.len(), p50_ms: pick(0.50), p99_ms: pick(0.99), max_ms: pick(1.0) })
}

fn spread_json(s: Option<Spread>) -> Value {
    match s {
        Some(s) => json!({"count": s.count, "p50": s.p50_ms.round(), "p99": s.p99_ms.round(), "max": s.max_ms.round()}),
        None => json!({"count": 0, "p50": null, "p99": null, "max": null}),
    }
}

fn secs(ms: f64) -> String {
    format!("{:.2} s", ms / 1000.0)
}

/// Everything the report shows.
pub struct Report {
    pub seed: u64,
    pub dir: String,
    pub consensus: String,
    pub validators: usize,
    pub f: usize,
    pub minutes: f64,
    pub rate: u64,
    pub faults_enabled: Vec<ChaosFault>,
    pub faults: Vec<FaultRecord>,
    pub offered: usize,
    /// Transactions retried on every node until the give-up time, never acknowledged.
    pub unacknowledged: usize,
    pub refusals: BTreeMap<String, u64>,
    /// The longest time with no commit anywhere, from the first fault phase tick to the heal.
    pub longest_no_commit: Duration,
    /// Per node name: the view (or term) before and after the run.
    pub views_before: Vec<(String, Option<u64>)>,
    pub views_after: Vec<(String, Option<u64>)>,
    pub height_before: u64,
    pub outcome: CheckOutcome,
}

impl Report {
    fn by_kind<T>(&self, f: impl Fn(&[&FaultRecord]) -> T) -> BTreeMap<&'static str, T> {
        let mut kinds: BTreeMap<&'static str, Vec<&FaultRecord>> = BTreeMap::new();
        for r in &self.faults {
            kinds.entry(fault_name(r.kind)).or_default().push(r);
        }
        kinds.into_iter().map(|(k, v)| (k, f(&v))).collect()
    }

    fn recoveries(records: &[&FaultRecord]) -> Vec<Duration> {
        records.iter().filter_map(|r| r.recovery).collect()
    }

    /// What the engine calls its round, as `/v1/status` does: a PBFT "view", a Raft "term".
    fn round_name(&self) -> &'static str {
        if self.consensus == "raft" {
            "term"
        } else {
            "view"
        }
    }

    pub fn to_json(&self) -> Value {
        let all: Vec<&FaultRecord> = self.faults.iter().collect();
        let views = |v: &[(String, Option<u64>)]| -> Value {
            v.iter().map(|(n, x)| (n.clone(), json!(x))).collect::<serde_json::Map<_, _>>().into()
        };
        let o = &self.outcome;
        let rounds = json!({ "before": views(&self.views_before), "after": views(&self.views_after) });
        let mut report = json!({
            "ok": o.violations.is_empty(),
            "seed": self.seed,
            "dir": self.dir,
            "consensus": self.consensus,
            "validators": self.validators,
            "f": self.f,
            "minutes": self.minutes,
            "rate": self.rate,
            "faults_enabled": self.faults_enabled.iter().map(|k| fault_name(*k)).collect::<Vec<_>>(),
            "faults": {
                "total": self.faults.len(),
                "by_kind": self.by_kind(|r| r.len()),
                "unrecovered": self.faults.iter().filter(|r| r.recovery.is_none()).count(),
                "list": self.faults.iter().map(|r| json!({
                    "kind": fault_name(r.kind),
                    "node": r.node,
                    "at_ms": r.at.as_millis() as u64,
                    "down_ms": r.down.as_millis() as u64,
                    "recovery_ms": r.recovery.map(|d| d.as_millis() as u64),
                    "back_ms": r.back.map(|d| d.as_millis() as u64),
                })).collect::<Vec<_>>(),
            },
            "transactions": {
                "offered": self.offered,
                "acknowledged": o.acknowledged,
                "committed": o.committed,
                "lost": o.lost,
                "lost_still_pending": o.lost_pending,
                "unacknowledged": self.unacknowledged,
                "refusals": self.refusals,
            },
            "longest_no_commit_ms": self.longest_no_commit.as_millis() as u64,
            "recovery_ms": {
                "all": spread_json(spread(&Self::recoveries(&all))),
                "by_kind": self.by_kind(|r| spread_json(spread(&Self::recoveries(r)))),
            },
            "height": { "before": self.height_before, "after": o.common_height },
            "violations_total": o.violations.len(),
            "violations": o.violations.iter().take(VIOLATIONS_SHOWN_MAX).map(|v| v.to_string()).collect::<Vec<_>>(),
        });
        // "views" on a PBFT committee, "terms" on a Raft one.
        report[format!("{}s", self.round_name())] = rounds;
        report
    }

    pub fn print_text(&self) {
        let o = &self.outcome;
        let kinds = self.by_kind(|r| r.len());
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let unrecovered = self.faults.iter().filter(|r| r.recovery.is_none()).count();
        println!(
            "faults: {} ({}); {unrecovered} without a commit after them",
            self.faults.len(),
            if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") }
        );
        println!(
            "transactions: {} offered, {} acknowledged, {} committed exactly once everywhere, {} lost ({} of them \
             still pending in a mempool), {} never acknowledged",
            self.offered, o.acknowledged, o.committed, o.lost, o.lost_pending, self.unacknowledged
        );
        if !self.refusals.is_empty() {
            let r: Vec<String> = self.refusals.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            println!("  refusals and silences, each retried on another node: {}", r.join(", "));
        }
        println!("longest time with no commit anywhere: {}", secs(self.longest_no_commit.as_secs_f64() * 1000.0));
        let all: Vec<&FaultRecord> = self.faults.iter().collect();
        let line = |s: Option<Spread>| match s {
            Some(s) => format!("p50 {}  p99 {}  max {}  ({})", secs(s.p50_ms), secs(s.p99_ms), secs(s.max_ms), s.count),
            None => "none measured".into(),
        };
        println!("recovery (fault to first new commit): {}", line(spread(&Self::recoveries(&all))));
        for (k, s) in self.by_kind(|r| spread(&Self::recoveries(r))) {
            println!("  {k:<8} {}", line(s));
        }
        let views = |v: &[(String, Option<u64>)]| -> String {
            v.iter()
                .map(|(n, x)| format!("{n} {}", x.map_or("?".into(), |x| x.to_string())))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let round = self.round_name();
        println!("{round}s before: {}", views(&self.views_before));
        println!("{round}s after:  {}", views(&self.views_after));
        match o.common_height {
            Some(h) => println!("chain: height {} before, {h} after, on {} nodes", self.height_before, self.validators),
            None => println!("chain: height {} before; no node's chain could be read after", self.height_before),
        }
        if o.violations.is_empty() {
            println!(
                "ok: every acknowledged transaction committed exactly once; every node holds the same verified \
                 chain, ready, in one {round}"
            );
        } else {
            println!("VIOLATIONS ({}):", o.violations.len());
            for v in o.violations.iter().take(VIOLATIONS_SHOWN_MAX) {
                println!("  {v}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_nearest_rank_percentiles() {
        assert_eq!(spread(&[]), None);
        let ms: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = spread(&ms).unwrap();
        assert_eq!((s.count, s.p50_ms, s.p99_ms, s.max_ms), (100, 50.0, 99.0, 100.0));
        let one = spread(&[Duration::from_millis(7)]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms, one.max_ms), (7.0, 7.0, 7.0));
    }
}
