//! The safety rules: one small module that decides whether this replica may sign a vote, and the
//! record of what it signed, which the replica asks the node to persist (`PersistSafety`) before
//! the vote leaves. A replica restarted from this record never signs a PRE-PREPARE, PREPARE or
//! COMMIT that conflicts with one it signed before the crash, never votes in a view it left, and
//! still reports its prepared certificates in VIEW-CHANGEs (Castro & Liskov 2002, §4.4 and §4.5
//! assume exactly this state survives a crash).
//!
//! The record also keeps a replica's *promise*: `view` is the highest view it asked for, and it
//! signs nothing below it, even while it follows a lower view that the rest of the committee is
//! still committing in, as a non-voting observer (`observed_view`; see docs/consensus.md, "The
//! lone replica").

use std::collections::{BTreeMap, BTreeSet};

use ordo_chain::codec::{Reader, Writer};
use ordo_chain::store::{SafetyWrite, StoredSafety};
use ordo_chain::{Hash, Keypair};

use ordo_chain::VerifiedTx;

use super::messages::{
    decode_sigs, decode_txs, encode_sigs, encode_txs, Batch, CheckpointProof, Commit, PrePrepare, Prepare,
    PreparedProof,
};
use crate::error::{ConsensusError, Result};

/// Version 2 added `observed_view`; a version 1 record (no observer state) still loads.
/// Version 3 may name a body stored beside the record (`BODY_APART`) instead of holding it.
const RECORD_VERSION: u8 = 3;

/// How a prepared certificate's body appears in the record: not at all (the store's block holds
/// it, or the replica never had it), inline, or stored beside the record under (height, digest)
/// (see [`Safety::persist`]).
const BODY_NONE: u8 = 0;
const BODY_INLINE: u8 = 1;
const BODY_APART: u8 = 2;

/// What this replica signed for one height.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotRecord {
    /// The (view, digest) it pre-prepared (as primary) or prepared (as backup) last.
    pub prepare: Option<(u64, Hash)>,
    /// The (view, digest) it committed last.
    pub commit: Option<(u64, Hash)>,
    /// Its highest-view prepared certificate, with the batch body: after a crash the replica
    /// must still be able to hand the batch to a new primary, since every other holder of the
    /// body may have crashed too (the certificate alone would block every later NEW-VIEW).
    pub prepared: Option<PreparedProof>,
}

/// The persisted safety record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyRecord {
    /// The highest view this replica entered or asked to move to, its promise: it signs nothing
    /// below it.
    pub view: u64,
    /// True when it sent a VIEW-CHANGE for `view` and has not accepted its NEW-VIEW: it then
    /// signs no PRE-PREPARE, PREPARE or COMMIT at all.
    pub in_view_change: bool,
    /// Some(v), v < `view`, while the replica follows view v as a non-voting observer: it learned
    /// that the committee is still committing in v, which it promised (with its VIEW-CHANGE for
    /// `view`) never to vote in. `in_view_change` stays true: it votes nowhere until a NEW-VIEW
    /// for a view at or above `view`.
    pub observed_view: Option<u64>,
    /// Its last stable checkpoint with proof; heights at or below it are final.
    pub checkpoint: CheckpointProof,
    pub slots: BTreeMap<u64, SlotRecord>,
}

impl SafetyRecord {
    pub fn new(genesis_hash: Hash) -> Self {
        SafetyRecord {
            view: 0,
            in_view_change: false,
            observed_view: None,
            checkpoint: CheckpointProof::genesis(genesis_hash),
            slots: BTreeMap::new(),
        }
    }

    fn check_normal(&self, view: u64) -> Result<()> {
        if view != self.view || self.in_view_change {
            return Err(ConsensusError::SafetyViolation(format!(
                "vote for view {view} while in view {} (view change: {})",
                self.view, self.in_view_change
            )));
        }
        Ok(())
    }

    /// Records a PRE-PREPARE (primary) or PREPARE (backup) for (view, height, digest), or refuses
    /// it if this replica already signed a different digest at this height in this view.
    pub fn vote_prepare(&mut self, view: u64, height: u64, digest: Hash) -> Result<()> {
        self.check_normal(view)?;
        let slot = self.slots.entry(height).or_default();
        match slot.prepare {
            Some((v, d)) if v == view && d != digest => Err(ConsensusError::SafetyViolation(format!(
                "already prepared {d:?} at height {height} in view {view}, refusing {digest:?}"
            ))),
            Some((v, _)) if v > view => {
                Err(ConsensusError::SafetyViolation(format!("prepared height {height} in a later view {v}")))
            }
            _ => {
                slot.prepare = Some((view, digest));
                Ok(())
            }
        }
    }

    /// Records a prepared certificate and the COMMIT it allows, or refuses a conflicting COMMIT.
    pub fn vote_commit(&mut self, proof: PreparedProof, digest: Hash) -> Result<()> {
        let (view, height) = (proof.view, proof.header.height);
        self.check_normal(view)?;
        let slot = self.slots.entry(height).or_default();
        match slot.commit {
            Some((v, d)) if v == view && d != digest => Err(ConsensusError::SafetyViolation(format!(
                "already committed {d:?} at height {height} in view {view}, refusing {digest:?}"
            ))),
            Some((v, _)) if v > view => {
                Err(ConsensusError::SafetyViolation(format!("committed height {height} in a later view {v}")))
            }
            _ => {
                slot.commit = Some((view, digest));
                if slot.prepared.as_ref().is_none_or(|p| p.view <= view) {
                    slot.prepared = Some(proof);
                }
                Ok(())
            }
        }
    }

    /// Moves to a view change for `view`: only ever upwards.
    pub fn start_view_change(&mut self, view: u64) -> Result<()> {
        if view <= self.view {
            return Err(ConsensusError::SafetyViolation(format!("view change to {view} from view {}", self.view)));
        }
        self.view = view;
        self.in_view_change = true;
        self.observed_view = None;
        Ok(())
    }

    /// Follows the lower view `view` as a non-voting observer, keeping the promise: only while a
    /// VIEW-CHANGE for the promised view is outstanding, and only below it.
    pub fn observe(&mut self, view: u64) -> Result<()> {
        if !self.in_view_change || view >= self.view {
            return Err(ConsensusError::SafetyViolation(format!(
                "observing view {view} with promised view {} (view change: {})",
                self.view, self.in_view_change
            )));
        }
        self.observed_view = Some(view);
        Ok(())
    }

    /// Stops observing: the replica waits again for the NEW-VIEW of its promised view.
    pub fn stop_observing(&mut self) {
        self.observed_view = None;
    }

    /// Enters `view` after a valid NEW-VIEW: never below a view already entered or asked for.
    pub fn enter_view(&mut self, view: u64) -> Result<()> {
        if view < self.view {
            return Err(ConsensusError::SafetyViolation(format!("entering view {view} after view {}", self.view)));
        }
        self.view = view;
        self.in_view_change = false;
        self.observed_view = None;
        Ok(())
    }

    /// Adopts a newer stable checkpoint and forgets the heights it covers.
    pub fn advance_checkpoint(&mut self, proof: CheckpointProof) {
        if proof.height > self.checkpoint.height {
            self.slots = self.slots.split_off(&(proof.height + 1));
            self.checkpoint = proof;
        }
    }

    /// Encodes the record with its batch bodies inline. Bodies are written only for heights above
    /// `bodies_above`: the caller passes its executed height, whose blocks the store already holds
    /// (and hands back at a restart, see `Replica::with_bodies_from_store`). The replica persists
    /// the other form, [`Safety::persist`], which stores each body once beside the record.
    pub fn encode(&self, bodies_above: u64) -> Vec<u8> {
        self.encode_with(bodies_above, |w, _, _, txs| {
            w.u8(BODY_INLINE);
            encode_txs(txs, w);
        })
    }

    /// Encodes the record; `body` writes each body above `bodies_above` (its marker included).
    fn encode_with(
        &self,
        bodies_above: u64,
        mut body: impl FnMut(&mut Writer, u64, &PreparedProof, &[VerifiedTx]),
    ) -> Vec<u8> {
        let mut w = Writer::with_capacity(256 + self.slots.len() * 256);
        w.u8(RECORD_VERSION).u64(self.view).u8(self.in_view_change as u8);
        match self.observed_view {
            None => {
                w.u8(0);
            }
            Some(v) => {
                w.u8(1).u64(v);
            }
        }
        self.checkpoint.encode(&mut w);
        w.u32(self.slots.len() as u32);
        for (h, s) in &self.slots {
            w.u64(*h);
            for v in [&s.prepare, &s.commit] {
                match v {
                    None => {
                        w.u8(0);
                    }
                    Some((view, d)) => {
                        w.u8(1).u64(*view).hash(d);
                    }
                }
            }
            match &s.prepared {
                None => {
                    w.u8(0);
                }
                Some(p) => {
                    w.u8(1).u64(p.view);
                    p.header.encode(&mut w);
                    w.sig(&p.primary_signature);
                    encode_sigs(&p.prepares, &mut w);
                    match &p.txs {
                        Some(txs) if *h > bodies_above => body(&mut w, *h, p, txs),
                        _ => {
                            w.u8(BODY_NONE);
                        }
                    }
                }
            }
        }
        w.finish()
    }

    /// Decodes a record with its bodies inline (as [`SafetyRecord::encode`] writes it).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::decode_stored(bytes, &BTreeMap::new())
    }

    /// Decodes a record as stored, taking the bodies it names from `bodies` (by height and
    /// digest, [`StoredSafety::bodies`]). A named body that is missing makes the record corrupt:
    /// the record and its bodies are written in one atomic write.
    pub fn decode_stored(bytes: &[u8], bodies: &BTreeMap<(u64, Hash), Vec<u8>>) -> Result<Self> {
        let corrupt = |e: ordo_chain::ChainError| ConsensusError::CorruptSafetyRecord(e.to_string());
        let mut r = Reader::new(bytes);
        let version = r.u8().map_err(corrupt)?;
        if !(1..=RECORD_VERSION).contains(&version) {
            return Err(ConsensusError::CorruptSafetyRecord(format!("unknown record version {version}")));
        }
        let view = r.u64().map_err(corrupt)?;
        let in_view_change = r.u8().map_err(corrupt)? == 1;
        let observed_view = if version >= 2 && r.u8().map_err(corrupt)? == 1 {
            let v = r.u64().map_err(corrupt)?;
            if v >= view || !in_view_change {
                return Err(ConsensusError::CorruptSafetyRecord(format!(
                    "observed view {v} is not below the promised view {view} of an outstanding view change"
                )));
            }
            Some(v)
        } else {
            None
        };
        let checkpoint =
            CheckpointProof::decode(&mut r).map_err(|e| ConsensusError::CorruptSafetyRecord(e.to_string()))?;
        let n = r.u32().map_err(corrupt)?;
        let mut slots = BTreeMap::new();
        for _ in 0..n {
            let h = r.u64().map_err(corrupt)?;
            let mut votes = [None, None];
            for v in &mut votes {
                if r.u8().map_err(corrupt)? == 1 {
                    *v = Some((r.u64().map_err(corrupt)?, r.hash().map_err(corrupt)?));
                }
            }
            let prepared = if r.u8().map_err(corrupt)? == 1 {
                let view = r.u64().map_err(corrupt)?;
                let header = ordo_chain::BatchHeader::decode(&mut r)
                    .map_err(|e| ConsensusError::CorruptSafetyRecord(e.to_string()))?;
                let primary_signature = r.sig().map_err(corrupt)?;
                let prepares = decode_sigs(&mut r).map_err(|e| ConsensusError::CorruptSafetyRecord(e.to_string()))?;
                let raw = match r.u8().map_err(corrupt)? {
                    BODY_NONE => None,
                    BODY_INLINE => {
                        Some(decode_txs(&mut r).map_err(|e| ConsensusError::CorruptSafetyRecord(e.to_string()))?)
                    }
                    BODY_APART if version >= 3 => {
                        let digest = r.hash().map_err(corrupt)?;
                        let stored = bodies.get(&(h, digest)).ok_or_else(|| {
                            ConsensusError::CorruptSafetyRecord(format!(
                                "the body of height {h} ({digest:?}) is missing"
                            ))
                        })?;
                        let mut b = Reader::new(stored);
                        let txs = decode_txs(&mut b).map_err(|e| ConsensusError::CorruptSafetyRecord(e.to_string()))?;
                        b.finish().map_err(corrupt)?;
                        Some(txs)
                    }
                    other => {
                        return Err(ConsensusError::CorruptSafetyRecord(format!("unknown body marker {other}")));
                    }
                };
                // The record is this node's own storage, written only with verified batches.
                let txs = raw.map(|raw| raw.into_iter().map(VerifiedTx::from_trusted_store).collect());
                Some(PreparedProof { view, header, primary_signature, prepares, txs })
            } else {
                None
            };
            slots.insert(h, SlotRecord { prepare: votes[0], commit: votes[1], prepared });
        }
        r.finish().map_err(corrupt)?;
        Ok(SafetyRecord { view, in_view_change, observed_view, checkpoint, slots })
    }
}

/// The safety record together with the key that signs votes. A vote is checked against the
/// record, recorded and signed in one call, so no code path can sign a PRE-PREPARE, PREPARE or
/// COMMIT the record forbids, or sign one without recording it. The replica holds only this:
/// it reads the record through `Deref`, changes views through the named methods, and signs its
/// other messages (checkpoints, view changes) with [`Safety::key`].
pub struct Safety {
    record: SafetyRecord,
    key: Keypair,
    chain_id: String,
    /// The bodies stored beside the record, by (height, digest).
    stored_bodies: BTreeSet<(u64, Hash)>,
}

impl std::fmt::Debug for Safety {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Safety").field("record", &self.record).field("key", &self.key.public()).finish()
    }
}

impl std::ops::Deref for Safety {
    type Target = SafetyRecord;
    fn deref(&self) -> &SafetyRecord {
        &self.record
    }
}

impl Safety {
    /// A fresh record (nothing stored yet).
    pub fn new(record: SafetyRecord, key: Keypair, chain_id: impl Into<String>) -> Self {
        Self { record, key, chain_id: chain_id.into(), stored_bodies: BTreeSet::new() }
    }

    /// The record as this replica last persisted it (`Store::load_safety`), or a fresh one.
    pub fn restore(
        stored: Option<&StoredSafety>,
        genesis_hash: Hash,
        key: Keypair,
        chain_id: impl Into<String>,
    ) -> Result<Self> {
        let Some(stored) = stored else { return Ok(Self::new(SafetyRecord::new(genesis_hash), key, chain_id)) };
        let record = SafetyRecord::decode_stored(&stored.record, &stored.bodies)?;
        Ok(Self { record, key, chain_id: chain_id.into(), stored_bodies: stored.bodies.keys().copied().collect() })
    }

    /// The write that makes the record durable (`Action::PersistSafety`). Each prepared body above
    /// `executed_height` (the store's blocks hold the rest) is stored once, beside the record,
    /// when it first appears, and deleted once the record no longer names it: under load the
    /// record is rewritten before every vote, and carrying the in-flight batches inline made
    /// every rewrite a megabyte.
    pub fn persist(&mut self, executed_height: u64) -> SafetyWrite {
        let (chain_id, stored) = (&self.chain_id, &self.stored_bodies);
        let mut named = BTreeSet::new();
        let mut put_bodies = Vec::new();
        let record = self.record.encode_with(executed_height, |w, h, p, txs| {
            let digest = p.header.digest(chain_id);
            w.u8(BODY_APART).hash(&digest);
            if !stored.contains(&(h, digest)) {
                let mut body = Writer::with_capacity(4 + txs.iter().map(VerifiedTx::wire_len).sum::<usize>());
                encode_txs(txs, &mut body);
                put_bodies.push(((h, digest), body.finish()));
            }
            named.insert((h, digest));
        });
        let delete_bodies = self.stored_bodies.difference(&named).copied().collect();
        self.stored_bodies = named;
        SafetyWrite { record, put_bodies, delete_bodies }
    }

    /// The key, for the messages that are not votes (CHECKPOINT, VIEW-CHANGE, NEW-VIEW).
    pub fn key(&self) -> &Keypair {
        &self.key
    }

    /// The primary's PRE-PREPARE of `batch` at `view`: checked, recorded, signed.
    pub fn pre_prepare(&mut self, view: u64, batch: Batch<VerifiedTx>) -> Result<PrePrepare> {
        self.record.vote_prepare(view, batch.header.height, batch.header.digest(&self.chain_id))?;
        Ok(PrePrepare::sign(&self.chain_id, &self.key, view, batch))
    }

    /// A backup's PREPARE of (view, height, digest): checked, recorded, signed.
    pub fn prepare(&mut self, view: u64, height: u64, digest: Hash) -> Result<Prepare> {
        self.record.vote_prepare(view, height, digest)?;
        Ok(Prepare::sign(&self.chain_id, &self.key, view, height, digest))
    }

    /// A new primary's re-proposal in its NEW-VIEW: checked and recorded; the NEW-VIEW's own
    /// signature is the vote.
    pub fn re_propose(&mut self, view: u64, height: u64, digest: Hash) -> Result<()> {
        self.record.vote_prepare(view, height, digest)
    }

    /// The COMMIT a prepared certificate allows: checked, recorded with the proof, signed.
    pub fn commit(&mut self, proof: PreparedProof, digest: Hash) -> Result<Commit> {
        let (view, height) = (proof.view, proof.header.height);
        self.record.vote_commit(proof, digest)?;
        Ok(Commit::sign(&self.chain_id, &self.key, view, height, digest))
    }

    pub fn start_view_change(&mut self, view: u64) -> Result<()> {
        self.record.start_view_change(view)
    }

    pub fn observe(&mut self, view: u64) -> Result<()> {
        self.record.observe(view)
    }

    pub fn stop_observing(&mut self) {
        self.record.stop_observing()
    }

    pub fn enter_view(&mut self, view: u64) -> Result<()> {
        self.record.enter_view(view)
    }

    pub fn advance_checkpoint(&mut self, proof: CheckpointProof) {
        self.record.advance_checkpoint(proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vote_is_checked_recorded_and_signed_in_one_call() {
        let key = Keypair::from_seed([7; 32]);
        let mut s = Safety::new(SafetyRecord::new(Hash::ZERO), key.clone(), "c");
        let p = s.prepare(0, 1, Hash([1; 32])).unwrap();
        assert_eq!(p.from, key.public());
        let bytes = super::super::messages::prepare::prepare_bytes("c", 0, 1, &Hash([1; 32]));
        assert!(key.public().verify_strict(&bytes, &p.signature).is_ok(), "the PREPARE is signed by the safety key");
        assert_eq!(s.slots[&1].prepare, Some((0, Hash([1; 32]))), "and recorded");
        // A conflicting vote at the same height and view is refused, and nothing is signed.
        assert!(s.prepare(0, 1, Hash([2; 32])).is_err());
        assert!(s.re_propose(0, 1, Hash([2; 32])).is_err());
        assert_eq!(s.slots[&1].prepare, Some((0, Hash([1; 32]))));
        // After a view change the record refuses votes in the old view.
        s.start_view_change(1).unwrap();
        assert!(s.prepare(0, 2, Hash([3; 32])).is_err());
    }
}
