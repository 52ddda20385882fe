//! Benchmarks that set the node's throughput ceiling: signature verification (single, batched,
//! and the full transaction check), `tx_root`, and synced RocksDB commits of 1,000-transaction
//! blocks. Run with `cargo bench -p ordo-chain`; criterion prints elements per second.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ordo_chain::block::BatchHeader;
use ordo_chain::crypto::{verify_batch, SigCheck};
use ordo_chain::merkle::tx_root;
use ordo_chain::store::{RocksStore, Store};
use ordo_chain::{Block, Certificate, Hash, Keypair, Op, Transaction, TxRules, VerifiedTx};

const CHAIN: &str = "ordo-bench";

fn txs(n: usize, salt: u64) -> Vec<Transaction> {
    let keys: Vec<Keypair> = (0..16u8).map(|i| Keypair::from_seed([i + 1; 32])).collect();
    (0..n)
        .map(|i| {
            let op = Op::Put { key: format!("user:{salt}:{i}"), value: "x".repeat(64) };
            Transaction::sign(CHAIN, &keys[i % keys.len()], salt * 1_000_000 + i as u64, op)
        })
        .collect()
}

fn signatures(c: &mut Criterion) {
    let t = txs(1024, 0);
    let msgs: Vec<Vec<u8>> = t.iter().map(|t| t.signing_bytes()).collect();
    let mut g = c.benchmark_group("ed25519");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_strict single", |b| b.iter(|| t[0].sender.verify_strict(&msgs[0], &t[0].signature)));
    for n in [64usize, 1024] {
        g.throughput(Throughput::Elements(n as u64));
        let checks: Vec<SigCheck> =
            (0..n).map(|i| SigCheck { key: &t[i].sender, msg: &msgs[i], sig: &t[i].signature }).collect();
        g.bench_with_input(BenchmarkId::new("verify_batch", n), &checks, |b, c| b.iter(|| verify_batch(c)));
    }
    g.finish();

    let mut g = c.benchmark_group("transactions");
    g.throughput(Throughput::Elements(1000));
    let rules = TxRules::new(CHAIN);
    let batch = txs(1000, 1);
    g.bench_function("verify_many 1000 (rules, signing bytes, batch verify, tx_id)", |b| {
        b.iter(|| rules.verify_many(batch.clone()))
    });
    let ids: Vec<Hash> = batch.iter().map(|t| t.tx_id()).collect();
    g.bench_function("tx_root 1000", |b| b.iter(|| tx_root(&ids)));
    g.finish();
}

fn certify(v: &Keypair, header: &BatchHeader) -> Certificate {
    Certificate::pbft_signed(CHAIN, 0, header.height, header.digest(CHAIN), std::slice::from_ref(v))
}

/// 1,000 transactions no earlier block holds (so every one is applied, indexed and written, as
/// under load), made without signing: the store never checks signatures, and signing 1,000 per
/// iteration would dominate the run. Their ids are SHA-256 outputs, as random as real ones.
fn fresh_block(round: usize) -> Vec<VerifiedTx> {
    let key = Keypair::from_seed([7; 32]);
    let signature = key.sign(b"not checked by the store");
    (0..1000u64)
        .map(|i| {
            let op = Op::Put { key: format!("user:{round}:{i}"), value: "x".repeat(64) };
            let tx = Transaction { chain_id: CHAIN.into(), sender: key.public(), nonce: i, op, signature };
            VerifiedTx::from_trusted_store(tx)
        })
        .collect()
}

fn store_commits(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path()).unwrap();
    let (g0, w0) = Block::genesis(CHAIN, 0, &Default::default());
    store.commit(&g0, &w0).unwrap();
    let v = Keypair::from_seed([99; 32]);
    let mut g = c.benchmark_group("rocksdb");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(1000));
    let mut round = 0usize;
    // Times only `Store::commit` (one synced WriteBatch); the execution before it is untimed.
    g.bench_function("commit 1000-tx block, synced", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let prev = store.latest_block().unwrap().unwrap();
                let batch = &fresh_block(round);
                round += 1;
                let header = BatchHeader::for_txs(prev.height() + 1, 0, v.public(), batch);
                let committed = store.committed(&batch.iter().map(|t| t.id()).collect::<Vec<_>>()).unwrap();
                let (block, exec) = Block::build(CHAIN, &prev, header, batch, &committed, Some(certify(&v, &header)));
                let t = Instant::now();
                store.commit(&block, &exec.writes).unwrap();
                total += t.elapsed();
            }
            total
        })
    });
    // The whole per-block path of a node: duplicate lookup, execution, hashing and the commit.
    g.bench_function("lookup + execute + commit 1000-tx block", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let batch = &fresh_block(round);
                round += 1;
                let t = Instant::now();
                let prev = store.latest_block().unwrap().unwrap();
                let header = BatchHeader::for_txs(prev.height() + 1, 0, v.public(), batch);
                let committed = store.committed(&batch.iter().map(|t| t.id()).collect::<Vec<_>>()).unwrap();
                let (block, exec) = Block::build(CHAIN, &prev, header, batch, &committed, Some(certify(&v, &header)));
                store.commit(&block, &exec.writes).unwrap();
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, signatures, store_commits);
criterion_main!(benches);
