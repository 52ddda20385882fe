//! The node-facing API: the cloneable `P2pHandle` that sends commands to the network task, the
//! `P2pEvent`s it hands back, and the status and counters it exposes without a round trip.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ordo_chain::PublicKey;
use tokio::sync::{mpsc, oneshot};

use crate::error::{P2pError, Result};

/// What the network hands to the node. Every `from` is an admitted validator, proven by the
/// transport (Noise) or by the gossip signature; the bytes themselves are not checked here.
#[derive(Debug)]
pub enum P2pEvent {
    /// A transaction gossiped by validator `from`.
    Tx { from: PublicKey, bytes: Vec<u8> },
    /// A consensus message from `from`, broadcast or sent directly.
    Consensus { from: PublicKey, bytes: Vec<u8> },
    /// `from` asks for blocks `from_height..=to_height`; answer through `reply`. Dropping `reply`
    /// without sending refuses the request.
    BlockRequest { from: PublicKey, from_height: u64, to_height: u64, reply: oneshot::Sender<Vec<u8>> },
    /// The first connection to a validator opened.
    PeerUp(PublicKey),
    /// The last connection to a validator closed.
    PeerDown(PublicKey),
}

/// One committee member as seen from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub key: PublicKey,
    pub name: String,
    pub connected: bool,
    /// The address of the live connection, or else the first address known for the peer.
    pub addr: Option<String>,
    /// The peer subscribed to all of this chain's gossip topics, so a broadcast reaches it.
    pub gossip_ready: bool,
}

/// Counters for metrics; all monotonic since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct P2pCounters {
    /// Connections refused because the peer is not a validator.
    pub outsiders_refused: u64,
    /// Gossip messages rejected (unknown author, bad announcement, too large).
    pub gossip_rejected: u64,
    /// Messages dropped because they exceeded a size limit.
    pub oversize_dropped: u64,
    /// Announcements that taught us a newer address set.
    pub announcements_accepted: u64,
    /// Dials started to validators or bootstrap addresses.
    pub dials: u64,
    /// Times the network stopped reading because the node had not taken its events.
    pub holds: u64,
    /// Milliseconds spent so, in total (holds that ended).
    pub held_ms: u64,
    /// When the current hold began (Unix ms), or 0 while the network is read.
    pub held_since_ms: u64,
}

/// State the network task publishes for synchronous readers.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub outsiders_refused: AtomicU64,
    pub gossip_rejected: AtomicU64,
    pub oversize_dropped: Arc<AtomicU64>,
    pub announcements_accepted: AtomicU64,
    pub dials: AtomicU64,
    pub holds: AtomicU64,
    pub held_ms: AtomicU64,
    pub held_since_ms: AtomicU64,
    pub peers: Mutex<Vec<PeerStatus>>,
    pub local_addrs: Mutex<Vec<String>>,
}

/// Work for the network task; each carries the channel its result goes back on.
#[derive(Debug)]
pub(crate) enum Command {
    /// Gossip on the transaction topic. (Consensus messages go direct, never by gossip.)
    PublishTx {
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<()>>,
    },
    SendDirect {
        to: PublicKey,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<()>>,
    },
    BroadcastDirect {
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<()>>,
    },
    RequestBlocks {
        from: PublicKey,
        from_height: u64,
        to_height: u64,
        reply: oneshot::Sender<Result<Vec<u8>>>,
    },
}

/// A cheap, cloneable handle on the network task. Every call fails with `P2pError::Stopped` once
/// the task has exited.
#[derive(Debug, Clone)]
pub struct P2pHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) local_key: PublicKey,
    pub(crate) max_message_bytes: usize,
    pub(crate) block_request_timeout_ms: u64,
}

impl P2pHandle {
    /// This validator's public key (its PeerId derives from it).
    pub fn local_key(&self) -> PublicKey {
        self.local_key
    }

    fn check_size(&self, kind: &'static str, bytes: &[u8]) -> Result<()> {
        if bytes.len() > self.max_message_bytes {
            return Err(P2pError::MessageTooLarge { kind, size_bytes: bytes.len(), max_bytes: self.max_message_bytes });
        }
        Ok(())
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)?
    }

    /// Gossips a transaction to every validator. Fails when it is too large or when no validator
    /// is subscribed yet.
    pub async fn publish_tx(&self, bytes: Vec<u8>) -> Result<()> {
        self.check_size("tx", &bytes)?;
        self.call(|reply| Command::PublishTx { bytes, reply }).await
    }

    /// Sends a consensus message to every connected validator, each over its own authenticated
    /// connection (as [`P2pHandle::send_consensus`] does for one). Not through gossipsub: in a
    /// committee where every validator is connected to every other, forwarding would only add
    /// copies, and each gossiped message would be signed and verified once more on top of the
    /// consensus signatures inside it and the connection's authentication (docs/p2p.md). Fails
    /// only when no validator is connected.
    pub async fn broadcast_consensus(&self, bytes: Vec<u8>) -> Result<()> {
        self.check_size("consensus", &bytes)?;
        self.call(|reply| Command::BroadcastDirect { bytes, reply }).await
    }

    /// Sends a consensus message to one validator. Returns once the message is queued on a live
    /// connection; delivery is not confirmed, as consensus protocols tolerate loss.
    pub async fn send_consensus(&self, to: PublicKey, bytes: Vec<u8>) -> Result<()> {
        self.check_size("consensus", &bytes)?;
        self.call(|reply| Command::SendDirect { to, bytes, reply }).await
    }

    /// Asks validator `from` for blocks `from_height..=to_height` and returns its answer bytes.
    pub async fn request_blocks(&self, from: PublicKey, from_height: u64, to_height: u64) -> Result<Vec<u8>> {
        if from_height > to_height {
            return Err(P2pError::BadBlockRange { from_height, to_height });
        }
        let timeout_ms = self.block_request_timeout_ms;
        // The network task enforces the timeout too; this outer bound also covers a task that is
        // slow to take the command because the node is not draining its events.
        let call = self.call(|reply| Command::RequestBlocks { from, from_height, to_height, reply });
        match tokio::time::timeout(Duration::from_millis(timeout_ms.saturating_mul(2)), call).await {
            Ok(r) => r,
            Err(_) => Err(P2pError::RequestTimeout { key: from, timeout_ms }),
        }
    }

    /// Every committee member but this one, with its connectivity.
    pub fn peers(&self) -> Vec<PeerStatus> {
        self.shared.peers.lock().expect("peer status lock poisoned").clone()
    }

    /// How many connections from or to non-validators were refused.
    pub fn outsiders_refused(&self) -> u64 {
        self.shared.outsiders_refused.load(Ordering::Relaxed)
    }

    pub fn counters(&self) -> P2pCounters {
        let s = &self.shared;
        P2pCounters {
            outsiders_refused: s.outsiders_refused.load(Ordering::Relaxed),
            gossip_rejected: s.gossip_rejected.load(Ordering::Relaxed),
            oversize_dropped: s.oversize_dropped.load(Ordering::Relaxed),
            announcements_accepted: s.announcements_accepted.load(Ordering::Relaxed),
            dials: s.dials.load(Ordering::Relaxed),
            holds: s.holds.load(Ordering::Relaxed),
            held_ms: s.held_ms.load(Ordering::Relaxed),
            held_since_ms: s.held_since_ms.load(Ordering::Relaxed),
        }
    }

    /// The addresses this node actually listens on (with the real port when `tcp/0` was asked).
    pub fn local_addrs(&self) -> Vec<String> {
        self.shared.local_addrs.lock().expect("local address lock poisoned").clone()
    }

    /// Resolves when the network task has exited (after the shutdown signal).
    pub async fn stopped(&self) {
        self.commands.closed().await
    }
}
