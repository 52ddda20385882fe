//! End-to-end tests of Raft consortia (`consensus.kind = "raft"`): the same real `ordo node`
//! processes, blocks, store and API as PBFT, with only the genesis's consensus kind changed.
//! Leaders are killed with SIGKILL, followers restarted, the whole committee stopped and started
//! again; every admitted transaction commits once, all nodes hold one chain, and
//! `ordo verify-chain` checks every Raft certificate.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{ordo, submit_round_robin, wait_committed, Testnet};
use ordo_chain::Keypair;

fn start_raft(n: usize) -> Testnet {
    let t = Testnet::start_consensus(n, "raft", |_| {});
    for i in 0..n {
        t.wait_ready(i);
    }
    t
}

/// The leader node `asking` names in its status, if it knows one.
fn leader_of(t: &Testnet, asking: usize) -> Option<usize> {
    let (_, s) = t.get(asking, "/v1/status");
    let leader = s["leader"].as_str()?.to_string();
    t.genesis.validators.iter().position(|v| v.public_key.to_hex() == leader)
}

fn term_of(t: &Testnet, i: usize) -> u64 {
    let (_, s) = t.get(i, "/v1/status");
    s["term"].as_u64().unwrap_or_else(|| panic!("a Raft node reports its term: {s}"))
}

/// Every block from 1 to `h` on node `i` holds a Raft certificate and only applied
/// transactions, each once; returns the ids.
fn committed_ids(t: &Testnet, i: usize, h: u64) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for height in 1..=h {
        let (_, b) = t.get(i, &format!("/v1/blocks/{height}"));
        assert_eq!(b["certificate"]["kind"], "raft", "block {height}: {b}");
        for tx in b["txs"].as_array().unwrap() {
            if tx["result"] == "applied" {
                assert!(seen.insert(tx["tx_id"].as_str().unwrap().to_string()), "a tx applied twice");
            }
        }
    }
    seen
}

#[test]
fn a_raft_committee_commits_survives_a_leader_kill_and_verifies() {
    let mut t = start_raft(3);
    let (_, status) = t.get(0, "/v1/status");
    assert_eq!(status["consensus"], "raft", "{status}");
    assert_eq!(status["f"], 1, "3 Raft validators tolerate 1 crash: {status}");
    let key = Keypair::from_seed([31; 32]);
    let first = submit_round_robin(&t, &key, 0, 300, &[0, 1, 2]);
    assert_eq!(first.len(), 300, "every submission was admitted");
    for i in 0..3 {
        wait_committed(&t, i, &first, Duration::from_secs(60));
    }

    let leader = leader_of(&t, 0).expect("a leader after commits");
    let term = term_of(&t, leader);
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let before = t.height(others[0]).unwrap();
    let killed = Instant::now();
    t.kill(leader);
    let during = submit_round_robin(&t, &key, 1000, 100, &others);
    t.wait_for("a commit after the leader died", Duration::from_secs(60), |t| {
        t.height(others[0]).is_some_and(|h| h > before)
    });
    eprintln!("raft leader kill -> first new commit: {} ms", killed.elapsed().as_millis());
    for &i in &others {
        wait_committed(&t, i, &during, Duration::from_secs(60));
    }
    let new_leader = leader_of(&t, others[0]).expect("a new leader");
    assert_ne!(new_leader, leader, "another validator leads");
    assert!(term_of(&t, others[0]) > term, "the term rose");

    // The old leader comes back as a follower and catches up.
    t.start_node(leader);
    let target = t.height(others[0]).unwrap();
    t.wait_for("the old leader to catch up", Duration::from_secs(60), |t| {
        t.height(leader).is_some_and(|h| h >= target)
    });
    wait_committed(&t, leader, &during, Duration::from_secs(30));
    let h = (0..3).map(|i| t.height(i).unwrap()).min().unwrap();
    t.assert_agree_up_to(h);
    let ids = committed_ids(&t, 0, h);
    assert!(first.iter().chain(&during).all(|id| ids.contains(id)), "every admitted transaction committed");
    for i in 0..3 {
        t.verify_chain(i);
    }
}

#[test]
fn raft_followers_restart_and_the_whole_committee_restarts_with_its_chain() {
    let mut t = start_raft(4);
    let key = Keypair::from_seed([32; 32]);
    let leader = leader_of(&t, 0).unwrap_or(0);
    let follower = (0..4).find(|i| *i != leader).unwrap();
    let others: Vec<usize> = (0..4).filter(|i| *i != follower).collect();
    t.kill(follower);
    let ids = submit_round_robin(&t, &key, 0, 200, &others);
    wait_committed(&t, others[0], &ids, Duration::from_secs(60));
    t.start_node(follower);
    wait_committed(&t, follower, &ids, Duration::from_secs(60));

    // Everyone stops (SIGTERM) and starts again: the chain and the log are kept.
    let h = (0..4).map(|i| t.height(i).unwrap()).min().unwrap();
    for i in 0..4 {
        t.stop(i);
    }
    for i in 0..4 {
        t.start_node(i);
    }
    for i in 0..4 {
        t.wait_ready(i);
    }
    for i in 0..4 {
        assert!(t.height(i).unwrap() >= h, "node{i} kept its blocks");
    }
    let more = submit_round_robin(&t, &key, 5000, 100, &[0, 1, 2, 3]);
    for i in 0..4 {
        wait_committed(&t, i, &more, Duration::from_secs(60));
    }
    let h = (0..4).map(|i| t.height(i).unwrap()).min().unwrap();
    t.assert_agree_up_to(h);
    t.verify_chain(follower);
}

#[test]
fn a_raft_validator_whose_data_directory_was_wiped_refuses_to_rejoin() {
    let mut t = start_raft(3);
    let key = Keypair::from_seed([33; 32]);
    let ids = submit_round_robin(&t, &key, 0, 50, &[0, 1, 2]);
    wait_committed(&t, 2, &ids, Duration::from_secs(60));
    t.stop(2);
    let data = t.node_dir(2).join("data");
    std::fs::remove_dir_all(&data).unwrap();
    let out = ordo().arg("node").arg("--config").arg(t.node_dir(2).join("config.toml")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a wiped validator must not start: {stderr}");
    assert!(stderr.contains("holds no Raft state") && stderr.contains("vote twice"), "{stderr}");
    // The other two still order (a majority of three).
    let more = submit_round_robin(&t, &key, 100, 20, &[0, 1]);
    wait_committed(&t, 0, &more, Duration::from_secs(60));
}
