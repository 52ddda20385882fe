//! The consensus driver: `run` owns the engine (PBFT or Raft, through [`Engine`]), feeds it
//! inputs (client transactions from the mempool, verified peer messages, clock ticks, executed
//! heights, synced blocks) and executes its actions strictly in order, so a vote never leaves
//! before the record that forbids a conflicting one is on disk. The network side, which turns
//! p2p events into [`DriverInput`]s, is [`crate::inbound`].

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ordo_chain::store::Store;
use ordo_chain::{Block, Hash, PublicKey, VerifiedTx};
use ordo_consensus::{Action, CommittedBatch, Engine, Input, Mode, Verified, Verifier};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::shared::{now_ms, Shared};
use crate::wire;

/// How often the core is told the time: the batch timeout and view-change timers resolve to it.
pub const TICK_INTERVAL_MS: u64 = 5;
/// A fetch of at least this many blocks makes the node report "catching up" (not ready, 503):
/// two checkpoint intervals at the default K = 32. Under load a backup routinely fetches a few
/// blocks whose COMMITs it missed; that is no reason to refuse clients.
pub const CATCH_UP_NOT_READY_BLOCKS: u64 = 64;
/// The most mempool transactions handed to the core in one input.
pub const MEMPOOL_PULL_MAX: usize = 8192;

/// What the driver consumes besides clock ticks and the mempool.
pub enum DriverInput<M> {
    Peer(Verified<M>),
    Synced(Vec<Verified<CommittedBatch>>),
}

/// What the tasks that verify peer input need: the engine's verifier and the driver's queue.
pub struct Inbound<V: Verifier> {
    pub verifier: Arc<V>,
    pub driver: mpsc::Sender<DriverInput<V::Message>>,
}

impl<V: Verifier> Clone for Inbound<V> {
    fn clone(&self) -> Self {
        Self { verifier: self.verifier.clone(), driver: self.driver.clone() }
    }
}

/// The driver's view of the chain tip, kept in memory so that building the next block needs no
/// read of the previous one.
struct Tip {
    block: Block,
}

/// Runs `engine` until shutdown. An error is fatal (the store failed: a node that cannot persist
/// must not vote): the driver cancels `shutdown` so the whole node stops, and returns the error
/// so the process exits non-zero.
pub async fn run<E: Engine>(
    shared: Arc<Shared>,
    mut engine: E,
    inbound: Inbound<E::Verifier>,
    mut rx: mpsc::Receiver<DriverInput<E::Message>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let block = shared.store.latest_block()?.context("the store holds no genesis block")?;
    let mut tip = Tip { block };
    let mut tick = tokio::time::interval(Duration::from_millis(TICK_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The core learns of pending transactions by following the mempool, whichever path (API or
    // gossip) admitted them: nothing admitted can miss the core, and the mempool's limits are
    // the one place where a flood is refused (503), never a silently full queue.
    let mempool = shared.ledger.mempool().clone();
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
                Some(input) => Some(input_of(&shared, input)),
                None => break,
            },
            _ = tick.tick() => Some(Input::Tick { now_ms: now_ms() }),
        };
        let txs = pull();
        if txs.len() == MEMPOOL_PULL_MAX {
            // More may be waiting: come back for them on the next turn.
            shared.admitted.notify_one();
        }
        // What is queued now arrived before this tick (at most the queue's capacity).
        let mut queued = rx.len();
        let mut queue = turn(first, txs, || {
            queued = queued.checked_sub(1)?;
            rx.try_recv().ok().map(|input| input_of(&shared, input))
        });
        while let Some(input) = queue.pop_front() {
            let actions = engine.handle(input);
            if let Some(why) = engine.take_suspicion() {
                warn!(%why, "suspecting the primary");
            }
            for action in actions {
                if let Err(e) = execute(&shared, &inbound, &mut tip, action, &mut queue).await {
                    // IO errors are fatal: a node that cannot persist must not vote.
                    error!(error = %e, "stopping: the store failed");
                    shutdown.cancel();
                    return Err(e.context("the consensus driver stopped: the store failed"));
                }
            }
        }
    }
    info!("consensus driver stopped");
    Ok(())
}

/// A queued input as the core takes it.
fn input_of<M>(shared: &Shared, input: DriverInput<M>) -> Input<M> {
    match input {
        DriverInput::Peer(m) => Input::Message(m),
        DriverInput::Synced(blocks) => {
            shared.syncing.store(false, Ordering::Relaxed);
            Input::SyncedBlocks(blocks)
        }
    }
}

/// One turn's inputs, in the order the core takes them.
/// - The transactions pulled from the mempool come first, then the input that woke the driver.
///   A pulled transaction is pending at the moment of the pull (a commit drops its transactions
///   from the mempool before it returns, and a committed id is never admitted again), but the
///   turn's other input may commit the very block that holds it (a COMMIT completing a
///   certificate, a fetched block). Handed over after that commit, it would stay in the core's
///   pool for good, aging until the request timer suspected a healthy primary (a CPU-starved
///   backup did, `scripts/starved-backup.sh`); handed over before, the commit drops it from the
///   pool like any other.
/// - A tick comes after the messages queued before it (`backlog`, which yields what was queued
///   when the tick fired): the core's timers judge the primary by what it sent, not by how far
///   this node's driver is behind on reading it. A starved backup with 50–60 verified messages
///   queued, among them the certificates of its next heights, suspected its primary on the tick
///   that came first (`scripts/starved-backup.sh`).
fn turn<M>(
    first: Option<Input<M>>,
    txs: Vec<VerifiedTx>,
    backlog: impl FnMut() -> Option<Input<M>>,
) -> VecDeque<Input<M>> {
    let mut queue = VecDeque::with_capacity(2);
    if !txs.is_empty() {
        queue.push_back(Input::ClientTxs(txs));
    }
    if let Some(tick @ Input::Tick { .. }) = first {
        queue.extend(std::iter::from_fn(backlog));
        queue.push_back(tick);
    } else {
        queue.extend(first);
    }
    queue
}

async fn execute<V: Verifier>(
    shared: &Arc<Shared>,
    inbound: &Inbound<V>,
    tip: &mut Tip,
    action: Action<V::Message>,
    queue: &mut VecDeque<Input<V::Message>>,
) -> anyhow::Result<()> {
    match action {
        Action::PersistSafety(record) => {
            tokio::task::block_in_place(|| shared.store.save_safety(&record))?;
        }
        Action::PersistLog(write) => {
            tokio::task::block_in_place(|| -> anyhow::Result<()> {
                shared.store.write_log(&write)?;
                if let Some(marker) = &shared.raft_marker {
                    // Before any vote or acknowledgement this write protects leaves.
                    marker.ensure_written()?;
                }
                Ok(())
            })?;
        }
        Action::Send { to, msg } => {
            if let Err(e) = shared.p2p.send_consensus(to, inbound.verifier.encode(&msg)).await {
                debug!(to = %to, error = %e, "could not send a consensus message");
            }
        }
        Action::Broadcast(msg) => {
            match shared.p2p.broadcast_consensus(inbound.verifier.encode(&msg)).await {
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
            tokio::spawn(fetch(shared.clone(), inbound.clone(), from, from_height, to_height));
        }
        Action::StatusChanged(s) => {
            let leader = s.leader.map_or_else(|| "none".to_string(), |l| l.to_string());
            info!(view = s.view, leader = %leader, mode = ?s.mode, "consensus status");
            let before = *shared.status.read().expect("status lock");
            if s.mode == Mode::ViewChange && before.mode == Mode::Normal {
                explain_view_change(shared, inbound, &before);
            }
            shared.status_changed(s);
        }
    }
    Ok(())
}

/// Logs what this node had heard from the primary it left, and what its own inbound path was
/// doing: a primary that went quiet looks different from a backup that sat on what it heard
/// (messages waiting for verification, a full driver queue, a network held still because the
/// node was behind).
fn explain_view_change<V: Verifier>(shared: &Shared, inbound: &Inbound<V>, before: &ordo_consensus::Status) {
    let now = now_ms();
    let Some(primary) = before.leader else { return };
    let p = shared.inbound_stats.explain(&primary, now);
    let held = shared.p2p.counters().held_since_ms;
    let ms = |v: Option<u64>| v.map_or_else(|| "never".to_string(), |v| format!("{v} ms ago"));
    warn!(
        view = before.view,
        primary = %primary,
        heard = %ms(p.heard_ms_ago),
        verified = %ms(p.verified_ms_ago),
        verifying = p.verifying,
        verify_wait_ms = p.loop_waiting_ms,
        gossip_queued = p.gossip_queued,
        driver_queued = inbound.driver.max_capacity() - inbound.driver.capacity(),
        network_held_ms = if held == 0 { 0 } else { now.saturating_sub(held) },
        "left the view: what this node last had from its primary"
    );
}

/// Executes an ordered batch on the tip and stores the block with its certificate.
fn commit(shared: &Shared, prev: &Block, batch: CommittedBatch) -> anyhow::Result<Block> {
    let ids: Vec<Hash> = batch.txs.iter().map(|t| t.id()).collect();
    let committed = shared.ledger.committed(&ids)?;
    let (block, exec) =
        Block::build(&shared.genesis.chain_id, prev, batch.header, &batch.txs, &committed, Some(batch.certificate));
    shared.ledger.commit(&block, &exec.writes)?;
    Ok(block)
}

/// Fetches certified blocks from a peer, verifies them off the runtime and hands them to the core.
async fn fetch<V: Verifier>(
    shared: Arc<Shared>,
    inbound: Inbound<V>,
    from: PublicKey,
    from_height: u64,
    to_height: u64,
) {
    let bytes = match shared.p2p.request_blocks(from, from_height, to_height).await {
        Ok(b) => b,
        Err(e) => {
            warn!(peer = %from, from_height, to_height, error = %e, "block sync request failed");
            shared.syncing.store(false, Ordering::Relaxed);
            return;
        }
    };
    let verifier = inbound.verifier.clone();
    let verified = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Verified<CommittedBatch>>> {
        let blocks = wire::decode_blocks(&bytes)?;
        blocks.iter().map(|b| verifier.verify_block(b).map_err(anyhow::Error::from)).collect()
    })
    .await;
    match verified {
        Ok(Ok(blocks)) => {
            info!(peer = %from, blocks = blocks.len(), from_height, "fetched certified blocks");
            let _ = inbound.driver.send(DriverInput::Synced(blocks)).await;
        }
        Ok(Err(e)) => {
            warn!(peer = %from, error = %e, "a peer served blocks that do not verify; dropped");
            shared.syncing.store(false, Ordering::Relaxed);
        }
        Err(e) => error!(error = %e, "block verification task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_chain::cert::{pbft_commit_bytes, Certificate, PbftCertificate, ValidatorSignature};
    use ordo_chain::{BatchHeader, Op, Transaction, TxRules};
    use ordo_consensus::pbft::replica::{Replica, Restore};
    use ordo_consensus::pbft::{verify_block, VerifyContext};
    use ordo_consensus::sim::{committee, genesis, sim_config, validator_key, CHAIN_ID};
    use ordo_consensus::Consensus;

    /// A backup of a 4-validator committee, and a certified block at height 1 holding `tx`.
    fn backup_and_block(tx: &VerifiedTx) -> (Replica, Verified<CommittedBatch>) {
        let ctx = VerifyContext::new(committee(4), TxRules::new(CHAIN_ID), &sim_config());
        let g = genesis();
        let restore = Restore { safety: None, executed_height: 0, executed_hash: g.hash };
        let r = Replica::new(sim_config(), ctx.clone(), validator_key(2), g.hash, restore, 0).unwrap();
        let txs = vec![tx.clone()];
        let header = BatchHeader::for_txs(1, 1_000, validator_key(0).public(), &txs);
        let d = header.digest(CHAIN_ID);
        let msg = pbft_commit_bytes(CHAIN_ID, 0, 1, &d);
        let signatures = [0, 1, 3]
            .iter()
            .map(|&i| ValidatorSignature {
                validator: validator_key(i).public(),
                signature: validator_key(i).sign(&msg),
            })
            .collect();
        let cert = Certificate::Pbft(PbftCertificate { view: 0, height: 1, batch_digest: d, signatures });
        let (block, _) = Block::build(CHAIN_ID, &g, header, &txs, &[false], Some(cert));
        (r, verify_block(&ctx, &block).unwrap())
    }

    #[test]
    fn a_transaction_pulled_in_the_turn_that_commits_it_does_not_stay_pending() {
        let client = ordo_chain::Keypair::from_seed([5; 32]);
        let raw = Transaction::sign(CHAIN_ID, &client, 1, Op::Put { key: "k".into(), value: "v".into() });
        let tx = TxRules::new(CHAIN_ID).verify(raw).unwrap();
        // The turn's input commits the block that holds the pulled transaction.
        let (mut r, block) = backup_and_block(&tx);
        for input in turn(Some(Input::SyncedBlocks(vec![block])), vec![tx.clone()], || None) {
            r.handle(input);
        }
        assert_eq!(r.status().committed_height, 1);
        assert_eq!(r.status().pending_txs, 0, "the commit took it out of the pool");
        // The other order, for contrast: the core cannot tell a committed id from a new one, so the
        // transaction would wait for a batch that never comes.
        let (mut r, block) = backup_and_block(&tx);
        r.handle(Input::SyncedBlocks(vec![block]));
        r.handle(Input::ClientTxs(vec![tx]));
        assert_eq!(r.status().pending_txs, 1);
        // A turn with no transactions is the input alone.
        assert_eq!(turn::<()>(Some(Input::SyncedBlocks(Vec::new())), Vec::new(), || panic!("no backlog")).len(), 1);
    }

    #[test]
    fn a_late_tick_comes_after_the_messages_queued_before_it() {
        let client = ordo_chain::Keypair::from_seed([6; 32]);
        let raw = Transaction::sign(CHAIN_ID, &client, 1, Op::Put { key: "k".into(), value: "v".into() });
        let tx = TxRules::new(CHAIN_ID).verify(raw).unwrap();
        // A backup with a pending transaction falls 6 s behind on its queue; the committee's
        // certified block 1 waits there when the tick fires.
        let run = |tick_first: bool| {
            let (mut r, block) = backup_and_block(&tx);
            r.handle(Input::ClientTxs(vec![tx.clone()]));
            r.handle(Input::Tick { now_ms: 100 });
            let mut backlog = Some(Input::SyncedBlocks(vec![block]));
            let tick = Input::Tick { now_ms: 6_000 };
            let inputs: Vec<Input<_>> = if tick_first {
                vec![tick, backlog.take().unwrap()]
            } else {
                turn(Some(tick), Vec::new(), || backlog.take()).into()
            };
            let mut suspected = false;
            for input in inputs {
                r.handle(input);
                suspected |= r.take_suspicion().is_some();
            }
            (r.status(), suspected)
        };
        let (s, suspected) = run(false);
        assert!(!suspected, "the primary progressed");
        assert_eq!((s.view, s.mode, s.committed_height), (0, Mode::Normal, 1));
        // The tick first, for contrast: the backup takes its own lag for a silent primary (and
        // the certificate then brings it back to view 0 as an observer).
        let (s, suspected) = run(true);
        assert!(suspected);
        assert_eq!(s.committed_height, 1);
        // The backlog is read only for a tick, and only up to what it yields.
        let mut left = 2;
        let mut backlog = || {
            (left > 0).then(|| {
                left -= 1;
                Input::<()>::Tick { now_ms: 0 }
            })
        };
        assert_eq!(turn(Some(Input::Tick { now_ms: 1 }), Vec::new(), &mut backlog).len(), 3);
        assert_eq!(turn(Some(Input::SyncedBlocks(Vec::new())), Vec::new(), &mut backlog).len(), 1);
    }
}
