//! Timers: the view-change timeout with back-off, batch timeouts, and retransmission of this
//! replica's own messages.

use super::*;

impl Replica {
    // ------------------------------------------------------------------ timers

    pub(super) fn on_tick(&mut self) {
        let progressed = std::mem::take(&mut self.progress_since_tick);
        self.try_propose();
        match self.mode {
            Mode::Normal => {
                // A replica holding a transaction not ordered within its timeout suspects the
                // primary (§4.4). The timer restarts whenever the view starts and whenever the
                // primary shows progress (a PRE-PREPARE for a new height, a new height certified
                // in this view): under a backlog the oldest transaction may wait far longer than
                // the timeout while the primary makes steady progress, and a backup behind on its
                // own work must not take its own lag for a faulty primary.
                // A replica behind the committee (see `behind_the_committee`) waits on its own
                // catch-up: its pending transactions may well be in the batches it lacks, and its
                // lag is its own.
                if self.behind_the_committee() {
                    self.primary_progress_ms = self.now_ms;
                }
                if let Some(oldest) = self.pool.oldest_arrival_ms() {
                    let since = oldest.max(self.view_started_ms).max(self.primary_progress_ms);
                    let expired = self.now_ms >= since + self.timeout_ms();
                    if expired && progressed {
                        // Progress came in since the last tick, and the core cannot tell how long
                        // ago: a driver busy between two ticks (a catch-up of 64 blocks on a
                        // starved host took 6 s) stamped it with the older one. Restart the timer
                        // at this tick instead of counting the driver's stall against the primary.
                        // With ticks every few milliseconds this changes nothing else.
                        self.primary_progress_ms = self.now_ms;
                    } else if expired {
                        self.suspicion = Some(format!(
                            "no progress in view {} for {} ms: committed {}, executed {}, \
                             stable {}, high watermark {}, highest pre-prepared in this view {}, highest \
                             certified in this view {} (in any view {}), {} transactions pending (oldest {} ms), \
                             {} messages dropped (last: {})",
                            self.view,
                            self.now_ms - since,
                            self.committed_height,
                            self.executed_height,
                            self.stable.height,
                            self.high_watermark(),
                            self.view_pre_prepared_height,
                            self.view_certified_height,
                            self.highest_certified_height,
                            self.pool.len(),
                            self.now_ms.saturating_sub(oldest),
                            self.counters.messages_dropped,
                            self.last_drop.as_ref().map_or_else(|| "none".to_string(), |e| e.to_string()),
                        ));
                        // An observer never asks for a view below its promise: it goes back to
                        // the view change it promised, so that a committee whose primary failed
                        // (or a committee of observers) gets its VIEW-CHANGE again.
                        self.ask_for_view((self.view + 1).max(self.safety.view));
                    }
                }
            }
            Mode::ViewChange => {
                // §4.5.2: the NEW-VIEW timer starts only once 2f+1 VIEW-CHANGEs for this view are
                // in; when it expires the replica moves on to the next view, waiting twice as
                // long. A replica alone never holds 2f+1, so it never escalates past the view it
                // first asked for: a backup whose own backlog made it suspect a healthy primary
                // stays one view ahead, where a certificate from the committee brings it back.
                if let Some(since) = self.vc_quorum_since_ms {
                    if self.now_ms >= since + self.timeout_ms() {
                        if self.pool.is_empty() {
                            // Nothing waits on this view change: keep waiting without escalating.
                            self.vc_quorum_since_ms = Some(self.now_ms);
                        } else {
                            self.backoff = self.backoff.saturating_add(1);
                            self.start_view_change(self.view + 1);
                        }
                    }
                }
            }
        }
        if self.now_ms >= self.last_retransmit_ms + self.cfg.retransmit_interval_ms {
            self.last_retransmit_ms = self.now_ms;
            self.retransmit();
        }
    }

    /// Re-sends this replica's own messages for sequences still in flight, its VIEW-CHANGE while
    /// waiting for a NEW-VIEW, and retries or starts a catch-up. Lost messages are recovered
    /// this way, at a cost bounded by the watermark window.
    pub(super) fn retransmit(&mut self) {
        if let Some(vc) = &self.my_view_change {
            if self.mode == Mode::ViewChange {
                self.out.push(Action::Broadcast(Message::ViewChange(vc.clone())));
            }
        }
        let n = self.ctx.committee.n();
        let mut msgs = Vec::new();
        if self.stable.height > 0 && self.executed_height >= self.stable.height {
            // Re-signing the stable checkpoint is truthful: this replica executed that height and
            // its hash matched. A restarted replica has no CHECKPOINT message of its own to re-send,
            // and one that executed a newer checkpoint holds that one instead.
            let stable = match &self.my_checkpoint {
                Some(c) if c.height == self.stable.height => c.clone(),
                _ => {
                    Checkpoint::sign(&self.ctx.chain_id, self.safety.key(), self.stable.height, self.stable.block_hash)
                }
            };
            msgs.push(Message::Checkpoint(stable));
        }
        if let Some(c) = self.my_checkpoint.as_ref().filter(|c| c.height > self.stable.height) {
            // Its newest checkpoint, not stable yet: re-sending it is what makes it stable when the
            // first copies were lost. Re-sending only the stable one left replicas at different
            // stable checkpoints for good, and a laggard behind both found 2f+1 matching at neither
            // (simulation, twins_crash seed 5000047).
            msgs.push(Message::Checkpoint(c.clone()));
        }
        let mut pre_prepares = Vec::new();
        for slot in self.log.range(self.committed_height.min(self.stable.height) + 1..).map(|(_, s)| s) {
            if slot.committed.is_none() {
                if let Some(pp) = &slot.my_pre_prepare {
                    // Only to the backups that have not shown they hold it (a PREPARE or COMMIT
                    // of theirs for its view and digest). A batch of a thousand transactions
                    // re-sent to a backup that voted on it costs that backup a decode and a
                    // verification for nothing: a full one, every signature, if it committed
                    // the batch meanwhile and dropped its transactions from its mempool.
                    let key = (pp.view, pp.batch.digest(&self.ctx.chain_id));
                    let voted = |k: &PublicKey| {
                        slot.prepares.get(&key).is_some_and(|v| v.contains_key(k))
                            || slot.commits.get(&key).is_some_and(|v| v.contains_key(k))
                    };
                    for k in self.ctx.committee.members().iter().filter(|k| **k != self.me && !voted(k)) {
                        pre_prepares.push((*k, Message::PrePrepare(pp.clone())));
                    }
                }
                if let Some(p) = &slot.my_prepare {
                    msgs.push(Message::Prepare(p.clone()));
                }
            }
            if let Some(c) = &slot.my_commit {
                if slot.commits.get(&(c.view, c.digest)).is_none_or(|v| v.len() < n) {
                    msgs.push(Message::Commit(c.clone()));
                }
            }
        }
        for m in msgs {
            self.broadcast(m);
        }
        for (to, msg) in pre_prepares {
            self.out.push(Action::Send { to, msg });
        }
        if self.sync.as_ref().is_some_and(|s| s.target <= self.committed_height) {
            // Reached by ordinary commits meanwhile.
            self.sync = None;
        }
        match &self.sync {
            Some(s) if self.now_ms >= s.requested_ms + self.sync_retry_ms(s) => self.request_blocks(),
            Some(_) => {}
            None => self.check_stuck(),
        }
    }
}
