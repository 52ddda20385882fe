//! The PBFT replica: a pure state machine implementing [`Consensus`]. It orders batches with
//! PRE-PREPARE/PREPARE/COMMIT (Castro & Liskov 2002, §4.2), pipelines sequences inside the
//! watermarks, takes checkpoints and garbage-collects below the stable one (§4.3), changes views
//! with prepared certificates and NEW-VIEW re-proposals (§4.4), and catches up behind a stable
//! checkpoint by fetching certified blocks (§4.3 "state transfer").
//!
//! A replica that asked alone for a view change while the rest of the committee kept committing
//! rejoins the committee's view as a non-voting observer until the committee's next view change,
//! keeping the promise its VIEW-CHANGE made (see docs/consensus.md, "The lone replica").
//!
//! The replica is split by concern: `pool` (pending transactions, batch formation), `normal`
//! (§4.2), `checkpoint` (§4.3), `catchup` (fetching certified blocks), `view_change` (§4.4)
//! and `timers` (timeouts, retransmission); this file holds the state, start-up and `handle`.
//!
//! Everything is bounded by a named limit in [`PbftConfig`]: the log by the watermark window,
//! each sequence by `slot_max_vote_sets`, the view-change store by one message per validator,
//! far checkpoints by one per validator, and the pending pool by `pool_max_txs`/`pool_max_bytes`.

use std::collections::{BTreeMap, BTreeSet};

use ordo_chain::cert::{Certificate, PbftCertificate, ValidatorSignature};
use ordo_chain::store::{Store, StoredSafety};
use ordo_chain::{BatchHeader, ChainError, Hash, Keypair, PublicKey, Signature, VerifiedTx};

use super::messages::new_view::compute_plan;
use super::messages::{
    Batch, Checkpoint, CheckpointProof, Commit, Message, NewView, NewViewPlan, PrePrepare, Prepare, PreparedProof,
    ViewChange,
};
use super::safety::Safety;
use super::verify::VerifyContext;
use crate::config::PbftConfig;
use crate::error::{ConsensusError, Result};
use crate::interface::{Action, CommittedBatch, Consensus, Input, Mode, Status};
use crate::verified::Verified;

mod catchup;
mod checkpoint;
mod normal;
mod pool;
mod timers;
mod view_change;

use crate::pool::TxPool;

/// What the node restores a replica from after a restart.
#[derive(Debug, Clone)]
pub struct Restore {
    /// The persisted safety record with its bodies, if any (`Store::load_safety`).
    pub safety: Option<StoredSafety>,
    /// The newest stored block: its height and hash.
    pub executed_height: u64,
    pub executed_hash: Hash,
}

/// The PRE-PREPARE this replica accepted for a height in the current view.
#[derive(Debug, Clone)]
struct Accepted {
    view: u64,
    digest: Hash,
    header: BatchHeader,
    primary_signature: Signature,
}

/// Everything known about one sequence number (height) inside the watermarks.
#[derive(Debug, Default)]
struct Slot {
    accepted: Option<Accepted>,
    /// Batch bodies by digest; at most `slot_max_vote_sets` of them.
    bodies: BTreeMap<Hash, Batch>,
    prepares: BTreeMap<(u64, Hash), BTreeMap<PublicKey, Signature>>,
    commits: BTreeMap<(u64, Hash), BTreeMap<PublicKey, Signature>>,
    /// Committed-local: the digest and its certificate, waiting for the heights below.
    committed: Option<(Hash, Certificate)>,
    /// This replica's own messages, re-sent while the sequence is in flight.
    my_pre_prepare: Option<PrePrepare>,
    my_prepare: Option<Prepare>,
    my_commit: Option<Commit>,
}

/// An ongoing catch-up: blocks up to `target` are being fetched from `peers`.
#[derive(Debug)]
struct Sync {
    target: u64,
    peers: Vec<PublicKey>,
    attempt: usize,
    requested_ms: u64,
    /// A request was sent and no answer has come back yet.
    awaiting: bool,
    /// Requests sent again, by the retransmission timer, since the last answer.
    unanswered: u32,
    /// Answers in a row that brought no block this replica could commit. Once every peer has
    /// answered so, the next request waits for the retransmission timer (see
    /// `Replica::on_synced`).
    empty_answers: usize,
}

/// Counters for metrics and the simulation's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub view_changes_started: u64,
    pub new_views_accepted: u64,
    pub messages_dropped: u64,
    pub fetches: u64,
    pub batches_proposed: u64,
    /// Times this replica, waiting alone for a view change, rejoined the committee's lower view
    /// as an observer.
    pub rejoins: u64,
}

pub struct Replica {
    cfg: PbftConfig,
    ctx: VerifyContext,
    me: PublicKey,
    view: u64,
    mode: Mode,
    /// The safety record and the signing key: every vote is checked, recorded and signed there.
    safety: Safety,
    dirty: bool,
    now_ms: u64,
    committed_height: u64,
    executed_height: u64,
    /// Digests handed to the node in `Commit` above the stable checkpoint, to assert agreement.
    committed_digests: BTreeMap<u64, Hash>,
    stable: CheckpointProof,
    log: BTreeMap<u64, Slot>,
    checkpoint_votes: BTreeMap<u64, BTreeMap<PublicKey, (Hash, Signature)>>,
    view_changes: BTreeMap<PublicKey, ViewChange>,
    my_view_change: Option<ViewChange>,
    /// The NEW-VIEW that started the current view, sent by this replica as primary or accepted
    /// from the primary. It is handed to a replica that asks for this view or a lower one: that
    /// replica missed it, or missed the whole view change (see `answer_with_new_view`).
    new_view: Option<NewView>,
    /// When this replica last handed `new_view` to each validator: at most once per
    /// retransmission interval per asker (one entry per validator).
    new_view_answered_ms: BTreeMap<PublicKey, u64>,
    /// This replica's newest CHECKPOINT, re-sent (with the stable one) so that a replica which
    /// missed it learns it is behind (it may have no pending work that would otherwise make it
    /// ask), and so that it becomes stable even if its first copies were lost.
    my_checkpoint: Option<Checkpoint>,
    pool: TxPool,
    next_height: u64,
    view_started_ms: u64,
    /// When the primary of the current view last showed progress (a PRE-PREPARE for a new height,
    /// or a new height certified in this view): the request timer restarts then. It measures the
    /// primary, not this replica's own backlog (see `note_certificate`).
    primary_progress_ms: u64,
    /// Progress of the primary (or a new view) seen since the last tick. The core learns the time
    /// only from ticks, so that progress happened at some moment between the last tick and the
    /// next: the request timer never expires on the tick right after it (see `on_tick`).
    progress_since_tick: bool,
    /// The highest height pre-prepared in the current view, and the highest height certified
    /// (2f+1 COMMITs) in the current view, as far as this replica has seen.
    view_pre_prepared_height: u64,
    view_certified_height: u64,
    /// When this replica, changing view, first held 2f+1 VIEW-CHANGEs for its view (or above):
    /// only from then may it escalate to the next view (§4.5.2). A replica alone never does.
    vc_quorum_since_ms: Option<u64>,
    /// The last view this replica was in normal mode in (voting or observing); a certificate of a
    /// lower view is old news and never makes it rejoin that view.
    last_normal_view: u64,
    /// The highest height this replica saw certified (in any view), and that height when it last
    /// sent its VIEW-CHANGE: only a certificate above the mark is news that the committee still
    /// commits. COMMITs are re-sent for a long time, and a certificate completed late by them
    /// says nothing about the committee now.
    highest_certified_height: u64,
    view_change_certified_mark: u64,
    /// The committed height when this replica last sent its VIEW-CHANGE: committing a batch of
    /// a lower view above it shows the committee ahead in that view.
    view_change_committed_mark: u64,
    backoff: u32,
    last_retransmit_ms: u64,
    sync: Option<Sync>,
    /// The certificate of the highest committed block. Its 2f+1 signatures are valid COMMIT
    /// messages, which a replica that missed them needs to learn the tip exists (after a restart
    /// the replica's own COMMITs are gone, but the stored certificate is not).
    tip_certificate: Option<Certificate>,
    /// The committed height at the last retransmission tick, to notice a replica that is stuck.
    stuck_at: Option<u64>,
    /// What this replica saw when its request timer last made it suspect the primary, until the
    /// node takes it for its log (`Consensus::take_suspicion`).
    suspicion: Option<String>,
    out: Vec<Action<Message>>,
    last_drop: Option<ConsensusError>,
    counters: Counters,
}

impl Replica {
    /// Builds a replica at start-up or after a restart. `genesis_hash` is the hash of block 0.
    pub fn new(
        cfg: PbftConfig,
        ctx: VerifyContext,
        key: Keypair,
        genesis_hash: Hash,
        restore: Restore,
        now_ms: u64,
    ) -> Result<Self> {
        cfg.validate()?;
        let me = key.public();
        if !ctx.committee.contains(&me) {
            return Err(ConsensusError::Config(format!("this node's key {me} is not in the committee")));
        }
        let pool = TxPool::new(&key);
        let safety = Safety::restore(restore.safety.as_ref(), genesis_hash, key, ctx.chain_id.clone())?;
        // An observer restarts as an observer of the same view; its promise is the record's view.
        let (view, mode) = match safety.observed_view {
            Some(v) => (v, Mode::Normal),
            None if safety.in_view_change => (safety.view, Mode::ViewChange),
            None => (safety.view, Mode::Normal),
        };
        let stable = safety.checkpoint.clone();
        let mut r = Replica {
            view,
            mode,
            stable,
            safety,
            cfg,
            ctx,
            me,
            dirty: false,
            now_ms,
            committed_height: restore.executed_height,
            executed_height: restore.executed_height,
            committed_digests: BTreeMap::new(),
            log: BTreeMap::new(),
            checkpoint_votes: BTreeMap::new(),
            view_changes: BTreeMap::new(),
            my_view_change: None,
            new_view: None,
            new_view_answered_ms: BTreeMap::new(),
            my_checkpoint: None,
            pool,
            next_height: 0,
            view_started_ms: now_ms,
            primary_progress_ms: now_ms,
            progress_since_tick: false,
            view_pre_prepared_height: 0,
            view_certified_height: 0,
            vc_quorum_since_ms: None,
            last_normal_view: if mode == Mode::Normal { view } else { 0 },
            highest_certified_height: restore.executed_height,
            view_change_certified_mark: restore.executed_height,
            view_change_committed_mark: restore.executed_height,
            backoff: 0,
            last_retransmit_ms: now_ms,
            sync: None,
            tip_certificate: None,
            stuck_at: None,
            suspicion: None,
            out: Vec::new(),
            last_drop: None,
            counters: Counters::default(),
        };
        r.next_height = r.stable.height.max(r.committed_height) + 1;
        // Bodies of prepared batches come back from the record, so that this replica can still
        // re-propose (as primary) or supply (in its VIEW-CHANGE) a batch it prepared before.
        let restored: Vec<(u64, Batch)> = r
            .safety
            .slots
            .iter()
            .filter_map(|(h, s)| {
                s.prepared.as_ref().and_then(|p| Some((*h, Batch { header: p.header, txs: p.txs.clone()? })))
            })
            .collect();
        for (h, b) in restored {
            let d = b.digest(&r.ctx.chain_id);
            r.log.entry(h).or_default().bodies.insert(d, b);
        }
        if r.mode == Mode::ViewChange {
            // The VIEW-CHANGE sent before the crash is rebuilt (from the same record) and
            // re-sent by the retransmission timer.
            r.my_view_change = Some(r.build_view_change(r.view));
        }
        if r.stable.height > r.committed_height {
            r.start_sync(r.stable.height, r.checkpoint_signers(&r.stable));
        }
        Ok(r)
    }

    /// Hands a restarted replica the certificate of the newest stored block (`Block::certificate`
    /// of the store's tip), which it re-sends to peers that lag behind (see `help_laggard`).
    /// Without it a replica only learns its tip certificate at its next commit.
    pub fn with_tip_certificate(mut self, certificate: Option<Certificate>) -> Self {
        if let Some(c) = &certificate {
            assert_eq!(c.height(), self.committed_height, "the tip certificate is the stored tip's");
        }
        self.tip_certificate = certificate;
        self
    }

    /// Hands a restarted replica the bodies of the executed heights above its stable checkpoint,
    /// read from this node's store. The safety record leaves them out (see
    /// `Safety::persist`); the replica still needs them to supply prepared batches in a
    /// VIEW-CHANGE and to re-propose them as a new primary. The store holds only blocks this
    /// node verified and certified, so their transactions are trusted as verified.
    pub fn with_bodies_from_store<S: Store + ?Sized>(mut self, store: &S) -> std::result::Result<Self, ChainError> {
        for h in self.stable.height + 1..=self.executed_height {
            let Some(block) = store.block(h)? else { continue };
            let txs = block.txs.into_iter().map(VerifiedTx::from_trusted_store).collect();
            let batch = Batch { header: block.header, txs };
            let d = batch.digest(&self.ctx.chain_id);
            self.committed_digests.insert(h, d);
            self.log.entry(h).or_default().bodies.insert(d, batch);
        }
        if self.mode == Mode::ViewChange {
            // Rebuilt with the bodies that were just handed back.
            self.my_view_change = Some(self.build_view_change(self.view));
        }
        Ok(self)
    }

    pub fn public_key(&self) -> PublicKey {
        self.me
    }

    pub fn view(&self) -> u64 {
        self.view
    }

    /// The view this replica promised with its last VIEW-CHANGE (or entered): it signs no
    /// PRE-PREPARE, PREPARE or COMMIT in any view below it. Above [`Replica::view`] exactly while
    /// it follows the committee's lower view as a non-voting observer.
    pub fn promised_view(&self) -> u64 {
        self.safety.view
    }

    /// True while this replica follows a view below its promise without voting in it.
    pub fn is_observer(&self) -> bool {
        self.mode == Mode::Normal && self.view < self.safety.view
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Why the last dropped message was dropped (for logs, metrics and tests).
    pub fn last_drop(&self) -> Option<&ConsensusError> {
        self.last_drop.as_ref()
    }

    /// The primary of `view`.
    pub fn primary_of(&self, view: u64) -> PublicKey {
        self.ctx.primary(view)
    }

    fn is_primary(&self) -> bool {
        self.primary_of(self.view) == self.me
    }

    fn quorum(&self) -> usize {
        self.ctx.committee.quorum()
    }

    fn high_watermark(&self) -> u64 {
        self.stable.height + self.cfg.watermark_window
    }

    fn drop_msg(&mut self, e: ConsensusError) {
        self.counters.messages_dropped += 1;
        self.last_drop = Some(e);
    }

    /// A cheap triage the node may run on a message's 49-byte prefix before verifying it:
    /// stale-view and far-future messages are dropped without any signature check.
    pub fn wants(&self, peek: &super::messages::Peek) -> bool {
        use super::messages::Kind;
        match peek.kind {
            Kind::Checkpoint => peek.height > self.stable.height,
            Kind::Commit => {
                peek.height > self.committed_height.min(self.stable.height)
                    && peek.view <= self.view.saturating_add(self.cfg.max_views_ahead)
            }
            Kind::PrePrepare | Kind::Prepare => {
                peek.view == self.view && peek.height > self.stable.height && peek.height <= self.high_watermark()
            }
            Kind::ViewChange | Kind::NewView => {
                peek.view.saturating_add(1) >= self.view
                    && peek.view <= self.view.saturating_add(self.cfg.max_views_ahead)
            }
        }
    }

    /// The current backoff-scaled timeout: doubled per consecutive view change, capped.
    fn timeout_ms(&self) -> u64 {
        let t = self.cfg.view_change_timeout_ms.saturating_mul(1u64 << self.backoff.min(20));
        t.min(self.cfg.view_change_timeout_max_ms)
    }

    fn status_now(&self) -> Status {
        Status {
            view: self.view,
            leader: Some(self.primary_of(self.view)),
            mode: self.mode,
            committed_height: self.committed_height,
            executed_height: self.executed_height,
            stable_height: self.stable.height,
            pending_txs: self.pool.len(),
        }
    }

    fn broadcast(&mut self, m: Message) {
        self.out.push(Action::Broadcast(m));
    }
}

/// Adds one validator's vote to a slot's vote sets, keeping at most `max_sets` (view, digest)
/// sets: a new set evicts the lowest-view one, so Byzantine votes cannot grow a slot.
fn insert_vote(
    sets: &mut BTreeMap<(u64, Hash), BTreeMap<PublicKey, Signature>>,
    key: (u64, Hash),
    from: PublicKey,
    sig: Signature,
    max_sets: usize,
) {
    if !sets.contains_key(&key) && sets.len() >= max_sets {
        let lowest = *sets.keys().next().expect("non-empty");
        if lowest.0 > key.0 {
            return;
        }
        sets.remove(&lowest);
    }
    sets.entry(key).or_default().insert(from, sig);
}

impl Consensus for Replica {
    type Message = Message;

    fn take_suspicion(&mut self) -> Option<String> {
        self.suspicion.take()
    }

    fn handle(&mut self, input: Input<Message>) -> Vec<Action<Message>> {
        let before = self.status_now();
        match input {
            Input::ClientTxs(txs) => self.on_client_txs(txs),
            Input::Message(m) => match m.into_inner() {
                Message::PrePrepare(pp) => self.on_pre_prepare(pp),
                Message::Prepare(p) => self.on_prepare(p),
                Message::Commit(c) => self.on_commit(c),
                Message::Checkpoint(c) => self.on_checkpoint(c),
                Message::ViewChange(vc) => self.on_view_change(vc),
                Message::NewView(nv) => self.on_new_view(nv),
            },
            Input::Tick { now_ms } => {
                self.now_ms = self.now_ms.max(now_ms);
                self.on_tick();
            }
            Input::Executed { height, block_hash } => self.on_executed(height, block_hash),
            Input::SyncedBlocks(blocks) => self.on_synced(blocks),
        }
        self.try_propose();
        let mut out = std::mem::take(&mut self.out);
        if self.dirty {
            // The record goes first: every vote produced by this input leaves after it is durable.
            self.dirty = false;
            out.insert(0, Action::PersistSafety(self.safety.persist(self.executed_height)));
        }
        let after = self.status_now();
        if (before.view, before.mode) != (after.view, after.mode) {
            out.push(Action::StatusChanged(after));
        }
        out
    }

    fn status(&self) -> Status {
        self.status_now()
    }

    fn quorum(&self) -> usize {
        self.ctx.committee.quorum()
    }
}
