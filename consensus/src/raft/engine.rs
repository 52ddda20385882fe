//! The Raft engine: raft-rs's `RawNode` (the Rust port of etcd/raft) behind [`Consensus`],
//! pure like the PBFT replica. Time comes only from `Input::Tick` (one raft-rs tick per
//! heartbeat interval), and every election timeout raft-rs would draw from `thread_rng` is
//! replaced, at once, by one drawn from the engine's seeded ChaCha generator, so a simulation
//! replays exactly.
//!
//! What the engine adds to raft-rs:
//! - **Durability in order.** Each `Ready` becomes one `Action::PersistLog` (new entries, hard
//!   state with the commit index, an installed base) that comes before every message that
//!   depends on it (`persisted_messages`: a follower's acknowledgement, a vote after a term or
//!   vote change); only the leader's own messages may leave first (raft thesis §10.2.1). A commit
//!   index is persisted with or before the `Commit` actions that apply it.
//! - **Blocks.** The leader cuts batches from its pool, at most `max_in_flight` proposed and not
//!   applied, signs the protocol §6 Raft certificate for (term, height, batch_digest) and
//!   proposes the whole batch as one entry. A new leader cuts nothing until its own no-op entry
//!   is applied and everything before it executed, so it knows the chain's height exactly.
//! - **Heights.** Applying the committed log is a deterministic fold: an entry whose height is
//!   the next one extends the chain; any other batch entry (a stale leader's duplicate) is
//!   skipped by every node alike, and its transactions stay pooled.
//! - **Compaction and catch-up.** The log is compacted only at executed heights, keeping a
//!   margin. raft-rs's snapshot carries only that base's (index, term, height); a follower
//!   behind it fetches the certified blocks (`Action::FetchBlocks`) and accepts the snapshot once
//!   it holds them. No block travels inside a snapshot, so none that is not durable can.
//! - **No raft-rs panic from outside.** Messages that would make raft-rs panic (a commit index
//!   beyond this log: the "tocommit out of range" of a node whose data was wiped; entries
//!   conflicting with committed ones; responses about entries this log does not have) are
//!   refused with a reason (`last_drop`).

use std::collections::BTreeMap;

use ::raft::eraftpb::{Entry, Message, MessageType};
use ::raft::{RawNode, SnapshotStatus, StateRole};
use ordo_chain::cert::{raft_block_bytes, Certificate, RaftCertificate};
use ordo_chain::store::{LogWrite, StoredLog};
use ordo_chain::{BatchHeader, Hash, Keypair, PublicKey};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::message::{decode_snapshot_height, EntryBatch, RaftKind, RaftMessage};
use super::storage::{encode_entry, EngineLog, LogBase};
use super::verify::{check_batch, RaftVerifyContext};
use crate::config::RaftConfig;
use crate::error::{ConsensusError, Result};
use crate::interface::{Action, CommittedBatch, Consensus, Input, Mode, Status};
use crate::pool::TxPool;

/// What the node restores an engine from (also at first start, with an empty log).
#[derive(Debug, Clone)]
pub struct RaftRestore {
    /// `Store::load_log()`.
    pub log: StoredLog,
    /// The newest stored block: its height and hash. Entries at or below it are not applied
    /// again.
    pub executed_height: u64,
    pub executed_hash: Hash,
}

/// Counters for metrics and the simulation's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RaftCounters {
    /// Times this node became leader.
    pub elected: u64,
    pub batches_proposed: u64,
    /// Committed batch entries skipped because their height was not the next one.
    pub stale_entries_skipped: u64,
    pub messages_dropped: u64,
    pub fetches: u64,
    pub snapshots_installed: u64,
    pub compactions: u64,
}

/// Test-only switches that plant known bugs, so the simulation can show that its checker
/// catches each one (docs/consensus.md, "Planted bugs"). All off by default.
#[cfg(any(test, feature = "sim"))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RaftFaults {
    /// Send a follower's acknowledgements (and votes) before the `PersistLog` they depend on.
    pub ack_before_persist: bool,
    /// Restore the hard state without the vote, so a restarted node may vote again in a term
    /// it already voted in.
    pub forget_vote_on_restart: bool,
    /// Not a bug but a stress: the leader proposes, before every third batch, a copy of the
    /// chain's newest block at its (already used) height, re-signed for the current term. Every
    /// node must skip it alike.
    pub stale_proposals: bool,
}

#[derive(Debug)]
struct InFlight {
    height: u64,
    ids: Vec<Hash>,
}

/// This node's current leadership.
#[derive(Debug)]
struct Leading {
    term: u64,
    /// The index of the first entry of the term (raft-rs's no-op).
    noop_index: u64,
    /// The no-op is applied and everything before it executed: heights are known.
    ready: bool,
}

/// An ongoing catch-up: certified blocks up to `target` are being fetched from `from`.
#[derive(Debug)]
struct Sync {
    target: u64,
    from: PublicKey,
    requested_ms: u64,
}

pub struct RaftEngine {
    cfg: RaftConfig,
    ctx: RaftVerifyContext,
    key: Keypair,
    me: PublicKey,
    id: u64,
    voters: Vec<u64>,
    raw: RawNode<EngineLog>,
    rng: ChaCha8Rng,
    /// (term, role) and the timeout when the election timeout was last drawn here.
    timeout_mark: (u64, StateRole, usize),
    now_ms: u64,
    /// The time of the last raft-rs tick.
    tick_origin_ms: Option<u64>,
    /// The chain height the applied log has reached (the fold over committed entries).
    log_height: u64,
    applied_index: u64,
    /// The highest height handed to the node (`Commit`), and the highest it executed.
    committed_height: u64,
    executed_height: u64,
    /// Applied batch entries above the base: index -> height (compaction points).
    heights: BTreeMap<u64, u64>,
    /// Digests of the committed heights above the base, to assert that the log and fetched
    /// blocks agree.
    committed_digests: BTreeMap<u64, Hash>,
    pool: TxPool,
    /// This leader's proposals not yet applied, by index.
    in_flight: BTreeMap<u64, InFlight>,
    leading: Option<Leading>,
    sync: Option<Sync>,
    /// Snapshots raft-rs sent, reported back after the Ready is advanced.
    snapshot_reports: Vec<u64>,
    last_status: Status,
    out: Vec<Action<RaftMessage>>,
    counters: RaftCounters,
    last_drop: Option<ConsensusError>,
    #[cfg(any(test, feature = "sim"))]
    faults: RaftFaults,
}

/// How many committed digests the engine keeps to assert that its log agrees with the chain.
const COMMITTED_DIGESTS_MAX: usize = 4096;

fn discard_logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

impl RaftEngine {
    /// Starts or restarts the engine of validator `key`. `seed` feeds every election timeout;
    /// the node may pass any value (its own entropy), the simulation a fixed one.
    pub fn new(
        config: RaftConfig,
        ctx: RaftVerifyContext,
        key: Keypair,
        restore: RaftRestore,
        seed: u64,
        now_ms: u64,
    ) -> Result<Self> {
        Self::build(config, ctx, key, restore, seed, now_ms, false)
    }

    /// Like [`RaftEngine::new`], with planted bugs switched on (tests and the simulation only).
    #[cfg(any(test, feature = "sim"))]
    pub fn with_faults(
        config: RaftConfig,
        ctx: RaftVerifyContext,
        key: Keypair,
        restore: RaftRestore,
        seed: u64,
        now_ms: u64,
        faults: RaftFaults,
    ) -> Result<Self> {
        let mut e = Self::build(config, ctx, key, restore, seed, now_ms, faults.forget_vote_on_restart)?;
        e.faults = faults;
        Ok(e)
    }

    fn build(
        config: RaftConfig,
        ctx: RaftVerifyContext,
        key: Keypair,
        restore: RaftRestore,
        seed: u64,
        now_ms: u64,
        forget_vote: bool,
    ) -> Result<Self> {
        config.validate()?;
        let me = key.public();
        let id = ctx.raft_id(&me).ok_or_else(|| ConsensusError::Config(format!("{me} is not a validator")))?;
        let voters = ctx.voters();
        let mut log = EngineLog::restore(voters.clone(), &restore.log)?;
        if forget_vote {
            log.hard.vote = 0;
        }
        let base = log.base;
        if base.height > restore.executed_height {
            return Err(ConsensusError::CorruptRaftLog(format!(
                "the log is compacted at height {}, above the newest stored block {}",
                base.height, restore.executed_height
            )));
        }
        let rc = ::raft::Config {
            id,
            election_tick: config.election_ticks(),
            heartbeat_tick: 1,
            applied: base.index,
            max_size_per_msg: config.batch_max_bytes as u64,
            max_inflight_msgs: config.max_inflight_msgs,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        rc.validate().map_err(|e| ConsensusError::Config(e.to_string()))?;
        let raw = RawNode::new(&rc, log, &discard_logger()).map_err(|e| ConsensusError::Config(e.to_string()))?;
        let pool = TxPool::new(&key);
        let rng = ChaCha8Rng::seed_from_u64(seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let last_status = Status {
            view: 0,
            leader: None,
            mode: Mode::ViewChange,
            committed_height: restore.executed_height,
            executed_height: restore.executed_height,
            stable_height: base.height,
            pending_txs: 0,
        };
        let mut engine = RaftEngine {
            cfg: config,
            ctx,
            key,
            me,
            id,
            voters,
            raw,
            rng,
            timeout_mark: (u64::MAX, StateRole::Leader, 0),
            now_ms,
            tick_origin_ms: None,
            log_height: base.height,
            applied_index: base.index,
            committed_height: restore.executed_height,
            executed_height: restore.executed_height,
            heights: BTreeMap::new(),
            committed_digests: BTreeMap::new(),
            pool,
            in_flight: BTreeMap::new(),
            leading: None,
            sync: None,
            snapshot_reports: Vec::new(),
            last_status,
            out: Vec::new(),
            counters: RaftCounters::default(),
            last_drop: None,
            #[cfg(any(test, feature = "sim"))]
            faults: RaftFaults::default(),
        };
        engine.redraw_timeout();
        engine.last_status = engine.status_now();
        Ok(engine)
    }

    pub fn counters(&self) -> RaftCounters {
        self.counters
    }

    /// Why the last refused message was refused.
    pub fn last_drop(&self) -> Option<&ConsensusError> {
        self.last_drop.as_ref()
    }

    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The chain height the applied log has reached.
    pub fn log_height(&self) -> u64 {
        self.log_height
    }

    /// raft-rs's commit index.
    pub fn committed_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// The term of the entry at `index`, if this node's log holds it (its base included).
    pub fn term_at(&self, index: u64) -> Option<u64> {
        self.raw.raft.raft_log.term(index).ok().filter(|_| index >= self.raw.store().base.index)
    }

    /// The log's base (compaction point or installed snapshot): raft (index, term) and height.
    pub fn log_base(&self) -> LogBase {
        self.raw.store().base
    }

    /// This node's raft id (genesis index + 1).
    pub fn raft_id(&self) -> u64 {
        self.id
    }

    fn status_now(&self) -> Status {
        let leader = match self.raw.raft.leader_id {
            0 => None,
            id => self.ctx.validator(id),
        };
        Status {
            view: self.raw.raft.term,
            leader,
            mode: if leader.is_some() { Mode::Normal } else { Mode::ViewChange },
            committed_height: self.committed_height,
            executed_height: self.executed_height,
            stable_height: self.raw.store().base.height,
            pending_txs: self.pool.len(),
        }
    }

    fn drop_msg(&mut self, e: ConsensusError) {
        self.counters.messages_dropped += 1;
        self.last_drop = Some(e);
    }

    /// raft-rs draws a new election timeout from `thread_rng` whenever it resets (on every
    /// change of term or role). Right after any call into it, a changed (term, role), or a
    /// timeout that is not the one drawn here, is replaced by one from the seeded generator.
    fn redraw_timeout(&mut self) {
        let r = &self.raw.raft;
        let mark = (r.term, r.state, r.randomized_election_timeout());
        if mark == self.timeout_mark {
            return;
        }
        let min = self.cfg.election_ticks();
        let t = min + (self.rng.next_u64() % min as u64) as usize;
        self.raw.raft.set_randomized_election_timeout(t);
        self.timeout_mark = (mark.0, mark.1, t);
    }

    // ---- Inputs ----

    fn on_message(&mut self, msg: RaftMessage) {
        if msg.to != self.id {
            return self.drop_msg(ConsensusError::RaftRefused(format!("addressed to raft id {}", msg.to)));
        }
        let log = &self.raw.raft.raft_log;
        let (last, committed, base) = (log.last_index(), log.committed, self.raw.store().base);
        match msg.kind {
            RaftKind::Heartbeat if msg.commit > last => {
                return self.drop_msg(ConsensusError::RaftRefused(format!(
                    "heartbeat from raft id {} commits index {}, beyond this log's last index {last}: this node \
                     lost entries it had acknowledged (a wiped data directory?)",
                    msg.from, msg.commit
                )));
            }
            RaftKind::Append => {
                if msg.index >= base.index && msg.log_term < base.term {
                    return self.drop_msg(ConsensusError::RaftRefused(format!(
                        "append after index {} of term {} is below this log's base term {}",
                        msg.index, msg.log_term, base.term
                    )));
                }
                for e in &msg.entries {
                    if e.index > base.index && e.index <= committed && log.term(e.index).ok() != Some(e.term) {
                        return self.drop_msg(ConsensusError::RaftRefused(format!(
                            "append rewrites committed entry {} (term {} here, {} in the message)",
                            e.index,
                            log.term(e.index).unwrap_or(0),
                            e.term
                        )));
                    }
                }
            }
            RaftKind::AppendResponse if !msg.reject && msg.index > last => {
                return self.drop_msg(ConsensusError::RaftRefused(format!(
                    "raft id {} acknowledges index {}, beyond this log's last index {last}",
                    msg.from, msg.index
                )));
            }
            RaftKind::Snapshot => {
                let s = msg.snapshot.expect("verified: a snapshot message carries one");
                if s.height > self.committed_height {
                    // Fetch the certified blocks first; raft-rs's leader sends the snapshot
                    // again until this node takes it.
                    let from = self.ctx.validator(msg.from).expect("verified sender");
                    self.request_fetch(from, s.height);
                    return;
                }
            }
            _ => {}
        }
        let m = msg.to_raft(&self.voters);
        let result = self.raw.step(m);
        self.redraw_timeout();
        if let Err(e) = result {
            self.drop_msg(ConsensusError::RaftRefused(e.to_string()));
        }
    }

    fn on_tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let hb = self.cfg.heartbeat_interval_ms;
        let origin = *self.tick_origin_ms.get_or_insert(self.now_ms);
        let due = (self.now_ms - origin) / hb;
        // A clock that jumped (a paused process) costs at most two election timeouts of ticks.
        let ticks = due.min(2 * self.cfg.election_ticks() as u64 + 1);
        for _ in 0..ticks {
            self.raw.tick();
            self.redraw_timeout();
        }
        self.tick_origin_ms = Some(origin + due * hb);
        if self.sync.as_ref().is_some_and(|s| self.now_ms >= s.requested_ms + self.cfg.fetch_retry_ms) {
            // No answer: the next snapshot from the leader starts a new fetch.
            self.sync = None;
        }
    }

    fn on_executed(&mut self, height: u64) {
        assert!(height <= self.committed_height, "executed {height} beyond the committed {}", self.committed_height);
        self.executed_height = self.executed_height.max(height);
    }

    fn on_synced(&mut self, blocks: Vec<CommittedBatch>) {
        let mut blocks = blocks;
        blocks.sort_by_key(|b| b.header.height);
        for b in blocks {
            if b.header.height == self.committed_height + 1 {
                self.commit(b);
            }
        }
        if let Some(s) = self.sync.take() {
            if self.committed_height < s.target {
                self.request_fetch(s.from, s.target);
            }
        }
    }

    fn request_fetch(&mut self, from: PublicKey, target: u64) {
        if self.sync.is_some() || target <= self.committed_height {
            return;
        }
        let to_height = target.min(self.committed_height + self.cfg.fetch_max_blocks);
        self.counters.fetches += 1;
        self.sync = Some(Sync { target, from, requested_ms: self.now_ms });
        self.out.push(Action::FetchBlocks { from, from_height: self.committed_height + 1, to_height });
    }

    // ---- Ready processing ----

    fn send(&mut self, m: Message) {
        if m.get_msg_type() == MessageType::MsgSnapshot {
            self.snapshot_reports.push(m.to);
        }
        let (Some(mut msg), Some(to)) = (RaftMessage::from_raft(&m), self.ctx.validator(m.to)) else {
            return;
        };
        // raft-rs bounds an append by bytes only; receivers also refuse more than
        // `message_max_entries` entries. A prefix of an append is itself a valid append: the
        // follower acknowledges what it got and the leader sends the rest.
        msg.entries.truncate(self.cfg.message_max_entries);
        self.out.push(Action::Send { to, msg });
    }

    fn process_ready(&mut self) {
        while self.raw.has_ready() {
            let mut rd = self.raw.ready();
            // The leader's own messages may leave before its write (raft thesis §10.2.1).
            for m in rd.take_messages() {
                self.send(m);
            }
            let mut w = LogWrite::default();
            let mut meta_changed = false;
            if !rd.snapshot().is_empty() {
                let s = rd.snapshot();
                let height = decode_snapshot_height(&s.data).expect("snapshots carry a height");
                let base = LogBase { index: s.get_metadata().index, term: s.get_metadata().term, height };
                self.install(base);
                w.truncate_from = Some(0);
                meta_changed = true;
            }
            let entries = rd.take_entries();
            if let Some(first) = entries.first() {
                self.raw.mut_store().append(&entries);
                w.truncate_from = Some(w.truncate_from.map_or(first.index, |t| t.min(first.index)));
                w.append = entries.iter().map(|e| (e.index, encode_entry(e))).collect();
            }
            if let Some(hs) = rd.hs() {
                self.raw.mut_store().hard = hs.clone();
                meta_changed = true;
            }
            if meta_changed {
                w.meta = Some(self.raw.store().meta_record());
            }
            let persisted = rd.take_persisted_messages();
            #[cfg(any(test, feature = "sim"))]
            let persisted = if self.faults.ack_before_persist {
                for m in persisted {
                    self.send(m);
                }
                Vec::new()
            } else {
                persisted
            };
            if !w.is_empty() {
                self.out.push(Action::PersistLog(w));
            }
            for m in persisted {
                self.send(m);
            }
            let committed = rd.take_committed_entries();
            self.apply(committed);
            let mut light = self.raw.advance(rd);
            if let Some(commit) = light.commit_index() {
                self.raw.mut_store().hard.commit = commit;
                let meta = self.raw.store().meta_record();
                self.out.push(Action::PersistLog(LogWrite { meta: Some(meta), ..Default::default() }));
            }
            for m in light.take_messages() {
                self.send(m);
            }
            let committed = light.take_committed_entries();
            self.apply(committed);
            self.raw.advance_apply();
            for to in std::mem::take(&mut self.snapshot_reports) {
                // Sending is fire-and-forget: let raft-rs probe again, which re-sends the
                // snapshot until the follower (which may be fetching blocks) takes it.
                self.raw.report_snapshot(to, SnapshotStatus::Finish);
            }
            self.redraw_timeout();
            self.check_role();
        }
        self.check_role();
    }

    /// The log was replaced by a leader's base (a snapshot of metadata only).
    fn install(&mut self, base: LogBase) {
        assert!(
            base.height <= self.committed_height,
            "a snapshot at height {} is installed only once its blocks are here (committed {})",
            base.height,
            self.committed_height
        );
        self.raw.mut_store().install(base);
        self.log_height = base.height;
        self.applied_index = base.index;
        self.heights.clear();
        self.in_flight.clear();
        self.counters.snapshots_installed += 1;
    }

    /// The fold over committed entries, in log order.
    fn apply(&mut self, entries: Vec<Entry>) {
        for e in entries {
            if e.index <= self.applied_index {
                continue;
            }
            assert_eq!(e.index, self.applied_index + 1, "committed entries are applied in order without gaps");
            self.applied_index = e.index;
            if e.data.is_empty() {
                continue; // A leader's no-op.
            }
            let batch = EntryBatch::decode(&e.data, usize::MAX).expect("entries in the log were verified");
            let txs = check_batch(&self.ctx, &batch, e.term).expect("entries in the log were verified");
            let height = batch.header.height;
            let mine = self.in_flight.remove(&e.index);
            if height != self.log_height + 1 {
                // A stale duplicate (or a batch after one): skipped alike by every node.
                self.counters.stale_entries_skipped += 1;
                if let Some(m) = mine {
                    self.pool.unpropose(&m.ids);
                }
                continue;
            }
            self.log_height = height;
            self.heights.insert(e.index, height);
            let digest = batch.header.digest(&self.ctx.chain_id);
            if height <= self.committed_height {
                // Already executed (a restart) or fetched: the same batch, or agreement broke.
                if let Some(d) = self.committed_digests.get(&height) {
                    assert_eq!(*d, digest, "the log and the committed chain disagree at height {height}");
                }
                continue;
            }
            self.commit(CommittedBatch {
                header: batch.header,
                txs,
                certificate: Certificate::Raft(batch.certificate),
            });
        }
    }

    fn commit(&mut self, b: CommittedBatch) {
        assert_eq!(b.header.height, self.committed_height + 1, "commits in height order without gaps");
        self.committed_height = b.header.height;
        self.committed_digests.insert(b.header.height, b.header.digest(&self.ctx.chain_id));
        // Bounded even when nothing is compacted (a follower catching up by fetching blocks).
        while self.committed_digests.len() > COMMITTED_DIGESTS_MAX {
            self.committed_digests.pop_first();
        }
        for tx in &b.txs {
            self.pool.remove(&tx.id());
        }
        self.out.push(Action::Commit(b));
    }

    /// Notices a change of leadership.
    fn check_role(&mut self) {
        let (term, state) = (self.raw.raft.term, self.raw.raft.state);
        if state == StateRole::Leader {
            if self.leading.as_ref().is_some_and(|l| l.term == term) {
                return;
            }
            let log = &self.raw.raft.raft_log;
            let mut noop_index = log.last_index();
            while noop_index > log.first_index() && log.term(noop_index - 1).ok() == Some(term) {
                noop_index -= 1;
            }
            self.counters.elected += 1;
            self.leading = Some(Leading { term, noop_index, ready: false });
            self.in_flight.clear();
            self.pool.unpropose_all();
        } else if self.leading.take().is_some() {
            self.in_flight.clear();
            self.pool.unpropose_all();
        }
    }

    // ---- The leader ----

    fn maybe_propose(&mut self) {
        let (applied, executed, committed) = (self.applied_index, self.executed_height, self.committed_height);
        let Some(leading) = &mut self.leading else { return };
        if !leading.ready {
            if applied < leading.noop_index || executed < committed {
                return;
            }
            leading.ready = true;
        }
        let term = leading.term;
        while self.in_flight.len() < self.cfg.max_in_flight && self.pool.unproposed_count() > 0 {
            let full = self.pool.full_batch(self.cfg.batch_max_txs, self.cfg.batch_max_bytes);
            let due = self.pool.oldest_unproposed_ms().is_some_and(|t| t + self.cfg.batch_timeout_ms <= self.now_ms);
            if !full && !due {
                break;
            }
            #[cfg(any(test, feature = "sim"))]
            if self.faults.stale_proposals && self.counters.batches_proposed % 3 == 2 {
                self.propose_stale_copy(term);
            }
            let height = self.in_flight.values().next_back().map_or(self.log_height, |f| f.height) + 1;
            let txs = self.pool.cut(self.cfg.batch_max_txs, self.cfg.batch_max_bytes);
            let header = BatchHeader::for_txs(height, self.now_ms, self.me, &txs);
            let certificate = self.sign(term, &header);
            let data = EntryBatch::encode(&header, &txs, &certificate);
            let ids: Vec<Hash> = txs.iter().map(|t| t.id()).collect();
            if self.raw.propose(Vec::new(), data).is_err() {
                self.pool.unpropose(&ids);
                break;
            }
            self.counters.batches_proposed += 1;
            let index = self.raw.raft.raft_log.last_index();
            self.in_flight.insert(index, InFlight { height, ids });
        }
    }

    fn sign(&self, term: u64, header: &BatchHeader) -> RaftCertificate {
        let digest = header.digest(&self.ctx.chain_id);
        RaftCertificate {
            term,
            height: header.height,
            batch_digest: digest,
            leader: self.me,
            signature: self.key.sign(&raft_block_bytes(&self.ctx.chain_id, term, header.height, &digest)),
        }
    }

    /// See [`RaftFaults::stale_proposals`]: an empty batch at the newest used height.
    #[cfg(any(test, feature = "sim"))]
    fn propose_stale_copy(&mut self, term: u64) {
        let height = self.in_flight.values().next_back().map_or(self.log_height, |f| f.height);
        if height == 0 {
            return;
        }
        let header = BatchHeader::for_txs(height, self.now_ms, self.me, &[]);
        let certificate = self.sign(term, &header);
        let data = EntryBatch::encode(&header, &[], &certificate);
        let _ = self.raw.propose(Vec::new(), data);
    }

    // ---- Compaction ----

    /// Compacts the log at an executed height, keeping `compact_margin_entries` heights.
    fn maybe_compact(&mut self) {
        let keep_from = self.executed_height.saturating_sub(self.cfg.compact_margin_entries);
        let base = self.raw.store().base;
        let Some((&index, &height)) = self.heights.iter().rev().find(|(_, h)| **h <= keep_from) else { return };
        if index - base.index < self.cfg.compact_threshold_entries || index > self.applied_index {
            return;
        }
        self.raw.mut_store().compact(index, height);
        self.heights = self.heights.split_off(&(index + 1));
        self.committed_digests = self.committed_digests.split_off(&(height + 1));
        self.counters.compactions += 1;
        let meta = self.raw.store().meta_record();
        self.out.push(Action::PersistLog(LogWrite {
            meta: Some(meta),
            delete_below: Some(index + 1),
            ..Default::default()
        }));
    }
}

impl Consensus for RaftEngine {
    type Message = RaftMessage;

    fn handle(&mut self, input: Input<RaftMessage>) -> Vec<Action<RaftMessage>> {
        match input {
            Input::ClientTxs(txs) => {
                for tx in txs {
                    self.pool.insert(tx, self.now_ms, self.cfg.pool_max_txs, self.cfg.pool_max_bytes);
                }
            }
            Input::Message(m) => self.on_message(m.into_inner()),
            Input::Tick { now_ms } => self.on_tick(now_ms),
            Input::Executed { height, .. } => self.on_executed(height),
            Input::SyncedBlocks(blocks) => self.on_synced(blocks.into_iter().map(|b| b.into_inner()).collect()),
        }
        self.process_ready();
        self.maybe_propose();
        self.process_ready();
        self.maybe_compact();
        let status = self.status_now();
        if (status.view, status.leader, status.mode)
            != (self.last_status.view, self.last_status.leader, self.last_status.mode)
        {
            self.out.push(Action::StatusChanged(status));
        }
        self.last_status = status;
        std::mem::take(&mut self.out)
    }

    fn status(&self) -> Status {
        self.status_now()
    }

    fn quorum(&self) -> usize {
        self.ctx.committee.majority()
    }
}
