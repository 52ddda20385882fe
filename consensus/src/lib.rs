//! `ordo-consensus`: Ordo's ordering core. Pure state machines: verified inputs and a clock reading
//! go in, a list of actions comes out; nothing here does IO, reads a clock, draws randomness or
//! spawns a thread, so the node can drive it and the simulation can replay it exactly.
//!
//! Layout:
//! - [`interface`]: the one driving interface ([`Consensus`], [`Input`], [`Action`], [`Status`])
//!   that PBFT implements and Raft can later sit behind unchanged.
//! - [`engine`]: what the node needs besides driving a core ([`Verifier`]: message decoding and
//!   verification given the authenticated sender, encoding, catch-up block checks, quorum), so the
//!   node is generic over the engine ([`Engine`]).
//! - [`verified`]: [`Verified<T>`], the proof that a peer message or fetched block passed its checks.
//! - [`config`]: the PBFT parameters with their defaults and start-up validation.
//! - [`pbft`]: the PBFT protocol (Castro & Liskov, OSDI'99 / TOCS'02): messages (one file per
//!   family) with their wire encoding, verification, the safety record, and the replica itself.
//! - [`error`]: the crate's one error type.
//! - `sim` (feature `sim`): the seeded deterministic simulation that tries to break the protocol.

pub mod config;
pub mod engine;
pub mod error;
pub mod interface;
pub mod pbft;
#[cfg(feature = "sim")]
pub mod sim;
pub mod verified;

pub use config::PbftConfig;
pub use engine::{Engine, Verifier};
pub use error::ConsensusError;
pub use interface::{Action, CommittedBatch, Consensus, Input, Mode, Status};
pub use verified::Verified;
