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
//! Everything is bounded by a named limit in [`PbftConfig`]: the log by the watermark window,
//! each sequence by `slot_max_vote_sets`, the view-change store by one message per validator,
//! far checkpoints by one per validator, and the pending pool by `pool_max_txs`/`pool_max_bytes`.

use std::collections::{BTreeMap, BTreeSet};

use ordo_chain::cert::{Certificate, PbftCertificate, ValidatorSignature};
use ordo_chain::store::Store;
use ordo_chain::{BatchHeader, ChainError, Hash, Keypair, PublicKey, Signature, VerifiedTx};

use super::messages::new_view::compute_plan;
use super::messages::{
    Batch, Checkpoint, CheckpointProof, Commit, Message, NewView, NewViewPlan, PrePrepare, Prepare, PreparedProof,
    ViewChange,
};
use super::safety::SafetyRecord;
use super::verify::VerifyContext;
use crate::config::PbftConfig;
use crate::error::{ConsensusError, Result};
use crate::interface::{Action, CommittedBatch, Consensus, Input, Mode, Status};
use crate::verified::Verified;

/// What the node restores a replica from after a restart.
#[derive(Debug, Clone)]
pub struct Restore {
    /// The persisted safety record, if any (`Store::load_safety`).
    pub safety: Option<Vec<u8>>,
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

/// The pending transaction pool of one replica: FIFO by arrival.
#[derive(Debug, Default)]
struct Pool {
    txs: BTreeMap<Hash, (VerifiedTx, u64, u64)>, // id -> (tx, arrival seq, arrival ms)
    order: BTreeMap<u64, Hash>,                  // arrival seq -> id, every pending tx
    unproposed: BTreeSet<u64>,                   // arrival seqs not in a batch of this view
    bytes: usize,
    next_seq: u64,
}

impl Pool {
    fn insert(&mut self, tx: VerifiedTx, now_ms: u64, max_txs: usize, max_bytes: usize) -> bool {
        if self.txs.contains_key(&tx.id()) || self.txs.len() >= max_txs || self.bytes + tx.wire_len() > max_bytes {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += tx.wire_len();
        self.order.insert(seq, tx.id());
        self.unproposed.insert(seq);
        self.txs.insert(tx.id(), (tx, seq, now_ms));
        true
    }

    fn remove(&mut self, id: &Hash) {
        if let Some((tx, seq, _)) = self.txs.remove(id) {
            self.bytes -= tx.wire_len();
            self.order.remove(&seq);
            self.unproposed.remove(&seq);
        }
    }

    fn mark_proposed(&mut self, id: &Hash) {
        if let Some((_, seq, _)) = self.txs.get(id) {
            self.unproposed.remove(seq);
        }
    }

    fn unpropose_all(&mut self) {
        self.unproposed = self.order.keys().copied().collect();
    }

    fn oldest_arrival_ms(&self) -> Option<u64> {
        self.order.values().next().map(|id| self.txs[id].2)
    }

    fn oldest_unproposed_ms(&self) -> Option<u64> {
        self.unproposed.iter().next().map(|s| self.txs[&self.order[s]].2)
    }
}

/// An ongoing catch-up: blocks up to `target` are being fetched from `peers`.
#[derive(Debug)]
struct Sync {
    target: u64,
    peers: Vec<PublicKey>,
    attempt: usize,
    requested_ms: u64,
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
    key: Keypair,
    me: PublicKey,
    view: u64,
    mode: Mode,
    safety: SafetyRecord,
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
    pool: Pool,
    next_height: u64,
    view_started_ms: u64,
    /// When the primary of the current view last showed progress (a PRE-PREPARE for a new height,
    /// or a new height certified in this view): the request timer restarts then. It measures the
    /// primary, not this replica's own backlog (see `note_certificate`).
    primary_progress_ms: u64,
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
        let safety = match &restore.safety {
            Some(bytes) => SafetyRecord::decode(bytes)?,
            None => SafetyRecord::new(genesis_hash),
        };
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
            key,
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
            pool: Pool::default(),
            next_height: 0,
            view_started_ms: now_ms,
            primary_progress_ms: now_ms,
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
    /// [`SafetyRecord::encode`]); the replica still needs them to supply prepared batches in a
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
            pending_txs: self.pool.txs.len(),
        }
    }

    fn broadcast(&mut self, m: Message) {
        self.out.push(Action::Broadcast(m));
    }

    // ------------------------------------------------------------------ client transactions

    fn on_client_txs(&mut self, txs: Vec<VerifiedTx>) {
        for tx in txs {
            self.pool.insert(tx, self.now_ms, self.cfg.pool_max_txs, self.cfg.pool_max_bytes);
        }
    }

    /// The primary forms batches: early when a full batch is pending, otherwise once the oldest
    /// unproposed transaction waited `batch_timeout_ms`; never beyond the high watermark.
    fn try_propose(&mut self) {
        if self.mode != Mode::Normal || !self.is_primary() || self.is_observer() {
            return;
        }
        // Heights this replica already committed are final; never assign them again.
        self.next_height = self.next_height.max(self.committed_height + 1);
        while self.next_height <= self.high_watermark()
            && self.next_height <= self.committed_height + self.cfg.max_in_flight
            && !self.pool.unproposed.is_empty()
        {
            let (mut count, mut bytes) = (0usize, 0usize);
            for s in &self.pool.unproposed {
                let len = self.pool.txs[&self.pool.order[s]].0.wire_len();
                if count == self.cfg.batch_max_txs || bytes + len > self.cfg.batch_max_bytes {
                    break;
                }
                count += 1;
                bytes += len;
            }
            let full = count == self.cfg.batch_max_txs || count < self.pool.unproposed.len();
            let waited = self.pool.oldest_unproposed_ms().is_some_and(|t| self.now_ms >= t + self.cfg.batch_timeout_ms);
            if count == 0 || !(full || waited) {
                return;
            }
            let seqs: Vec<u64> = self.pool.unproposed.iter().take(count).copied().collect();
            let txs: Vec<VerifiedTx> = seqs.iter().map(|s| self.pool.txs[&self.pool.order[s]].0.clone()).collect();
            for s in seqs {
                self.pool.unproposed.remove(&s);
            }
            let h = self.next_height;
            let header = BatchHeader::for_txs(h, self.now_ms, self.me, &txs);
            let d = header.digest(&self.ctx.chain_id);
            if let Err(e) = self.safety.vote_prepare(self.view, h, d) {
                // The record says this replica already pre-prepared another batch at h in this
                // view (possible after a restart): skip the height rather than equivocate.
                self.drop_msg(e);
                self.next_height += 1;
                self.pool.unpropose_all();
                continue;
            }
            self.dirty = true;
            let pp = PrePrepare::sign(&self.ctx.chain_id, &self.key, self.view, Batch { header, txs });
            self.next_height += 1;
            self.counters.batches_proposed += 1;
            let slot = self.log.entry(h).or_default();
            slot.accepted = Some(Accepted { view: self.view, digest: d, header, primary_signature: pp.signature });
            slot.bodies.insert(d, pp.batch.clone());
            slot.my_pre_prepare = Some(pp.clone());
            self.broadcast(Message::PrePrepare(pp));
            self.check_prepared(h);
        }
    }

    // ------------------------------------------------------------------ normal case (§4.2)

    /// Drops a normal-case message that is not for the current view, or outside the watermarks.
    fn admit_normal(&mut self, view: u64, height: u64) -> bool {
        if view < self.view {
            self.drop_msg(ConsensusError::StaleView { view, current: self.view });
            return false;
        }
        if view > self.view.saturating_add(self.cfg.max_views_ahead) {
            self.drop_msg(ConsensusError::FarFutureView {
                view,
                current: self.view,
                max_ahead: self.cfg.max_views_ahead,
            });
            return false;
        }
        if view > self.view {
            // A message of a view this replica has not entered: the sender re-sends it.
            self.drop_msg(ConsensusError::StaleView { view, current: self.view });
            return false;
        }
        if self.mode == Mode::ViewChange {
            self.drop_msg(ConsensusError::ViewChangeInProgress { view });
            return false;
        }
        if height <= self.stable.height || height > self.high_watermark() {
            self.drop_msg(ConsensusError::OutsideWatermarks {
                height,
                low: self.stable.height,
                high: self.high_watermark(),
            });
            return false;
        }
        true
    }

    fn on_pre_prepare(&mut self, pp: PrePrepare) {
        let h = pp.height();
        if !self.admit_normal(pp.view, h) {
            return;
        }
        if pp.from != self.primary_of(pp.view) {
            // Verification already checks this; a replica never trusts that it ran.
            self.drop_msg(ConsensusError::NotPrimary {
                kind: "pre-prepare",
                view: pp.view,
                expected: self.primary_of(pp.view),
                got: pp.from,
            });
            return;
        }
        if pp.from == self.me {
            return;
        }
        let d = pp.batch.digest(&self.ctx.chain_id);
        if self.committed_digests.get(&h).is_some_and(|c| *c != d) {
            // This height is already final here with another batch: never help a second one.
            self.drop_msg(ConsensusError::ConflictingPrePrepare { view: pp.view, height: h });
            return;
        }
        let max_sets = self.cfg.slot_max_vote_sets;
        let slot = self.log.entry(h).or_default();
        if let Some(a) = &slot.accepted {
            if a.view == pp.view {
                if a.digest != d {
                    self.drop_msg(ConsensusError::ConflictingPrePrepare { view: pp.view, height: h });
                }
                return;
            }
        }
        // An observer keeps the batch (the committee may certify it, and a certificate needs the
        // body to commit) but never votes below its promise: it sends no PREPARE.
        let observer = self.is_observer();
        if !observer {
            if let Err(e) = self.safety.vote_prepare(pp.view, h, d) {
                self.drop_msg(e);
                return;
            }
            self.dirty = true;
        }
        let slot = self.log.entry(h).or_default();
        slot.accepted =
            Some(Accepted { view: pp.view, digest: d, header: pp.batch.header, primary_signature: pp.signature });
        if slot.bodies.len() >= max_sets {
            let evict = *slot.bodies.keys().next().expect("non-empty");
            slot.bodies.remove(&evict);
        }
        slot.bodies.insert(d, pp.batch);
        self.note_pre_prepare(h);
        if !observer {
            let prepare = Prepare::sign(&self.ctx.chain_id, &self.key, pp.view, h, d);
            let slot = self.log.get_mut(&h).expect("slot exists");
            insert_vote(&mut slot.prepares, (pp.view, d), self.me, prepare.signature, max_sets);
            slot.my_prepare = Some(prepare.clone());
            self.broadcast(Message::Prepare(prepare));
            self.check_prepared(h);
        }
        self.check_committed(h);
    }

    /// A PRE-PREPARE of the current view for a new height is progress of its primary: the request
    /// timer restarts. Only within `max_in_flight` heights of what this replica saw certified,
    /// which an honest primary never exceeds, so a faulty primary proposing batches that never
    /// commit postpones its suspicion by at most `max_in_flight` timeouts.
    fn note_pre_prepare(&mut self, h: u64) {
        let certified = self.view_certified_height.max(self.committed_height);
        if h > self.view_pre_prepared_height && h <= certified.saturating_add(self.cfg.max_in_flight) {
            self.view_pre_prepared_height = h;
            self.primary_progress_ms = self.now_ms;
        }
    }

    fn on_prepare(&mut self, p: Prepare) {
        if !self.admit_normal(p.view, p.height) {
            return;
        }
        if p.from == self.primary_of(p.view) {
            // The primary's vote is its PRE-PREPARE; a PREPARE from it does not count (§4.2).
            return;
        }
        let max_sets = self.cfg.slot_max_vote_sets;
        let slot = self.log.entry(p.height).or_default();
        insert_vote(&mut slot.prepares, (p.view, p.digest), p.from, p.signature, max_sets);
        self.check_prepared(p.height);
    }

    /// Prepared (§4.2): the accepted PRE-PREPARE plus 2f matching PREPAREs from distinct
    /// backups. The replica then records the certificate and sends its COMMIT.
    fn check_prepared(&mut self, h: u64) {
        let Some(slot) = self.log.get(&h) else { return };
        let Some(a) = slot.accepted.clone() else { return };
        if a.view != self.view
            || self.mode != Mode::Normal
            || self.is_observer()
            || slot.my_commit.as_ref().is_some_and(|c| c.view == a.view)
        {
            return;
        }
        let primary = self.primary_of(a.view);
        let need = self.quorum() - 1;
        let Some(votes) = slot.prepares.get(&(a.view, a.digest)) else { return };
        let prepares: Vec<ValidatorSignature> = votes
            .iter()
            .filter(|(k, _)| **k != primary)
            .take(need)
            .map(|(k, s)| ValidatorSignature { validator: *k, signature: *s })
            .collect();
        if prepares.len() < need {
            return;
        }
        let body = slot.bodies.get(&a.digest).map(|b| b.txs.clone());
        let proof = PreparedProof {
            view: a.view,
            header: a.header,
            primary_signature: a.primary_signature,
            prepares,
            txs: body,
        };
        if let Err(e) = self.safety.vote_commit(proof, a.digest) {
            self.drop_msg(e);
            return;
        }
        self.dirty = true;
        let commit = Commit::sign(&self.ctx.chain_id, &self.key, a.view, h, a.digest);
        let (max_sets, quorum) = (self.cfg.slot_max_vote_sets, self.quorum());
        let slot = self.log.get_mut(&h).expect("slot exists");
        insert_vote(&mut slot.commits, (a.view, a.digest), self.me, commit.signature, max_sets);
        let certified = slot.commits[&(a.view, a.digest)].len() >= quorum;
        slot.my_commit = Some(commit.clone());
        self.broadcast(Message::Commit(commit));
        if certified {
            self.note_certificate(a.view, h);
        }
        self.check_committed(h);
    }

    fn on_commit(&mut self, c: Commit) {
        // COMMITs of any recent view are kept: 2f+1 of them are a certificate on their own, which
        // lets a replica that missed a view's PREPAREs (or is still changing view) commit.
        if c.view > self.view.saturating_add(self.cfg.max_views_ahead) {
            self.drop_msg(ConsensusError::FarFutureView {
                view: c.view,
                current: self.view,
                max_ahead: self.cfg.max_views_ahead,
            });
            return;
        }
        if c.height <= self.stable.height || c.height > self.high_watermark() {
            self.drop_msg(ConsensusError::OutsideWatermarks {
                height: c.height,
                low: self.stable.height,
                high: self.high_watermark(),
            });
            return;
        }
        let (max_sets, quorum) = (self.cfg.slot_max_vote_sets, self.quorum());
        let slot = self.log.entry(c.height).or_default();
        insert_vote(&mut slot.commits, (c.view, c.digest), c.from, c.signature, max_sets);
        if slot.commits.get(&(c.view, c.digest)).is_some_and(|v| v.len() >= quorum) {
            self.note_certificate(c.view, c.height);
        }
        self.check_committed(c.height);
    }

    /// A commit certificate (2f+1 COMMITs, or a fetched certified block) for `view` at height `h`,
    /// seen before the height is committed here. Certificates show where the committee is:
    /// - in this replica's view, the primary makes progress: the request timer restarts. A backup
    ///   behind on its own work (bodies, execution) commits late, but sees the certificates, so
    ///   it does not suspect a primary that the others follow (§4.4 restarts the timer when a
    ///   request executes; here the committee's execution is what counts).
    /// - in a lower view, while this replica waits for a view change that at most f validators
    ///   (itself included) asked for, at a height above its own and above any it had seen
    ///   certified when it asked: the committee is still committing there, and this replica
    ///   rejoins that view as a non-voting observer. (f+1 VIEW-CHANGEs would make every other
    ///   replica join the view change, so the replica waits for it instead.)
    /// - in a higher view: 2f+1 validators, f+1 of them honest, entered it. This replica follows
    ///   it (as an observer below its promise) or asks for it with a VIEW-CHANGE, which the
    ///   committee answers with that view's NEW-VIEW.
    fn note_certificate(&mut self, view: u64, h: u64) {
        let news = h > self.view_change_certified_mark.max(self.committed_height);
        self.highest_certified_height = self.highest_certified_height.max(h);
        if view == self.view {
            if self.mode == Mode::Normal && h > self.view_certified_height {
                self.view_certified_height = h;
                self.primary_progress_ms = self.now_ms;
            }
        } else if view < self.view {
            if news && self.may_rejoin(view) {
                self.counters.rejoins += 1;
                self.observe(view);
                self.view_certified_height = h;
            }
        } else if self.is_observer() && view < self.safety.view {
            self.observe(view);
            self.view_certified_height = h;
        } else {
            self.ask_for_view(view);
        }
    }

    /// True when this replica, changing view, may rejoin the lower `view` as an observer: it was not
    /// in a later view before, and at most f validators (itself included) asked for its view or
    /// above. f+1 would make every other replica join the view change, so it waits for that.
    fn may_rejoin(&self, view: u64) -> bool {
        self.mode == Mode::ViewChange
            && view < self.view
            && view >= self.last_normal_view
            && self.view_changes_at_or_above(self.view) < self.ctx.committee.weak_quorum()
    }

    /// True when 2f+1 COMMITs certify the height after this replica's committed height.
    fn next_height_certified(&self) -> bool {
        let quorum = self.quorum();
        self.log.get(&(self.committed_height + 1)).is_some_and(|s| s.commits.values().any(|v| v.len() >= quorum))
    }

    /// Committed-local (§4.2): 2f+1 COMMITs from distinct validators for one (view, digest),
    /// and the batch's body. The COMMITs are the protocol §6 certificate.
    fn check_committed(&mut self, h: u64) {
        let quorum = self.quorum();
        let Some(slot) = self.log.get_mut(&h) else { return };
        if slot.committed.is_some() {
            return;
        }
        let Some(((view, digest), votes)) = slot.commits.iter().find(|(_, v)| v.len() >= quorum) else { return };
        if !slot.bodies.contains_key(digest) {
            // Certified but the body is missing: the retransmission timer fetches the block.
            return;
        }
        let mut sigs: Vec<ValidatorSignature> =
            votes.iter().map(|(k, s)| ValidatorSignature { validator: *k, signature: *s }).collect();
        let committee = &self.ctx.committee;
        sigs.sort_by_key(|s| committee.index_of(&s.validator));
        sigs.truncate(quorum);
        let cert =
            Certificate::Pbft(PbftCertificate { view: *view, height: h, batch_digest: *digest, signatures: sigs });
        slot.committed = Some((*digest, cert));
        self.try_execute();
    }

    /// Hands committed batches to the node in height order, with no gaps.
    fn try_execute(&mut self) {
        loop {
            let h = self.committed_height + 1;
            let Some(slot) = self.log.get(&h) else { return };
            let Some((digest, cert)) = slot.committed.clone() else { return };
            let batch = slot.bodies.get(&digest).cloned().expect("committed slots hold their body");
            self.emit_commit(CommittedBatch { header: batch.header, txs: batch.txs, certificate: cert });
        }
    }

    fn emit_commit(&mut self, b: CommittedBatch) {
        let h = b.header.height;
        assert_eq!(h, self.committed_height + 1, "commits are handed over in height order without gaps");
        let d = b.header.digest(&self.ctx.chain_id);
        if let Some(prev) = self.committed_digests.get(&h) {
            assert_eq!(*prev, d, "agreement violated: height {h} committed twice with different digests");
        }
        assert_eq!(b.certificate.batch_digest(), d, "a certificate names the batch it certifies");
        self.committed_digests.insert(h, d);
        self.committed_height = h;
        self.highest_certified_height = self.highest_certified_height.max(h);
        self.tip_certificate = Some(b.certificate.clone());
        for tx in &b.txs {
            self.pool.remove(&tx.id());
        }
        if self.mode == Mode::Normal {
            // Progress in this view resets the view-change backoff (§4.5.2).
            self.backoff = 0;
        }
        let cert_view = match &b.certificate {
            Certificate::Pbft(c) => Some(c.view),
            _ => None,
        };
        self.out.push(Action::Commit(b));
        // Catching up on a lower view's batches above the height it had when it asked shows the
        // committee ahead in that view (also once the committee has gone idle, when no new
        // certificate will come).
        if let Some(v) = cert_view.filter(|v| h > self.view_change_committed_mark && self.may_rejoin(*v)) {
            self.counters.rejoins += 1;
            self.observe(v);
        }
    }

    // ------------------------------------------------------------------ checkpoints (§4.3)

    fn on_executed(&mut self, height: u64, block_hash: Hash) {
        if height <= self.executed_height {
            return;
        }
        assert!(height <= self.committed_height, "the node executed height {height} that was never committed");
        self.executed_height = height;
        if height == self.stable.height {
            assert_eq!(
                block_hash, self.stable.block_hash,
                "executed block {height} differs from the stable checkpoint"
            );
        }
        if height % self.cfg.checkpoint_interval == 0 && height > self.stable.height {
            let cp = Checkpoint::sign(&self.ctx.chain_id, &self.key, height, block_hash);
            self.my_checkpoint = Some(cp.clone());
            self.broadcast(Message::Checkpoint(cp.clone()));
            self.on_checkpoint(cp);
        }
    }

    fn on_checkpoint(&mut self, c: Checkpoint) {
        if c.height <= self.stable.height || c.height % self.cfg.checkpoint_interval != 0 {
            self.drop_msg(ConsensusError::OutsideWatermarks {
                height: c.height,
                low: self.stable.height,
                high: self.high_watermark(),
            });
            return;
        }
        if c.height > self.high_watermark() {
            // Far checkpoints tell a lagging replica it is behind; one per sender bounds them.
            let high = self.high_watermark();
            for votes in self.checkpoint_votes.range_mut(high + 1..).map(|(_, v)| v) {
                votes.remove(&c.from);
            }
            self.checkpoint_votes.retain(|_, v| !v.is_empty());
        }
        self.checkpoint_votes.entry(c.height).or_default().insert(c.from, (c.block_hash, c.signature));
        let votes = &self.checkpoint_votes[&c.height];
        let matching: Vec<ValidatorSignature> = votes
            .iter()
            .filter(|(_, (h, _))| *h == c.block_hash)
            .map(|(k, (_, s))| ValidatorSignature { validator: *k, signature: *s })
            .collect();
        if matching.len() >= self.quorum() {
            self.stabilize(CheckpointProof { height: c.height, block_hash: c.block_hash, signatures: matching });
        }
    }

    fn checkpoint_signers(&self, p: &CheckpointProof) -> Vec<PublicKey> {
        p.signatures.iter().map(|s| s.validator).filter(|k| *k != self.me).collect()
    }

    /// A checkpoint became stable: garbage-collect everything at or below it, and fetch the
    /// blocks up to it if this replica has not committed them.
    fn stabilize(&mut self, proof: CheckpointProof) {
        if proof.height <= self.stable.height {
            return;
        }
        let h = proof.height;
        self.safety.advance_checkpoint(proof.clone());
        self.dirty = true;
        self.stable = proof;
        self.log = self.log.split_off(&(h + 1));
        self.checkpoint_votes = self.checkpoint_votes.split_off(&(h + 1));
        self.committed_digests = self.committed_digests.split_off(&(h + 1));
        if self.next_height <= h {
            self.next_height = h + 1;
        }
        if self.committed_height < h {
            let peers = self.checkpoint_signers(&self.stable);
            self.start_sync(h, peers);
        }
        // The window moved: the primary may propose again.
        self.try_propose();
    }

    // ------------------------------------------------------------------ catch-up

    fn start_sync(&mut self, target: u64, peers: Vec<PublicKey>) {
        if peers.is_empty() || target <= self.committed_height {
            return;
        }
        match &mut self.sync {
            Some(s) if s.target >= target => return,
            Some(s) => {
                s.target = target;
                s.peers = peers;
            }
            None => self.sync = Some(Sync { target, peers, attempt: 0, requested_ms: 0 }),
        }
        self.request_blocks();
    }

    fn request_blocks(&mut self) {
        let Some(s) = &mut self.sync else { return };
        let from = s.peers[s.attempt % s.peers.len()];
        s.attempt += 1;
        s.requested_ms = self.now_ms;
        let from_height = self.committed_height + 1;
        let to_height = s.target.min(self.committed_height + self.cfg.fetch_max_blocks);
        self.counters.fetches += 1;
        self.out.push(Action::FetchBlocks { from, from_height, to_height });
    }

    fn on_synced(&mut self, mut blocks: Vec<Verified<CommittedBatch>>) {
        blocks.sort_by_key(|b| b.header.height);
        // The newest certificate of the answer tells where the committee is (verification
        // checked it against the committee).
        let newest = blocks
            .iter()
            .filter(|b| b.header.height > self.committed_height)
            .filter_map(|b| match &b.certificate {
                Certificate::Pbft(c) => Some((c.view, c.height)),
                _ => None,
            })
            .max();
        if let Some((view, h)) = newest {
            self.note_certificate(view, h);
        }
        for b in blocks {
            let b = b.into_inner();
            if b.header.height != self.committed_height + 1 {
                continue;
            }
            let h = b.header.height;
            if h > self.stable.height {
                // Kept for a VIEW-CHANGE or NEW-VIEW that chooses this batch before the next
                // stable checkpoint collects it.
                let d = b.header.digest(&self.ctx.chain_id);
                self.log.entry(h).or_default().bodies.insert(d, Batch { header: b.header, txs: b.txs.clone() });
            }
            self.emit_commit(b);
        }
        self.try_execute();
        self.try_new_view();
        match &self.sync {
            Some(s) if self.committed_height >= s.target => self.sync = None,
            Some(_) => self.request_blocks(),
            None => {}
        }
    }

    /// At each retransmission tick: if the committed height has not moved since the last tick
    /// while some height above it holds COMMITs (its own or others': someone prepared it, so it
    /// may well be committed elsewhere, and this replica may have missed the other COMMITs for
    /// good), ask the other validators for the certified blocks. Fetching is always safe: a
    /// fetched block counts only with its certificate, and a peer without it answers nothing.
    fn check_stuck(&mut self) {
        let was = self.stuck_at.replace(self.committed_height);
        if was != Some(self.committed_height) {
            return;
        }
        let target = self
            .log
            .range(self.committed_height + 1..)
            .filter(|(_, s)| !s.commits.is_empty())
            .map(|(h, _)| *h)
            .next_back();
        if let Some(h) = target {
            let me = self.me;
            let peers: Vec<PublicKey> = self.ctx.committee.members().iter().copied().filter(|k| *k != me).collect();
            self.start_sync(h, peers);
        }
    }

    // ------------------------------------------------------------------ view change (§4.4)

    /// This replica's VIEW-CHANGE for `view`: its stable checkpoint and every prepared certificate
    /// above it. Bodies go only with the certificates above its executed height: a batch it
    /// executed is committed, so the new primary either holds it or fetches the certified block
    /// (see `try_new_view`); sending the whole window's bodies made VIEW-CHANGEs tens of MB under
    /// load and every receiver re-verified them.
    fn build_view_change(&self, view: u64) -> ViewChange {
        let prepared: Vec<PreparedProof> = self
            .safety
            .slots
            .range(self.stable.height + 1..)
            .filter_map(|(h, s)| {
                let mut p = s.prepared.clone()?;
                if *h <= self.executed_height {
                    p.txs = None;
                } else if p.txs.is_none() {
                    let d = p.header.digest(&self.ctx.chain_id);
                    p.txs = self.log.get(h).and_then(|slot| slot.bodies.get(&d).map(|b| b.txs.clone()));
                }
                Some(p)
            })
            .collect();
        ViewChange::sign(&self.ctx.chain_id, &self.key, view, self.stable.clone(), prepared)
    }

    /// Resets what this replica measures per view, on entering `view` in `mode`.
    fn begin_view(&mut self, view: u64, mode: Mode) {
        self.view = view;
        self.mode = mode;
        self.view_started_ms = self.now_ms;
        self.primary_progress_ms = self.now_ms;
        self.view_pre_prepared_height = 0;
        self.view_certified_height = 0;
        self.vc_quorum_since_ms = None;
        self.new_view = None;
        if mode == Mode::Normal {
            self.last_normal_view = view;
        }
    }

    fn start_view_change(&mut self, view: u64) {
        if view <= self.safety.view {
            return;
        }
        self.safety.start_view_change(view).expect("view strictly increases");
        self.dirty = true;
        self.counters.view_changes_started += 1;
        self.send_view_change(view);
    }

    /// Enters view-change mode for `view` (the record already says so) and multicasts this
    /// replica's VIEW-CHANGE for it.
    fn send_view_change(&mut self, view: u64) {
        self.begin_view(view, Mode::ViewChange);
        self.view_change_certified_mark = self.highest_certified_height;
        self.view_change_committed_mark = self.committed_height;
        self.pool.unpropose_all();
        for slot in self.log.values_mut() {
            slot.my_pre_prepare = None;
            slot.my_prepare = None;
        }
        let vc = self.build_view_change(view);
        self.my_view_change = Some(vc.clone());
        self.view_changes.insert(self.me, vc.clone());
        self.broadcast(Message::ViewChange(vc));
        self.note_view_change_quorum();
        self.try_new_view();
    }

    /// Moves to `view`, which the committee is known to be in or moving to: by a VIEW-CHANGE, or,
    /// for the view this replica already promised (an observer), by resuming that view change.
    fn ask_for_view(&mut self, view: u64) {
        if view > self.safety.view {
            self.start_view_change(view);
        } else if view == self.safety.view && self.is_observer() {
            self.resume_view_change();
        }
    }

    /// An observer goes back to waiting for the NEW-VIEW of its promised view and multicasts a
    /// fresh VIEW-CHANGE for it. The fresh one is as truthful as the first: an observer prepares
    /// nothing, so its prepared certificates are the same (minus those a newer stable checkpoint
    /// covers).
    fn resume_view_change(&mut self) {
        self.safety.stop_observing();
        self.dirty = true;
        self.send_view_change(self.safety.view);
    }

    /// Follows `view`, below the promise, as a non-voting observer (see `note_certificate`): it
    /// accepts and stores the view's PRE-PREPAREs, PREPAREs and COMMITs, commits on 2f+1 COMMITs
    /// plus the body, and signs nothing. Its VIEW-CHANGE for the promised view stays truthful, so
    /// the committee may still use it at its next view change.
    fn observe(&mut self, view: u64) {
        self.safety.observe(view).expect("an observed view lies below the promise of an outstanding view change");
        self.dirty = true;
        self.begin_view(view, Mode::Normal);
        self.view_changes.retain(|_, v| v.view > view);
        for slot in self.log.values_mut() {
            slot.my_pre_prepare = None;
            slot.my_prepare = None;
        }
    }

    /// VIEW-CHANGEs held for `view` or above, this replica's own included.
    fn view_changes_at_or_above(&self, view: u64) -> usize {
        self.view_changes.values().filter(|v| v.view >= view).count()
    }

    /// Starts the escalation timer of §4.5.2 once this replica, changing view, holds 2f+1
    /// VIEW-CHANGEs for its view (or above: a sender that moved further has left this view too).
    fn note_view_change_quorum(&mut self) {
        if self.mode == Mode::ViewChange
            && self.vc_quorum_since_ms.is_none()
            && self.view_changes_at_or_above(self.view) >= self.quorum()
        {
            self.vc_quorum_since_ms = Some(self.now_ms);
        }
    }

    /// Hands the NEW-VIEW of the current view to a replica that asked for this view or a lower
    /// one: it missed the NEW-VIEW, or a whole view change (for instance it was cut off, or
    /// waited alone for a view the committee has since passed), and a replica alone does not
    /// escalate to find the committee. At most once per retransmission interval per asker, which
    /// re-sends its VIEW-CHANGE at that pace: a NEW-VIEW can be large.
    fn answer_with_new_view(&mut self, to: PublicKey) {
        let Some(nv) = &self.new_view else { return };
        if to == self.me
            || self
                .new_view_answered_ms
                .get(&to)
                .is_some_and(|t| self.now_ms < t.saturating_add(self.cfg.retransmit_interval_ms))
        {
            return;
        }
        let msg = Message::NewView(nv.clone());
        self.new_view_answered_ms.insert(to, self.now_ms);
        self.out.push(Action::Send { to, msg });
    }

    fn on_view_change(&mut self, vc: ViewChange) {
        if vc.view > self.view.saturating_add(self.cfg.max_views_ahead) {
            self.drop_msg(ConsensusError::FarFutureView {
                view: vc.view,
                current: self.view,
                max_ahead: self.cfg.max_views_ahead,
            });
            return;
        }
        if vc.view > self.view {
            self.help_laggard(&vc);
        }
        if vc.view <= self.view && self.mode == Mode::Normal {
            // A replica still asking for this view, or a lower one, missed the NEW-VIEW that
            // started this view: it gets it again.
            self.answer_with_new_view(vc.from);
            if vc.view < self.view {
                self.drop_msg(ConsensusError::StaleView { view: vc.view, current: self.view });
            }
            return;
        }
        if vc.view < self.view {
            self.drop_msg(ConsensusError::StaleView { view: vc.view, current: self.view });
            return;
        }
        match self.view_changes.get(&vc.from) {
            Some(old) if old.view >= vc.view => return,
            _ => {
                self.view_changes.insert(vc.from, vc);
            }
        }
        // Joining a higher view on f+1 VIEW-CHANGEs (§4.5.2): at least one is honest, so this
        // replica moves to the highest view that f+1 others have asked for. An observer's own
        // VIEW-CHANGE (for its promised view, above the view it follows) is not one of them, and
        // an observer can only go back to voting at or above its promise.
        let (current, me) = (self.view, self.me);
        let mut higher: Vec<u64> =
            self.view_changes.iter().filter(|(k, v)| **k != me && v.view > current).map(|(_, v)| v.view).collect();
        higher.sort_unstable_by(|a, b| b.cmp(a));
        let f1 = self.ctx.committee.weak_quorum();
        if higher.len() >= f1 {
            let target = higher[f1 - 1];
            if target >= self.safety.view && target > current {
                self.ask_for_view(target);
                return;
            }
        }
        self.note_view_change_quorum();
        self.try_new_view();
    }

    /// A replica asking alone for a view above this one may simply be behind: it missed the last
    /// COMMITs before the load stopped, and no checkpoint will come. If this replica's tip is above
    /// the asker's checkpoint, it sends the COMMITs of its tip certificate; with them the asker
    /// sees a certified height above its own and fetches the blocks. One answer per received
    /// VIEW-CHANGE, which the asker re-sends once per retransmission interval.
    fn help_laggard(&mut self, vc: &ViewChange) {
        let Some(Certificate::Pbft(cert)) = &self.tip_certificate else { return };
        if cert.height <= vc.checkpoint.height || vc.from == self.me {
            return;
        }
        for s in &cert.signatures {
            let commit = Commit {
                view: cert.view,
                height: cert.height,
                digest: cert.batch_digest,
                from: s.validator,
                signature: s.signature,
            };
            self.out.push(Action::Send { to: vc.from, msg: Message::Commit(commit) });
        }
    }

    /// The new primary, once it holds 2f+1 VIEW-CHANGEs for its view (its own among them) and
    /// the body of every batch the O-set chooses, sends the NEW-VIEW and enters the view.
    fn try_new_view(&mut self) {
        if self.mode != Mode::ViewChange || !self.is_primary() || !self.view_changes.contains_key(&self.me) {
            return;
        }
        let vcs: Vec<ViewChange> = self.view_changes.values().filter(|v| v.view == self.view).cloned().collect();
        if vcs.len() < self.quorum() {
            return;
        }
        let log = &self.log;
        let lookup = |d: &Hash| log.values().find_map(|s| s.bodies.get(d).map(|b| b.txs.clone()));
        let plan = match compute_plan(&self.ctx.chain_id, &self.ctx.committee, self.view, self.now_ms, &vcs, &lookup) {
            Ok(p) => p,
            Err(_) => {
                // A chosen body is missing. VIEW-CHANGEs leave out the bodies their senders
                // executed, so the batch is committed at those senders: fetch the certified
                // blocks from them (the plan is retried when they arrive). Otherwise wait for
                // more VIEW-CHANGEs, one of which may carry the body.
                self.fetch_missing_bodies(&vcs);
                return;
            }
        };
        let nv = NewView::sign(&self.ctx.chain_id, &self.key, self.view, self.now_ms, &vcs, &plan);
        self.broadcast(Message::NewView(nv.clone()));
        self.enter_new_view(nv, plan);
    }

    /// Starts fetching certified blocks up to the highest prepared certificate in `vcs` whose
    /// body neither a VIEW-CHANGE nor this replica's log holds, from the senders that reported it.
    fn fetch_missing_bodies(&mut self, vcs: &[ViewChange]) {
        let chain_id = &self.ctx.chain_id;
        let attached: BTreeSet<Hash> = vcs
            .iter()
            .flat_map(|v| &v.prepared)
            .filter(|p| p.txs.is_some())
            .map(|p| p.header.digest(chain_id))
            .collect();
        let missing = vcs
            .iter()
            .flat_map(|v| &v.prepared)
            .filter(|p| p.height() > self.committed_height && p.header.tx_count > 0)
            .filter(|p| {
                let d = p.header.digest(chain_id);
                !attached.contains(&d) && self.log.get(&p.height()).is_none_or(|s| !s.bodies.contains_key(&d))
            })
            .map(|p| p.height())
            .max();
        let Some(target) = missing else { return };
        let me = self.me;
        let peers: Vec<PublicKey> = vcs
            .iter()
            .filter(|v| v.from != me && v.prepared.iter().any(|p| p.height() == target))
            .map(|v| v.from)
            .collect();
        self.start_sync(target, peers);
    }

    fn on_new_view(&mut self, nv: NewView) {
        if nv.view < self.view || (nv.view == self.view && self.mode == Mode::Normal) {
            self.drop_msg(ConsensusError::StaleView { view: nv.view, current: self.view });
            return;
        }
        if nv.view > self.view.saturating_add(self.cfg.max_views_ahead) {
            self.drop_msg(ConsensusError::FarFutureView {
                view: nv.view,
                current: self.view,
                max_ahead: self.cfg.max_views_ahead,
            });
            return;
        }
        let plan = match nv.plan(&self.ctx.chain_id, &self.ctx.committee) {
            Ok(p) => p,
            Err(reason) => {
                self.drop_msg(ConsensusError::BadNewView { view: nv.view, reason });
                return;
            }
        };
        self.enter_new_view(nv, plan);
    }

    /// Enters `view` with the O-set `plan`: every re-proposed or empty batch is pre-prepared in
    /// the new view, and the backups prepare it as if the PRE-PREPARE had just arrived.
    ///
    /// A view below this replica's promise (an observer learning of the committee's next view
    /// before it reaches the promise) is followed as an observer: the O-set is stored, not
    /// prepared.
    fn enter_new_view(&mut self, nv: NewView, plan: NewViewPlan) {
        let view = nv.view;
        let pre_prepare_signatures = nv.pre_prepare_signatures.clone();
        assert_eq!(plan.batches.len(), pre_prepare_signatures.len(), "one pre-prepare signature per O-set entry");
        let voting = view >= self.safety.view;
        if voting {
            self.safety.enter_view(view).expect("NEW-VIEW views never go below the record");
            self.my_view_change = None;
        } else {
            self.safety.observe(view).expect("an observer follows views below its promise");
        }
        self.dirty = true;
        self.begin_view(view, Mode::Normal);
        self.new_view = Some(nv);
        self.counters.new_views_accepted += 1;
        self.view_changes.retain(|_, v| v.view > view);
        if plan.checkpoint.height > self.stable.height {
            self.stabilize(plan.checkpoint.clone());
        }
        for slot in self.log.values_mut() {
            slot.accepted = None;
            slot.my_pre_prepare = None;
            slot.my_prepare = None;
        }
        self.pool.unpropose_all();
        let primary = self.is_primary();
        let max_sets = self.cfg.slot_max_vote_sets;
        let max_planned = plan.batches.last().map_or(0, |b| b.header.height);
        for (batch, sig) in plan.batches.into_iter().zip(&pre_prepare_signatures) {
            let h = batch.header.height;
            if h <= self.stable.height {
                continue;
            }
            let d = batch.digest(&self.ctx.chain_id);
            if let Some(prev) = self.committed_digests.get(&h) {
                assert_eq!(
                    *prev, d,
                    "agreement violated: the new view re-proposes a different batch at committed height {h}"
                );
            }
            for tx in &batch.txs {
                self.pool.mark_proposed(&tx.id());
            }
            let header = batch.header;
            let slot = self.log.entry(h).or_default();
            slot.accepted = Some(Accepted { view, digest: d, header, primary_signature: *sig });
            slot.bodies.insert(d, batch);
            if !voting {
                continue;
            }
            if !primary {
                if let Err(e) = self.safety.vote_prepare(view, h, d) {
                    self.drop_msg(e);
                    continue;
                }
                let prepare = Prepare::sign(&self.ctx.chain_id, &self.key, view, h, d);
                let slot = self.log.get_mut(&h).expect("slot exists");
                insert_vote(&mut slot.prepares, (view, d), self.me, prepare.signature, max_sets);
                slot.my_prepare = Some(prepare.clone());
                self.broadcast(Message::Prepare(prepare));
            } else if let Err(e) = self.safety.vote_prepare(view, h, d) {
                self.drop_msg(e);
            }
            self.check_prepared(h);
        }
        self.next_height = max_planned.max(self.stable.height).max(self.committed_height) + 1;
        self.try_propose();
    }

    // ------------------------------------------------------------------ timers

    fn on_tick(&mut self) {
        self.try_propose();
        match self.mode {
            Mode::Normal => {
                // A replica holding a transaction not ordered within its timeout suspects the
                // primary (§4.4). The timer restarts whenever the view starts and whenever the
                // primary shows progress (a PRE-PREPARE for a new height, a new height certified
                // in this view): under a backlog the oldest transaction may wait far longer than
                // the timeout while the primary makes steady progress, and a backup behind on its
                // own work must not take its own lag for a faulty primary.
                // A replica whose next height is certified but not yet committed here (it waits
                // for the body, or for its fetch) is behind the committee: its pending
                // transactions may well be in that batch, and its lag is its own.
                if self.next_height_certified() {
                    self.primary_progress_ms = self.now_ms;
                }
                if let Some(oldest) = self.pool.oldest_arrival_ms() {
                    let since = oldest.max(self.view_started_ms).max(self.primary_progress_ms);
                    if self.now_ms >= since + self.timeout_ms() {
                        // An observer never asks for a view below its promise: it goes back to
                        // the view change it promised, so that a committee whose primary failed
                        // (or a committee of observers) gets its VIEW-CHANGE again.
                        self.ask_for_view((self.view + 1).max(self.safety.view));
                    }
                }
            }
            Mode::ViewChange => {
                // §4.5.2: the NEW-VIEW timer starts only once 2f+1 VIEW-CHANGEs for this view are
                // in; when it expires the replica moves on to the next view, waiting twice as
                // long. A replica alone never holds 2f+1, so it never escalates past the view it
                // first asked for: a backup whose own backlog made it suspect a healthy primary
                // stays one view ahead, where a certificate from the committee brings it back.
                if let Some(since) = self.vc_quorum_since_ms {
                    if self.now_ms >= since + self.timeout_ms() {
                        if self.pool.txs.is_empty() {
                            // Nothing waits on this view change: keep waiting without escalating.
                            self.vc_quorum_since_ms = Some(self.now_ms);
                        } else {
                            self.backoff = self.backoff.saturating_add(1);
                            self.start_view_change(self.view + 1);
                        }
                    }
                }
            }
        }
        if self.now_ms >= self.last_retransmit_ms + self.cfg.retransmit_interval_ms {
            self.last_retransmit_ms = self.now_ms;
            self.retransmit();
        }
    }

    /// Re-sends this replica's own messages for sequences still in flight, its VIEW-CHANGE while
    /// waiting for a NEW-VIEW, and retries or starts a catch-up. Lost messages are recovered
    /// this way, at a cost bounded by the watermark window.
    fn retransmit(&mut self) {
        if let Some(vc) = &self.my_view_change {
            if self.mode == Mode::ViewChange {
                self.out.push(Action::Broadcast(Message::ViewChange(vc.clone())));
            }
        }
        let n = self.ctx.committee.n();
        let mut msgs = Vec::new();
        if self.stable.height > 0 && self.executed_height >= self.stable.height {
            // Re-signing the stable checkpoint is truthful: this replica executed that height and
            // its hash matched. A restarted replica has no CHECKPOINT message of its own to re-send,
            // and one that executed a newer checkpoint holds that one instead.
            let stable = match &self.my_checkpoint {
                Some(c) if c.height == self.stable.height => c.clone(),
                _ => Checkpoint::sign(&self.ctx.chain_id, &self.key, self.stable.height, self.stable.block_hash),
            };
            msgs.push(Message::Checkpoint(stable));
        }
        if let Some(c) = self.my_checkpoint.as_ref().filter(|c| c.height > self.stable.height) {
            // Its newest checkpoint, not stable yet: re-sending it is what makes it stable when the
            // first copies were lost. Re-sending only the stable one left replicas at different
            // stable checkpoints for good, and a laggard behind both found 2f+1 matching at neither
            // (simulation, twins_crash seed 5000047).
            msgs.push(Message::Checkpoint(c.clone()));
        }
        for slot in self.log.range(self.committed_height.min(self.stable.height) + 1..).map(|(_, s)| s) {
            if slot.committed.is_none() {
                if let Some(pp) = &slot.my_pre_prepare {
                    msgs.push(Message::PrePrepare(pp.clone()));
                }
                if let Some(p) = &slot.my_prepare {
                    msgs.push(Message::Prepare(p.clone()));
                }
            }
            if let Some(c) = &slot.my_commit {
                if slot.commits.get(&(c.view, c.digest)).is_none_or(|v| v.len() < n) {
                    msgs.push(Message::Commit(c.clone()));
                }
            }
        }
        for m in msgs {
            self.broadcast(m);
        }
        if self.sync.as_ref().is_some_and(|s| s.target <= self.committed_height) {
            // Reached by ordinary commits meanwhile.
            self.sync = None;
        }
        match &self.sync {
            Some(s) if self.now_ms >= s.requested_ms + self.cfg.retransmit_interval_ms => self.request_blocks(),
            Some(_) => {}
            None => self.check_stuck(),
        }
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
            out.insert(0, Action::PersistSafety(self.safety.encode(self.executed_height)));
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
