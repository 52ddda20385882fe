//! PBFT messages, one file per family, and their binary wire encoding.
//!
//! Every message is signed by its sender under its own domain tag (protocol §6); COMMIT uses exactly
//! the SPEC's commit signing bytes, so 2f+1 COMMITs are a block certificate as they stand.
//! Messages are generic over the transaction type: the wire form decodes into
//! `Message<Transaction>`, and verification (`pbft::verify`) turns it into
//! `Message<VerifiedTx>`, the only form the replica accepts.
//!
//! Wire layout: `u8 kind || from(32) || u64 view || u64 height || body`. The fixed 49-byte prefix
//! lets the node triage a message (stale view, far future) with [`peek`] before any signature
//! check. Checkpoints carry view 0; a VIEW-CHANGE's height is its checkpoint's; a NEW-VIEW's is 0.

pub mod checkpoint;
pub mod commit;
pub mod new_view;
pub mod pre_prepare;
pub mod prepare;
pub mod view_change;

use std::collections::BTreeSet;

use ordo_chain::codec::{Reader, Writer};
use ordo_chain::merkle::tx_root;
use ordo_chain::{BatchHeader, Hash, PublicKey, Transaction, VerifiedTx};

use crate::error::{ConsensusError, Result};
use crate::pbft::verify::VerifyContext;

pub use checkpoint::{Checkpoint, CheckpointProof};
pub use commit::Commit;
pub use new_view::{NewView, NewViewPlan};
pub use pre_prepare::PrePrepare;
pub use prepare::Prepare;
pub use view_change::{PreparedProof, ViewChange};

/// A transaction as carried by a message: raw from the wire, or verified inside the core.
pub trait TxLike: Clone + std::fmt::Debug + PartialEq + Eq {
    fn transaction(&self) -> &Transaction;
    /// Writes the binary encoding ([`Transaction::encode`]).
    fn encode(&self, w: &mut Writer);
}

impl TxLike for Transaction {
    fn transaction(&self) -> &Transaction {
        self
    }
    fn encode(&self, w: &mut Writer) {
        Transaction::encode(self, w);
    }
}

impl TxLike for VerifiedTx {
    fn transaction(&self) -> &Transaction {
        self.tx()
    }
    fn encode(&self, w: &mut Writer) {
        // The signing bytes kept since verification: no rebuilding per encoding.
        VerifiedTx::encode(self, w);
    }
}

/// One PBFT message of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<T = VerifiedTx> {
    PrePrepare(PrePrepare<T>),
    Prepare(Prepare),
    Commit(Commit),
    Checkpoint(Checkpoint),
    ViewChange(ViewChange<T>),
    NewView(NewView<T>),
}

/// A message as decoded from the wire, not yet verified.
pub type WireMessage = Message<Transaction>;

/// The message kinds, as the first byte of the wire form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    PrePrepare = 1,
    Prepare = 2,
    Commit = 3,
    Checkpoint = 4,
    ViewChange = 5,
    NewView = 6,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::PrePrepare => "pre-prepare",
            Kind::Prepare => "prepare",
            Kind::Commit => "commit",
            Kind::Checkpoint => "checkpoint",
            Kind::ViewChange => "view-change",
            Kind::NewView => "new-view",
        }
    }

    fn from_u8(b: u8) -> Result<Kind> {
        Ok(match b {
            1 => Kind::PrePrepare,
            2 => Kind::Prepare,
            3 => Kind::Commit,
            4 => Kind::Checkpoint,
            5 => Kind::ViewChange,
            6 => Kind::NewView,
            _ => return Err(ConsensusError::Decode(format!("unknown message kind {b}"))),
        })
    }
}

/// The fixed prefix of a wire message, readable without decoding or verifying the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peek {
    pub kind: Kind,
    pub from: PublicKey,
    pub view: u64,
    pub height: u64,
}

/// Reads the 49-byte prefix of an encoded message.
pub fn peek(bytes: &[u8]) -> Result<Peek> {
    let mut r = Reader::new(bytes);
    let kind = Kind::from_u8(r.u8()?)?;
    Ok(Peek { kind, from: r.key()?, view: r.u64()?, height: r.u64()? })
}

impl<T: TxLike> Message<T> {
    pub fn kind(&self) -> Kind {
        match self {
            Message::PrePrepare(_) => Kind::PrePrepare,
            Message::Prepare(_) => Kind::Prepare,
            Message::Commit(_) => Kind::Commit,
            Message::Checkpoint(_) => Kind::Checkpoint,
            Message::ViewChange(_) => Kind::ViewChange,
            Message::NewView(_) => Kind::NewView,
        }
    }

    pub fn from(&self) -> PublicKey {
        match self {
            Message::PrePrepare(m) => m.from,
            Message::Prepare(m) => m.from,
            Message::Commit(m) => m.from,
            Message::Checkpoint(m) => m.from,
            Message::ViewChange(m) => m.from,
            Message::NewView(m) => m.from,
        }
    }

    /// The prefix fields, as `peek` would read them from the encoding.
    pub fn peek(&self) -> Peek {
        let (view, height) = match self {
            Message::PrePrepare(m) => (m.view, m.batch.header.height),
            Message::Prepare(m) => (m.view, m.height),
            Message::Commit(m) => (m.view, m.height),
            Message::Checkpoint(m) => (0, m.height),
            Message::ViewChange(m) => (m.view, m.checkpoint.height),
            Message::NewView(m) => (m.view, 0),
        };
        Peek { kind: self.kind(), from: self.from(), view, height }
    }

    /// The binary wire form that the p2p layer ships.
    pub fn encode(&self) -> Vec<u8> {
        let p = self.peek();
        let mut w = Writer::with_capacity(256);
        w.u8(p.kind as u8).key(&p.from).u64(p.view).u64(p.height);
        match self {
            Message::PrePrepare(m) => m.encode_body(&mut w),
            Message::Prepare(m) => m.encode_body(&mut w),
            Message::Commit(m) => m.encode_body(&mut w),
            Message::Checkpoint(m) => m.encode_body(&mut w),
            Message::ViewChange(m) => m.encode_body(&mut w),
            Message::NewView(m) => m.encode_body(&mut w),
        }
        w.finish()
    }
}

impl WireMessage {
    /// Decodes a wire message, refusing anything larger than `max_bytes` before reading it.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<WireMessage> {
        if bytes.len() > max_bytes {
            return Err(ConsensusError::MessageTooLarge { len: bytes.len(), max: max_bytes });
        }
        let p = peek(bytes)?;
        let mut r = Reader::new(&bytes[49..]);
        let m = match p.kind {
            Kind::PrePrepare => Message::PrePrepare(PrePrepare::decode_body(&p, &mut r)?),
            Kind::Prepare => Message::Prepare(Prepare::decode_body(&p, &mut r)?),
            Kind::Commit => Message::Commit(Commit::decode_body(&p, &mut r)?),
            Kind::Checkpoint => Message::Checkpoint(Checkpoint::decode_body(&p, &mut r)?),
            Kind::ViewChange => Message::ViewChange(ViewChange::decode_body(&p, &mut r)?),
            Kind::NewView => Message::NewView(NewView::decode_body(&p, &mut r)?),
        };
        r.finish()?;
        Ok(m)
    }
}

/// A batch: the header the committee votes on (through its digest) and its transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<T = VerifiedTx> {
    pub header: BatchHeader,
    pub txs: Vec<T>,
}

impl<T: TxLike> Batch<T> {
    pub fn digest(&self, chain_id: &str) -> Hash {
        self.header.digest(chain_id)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        self.header.encode(w);
        encode_txs(&self.txs, w);
    }
}

impl Batch<VerifiedTx> {
    /// An empty batch, as a view change uses to fill a gap (protocol §4: an empty block).
    pub fn null(height: u64, timestamp_ms: u64, proposer: PublicKey) -> Self {
        Batch { header: BatchHeader::for_txs(height, timestamp_ms, proposer, &[]), txs: Vec::new() }
    }
}

impl Batch<Transaction> {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let header = BatchHeader::decode(r)?;
        let txs = decode_txs(r)?;
        Ok(Batch { header, txs })
    }

    /// Verifies every transaction (one batched signature check), refuses duplicates inside the
    /// batch, and checks that the header's count and Merkle root describe these transactions.
    pub fn verify(self, ctx: &VerifyContext) -> Result<Batch<VerifiedTx>> {
        self.verify_reporting(ctx, false)
    }

    /// [`Batch::verify`] for a PRE-PREPARE's batch: the transactions checked here for the first
    /// time are also reported to the context's `fresh` hook (the node's mempool keeps them).
    pub fn verify_proposed(self, ctx: &VerifyContext) -> Result<Batch<VerifiedTx>> {
        self.verify_reporting(ctx, true)
    }

    fn verify_reporting(self, ctx: &VerifyContext, report_fresh: bool) -> Result<Batch<VerifiedTx>> {
        let height = self.header.height;
        if self.txs.len() > ctx.batch_max_txs {
            return Err(ConsensusError::BatchTooLarge { height, count: self.txs.len(), max: ctx.batch_max_txs });
        }
        if self.header.tx_count as usize != self.txs.len() {
            return Err(ConsensusError::BatchMismatch { height, what: "tx_count" });
        }
        let mut txs = Vec::with_capacity(self.txs.len());
        for (index, r) in ctx.verify_txs(self.txs, report_fresh).into_iter().enumerate() {
            match r {
                Ok(t) => txs.push(t),
                Err(reason) => return Err(ConsensusError::BadTransaction { height, index, reason }),
            }
        }
        let ids: Vec<Hash> = txs.iter().map(|t| t.id()).collect();
        let mut seen = BTreeSet::new();
        for id in &ids {
            if !seen.insert(*id) {
                return Err(ConsensusError::DuplicateTxInBatch { height, tx_id: *id });
            }
        }
        if tx_root(&ids) != self.header.tx_root {
            return Err(ConsensusError::BatchMismatch { height, what: "tx_root" });
        }
        Ok(Batch { header: self.header, txs })
    }
}

pub(crate) fn encode_txs<T: TxLike>(txs: &[T], w: &mut Writer) {
    w.u32(txs.len() as u32);
    for t in txs {
        t.encode(w);
    }
}

pub(crate) fn decode_txs(r: &mut Reader<'_>) -> Result<Vec<Transaction>> {
    let n = r.u32()? as usize;
    // No pre-allocation from an untrusted count: a short message cannot reserve gigabytes.
    let mut txs = Vec::new();
    for _ in 0..n {
        txs.push(Transaction::decode(r)?);
    }
    Ok(txs)
}

pub(crate) fn encode_sigs(sigs: &[ordo_chain::cert::ValidatorSignature], w: &mut Writer) {
    w.u16(sigs.len() as u16);
    for s in sigs {
        w.key(&s.validator).sig(&s.signature);
    }
}

pub(crate) fn decode_sigs(r: &mut Reader<'_>) -> Result<Vec<ordo_chain::cert::ValidatorSignature>> {
    let n = r.u16()? as usize;
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(ordo_chain::cert::ValidatorSignature { validator: r.key()?, signature: r.sig()? });
    }
    Ok(v)
}

/// The common start of every signing-bytes format: the domain tag and `str(chain_id)`.
pub(crate) fn signing_writer(tag: &str, chain_id: &str) -> Writer {
    let mut w = Writer::with_capacity(128);
    w.tag(tag).str16(chain_id);
    w
}

/// Checks that the sender is a validator; every verify starts here.
pub(crate) fn check_member(ctx: &VerifyContext, kind: Kind, from: &PublicKey) -> Result<()> {
    if !ctx.committee.contains(from) {
        return Err(ConsensusError::UnknownSender { kind: kind.name(), from: *from });
    }
    Ok(())
}

/// Strict single signature check naming the message kind and sender on failure.
pub(crate) fn check_sig(kind: Kind, from: &PublicKey, msg: &[u8], sig: &ordo_chain::Signature) -> Result<()> {
    from.verify_strict(msg, sig).map_err(|_| ConsensusError::BadSignature { kind: kind.name(), from: *from })
}
