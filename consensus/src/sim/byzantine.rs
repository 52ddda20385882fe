//! Byzantine behaviour for the simulation: a Byzantine replica runs the honest core, and this
//! module rewrites what it sends (equivocation, double votes, corrupted signatures, silence) and
//! adds what an attacker would inject on its own (replays of old messages, absurd view numbers).
//! It holds the replica's real key, so everything it forges is validly signed unless corrupted
//! on purpose.

use ordo_chain::crypto::sha256;
use ordo_chain::BatchHeader;
use rand::Rng;

use super::{Byzantine, Sim};
use crate::pbft::messages::{Batch, CheckpointProof, Commit, Message, PrePrepare, Prepare, ViewChange};
use crate::Consensus;

impl Sim {
    /// Rewrites one outgoing message of Byzantine node `from` into what it really sends.
    pub(super) fn byzantine_out(
        &mut self,
        from: usize,
        b: Byzantine,
        targets: Vec<usize>,
        msg: Message,
    ) -> Vec<(Vec<usize>, Message)> {
        if b.silent {
            return Vec::new();
        }
        let key = self.nodes[from].key.clone();
        let chain = super::CHAIN_ID;
        let mut plan = vec![];
        match msg {
            Message::PrePrepare(pp) if b.equivocate && targets.len() >= 2 => {
                // A different batch for the same height: one transaction fewer, or another time.
                let mut txs = pp.batch.txs.clone();
                let ts = pp.batch.header.timestamp_ms + 1;
                if !txs.is_empty() && self.rng.gen_bool(0.5) {
                    txs.pop();
                }
                let header = BatchHeader::for_txs(pp.height(), ts, pp.from, &txs);
                let alt = PrePrepare::sign(chain, &key, pp.view, Batch { header, txs });
                self.nodes[from].alt_digests.insert(pp.height(), alt.batch.digest(chain));
                let mut a = Vec::new();
                let mut bside = Vec::new();
                for t in targets {
                    if self.rng.gen_bool(0.5) {
                        a.push(t)
                    } else {
                        bside.push(t)
                    }
                }
                plan.push((a, Message::PrePrepare(pp)));
                plan.push((bside, Message::PrePrepare(alt)));
            }
            Message::Prepare(p) if b.double_vote => {
                let d2 = self.nodes[from].alt_digests.get(&p.height).copied().unwrap_or_else(|| sha256(&p.digest.0));
                let other = Prepare::sign(chain, &key, p.view, p.height, d2);
                let (x, y) = self.split(targets);
                plan.push((x, Message::Prepare(p)));
                plan.push((y, Message::Prepare(other)));
            }
            Message::Commit(c) if b.double_vote => {
                let d2 = self.nodes[from].alt_digests.get(&c.height).copied().unwrap_or_else(|| sha256(&c.digest.0));
                let other = Commit::sign(chain, &key, c.view, c.height, d2);
                let (x, y) = self.split(targets);
                plan.push((x.clone(), Message::Commit(c)));
                plan.push((y, Message::Commit(other)));
            }
            m => plan.push((targets, m)),
        }
        if b.bad_signatures {
            for (_, m) in &mut plan {
                if self.rng.gen_ratio(1, 3) {
                    corrupt(m);
                }
            }
        }
        plan
    }

    fn split(&mut self, targets: Vec<usize>) -> (Vec<usize>, Vec<usize>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for t in targets {
            if self.rng.gen_bool(0.5) {
                x.push(t)
            } else {
                y.push(t)
            }
        }
        (x, y)
    }

    /// What a Byzantine node injects on its own at each tick.
    pub(super) fn byzantine_tick(&mut self, i: usize, b: Byzantine) {
        if b.silent {
            return;
        }
        let n = self.nodes.len();
        if b.replay && !self.nodes[i].replay.is_empty() && self.rng.gen_ratio(1, 5) {
            let k = self.rng.gen_range(0..self.nodes[i].replay.len());
            let msg = self.nodes[i].replay[k].clone();
            let to = self.rng.gen_range(0..n);
            if to != i {
                self.deliver(i, &[to], msg);
            }
        }
        if b.huge_view && self.rng.gen_ratio(1, 30) {
            let view = self.nodes[i].core.as_ref().map_or(0, |c| c.status().view);
            let target = match self.rng.gen_range(0..3) {
                0 => view + 1_000_000,
                1 => u64::MAX - 1,
                _ => view + 2,
            };
            let vc = ViewChange::sign(
                super::CHAIN_ID,
                &self.nodes[i].key,
                target,
                CheckpointProof::genesis(self.genesis.hash),
                Vec::new(),
            );
            let targets: Vec<usize> = (0..n).filter(|&j| j != i).collect();
            self.send(i, targets, Message::ViewChange(vc));
        }
    }
}

/// Flips one bit of the message's own signature.
fn corrupt(m: &mut Message) {
    let sig = match m {
        Message::PrePrepare(x) => &mut x.signature,
        Message::Prepare(x) => &mut x.signature,
        Message::Commit(x) => &mut x.signature,
        Message::Checkpoint(x) => &mut x.signature,
        Message::ViewChange(x) => &mut x.signature,
        Message::NewView(x) => &mut x.signature,
    };
    sig.0[7] ^= 0x10;
}
