//! The watcher of `ordo chaos`: one thread per node polls `GET /v1/status` and keeps that node's
//! latest answer, and every poll that shows a height above all seen before counts as a commit
//! somewhere, which is how the longest time with no commit anywhere is measured.
//!
//! A paused node answers nothing; its poller waits out a short timeout and marks it unreachable
//! without holding up the others.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::Http;

/// How often each node's status is read. It bounds the resolution of the recovery and
/// no-commit times the report gives.
pub const POLL_INTERVAL_MS: u64 = 100;

/// What one node said last.
#[derive(Debug, Clone, Default)]
pub struct NodeObs {
    /// Whether the last poll was answered.
    pub reachable: bool,
    pub height: Option<u64>,
    /// The PBFT view, or the Raft term.
    pub view: Option<u64>,
    pub ready: bool,
    /// The leader's public key (hex), when the node knows one.
    pub leader: Option<String>,
    pub last_block_hash: Option<String>,
}

/// What every poller shares.
#[derive(Debug)]
pub struct Observations {
    pub nodes: Vec<NodeObs>,
    /// The highest height any node has reported.
    pub max_height: u64,
    /// When `max_height` last rose (or the watch began).
    pub last_commit_at: Instant,
    /// The longest interval between two rises of `max_height` so far.
    pub longest_gap: Duration,
}

impl Observations {
    /// The longest time with no commit anywhere, counting the interval still open now.
    pub fn longest_gap_until(&self, now: Instant) -> Duration {
        self.longest_gap.max(now.saturating_duration_since(self.last_commit_at))
    }
}

pub struct Monitor {
    pub shared: Arc<Mutex<Observations>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Reads the fields of a `/v1/status` body the monitor keeps.
pub fn parse_status(v: &Value) -> NodeObs {
    NodeObs {
        reachable: true,
        height: v["height"].as_u64(),
        view: v["view"].as_u64().or_else(|| v["term"].as_u64()),
        ready: v["ready"].as_bool().unwrap_or(false),
        leader: v["leader"].as_str().map(str::to_string),
        last_block_hash: v["last_block_hash"].as_str().map(str::to_string),
    }
}

impl Monitor {
    /// Starts one poller per API URL.
    pub fn start(urls: &[String]) -> Monitor {
        let now = Instant::now();
        let shared = Arc::new(Mutex::new(Observations {
            nodes: vec![NodeObs::default(); urls.len()],
            max_height: 0,
            last_commit_at: now,
            longest_gap: Duration::ZERO,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = urls
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let (shared, stop, url) = (shared.clone(), stop.clone(), url.clone());
                std::thread::spawn(move || poll(i, &url, &shared, &stop))
            })
            .collect();
        Monitor { shared, stop, threads }
    }

    /// Starts the no-commit measurement afresh (when the workload starts: an idle chain before it
    /// commits nothing, and that is not an outage).
    pub fn restart_gap_measure(&self) {
        let mut o = self.shared.lock().expect("observations lock");
        o.last_commit_at = Instant::now();
        o.longest_gap = Duration::ZERO;
    }

    pub fn snapshot(&self) -> Vec<NodeObs> {
        self.shared.lock().expect("observations lock").nodes.clone()
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }
}

fn poll(i: usize, url: &str, shared: &Mutex<Observations>, stop: &AtomicBool) {
    let http = Http::new(url);
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let obs = match http.get("/v1/status") {
            Ok((200, v)) => Some(parse_status(&v)),
            _ => None,
        };
        {
            let now = Instant::now();
            let mut o = shared.lock().expect("observations lock");
            match obs {
                Some(obs) => {
                    let h = obs.height.unwrap_or(0);
                    if first {
                        // The heights before the run are not commits of the run.
                        o.max_height = o.max_height.max(h);
                        first = false;
                    } else if h > o.max_height {
                        let gap = now.saturating_duration_since(o.last_commit_at);
                        o.longest_gap = o.longest_gap.max(gap);
                        o.last_commit_at = now;
                        o.max_height = h;
                    }
                    o.nodes[i] = obs;
                }
                None => o.nodes[i].reachable = false,
            }
        }
        let pause = Duration::from_millis(POLL_INTERVAL_MS).saturating_sub(started.elapsed());
        std::thread::sleep(pause);
    }
}
