//! The pending transaction pool of a Raft node: FIFO by arrival, bounded by a transaction count
//! and a byte total. Every node keeps one (clients may submit to any validator); only the leader
//! cuts batches from it. A transaction leaves the pool when a block holding it commits, never
//! when it is merely proposed, so a proposal lost with a deposed leader is proposed again.

use std::collections::{BTreeMap, BTreeSet};

use ordo_chain::{Hash, VerifiedTx};

#[derive(Debug, Default)]
pub(crate) struct Pool {
    txs: BTreeMap<Hash, (VerifiedTx, u64, u64)>, // id -> (tx, arrival seq, arrival ms)
    order: BTreeMap<u64, Hash>,                  // arrival seq -> id, every pending tx
    unproposed: BTreeSet<u64>,                   // arrival seqs in no batch in flight
    bytes: usize,
    unproposed_bytes: usize,
    next_seq: u64,
}

impl Pool {
    pub fn len(&self) -> usize {
        self.txs.len()
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

    /// After a change of leader: nothing of ours is in flight any more.
    pub fn unpropose_all(&mut self) {
        self.unproposed = self.order.keys().copied().collect();
        self.unproposed_bytes = self.bytes;
    }

    pub fn unproposed_count(&self) -> usize {
        self.unproposed.len()
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
