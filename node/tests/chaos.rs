//! End-to-end tests of `ordo chaos` (protocol §8) against what a user runs: `ordo testnet` (its
//! supervisor and one `ordo node` process per validator) in a temporary directory, and `ordo
//! chaos` beside it, faulting the nodes through the supervisor for half a minute. Its JSON report
//! must show faults were injected and recovered from, and that nothing acknowledged was lost.

mod common;

use common::free_ports;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `ordo testnet` as a child process; SIGINT (what Ctrl-C sends) stops it and its nodes.
struct Supervisor {
    child: Option<Child>,
    net: PathBuf,
    log: PathBuf,
    apis: Vec<String>,
}

impl Supervisor {
    fn start(root: &Path, n: u16) -> Supervisor {
        Self::start_consensus(root, n, "pbft")
    }

    fn start_consensus(root: &Path, n: u16, consensus: &str) -> Supervisor {
        let net = root.join("net");
        let log = root.join("testnet.log");
        let (p2p, api) = free_ports(n);
        let out = std::fs::File::create(&log).unwrap();
        let child = common::ordo()
            .args(["testnet", "--consensus", consensus, "--nodes", &n.to_string(), "--dir"])
            .arg(&net)
            .args(["--p2p-port", &p2p.to_string(), "--api-port", &api.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let apis = (0..n).map(|i| format!("http://127.0.0.1:{}", api + i)).collect();
        let s = Supervisor { child: Some(child), net, log, apis };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
        let deadline = Instant::now() + Duration::from_secs(120);
        for api in &self.apis {
            while agent.get(&format!("{api}/readyz")).call().is_err() {
                assert!(Instant::now() < deadline, "{api} not ready; testnet log:\n{}", self.log_text());
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGINT, then the supervisor's exit status.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the supervisor runs");
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("the testnet did not stop after SIGINT; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.interrupt();
        }
    }
}

fn chaos(net: &Path, extra: &[&str]) -> std::process::Output {
    common::ordo().arg("chaos").arg("--dir").arg(net).args(extra).output().unwrap()
}

#[test]
fn half_a_minute_of_faults_loses_no_acknowledged_transaction() {
    let root = tempfile::tempdir().unwrap();
    let mut testnet = Supervisor::start(root.path(), 4);
    let out = chaos(&testnet.net, &["--minutes", "0.5", "--seed", "1", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ordo chaos failed:\n{stderr}\n{}", String::from_utf8_lossy(&out.stdout));
    let report: Value = serde_json::from_slice(&out.stdout).expect("--json prints one JSON document");
    eprintln!("{stderr}\n{}", serde_json::to_string_pretty(&report).unwrap());

    // The progress lines name the seed and each fault as it happens.
    assert!(stderr.contains("seed 1"), "{stderr}");
    assert!(stderr.contains("fault 1:"), "{stderr}");

    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["violations_total"], 0, "{report}");
    assert_eq!(report["validators"], 4);
    assert_eq!(report["f"], 1);
    let faults = report["faults"]["total"].as_u64().unwrap();
    assert!(faults > 0, "no fault was injected: {report}");
    assert_eq!(report["faults"]["list"].as_array().unwrap().len() as u64, faults);
    let by_kind: u64 = report["faults"]["by_kind"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(by_kind, faults, "{report}");

    let txs = &report["transactions"];
    let acknowledged = txs["acknowledged"].as_u64().unwrap();
    assert!(acknowledged > 0, "{report}");
    assert_eq!(txs["committed"], acknowledged, "{report}");
    assert_eq!(txs["lost"], 0, "{report}");
    assert!(txs["offered"].as_u64().unwrap() >= acknowledged, "{report}");

    // Every fault was recovered from, with consistent percentiles, and the nodes agree at the end.
    assert_eq!(report["faults"]["unrecovered"], 0, "{report}");
    let r = &report["recovery_ms"]["all"];
    assert_eq!(r["count"].as_u64().unwrap(), faults, "{report}");
    let (p50, p99, max) = (r["p50"].as_f64().unwrap(), r["p99"].as_f64().unwrap(), r["max"].as_f64().unwrap());
    assert!(p50 <= p99 && p99 <= max, "{report}");
    assert!(report["longest_no_commit_ms"].as_u64().unwrap() > 0, "{report}");
    let after: Vec<&Value> = report["views"]["after"].as_object().unwrap().values().collect();
    assert_eq!(after.len(), 4);
    assert!(after.iter().all(|v| *v == after[0] && v.is_u64()), "{report}");
    assert!(report["height"]["after"].as_u64().unwrap() > report["height"]["before"].as_u64().unwrap());

    // chaos healed everything it did: the supervisor has every node running again.
    let nodes = common::ordo().args(["testnet", "nodes", "--json", "--dir"]).arg(&testnet.net).output().unwrap();
    assert!(nodes.status.success(), "{}", String::from_utf8_lossy(&nodes.stderr));
    let nodes: Value = serde_json::from_slice(&nodes.stdout).unwrap();
    for n in nodes.as_array().unwrap() {
        assert_eq!(n["state"]["kind"], "running", "{nodes}");
    }

    let status = testnet.interrupt();
    assert!(status.success(), "the testnet exited with {status} after SIGINT; log:\n{}", testnet.log_text());
}

/// The same command on a Raft committee of three (it tolerates one crash): `ordo chaos` kills,
/// pauses and restarts validators and the leader, and nothing acknowledged is lost.
#[test]
fn chaos_on_a_raft_committee_loses_no_acknowledged_transaction() {
    let root = tempfile::tempdir().unwrap();
    let mut testnet = Supervisor::start_consensus(root.path(), 3, "raft");
    let out = chaos(&testnet.net, &["--minutes", "0.3", "--seed", "2", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ordo chaos failed:\n{stderr}\n{}", String::from_utf8_lossy(&out.stdout));
    let report: Value = serde_json::from_slice(&out.stdout).expect("--json prints one JSON document");
    eprintln!("{stderr}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["validators"], 3);
    assert_eq!(report["f"], 1, "three Raft validators tolerate one crash: {report}");
    assert!(report["faults"]["total"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["faults"]["unrecovered"], 0, "{report}");
    let txs = &report["transactions"];
    assert!(txs["acknowledged"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(txs["committed"], txs["acknowledged"], "{report}");
    assert_eq!(txs["lost"], 0, "{report}");
    // A Raft committee's rounds are terms, named as `/v1/status` names them.
    assert!(report.get("views").is_none(), "{report}");
    let after: Vec<&Value> = report["terms"]["after"].as_object().unwrap().values().collect();
    assert_eq!(after.len(), 3, "{report}");
    assert!(after.iter().all(|v| *v == after[0] && v.is_u64()), "{report}");
    let status = testnet.interrupt();
    assert!(status.success(), "the testnet exited with {status} after SIGINT; log:\n{}", testnet.log_text());
}

#[test]
fn chaos_refuses_what_it_cannot_run() {
    let root = tempfile::tempdir().unwrap();
    let refused = |out: std::process::Output, says: &str| {
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "expected a refusal saying {says:?}");
        assert!(err.contains(says), "expected {says:?} in:\n{err}");
    };
    // No testnet directory at all.
    refused(chaos(&root.path().join("nothing"), &[]), "is not a testnet directory");

    // A network directory with no supervisor running on it.
    let net = root.path().join("net");
    let out = common::ordo().args(["genesis", "--validators", "4", "--out"]).arg(&net).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    refused(chaos(&net, &["--minutes", "0.1"]), "is `ordo testnet --dir");

    // Arguments checked before anything is touched.
    refused(chaos(&net, &["--minutes", "0"]), "--minutes must be above 0");
    refused(chaos(&net, &["--minutes", "nan"]), "--minutes must be above 0");
    refused(chaos(&net, &["--rate", "0"]), "--rate must be 1 to");
    refused(chaos(&net, &["--faults", "kill,flood"]), "invalid value 'flood'");
}
