//! The crate's one error type. Each variant carries the offending data so that a log line or a
//! start-up failure says what to fix without a debugger.

use ordo_chain::PublicKey;

/// Everything that can go wrong in the p2p layer, from configuration to a failed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum P2pError {
    #[error("config: chain_id must be 1..={max_bytes} bytes, got {len}")]
    BadChainId { len: usize, max_bytes: usize },
    #[error("config: listen address {addr:?} is not a multiaddr: {reason}")]
    BadListenAddr { addr: String, reason: String },
    #[error("config: bootstrap address {addr:?} is not a multiaddr: {reason}")]
    BadBootstrapAddr { addr: String, reason: String },
    #[error("config: p2p_addr {addr:?} of validator {name} is not a multiaddr: {reason}")]
    BadValidatorAddr { name: String, addr: String, reason: String },
    #[error("config: public key {key} of validator {name} is not a valid ed25519 point")]
    BadValidatorKey { name: String, key: PublicKey },
    #[error("config: validator {key} is listed twice")]
    DuplicateValidator { key: PublicKey },
    #[error("config: the local key {key} is not in the validator list")]
    NotAValidator { key: PublicKey },
    #[error("config: {field} must be greater than zero")]
    ZeroLimit { field: &'static str },
    #[error("config: dial_backoff_initial_ms ({initial_ms}) exceeds dial_backoff_max_ms ({max_ms})")]
    BackoffOrder { initial_ms: u64, max_ms: u64 },

    #[error("libp2p set-up failed: {reason}")]
    Setup { reason: String },
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },

    #[error("{kind} message of {size_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    MessageTooLarge { kind: &'static str, size_bytes: usize, max_bytes: usize },
    #[error("{key} is not a validator of this chain")]
    UnknownValidator { key: PublicKey },
    #[error("validator {key} is not connected")]
    PeerNotConnected { key: PublicKey },
    #[error("cannot publish on {topic}: {reason}")]
    Publish { topic: String, reason: String },
    #[error("block range {from_height}..={to_height} is empty (from_height > to_height)")]
    BadBlockRange { from_height: u64, to_height: u64 },
    #[error("request to {key} failed: {reason}")]
    RequestFailed { key: PublicKey, reason: String },
    #[error("request to {key} timed out after {timeout_ms} ms")]
    RequestTimeout { key: PublicKey, timeout_ms: u64 },
    #[error("too many outstanding block requests (limit {max})")]
    TooManyRequests { max: usize },
    #[error("announcement is malformed: {0}")]
    BadAnnouncement(&'static str),
    #[error("announcement signature by {0} does not verify")]
    AnnouncementSignature(PublicKey),
    #[error("the p2p service has stopped")]
    Stopped,
}

pub type Result<T, E = P2pError> = std::result::Result<T, E>;
