//! `ordo testnet`: a local consortium in one command (SPEC §8). It writes DIR as `ordo genesis`
//! would when DIR holds no genesis.json (and reuses DIR as it is otherwise, data included),
//! starts every validator as its own OS process running `ordo node`, prints each API and
//! explorer URL, and on Ctrl-C (or SIGTERM) stops them all with SIGTERM, waiting for each.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ordo_genesis::layout::{node_dir, write_network, NetworkSpec};
use ordo_genesis::{ConsensusKind, Genesis};

use crate::cli::{ConsensusArg, TestnetArgs};

/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_GRACE_MS: u64 = 15_000;

fn send_sigterm(child: &Child) {
    // SAFETY: `kill` with a pid we spawned and a valid signal number has no memory effects.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
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

fn spawn_node(exe: &Path, dir: &Path) -> anyhow::Result<Child> {
    let log = File::options().create(true).append(true).open(dir.join("node.log"))?;
    Command::new(exe)
        .arg("node")
        .arg("--config")
        .arg(dir.join("config.toml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("could not start the node in {}", dir.display()))
}

pub fn run(args: TestnetArgs) -> anyhow::Result<()> {
    let genesis = ensure_network(&args)?;
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for (i, v) in genesis.validators.iter().enumerate() {
        let dir = node_dir(&args.dir, i);
        children.push((v.name.clone(), spawn_node(&exe, &dir)?));
        println!("{}: api {}  explorer {}/  log {}", v.name, v.api_addr, v.api_addr, dir.join("node.log").display());
    }
    println!("{} validators running ({}); Ctrl-C stops them all", children.len(), genesis.consensus.as_str());

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let mut exited_early = None;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for (name, child) in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                exited_early = Some(format!("{name} exited on its own ({status}); see its node.log"));
            }
        }
        if exited_early.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("stopping {} validators...", children.len());
    for (_, child) in &children {
        send_sigterm(child);
    }
    let deadline = Instant::now() + Duration::from_millis(STOP_GRACE_MS);
    for (name, child) in children.iter_mut() {
        loop {
            if child.try_wait()?.is_some() {
                break;
            }
            if Instant::now() >= deadline {
                eprintln!("{name} did not stop in time; killing it");
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    eprintln!("all validators stopped; `ordo testnet --dir {}` resumes them", args.dir.display());
    match exited_early {
        Some(msg) => anyhow::bail!(msg),
        None => Ok(()),
    }
}
