//! `ordo testnet`: a local consortium in one command, and the faults a user causes on it from a
//! second terminal (protocol §8).
//!
//! Layout:
//! - `supervise`: `ordo testnet [--nodes] [--consensus] [--dir] [--p2p-port] [--api-port]`, the
//!   supervisor. It writes DIR as `ordo genesis` would when DIR holds no genesis.json (and reuses
//!   DIR as it is otherwise, data included), starts every validator as its own `ordo node` child
//!   process, reports a validator that exits or is killed and keeps the others running, applies
//!   the faults it is asked for, and on Ctrl-C (or SIGTERM) stops them all.
//! - `control`: the control channel between the supervisor and `ordo testnet
//!   kill|pause|resume|restart|nodes` (or [`apply_fault`] and [`nodes`], which `ordo chaos`
//!   calls): a Unix socket `DIR/testnet.sock`, and `DIR/testnet.state`, a JSON record of the
//!   supervisor's pid and its nodes, locked (flock) by the live supervisor so that state left by
//!   a dead one is recognised as stale.
//!
//! The supervisor stays the parent of every node, restarted ones included, and is the only
//! process that ever signals one: it holds each node's `Child`, whose pid cannot be reused before
//! the supervisor reaps it, so a signal can never reach an unrelated process.

mod control;
mod supervise;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cli::{TestnetArgs, TestnetCommand, TestnetNodesArgs};

pub use control::{apply_fault, nodes};

/// A fault a user (or `ordo chaos`) causes on one validator of a running testnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// SIGKILL: the process gets no chance to clean up.
    Kill,
    /// SIGSTOP: the process stays alive but neither answers nor votes.
    Pause,
    /// SIGCONT for a paused node.
    Resume,
    /// Start a stopped (killed or exited) node again; it catches up from its peers.
    Restart,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Resume => "resume",
            Fault::Restart => "restart",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a validator's process runs, as its supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RunState {
    Running,
    /// Stopped with SIGSTOP (by `ordo testnet pause` or by anyone else).
    Paused,
    /// Not running: killed, exited on its own, or never started. `status` says how it ended,
    /// e.g. "signal 9: SIGKILL" or "exit code 1".
    Stopped {
        status: String,
    },
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunState::Running => f.write_str("running"),
            RunState::Paused => f.write_str("paused"),
            RunState::Stopped { status } => write!(f, "stopped ({status})"),
        }
    }
}

/// One validator of a running testnet, as its supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeState {
    /// The validator's name in genesis.json, e.g. "node2".
    pub name: String,
    /// Its position in genesis.json's validator list (and its directory, DIR/node<index>).
    pub index: usize,
    /// Its REST API, e.g. "http://127.0.0.1:8082".
    pub api_url: String,
    pub state: RunState,
    /// The process id while the process exists (running or paused).
    pub pid: Option<u32>,
}

/// `ordo testnet ...`: the supervisor, or one of the commands that talk to it.
pub fn run(args: TestnetArgs) -> anyhow::Result<()> {
    let (fault, node) = match args.command {
        None => return supervise::run(&args),
        Some(TestnetCommand::Nodes(a)) => return print_nodes(&a),
        Some(TestnetCommand::Kill(a)) => (Fault::Kill, a),
        Some(TestnetCommand::Pause(a)) => (Fault::Pause, a),
        Some(TestnetCommand::Resume(a)) => (Fault::Resume, a),
        Some(TestnetCommand::Restart(a)) => (Fault::Restart, a),
    };
    let name = apply_fault(&node.dir, &node.node, fault)?;
    println!("{name}");
    eprintln!("{}", done_message(&name, fault, &node.dir));
    Ok(())
}

/// What the user reads after a fault was applied, with the command that undoes it.
fn done_message(name: &str, fault: Fault, dir: &Path) -> String {
    let dir = dir.display();
    match fault {
        Fault::Kill => format!("{name} killed (SIGKILL); `ordo testnet restart {name} --dir {dir}` starts it again"),
        Fault::Pause => format!("{name} paused (SIGSTOP); `ordo testnet resume {name} --dir {dir}` resumes it"),
        Fault::Resume => format!("{name} resumed (SIGCONT)"),
        Fault::Restart => format!("{name} restarted; it catches up from its peers"),
    }
}

fn print_nodes(args: &TestnetNodesArgs) -> anyhow::Result<()> {
    let list = nodes(&args.dir)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for n in &list {
        let pid = n.pid.map(|p| format!("pid {p}")).unwrap_or_else(|| "-".into());
        println!("{:<10} {:<10} {:<28} {}", n.name, pid, n.api_url, n.state);
    }
    Ok(())
}
