//! The deterministic simulation (feature `sim`): one thread, a seeded ChaCha RNG, a virtual
//! clock and an ordered event queue drive n PBFT replicas, each with its own `MemStore`. The
//! harness plays the node: it executes `Commit` actions with `Block::build` and
//! `Store::commit`, reports `Executed`, serves `FetchBlocks` from the peer's store, and persists
//! the safety record. The network drops, duplicates, delays, reorders and partitions messages;
//! replicas crash and restart from their store; up to f validators are Byzantine (or run as
//! Twins). After every event the checker asserts agreement and validity; after the faults stop,
//! every submitted transaction must commit at every honest replica within a bound (liveness).
//! It also watches what honest replicas send: none signs a vote in a view below one it asked
//! for (its promise), and none asks for a view more than one above every honest replica's view
//! without 2f+1 VIEW-CHANGEs for the view below it (or f+1 for views at or above it).
//!
//! The same (scenario, seed) always produces the same event trace; its hash is in the report.

mod byzantine;
pub mod scenarios;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::rc::Rc;

use ordo_chain::store::{MemStore, Store};
use ordo_chain::tx::TxResult;
use ordo_chain::{Block, Committee, Hash, Keypair, Op, Transaction, TxRules, VerifiedTx};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::config::PbftConfig;
use crate::interface::{Action, CommittedBatch, Consensus, Input, Mode};
use crate::pbft::messages::{Message, WireMessage};
use crate::pbft::replica::{Replica, Restore};
use crate::pbft::verify::{verify_block, verify_message, VerifyContext};
use crate::verified::Verified;

pub use scenarios::{Byzantine, Partition, Scenario};

pub const CHAIN_ID: &str = "ordo-sim";
const GENESIS_TIME_MS: u64 = 1_764_288_000_000;
const TICK_MS: u64 = 10;
/// After healing, every transaction must commit everywhere within this much simulated time.
pub const LIVENESS_BOUND_MS: u64 = 60_000;
/// How often clients re-send uncommitted transactions after the faults stop.
const CLIENT_RETRY_MS: u64 = 1000;
/// Each Byzantine replica remembers this many messages for replays.
const REPLAY_BUFFER_LEN: usize = 64;

/// Small batches and short timeouts, so a run exercises many heights, checkpoints and views.
pub fn sim_config() -> PbftConfig {
    PbftConfig {
        batch_max_txs: 4,
        batch_timeout_ms: 5,
        checkpoint_interval: 4,
        watermark_window: 8,
        // The whole window may be in flight, so the watermarks themselves are exercised;
        // `max_in_flight` has its own rule test.
        max_in_flight: 8,
        view_change_timeout_ms: 300,
        view_change_timeout_max_ms: 2400,
        retransmit_interval_ms: 150,
        fetch_max_blocks: 8,
        ..PbftConfig::default()
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    /// Simulated time when the run ended (all transactions committed everywhere).
    pub sim_ms: u64,
    pub heal_ms: u64,
    /// Blocks committed (the highest height agreed).
    pub blocks: u64,
    pub txs: usize,
    /// View changes started, summed over honest replicas.
    pub view_changes: u64,
    /// Times an honest replica, waiting alone for a view change, rejoined the committee's view.
    pub rejoins: u64,
    /// The highest view any honest replica reached.
    pub max_view: u64,
    /// Messages delivered to replicas.
    pub messages: u64,
    pub events: u64,
    pub trace_hash: Hash,
}

impl Report {
    pub fn commits_per_sim_second(&self) -> f64 {
        self.blocks as f64 * 1000.0 / self.sim_ms.max(1) as f64
    }
    pub fn messages_per_block(&self) -> f64 {
        self.messages as f64 / self.blocks.max(1) as f64
    }
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
            "scenario {} seed {} failed at {} ms: {}\n  replay: ORDO_SIM_SCENARIO={} ORDO_SIM_SEED={} cargo test -p ordo-consensus --test sim sim_replay -- --nocapture",
            self.scenario, self.seed, self.at_ms, self.reason, self.scenario, self.seed
        )
    }
}

enum Event {
    Deliver {
        to: usize,
        msg: Rc<Verified<Message>>,
    },
    Tick(usize),
    Submit(usize),
    Crash(usize),
    Restart(usize),
    Synced {
        to: usize,
        blocks: Vec<Verified<CommittedBatch>>,
    },
    Repartition,
    /// Node `who` stops processing anything until `until` (see `Scenario::stalls`).
    Stall {
        who: usize,
        until: u64,
    },
    /// A stalled node resumes: its clock jumped, and what queued up meanwhile reaches it now.
    Resume(usize),
    Heal,
    /// Clients re-send every transaction a replica has not committed (Castro & Liskov 2002,
    /// §4.1: a client that gets no reply broadcasts its request to all replicas).
    ClientRetry,
}

struct Node {
    validator: usize,
    key: Keypair,
    store: MemStore,
    tip: Block,
    core: Option<Replica>,
    byz: Option<Byzantine>,
    honest: bool,
    committed_ids: BTreeSet<Hash>,
    applied_ids: BTreeSet<Hash>,
    replay: VecDeque<Rc<Verified<Message>>>,
    /// For an equivocating primary: the alternative digest it sent at each height.
    alt_digests: BTreeMap<u64, Hash>,
    /// While stalled: until when, and the client transactions that queued up meanwhile.
    stalled_until: u64,
    backlog: Vec<VerifiedTx>,
    /// The highest view this node sent a VIEW-CHANGE for (its promise, kept across restarts
    /// like its safety record), and every vote it ever sent as (kind, view, height, digest).
    promised_view: u64,
    votes_sent: BTreeSet<(u8, u64, u64, Hash)>,
}

struct Sim {
    sc: Scenario,
    seed: u64,
    rng: ChaCha8Rng,
    now: u64,
    queue: BTreeMap<(u64, u64), Event>,
    next_seq: u64,
    nodes: Vec<Node>,
    cfg: PbftConfig,
    ctx: VerifyContext,
    genesis: Block,
    txs: Vec<VerifiedTx>,
    tx_ids: BTreeSet<Hash>,
    canon: BTreeMap<u64, Hash>,
    blocked: Vec<Vec<bool>>,
    healed: bool,
    /// Validators that sent a (valid) VIEW-CHANGE, per view.
    view_change_senders: BTreeMap<u64, BTreeSet<usize>>,
    /// The highest view an honest replica was in normal mode in.
    normal_view_max: u64,
    /// With `Scenario::converge`: when everything had committed (the run goes on for two
    /// view-change timeouts after it).
    done_at: Option<u64>,
    trace: Sha256,
    messages: u64,
    events: u64,
}

/// Validator keys are fixed (seeded), so runs of every seed share them.
pub fn validator_key(i: usize) -> Keypair {
    let mut seed = [0u8; 32];
    seed[0] = 0xa5;
    seed[1..9].copy_from_slice(&(i as u64).to_be_bytes());
    Keypair::from_seed(seed)
}

/// Builds the committee of the first `n` validator keys.
pub fn committee(n: usize) -> Committee {
    Committee::new((0..n).map(|i| validator_key(i).public()).collect())
}

/// The genesis block of the simulated chain.
pub fn genesis() -> Block {
    let mut state = BTreeMap::new();
    state.insert("greeting".to_string(), "hello".to_string());
    Block::genesis(CHAIN_ID, GENESIS_TIME_MS, &state).0
}

/// Runs one (scenario, seed). A panic inside a replica (a broken invariant) propagates; the
/// test driver catches it and prints the replay command.
pub fn run(sc: &Scenario, seed: u64) -> Result<Report, Failure> {
    let mut sim = Sim::new(sc.clone(), seed);
    sim.run()
}

impl Sim {
    fn new(sc: Scenario, seed: u64) -> Self {
        let name_hash = ordo_chain::crypto::sha256(sc.name.as_bytes());
        let mix = u64::from_be_bytes(name_hash.0[..8].try_into().expect("8 bytes"));
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ mix);
        let cfg = sim_config();
        let rules = TxRules::new(CHAIN_ID);
        let ctx = VerifyContext::new(committee(sc.n), rules.clone(), &cfg);
        let (genesis, writes) = {
            let mut state = BTreeMap::new();
            state.insert("greeting".to_string(), "hello".to_string());
            Block::genesis(CHAIN_ID, GENESIS_TIME_MS, &state)
        };
        let client = Keypair::from_seed([7; 32]);
        let raw: Vec<Transaction> = (0..sc.txs)
            .map(|i| {
                let op = Op::Put { key: format!("k{}", rng.gen_range(0..8)), value: format!("v{seed}-{i}") };
                Transaction::sign(CHAIN_ID, &client, seed.wrapping_mul(1000).wrapping_add(i as u64), op)
            })
            .collect();
        let txs: Vec<VerifiedTx> =
            rules.verify_many(raw).into_iter().map(|r| r.expect("sim transactions are valid")).collect();
        let tx_ids = txs.iter().map(|t| t.id()).collect();
        let mut validators: Vec<usize> = (0..sc.n).collect();
        if let Some(t) = sc.twins {
            validators.push(t);
        }
        let nodes: Vec<Node> = validators
            .iter()
            .map(|&v| {
                let store = MemStore::new();
                store.commit(&genesis, &writes).expect("genesis commits");
                let byz = sc.byzantine.iter().find(|(i, _)| *i == v).map(|(_, b)| *b);
                let honest = byz.is_none() && sc.twins != Some(v);
                Node {
                    validator: v,
                    key: validator_key(v),
                    store,
                    tip: genesis.clone(),
                    core: None,
                    byz,
                    honest,
                    committed_ids: BTreeSet::new(),
                    applied_ids: BTreeSet::new(),
                    replay: VecDeque::new(),
                    alt_digests: BTreeMap::new(),
                    stalled_until: 0,
                    backlog: Vec::new(),
                    promised_view: 0,
                    votes_sent: BTreeSet::new(),
                }
            })
            .collect();
        let count = nodes.len();
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
            genesis,
            txs,
            tx_ids,
            canon: BTreeMap::new(),
            blocked: vec![vec![false; count]; count],
            healed: false,
            view_change_senders: BTreeMap::new(),
            normal_view_max: 0,
            done_at: None,
            trace: Sha256::new(),
            messages: 0,
            events: 0,
        };
        for i in 0..count {
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

    fn start_core(&mut self, i: usize) {
        let node = &self.nodes[i];
        let restore = Restore {
            safety: node.store.load_safety().expect("mem store"),
            executed_height: node.tip.height(),
            executed_hash: node.tip.hash,
        };
        let core =
            Replica::new(self.cfg.clone(), self.ctx.clone(), node.key.clone(), self.genesis.hash, restore, self.now)
                .expect("replica starts from its own store")
                .with_tip_certificate(node.tip.certificate.clone());

        self.nodes[i].core = Some(core);
    }

    fn run(&mut self) -> Result<Report, Failure> {
        let n_nodes = self.nodes.len();
        for i in 0..n_nodes {
            let at = self.rng.gen_range(0..TICK_MS);
            self.schedule(at, Event::Tick(i));
        }
        let fault = self.sc.fault_phase_ms;
        for t in 0..self.txs.len() {
            let at = self.rng.gen_range(0..fault * 4 / 5);
            self.schedule(at, Event::Submit(t));
        }
        if self.sc.crashes {
            for _ in 0..3 {
                let at = self.rng.gen_range(0..fault * 3 / 4);
                let who = self.rng.gen_range(0..n_nodes);
                let down = self.rng.gen_range(100..800);
                self.schedule(at, Event::Crash(who));
                self.schedule((at + down).min(fault), Event::Restart(who));
            }
        }
        // One replica stalls again and again: each time it is alone in asking for a view change.
        let who = if self.sc.stalls > 0 { self.rng.gen_range(0..n_nodes) } else { 0 };
        for _ in 0..self.sc.stalls {
            let at = self.rng.gen_range(fault / 10..fault * 3 / 4);
            let down = self.rng.gen_range(400..900);
            self.schedule(at, Event::Stall { who, until: (at + down).min(fault) });
        }
        if self.sc.partition != Partition::None {
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
                return Err(self.fail(format!("liveness: not every transaction committed at every honest replica {LIVENESS_BOUND_MS} ms after healing ({})", self.progress())));
            }
            self.events += 1;
            self.step(event)?;
            if self.healed && self.done() {
                if !self.sc.converge {
                    return Ok(self.report());
                }
                let done_at = *self.done_at.get_or_insert(at);
                if at >= done_at + 2 * self.cfg.view_change_timeout_ms {
                    self.check_converged()?;
                    return Ok(self.report());
                }
            }
        }
        Err(self.fail("event queue ran dry".into()))
    }

    fn progress(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let s = n.core.as_ref().map(|c| c.status());
                format!(
                    "v{}{}: {}/{} txs, h{} {:?} last drop {:?}",
                    n.validator,
                    if n.honest { "" } else { "*" },
                    n.committed_ids.len(),
                    self.txs.len(),
                    n.tip.height(),
                    s,
                    n.core.as_ref().and_then(|c| c.last_drop().map(|e| e.to_string()))
                )
            })
            .collect::<Vec<_>>()
            .join("\n  ")
    }

    /// Every honest replica in one view, in normal mode, at one tip.
    fn check_converged(&self) -> Result<(), Failure> {
        let honest: Vec<&Node> = self.nodes.iter().filter(|n| n.honest).collect();
        let statuses: Vec<_> = honest.iter().map(|n| n.core.as_ref().map(|c| c.status())).collect();
        let first = statuses[0];
        let same = statuses
            .iter()
            .all(|s| s.is_some_and(|s| s.mode == Mode::Normal && first.is_some_and(|f| f.view == s.view)))
            && honest.iter().all(|n| n.tip.hash == honest[0].tip.hash);
        if same {
            Ok(())
        } else {
            Err(self.fail(format!(
                "convergence: {} ms after everything committed, the honest replicas are not all in one view in normal mode at one tip ({})",
                2 * self.cfg.view_change_timeout_ms,
                self.progress()
            )))
        }
    }

    fn done(&self) -> bool {
        self.nodes.iter().filter(|n| n.honest).all(|n| n.committed_ids.len() == self.txs.len())
    }

    fn report(&mut self) -> Report {
        let honest = self.nodes.iter().filter(|n| n.honest);
        let view_changes =
            honest.clone().filter_map(|n| n.core.as_ref()).map(|c| c.counters().view_changes_started).sum();
        let rejoins = honest.clone().filter_map(|n| n.core.as_ref()).map(|c| c.counters().rejoins).sum();
        let max_view = honest.filter_map(|n| n.core.as_ref()).map(|c| c.view()).max().unwrap_or(0);
        Report {
            scenario: self.sc.name.to_string(),
            seed: self.seed,
            sim_ms: self.done_at.unwrap_or(self.now),
            heal_ms: self.sc.fault_phase_ms,
            blocks: self.canon.len() as u64,
            txs: self.txs.len(),
            view_changes,
            rejoins,
            max_view,
            messages: self.messages,
            events: self.events,
            trace_hash: Hash(self.trace.clone().finalize().into()),
        }
    }

    fn trace(&mut self, parts: &[&[u8]]) {
        self.trace.update(self.now.to_be_bytes());
        for p in parts {
            self.trace.update(p);
        }
    }

    fn step(&mut self, event: Event) -> Result<(), Failure> {
        match event {
            Event::Tick(i) => {
                self.schedule(self.now + TICK_MS, Event::Tick(i));
                if self.nodes[i].core.is_some() && self.now >= self.nodes[i].stalled_until {
                    let now = self.now;
                    self.drive(i, Input::Tick { now_ms: now })?;
                    if let Some(b) = self.nodes[i].byz {
                        self.byzantine_tick(i, b);
                    }
                }
            }
            Event::Deliver { to, msg } if self.now < self.nodes[to].stalled_until => {
                // Queued while the node stalls: in arrival order, right after it resumes.
                self.schedule(self.nodes[to].stalled_until, Event::Deliver { to, msg });
            }
            Event::Synced { to, blocks } if self.now < self.nodes[to].stalled_until => {
                self.schedule(self.nodes[to].stalled_until, Event::Synced { to, blocks });
            }
            Event::Deliver { to, msg } => {
                let p = msg.peek();
                self.trace(&[
                    b"d",
                    &(to as u32).to_be_bytes(),
                    &[p.kind as u8],
                    &p.from.0,
                    &p.view.to_be_bytes(),
                    &p.height.to_be_bytes(),
                ]);
                let Some(core) = &self.nodes[to].core else { return Ok(()) };
                if !core.wants(&p) {
                    return Ok(());
                }
                self.messages += 1;
                if self.nodes[to].byz.is_some_and(|b| b.replay) {
                    let node = &mut self.nodes[to];
                    if node.replay.len() == REPLAY_BUFFER_LEN {
                        node.replay.pop_front();
                    }
                    node.replay.push_back(msg.clone());
                }
                self.drive(to, Input::Message((*msg).clone()))?;
            }
            Event::Submit(t) => {
                self.trace(&[b"s", &(t as u32).to_be_bytes()]);
                let tx = self.txs[t].clone();
                for i in 0..self.nodes.len() {
                    if self.now < self.nodes[i].stalled_until {
                        self.nodes[i].backlog.push(tx.clone());
                    } else if self.nodes[i].core.is_some() {
                        self.drive(i, Input::ClientTxs(vec![tx.clone()]))?;
                    }
                }
            }
            Event::Crash(i) => {
                if self.healed || self.nodes[i].byz.is_some() {
                    return Ok(());
                }
                self.trace(&[b"c", &(i as u32).to_be_bytes()]);
                self.nodes[i].core = None;
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
            Event::Stall { who, until } => {
                if self.healed || self.nodes[who].core.is_none() || until <= self.now {
                    return Ok(());
                }
                self.trace(&[b"z", &(who as u32).to_be_bytes(), &until.to_be_bytes()]);
                self.nodes[who].stalled_until = until;
                self.schedule(until, Event::Resume(who));
            }
            Event::Resume(i) => {
                self.trace(&[b"w", &(i as u32).to_be_bytes()]);
                self.nodes[i].stalled_until = 0;
                // The clock has jumped: the node's first input is a tick, then what queued up.
                let now = self.now;
                self.drive(i, Input::Tick { now_ms: now })?;
                let backlog = std::mem::take(&mut self.nodes[i].backlog);
                if !backlog.is_empty() {
                    self.drive(i, Input::ClientTxs(backlog))?;
                }
            }
            Event::ClientRetry => {
                self.schedule(self.now + CLIENT_RETRY_MS, Event::ClientRetry);
                self.trace(&[b"t"]);
                for i in 0..self.nodes.len() {
                    if self.nodes[i].core.is_none() || self.now < self.nodes[i].stalled_until {
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
                for row in &mut self.blocked {
                    row.iter_mut().for_each(|b| *b = false);
                }
                for i in 0..self.nodes.len() {
                    if self.nodes[i].core.is_none() {
                        self.start_core(i);
                    }
                }
            }
        }
        Ok(())
    }

    fn repartition(&mut self) {
        let n = self.nodes.len();
        for row in &mut self.blocked {
            row.iter_mut().for_each(|b| *b = false);
        }
        match self.sc.partition {
            Partition::None => {}
            Partition::RandomSymmetric => {
                for a in 0..n {
                    for b in a + 1..n {
                        if self.rng.gen_ratio(1, 4) {
                            self.blocked[a][b] = true;
                            self.blocked[b][a] = true;
                        }
                    }
                }
            }
            Partition::RandomOneWay => {
                for a in 0..n {
                    for b in 0..n {
                        if a != b && self.rng.gen_ratio(1, 5) {
                            self.blocked[a][b] = true;
                        }
                    }
                }
            }
            Partition::IsolatePrimary => {
                if self.rng.gen_ratio(2, 3) {
                    let view = self.nodes.iter().filter_map(|x| x.core.as_ref()).map(|c| c.view()).max().unwrap_or(0);
                    let primary = (view % self.sc.n as u64) as usize;
                    for a in 0..n {
                        for b in 0..n {
                            if self.nodes[a].validator == primary || self.nodes[b].validator == primary {
                                self.blocked[a][b] = a != b;
                            }
                        }
                    }
                }
            }
            Partition::Split => {
                let mut side: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
                for i in (1..n).rev() {
                    let j = self.rng.gen_range(0..=i);
                    side.swap(i, j);
                }
                for a in 0..n {
                    for b in 0..n {
                        self.blocked[a][b] = side[a] != side[b];
                    }
                }
            }
        }
        let bits: Vec<u8> = self.blocked.iter().flatten().map(|b| *b as u8).collect();
        self.trace(&[b"p", &bits]);
    }

    /// Feeds one input to node `i` and executes the resulting actions in order, like the node.
    fn drive(&mut self, i: usize, input: Input<Message>) -> Result<(), Failure> {
        let mut pending: VecDeque<Action<Message>> = match &mut self.nodes[i].core {
            Some(core) => core.handle(input).into(),
            None => return Ok(()),
        };
        while let Some(action) = pending.pop_front() {
            match action {
                Action::PersistSafety(w) => self.nodes[i].store.save_safety(&w).expect("mem store"),
                Action::PersistLog(_) => unreachable!("PBFT keeps no replicated log"),
                Action::Broadcast(msg) => {
                    self.check_outgoing(i, &msg)?;
                    let targets: Vec<usize> = (0..self.nodes.len()).filter(|&j| j != i).collect();
                    self.send(i, targets, msg);
                }
                Action::Send { to, msg } => {
                    self.check_outgoing(i, &msg)?;
                    let targets: Vec<usize> =
                        (0..self.nodes.len()).filter(|&j| j != i && self.nodes[j].key.public() == to).collect();
                    self.send(i, targets, msg);
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
                    if self.nodes[i].honest && s.mode == Mode::Normal {
                        self.normal_view_max = self.normal_view_max.max(s.view);
                    }
                    self.trace(&[b"v", &(i as u32).to_be_bytes(), &s.view.to_be_bytes()])
                }
            }
        }
        Ok(())
    }

    /// Checks what honest node `i` sends against two rules of the view change:
    /// - the promise: after asking for view w (VIEW-CHANGE), it never signs a PRE-PREPARE,
    ///   PREPARE or COMMIT for a view below w (re-sending one it signed before is not a new vote);
    ///   this is what makes its VIEW-CHANGE truthful when a NEW-VIEW uses it later;
    /// - no lone escalation (§4.5.2): it asks for a view w only if w is at most one above the
    ///   highest view an honest replica was in normal mode in, or 2f+1 validators asked for views
    ///   at or above w-1, or f+1 others for views at or above w. The check counts every
    ///   VIEW-CHANGE sent, received or not, so it only fails on an escalation nothing justified.
    fn check_outgoing(&mut self, i: usize, msg: &Message) -> Result<(), Failure> {
        if !self.nodes[i].honest {
            return Ok(());
        }
        let me = self.nodes[i].key.public();
        let (kind, view, height, digest) = match msg {
            Message::PrePrepare(p) if p.from == me => (0u8, p.view, p.height(), p.batch.digest(CHAIN_ID)),
            Message::Prepare(p) if p.from == me => (1, p.view, p.height, p.digest),
            Message::Commit(c) if c.from == me => (2, c.view, c.height, c.digest),
            Message::ViewChange(vc) if vc.from == me && vc.view > self.nodes[i].promised_view => {
                let w = vc.view;
                let v = self.nodes[i].validator;
                let senders = |from: u64| -> BTreeSet<usize> {
                    self.view_change_senders.range(from..).flat_map(|(_, s)| s.iter().copied()).collect()
                };
                let f1 = self.sc.f() + 1;
                let quorum = self.ctx.committee.quorum();
                let joined = senders(w).iter().filter(|&&s| s != v).count() >= f1;
                let escalated = senders(w - 1).len() >= quorum;
                if w > self.normal_view_max + 1 && !joined && !escalated {
                    return Err(self.fail(format!(
                        "lone escalation: validator {v} asked for view {w}, but honest replicas were in views up to {} and no quorum asked for view {}",
                        self.normal_view_max,
                        w - 1
                    )));
                }
                self.nodes[i].promised_view = w;
                return Ok(());
            }
            _ => return Ok(()),
        };
        let node = &mut self.nodes[i];
        let vote = (kind, view, height, digest);
        if view < node.promised_view && !node.votes_sent.contains(&vote) {
            let (validator, promised) = (node.validator, node.promised_view);
            return Err(self.fail(format!(
                "promise broken: validator {validator} signed a {} for view {view} height {height} after asking for view {promised}",
                ["pre-prepare", "prepare", "commit"][kind as usize]
            )));
        }
        node.votes_sent.insert(vote);
        Ok(())
    }

    /// Plays the node: builds the block, stores it, and checks agreement and validity.
    fn execute(&mut self, i: usize, b: CommittedBatch) -> Result<(u64, Hash), Failure> {
        let (scenario, seed, at_ms) = (self.sc.name.to_string(), self.seed, self.now);
        let fail = move |reason: String| Failure { scenario, seed, at_ms, reason };
        let node = &mut self.nodes[i];
        let ids: Vec<Hash> = b.txs.iter().map(|t| t.id()).collect();
        let flags = node.store.committed(&ids).expect("mem store");
        if let Err(e) = b.certificate.verify(
            CHAIN_ID,
            &self.ctx.committee,
            ordo_chain::cert::CertKind::Pbft,
            b.header.height,
            &b.header.digest(CHAIN_ID),
        ) {
            return Err(fail(format!(
                "validator {} committed height {} with an invalid certificate: {e}",
                node.validator, b.header.height
            )));
        }
        let (block, exec) = Block::build(CHAIN_ID, &node.tip, b.header, &b.txs, &flags, Some(b.certificate));
        if let Err(e) = node.store.commit(&block, &exec.writes) {
            return Err(fail(format!("validator {} could not store block {}: {e}", node.validator, block.height())));
        }
        let honest = node.honest;
        let validator = node.validator;
        for (id, r) in ids.iter().zip(&exec.results) {
            node.committed_ids.insert(*id);
            if *r == TxResult::Applied && !node.applied_ids.insert(*id) {
                return Err(fail(format!("validity: transaction {id:?} applied twice at validator {validator}")));
            }
        }
        node.tip = block.clone();
        self.trace(&[b"x", &(i as u32).to_be_bytes(), &block.hash.0]);
        if honest {
            for id in &ids {
                if !self.tx_ids.contains(id) {
                    return Err(self.fail(format!(
                        "validity: validator {validator} committed transaction {id:?} nobody submitted"
                    )));
                }
            }
            match self.canon.get(&block.height()) {
                Some(h) if *h != block.hash => {
                    return Err(self.fail(format!(
                        "agreement: validator {validator} committed block {:?} at height {}, another honest replica committed {h:?}",
                        block.hash,
                        block.height()
                    )))
                }
                Some(_) => {}
                None => {
                    self.canon.insert(block.height(), block.hash);
                }
            }
        }
        Ok((block.height(), block.hash))
    }

    fn serve_fetch(&mut self, i: usize, from: ordo_chain::PublicKey, from_height: u64, to_height: u64) {
        let Some(server) = (0..self.nodes.len())
            .find(|&j| j != i && self.nodes[j].key.public() == from && self.nodes[j].core.is_some())
        else {
            return;
        };
        if self.blocked[i][server] || self.blocked[server][i] || self.lost() {
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

    /// Encodes, decodes and verifies a message once (verification is a pure function of the
    /// bytes, so every recipient would reach the same verdict), then delivers it to each target
    /// through the faulty network.
    fn send(&mut self, from: usize, targets: Vec<usize>, msg: Message) {
        let plan = match self.nodes[from].byz {
            Some(b) => self.byzantine_out(from, b, targets, msg),
            None => vec![(targets, msg)],
        };
        for (targets, msg) in plan {
            let bytes = msg.encode();
            let verified = match WireMessage::decode(&bytes, self.cfg.message_max_bytes)
                .and_then(|w| verify_message(&self.ctx, w))
            {
                Ok(v) => Rc::new(v),
                Err(_) => continue, // Rejected by verification: it never reaches a replica.
            };
            if let Message::ViewChange(vc) = &**verified {
                let v = self.nodes[from].validator;
                self.view_change_senders.entry(vc.view).or_default().insert(v);
            }
            self.deliver(from, &targets, verified);
        }
    }

    fn deliver(&mut self, from: usize, targets: &[usize], msg: Rc<Verified<Message>>) {
        for &to in targets {
            if self.blocked[from][to] || self.lost() {
                continue;
            }
            let at = self.now + self.delay();
            self.schedule(at, Event::Deliver { to, msg: msg.clone() });
            if !self.healed && self.sc.duplicate_percent > 0 && self.rng.gen_range(0..100) < self.sc.duplicate_percent {
                let at = self.now + self.delay() + 5;
                self.schedule(at, Event::Deliver { to, msg: msg.clone() });
            }
        }
    }
}
