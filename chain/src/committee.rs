//! The validator committee and its quorum arithmetic.
//!
//! Lives in `chain` (not `genesis`) because certificate verification needs it and `chain` is the
//! bottom of the dependency graph; `genesis` builds a `Committee` from `genesis.json`.

use std::collections::HashMap;

use crate::crypto::PublicKey;

/// The ordered validator set. The order is the genesis order; it fixes each validator's index,
/// which PBFT uses to pick the primary of a view (`view mod n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committee {
    members: Vec<PublicKey>,
    index: HashMap<PublicKey, usize>,
}

impl Committee {
    /// Panics on an empty list or a repeated key: genesis validation rejects both first.
    pub fn new(members: Vec<PublicKey>) -> Self {
        assert!(!members.is_empty(), "a committee needs at least one validator");
        let index: HashMap<PublicKey, usize> = members.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        assert_eq!(index.len(), members.len(), "committee members must be distinct");
        Self { members, index }
    }

    pub fn members(&self) -> &[PublicKey] {
        &self.members
    }

    /// n: the number of validators.
    pub fn n(&self) -> usize {
        self.members.len()
    }

    /// f = ⌊(n-1)/3⌋: the most Byzantine validators PBFT tolerates, since it needs n ≥ 3f+1.
    pub fn f(&self) -> usize {
        (self.n() - 1) / 3
    }

    /// The PBFT quorum q = ⌈(n+f+1)/2⌉.
    ///
    /// Two quorums must intersect in at least one honest validator: 2q - n ≥ f + 1, so
    /// q ≥ (n+f+1)/2. Liveness needs q ≤ n - f, which holds for every n ≥ 1. When n = 3f+1 (the
    /// recommended sizes: 4, 7, 10) this is exactly 2f+1; for other n it is larger than 2f+1,
    /// because 2f+1 out of, say, 5 validators could intersect in the one Byzantine validator.
    pub fn quorum(&self) -> usize {
        (self.n() + self.f() + 1).div_ceil(2)
    }

    /// f+1: enough validators that at least one is honest (joining a higher view, trusting a
    /// fetched checkpoint claim).
    pub fn weak_quorum(&self) -> usize {
        self.f() + 1
    }

    /// A Raft majority: ⌊n/2⌋+1 (crash faults only).
    pub fn majority(&self) -> usize {
        self.n() / 2 + 1
    }

    pub fn index_of(&self, key: &PublicKey) -> Option<usize> {
        self.index.get(key).copied()
    }

    pub fn contains(&self, key: &PublicKey) -> bool {
        self.index.contains_key(key)
    }

    pub fn get(&self, i: usize) -> PublicKey {
        self.members[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committee(n: usize) -> Committee {
        Committee::new((0..n).map(|i| PublicKey([i as u8 + 1; 32])).collect())
    }

    #[test]
    fn arithmetic_for_3f_plus_1() {
        for (n, f) in [(1, 0), (4, 1), (7, 2), (10, 3)] {
            let c = committee(n);
            assert_eq!(c.f(), f);
            assert_eq!(c.quorum(), 2 * f + 1);
            assert_eq!(c.weak_quorum(), f + 1);
        }
    }

    #[test]
    fn quorums_intersect_in_an_honest_validator_for_every_n() {
        for n in 1..=40 {
            let c = committee(n);
            let q = c.quorum();
            assert!(2 * q > n + c.f(), "n={n}: two quorums share at least f+1 validators");
            assert!(q <= n - c.f(), "n={n}: quorum must be reachable without the f faulty");
            assert!(q > 2 * c.f(), "n={n}: at least 2f+1");
        }
        assert_eq!(committee(5).quorum(), 4);
        assert_eq!(committee(3).majority(), 2);
    }
}
