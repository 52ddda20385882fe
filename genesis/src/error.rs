//! The one error type of `ordo-genesis`: one variant per validation rule, carrying what broke it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: invalid JSON: {reason}")]
    Json { path: PathBuf, reason: String },
    #[error("{path}: invalid TOML: {reason}")]
    Toml { path: PathBuf, reason: String },

    // ---- genesis.json rules ----
    #[error("chain_id must be 1 to {max} bytes, got {len}")]
    BadChainId { len: usize, max: usize },
    #[error("unknown consensus kind {0:?}: expected \"pbft\" or \"raft\"")]
    UnknownConsensus(String),
    #[error("{kind} needs at least {min} validators, the genesis lists {got}")]
    TooFewValidators { kind: &'static str, min: usize, got: usize },
    #[error("validator name {0:?} appears more than once")]
    DuplicateName(String),
    #[error("validator name {0:?} is invalid: use 1-64 characters of letters, digits, '-' and '_'")]
    BadName(String),
    #[error("validator public key {0} appears more than once")]
    DuplicateKey(String),
    #[error("validator {name}: public key {key} is not a valid ed25519 key")]
    BadValidatorKey { name: String, key: String },
    #[error("validator {name}: p2p_addr {addr:?} is not of the form /ip4/A/tcp/P, /ip6/A/tcp/P or /dns4/H/tcp/P")]
    BadP2pAddr { name: String, addr: String },
    #[error("validator {name}: api_addr {addr:?} is not of the form http://HOST:PORT")]
    BadApiAddr { name: String, addr: String },
    #[error("address {addr} is used by validators {first} and {second}")]
    DuplicateAddr { addr: String, first: String, second: String },
    #[error("consensus parameter {name} = {value} is invalid: {rule}")]
    BadParam { name: &'static str, value: u64, rule: &'static str },
    #[error("state key {key:?} is invalid: {reason}")]
    BadStateEntry { key: String, reason: String },

    // ---- key files ----
    #[error("{path}: key file's public_key does not match its secret_key")]
    KeyMismatch { path: PathBuf },
    #[error("{path}: {reason}")]
    BadKeyFile { path: PathBuf, reason: String },

    // ---- config.toml rules ----
    #[error("config: {field} = {value:?} is invalid: {rule}")]
    BadConfig { field: &'static str, value: String, rule: &'static str },
    #[error("config: this node's key {key} is not a validator of the genesis")]
    NotAValidator { key: String },
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
}

pub type Result<T, E = GenesisError> = std::result::Result<T, E>;
