//! Raft for crash-only consortia: tikv/raft-rs's `RawNode` behind the one [`crate::Consensus`]
//! trait, pure like PBFT (no IO, no clock, no hidden randomness).
//!
//! - [`message`]: Ordo's own Raft wire message (a subset of raft-rs's fields, encoded with
//!   `ordo_chain::codec`; peer bytes are never parsed as protobuf) and the batch entry payload.
//! - [`verify`]: the verification step: the authenticated sender, bounds, and every batch
//!   entry's leader certificate; `verify_block` for fetched blocks.
//! - [`storage`]: the engine's image of its durable log (raft-rs's `Storage`) and its records.
//! - [`pool`]: the pending transaction pool.
//! - [`engine`]: [`RaftEngine`], the state machine implementing `Consensus`.

pub mod engine;
pub mod message;
pub mod storage;
pub mod verify;

#[cfg(any(test, feature = "sim"))]
pub use engine::RaftFaults;
pub use engine::{RaftCounters, RaftEngine, RaftRestore};
pub use message::{EntryBatch, RaftEntry, RaftKind, RaftMessage, SnapshotMeta};
pub use storage::LogBase;
pub use verify::{decode_and_verify, verify_block, verify_message, RaftVerifyContext};
