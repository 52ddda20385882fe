//! The libp2p stack: the composed `NetworkBehaviour`, the gossip topics and request protocols of a
//! chain, and the swarm builder (TCP + Noise + Yamux).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, connection_limits, gossipsub, identify, noise, request_response, tcp, yamux, StreamProtocol,
    Swarm, SwarmBuilder,
};

use crate::codec::FrameCodec;
use crate::config::P2pConfig;
use crate::error::{P2pError, Result};
use crate::identity::{libp2p_keypair, Committee};

/// Gossipsub frames carry a protobuf envelope (topic, author, sequence number, signature) around
/// the payload; this much slack lets a payload of exactly `max_message_bytes` through.
pub(crate) const GOSSIP_OVERHEAD_BYTES: usize = 1024;

/// The largest gossip frame accepted off the wire. It is twice the payload limit on purpose: a
/// frame over the transport limit makes gossipsub drop the whole inbound stream, and the sender
/// keeps writing into it, so every later message from that peer is lost. Frames up to twice the
/// limit are instead decoded and then rejected by our validation (logged, counted, not
/// forwarded), which keeps the stream alive for the messages that follow.
pub(crate) fn gossip_transmit_max_bytes(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_mul(2).saturating_add(GOSSIP_OVERHEAD_BYTES)
}
/// The most message ids one IHAVE carries (gossipsub's default is 5,000). A gossipsub message id
/// here is the author's PeerId in base58 plus the sequence number, about 73 bytes on the wire, so
/// 150 ids make an IHAVE of about 11 KB. With the default, a node that had published many small
/// batches (one transaction per client request) advertised thousands of ids in one IHAVE, over
/// the receiver's control-size limit: the receiver dropped the whole inbound stream ("rpc control
/// size exceeds max control message size") and lost every message queued behind it. Ids left
/// out are advertised at the next heartbeat (each one is shuffled in for three heartbeats), and
/// the node's own re-gossip covers what lazy repair does not.
pub(crate) const GOSSIP_MAX_IHAVE_IDS: usize = 150;
/// The most bytes of control messages (IHAVE, IWANT, IDONTWANT, GRAFT, PRUNE) accepted in one
/// frame (gossipsub's default is 16 KiB). Room for a full IHAVE of `GOSSIP_MAX_IHAVE_IDS` ids with
/// IDONTWANTs beside it, and for a peer running gossipsub's defaults.
pub(crate) const GOSSIP_MAX_CONTROL_BYTES: usize = 64 * 1024;
/// A block-sync request is `u64 from_height || u64 to_height`.
pub(crate) const SYNC_REQUEST_BYTES: usize = 16;
/// A direct message is acknowledged with an empty frame; a few bytes of room suffice.
const DIRECT_ACK_MAX_BYTES: usize = 16;
/// Connections per validator: one each way covers simultaneous dials.
const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Handshakes in progress from unknown dialers; bounds what an outsider can make us hold.
const MAX_PENDING_INCOMING: u32 = 64;

/// The gossip topic of one message family on one chain: `ordo/<chain_id>/<kind>/v1`.
pub fn topic_name(chain_id: &str, kind: &str) -> String {
    format!("ordo/{chain_id}/{kind}/v1")
}

/// This chain's two gossip topics. (Consensus messages travel direct, not by gossip.)
#[derive(Debug, Clone)]
pub(crate) struct Topics {
    pub tx: gossipsub::IdentTopic,
    pub peers: gossipsub::IdentTopic,
}

impl Topics {
    pub fn new(chain_id: &str) -> Self {
        Topics {
            tx: gossipsub::IdentTopic::new(topic_name(chain_id, "tx")),
            peers: gossipsub::IdentTopic::new(topic_name(chain_id, "peers")),
        }
    }

    pub fn all(&self) -> [&gossipsub::IdentTopic; 2] {
        [&self.tx, &self.peers]
    }
}

/// Everything a validator speaks. Field order matters: the allow list sees each new connection
/// first, so an outsider is refused before any other protocol hears of it.
#[derive(NetworkBehaviour)]
pub(crate) struct OrdoBehaviour {
    pub allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    pub limits: connection_limits::Behaviour,
    pub identify: identify::Behaviour,
    pub gossip: gossipsub::Behaviour,
    pub direct: request_response::Behaviour<FrameCodec>,
    pub sync: request_response::Behaviour<FrameCodec>,
}

fn protocol(name: String) -> Result<StreamProtocol> {
    StreamProtocol::try_from_owned(name.clone())
        .map_err(|e| P2pError::Setup { reason: format!("protocol name {name:?}: {e}") })
}

fn build_behaviour(
    key: &libp2p::identity::Keypair,
    config: &P2pConfig,
    committee: &Committee,
    oversize_frames: &Arc<AtomicU64>,
) -> Result<OrdoBehaviour> {
    let chain = &config.chain_id;

    let mut allow = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    let me = key.public().to_peer_id();
    for m in committee.members() {
        if m.peer_id != me {
            allow.allow_peer(m.peer_id);
        }
    }

    let committee_size = committee.len() as u32;
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
            .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
            .with_max_established(Some(committee_size.saturating_mul(MAX_CONNECTIONS_PER_PEER).max(1))),
    );

    let identify = identify::Behaviour::new(
        identify::Config::new(format!("/ordo/{chain}/1"), key.public())
            .with_agent_version(format!("ordo-p2p/{}", env!("CARGO_PKG_VERSION"))),
    );

    let tx_topic = Topics::new(chain).tx.hash();
    let gossip_config = gossipsub::ConfigBuilder::default()
        // Messages carry their author and a sequence number (the message id) but no gossipsub
        // signature: only validators can connect at all (the allow-list, Noise), every payload
        // that matters carries its own signatures (client transactions, signed announcements,
        // PBFT votes), and signing then verifying every message over its whole payload cost a
        // node 4-9% of its CPU under load (docs/p2p.md). Permissive still rejects a message whose
        // fields are malformed; one without an author is refused in `judge_gossip`.
        .validation_mode(gossipsub::ValidationMode::Permissive)
        // Messages are forwarded only after we accept them, so a non-validator author or a bad
        // announcement stops at the first honest hop.
        .validate_messages()
        .max_transmit_size(gossip_transmit_max_bytes(config.max_message_bytes))
        .heartbeat_interval(Duration::from_millis(config.gossip_heartbeat_ms))
        // Transactions: no mesh, so no forwarding. Every validator connects to every other and
        // a publisher sends its own messages to each subscribed validator (`flood_publish`), so
        // eager forwarding only multiplied the copies: in a 4-validator testnet each node
        // received every gossiped batch about three times (once from its author and once from
        // each of the two others), every copy through TCP, Noise and decoding before gossipsub
        // dropped it as a duplicate, and IDONTWANT (sent on receipt, racing the others'
        // immediate forwards) saved almost none (docs/p2p.md). What forwarding gave is kept by
        // gossipsub's lazy repair: at each heartbeat a validator tells peers outside its mesh
        // (`gossip_lazy`, six: all of them in a committee of up to seven) the ids it holds
        // (IHAVE), and one that missed a batch (its link to the author was down) asks for it
        // (IWANT). The peers topic keeps its mesh:
        // announcements are small and rare, and a node that knows only its bootstrap learns
        // the others through them at once.
        .mesh_n_for_topic(0, tx_topic.clone())
        .mesh_n_low_for_topic(0, tx_topic.clone())
        .mesh_n_high_for_topic(0, tx_topic.clone())
        .mesh_outbound_min_for_topic(0, tx_topic)
        // Lazy repair now carries all of the transaction topic's spread, so its IHAVEs must
        // never break the stream they travel on (see the constants).
        .max_control_messages_sent(GOSSIP_MAX_IHAVE_IDS)
        .max_control_message_size(GOSSIP_MAX_CONTROL_BYTES)
        .build()
        .map_err(|e| P2pError::Setup { reason: format!("gossipsub config: {e}") })?;
    let gossip = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Author(me), gossip_config)
        .map_err(|e| P2pError::Setup { reason: format!("gossipsub: {e}") })?;

    let rr_config = request_response::Config::default()
        .with_request_timeout(Duration::from_millis(config.block_request_timeout_ms));
    let direct = request_response::Behaviour::with_codec(
        FrameCodec {
            max_request_bytes: config.max_message_bytes,
            max_response_bytes: DIRECT_ACK_MAX_BYTES,
            oversize_frames: oversize_frames.clone(),
        },
        [(protocol(format!("/ordo/{chain}/direct/1"))?, request_response::ProtocolSupport::Full)],
        rr_config.clone(),
    );
    let sync = request_response::Behaviour::with_codec(
        FrameCodec {
            max_request_bytes: SYNC_REQUEST_BYTES,
            max_response_bytes: config.max_sync_response_bytes,
            oversize_frames: oversize_frames.clone(),
        },
        [(protocol(format!("/ordo/{chain}/sync/1"))?, request_response::ProtocolSupport::Full)],
        rr_config,
    );

    Ok(OrdoBehaviour { allow, limits, identify, gossip, direct, sync })
}

/// Builds the swarm: TCP (no Nagle delay), Noise XX authentication with the validator key, Yamux
/// multiplexing, and the behaviour above.
pub(crate) fn build_swarm(
    config: &P2pConfig,
    committee: &Committee,
    oversize_frames: &Arc<AtomicU64>,
) -> Result<Swarm<OrdoBehaviour>> {
    let setup = |e: &dyn std::fmt::Display| P2pError::Setup { reason: e.to_string() };
    let swarm = SwarmBuilder::with_existing_identity(libp2p_keypair(config.seed))
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| setup(&e))?
        .with_behaviour(|key| {
            build_behaviour(key, config, committee, oversize_frames)
                .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_millis(config.idle_connection_timeout_ms)))
        .build();
    Ok(swarm)
}
