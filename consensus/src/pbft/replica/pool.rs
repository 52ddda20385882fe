//! The pending pool and batch formation: client transactions wait FIFO by arrival; the primary
//! forms a batch when one is full or the oldest waited `batch_timeout_ms`, within the watermarks.

use super::*;

/// The pending transaction pool of one replica: FIFO by arrival.
#[derive(Debug, Default)]
pub(super) struct Pool {
    pub(super) txs: BTreeMap<Hash, (VerifiedTx, u64, u64)>, // id -> (tx, arrival seq, arrival ms)
    pub(super) order: BTreeMap<u64, Hash>,                  // arrival seq -> id, every pending tx
    pub(super) unproposed: BTreeSet<u64>,                   // arrival seqs not in a batch of this view
    pub(super) bytes: usize,
    pub(super) next_seq: u64,
}

impl Pool {
    pub(super) fn insert(&mut self, tx: VerifiedTx, now_ms: u64, max_txs: usize, max_bytes: usize) -> bool {
        if self.txs.contains_key(&tx.id()) || self.txs.len() >= max_txs || self.bytes + tx.wire_len() > max_bytes {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += tx.wire_len();
        self.order.insert(seq, tx.id());
        self.unproposed.insert(seq);
        self.txs.insert(tx.id(), (tx, seq, now_ms));
        true
    }

    pub(super) fn remove(&mut self, id: &Hash) {
        if let Some((tx, seq, _)) = self.txs.remove(id) {
            self.bytes -= tx.wire_len();
            self.order.remove(&seq);
            self.unproposed.remove(&seq);
        }
    }

    pub(super) fn mark_proposed(&mut self, id: &Hash) {
        if let Some((_, seq, _)) = self.txs.get(id) {
            self.unproposed.remove(seq);
        }
    }

    pub(super) fn unpropose_all(&mut self) {
        self.unproposed = self.order.keys().copied().collect();
    }

    pub(super) fn oldest_arrival_ms(&self) -> Option<u64> {
        self.order.values().next().map(|id| self.txs[id].2)
    }

    pub(super) fn oldest_unproposed_ms(&self) -> Option<u64> {
        self.unproposed.iter().next().map(|s| self.txs[&self.order[s]].2)
    }
}

impl Replica {
    // ------------------------------------------------------------------ client transactions

    pub(super) fn on_client_txs(&mut self, txs: Vec<VerifiedTx>) {
        for tx in txs {
            self.pool.insert(tx, self.now_ms, self.cfg.pool_max_txs, self.cfg.pool_max_bytes);
        }
    }

    /// The primary forms batches: early when a full batch is pending, otherwise once the oldest
    /// unproposed transaction waited `batch_timeout_ms`; never beyond the high watermark.
    pub(super) fn try_propose(&mut self) {
        if self.mode != Mode::Normal || !self.is_primary() || self.is_observer() {
            return;
        }
        // Heights this replica already committed are final; never assign them again.
        self.next_height = self.next_height.max(self.committed_height + 1);
        while self.next_height <= self.high_watermark()
            && self.next_height <= self.committed_height + self.cfg.max_in_flight
            && !self.pool.unproposed.is_empty()
        {
            let (mut count, mut bytes) = (0usize, 0usize);
            for s in &self.pool.unproposed {
                let len = self.pool.txs[&self.pool.order[s]].0.wire_len();
                if count == self.cfg.batch_max_txs || bytes + len > self.cfg.batch_max_bytes {
                    break;
                }
                count += 1;
                bytes += len;
            }
            let full = count == self.cfg.batch_max_txs || count < self.pool.unproposed.len();
            let waited = self.pool.oldest_unproposed_ms().is_some_and(|t| self.now_ms >= t + self.cfg.batch_timeout_ms);
            if count == 0 || !(full || waited) {
                return;
            }
            let seqs: Vec<u64> = self.pool.unproposed.iter().take(count).copied().collect();
            let txs: Vec<VerifiedTx> = seqs.iter().map(|s| self.pool.txs[&self.pool.order[s]].0.clone()).collect();
            for s in seqs {
                self.pool.unproposed.remove(&s);
            }
            let h = self.next_height;
            let header = BatchHeader::for_txs(h, self.now_ms, self.me, &txs);
            let d = header.digest(&self.ctx.chain_id);
            let pp = match self.safety.pre_prepare(self.view, Batch { header, txs }) {
                Ok(pp) => pp,
                Err(e) => {
                    // The record says this replica already pre-prepared another batch at h in
                    // this view (possible after a restart): skip the height rather than equivocate.
                    self.drop_msg(e);
                    self.next_height += 1;
                    self.pool.unpropose_all();
                    continue;
                }
            };
            self.dirty = true;
            self.next_height += 1;
            self.counters.batches_proposed += 1;
            let slot = self.log.entry(h).or_default();
            slot.accepted = Some(Accepted { view: self.view, digest: d, header, primary_signature: pp.signature });
            slot.bodies.insert(d, pp.batch.clone());
            slot.my_pre_prepare = Some(pp.clone());
            self.broadcast(Message::PrePrepare(pp));
            self.check_prepared(h);
        }
    }
}
