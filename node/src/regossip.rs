//! Re-gossip of transactions that stay pending.
//!
//! A transaction is gossiped once, when a node admits it. That one publication can reach nobody:
//! a node just restarted by a fault is connected (and so ready) before gossipsub has learned its
//! peers' subscriptions, and a publication made while the mesh still names a killed peer can miss
//! the live ones. The transaction then waits in that one node's mempool, which is a backup's, so
//! no primary ever proposes it: an acknowledged transaction that never commits (found by
//! `ordo chaos`: 57 acknowledged transactions were held only by the node that admitted them).
//!
//! So the node looks at its oldest pending transactions every `REGOSSIP_TICK_MS` and publishes
//! again those that were already among the oldest one tick before: every `REGOSSIP_INTERVAL_MS`
//! while the chain grows, and at once, at any tick, when the chain did not grow since the one
//! before. The second case is the relay a backup owes its primary (Castro and Liskov send a
//! request a backup waits on to the primary): under overload a primary with a full mempool drops
//! some gossip, and once it has proposed all it holds, its backups, holding the rest, suspected
//! it two seconds later, before a re-gossip every two seconds reached it (docs/performance.md,
//! thirteenth round). The receivers skip ids they already hold or committed before any signature
//! check, so a repeat costs them a lookup; the work is bounded by `REGOSSIP_MAX_TXS` per tick.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ordo_chain::store::Store;
use ordo_chain::{Hash, VerifiedTx};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::shared::Shared;
use crate::wire;

/// How often the oldest pending transactions are looked at; one must have been among them for a
/// tick to be re-gossiped. Well inside the PBFT view-change timeout (2 s), so that a primary that
/// lacks what its backups wait for gets it before they suspect it.
pub const REGOSSIP_TICK_MS: u64 = 500;
/// How often stale transactions are re-gossiped while the chain grows.
pub const REGOSSIP_INTERVAL_MS: u64 = 2_000;
// A stale transaction goes out within two ticks of the chain stopping: before a backup waiting
// on it suspects the primary. And the interval is a whole number of ticks, more than one.
const _: () = assert!(2 * REGOSSIP_TICK_MS < ordo_chain::limits::consensus_defaults::VIEW_CHANGE_TIMEOUT_MS);
const _: () = assert!(REGOSSIP_INTERVAL_MS % REGOSSIP_TICK_MS == 0 && REGOSSIP_INTERVAL_MS > REGOSSIP_TICK_MS);
/// The most transactions re-gossiped per tick.
pub const REGOSSIP_MAX_TXS: usize = 2_048;
/// The most bytes of transactions re-gossiped per tick (above the largest transaction the
/// limits allow, so the oldest one always fits).
pub const REGOSSIP_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Picks, from the oldest pending transactions now, those that were already among the oldest at
/// the previous round, and returns them with the ids to remember for the next round.
pub fn stale(oldest: Vec<VerifiedTx>, previous: &HashSet<Hash>) -> (Vec<VerifiedTx>, HashSet<Hash>) {
    let now: HashSet<Hash> = oldest.iter().map(VerifiedTx::id).collect();
    let stale = oldest.into_iter().filter(|t| previous.contains(&t.id())).collect();
    (stale, now)
}

/// Whether tick number `tick` re-gossips: every `REGOSSIP_INTERVAL_MS`, and whenever the chain
/// did not `grow` since the previous tick.
pub fn due(tick: u64, grew: bool) -> bool {
    !grew || tick % (REGOSSIP_INTERVAL_MS / REGOSSIP_TICK_MS) == 0
}

/// Runs until shutdown.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(REGOSSIP_TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous = HashSet::new();
    let mut height = shared.store.latest_height().ok().flatten();
    for n in 1u64.. {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let oldest = shared.ledger.mempool().peek(REGOSSIP_MAX_TXS, REGOSSIP_MAX_BYTES);
        let (txs, now) = stale(oldest, &previous);
        previous = now;
        let was = std::mem::replace(&mut height, shared.store.latest_height().ok().flatten());
        if txs.is_empty() || !due(n, height != was) {
            continue;
        }
        let count = txs.len();
        match shared.p2p.publish_tx(wire::encode_txs(&txs)).await {
            Ok(()) => info!(txs = count, "gossiped again transactions pending for {REGOSSIP_TICK_MS} ms or more"),
            Err(e) => {
                debug!(txs = count, error = %e, "could not gossip pending transactions again; next round retries")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_chain::{Keypair, Op, Transaction, TxRules};

    fn txs(n: u64) -> Vec<VerifiedTx> {
        let key = Keypair::from_seed([3; 32]);
        let rules = TxRules::new("t");
        (0..n)
            .map(|i| {
                let tx = Transaction::sign("t", &key, i, Op::Put { key: format!("k{i}"), value: "v".into() });
                rules.verify_many(vec![tx]).pop().unwrap().unwrap()
            })
            .collect()
    }

    #[test]
    fn stale_transactions_go_out_every_interval_and_at_once_when_the_chain_stops() {
        let per_interval = REGOSSIP_INTERVAL_MS / REGOSSIP_TICK_MS;
        let growing: Vec<u64> = (1..=3 * per_interval).filter(|n| due(*n, true)).collect();
        assert_eq!(growing, [per_interval, 2 * per_interval, 3 * per_interval]);
        assert!((1..=per_interval).all(|n| due(n, false)), "a tick without a new block re-gossips");
    }

    #[test]
    fn only_transactions_pending_for_a_whole_round_are_gossiped_again() {
        let all = txs(4);
        // First round: nothing was seen before, so nothing is stale.
        let (s, seen) = stale(all[..3].to_vec(), &HashSet::new());
        assert!(s.is_empty());
        // Second round: 0 committed meanwhile; 1 and 2 are still pending; 3 is new.
        let (s, seen) = stale(all[1..].to_vec(), &seen);
        assert_eq!(s.iter().map(VerifiedTx::id).collect::<Vec<_>>(), vec![all[1].id(), all[2].id()]);
        // Third round: everything committed.
        let (s, seen) = stale(Vec::new(), &seen);
        assert!(s.is_empty() && seen.is_empty());
    }
}
