//! PREPARE (Castro & Liskov 2002, §4.2): a backup accepted the primary's PRE-PREPARE for
//! (view, height, digest). A PRE-PREPARE plus 2f matching PREPAREs from distinct backups is a
//! prepared certificate.

use ordo_chain::codec::{Reader, Writer};
use ordo_chain::{Hash, Keypair, PublicKey, Signature};

use super::{check_member, check_sig, signing_writer, Kind, Peek};
use crate::error::Result;
use crate::pbft::verify::VerifyContext;

pub const PREPARE_TAG: &str = "ordo/pbft/prepare/v1";

/// `"ordo/pbft/prepare/v1" || str(chain_id) || u64 view || u64 height || batch_digest`.
pub fn prepare_bytes(chain_id: &str, view: u64, height: u64, digest: &Hash) -> Vec<u8> {
    let mut w = signing_writer(PREPARE_TAG, chain_id);
    w.u64(view).u64(height).hash(digest);
    w.finish()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepare {
    pub view: u64,
    pub height: u64,
    pub digest: Hash,
    pub from: PublicKey,
    pub signature: Signature,
}

impl Prepare {
    pub fn sign(chain_id: &str, key: &Keypair, view: u64, height: u64, digest: Hash) -> Self {
        let signature = key.sign(&prepare_bytes(chain_id, view, height, &digest));
        Prepare { view, height, digest, from: key.public(), signature }
    }

    pub fn verify(&self, ctx: &VerifyContext) -> Result<()> {
        check_member(ctx, Kind::Prepare, &self.from)?;
        check_sig(
            Kind::Prepare,
            &self.from,
            &prepare_bytes(&ctx.chain_id, self.view, self.height, &self.digest),
            &self.signature,
        )
    }

    pub(crate) fn encode_body(&self, w: &mut Writer) {
        w.hash(&self.digest).sig(&self.signature);
    }

    pub(crate) fn decode_body(p: &Peek, r: &mut Reader<'_>) -> Result<Self> {
        Ok(Prepare { view: p.view, height: p.height, digest: r.hash()?, from: p.from, signature: r.sig()? })
    }
}
