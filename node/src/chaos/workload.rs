//! The workload of `ordo chaos`: signed puts offered at a steady rate over every node's API.
//!
//! Transaction i is due at `start + i / rate`; a few submitter threads take the next due one,
//! so one node that hangs (paused) delays only the thread talking to it. A transaction goes
//! first to node `i mod n`; a refusal (503, 429, any error body) or no answer sends the SAME
//! signed transaction to the next node, so a retry can never make a second transaction (its
//! tx_id is fixed). Only a 202 pending, or a 200 naming its status (pending or committed),
//! counts as an acknowledgement: those are the promises the check holds the nodes to.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ordo_chain::{Hash, Keypair, Op, Transaction};
use serde_json::Value;

use super::http::Http;

/// Submitter threads. More than one, so a node that never answers holds up only one of them.
const SUBMITTERS: usize = 4;
/// The most transactions one run offers; the record of acknowledgements is bounded by it.
pub const WORKLOAD_MAX_TXS: usize = 1_000_000;
/// How long one transaction is retried over the nodes before it is given up as unacknowledged.
const SUBMIT_GIVE_UP_MS: u64 = 30_000;
/// The pause after every node refused (or ignored) a transaction, before the next round.
const RETRY_PAUSE_MS: u64 = 200;

/// An acknowledged transaction.
#[derive(Debug, Clone)]
pub struct Ack {
    pub tx_id: Hash,
    /// The index of the node that acknowledged it.
    pub node: usize,
}

#[derive(Default)]
struct Record {
    acks: Vec<Ack>,
    /// Why submissions were not acknowledged: "503 not_ready", "no answer", ...
    refusals: BTreeMap<String, u64>,
    given_up: usize,
    /// Answers that break the API's contract (an acknowledgement naming another tx_id).
    bad_answers: Vec<String>,
}

struct Shared {
    chain_id: String,
    key: Keypair,
    run_tag: String,
    rate: u64,
    started: Instant,
    next: AtomicUsize,
    /// Transactions actually sent (a due time reached before the end of the fault phase).
    offered: AtomicUsize,
    /// Set at the end of the fault phase: nothing new is offered, retries finish.
    stop_offering: AtomicBool,
    record: Mutex<Record>,
}

/// What the workload did, once its threads have finished.
pub struct WorkloadReport {
    pub offered: usize,
    pub acks: Vec<Ack>,
    pub refusals: BTreeMap<String, u64>,
    pub given_up: usize,
    pub bad_answers: Vec<String>,
}

pub struct Workload {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Starts offering transactions signed by `key` to the nodes at `urls`, `rate` per second.
    pub fn start(chain_id: &str, key: Keypair, run_tag: &str, rate: u64, urls: &[String]) -> Workload {
        let shared = Arc::new(Shared {
            chain_id: chain_id.to_string(),
            key,
            run_tag: run_tag.to_string(),
            rate,
            started: Instant::now(),
            next: AtomicUsize::new(0),
            offered: AtomicUsize::new(0),
            stop_offering: AtomicBool::new(false),
            record: Mutex::new(Record::default()),
        });
        let threads = (0..SUBMITTERS)
            .map(|_| {
                let (shared, urls) = (shared.clone(), urls.to_vec());
                std::thread::spawn(move || submitter(&shared, &urls))
            })
            .collect();
        Workload { shared, threads }
    }

    /// Stops offering new transactions; those being retried go on until acknowledged or given up.
    pub fn stop_offering(&self) {
        self.shared.stop_offering.store(true, Ordering::Relaxed);
    }

    /// Waits for the submitters (at most `SUBMIT_GIVE_UP_MS` after `stop_offering`).
    pub fn finish(self) -> WorkloadReport {
        self.stop_offering();
        for t in self.threads {
            let _ = t.join();
        }
        let offered = self.shared.offered.load(Ordering::Relaxed);
        let r = std::mem::take(&mut *self.shared.record.lock().expect("workload lock"));
        WorkloadReport { offered, acks: r.acks, refusals: r.refusals, given_up: r.given_up, bad_answers: r.bad_answers }
    }
}

fn submitter(shared: &Shared, urls: &[String]) {
    let nodes: Vec<Http> = urls.iter().map(|u| Http::new(u)).collect();
    loop {
        if shared.stop_offering.load(Ordering::Relaxed) {
            return;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= WORKLOAD_MAX_TXS {
            return;
        }
        let due = shared.started + Duration::from_secs_f64(i as f64 / shared.rate as f64);
        // Sleep in short slices, so the end of the fault phase is noticed at a low rate too.
        while let Some(wait) = due.checked_duration_since(Instant::now()) {
            if shared.stop_offering.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(wait.min(Duration::from_millis(100)));
        }
        let op = Op::Put { key: format!("chaos/{}/{i}", shared.run_tag), value: i.to_string() };
        let tx = Transaction::sign(&shared.chain_id, &shared.key, i as u64, op);
        shared.offered.fetch_add(1, Ordering::Relaxed);
        submit(shared, &nodes, i % nodes.len(), &tx);
    }
}

/// What one node answered to one submission.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Acknowledged,
    /// Not an acknowledgement, and why (counted by reason).
    Refused(String),
    /// An acknowledgement that breaks the API's contract.
    Bad(String),
}

fn classify(tx_id: &Hash, answer: Result<(u16, Value), String>) -> Answer {
    let (code, body) = match answer {
        Ok(a) => a,
        Err(_) => return Answer::Refused("no answer".into()),
    };
    let status = body["status"].as_str();
    let acknowledged = matches!((code, status), (202, Some("pending")) | (200, Some("pending" | "committed")));
    if !acknowledged {
        let reason = body["error"]["code"].as_str().unwrap_or("unexpected answer");
        return Answer::Refused(format!("{code} {reason}"));
    }
    match body["tx_id"].as_str() {
        Some(id) if id == tx_id.to_hex() => Answer::Acknowledged,
        other => Answer::Bad(format!("a {code} acknowledgement of {tx_id} names tx_id {other:?}")),
    }
}

fn submit(shared: &Shared, nodes: &[Http], first: usize, tx: &Transaction) {
    let tx_id = tx.tx_id();
    let body = serde_json::to_value(tx).expect("a transaction serializes");
    let started = Instant::now();
    loop {
        for k in 0..nodes.len() {
            let node = (first + k) % nodes.len();
            let answer = classify(&tx_id, nodes[node].post("/v1/transactions", &body));
            let mut r = shared.record.lock().expect("workload lock");
            match answer {
                Answer::Acknowledged => {
                    r.acks.push(Ack { tx_id, node });
                    return;
                }
                Answer::Refused(reason) => *r.refusals.entry(reason).or_default() += 1,
                Answer::Bad(what) => r.bad_answers.push(what),
            }
        }
        if started.elapsed() >= Duration::from_millis(SUBMIT_GIVE_UP_MS) {
            shared.record.lock().expect("workload lock").given_up += 1;
            return;
        }
        std::thread::sleep(Duration::from_millis(RETRY_PAUSE_MS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_pending_or_known_status_naming_the_transaction_is_an_acknowledgement() {
        let id = Hash([5; 32]);
        let hex = id.to_hex();
        assert_eq!(classify(&id, Ok((202, json!({"tx_id": hex, "status": "pending"})))), Answer::Acknowledged);
        assert_eq!(classify(&id, Ok((200, json!({"tx_id": hex, "status": "committed"})))), Answer::Acknowledged);
        assert_eq!(classify(&id, Ok((200, json!({"tx_id": hex, "status": "pending"})))), Answer::Acknowledged);
        let full = json!({"error": {"code": "mempool_full", "message": "try later"}});
        assert_eq!(classify(&id, Ok((503, full))), Answer::Refused("503 mempool_full".into()));
        assert_eq!(classify(&id, Ok((200, json!({})))), Answer::Refused("200 unexpected answer".into()));
        assert_eq!(classify(&id, Err("connection refused".into())), Answer::Refused("no answer".into()));
        let other = Hash([6; 32]).to_hex();
        assert!(matches!(classify(&id, Ok((202, json!({"tx_id": other, "status": "pending"})))), Answer::Bad(_)));
    }
}
