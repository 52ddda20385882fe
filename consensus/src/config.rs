//! The engines' parameters: for each engine a typed struct whose `Default` holds the documented
//! defaults, and a `validate` run once at start-up with one error message per rule (genesis.json
//! may override the protocol fields beside `consensus.kind`; the node maps them in).

use crate::error::{ConsensusError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbftConfig {
    /// The most transactions one batch (block) may hold; the primary proposes early when full.
    pub batch_max_txs: usize,
    /// The most transaction bytes (binary encoding) one batch may hold.
    pub batch_max_bytes: usize,
    /// How long the oldest unproposed transaction may wait before the primary proposes a
    /// batch that is not full.
    pub batch_timeout_ms: u64,
    /// K: a checkpoint is taken at every height that is a multiple of K.
    pub checkpoint_interval: u64,
    /// L: sequences in flight must lie in (low, low + L], low being the last stable checkpoint.
    pub watermark_window: u64,
    /// The most batches a primary keeps proposed but not yet committed here. A backlog is then
    /// ordered a few batches at a time, each finishing quickly, instead of the whole window at
    /// once, every batch of which waits for the backups to verify all the others.
    pub max_in_flight: u64,
    /// How long a replica waits for a pending transaction to be ordered, and the first wait for
    /// a NEW-VIEW, before it starts a view change.
    pub view_change_timeout_ms: u64,
    /// The cap of the exponential backoff applied to consecutive view changes.
    pub view_change_timeout_max_ms: u64,
    /// How often a replica re-sends its own votes for sequences still in flight, its
    /// VIEW-CHANGE while waiting for a NEW-VIEW, and re-checks whether it must fetch blocks.
    pub retransmit_interval_ms: u64,
    /// The most pending transactions held by one replica; more are refused.
    pub pool_max_txs: usize,
    /// The most pending transaction bytes held by one replica.
    pub pool_max_bytes: usize,
    /// Messages naming a view more than this far above the current one are dropped unread.
    pub max_views_ahead: u64,
    /// The largest encoded consensus message accepted from the wire.
    pub message_max_bytes: usize,
    /// How many distinct (view, digest) vote sets one sequence keeps; a Byzantine sender cannot
    /// make a slot grow past it.
    pub slot_max_vote_sets: usize,
    /// How many blocks one FetchBlocks asks for at most.
    pub fetch_max_blocks: u64,
}

impl Default for PbftConfig {
    fn default() -> Self {
        use ordo_chain::limits::{consensus_defaults as d, MEMPOOL_MAX_BYTES, MEMPOOL_MAX_TXS};
        Self {
            batch_max_txs: d::BATCH_MAX_TXS,
            batch_max_bytes: d::BATCH_MAX_BYTES,
            batch_timeout_ms: d::BATCH_TIMEOUT_MS,
            checkpoint_interval: d::CHECKPOINT_INTERVAL,
            watermark_window: 2 * d::CHECKPOINT_INTERVAL,
            max_in_flight: 4,
            view_change_timeout_ms: d::VIEW_CHANGE_TIMEOUT_MS,
            view_change_timeout_max_ms: 60_000,
            retransmit_interval_ms: 1000,
            pool_max_txs: MEMPOOL_MAX_TXS,
            pool_max_bytes: MEMPOOL_MAX_BYTES,
            max_views_ahead: 1000,
            message_max_bytes: 64 * 1024 * 1024,
            slot_max_vote_sets: 4,
            fetch_max_blocks: 64,
        }
    }
}

impl PbftConfig {
    /// Checks every rule; the first broken one is named.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(ConsensusError::Config(m));
        if self.batch_max_txs == 0 {
            return fail("batch_max_txs must be at least 1".into());
        }
        if self.batch_max_bytes < 1024 {
            return fail(format!("batch_max_bytes is {}, it must be at least 1024", self.batch_max_bytes));
        }
        if self.max_in_flight == 0 {
            return fail("max_in_flight must be at least 1".into());
        }
        if self.checkpoint_interval == 0 {
            return fail("checkpoint_interval must be at least 1".into());
        }
        if self.watermark_window < self.checkpoint_interval || self.watermark_window % self.checkpoint_interval != 0 {
            return fail(format!(
                "watermark_window ({}) must be a positive multiple of checkpoint_interval ({})",
                self.watermark_window, self.checkpoint_interval
            ));
        }
        if self.view_change_timeout_ms == 0 || self.view_change_timeout_max_ms < self.view_change_timeout_ms {
            return fail("view_change_timeout_ms must be positive and at most view_change_timeout_max_ms".into());
        }
        if self.retransmit_interval_ms == 0 {
            return fail("retransmit_interval_ms must be positive".into());
        }
        if self.pool_max_txs < self.batch_max_txs {
            return fail(format!(
                "pool_max_txs ({}) must hold at least one batch ({})",
                self.pool_max_txs, self.batch_max_txs
            ));
        }
        if self.max_views_ahead == 0 || self.slot_max_vote_sets < 2 || self.fetch_max_blocks == 0 {
            return fail("max_views_ahead, fetch_max_blocks must be positive and slot_max_vote_sets at least 2".into());
        }
        if self.message_max_bytes < self.batch_max_bytes + 64 * 1024 {
            return fail("message_max_bytes must exceed batch_max_bytes by at least 64 KiB".into());
        }
        Ok(())
    }
}

/// The Raft parameters. The first five come from the genesis `ConsensusParams`; the others are
/// node-local limits with defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftConfig {
    /// The most transactions one batch (block) may hold; the leader proposes early when full.
    pub batch_max_txs: usize,
    /// The most transaction bytes (binary encoding) one batch may hold.
    pub batch_max_bytes: usize,
    /// How long the oldest unproposed transaction may wait before the leader proposes a batch
    /// that is not full.
    pub batch_timeout_ms: u64,
    /// The base election timeout; raft-rs randomises it in [this, twice this), drawn here from
    /// the engine's seeded generator.
    pub election_timeout_ms: u64,
    /// The leader's heartbeat interval; also the length of one raft-rs tick.
    pub heartbeat_interval_ms: u64,
    /// The most batches a leader keeps proposed but not yet committed.
    pub max_in_flight: usize,
    /// The most pending transactions held by one node; more are refused.
    pub pool_max_txs: usize,
    /// The most pending transaction bytes held by one node.
    pub pool_max_bytes: usize,
    /// The largest encoded Raft message accepted from the wire.
    pub message_max_bytes: usize,
    /// The most entries one append message may carry (a longer one is sent as its prefix).
    pub message_max_entries: usize,
    /// How many blocks one FetchBlocks asks for at most.
    pub fetch_max_blocks: u64,
    /// How long a catch-up waits for an answer before it asks again.
    pub fetch_retry_ms: u64,
    /// The log is compacted once this many executed entries lie above its base ...
    pub compact_threshold_entries: u64,
    /// ... keeping this many executed entries below the executed height, so a follower a little
    /// behind still catches up from the log rather than by fetching blocks.
    pub compact_margin_entries: u64,
    /// raft-rs's limit of append messages in flight to one follower.
    pub max_inflight_msgs: usize,
}

impl Default for RaftConfig {
    fn default() -> Self {
        use ordo_chain::limits::{consensus_defaults as d, MEMPOOL_MAX_BYTES, MEMPOOL_MAX_TXS};
        Self {
            batch_max_txs: d::BATCH_MAX_TXS,
            batch_max_bytes: d::BATCH_MAX_BYTES,
            batch_timeout_ms: d::BATCH_TIMEOUT_MS,
            election_timeout_ms: d::ELECTION_TIMEOUT_MS,
            heartbeat_interval_ms: d::HEARTBEAT_INTERVAL_MS,
            max_in_flight: 4,
            pool_max_txs: MEMPOOL_MAX_TXS,
            pool_max_bytes: MEMPOOL_MAX_BYTES,
            message_max_bytes: 64 * 1024 * 1024,
            message_max_entries: 1024,
            fetch_max_blocks: 64,
            fetch_retry_ms: 1000,
            compact_threshold_entries: 256,
            compact_margin_entries: 64,
            max_inflight_msgs: 64,
        }
    }
}

impl RaftConfig {
    /// raft-rs's election timeout in ticks (one tick = one heartbeat interval).
    pub fn election_ticks(&self) -> usize {
        (self.election_timeout_ms / self.heartbeat_interval_ms.max(1)) as usize
    }

    /// Checks every rule; the first broken one is named.
    pub fn validate(&self) -> Result<()> {
        let fail = |m: String| Err(ConsensusError::Config(m));
        if self.batch_max_txs == 0 {
            return fail("batch_max_txs must be at least 1".into());
        }
        if self.batch_max_bytes < 1024 {
            return fail(format!("batch_max_bytes is {}, it must be at least 1024", self.batch_max_bytes));
        }
        if self.batch_timeout_ms == 0 {
            return fail("batch_timeout_ms must be positive".into());
        }
        if self.heartbeat_interval_ms == 0 {
            return fail("heartbeat_interval_ms must be positive".into());
        }
        if self.election_ticks() < 3 {
            return fail(format!(
                "election_timeout_ms ({}) must be at least 3 heartbeat intervals ({} ms each)",
                self.election_timeout_ms, self.heartbeat_interval_ms
            ));
        }
        if self.max_in_flight == 0 || self.max_inflight_msgs == 0 || self.message_max_entries == 0 {
            return fail("max_in_flight, max_inflight_msgs and message_max_entries must be at least 1".into());
        }
        if self.pool_max_txs < self.batch_max_txs || self.pool_max_bytes < self.batch_max_bytes {
            return fail(format!(
                "the pool ({} txs, {} bytes) must hold at least one batch ({} txs, {} bytes)",
                self.pool_max_txs, self.pool_max_bytes, self.batch_max_txs, self.batch_max_bytes
            ));
        }
        if self.message_max_bytes < self.batch_max_bytes + 64 * 1024 {
            return fail("message_max_bytes must exceed batch_max_bytes by at least 64 KiB".into());
        }
        if self.fetch_max_blocks == 0 || self.fetch_retry_ms == 0 {
            return fail("fetch_max_blocks and fetch_retry_ms must be positive".into());
        }
        if self.compact_threshold_entries == 0 {
            return fail("compact_threshold_entries must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_defaults_are_valid_and_each_rule_fires() {
        RaftConfig::default().validate().unwrap();
        assert_eq!(RaftConfig::default().election_ticks(), 10);
        let bad = [
            RaftConfig { batch_max_txs: 0, ..Default::default() },
            RaftConfig { batch_max_bytes: 10, ..Default::default() },
            RaftConfig { batch_timeout_ms: 0, ..Default::default() },
            RaftConfig { heartbeat_interval_ms: 0, ..Default::default() },
            RaftConfig { election_timeout_ms: 200, ..Default::default() },
            RaftConfig { max_in_flight: 0, ..Default::default() },
            RaftConfig { pool_max_txs: 1, ..Default::default() },
            RaftConfig { message_max_bytes: 1, ..Default::default() },
            RaftConfig { fetch_max_blocks: 0, ..Default::default() },
            RaftConfig { compact_threshold_entries: 0, ..Default::default() },
        ];
        for c in bad {
            assert!(matches!(c.validate(), Err(ConsensusError::Config(_))), "{c:?}");
        }
    }

    #[test]
    fn defaults_are_valid_and_each_rule_fires() {
        PbftConfig::default().validate().unwrap();
        let bad = [
            PbftConfig { batch_max_txs: 0, ..Default::default() },
            PbftConfig { checkpoint_interval: 0, ..Default::default() },
            PbftConfig { watermark_window: 33, ..Default::default() },
            PbftConfig { view_change_timeout_max_ms: 1, ..Default::default() },
            PbftConfig { retransmit_interval_ms: 0, ..Default::default() },
            PbftConfig { pool_max_txs: 1, ..Default::default() },
            PbftConfig { slot_max_vote_sets: 1, ..Default::default() },
            PbftConfig { message_max_bytes: 1, ..Default::default() },
        ];
        for c in bad {
            assert!(matches!(c.validate(), Err(ConsensusError::Config(_))), "{c:?}");
        }
    }
}
