//! NEW-VIEW (Castro & Liskov 2002, §4.4): the primary of view v proves it may start the view
//! with 2f+1 VIEW-CHANGEs for v (the V-set) and re-proposes, for every height between the
//! highest stable checkpoint in V (min-s) and the highest prepared height in V (max-s), the batch
//! with the highest-view prepared certificate, or an empty batch where none prepared (the
//! O-set). Every backup recomputes the O-set from the V-set with [`compute_plan`] and accepts
//! the NEW-VIEW only if the primary's PRE-PREPARE signatures match it.

use std::collections::{BTreeMap, BTreeSet};

use ordo_chain::codec::{Reader, Writer};
use ordo_chain::crypto::{sha256, verify_batch, SigCheck};
use ordo_chain::{Committee, Hash, Keypair, PublicKey, Signature, Transaction, VerifiedTx};

use super::pre_prepare::pre_prepare_bytes;
use super::view_change::proof_digest;
use super::{
    check_member, check_sig, signing_writer, Batch, CheckpointProof, Kind, Message, Peek, PreparedProof, TxLike,
    ViewChange,
};
use crate::error::{ConsensusError, Result};
use crate::pbft::verify::VerifyContext;

pub const NEW_VIEW_TAG: &str = "ordo/pbft/new-view/v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewView<T = VerifiedTx> {
    pub view: u64,
    /// The primary's clock when it formed the NEW-VIEW; empty batches for gaps carry it.
    pub timestamp_ms: u64,
    /// The V-set, with bodies stripped.
    pub view_changes: Vec<ViewChange<T>>,
    /// One copy of the body of every re-proposed non-empty batch.
    pub bodies: Vec<Batch<T>>,
    /// The primary's PRE-PREPARE signature for each height of the O-set, in height order.
    pub pre_prepare_signatures: Vec<Signature>,
    pub from: PublicKey,
    pub signature: Signature,
}

/// The O-set as recomputed from a V-set: the checkpoint to start from and the batch of every
/// height in (checkpoint, max-s], in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewViewPlan {
    pub checkpoint: CheckpointProof,
    pub batches: Vec<Batch<VerifiedTx>>,
}

fn new_view_bytes<T: TxLike>(chain_id: &str, view: u64, timestamp_ms: u64, vcs: &[ViewChange<T>]) -> Vec<u8> {
    let mut w = signing_writer(NEW_VIEW_TAG, chain_id);
    w.u64(view).u64(timestamp_ms).u32(vcs.len() as u32);
    for vc in vcs {
        w.key(&vc.from).hash(&sha256(&vc.signing_bytes(chain_id)));
    }
    w.finish()
}

/// Computes the O-set (Castro & Liskov 2002, §4.4) from a V-set. `extra_body` supplies bodies
/// not attached to the V-set (the NEW-VIEW's own copies, or the new primary's log). Fails with
/// a reason when the V-set is not a quorum of distinct VIEW-CHANGEs for `view`, or when a chosen
/// batch's body is unavailable.
pub fn compute_plan(
    chain_id: &str,
    committee: &Committee,
    view: u64,
    timestamp_ms: u64,
    vcs: &[ViewChange<VerifiedTx>],
    extra_body: &dyn Fn(&Hash) -> Option<Vec<VerifiedTx>>,
) -> std::result::Result<NewViewPlan, String> {
    let senders: BTreeSet<PublicKey> = vcs.iter().map(|v| v.from).collect();
    if senders.len() != vcs.len() {
        return Err("V-set holds two view-changes from one validator".into());
    }
    if vcs.len() < committee.quorum() {
        return Err(format!("V-set has {} view-changes, a quorum is {}", vcs.len(), committee.quorum()));
    }
    if let Some(vc) = vcs.iter().find(|vc| vc.view != view) {
        return Err(format!("view-change from {} is for view {}, not {view}", vc.from, vc.view));
    }
    let checkpoint = vcs.iter().map(|v| &v.checkpoint).max_by_key(|c| c.height).expect("quorum is non-empty").clone();
    // Per height, the certificate of the highest view: with signed certificates two different
    // digests cannot both prepare in one view, so the highest view is the only candidate.
    let mut best: BTreeMap<u64, &PreparedProof> = BTreeMap::new();
    for p in vcs.iter().flat_map(|v| &v.prepared).filter(|p| p.height() > checkpoint.height) {
        match best.get(&p.height()) {
            Some(b) if b.view >= p.view => {}
            _ => {
                best.insert(p.height(), p);
            }
        }
    }
    let max_s = best.keys().next_back().copied().unwrap_or(checkpoint.height);
    let primary = committee.get((view % committee.n() as u64) as usize);
    let mut batches = Vec::new();
    for h in checkpoint.height + 1..=max_s {
        match best.get(&h) {
            None => batches.push(Batch::null(h, timestamp_ms, primary)),
            Some(p) => {
                let d = proof_digest(chain_id, p);
                let attached = vcs
                    .iter()
                    .flat_map(|v| &v.prepared)
                    .find(|q| q.height() == h && q.txs.is_some() && proof_digest(chain_id, q) == d)
                    .and_then(|q| q.txs.clone());
                let txs = match attached.or_else(|| extra_body(&d)) {
                    Some(t) => t,
                    None if p.header.tx_count == 0 => Vec::new(),
                    None => return Err(format!("no body for the batch chosen at height {h}")),
                };
                batches.push(Batch { header: p.header, txs });
            }
        }
    }
    Ok(NewViewPlan { checkpoint, batches })
}

impl NewView<VerifiedTx> {
    /// Signs a NEW-VIEW for `plan`, which the caller computed from `vcs` with [`compute_plan`].
    pub fn sign(
        chain_id: &str,
        key: &Keypair,
        view: u64,
        timestamp_ms: u64,
        vcs: &[ViewChange],
        plan: &NewViewPlan,
    ) -> Self {
        let view_changes: Vec<ViewChange> = vcs.iter().map(|v| v.without_bodies()).collect();
        let signature = key.sign(&new_view_bytes(chain_id, view, timestamp_ms, &view_changes));
        let pre_prepare_signatures = plan
            .batches
            .iter()
            .map(|b| key.sign(&pre_prepare_bytes(chain_id, view, b.header.height, &b.digest(chain_id))))
            .collect();
        let bodies = plan.batches.iter().filter(|b| !b.txs.is_empty()).cloned().collect();
        NewView { view, timestamp_ms, view_changes, bodies, pre_prepare_signatures, from: key.public(), signature }
    }

    /// Recomputes the O-set from the (verified) V-set and the carried bodies.
    pub fn plan(&self, chain_id: &str, committee: &Committee) -> std::result::Result<NewViewPlan, String> {
        let bodies: BTreeMap<Hash, &Batch> = self.bodies.iter().map(|b| (b.digest(chain_id), b)).collect();
        compute_plan(chain_id, committee, self.view, self.timestamp_ms, &self.view_changes, &|d| {
            bodies.get(d).map(|b| b.txs.clone())
        })
    }
}

impl<T: TxLike> NewView<T> {
    pub(crate) fn encode_body(&self, w: &mut Writer) {
        w.sig(&self.signature).u64(self.timestamp_ms).u16(self.view_changes.len() as u16);
        for vc in &self.view_changes {
            w.bytes32(&Message::ViewChange(vc.clone()).encode());
        }
        w.u32(self.bodies.len() as u32);
        for b in &self.bodies {
            b.encode(w);
        }
        w.u32(self.pre_prepare_signatures.len() as u32);
        for s in &self.pre_prepare_signatures {
            w.sig(s);
        }
    }
}

impl NewView<Transaction> {
    pub(crate) fn decode_body(p: &Peek, r: &mut Reader<'_>) -> Result<Self> {
        let signature = r.sig()?;
        let timestamp_ms = r.u64()?;
        let n = r.u16()? as usize;
        let mut view_changes = Vec::new();
        for _ in 0..n {
            let bytes = r.bytes32()?;
            match Message::decode(bytes, usize::MAX)? {
                Message::ViewChange(vc) => view_changes.push(vc),
                other => {
                    return Err(ConsensusError::Decode(format!("new-view embeds a {} message", other.kind().name())))
                }
            }
        }
        let nb = r.u32()? as usize;
        let mut bodies = Vec::new();
        for _ in 0..nb {
            bodies.push(Batch::decode(r)?);
        }
        let ns = r.u32()? as usize;
        let mut pre_prepare_signatures = Vec::new();
        for _ in 0..ns {
            pre_prepare_signatures.push(r.sig()?);
        }
        Ok(NewView {
            view: p.view,
            timestamp_ms,
            view_changes,
            bodies,
            pre_prepare_signatures,
            from: p.from,
            signature,
        })
    }

    /// Checks the sender is the view's primary and signed, verifies every embedded VIEW-CHANGE
    /// and body, recomputes the O-set and checks one PRE-PREPARE signature per planned height.
    pub fn verify(self, ctx: &VerifyContext) -> Result<NewView<VerifiedTx>> {
        check_member(ctx, Kind::NewView, &self.from)?;
        let primary = ctx.primary(self.view);
        if self.from != primary {
            return Err(ConsensusError::NotPrimary {
                kind: "new-view",
                view: self.view,
                expected: primary,
                got: self.from,
            });
        }
        check_sig(
            Kind::NewView,
            &self.from,
            &new_view_bytes(&ctx.chain_id, self.view, self.timestamp_ms, &self.view_changes),
            &self.signature,
        )?;
        let bad = |reason: String| ConsensusError::BadNewView { view: self.view, reason };
        if self.view_changes.len() > ctx.committee.n() {
            return Err(bad(format!("{} view-changes for {} validators", self.view_changes.len(), ctx.committee.n())));
        }
        let mut vcs = Vec::with_capacity(self.view_changes.len());
        for vc in self.view_changes {
            vcs.push(vc.verify(ctx)?);
        }
        let mut bodies = Vec::with_capacity(self.bodies.len());
        for b in self.bodies {
            bodies.push(b.verify(ctx)?);
        }
        let nv = NewView {
            view: self.view,
            timestamp_ms: self.timestamp_ms,
            view_changes: vcs,
            bodies,
            pre_prepare_signatures: self.pre_prepare_signatures,
            from: self.from,
            signature: self.signature,
        };
        let plan = nv.plan(&ctx.chain_id, &ctx.committee).map_err(bad)?;
        if plan.batches.len() != nv.pre_prepare_signatures.len() {
            return Err(bad(format!(
                "{} pre-prepare signatures for {} planned heights",
                nv.pre_prepare_signatures.len(),
                plan.batches.len()
            )));
        }
        let msgs: Vec<Vec<u8>> = plan
            .batches
            .iter()
            .map(|b| pre_prepare_bytes(&ctx.chain_id, nv.view, b.header.height, &b.digest(&ctx.chain_id)))
            .collect();
        let checks: Vec<SigCheck> = msgs
            .iter()
            .zip(&nv.pre_prepare_signatures)
            .map(|(m, s)| SigCheck { key: &primary, msg: m, sig: s })
            .collect();
        if verify_batch(&checks).iter().any(|r| r.is_err()) {
            return Err(bad("a re-proposal's pre-prepare signature does not match the recomputed O-set".into()));
        }
        Ok(nv)
    }
}
