//! Execution of a block against the key-value state, and the `state_hash` chain (protocol §5).

use std::collections::{BTreeMap, HashSet};

use crate::codec::Writer;
use crate::crypto::{sha256, sha256_parts, Hash};
use crate::tx::{Op, Transaction, TxResult};

pub const STATE_TAG: &str = "ordo/state/v1";

/// The outcome of executing one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// One result per transaction, in block order.
    pub results: Vec<TxResult>,
    /// The writes of the applied transactions, in order; the store applies them in this order.
    pub writes: Vec<Op>,
    pub state_hash: Hash,
}

/// `writes(block)`: the concatenated encodings of the applied writes.
pub fn encode_writes(writes: &[Op]) -> Vec<u8> {
    let mut w = Writer::default();
    for op in writes {
        op.encode(&mut w);
    }
    w.finish()
}

/// `state_hash(h) = H("ordo/state/v1" || state_hash(h-1) || H(writes(h)))`.
pub fn state_hash(prev: &Hash, writes: &[Op]) -> Hash {
    let wh = sha256(&encode_writes(writes));
    sha256_parts(&[STATE_TAG.as_bytes(), &prev.0, &wh.0])
}

/// `writes0`: the genesis state as puts sorted by key (a `BTreeMap` iterates in key order).
pub fn genesis_writes(state: &BTreeMap<String, String>) -> Vec<Op> {
    state.iter().map(|(k, v)| Op::Put { key: k.clone(), value: v.clone() }).collect()
}

/// Executes a block's transactions in order. A transaction whose id was committed before
/// (`committed[i]`) or earlier in this same block is a duplicate and writes nothing.
pub fn execute(prev_state_hash: &Hash, ids: &[Hash], txs: &[Transaction], committed: &[bool]) -> Executed {
    assert_eq!(ids.len(), txs.len(), "one id per transaction");
    assert_eq!(committed.len(), txs.len(), "one committed flag per transaction");
    let mut seen = HashSet::with_capacity(ids.len());
    let mut results = Vec::with_capacity(txs.len());
    let mut writes = Vec::with_capacity(txs.len());
    for ((id, tx), &was_committed) in ids.iter().zip(txs).zip(committed) {
        if was_committed || !seen.insert(*id) {
            results.push(TxResult::Duplicate);
        } else {
            results.push(TxResult::Applied);
            writes.push(tx.op.clone());
        }
    }
    let state_hash = state_hash(prev_state_hash, &writes);
    Executed { results, writes, state_hash }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_encoding_matches_spec() {
        let w = encode_writes(&[Op::Put { key: "k".into(), value: "v".into() }, Op::Delete { key: "k".into() }]);
        assert_eq!(w, vec![1, 0, 0, 0, 1, b'k', 0, 0, 0, 1, b'v', 2, 0, 0, 0, 1, b'k']);
    }

    #[test]
    fn empty_block_still_advances_the_chain() {
        let prev = Hash([3; 32]);
        let h = state_hash(&prev, &[]);
        let mut e = STATE_TAG.as_bytes().to_vec();
        e.extend_from_slice(&prev.0);
        e.extend_from_slice(&sha256(b"").0);
        assert_eq!(h, sha256(&e));
    }

    #[test]
    fn genesis_writes_are_sorted() {
        let s: BTreeMap<String, String> = [("b".into(), "2".into()), ("a".into(), "1".into())].into();
        let w = genesis_writes(&s);
        assert_eq!(w[0].key(), "a");
        assert_eq!(w[1].key(), "b");
    }
}
