//! The binary record of a stored block. Transactions are kept as their signing bytes and
//! signature, so the record is compact and re-deriving a `tx_id` is one hash.

use crate::block::{BatchHeader, Block};
use crate::codec::{Reader, Writer};
use crate::error::{ChainError, Result};
use crate::tx::{Transaction, TxResult};

const BLOCK_RECORD_VERSION: u8 = 1;

pub fn encode_block(b: &Block) -> Vec<u8> {
    let mut w = Writer::with_capacity(256 + b.txs.len() * 200);
    w.u8(BLOCK_RECORD_VERSION);
    b.header.encode(&mut w);
    w.hash(&b.prev_hash).hash(&b.batch_digest).hash(&b.state_hash).hash(&b.hash).u32(b.txs.len() as u32);
    for ((tx, id), r) in b.txs.iter().zip(&b.tx_ids).zip(&b.results) {
        tx.encode(&mut w);
        w.hash(id).u8(r.to_u8());
    }
    // The certificate is small and rare (one per block): JSON keeps it readable in a dump.
    let cert = match &b.certificate {
        Some(c) => serde_json::to_vec(c).expect("certificates serialize"),
        None => Vec::new(),
    };
    w.bytes32(&cert);
    w.finish()
}

pub fn decode_block(bytes: &[u8]) -> Result<Block> {
    let mut r = Reader::new(bytes);
    let version = r.u8()?;
    if version != BLOCK_RECORD_VERSION {
        return Err(ChainError::Decode(format!("unknown block record version {version}")));
    }
    let header = BatchHeader::decode(&mut r)?;
    let prev_hash = r.hash()?;
    let batch_digest = r.hash()?;
    let state_hash = r.hash()?;
    let hash = r.hash()?;
    let n = r.u32()? as usize;
    let (mut txs, mut ids, mut results) =
        (Vec::with_capacity(n.min(1 << 16)), Vec::with_capacity(n.min(1 << 16)), Vec::with_capacity(n.min(1 << 16)));
    for _ in 0..n {
        txs.push(Transaction::decode(&mut r)?);
        ids.push(r.hash()?);
        results.push(TxResult::from_u8(r.u8()?)?);
    }
    let cert = r.bytes32()?;
    let certificate = if cert.is_empty() {
        None
    } else {
        Some(serde_json::from_slice(cert).map_err(|e| ChainError::Decode(format!("certificate: {e}")))?)
    };
    r.finish()?;
    Ok(Block { header, prev_hash, batch_digest, state_hash, hash, txs, tx_ids: ids, results, certificate })
}
