//! Following the chain, block by block over the API, to see when each of the bench's
//! transactions committed. Every node serves the same blocks, so the follower reads from any node
//! that answers: it moves to the next one when a node stops answering, or has not produced the
//! next block for a while (it may be the one that is behind).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use ordo_chain::Hash;

use super::http::{agent, get_typed, READ_TIMEOUT_MS};
use super::submit::Offer;

/// How often a node is asked for a block that does not exist yet.
pub const WATCH_POLL_MS: u64 = 5;
/// How long one node may go without the next block before the follower asks another node.
pub const WATCH_SWITCH_AFTER_MS: u64 = 1_000;

/// What the follower reads of a block (protocol §7): its transactions' ids, nothing else.
#[derive(serde::Deserialize)]
struct BlockTxIds {
    txs: Vec<TxId>,
}

#[derive(serde::Deserialize)]
struct TxId {
    tx_id: Hash,
}

/// What the follower saw.
pub struct Seen {
    /// When each transaction (by its index in the step) was seen committed.
    pub commit_at: Vec<Option<Instant>>,
    pub committed: usize,
    /// Blocks that carried at least one of the step's transactions.
    pub blocks: u64,
    /// The lowest and highest such blocks.
    pub first_height: Option<u64>,
    pub last_height: Option<u64>,
}

/// Follows the chain from `from_height + 1` until every transaction in `wanted` (id to index)
/// committed, or offering is over and the rest can no longer commit, or the deadline passes.
pub fn follow(
    urls: &[String],
    from_height: u64,
    wanted: &HashMap<Hash, usize>,
    offer: &Offer<'_>,
    bar: &ProgressBar,
) -> Seen {
    let agent = agent(READ_TIMEOUT_MS);
    let mut seen =
        Seen { commit_at: vec![None; wanted.len()], committed: 0, blocks: 0, first_height: None, last_height: None };
    let mut node = 0usize;
    let mut next = from_height + 1;
    let mut waiting_since = Instant::now();
    while seen.committed < wanted.len() && Instant::now() < offer.deadline {
        if offer.offering_done() && seen.committed + offer.given_up() >= wanted.len() {
            break;
        }
        match get_typed::<BlockTxIds>(&agent, &urls[node], &format!("/v1/blocks/{next}")) {
            Ok(Some(block)) => {
                let at = Instant::now();
                let mut ours = false;
                for TxId { tx_id: id } in block.txs {
                    if let Some(&i) = wanted.get(&id) {
                        if seen.commit_at[i].is_none() {
                            seen.commit_at[i] = Some(at);
                            seen.committed += 1;
                        }
                        ours = true;
                    }
                }
                if ours {
                    seen.blocks += 1;
                    seen.first_height.get_or_insert(next);
                    seen.last_height = Some(next);
                }
                next += 1;
                waiting_since = at;
                bar.set_position(seen.committed as u64);
                bar.set_message(format!("admitted {}, refused {}", offer.admitted(), offer.refused_txs()));
            }
            Ok(None) => {
                if waiting_since.elapsed() >= Duration::from_millis(WATCH_SWITCH_AFTER_MS) {
                    node = (node + 1) % urls.len();
                    waiting_since = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(WATCH_POLL_MS));
            }
            Err(_) => {
                node = (node + 1) % urls.len();
                std::thread::sleep(Duration::from_millis(WATCH_POLL_MS));
            }
        }
    }
    seen
}
