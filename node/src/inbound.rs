//! The network side of a running validator: `p2p_events` turns p2p events into driver inputs.
//! It verifies peer consensus messages (through the engine's [`Verifier`], given the sender the
//! transport authenticated) and gossiped transactions on the blocking pool, bounded by
//! semaphores so that a flood slows the network instead of growing a queue; it answers
//! block-sync requests from the store and reports validators connecting and leaving.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ordo_chain::limits::SYNC_RESPONSE_MAX_BYTES;
use ordo_chain::store::Store;
use ordo_chain::{Hash, MempoolStats, Origin, PublicKey, StagedTx, Transaction, VerifiedTx};
use ordo_consensus::Verifier;
use ordo_p2p::P2pEvent;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::driver::{DriverInput, Inbound};
use crate::shared::{now_ms, Shared};
use crate::wire;

/// How many verifications run at once, in proportion to the cores this node may use: its
/// async worker threads (one per core alone on a machine; its share of them when validators
/// share one, as `ordo testnet`'s do). More threads than that only queue on the cores, and
/// their switching is paid for in every signature they check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyConcurrency {
    /// Peer consensus messages being verified at once: two per worker, so that a vote never
    /// waits behind one long PRE-PREPARE.
    pub consensus: usize,
    /// Gossiped transaction batches being verified at once: one per worker. Apart from the
    /// consensus permits, so that a flood of transactions never delays the votes that would
    /// order it.
    pub gossip: usize,
}

impl VerifyConcurrency {
    pub fn for_workers(workers: usize) -> Self {
        let workers = workers.max(1);
        Self { consensus: 2 * workers, gossip: workers }
    }

    /// For the runtime this is called on.
    pub fn for_this_runtime() -> Self {
        Self::for_workers(tokio::runtime::Handle::current().metrics().num_workers())
    }
}

/// Gossiped transaction batches waiting for verification.
pub const GOSSIP_QUEUE_CAPACITY: usize = 1024;
/// The most bytes of gossip checked as one ed25519 batch (about 2,500 transactions of the
/// usual size). Gossip that queued while every permit was taken is checked together: a batch
/// check costs less per signature the larger it is, and only a node already busy coalesces, so
/// an idle one adds no delay (docs/performance.md, twelfth round: at 20,000 tx/s offered in
/// requests of 200, p99 324–689 ms against 439–1,861 ms over five A/B rounds).
pub const GOSSIP_COALESCE_MAX_BYTES: usize = 512 * 1024;

/// What the inbound path is doing now, kept so that a node that suspects its primary can say
/// whether it heard from it at all, or sat on what it heard (see [`InboundStats::explain`]).
#[derive(Debug, Default)]
pub struct InboundStats {
    /// Per validator: when its last consensus message arrived (Unix ms), and when its last one
    /// passed verification and was queued for the driver.
    peers: Mutex<HashMap<PublicKey, (u64, u64)>>,
    verifying: AtomicUsize,
    gossip_queued: AtomicUsize,
    /// When the event loop began waiting for a verification permit or for room in the gossip
    /// queue (Unix ms), or 0 while it runs.
    waiting_since_ms: AtomicU64,
}

/// A snapshot of [`InboundStats`] about one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundPicture {
    /// Milliseconds since the peer's last consensus message arrived, and since its last one was
    /// verified; `None` if none ever did.
    pub heard_ms_ago: Option<u64>,
    pub verified_ms_ago: Option<u64>,
    /// Consensus messages being verified now.
    pub verifying: usize,
    /// Gossiped transaction batches waiting for verification.
    pub gossip_queued: usize,
    /// How long the event loop has been waiting (for a permit or gossip room), 0 if it is not.
    pub loop_waiting_ms: u64,
}

impl InboundStats {
    fn heard(&self, from: PublicKey, now: u64) {
        self.peers.lock().expect("inbound stats lock").entry(from).or_default().0 = now;
    }

    fn verified(&self, from: PublicKey, now: u64) {
        self.peers.lock().expect("inbound stats lock").entry(from).or_default().1 = now;
    }

    fn wait_began(&self, now: u64) {
        self.waiting_since_ms.store(now.max(1), Ordering::Relaxed);
    }

    fn wait_ended(&self) {
        self.waiting_since_ms.store(0, Ordering::Relaxed);
    }

    /// Awaits `f` (room or a permit the event loop needs), reporting the wait meanwhile.
    async fn waiting<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.wait_began(now_ms());
        let out = f.await;
        self.wait_ended();
        out
    }

    /// The inbound path as seen from `peer` (the primary, when a view change is asked for).
    pub fn explain(&self, peer: &PublicKey, now: u64) -> InboundPicture {
        let (heard, verified) = self.peers.lock().expect("inbound stats lock").get(peer).copied().unwrap_or_default();
        let ago = |t: u64| (t > 0).then(|| now.saturating_sub(t));
        let since = self.waiting_since_ms.load(Ordering::Relaxed);
        InboundPicture {
            heard_ms_ago: ago(heard),
            verified_ms_ago: ago(verified),
            verifying: self.verifying.load(Ordering::Relaxed),
            gossip_queued: self.gossip_queued.load(Ordering::Relaxed),
            loop_waiting_ms: if since == 0 { 0 } else { now.saturating_sub(since) },
        }
    }
}

/// Turns p2p events into driver inputs until shutdown.
pub async fn p2p_events<V: Verifier>(
    shared: Arc<Shared>,
    inbound: Inbound<V>,
    mut events: mpsc::Receiver<P2pEvent>,
    shutdown: CancellationToken,
) {
    let concurrency = VerifyConcurrency::for_this_runtime();
    debug!(consensus = concurrency.consensus, gossip = concurrency.gossip, "verification permits");
    let permits = Arc::new(Semaphore::new(concurrency.consensus));
    let (gossip_tx, gossip_rx) = mpsc::channel(GOSSIP_QUEUE_CAPACITY);
    tokio::spawn(gossip_worker(shared.clone(), gossip_rx, concurrency.gossip));
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = events.recv() => match e { Some(e) => e, None => break },
        };
        match event {
            P2pEvent::Consensus { from, bytes } => {
                let stats = &shared.inbound_stats;
                stats.heard(from, now_ms());
                let permit = match permits.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => stats.waiting(permits.clone().acquire_owned()).await.expect("semaphore is never closed"),
                };
                let inbound = inbound.clone();
                let s = shared.clone();
                tokio::spawn(async move {
                    let verifier = inbound.verifier.clone();
                    s.inbound_stats.verifying.fetch_add(1, Ordering::Relaxed);
                    let result = tokio::task::spawn_blocking(move || verifier.decode_and_verify(&from, &bytes)).await;
                    s.inbound_stats.verifying.fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                    match result {
                        // `try_send`, never a wait: the driver may itself be waiting on the
                        // network, which may be waiting on this loop. A dropped vote is re-sent
                        // by its author's retransmission timer.
                        Ok(Ok(m)) => {
                            s.inbound_stats.verified(from, now_ms());
                            if inbound.driver.try_send(DriverInput::Peer(m)).is_err() {
                                debug!(peer = %from, "driver queue full; dropped a consensus message");
                            }
                        }
                        // Byzantine or corrupt input is logged and dropped.
                        Ok(Err(e)) => debug!(peer = %from, error = %e, "dropped a consensus message"),
                        Err(e) => error!(error = %e, "verification task failed"),
                    }
                });
            }
            P2pEvent::Tx { from, bytes } => {
                // Gossip waits in its own bounded queue, so that consensus messages behind it in
                // the event stream are not held up while a flood of transactions is verified.
                // Only a full queue makes this loop wait (back-pressure onto the network).
                shared.inbound_stats.gossip_queued.fetch_add(1, Ordering::Relaxed);
                if let Err(mpsc::error::TrySendError::Full(item)) = gossip_tx.try_send((from, bytes)) {
                    let _ = shared.inbound_stats.waiting(gossip_tx.send(item)).await;
                }
            }
            P2pEvent::BlockRequest { from, from_height, to_height, reply } => {
                let s = shared.clone();
                tokio::task::spawn_blocking(move || match read_blocks(&s, from_height, to_height) {
                    Ok(bytes) => {
                        let _ = reply.send(bytes);
                    }
                    Err(e) => warn!(peer = %from, error = %e, "could not serve a block request"),
                });
            }
            P2pEvent::PeerUp(k) => {
                info!(peer = %k, "validator connected");
                shared.connectivity_changed();
            }
            P2pEvent::PeerDown(k) => {
                info!(peer = %k, "validator disconnected");
                shared.connectivity_changed();
            }
        }
    }
}

/// Verifies queued transaction gossip, `concurrency` checks at a time, until the event loop
/// drops the queue's sender. A check takes the message that got the permit and whatever else
/// queued meanwhile, up to [`GOSSIP_COALESCE_MAX_BYTES`].
async fn gossip_worker(shared: Arc<Shared>, mut rx: mpsc::Receiver<(PublicKey, Vec<u8>)>, concurrency: usize) {
    let permits = Arc::new(Semaphore::new(concurrency));
    while let Some(first) = rx.recv().await {
        let permit = permits.clone().acquire_owned().await.expect("semaphore is never closed");
        let messages = coalesce(first, GOSSIP_COALESCE_MAX_BYTES, || rx.try_recv().ok());
        shared.inbound_stats.gossip_queued.fetch_sub(messages.len(), Ordering::Relaxed);
        let s = shared.clone();
        tokio::task::spawn_blocking(move || {
            admit_gossip(&s, &messages);
            drop(permit);
        });
    }
}

/// `first`, then what `next` yields, until the messages hold `max_bytes` or `next` has none.
fn coalesce(
    first: (PublicKey, Vec<u8>),
    max_bytes: usize,
    mut next: impl FnMut() -> Option<(PublicKey, Vec<u8>)>,
) -> Vec<(PublicKey, Vec<u8>)> {
    let mut bytes = first.1.len();
    let mut messages = vec![first];
    while bytes < max_bytes {
        let Some(m) = next() else { break };
        bytes += m.1.len();
        messages.push(m);
    }
    messages
}

/// Verifies gossiped transactions, in one batch, and offers the good ones to the mempool and
/// the core. A malformed message is dropped alone.
fn admit_gossip(shared: &Shared, messages: &[(PublicKey, Vec<u8>)]) {
    let mut txs = Vec::new();
    for (from, bytes) in messages {
        match wire::decode_txs(bytes) {
            Ok(t) => txs.extend(t),
            Err(e) => debug!(peer = %from, error = %e, "dropped malformed transaction gossip"),
        }
    }
    // Every validator hears most transactions more than once (from the API node's gossip and
    // in PRE-PREPAREs): ids already pending or committed here would be refused anyway, so their
    // signatures are not checked again.
    let txs: Vec<StagedTx> = txs.into_iter().map(Transaction::stage).collect();
    let ids: Vec<Hash> = txs.iter().map(StagedTx::id).collect();
    let known = match shared.ledger.known(&ids) {
        Ok(k) => k,
        Err(e) => {
            warn!(error = %e, "could not look up gossiped transactions");
            return;
        }
    };
    let fresh: Vec<StagedTx> = txs.into_iter().zip(known).filter(|(_, known)| !known).map(|(tx, _)| tx).collect();
    if fresh.is_empty() {
        return;
    }
    // What the mempool has no room for (even for other validators' transactions) would be
    // refused after its check: drop it before, and leave the cores to the consensus that frees
    // the room. It comes back in a PRE-PREPARE (checked there) or in its holder's re-gossip.
    let fresh = fitting(fresh, shared.ledger.mempool().room(Origin::Peer));
    if fresh.dropped > 0 {
        shared.chain.metrics().rejected(ordo_api::metrics::RejectReason::full, fresh.dropped as u64);
        debug!(txs = fresh.dropped, "dropped transaction gossip unchecked: the mempool is full");
    }
    let fresh = fresh.kept;
    if fresh.is_empty() {
        return;
    }
    // A PRE-PREPARE being verified at this moment may be checking some of them: wait for it
    // and take what it admitted, then claim the rest while they are checked here.
    let ids: Vec<Hash> = fresh.iter().map(StagedTx::id).collect();
    let mempool = shared.ledger.mempool();
    let (pending, claim) = shared
        .inflight
        .recall(&ids, true, |ids| mempool.contains_each(ids).into_iter().map(|p| p.then_some(())).collect());
    let fresh: Vec<StagedTx> =
        fresh.into_iter().zip(pending).filter(|(_, pending)| pending.is_none()).map(|(tx, _)| tx).collect();
    if fresh.is_empty() {
        return;
    }
    let checked = shared.rules.verify_staged(fresh);
    let offered = checked.len();
    let verified: Vec<VerifiedTx> = checked.into_iter().filter_map(Result::ok).collect();
    shared.chain.metrics().rejected(ordo_api::metrics::RejectReason::invalid, (offered - verified.len()) as u64);
    // Admitting wakes the driver (`shared::WakeDriver`); the claim is released after it, so
    // that whoever waited on it finds the good ones pending.
    if let Err(e) = shared.ledger.admit(verified, Origin::Peer) {
        warn!(messages = messages.len(), error = %e, "could not admit gossiped transactions");
    }
    drop(claim);
}

/// The transactions of `txs` that fit in `room`, in order, and how many did not.
struct Fitting {
    kept: Vec<StagedTx>,
    dropped: usize,
}

fn fitting(mut txs: Vec<StagedTx>, room: MempoolStats) -> Fitting {
    let mut bytes = 0usize;
    let fit = txs
        .iter()
        .take(room.txs)
        .take_while(|t| {
            bytes += t.wire_len();
            bytes <= room.bytes
        })
        .count();
    let dropped = txs.len() - fit;
    txs.truncate(fit);
    Fitting { kept: txs, dropped }
}

/// Reads `from..=to` for a syncing peer, clipped to the tip, to [`wire::SYNC_MAX_BLOCKS`] and to
/// [`SYNC_RESPONSE_MAX_BYTES`] of encoded response (at least one block is always sent, so a
/// peer can make progress past any block the genesis limits allow).
fn read_blocks(shared: &Shared, from: u64, to: u64) -> anyhow::Result<Vec<u8>> {
    let tip = shared.store.latest_height()?.unwrap_or(0);
    let to = to.min(tip).min(from.saturating_add(wire::SYNC_MAX_BLOCKS as u64 - 1));
    let mut response = wire::SyncResponse::default();
    for h in from..=to {
        let Some(b) = shared.store.block(h)? else { break };
        if !response.push_within(&b, SYNC_RESPONSE_MAX_BYTES) {
            break;
        }
    }
    Ok(response.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbound_picture_tells_heard_from_verified_and_a_waiting_loop() {
        let stats = InboundStats::default();
        let (primary, other) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let never = stats.explain(&primary, 10_000);
        assert_eq!((never.heard_ms_ago, never.verified_ms_ago, never.loop_waiting_ms), (None, None, 0));

        stats.heard(primary, 9_000);
        stats.verified(primary, 9_200);
        stats.heard(other, 9_900);
        let p = stats.explain(&primary, 10_000);
        assert_eq!((p.heard_ms_ago, p.verified_ms_ago), (Some(1_000), Some(800)), "per peer");

        stats.wait_began(9_500);
        assert_eq!(stats.explain(&primary, 10_000).loop_waiting_ms, 500);
        stats.wait_ended();
        assert_eq!(stats.explain(&primary, 10_000).loop_waiting_ms, 0);
    }

    #[test]
    fn verification_permits_follow_the_cores_a_node_may_use() {
        // Alone on this 2-core machine (tokio's default, one worker per core): as before, 4 + 2.
        assert_eq!(VerifyConcurrency::for_workers(2), VerifyConcurrency { consensus: 4, gossip: 2 });
        // One of four validators sharing it (`ordo testnet`): one worker, so 2 + 1.
        assert_eq!(VerifyConcurrency::for_workers(1), VerifyConcurrency { consensus: 2, gossip: 1 });
        // Never none, whatever a runtime reports.
        assert_eq!(VerifyConcurrency::for_workers(0), VerifyConcurrency::for_workers(1));
        assert_eq!(VerifyConcurrency::for_workers(16), VerifyConcurrency { consensus: 32, gossip: 16 });
    }

    #[test]
    fn gossip_is_checked_only_as_far_as_the_mempool_has_room() {
        let key = ordo_chain::Keypair::from_seed([4; 32]);
        let txs: Vec<StagedTx> = (0..5u64)
            .map(|n| {
                let op = ordo_chain::Op::Put { key: format!("k{n}"), value: "v".repeat(10 * n as usize) };
                Transaction::sign("t", &key, n, op).stage()
            })
            .collect();
        let sizes: Vec<usize> = txs.iter().map(StagedTx::wire_len).collect();
        let ids = |f: &Fitting| f.kept.iter().map(StagedTx::id).collect::<Vec<_>>();
        let all = fitting(txs.clone(), MempoolStats { txs: 10, bytes: 1 << 20 });
        assert_eq!((ids(&all).len(), all.dropped), (5, 0));
        // By count, then by bytes, the first ones in order; the rest is dropped.
        let by_count = fitting(txs.clone(), MempoolStats { txs: 2, bytes: 1 << 20 });
        assert_eq!((ids(&by_count), by_count.dropped), (vec![txs[0].id(), txs[1].id()], 3));
        let three = sizes[0] + sizes[1] + sizes[2];
        let by_bytes = fitting(txs.clone(), MempoolStats { txs: 10, bytes: three + sizes[3] - 1 });
        assert_eq!((ids(&by_bytes).len(), by_bytes.dropped), (3, 2));
        let none = fitting(txs.clone(), MempoolStats { txs: 0, bytes: 1 << 20 });
        assert_eq!((none.kept.len(), none.dropped), (0, 5));
        // The mempool counts the same bytes once the transaction is verified.
        let verified = ordo_chain::TxRules::new("t").verify_staged(vec![txs[4].clone()]).pop().unwrap().unwrap();
        assert_eq!(verified.wire_len(), sizes[4]);
    }

    #[test]
    fn queued_gossip_is_checked_together_up_to_a_size() {
        let m = |peer: u8, len: usize| (PublicKey([peer; 32]), vec![peer; len]);
        let peers = |ms: &[(PublicKey, Vec<u8>)]| ms.iter().map(|(p, _)| p.0[0]).collect::<Vec<u8>>();
        // Nothing else queued: the message alone, at once.
        assert_eq!(peers(&coalesce(m(1, 100), 1_000, || None)), [1]);
        // Queued ones join it, in order, until the size is reached (the one that crosses it too).
        let mut queue = vec![m(2, 400), m(3, 400), m(4, 400), m(5, 400)].into_iter();
        assert_eq!(peers(&coalesce(m(1, 100), 1_000, || queue.next())), [1, 2, 3, 4]);
        assert_eq!(peers(&queue.collect::<Vec<_>>()), [5], "the rest waits for the next check");
        // A first message at the size takes nothing more.
        let mut queue = vec![m(2, 1)].into_iter();
        assert_eq!(peers(&coalesce(m(1, 1_000), 1_000, || queue.next())), [1]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn the_runtime_s_workers_set_the_permits() {
        assert_eq!(VerifyConcurrency::for_this_runtime(), VerifyConcurrency { consensus: 6, gossip: 3 });
    }
}
