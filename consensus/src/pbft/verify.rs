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
/// id, a whole batch in one call. A PRE-PREPARE's transactions come only from here (or from
/// what the node fetched for it, see [`PrePrepare::verify_with`]); a fetched block's or a
/// VIEW-CHANGE proof's are taken from here when identical, instead of being checked again.
pub type KnownTxs = Arc<dyn Fn(&[Hash]) -> Vec<Option<VerifiedTx>> + Send + Sync>;

/// The height up to which this node has committed blocks. A PRE-PREPARE at or below it is
/// refused before its transactions are checked: the replica would drop it anyway, and a copy the
/// primary re-sent to a backup that committed the batch meanwhile found none of its
/// transactions in the mempool (they left it with the commit), so every signature was checked
/// again.
pub type FinalHeight = Arc<dyn Fn() -> u64 + Send + Sync>;

/// What verification needs to know about the chain; built once at start-up.
#[derive(Clone)]
pub struct VerifyContext {
    pub chain_id: String,
    pub committee: Committee,
    pub rules: TxRules,
    pub batch_max_txs: usize,
    pub watermark_window: u64,
    pub message_max_bytes: usize,
    /// Transactions already verified here: what a PRE-PREPARE names, and what batch
    /// verification takes without a second signature check when identical (see
    /// [`TxRules::verify_many_reusing`]).
    pub known: Option<KnownTxs>,
    /// The committed height, below which PRE-PREPAREs are stale.
    pub final_height: Option<FinalHeight>,
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
            .field("final_height", &self.final_height.is_some())
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
            final_height: None,
        }
    }

    /// Lets verification refuse PRE-PREPAREs for heights this node has committed, before their
    /// transactions are checked.
    pub fn with_final_height(mut self, final_height: FinalHeight) -> Self {
        self.final_height = Some(final_height);
        self
    }

    /// Lets verification find a PRE-PREPARE's transactions, and batch verification reuse
    /// transactions this node already verified.
    pub fn with_known_txs(mut self, known: KnownTxs) -> Self {
        self.known = Some(known);
        self
    }

    /// The known transactions among `ids`, one answer per id.
    pub(crate) fn known_txs(&self, ids: &[Hash]) -> Vec<Option<VerifiedTx>> {
        match &self.known {
            Some(k) => k(ids),
            None => vec![None; ids.len()],
        }
    }

    /// Verifies a batch's transactions, reusing the known ones.
    pub(crate) fn verify_txs(&self, txs: Vec<Transaction>) -> Vec<ordo_chain::Result<VerifiedTx>> {
        self.rules.verify_many_reusing(txs, &|ids: &[Hash]| self.known_txs(ids))
    }

    /// The primary of `view`: validator `view mod n` in genesis order.
    pub fn primary(&self, view: u64) -> PublicKey {
        self.committee.get((view % self.committee.n() as u64) as usize)
    }
}

/// Verifies a decoded peer message.
pub fn verify_message(ctx: &VerifyContext, msg: WireMessage) -> Result<Verified<Message>> {
    verify_message_with(ctx, msg, &[])
}

/// [`verify_message`], with transactions the node fetched and verified because an earlier
/// attempt found them missing ([`ConsensusError::MissingTxs`]); only a PRE-PREPARE uses them.
pub fn verify_message_with(
    ctx: &VerifyContext,
    msg: WireMessage,
    supplied: &[VerifiedTx],
) -> Result<Verified<Message>> {
    let m = match msg {
        Message::PrePrepare(m) => Message::PrePrepare(m.verify_with(ctx, supplied)?),
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
    decode_and_verify_with(ctx, bytes, &[])
}

/// [`decode_and_verify`], with the transactions fetched for an earlier attempt
/// (see [`verify_message_with`]).
pub fn decode_and_verify_with(ctx: &VerifyContext, bytes: &[u8], supplied: &[VerifiedTx]) -> Result<Verified<Message>> {
    verify_message_with(ctx, WireMessage::decode(bytes, ctx.message_max_bytes)?, supplied)
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

    fn decode_and_verify_with(
        &self,
        _sender: &PublicKey,
        bytes: &[u8],
        supplied: &[VerifiedTx],
    ) -> Result<Verified<Message>> {
        decode_and_verify_with(self, bytes, supplied)
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

#[cfg(test)]
mod tests {
    use super::super::messages::PrePrepare;
    use super::*;
    use ordo_chain::{Keypair, Op};
    use std::sync::Mutex;

    const CHAIN: &str = "verify-test";

    type Log = Arc<Mutex<Vec<String>>>;

    fn tx(nonce: u64) -> VerifiedTx {
        let t = Transaction::sign(
            CHAIN,
            &Keypair::from_seed([7; 32]),
            nonce,
            Op::Put { key: format!("k{nonce}"), value: "v".into() },
        );
        TxRules::new(CHAIN).verify(t).unwrap()
    }

    /// A context whose mempool holds `held`, logging every lookup.
    fn context(log: &Log, held: Vec<VerifiedTx>) -> VerifyContext {
        let committee = Committee::new(vec![Keypair::from_seed([1; 32]).public()]);
        let log = log.clone();
        VerifyContext::new(committee, TxRules::new(CHAIN), &PbftConfig::default()).with_known_txs(Arc::new(
            move |ids: &[Hash]| {
                log.lock().unwrap().push(format!("known {} ids", ids.len()));
                ids.iter().map(|id| held.iter().find(|t| t.id() == *id).cloned()).collect()
            },
        ))
    }

    /// A PRE-PREPARE of `txs` at `height` from the one validator (the primary of view 0).
    fn pre_prepare(height: u64, txs: Vec<VerifiedTx>) -> Vec<u8> {
        let key = Keypair::from_seed([1; 32]);
        let header = ordo_chain::BatchHeader::for_txs(height, 1_000 + height, key.public(), &txs);
        Message::<VerifiedTx>::PrePrepare(PrePrepare::sign(CHAIN, &key, 0, Batch { header, txs })).encode()
    }

    #[test]
    fn a_pre_prepare_carries_ids_and_takes_its_transactions_from_the_mempool() {
        let log = Log::default();
        let txs = vec![tx(1), tx(2), tx(3)];
        let bytes = pre_prepare(1, txs.clone());
        assert!(bytes.len() < 49 + 64 + 200 + 4 + 3 * 32, "ids only: {} bytes", bytes.len());
        let v = decode_and_verify(&context(&log, txs.clone()), &bytes).expect("all held");
        let Message::PrePrepare(p) = v.into_inner() else { panic!("a pre-prepare") };
        assert_eq!(p.batch.txs, txs, "in the batch's order");
        assert_eq!(*log.lock().unwrap(), ["known 3 ids"], "one lookup for the whole batch");
    }

    #[test]
    fn a_pre_prepare_names_what_the_node_lacks_and_verifies_once_it_is_supplied() {
        let log = Log::default();
        let (a, b, c) = (tx(1), tx(2), tx(3));
        let bytes = pre_prepare(1, vec![a.clone(), b.clone(), c.clone()]);
        let ctx = context(&log, vec![b.clone()]);
        let e = decode_and_verify(&ctx, &bytes).expect_err("a and c are missing");
        assert!(matches!(&e, ConsensusError::MissingTxs { height: 1, ids } if *ids == [a.id(), c.id()]), "{e}");
        // Supplied: a and c from the fetch; only b is looked up.
        log.lock().unwrap().clear();
        let v = decode_and_verify_with(&ctx, &bytes, &[c.clone(), a.clone()]).expect("complete");
        let Message::PrePrepare(p) = v.into_inner() else { panic!("a pre-prepare") };
        assert_eq!(p.batch.txs, [a.clone(), b, c.clone()]);
        assert_eq!(*log.lock().unwrap(), ["known 1 ids"]);
        // Supplying something else does not stand in for a missing transaction.
        let e = decode_and_verify_with(&ctx, &bytes, &[a, tx(9)]).expect_err("c is still missing");
        assert!(matches!(&e, ConsensusError::MissingTxs { ids, .. } if *ids == [c.id()]), "{e}");
    }

    #[test]
    fn a_pre_prepare_whose_ids_do_not_match_its_header_is_refused_before_any_lookup() {
        let log = Log::default();
        let mut bytes = pre_prepare(1, vec![tx(1), tx(2)]);
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // The second id, changed: the header's root no longer matches.
        let e = decode_and_verify(&context(&log, vec![tx(1), tx(2)]), &bytes).expect_err("root mismatch");
        assert!(matches!(e, ConsensusError::BatchMismatch { what: "tx_root", .. }), "{e}");
        assert!(log.lock().unwrap().is_empty(), "nothing looked up");
    }

    #[test]
    fn a_pre_prepare_at_or_below_the_committed_height_is_refused_before_its_transactions_are_looked_up() {
        let log = Log::default();
        let ctx = context(&log, vec![]).with_final_height(Arc::new(|| 5));
        for height in [4, 5] {
            let e = decode_and_verify(&ctx, &pre_prepare(height, vec![tx(height)])).expect_err("stale");
            assert!(matches!(e, ConsensusError::AlreadyFinal { height: h, final_height: 5, .. } if h == height), "{e}");
        }
        assert!(log.lock().unwrap().is_empty(), "no transaction was looked up");
        let e = decode_and_verify(&ctx, &pre_prepare(6, vec![tx(6)])).expect_err("the next height is looked up");
        assert!(matches!(e, ConsensusError::MissingTxs { height: 6, .. }), "{e}");
        assert_eq!(*log.lock().unwrap(), ["known 1 ids"]);
    }

    #[test]
    fn a_fetched_block_reuses_known_transactions_and_checks_the_rest() {
        let log = Log::default();
        let held = tx(1);
        let results = context(&log, vec![held.clone()]).verify_txs(vec![held.tx().clone(), tx(2).tx().clone()]);
        assert_eq!(results.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [held, tx(2)]);
        assert_eq!(*log.lock().unwrap(), ["known 2 ids"]);
    }
}
