//! The verification step: pure CPU work the node can run on a worker thread before handing a
//! message to the replica. It decodes with a size limit, checks that the sender is a validator
//! (and the primary where the kind requires it), checks every signature (batch-verifying the
//! transactions of a PRE-PREPARE and the embedded signatures of VIEW-CHANGE and NEW-VIEW proofs),
//! and only then produces a [`Verified`] value, whose constructor no other module calls.

use ordo_chain::cert::{CertKind, Certificate};
use std::sync::Arc;

use ordo_chain::{Block, Committee, Hash, PublicKey, Transaction, TxRules, VerifiedTx};

use super::messages::{Batch, Message, WireMessage};
use crate::config::PbftConfig;
use crate::error::{ConsensusError, Result};
use crate::interface::CommittedBatch;
use crate::verified::Verified;

/// Looks up transactions this node already verified (its mempool), by `tx_id`: one answer per
/// id, a whole batch in one call.
pub type KnownTxs = Arc<dyn Fn(&[Hash]) -> Vec<Option<VerifiedTx>> + Send + Sync>;

/// Told of the transactions a PRE-PREPARE's verification checked and found good (those
/// [`KnownTxs`] did not supply), so that the node can keep them (its mempool) and never check
/// them again when their gossip arrives.
pub type FreshTxs = Arc<dyn Fn(Vec<VerifiedTx>) + Send + Sync>;

/// What verification needs to know about the chain; built once at start-up.
#[derive(Clone)]
pub struct VerifyContext {
    pub chain_id: String,
    pub committee: Committee,
    pub rules: TxRules,
    pub batch_max_txs: usize,
    pub watermark_window: u64,
    pub message_max_bytes: usize,
    /// Transactions already verified here, which batch verification takes without a second
    /// signature check when they are identical (see [`TxRules::verify_many_reusing`]).
    pub known: Option<KnownTxs>,
    /// Told of the transactions verified here for the first time.
    pub fresh: Option<FreshTxs>,
}

impl std::fmt::Debug for VerifyContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyContext")
            .field("chain_id", &self.chain_id)
            .field("committee", &self.committee)
            .field("batch_max_txs", &self.batch_max_txs)
            .field("watermark_window", &self.watermark_window)
            .field("message_max_bytes", &self.message_max_bytes)
            .field("known", &self.known.is_some())
            .field("fresh", &self.fresh.is_some())
            .finish()
    }
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
            known: None,
            fresh: None,
        }
    }

    /// Reports the transactions a batch verification checked for the first time to `fresh`.
    pub fn with_fresh_txs(mut self, fresh: FreshTxs) -> Self {
        self.fresh = Some(fresh);
        self
    }

    /// Lets batch verification reuse transactions this node already verified.
    pub fn with_known_txs(mut self, known: KnownTxs) -> Self {
        self.known = Some(known);
        self
    }

    /// Verifies a batch's transactions, reusing the known ones.
    /// `report_fresh`: tell [`VerifyContext::fresh`] of the ones checked here for the first time
    /// (a PRE-PREPARE's; not those of a catch-up block or a view-change proof, which are about
    /// to commit or committed long ago).
    pub(crate) fn verify_txs(&self, txs: Vec<Transaction>, report_fresh: bool) -> Vec<ordo_chain::Result<VerifiedTx>> {
        let (results, fresh) = match &self.known {
            Some(k) => self.rules.verify_many_split(txs, &**k),
            None => self.rules.verify_many_split(txs, &ordo_chain::tx::nothing_known),
        };
        if let Some(tell) = self.fresh.as_ref().filter(|_| report_fresh) {
            if !fresh.is_empty() {
                tell(fresh);
            }
        }
        results
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

impl crate::engine::Verifier for VerifyContext {
    type Message = Message;

    /// PBFT messages are signed; the signatures inside name their authors, so a message relayed
    /// by another validator verifies the same and the transport's sender is not needed.
    fn decode_and_verify(&self, _sender: &PublicKey, bytes: &[u8]) -> Result<Verified<Message>> {
        decode_and_verify(self, bytes)
    }

    fn encode(&self, message: &Message) -> Vec<u8> {
        message.encode()
    }

    fn verify_block(&self, block: &Block) -> Result<Verified<CommittedBatch>> {
        verify_block(self, block)
    }

    fn committee(&self) -> &Committee {
        &self.committee
    }

    fn faults_tolerated(&self) -> usize {
        self.committee.f()
    }

    fn message_max_bytes(&self) -> usize {
        self.message_max_bytes
    }
}

impl crate::engine::Engine for super::Replica {
    type Verifier = VerifyContext;
}
