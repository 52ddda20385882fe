//! Checkpoints (§4.3): a CHECKPOINT over each K-th executed block, the stable checkpoint once
//! 2f+1 agree, and garbage collection below it.

use super::*;

impl Replica {
    // ------------------------------------------------------------------ checkpoints (§4.3)

    pub(super) fn on_executed(&mut self, height: u64, block_hash: Hash) {
        if height <= self.executed_height {
            return;
        }
        assert!(height <= self.committed_height, "the node executed height {height} that was never committed");
        self.executed_height = height;
        if height == self.stable.height {
            assert_eq!(
                block_hash, self.stable.block_hash,
                "executed block {height} differs from the stable checkpoint"
            );
        }
        if height % self.cfg.checkpoint_interval == 0 && height > self.stable.height {
            let cp = Checkpoint::sign(&self.ctx.chain_id, self.safety.key(), height, block_hash);
            self.my_checkpoint = Some(cp.clone());
            self.broadcast(Message::Checkpoint(cp.clone()));
            self.on_checkpoint(cp);
        }
    }

    pub(super) fn on_checkpoint(&mut self, c: Checkpoint) {
        if c.height <= self.stable.height || c.height % self.cfg.checkpoint_interval != 0 {
            self.drop_msg(ConsensusError::OutsideWatermarks {
                height: c.height,
                low: self.stable.height,
                high: self.high_watermark(),
            });
            return;
        }
        if c.height > self.high_watermark() {
            // Far checkpoints tell a lagging replica it is behind; one per sender bounds them.
            let high = self.high_watermark();
            for votes in self.checkpoint_votes.range_mut(high + 1..).map(|(_, v)| v) {
                votes.remove(&c.from);
            }
            self.checkpoint_votes.retain(|_, v| !v.is_empty());
        }
        self.checkpoint_votes.entry(c.height).or_default().insert(c.from, (c.block_hash, c.signature));
        let votes = &self.checkpoint_votes[&c.height];
        let matching: Vec<ValidatorSignature> = votes
            .iter()
            .filter(|(_, (h, _))| *h == c.block_hash)
            .map(|(k, (_, s))| ValidatorSignature { validator: *k, signature: *s })
            .collect();
        if matching.len() >= self.quorum() {
            self.stabilize(CheckpointProof { height: c.height, block_hash: c.block_hash, signatures: matching });
        }
    }

    pub(super) fn checkpoint_signers(&self, p: &CheckpointProof) -> Vec<PublicKey> {
        p.signatures.iter().map(|s| s.validator).filter(|k| *k != self.me).collect()
    }

    /// A checkpoint became stable: garbage-collect everything at or below it, and fetch the
    /// blocks up to it if this replica has not committed them.
    pub(super) fn stabilize(&mut self, proof: CheckpointProof) {
        if proof.height <= self.stable.height {
            return;
        }
        let h = proof.height;
        self.safety.advance_checkpoint(proof.clone());
        self.dirty = true;
        self.stable = proof;
        self.log = self.log.split_off(&(h + 1));
        self.checkpoint_votes = self.checkpoint_votes.split_off(&(h + 1));
        self.committed_digests = self.committed_digests.split_off(&(h + 1));
        if self.next_height <= h {
            self.next_height = h + 1;
        }
        if self.committed_height < h {
            let peers = self.checkpoint_signers(&self.stable);
            self.start_sync(h, peers);
        }
        // The window moved: the primary may propose again.
        self.try_propose();
    }
}
