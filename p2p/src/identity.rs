//! Validator keys as libp2p identities (protocol §1): the libp2p keypair is built from the validator's
//! ed25519 seed, so a validator's PeerId is a pure function of its public key, and the committee
//! can be looked up in both directions.

use std::collections::HashMap;

use libp2p::identity::Keypair as Libp2pKeypair;
use libp2p::PeerId;
use ordo_chain::PublicKey;

/// The protobuf header of a libp2p ed25519 public key: field 1 (key type) = 1 (Ed25519), then
/// field 2 (data) of length 32. A PeerId of an ed25519 key is the identity multihash (code 0x00,
/// length 0x24 = 36) of this header followed by the 32 key bytes.
const PEER_ID_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

/// Builds the libp2p keypair of a validator from its 32-byte seed (the key file's `secret_key`).
pub fn libp2p_keypair(seed: [u8; 32]) -> Libp2pKeypair {
    // Every 32-byte string is a valid ed25519 seed, so this cannot fail.
    Libp2pKeypair::ed25519_from_bytes(seed).expect("any 32 bytes form an ed25519 secret key")
}

/// The PeerId that a validator with this public key has on the network.
///
/// It is computed from the key bytes alone (no point decompression), so it never fails; an
/// invalid key yields a PeerId that no peer can prove, which is harmless.
pub fn peer_id_of(key: &PublicKey) -> PeerId {
    let mut bytes = [0u8; 38];
    bytes[..6].copy_from_slice(&PEER_ID_PREFIX);
    bytes[6..].copy_from_slice(key.as_bytes());
    PeerId::from_bytes(&bytes).expect("an identity multihash of 36 bytes is a valid PeerId")
}

/// The ed25519 public key inside a PeerId, when the PeerId embeds one (ed25519 PeerIds always do).
/// This says nothing about committee membership: use [`Committee::key_of`] for that.
pub fn public_key_in(peer: &PeerId) -> Option<PublicKey> {
    let bytes = peer.to_bytes();
    if bytes.len() != 38 || bytes[..6] != PEER_ID_PREFIX {
        return None;
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes[6..]);
    Some(PublicKey(key))
}

/// One committee member as the p2p layer knows it.
#[derive(Debug, Clone)]
pub struct Member {
    pub key: PublicKey,
    pub name: String,
    pub peer_id: PeerId,
}

/// The genesis validator set, indexed by PeerId and by public key.
#[derive(Debug, Clone, Default)]
pub struct Committee {
    members: Vec<Member>,
    by_peer: HashMap<PeerId, usize>,
    by_key: HashMap<PublicKey, usize>,
}

impl Committee {
    /// Builds the index; duplicates are rejected earlier by `P2pConfig::validate`.
    pub fn new(members: impl IntoIterator<Item = (PublicKey, String)>) -> Self {
        let mut c = Committee::default();
        for (key, name) in members {
            let peer_id = peer_id_of(&key);
            let i = c.members.len();
            c.by_peer.insert(peer_id, i);
            c.by_key.insert(key, i);
            c.members.push(Member { key, name, peer_id });
        }
        c
    }

    /// The validator key behind an admitted PeerId; `None` for an outsider.
    pub fn key_of(&self, peer: &PeerId) -> Option<PublicKey> {
        self.by_peer.get(peer).map(|&i| self.members[i].key)
    }

    pub fn member_by_peer(&self, peer: &PeerId) -> Option<&Member> {
        self.by_peer.get(peer).map(|&i| &self.members[i])
    }

    pub fn member_by_key(&self, key: &PublicKey) -> Option<&Member> {
        self.by_key.get(key).map(|&i| &self.members[i])
    }

    pub fn contains_peer(&self, peer: &PeerId) -> bool {
        self.by_peer.contains_key(peer)
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_chain::Keypair;

    #[test]
    fn peer_id_matches_libp2p_derivation_and_inverts() {
        for i in 0..5u8 {
            let seed = [i.wrapping_mul(37).wrapping_add(1); 32];
            let ours = Keypair::from_seed(seed);
            let theirs = libp2p_keypair(seed);
            let expected = theirs.public().to_peer_id();
            assert_eq!(peer_id_of(&ours.public()), expected);
            assert_eq!(public_key_in(&expected), Some(ours.public()));
        }
    }

    #[test]
    fn committee_lookup_both_ways_and_rejects_outsiders() {
        let a = Keypair::from_seed([1; 32]).public();
        let b = Keypair::from_seed([2; 32]).public();
        let outsider = Keypair::from_seed([3; 32]).public();
        let c = Committee::new([(a, "a".to_string()), (b, "b".to_string())]);
        assert_eq!(c.key_of(&peer_id_of(&b)), Some(b));
        assert_eq!(c.member_by_key(&a).map(|m| m.name.as_str()), Some("a"));
        assert_eq!(c.key_of(&peer_id_of(&outsider)), None);
        assert!(!c.contains_peer(&peer_id_of(&outsider)));
        // A PeerId that is not an ed25519 identity (here a SHA-256 multihash) has no embedded key.
        let mut bytes = vec![0x12, 0x20];
        bytes.extend_from_slice(&[7u8; 32]);
        let hashed = PeerId::from_bytes(&bytes).unwrap();
        assert_eq!(public_key_in(&hashed), None);
        assert_eq!(c.key_of(&hashed), None);
    }
}
