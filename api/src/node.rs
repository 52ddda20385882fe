//! What the API needs from a node: the [`NodeHandle`] trait, the answers it returns, and
//! [`LocalChain`], the store-and-mempool half of a node that every implementation can reuse.
//!
//! The API calls every `NodeHandle` method that may touch the disk from tokio's blocking pool, so
//! an implementation may read RocksDB or wait briefly on a bounded gossip channel without stalling
//! the async runtime. `tx_rules`, `chain`, `commits` and `readiness` are called on the runtime and
//! must be cheap.

use std::sync::Arc;

use ordo_chain::store::{Store, TxLocation};
use ordo_chain::{Block, Hash, PublicKey, Transaction, TxRules, VerifiedTx};
use ordo_genesis::{ConsensusKind, ValidatorInfo};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::events::EventHub;
use crate::mempool::{Admission, Mempool, MempoolStats};
use crate::metrics::{Metrics, RejectReason};
use crate::notify::CommitNotifier;
use crate::recent::{RecentBlocks, RECENT_BLOCKS_MAX};

/// The most blocks one `GET /v1/blocks` page holds (protocol §7).
pub const BLOCKS_PAGE_MAX: usize = 100;

/// The node as the API sees it. Implemented by the node binary; `Arc<dyn NodeHandle>` is what
/// [`crate::router`] takes.
pub trait NodeHandle: Send + Sync + 'static {
    /// The rules submitted transactions are verified against: chain id, limits, admitted clients.
    fn tx_rules(&self) -> &TxRules;

    /// The store, mempool and commit notifier behind the chain-side lookups.
    fn chain(&self) -> &LocalChain;

    /// Whether the node is connected to a quorum and caught up (protocol §7 `/readyz`). Submissions
    /// are refused with 503 while it is not.
    fn readiness(&self) -> Readiness;

    /// Offers verified transactions to the mempool (usually `self.chain().admit(txs)`) and
    /// gossips the ones admitted. Returns one outcome per transaction, in order; it must not
    /// gossip anything it did not admit.
    fn submit(&self, txs: Vec<VerifiedTx>) -> Result<Vec<Admission>, ApiError>;

    /// `GET /v1/status`; [`LocalChain::chain_status`] fills the chain-side fields.
    fn status(&self) -> Result<NodeStatus, ApiError>;

    /// `GET /v1/validators`: the genesis validator set with each one's connectivity.
    fn validators(&self) -> Result<Vec<ValidatorStatus>, ApiError>;

    /// Notified by the node after each commit; `?wait_ms` waits on it.
    fn commits(&self) -> &CommitNotifier {
        self.chain().commits()
    }

    /// Where a transaction is: pending, committed, or unknown (`None`).
    fn tx_status(&self, id: &Hash) -> Result<Option<TxStatus>, ApiError> {
        self.chain().tx_status(id)
    }

    fn block(&self, height: u64) -> Result<Option<Block>, ApiError> {
        self.chain().block(height)
    }

    fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, ApiError> {
        self.chain().block_by_hash(hash)
    }

    fn latest_block(&self) -> Result<Option<Block>, ApiError> {
        self.chain().latest_block()
    }

    /// Up to `limit` blocks below height `before` (below the tip + 1 when `None`), newest first.
    fn blocks_before(&self, before: Option<u64>, limit: usize) -> Result<BlockPage, ApiError> {
        self.chain().blocks_before(before, limit)
    }

    /// A state key's value and the height it was read at.
    fn state_get(&self, key: &str) -> Result<Option<StateEntry>, ApiError> {
        self.chain().state_get(key)
    }
}

/// Whether the node is ready to serve submissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not ready, and why (e.g. "connected to 1 of 3 validators needed").
    NotReady {
        reason: String,
    },
}

/// Where a known transaction is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    Pending(VerifiedTx),
    Committed { location: TxLocation, tx: Transaction },
}

impl TxStatus {
    pub fn is_committed(&self) -> bool {
        matches!(self, TxStatus::Committed { .. })
    }
}

/// One page of `GET /v1/blocks`: `next` is the `before` of the following page, `None` at genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockPage {
    pub blocks: Vec<Block>,
    pub next: Option<u64>,
}

/// `GET /v1/state/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateEntry {
    pub key: String,
    pub value: String,
    /// The height of the newest block when the value was read.
    pub height: u64,
}

/// The fields of `GET /v1/status` that the store and mempool know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStatus {
    pub height: u64,
    pub last_block_hash: Hash,
    pub state_hash: Hash,
    pub mempool: MempoolStats,
}

/// The consensus position: a PBFT view or a Raft term, served as `"view"` or `"term"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsensusRound {
    View(u64),
    Term(u64),
}

/// One other validator, as this node's p2p layer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerStatus {
    pub node_id: PublicKey,
    pub name: String,
    pub connected: bool,
}

/// `GET /v1/status` (protocol §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub chain_id: String,
    /// This validator's public key.
    pub node_id: PublicKey,
    pub name: String,
    pub consensus: ConsensusKind,
    #[serde(flatten)]
    pub round: ConsensusRound,
    /// The current primary or leader's public key; `null` while none is known.
    pub leader: Option<PublicKey>,
    #[serde(flatten)]
    pub chain: ChainStatus,
    pub peers: Vec<PeerStatus>,
    /// The number of validators, n.
    pub validators: usize,
    /// The number of faults tolerated.
    pub f: usize,
    pub ready: bool,
}

/// One validator of `GET /v1/validators`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorStatus {
    pub name: String,
    pub public_key: PublicKey,
    pub p2p_addr: String,
    pub api_addr: String,
    /// True for this node itself and for peers it has a live connection to.
    pub connected: bool,
}

impl ValidatorStatus {
    pub fn new(info: &ValidatorInfo, connected: bool) -> Self {
        Self {
            name: info.name.clone(),
            public_key: info.public_key,
            p2p_addr: info.p2p_addr.clone(),
            api_addr: info.api_addr.clone(),
            connected,
        }
    }
}

/// The store-and-mempool half of a node: admission, lookups and commit bookkeeping, and what
/// the explorer, the event streams and the metrics read of it. The node keeps one, commits
/// blocks through [`LocalChain::commit`] (or reports them with [`LocalChain::committed`]), and
/// delegates to it.
pub struct LocalChain {
    store: Arc<dyn Store>,
    mempool: Arc<Mempool>,
    commits: CommitNotifier,
    recent: RecentBlocks,
    events: EventHub,
    metrics: Arc<Metrics>,
}

impl LocalChain {
    /// Wraps a store (opened, usually holding at least genesis) and a mempool, checking the
    /// mempool's configuration. The newest blocks are read back for the dashboard's summary.
    pub fn new(store: Arc<dyn Store>, mempool: Arc<Mempool>, metrics: Arc<Metrics>) -> Result<Self, ApiError> {
        mempool.config().validate()?;
        let tip = store.latest_height()?;
        let recent = RecentBlocks::new();
        if let Some(tip) = tip {
            for height in tip.saturating_sub(RECENT_BLOCKS_MAX as u64 - 1)..=tip {
                if let Some(block) = store.block(height)? {
                    recent.record(&block);
                }
            }
        }
        let tip = tip.unwrap_or(0);
        metrics.height.set(tip as i64);
        metrics.mempool_size.set(mempool.len() as i64);
        Ok(Self { store, mempool, commits: CommitNotifier::new(tip), recent, events: EventHub::new(), metrics })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn mempool(&self) -> &Arc<Mempool> {
        &self.mempool
    }

    pub fn commits(&self) -> &CommitNotifier {
        &self.commits
    }

    /// The newest blocks' summaries, kept in memory for the explorer's dashboard.
    pub fn recent(&self) -> &RecentBlocks {
        &self.recent
    }

    /// What the `/v1/events` streams share; the node calls [`EventHub::status_changed`].
    pub fn events(&self) -> &EventHub {
        &self.events
    }

    /// The node's metrics (protocol §7.3).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Offers verified transactions to the mempool, deduplicated against it and the store.
    pub fn admit(&self, txs: Vec<VerifiedTx>) -> Result<Vec<Admission>, ApiError> {
        let outcomes = self.mempool.admit(self.store.as_ref(), txs)?;
        let (mut full, mut duplicate) = (0, 0);
        for o in &outcomes {
            match o {
                Admission::Admitted => {}
                Admission::AlreadyPending | Admission::AlreadyCommitted => duplicate += 1,
                Admission::Full => full += 1,
            }
        }
        self.metrics.rejected(RejectReason::full, full);
        self.metrics.rejected(RejectReason::duplicate, duplicate);
        self.metrics.mempool_size.set(self.mempool.len() as i64);
        Ok(outcomes)
    }

    /// Stores a block, then drops its transactions from the mempool and wakes waiters, in that
    /// order: a transaction is always findable in the store or the mempool. The synced write is
    /// timed (`ordo_storage_commit_duration_seconds`).
    pub fn commit(&self, block: &Block, writes: &[ordo_chain::Op]) -> Result<(), ApiError> {
        let started = std::time::Instant::now();
        self.store.commit(block, writes)?;
        self.metrics.storage_commit_duration.observe(started.elapsed().as_secs_f64());
        self.committed(block);
        Ok(())
    }

    /// The bookkeeping after `block` was stored: the mempool, the dashboard's summary, the
    /// metrics, then the waiters and event streams (last, so whoever they wake finds it all).
    pub fn committed(&self, block: &Block) {
        self.mempool.remove_committed(&block.tx_ids);
        if let Some(parent_ms) = self.recent.record(block) {
            let interval_ms = block.header.timestamp_ms.saturating_sub(parent_ms);
            self.metrics.block_interval.observe(interval_ms as f64 / 1000.0);
        }
        self.metrics.height.set(block.height() as i64);
        self.metrics.txs_committed.inc_by(block.txs.len() as u64);
        self.metrics.mempool_size.set(self.mempool.len() as i64);
        self.commits.notify(block.height());
    }

    /// Looks in the mempool first, then the store: a commit stores before it removes from the
    /// mempool, so a transaction on its way from one to the other is found in one of them.
    pub fn tx_status(&self, id: &Hash) -> Result<Option<TxStatus>, ApiError> {
        if let Some(tx) = self.mempool.get(id) {
            return Ok(Some(TxStatus::Pending(tx)));
        }
        let Some(location) = self.store.tx_location(id)? else {
            return Ok(None);
        };
        let block = self.store.block(location.height)?.ok_or_else(|| ApiError::Internal {
            reason: format!("transaction index points at missing block {}", location.height),
        })?;
        let tx = block.txs.get(location.index as usize).cloned().ok_or_else(|| ApiError::Internal {
            reason: format!("transaction index points past block {} ({})", location.height, location.index),
        })?;
        Ok(Some(TxStatus::Committed { location, tx }))
    }

    pub fn block(&self, height: u64) -> Result<Option<Block>, ApiError> {
        Ok(self.store.block(height)?)
    }

    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, ApiError> {
        Ok(self.store.block_by_hash(hash)?)
    }

    pub fn latest_block(&self) -> Result<Option<Block>, ApiError> {
        Ok(self.store.latest_block()?)
    }

    pub fn blocks_before(&self, before: Option<u64>, limit: usize) -> Result<BlockPage, ApiError> {
        let limit = limit.min(BLOCKS_PAGE_MAX);
        let Some(tip) = self.store.latest_height()? else {
            return Ok(BlockPage { blocks: Vec::new(), next: None });
        };
        // The newest height on this page: just below `before`, and never above the tip.
        let top = match before {
            Some(0) => return Ok(BlockPage { blocks: Vec::new(), next: None }),
            Some(b) => (b - 1).min(tip),
            None => tip,
        };
        let mut blocks = Vec::with_capacity(limit);
        for height in (0..=top).rev().take(limit) {
            let block = self
                .store
                .block(height)?
                .ok_or_else(|| ApiError::Internal { reason: format!("block {height} is below the tip but missing") })?;
            blocks.push(block);
        }
        let next = blocks.last().map(Block::height).filter(|h| *h > 0);
        Ok(BlockPage { blocks, next })
    }

    /// Reads the value between two reads of the tip height and retries until they agree, so the
    /// height served is the one the value belongs to even while blocks are being committed.
    pub fn state_get(&self, key: &str) -> Result<Option<StateEntry>, ApiError> {
        const ATTEMPTS: usize = 16;
        for _ in 0..ATTEMPTS {
            let before = self.store.latest_height()?;
            let value = self.store.state_get(key)?;
            if self.store.latest_height()? == before {
                let height = before.unwrap_or(0);
                return Ok(value.map(|value| StateEntry { key: key.to_string(), value, height }));
            }
        }
        Err(ApiError::Internal { reason: format!("state of {key:?} kept changing over {ATTEMPTS} reads") })
    }

    /// The chain-side fields of `GET /v1/status`. Before genesis is stored every hash is zero.
    pub fn chain_status(&self) -> Result<ChainStatus, ApiError> {
        let tip = self.store.latest_block()?;
        Ok(ChainStatus {
            height: tip.as_ref().map_or(0, Block::height),
            last_block_hash: tip.as_ref().map_or(Hash::ZERO, |b| b.hash),
            state_hash: tip.as_ref().map_or(Hash::ZERO, |b| b.state_hash),
            mempool: self.mempool.stats(),
        })
    }
}
