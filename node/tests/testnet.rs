//! End-to-end tests of a real 4-validator consortium on loopback (issue 4's acceptance 1–4):
//! every validator is an `ordo node` OS process; transactions go in over HTTP; processes are
//! killed with SIGKILL, stopped with SIGTERM and restarted.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{metric, submit_round_robin, wait_committed, Testnet};
use ordo_chain::Keypair;
use serde_json::Value;

fn leader_index(t: &Testnet, asking: usize) -> usize {
    let (_, s) = t.get(asking, "/v1/status");
    let leader = s["leader"].as_str().unwrap().to_string();
    t.genesis.validators.iter().position(|v| v.public_key.to_hex() == leader).unwrap()
}

#[test]
fn thousand_transactions_commit_everywhere_and_verify() {
    let t = Testnet::start(4);
    for i in 0..4 {
        t.wait_ready(i);
    }
    let key = Keypair::from_seed([11; 32]);
    let ids = submit_round_robin(&t, &key, 0, 1000, &[0, 1, 2, 3]);
    assert_eq!(ids.len(), 1000, "every submission was admitted");
    for i in 0..4 {
        wait_committed(&t, i, &ids, Duration::from_secs(120));
    }
    let h = (0..4).map(|i| t.height(i).unwrap()).min().unwrap();
    t.assert_agree_up_to(h);
    // Every transaction is in exactly one block, applied.
    let mut seen = BTreeSet::new();
    for height in 1..=h {
        let (_, b) = t.get(0, &format!("/v1/blocks/{height}"));
        for tx in b["txs"].as_array().unwrap() {
            assert_eq!(tx["result"], "applied");
            assert!(seen.insert(tx["tx_id"].as_str().unwrap().to_string()), "a tx committed twice");
        }
    }
    assert_eq!(seen.len(), 1000);
    for i in 0..4 {
        t.verify_chain(i);
    }
    // A replay of a committed transaction is idempotent: 200 with its committed status.
    let tx = t.tx(&key, 0, "k0", "v0");
    let (code, body) = t.post_json(2, "/v1/transactions", &serde_json::to_value(&tx).unwrap());
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "committed");

    // `ordo bench` against the same four nodes: everything it submits commits, and its report
    // is consistent with the chain it leaves behind.
    let before = t.height(0).unwrap();
    let nodes: Vec<String> = (0..4).map(|i| t.api(i)).collect();
    let out = common::ordo()
        .args(["bench", "--node", &nodes.join(","), "--txs", "600", "--batch", "50", "--clients", "4"])
        .args(["--timeout", "60", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["committed"], 600, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert!(report["throughput_tx_per_s"].as_f64().unwrap() > 0.0, "{report}");
    let l = &report["latency_ms"];
    let (p50, p99, max) = (l["p50"].as_f64().unwrap(), l["p99"].as_f64().unwrap(), l["max"].as_f64().unwrap());
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{report}");
    let blocks = report["blocks"].as_u64().unwrap();
    assert!(blocks >= 1 && blocks <= t.height(0).unwrap() - before, "{report}");
    let h = (0..4).map(|i| t.height(i).unwrap()).min().unwrap();
    t.assert_agree_up_to(h);
}

#[test]
fn killing_the_primary_changes_view_and_loses_nothing() {
    let mut t = Testnet::start(4);
    for i in 0..4 {
        t.wait_ready(i);
    }
    let key = Keypair::from_seed([12; 32]);
    let mut first = submit_round_robin(&t, &key, 0, 100, &[0, 1, 2, 3]);
    // And 1,000 in one request, so that the batches the view change's proofs bring back are
    // large beside their own signatures.
    let batch: Vec<Value> =
        (0..1000).map(|n| serde_json::to_value(t.tx(&key, 100 + n, &format!("b{n}"), "v")).unwrap()).collect();
    let (code, answers) = t.post_json(0, "/v1/transactions/batch", &Value::Array(batch));
    assert_eq!(code, 200, "{answers}");
    first.extend(answers.as_array().unwrap().iter().map(|a| a["tx_id"].as_str().unwrap().to_string()));
    for i in 0..4 {
        wait_committed(&t, i, &first, Duration::from_secs(60));
    }
    let primary = leader_index(&t, 0);
    let others: Vec<usize> = (0..4).filter(|i| *i != primary).collect();
    let before = t.height(others[0]).unwrap();
    let batch_checks = |t: &Testnet, i: usize| metric(t, i, r#"ordo_signature_checks_total{path="batch"}"#).unwrap();
    let checks_before: Vec<f64> = others.iter().map(|&i| batch_checks(&t, i)).collect();
    let killed_at = Instant::now();
    t.kill(primary);
    let during = submit_round_robin(&t, &key, 2000, 200, &others);
    t.wait_for("a commit after the primary died", Duration::from_secs(60), |t| {
        t.height(others[0]).is_some_and(|h| h > before)
    });
    eprintln!("kill-to-first-commit: {} ms", killed_at.elapsed().as_millis());
    for &i in &others {
        wait_committed(&t, i, &during, Duration::from_secs(90));
    }
    let new_primary = leader_index(&t, others[0]);
    assert_ne!(new_primary, primary, "the committee moved to a new view");
    let h = others.iter().map(|i| t.height(*i).unwrap()).min().unwrap();
    t.assert_agree_up_to(h);
    // Each survivor checked each of the 200 new transactions' signatures once, and the view
    // change's own signatures (its proofs' prepares and checkpoints, batched). The proofs also
    // bring back the batches committed before it (the first 1,100 transactions, above the last
    // stable checkpoint): those are compared with the store, not checked again.
    for (&i, before) in others.iter().zip(checks_before) {
        let checked = batch_checks(&t, i) - before;
        eprintln!("node{i}: {checked} batched signature checks across the view change");
        assert!(checked < 200.0 + 500.0, "node{i} made {checked} batched signature checks for 200 transactions");
    }
}

#[test]
fn a_killed_backup_restarts_and_catches_up() {
    let mut t = Testnet::start(4);
    for i in 0..4 {
        t.wait_ready(i);
    }
    let primary = leader_index(&t, 0);
    let backup = (0..4).find(|i| *i != primary).unwrap();
    let others: Vec<usize> = (0..4).filter(|i| *i != backup).collect();
    let key = Keypair::from_seed([13; 32]);
    t.kill(backup);
    let ids = submit_round_robin(&t, &key, 0, 300, &others);
    wait_committed(&t, others[0], &ids, Duration::from_secs(90));
    let target = t.height(others[0]).unwrap();
    let restarted = Instant::now();
    t.start_node(backup);
    t.wait_for("the restarted backup to catch up", Duration::from_secs(120), |t| {
        t.height(backup).is_some_and(|h| h >= target)
    });
    eprintln!("catch-up of {target} blocks: {} ms (process start included)", restarted.elapsed().as_millis());
    wait_committed(&t, backup, &ids, Duration::from_secs(30));
    t.assert_agree_up_to(target);
    t.verify_chain(backup);
}

#[test]
fn stopping_and_restarting_everyone_keeps_the_chain() {
    let mut t = Testnet::start(4);
    for i in 0..4 {
        t.wait_ready(i);
    }
    let key = Keypair::from_seed([14; 32]);
    let ids = submit_round_robin(&t, &key, 0, 100, &[0, 1, 2, 3]);
    for i in 0..4 {
        wait_committed(&t, i, &ids, Duration::from_secs(60));
    }
    let h = t.height(0).unwrap();
    let (_, state_before): (u16, Value) = t.get(0, "/v1/state/k5");
    for i in 0..4 {
        t.stop(i);
    }
    for i in 0..4 {
        t.start_node(i);
    }
    for i in 0..4 {
        t.wait_for("restart", Duration::from_secs(60), |t| t.height(i).is_some_and(|x| x >= h));
    }
    assert_eq!(t.get(1, "/v1/state/k5").1["value"], state_before["value"]);
    t.assert_agree_up_to(h);
    for i in 0..4 {
        t.wait_ready(i);
    }
    let more = submit_round_robin(&t, &key, 5000, 50, &[0, 1, 2, 3]);
    for i in 0..4 {
        wait_committed(&t, i, &more, Duration::from_secs(60));
    }
    let h2 = (0..4).map(|i| t.height(i).unwrap()).min().unwrap();
    assert!(h2 > h);
    t.assert_agree_up_to(h2);
}
