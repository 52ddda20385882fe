//! The network task: one tokio task owns the swarm and runs admission, discovery, redial with
//! backoff, gossip validation, direct messages and block sync, until the shutdown signal fires.
//!
//! Back-pressure: events go to the node through a bounded channel. When it is full the task keeps
//! the undelivered event and stops reading the network (so TCP and Yamux flow control slow the
//! senders down) while it still serves commands, which keeps a node that sends from inside its
//! event loop from deadlocking against us.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, MessageAcceptance, TopicHash};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, ListenError, SwarmEvent};
use libp2p::{allow_block_list, identify, Multiaddr, PeerId, Swarm};
use ordo_chain::{Keypair, PublicKey};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, trace, warn};

use crate::announce::Announcement;
use crate::behaviour::{build_swarm, OrdoBehaviour, OrdoBehaviourEvent, Topics, SYNC_REQUEST_BYTES};
use crate::config::P2pConfig;
use crate::error::{P2pError, Result};
use crate::handle::{Command, P2pEvent, P2pHandle, PeerStatus, Shared};
use crate::identity::{peer_id_of, Committee};

/// How often the task looks for validators to redial.
const DIAL_TICK_MS: u64 = 100;
/// How long `spawn` waits for the listener to report its bound address.
const LISTEN_TIMEOUT_MS: u64 = 5_000;
/// How long resolving one `/dns` address may take at start-up.
const DNS_TIMEOUT_MS: u64 = 2_000;
/// Addresses kept per validator; newer ones push older learned ones out.
const MAX_ADDRS_PER_PEER: usize = 8;

/// What we know about one other validator.
struct PeerState {
    key: PublicKey,
    name: String,
    /// Open connections (0, 1 or 2).
    connections: u32,
    /// The remote address of the newest live connection.
    live_addr: Option<Multiaddr>,
    /// The genesis `p2p_addr`, already resolved.
    genesis_addrs: Vec<Multiaddr>,
    /// From the newest accepted signed announcement.
    announced_addrs: Vec<Multiaddr>,
    /// From identify, bootstrap resolution and our own successful dials.
    learned_addrs: VecDeque<Multiaddr>,
    last_announce_seq: u64,
    dialing: bool,
    next_dial_at: Instant,
    backoff_ms: u64,
    topics: HashSet<TopicHash>,
}

impl PeerState {
    fn dial_addrs(&self) -> Vec<Multiaddr> {
        let mut out: Vec<Multiaddr> = Vec::new();
        for a in self.announced_addrs.iter().chain(&self.genesis_addrs).chain(&self.learned_addrs) {
            if !out.contains(a) && out.len() < MAX_ADDRS_PER_PEER {
                out.push(a.clone());
            }
        }
        out
    }

    fn learn(&mut self, addr: Multiaddr) {
        if self.learned_addrs.contains(&addr) {
            return;
        }
        if self.learned_addrs.len() == MAX_ADDRS_PER_PEER {
            self.learned_addrs.pop_back();
        }
        self.learned_addrs.push_front(addr);
    }
}

/// A bootstrap address given without `/p2p/<peer id>`: dialled until we learn who answers there.
struct BootstrapDial {
    addr: Multiaddr,
    pending: Option<ConnectionId>,
    next_dial_at: Instant,
    backoff_ms: u64,
}

/// Who an outbound block request went to, and where its answer goes.
type PendingBlockRequest = (PublicKey, oneshot::Sender<Result<Vec<u8>>>);

type BlockReply = BoxFuture<'static, (Option<Vec<u8>>, ResponseChannel<Vec<u8>>, PublicKey)>;

struct Service {
    swarm: Swarm<OrdoBehaviour>,
    chain_id: String,
    local: Keypair,
    local_peer: PeerId,
    committee: Committee,
    topics: Topics,
    peers: HashMap<PeerId, PeerState>,
    bootstrap: Vec<BootstrapDial>,
    listen_addrs: Vec<Multiaddr>,
    announce_seq: u64,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<P2pEvent>,
    events_closed: bool,
    /// Events the node has not taken yet; non-empty means the network is not being read.
    undelivered: VecDeque<P2pEvent>,
    block_replies: FuturesUnordered<BlockReply>,
    outbound_blocks: HashMap<request_response::OutboundRequestId, PendingBlockRequest>,
    shared: Arc<Shared>,
    status_dirty: bool,
    max_message_bytes: usize,
    max_sync_response_bytes: usize,
    max_pending_block_replies: usize,
    max_outbound_block_requests: usize,
    block_request_timeout_ms: u64,
    dial_backoff_initial_ms: u64,
    dial_backoff_max_ms: u64,
    announce_interval_ms: u64,
}

/// Starts the p2p layer: checks the config, binds the listener, dials the bootstrap and genesis
/// addresses and spawns the network task on the current tokio runtime. Returns once the listener
/// is bound, so `local_addrs()` already holds the real port. The task exits when `shutdown` fires.
pub async fn spawn(config: P2pConfig, shutdown: CancellationToken) -> Result<(P2pHandle, mpsc::Receiver<P2pEvent>)> {
    config.validate()?;
    let local = Keypair::from_seed(config.seed);
    let committee = Committee::new(config.validators.iter().map(|v| (v.key, v.name.clone())));
    let shared = Arc::new(Shared::default());
    let mut swarm = build_swarm(&config, &committee, &shared.oversize_dropped)?;
    let local_peer = *swarm.local_peer_id();

    let topics = Topics::new(&config.chain_id);
    for t in topics.all() {
        swarm
            .behaviour_mut()
            .gossip
            .subscribe(t)
            .map_err(|e| P2pError::Setup { reason: format!("subscribe {t}: {e}") })?;
    }

    let listen: Multiaddr = config.listen.parse().map_err(|e: libp2p::multiaddr::Error| P2pError::BadListenAddr {
        addr: config.listen.clone(),
        reason: e.to_string(),
    })?;
    let listen_err = |reason: String| P2pError::Listen { addr: config.listen.clone(), reason };
    swarm.listen_on(listen).map_err(|e| listen_err(e.to_string()))?;
    let mut listen_addrs = Vec::new();
    let deadline = tokio::time::sleep(Duration::from_millis(LISTEN_TIMEOUT_MS));
    tokio::pin!(deadline);
    while listen_addrs.is_empty() {
        tokio::select! {
            ev = swarm.select_next_some() => match ev {
                SwarmEvent::NewListenAddr { address, .. } => listen_addrs.push(address),
                SwarmEvent::ListenerClosed { reason: Err(e), .. } => return Err(listen_err(e.to_string())),
                SwarmEvent::ListenerError { error, .. } => return Err(listen_err(error.to_string())),
                other => trace!(?other, "swarm event before listening"),
            },
            _ = &mut deadline => return Err(listen_err(format!("no bound address within {LISTEN_TIMEOUT_MS} ms"))),
        }
    }

    let now = Instant::now();
    let mut peers = HashMap::new();
    for v in &config.validators {
        let peer_id = peer_id_of(&v.key);
        if peer_id == local_peer {
            continue;
        }
        let genesis_addrs = if v.p2p_addr.is_empty() { Vec::new() } else { resolve(&v.p2p_addr).await };
        peers.insert(
            peer_id,
            PeerState {
                key: v.key,
                name: v.name.clone(),
                connections: 0,
                live_addr: None,
                genesis_addrs,
                announced_addrs: Vec::new(),
                learned_addrs: VecDeque::new(),
                last_announce_seq: 0,
                dialing: false,
                next_dial_at: now,
                backoff_ms: config.dial_backoff_initial_ms,
                topics: HashSet::new(),
            },
        );
    }

    let mut bootstrap = Vec::new();
    for raw in &config.bootstrap {
        for mut addr in resolve(raw).await {
            let named = match addr.iter().last() {
                Some(Protocol::P2p(id)) => Some(id),
                _ => None,
            };
            if named.is_some() {
                addr.pop();
            }
            match named {
                Some(id) if id == local_peer => {}
                Some(id) => match peers.get_mut(&id) {
                    Some(p) => p.learn(addr),
                    None => warn!(%id, %addr, "bootstrap address names a peer that is not a validator; ignored"),
                },
                None => bootstrap.push(BootstrapDial {
                    addr,
                    pending: None,
                    next_dial_at: now,
                    backoff_ms: config.dial_backoff_initial_ms,
                }),
            }
        }
    }

    let (cmd_tx, cmd_rx) = mpsc::channel(config.command_channel_capacity);
    let (ev_tx, ev_rx) = mpsc::channel(config.event_channel_capacity);
    let handle = P2pHandle {
        commands: cmd_tx,
        shared: shared.clone(),
        local_key: local.public(),
        max_message_bytes: config.max_message_bytes,
        block_request_timeout_ms: config.block_request_timeout_ms,
    };
    let mut service = Service {
        swarm,
        chain_id: config.chain_id.clone(),
        local_peer,
        committee,
        topics,
        peers,
        bootstrap,
        listen_addrs: Vec::new(),
        announce_seq: 0,
        commands: cmd_rx,
        events: ev_tx,
        events_closed: false,
        undelivered: VecDeque::new(),
        block_replies: FuturesUnordered::new(),
        outbound_blocks: HashMap::new(),
        shared,
        status_dirty: true,
        max_message_bytes: config.max_message_bytes,
        max_sync_response_bytes: config.max_sync_response_bytes,
        max_pending_block_replies: config.max_pending_block_replies,
        max_outbound_block_requests: config.max_outbound_block_requests,
        block_request_timeout_ms: config.block_request_timeout_ms,
        dial_backoff_initial_ms: config.dial_backoff_initial_ms,
        dial_backoff_max_ms: config.dial_backoff_max_ms,
        announce_interval_ms: config.announce_interval_ms,
        local,
    };
    for a in listen_addrs {
        service.on_listen_addr(a);
    }
    service.refresh_status();
    info!(
        chain_id = %config.chain_id,
        peer_id = %local_peer,
        addrs = ?service.listen_addrs,
        validators = service.committee.len(),
        "p2p listening"
    );
    tokio::spawn(service.run(shutdown));
    Ok((handle, ev_rx))
}

/// Turns a configured address into dialable TCP addresses, resolving `/dns*` names once with the
/// system resolver (the libp2p DNS transport is not compiled in). Failures are logged and skipped:
/// other addresses or announcements may still reach the peer.
async fn resolve(raw: &str) -> Vec<Multiaddr> {
    let Ok(addr) = raw.parse::<Multiaddr>() else {
        warn!(addr = raw, "not a multiaddr; ignored");
        return Vec::new();
    };
    let mut it = addr.iter();
    let (host, port) = match (it.next(), it.next()) {
        (Some(Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h)), Some(Protocol::Tcp(port))) => {
            (h.to_string(), port)
        }
        _ => return dialable(&addr).into_iter().collect(),
    };
    let rest: Vec<Protocol<'_>> = it.collect();
    let lookup = tokio::net::lookup_host((host.as_str(), port));
    let resolved = match tokio::time::timeout(Duration::from_millis(DNS_TIMEOUT_MS), lookup).await {
        Ok(Ok(found)) => found
            .map(|sa| {
                let mut m = Multiaddr::from(sa.ip());
                m.push(Protocol::Tcp(sa.port()));
                for p in &rest {
                    m.push(p.clone());
                }
                m
            })
            .collect(),
        Ok(Err(e)) => {
            warn!(addr = raw, error = %e, "cannot resolve address; ignored");
            Vec::new()
        }
        Err(_) => {
            warn!(addr = raw, "resolving address timed out; ignored");
            Vec::new()
        }
    };
    resolved
}

/// Keeps only `/ip4|ip6/<specific address>/tcp/<port>[/p2p/<id>]`, the shapes this transport
/// can dial, without the `/p2p` suffix.
fn dialable(addr: &Multiaddr) -> Option<Multiaddr> {
    let mut it = addr.iter();
    let ip_ok = match it.next()? {
        Protocol::Ip4(ip) => !ip.is_unspecified(),
        Protocol::Ip6(ip) => !ip.is_unspecified(),
        _ => false,
    };
    let tcp_ok = matches!(it.next()?, Protocol::Tcp(p) if p != 0);
    let rest_ok = match it.next() {
        None => true,
        Some(Protocol::P2p(_)) => it.next().is_none(),
        Some(_) => false,
    };
    if !(ip_ok && tcp_ok && rest_ok) {
        return None;
    }
    Some(addr.iter().take(2).collect())
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Service {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut dial_tick = tokio::time::interval(Duration::from_millis(DIAL_TICK_MS));
        dial_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut announce_tick = tokio::time::interval(Duration::from_millis(self.announce_interval_ms));
        announce_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            if !self.undelivered.is_empty() {
                // The node is behind: hold the network still, but keep serving commands. The
                // owned permit keeps the wait from borrowing `self` across the other branches.
                let events = self.events.clone();
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    permit = events.reserve_owned() => match permit {
                        Ok(permit) => {
                            if let Some(ev) = self.undelivered.pop_front() {
                                permit.send(ev);
                            }
                            if self.undelivered.is_empty() {
                                self.hold_ended();
                            }
                        }
                        Err(_) => self.close_events(),
                    },
                    Some(cmd) = self.commands.recv() => self.on_command(cmd),
                }
            } else {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                    Some(cmd) = self.commands.recv() => self.on_command(cmd),
                    Some((bytes, channel, from)) = self.block_replies.next(), if !self.block_replies.is_empty() => {
                        self.on_block_reply(bytes, channel, from)
                    }
                    _ = dial_tick.tick() => self.redial(),
                    _ = announce_tick.tick() => self.announce(),
                }
            }
            if self.status_dirty {
                self.refresh_status();
            }
        }
        for (_, (key, reply)) in self.outbound_blocks.drain() {
            let _ = reply.send(Err(P2pError::RequestFailed { key, reason: "p2p service stopped".into() }));
        }
        info!(peer_id = %self.local_peer, "p2p stopped");
    }

    fn close_events(&mut self) {
        if !self.events_closed {
            info!("the event receiver was dropped; network events are discarded from now on");
        }
        self.events_closed = true;
        self.undelivered.clear();
        self.hold_ended();
    }

    /// The node fell behind: the network is not read until it takes the held events.
    fn hold_began(&mut self) {
        bump(&self.shared.holds);
        self.shared.held_since_ms.store(now_ms().max(1), Ordering::Relaxed);
    }

    fn hold_ended(&mut self) {
        let since = self.shared.held_since_ms.swap(0, Ordering::Relaxed);
        if since > 0 {
            self.shared.held_ms.fetch_add(now_ms().saturating_sub(since), Ordering::Relaxed);
        }
    }

    fn emit(&mut self, ev: P2pEvent) {
        if self.events_closed {
            return;
        }
        if !self.undelivered.is_empty() {
            self.undelivered.push_back(ev);
            return;
        }
        match self.events.try_send(ev) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => {
                self.undelivered.push_back(ev);
                self.hold_began();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.close_events(),
        }
    }

    fn refresh_status(&mut self) {
        self.status_dirty = false;
        let all: Vec<TopicHash> = self.topics.all().iter().map(|t| t.hash()).collect();
        let mut list = Vec::with_capacity(self.peers.len());
        for m in self.committee.members() {
            let Some(p) = self.peers.get(&m.peer_id) else { continue };
            list.push(PeerStatus {
                key: p.key,
                name: p.name.clone(),
                connected: p.connections > 0,
                addr: p.live_addr.clone().or_else(|| p.dial_addrs().into_iter().next()).map(|a| a.to_string()),
                gossip_ready: p.connections > 0 && all.iter().all(|t| p.topics.contains(t)),
            });
        }
        *self.shared.peers.lock().expect("peer status lock poisoned") = list;
        let addrs = self.listen_addrs.iter().map(|a| a.to_string()).collect();
        *self.shared.local_addrs.lock().expect("local address lock poisoned") = addrs;
    }

    fn on_listen_addr(&mut self, addr: Multiaddr) {
        if !self.listen_addrs.contains(&addr) {
            self.listen_addrs.push(addr);
            self.status_dirty = true;
        }
    }

    // ----- dialing -----

    fn redial(&mut self) {
        let now = Instant::now();
        let mut dials = Vec::new();
        for (peer_id, p) in &self.peers {
            if p.connections == 0 && !p.dialing && now >= p.next_dial_at {
                let addrs = p.dial_addrs();
                if !addrs.is_empty() {
                    dials.push((*peer_id, addrs));
                }
            }
        }
        for (peer_id, addrs) in dials {
            let opts = DialOpts::peer_id(peer_id)
                .addresses(addrs.clone())
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            bump(&self.shared.dials);
            let result = self.swarm.dial(opts);
            let p = self.peers.get_mut(&peer_id).expect("dials come from the peer map");
            match result {
                Ok(()) => {
                    debug!(peer = %p.name, ?addrs, "dialing validator");
                    p.dialing = true;
                }
                Err(DialError::DialPeerConditionFalse(_)) => {}
                Err(e) => {
                    debug!(peer = %p.name, error = %e, "dial refused locally");
                    Self::back_off(p, self.dial_backoff_max_ms);
                }
            }
        }
        for b in &mut self.bootstrap {
            if b.pending.is_none() && now >= b.next_dial_at {
                let opts = DialOpts::unknown_peer_id().address(b.addr.clone()).build();
                let id = opts.connection_id();
                bump(&self.shared.dials);
                match self.swarm.dial(opts) {
                    Ok(()) => b.pending = Some(id),
                    Err(e) => {
                        debug!(addr = %b.addr, error = %e, "bootstrap dial refused locally");
                        b.next_dial_at = now + Duration::from_millis(b.backoff_ms);
                        b.backoff_ms = (b.backoff_ms * 2).min(self.dial_backoff_max_ms);
                    }
                }
            }
        }
    }

    /// Schedules the next attempt after the current delay, then doubles the delay up to the cap.
    fn back_off(p: &mut PeerState, max_ms: u64) {
        p.dialing = false;
        p.next_dial_at = Instant::now() + Duration::from_millis(p.backoff_ms);
        p.backoff_ms = (p.backoff_ms.saturating_mul(2)).min(max_ms);
    }

    // ----- swarm events -----

    fn on_swarm_event(&mut self, ev: SwarmEvent<OrdoBehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => self.on_listen_addr(address),
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| *a != address);
                self.status_dirty = true;
            }
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                self.on_connected(peer_id, connection_id, endpoint, num_established.get())
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established, cause, .. } => {
                self.on_disconnected(peer_id, num_established, cause.map(|c| c.to_string()))
            }
            SwarmEvent::OutgoingConnectionError { connection_id, peer_id, error } => {
                self.on_dial_error(connection_id, peer_id, error)
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, peer_id, .. } => {
                if let ListenError::Denied { cause } = &error {
                    if cause.downcast_ref::<allow_block_list::NotAllowed>().is_some() {
                        bump(&self.shared.outsiders_refused);
                        warn!(peer = ?peer_id, addr = %send_back_addr, "refused inbound connection from a non-validator");
                        return;
                    }
                }
                debug!(addr = %send_back_addr, error = %error, "inbound connection failed");
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour_event(ev),
            other => trace!(?other, "swarm event"),
        }
    }

    fn on_connected(&mut self, peer_id: PeerId, connection_id: ConnectionId, endpoint: ConnectedPoint, count: u32) {
        let remote = endpoint.get_remote_address().clone();
        let Some(key) = self.committee.key_of(&peer_id) else {
            // The allow list should have refused this connection already; never let it live.
            bump(&self.shared.outsiders_refused);
            warn!(%peer_id, addr = %remote, "connection from a non-validator got through; disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer_id);
            return;
        };
        if let Some(i) = self.bootstrap.iter().position(|b| b.pending == Some(connection_id)) {
            let b = self.bootstrap.swap_remove(i);
            if let Some(p) = self.peers.get_mut(&peer_id) {
                debug!(peer = %p.name, addr = %b.addr, "bootstrap address resolved to a validator");
                p.learn(b.addr);
            }
        }
        let initial_ms = self.dial_backoff_initial_ms;
        let Some(p) = self.peers.get_mut(&peer_id) else { return };
        p.connections = count;
        p.dialing = false;
        p.backoff_ms = initial_ms;
        if endpoint.is_dialer() {
            if let Some(a) = dialable(&remote) {
                p.learn(a);
            }
        }
        p.live_addr = Some(remote);
        self.status_dirty = true;
        if count == 1 {
            info!(peer = %p.name, addr = ?p.live_addr, "validator connected");
            self.emit(P2pEvent::PeerUp(key));
        }
    }

    fn on_disconnected(&mut self, peer_id: PeerId, remaining: u32, cause: Option<String>) {
        let Some(p) = self.peers.get_mut(&peer_id) else { return };
        p.connections = remaining;
        self.status_dirty = true;
        if remaining == 0 {
            info!(peer = %p.name, ?cause, "validator disconnected");
            p.live_addr = None;
            p.topics.clear();
            p.dialing = false;
            // Redial after the current delay: the first one is short, failures then double it.
            p.next_dial_at = Instant::now() + Duration::from_millis(p.backoff_ms);
            let key = p.key;
            self.emit(P2pEvent::PeerDown(key));
        }
    }

    fn on_dial_error(&mut self, connection_id: ConnectionId, peer_id: Option<PeerId>, error: DialError) {
        let outsider = matches!(&error, DialError::Denied { cause } if cause.downcast_ref::<allow_block_list::NotAllowed>().is_some());
        if outsider {
            bump(&self.shared.outsiders_refused);
            warn!(peer = ?peer_id, "refused outbound connection to a non-validator");
        }
        if let Some(b) = self.bootstrap.iter_mut().find(|b| b.pending == Some(connection_id)) {
            b.pending = None;
            if matches!(error, DialError::LocalPeerId { .. }) {
                // The bootstrap address is our own: nothing to learn there.
                let addr = b.addr.clone();
                self.bootstrap.retain(|b| b.addr != addr);
                return;
            }
            debug!(addr = %b.addr, error = %error, "bootstrap dial failed");
            b.next_dial_at = Instant::now() + Duration::from_millis(b.backoff_ms);
            b.backoff_ms = (b.backoff_ms.saturating_mul(2)).min(self.dial_backoff_max_ms);
            return;
        }
        let max_ms = self.dial_backoff_max_ms;
        if let Some(p) = peer_id.and_then(|id| self.peers.get_mut(&id)) {
            if p.connections == 0 {
                debug!(peer = %p.name, retry_in_ms = p.backoff_ms, error = %error, "dial failed");
                Self::back_off(p, max_ms);
            } else {
                p.dialing = false;
            }
        }
    }

    fn on_behaviour_event(&mut self, ev: OrdoBehaviourEvent) {
        match ev {
            OrdoBehaviourEvent::Allow(never) | OrdoBehaviourEvent::Limits(never) => match never {},
            OrdoBehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    for a in info.listen_addrs.iter().filter_map(dialable) {
                        p.learn(a);
                    }
                }
            }
            OrdoBehaviourEvent::Identify(other) => trace!(?other, "identify"),
            OrdoBehaviourEvent::Gossip(gossipsub::Event::Message { propagation_source, message_id, message }) => {
                let verdict = self.judge_gossip(message);
                let _ = self.swarm.behaviour_mut().gossip.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    verdict,
                );
            }
            OrdoBehaviourEvent::Gossip(gossipsub::Event::Subscribed { peer_id, topic, .. }) => {
                let announce = topic == self.topics.peers.hash();
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.topics.insert(topic);
                    self.status_dirty = true;
                }
                if announce {
                    // A new listener on the peers topic: tell it (and everyone) where we are now
                    // rather than at the next periodic announcement.
                    self.announce();
                }
            }
            OrdoBehaviourEvent::Gossip(gossipsub::Event::Unsubscribed { peer_id, topic }) => {
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.topics.remove(&topic);
                    self.status_dirty = true;
                }
            }
            OrdoBehaviourEvent::Gossip(other) => debug!(?other, "gossipsub"),
            OrdoBehaviourEvent::Direct(ev) => self.on_direct(ev),
            OrdoBehaviourEvent::Sync(ev) => self.on_sync(ev),
        }
    }

    // ----- gossip -----

    /// Decides the fate of one gossip message and hands accepted payloads to the node. Accepted
    /// messages are forwarded by gossipsub; rejected ones are not, and count against the sender.
    fn judge_gossip(&mut self, message: gossipsub::Message) -> MessageAcceptance {
        let Some(from) = message.source.and_then(|s| self.committee.key_of(&s)) else {
            bump(&self.shared.gossip_rejected);
            warn!(source = ?message.source, topic = %message.topic, "gossip authored by a non-validator; rejected");
            return MessageAcceptance::Reject;
        };
        if message.data.len() > self.max_message_bytes {
            bump(&self.shared.gossip_rejected);
            bump(&self.shared.oversize_dropped);
            warn!(%from, size_bytes = message.data.len(), max_bytes = self.max_message_bytes, "oversize gossip rejected");
            return MessageAcceptance::Reject;
        }
        if message.topic == self.topics.tx.hash() {
            self.emit(P2pEvent::Tx { from, bytes: message.data });
            MessageAcceptance::Accept
        } else if message.topic == self.topics.peers.hash() {
            self.on_announcement(&message.data)
        } else {
            bump(&self.shared.gossip_rejected);
            MessageAcceptance::Reject
        }
    }

    fn on_announcement(&mut self, data: &[u8]) -> MessageAcceptance {
        let ann = match Announcement::decode(data) {
            Ok(a) => a,
            Err(e) => {
                bump(&self.shared.gossip_rejected);
                warn!(error = %e, "announcement rejected");
                return MessageAcceptance::Reject;
            }
        };
        if self.committee.member_by_key(&ann.validator).is_none() {
            bump(&self.shared.gossip_rejected);
            warn!(key = %ann.validator, "announcement by a non-validator rejected");
            return MessageAcceptance::Reject;
        }
        if let Err(e) = ann.verify(&self.chain_id) {
            bump(&self.shared.gossip_rejected);
            warn!(error = %e, "announcement rejected");
            return MessageAcceptance::Reject;
        }
        let Some(p) = self.peers.get_mut(&peer_id_of(&ann.validator)) else {
            // Our own announcement relayed back to us: nothing to learn.
            return MessageAcceptance::Ignore;
        };
        if ann.seq <= p.last_announce_seq {
            trace!(peer = %p.name, seq = ann.seq, last = p.last_announce_seq, "stale announcement ignored");
            return MessageAcceptance::Ignore;
        }
        p.last_announce_seq = ann.seq;
        p.announced_addrs =
            ann.addrs.iter().filter_map(|a| a.parse::<Multiaddr>().ok()).filter_map(|a| dialable(&a)).collect();
        if p.connections == 0 && !p.dialing {
            // Fresh addresses are worth a try right away, whatever the backoff said.
            p.next_dial_at = Instant::now();
        }
        debug!(peer = %p.name, seq = ann.seq, addrs = ?p.announced_addrs, "announcement accepted");
        bump(&self.shared.announcements_accepted);
        self.status_dirty = true;
        MessageAcceptance::Accept
    }

    fn announce(&mut self) {
        let addrs: Vec<String> = self.listen_addrs.iter().filter_map(dialable).map(|a| a.to_string()).collect();
        if addrs.is_empty() {
            return;
        }
        // Wall-clock milliseconds survive a restart; the +1 keeps a fast or stepped-back clock
        // from repeating a sequence number within one run.
        self.announce_seq = now_ms().max(self.announce_seq + 1);
        let ann = Announcement::sign(&self.local, &self.chain_id, self.announce_seq, &addrs);
        let topic = self.topics.peers.clone();
        match self.swarm.behaviour_mut().gossip.publish(topic, ann.encode()) {
            Ok(_) => trace!(seq = self.announce_seq, "announced"),
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
            Err(e) => debug!(error = %e, "announcement not published"),
        }
    }

    // ----- direct messages and block sync -----

    fn on_direct(&mut self, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let Some(from) = self.committee.key_of(&peer) else { return };
                    // The ack only closes the stream cleanly; delivery semantics belong to consensus.
                    let _ = self.swarm.behaviour_mut().direct.send_response(channel, Vec::new());
                    self.emit(P2pEvent::Consensus { from, bytes: request });
                }
                request_response::Message::Response { .. } => {}
            },
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound direct message failed");
            }
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "direct message not delivered");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_sync(&mut self, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.on_block_request(peer, request, channel)
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some((_, reply)) = self.outbound_blocks.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, .. } => {
                if let Some((key, reply)) = self.outbound_blocks.remove(&request_id) {
                    let err = match error {
                        request_response::OutboundFailure::Timeout => {
                            P2pError::RequestTimeout { key, timeout_ms: self.block_request_timeout_ms }
                        }
                        other => P2pError::RequestFailed { key, reason: other.to_string() },
                    };
                    let _ = reply.send(Err(err));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound block request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_block_request(&mut self, peer: PeerId, request: Vec<u8>, channel: ResponseChannel<Vec<u8>>) {
        let Some(from) = self.committee.key_of(&peer) else { return };
        if request.len() != SYNC_REQUEST_BYTES {
            warn!(%from, len = request.len(), "malformed block request dropped");
            return;
        }
        let from_height = u64::from_be_bytes(request[..8].try_into().expect("8 bytes"));
        let to_height = u64::from_be_bytes(request[8..].try_into().expect("8 bytes"));
        if from_height > to_height {
            warn!(%from, from_height, to_height, "block request with an empty range dropped");
            return;
        }
        if self.block_replies.len() >= self.max_pending_block_replies {
            // Dropping the channel tells the requester no; it will retry elsewhere or later.
            warn!(%from, max = self.max_pending_block_replies, "too many block requests waiting for the node; refused");
            return;
        }
        let (tx, rx) = oneshot::channel();
        let timeout = Duration::from_millis(self.block_request_timeout_ms);
        self.block_replies.push(Box::pin(async move {
            let bytes = tokio::time::timeout(timeout, rx).await.ok().and_then(|r| r.ok());
            (bytes, channel, from)
        }));
        self.emit(P2pEvent::BlockRequest { from, from_height, to_height, reply: tx });
    }

    fn on_block_reply(&mut self, bytes: Option<Vec<u8>>, channel: ResponseChannel<Vec<u8>>, to: PublicKey) {
        let Some(bytes) = bytes else {
            debug!(%to, "the node did not answer a block request in time; refused");
            return;
        };
        if bytes.len() > self.max_sync_response_bytes {
            bump(&self.shared.oversize_dropped);
            warn!(%to, size_bytes = bytes.len(), max_bytes = self.max_sync_response_bytes, "block response too large; not sent");
            return;
        }
        if self.swarm.behaviour_mut().sync.send_response(channel, bytes).is_err() {
            debug!(%to, "block response not sent: the requester is gone");
        }
    }

    // ----- commands -----

    fn connected_peer(&self, key: &PublicKey) -> Result<PeerId> {
        let member = self.committee.member_by_key(key).ok_or(P2pError::UnknownValidator { key: *key })?;
        if self.is_connected(&member.peer_id) {
            Ok(member.peer_id)
        } else {
            Err(P2pError::PeerNotConnected { key: *key })
        }
    }

    fn is_connected(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|p| p.connections > 0)
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::PublishTx { bytes, reply } => {
                let topic = self.topics.tx.clone();
                let result = self.swarm.behaviour_mut().gossip.publish(topic.clone(), bytes).map(|_| ()).map_err(|e| {
                    let reason = match e {
                        gossipsub::PublishError::NoPeersSubscribedToTopic => {
                            "no validator is subscribed yet".to_string()
                        }
                        other => other.to_string(),
                    };
                    P2pError::Publish { topic: topic.to_string(), reason }
                });
                let _ = reply.send(result);
            }
            Command::SendDirect { to, bytes, reply } => {
                let result = self.connected_peer(&to).map(|peer| {
                    self.swarm.behaviour_mut().direct.send_request(&peer, bytes);
                });
                let _ = reply.send(result);
            }
            Command::BroadcastDirect { bytes, reply } => {
                let me = self.local_peer;
                let connected: Vec<PeerId> = self
                    .committee
                    .members()
                    .iter()
                    .map(|m| m.peer_id)
                    .filter(|p| *p != me && self.is_connected(p))
                    .collect();
                let result = match connected.split_last() {
                    None => Err(P2pError::Publish {
                        topic: "consensus (direct)".into(),
                        reason: "no validator is connected".into(),
                    }),
                    Some((last, rest)) => {
                        for peer in rest {
                            self.swarm.behaviour_mut().direct.send_request(peer, bytes.clone());
                        }
                        self.swarm.behaviour_mut().direct.send_request(last, bytes);
                        Ok(())
                    }
                };
                let _ = reply.send(result);
            }
            Command::RequestBlocks { from, from_height, to_height, reply } => {
                let peer = match self.connected_peer(&from) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                if self.outbound_blocks.len() >= self.max_outbound_block_requests {
                    let _ = reply.send(Err(P2pError::TooManyRequests { max: self.max_outbound_block_requests }));
                    return;
                }
                let mut request = Vec::with_capacity(SYNC_REQUEST_BYTES);
                request.extend_from_slice(&from_height.to_be_bytes());
                request.extend_from_slice(&to_height.to_be_bytes());
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.outbound_blocks.insert(id, (from, reply));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialable_keeps_only_tcp_on_a_specific_ip() {
        let ok: Multiaddr = "/ip4/127.0.0.1/tcp/7000".parse().unwrap();
        assert_eq!(dialable(&ok), Some(ok.clone()));
        let peer = peer_id_of(&Keypair::from_seed([1; 32]).public());
        let with_peer: Multiaddr = format!("/ip4/127.0.0.1/tcp/7000/p2p/{peer}").parse().unwrap();
        assert_eq!(dialable(&with_peer), Some(ok));
        for bad in ["/ip4/0.0.0.0/tcp/7000", "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/7000", "/dns/x/tcp/1"] {
            assert_eq!(dialable(&bad.parse().unwrap()), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn resolve_passes_ip_addresses_and_resolves_names() {
        assert_eq!(resolve("/ip4/127.0.0.1/tcp/7000").await, vec!["/ip4/127.0.0.1/tcp/7000".parse().unwrap()]);
        assert!(resolve("not an addr").await.is_empty());
        let found = resolve("/dns4/localhost/tcp/7000").await;
        assert!(found.contains(&"/ip4/127.0.0.1/tcp/7000".parse().unwrap()), "{found:?}");
    }
}
