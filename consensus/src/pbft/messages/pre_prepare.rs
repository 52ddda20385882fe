//! PRE-PREPARE (Castro & Liskov 2002, §4.2): the primary of a view assigns a sequence number
//! (= block height) to a batch and sends the whole batch to the backups.

use ordo_chain::codec::{Reader, Writer};
use ordo_chain::{Hash, Keypair, PublicKey, Signature, Transaction, VerifiedTx};

use super::{check_member, check_sig, signing_writer, Batch, Kind, Peek, TxLike};
use crate::error::{ConsensusError, Result};
use crate::pbft::verify::VerifyContext;

pub const PRE_PREPARE_TAG: &str = "ordo/pbft/pre-prepare/v1";

/// `"ordo/pbft/pre-prepare/v1" || str(chain_id) || u64 view || u64 height || batch_digest`.
pub fn pre_prepare_bytes(chain_id: &str, view: u64, height: u64, digest: &Hash) -> Vec<u8> {
    let mut w = signing_writer(PRE_PREPARE_TAG, chain_id);
    w.u64(view).u64(height).hash(digest);
    w.finish()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrePrepare<T = VerifiedTx> {
    pub view: u64,
    pub batch: Batch<T>,
    pub from: PublicKey,
    pub signature: Signature,
}

impl PrePrepare<VerifiedTx> {
    pub fn sign(chain_id: &str, key: &Keypair, view: u64, batch: Batch<VerifiedTx>) -> Self {
        let d = batch.digest(chain_id);
        let signature = key.sign(&pre_prepare_bytes(chain_id, view, batch.header.height, &d));
        PrePrepare { view, batch, from: key.public(), signature }
    }
}

impl<T: TxLike> PrePrepare<T> {
    pub fn height(&self) -> u64 {
        self.batch.header.height
    }

    pub(crate) fn encode_body(&self, w: &mut Writer) {
        w.sig(&self.signature);
        self.batch.encode(w);
    }
}

impl PrePrepare<Transaction> {
    pub(crate) fn decode_body(p: &Peek, r: &mut Reader<'_>) -> Result<Self> {
        let signature = r.sig()?;
        let batch = Batch::decode(r)?;
        if batch.header.height != p.height {
            return Err(ConsensusError::Decode("pre-prepare prefix height differs from its header".into()));
        }
        Ok(PrePrepare { view: p.view, batch, from: p.from, signature })
    }

    /// Sender is the primary of the view and signed this batch; the batch itself is valid.
    pub fn verify(self, ctx: &VerifyContext) -> Result<PrePrepare<VerifiedTx>> {
        check_member(ctx, Kind::PrePrepare, &self.from)?;
        let primary = ctx.primary(self.view);
        if self.from != primary {
            return Err(ConsensusError::NotPrimary {
                kind: "pre-prepare",
                view: self.view,
                expected: primary,
                got: self.from,
            });
        }
        if self.batch.header.proposer != self.from {
            return Err(ConsensusError::BatchMismatch { height: self.height(), what: "proposer" });
        }
        if let Some(final_height) = ctx.final_height.as_ref().map(|f| f()).filter(|f| self.height() <= *f) {
            return Err(ConsensusError::AlreadyFinal { kind: "pre-prepare", height: self.height(), final_height });
        }
        let d = self.batch.digest(&ctx.chain_id);
        check_sig(
            Kind::PrePrepare,
            &self.from,
            &pre_prepare_bytes(&ctx.chain_id, self.view, self.height(), &d),
            &self.signature,
        )?;
        let batch = self.batch.verify_proposed(ctx)?;
        Ok(PrePrepare { view: self.view, batch, from: self.from, signature: self.signature })
    }
}
