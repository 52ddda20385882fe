//! Certificates (protocol §6): the proof, stored and served with every block, that the committee
//! ordered it. Verification checks every rule against a committee and names the broken one.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::codec::Writer;
use crate::committee::Committee;
use crate::crypto::{verify_batch, Hash, PublicKey, SigCheck, Signature};
use crate::error::{ChainError, Result};

pub const PBFT_COMMIT_TAG: &str = "ordo/pbft/commit/v1";
pub const RAFT_BLOCK_TAG: &str = "ordo/raft/block/v1";

/// `"ordo/pbft/commit/v1" || str(chain_id) || u64 view || u64 height || batch_digest`.
pub fn pbft_commit_bytes(chain_id: &str, view: u64, height: u64, digest: &Hash) -> Vec<u8> {
    let mut w = Writer::with_capacity(80);
    w.tag(PBFT_COMMIT_TAG).str16(chain_id).u64(view).u64(height).hash(digest);
    w.finish()
}

/// `"ordo/raft/block/v1" || str(chain_id) || u64 term || u64 height || batch_digest`.
pub fn raft_block_bytes(chain_id: &str, term: u64, height: u64, digest: &Hash) -> Vec<u8> {
    let mut w = Writer::with_capacity(80);
    w.tag(RAFT_BLOCK_TAG).str16(chain_id).u64(term).u64(height).hash(digest);
    w.finish()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorSignature {
    pub validator: PublicKey,
    pub signature: Signature,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PbftCertificate {
    pub view: u64,
    pub height: u64,
    pub batch_digest: Hash,
    pub signatures: Vec<ValidatorSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftCertificate {
    pub term: u64,
    pub height: u64,
    pub batch_digest: Hash,
    pub leader: PublicKey,
    pub signature: Signature,
}

/// Which kind of certificate a chain's blocks carry: fixed by the genesis `consensus.kind`. A
/// verifier must insist on it, or one Byzantine validator could pass off a single-signature Raft
/// certificate on a PBFT chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    Pbft,
    Raft,
}

impl CertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::Pbft => "pbft",
            CertKind::Raft => "raft",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Certificate {
    Pbft(PbftCertificate),
    Raft(RaftCertificate),
}

impl Certificate {
    /// A PBFT certificate for (`view`, `height`, `digest`) whose COMMIT signatures are made by
    /// `signers`, in order. The node assembles certificates from votes it received; this is for
    /// whoever holds the keys themselves: tests, benchmarks and the published test vectors.
    pub fn pbft_signed(
        chain_id: &str,
        view: u64,
        height: u64,
        digest: Hash,
        signers: &[crate::crypto::Keypair],
    ) -> Certificate {
        let msg = pbft_commit_bytes(chain_id, view, height, &digest);
        Certificate::Pbft(PbftCertificate {
            view,
            height,
            batch_digest: digest,
            signatures: signers
                .iter()
                .map(|k| ValidatorSignature { validator: k.public(), signature: k.sign(&msg) })
                .collect(),
        })
    }

    pub fn kind(&self) -> CertKind {
        match self {
            Certificate::Pbft(_) => CertKind::Pbft,
            Certificate::Raft(_) => CertKind::Raft,
        }
    }

    pub fn height(&self) -> u64 {
        match self {
            Certificate::Pbft(c) => c.height,
            Certificate::Raft(c) => c.height,
        }
    }

    pub fn batch_digest(&self) -> Hash {
        match self {
            Certificate::Pbft(c) => c.batch_digest,
            Certificate::Raft(c) => c.batch_digest,
        }
    }

    /// Checks that this certificate proves that `committee`, running the protocol `kind`, ordered
    /// the batch `digest` at `height` on chain `chain_id`.
    pub fn verify(
        &self,
        chain_id: &str,
        committee: &Committee,
        kind: CertKind,
        height: u64,
        digest: &Hash,
    ) -> Result<()> {
        if self.kind() != kind {
            return Err(ChainError::CertKindMismatch { expected: kind.as_str(), got: self.kind().as_str() });
        }
        if self.height() != height {
            return Err(ChainError::CertHeightMismatch { expected: height, got: self.height() });
        }
        if self.batch_digest() != *digest {
            return Err(ChainError::CertDigestMismatch { expected: *digest, got: self.batch_digest() });
        }
        match self {
            Certificate::Pbft(c) => c.verify_signatures(chain_id, committee),
            Certificate::Raft(c) => c.verify_signature(chain_id, committee),
        }
    }
}

impl PbftCertificate {
    fn verify_signatures(&self, chain_id: &str, committee: &Committee) -> Result<()> {
        let mut seen = HashSet::with_capacity(self.signatures.len());
        for s in &self.signatures {
            if !committee.contains(&s.validator) {
                return Err(ChainError::CertUnknownValidator { validator: s.validator });
            }
            if !seen.insert(s.validator) {
                return Err(ChainError::CertDuplicateValidator { validator: s.validator });
            }
        }
        if self.signatures.len() < committee.quorum() {
            return Err(ChainError::CertTooFewSignatures { got: self.signatures.len(), need: committee.quorum() });
        }
        let msg = pbft_commit_bytes(chain_id, self.view, self.height, &self.batch_digest);
        let checks: Vec<SigCheck> =
            self.signatures.iter().map(|s| SigCheck { key: &s.validator, msg: &msg, sig: &s.signature }).collect();
        for (s, r) in self.signatures.iter().zip(verify_batch(&checks)) {
            if r.is_err() {
                return Err(ChainError::CertBadSignature { validator: s.validator });
            }
        }
        Ok(())
    }
}

impl RaftCertificate {
    fn verify_signature(&self, chain_id: &str, committee: &Committee) -> Result<()> {
        if !committee.contains(&self.leader) {
            return Err(ChainError::CertUnknownValidator { validator: self.leader });
        }
        let msg = raft_block_bytes(chain_id, self.term, self.height, &self.batch_digest);
        self.leader
            .verify_strict(&msg, &self.signature)
            .map_err(|_| ChainError::CertBadSignature { validator: self.leader })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{sha256, Keypair};

    const CHAIN: &str = "ordo-testnet";

    fn keys(n: u8) -> Vec<Keypair> {
        (0..n).map(|i| Keypair::from_seed([i + 1; 32])).collect()
    }

    fn committee(keys: &[Keypair]) -> Committee {
        Committee::new(keys.iter().map(|k| k.public()).collect())
    }

    fn pbft(keys: &[Keypair], signers: &[usize], view: u64, height: u64, digest: Hash) -> Certificate {
        let signers: Vec<Keypair> = signers.iter().map(|&i| keys[i].clone()).collect();
        Certificate::pbft_signed(CHAIN, view, height, digest, &signers)
    }

    #[test]
    fn valid_pbft_certificate() {
        let k = keys(4);
        let d = sha256(b"batch");
        pbft(&k, &[0, 1, 2], 3, 5, d).verify(CHAIN, &committee(&k), CertKind::Pbft, 5, &d).unwrap();
        pbft(&k, &[3, 1, 2, 0], 0, 5, d).verify(CHAIN, &committee(&k), CertKind::Pbft, 5, &d).unwrap();
    }

    #[test]
    fn commit_bytes_layout() {
        let d = Hash([7; 32]);
        let b = pbft_commit_bytes("c", 2, 3, &d);
        let mut e = b"ordo/pbft/commit/v1".to_vec();
        e.extend_from_slice(&[0, 1, b'c']);
        e.extend_from_slice(&2u64.to_be_bytes());
        e.extend_from_slice(&3u64.to_be_bytes());
        e.extend_from_slice(&[7; 32]);
        assert_eq!(b, e);
    }

    // One test per rejection rule of protocol §6.

    #[test]
    fn reject_too_few_signatures() {
        let k = keys(4);
        let d = sha256(b"batch");
        let e = pbft(&k, &[0, 1], 0, 1, d).verify(CHAIN, &committee(&k), CertKind::Pbft, 1, &d).unwrap_err();
        assert_eq!(e, ChainError::CertTooFewSignatures { got: 2, need: 3 });
    }

    #[test]
    fn reject_outsider() {
        let k = keys(5);
        let d = sha256(b"batch");
        let e = pbft(&k, &[0, 1, 4], 0, 1, d).verify(CHAIN, &committee(&k[..4]), CertKind::Pbft, 1, &d).unwrap_err();
        assert_eq!(e, ChainError::CertUnknownValidator { validator: k[4].public() });
    }

    #[test]
    fn reject_duplicate_validator() {
        let k = keys(4);
        let d = sha256(b"batch");
        let e = pbft(&k, &[0, 1, 1], 0, 1, d).verify(CHAIN, &committee(&k), CertKind::Pbft, 1, &d).unwrap_err();
        assert_eq!(e, ChainError::CertDuplicateValidator { validator: k[1].public() });
    }

    #[test]
    fn reject_bad_signature() {
        let k = keys(4);
        let d = sha256(b"batch");
        let mut c = pbft(&k, &[0, 1, 2], 0, 1, d);
        if let Certificate::Pbft(p) = &mut c {
            p.signatures[2].signature.0[0] ^= 1;
        }
        assert_eq!(
            c.verify(CHAIN, &committee(&k), CertKind::Pbft, 1, &d).unwrap_err(),
            ChainError::CertBadSignature { validator: k[2].public() }
        );
    }

    #[test]
    fn reject_signature_over_other_view() {
        // Signatures over view 1 do not prove a certificate that claims view 2.
        let k = keys(4);
        let d = sha256(b"batch");
        let mut c = pbft(&k, &[0, 1, 2], 1, 1, d);
        if let Certificate::Pbft(p) = &mut c {
            p.view = 2;
        }
        assert!(matches!(
            c.verify(CHAIN, &committee(&k), CertKind::Pbft, 1, &d),
            Err(ChainError::CertBadSignature { .. })
        ));
    }

    #[test]
    fn reject_signature_over_other_chain() {
        let k = keys(4);
        let d = sha256(b"batch");
        let c = pbft(&k, &[0, 1, 2], 0, 1, d);
        assert!(matches!(
            c.verify("other", &committee(&k), CertKind::Pbft, 1, &d),
            Err(ChainError::CertBadSignature { .. })
        ));
    }

    #[test]
    fn reject_wrong_height() {
        let k = keys(4);
        let d = sha256(b"batch");
        let e = pbft(&k, &[0, 1, 2], 0, 1, d).verify(CHAIN, &committee(&k), CertKind::Pbft, 2, &d).unwrap_err();
        assert_eq!(e, ChainError::CertHeightMismatch { expected: 2, got: 1 });
    }

    #[test]
    fn reject_wrong_digest() {
        let k = keys(4);
        let d = sha256(b"batch");
        let other = sha256(b"other");
        let e = pbft(&k, &[0, 1, 2], 0, 1, d).verify(CHAIN, &committee(&k), CertKind::Pbft, 1, &other).unwrap_err();
        assert!(matches!(e, ChainError::CertDigestMismatch { .. }));
    }

    fn raft(leader: &Keypair, term: u64, height: u64, d: Hash) -> Certificate {
        Certificate::Raft(RaftCertificate {
            term,
            height,
            batch_digest: d,
            leader: leader.public(),
            signature: leader.sign(&raft_block_bytes(CHAIN, term, height, &d)),
        })
    }

    #[test]
    fn raft_certificate_rules() {
        let k = keys(4);
        let d = sha256(b"batch");
        let c = committee(&k[..3]);
        raft(&k[0], 2, 9, d).verify(CHAIN, &c, CertKind::Raft, 9, &d).unwrap();
        assert!(matches!(
            raft(&k[3], 2, 9, d).verify(CHAIN, &c, CertKind::Raft, 9, &d),
            Err(ChainError::CertUnknownValidator { .. })
        ));
        let mut bad = raft(&k[0], 2, 9, d);
        if let Certificate::Raft(r) = &mut bad {
            r.term = 3;
        }
        assert!(matches!(bad.verify(CHAIN, &c, CertKind::Raft, 9, &d), Err(ChainError::CertBadSignature { .. })));
    }

    #[test]
    fn reject_certificate_of_the_other_kind() {
        // A single Raft leader signature must not pass on a PBFT chain.
        let k = keys(4);
        let d = sha256(b"batch");
        let e = raft(&k[0], 1, 1, d).verify(CHAIN, &committee(&k), CertKind::Pbft, 1, &d).unwrap_err();
        assert_eq!(e, ChainError::CertKindMismatch { expected: "pbft", got: "raft" });
    }

    #[test]
    fn json_shape() {
        let k = keys(4);
        let d = sha256(b"batch");
        let v = serde_json::to_value(pbft(&k, &[0, 1, 2], 0, 1, d)).unwrap();
        assert_eq!(v["kind"], "pbft");
        assert_eq!(v["signatures"][0]["validator"].as_str().unwrap().len(), 64);
        let v = serde_json::to_value(raft(&k[0], 1, 1, d)).unwrap();
        assert_eq!(v["kind"], "raft");
        assert!(v["leader"].is_string());
    }
}
