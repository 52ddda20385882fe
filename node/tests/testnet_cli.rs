//! End-to-end tests of `ordo testnet` itself, the command users run (protocol §8): the supervisor is
//! a child process of the test, and every fault comes from `ordo testnet kill|pause|resume|restart`
//! as a user types it in a second terminal (plus one SIGKILL from outside, the defect this
//! command once died of). The nodes are checked over their REST API: every transaction admitted
//! (202) commits, and all nodes hold the same chain.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_ports, metric, ordo, submit_round_robin, wait_committed, Testnet};
use ordo_chain::Keypair;
use ordo_genesis::Genesis;
use serde_json::Value;

/// A running `ordo testnet`, its stdout and stderr captured in files. Dropping it SIGKILLs the
/// supervisor, whose nodes then die with it (they ask the kernel for that).
struct Supervisor {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Supervisor {
    fn start(dir: &Path, p2p: u16, api: u16, tag: &str) -> Supervisor {
        let (stdout, stderr) = (dir.with_file_name(format!("{tag}.out")), dir.with_file_name(format!("{tag}.err")));
        let child = ordo()
            .arg("testnet")
            .arg("--dir")
            .arg(dir)
            .args(["--p2p-port", &p2p.to_string(), "--api-port", &api.to_string()])
            .env("RUST_LOG", "info")
            .env_remove("TOKIO_WORKER_THREADS")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Supervisor { child, stdout, stderr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn output(&self) -> String {
        let out = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        format!("{out}{err}")
    }

    fn assert_running(&mut self) {
        assert!(self.child.try_wait().unwrap().is_none(), "the supervisor exited:\n{}", self.output());
    }

    /// Waits until the supervisor has printed `text`.
    fn wait_output(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.output().contains(text) {
            assert!(Instant::now() < deadline, "the supervisor never printed {text:?}:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own unreaped child.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, sig) }, 0);
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the supervisor did not exit:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ordo testnet ARGS --dir DIR`, as typed in a second terminal.
fn testnet_cmd(dir: &Path, args: &[&str]) -> Output {
    ordo().arg("testnet").args(args).arg("--dir").arg(dir).output().unwrap()
}

/// Runs a fault command that must succeed; returns the name it printed.
fn fault(dir: &Path, what: &str, node: &str) -> String {
    let out = testnet_cmd(dir, &[what, node]);
    assert!(out.status.success(), "`ordo testnet {what} {node}` failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs a fault command that must fail; returns its error.
fn refused(dir: &Path, what: &str, node: &str) -> String {
    let out = testnet_cmd(dir, &[what, node]);
    assert!(!out.status.success(), "`ordo testnet {what} {node}` should have failed");
    assert!(out.stdout.is_empty(), "a refused command names no node: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap()
}

/// `ordo testnet nodes --json`.
fn node_list(dir: &Path) -> Vec<Value> {
    let out = testnet_cmd(dir, &["nodes", "--json"]);
    assert!(out.status.success(), "`ordo testnet nodes` failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

fn state_of(dir: &Path, i: usize) -> Value {
    node_list(dir)[i]["state"].clone()
}

fn pids(dir: &Path) -> Vec<u32> {
    node_list(dir).iter().map(|n| n["pid"].as_u64().expect("every node runs") as u32).collect()
}

/// Whether `pid` is a live process (a zombie waiting for its parent counts as dead).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            !matches!(stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()), Some("Z" | "X"))
        }
        Err(_) => false,
    }
}

/// Waits until none of `pids` is alive; SIGKILLs stragglers that are still `ordo node`s of `dir`
/// (so a failure leaves nothing behind) and fails.
fn assert_all_exit(pids: &[u32], dir: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    for p in &left {
        let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(dir.to_str().unwrap()) {
            // SAFETY: kill(2); the pid was just checked to be one of this test's nodes.
            unsafe { libc::kill(*p as i32, libc::SIGKILL) };
        }
    }
    assert!(left.is_empty(), "{what}: nodes {left:?} are still running");
}

fn leader_index(t: &Testnet, asking: usize) -> usize {
    let (_, s) = t.get(asking, "/v1/status");
    let leader = s["leader"].as_str().unwrap().to_string();
    t.genesis.validators.iter().position(|v| v.public_key.to_hex() == leader).unwrap()
}

/// Nodes `nodes` serve the same block hash and state hash at every height up to `h`.
fn assert_agree(t: &Testnet, nodes: &[usize], h: u64) {
    for height in 0..=h {
        let blocks: Vec<(Value, Value)> = nodes
            .iter()
            .map(|&i| {
                let (c, b) = t.get(i, &format!("/v1/blocks/{height}"));
                assert_eq!(c, 200, "node{i} has no block {height}");
                (b["hash"].clone(), b["state_hash"].clone())
            })
            .collect();
        assert!(blocks.windows(2).all(|w| w[0] == w[1]), "fork at height {height}: {blocks:?}");
    }
}

/// Waits until node `i` has reached height `h` and agrees with `with` up to it.
fn assert_caught_up(t: &Testnet, i: usize, h: u64, with: &[usize]) {
    t.wait_for(&format!("node{i} to catch up to {h}"), Duration::from_secs(90), |t| {
        t.height(i).is_some_and(|x| x >= h)
    });
    let mut all = with.to_vec();
    all.push(i);
    assert_agree(t, &all, h);
}

fn min_height(t: &Testnet, nodes: &[usize]) -> u64 {
    nodes.iter().map(|i| t.height(*i).unwrap()).min().unwrap()
}

#[test]
fn a_testnet_survives_the_faults_a_user_causes_from_another_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let (p2p, api) = free_ports(4);
    let mut sup = Supervisor::start(&dir, p2p, api, "supervisor");
    let genesis_file = dir.join("genesis.json");
    let started = Instant::now();
    while !genesis_file.exists() {
        assert!(started.elapsed() < Duration::from_secs(30), "no genesis.json:\n{}", sup.output());
        std::thread::sleep(Duration::from_millis(50));
    }
    sup.wait_output("validators running");
    let genesis = Genesis::load(&genesis_file).unwrap();
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(40)).build();
    // The harness's HTTP helpers over the supervisor's nodes; it starts no process itself.
    let t = Testnet { dir: tmp, genesis, nodes: (0..4).map(|_| None).collect(), agent };
    for i in 0..4 {
        t.wait_ready(i);
    }
    let state: Value = serde_json::from_slice(&std::fs::read(dir.join("testnet.state")).unwrap()).unwrap();
    assert_eq!(state["supervisor_pid"], sup.pid(), "{state}");
    assert!(node_list(&dir).iter().all(|n| n["state"]["kind"] == "running"));
    // The four validators share this machine, so each runs its share of the cores as tokio
    // workers, and the supervisor says so.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let want = format!("TOKIO_WORKER_THREADS={}", (cores / 4).max(1));
    for pid in pids(&dir) {
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(env.split(|b| *b == 0).any(|v| v == want.as_bytes()), "node {pid} was not started with {want}");
    }
    assert!(sup.output().contains("async worker thread(s) each"), "{}", sup.output());

    // A second supervisor on the same DIR is refused, and disturbs nothing.
    let second = ordo()
        .arg("testnet")
        .arg("--dir")
        .arg(&dir)
        .args(["--p2p-port", &p2p.to_string(), "--api-port", &api.to_string()])
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&format!("a testnet is already running in {} (supervisor pid {})", dir.display(), sup.pid())),
        "{err}"
    );
    assert!(node_list(&dir).iter().all(|n| n["state"]["kind"] == "running"));

    let key = Keypair::from_seed([21; 32]);
    let mut admitted = submit_round_robin(&t, &key, 0, 100, &[0, 1, 2, 3]);
    for i in 0..4 {
        wait_committed(&t, i, &admitted, Duration::from_secs(60));
    }

    // `kill leader`: the supervisor reports the death and keeps the other three running; they
    // change view and commit everything admitted, before and after.
    let primary = leader_index(&t, 0);
    let name = format!("node{primary}");
    let others: Vec<usize> = (0..4).filter(|i| *i != primary).collect();
    let before = t.height(others[0]).unwrap();
    // Metrics (protocol §7.3): the height gauge agrees with /v1/status, read around it.
    let low = t.height(others[0]).unwrap() as f64;
    let scraped = metric(&t, others[0], "ordo_consensus_height").unwrap();
    let high = t.height(others[0]).unwrap() as f64;
    assert!((low..=high).contains(&scraped), "ordo_consensus_height {scraped}, status {low}..{high}");
    let view_changes_before = metric(&t, others[0], "ordo_consensus_view_changes_total").unwrap();
    let killed_at = Instant::now();
    assert_eq!(fault(&dir, "kill", "leader"), name, "`kill leader` names the node it killed");
    sup.wait_output(&format!("{name} killed by `ordo testnet kill` (signal 9: SIGKILL); log: "));
    assert_eq!(state_of(&dir, primary), serde_json::json!({"kind": "stopped", "status": "signal 9: SIGKILL"}));
    let during = submit_round_robin(&t, &key, 1000, 150, &others);
    t.wait_for("a commit after the primary died", Duration::from_secs(60), |t| {
        t.height(others[0]).is_some_and(|h| h > before)
    });
    eprintln!("kill leader -> first new commit: {} ms", killed_at.elapsed().as_millis());
    admitted.extend(during);
    for &i in &others {
        wait_committed(&t, i, &admitted, Duration::from_secs(90));
    }
    assert_ne!(leader_index(&t, others[0]), primary, "the committee moved to a new view");
    let view_changes_after = metric(&t, others[0], "ordo_consensus_view_changes_total").unwrap();
    assert!(view_changes_after > view_changes_before, "{view_changes_before} -> {view_changes_after}");
    assert_eq!(metric(&t, others[0], "ordo_consensus_missing_validators"), Some(1.0), "the dead primary is missing");
    sup.assert_running();
    assert!(refused(&dir, "kill", &name).contains(&format!("{name} is not running (signal 9: SIGKILL)")));
    let running = format!("node{}", others[0]);
    assert!(refused(&dir, "restart", &running).contains(&format!("{running} is running")));
    assert!(refused(&dir, "pause", "node9").contains("no node `node9`"));

    // `restart` by index brings it back, and it catches up to the same chain.
    let target = min_height(&t, &others);
    assert_eq!(fault(&dir, "restart", &primary.to_string()), name);
    sup.wait_output(&format!("{name} restarted by `ordo testnet restart`"));
    assert_caught_up(&t, primary, target, &others);
    wait_committed(&t, primary, &admitted, Duration::from_secs(60));

    // `pause` a backup: the other three go on; `resume` and it catches up.
    let leader = leader_index(&t, others[0]);
    let backup = (0..4).find(|i| *i != leader && *i != primary).unwrap();
    let backup_name = format!("node{backup}");
    assert_eq!(fault(&dir, "pause", &backup_name), backup_name);
    assert_eq!(state_of(&dir, backup)["kind"], "paused");
    assert!(refused(&dir, "pause", &backup_name).contains("is already paused"));
    let live: Vec<usize> = (0..4).filter(|i| *i != backup).collect();
    let while_paused = submit_round_robin(&t, &key, 2000, 100, &live);
    assert_eq!(while_paused.len(), 100, "the three live nodes admit everything");
    for &i in &live {
        wait_committed(&t, i, &while_paused, Duration::from_secs(90));
    }
    admitted.extend(while_paused);
    assert_eq!(fault(&dir, "resume", &backup_name), backup_name);
    assert_eq!(state_of(&dir, backup)["kind"], "running");
    assert!(refused(&dir, "resume", &backup_name).contains(&format!("{backup_name} is not paused")));
    assert_caught_up(&t, backup, min_height(&t, &live), &live);
    wait_committed(&t, backup, &admitted, Duration::from_secs(60));

    // A SIGKILL from outside (the defect this command once died of): reported once, with the
    // status, the log and the command that restarts it; the supervisor runs on.
    let victim = (0..4).find(|i| *i != leader_index(&t, 0)).unwrap();
    let victim_name = format!("node{victim}");
    // SAFETY: kill(2) on the pid the supervisor reports for the node.
    assert_eq!(unsafe { libc::kill(pids(&dir)[victim] as i32, libc::SIGKILL) }, 0);
    let report = format!(
        "{victim_name} exited (signal 9: SIGKILL); log: {}; `ordo testnet restart {victim_name} --dir {}` starts it \
         again",
        dir.join(&victim_name).join("node.log").display(),
        dir.display()
    );
    sup.wait_output(&report);
    sup.assert_running();
    let rest: Vec<usize> = (0..4).filter(|i| *i != victim).collect();
    let more = submit_round_robin(&t, &key, 3000, 50, &rest);
    for &i in &rest {
        wait_committed(&t, i, &more, Duration::from_secs(90));
    }
    admitted.extend(more);
    assert_eq!(sup.output().matches(&format!("{victim_name} exited")).count(), 1, "reported once:\n{}", sup.output());
    fault(&dir, "restart", &victim_name);
    assert_caught_up(&t, victim, min_height(&t, &rest), &rest);
    wait_committed(&t, victim, &admitted, Duration::from_secs(60));

    // Ctrl-C stops every node, a paused one included, and the supervisor exits 0.
    let h = min_height(&t, &[0, 1, 2, 3]);
    assert_agree(&t, &[0, 1, 2, 3], h);
    fault(&dir, "pause", "1");
    let node_pids = pids(&dir);
    sup.signal(libc::SIGINT);
    let status = sup.wait_exit();
    assert_eq!(status.code(), Some(0), "{status}:\n{}", sup.output());
    assert_all_exit(&node_pids, &dir, "after Ctrl-C");
    assert!(sup.output().contains("all validators stopped"), "{}", sup.output());
    // Each stopped on SIGTERM with exit code 0, the paused one too (nothing else is reported).
    assert!(!sup.output().contains("after SIGTERM") && !sup.output().contains("did not stop"), "{}", sup.output());
    assert!(!dir.join("testnet.state").exists() && !dir.join("testnet.sock").exists(), "a clean stop leaves no state");
    assert!(refused(&dir, "kill", "node1").contains(&format!("no testnet is running in {}", dir.display())));

    // Again on the same DIR: the chain resumes. Then the supervisor is SIGKILLed: its nodes die
    // with it, and what it leaves behind is recognised as stale; nothing is signalled.
    let mut sup = Supervisor::start(&dir, p2p, api, "supervisor2");
    sup.wait_output("validators running");
    for i in 0..4 {
        t.wait_ready(i);
    }
    assert_agree(&t, &[0, 1, 2, 3], h);
    let node_pids = pids(&dir);
    let dead_pid = sup.pid();
    sup.signal(libc::SIGKILL);
    sup.wait_exit();
    assert_all_exit(&node_pids, &dir, "after the supervisor was SIGKILLed");
    assert!(dir.join("testnet.state").exists() && dir.join("testnet.sock").exists());
    // A decoy where the stale record says node1 is: a command that trusted the file would hit it.
    let mut decoy = Command::new("sleep").arg("60").spawn().unwrap();
    let state_file = dir.join("testnet.state");
    let mut stale: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(stale["supervisor_pid"], dead_pid);
    stale["nodes"][1]["pid"] = decoy.id().into();
    std::fs::write(&state_file, serde_json::to_vec(&stale).unwrap()).unwrap();
    let err = refused(&dir, "kill", "node1");
    assert!(
        err.contains(&format!("no testnet is running in {} (stale state from pid {dead_pid} removed)", dir.display())),
        "{err}"
    );
    assert!(decoy.try_wait().unwrap().is_none() && alive(decoy.id()), "the decoy was signalled");
    assert!(!state_file.exists() && !dir.join("testnet.sock").exists(), "the stale state was removed");
    assert!(refused(&dir, "kill", "node1").contains("no testnet is running"));
    decoy.kill().unwrap();
    decoy.wait().unwrap();
}
