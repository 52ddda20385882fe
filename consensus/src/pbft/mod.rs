//! PBFT (Castro & Liskov, "Practical Byzantine Fault Tolerance and Proactive Recovery", TOCS
//! 2002; section numbers in comments and tests refer to that paper).
//!
//! - [`messages`]: the six message families, each in its own file, and the wire encoding.
//! - [`verify`]: the verification step that turns wire messages into `Verified<Message>`.
//! - [`safety`]: the safety record persisted before any vote leaves, and the voting rules.
//! - [`replica`]: the state machine implementing [`crate::Consensus`].

pub mod messages;
pub mod replica;
pub mod safety;
pub mod verify;

pub use messages::{Batch, Message, WireMessage};
pub use replica::Replica;
pub use verify::{
    decode_and_verify, verify_block, verify_message, FinalHeight, FreshTxs, KnownTxs, Lease, VerifyContext,
};
