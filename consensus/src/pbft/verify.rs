//! The verification step: pure CPU work the node can run on a worker thread before handing a
//! message to the replica. It decodes with a size limit, checks that the sender is a validator
//! (and the primary where the kind requires it), checks every signature (batch-verifying the
//! transactions of a PRE-PREPARE and the embedded signatures of VIEW-CHANGE and NEW-VIEW proofs),
//! and only then produces a [`Verified`] value, whose constructor no other module calls.

use ordo_chain::cert::{CertKind, Certificate};
use std::cell::Cell;
use std::sync::Arc;

use ordo_chain::{Block, Committee, Hash, PublicKey, Transaction, TxRules, VerifiedTx};

use super::messages::{Batch, Message, WireMessage};
use crate::config::PbftConfig;
use crate::error::{ConsensusError, Result};
use crate::interface::CommittedBatch;
use crate::verified::Verified;

/// Looks up transactions this node already verified (its mempool), by `tx_id`: one answer per
/// id, a whole batch in one call, before any of the batch's signatures is checked. The flag
/// says whether the transactions this verification checks will be reported to [`FreshTxs`]
/// (a PRE-PREPARE's). Besides the answers it returns a [`Lease`], which the verification holds
/// until it has reported its fresh transactions, whatever the results, and then drops: the node
/// uses it to tell another verifier of the same transactions, in flight at the same moment,
/// to wait for this one's result rather than check them a second time.
pub type KnownTxs = Arc<dyn Fn(&[Hash], bool) -> (Vec<Option<VerifiedTx>>, Lease) + Send + Sync>;

/// Held by a batch verification from its [`KnownTxs`] lookup until it has reported its fresh
/// transactions; dropping it is the only thing done with it.
pub type Lease = Box<dyn Send>;

/// Told of the transactions a PRE-PREPARE's verification checked and found good (those
/// [`KnownTxs`] did not supply), so that the node can keep them (its mempool) and never check
/// them again when their gossip arrives.
pub type FreshTxs = Arc<dyn Fn(Vec<VerifiedTx>) + Send + Sync>;

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
    /// Transactions already verified here, which batch verification takes without a second
    /// signature check when they are identical (see [`TxRules::verify_many_reusing`]).
    pub known: Option<KnownTxs>,
    /// Told of the transactions verified here for the first time.
    pub fresh: Option<FreshTxs>,
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
            .field("fresh", &self.fresh.is_some())
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
            fresh: None,
            final_height: None,
        }
    }

    /// Lets verification refuse PRE-PREPAREs for heights this node has committed, before their
    /// transactions are checked.
    pub fn with_final_height(mut self, final_height: FinalHeight) -> Self {
        self.final_height = Some(final_height);
        self
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
        // The lookup's lease lives until the fresh transactions have been reported, whatever
        // the results.
        let lease: Cell<Option<Lease>> = Cell::new(None);
        let (results, fresh) = match &self.known {
            Some(k) => self.rules.verify_many_split(txs, &|ids: &[Hash]| {
                let (found, held) = k(ids, report_fresh);
                lease.set(Some(held));
                found
            }),
            None => self.rules.verify_many_split(txs, &ordo_chain::tx::nothing_known),
        };
        if let Some(tell) = self.fresh.as_ref().filter(|_| report_fresh) {
            if !fresh.is_empty() {
                tell(fresh);
            }
        }
        drop(lease);
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

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_chain::{Keypair, Op};
    use std::sync::Mutex;

    const CHAIN: &str = "verify-test";

    type Log = Arc<Mutex<Vec<String>>>;

    /// Writes to the log when the verification drops it.
    struct Noted(Log);

    impl Drop for Noted {
        fn drop(&mut self) {
            self.0.lock().unwrap().push("lease dropped".into());
        }
    }

    fn tx(nonce: u64) -> Transaction {
        Transaction::sign(
            CHAIN,
            &Keypair::from_seed([7; 32]),
            nonce,
            Op::Put { key: format!("k{nonce}"), value: "v".into() },
        )
    }

    /// A context whose mempool holds `held`, logging every hook call in order.
    fn context(log: &Log, held: Vec<VerifiedTx>) -> VerifyContext {
        let committee = Committee::new(vec![Keypair::from_seed([1; 32]).public()]);
        let (known_log, fresh_log) = (log.clone(), log.clone());
        VerifyContext::new(committee, TxRules::new(CHAIN), &PbftConfig::default())
            .with_known_txs(Arc::new(move |ids: &[Hash], reported: bool| {
                known_log.lock().unwrap().push(format!("known {} ids, reported {reported}", ids.len()));
                let found = ids.iter().map(|id| held.iter().find(|t| t.id() == *id).cloned()).collect();
                (found, Box::new(Noted(known_log.clone())) as Lease)
            }))
            .with_fresh_txs(Arc::new(move |txs| fresh_log.lock().unwrap().push(format!("fresh {}", txs.len()))))
    }

    #[test]
    fn the_lease_outlives_the_report_of_fresh_transactions() {
        let log = Log::default();
        let held = TxRules::new(CHAIN).verify(tx(0)).unwrap();
        let results = context(&log, vec![held]).verify_txs(vec![tx(0), tx(1), tx(2)], true);
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(*log.lock().unwrap(), ["known 3 ids, reported true", "fresh 2", "lease dropped"]);
    }

    #[test]
    fn the_lease_is_dropped_when_a_transaction_is_bad() {
        let log = Log::default();
        let mut forged = tx(1);
        forged.signature = tx(2).signature;
        let results = context(&log, vec![]).verify_txs(vec![tx(0), forged], true);
        assert!(results[0].is_ok() && results[1].is_err());
        assert_eq!(*log.lock().unwrap(), ["known 2 ids, reported true", "fresh 1", "lease dropped"]);
    }

    /// A PRE-PREPARE of height `height` from the one validator (the primary of view 0).
    fn pre_prepare(height: u64) -> Vec<u8> {
        let key = Keypair::from_seed([1; 32]);
        let txs = TxRules::new(CHAIN).verify_many(vec![tx(height)]).into_iter().map(Result::unwrap).collect::<Vec<_>>();
        let header = ordo_chain::BatchHeader::for_txs(height, 1_000 + height, key.public(), &txs);
        Message::PrePrepare(super::super::messages::PrePrepare::sign(CHAIN, &key, 0, Batch { header, txs })).encode()
    }

    #[test]
    fn a_pre_prepare_at_or_below_the_committed_height_is_refused_before_its_transactions_are_checked() {
        let log = Log::default();
        let ctx = context(&log, vec![]).with_final_height(Arc::new(|| 5));
        for height in [4, 5] {
            let e = decode_and_verify(&ctx, &pre_prepare(height)).expect_err("stale");
            assert!(matches!(e, ConsensusError::AlreadyFinal { height: h, final_height: 5, .. } if h == height), "{e}");
        }
        assert!(log.lock().unwrap().is_empty(), "no transaction was looked up or checked");
        decode_and_verify(&ctx, &pre_prepare(6)).expect("the next height is verified");
        assert_eq!(*log.lock().unwrap(), ["known 1 ids, reported true", "fresh 1", "lease dropped"]);
    }

    #[test]
    fn a_batch_not_proposed_is_looked_up_unreported_and_its_lease_dropped() {
        let log = Log::default();
        let results = context(&log, vec![]).verify_txs(vec![tx(0)], false);
        assert!(results[0].is_ok());
        assert_eq!(*log.lock().unwrap(), ["known 1 ids, reported false", "lease dropped"]);
    }
}
