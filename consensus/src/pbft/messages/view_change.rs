//! VIEW-CHANGE (Castro & Liskov 2002, §4.4): a replica that suspects the primary moves to view
//! v+1 and sends its last stable checkpoint (with proof) and a prepared certificate for every
//! sequence above it that prepared (the P-set). Certificates carry signatures, so any replica can
//! check them, and the new primary's choice can be recomputed by everyone.
//!
//! Batch bodies ride along unsigned (the header's tx_root binds them), so the new primary and the
//! backups can re-propose a batch they never saw; a NEW-VIEW keeps one copy of each.

use std::collections::BTreeSet;

use ordo_chain::cert::ValidatorSignature;
use ordo_chain::codec::{Reader, Writer};
use ordo_chain::crypto::{verify_batch, SigCheck};
use ordo_chain::{BatchHeader, Hash, Keypair, PublicKey, Signature, Transaction, VerifiedTx};

use super::checkpoint::checkpoint_bytes;
use super::pre_prepare::pre_prepare_bytes;
use super::prepare::prepare_bytes;
use super::{
    check_member, decode_sigs, decode_txs, encode_sigs, encode_txs, signing_writer, Batch, CheckpointProof, Kind, Peek,
    TxLike,
};
use crate::error::{ConsensusError, Result};
use crate::pbft::verify::VerifyContext;

pub const VIEW_CHANGE_TAG: &str = "ordo/pbft/view-change/v1";

/// A prepared certificate: the primary's PRE-PREPARE signature and 2f PREPARE signatures from
/// distinct backups, all for (view, header.height, digest(header)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedProof<T = VerifiedTx> {
    pub view: u64,
    pub header: BatchHeader,
    pub primary_signature: Signature,
    pub prepares: Vec<ValidatorSignature>,
    /// The batch's transactions when the sender holds them.
    pub txs: Option<Vec<T>>,
}

impl<T: TxLike> PreparedProof<T> {
    pub fn height(&self) -> u64 {
        self.header.height
    }

    /// The same proof without its body, as a NEW-VIEW embeds it.
    pub fn without_body(&self) -> Self {
        PreparedProof { txs: None, ..self.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewChange<T = VerifiedTx> {
    /// The view the sender moves to.
    pub view: u64,
    pub checkpoint: CheckpointProof,
    /// Strictly increasing heights above the checkpoint.
    pub prepared: Vec<PreparedProof<T>>,
    pub from: PublicKey,
    pub signature: Signature,
}

/// The signed part: view, checkpoint claim and the (view, height, digest) of each certificate.
fn view_change_bytes<T: TxLike>(
    chain_id: &str,
    view: u64,
    cp: &CheckpointProof,
    prepared: &[PreparedProof<T>],
) -> Vec<u8> {
    let mut w = signing_writer(VIEW_CHANGE_TAG, chain_id);
    w.u64(view).u64(cp.height).hash(&cp.block_hash).u32(prepared.len() as u32);
    for p in prepared {
        w.u64(p.view).u64(p.header.height).hash(&p.header.digest(chain_id));
    }
    w.finish()
}

impl ViewChange<VerifiedTx> {
    pub fn sign(
        chain_id: &str,
        key: &Keypair,
        view: u64,
        checkpoint: CheckpointProof,
        prepared: Vec<PreparedProof>,
    ) -> Self {
        let signature = key.sign(&view_change_bytes(chain_id, view, &checkpoint, &prepared));
        ViewChange { view, checkpoint, prepared, from: key.public(), signature }
    }
}

impl<T: TxLike> ViewChange<T> {
    pub fn signing_bytes(&self, chain_id: &str) -> Vec<u8> {
        view_change_bytes(chain_id, self.view, &self.checkpoint, &self.prepared)
    }

    pub fn without_bodies(&self) -> Self {
        ViewChange { prepared: self.prepared.iter().map(|p| p.without_body()).collect(), ..self.clone() }
    }

    pub(crate) fn encode_body(&self, w: &mut Writer) {
        w.sig(&self.signature).hash(&self.checkpoint.block_hash);
        encode_sigs(&self.checkpoint.signatures, w);
        w.u16(self.prepared.len() as u16);
        for p in &self.prepared {
            w.u64(p.view);
            p.header.encode(w);
            w.sig(&p.primary_signature);
            encode_sigs(&p.prepares, w);
            match &p.txs {
                None => {
                    w.u8(0);
                }
                Some(txs) => {
                    w.u8(1);
                    encode_txs(txs, w);
                }
            }
        }
    }
}

impl ViewChange<Transaction> {
    pub(crate) fn decode_body(p: &Peek, r: &mut Reader<'_>) -> Result<Self> {
        let signature = r.sig()?;
        let checkpoint = CheckpointProof { height: p.height, block_hash: r.hash()?, signatures: decode_sigs(r)? };
        let n = r.u16()? as usize;
        let mut prepared = Vec::new();
        for _ in 0..n {
            let view = r.u64()?;
            let header = BatchHeader::decode(r)?;
            let primary_signature = r.sig()?;
            let prepares = decode_sigs(r)?;
            let txs = match r.u8()? {
                0 => None,
                1 => Some(decode_txs(r)?),
                b => return Err(ConsensusError::Decode(format!("bad body flag {b}"))),
            };
            prepared.push(PreparedProof { view, header, primary_signature, prepares, txs });
        }
        Ok(ViewChange { view: p.view, checkpoint, prepared, from: p.from, signature })
    }

    /// Checks the sender, every structural rule of the checkpoint proof and of each prepared
    /// certificate, then all signatures of the message in one batch, then the attached bodies.
    pub fn verify(self, ctx: &VerifyContext) -> Result<ViewChange<VerifiedTx>> {
        check_member(ctx, Kind::ViewChange, &self.from)?;
        let bad = |reason: String| ConsensusError::BadProof { kind: "view-change", from: self.from, reason };
        let own = self.signing_bytes(&ctx.chain_id);
        let cp_msg = checkpoint_bytes(&ctx.chain_id, self.checkpoint.height, &self.checkpoint.block_hash);
        if self.prepared.len() as u64 > ctx.watermark_window {
            return Err(bad(format!(
                "{} prepared certificates, the window is {}",
                self.prepared.len(),
                ctx.watermark_window
            )));
        }
        // Signing bytes of each certificate, built first so the checks can borrow them.
        let mut cert_msgs: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(self.prepared.len());
        let mut last = self.checkpoint.height;
        for p in &self.prepared {
            let h = p.header.height;
            if h <= last {
                return Err(bad(format!("prepared heights not increasing above the checkpoint at {h}")));
            }
            if h > self.checkpoint.height.saturating_add(ctx.watermark_window) {
                return Err(bad(format!(
                    "prepared height {h} beyond the window above checkpoint {}",
                    self.checkpoint.height
                )));
            }
            if p.view >= self.view {
                return Err(bad(format!("prepared in view {} not below the new view {}", p.view, self.view)));
            }
            last = h;
            let d = p.header.digest(&ctx.chain_id);
            cert_msgs
                .push((pre_prepare_bytes(&ctx.chain_id, p.view, h, &d), prepare_bytes(&ctx.chain_id, p.view, h, &d)));
        }
        let primaries: Vec<PublicKey> = self.prepared.iter().map(|p| ctx.primary(p.view)).collect();
        let mut checks = vec![SigCheck { key: &self.from, msg: &own, sig: &self.signature }];
        self.checkpoint.checks(ctx, &cp_msg, &mut checks).map_err(bad)?;
        for (i, (p, (pp_msg, prep_msg))) in self.prepared.iter().zip(&cert_msgs).enumerate() {
            let primary = primaries[i];
            // The header keeps its original proposer across view changes; the primary of the
            // certificate's view vouches for it through its PRE-PREPARE signature.
            checks.push(SigCheck { key: &primaries[i], msg: pp_msg, sig: &p.primary_signature });
            let mut seen = BTreeSet::new();
            for s in &p.prepares {
                if !ctx.committee.contains(&s.validator) || s.validator == primary || !seen.insert(s.validator) {
                    return Err(bad(format!("prepare by {} is not from a distinct backup", s.validator)));
                }
                checks.push(SigCheck { key: &s.validator, msg: prep_msg, sig: &s.signature });
            }
            if seen.len() + 1 < ctx.committee.quorum() {
                return Err(bad(format!(
                    "certificate at height {} has {} prepares, needs {}",
                    p.height(),
                    seen.len(),
                    ctx.committee.quorum() - 1
                )));
            }
        }
        let results = verify_batch(&checks);
        if results[0].is_err() {
            return Err(ConsensusError::BadSignature { kind: "view-change", from: self.from });
        }
        if results.iter().any(|r| r.is_err()) {
            return Err(bad("an embedded signature does not verify".into()));
        }
        drop(checks);
        let mut prepared = Vec::with_capacity(self.prepared.len());
        for p in self.prepared {
            let txs = match p.txs {
                None => None,
                Some(txs) => Some(Batch { header: p.header, txs }.verify(ctx)?.txs),
            };
            prepared.push(PreparedProof {
                view: p.view,
                header: p.header,
                primary_signature: p.primary_signature,
                prepares: p.prepares,
                txs,
            });
        }
        Ok(ViewChange {
            view: self.view,
            checkpoint: self.checkpoint,
            prepared,
            from: self.from,
            signature: self.signature,
        })
    }
}

/// The prepared certificate's digest, as the O-set computation compares them.
pub(crate) fn proof_digest<T: TxLike>(chain_id: &str, p: &PreparedProof<T>) -> Hash {
    p.header.digest(chain_id)
}
