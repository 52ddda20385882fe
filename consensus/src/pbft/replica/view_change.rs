//! View changes (§4.4): VIEW-CHANGE with prepared proofs, NEW-VIEW re-proposals, entering a new
//! view, and the lone replica that rejoins the committee's view as an observer.

use super::*;

impl Replica {
    // ------------------------------------------------------------------ view change (§4.4)

    /// This replica's VIEW-CHANGE for `view`: its stable checkpoint and every prepared certificate
    /// above it. Bodies go only with the certificates above its executed height: a batch it
    /// executed is committed, so the new primary either holds it or fetches the certified block
    /// (see `try_new_view`); sending the whole window's bodies made VIEW-CHANGEs tens of MB under
    /// load and every receiver re-verified them.
    pub(super) fn build_view_change(&self, view: u64) -> ViewChange {
        let prepared: Vec<PreparedProof> = self
            .safety
            .slots
            .range(self.stable.height + 1..)
            .filter_map(|(h, s)| {
                let mut p = s.prepared.clone()?;
                if *h <= self.executed_height {
                    p.txs = None;
                } else if p.txs.is_none() {
                    let d = p.header.digest(&self.ctx.chain_id);
                    p.txs = self.log.get(h).and_then(|slot| slot.bodies.get(&d).map(|b| b.txs.clone()));
                }
                Some(p)
            })
            .collect();
        ViewChange::sign(&self.ctx.chain_id, self.safety.key(), view, self.stable.clone(), prepared)
    }

    /// Resets what this replica measures per view, on entering `view` in `mode`.
    pub(super) fn begin_view(&mut self, view: u64, mode: Mode) {
        self.view = view;
        self.mode = mode;
        self.view_started_ms = self.now_ms;
        // The view began between two ticks: its primary's time starts at the later one.
        self.note_primary_progress();
        self.view_pre_prepared_height = 0;
        self.view_certified_height = 0;
        self.vc_quorum_since_ms = None;
        self.new_view = None;
        if mode == Mode::Normal {
            self.last_normal_view = view;
        }
    }

    pub(super) fn start_view_change(&mut self, view: u64) {
        if view <= self.safety.view {
            return;
        }
        self.safety.start_view_change(view).expect("view strictly increases");
        self.dirty = true;
        self.counters.view_changes_started += 1;
        self.send_view_change(view);
    }

    /// Enters view-change mode for `view` (the record already says so) and multicasts this
    /// replica's VIEW-CHANGE for it.
    pub(super) fn send_view_change(&mut self, view: u64) {
        self.begin_view(view, Mode::ViewChange);
        self.view_change_certified_mark = self.highest_certified_height;
        self.view_change_committed_mark = self.committed_height;
        self.pool.unpropose_all();
        for slot in self.log.values_mut() {
            slot.my_pre_prepare = None;
            slot.my_prepare = None;
        }
        let vc = self.build_view_change(view);
        self.my_view_change = Some(vc.clone());
        self.view_changes.insert(self.me, vc.clone());
        self.broadcast(Message::ViewChange(vc));
        self.note_view_change_quorum();
        self.try_new_view();
    }

    /// Moves to `view`, which the committee is known to be in or moving to: by a VIEW-CHANGE, or,
    /// for the view this replica already promised (an observer), by resuming that view change.
    pub(super) fn ask_for_view(&mut self, view: u64) {
        if view > self.safety.view {
            self.start_view_change(view);
        } else if view == self.safety.view && self.is_observer() {
            self.resume_view_change();
        }
    }

    /// An observer goes back to waiting for the NEW-VIEW of its promised view and multicasts a
    /// fresh VIEW-CHANGE for it. The fresh one is as truthful as the first: an observer prepares
    /// nothing, so its prepared certificates are the same (minus those a newer stable checkpoint
    /// covers).
    pub(super) fn resume_view_change(&mut self) {
        self.safety.stop_observing();
        self.dirty = true;
        self.send_view_change(self.safety.view);
    }

    /// Follows `view`, below the promise, as a non-voting observer (see `note_certificate`): it
    /// accepts and stores the view's PRE-PREPAREs, PREPAREs and COMMITs, commits on 2f+1 COMMITs
    /// plus the body, and signs nothing. Its VIEW-CHANGE for the promised view stays truthful, so
    /// the committee may still use it at its next view change.
    pub(super) fn observe(&mut self, view: u64) {
        self.safety.observe(view).expect("an observed view lies below the promise of an outstanding view change");
        self.dirty = true;
        self.begin_view(view, Mode::Normal);
        self.view_changes.retain(|_, v| v.view > view);
        for slot in self.log.values_mut() {
            slot.my_pre_prepare = None;
            slot.my_prepare = None;
        }
    }

    /// VIEW-CHANGEs held for `view` or above, this replica's own included.
    pub(super) fn view_changes_at_or_above(&self, view: u64) -> usize {
        self.view_changes.values().filter(|v| v.view >= view).count()
    }

    /// Starts the escalation timer of §4.5.2 once this replica, changing view, holds 2f+1
    /// VIEW-CHANGEs for its view (or above: a sender that moved further has left this view too).
    pub(super) fn note_view_change_quorum(&mut self) {
        if self.mode == Mode::ViewChange
            && self.vc_quorum_since_ms.is_none()
            && self.view_changes_at_or_above(self.view) >= self.quorum()
        {
            self.vc_quorum_since_ms = Some(self.now_ms);
        }
    }

    /// Hands the NEW-VIEW of the current view to a replica that asked for this view or a lower
    /// one: it missed the NEW-VIEW, or a whole view change (for instance it was cut off, or
    /// waited alone for a view the committee has since passed), and a replica alone does not
    /// escalate to find the committee. At most once per retransmission interval per asker, which
    /// re-sends its VIEW-CHANGE at that pace: a NEW-VIEW can be large.
    pub(super) fn answer_with_new_view(&mut self, to: PublicKey) {
        let Some(nv) = &self.new_view else { return };
        if to == self.me
            || self
                .new_view_answered_ms
                .get(&to)
                .is_some_and(|t| self.now_ms < t.saturating_add(self.cfg.retransmit_interval_ms))
        {
            return;
        }
        let msg = Message::NewView(nv.clone());
        self.new_view_answered_ms.insert(to, self.now_ms);
        self.out.push(Action::Send { to, msg });
    }

    pub(super) fn on_view_change(&mut self, vc: ViewChange) {
        if vc.view > self.view.saturating_add(self.cfg.max_views_ahead) {
            self.drop_msg(ConsensusError::FarFutureView {
                view: vc.view,
                current: self.view,
                max_ahead: self.cfg.max_views_ahead,
            });
            return;
        }
        if vc.view > self.view {
            self.help_laggard(&vc);
        }
        if vc.view <= self.view && self.mode == Mode::Normal {
            // A replica still asking for this view, or a lower one, missed the NEW-VIEW that
            // started this view: it gets it again.
            self.answer_with_new_view(vc.from);
            if vc.view < self.view {
                self.drop_msg(ConsensusError::StaleView { view: vc.view, current: self.view });
            }
            return;
        }
        if vc.view < self.view {
            self.drop_msg(ConsensusError::StaleView { view: vc.view, current: self.view });
            return;
        }
        match self.view_changes.get(&vc.from) {
            Some(old) if old.view >= vc.view => return,
            _ => {
                self.view_changes.insert(vc.from, vc);
            }
        }
        // Joining a higher view on f+1 VIEW-CHANGEs (§4.5.2): at least one is honest, so this
        // replica moves to the highest view that f+1 others have asked for. An observer's own
        // VIEW-CHANGE (for its promised view, above the view it follows) is not one of them, and
        // an observer can only go back to voting at or above its promise.
        let (current, me) = (self.view, self.me);
        let mut higher: Vec<u64> =
            self.view_changes.iter().filter(|(k, v)| **k != me && v.view > current).map(|(_, v)| v.view).collect();
        higher.sort_unstable_by(|a, b| b.cmp(a));
        let f1 = self.ctx.committee.weak_quorum();
        if higher.len() >= f1 {
            let target = higher[f1 - 1];
            if target >= self.safety.view && target > current {
                self.ask_for_view(target);
                return;
            }
        }
        self.note_view_change_quorum();
        self.try_new_view();
    }

    /// A replica asking alone for a view above this one may simply be behind: it missed the last
    /// COMMITs before the load stopped, and no checkpoint will come. If this replica's tip is above
    /// the asker's checkpoint, it sends the COMMITs of its tip certificate; with them the asker
    /// sees a certified height above its own and fetches the blocks. One answer per received
    /// VIEW-CHANGE, which the asker re-sends once per retransmission interval.
    pub(super) fn help_laggard(&mut self, vc: &ViewChange) {
        let Some(Certificate::Pbft(cert)) = &self.tip_certificate else { return };
        if cert.height <= vc.checkpoint.height || vc.from == self.me {
            return;
        }
        for s in &cert.signatures {
            let commit = Commit {
                view: cert.view,
                height: cert.height,
                digest: cert.batch_digest,
                from: s.validator,
                signature: s.signature,
            };
            self.out.push(Action::Send { to: vc.from, msg: Message::Commit(commit) });
        }
    }

    /// The new primary, once it holds 2f+1 VIEW-CHANGEs for its view (its own among them) and
    /// the body of every batch the O-set chooses, sends the NEW-VIEW and enters the view.
    pub(super) fn try_new_view(&mut self) {
        if self.mode != Mode::ViewChange || !self.is_primary() || !self.view_changes.contains_key(&self.me) {
            return;
        }
        let vcs: Vec<ViewChange> = self.view_changes.values().filter(|v| v.view == self.view).cloned().collect();
        if vcs.len() < self.quorum() {
            return;
        }
        let log = &self.log;
        let lookup = |d: &Hash| log.values().find_map(|s| s.bodies.get(d).map(|b| b.txs.clone()));
        let plan = match compute_plan(&self.ctx.chain_id, &self.ctx.committee, self.view, self.now_ms, &vcs, &lookup) {
            Ok(p) => p,
            Err(_) => {
                // A chosen body is missing. VIEW-CHANGEs leave out the bodies their senders
                // executed, so the batch is committed at those senders: fetch the certified
                // blocks from them (the plan is retried when they arrive). Otherwise wait for
                // more VIEW-CHANGEs, one of which may carry the body.
                self.fetch_missing_bodies(&vcs);
                return;
            }
        };
        let nv = NewView::sign(&self.ctx.chain_id, self.safety.key(), self.view, self.now_ms, &vcs, &plan);
        self.broadcast(Message::NewView(nv.clone()));
        self.enter_new_view(nv, plan);
    }

    /// Starts fetching certified blocks up to the highest prepared certificate in `vcs` whose
    /// body neither a VIEW-CHANGE nor this replica's log holds, from the senders that reported it.
    pub(super) fn fetch_missing_bodies(&mut self, vcs: &[ViewChange]) {
        let chain_id = &self.ctx.chain_id;
        let attached: BTreeSet<Hash> = vcs
            .iter()
            .flat_map(|v| &v.prepared)
            .filter(|p| p.txs.is_some())
            .map(|p| p.header.digest(chain_id))
            .collect();
        let missing = vcs
            .iter()
            .flat_map(|v| &v.prepared)
            .filter(|p| p.height() > self.committed_height && p.header.tx_count > 0)
            .filter(|p| {
                let d = p.header.digest(chain_id);
                !attached.contains(&d) && self.log.get(&p.height()).is_none_or(|s| !s.bodies.contains_key(&d))
            })
            .map(|p| p.height())
            .max();
        let Some(target) = missing else { return };
        let me = self.me;
        let peers: Vec<PublicKey> = vcs
            .iter()
            .filter(|v| v.from != me && v.prepared.iter().any(|p| p.height() == target))
            .map(|v| v.from)
            .collect();
        self.start_sync(target, peers);
    }

    pub(super) fn on_new_view(&mut self, nv: NewView) {
        if nv.view < self.view || (nv.view == self.view && self.mode == Mode::Normal) {
            self.drop_msg(ConsensusError::StaleView { view: nv.view, current: self.view });
            return;
        }
        if nv.view > self.view.saturating_add(self.cfg.max_views_ahead) {
            self.drop_msg(ConsensusError::FarFutureView {
                view: nv.view,
                current: self.view,
                max_ahead: self.cfg.max_views_ahead,
            });
            return;
        }
        let plan = match nv.plan(&self.ctx.chain_id, &self.ctx.committee) {
            Ok(p) => p,
            Err(reason) => {
                self.drop_msg(ConsensusError::BadNewView { view: nv.view, reason });
                return;
            }
        };
        self.enter_new_view(nv, plan);
    }

    /// Enters `view` with the O-set `plan`: every re-proposed or empty batch is pre-prepared in
    /// the new view, and the backups prepare it as if the PRE-PREPARE had just arrived.
    ///
    /// A view below this replica's promise (an observer learning of the committee's next view
    /// before it reaches the promise) is followed as an observer: the O-set is stored, not
    /// prepared.
    pub(super) fn enter_new_view(&mut self, nv: NewView, plan: NewViewPlan) {
        let view = nv.view;
        let pre_prepare_signatures = nv.pre_prepare_signatures.clone();
        assert_eq!(plan.batches.len(), pre_prepare_signatures.len(), "one pre-prepare signature per O-set entry");
        let voting = view >= self.safety.view;
        if voting {
            self.safety.enter_view(view).expect("NEW-VIEW views never go below the record");
            self.my_view_change = None;
        } else {
            self.safety.observe(view).expect("an observer follows views below its promise");
        }
        self.dirty = true;
        self.begin_view(view, Mode::Normal);
        self.new_view = Some(nv);
        self.counters.new_views_accepted += 1;
        self.view_changes.retain(|_, v| v.view > view);
        if plan.checkpoint.height > self.stable.height {
            self.stabilize(plan.checkpoint.clone());
        }
        for slot in self.log.values_mut() {
            slot.accepted = None;
            slot.my_pre_prepare = None;
            slot.my_prepare = None;
        }
        self.pool.unpropose_all();
        let primary = self.is_primary();
        let max_sets = self.cfg.slot_max_vote_sets;
        let max_planned = plan.batches.last().map_or(0, |b| b.header.height);
        for (batch, sig) in plan.batches.into_iter().zip(&pre_prepare_signatures) {
            let h = batch.header.height;
            if h <= self.stable.height {
                continue;
            }
            let d = batch.digest(&self.ctx.chain_id);
            if let Some(prev) = self.committed_digests.get(&h) {
                assert_eq!(
                    *prev, d,
                    "agreement violated: the new view re-proposes a different batch at committed height {h}"
                );
            }
            for tx in &batch.txs {
                self.pool.mark_proposed(&tx.id());
            }
            let header = batch.header;
            let slot = self.log.entry(h).or_default();
            slot.accepted = Some(Accepted { view, digest: d, header, primary_signature: *sig });
            slot.bodies.insert(d, batch);
            if !voting {
                continue;
            }
            if !primary {
                let prepare = match self.safety.prepare(view, h, d) {
                    Ok(p) => p,
                    Err(e) => {
                        self.drop_msg(e);
                        continue;
                    }
                };
                let slot = self.log.get_mut(&h).expect("slot exists");
                insert_vote(&mut slot.prepares, (view, d), self.me, prepare.signature, max_sets);
                slot.my_prepare = Some(prepare.clone());
                self.broadcast(Message::Prepare(prepare));
            } else if let Err(e) = self.safety.re_propose(view, h, d) {
                self.drop_msg(e);
            }
            self.check_prepared(h);
        }
        self.next_height = max_planned.max(self.stable.height).max(self.committed_height) + 1;
        self.try_propose();
    }
}
