//! What the API needs from a node: the [`NodeHandle`] trait, the answers it returns, and
//! [`LocalChain`], what the API keeps beside a node's `ordo_chain::Ledger` (every implementation
//! can reuse it).
//!
//! The API calls every `NodeHandle` method that may touch the disk from tokio's blocking pool, so
//! an implementation may read RocksDB or wait briefly on a bounded gossip channel without stalling
//! the async runtime. `tx_rules`, `chain`, `commits` and `readiness` are called on the runtime and
//! must be cheap.

use std::sync::Arc;
use std::time::Duration;

use ordo_chain::ledger::{Ledger, LedgerObserver, TxStatus};
use ordo_chain::mempool::{Admission, Mempool, MempoolStats, Origin};
use ordo_chain::store::Store;
use ordo_chain::{Block, Hash, PublicKey, TxRules, VerifiedTx};
use ordo_genesis::{ConsensusKind, ValidatorInfo};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::events::EventHub;
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

    /// The ledger and the API's bookkeeping beside it, behind the chain-side lookups.
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

/// What the API keeps beside a node's [`Ledger`]: the waiters of `?wait_ms`, the dashboard's
/// ring of recent blocks, the event streams' hub and the metrics. It observes the ledger, so
/// every admission and commit, whoever makes it (the API, the p2p loop, the consensus driver),
/// updates them; the node never commits through the API crate.
pub struct LocalChain {
    ledger: Arc<Ledger>,
    view: Arc<ChainView>,
}

/// The observer half of [`LocalChain`].
struct ChainView {
    commits: CommitNotifier,
    recent: RecentBlocks,
    events: EventHub,
    metrics: Arc<Metrics>,
}

impl LedgerObserver for ChainView {
    fn admitted(&self, outcomes: &[Admission], pending: MempoolStats) {
        let (mut full, mut duplicate) = (0, 0);
        for o in outcomes {
            match o {
                Admission::Admitted => {}
                Admission::AlreadyPending | Admission::AlreadyCommitted => duplicate += 1,
                Admission::Full => full += 1,
            }
        }
        self.metrics.rejected(RejectReason::full, full);
        self.metrics.rejected(RejectReason::duplicate, duplicate);
        self.metrics.mempool_size.set(pending.txs as i64);
    }

    /// The dashboard's summary and the metrics first, then the waiters and event streams (last,
    /// so whoever they wake finds it all).
    fn committed(&self, block: &Block, stored_in: Duration, pending: MempoolStats) {
        self.metrics.storage_commit_duration.observe(stored_in.as_secs_f64());
        if let Some(parent_ms) = self.recent.record(block) {
            let interval_ms = block.header.timestamp_ms.saturating_sub(parent_ms);
            self.metrics.block_interval.observe(interval_ms as f64 / 1000.0);
        }
        self.metrics.height.set(block.height() as i64);
        self.metrics.txs_committed.inc_by(block.txs.len() as u64);
        self.metrics.mempool_size.set(pending.txs as i64);
        self.commits.notify(block.height());
    }
}

impl LocalChain {
    /// Attaches the API's bookkeeping to `ledger` (whose store is opened, usually holding at
    /// least genesis). The newest blocks are read back for the dashboard's summary.
    pub fn new(ledger: Arc<Ledger>, metrics: Arc<Metrics>) -> Result<Self, ApiError> {
        let store = ledger.store();
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
        metrics.mempool_size.set(ledger.mempool().len() as i64);
        let view = Arc::new(ChainView { commits: CommitNotifier::new(tip), recent, events: EventHub::new(), metrics });
        ledger.observe(view.clone());
        Ok(Self { ledger, view })
    }

    /// The store and mempool, and the one write path to them.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        self.ledger.store()
    }

    pub fn mempool(&self) -> &Arc<Mempool> {
        self.ledger.mempool()
    }

    pub fn commits(&self) -> &CommitNotifier {
        &self.view.commits
    }

    /// The newest blocks' summaries, kept in memory for the explorer's dashboard.
    pub fn recent(&self) -> &RecentBlocks {
        &self.view.recent
    }

    /// What the `/v1/events` streams share; the node calls [`EventHub::status_changed`].
    pub fn events(&self) -> &EventHub {
        &self.view.events
    }

    /// The node's metrics (protocol §7.3).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.view.metrics
    }

    /// Offers a client's verified transactions to the ledger, within the clients' share of the
    /// mempool (see [`Ledger::admit`] and [`Origin`]).
    pub fn admit(&self, txs: Vec<VerifiedTx>) -> Result<Vec<Admission>, ApiError> {
        Ok(self.ledger.admit(txs, Origin::Client)?)
    }

    /// Where a transaction is (see [`Ledger::lookup`]).
    pub fn tx_status(&self, id: &Hash) -> Result<Option<TxStatus>, ApiError> {
        Ok(self.ledger.lookup(id)?)
    }

    pub fn block(&self, height: u64) -> Result<Option<Block>, ApiError> {
        Ok(self.store().block(height)?)
    }

    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, ApiError> {
        Ok(self.store().block_by_hash(hash)?)
    }

    pub fn latest_block(&self) -> Result<Option<Block>, ApiError> {
        Ok(self.store().latest_block()?)
    }

    pub fn blocks_before(&self, before: Option<u64>, limit: usize) -> Result<BlockPage, ApiError> {
        let limit = limit.min(BLOCKS_PAGE_MAX);
        let Some(tip) = self.store().latest_height()? else {
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
                .store()
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
            let before = self.store().latest_height()?;
            let value = self.store().state_get(key)?;
            if self.store().latest_height()? == before {
                let height = before.unwrap_or(0);
                return Ok(value.map(|value| StateEntry { key: key.to_string(), value, height }));
            }
        }
        Err(ApiError::Internal { reason: format!("state of {key:?} kept changing over {ATTEMPTS} reads") })
    }

    /// The chain-side fields of `GET /v1/status`. Before genesis is stored every hash is zero.
    pub fn chain_status(&self) -> Result<ChainStatus, ApiError> {
        let tip = self.store().latest_block()?;
        Ok(ChainStatus {
            height: tip.as_ref().map_or(0, Block::height),
            last_block_hash: tip.as_ref().map_or(Hash::ZERO, |b| b.hash),
            state_hash: tip.as_ref().map_or(Hash::ZERO, |b| b.state_hash),
            mempool: self.mempool().stats(),
        })
    }
}
