//! `ordo-genesis`: everything a consortium agrees on before the first block, and everything an
//! operator writes before starting a node.
//!
//! Layout:
//! - [`genesis`]: `genesis.json` (protocol §2), its validation (one error per rule), the committee
//!   and the genesis block.
//! - [`keys`]: key files (`{"public_key","secret_key"}`, mode 0600).
//! - [`config`]: the per-node `config.toml`, with defaults and `validate()`.
//! - [`layout`]: writing a whole testnet directory (`ordo genesis`).
//! - [`error`]: the crate's error type.
//!
//! The quorum arithmetic itself lives in `ordo_chain::committee`, because certificate
//! verification (in `chain`) needs it; this crate builds the committee from the genesis file.

pub mod config;
pub mod error;
pub mod genesis;
pub mod keys;
pub mod layout;

pub use config::NodeConfig;
pub use error::GenesisError;
pub use genesis::{ConsensusKind, ConsensusParams, Genesis, ValidatorInfo};
pub use keys::KeyFile;
