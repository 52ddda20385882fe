//! The one error type of the consensus crate. Verification rejections, protocol drops and
//! configuration mistakes each have a variant carrying the offending data, so the node can log a
//! precise reason and tests can assert exactly which rule fired.

use ordo_chain::{ChainError, Hash, PublicKey};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    // ---- Wire format ----
    #[error("malformed consensus message: {0}")]
    Decode(String),
    #[error("consensus message is {len} bytes, the limit is {max}")]
    MessageTooLarge { len: usize, max: usize },

    // ---- Verification (signatures, senders, sizes, batch contents) ----
    #[error("{kind} message from {from}, who is not a validator")]
    UnknownSender { kind: &'static str, from: PublicKey },
    #[error("{kind} message from {from} has a bad signature")]
    BadSignature { kind: &'static str, from: PublicKey },
    #[error("pre-prepare for height {height} carries an invalid transaction at index {index}: {reason}")]
    BadTransaction { height: u64, index: usize, reason: ChainError },
    #[error("pre-prepare for height {height} repeats transaction {tx_id} inside one batch")]
    DuplicateTxInBatch { height: u64, tx_id: Hash },
    #[error("batch for height {height}: header {what} does not match its transactions")]
    BatchMismatch { height: u64, what: &'static str },
    #[error("batch for height {height} holds {count} transactions, the limit is {max}")]
    BatchTooLarge { height: u64, count: usize, max: usize },
    #[error("{kind} for view {view} is from {got}, but the primary of that view is {expected}")]
    NotPrimary { kind: &'static str, view: u64, expected: PublicKey, got: PublicKey },
    #[error("proof in {kind} from {from} is invalid: {reason}")]
    BadProof { kind: &'static str, from: PublicKey, reason: String },
    #[error("new-view for view {view} does not match the view-changes it carries: {reason}")]
    BadNewView { view: u64, reason: String },
    #[error("fetched block {height} is invalid: {reason}")]
    BadSyncedBlock { height: u64, reason: String },

    // ---- Protocol drops (the message was valid but is not for us now) ----
    #[error("message for view {view} dropped: this replica is in view {current}")]
    StaleView { view: u64, current: u64 },
    #[error("message for view {view} dropped: more than {max_ahead} views ahead of view {current}")]
    FarFutureView { view: u64, current: u64, max_ahead: u64 },
    #[error("{kind} for height {height} dropped before its transactions were checked: heights up to {final_height} are committed here")]
    AlreadyFinal { kind: &'static str, height: u64, final_height: u64 },
    #[error("message for height {height} dropped: outside the watermarks ({low}, {high}]")]
    OutsideWatermarks { height: u64, low: u64, high: u64 },
    #[error("pre-prepare for view {view} height {height} conflicts with the batch already accepted")]
    ConflictingPrePrepare { view: u64, height: u64 },
    #[error("message for view {view} dropped: view change in progress")]
    ViewChangeInProgress { view: u64 },
    #[error("vote refused by the safety rules: {0}")]
    SafetyViolation(String),

    // ---- Raft (crash faults only: senders are authenticated by the transport) ----
    #[error("raft message claims to be from raft id {claimed}, but the transport authenticated {sender}")]
    SenderMismatch { sender: PublicKey, claimed: u64 },
    #[error("raft message from {from} is malformed: {reason}")]
    BadRaftMessage { from: PublicKey, reason: String },
    #[error("raft entry {index} is invalid: {reason}")]
    BadEntry { index: u64, reason: String },
    #[error("raft message refused (it would break this node's log): {0}")]
    RaftRefused(String),

    // ---- Local state ----
    #[error("safety record is corrupt: {0}")]
    CorruptSafetyRecord(String),
    #[error("raft log is corrupt: {0}")]
    CorruptRaftLog(String),
    #[error("invalid consensus configuration: {0}")]
    Config(String),
}

impl From<ChainError> for ConsensusError {
    fn from(e: ChainError) -> Self {
        ConsensusError::Decode(e.to_string())
    }
}

pub type Result<T, E = ConsensusError> = std::result::Result<T, E>;
