//! End-to-end tests of `ordo bench` against a real 4-validator testnet (every validator an
//! `ordo node` process): its report agrees with the chain it leaves behind, a sweep gives one row
//! per rate, a stopped node's refusals are counted while the others take everything, and a run
//! that cannot commit everything says so and exits non-zero.

mod common;

use std::collections::BTreeSet;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::Testnet;
use serde_json::Value;

fn node_list(t: &Testnet) -> String {
    (0..t.nodes.len()).map(|i| t.api(i)).collect::<Vec<_>>().join(",")
}

fn bench(t: &Testnet, args: &[&str]) -> Output {
    common::ordo().args(["bench", "--node", &node_list(t)]).args(args).output().unwrap()
}

fn report_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "ordo bench failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn leader_index(t: &Testnet) -> usize {
    let (_, s) = t.get(0, "/v1/status");
    let leader = s["leader"].as_str().unwrap().to_string();
    t.genesis.validators.iter().position(|v| v.public_key.to_hex() == leader).unwrap()
}

#[test]
fn a_small_run_and_a_sweep_report_what_the_chain_holds() {
    let t = Testnet::start(4);
    for i in 0..4 {
        t.wait_ready(i);
    }
    let before = t.height(0).unwrap();
    let r = report_of(&bench(&t, &["--txs", "2000", "--senders", "200", "--batch", "100", "--json"]));
    assert_eq!(r["all_committed"], true, "{r}");
    assert_eq!((r["txs"].as_u64(), r["committed"].as_u64(), r["failed"].as_u64()), (Some(2000), Some(2000), Some(0)));
    assert_eq!(r["senders"], 200);
    assert_eq!(r["validators"], 4);
    let (throughput, ceiling, fraction) =
        (f(&r["throughput_tx_per_s"]), f(&r["ceiling_tx_per_s"]), f(&r["fraction_of_ceiling"]));
    assert!(throughput > 0.0 && ceiling > 0.0, "{r}");
    assert!((fraction - throughput / ceiling).abs() < 1e-3, "{r}");
    let c = &r["ceiling"];
    assert!(f(&c["per_core_verify_per_s"]) > 0.0 && c["cores"].as_u64().unwrap() >= 1, "{r}");
    assert!((f(&c["tx_per_s"]) - f(&c["per_core_verify_per_s"]) * f(&c["cores"]) / 4.0).abs() < 1.0, "{r}");
    let l = &r["latency_ms"];
    let (p50, p90, p99, max) = (f(&l["p50"]), f(&l["p90"]), f(&l["p99"]), f(&l["max"]));
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{r}");

    // Every node was offered requests and took its share; views were read before and after.
    let nodes = r["per_node"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    assert_eq!(nodes.iter().map(|n| n["admitted"].as_u64().unwrap()).sum::<u64>(), 2000, "{r}");
    for n in nodes {
        assert!(n["requests"].as_u64().unwrap() >= 1, "{n}");
        assert!(n["view_after"].as_u64().unwrap() >= n["view_before"].as_u64().unwrap(), "{n}");
        // Every validator verified 2,000 signatures during the step: CPU time it cannot hide.
        assert!(f(&n["cpu_seconds"]) > 0.0, "{n}");
    }
    // The committee's CPU is the nodes' sum, and per transaction it is that sum over 2,000.
    let cpu: f64 = nodes.iter().map(|n| f(&n["cpu_seconds"])).sum();
    assert!((f(&r["node_cpu_seconds"]) - cpu).abs() < 0.01, "{r}");
    assert!((f(&r["node_cpu_us_per_tx"]) - cpu * 1e6 / 2000.0).abs() < 10.0, "{r}");
    // The bench's own CPU while it offered and followed: it sent 2,000 transactions and read
    // their blocks, which takes time it cannot hide either; per transaction, that over 2,000.
    let bench_cpu = f(&r["bench_cpu_seconds"]);
    assert!(bench_cpu > 0.0, "{r}");
    assert!((f(&r["bench_cpu_us_per_tx"]) - bench_cpu * 1e6 / 2000.0).abs() < 10.0, "{r}");

    // The blocks it covers hold at least its transactions, from its 200 senders.
    let (first, last) = (r["first_height"].as_u64().unwrap(), r["last_height"].as_u64().unwrap());
    assert!(before < first && first <= last, "{r}");
    t.wait_for("node0 to hold the bench's last block", Duration::from_secs(30), |t| {
        t.height(0).is_some_and(|h| h >= last)
    });
    let mut in_blocks = 0;
    let mut senders = BTreeSet::new();
    let mut carrying = 0;
    for h in first..=last {
        let (code, b) = t.get(0, &format!("/v1/blocks/{h}"));
        assert_eq!(code, 200);
        in_blocks += b["tx_count"].as_u64().unwrap();
        let txs = b["txs"].as_array().unwrap();
        carrying += u64::from(!txs.is_empty());
        senders.extend(txs.iter().map(|tx| tx["sender"].as_str().unwrap().to_string()));
    }
    assert!(in_blocks >= 2000, "blocks {first}..={last} hold {in_blocks} transactions");
    assert_eq!(senders.len(), 200, "transactions signed by 200 distinct senders");
    assert!(r["blocks"].as_u64().unwrap() >= 1 && r["blocks"].as_u64().unwrap() <= carrying, "{r}");
    // Its sample of tx_ids is committed, inside the blocks it names.
    let sample = r["sample_tx_ids"].as_array().unwrap();
    assert_eq!(sample.len(), 8);
    for id in sample {
        let (code, tx) = t.get(1, &format!("/v1/transactions/{}", id.as_str().unwrap()));
        assert_eq!((code, tx["status"].as_str()), (200, Some("committed")), "{tx}");
        let h = tx["height"].as_u64().unwrap();
        assert!((first..=last).contains(&h), "{id} committed at {h}, outside {first}..={last}");
    }

    // A sweep of two rates: a JSON array of two reports, then a table of two rows.
    let sweep =
        report_of(&bench(&t, &["--rates", "300,600", "--txs", "300", "--senders", "50", "--batch", "50", "--json"]));
    let steps = sweep.as_array().unwrap();
    assert_eq!(steps.len(), 2, "{sweep}");
    for (step, rate) in steps.iter().zip([300, 600]) {
        assert_eq!(step["offered_rate"], rate, "{step}");
        assert_eq!((step["committed"].as_u64(), step["all_committed"].as_bool()), (Some(300), Some(true)), "{step}");
        assert!(f(&step["fraction_of_ceiling"]) > 0.0, "{step}");
    }
    assert!(
        steps[0]["last_height"].as_u64().unwrap() < steps[1]["first_height"].as_u64().unwrap(),
        "each step waits for its transactions to commit: {sweep}"
    );
    let out = bench(&t, &["--rates", "300,600", "--txs", "200", "--senders", "20", "--batch", "50"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|l| l.contains("committed tx/s")).unwrap_or_else(|| panic!("{text}"));
    let rows: Vec<Vec<&str>> = lines[header + 1..].iter().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!((rows[0][0], rows[1][0]), ("300", "600"), "{text}");
    assert!(rows.iter().all(|r| r.len() == 8 && r[1].parse::<f64>().unwrap() > 0.0), "{text}");
}

#[test]
fn with_one_node_stopped_the_others_take_everything_and_its_refusals_are_counted() {
    let mut t = Testnet::start(4);
    for i in 0..4 {
        t.wait_ready(i);
    }
    // A backup, so that the committee keeps its primary and needs no view change.
    let stopped = (leader_index(&t) + 1) % 4;
    t.kill(stopped);
    let r = report_of(&bench(&t, &["--txs", "1000", "--senders", "100", "--batch", "50", "--timeout", "90", "--json"]));
    assert_eq!((r["committed"].as_u64(), r["failed"].as_u64()), (Some(1000), Some(0)), "{r}");
    let nodes = r["per_node"].as_array().unwrap();
    let dead = &nodes[stopped];
    assert_eq!(dead["url"], t.api(stopped));
    assert_eq!(dead["admitted"], 0, "{dead}");
    let connect = &dead["refused"]["connect"];
    assert!(connect["requests"].as_u64().unwrap() >= 1 && connect["txs"].as_u64().unwrap() >= 50, "{dead}");
    assert!(dead["view_before"].is_null() && dead["view_after"].is_null(), "{dead}");
    // Once refused, the node was probed by one request a second, not hammered: at most one
    // attempt per client before the first refusal, then one a second.
    let secs = f(&r["submit_seconds"]);
    assert!((connect["requests"].as_u64().unwrap() as f64) <= secs + 9.0, "{dead} over {secs} s");
    let live: u64 = (0..4).filter(|i| *i != stopped).map(|i| nodes[i]["admitted"].as_u64().unwrap()).sum();
    assert_eq!(live, 1000, "{r}");
    assert!(r["refusals"].as_u64().unwrap() >= connect["txs"].as_u64().unwrap(), "{r}");
}

#[test]
fn when_the_nodes_stop_mid_run_it_says_what_did_not_commit_and_fails() {
    let mut t = Testnet::start(4);
    for i in 0..4 {
        t.wait_ready(i);
    }
    let before = t.height(0).unwrap();
    // 1,000 transactions offered at 200 tx/s take five seconds; the nodes die after the first commit.
    let mut child = common::ordo()
        .args(["bench", "--node", &node_list(&t), "--txs", "1000", "--rate", "200", "--batch", "50"])
        .args(["--senders", "100", "--timeout", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    t.wait_for("the bench's first commit", Duration::from_secs(60), |t| t.height(0).is_some_and(|h| h > before));
    for i in 0..4 {
        t.kill(i);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "ordo bench did not give up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    // The last line says what did not commit, in plain words.
    let last = stderr.lines().last().unwrap_or_default();
    let rest = last
        .strip_prefix("error: not every transaction committed: ")
        .unwrap_or_else(|| panic!("unexpected last line: {last}\n{stderr}"));
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (committed, total, failed): (u64, u64, u64) =
        (words[0].parse().unwrap(), words[2].parse().unwrap(), words[4].trim_end_matches(',').parse().unwrap());
    assert_eq!(total, 1000, "{last}");
    assert!(committed < 1000 && committed + failed == 1000, "{last}");
    assert!(rest.ends_with("failed; see refusals per node above"), "{last}");
    // Above it: refusals per node (no connection to any of them), and no throughput headline.
    for i in 0..4 {
        let line = stdout.lines().find(|l| l.starts_with(&t.api(i))).unwrap_or_else(|| panic!("{stdout}"));
        assert!(line.contains("connect x"), "{line}");
    }
    assert!(!stdout.contains("throughput"), "{stdout}");
    assert!(stdout.contains(&format!("committed {committed}/1000")), "{stdout}");
}
