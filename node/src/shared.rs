//! What every task of a running validator shares ([`Shared`]), whichever engine orders its
//! blocks, and the node's answers to the API ([`NodeHandle`]): status, readiness, submission.
//! Nothing here names a consensus protocol; the engine's numbers (quorum, faults tolerated)
//! are copied in at start-up from its [`ordo_consensus::Verifier`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ordo_api::node::{ConsensusRound, PeerStatus as ApiPeer};
use ordo_api::{Admission, ApiError, LocalChain, NodeHandle, NodeStatus, Readiness, ValidatorStatus};
use ordo_chain::store::RocksStore;
use ordo_chain::{Ledger, LedgerObserver, MempoolStats, Origin, PublicKey, TxRules, VerifiedTx};
use ordo_consensus::Status;
use ordo_genesis::{ConsensusKind, Genesis};
use ordo_p2p::P2pHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::wire;

/// Wall-clock milliseconds since the Unix epoch: the only clock the engines see (through
/// `Input::Tick`).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Wakes the consensus driver whenever the ledger admits a transaction, whoever offered it (the
/// API, gossip, a PRE-PREPARE): the driver follows the mempool, so none can be missed.
pub struct WakeDriver(pub Arc<tokio::sync::Notify>);

impl LedgerObserver for WakeDriver {
    fn admitted(&self, outcomes: &[Admission], _: MempoolStats) {
        if outcomes.contains(&Admission::Admitted) {
            self.0.notify_one();
        }
    }

    fn committed(&self, _: &ordo_chain::Block, _: Duration, _: MempoolStats) {}
}

/// What every task of the node shares.
pub struct Shared {
    pub genesis: Genesis,
    pub me: PublicKey,
    pub name: String,
    pub rules: TxRules,
    /// The store and mempool behind the one write path (admission, commit).
    pub ledger: Arc<Ledger>,
    /// What the API keeps beside the ledger (metrics, event streams, waiters).
    pub chain: LocalChain,
    pub store: Arc<RocksStore>,
    pub p2p: P2pHandle,
    /// Validators (counting this one) that must be connected for the engine to order anything.
    pub quorum: usize,
    /// Validators that may fail while the rest still order (shown as `f` in `/v1/status`).
    pub faults_tolerated: usize,
    /// Raft only: the record, beside the key, that this validator holds durable Raft state
    /// (written with its first persisted log write; see `marker`).
    pub raft_marker: Option<crate::marker::RaftMarker>,
    /// Woken when the mempool admitted something, which the driver then hands to the core.
    pub admitted: Arc<tokio::sync::Notify>,
    /// Transactions whose signatures are being checked (gossip, PRE-PREPAREs), so that each is
    /// checked once.
    pub inflight: Arc<crate::inflight::InFlight>,
    /// What the network side is doing, for the log line of a view change this node asks for.
    pub inbound_stats: crate::inbound::InboundStats,
    pub status: RwLock<Status>,
    /// True while the core is fetching blocks it is missing.
    pub syncing: AtomicBool,
    pub runtime: tokio::runtime::Handle,
}

impl Shared {
    fn connected(&self) -> Vec<PublicKey> {
        self.p2p.peers().into_iter().filter(|p| p.connected).map(|p| p.key).collect()
    }

    /// A validator connected or disconnected: the p2p gauges follow, and event streams are told
    /// (readiness may have changed with it).
    pub fn connectivity_changed(&self) {
        let connected = self.connected().len();
        let metrics = self.chain.metrics();
        metrics.p2p_peers.set(connected as i64);
        let others = self.genesis.validators.len().saturating_sub(1);
        metrics.missing_validators.set(others.saturating_sub(connected) as i64);
        self.chain.events().status_changed();
    }

    /// The engine's status changed: `/v1/status`, the consensus metrics and, when the round or
    /// leader moved, the event streams follow.
    pub fn status_changed(&self, s: Status) {
        let before = std::mem::replace(&mut *self.status.write().expect("status lock"), s);
        let metrics = self.chain.metrics();
        if s.view > before.view {
            metrics.view_changes.inc_by(s.view - before.view);
        }
        metrics.round.set(s.view as i64);
        metrics.is_leader.set(i64::from(s.leader == Some(self.me)));
        if (s.view, s.leader) != (before.view, before.leader) {
            self.chain.events().status_changed();
        }
    }
}

/// How often readiness is looked at for `event: status` (it also follows the catch-up flag,
/// which changes without any event of its own).
const READINESS_POLL: Duration = Duration::from_millis(500);

/// Tells the event streams when readiness flips.
pub async fn watch_readiness(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut last = shared.readiness() == Readiness::Ready;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(READINESS_POLL) => {}
        }
        let now = shared.readiness() == Readiness::Ready;
        if now != last {
            last = now;
            shared.chain.events().status_changed();
        }
    }
}

impl NodeHandle for Shared {
    fn tx_rules(&self) -> &TxRules {
        &self.rules
    }

    fn chain(&self) -> &LocalChain {
        &self.chain
    }

    fn readiness(&self) -> Readiness {
        let connected = self.connected().len();
        let need = self.quorum.saturating_sub(1);
        if connected < need {
            return Readiness::NotReady {
                reason: format!("connected to {connected} validators, a quorum needs {need}"),
            };
        }
        // A view change, an election or a short catch-up is no reason to refuse clients: what
        // they submit is admitted and gossiped, and ordered as soon as the committee has a
        // leader again. Only a node far behind refuses, since it could not tell a client the
        // current state.
        if self.syncing.load(Ordering::Relaxed) {
            return Readiness::NotReady { reason: "catching up with the committee (far behind)".into() };
        }
        Readiness::Ready
    }

    fn submit(&self, txs: Vec<VerifiedTx>) -> Result<Vec<Admission>, ApiError> {
        let outcomes = self.ledger.admit(txs.clone(), Origin::Client)?;
        let admitted: Vec<VerifiedTx> =
            txs.into_iter().zip(&outcomes).filter(|(_, o)| **o == Admission::Admitted).map(|(t, _)| t).collect();
        if !admitted.is_empty() {
            let bytes = wire::encode_txs(&admitted);
            let p2p = self.p2p.clone();
            // The API calls `submit` on a blocking thread, so waiting here applies the gossip
            // channel's back-pressure to the client instead of buffering without bound.
            if let Err(e) = self.runtime.block_on(p2p.publish_tx(bytes)) {
                warn!(error = %e, "could not gossip admitted transactions; they stay in the mempool");
            }
        }
        Ok(outcomes)
    }

    fn status(&self) -> Result<NodeStatus, ApiError> {
        let s = *self.status.read().expect("status lock");
        let peers = self
            .p2p
            .peers()
            .into_iter()
            .map(|p| ApiPeer { node_id: p.key, name: p.name, connected: p.connected })
            .collect();
        let round = match self.genesis.consensus {
            ConsensusKind::Pbft => ConsensusRound::View(s.view),
            ConsensusKind::Raft => ConsensusRound::Term(s.view),
        };
        Ok(NodeStatus {
            chain_id: self.genesis.chain_id.clone(),
            node_id: self.me,
            name: self.name.clone(),
            consensus: self.genesis.consensus,
            round,
            leader: s.leader,
            chain: self.chain.chain_status()?,
            peers,
            validators: self.genesis.validators.len(),
            f: self.faults_tolerated,
            ready: self.readiness() == Readiness::Ready,
        })
    }

    fn validators(&self) -> Result<Vec<ValidatorStatus>, ApiError> {
        let connected = self.connected();
        Ok(self
            .genesis
            .validators
            .iter()
            .map(|v| ValidatorStatus::new(v, v.public_key == self.me || connected.contains(&v.public_key)))
            .collect())
    }
}
