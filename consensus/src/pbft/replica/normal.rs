//! The normal case (§4.2): PRE-PREPARE, PREPARE and COMMIT, prepared and committed certificates,
//! and handing committed batches to the node in height order.

use super::*;

impl Replica {
    // ------------------------------------------------------------------ normal case (§4.2)

    /// Drops a normal-case message that is not for the current view, or outside the watermarks.
    pub(super) fn admit_normal(&mut self, view: u64, height: u64) -> bool {
        if view < self.view {
            self.drop_msg(ConsensusError::StaleView { view, current: self.view });
            return false;
        }
        if view > self.view.saturating_add(self.cfg.max_views_ahead) {
            self.drop_msg(ConsensusError::FarFutureView {
                view,
                current: self.view,
                max_ahead: self.cfg.max_views_ahead,
            });
            return false;
        }
        if view > self.view {
            // A message of a view this replica has not entered: the sender re-sends it.
            self.drop_msg(ConsensusError::StaleView { view, current: self.view });
            return false;
        }
        if self.mode == Mode::ViewChange {
            self.drop_msg(ConsensusError::ViewChangeInProgress { view });
            return false;
        }
        if height <= self.stable.height || height > self.high_watermark() {
            self.drop_msg(ConsensusError::OutsideWatermarks {
                height,
                low: self.stable.height,
                high: self.high_watermark(),
            });
            return false;
        }
        true
    }

    pub(super) fn on_pre_prepare(&mut self, pp: PrePrepare) {
        let h = pp.height();
        if !self.admit_normal(pp.view, h) {
            return;
        }
        if pp.from != self.primary_of(pp.view) {
            // Verification already checks this; a replica never trusts that it ran.
            self.drop_msg(ConsensusError::NotPrimary {
                kind: "pre-prepare",
                view: pp.view,
                expected: self.primary_of(pp.view),
                got: pp.from,
            });
            return;
        }
        if pp.from == self.me {
            return;
        }
        let d = pp.batch.digest(&self.ctx.chain_id);
        if self.committed_digests.get(&h).is_some_and(|c| *c != d) {
            // This height is already final here with another batch: never help a second one.
            self.drop_msg(ConsensusError::ConflictingPrePrepare { view: pp.view, height: h });
            return;
        }
        let max_sets = self.cfg.slot_max_vote_sets;
        let slot = self.log.entry(h).or_default();
        if let Some(a) = &slot.accepted {
            if a.view == pp.view {
                if a.digest != d {
                    self.drop_msg(ConsensusError::ConflictingPrePrepare { view: pp.view, height: h });
                }
                return;
            }
        }
        // An observer keeps the batch (the committee may certify it, and a certificate needs the
        // body to commit) but never votes below its promise: it sends no PREPARE.
        let observer = self.is_observer();
        let my_prepare = if observer {
            None
        } else {
            match self.safety.prepare(pp.view, h, d) {
                Ok(p) => {
                    self.dirty = true;
                    Some(p)
                }
                Err(e) => {
                    self.drop_msg(e);
                    return;
                }
            }
        };
        let slot = self.log.entry(h).or_default();
        slot.accepted =
            Some(Accepted { view: pp.view, digest: d, header: pp.batch.header, primary_signature: pp.signature });
        if slot.bodies.len() >= max_sets {
            let evict = *slot.bodies.keys().next().expect("non-empty");
            slot.bodies.remove(&evict);
        }
        slot.bodies.insert(d, pp.batch);
        self.note_pre_prepare(h);
        if let Some(prepare) = my_prepare {
            let slot = self.log.get_mut(&h).expect("slot exists");
            insert_vote(&mut slot.prepares, (pp.view, d), self.me, prepare.signature, max_sets);
            slot.my_prepare = Some(prepare.clone());
            self.broadcast(Message::Prepare(prepare));
            self.check_prepared(h);
        }
        self.check_committed(h);
    }

    /// A PRE-PREPARE of the current view for a new height is progress of its primary: the request
    /// timer restarts. Only within `max_in_flight` heights of what this replica saw certified,
    /// which an honest primary never exceeds, so a faulty primary proposing batches that never
    /// commit postpones its suspicion by at most `max_in_flight` timeouts.
    pub(super) fn note_pre_prepare(&mut self, h: u64) {
        let certified = self.view_certified_height.max(self.committed_height);
        if h > self.view_pre_prepared_height && h <= certified.saturating_add(self.cfg.max_in_flight) {
            self.view_pre_prepared_height = h;
            self.note_primary_progress();
        }
    }

    /// The primary showed progress now; the request timer restarts (see `progress_since_tick`).
    pub(super) fn note_primary_progress(&mut self) {
        self.primary_progress_ms = self.now_ms;
        self.progress_since_tick = true;
    }

    pub(super) fn on_prepare(&mut self, p: Prepare) {
        if !self.admit_normal(p.view, p.height) {
            return;
        }
        if p.from == self.primary_of(p.view) {
            // The primary's vote is its PRE-PREPARE; a PREPARE from it does not count (§4.2).
            return;
        }
        let max_sets = self.cfg.slot_max_vote_sets;
        let slot = self.log.entry(p.height).or_default();
        insert_vote(&mut slot.prepares, (p.view, p.digest), p.from, p.signature, max_sets);
        self.check_prepared(p.height);
    }

    /// Prepared (§4.2): the accepted PRE-PREPARE plus 2f matching PREPAREs from distinct
    /// backups. The replica then records the certificate and sends its COMMIT.
    pub(super) fn check_prepared(&mut self, h: u64) {
        let Some(slot) = self.log.get(&h) else { return };
        let Some(a) = slot.accepted.clone() else { return };
        if a.view != self.view
            || self.mode != Mode::Normal
            || self.is_observer()
            || slot.my_commit.as_ref().is_some_and(|c| c.view == a.view)
        {
            return;
        }
        let primary = self.primary_of(a.view);
        let need = self.quorum() - 1;
        let Some(votes) = slot.prepares.get(&(a.view, a.digest)) else { return };
        let prepares: Vec<ValidatorSignature> = votes
            .iter()
            .filter(|(k, _)| **k != primary)
            .take(need)
            .map(|(k, s)| ValidatorSignature { validator: *k, signature: *s })
            .collect();
        if prepares.len() < need {
            return;
        }
        let body = slot.bodies.get(&a.digest).map(|b| b.txs.clone());
        let proof = PreparedProof {
            view: a.view,
            header: a.header,
            primary_signature: a.primary_signature,
            prepares,
            txs: body,
        };
        let commit = match self.safety.commit(proof, a.digest) {
            Ok(c) => c,
            Err(e) => {
                self.drop_msg(e);
                return;
            }
        };
        self.dirty = true;
        let (max_sets, quorum) = (self.cfg.slot_max_vote_sets, self.quorum());
        let slot = self.log.get_mut(&h).expect("slot exists");
        insert_vote(&mut slot.commits, (a.view, a.digest), self.me, commit.signature, max_sets);
        let certified = slot.commits[&(a.view, a.digest)].len() >= quorum;
        slot.my_commit = Some(commit.clone());
        self.broadcast(Message::Commit(commit));
        if certified {
            self.note_certificate(a.view, h);
        }
        self.check_committed(h);
    }

    pub(super) fn on_commit(&mut self, c: Commit) {
        // COMMITs of any recent view are kept: 2f+1 of them are a certificate on their own, which
        // lets a replica that missed a view's PREPAREs (or is still changing view) commit.
        if c.view > self.view.saturating_add(self.cfg.max_views_ahead) {
            self.drop_msg(ConsensusError::FarFutureView {
                view: c.view,
                current: self.view,
                max_ahead: self.cfg.max_views_ahead,
            });
            return;
        }
        if c.height <= self.stable.height || c.height > self.high_watermark() {
            self.drop_msg(ConsensusError::OutsideWatermarks {
                height: c.height,
                low: self.stable.height,
                high: self.high_watermark(),
            });
            return;
        }
        let (max_sets, quorum) = (self.cfg.slot_max_vote_sets, self.quorum());
        let slot = self.log.entry(c.height).or_default();
        insert_vote(&mut slot.commits, (c.view, c.digest), c.from, c.signature, max_sets);
        if slot.commits.get(&(c.view, c.digest)).is_some_and(|v| v.len() >= quorum) {
            self.note_certificate(c.view, c.height);
        }
        self.check_committed(c.height);
    }

    /// A commit certificate (2f+1 COMMITs, or a fetched certified block) for `view` at height `h`,
    /// seen before the height is committed here. Certificates show where the committee is:
    /// - in this replica's view, the primary makes progress: the request timer restarts. A backup
    ///   behind on its own work (bodies, execution) commits late, but sees the certificates, so
    ///   it does not suspect a primary that the others follow (§4.4 restarts the timer when a
    ///   request executes; here the committee's execution is what counts).
    /// - in a lower view, while this replica waits for a view change that at most f validators
    ///   (itself included) asked for, at a height above its own and above any it had seen
    ///   certified when it asked: the committee is still committing there, and this replica
    ///   rejoins that view as a non-voting observer. (f+1 VIEW-CHANGEs would make every other
    ///   replica join the view change, so the replica waits for it instead.)
    /// - in a higher view: 2f+1 validators, f+1 of them honest, entered it. This replica follows
    ///   it (as an observer below its promise) or asks for it with a VIEW-CHANGE, which the
    ///   committee answers with that view's NEW-VIEW.
    pub(super) fn note_certificate(&mut self, view: u64, h: u64) {
        let news = h > self.view_change_certified_mark.max(self.committed_height);
        self.highest_certified_height = self.highest_certified_height.max(h);
        if view == self.view {
            if self.mode == Mode::Normal && h > self.view_certified_height {
                self.view_certified_height = h;
                self.note_primary_progress();
            }
        } else if view < self.view {
            if news && self.may_rejoin(view) {
                self.counters.rejoins += 1;
                self.observe(view);
                self.view_certified_height = h;
            }
        } else if self.is_observer() && view < self.safety.view {
            self.observe(view);
            self.view_certified_height = h;
        } else {
            self.ask_for_view(view);
        }
    }

    /// True when this replica, changing view, may rejoin the lower `view` as an observer: it was not
    /// in a later view before, and at most f validators (itself included) asked for its view or
    /// above. f+1 would make every other replica join the view change, so it waits for that.
    pub(super) fn may_rejoin(&self, view: u64) -> bool {
        self.mode == Mode::ViewChange
            && view < self.view
            && view >= self.last_normal_view
            && self.view_changes_at_or_above(self.view) < self.ctx.committee.weak_quorum()
    }

    /// True when the committee has shown this replica that it is ahead of it: the height after
    /// its committed one is certified (it waits for the body, or for its fetch), or its stable
    /// checkpoint is above its committed height (2f+1 validators executed past it; the slots up
    /// to the checkpoint are collected, so it can only fetch those blocks). Either way its catch-up
    /// is bounded (f+1 honest validators hold the blocks), and it must not take its own lag for
    /// a faulty primary: a CPU-starved backup did, in every burst (docs/performance.md, ninth round).
    pub(super) fn behind_the_committee(&self) -> bool {
        self.next_height_certified() || self.stable.height > self.committed_height
    }

    /// True when 2f+1 COMMITs certify the height after this replica's committed height.
    pub(super) fn next_height_certified(&self) -> bool {
        let quorum = self.quorum();
        self.log.get(&(self.committed_height + 1)).is_some_and(|s| s.commits.values().any(|v| v.len() >= quorum))
    }

    /// Committed-local (§4.2): 2f+1 COMMITs from distinct validators for one (view, digest),
    /// and the batch's body. The COMMITs are the protocol §6 certificate.
    pub(super) fn check_committed(&mut self, h: u64) {
        let quorum = self.quorum();
        let Some(slot) = self.log.get_mut(&h) else { return };
        if slot.committed.is_some() {
            return;
        }
        let Some(((view, digest), votes)) = slot.commits.iter().find(|(_, v)| v.len() >= quorum) else { return };
        if !slot.bodies.contains_key(digest) {
            // Certified but the body is missing: the retransmission timer fetches the block.
            return;
        }
        let mut sigs: Vec<ValidatorSignature> =
            votes.iter().map(|(k, s)| ValidatorSignature { validator: *k, signature: *s }).collect();
        let committee = &self.ctx.committee;
        sigs.sort_by_key(|s| committee.index_of(&s.validator));
        sigs.truncate(quorum);
        let cert =
            Certificate::Pbft(PbftCertificate { view: *view, height: h, batch_digest: *digest, signatures: sigs });
        slot.committed = Some((*digest, cert));
        self.try_execute();
    }

    /// Hands committed batches to the node in height order, with no gaps.
    pub(super) fn try_execute(&mut self) {
        loop {
            let h = self.committed_height + 1;
            let Some(slot) = self.log.get(&h) else { return };
            let Some((digest, cert)) = slot.committed.clone() else { return };
            let batch = slot.bodies.get(&digest).cloned().expect("committed slots hold their body");
            self.emit_commit(CommittedBatch { header: batch.header, txs: batch.txs, certificate: cert });
        }
    }

    pub(super) fn emit_commit(&mut self, b: CommittedBatch) {
        let h = b.header.height;
        assert_eq!(h, self.committed_height + 1, "commits are handed over in height order without gaps");
        let d = b.header.digest(&self.ctx.chain_id);
        if let Some(prev) = self.committed_digests.get(&h) {
            assert_eq!(*prev, d, "agreement violated: height {h} committed twice with different digests");
        }
        assert_eq!(b.certificate.batch_digest(), d, "a certificate names the batch it certifies");
        self.committed_digests.insert(h, d);
        self.committed_height = h;
        self.highest_certified_height = self.highest_certified_height.max(h);
        self.tip_certificate = Some(b.certificate.clone());
        for tx in &b.txs {
            self.pool.remove(&tx.id());
        }
        if self.mode == Mode::Normal {
            // Progress in this view resets the view-change backoff (§4.5.2).
            self.backoff = 0;
        }
        let cert_view = match &b.certificate {
            Certificate::Pbft(c) => Some(c.view),
            _ => None,
        };
        self.out.push(Action::Commit(b));
        // Catching up on a lower view's batches above the height it had when it asked shows the
        // committee ahead in that view (also once the committee has gone idle, when no new
        // certificate will come).
        if let Some(v) = cert_view.filter(|v| h > self.view_change_committed_mark && self.may_rejoin(*v)) {
            self.counters.rejoins += 1;
            self.observe(v);
        }
    }
}
