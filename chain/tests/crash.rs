//! Crash safety of the RocksDB store, with a real child process and a real SIGKILL.
//!
//! The parent test re-runs this test binary as a child (`crash_child`, ignored in normal runs)
//! that commits a deterministic stream of blocks as fast as it can. The parent kills it with
//! SIGKILL at a random moment, reopens the store and checks that the last block is whole (every
//! transaction indexed, every write in the state), that nothing of the next block leaked in, and
//! that the chain still verifies. Then it starts the child again on the same store, many times.
//!
//! `ORDO_CRASH_KILLS` sets the number of kills (default 60).
#![cfg(feature = "rocksdb")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ordo_chain::block::BatchHeader;
use ordo_chain::cert::CertKind;
use ordo_chain::store::{RocksStore, Store};
use ordo_chain::{
    Block, Certificate, ChainVerifier, Committee, Keypair, Op, Transaction, TxResult, TxRules, VerifiedTx,
};
use rand::{Rng, SeedableRng};

const CHAIN: &str = "ordo-crash";
const TXS_PER_BLOCK: u64 = 25;
const CHILD_MAX_BLOCKS: u64 = 100_000;

fn validator() -> Keypair {
    Keypair::from_seed([77; 32])
}

fn genesis() -> (Block, Vec<Op>) {
    Block::genesis(CHAIN, 0, &Default::default())
}

/// The transactions of block `height`: deterministic, so the parent knows what the block that
/// was being written when the child died would have held.
fn block_txs(height: u64) -> Vec<VerifiedTx> {
    let client = Keypair::from_seed([5; 32]);
    let rules = TxRules::new(CHAIN);
    (0..TXS_PER_BLOCK)
        .map(|i| {
            let op = Op::Put { key: format!("k{height}-{i}"), value: format!("v{height}-{i}") };
            rules.verify(Transaction::sign(CHAIN, &client, height * 1000 + i, op)).unwrap()
        })
        .collect()
}

fn commit_next(store: &RocksStore) {
    let prev = store.latest_block().unwrap().unwrap();
    let h = prev.height() + 1;
    let txs = block_txs(h);
    let header = BatchHeader::for_txs(h, h, validator().public(), &txs);
    let d = header.digest(CHAIN);
    let cert = Certificate::pbft_signed(CHAIN, 0, h, d, &[validator()]);
    let committed = store.committed(&txs.iter().map(|t| t.id()).collect::<Vec<_>>()).unwrap();
    let (block, exec) = Block::build(CHAIN, &prev, header, &txs, &committed, Some(cert));
    store.commit(&block, &exec.writes).unwrap();
}

/// The child: commits blocks until it is killed.
#[test]
#[ignore = "run by crash_kill_9_never_tears_a_block as a child process"]
fn crash_child() {
    let dir = std::env::var("ORDO_CRASH_DIR").expect("the parent sets ORDO_CRASH_DIR");
    let store = RocksStore::open(Path::new(&dir)).unwrap();
    if store.latest_height().unwrap().is_none() {
        let (g, w) = genesis();
        store.commit(&g, &w).unwrap();
    }
    println!("ready");
    for _ in 0..CHILD_MAX_BLOCKS {
        commit_next(&store);
    }
}

fn check_whole(store: &RocksStore, height: u64) {
    for (i, tx) in block_txs(height).iter().enumerate() {
        let loc = store.tx_location(&tx.id()).unwrap().unwrap_or_else(|| panic!("block {height}: tx {i} not indexed"));
        assert_eq!((loc.height, loc.index, loc.result), (height, i as u32, TxResult::Applied));
        assert_eq!(store.state_get(&format!("k{height}-{i}")).unwrap(), Some(format!("v{height}-{i}")));
    }
}

fn check_absent(store: &RocksStore, height: u64) {
    assert_eq!(store.block(height).unwrap(), None);
    for (i, tx) in block_txs(height).iter().enumerate() {
        assert_eq!(store.tx_location(&tx.id()).unwrap(), None, "torn block {height}: tx {i} indexed");
        assert_eq!(store.state_get(&format!("k{height}-{i}")).unwrap(), None, "torn block {height}: write {i}");
    }
}

#[test]
fn crash_kill_9_never_tears_a_block() {
    let kills: usize = std::env::var("ORDO_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x0bd0);
    let (g, _) = genesis();
    let committee = Committee::new(vec![validator().public()]);
    let mut verifier = None::<ChainVerifier>;
    let mut verified_to = 0u64;
    let mut advanced = 0;
    for round in 0..kills {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env("ORDO_CRASH_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let line = lines.next().expect("child exited before it was ready").unwrap();
            if line.trim_end().ends_with("ready") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(1..60)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: the child was to be killed, not to finish");

        let store = RocksStore::open(dir.path()).unwrap();
        let tip = store.latest_height().unwrap().expect("genesis is committed before ready");
        if tip > verified_to {
            advanced += 1;
        }
        let v = verifier.get_or_insert_with(|| {
            let b0 = store.block(0).unwrap().unwrap();
            ChainVerifier::new(TxRules::new(CHAIN), committee.clone(), CertKind::Pbft, g.clone(), &b0).unwrap()
        });
        for h in verified_to + 1..=tip {
            v.push(store.block(h).unwrap().unwrap()).unwrap_or_else(|e| panic!("round {round}: block {h}: {e}"));
        }
        assert_eq!(v.tip().hash, store.latest_block().unwrap().unwrap().hash);
        verified_to = tip;
        if tip > 0 {
            check_whole(&store, tip);
        }
        check_absent(&store, tip + 1);
    }
    // The kills must have landed in the middle of a stream of commits, not before the first one.
    assert!(advanced * 2 >= kills, "the chain grew in only {advanced} of {kills} rounds");
    eprintln!("{kills} kills, chain at height {verified_to}, every block whole");
}
