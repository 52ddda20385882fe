//! Ordo's peer-to-peer layer, and the only crate of Ordo that imports libp2p.
//!
//! It ships opaque byte messages between the validators of one chain; the node decides what the
//! bytes mean and verifies them. A validator's ed25519 key is its libp2p identity (protocol §1), so
//! "admitted peer" and "validator" are the same list: any other peer is refused at connection time.
//!
//! Layout:
//! - `config`: `P2pConfig` with defaults and `validate()`.
//! - `identity`: seed → libp2p keypair, `peer_id_of`, the committee index.
//! - `announce`: signed address announcements used for discovery.
//! - `codec`: the length-prefixed request-response codec.
//! - `behaviour`: the libp2p stack (TCP + Noise + Yamux, identify, gossipsub, request-response,
//!   allow list, connection limits) and topic names.
//! - `service`: the network task (`spawn`) with admission, discovery, redial and back-pressure.
//! - `handle`: `P2pHandle`, `P2pEvent`, `PeerStatus`, counters.
//! - `error`: `P2pError`.
//!
//! See `docs/p2p.md` for the protocols, topics, formats and limits.

pub mod announce;
mod behaviour;
pub mod codec;
pub mod config;
pub mod error;
mod handle;
pub mod identity;
mod service;

pub use behaviour::topic_name;
pub use config::{P2pConfig, ValidatorPeer, CHAIN_ID_MAX_BYTES};
pub use error::{P2pError, Result};
pub use handle::{P2pCounters, P2pEvent, P2pHandle, PeerStatus};
pub use identity::{libp2p_keypair, peer_id_of, public_key_in, Committee};
pub use service::spawn;

/// Re-exported so that callers can name a PeerId and the shutdown token without depending on
/// libp2p or tokio-util themselves.
pub use libp2p::PeerId;
pub use tokio_util::sync::CancellationToken;
