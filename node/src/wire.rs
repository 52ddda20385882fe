//! The node's own payloads on the p2p layer: batches of gossiped transactions and block-sync
//! responses. Both are built from `chain`'s codec, with a count limit checked before allocating.

use ordo_chain::codec::{Reader, Writer};
use ordo_chain::store::{decode_block, encode_block};
use ordo_chain::{Block, ChainError, Transaction, VerifiedTx};

/// The most transactions one gossip message may carry (one API batch).
pub const GOSSIP_MAX_TXS: usize = 10_000;
/// The most blocks one sync response may carry.
pub const SYNC_MAX_BLOCKS: usize = 256;

/// `u32 count || tx...`, each in `Transaction::encode` form.
pub fn encode_txs(txs: &[VerifiedTx]) -> Vec<u8> {
    let mut w = Writer::with_capacity(txs.iter().map(|t| t.wire_len()).sum::<usize>() + 4);
    w.u32(txs.len() as u32);
    for t in txs {
        t.encode(&mut w);
    }
    w.finish()
}

pub fn decode_txs(bytes: &[u8]) -> Result<Vec<Transaction>, ChainError> {
    let mut r = Reader::new(bytes);
    let n = r.u32()? as usize;
    if n > GOSSIP_MAX_TXS {
        return Err(ChainError::Decode(format!(
            "{n} transactions in one gossip message, the limit is {GOSSIP_MAX_TXS}"
        )));
    }
    let txs = (0..n).map(|_| Transaction::decode(&mut r)).collect::<Result<Vec<_>, _>>()?;
    r.finish()?;
    Ok(txs)
}

/// `u32 count || bytes32(block record)...`.
/// A block-sync response being filled: `u32 count || (u32 len || block)...`.
#[derive(Default)]
pub struct SyncResponse {
    blocks: Vec<Vec<u8>>,
    len: usize,
}

impl SyncResponse {
    /// Adds `block` unless the response would then exceed `max_bytes`; the first block is
    /// always taken. Returns whether it was taken.
    pub fn push_within(&mut self, block: &Block, max_bytes: usize) -> bool {
        let encoded = encode_block(block);
        if !self.blocks.is_empty() && 4 + self.len + 4 + encoded.len() > max_bytes {
            return false;
        }
        self.len += 4 + encoded.len();
        self.blocks.push(encoded);
        true
    }

    pub fn finish(self) -> Vec<u8> {
        let mut w = Writer::with_capacity(4 + self.len);
        w.u32(self.blocks.len() as u32);
        for b in &self.blocks {
            w.bytes32(b);
        }
        w.finish()
    }
}

pub fn decode_blocks(bytes: &[u8]) -> Result<Vec<Block>, ChainError> {
    let mut r = Reader::new(bytes);
    let n = r.u32()? as usize;
    if n > SYNC_MAX_BLOCKS {
        return Err(ChainError::Decode(format!("{n} blocks in one sync response, the limit is {SYNC_MAX_BLOCKS}")));
    }
    let blocks = (0..n).map(|_| decode_block(r.bytes32()?)).collect::<Result<Vec<_>, _>>()?;
    r.finish()?;
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_chain::{Keypair, Op, TxRules};

    #[test]
    fn txs_roundtrip_and_limits() {
        let rules = TxRules::new("c");
        let txs: Vec<VerifiedTx> = (0..3)
            .map(|i| {
                let op = Op::Put { key: format!("k{i}"), value: "v".into() };
                rules.verify(Transaction::sign("c", &Keypair::from_seed([1; 32]), i, op)).unwrap()
            })
            .collect();
        let bytes = encode_txs(&txs);
        let back = decode_txs(&bytes).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[2], *txs[2].tx());
        assert!(decode_txs(&bytes[..bytes.len() - 1]).is_err());
        let mut huge = Writer::default();
        huge.u32(u32::MAX);
        assert!(matches!(decode_txs(&huge.finish()), Err(ChainError::Decode(_))));
    }

    #[test]
    fn blocks_roundtrip() {
        let (g, _) = Block::genesis("c", 1, &Default::default());
        let mut r = SyncResponse::default();
        assert!(r.push_within(&g, usize::MAX));
        assert_eq!(decode_blocks(&r.finish()).unwrap(), vec![g]);
    }

    #[test]
    fn a_sync_response_stays_within_its_byte_limit_but_always_carries_one_block() {
        let (g, _) = Block::genesis("c", 1, &Default::default());
        let mut r = SyncResponse::default();
        r.push_within(&g, usize::MAX);
        let one = r.finish().len();
        // Room for exactly two blocks: the third is refused and the response is exact.
        let max = one + (one - 4);
        let mut r = SyncResponse::default();
        assert!(r.push_within(&g, max));
        assert!(r.push_within(&g, max));
        assert!(!r.push_within(&g, max));
        let bytes = r.finish();
        assert_eq!(bytes.len(), max);
        assert_eq!(decode_blocks(&bytes).unwrap().len(), 2);
        // A limit smaller than one block still lets the first block through.
        let mut r = SyncResponse::default();
        assert!(r.push_within(&g, 1));
        assert!(!r.push_within(&g, 1));
        assert_eq!(decode_blocks(&r.finish()).unwrap().len(), 1);
    }
}
