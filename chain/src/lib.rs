//! `ordo-chain`: the ledger of Ordo, everything protocol §1–§6 fixes about bytes and hashes.
//!
//! Layout:
//! - [`crypto`]: hashes, keys, signatures, strict and batch ed25519 verification.
//! - [`codec`]: the big-endian writer and reader every byte format is built from.
//! - [`tx`]: transactions, their signing bytes and `tx_id`, the rules, [`tx::VerifiedTx`].
//! - [`merkle`]: the RFC 6962 `tx_root`.
//! - [`block`]: batch digests, block hashes, blocks, their JSON form, and chain verification.
//! - [`state`]: execution and the `state_hash` chain.
//! - [`cert`]: PBFT and Raft certificates and their verification.
//! - [`committee`]: the validator set and its quorum arithmetic.
//! - [`store`]: the `Store` trait, an in-memory store and (feature `rocksdb`) the RocksDB store.
//! - [`mempool`]: verified transactions waiting to be ordered, deduplicated and bounded.
//! - [`ledger`]: the store and the mempool behind one write path (admit, commit, look up), used
//!   by the node's consensus driver, its p2p loop and the API alike.
//! - [`vectors`]: the deterministic test vectors published in docs/test-vectors.json.
//!
//! Nothing here does network IO or reads the wall clock; only `store::rocks` touches the disk, and
//! only the ledger times something (its synced write, for the metrics).

pub mod block;
pub mod cert;
pub mod codec;
pub mod committee;
pub mod crypto;
pub mod error;
pub mod ledger;
pub mod limits;
pub mod mempool;
pub mod merkle;
pub mod state;
pub mod store;
pub mod tx;
pub mod vectors;

pub use block::{BatchHeader, Block, BlockJson, ChainVerifier};
pub use cert::Certificate;
pub use committee::Committee;
pub use crypto::{Hash, Keypair, PublicKey, Signature};
pub use error::{ChainError, Result};
pub use ledger::{Ledger, LedgerObserver, TxStatus};
pub use mempool::{Admission, Mempool, MempoolConfig, MempoolStats, Origin};
pub use tx::{Op, StagedTx, Transaction, TxResult, TxRules, VerifiedTx};
