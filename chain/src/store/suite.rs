//! The one test suite every `Store` implementation passes.

use std::collections::BTreeMap;

use super::{LogWrite, SafetyWrite, Store, StoredLog, TxLocation};
use crate::block::{BatchHeader, Block};
use crate::cert::Certificate;
use crate::crypto::{Hash, Keypair};
use crate::error::ChainError;
use crate::tx::{Op, Transaction, TxResult, TxRules, VerifiedTx};

const CHAIN: &str = "ordo-testnet";

fn tx(nonce: u64, op: Op) -> VerifiedTx {
    TxRules::new(CHAIN).verify(Transaction::sign(CHAIN, &Keypair::from_seed([5; 32]), nonce, op)).unwrap()
}

fn put(n: u64, k: &str, v: &str) -> VerifiedTx {
    tx(n, Op::Put { key: k.into(), value: v.into() })
}

/// Executes `txs` on top of the store's tip and commits the block, as the node does.
pub fn commit_next<S: Store>(store: &S, txs: Vec<VerifiedTx>) -> Block {
    let prev = store.latest_block().unwrap().expect("genesis committed");
    let ids: Vec<Hash> = txs.iter().map(|t| t.id()).collect();
    let committed = store.committed(&ids).unwrap();
    let v = Keypair::from_seed([9; 32]);
    let header = BatchHeader::for_txs(prev.height() + 1, 7, v.public(), &txs);
    let d = header.digest(CHAIN);
    let cert = Certificate::pbft_signed(CHAIN, 0, header.height, d, &[v]);
    let (block, exec) = Block::build(CHAIN, &prev, header, &txs, &committed, Some(cert));
    store.commit(&block, &exec.writes).unwrap();
    block
}

pub fn commit_genesis<S: Store>(store: &S) -> Block {
    let state: BTreeMap<String, String> = [("greeting".to_string(), "hello".to_string())].into();
    let (g, writes) = Block::genesis(CHAIN, 1, &state);
    store.commit(&g, &writes).unwrap();
    g
}

pub fn empty_store<S: Store>(s: &S) {
    assert_eq!(s.latest_height().unwrap(), None);
    assert_eq!(s.block(0).unwrap(), None);
    assert_eq!(s.latest_block().unwrap(), None);
    assert_eq!(s.state_get("greeting").unwrap(), None);
    assert_eq!(s.load_safety().unwrap(), None);
}

pub fn commit_and_read_back<S: Store>(s: &S) {
    let g = commit_genesis(s);
    assert_eq!(s.latest_height().unwrap(), Some(0));
    assert_eq!(s.state_get("greeting").unwrap().as_deref(), Some("hello"));
    let a = put(1, "a", "1");
    let b1 = commit_next(s, vec![a.clone(), put(2, "b", "2"), a.clone()]);
    assert_eq!(b1.results, vec![TxResult::Applied, TxResult::Applied, TxResult::Duplicate]);
    let b2 = commit_next(s, vec![tx(3, Op::Delete { key: "a".into() }), a.clone()]);
    assert_eq!(b2.results, vec![TxResult::Applied, TxResult::Duplicate]);

    assert_eq!(s.latest_height().unwrap(), Some(2));
    assert_eq!(s.block(0).unwrap().unwrap(), g);
    assert_eq!(s.block(1).unwrap().unwrap(), b1);
    assert_eq!(s.block_by_hash(&b2.hash).unwrap().unwrap(), b2);
    assert_eq!(s.block_by_hash(&Hash([0xee; 32])).unwrap(), None);
    assert_eq!(s.block(3).unwrap(), None);
    assert_eq!(s.latest_block().unwrap().unwrap(), b2);
    // The index points at the block that applied a transaction, never at a later duplicate.
    assert_eq!(s.tx_location(&a.id()).unwrap(), Some(TxLocation { height: 1, index: 0, result: TxResult::Applied }));
    assert_eq!(s.committed(&[a.id(), Hash([1; 32])]).unwrap(), vec![true, false]);
    assert_eq!(s.state_get("a").unwrap(), None, "deleted in block 2");
    assert_eq!(s.state_get("b").unwrap().as_deref(), Some("2"));
}

pub fn rejects_commits_that_do_not_extend_the_tip<S: Store>(s: &S) {
    let g = commit_genesis(s);
    let b1 = commit_next(s, vec![put(1, "a", "1")]);
    // Same height again.
    let e = s.commit(&b1, &[]).unwrap_err();
    assert_eq!(e, ChainError::NonSequentialCommit { expected: 2, got: 1 });
    // Right height, wrong parent.
    let mut fork = b1.clone();
    fork.header.height = 2;
    fork.prev_hash = g.hash;
    assert!(matches!(
        s.commit(&fork, &[Op::Put { key: "x".into(), value: "y".into() }]),
        Err(ChainError::PrevHashMismatch { .. })
    ));
    // Nothing of the rejected commits was written.
    assert_eq!(s.latest_height().unwrap(), Some(1));
    assert_eq!(s.state_get("x").unwrap(), None);
    assert_eq!(s.block(2).unwrap(), None);
}

fn body(height: u64, b: u8) -> ((u64, Hash), Vec<u8>) {
    ((height, Hash([b; 32])), vec![b; 3])
}

pub fn safety_record<S: Store>(s: &S) {
    let write = |record: &[u8], put_bodies: Vec<((u64, Hash), Vec<u8>)>, delete_bodies: Vec<(u64, Hash)>| SafetyWrite {
        record: record.to_vec(),
        put_bodies,
        delete_bodies,
    };
    s.save_safety(&write(b"view=1", vec![body(1, 1), body(2, 2), body(2, 7)], vec![])).unwrap();
    let got = s.load_safety().unwrap().unwrap();
    assert_eq!(got.record, b"view=1");
    assert_eq!(got.bodies, [body(1, 1), body(2, 2), body(2, 7)].into());
    // The record is replaced; bodies are added and deleted by key, the others stay as they are.
    s.save_safety(&write(
        b"view=2",
        vec![body(3, 3)],
        vec![(1, Hash([1; 32])), (2, Hash([7; 32])), (9, Hash([9; 32]))],
    ))
    .unwrap();
    let got = s.load_safety().unwrap().unwrap();
    assert_eq!(got.record, b"view=2");
    assert_eq!(got.bodies, [body(2, 2), body(3, 3)].into());
    // Nothing else the store keeps is taken for a body, and bodies touch nothing else.
    commit_genesis(s);
    s.write_log(&append(1..=2, 5)).unwrap();
    assert_eq!(s.load_safety().unwrap().unwrap().bodies.len(), 2);
    assert_eq!(s.load_log().unwrap().entries, entries(1..=2, 5));
    assert_eq!(s.state_get("greeting").unwrap().as_deref(), Some("hello"));
}

pub fn large_block<S: Store>(s: &S) {
    commit_genesis(s);
    let txs: Vec<VerifiedTx> = (0..1000).map(|i| put(i, &format!("k{i}"), &"v".repeat(100))).collect();
    let b = commit_next(s, txs);
    assert_eq!(s.block(1).unwrap().unwrap(), b);
    assert_eq!(s.state_get("k999").unwrap().unwrap().len(), 100);
}

/// Writes to one key inside one block apply in the block's order, and every id of a block is
/// indexed where it stands, whatever order the store inserts them in.
pub fn writes_to_one_key_apply_in_block_order<S: Store>(s: &S) {
    commit_genesis(s);
    let del = |n: u64, k: &str| tx(n, Op::Delete { key: k.into() });
    // Keys out of order, each written more than once: the last write to each key wins.
    let txs = vec![
        put(1, "m", "1"),
        put(2, "z", "1"),
        put(3, "a", "1"),
        del(4, "m"),
        put(5, "a", "2"),
        del(6, "z"),
        put(7, "z", "2"),
        put(8, "m", "3"),
        del(9, "m"),
        put(10, "b", "x"),
        del(11, "b"),
        put(12, "b", "y"),
    ];
    let b = commit_next(s, txs.clone());
    assert_eq!(s.state_get("a").unwrap().as_deref(), Some("2"));
    assert_eq!(s.state_get("b").unwrap().as_deref(), Some("y"));
    assert_eq!(s.state_get("m").unwrap(), None, "deleted last");
    assert_eq!(s.state_get("z").unwrap().as_deref(), Some("2"));
    for (i, t) in txs.iter().enumerate() {
        let at = TxLocation { height: b.height(), index: i as u32, result: TxResult::Applied };
        assert_eq!(s.tx_location(&t.id()).unwrap(), Some(at));
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, tag: u8) -> Vec<(u64, Vec<u8>)> {
    range.map(|i| (i, vec![tag, i as u8])).collect()
}

fn append(range: std::ops::RangeInclusive<u64>, tag: u8) -> LogWrite {
    LogWrite { append: entries(range, tag), ..Default::default() }
}

pub fn log_append_and_meta<S: Store>(s: &S) {
    assert_eq!(s.load_log().unwrap(), StoredLog::default(), "a new store has an empty log");
    s.write_log(&LogWrite { meta: Some(b"hs1".to_vec()), ..append(1..=3, 0) }).unwrap();
    s.write_log(&append(4..=5, 0)).unwrap();
    let log = s.load_log().unwrap();
    assert_eq!(log.meta.as_deref(), Some(&b"hs1"[..]));
    assert_eq!(log.entries, entries(1..=5, 0));
    // The meta record is replaced whole, and only when a write names one.
    s.write_log(&LogWrite { meta: Some(b"hard state 2".to_vec()), ..Default::default() }).unwrap();
    let log = s.load_log().unwrap();
    assert_eq!(log.meta.as_deref(), Some(&b"hard state 2"[..]));
    assert_eq!(log.entries, entries(1..=5, 0));
    // Large indexes sort numerically (big-endian keys), past one byte.
    s.write_log(&append(6..=300, 0)).unwrap();
    assert_eq!(s.load_log().unwrap().entries, entries(1..=300, 0));
}

pub fn log_truncate_then_append<S: Store>(s: &S) {
    s.write_log(&append(1..=5, 0)).unwrap();
    // A new leader overwrites entries 3.. with its own.
    s.write_log(&LogWrite { truncate_from: Some(3), ..append(3..=4, 1) }).unwrap();
    let mut expected = entries(1..=2, 0);
    expected.extend(entries(3..=4, 1));
    assert_eq!(s.load_log().unwrap().entries, expected);
    // Truncating everything (an installed snapshot) and starting again elsewhere.
    s.write_log(&LogWrite { truncate_from: Some(1), delete_below: Some(11), ..append(11..=12, 2) }).unwrap();
    assert_eq!(s.load_log().unwrap().entries, entries(11..=12, 2));
}

pub fn log_compaction<S: Store>(s: &S) {
    s.write_log(&append(1..=10, 0)).unwrap();
    s.write_log(&LogWrite { meta: Some(b"base=6".to_vec()), delete_below: Some(7), ..Default::default() }).unwrap();
    let log = s.load_log().unwrap();
    assert_eq!(log.entries, entries(7..=10, 0));
    assert_eq!(log.meta.as_deref(), Some(&b"base=6"[..]));
    // Appending and compacting in one write: the new entries stay.
    s.write_log(&LogWrite { delete_below: Some(9), ..append(11..=12, 0) }).unwrap();
    assert_eq!(s.load_log().unwrap().entries, entries(9..=12, 0));
    // Compacting past the end empties the log, and the next append may start anywhere.
    s.write_log(&LogWrite { delete_below: Some(100), ..Default::default() }).unwrap();
    assert_eq!(s.load_log().unwrap().entries, vec![]);
    s.write_log(&append(100..=101, 3)).unwrap();
    assert_eq!(s.load_log().unwrap().entries, entries(100..=101, 3));
}

pub fn log_refuses_a_gap_and_writes_nothing<S: Store>(s: &S) {
    s.write_log(&LogWrite { meta: Some(b"m1".to_vec()), ..append(1..=3, 0) }).unwrap();
    let before = s.load_log().unwrap();
    // A gap after the last entry.
    let gap = LogWrite { meta: Some(b"m2".to_vec()), delete_below: Some(2), ..append(5..=6, 1) };
    assert_eq!(s.write_log(&gap).unwrap_err(), ChainError::NonContiguousLog { expected: 4, got: 5 });
    // A gap inside the appended entries.
    let inner = LogWrite { append: vec![(4, vec![1]), (6, vec![1])], ..Default::default() };
    assert_eq!(s.write_log(&inner).unwrap_err(), ChainError::NonContiguousLog { expected: 5, got: 6 });
    // A gap after a truncation.
    let after_truncate = LogWrite { truncate_from: Some(2), ..append(3..=3, 1) };
    assert_eq!(s.write_log(&after_truncate).unwrap_err(), ChainError::NonContiguousLog { expected: 2, got: 3 });
    assert_eq!(
        s.load_log().unwrap(),
        before,
        "a refused write changes nothing: meta, truncation and compaction included"
    );
}

macro_rules! store_suite {
    ($modname:ident, $make:expr) => {
        mod $modname {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn empty_store() {
                let (_guard, s) = $make;
                super::empty_store(&s);
            }
            #[test]
            fn commit_and_read_back() {
                let (_guard, s) = $make;
                super::commit_and_read_back(&s);
            }
            #[test]
            fn rejects_commits_that_do_not_extend_the_tip() {
                let (_guard, s) = $make;
                super::rejects_commits_that_do_not_extend_the_tip(&s);
            }
            #[test]
            fn safety_record() {
                let (_guard, s) = $make;
                super::safety_record(&s);
            }
            #[test]
            fn log_append_and_meta() {
                let (_guard, s) = $make;
                super::log_append_and_meta(&s);
            }
            #[test]
            fn log_truncate_then_append() {
                let (_guard, s) = $make;
                super::log_truncate_then_append(&s);
            }
            #[test]
            fn log_compaction() {
                let (_guard, s) = $make;
                super::log_compaction(&s);
            }
            #[test]
            fn log_refuses_a_gap_and_writes_nothing() {
                let (_guard, s) = $make;
                super::log_refuses_a_gap_and_writes_nothing(&s);
            }
            #[test]
            fn writes_to_one_key_apply_in_block_order() {
                let (_guard, s) = $make;
                super::writes_to_one_key_apply_in_block_order(&s);
            }
            #[test]
            fn large_block() {
                let (_guard, s) = $make;
                super::large_block(&s);
            }
        }
    };
}

store_suite!(mem, ((), crate::store::MemStore::new()));

#[cfg(feature = "rocksdb")]
store_suite!(rocks, {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::store::RocksStore::open(dir.path()).unwrap();
    (dir, s)
});

/// The memory store's crash model: synced writes survive `crash()`, unsynced ones do not, and a
/// synced write carries the unsynced ones before it to disk.
#[test]
fn mem_crash_loses_only_unsynced_log_writes() {
    let s = crate::store::MemStore::new();
    s.write_log(&LogWrite { meta: Some(b"m1".to_vec()), ..append(1..=2, 0) }).unwrap();
    s.write_log_unsynced(&LogWrite { meta: Some(b"m2".to_vec()), ..append(3..=3, 0) }).unwrap();
    assert_eq!(s.load_log().unwrap().entries, entries(1..=3, 0), "reads see unsynced writes");
    assert_eq!(s.unsynced_writes(), 1);
    s.crash();
    let log = s.load_log().unwrap();
    assert_eq!((log.meta.as_deref(), log.entries), (Some(&b"m1"[..]), entries(1..=2, 0)));
    s.write_log_unsynced(&append(3..=3, 1)).unwrap();
    s.write_log(&append(4..=4, 1)).unwrap();
    s.crash();
    let mut expected = entries(1..=2, 0);
    expected.extend(entries(3..=4, 1));
    assert_eq!(s.load_log().unwrap().entries, expected, "a synced write syncs the earlier ones");
    // An unsynced write is checked like any other.
    assert!(s.write_log_unsynced(&append(9..=9, 1)).is_err());
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocks_reopen_keeps_everything() {
    use crate::store::RocksStore;
    let dir = tempfile::tempdir().unwrap();
    let (b1, a) = {
        let s = RocksStore::open(dir.path()).unwrap();
        commit_genesis(&s);
        let a = put(1, "a", "1");
        let b1 = commit_next(&s, vec![a.clone()]);
        s.save_safety(&SafetyWrite { record: b"record".to_vec(), put_bodies: vec![body(4, 4)], delete_bodies: vec![] })
            .unwrap();
        s.write_log(&LogWrite { meta: Some(b"log meta".to_vec()), ..append(1..=3, 7) }).unwrap();
        (b1, a)
    };
    let s = RocksStore::open(dir.path()).unwrap();
    assert_eq!(s.latest_height().unwrap(), Some(1));
    assert_eq!(s.latest_block().unwrap().unwrap(), b1);
    assert_eq!(s.block_by_hash(&b1.hash).unwrap().unwrap(), b1);
    assert!(s.tx_location(&a.id()).unwrap().is_some());
    assert_eq!(s.state_get("a").unwrap().as_deref(), Some("1"));
    let safety = s.load_safety().unwrap().unwrap();
    assert_eq!((safety.record.as_slice(), safety.bodies), (&b"record"[..], [body(4, 4)].into()));
    assert_eq!(s.load_log().unwrap(), StoredLog { meta: Some(b"log meta".to_vec()), entries: entries(1..=3, 7) });
    // And it keeps extending.
    let b2 = commit_next(&s, vec![put(2, "b", "2")]);
    assert_eq!(b2.prev_hash, b1.hash);
}

/// The block column family flushes in memtables of `BLOCKS_WRITE_BUFFER_BYTES`, not RocksDB's
/// 64 MiB: after a little more than that of blocks its table files hold data, while the state,
/// which took as many bytes (the same values), is still all in its memtable.
#[cfg(feature = "rocksdb")]
#[test]
fn rocks_flushes_blocks_in_small_memtables() {
    use crate::store::rocks::{BLOCKS_WRITE_BUFFER_BYTES, CF_BLOCKS, CF_STATE};
    use crate::store::RocksStore;
    let dir = tempfile::tempdir().unwrap();
    let s = RocksStore::open(dir.path()).unwrap();
    commit_genesis(&s);
    let value = "v".repeat(16 * 1024);
    let per_block = 200u64;
    let blocks = (BLOCKS_WRITE_BUFFER_BYTES as u64 * 5 / 4) / (per_block * value.len() as u64) + 1;
    for b in 0..blocks {
        let txs = (0..per_block).map(|i| put(b * per_block + i, &format!("k{b}/{i}"), &value)).collect();
        commit_next(&s, txs);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.table_bytes(CF_BLOCKS) == 0 {
        assert!(std::time::Instant::now() < deadline, "no flush of the block column family after {blocks} blocks");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(s.table_bytes(CF_STATE), 0, "the state column family keeps RocksDB's default memtable");
    // Everything reads back, flushed or not.
    assert_eq!(s.block(1).unwrap().unwrap().txs.len(), per_block as usize);
    assert_eq!(s.state_get("k0/0").unwrap().as_deref(), Some(value.as_str()));
}
