//! The docker testnet (issue 4, acceptance 7): 4 validators in containers built FROM scratch
//! from the `ordo` binary this test build made, on a private network. Isolating the primary
//! makes the other three change view and continue; the isolated node rejoins and catches up.
//! A partition that leaves no side with a quorum (2 | 1 | 1) stops commits, and healing
//! resumes them with no fork. Where no docker daemon answers, the test says so and is skipped.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

fn docker_available() -> bool {
    Command::new("docker").arg("info").output().map(|o| o.status.success()).unwrap_or(false)
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/docker").join(name)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fault(action: &str, i: usize) {
    run(Command::new(script("fault.sh")).args([action, &i.to_string()]));
}

fn get(agent: &ureq::Agent, i: usize, path: &str) -> Option<Value> {
    agent.get(&format!("http://127.0.0.1:{}{path}", 18080 + i)).call().ok()?.into_json().ok()
}

fn height(agent: &ureq::Agent, i: usize) -> Option<u64> {
    get(agent, i, "/v1/blocks/latest")?["height"].as_u64()
}

fn submit(agent: &ureq::Agent, i: usize, genesis: &ordo_genesis::Genesis, nonce: u64) -> bool {
    let key = ordo_chain::Keypair::from_seed([21; 32]);
    let tx = ordo_chain::Transaction::sign(
        &genesis.chain_id,
        &key,
        nonce,
        ordo_chain::Op::Put { key: format!("d{nonce}"), value: "x".into() },
    );
    agent
        .post(&format!("http://127.0.0.1:{}/v1/transactions", 18080 + i))
        .send_json(serde_json::to_value(&tx).unwrap())
        .is_ok()
}

fn wait(what: &str, secs: u64, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if pred() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

struct Down(PathBuf);
impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(script("testnet.sh")).arg("down").arg(&self.0).output();
    }
}

#[test]
fn docker_isolate_primary_and_partition() {
    if !docker_available() {
        eprintln!("SKIPPED: no docker daemon answers `docker info`; the docker testnet test did not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    run(Command::new(script("build-image.sh")).arg(env!("CARGO_BIN_EXE_ordo")));
    let _down = Down(net.clone());
    run(Command::new(script("testnet.sh")).arg("up").arg(&net).env("ORDO_BIN", env!("CARGO_BIN_EXE_ordo")));
    let genesis = ordo_genesis::Genesis::load(&net.join("genesis.json")).unwrap();
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    wait("all four ready", 90, || (0..4).all(|i| get(&agent, i, "/readyz").is_some_and(|v| v["ready"] == true)));

    // Isolate the primary (node0 in view 0): the other three change view and keep committing.
    assert!(submit(&agent, 1, &genesis, 1));
    wait("first commit", 60, || height(&agent, 1).is_some_and(|h| h >= 1));
    fault("disconnect", 0);
    let h = height(&agent, 1).unwrap();
    assert!(submit(&agent, 2, &genesis, 2));
    wait("a commit without the primary", 60, || height(&agent, 1).is_some_and(|x| x > h));
    let view = get(&agent, 1, "/v1/status").unwrap()["view"].as_u64().unwrap();
    assert!(view >= 1, "the three moved to a new view");
    fault("reconnect", 0);
    let target = height(&agent, 1).unwrap();
    wait("the isolated node to catch up", 90, || height(&agent, 0).is_some_and(|x| x >= target));

    // No side with a quorum: node0+node1 | node2 | node3. Nothing commits; healing resumes.
    fault("disconnect", 2);
    fault("disconnect", 3);
    let frozen = height(&agent, 0).unwrap();
    assert!(submit(&agent, 0, &genesis, 3));
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(height(&agent, 0), Some(frozen), "no quorum, no commit");
    assert_eq!(height(&agent, 1), Some(frozen), "no quorum, no commit");
    fault("reconnect", 2);
    fault("reconnect", 3);
    wait("commits to resume after healing", 120, || (0..4).all(|i| height(&agent, i).is_some_and(|x| x > frozen)));
    let tip = (0..4).map(|i| height(&agent, i).unwrap()).min().unwrap();
    for hgt in 0..=tip {
        let hashes: Vec<Value> =
            (0..4).map(|i| get(&agent, i, &format!("/v1/blocks/{hgt}")).unwrap()["hash"].clone()).collect();
        assert!(hashes.iter().all(|x| *x == hashes[0]), "fork at height {hgt}: {hashes:?}");
    }
}
