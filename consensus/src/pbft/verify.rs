//! The verification step: pure CPU work the node can run on a worker thread before handing a
//! message to the replica. It decodes with a size limit, checks that the sender is a validator
//! (and the primary where the kind requires it), checks every signature (batch-verifying the
//! transactions of a PRE-PREPARE and the embedded signatures of VIEW-CHANGE and NEW-VIEW proofs),
//! and only then produces a [`Verified`] value, whose constructor no other module calls.

use ordo_chain::cert::{CertKind, Certificate};
use ordo_chain::{Block, Committee, PublicKey, TxRules};

use super::messages::{Batch, Message, WireMessage};
use crate::config::PbftConfig;
use crate::error::{ConsensusError, Result};
use crate::interface::CommittedBatch;
use crate::verified::Verified;

/// What verification needs to know about the chain; built once at start-up.
#[derive(Debug, Clone)]
pub struct VerifyContext {
    pub chain_id: String,
    pub committee: Committee,
    pub rules: TxRules,
    pub batch_max_txs: usize,
    pub watermark_window: u64,
    pub message_max_bytes: usize,
}

impl VerifyContext {
    pub fn new(committee: Committee, rules: TxRules, config: &PbftConfig) -> Self {
        VerifyContext {
            chain_id: rules.chain_id.clone(),
            committee,
            rules,
            batch_max_txs: config.batch_max_txs,
            watermark_window: config.watermark_window,
            message_max_bytes: config.message_max_bytes,
        }
    }

    /// The primary of `view`: validator `view mod n` in genesis order.
    pub fn primary(&self, view: u64) -> PublicKey {
        self.committee.get((view % self.committee.n() as u64) as usize)
    }
}

/// Verifies a decoded peer message.
pub fn verify_message(ctx: &VerifyContext, msg: WireMessage) -> Result<Verified<Message>> {
    let m = match msg {
        Message::PrePrepare(m) => Message::PrePrepare(m.verify(ctx)?),
        Message::Prepare(m) => {
            m.verify(ctx)?;
            Message::Prepare(m)
        }
        Message::Commit(m) => {
            m.verify(ctx)?;
            Message::Commit(m)
        }
        Message::Checkpoint(m) => {
            m.verify(ctx)?;
            Message::Checkpoint(m)
        }
        Message::ViewChange(m) => Message::ViewChange(m.verify(ctx)?),
        Message::NewView(m) => Message::NewView(m.verify(ctx)?),
    };
    Ok(Verified::new_unchecked(m))
}

/// Decodes (refusing oversized input first) and verifies wire bytes from a peer.
pub fn decode_and_verify(ctx: &VerifyContext, bytes: &[u8]) -> Result<Verified<Message>> {
    verify_message(ctx, WireMessage::decode(bytes, ctx.message_max_bytes)?)
}

/// Verifies a block fetched from a peer for catch-up: its transactions (one batched signature
/// check), that its header describes them, and its PBFT certificate against the committee.
pub fn verify_block(ctx: &VerifyContext, block: &Block) -> Result<Verified<CommittedBatch>> {
    let height = block.height();
    let bad = |reason: String| ConsensusError::BadSyncedBlock { height, reason };
    let certificate = match &block.certificate {
        Some(c @ Certificate::Pbft(_)) => c.clone(),
        Some(other) => return Err(bad(format!("{} certificate on a PBFT chain", other.kind().as_str()))),
        None => return Err(bad("no certificate".into())),
    };
    let batch = Batch { header: block.header, txs: block.txs.clone() }.verify(ctx).map_err(|e| bad(e.to_string()))?;
    certificate
        .verify(&ctx.chain_id, &ctx.committee, CertKind::Pbft, height, &block.header.digest(&ctx.chain_id))
        .map_err(|e| bad(e.to_string()))?;
    Ok(Verified::new_unchecked(CommittedBatch { header: batch.header, txs: batch.txs, certificate }))
}
