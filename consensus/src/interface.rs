//! The one driving interface of an ordering core. The node feeds [`Input`]s and executes the
//! returned [`Action`]s strictly in order; PBFT and Raft both implement it, so the node, store,
//! block format and API do not know which one runs.
//!
//! Ordering contract the node relies on:
//! - `PersistSafety` comes before every message whose vote it protects, so executing actions in
//!   order means no vote ever leaves before the record that forbids a conflicting one is durable.
//! - `PersistLog` likewise comes before every message that depends on it (a Raft follower's
//!   acknowledgement of entries, a vote after a term or vote change), and before the `Commit`
//!   actions whose commit index it records.
//! - `Commit` actions come in height order with no gaps; the node executes each block, stores it
//!   and reports its hash back with `Input::Executed`.

use ordo_chain::cert::Certificate;
use ordo_chain::store::{LogWrite, SafetyWrite};
use ordo_chain::{BatchHeader, Hash, PublicKey, VerifiedTx};

use crate::verified::Verified;

/// A batch the committee ordered, with the proof: the node builds and stores the block of
/// `header.height` from it (protocol §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedBatch {
    pub header: BatchHeader,
    pub txs: Vec<VerifiedTx>,
    pub certificate: Certificate,
}

/// Everything that can happen to a core. `M` is the protocol's message type.
#[derive(Debug, Clone)]
pub enum Input<M> {
    /// Client transactions, already checked by the node (`TxRules::verify_many`).
    ClientTxs(Vec<VerifiedTx>),
    /// A peer message that passed verification.
    Message(Verified<M>),
    /// The clock advanced; cores keep no clock of their own.
    Tick { now_ms: u64 },
    /// The node executed and stored the block at `height`; checkpoints are taken over its hash.
    Executed { height: u64, block_hash: Hash },
    /// Certified blocks fetched after a `FetchBlocks`, each verified, in any order.
    SyncedBlocks(Vec<Verified<CommittedBatch>>),
}

/// Where a core stands in its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Ordering normally under a known primary (or leader).
    Normal,
    /// Changing view (or electing a leader): no batches are ordered until it completes.
    ViewChange,
}

/// What the node shows in `/v1/status` and uses to route client traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The PBFT view (or Raft term).
    pub view: u64,
    /// The primary (leader) of that view; `None` while a Raft election has no winner yet.
    pub leader: Option<PublicKey>,
    pub mode: Mode,
    /// The highest height handed to the node in a `Commit` action.
    pub committed_height: u64,
    /// The highest height the node reported as executed.
    pub executed_height: u64,
    /// The last stable checkpoint (PBFT) or the height of the log's compaction point (Raft):
    /// everything at or below it is final and garbage-collected.
    pub stable_height: u64,
    pub pending_txs: usize,
}

/// What a core asks its driver to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<M> {
    /// Durably replace the safety record and apply its body changes (`Store::save_safety`)
    /// before executing what follows.
    PersistSafety(SafetyWrite),
    /// Durably apply one atomic change of the engine's log (`Store::write_log`, synced) before
    /// executing what follows.
    PersistLog(LogWrite),
    /// Send one message to one validator.
    Send { to: PublicKey, msg: M },
    /// Send one message to every other validator.
    Broadcast(M),
    /// Execute and store the next block.
    Commit(CommittedBatch),
    /// Fetch the certified blocks `from_height..=to_height` from a peer and feed them back with
    /// `Input::SyncedBlocks`.
    FetchBlocks { from: PublicKey, from_height: u64, to_height: u64 },
    /// The view, primary or mode changed.
    StatusChanged(Status),
}

/// The one trait the node drives.
pub trait Consensus {
    type Message;
    /// Feeds one input and returns the actions it causes, to be executed in order.
    fn handle(&mut self, input: Input<Self::Message>) -> Vec<Action<Self::Message>>;
    fn status(&self) -> Status;
    /// How many validators (this one included) must be reachable for the engine to make
    /// progress: the PBFT quorum 2f+1, or a Raft majority. The node's readiness uses it.
    fn quorum(&self) -> usize;
    /// Why this core last left its view on its own (a timer that expired, with what it had
    /// seen), once: the node logs it beside its own account of the network. `None` if it did
    /// not since the last call.
    fn take_suspicion(&mut self) -> Option<String> {
        None
    }
}
