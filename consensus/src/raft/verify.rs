//! The verification step of Raft messages: pure CPU work the node can run on a worker before
//! handing a message to the engine. Raft's own messages carry no signatures (protocol §6): the
//! p2p transport authenticates the sending validator, and this step checks that the message
//! names that validator as its sender, that it is well-formed and bounded, and that every batch
//! entry it carries decodes, satisfies the static transaction rules, and bears a valid leader
//! certificate for the entry's term (one signature per block).
//!
//! Crash-only trust: the transactions inside a leader's entry are not signature-checked again
//! (`VerifiedTx::from_crash_trusted_leader`). The admitting node verified them, the leader's
//! certificate covers the batch, and `ordo verify-chain` re-checks everything. Fetched blocks
//! (`verify_block`) are checked in full, as PBFT does.

use std::collections::HashSet;

use ordo_chain::cert::{CertKind, Certificate};
use ordo_chain::merkle::tx_root;
use ordo_chain::{Block, Committee, Hash, PublicKey, TxRules, VerifiedTx};

use super::message::{EntryBatch, RaftEntry, RaftKind, RaftMessage};
use crate::config::RaftConfig;
use crate::error::{ConsensusError, Result};
use crate::interface::CommittedBatch;
use crate::verified::Verified;

/// What verification needs to know about the chain; built once at start-up.
#[derive(Debug, Clone)]
pub struct RaftVerifyContext {
    pub chain_id: String,
    pub committee: Committee,
    pub rules: TxRules,
    pub batch_max_txs: usize,
    pub message_max_bytes: usize,
    pub message_max_entries: usize,
}

impl RaftVerifyContext {
    pub fn new(committee: Committee, rules: TxRules, config: &RaftConfig) -> Self {
        RaftVerifyContext {
            chain_id: rules.chain_id.clone(),
            committee,
            rules,
            batch_max_txs: config.batch_max_txs,
            message_max_bytes: config.message_max_bytes,
            message_max_entries: config.message_max_entries,
        }
    }

    /// The raft id of a validator: its genesis index + 1 (raft-rs reserves 0).
    pub fn raft_id(&self, key: &PublicKey) -> Option<u64> {
        self.committee.index_of(key).map(|i| i as u64 + 1)
    }

    /// The validator with raft id `id`.
    pub fn validator(&self, id: u64) -> Option<PublicKey> {
        (id >= 1 && id <= self.committee.n() as u64).then(|| self.committee.get(id as usize - 1))
    }

    /// Every raft id, in genesis order.
    pub fn voters(&self) -> Vec<u64> {
        (1..=self.committee.n() as u64).collect()
    }
}

/// Decodes (refusing oversized input first) and verifies bytes that the transport received
/// from the authenticated validator `sender`.
pub fn decode_and_verify(ctx: &RaftVerifyContext, sender: PublicKey, bytes: &[u8]) -> Result<Verified<RaftMessage>> {
    let msg = RaftMessage::decode(bytes, ctx.message_max_bytes, ctx.message_max_entries)?;
    verify_message(ctx, sender, msg)
}

/// Verifies a decoded message from the authenticated validator `sender`.
pub fn verify_message(ctx: &RaftVerifyContext, sender: PublicKey, msg: RaftMessage) -> Result<Verified<RaftMessage>> {
    let Some(sender_id) = ctx.raft_id(&sender) else {
        return Err(ConsensusError::UnknownSender { kind: msg.kind.as_str(), from: sender });
    };
    if msg.from != sender_id {
        return Err(ConsensusError::SenderMismatch { sender, claimed: msg.from });
    }
    let bad = |reason: String| Err(ConsensusError::BadRaftMessage { from: sender, reason });
    if ctx.validator(msg.to).is_none() || msg.to == msg.from {
        return bad(format!("addressed to raft id {}", msg.to));
    }
    if msg.term == 0 {
        return bad("term 0".into());
    }
    if !msg.entries.is_empty() && msg.kind != RaftKind::Append {
        return bad(format!("a {} carries entries", msg.kind.as_str()));
    }
    if msg.snapshot.is_some() != (msg.kind == RaftKind::Snapshot) {
        return bad("a snapshot belongs exactly to a snapshot message".into());
    }
    if let Some(s) = &msg.snapshot {
        if s.index == 0 || s.term == 0 || s.term > msg.term {
            return bad(format!("snapshot at index {} term {}", s.index, s.term));
        }
    }
    // Entries: contiguous after `index`, terms from `log_term` up to the message's term, each
    // batch valid. raft-rs would panic on some of these inconsistencies; none may reach it.
    let mut prev_term = msg.log_term;
    for (i, e) in msg.entries.iter().enumerate() {
        let expected = msg.index.checked_add(1 + i as u64);
        if Some(e.index) != expected {
            return bad(format!("entry {i} has index {}, expected {:?}", e.index, expected));
        }
        if e.term < prev_term || e.term > msg.term {
            return bad(format!("entry {} has term {} (previous {prev_term}, message {})", e.index, e.term, msg.term));
        }
        prev_term = e.term;
        verify_entry(ctx, e)?;
    }
    Ok(Verified::new_unchecked(msg))
}

/// Checks one entry: a no-op, or a batch whose header describes its transactions and whose
/// leader certificate is valid for the entry's term.
pub fn verify_entry(ctx: &RaftVerifyContext, e: &RaftEntry) -> Result<()> {
    if e.data.is_empty() {
        return Ok(());
    }
    let bad = |reason: String| ConsensusError::BadEntry { index: e.index, reason };
    let batch = EntryBatch::decode(&e.data, ctx.batch_max_txs).map_err(|x| bad(x.to_string()))?;
    check_batch(ctx, &batch, e.term).map_err(|x| bad(x.to_string()))?;
    Ok(())
}

/// The rules of a batch entry, shared by verification and (as invariants) the engine: the
/// static transaction rules, no repeated transaction, a header that describes the
/// transactions, and a leader certificate of the entry's term over that header. Returns the
/// transactions as trusted (see the module header).
pub(crate) fn check_batch(ctx: &RaftVerifyContext, b: &EntryBatch, entry_term: u64) -> Result<Vec<VerifiedTx>> {
    let height = b.header.height;
    let mismatch = |what: &'static str| ConsensusError::BatchMismatch { height, what };
    if b.txs.len() > ctx.batch_max_txs {
        return Err(ConsensusError::BatchTooLarge { height, count: b.txs.len(), max: ctx.batch_max_txs });
    }
    if b.header.tx_count as usize != b.txs.len() {
        return Err(mismatch("tx_count"));
    }
    let mut txs = Vec::with_capacity(b.txs.len());
    let mut seen = HashSet::with_capacity(b.txs.len());
    for (index, tx) in b.txs.iter().enumerate() {
        tx.check_static(&ctx.chain_id, &ctx.rules.limits).map_err(|reason| ConsensusError::BadTransaction {
            height,
            index,
            reason,
        })?;
        let v = VerifiedTx::from_crash_trusted_leader(tx.clone());
        if !seen.insert(v.id()) {
            return Err(ConsensusError::DuplicateTxInBatch { height, tx_id: v.id() });
        }
        txs.push(v);
    }
    let ids: Vec<Hash> = txs.iter().map(|t| t.id()).collect();
    if tx_root(&ids) != b.header.tx_root {
        return Err(mismatch("tx_root"));
    }
    let c = &b.certificate;
    if c.term != entry_term {
        return Err(ConsensusError::BadProof {
            kind: "raft certificate",
            from: c.leader,
            reason: format!("signed for term {}, the entry is of term {entry_term}", c.term),
        });
    }
    if b.header.proposer != c.leader {
        return Err(mismatch("proposer"));
    }
    Certificate::Raft(c.clone())
        .verify(&ctx.chain_id, &ctx.committee, CertKind::Raft, height, &b.header.digest(&ctx.chain_id))
        .map_err(|e| ConsensusError::BadProof { kind: "raft certificate", from: c.leader, reason: e.to_string() })?;
    Ok(txs)
}

/// Verifies a block fetched from a peer for catch-up: its transactions (one batched signature
/// check: a fetched block is checked in full, whoever served it), that its header describes them,
/// and its Raft certificate against the committee. A PBFT certificate is refused.
pub fn verify_block(ctx: &RaftVerifyContext, block: &Block) -> Result<Verified<CommittedBatch>> {
    let height = block.height();
    let bad = |reason: String| ConsensusError::BadSyncedBlock { height, reason };
    let certificate = match &block.certificate {
        Some(c @ Certificate::Raft(_)) => c.clone(),
        Some(other) => return Err(bad(format!("{} certificate on a Raft chain", other.kind().as_str()))),
        None => return Err(bad("no certificate".into())),
    };
    if block.header.tx_count as usize != block.txs.len() || block.txs.len() > ctx.batch_max_txs {
        return Err(bad(format!("{} transactions, header says {}", block.txs.len(), block.header.tx_count)));
    }
    let mut txs = Vec::with_capacity(block.txs.len());
    let mut seen = HashSet::with_capacity(block.txs.len());
    for (i, r) in ctx.rules.verify_many(block.txs.clone()).into_iter().enumerate() {
        let tx = r.map_err(|e| bad(format!("transaction {i}: {e}")))?;
        if !seen.insert(tx.id()) {
            return Err(bad(format!("transaction {} repeated", tx.id())));
        }
        txs.push(tx);
    }
    let ids: Vec<Hash> = txs.iter().map(|t| t.id()).collect();
    if tx_root(&ids) != block.header.tx_root {
        return Err(bad("tx_root does not match the transactions".into()));
    }
    certificate
        .verify(&ctx.chain_id, &ctx.committee, CertKind::Raft, height, &block.header.digest(&ctx.chain_id))
        .map_err(|e| bad(e.to_string()))?;
    Ok(Verified::new_unchecked(CommittedBatch { header: block.header, txs, certificate }))
}

impl crate::engine::Verifier for RaftVerifyContext {
    type Message = RaftMessage;

    /// Raft messages are unsigned: the message must claim to be from the validator the
    /// transport authenticated.
    fn decode_and_verify(&self, sender: &PublicKey, bytes: &[u8]) -> Result<Verified<RaftMessage>> {
        decode_and_verify(self, *sender, bytes)
    }

    fn encode(&self, message: &RaftMessage) -> Vec<u8> {
        message.encode()
    }

    fn verify_block(&self, block: &Block) -> Result<Verified<CommittedBatch>> {
        verify_block(self, block)
    }

    fn committee(&self) -> &Committee {
        &self.committee
    }

    /// A minority of crashes: ⌊(n-1)/2⌋.
    fn faults_tolerated(&self) -> usize {
        (self.committee.n() - 1) / 2
    }

    fn message_max_bytes(&self) -> usize {
        self.message_max_bytes
    }
}

impl crate::engine::Engine for super::RaftEngine {
    type Verifier = RaftVerifyContext;
}
