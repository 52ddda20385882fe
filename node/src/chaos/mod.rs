//! `ordo chaos` (protocol §8): a workload plus random faults on a running `ordo testnet`, then a
//! check a person can trust that nothing was lost.
//!
//! Layout:
//! - this file: the run. It reads DIR/genesis.json (the nodes, the engine and so how many faults
//!   it tolerates), starts the workload and the watcher, injects seeded random faults through the
//!   testnet's supervisor (`crate::testnet::apply_fault`) for `--minutes`, heals everything,
//!   waits for quiescence, then hands what it saw to the check and prints the report.
//! - `workload`: signed puts over every node's API, recording each acknowledgement.
//! - `monitor`: one poller per node on `/v1/status`; the longest time with no commit anywhere.
//! - `http`: a client with short timeouts, for the nodes while they are being faulted.
//! - `collect`: what is read from every node at the end (chain, lookups, `verify-chain`).
//! - `check`: the verdict, a pure function of the acknowledgements and the nodes' final state.
//! - `report`: the figures, as text or JSON.
//!
//! Never more nodes are faulty at once than the engine tolerates: f = ⌊(n-1)/3⌋ for PBFT,
//! ⌊(n-1)/2⌋ for Raft. A node counts as faulty from its fault until, after its restart or resume,
//! it reports ready at the height the others had reached; a node that stopped on its own counts
//! too. A new fault waits for the commit that shows the committee recovered from the previous
//! one, and a random settling time after it.

mod check;
mod collect;
mod http;
mod monitor;
mod report;
mod workload;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use ordo_chain::tx::Clients;
use ordo_chain::{Hash, Keypair};
use ordo_genesis::{ConsensusKind, Genesis};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use crate::cli::{ChaosArgs, ChaosFault};
use crate::client::Api;
use crate::testnet::{apply_fault, nodes, Fault, RunState};
use check::{AckedTx, CheckInput};
use http::Http;
use monitor::{Monitor, NodeObs};
use report::{fault_name, FaultRecord, Report};
use workload::Workload;

/// How often the scheduler looks at the world.
const TICK_MS: u64 = 50;
/// How long every node may take to be ready before the run starts.
const START_READY_MAX_MS: u64 = 60_000;
/// The first fault comes this long after the workload starts (drawn between the two).
const WARMUP_MIN_MS: u64 = 1_000;
const WARMUP_MAX_MS: u64 = 2_000;
/// After a fault's recovery (and its node's return), the next fault waits this long (drawn).
const SETTLE_MIN_MS: u64 = 1_000;
const SETTLE_MAX_MS: u64 = 3_000;
/// How long a killed node stays down before its restart (drawn).
const DOWN_MIN_MS: u64 = 1_000;
const DOWN_MAX_MS: u64 = 5_000;
/// How long a paused node stays paused before its resume (drawn).
const PAUSE_MIN_MS: u64 = 1_000;
const PAUSE_MAX_MS: u64 = 4_000;
/// No commit on the healthy nodes this long after a fault is a liveness violation.
const RECOVERY_MAX_MS: u64 = 60_000;
/// A restarted or resumed node not ready and caught up this long after is a violation.
const NODE_BACK_MAX_MS: u64 = 60_000;
/// How long the heal may take: every node back and every fault's recovery seen.
const HEAL_MAX_MS: u64 = 90_000;
/// How long the nodes may take, once healed, to agree on one height and commit everything
/// they acknowledged.
const QUIESCENCE_MAX_MS: u64 = 120_000;
/// The wait for quiescence ends early when no height, view, readiness or missing transaction
/// has changed for this long.
const QUIESCENCE_STALL_MS: u64 = 20_000;
/// How often the supervisor is asked for its nodes' states (to see a node that died alone).
const SUPERVISOR_POLL_MS: u64 = 1_000;
/// The longest run `--minutes` accepts: a day.
const MINUTES_MAX: f64 = 24.0 * 60.0;
/// The highest `--rate` accepted: chaos is a correctness run, not a load test (see `ordo bench`).
const RATE_MAX: u64 = 5_000;

/// What the wait for quiescence compares from one look to the next: height, view, ready.
type NodePicture = (Option<u64>, Option<u64>, bool);

/// The faults the engine tolerates at once.
fn tolerated(kind: ConsensusKind, n: usize) -> usize {
    match kind {
        ConsensusKind::Pbft => n.saturating_sub(1) / 3,
        ConsensusKind::Raft => n.saturating_sub(1) / 2,
    }
}

fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A fault still in effect: the node is down or paused, or back but not yet caught up.
struct Active {
    /// Index into `Chaos::records`.
    record: usize,
    node: usize,
    kind: ChaosFault,
    /// When to restart or resume it; `None` once done.
    heal_at: Option<Instant>,
    /// When it was restarted or resumed, and the height it must reach to count as back.
    healed: Option<(Instant, u64)>,
    /// Whether its slow return was already reported.
    late_reported: bool,
}

/// A fault waiting for the first commit that shows the committee recovered.
struct Pending {
    record: usize,
    at: Instant,
    at_wall_ms: u64,
    /// Heights up to this one were formed before the fault (or checked and found so).
    checked_height: u64,
}

struct Chaos {
    dir: PathBuf,
    names: Vec<String>,
    urls: Vec<String>,
    keys: Vec<String>,
    f: usize,
    kinds: Vec<ChaosFault>,
    rng: StdRng,
    started: Instant,
    monitor: Monitor,
    records: Vec<FaultRecord>,
    active: Vec<Active>,
    pending: Vec<Pending>,
    /// Nodes that stopped or paused without us, by index.
    foreign: BTreeSet<usize>,
    incidents: Vec<String>,
    next_fault_at: Instant,
    /// The settling time drawn for the latest fault.
    settle: Duration,
    last_supervisor_poll: Instant,
}

pub fn run(args: ChaosArgs) -> anyhow::Result<()> {
    if !(args.minutes.is_finite() && args.minutes > 0.0 && args.minutes <= MINUTES_MAX) {
        bail!("--minutes must be above 0 and at most {MINUTES_MAX} (fractions are fine: 0.5), got {}", args.minutes);
    }
    if !(1..=RATE_MAX).contains(&args.rate) {
        bail!("--rate must be 1 to {RATE_MAX} transactions per second, got {}", args.rate);
    }
    let kinds: Vec<ChaosFault> = args.faults.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    if kinds.is_empty() {
        bail!("--faults names no fault; choose among kill,pause,restart,leader");
    }
    let genesis_path = args.dir.join("genesis.json");
    let genesis = Genesis::load(&genesis_path).with_context(|| {
        format!(
            "{} is not a testnet directory; start one with `ordo testnet --dir {}`",
            args.dir.display(),
            args.dir.display()
        )
    })?;
    let n = genesis.validators.len();
    let f = tolerated(genesis.consensus, n);
    if f == 0 {
        bail!(
            "a {} committee of {n} validators tolerates no fault; chaos needs at least {} validators",
            genesis.consensus.as_str(),
            genesis.consensus.min_validators()
        );
    }
    if !matches!(genesis.clients, Clients::Any) {
        bail!(
            "{} admits only a list of clients; chaos signs with a key of its own, so it needs \"clients\": \"any\"",
            genesis_path.display()
        );
    }
    let states = nodes(&args.dir).with_context(|| {
        format!("is `ordo testnet --dir {}` running? chaos faults the nodes through it", args.dir.display())
    })?;
    if let Some(s) = states.iter().find(|s| s.state != RunState::Running) {
        bail!(
            "{} is {} before the run; `ordo testnet restart|resume {} --dir {}` first",
            s.name,
            s.state,
            s.name,
            args.dir.display()
        );
    }

    // The binary is found now, while it is certainly there: a rebuild during a long run
    // replaces the file, and `current_exe` then names a deleted one.
    let exe = std::env::current_exe().context("cannot find the ordo binary itself (for verify-chain)")?;
    let seed = args.seed.unwrap_or_else(|| rand::rngs::OsRng.next_u64());
    let minutes = args.minutes;
    let kind_names: Vec<&str> = kinds.iter().map(|k| fault_name(*k)).collect();
    eprintln!(
        "chaos: seed {seed} (`--seed {seed}` draws the same faults again), {n} validators ({}, f = {f}), {minutes} \
         min of {} faults, {} tx/s",
        genesis.consensus.as_str(),
        kind_names.join(","),
        args.rate
    );
    let urls: Vec<String> = genesis.validators.iter().map(|v| v.api_addr.clone()).collect();
    let names: Vec<String> = genesis.validators.iter().map(|v| v.name.clone()).collect();
    let monitor = Monitor::start(&urls);
    let before = wait_all_ready(&monitor, &names)?;
    let height_before = before.iter().filter_map(|o| o.height).max().unwrap_or(0);

    // The client key is fresh for every run, so its transactions are new to the chain even when
    // a seed is replayed on the same testnet.
    let key = Keypair::generate();
    let run_tag: String = key.public().to_hex()[..8].to_string();
    let workload = Workload::start(&genesis.chain_id, key, &run_tag, args.rate, &urls);
    monitor.restart_gap_measure();

    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let next_fault_at = started + Duration::from_millis(rng.gen_range(WARMUP_MIN_MS..=WARMUP_MAX_MS));
    let mut chaos = Chaos {
        dir: args.dir.clone(),
        names: names.clone(),
        urls: urls.clone(),
        keys: genesis.validators.iter().map(|v| v.public_key.to_hex()).collect(),
        f,
        kinds: kinds.clone(),
        rng,
        started,
        monitor,
        records: Vec::new(),
        active: Vec::new(),
        pending: Vec::new(),
        foreign: BTreeSet::new(),
        incidents: Vec::new(),
        next_fault_at,
        settle: Duration::ZERO,
        last_supervisor_poll: started,
    };
    let end = started + Duration::from_secs_f64(minutes * 60.0);
    // A failed fault phase still heals what it can before it reports.
    let phase = chaos.fault_phase(end);
    let healed = chaos.heal();
    let phase = phase.and(healed);
    let longest_no_commit = {
        let o = chaos.monitor.shared.lock().expect("observations lock");
        o.longest_gap_until(Instant::now())
    };
    workload.stop_offering();
    let w = workload.finish();
    if let Err(e) = phase {
        // The supervisor failed us mid-run: nothing after this would be a fair check.
        chaos.monitor.stop();
        return Err(e.context("the run stopped before its check; `ordo testnet nodes` shows what is still faulted"));
    }
    chaos.incidents.extend(w.bad_answers.iter().cloned());
    let acked_ids: HashSet<Hash> = w.acks.iter().map(|a| a.tx_id).collect();
    chaos.quiesce(&acked_ids);
    chaos.monitor.stop();

    eprintln!("checking: every node's chain, its answer for {} transactions, and verify-chain...", acked_ids.len());
    let finals: Vec<check::NodeFinal> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .zip(&urls)
            .map(|(name, url)| {
                let (exe, genesis_path, acked_ids) = (&exe, &genesis_path, &acked_ids);
                s.spawn(move || collect::node_final(exe, name, url, genesis_path, acked_ids))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a collector thread panicked")).collect()
    });
    let views_after: Vec<(String, Option<u64>)> =
        finals.iter().map(|n| (n.name.clone(), n.status.as_ref().ok().map(|s| s.view))).collect();
    let input = CheckInput {
        acked: w.acks.iter().map(|a| AckedTx { tx_id: a.tx_id, node: names[a.node].clone() }).collect(),
        nodes: finals,
        incidents: chaos.incidents.clone(),
    };
    let outcome = check::check(&input);
    let report = Report {
        seed,
        dir: args.dir.display().to_string(),
        consensus: genesis.consensus.as_str().to_string(),
        validators: n,
        f,
        minutes,
        rate: args.rate,
        faults_enabled: kinds,
        faults: chaos.records.clone(),
        offered: w.offered,
        unacknowledged: w.given_up,
        refusals: w.refusals,
        longest_no_commit,
        views_before: names.iter().cloned().zip(before.iter().map(|o| o.view)).collect(),
        views_after,
        height_before,
        outcome,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        report.print_text();
    }
    match report.outcome.violations.first() {
        None => Ok(()),
        Some(v) => bail!("chaos found {} violation(s) (seed {seed}); the first: {v}", report.outcome.violations.len()),
    }
}

/// Waits until every node answers and is ready; returns what each said.
fn wait_all_ready(monitor: &Monitor, names: &[String]) -> anyhow::Result<Vec<NodeObs>> {
    let deadline = Instant::now() + Duration::from_millis(START_READY_MAX_MS);
    loop {
        let obs = monitor.snapshot();
        let not_ready: Vec<&str> =
            obs.iter().zip(names).filter(|(o, _)| !(o.reachable && o.ready)).map(|(_, n)| n.as_str()).collect();
        if not_ready.is_empty() {
            return Ok(obs);
        }
        if Instant::now() >= deadline {
            bail!("{} not ready after {} s; see their node.log", not_ready.join(", "), START_READY_MAX_MS / 1000);
        }
        std::thread::sleep(Duration::from_millis(TICK_MS * 4));
    }
}

impl Chaos {
    fn say(&self, what: &str) {
        eprintln!("[{:7.1}s] {what}", self.started.elapsed().as_secs_f64());
    }

    fn is_faulty(&self, i: usize) -> bool {
        self.foreign.contains(&i) || self.active.iter().any(|a| a.node == i)
    }

    /// Injects faults until `end`, keeping at most f nodes faulty.
    fn fault_phase(&mut self, end: Instant) -> anyhow::Result<()> {
        loop {
            let now = Instant::now();
            self.tick(now)?;
            if now >= end {
                return Ok(());
            }
            let busy = self.active.len() + self.foreign.len();
            if busy < self.f && self.pending.is_empty() && now >= self.next_fault_at {
                self.inject()?;
            }
            std::thread::sleep(Duration::from_millis(TICK_MS));
        }
    }

    /// Heals every fault, then waits (bounded) for every node to be back and every fault's
    /// recovery to be seen.
    fn heal(&mut self) -> anyhow::Result<()> {
        self.say("healing: every node restarted or resumed");
        for a in 0..self.active.len() {
            if self.active[a].heal_at.is_some() {
                self.heal_one(a)?;
            }
        }
        let deadline = Instant::now() + Duration::from_millis(HEAL_MAX_MS);
        loop {
            for i in self.foreign.clone() {
                let name = self.names[i].clone();
                let state = nodes(&self.dir)?.into_iter().find(|s| s.index == i).map(|s| s.state);
                match state {
                    Some(RunState::Paused) => drop(apply_fault(&self.dir, &name, Fault::Resume)?),
                    Some(RunState::Stopped { .. }) => drop(apply_fault(&self.dir, &name, Fault::Restart)?),
                    _ => {}
                }
            }
            let now = Instant::now();
            self.tick(now)?;
            if self.active.is_empty() && self.pending.is_empty() && self.foreign.is_empty() {
                return Ok(());
            }
            if now >= deadline {
                for p in &self.pending {
                    let r = &self.records[p.record];
                    self.incidents.push(format!(
                        "no commit of a block formed after the {} of {} ({:.1} s into the run), {} s after the heal",
                        fault_name(r.kind),
                        r.node,
                        r.at.as_secs_f64(),
                        HEAL_MAX_MS / 1000
                    ));
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(TICK_MS));
        }
    }

    /// One look at the world: heals what is due, notices nodes back, recoveries, and nodes that
    /// stopped on their own.
    fn tick(&mut self, now: Instant) -> anyhow::Result<()> {
        for a in 0..self.active.len() {
            if self.active[a].heal_at.is_some_and(|t| now >= t) {
                self.heal_one(a)?;
            }
        }
        self.track_returns(now);
        self.track_recoveries(now);
        if now.duration_since(self.last_supervisor_poll) >= Duration::from_millis(SUPERVISOR_POLL_MS) {
            self.last_supervisor_poll = now;
            self.watch_supervisor()?;
        }
        Ok(())
    }

    /// Draws a fault and injects it.
    fn inject(&mut self) -> anyhow::Result<()> {
        // Every draw happens whatever the world looks like, so one seed gives one sequence.
        let kind = self.kinds[self.rng.gen_range(0..self.kinds.len())];
        let pick: usize = self.rng.gen();
        let down_ms = match kind {
            ChaosFault::Restart => 0,
            ChaosFault::Pause => self.rng.gen_range(PAUSE_MIN_MS..=PAUSE_MAX_MS),
            ChaosFault::Kill | ChaosFault::Leader => self.rng.gen_range(DOWN_MIN_MS..=DOWN_MAX_MS),
        };
        self.settle = Duration::from_millis(self.rng.gen_range(SETTLE_MIN_MS..=SETTLE_MAX_MS));
        let obs = self.monitor.snapshot();
        let healthy: Vec<usize> = (0..self.names.len()).filter(|i| !self.is_faulty(*i) && obs[*i].reachable).collect();
        let target = match kind {
            ChaosFault::Leader => self.leader(&obs).filter(|l| healthy.contains(l)),
            _ => (!healthy.is_empty()).then(|| healthy[pick % healthy.len()]),
        };
        let Some(node) = target else {
            // No healthy node to fault (or no agreed leader yet): try again after a settle.
            self.next_fault_at = Instant::now() + self.settle;
            return Ok(());
        };
        let name = self.names[node].clone();
        let base_height = self.monitor.shared.lock().expect("observations lock").max_height;
        let (at, at_wall_ms) = (Instant::now(), wall_ms());
        let acted = match kind {
            ChaosFault::Kill | ChaosFault::Leader => apply_fault(&self.dir, &name, Fault::Kill)?,
            ChaosFault::Pause => apply_fault(&self.dir, &name, Fault::Pause)?,
            ChaosFault::Restart => {
                apply_fault(&self.dir, &name, Fault::Kill)?;
                apply_fault(&self.dir, &name, Fault::Restart)?
            }
        };
        if acted != name {
            bail!("asked the supervisor to fault {name}, it faulted {acted}");
        }
        let record = self.records.len();
        self.records.push(FaultRecord {
            kind,
            node: name.clone(),
            at: at.duration_since(self.started),
            down: Duration::from_millis(down_ms),
            recovery: None,
            back: None,
        });
        let healed = (kind == ChaosFault::Restart).then(|| (Instant::now(), base_height));
        let heal_at = (kind != ChaosFault::Restart).then(|| at + Duration::from_millis(down_ms));
        self.active.push(Active { record, node, kind, heal_at, healed, late_reported: false });
        self.pending.push(Pending { record, at, at_wall_ms, checked_height: base_height });
        let what = match kind {
            ChaosFault::Kill => format!("kill {name} (SIGKILL; restart in {:.1} s)", down_ms as f64 / 1000.0),
            ChaosFault::Leader => {
                format!("kill the leader, {name} (SIGKILL; restart in {:.1} s)", down_ms as f64 / 1000.0)
            }
            ChaosFault::Pause => format!("pause {name} (SIGSTOP; resume in {:.1} s)", down_ms as f64 / 1000.0),
            ChaosFault::Restart => format!("restart {name} (SIGKILL, then started again at once)"),
        };
        self.say(&format!("fault {}: {what}", record + 1));
        Ok(())
    }

    /// The leader most healthy nodes name, by index.
    fn leader(&self, obs: &[NodeObs]) -> Option<usize> {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, o) in obs.iter().enumerate() {
            if let (false, true, Some(l)) = (self.is_faulty(i), o.reachable, o.leader.as_deref()) {
                *votes.entry(l).or_default() += 1;
            }
        }
        let (key, _) = votes.into_iter().max_by_key(|(_, n)| *n)?;
        self.keys.iter().position(|k| k == key)
    }

    /// Restarts or resumes the node of `self.active[a]`.
    fn heal_one(&mut self, a: usize) -> anyhow::Result<()> {
        let (node, kind) = (self.active[a].node, self.active[a].kind);
        let name = self.names[node].clone();
        let fault = if kind == ChaosFault::Pause { Fault::Resume } else { Fault::Restart };
        apply_fault(&self.dir, &name, fault)?;
        let target = self.monitor.shared.lock().expect("observations lock").max_height;
        let active = &mut self.active[a];
        active.heal_at = None;
        active.healed = Some((Instant::now(), target));
        self.say(&format!("  {name} {}", if kind == ChaosFault::Pause { "resumed" } else { "restarted" }));
        Ok(())
    }

    /// Notices healed nodes that are back: ready, at the height the others had at the heal.
    /// A node back at the right height but alone in another view takes no part in ordering,
    /// so it still counts as faulty: faulting another node then would exceed f.
    fn track_returns(&mut self, now: Instant) {
        let obs = self.monitor.snapshot();
        let mut views: BTreeMap<u64, usize> = BTreeMap::new();
        for (i, o) in obs.iter().enumerate() {
            if let (false, true, Some(v)) = (self.is_faulty(i), o.reachable, o.view) {
                *views.entry(v).or_default() += 1;
            }
        }
        let committee_view = views.into_iter().max_by_key(|(_, n)| *n).map(|(v, _)| v);
        let mut back = Vec::new();
        for (a, act) in self.active.iter_mut().enumerate() {
            let Some((healed_at, target)) = act.healed else { continue };
            let o = &obs[act.node];
            let in_view = committee_view.is_none() || o.view == committee_view;
            if o.reachable && o.ready && o.height.is_some_and(|h| h >= target) && in_view {
                back.push(a);
            } else if !act.late_reported && now.duration_since(healed_at) >= Duration::from_millis(NODE_BACK_MAX_MS) {
                act.late_reported = true;
                let line = format!(
                    "{} was not back {} s after its {}: ready {}, height {} (the others had {target}), view {} (the \
                     others' {})",
                    self.names[act.node],
                    NODE_BACK_MAX_MS / 1000,
                    if act.kind == ChaosFault::Pause { "resume" } else { "restart" },
                    o.ready,
                    o.height.map_or("?".into(), |h| h.to_string()),
                    o.view.map_or("?".into(), |v| v.to_string()),
                    committee_view.map_or("?".into(), |v| v.to_string()),
                );
                eprintln!("[{:7.1}s] {line}", self.started.elapsed().as_secs_f64());
                self.incidents.push(line);
            }
        }
        for a in back.into_iter().rev() {
            let act = self.active.remove(a);
            let r = &mut self.records[act.record];
            let back_after = now.saturating_duration_since(self.started).saturating_sub(r.at);
            r.back = Some(back_after);
            let line =
                format!("  {} back (ready, caught up) {:.2} s after the fault", r.node, back_after.as_secs_f64());
            self.next_fault_at = self.next_fault_at.max(now + self.settle);
            self.say(&line);
        }
    }

    /// For each fault still waiting: has a node that is not faulty committed a block formed
    /// after it? A block formed before the fault and committed just after shows nothing about
    /// recovery, which is why the block's own timestamp is read.
    fn track_recoveries(&mut self, now: Instant) {
        if self.pending.is_empty() {
            return;
        }
        let obs = self.monitor.snapshot();
        let healthy: Vec<usize> = (0..obs.len()).filter(|i| !self.is_faulty(*i) && obs[*i].reachable).collect();
        // Per pending fault: `Some(Some((took, height)))` recovered, `Some(None)` given up.
        let mut outcomes: Vec<Option<Option<(Duration, u64)>>> = Vec::with_capacity(self.pending.len());
        for pending in self.pending.iter_mut() {
            let mut outcome = None;
            loop {
                let next = pending.checked_height + 1;
                let Some(&source) = healthy.iter().find(|i| obs[**i].height.is_some_and(|h| h >= next)) else { break };
                let Ok((200, block)) = Http::new(&self.urls[source]).get(&format!("/v1/blocks/{next}")) else { break };
                if block["timestamp_ms"].as_u64().is_some_and(|t| t >= pending.at_wall_ms) {
                    outcome = Some(Some((now.duration_since(pending.at), next)));
                    break;
                }
                pending.checked_height = next;
            }
            if outcome.is_none() && now.duration_since(pending.at) >= Duration::from_millis(RECOVERY_MAX_MS) {
                let r = &self.records[pending.record];
                self.incidents.push(format!(
                    "no commit on the healthy nodes within {} s of the {} of {} ({:.1} s into the run)",
                    RECOVERY_MAX_MS / 1000,
                    fault_name(r.kind),
                    r.node,
                    r.at.as_secs_f64()
                ));
                outcome = Some(None);
            }
            outcomes.push(outcome);
        }
        let pending = std::mem::take(&mut self.pending);
        for (p, outcome) in pending.into_iter().zip(outcomes) {
            match outcome {
                None => self.pending.push(p),
                Some(None) => {}
                Some(Some((took, height))) => {
                    self.records[p.record].recovery = Some(took);
                    self.next_fault_at = self.next_fault_at.max(now + self.settle);
                    let fault = p.record + 1;
                    self.say(&format!(
                        "  first commit after fault {fault} (height {height}): {:.2} s",
                        took.as_secs_f64()
                    ));
                }
            }
        }
    }

    /// Asks the supervisor for its nodes: one that stopped or paused without us is reported, and
    /// counts as faulty until it runs again.
    fn watch_supervisor(&mut self) -> anyhow::Result<()> {
        let states = nodes(&self.dir).context("the testnet supervisor stopped answering")?;
        for s in states {
            let ours = self.active.iter().any(|a| a.node == s.index);
            let running = s.state == RunState::Running;
            if running {
                self.foreign.remove(&s.index);
            } else if !ours && self.foreign.insert(s.index) {
                let line = format!("{} is {} without a fault from chaos; see its node.log", s.name, s.state);
                self.say(&line);
                self.incidents.push(line);
            }
        }
        Ok(())
    }

    /// Waits (bounded) until every node is ready in one view at one height with one hash, and
    /// every acknowledged transaction is in the chain of the first node.
    fn quiesce(&mut self, acked: &HashSet<Hash>) {
        let deadline = Instant::now() + Duration::from_millis(QUIESCENCE_MAX_MS);
        let api = Api::new(&self.urls[0]);
        let mut missing: HashSet<Hash> = acked.clone();
        let mut scanned = 0u64;
        let mut last_say = Instant::now();
        // What the nodes look like, and since when: a picture that stops changing will not
        // change by waiting longer.
        let mut picture: Option<(Vec<NodePicture>, usize)> = None;
        let mut picture_since = Instant::now();
        loop {
            let obs = self.monitor.snapshot();
            if let Some(tip) = obs[0].height.filter(|h| *h > scanned) {
                if let Ok(blocks) = collect::blocks(&api, scanned + 1, tip) {
                    for b in &blocks {
                        for (id, _) in collect::block_txs(b).unwrap_or_default() {
                            missing.remove(&id);
                        }
                    }
                    scanned = tip;
                }
            }
            let first = &obs[0];
            let agreed = obs.iter().all(|o| {
                o.reachable
                    && o.ready
                    && o.height == first.height
                    && o.view == first.view
                    && o.last_block_hash == first.last_block_hash
            });
            if agreed && missing.is_empty() {
                self.say(&format!("quiescent at height {}", first.height.unwrap_or(0)));
                return;
            }
            if Instant::now() >= deadline {
                self.say(&format!("not quiescent after {} s; checking anyway", QUIESCENCE_MAX_MS / 1000));
                return;
            }
            let now_picture = (obs.iter().map(|o| (o.height, o.view, o.ready)).collect(), missing.len());
            if picture.as_ref() != Some(&now_picture) {
                picture = Some(now_picture);
                picture_since = Instant::now();
            } else if picture_since.elapsed() >= Duration::from_millis(QUIESCENCE_STALL_MS) {
                self.say(&format!("nothing changed for {} s; checking now", QUIESCENCE_STALL_MS / 1000));
                return;
            }
            if last_say.elapsed() >= Duration::from_secs(5) {
                last_say = Instant::now();
                let heights: Vec<String> = obs.iter().map(|o| o.height.map_or("?".into(), |h| h.to_string())).collect();
                self.say(&format!(
                    "waiting for quiescence: heights {}, {} acknowledged transactions not yet in {}'s chain",
                    heights.join("/"),
                    missing.len(),
                    self.names[0]
                ));
            }
            std::thread::sleep(Duration::from_millis(TICK_MS * 4));
        }
    }
}
