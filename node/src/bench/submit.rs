//! Offering the signed requests: paced at the offered rate, round-robin over the nodes, and a
//! refused request (429, 503, no connection, no answer in time) or refused items moved on to the
//! next node at once, while the node that refused waits out its `Retry-After`. A node that
//! refuses everything therefore costs one request per `Retry-After`, not a retry storm, and the
//! others carry the load. Refusals and rejections are counted per node and per reason.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use serde::Serialize;
use serde_json::Value;

use super::http::{post_batch, Posted, REFUSAL_CODES};
use super::sign::Request;

/// How long a node that refused without a `Retry-After` (no connection, no answer, a 5xx
/// without the header) is left alone before it is offered a request again.
pub const DEFAULT_BACKOFF_MS: u64 = 1_000;
/// A node that has left a request unanswered this long is offered no new one until it answers:
/// a paused or stuck node then holds one or two requests until they time out, not a share of
/// every submitter's.
pub const SLOW_NODE_MS: u64 = 1_000;
/// How often a submitter looks again when every node is backing off or slow.
const PICK_POLL_MS: u64 = 10;

/// Counts for one refusal reason at one node.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// Requests that this reason refused, in whole or in part.
    pub requests: u64,
    /// Transactions it refused (each refusal of a transaction counts, so one transaction refused
    /// by two nodes counts twice).
    pub txs: u64,
}

/// What one node did with what it was offered.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStats {
    pub requests: u64,
    /// Transactions this node was the first to take.
    pub admitted: u64,
    /// Per reason: an HTTP status (`429`, `503`), `connect`, `timeout`, `io`, or a per-item code
    /// (`mempool_full`, `not_ready`).
    pub refused: BTreeMap<String, Refused>,
    /// Transactions refused for good (a 4xx, or an item error such as `bad_signature`), per reason.
    pub rejected: BTreeMap<String, u64>,
}

struct NodeLoad {
    url: String,
    gate: Mutex<Gate>,
    stats: Mutex<NodeStats>,
}

/// When a node may be offered a request again.
struct Gate {
    /// Nothing is offered before this instant (the node's `Retry-After`).
    not_before: Instant,
    /// The node's last answer was a refusal: once `not_before` passes, one request probes it,
    /// and the others keep going elsewhere until that probe is answered.
    refusing: bool,
    /// The requests the node has not answered yet, by ticket. Tickets are drawn and stamped
    /// under this gate's lock, so the first entry is the oldest.
    in_flight: BTreeMap<u64, Instant>,
}

impl Gate {
    /// True when the node's oldest unanswered request is older than `SLOW_NODE_MS`.
    fn slow(&self, now: Instant) -> bool {
        self.in_flight.values().next().is_some_and(|&t| now.duration_since(t) >= Duration::from_millis(SLOW_NODE_MS))
    }
}

/// One step's submission: the requests, the nodes, and what happened to every transaction.
pub struct Offer<'a> {
    requests: &'a [Request],
    /// Transactions per request (the last one may hold fewer): request `r` starts at `r x batch`.
    batch: usize,
    nodes: Vec<NodeLoad>,
    /// Offered transactions per second; 0 = as fast as the nodes take them.
    rate: u64,
    pub started: Instant,
    pub deadline: Instant,
    next_request: AtomicUsize,
    next_ticket: AtomicU64,
    /// When each request was first offered: its transactions' submit time.
    first_offered: Vec<OnceLock<Instant>>,
    admitted: Vec<AtomicBool>,
    admitted_count: AtomicUsize,
    /// Transactions that will not commit through this run: rejected for good, or still not
    /// admitted anywhere at the deadline.
    given_up: AtomicUsize,
    /// Transactions whose request was still unsent at the deadline.
    never_offered: AtomicUsize,
    refused_txs: AtomicU64,
    submitters_left: AtomicUsize,
    rejection_shown: AtomicBool,
    request_timeout_ms: u64,
    bar: ProgressBar,
}

impl<'a> Offer<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        requests: &'a [Request],
        batch: usize,
        urls: &[String],
        rate: u64,
        started: Instant,
        deadline: Instant,
        submitters: usize,
        bar: ProgressBar,
    ) -> Self {
        let txs = requests.iter().map(|r| r.ids.len()).sum();
        Self {
            requests,
            batch,
            nodes: urls
                .iter()
                .map(|u| NodeLoad {
                    url: u.clone(),
                    gate: Mutex::new(Gate { not_before: started, refusing: false, in_flight: BTreeMap::new() }),
                    stats: Mutex::new(NodeStats::default()),
                })
                .collect(),
            rate,
            started,
            deadline,
            next_request: AtomicUsize::new(0),
            next_ticket: AtomicU64::new(0),
            first_offered: requests.iter().map(|_| OnceLock::new()).collect(),
            admitted: (0..txs).map(|_| AtomicBool::new(false)).collect(),
            admitted_count: AtomicUsize::new(0),
            given_up: AtomicUsize::new(0),
            never_offered: AtomicUsize::new(0),
            refused_txs: AtomicU64::new(0),
            submitters_left: AtomicUsize::new(submitters),
            rejection_shown: AtomicBool::new(false),
            request_timeout_ms: super::http::REQUEST_TIMEOUT_MS,
            bar,
        }
    }

    /// Tests wait less for a silent node than a real run does.
    #[cfg(test)]
    fn with_request_timeout_ms(mut self, ms: u64) -> Self {
        self.request_timeout_ms = ms;
        self
    }

    /// One submitter: takes the next request until none is left. Every submitter must run this
    /// exactly once (the count of those still running tells the watcher when offering is over).
    pub fn submitter(&self) {
        let agent = super::http::agent(self.request_timeout_ms);
        loop {
            let r = self.next_request.fetch_add(1, Ordering::Relaxed);
            let Some(req) = self.requests.get(r) else { break };
            if self.rate > 0 {
                // Request r is due when the offered load reaches its first transaction.
                let due = self.started + Duration::from_secs_f64((r * self.batch) as f64 / self.rate as f64);
                if let Some(wait) = due.min(self.deadline).checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            if Instant::now() >= self.deadline {
                self.never_offered.fetch_add(req.ids.len(), Ordering::Relaxed);
                self.given_up.fetch_add(req.ids.len(), Ordering::Relaxed);
                continue;
            }
            self.offer(r, req, &agent);
        }
        self.submitters_left.fetch_sub(1, Ordering::Release);
    }

    /// Offers request `r` until every item is taken or rejected, or the deadline passes.
    fn offer(&self, r: usize, req: &Request, agent: &ureq::Agent) {
        let _ = self.first_offered[r].set(Instant::now());
        let mut pending: Vec<usize> = (0..req.ids.len()).collect();
        // Round-robin: request r starts at node r; a refusal moves it onward.
        let mut from = r % self.nodes.len();
        while !pending.is_empty() {
            let Some((n, ticket)) = self.pick(from) else {
                self.given_up.fetch_add(pending.len(), Ordering::Relaxed);
                return;
            };
            from = (n + 1) % self.nodes.len();
            let node = &self.nodes[n];
            node.stats.lock().expect("stats lock").requests += 1;
            // No answer is awaited past the deadline: what is unanswered then did not make it.
            let timeout = Duration::from_millis(self.request_timeout_ms)
                .min(self.deadline.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(1));
            let posted = post_batch(agent, &node.url, &req.body(&pending), pending.len(), timeout);
            node.gate.lock().expect("gate lock").in_flight.remove(&ticket);
            match posted {
                Posted::Items { items, retry_after } => {
                    let mut again = Vec::new();
                    let mut refused: BTreeMap<&str, u64> = BTreeMap::new();
                    for (&i, item) in pending.iter().zip(&items) {
                        match item["error"]["code"].as_str() {
                            None => self.admit(r * self.batch + i, n),
                            Some(code) if REFUSAL_CODES.contains(&code) => {
                                again.push(i);
                                *refused.entry(code).or_default() += 1;
                            }
                            Some(code) => self.reject(n, code, &message(item), 1),
                        }
                    }
                    if again.is_empty() {
                        // The node takes requests again: it is everyone's at once.
                        let mut gate = self.nodes[n].gate.lock().expect("gate lock");
                        if gate.refusing {
                            gate.refusing = false;
                            gate.not_before = Instant::now();
                        }
                    } else {
                        for (code, txs) in refused {
                            self.refused(n, code, txs);
                        }
                        self.back_off(n, retry_after);
                    }
                    pending = again;
                }
                Posted::Refused { reason, retry_after } => {
                    self.refused(n, &reason, pending.len() as u64);
                    self.back_off(n, retry_after);
                }
                Posted::Rejected { reason, message } => {
                    self.reject(n, &reason, &message, pending.len());
                    return;
                }
            }
        }
    }

    /// The node for the next attempt, with the ticket of the request about to go to it: of the
    /// nodes neither backing off nor slow, the one with the fewest unanswered requests, the
    /// first from `from` onward among equals (so healthy nodes share the load round-robin, and
    /// a refused request goes on to the next one). A node that refused is taken by one request
    /// only (a probe) until that one is answered. When every node is backing off or slow, waits.
    /// `None` once the deadline passes.
    fn pick(&self, from: usize) -> Option<(usize, u64)> {
        let count = self.nodes.len();
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                return None;
            }
            let mut earliest = self.deadline;
            let mut best: Option<(usize, usize)> = None;
            for k in 0..count {
                let n = (from + k) % count;
                let gate = self.nodes[n].gate.lock().expect("gate lock");
                if gate.slow(now) {
                    earliest = earliest.min(now + Duration::from_millis(PICK_POLL_MS));
                } else if gate.not_before > now {
                    earliest = earliest.min(gate.not_before);
                } else if best.is_none_or(|(_, load)| gate.in_flight.len() < load) {
                    best = Some((n, gate.in_flight.len()));
                }
            }
            if let Some((n, _)) = best {
                let mut gate = self.nodes[n].gate.lock().expect("gate lock");
                // Another submitter may have taken this node's probe since the scan: look again.
                if gate.not_before <= Instant::now() {
                    if gate.refusing {
                        gate.not_before = Instant::now() + Duration::from_millis(DEFAULT_BACKOFF_MS);
                    }
                    let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
                    gate.in_flight.insert(ticket, Instant::now());
                    return Some((n, ticket));
                }
                continue;
            }
            std::thread::sleep(earliest.saturating_duration_since(now));
        }
    }

    fn back_off(&self, n: usize, retry_after: Option<Duration>) {
        let wait = retry_after.unwrap_or(Duration::from_millis(DEFAULT_BACKOFF_MS));
        let mut gate = self.nodes[n].gate.lock().expect("gate lock");
        gate.not_before = gate.not_before.max(Instant::now() + wait);
        gate.refusing = true;
    }

    fn admit(&self, tx: usize, n: usize) {
        // A request that timed out may have been admitted anyway; its resend then comes back
        // "already pending". Count each transaction once.
        if !self.admitted[tx].swap(true, Ordering::Relaxed) {
            self.admitted_count.fetch_add(1, Ordering::Relaxed);
            self.nodes[n].stats.lock().expect("stats lock").admitted += 1;
        }
    }

    fn refused(&self, n: usize, reason: &str, txs: u64) {
        self.refused_txs.fetch_add(txs, Ordering::Relaxed);
        let mut stats = self.nodes[n].stats.lock().expect("stats lock");
        let entry = stats.refused.entry(reason.to_string()).or_default();
        entry.requests += 1;
        entry.txs += txs;
    }

    fn reject(&self, n: usize, reason: &str, message: &str, txs: usize) {
        self.given_up.fetch_add(txs, Ordering::Relaxed);
        *self.nodes[n].stats.lock().expect("stats lock").rejected.entry(reason.to_string()).or_default() += txs as u64;
        // The first rejection is shown in full; the others are counted in the report.
        if !self.rejection_shown.swap(true, Ordering::Relaxed) {
            self.bar.println(format!("{} rejected {txs} transaction(s): {reason}: {message}", self.nodes[n].url));
        }
    }

    pub fn admitted(&self) -> usize {
        self.admitted_count.load(Ordering::Relaxed)
    }
    pub fn given_up(&self) -> usize {
        self.given_up.load(Ordering::Relaxed)
    }
    pub fn never_offered(&self) -> usize {
        self.never_offered.load(Ordering::Relaxed)
    }
    pub fn refused_txs(&self) -> u64 {
        self.refused_txs.load(Ordering::Relaxed)
    }
    /// True once every submitter has finished.
    pub fn offering_done(&self) -> bool {
        self.submitters_left.load(Ordering::Acquire) == 0
    }
    /// When request `r` was first offered (its transactions' submit time), if it was.
    pub fn offered_at(&self, r: usize) -> Option<Instant> {
        self.first_offered[r].get().copied()
    }
    pub fn request_of(&self, tx: usize) -> usize {
        tx / self.batch
    }
    pub fn node_stats(&self) -> Vec<(String, NodeStats)> {
        self.nodes.iter().map(|n| (n.url.clone(), n.stats.lock().expect("stats lock").clone())).collect()
    }
}

fn message(item: &Value) -> String {
    item["error"]["message"].as_str().unwrap_or("no message").to_string()
}

#[cfg(test)]
mod tests {
    //! The routing rules against scripted nodes on loopback: each serves canned answers and
    //! records what it was sent.
    use super::*;
    use crate::bench::http::REQUEST_TIMEOUT_MS;
    use crate::bench::sign::{requests, senders, Plan};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;

    /// A node that answers every batch POST with `answer(count of items, request number)`:
    /// (status, extra headers, body). Returns its URL and the count of requests it received.
    fn scripted(answer: impl Fn(usize, usize) -> (u16, String, String) + Send + 'static) -> (String, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { return };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                // One request per connection is enough for the test; ureq reconnects.
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0u8; len];
                reader.read_exact(&mut body).unwrap();
                let items: Vec<Value> = serde_json::from_slice(&body).unwrap();
                let k = counter.fetch_add(1, Ordering::SeqCst);
                let (status, headers, out) = answer(items.len(), k);
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{out}",
                    out.len()
                );
            }
        });
        (url, seen)
    }

    fn accept_all(n: usize, _: usize) -> (u16, String, String) {
        let items: Vec<String> = (0..n).map(|_| r#"{"tx_id":"00","status":"pending"}"#.to_string()).collect();
        (200, String::new(), format!("[{}]", items.join(",")))
    }

    fn signed(txs: usize, batch: usize) -> Vec<Request> {
        let keys = senders(4, &[5; 32], 2);
        let plan = Plan { chain_id: "ordo-test", senders: &keys, run_tag: "s", value_size: 1 };
        requests(&plan, 0..txs, batch, 2)
    }

    fn run(offer: &Offer<'_>, submitters: usize) {
        std::thread::scope(|s| {
            for _ in 0..submitters {
                s.spawn(|| offer.submitter());
            }
        });
    }

    #[test]
    fn a_refusing_node_is_skipped_for_its_retry_after_and_the_others_take_everything() {
        let (refuser, refused_count) =
            scripted(|_, _| (503, "Retry-After: 30\r\n".into(), r#"{"error":{"code":"mempool_full"}}"#.into()));
        let (good, _) = scripted(accept_all);
        let reqs = signed(40, 5);
        let now = Instant::now();
        let offer = Offer::new(
            &reqs,
            5,
            &[refuser.clone(), good.clone()],
            0,
            now,
            now + Duration::from_secs(20),
            2,
            ProgressBar::hidden(),
        );
        run(&offer, 2);
        assert_eq!(offer.admitted(), 40);
        assert_eq!(offer.given_up(), 0);
        assert!(offer.offering_done());
        // Retry-After 30 s: the refuser saw one request per submitter at most, not a retry storm.
        let asked = refused_count.load(Ordering::SeqCst);
        assert!((1..=2).contains(&asked), "the refusing node was asked {asked} times");
        let stats = offer.node_stats();
        assert_eq!(stats[0].0, refuser);
        assert_eq!(stats[0].1.refused["503"], Refused { requests: asked as u64, txs: 5 * asked as u64 });
        assert_eq!(stats[0].1.admitted, 0);
        assert_eq!(stats[1].1.admitted, 40);
        assert_eq!(offer.refused_txs(), 5 * asked as u64);
        assert!((0..reqs.len()).all(|r| offer.offered_at(r).is_some()));
    }

    #[test]
    fn a_node_that_recovers_is_probed_after_its_retry_after_and_takes_load_again() {
        // Refuses its first request with Retry-After 1, then takes everything.
        let (flaky, _) = scripted(|n, k| {
            if k == 0 {
                (503, "Retry-After: 1\r\n".into(), r#"{"error":{"code":"not_ready"}}"#.into())
            } else {
                accept_all(n, k)
            }
        });
        let (good, _) = scripted(accept_all);
        let reqs = signed(60, 5);
        let now = Instant::now();
        // 60 transactions at 20 tx/s: three seconds of requests, two of them after the back-off.
        let offer =
            Offer::new(&reqs, 5, &[flaky, good], 20, now, now + Duration::from_secs(20), 2, ProgressBar::hidden());
        run(&offer, 2);
        assert_eq!(offer.admitted(), 60);
        let stats = offer.node_stats();
        assert_eq!(stats[0].1.refused["503"], Refused { requests: 1, txs: 5 });
        assert!(stats[0].1.admitted >= 5, "the recovered node took requests again: {stats:?}");
    }

    #[test]
    fn a_silent_node_holds_a_few_requests_not_a_share_of_all() {
        // Accepts connections and never answers, like a paused process.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let silent = format!("http://{}", l.local_addr().unwrap());
        let held = Arc::new(AtomicUsize::new(0));
        let counter = held.clone();
        std::thread::spawn(move || {
            let mut conns = Vec::new();
            for conn in l.incoming() {
                counter.fetch_add(1, Ordering::SeqCst);
                conns.push(conn);
            }
        });
        let (good, _) = scripted(accept_all);
        let reqs = signed(400, 5);
        let now = Instant::now();
        let offer = Offer::new(
            &reqs,
            5,
            &[silent.clone(), good],
            0,
            now,
            now + Duration::from_secs(30),
            8,
            ProgressBar::hidden(),
        )
        .with_request_timeout_ms(1_500);
        run(&offer, 8);
        assert_eq!(offer.admitted(), 400);
        let stats = offer.node_stats();
        // Eight submitters start at once, half of them at the silent node; after that the node
        // with fewer unanswered requests is preferred, and a node silent for a second is skipped.
        let sent = stats[0].1.requests;
        assert!(sent <= 5, "the silent node was sent {sent} of {} requests", reqs.len());
        assert_eq!(stats[0].1.refused["timeout"].requests, sent, "{stats:?}");
        assert_eq!(stats[1].1.admitted, 400);
        assert_eq!(held.load(Ordering::SeqCst) as u64, sent);
    }

    #[test]
    fn no_answer_is_awaited_past_the_deadline() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let silent = format!("http://{}", l.local_addr().unwrap());
        std::thread::spawn(move || {
            let conns: Vec<_> = l.incoming().collect();
            drop(conns);
        });
        let reqs = signed(10, 10);
        let now = Instant::now();
        // The request timeout (REQUEST_TIMEOUT_MS, 10 s) is longer than the whole run may take.
        let offer = Offer::new(
            &reqs,
            10,
            std::slice::from_ref(&silent),
            0,
            now,
            now + Duration::from_millis(1_000),
            1,
            ProgressBar::hidden(),
        );
        run(&offer, 1);
        let took = now.elapsed();
        assert!(took < Duration::from_millis(REQUEST_TIMEOUT_MS - 5_000), "the submitter waited {took:?}");
        assert_eq!((offer.admitted(), offer.given_up()), (0, 10));
        assert_eq!(offer.node_stats()[0].1.refused["timeout"], Refused { requests: 1, txs: 10 });
    }

    #[test]
    fn refused_items_move_on_and_rejected_items_are_given_up() {
        // The first node takes the first item, refuses the second (mempool full) and rejects the
        // third (bad signature); the second node takes whatever it is sent.
        let (picky, _) = scripted(|n, _| {
            let mut items = vec![r#"{"tx_id":"00","status":"pending"}"#.to_string()];
            items.push(r#"{"error":{"code":"mempool_full","message":"full"}}"#.into());
            items.push(r#"{"error":{"code":"bad_signature","message":"forged"}}"#.into());
            items.truncate(n);
            (200, "Retry-After: 1\r\n".into(), format!("[{}]", items.join(",")))
        });
        let (good, good_seen) = scripted(accept_all);
        let reqs = signed(3, 3);
        let now = Instant::now();
        let offer =
            Offer::new(&reqs, 3, &[picky, good], 0, now, now + Duration::from_secs(20), 1, ProgressBar::hidden());
        run(&offer, 1);
        assert_eq!(offer.admitted(), 2, "the first and the refused-then-resent item");
        assert_eq!(offer.given_up(), 1, "the rejected item");
        assert_eq!(good_seen.load(Ordering::SeqCst), 1, "only the refused item went onward");
        let stats = offer.node_stats();
        assert_eq!(stats[0].1.refused["mempool_full"], Refused { requests: 1, txs: 1 });
        assert_eq!(stats[0].1.rejected["bad_signature"], 1);
        assert_eq!((stats[0].1.admitted, stats[1].1.admitted), (1, 1));
    }

    #[test]
    fn with_every_node_refusing_it_gives_up_at_the_deadline() {
        let dead = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let reqs = signed(20, 10);
        let now = Instant::now();
        let offer = Offer::new(
            &reqs,
            10,
            std::slice::from_ref(&dead),
            0,
            now,
            now + Duration::from_millis(2_500),
            1,
            ProgressBar::hidden(),
        );
        run(&offer, 1);
        assert!(Instant::now() >= offer.deadline);
        assert_eq!(offer.admitted(), 0);
        assert_eq!(offer.given_up(), 20);
        // One connection attempt per DEFAULT_BACKOFF_MS, not a busy loop.
        let tries = offer.node_stats()[0].1.refused["connect"].requests;
        assert!((1..=4).contains(&tries), "{tries} connection attempts in 2.5 s");
    }

    #[test]
    fn requests_are_paced_at_the_offered_rate() {
        let (good, _) = scripted(accept_all);
        let reqs = signed(30, 10);
        let now = Instant::now();
        // 30 transactions at 50 tx/s in requests of 10: the third request is due at 0.4 s.
        let offer = Offer::new(
            &reqs,
            10,
            std::slice::from_ref(&good),
            50,
            now,
            now + Duration::from_secs(20),
            3,
            ProgressBar::hidden(),
        );
        run(&offer, 3);
        assert_eq!(offer.admitted(), 30);
        let third = offer.offered_at(2).unwrap().duration_since(now);
        assert!(third >= Duration::from_millis(400), "request 2 offered after {third:?}");
    }
}
