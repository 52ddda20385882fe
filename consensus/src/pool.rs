//! The pending transaction pool that both engines keep: FIFO by arrival, bounded by a transaction
//! count and a byte total. Every validator keeps one (clients may submit to any of them); only the
//! primary (PBFT) or the leader (Raft) cuts batches from it. A transaction leaves the pool when a
//! block holding it commits, never when it is merely proposed, so a proposal lost with a deposed
//! primary or leader is proposed again.
//!
//! The id index is a hash map, not a B-tree: under load every transaction is inserted and removed
//! once on every validator, and 32-byte key comparisons down a B-tree cost 1.5-2.5% of a backup's
//! CPU (docs/performance.md). Transaction ids are SHA-256 outputs, but their inputs are the
//! clients', who could grind ids into one bucket of a hash they can compute. So the map hashes with
//! SipHash-1-3 under a key no outsider knows: derived from the validator's own signature over a
//! fixed tag. The key is deterministic (the core draws no randomness, and a simulation replays
//! exactly), and nothing iterates the map, so its order never reaches behaviour.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

use ordo_chain::crypto::sha256_parts;
use ordo_chain::{Hash, Keypair, VerifiedTx};
use siphasher::sip::SipHasher13;

/// The domain of the signature the pool's hash key is derived from.
const HASH_KEY_TAG: &[u8] = b"ordo/pool/hash-key/v1";

/// SipHash-1-3 under a secret key (see the module's documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecretSip {
    k0: u64,
    k1: u64,
}

impl SecretSip {
    /// The key of validator `key`: a hash of its signature over a fixed tag, which no other
    /// party can compute and which is the same every time this validator starts.
    pub(crate) fn of(key: &Keypair) -> Self {
        let seed = sha256_parts(&[HASH_KEY_TAG, key.sign(HASH_KEY_TAG).as_bytes()]);
        let word = |i: usize| u64::from_le_bytes(seed.0[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        SecretSip { k0: word(0), k1: word(1) }
    }
}

impl BuildHasher for SecretSip {
    type Hasher = SipHasher13;

    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.k0, self.k1)
    }
}

/// Pending transactions in arrival order, each either unproposed or in a batch in flight.
#[derive(Debug)]
pub(crate) struct TxPool {
    txs: HashMap<Hash, (VerifiedTx, u64, u64), SecretSip>, // id -> (tx, arrival seq, arrival ms)
    order: BTreeMap<u64, Hash>,                            // arrival seq -> id, every pending tx
    unproposed: BTreeSet<u64>,                             // arrival seqs in no batch in flight
    bytes: usize,
    unproposed_bytes: usize,
    next_seq: u64,
}

impl TxPool {
    /// An empty pool for validator `key` (whose signature keys the id index).
    pub fn new(key: &Keypair) -> Self {
        TxPool {
            txs: HashMap::with_hasher(SecretSip::of(key)),
            order: BTreeMap::new(),
            unproposed: BTreeSet::new(),
            bytes: 0,
            unproposed_bytes: 0,
            next_seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Adds a transaction unless it is already pending or the pool is full.
    pub fn insert(&mut self, tx: VerifiedTx, now_ms: u64, max_txs: usize, max_bytes: usize) -> bool {
        if self.txs.contains_key(&tx.id()) || self.txs.len() >= max_txs || self.bytes + tx.wire_len() > max_bytes {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += tx.wire_len();
        self.unproposed_bytes += tx.wire_len();
        self.order.insert(seq, tx.id());
        self.unproposed.insert(seq);
        self.txs.insert(tx.id(), (tx, seq, now_ms));
        true
    }

    /// Removes a committed transaction.
    pub fn remove(&mut self, id: &Hash) {
        if let Some((tx, seq, _)) = self.txs.remove(id) {
            self.bytes -= tx.wire_len();
            self.order.remove(&seq);
            if self.unproposed.remove(&seq) {
                self.unproposed_bytes -= tx.wire_len();
            }
        }
    }

    /// Marks a pending transaction as in a batch in flight (one another validator proposed).
    pub fn mark_proposed(&mut self, id: &Hash) {
        if let Some((tx, seq, _)) = self.txs.get(id) {
            if self.unproposed.remove(seq) {
                self.unproposed_bytes -= tx.wire_len();
            }
        }
    }

    /// Makes transactions of a batch that will not commit available to the next batch again.
    pub fn unpropose(&mut self, ids: &[Hash]) {
        for id in ids {
            if let Some((tx, seq, _)) = self.txs.get(id) {
                if self.unproposed.insert(*seq) {
                    self.unproposed_bytes += tx.wire_len();
                }
            }
        }
    }

    /// After a change of primary or leader: nothing of ours is in flight any more.
    pub fn unpropose_all(&mut self) {
        self.unproposed = self.order.keys().copied().collect();
        self.unproposed_bytes = self.bytes;
    }

    pub fn unproposed_count(&self) -> usize {
        self.unproposed.len()
    }

    /// When the oldest pending transaction arrived.
    pub fn oldest_arrival_ms(&self) -> Option<u64> {
        self.order.values().next().map(|id| self.txs[id].2)
    }

    pub fn oldest_unproposed_ms(&self) -> Option<u64> {
        self.unproposed.iter().next().map(|s| self.txs[&self.order[s]].2)
    }

    /// Takes the oldest unproposed transactions, at most `max_txs` of them and `max_bytes` in
    /// all (always at least one), and marks them proposed.
    pub fn cut(&mut self, max_txs: usize, max_bytes: usize) -> Vec<VerifiedTx> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut taken = Vec::new();
        for seq in &self.unproposed {
            let tx = &self.txs[&self.order[seq]].0;
            if out.len() == max_txs || (!out.is_empty() && bytes + tx.wire_len() > max_bytes) {
                break;
            }
            bytes += tx.wire_len();
            out.push(tx.clone());
            taken.push(*seq);
        }
        for seq in taken {
            self.unproposed.remove(&seq);
        }
        self.unproposed_bytes -= bytes;
        out
    }

    /// Whether the unproposed transactions fill a batch.
    pub fn full_batch(&self, max_txs: usize, max_bytes: usize) -> bool {
        self.unproposed.len() >= max_txs || self.unproposed_bytes >= max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_chain::{Op, Transaction, TxRules};

    const CHAIN: &str = "pool-test";

    fn tx(key: &Keypair, nonce: u64, value_len: usize) -> VerifiedTx {
        let op = Op::Put { key: format!("k{nonce}"), value: "v".repeat(value_len) };
        let t = Transaction::sign(CHAIN, key, nonce, op);
        TxRules::new(CHAIN).verify_many(vec![t]).pop().expect("one").expect("valid")
    }

    fn key(b: u8) -> Keypair {
        Keypair::from_seed([b; 32])
    }

    /// A pool holding `n` transactions of one client, the i-th arrived at i ms.
    fn filled(n: u64) -> (TxPool, Vec<VerifiedTx>) {
        let client = key(9);
        let mut pool = TxPool::new(&key(1));
        let txs: Vec<VerifiedTx> = (0..n).map(|i| tx(&client, i, 10)).collect();
        for (ms, t) in txs.iter().enumerate() {
            assert!(pool.insert(t.clone(), ms as u64, 100, 1 << 20));
        }
        (pool, txs)
    }

    #[test]
    fn batches_are_cut_oldest_first_within_both_bounds_and_never_empty() {
        let (mut pool, txs) = filled(5);
        assert!(!pool.insert(txs[0].clone(), 9, 100, 1 << 20), "a pending id is not added twice");
        assert_eq!((pool.len(), pool.oldest_unproposed_ms()), (5, Some(0)));
        assert!(pool.full_batch(5, 1 << 20) && !pool.full_batch(6, 1 << 20));
        let one = txs[0].wire_len();
        assert_eq!(pool.cut(2, 1 << 20), txs[..2].to_vec());
        assert_eq!(pool.cut(10, one + 1), txs[2..3].to_vec(), "the byte bound stops the batch");
        assert_eq!(pool.cut(10, 1), txs[3..4].to_vec(), "one transaction over the bound still goes alone");
        assert_eq!((pool.unproposed_count(), pool.oldest_unproposed_ms()), (1, Some(4)));
        assert!(pool.full_batch(10, one) && !pool.full_batch(10, one + 1), "bytes count only the unproposed");
        assert_eq!(pool.oldest_arrival_ms(), Some(0), "proposed transactions still wait for their commit");
    }

    #[test]
    fn commits_remove_and_lost_batches_come_back_in_arrival_order() {
        let (mut pool, txs) = filled(4);
        let batch = pool.cut(3, 1 << 20);
        pool.remove(&batch[0].id());
        pool.unpropose(&[batch[2].id(), batch[0].id()]);
        assert_eq!(pool.cut(10, 1 << 20), vec![txs[2].clone(), txs[3].clone()], "committed stays gone");
        pool.mark_proposed(&txs[1].id());
        pool.unpropose_all();
        assert_eq!(pool.cut(10, 1 << 20), txs[1..].to_vec());
        for t in &txs {
            pool.remove(&t.id());
        }
        assert!(pool.is_empty() && pool.oldest_arrival_ms().is_none() && !pool.full_batch(1, 1));
    }

    #[test]
    fn the_pool_is_bounded_by_count_and_bytes() {
        let client = key(9);
        let mut pool = TxPool::new(&key(1));
        let (a, b, c) = (tx(&client, 0, 10), tx(&client, 1, 10), tx(&client, 2, 10));
        let max_bytes = a.wire_len() + b.wire_len();
        assert!(pool.insert(a, 0, 2, max_bytes) && pool.insert(b.clone(), 0, 3, max_bytes));
        assert!(!pool.insert(c.clone(), 0, 3, max_bytes), "over the byte bound");
        assert!(!pool.insert(c.clone(), 0, 2, 1 << 20), "over the count bound");
        pool.remove(&b.id());
        assert!(pool.insert(c, 0, 2, max_bytes), "room again once a transaction commits");
    }

    #[test]
    fn the_hash_key_is_each_validators_own_and_stable() {
        let (a, b) = (SecretSip::of(&key(1)), SecretSip::of(&key(2)));
        let id = Hash([7; 32]);
        assert_eq!(a.hash_one(id), SecretSip::of(&key(1)).hash_one(id), "the same after a restart");
        assert_ne!(a.hash_one(id), b.hash_one(id), "another validator hashes differently");
        assert_ne!(a.hash_one(id), SecretSip { k0: 0, k1: 0 }.hash_one(id), "not the public zero key");
    }
}
