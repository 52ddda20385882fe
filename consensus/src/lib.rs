//! `ordo-consensus`: Ordo's ordering core. Pure state machines: verified inputs and a clock reading
//! go in, a list of actions comes out; nothing here does IO, reads a clock, draws randomness or
//! spawns a thread, so the node can drive it and the simulation can replay it exactly.
//!
//! Layout:
//! - [`interface`]: the one driving interface ([`Consensus`], [`Input`], [`Action`], [`Status`])
//!   that PBFT and Raft both implement.
//! - [`engine`]: what the node needs besides driving a core ([`Verifier`]: message decoding and
//!   verification given the authenticated sender, encoding, catch-up block checks), so the
//!   node is generic over the engine ([`Engine`]).
//! - [`verified`]: [`Verified<T>`], the proof that a peer message or fetched block passed its checks.
//! - [`config`]: the PBFT and Raft parameters with their defaults and start-up validation.
//! - [`pbft`]: the PBFT protocol (Castro & Liskov, OSDI'99 / TOCS'02): messages (one file per
//!   family) with their wire encoding, verification, the safety record, and the replica itself.
//! - [`raft`]: Raft for crash-only committees: tikv/raft-rs's `RawNode` behind the same trait,
//!   with Ordo's own wire messages, block proposals, durable log actions and catch-up.
//! - `pool`: the pending transaction pool both engines keep (FIFO, bounded, keyed id index).
//! - [`error`]: the crate's one error type.
//! - `sim` and `raft_sim` (feature `sim`): the seeded deterministic simulations of PBFT and of
//!   Raft that try to break the protocols.

pub mod config;
pub mod engine;
pub mod error;
pub mod interface;
pub mod pbft;
mod pool;
pub mod raft;
#[cfg(feature = "sim")]
pub mod raft_sim;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verified;

pub use config::{PbftConfig, RaftConfig};
pub use engine::{Engine, Verifier};
pub use error::ConsensusError;
pub use interface::{Action, CommittedBatch, Consensus, Input, Mode, Status};
pub use verified::Verified;
