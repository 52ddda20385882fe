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
//! - [`vectors`]: the deterministic test vectors published in docs/test-vectors.json.
//!
//! Nothing here does network IO or reads a clock; only `store::rocks` touches the disk.

pub mod block;
pub mod cert;
pub mod codec;
pub mod committee;
pub mod crypto;
pub mod error;
pub mod limits;
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
pub use tx::{Op, Transaction, TxResult, TxRules, VerifiedTx};
