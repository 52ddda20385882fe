//! What the node needs from an ordering engine besides driving it with [`Consensus`]: how the
//! engine's peer messages travel (encoding, and decoding plus verification given the sender the
//! transport authenticated), how a block fetched for catch-up is checked, and the numbers the
//! node's readiness and status report. PBFT implements it with its [`crate::pbft::VerifyContext`];
//! a Raft engine sits behind the same two traits, so the node's driver, its p2p loop and its API
//! are generic over the engine and never name a protocol.

use ordo_chain::{Block, Committee, PublicKey};

use crate::error::Result;
use crate::interface::{CommittedBatch, Consensus};
use crate::verified::Verified;

/// The stateless half of an engine, shared by the tasks that verify peer input in parallel
/// (on the blocking pool) while the driver owns the engine itself.
pub trait Verifier: Send + Sync + 'static {
    type Message: Send + 'static;

    /// Decodes and verifies bytes the transport received from `sender`, a validator it
    /// authenticated. A signed protocol (PBFT) checks the signatures inside and may ignore the
    /// sender; an unsigned one (Raft) must check that the message claims to be from `sender`.
    fn decode_and_verify(&self, sender: &PublicKey, bytes: &[u8]) -> Result<Verified<Self::Message>>;

    /// The wire bytes of a message this node sends.
    fn encode(&self, message: &Self::Message) -> Vec<u8>;

    /// Checks a block a peer served for catch-up: its certificate is of this engine's kind and
    /// proves the committee ordered it, and its header describes its transactions.
    fn verify_block(&self, block: &Block) -> Result<Verified<CommittedBatch>>;

    /// The committee, in genesis order.
    fn committee(&self) -> &Committee;

    /// How many validators may fail while the rest still order: f Byzantine for PBFT, a
    /// minority of crashes for Raft.
    fn faults_tolerated(&self) -> usize;

    /// The largest message this engine sends or accepts, for the transport's frame limit.
    fn message_max_bytes(&self) -> usize;
}

/// An engine the node can run: a [`Consensus`] core whose messages its [`Verifier`] checks
/// (the quorum readiness needs is [`Consensus::quorum`]).
pub trait Engine: Consensus<Message = <Self::Verifier as Verifier>::Message> + Send + 'static {
    type Verifier: Verifier;
}
