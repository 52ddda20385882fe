//! CHECKPOINT (Castro & Liskov 2002, §4.3): after executing a height that is a multiple of K, a
//! replica signs (height, block_hash). 2f+1 matching CHECKPOINTs make it stable: everything at or
//! below it is garbage-collected, and the proof travels in VIEW-CHANGE messages.

use ordo_chain::cert::ValidatorSignature;
use ordo_chain::codec::{Reader, Writer};
use ordo_chain::crypto::{verify_batch, SigCheck};
use ordo_chain::{Hash, Keypair, PublicKey, Signature};

use super::{check_member, check_sig, decode_sigs, encode_sigs, signing_writer, Kind, Peek};
use crate::error::{ConsensusError, Result};
use crate::pbft::verify::VerifyContext;

pub const CHECKPOINT_TAG: &str = "ordo/pbft/checkpoint/v1";

/// `"ordo/pbft/checkpoint/v1" || str(chain_id) || u64 height || block_hash`.
pub fn checkpoint_bytes(chain_id: &str, height: u64, block_hash: &Hash) -> Vec<u8> {
    let mut w = signing_writer(CHECKPOINT_TAG, chain_id);
    w.u64(height).hash(block_hash);
    w.finish()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub height: u64,
    pub block_hash: Hash,
    pub from: PublicKey,
    pub signature: Signature,
}

impl Checkpoint {
    pub fn sign(chain_id: &str, key: &Keypair, height: u64, block_hash: Hash) -> Self {
        let signature = key.sign(&checkpoint_bytes(chain_id, height, &block_hash));
        Checkpoint { height, block_hash, from: key.public(), signature }
    }

    pub fn verify(&self, ctx: &VerifyContext) -> Result<()> {
        check_member(ctx, Kind::Checkpoint, &self.from)?;
        check_sig(
            Kind::Checkpoint,
            &self.from,
            &checkpoint_bytes(&ctx.chain_id, self.height, &self.block_hash),
            &self.signature,
        )
    }

    pub(crate) fn encode_body(&self, w: &mut Writer) {
        w.hash(&self.block_hash).sig(&self.signature);
    }

    pub(crate) fn decode_body(p: &Peek, r: &mut Reader<'_>) -> Result<Self> {
        if p.view != 0 {
            return Err(ConsensusError::Decode("checkpoint prefix view must be 0".into()));
        }
        Ok(Checkpoint { height: p.height, block_hash: r.hash()?, from: p.from, signature: r.sig()? })
    }
}

/// A stable checkpoint with its proof: a quorum of CHECKPOINT signatures over (height, hash).
/// Height 0 (genesis) needs no signatures: genesis.json itself proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointProof {
    pub height: u64,
    pub block_hash: Hash,
    pub signatures: Vec<ValidatorSignature>,
}

impl CheckpointProof {
    pub fn genesis(block_hash: Hash) -> Self {
        CheckpointProof { height: 0, block_hash, signatures: Vec::new() }
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u64(self.height).hash(&self.block_hash);
        encode_sigs(&self.signatures, w);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(CheckpointProof { height: r.u64()?, block_hash: r.hash()?, signatures: decode_sigs(r)? })
    }

    /// The proof's structural rules (distinct validators, a quorum); its signatures are returned
    /// as checks so that a VIEW-CHANGE can verify all of its signatures in one batch.
    pub(crate) fn checks<'a>(
        &'a self,
        ctx: &VerifyContext,
        msg: &'a [u8],
        out: &mut Vec<SigCheck<'a>>,
    ) -> std::result::Result<(), String> {
        if self.height == 0 {
            return if self.signatures.is_empty() {
                Ok(())
            } else {
                Err("genesis checkpoint carries signatures".into())
            };
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.signatures {
            if !ctx.committee.contains(&s.validator) {
                return Err(format!("checkpoint signed by non-validator {}", s.validator));
            }
            if !seen.insert(s.validator) {
                return Err(format!("checkpoint signed twice by {}", s.validator));
            }
            out.push(SigCheck { key: &s.validator, msg, sig: &s.signature });
        }
        if seen.len() < ctx.committee.quorum() {
            return Err(format!("checkpoint has {} signatures, a quorum is {}", seen.len(), ctx.committee.quorum()));
        }
        Ok(())
    }

    /// Verifies the proof on its own (used by tests and by the node's diagnostics).
    pub fn verify(&self, ctx: &VerifyContext) -> std::result::Result<(), String> {
        let msg = checkpoint_bytes(&ctx.chain_id, self.height, &self.block_hash);
        let mut checks = Vec::new();
        self.checks(ctx, &msg, &mut checks)?;
        if verify_batch(&checks).iter().any(|r| r.is_err()) {
            return Err("checkpoint proof has a bad signature".into());
        }
        Ok(())
    }
}
