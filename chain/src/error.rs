//! The one error type of the `chain` crate. Each rejection rule of protocol §3 and §6 has its own
//! variant, carrying the offending data, so callers (the API, the consensus verifier) can map a
//! rejection to a status code and a clear message without parsing strings.

use crate::crypto::{Hash, PublicKey, SigError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    // ---- Malformed input (HTTP 400) ----
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("bad hex in {field}: {reason}")]
    BadHex { field: &'static str, reason: String },
    #[error("malformed binary encoding: {0}")]
    Decode(String),

    // ---- Transaction rules, protocol §3 (HTTP 422) ----
    #[error("chain_id is {len} bytes, the limit is {max}")]
    ChainIdTooLong { len: usize, max: usize },
    #[error("wrong chain_id: this chain is {expected:?}, the transaction names {got:?}")]
    WrongChainId { expected: String, got: String },
    #[error("key is empty")]
    EmptyKey,
    #[error("key is {len} bytes, the limit is {max}")]
    KeyTooLong { len: usize, max: usize },
    #[error("value is {len} bytes, the limit is {max}")]
    ValueTooLong { len: usize, max: usize },
    #[error("bad signature on transaction {tx_id}: {reason}")]
    BadSignature { tx_id: Hash, reason: SigError },
    #[error("sender {sender} is not an admitted client of this chain")]
    SenderNotAdmitted { sender: PublicKey },

    // ---- Certificate rules, protocol §6 ----
    #[error("certificate is for {got}, the block is {expected}")]
    CertKindMismatch { expected: &'static str, got: &'static str },
    #[error("certificate is for height {got}, the block is at height {expected}")]
    CertHeightMismatch { expected: u64, got: u64 },
    #[error("certificate names batch digest {got}, the block's is {expected}")]
    CertDigestMismatch { expected: Hash, got: Hash },
    #[error("certificate has {got} valid signatures from distinct validators, a quorum is {need}")]
    CertTooFewSignatures { got: usize, need: usize },
    #[error("certificate is signed by {validator}, who is not a validator")]
    CertUnknownValidator { validator: PublicKey },
    #[error("certificate carries two signatures from validator {validator}")]
    CertDuplicateValidator { validator: PublicKey },
    #[error("certificate signature of validator {validator} does not verify")]
    CertBadSignature { validator: PublicKey },
    #[error("block {height} has no certificate")]
    CertMissing { height: u64 },

    // ---- Chain linkage ----
    #[error("block {height}: {what} is {got}, expected {expected}")]
    BlockMismatch { height: u64, what: &'static str, expected: String, got: String },

    // ---- Store ----
    #[error("store: expected to commit height {expected}, got {got}")]
    NonSequentialCommit { expected: u64, got: u64 },
    #[error("store: block {height} has prev_hash {got}, the stored tip is {expected}")]
    PrevHashMismatch { height: u64, expected: Hash, got: Hash },
    #[error("store: a log write appends index {got}, expected {expected} (entries must be contiguous)")]
    NonContiguousLog { expected: u64, got: u64 },
    #[error("store IO error: {0}")]
    Io(String),
    #[error("mempool config: {field} must be positive")]
    ZeroMempoolLimit { field: &'static str },
    #[error("store is corrupt: {0}")]
    Corrupt(String),
}

impl ChainError {
    /// A stable snake_case code for the REST error body (protocol §7).
    pub fn code(&self) -> &'static str {
        match self {
            ChainError::Json(_) => "malformed_json",
            ChainError::BadHex { .. } => "bad_hex",
            ChainError::Decode(_) => "malformed",
            ChainError::ChainIdTooLong { .. } => "chain_id_too_long",
            ChainError::WrongChainId { .. } => "wrong_chain_id",
            ChainError::EmptyKey => "empty_key",
            ChainError::KeyTooLong { .. } => "key_too_long",
            ChainError::ValueTooLong { .. } => "value_too_long",
            ChainError::BadSignature { .. } => "bad_signature",
            ChainError::SenderNotAdmitted { .. } => "sender_not_admitted",
            ChainError::CertKindMismatch { .. }
            | ChainError::CertHeightMismatch { .. }
            | ChainError::CertDigestMismatch { .. }
            | ChainError::CertTooFewSignatures { .. }
            | ChainError::CertUnknownValidator { .. }
            | ChainError::CertDuplicateValidator { .. }
            | ChainError::CertBadSignature { .. }
            | ChainError::CertMissing { .. } => "bad_certificate",
            ChainError::BlockMismatch { .. } => "block_mismatch",
            ChainError::NonSequentialCommit { .. }
            | ChainError::PrevHashMismatch { .. }
            | ChainError::NonContiguousLog { .. } => "store_sequence",
            ChainError::Io(_) => "io",
            ChainError::ZeroMempoolLimit { .. } => "invalid_config",
            ChainError::Corrupt(_) => "corrupt",
        }
    }

    /// True for malformed input (HTTP 400) as opposed to well-formed but invalid input (HTTP 422).
    pub fn is_malformed(&self) -> bool {
        matches!(self, ChainError::Json(_) | ChainError::BadHex { .. } | ChainError::Decode(_))
    }
}

pub type Result<T, E = ChainError> = std::result::Result<T, E>;
