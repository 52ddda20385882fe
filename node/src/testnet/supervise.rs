//! The supervisor of `ordo testnet` (protocol §8): one `ordo node` child process per validator,
//! kept running through the faults it exists to demonstrate.
//!
//! A validator that exits or is killed, by `ordo testnet kill` or by anyone else, is reported
//! once (name, exit status, log, the command that starts it again) and the others keep running.
//! Faults arrive from the control channel (`control`) and are applied here, on the main thread,
//! which is the only place that signals a node. Ctrl-C, SIGTERM or SIGHUP stops every node
//! cleanly: SIGCONT (a paused node cannot act on anything else), SIGTERM, a grace period, then
//! SIGKILL; the supervisor then exits 0.
//!
//! Each node runs in a process group of its own, so a Ctrl-C in the terminal reaches only the
//! supervisor, which stops the nodes in order; and each asks the kernel for SIGKILL when the
//! supervisor dies, so a supervisor killed with SIGKILL leaves no orphan holding the ports
//! (a node is built to survive kill -9: its store and votes are synced before they count).

use std::fs::File;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use ordo_genesis::layout::{node_dir, write_network, NetworkSpec};
use ordo_genesis::{ConsensusKind, Genesis};

use super::control::{self, Job, Reply, Request, StateFile};
use super::{Fault, NodeState, RunState};
use crate::cli::{ConsensusArg, TestnetArgs};

/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_GRACE_MS: u64 = 15_000;
/// The longest the loop waits for a request before it looks again for exited nodes and for
/// Ctrl-C.
const POLL_INTERVAL_MS: u64 = 100;
/// How long `pause` and `resume` wait for the kernel to show the node stopped or running again,
/// so that the reply, and the next `nodes`, tell the truth.
const SIGNAL_SETTLE_MS: u64 = 1_000;

/// One validator's process, as far as the supervisor knows.
enum Proc {
    /// The process exists: running, or stopped by SIGSTOP when `paused`. It has not been reaped,
    /// so its pid cannot have been reused: signalling `child.id()` reaches this node and no other.
    Alive { child: Child, paused: bool },
    /// Killed, exited on its own, or not started; `status` says how it ended.
    Stopped { status: String },
}

struct Node {
    name: String,
    api_url: String,
    proc: Proc,
}

struct Supervisor {
    /// DIR as the user wrote it, so the commands we print work when pasted in the same place.
    dir: PathBuf,
    exe: PathBuf,
    socket: PathBuf,
    nodes: Vec<Node>,
    state: StateFile,
    /// Each node's async worker threads (`TOKIO_WORKER_THREADS`), or `None` when the user set
    /// that variable for the supervisor, which its nodes then inherit.
    worker_threads: Option<usize>,
}

/// The variable tokio's multi-threaded runtime reads for its number of worker threads (by
/// default one per core).
const WORKER_THREADS_ENV: &str = "TOKIO_WORKER_THREADS";

/// The async worker threads of each of `nodes` validators that share a machine of `cores`: its
/// share of the cores, at least one. Every validator otherwise starts one worker per core, and
/// four validators on two cores then keep eight workers (plus their verification threads)
/// runnable on two cores: a 60k burst took 7% more CPU per transaction that way, and committed
/// 8% less (docs/performance.md, eleventh round). Signature checks run on the blocking pool,
/// not on the workers, so a node with one worker still verifies on every core.
fn worker_threads_per_node(cores: usize, nodes: usize) -> usize {
    (cores / nodes.max(1)).max(1)
}

/// `ordo testnet [--nodes] [--consensus] [--dir] [--p2p-port] [--api-port]`.
pub fn run(args: &TestnetArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("could not create {}", args.dir.display()))?;
    let (state, stale) = StateFile::acquire(&args.dir)?;
    if let Some(pid) = stale {
        eprintln!(
            "replacing the state a supervisor (pid {pid}) that is no longer running left in {}",
            args.dir.display()
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = ensure_network(args).and_then(|genesis| {
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
            signal_hook::flag::register(sig, stop.clone())?;
        }
        let (queue, socket) = control::serve(&args.dir)?;
        Ok((genesis, queue, socket))
    });
    let (genesis, queue, socket) = match started {
        Ok(s) => s,
        Err(e) => {
            state.remove();
            return Err(e);
        }
    };
    let nodes = genesis
        .validators
        .iter()
        .map(|v| Node {
            name: v.name.clone(),
            api_url: v.api_addr.clone(),
            proc: Proc::Stopped { status: "not started".into() },
        })
        .collect();
    let worker_threads = match std::env::var_os(WORKER_THREADS_ENV) {
        Some(_) => None,
        None => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Some(worker_threads_per_node(cores, genesis.validators.len()))
        }
    };
    let mut sup =
        Supervisor { dir: args.dir.clone(), exe: std::env::current_exe()?, socket, nodes, state, worker_threads };
    let result = sup.start_all(&genesis).and_then(|()| sup.watch(&queue, &stop));
    sup.stop_all();
    let Supervisor { socket, state, dir, .. } = sup;
    let _ = std::fs::remove_file(socket);
    state.remove();
    result?;
    eprintln!("all validators stopped; `ordo testnet --dir {}` resumes them", dir.display());
    Ok(())
}

fn ensure_network(args: &TestnetArgs) -> anyhow::Result<Genesis> {
    let genesis_path = args.dir.join("genesis.json");
    if genesis_path.exists() {
        let g = Genesis::load(&genesis_path)?;
        eprintln!("reusing {} ({} validators) and its data", args.dir.display(), g.validators.len());
        return Ok(g);
    }
    let spec = NetworkSpec {
        validators: args.nodes,
        consensus: match args.consensus {
            ConsensusArg::Pbft => ConsensusKind::Pbft,
            ConsensusArg::Raft => ConsensusKind::Raft,
        },
        chain_id: "ordo-testnet".into(),
        out_dir: args.dir.clone(),
        host: "127.0.0.1".parse().expect("a valid address"),
        p2p_port: args.p2p_port,
        api_port: args.api_port,
        genesis_time_ms: SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64,
    };
    let g = write_network(&spec).with_context(|| format!("could not write {}", args.dir.display()))?;
    eprintln!("wrote {} ({} validators)", args.dir.display(), g.validators.len());
    Ok(g)
}

impl Supervisor {
    fn start_all(&mut self, genesis: &Genesis) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            self.spawn(i)?;
            let n = &self.nodes[i];
            println!("{}: api {}  explorer {}/  log {}", n.name, n.api_url, n.api_url, self.log_path(i).display());
        }
        self.save();
        println!("{} validators running ({}); Ctrl-C stops them all", self.nodes.len(), genesis.consensus.as_str());
        match self.worker_threads {
            Some(n) => println!(
                "they share this machine's cores: {n} async worker thread(s) each ({WORKER_THREADS_ENV} overrides)"
            ),
            None => println!("async worker threads per validator: {WORKER_THREADS_ENV} as set"),
        }
        println!(
            "faults, from another terminal: `ordo testnet kill|pause|resume|restart NODE --dir {}` (NODE: node2, 2 or \
             leader); `ordo testnet nodes --dir {}` lists them",
            self.dir.display(),
            self.dir.display()
        );
        Ok(())
    }

    /// Until Ctrl-C: reports nodes that exit, and answers the control channel.
    fn watch(&mut self, queue: &Receiver<Job>, stop: &AtomicBool) -> anyhow::Result<()> {
        while !stop.load(Ordering::Relaxed) {
            for i in 0..self.nodes.len() {
                self.reap(i);
            }
            match queue.recv_timeout(Duration::from_millis(POLL_INTERVAL_MS)) {
                Ok(job) => {
                    let reply = self.handle(job.request);
                    // The client may have given up waiting; what was done is in the state file.
                    let _ = job.reply.send(reply);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("the control listener on {} stopped; stopping the testnet", self.socket.display())
                }
            }
        }
        Ok(())
    }

    fn log_path(&self, i: usize) -> PathBuf {
        node_dir(&self.dir, i).join("node.log")
    }

    fn restart_hint(&self, name: &str) -> String {
        format!("`ordo testnet restart {name} --dir {}` starts it again", self.dir.display())
    }

    /// Starts node `i`'s process; its output is appended to its node.log.
    fn spawn(&mut self, i: usize) -> anyhow::Result<u32> {
        let dir = node_dir(&self.dir, i);
        let log = File::options().create(true).append(true).open(dir.join("node.log"))?;
        let supervisor = std::process::id();
        let mut cmd = Command::new(&self.exe);
        cmd.arg("node")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        if let Some(n) = self.worker_threads {
            cmd.env(WORKER_THREADS_ENV, n.to_string());
        }
        // SAFETY: between fork and exec the closure calls only async-signal-safe functions.
        // The death signal is tied to the thread that forks, so every node is spawned from the
        // supervisor's main thread, which lives as long as the process.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The supervisor may have died before the death signal was armed.
                if libc::getppid() as u32 != supervisor {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("could not start the node in {}", dir.display()))?;
        let pid = child.id();
        self.nodes[i].proc = Proc::Alive { child, paused: false };
        Ok(pid)
    }

    /// Notices that node `i` exited, and reports it once.
    fn reap(&mut self, i: usize) {
        let Proc::Alive { child, .. } = &mut self.nodes[i].proc else { return };
        let status = match child.try_wait() {
            Ok(None) => return,
            Ok(Some(status)) => describe(status),
            Err(e) => format!("could not be waited for: {e}"),
        };
        let name = self.nodes[i].name.clone();
        eprintln!("{name} exited ({status}); log: {}; {}", self.log_path(i).display(), self.restart_hint(&name));
        self.nodes[i].proc = Proc::Stopped { status };
        self.save();
    }

    fn handle(&mut self, request: Request) -> Reply {
        match request {
            Request::Nodes {} => Reply::Nodes { nodes: self.snapshot() },
            Request::Fault { fault, node } => match self.apply(fault, &node) {
                Ok(node) => Reply::Done { node },
                Err(message) => Reply::Error { message },
            },
        }
    }

    /// Node `node`'s index: `node` is a name or an index.
    fn find(&self, node: &str) -> Result<usize, String> {
        if let Some(i) = self.nodes.iter().position(|n| n.name == node) {
            return Ok(i);
        }
        match node.parse::<usize>() {
            Ok(i) if i < self.nodes.len() => Ok(i),
            _ => Err(format!(
                "no node `{node}` in {}: name one of {}, an index 0..={}, or `leader`",
                self.dir.display(),
                self.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", "),
                self.nodes.len().saturating_sub(1)
            )),
        }
    }

    /// Applies `fault` to `node`; an error says why nothing was done.
    fn apply(&mut self, fault: Fault, node: &str) -> Result<String, String> {
        let i = self.find(node)?;
        // A node that died since the last look is reported, and judged, as stopped.
        self.reap(i);
        let name = self.nodes[i].name.clone();
        let dir = self.dir.display().to_string();
        let log = self.log_path(i).display().to_string();
        let restart_hint = self.restart_hint(&name);
        match (fault, &mut self.nodes[i].proc) {
            (Fault::Restart, Proc::Stopped { .. }) => {
                let pid = self.spawn(i).map_err(|e| format!("{e:#}"))?;
                eprintln!("{name} restarted by `ordo testnet restart` (pid {pid}); log: {log}");
            }
            (Fault::Restart, Proc::Alive { child, .. }) => {
                // Restarting a live node is refused rather than done as kill+start: a restart
                // then always means "bring back what is down", and a kill is always asked for.
                return Err(format!(
                    "{name} is running (pid {}); only a stopped node can be restarted: `ordo testnet kill {name} --dir \
                     {dir}` first",
                    child.id()
                ));
            }
            (_, Proc::Stopped { status }) => {
                return Err(format!("{name} is not running ({status}); {restart_hint}"));
            }
            (Fault::Kill, Proc::Alive { child, .. }) => {
                child.kill().map_err(|e| format!("could not kill {name}: {e}"))?;
                let status = child.wait().map(describe).unwrap_or_else(|e| format!("could not be waited for: {e}"));
                eprintln!("{name} killed by `ordo testnet kill` ({status}); log: {log}; {restart_hint}");
                self.nodes[i].proc = Proc::Stopped { status };
            }
            (Fault::Pause, Proc::Alive { child, paused }) => {
                if is_paused(child, *paused) {
                    return Err(format!(
                        "{name} is already paused; `ordo testnet resume {name} --dir {dir}` resumes it"
                    ));
                }
                signal(child, libc::SIGSTOP).map_err(|e| format!("could not pause {name}: {e}"))?;
                settle(child, true);
                *paused = true;
                eprintln!("{name} paused by `ordo testnet pause` (SIGSTOP); `ordo testnet resume {name} --dir {dir}` resumes it");
            }
            (Fault::Resume, Proc::Alive { child, paused }) => {
                if !is_paused(child, *paused) {
                    return Err(format!("{name} is not paused"));
                }
                signal(child, libc::SIGCONT).map_err(|e| format!("could not resume {name}: {e}"))?;
                settle(child, false);
                *paused = false;
                eprintln!("{name} resumed by `ordo testnet resume` (SIGCONT)");
            }
        }
        self.save();
        Ok(name)
    }

    fn snapshot(&self) -> Vec<NodeState> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(index, n)| {
                let (state, pid) = match &n.proc {
                    Proc::Alive { child, paused } => {
                        (if is_paused(child, *paused) { RunState::Paused } else { RunState::Running }, Some(child.id()))
                    }
                    Proc::Stopped { status } => (RunState::Stopped { status: status.clone() }, None),
                };
                NodeState { name: n.name.clone(), index, api_url: n.api_url.clone(), state, pid }
            })
            .collect()
    }

    /// Records the nodes in DIR/testnet.state; a failure is worth a warning, not a stop.
    fn save(&mut self) {
        let nodes = self.snapshot();
        if let Err(e) = self.state.write(&self.socket, &nodes) {
            eprintln!("warning: could not update {}: {e}", self.dir.join(control::STATE_FILE).display());
        }
    }

    /// Stops every node still alive: SIGCONT, SIGTERM, then SIGKILL after the grace period.
    fn stop_all(&mut self) {
        let alive = self.nodes.iter().filter(|n| matches!(n.proc, Proc::Alive { .. })).count();
        eprintln!("stopping {alive} validators...");
        for n in &self.nodes {
            if let Proc::Alive { child, .. } = &n.proc {
                // A paused node must run again to act on SIGTERM.
                let _ = signal(child, libc::SIGCONT);
                let _ = signal(child, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_millis(STOP_GRACE_MS);
        for i in 0..self.nodes.len() {
            let name = self.nodes[i].name.clone();
            let Proc::Alive { child, .. } = &mut self.nodes[i].proc else { continue };
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break describe_stop(status),
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                    Ok(None) => {
                        eprintln!("{name} did not stop within {STOP_GRACE_MS} ms of SIGTERM; killing it");
                        let _ = child.kill();
                        break child.wait().map(describe).unwrap_or_else(|e| e.to_string());
                    }
                    Err(e) => break format!("could not be waited for: {e}"),
                }
            };
            if status != "stopped" {
                eprintln!("{name} {status}; log: {}", self.log_path(i).display());
            }
            self.nodes[i].proc = Proc::Stopped { status };
        }
    }
}

/// Sends `sig` to a child that has not been reaped (so its pid is still its own).
fn signal(child: &Child, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill(2) has no memory effects; the pid is our unreaped child's.
    if unsafe { libc::kill(child.id() as libc::pid_t, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the kernel shows `pid` stopped (SIGSTOP, from us or anyone else); `None` when
/// /proc cannot tell.
fn proc_stopped(pid: u32) -> Option<bool> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ...`: comm may hold spaces and parentheses, so look after the last ')'.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    Some(state == "T")
}

/// Whether the node is paused: what the kernel says, or what we last did when it cannot say.
fn is_paused(child: &Child, paused_by_us: bool) -> bool {
    proc_stopped(child.id()).unwrap_or(paused_by_us)
}

/// Waits (briefly) until the kernel shows the child stopped, or running again: signals are
/// delivered asynchronously.
fn settle(child: &Child, stopped: bool) {
    let deadline = Instant::now() + Duration::from_millis(SIGNAL_SETTLE_MS);
    while Instant::now() < deadline {
        match proc_stopped(child.id()) {
            Some(s) if s != stopped => std::thread::sleep(Duration::from_millis(1)),
            _ => return,
        }
    }
}

/// How a process ended, e.g. "exit code 1" or "signal 9: SIGKILL".
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    match status.signal() {
        Some(sig) => {
            let core = if status.core_dumped() { ", core dumped" } else { "" };
            match signal_name(sig) {
                Some(name) => format!("signal {sig}: {name}{core}"),
                None => format!("signal {sig}{core}"),
            }
        }
        None => format!("{status}"),
    }
}

/// How a process ended after our SIGTERM: "stopped" when cleanly, else how.
fn describe_stop(status: ExitStatus) -> String {
    if status.success() {
        "stopped".into()
    } else {
        format!("exited ({}) after SIGTERM", describe(status))
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_sharing_a_machine_split_its_cores() {
        assert_eq!(worker_threads_per_node(2, 4), 1, "this machine: four validators on two cores");
        assert_eq!(worker_threads_per_node(8, 4), 2);
        assert_eq!(worker_threads_per_node(9, 4), 2, "whole threads only");
        assert_eq!(worker_threads_per_node(64, 1), 64, "a lone validator keeps every core");
        assert_eq!(worker_threads_per_node(1, 7), 1, "never none");
        assert_eq!(worker_threads_per_node(4, 0), 4);
    }

    #[test]
    fn exit_statuses_read_as_the_user_expects() {
        // Raw wait(2) statuses: the exit code in the second byte, a signal in the low bits.
        assert_eq!(describe(ExitStatus::from_raw(1 << 8)), "exit code 1");
        assert_eq!(describe(ExitStatus::from_raw(0)), "exit code 0");
        assert_eq!(describe(ExitStatus::from_raw(libc::SIGKILL)), "signal 9: SIGKILL");
        assert_eq!(describe(ExitStatus::from_raw(libc::SIGSEGV | 0x80)), "signal 11: SIGSEGV, core dumped");
        assert_eq!(describe(ExitStatus::from_raw(libc::SIGRTMIN() + 1)), format!("signal {}", libc::SIGRTMIN() + 1));
        assert_eq!(describe_stop(ExitStatus::from_raw(0)), "stopped");
        assert_eq!(describe_stop(ExitStatus::from_raw(2 << 8)), "exited (exit code 2) after SIGTERM");
    }

    #[test]
    fn a_stopped_process_reads_as_paused_in_proc() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        assert_eq!(proc_stopped(child.id()), Some(false));
        signal(&child, libc::SIGSTOP).unwrap();
        settle(&child, true);
        assert_eq!(proc_stopped(child.id()), Some(true));
        signal(&child, libc::SIGCONT).unwrap();
        settle(&child, false);
        assert_eq!(proc_stopped(child.id()), Some(false));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(proc_stopped(u32::MAX), None, "no such process");
    }
}
