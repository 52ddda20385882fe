//! The deterministic simulation of the Raft engine (feature `sim`), with the discipline of the
//! PBFT one (`crate::sim`): one thread, a seeded ChaCha RNG, a virtual clock and an ordered
//! event queue drive n Raft engines, each with its own `MemStore`. The harness plays the node:
//! it executes each engine's actions strictly in order, writing `PersistLog` with
//! `Store::write_log`, building blocks with `Block::build` and storing them, reporting
//! `Executed`, and serving `FetchBlocks` from a peer's store through `raft::verify_block`. Every
//! message is encoded, decoded and verified (`raft::decode_and_verify`, with the transport's
//! authenticated sender) before delivery.
//!
//! Faults: message loss, duplication, delay (hence reordering); symmetric, one-way,
//! leader-isolating and minority/majority partitions; crashes between two inputs or between any
//! two actions of one action list (what was not yet executed is lost, and so is every write not
//! synced); a leader cut off from all but one follower, so its newest entries reach a minority
//! only, then crashed; a follower cut off until the others compacted past it.
//!
//! Checks after every event: one chain (one hash per height on every node); a committed raft
//! entry never changes (same term at an index once committed anywhere); at most one leader per
//! term; commits in height order without gaps; each transaction applied at most once, and only
//! submitted ones; every certificate verifies, for a term the committing node has reached.
//! Liveness: once healed (every node up, no faults), every submitted transaction commits at
//! every node within `LIVENESS_BOUND_MS`.
//!
//! The same (scenario, seed) always produces the same event trace; its hash is in the report.

pub mod scenarios;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::rc::Rc;

use ordo_chain::cert::{CertKind, Certificate};
use ordo_chain::store::{MemStore, Store};
use ordo_chain::tx::TxResult;
use ordo_chain::{Block, Committee, Hash, Keypair, Op, PublicKey, Transaction, TxRules, VerifiedTx};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::config::RaftConfig;
use crate::interface::{Action, CommittedBatch, Consensus, Input};
use crate::raft::{decode_and_verify, verify_block, RaftEngine, RaftMessage, RaftRestore, RaftVerifyContext};
use crate::verified::Verified;

pub use scenarios::{RaftPartition, RaftScenario};

pub const CHAIN_ID: &str = "ordo-raft-sim";
const GENESIS_TIME_MS: u64 = 1_764_288_000_000;
const TICK_MS: u64 = 5;
/// After healing, every transaction must commit everywhere within this much simulated time.
pub const LIVENESS_BOUND_MS: u64 = 30_000;
/// How often clients re-send uncommitted transactions after the faults stop.
const CLIENT_RETRY_MS: u64 = 500;

/// Small batches, short timeouts and an eager compaction, so a run crosses many heights,
/// terms and compaction points.
pub fn sim_config() -> RaftConfig {
    RaftConfig {
        batch_max_txs: 4,
        batch_timeout_ms: 5,
        election_timeout_ms: 100,
        heartbeat_interval_ms: 20,
        max_in_flight: 4,
        message_max_entries: 4,
        max_inflight_msgs: 16,
        fetch_max_blocks: 8,
        fetch_retry_ms: 200,
        compact_threshold_entries: 8,
        compact_margin_entries: 4,
        ..RaftConfig::default()
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    /// Simulated time when every transaction had committed everywhere.
    pub sim_ms: u64,
    pub heal_ms: u64,
    /// Blocks committed (the highest height agreed).
    pub blocks: u64,
    pub txs: usize,
    /// Times a node became leader, summed over nodes and restarts.
    pub elections: u64,
    pub max_term: u64,
    /// Committed batch entries skipped for a used height, summed over nodes.
    pub stale_skipped: u64,
    pub fetches: u64,
    pub snapshots_installed: u64,
    pub compactions: u64,
    pub crashes: u64,
    /// Log writes a crash lost because they were not synced yet (group commit).
    pub unsynced_lost: u64,
    /// Messages delivered.
    pub messages: u64,
    pub events: u64,
    pub trace_hash: Hash,
}

/// A violated property, with everything needed to replay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub scenario: String,
    pub seed: u64,
    pub at_ms: u64,
    pub reason: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "raft scenario {} seed {} failed at {} ms: {}\n  replay: ORDO_RAFT_SIM_SCENARIO={} ORDO_RAFT_SIM_SEED={} cargo test -p ordo-consensus --test raft_sim raft_sim_replay -- --nocapture",
            self.scenario, self.seed, self.at_ms, self.reason, self.scenario, self.seed
        )
    }
}

enum Event {
    Deliver {
        to: usize,
        from: usize,
        bytes: Rc<Vec<u8>>,
    },
    Tick(usize),
    Submit(usize),
    /// Crash node `who`: at once, or (mid-actions) after a number of the actions of its next
    /// action list.
    Crash {
        who: usize,
        mid_actions: bool,
    },
    Restart(usize),
    Synced {
        to: usize,
        blocks: Vec<Verified<CommittedBatch>>,
    },
    Repartition,
    /// Cut the current leader off from all but one follower; it crashes a little later.
    LeaderToMinority,
    /// Cut `who` off from everyone (the lagger) until the heal.
    Isolate(usize),
    Heal,
    ClientRetry,
}

struct Node {
    key: Keypair,
    store: MemStore,
    tip: Block,
    core: Option<RaftEngine>,
    /// Crash after this many more actions.
    crash_after: Option<usize>,
    restarts: u64,
    committed_ids: BTreeSet<Hash>,
    applied_ids: BTreeSet<Hash>,
    /// The committed raft index already checked against the global record.
    checked_index: u64,
    /// Counters of the engines this node ran before its restarts.
    elections: u64,
    stale_skipped: u64,
    fetches: u64,
    snapshots: u64,
    compactions: u64,
}

struct Sim {
    sc: RaftScenario,
    seed: u64,
    rng: ChaCha8Rng,
    now: u64,
    queue: BTreeMap<(u64, u64), Event>,
    next_seq: u64,
    nodes: Vec<Node>,
    cfg: RaftConfig,
    ctx: RaftVerifyContext,
    txs: Vec<VerifiedTx>,
    tx_ids: BTreeSet<Hash>,
    /// Height -> block hash, as first committed anywhere.
    canon: BTreeMap<u64, Hash>,
    /// Raft index -> term, as first seen committed anywhere.
    committed_terms: BTreeMap<u64, u64>,
    /// Term -> the validator that led it.
    leaders: BTreeMap<u64, usize>,
    blocked: Vec<Vec<bool>>,
    /// The lagger, cut off until the heal.
    isolated: Option<usize>,
    healed: bool,
    crashes: u64,
    unsynced_lost: u64,
    trace: Sha256,
    messages: u64,
    events: u64,
}

/// Validator keys are fixed (seeded), so runs of every seed share them.
pub fn validator_key(i: usize) -> Keypair {
    let mut seed = [0u8; 32];
    seed[0] = 0x4a;
    seed[1..9].copy_from_slice(&(i as u64).to_be_bytes());
    Keypair::from_seed(seed)
}

pub fn committee(n: usize) -> Committee {
    Committee::new((0..n).map(|i| validator_key(i).public()).collect())
}

fn genesis() -> (Block, Vec<Op>) {
    let mut state = BTreeMap::new();
    state.insert("greeting".to_string(), "hello".to_string());
    Block::genesis(CHAIN_ID, GENESIS_TIME_MS, &state)
}

/// Runs one (scenario, seed). A panic inside an engine (a broken invariant) propagates; the
/// test driver catches it and prints the replay command.
pub fn run(sc: &RaftScenario, seed: u64) -> Result<Report, Failure> {
    Sim::new(sc.clone(), seed).run()
}

impl Sim {
    fn new(sc: RaftScenario, seed: u64) -> Self {
        let name_hash = ordo_chain::crypto::sha256(sc.name.as_bytes());
        let mix = u64::from_be_bytes(name_hash.0[..8].try_into().expect("8 bytes"));
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ mix);
        let cfg = sim_config();
        let rules = TxRules::new(CHAIN_ID);
        let ctx = RaftVerifyContext::new(committee(sc.n), rules.clone(), &cfg);
        let (genesis, writes) = genesis();
        let client = Keypair::from_seed([8; 32]);
        let raw: Vec<Transaction> = (0..sc.txs)
            .map(|i| {
                let op = Op::Put { key: format!("k{}", rng.gen_range(0..8)), value: format!("v{seed}-{i}") };
                Transaction::sign(CHAIN_ID, &client, seed.wrapping_mul(1000).wrapping_add(i as u64), op)
            })
            .collect();
        let txs: Vec<VerifiedTx> =
            rules.verify_many(raw).into_iter().map(|r| r.expect("sim transactions are valid")).collect();
        let tx_ids = txs.iter().map(|t| t.id()).collect();
        let nodes = (0..sc.n)
            .map(|v| {
                let store = MemStore::new();
                store.commit(&genesis, &writes).expect("genesis commits");
                Node {
                    key: validator_key(v),
                    store,
                    tip: genesis.clone(),
                    core: None,
                    crash_after: None,
                    restarts: 0,
                    committed_ids: BTreeSet::new(),
                    applied_ids: BTreeSet::new(),
                    checked_index: 0,
                    elections: 0,
                    stale_skipped: 0,
                    fetches: 0,
                    snapshots: 0,
                    compactions: 0,
                }
            })
            .collect();
        let n = sc.n;
        let mut sim = Sim {
            sc,
            seed,
            rng,
            now: 0,
            queue: BTreeMap::new(),
            next_seq: 0,
            nodes,
            cfg,
            ctx,
            txs,
            tx_ids,
            canon: BTreeMap::new(),
            committed_terms: BTreeMap::new(),
            leaders: BTreeMap::new(),
            blocked: vec![vec![false; n]; n],
            isolated: None,
            healed: false,
            crashes: 0,
            unsynced_lost: 0,
            trace: Sha256::new(),
            messages: 0,
            events: 0,
        };
        for i in 0..n {
            sim.start_core(i);
        }
        sim
    }

    fn schedule(&mut self, at: u64, e: Event) {
        self.queue.insert((at, self.next_seq), e);
        self.next_seq += 1;
    }

    fn fail(&self, reason: String) -> Failure {
        Failure { scenario: self.sc.name.to_string(), seed: self.seed, at_ms: self.now, reason }
    }

    fn trace(&mut self, parts: &[&[u8]]) {
        self.trace.update(self.now.to_be_bytes());
        for p in parts {
            self.trace.update(p);
        }
    }

    /// Starts (or restarts) node `i`'s engine from its store, as the node does.
    fn start_core(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.tip = node.store.latest_block().expect("mem store").expect("genesis");
        let restore = RaftRestore {
            log: node.store.load_log().expect("mem store"),
            executed_height: node.tip.height(),
            executed_hash: node.tip.hash,
        };
        let engine_seed = self.seed.wrapping_mul(31).wrapping_add(i as u64 * 1_000 + node.restarts);
        let core = RaftEngine::with_faults(
            self.cfg.clone(),
            self.ctx.clone(),
            node.key.clone(),
            restore,
            engine_seed,
            self.now,
            self.sc.faults,
        )
        .expect("an engine restarts from its own store");
        node.core = Some(core);
        node.checked_index = 0;
    }

    fn run(&mut self) -> Result<Report, Failure> {
        let n = self.nodes.len();
        for i in 0..n {
            let at = self.rng.gen_range(0..TICK_MS);
            self.schedule(at, Event::Tick(i));
        }
        let fault = self.sc.fault_phase_ms;
        for t in 0..self.txs.len() {
            let at = self.rng.gen_range(0..fault * 4 / 5);
            self.schedule(at, Event::Submit(t));
        }
        for _ in 0..self.sc.crashes {
            let at = self.rng.gen_range(100..fault * 3 / 4);
            let who = self.rng.gen_range(0..n);
            let down = self.rng.gen_range(self.sc.crash_down_ms.0..self.sc.crash_down_ms.1);
            let mid_actions = self.sc.crash_mid_actions;
            self.schedule(at, Event::Crash { who, mid_actions });
            self.schedule((at + down).min(fault), Event::Restart(who));
        }
        for _ in 0..self.sc.leader_minority_crashes {
            let at = self.rng.gen_range(200..fault * 3 / 4);
            self.schedule(at, Event::LeaderToMinority);
        }
        if self.sc.lagger {
            let who = self.rng.gen_range(0..n);
            let at = self.rng.gen_range(100..300);
            self.schedule(at, Event::Isolate(who));
        }
        if self.sc.partition != RaftPartition::None {
            let mut t = self.rng.gen_range(0..200);
            while t < fault {
                self.schedule(t, Event::Repartition);
                t += self.rng.gen_range(150..400);
            }
        }
        self.schedule(fault, Event::Heal);
        self.schedule(fault + 1, Event::ClientRetry);
        let deadline = fault + LIVENESS_BOUND_MS;
        while let Some(((at, _), event)) = self.queue.pop_first() {
            self.now = at;
            if at > deadline {
                return Err(self.fail(format!(
                    "liveness: not every transaction committed at every node {LIVENESS_BOUND_MS} ms after healing\n  {}",
                    self.progress()
                )));
            }
            self.events += 1;
            self.step(event)?;
            self.check_log_and_leaders()?;
            if self.healed && self.done() {
                return Ok(self.report());
            }
        }
        Err(self.fail("event queue ran dry".into()))
    }

    fn done(&self) -> bool {
        self.nodes.iter().all(|n| n.committed_ids.len() == self.txs.len())
    }

    fn progress(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let c = n.core.as_ref();
                format!(
                    "v{i}: {}/{} txs, h{} {:?} log_height {:?} base {:?} last drop {:?}",
                    n.committed_ids.len(),
                    self.txs.len(),
                    n.tip.height(),
                    c.map(|c| c.status()),
                    c.map(|c| c.log_height()),
                    c.map(|c| c.log_base()),
                    c.and_then(|c| c.last_drop().map(|e| e.to_string()))
                )
            })
            .collect::<Vec<_>>()
            .join("\n  ")
    }

    fn report(&mut self) -> Report {
        let mut r = Report {
            scenario: self.sc.name.to_string(),
            seed: self.seed,
            sim_ms: self.now,
            heal_ms: self.sc.fault_phase_ms,
            blocks: self.canon.len() as u64,
            txs: self.txs.len(),
            elections: 0,
            max_term: 0,
            stale_skipped: 0,
            fetches: 0,
            snapshots_installed: 0,
            compactions: 0,
            crashes: self.crashes,
            unsynced_lost: self.unsynced_lost,
            messages: self.messages,
            events: self.events,
            trace_hash: Hash(self.trace.clone().finalize().into()),
        };
        for n in &self.nodes {
            let c = n.core.as_ref().map(|c| c.counters()).unwrap_or_default();
            r.elections += n.elections + c.elected;
            r.stale_skipped += n.stale_skipped + c.stale_entries_skipped;
            r.fetches += n.fetches + c.fetches;
            r.snapshots_installed += n.snapshots + c.snapshots_installed;
            r.compactions += n.compactions + c.compactions;
            r.max_term = r.max_term.max(n.core.as_ref().map_or(0, |c| c.term()));
        }
        r
    }

    fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(c) = node.core.take() {
            let k = c.counters();
            node.elections += k.elected;
            node.stale_skipped += k.stale_entries_skipped;
            node.fetches += k.fetches;
            node.snapshots += k.snapshots_installed;
            node.compactions += k.compactions;
        }
        node.crash_after = None;
        self.unsynced_lost += node.store.unsynced_writes() as u64;
        node.store.crash();
        node.restarts += 1;
        self.crashes += 1;
        self.trace(&[b"c", &(i as u32).to_be_bytes()]);
    }

    fn step(&mut self, event: Event) -> Result<(), Failure> {
        match event {
            Event::Tick(i) => {
                self.schedule(self.now + TICK_MS, Event::Tick(i));
                let now = self.now;
                self.drive(i, Input::Tick { now_ms: now })?;
            }
            Event::Deliver { to, from, bytes } => {
                if self.nodes[to].core.is_none() {
                    return Ok(());
                }
                let sender = self.nodes[from].key.public();
                let msg = match decode_and_verify(&self.ctx, sender, &bytes) {
                    Ok(m) => m,
                    Err(e) => return Err(self.fail(format!("an honest node's message failed verification: {e}"))),
                };
                self.trace(&[b"d", &(to as u32).to_be_bytes(), &(from as u32).to_be_bytes(), &bytes]);
                self.messages += 1;
                self.drive(to, Input::Message(msg))?;
            }
            Event::Submit(t) => {
                self.trace(&[b"s", &(t as u32).to_be_bytes()]);
                let tx = self.txs[t].clone();
                for i in 0..self.nodes.len() {
                    if self.nodes[i].core.is_some() {
                        self.drive(i, Input::ClientTxs(vec![tx.clone()]))?;
                    }
                }
            }
            Event::Crash { who, mid_actions } => {
                if self.healed || self.nodes[who].core.is_none() {
                    return Ok(());
                }
                if mid_actions {
                    let k = self.rng.gen_range(0..6);
                    self.nodes[who].crash_after = Some(k);
                } else {
                    self.crash(who);
                }
            }
            Event::Restart(i) => {
                if self.nodes[i].core.is_none() {
                    self.trace(&[b"r", &(i as u32).to_be_bytes()]);
                    self.start_core(i);
                }
            }
            Event::Synced { to, blocks } => {
                if self.nodes[to].core.is_some() {
                    self.trace(&[b"y", &(to as u32).to_be_bytes(), &(blocks.len() as u32).to_be_bytes()]);
                    self.drive(to, Input::SyncedBlocks(blocks))?;
                }
            }
            Event::Repartition => self.repartition(),
            Event::LeaderToMinority => {
                let Some(l) = self.current_leader() else { return Ok(()) };
                let n = self.nodes.len();
                let keep = (l + 1 + self.rng.gen_range(0..n - 1)) % n;
                for j in 0..n {
                    self.blocked[l][j] = j != l && j != keep;
                }
                self.trace(&[b"m", &(l as u32).to_be_bytes(), &(keep as u32).to_be_bytes()]);
                let at = self.now + self.rng.gen_range(20..80);
                self.schedule(at, Event::Crash { who: l, mid_actions: false });
                let back = (at + self.rng.gen_range(100..400)).min(self.sc.fault_phase_ms);
                self.schedule(back, Event::Restart(l));
            }
            Event::Isolate(who) => {
                self.isolated = Some(who);
                self.trace(&[b"i", &(who as u32).to_be_bytes()]);
                self.apply_isolation();
            }
            Event::ClientRetry => {
                self.schedule(self.now + CLIENT_RETRY_MS, Event::ClientRetry);
                self.trace(&[b"t"]);
                for i in 0..self.nodes.len() {
                    if self.nodes[i].core.is_none() {
                        continue;
                    }
                    let missing: Vec<VerifiedTx> =
                        self.txs.iter().filter(|t| !self.nodes[i].committed_ids.contains(&t.id())).cloned().collect();
                    if !missing.is_empty() {
                        self.drive(i, Input::ClientTxs(missing))?;
                    }
                }
            }
            Event::Heal => {
                self.trace(&[b"h"]);
                self.healed = true;
                self.isolated = None;
                for row in &mut self.blocked {
                    row.iter_mut().for_each(|b| *b = false);
                }
                for i in 0..self.nodes.len() {
                    self.nodes[i].crash_after = None;
                    if self.nodes[i].core.is_none() {
                        self.start_core(i);
                    }
                }
            }
        }
        Ok(())
    }

    /// The node that leads the highest term, as far as the running engines know.
    fn current_leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].core.as_ref().is_some_and(|c| c.is_leader()))
            .max_by_key(|&i| self.nodes[i].core.as_ref().map_or(0, |c| c.term()))
    }

    fn apply_isolation(&mut self) {
        if let Some(w) = self.isolated {
            for j in 0..self.nodes.len() {
                if j != w {
                    self.blocked[w][j] = true;
                    self.blocked[j][w] = true;
                }
            }
        }
    }

    fn repartition(&mut self) {
        let n = self.nodes.len();
        for row in &mut self.blocked {
            row.iter_mut().for_each(|b| *b = false);
        }
        match self.sc.partition {
            RaftPartition::None => {}
            RaftPartition::RandomSymmetric => {
                for a in 0..n {
                    for b in a + 1..n {
                        if self.rng.gen_ratio(1, 4) {
                            self.blocked[a][b] = true;
                            self.blocked[b][a] = true;
                        }
                    }
                }
            }
            RaftPartition::RandomOneWay => {
                for a in 0..n {
                    for b in 0..n {
                        if a != b && self.rng.gen_ratio(1, 5) {
                            self.blocked[a][b] = true;
                        }
                    }
                }
            }
            RaftPartition::IsolateLeader => {
                if self.rng.gen_ratio(2, 3) {
                    if let Some(l) = self.current_leader() {
                        for j in 0..n {
                            if j != l {
                                self.blocked[l][j] = true;
                                self.blocked[j][l] = true;
                            }
                        }
                    }
                }
            }
            RaftPartition::Split => {
                let minority = (n - 1) / 2;
                let mut order: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    let j = self.rng.gen_range(0..=i);
                    order.swap(i, j);
                }
                let side: Vec<bool> = (0..n).map(|i| order.iter().position(|&x| x == i).unwrap() < minority).collect();
                for a in 0..n {
                    for b in 0..n {
                        self.blocked[a][b] = side[a] != side[b];
                    }
                }
            }
        }
        self.apply_isolation();
        let bits: Vec<u8> = self.blocked.iter().flatten().map(|b| *b as u8).collect();
        self.trace(&[b"p", &bits]);
    }

    /// Feeds one input to node `i` and executes the resulting actions in order, like the node,
    /// crashing it after the armed number of actions if a mid-action crash is pending.
    fn drive(&mut self, i: usize, input: Input<RaftMessage>) -> Result<(), Failure> {
        let mut pending: VecDeque<Action<RaftMessage>> = match &mut self.nodes[i].core {
            Some(core) => core.handle(input).into(),
            None => return Ok(()),
        };
        while let Some(action) = pending.pop_front() {
            if let Some(k) = self.nodes[i].crash_after {
                if k == 0 {
                    self.crash(i);
                    return Ok(());
                }
                self.nodes[i].crash_after = Some(k - 1);
            }
            let lets_out = !matches!(action, Action::PersistLog(_) | Action::StatusChanged(_));
            if self.sc.group_commit && lets_out && self.nodes[i].store.unsynced_writes() > 0 {
                self.nodes[i].store.sync();
            }
            match action {
                Action::PersistLog(w) => {
                    self.trace(&[b"l", &(i as u32).to_be_bytes(), &(w.append.len() as u32).to_be_bytes()]);
                    let store = &self.nodes[i].store;
                    let written = if self.sc.group_commit { store.write_log_unsynced(&w) } else { store.write_log(&w) };
                    if let Err(e) = written {
                        return Err(self.fail(format!("node {i}: the store refused a log write: {e}")));
                    }
                }
                Action::PersistSafety(_) => unreachable!("Raft keeps no PBFT safety record"),
                Action::Send { to, msg } => {
                    let Some(j) = (0..self.nodes.len()).find(|&j| self.nodes[j].key.public() == to) else {
                        return Err(self.fail(format!("node {i} sent to a non-validator")));
                    };
                    self.send(i, j, &msg);
                }
                Action::Broadcast(msg) => {
                    for j in 0..self.nodes.len() {
                        if j != i {
                            self.send(i, j, &msg);
                        }
                    }
                }
                Action::Commit(batch) => {
                    let (height, hash) = self.execute(i, batch)?;
                    let core = self.nodes[i].core.as_mut().expect("node is up");
                    pending.extend(core.handle(Input::Executed { height, block_hash: hash }));
                }
                Action::FetchBlocks { from, from_height, to_height } => {
                    self.serve_fetch(i, from, from_height, to_height)
                }
                Action::StatusChanged(s) => {
                    let leader = s.leader.map(|l| l.0[0]).unwrap_or(0);
                    self.trace(&[b"v", &(i as u32).to_be_bytes(), &s.view.to_be_bytes(), &[leader]]);
                }
            }
        }
        Ok(())
    }

    /// At most one leader per term, and a committed raft entry never changes.
    fn check_log_and_leaders(&mut self) -> Result<(), Failure> {
        for i in 0..self.nodes.len() {
            let Some(core) = &self.nodes[i].core else { continue };
            if core.is_leader() {
                let term = core.term();
                match self.leaders.get(&term) {
                    Some(&l) if l != i => {
                        return Err(self.fail(format!("two leaders in term {term}: validators {l} and {i}")))
                    }
                    Some(_) => {}
                    None => {
                        self.leaders.insert(term, i);
                    }
                }
            }
            let committed = core.committed_index();
            let from = self.nodes[i].checked_index.max(core.log_base().index) + 1;
            for index in from..=committed {
                let Some(term) = core.term_at(index) else { continue };
                match self.committed_terms.get(&index) {
                    Some(&t) if t != term => {
                        return Err(self.fail(format!(
                            "committed entry changed: index {index} was committed with term {t}, validator {i} committed term {term}"
                        )))
                    }
                    Some(_) => {}
                    None => {
                        self.committed_terms.insert(index, term);
                    }
                }
            }
            self.nodes[i].checked_index = self.nodes[i].checked_index.max(committed);
        }
        Ok(())
    }

    /// Plays the node: verifies the certificate, builds the block, stores it, and checks
    /// agreement and validity.
    fn execute(&mut self, i: usize, b: CommittedBatch) -> Result<(u64, Hash), Failure> {
        let term = self.nodes[i].core.as_ref().map_or(0, |c| c.term());
        if let Err(e) = b.certificate.verify(
            CHAIN_ID,
            &self.ctx.committee,
            CertKind::Raft,
            b.header.height,
            &b.header.digest(CHAIN_ID),
        ) {
            return Err(self
                .fail(format!("validator {i} committed height {} with an invalid certificate: {e}", b.header.height)));
        }
        if let Certificate::Raft(c) = &b.certificate {
            if c.term > term {
                return Err(self.fail(format!(
                    "validator {i} committed height {} certified for term {}, above its own term {term}",
                    b.header.height, c.term
                )));
            }
        }
        let node = &mut self.nodes[i];
        if b.header.height != node.tip.height() + 1 {
            let tip = node.tip.height();
            return Err(self.fail(format!("validator {i} was handed height {} on top of {tip}", b.header.height)));
        }
        let ids: Vec<Hash> = b.txs.iter().map(|t| t.id()).collect();
        let flags = node.store.committed(&ids).expect("mem store");
        let (block, exec) = Block::build(CHAIN_ID, &node.tip, b.header, &b.txs, &flags, Some(b.certificate));
        if let Err(e) = node.store.commit(&block, &exec.writes) {
            return Err(self.fail(format!("validator {i} could not store block {}: {e}", block.height())));
        }
        for (id, r) in ids.iter().zip(&exec.results) {
            node.committed_ids.insert(*id);
            if *r == TxResult::Applied && !node.applied_ids.insert(*id) {
                return Err(self.fail(format!("validity: transaction {id:?} applied twice at validator {i}")));
            }
        }
        node.tip = block.clone();
        self.trace(&[b"x", &(i as u32).to_be_bytes(), &block.hash.0]);
        for id in &ids {
            if !self.tx_ids.contains(id) {
                return Err(self.fail(format!("validity: validator {i} committed transaction {id:?} nobody submitted")));
            }
        }
        match self.canon.get(&block.height()) {
            Some(h) if *h != block.hash => {
                return Err(self.fail(format!(
                    "agreement: validator {i} committed block {:?} at height {}, another node committed {h:?}",
                    block.hash,
                    block.height()
                )))
            }
            Some(_) => {}
            None => {
                self.canon.insert(block.height(), block.hash);
            }
        }
        Ok((block.height(), block.hash))
    }

    fn serve_fetch(&mut self, i: usize, from: PublicKey, from_height: u64, to_height: u64) {
        let Some(server) = (0..self.nodes.len()).find(|&j| j != i && self.nodes[j].key.public() == from) else {
            return;
        };
        if self.nodes[server].core.is_none() || self.blocked[i][server] || self.blocked[server][i] || self.lost() {
            return;
        }
        let mut blocks = Vec::new();
        for h in from_height..=to_height {
            match self.nodes[server].store.block(h).expect("mem store") {
                Some(b) => match verify_block(&self.ctx, &b) {
                    Ok(v) => blocks.push(v),
                    Err(e) => panic!("a stored block failed verification: {e}"),
                },
                None => break,
            }
        }
        if !blocks.is_empty() {
            let at = self.now + self.delay();
            self.schedule(at, Event::Synced { to: i, blocks });
        }
    }

    fn lost(&mut self) -> bool {
        !self.healed && self.sc.drop_percent > 0 && self.rng.gen_range(0..100) < self.sc.drop_percent
    }

    fn delay(&mut self) -> u64 {
        let max = if self.healed { 10 } else { self.sc.delay_max_ms };
        self.rng.gen_range(1..=max)
    }

    /// Encodes a message and delivers it through the faulty network.
    fn send(&mut self, from: usize, to: usize, msg: &RaftMessage) {
        if self.blocked[from][to] || self.lost() {
            return;
        }
        let bytes = Rc::new(msg.encode());
        let at = self.now + self.delay();
        self.schedule(at, Event::Deliver { to, from, bytes: bytes.clone() });
        if !self.healed && self.sc.duplicate_percent > 0 && self.rng.gen_range(0..100) < self.sc.duplicate_percent {
            let at = self.now + self.delay() + 5;
            self.schedule(at, Event::Deliver { to, from, bytes });
        }
    }
}
