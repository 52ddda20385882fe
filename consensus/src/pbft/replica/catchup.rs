//! Catch-up (§4.3 "state transfer"): fetching certified blocks behind a stable checkpoint or a
//! commit certificate, and noticing when the replica is stuck behind the committee.

use super::*;

impl Replica {
    // ------------------------------------------------------------------ catch-up

    pub(super) fn start_sync(&mut self, target: u64, peers: Vec<PublicKey>) {
        if peers.is_empty() || target <= self.committed_height {
            return;
        }
        match &mut self.sync {
            Some(s) if s.target >= target => return,
            Some(s) => {
                s.target = target;
                s.peers = peers;
                s.empty_answers = 0;
                if s.awaiting {
                    // The answer under way asks for the rest at once (`on_synced`), and the
                    // retransmission timer asks again if it never comes. Asking now would fetch the
                    // same blocks twice: a starved backup, raised by each new stable checkpoint,
                    // fetched one range of 64 blocks from two or three peers at once, and
                    // verified every copy.
                    return;
                }
            }
            None => {
                self.sync = Some(Sync {
                    target,
                    peers,
                    attempt: 0,
                    requested_ms: 0,
                    awaiting: false,
                    unanswered: 0,
                    empty_answers: 0,
                })
            }
        }
        self.request_blocks();
    }

    /// How long after its last request the retransmission timer asks again: one interval, doubled
    /// for each request since the last answer that was not answered either (at most 8 intervals).
    /// An answer can take longer than an interval to arrive: the node verifies every block's
    /// transactions and certificate first, and a starved backup took over a second for two
    /// blocks, while the timer asked another peer for the same blocks every second.
    pub(super) fn sync_retry_ms(&self, s: &Sync) -> u64 {
        self.cfg.retransmit_interval_ms << s.unanswered.min(3)
    }

    pub(super) fn request_blocks(&mut self) {
        let Some(s) = &mut self.sync else { return };
        let from = s.peers[s.attempt % s.peers.len()];
        s.attempt += 1;
        s.requested_ms = self.now_ms;
        if s.awaiting {
            s.unanswered += 1;
        }
        s.awaiting = true;
        let from_height = self.committed_height + 1;
        let to_height = s.target.min(self.committed_height + self.cfg.fetch_max_blocks);
        self.counters.fetches += 1;
        self.out.push(Action::FetchBlocks { from, from_height, to_height });
    }

    pub(super) fn on_synced(&mut self, mut blocks: Vec<Verified<CommittedBatch>>) {
        let before = self.committed_height;
        if !blocks.is_empty() && blocks.iter().all(|b| b.header.height <= before) {
            // A late answer to an earlier request (or blocks committed meanwhile): it neither
            // answers the request under way nor says that its peer lacks the blocks. Counted as
            // an empty answer, it made a starved backup ask the next peer at once, whose late
            // answer did the same: five copies of one range in 0.7 s.
            return;
        }
        if let Some(s) = &mut self.sync {
            s.awaiting = false;
            s.unanswered = 0;
        }
        blocks.sort_by_key(|b| b.header.height);
        // The newest certificate of the answer tells where the committee is (verification
        // checked it against the committee).
        let newest = blocks
            .iter()
            .filter(|b| b.header.height > self.committed_height)
            .filter_map(|b| match &b.certificate {
                Certificate::Pbft(c) => Some((c.view, c.height)),
                _ => None,
            })
            .max();
        if let Some((view, h)) = newest {
            self.note_certificate(view, h);
        }
        for b in blocks {
            let b = b.into_inner();
            if b.header.height != self.committed_height + 1 {
                continue;
            }
            let h = b.header.height;
            if h > self.stable.height {
                // Kept for a VIEW-CHANGE or NEW-VIEW that chooses this batch before the next
                // stable checkpoint collects it.
                let d = b.header.digest(&self.ctx.chain_id);
                self.log.entry(h).or_default().bodies.insert(d, Batch { header: b.header, txs: b.txs.clone() });
            }
            self.emit_commit(b);
        }
        self.try_execute();
        self.try_new_view();
        let progressed = self.committed_height > before;
        let ask_now = match &mut self.sync {
            Some(s) if self.committed_height >= s.target => {
                self.sync = None;
                false
            }
            Some(s) => {
                // After progress, the rest is asked for at once, and after an answer without a
                // block the next peer is. But once every peer has answered without one, none of
                // them holds the target yet (it is certified, but still being committed, as
                // after a view change): asking again at once would flood the committee with
                // requests each answered by nothing, at every round trip, for as long as that
                // lasts. The retransmission timer asks again.
                s.empty_answers = if progressed { 0 } else { s.empty_answers + 1 };
                s.empty_answers < s.peers.len()
            }
            None => false,
        };
        if ask_now {
            self.request_blocks();
        }
    }

    /// At each retransmission tick: if the committed height has not moved since the last tick
    /// while some height above it holds COMMITs (its own or others': someone prepared it, so it
    /// may well be committed elsewhere, and this replica may have missed the other COMMITs for
    /// good), ask the other validators for the certified blocks. Fetching is always safe: a
    /// fetched block counts only with its certificate, and a peer without it answers nothing.
    pub(super) fn check_stuck(&mut self) {
        let was = self.stuck_at.replace(self.committed_height);
        if was != Some(self.committed_height) {
            return;
        }
        let target = self
            .log
            .range(self.committed_height + 1..)
            .filter(|(_, s)| !s.commits.is_empty())
            .map(|(h, _)| *h)
            .next_back();
        if let Some(h) = target {
            let me = self.me;
            let peers: Vec<PublicKey> = self.ctx.committee.members().iter().copied().filter(|k| *k != me).collect();
            self.start_sync(h, peers);
        }
    }
}
