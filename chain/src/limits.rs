//! Size limits on transactions (protocol §3). Defaults follow the SPEC; a node may configure others.

use serde::{Deserialize, Serialize};

/// The longest chain id, in bytes.
pub const CHAIN_ID_MAX_BYTES: usize = 64;
/// The longest key, in bytes.
pub const KEY_MAX_BYTES: usize = 256;
/// The longest value, in bytes (64 KiB).
pub const VALUE_MAX_BYTES: usize = 64 * 1024;
/// The largest request body for one transaction (1 MiB).
pub const REQUEST_MAX_BYTES: usize = 1024 * 1024;
/// The largest request body for a batch (8 MiB).
pub const BATCH_REQUEST_MAX_BYTES: usize = 8 * 1024 * 1024;
/// The most transactions in one batch request.
pub const BATCH_MAX_TXS: usize = 1000;

/// The most transactions a node's mempool holds (node config `mempool_max_txs`); the engines'
/// pools mirror the mempool, so they hold as many.
pub const MEMPOOL_MAX_TXS: usize = 200_000;
/// The most bytes of transactions a node's mempool holds (node config `mempool_max_bytes`).
pub const MEMPOOL_MAX_BYTES: usize = 256 * 1024 * 1024;
/// The most senders' decompressed verifying keys kept in memory (see
/// `crypto::PublicKey::to_verifying_key`): about 7 MiB at this size, and a sender outside it
/// costs one decompression, never a wrong answer.
pub const VERIFYING_KEY_CACHE_MAX: usize = 32_768;
/// The largest block-sync response, in encoded bytes: a serving node fills a response up to it
/// and a receiving node refuses a larger one.
pub const SYNC_RESPONSE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// The defaults of the genesis `consensus` parameters (protocol §2). The genesis file and the
/// engines' own configurations both start from these, so a default is defined once.
pub mod consensus_defaults {
    /// The most transactions in one consensus batch (one block).
    pub const BATCH_MAX_TXS: usize = 2000;
    /// The most bytes of transactions in one consensus batch.
    pub const BATCH_MAX_BYTES: usize = 4 * 1024 * 1024;
    /// How long a proposer waits to fill a batch before proposing a partial one.
    pub const BATCH_TIMEOUT_MS: u64 = 20;
    /// PBFT: a checkpoint every this many heights.
    pub const CHECKPOINT_INTERVAL: u64 = 32;
    /// PBFT: the first view-change timeout.
    pub const VIEW_CHANGE_TIMEOUT_MS: u64 = 2000;
    /// Raft: the base election timeout.
    pub const ELECTION_TIMEOUT_MS: u64 = 1000;
    /// Raft: the leader's heartbeat interval.
    pub const HEARTBEAT_INTERVAL_MS: u64 = 100;
}

/// The limits in force on one node. `Default` is the SPEC's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TxLimits {
    pub chain_id_max_bytes: usize,
    pub key_max_bytes: usize,
    pub value_max_bytes: usize,
    pub request_max_bytes: usize,
    pub batch_request_max_bytes: usize,
    pub batch_max_txs: usize,
}

impl Default for TxLimits {
    fn default() -> Self {
        Self {
            chain_id_max_bytes: CHAIN_ID_MAX_BYTES,
            key_max_bytes: KEY_MAX_BYTES,
            value_max_bytes: VALUE_MAX_BYTES,
            request_max_bytes: REQUEST_MAX_BYTES,
            batch_request_max_bytes: BATCH_REQUEST_MAX_BYTES,
            batch_max_txs: BATCH_MAX_TXS,
        }
    }
}
