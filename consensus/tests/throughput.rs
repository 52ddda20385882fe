//! A throughput measurement of the ordering core with production-size batches: four replicas,
//! the default `PbftConfig` (batch_max_txs 2000, window 64, checkpoint every 32), a perfect
//! in-order network, and every message going through the real wire path (encode, decode,
//! verify, including the batched signature check of every transaction in a PRE-PREPARE, once
//! per message). Execution is stubbed (the block hash is the batch digest) so that the figure is
//! the cost of ordering alone.
//!
//! Run: `cargo test -p ordo-consensus --release --test throughput -- --ignored --nocapture`.

use std::collections::VecDeque;
use std::time::Instant;

use ordo_chain::{Op, Transaction, TxRules, VerifiedTx};
use ordo_consensus::pbft::replica::{Replica, Restore};
use ordo_consensus::pbft::{decode_and_verify, Message, VerifyContext};
use ordo_consensus::sim::{committee, genesis, validator_key, CHAIN_ID};
use ordo_consensus::{Action, Consensus, Input, PbftConfig};

fn run(n_txs: usize) -> (f64, u64, usize) {
    let cfg = PbftConfig::default();
    let ctx = VerifyContext::new(committee(4), TxRules::new(CHAIN_ID), &cfg);
    let g = genesis();
    let mut replicas: Vec<Replica> = (0..4)
        .map(|i| {
            let restore = Restore { safety: None, executed_height: 0, executed_hash: g.hash };
            Replica::new(cfg.clone(), ctx.clone(), validator_key(i), g.hash, restore, 0).unwrap()
        })
        .collect();
    let client = ordo_chain::Keypair::from_seed([3; 32]);
    let raw: Vec<Transaction> = (0..n_txs)
        .map(|i| {
            Transaction::sign(
                CHAIN_ID,
                &client,
                i as u64,
                Op::Put { key: format!("key{}", i % 1000), value: "x".repeat(64) },
            )
        })
        .collect();
    let txs: Vec<VerifiedTx> = TxRules::new(CHAIN_ID).verify_many(raw).into_iter().map(|r| r.unwrap()).collect();
    let start = Instant::now();
    let mut queue: VecDeque<(usize, Input<Message>)> = VecDeque::new();
    for i in 0..4 {
        queue.push_back((i, Input::ClientTxs(txs.clone())));
    }
    let mut committed = [0usize; 4];
    let mut blocks = 0u64;
    let mut messages = 0usize;
    let mut now_ms = 0;
    while committed.iter().any(|c| *c < n_txs) {
        let Some((i, input)) = queue.pop_front() else {
            // Idle: let the clock move so partial batches go out.
            now_ms += 10;
            for i in 0..4 {
                queue.push_back((i, Input::Tick { now_ms }));
            }
            continue;
        };
        for a in replicas[i].handle(input) {
            match a {
                Action::Broadcast(m) => {
                    let v = decode_and_verify(&ctx, &m.encode()).expect("honest messages verify");
                    for j in (0..4).filter(|j| *j != i) {
                        messages += 1;
                        queue.push_back((j, Input::Message(v.clone())));
                    }
                }
                Action::Send { to, msg } => {
                    let v = decode_and_verify(&ctx, &msg.encode()).expect("honest messages verify");
                    let j = (0..4).find(|j| validator_key(*j).public() == to).unwrap();
                    messages += 1;
                    queue.push_back((j, Input::Message(v)));
                }
                Action::Commit(b) => {
                    committed[i] += b.txs.len();
                    if i == 0 {
                        blocks += 1;
                    }
                    let block_hash = b.header.digest(CHAIN_ID);
                    queue.push_front((i, Input::Executed { height: b.header.height, block_hash }));
                }
                _ => {}
            }
        }
    }
    (n_txs as f64 / start.elapsed().as_secs_f64(), blocks, messages)
}

#[test]
#[ignore]
fn throughput_four_replicas_default_config() {
    let n = std::env::var("ORDO_THROUGHPUT_TXS").ok().and_then(|s| s.parse().ok()).unwrap_or(40_000);
    let (tps, blocks, messages) = run(n);
    println!(
        "throughput: {n} txs in {blocks} blocks, {tps:.0} txs/s ordered by all four replicas together on one \
         thread (each message verified once), {:.1} messages per block",
        messages as f64 / blocks as f64
    );
}

#[test]
fn throughput_smoke() {
    // The same path with a few transactions, so CI keeps the measurement compiling and correct.
    let (_, blocks, _) = run(300);
    assert!(blocks >= 1);
}
