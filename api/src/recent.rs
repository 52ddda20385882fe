//! [`RecentBlocks`]: what the explorer's dashboard shows of the newest blocks, kept in memory.
//!
//! The dashboard must cost the same on a chain of ten blocks and of ten million, so it never
//! reads the store: [`crate::LocalChain`] records a small summary of every block it commits here
//! (seeded from the store's newest blocks at start-up), and the page reads this ring. A summary is
//! a few hundred bytes, never the block's transactions.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use ordo_chain::{Block, Certificate, Hash, PublicKey};
use serde::Serialize;

/// How many block summaries the ring keeps: enough for the dashboard's chart and list.
pub const RECENT_BLOCKS_MAX: usize = 120;

/// One committed block as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockSummary {
    pub height: u64,
    pub hash: Hash,
    pub timestamp_ms: u64,
    pub tx_count: u32,
    pub proposer: PublicKey,
    /// The PBFT view or Raft term its certificate was made in; `None` for genesis.
    pub round: Option<u64>,
    /// The validators whose signature the certificate carries (PBFT: the COMMIT signers; Raft:
    /// the leader).
    pub signers: Vec<PublicKey>,
}

impl BlockSummary {
    pub fn of(block: &Block) -> Self {
        let (round, signers) = match &block.certificate {
            Some(Certificate::Pbft(c)) => (Some(c.view), c.signatures.iter().map(|s| s.validator).collect()),
            Some(Certificate::Raft(c)) => (Some(c.term), vec![c.leader]),
            None => (None, Vec::new()),
        };
        Self {
            height: block.height(),
            hash: block.hash,
            timestamp_ms: block.header.timestamp_ms,
            tx_count: block.header.tx_count,
            proposer: block.header.proposer,
            round,
            signers,
        }
    }
}

/// The newest [`RECENT_BLOCKS_MAX`] block summaries, and the last height each validator signed
/// since this node started (or within the blocks it was seeded with).
#[derive(Debug, Default)]
pub struct RecentBlocks {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    blocks: VecDeque<BlockSummary>,
    last_signed: BTreeMap<PublicKey, u64>,
}

impl RecentBlocks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a committed block and returns the timestamp of its parent when the parent was
    /// the newest block recorded (so the caller can measure the block interval). Heights only
    /// move forward: a block at or below the newest one recorded is ignored, and one that skips
    /// heights simply follows the older ones.
    pub fn record(&self, block: &Block) -> Option<u64> {
        let summary = BlockSummary::of(block);
        let mut inner = self.inner.lock().expect("recent blocks lock");
        let parent = match inner.blocks.back() {
            Some(b) if b.height >= summary.height => return None,
            Some(b) if b.height + 1 == summary.height => Some(b.timestamp_ms),
            _ => None,
        };
        for signer in &summary.signers {
            let last = inner.last_signed.entry(*signer).or_insert(0);
            *last = (*last).max(summary.height);
        }
        inner.blocks.push_back(summary);
        while inner.blocks.len() > RECENT_BLOCKS_MAX {
            inner.blocks.pop_front();
        }
        parent
    }

    /// The recorded summaries, newest first.
    pub fn newest_first(&self) -> Vec<BlockSummary> {
        self.inner.lock().expect("recent blocks lock").blocks.iter().rev().cloned().collect()
    }

    /// The highest height whose certificate `validator` signed, if any recorded block has it.
    pub fn last_signed(&self, validator: &PublicKey) -> Option<u64> {
        self.inner.lock().expect("recent blocks lock").last_signed.get(validator).copied()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ordo_chain::{BatchHeader, Keypair};

    use super::*;

    /// Genesis and `n` empty blocks; validator `h % 4` is left out of height h's certificate.
    fn chain(n: u64) -> (Vec<Keypair>, Vec<Block>) {
        let keys: Vec<Keypair> = (0..4u8).map(|i| Keypair::from_seed([i + 1; 32])).collect();
        let (genesis, _) = Block::genesis("recent-test", 1_000, &BTreeMap::new());
        let mut blocks = vec![genesis];
        for h in 1..=n {
            let prev = blocks.last().unwrap();
            let header = BatchHeader::for_txs(h, 1_000 + h * 10, keys[0].public(), &[]);
            let signers: Vec<Keypair> =
                keys.iter().enumerate().filter(|(i, _)| *i as u64 != h % 4).map(|(_, k)| k.clone()).collect();
            let cert = Certificate::pbft_signed("recent-test", 0, h, header.digest("recent-test"), &signers);
            let (block, _) = Block::build("recent-test", prev, header, &[], &[], Some(cert));
            blocks.push(block);
        }
        (keys, blocks)
    }

    #[test]
    fn keeps_the_newest_and_the_last_signed_height() {
        let top = RECENT_BLOCKS_MAX as u64 + 5;
        let (keys, blocks) = chain(top);
        let recent = RecentBlocks::new();
        for (i, b) in blocks.iter().enumerate() {
            let parent = recent.record(b);
            assert_eq!(parent, i.checked_sub(1).map(|p| blocks[p].header.timestamp_ms));
        }
        let list = recent.newest_first();
        assert_eq!(list.len(), RECENT_BLOCKS_MAX);
        assert_eq!(list[0].height, top);
        assert!(list.windows(2).all(|w| w[0].height == w[1].height + 1));
        assert_eq!(list[0].signers.len(), 3);
        // Validator 1 is left out of heights 1, 5, 9, ..., 125 = top.
        assert_eq!(top % 4, 1);
        assert_eq!(recent.last_signed(&keys[1].public()), Some(top - 1));
        assert_eq!(recent.last_signed(&keys[0].public()), Some(top));
        // Replays and older heights change nothing.
        assert_eq!(recent.record(&blocks[3]), None);
        assert_eq!(recent.newest_first()[0].height, top);
    }
}
