//! The RFC 6962 Merkle tree hash over a block's `tx_id`s (protocol §4).

use crate::crypto::{sha256, sha256_parts, Hash};

/// `MTH({})` = `H("")`.
pub fn empty_root() -> Hash {
    sha256(b"")
}

/// `leaf = H(0x00 || tx_id)`.
pub fn leaf_hash(id: &Hash) -> Hash {
    sha256_parts(&[&[0x00], &id.0])
}

/// `node = H(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256_parts(&[&[0x01], &left.0, &right.0])
}

/// The Merkle tree hash of `ids`, splitting n items at the largest power of two below n.
pub fn tx_root(ids: &[Hash]) -> Hash {
    if ids.is_empty() {
        return empty_root();
    }
    let leaves: Vec<Hash> = ids.iter().map(leaf_hash).collect();
    subtree(&leaves)
}

fn subtree(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => unreachable!("subtree of no leaves"),
        1 => leaves[0],
        n => {
            // The largest power of two strictly below n.
            let k = if n.is_power_of_two() { n / 2 } else { 1 << (usize::BITS - 1 - n.leading_zeros()) };
            node_hash(&subtree(&leaves[..k]), &subtree(&leaves[k..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Hash> {
        (0..n as u8).map(|i| sha256(&[i])).collect()
    }

    #[test]
    fn small_trees_by_hand() {
        let d = ids(3);
        assert_eq!(tx_root(&[]), sha256(b""));
        assert_eq!(tx_root(&d[..1]), leaf_hash(&d[0]));
        let ab = node_hash(&leaf_hash(&d[0]), &leaf_hash(&d[1]));
        assert_eq!(tx_root(&d[..2]), ab);
        // Three leaves split 2 | 1.
        assert_eq!(tx_root(&d), node_hash(&ab, &leaf_hash(&d[2])));
    }

    #[test]
    fn five_leaves_split_four_one() {
        let d = ids(5);
        assert_eq!(tx_root(&d), node_hash(&tx_root(&d[..4]), &leaf_hash(&d[4])));
        let d = ids(7);
        assert_eq!(tx_root(&d), node_hash(&tx_root(&d[..4]), &tx_root(&d[4..])));
    }

    #[test]
    fn order_matters() {
        let mut d = ids(4);
        let r = tx_root(&d);
        d.swap(1, 2);
        assert_ne!(tx_root(&d), r);
    }
}
