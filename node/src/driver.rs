//! The consensus driver and the p2p event loop.
//!
//! `run` owns the PBFT replica: it feeds it inputs (client transactions, verified peer
//! messages, clock ticks, executed heights, synced blocks) and executes its actions strictly in
//! order, so a vote never leaves before the safety record that forbids a conflicting vote is on
//! disk. `p2p_events` turns network events into driver inputs: it verifies peer messages and
//! gossiped transactions on the blocking pool (bounded by a semaphore, so a flood slows the
//! network instead of growing a queue) and answers block-sync requests from the store.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ordo_chain::store::Store;
use ordo_chain::{Block, Hash, PublicKey, Transaction, VerifiedTx};
use ordo_consensus::pbft::{decode_and_verify, verify_block, Message, Replica};
use ordo_consensus::{Action, CommittedBatch, Consensus, Input, Verified};
use ordo_p2p::P2pEvent;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::run::{now_ms, Shared};
use crate::wire;

/// How often the core is told the time: the batch timeout and view-change timers resolve to it.
pub const TICK_INTERVAL_MS: u64 = 5;
/// Peer consensus messages being verified at once.
pub const VERIFY_CONCURRENCY: usize = 4;
/// Gossiped transaction batches being verified at once. Apart from the consensus permits, so
/// that a flood of transactions never delays the votes that would order it.
pub const GOSSIP_VERIFY_CONCURRENCY: usize = 2;
/// A fetch of at least this many blocks makes the node report "catching up" (not ready, 503):
/// two checkpoint intervals at the default K = 32. Under load a backup routinely fetches a few
/// blocks whose COMMITs it missed; that is no reason to refuse clients.
pub const CATCH_UP_NOT_READY_BLOCKS: u64 = 64;
/// Gossiped transaction batches waiting for verification.
pub const GOSSIP_QUEUE_CAPACITY: usize = 1024;
/// The most bytes of blocks one sync response carries.
pub const SYNC_RESPONSE_MAX_BYTES: usize = 32 * 1024 * 1024;

/// The most mempool transactions handed to the core in one input.
pub const MEMPOOL_PULL_MAX: usize = 8192;

/// What the driver consumes besides clock ticks and the mempool.
pub enum DriverInput {
    Peer(Verified<Message>),
    Synced(Vec<Verified<CommittedBatch>>),
}

/// The driver's view of the chain tip, kept in memory so that building the next block needs no
/// read of the previous one.
struct Tip {
    block: Block,
}

pub async fn run(
    shared: Arc<Shared>,
    mut replica: Replica,
    mut rx: mpsc::Receiver<DriverInput>,
    shutdown: CancellationToken,
) {
    let block = shared.store.latest_block().ok().flatten().expect("the store holds at least genesis");
    let mut tip = Tip { block };
    let mut tick = tokio::time::interval(Duration::from_millis(TICK_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The core learns of pending transactions by following the mempool, whichever path (API or
    // gossip) admitted them: nothing admitted can miss the core, and the mempool's limits are
    // the one place where a flood is refused (503), never a silently full queue.
    let mempool = shared.chain.mempool().clone();
    let mut cursor = 0u64;
    let mut pull = move || {
        let (txs, next) = mempool.since(cursor, MEMPOOL_PULL_MAX);
        cursor = next;
        txs
    };
    loop {
        // Each turn waits for one source, chosen fairly among the ready ones (`select!` picks at
        // random), then also takes whatever the mempool admitted since the last turn: a
        // continuous flood of transactions never starves the peer messages that order it, and
        // an admitted transaction waits at most one tick even if a wake-up were missed.
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = shared.admitted.notified() => None,
            input = rx.recv() => match input {
                Some(DriverInput::Peer(m)) => Some(Input::Message(m)),
                Some(DriverInput::Synced(blocks)) => {
                    shared.syncing.store(false, Ordering::Relaxed);
                    Some(Input::SyncedBlocks(blocks))
                }
                None => break,
            },
            _ = tick.tick() => Some(Input::Tick { now_ms: now_ms() }),
        };
        let mut queue: VecDeque<Input<Message>> = first.into_iter().collect();
        let txs = pull();
        if txs.len() == MEMPOOL_PULL_MAX {
            // More may be waiting: come back for them on the next turn.
            shared.admitted.notify_one();
        }
        if !txs.is_empty() {
            queue.push_back(Input::ClientTxs(txs));
        }
        while let Some(input) = queue.pop_front() {
            for action in replica.handle(input) {
                if let Err(e) = execute(&shared, &mut tip, action, &mut queue).await {
                    // IO errors are fatal: a node that cannot persist must not vote.
                    error!(error = %e, "stopping: the store failed");
                    shutdown.cancel();
                    return;
                }
            }
        }
    }
    info!("consensus driver stopped");
}

async fn execute(
    shared: &Arc<Shared>,
    tip: &mut Tip,
    action: Action<Message>,
    queue: &mut VecDeque<Input<Message>>,
) -> anyhow::Result<()> {
    match action {
        Action::PersistSafety(record) => {
            tokio::task::block_in_place(|| shared.store.save_safety(&record))?;
        }
        Action::Send { to, msg } => {
            if let Err(e) = shared.p2p.send_consensus(to, msg.encode()).await {
                debug!(to = %to, error = %e, "could not send a consensus message");
            }
        }
        Action::Broadcast(msg) => {
            match shared.p2p.broadcast_consensus(msg.encode()).await {
                Ok(()) => {}
                // Too large is a configuration problem worth seeing; no peers is routine.
                Err(e @ ordo_p2p::P2pError::MessageTooLarge { .. }) => warn!(error = %e, "consensus message not sent"),
                Err(e) => debug!(error = %e, "could not broadcast a consensus message"),
            }
        }
        Action::Commit(batch) => {
            let height = batch.header.height;
            assert_eq!(height, tip.block.height() + 1, "the core commits heights in order with no gaps");
            let block = tokio::task::block_in_place(|| commit(shared, &tip.block, batch))?;
            let hash = block.hash;
            debug!(height, txs = block.txs.len(), "committed");
            tip.block = block;
            queue.push_back(Input::Executed { height, block_hash: hash });
        }
        Action::FetchBlocks { from, from_height, to_height } => {
            // Under load a backup often fetches the last block or two it missed the COMMITs
            // of; only a real gap makes it "not ready" (and refuse submissions with 503).
            if to_height >= from_height + CATCH_UP_NOT_READY_BLOCKS {
                shared.syncing.store(true, Ordering::Relaxed);
            }
            tokio::spawn(fetch(shared.clone(), from, from_height, to_height));
        }
        Action::StatusChanged(s) => {
            info!(view = s.view, leader = %s.leader, mode = ?s.mode, "consensus status");
            let before = std::mem::replace(&mut *shared.status.write().expect("status lock"), s);
            let metrics = shared.chain.metrics();
            if s.view > before.view {
                metrics.view_changes.inc_by(s.view - before.view);
            }
            metrics.round.set(s.view as i64);
            metrics.is_leader.set(i64::from(s.leader == shared.me));
            if (s.view, s.leader) != (before.view, before.leader) {
                shared.chain.events().status_changed();
            }
        }
    }
    Ok(())
}

/// Executes an ordered batch on the tip and stores the block with its certificate.
fn commit(shared: &Shared, prev: &Block, batch: CommittedBatch) -> anyhow::Result<Block> {
    let ids: Vec<Hash> = batch.txs.iter().map(|t| t.id()).collect();
    let committed = shared.store.committed(&ids)?;
    let (block, exec) =
        Block::build(&shared.genesis.chain_id, prev, batch.header, &batch.txs, &committed, Some(batch.certificate));
    shared.chain.commit(&block, &exec.writes)?;
    Ok(block)
}

/// Fetches certified blocks from a peer, verifies them off the runtime and hands them to the core.
async fn fetch(shared: Arc<Shared>, from: PublicKey, from_height: u64, to_height: u64) {
    let bytes = match shared.p2p.request_blocks(from, from_height, to_height).await {
        Ok(b) => b,
        Err(e) => {
            warn!(peer = %from, from_height, to_height, error = %e, "block sync request failed");
            shared.syncing.store(false, Ordering::Relaxed);
            return;
        }
    };
    let s = shared.clone();
    let verified = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Verified<CommittedBatch>>> {
        let blocks = wire::decode_blocks(&bytes)?;
        blocks.iter().map(|b| verify_block(&s.verify_ctx, b).map_err(anyhow::Error::from)).collect()
    })
    .await;
    match verified {
        Ok(Ok(blocks)) => {
            info!(peer = %from, blocks = blocks.len(), from_height, "fetched certified blocks");
            let _ = shared.driver.send(DriverInput::Synced(blocks)).await;
        }
        Ok(Err(e)) => {
            warn!(peer = %from, error = %e, "a peer served blocks that do not verify; dropped");
            shared.syncing.store(false, Ordering::Relaxed);
        }
        Err(e) => error!(error = %e, "block verification task failed"),
    }
}

/// Turns p2p events into driver inputs until shutdown.
pub async fn p2p_events(shared: Arc<Shared>, mut events: mpsc::Receiver<P2pEvent>, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(VERIFY_CONCURRENCY));
    let (gossip_tx, gossip_rx) = mpsc::channel(GOSSIP_QUEUE_CAPACITY);
    tokio::spawn(gossip_worker(shared.clone(), gossip_rx));
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = events.recv() => match e { Some(e) => e, None => break },
        };
        match event {
            P2pEvent::Consensus { from, bytes } => {
                let permit = permits.clone().acquire_owned().await.expect("semaphore is never closed");
                let s = shared.clone();
                tokio::spawn(async move {
                    let ctx = s.clone();
                    let result = tokio::task::spawn_blocking(move || decode_and_verify(&ctx.verify_ctx, &bytes)).await;
                    drop(permit);
                    match result {
                        // `try_send`, never a wait: the driver may itself be waiting on the
                        // network, which may be waiting on this loop. A dropped vote is re-sent
                        // by its author's retransmission timer.
                        Ok(Ok(m)) => {
                            if s.driver.try_send(DriverInput::Peer(m)).is_err() {
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
                if let Err(mpsc::error::TrySendError::Full(item)) = gossip_tx.try_send((from, bytes)) {
                    let _ = gossip_tx.send(item).await;
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

/// Verifies queued transaction gossip, `GOSSIP_VERIFY_CONCURRENCY` batches at a time, until the
/// event loop drops the queue's sender.
async fn gossip_worker(shared: Arc<Shared>, mut rx: mpsc::Receiver<(PublicKey, Vec<u8>)>) {
    let permits = Arc::new(Semaphore::new(GOSSIP_VERIFY_CONCURRENCY));
    while let Some((from, bytes)) = rx.recv().await {
        let permit = permits.clone().acquire_owned().await.expect("semaphore is never closed");
        let s = shared.clone();
        tokio::task::spawn_blocking(move || {
            admit_gossip(&s, from, &bytes);
            drop(permit);
        });
    }
}

/// Verifies gossiped transactions and offers the good ones to the mempool and the core.
fn admit_gossip(shared: &Shared, from: PublicKey, bytes: &[u8]) {
    let txs = match wire::decode_txs(bytes) {
        Ok(t) => t,
        Err(e) => {
            debug!(peer = %from, error = %e, "dropped malformed transaction gossip");
            return;
        }
    };
    // Every validator hears most transactions more than once (from the API node's gossip and
    // in PRE-PREPAREs): ids already pending or committed here would be refused anyway, so their
    // signatures are not checked again.
    let ids: Vec<Hash> = txs.iter().map(Transaction::tx_id).collect();
    let committed = match shared.store.committed(&ids) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "could not look up gossiped transactions");
            return;
        }
    };
    let mempool = shared.chain.mempool();
    let fresh: Vec<Transaction> = txs
        .into_iter()
        .zip(ids.iter().zip(committed))
        .filter(|(_, (id, done))| !done && !mempool.contains(id))
        .map(|(tx, _)| tx)
        .collect();
    if fresh.is_empty() {
        return;
    }
    let checked = shared.rules.verify_many(fresh);
    let offered = checked.len();
    let verified: Vec<VerifiedTx> = checked.into_iter().filter_map(Result::ok).collect();
    shared.chain.metrics().rejected(ordo_api::metrics::RejectReason::invalid, (offered - verified.len()) as u64);
    match shared.chain.admit(verified) {
        // The driver follows the mempool; wake it.
        Ok(outcomes) if outcomes.contains(&ordo_api::Admission::Admitted) => shared.admitted.notify_one(),
        Ok(_) => {}
        Err(e) => warn!(peer = %from, error = %e, "could not admit gossiped transactions"),
    }
}

/// Reads `from..=to` (clipped to the tip and the response limits) for a syncing peer.
fn read_blocks(shared: &Shared, from: u64, to: u64) -> anyhow::Result<Vec<u8>> {
    let tip = shared.store.latest_height()?.unwrap_or(0);
    let to = to.min(tip).min(from.saturating_add(wire::SYNC_MAX_BLOCKS as u64 - 1));
    let mut blocks = Vec::new();
    let mut bytes = 0usize;
    for h in from..=to {
        let Some(b) = shared.store.block(h)? else { break };
        bytes += b.txs.iter().map(|t| t.op.key().len() + 200).sum::<usize>();
        blocks.push(b);
        if bytes >= SYNC_RESPONSE_MAX_BYTES {
            break;
        }
    }
    Ok(wire::encode_blocks(&blocks))
}
