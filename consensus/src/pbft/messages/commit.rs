//! COMMIT (Castro & Liskov 2002, §4.2): a replica holds a prepared certificate for
//! (view, height, digest). It is signed over exactly the protocol §6 commit bytes, so 2f+1 COMMITs
//! from distinct validators are the block's certificate without any re-signing.

use ordo_chain::cert::pbft_commit_bytes;
use ordo_chain::codec::{Reader, Writer};
use ordo_chain::{Hash, Keypair, PublicKey, Signature};

use super::{check_member, check_sig, Kind, Peek};
use crate::error::Result;
use crate::pbft::verify::VerifyContext;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub view: u64,
    pub height: u64,
    pub digest: Hash,
    pub from: PublicKey,
    pub signature: Signature,
}

impl Commit {
    pub fn sign(chain_id: &str, key: &Keypair, view: u64, height: u64, digest: Hash) -> Self {
        let signature = key.sign(&pbft_commit_bytes(chain_id, view, height, &digest));
        Commit { view, height, digest, from: key.public(), signature }
    }

    pub fn verify(&self, ctx: &VerifyContext) -> Result<()> {
        check_member(ctx, Kind::Commit, &self.from)?;
        check_sig(
            Kind::Commit,
            &self.from,
            &pbft_commit_bytes(&ctx.chain_id, self.view, self.height, &self.digest),
            &self.signature,
        )
    }

    pub(crate) fn encode_body(&self, w: &mut Writer) {
        w.hash(&self.digest).sig(&self.signature);
    }

    pub(crate) fn decode_body(p: &Peek, r: &mut Reader<'_>) -> Result<Self> {
        Ok(Commit { view: p.view, height: p.height, digest: r.hash()?, from: p.from, signature: r.sig()? })
    }
}
