//! `ordo bench --subscribers N`: N clients of `GET /v1/events` (protocol §7.1), spread over the
//! nodes, reading every block with its transactions for the whole step, as block explorers and
//! indexers would. They measure what the event streams cost the committee (compare a step with
//! and without them) and check the streams' promise on the way: every height once, in order.
//! A subscriber whose connection drops or stays silent reconnects with `Last-Event-ID`, as an
//! `EventSource` does, and the check spans the reconnection.

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

/// How long a read may wait; the stream sends a keep-alive every 10 s, so a longer silence
/// means a stuck connection, and a subscriber also looks at the stop flag this often.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// What one subscriber saw.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub blocks: u64,
    pub bytes: u64,
    /// Heights that did not follow the previous one (a gap or a repeat): the stream's promise
    /// broken.
    pub out_of_order: u64,
    pub reconnects: u64,
}

/// All subscribers of a step together.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SubscribersReport {
    pub subscribers: usize,
    pub blocks_min: u64,
    pub blocks_max: u64,
    pub megabytes: f64,
    pub out_of_order: u64,
    pub reconnects: u64,
}

impl SubscribersReport {
    pub fn of(tallies: &[Tally]) -> Option<Self> {
        if tallies.is_empty() {
            return None;
        }
        Some(Self {
            subscribers: tallies.len(),
            blocks_min: tallies.iter().map(|t| t.blocks).min().unwrap_or(0),
            blocks_max: tallies.iter().map(|t| t.blocks).max().unwrap_or(0),
            megabytes: super::report::round(tallies.iter().map(|t| t.bytes).sum::<u64>() as f64 / 1e6, 1),
            out_of_order: tallies.iter().map(|t| t.out_of_order).sum(),
            reconnects: tallies.iter().map(|t| t.reconnects).sum(),
        })
    }
}

/// Follows `url`'s event stream from height `from + 1` until `stop` is set and the stream has
/// delivered at least up to `until` (read once `stop` is set: the highest height of the step).
/// With `headers_only`, asks for blocks without their transactions (`?txs=false`).
pub fn follow(
    url: &str,
    from: u64,
    headers_only: bool,
    stop: &AtomicBool,
    until: &std::sync::atomic::AtomicU64,
) -> Tally {
    let path = if headers_only { "/v1/events?txs=false" } else { "/v1/events" };
    let agent = ureq::AgentBuilder::new().timeout_connect(READ_TIMEOUT).timeout_read(READ_TIMEOUT).build();
    let mut t = Tally::default();
    let mut last = from;
    let done = |last: u64| stop.load(Ordering::Acquire) && last >= until.load(Ordering::Acquire);
    while !done(last) {
        let resp = match agent.get(&format!("{url}{path}")).set("Last-Event-ID", &last.to_string()).call() {
            Ok(r) => r,
            Err(_) => {
                t.reconnects += 1;
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        let mut lines = BufReader::new(resp.into_reader());
        let mut line = String::new();
        let mut id: Option<u64> = None;
        let mut is_block = false;
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(n) => t.bytes += n as u64,
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                if let (true, Some(h)) = (is_block, id) {
                    t.blocks += 1;
                    if h != last + 1 {
                        t.out_of_order += 1;
                    }
                    last = h;
                }
                (id, is_block) = (None, false);
                if done(last) {
                    return t;
                }
            } else if let Some(v) = l.strip_prefix("id:") {
                id = v.trim().parse().ok();
            } else if l == "event: block" {
                is_block = true;
            }
        }
        if !done(last) {
            t.reconnects += 1;
        }
    }
    t
}
