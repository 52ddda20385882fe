//! Batch formation: client transactions wait FIFO by arrival in the shared pool
//! (`crate::pool::TxPool`); the primary forms a batch when one is full or the oldest waited
//! `batch_timeout_ms`, within the watermarks.

use super::*;

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
            && self.pool.unproposed_count() > 0
        {
            let (max_txs, max_bytes) = (self.cfg.batch_max_txs, self.cfg.batch_max_bytes);
            let full = self.pool.full_batch(max_txs, max_bytes);
            let waited = self.pool.oldest_unproposed_ms().is_some_and(|t| self.now_ms >= t + self.cfg.batch_timeout_ms);
            if !(full || waited) {
                return;
            }
            let txs = self.pool.cut(max_txs, max_bytes);
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
