//! `ordo node --config FILE`: one validator. This module wires the parts together and owns the
//! runtime: RocksDB store, mempool, the PBFT core (driven by `driver`), libp2p (`ordo-p2p`) and
//! the REST API (`ordo-api`). One shutdown token fans out to every task on SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use ordo_api::node::{ConsensusRound, PeerStatus as ApiPeer};
use ordo_api::{
    Admission, ApiConfig, ApiError, LocalChain, Mempool, MempoolConfig, NodeHandle, NodeStatus, Readiness,
    ValidatorStatus,
};
use ordo_chain::store::{RocksStore, Store};
use ordo_chain::{Keypair, PublicKey, TxRules, VerifiedTx};
use ordo_consensus::pbft::{Replica, VerifyContext};
use ordo_consensus::{PbftConfig, Status};
use ordo_genesis::{ConsensusKind, Genesis, KeyFile, NodeConfig};
use ordo_p2p::{P2pConfig, P2pHandle, ValidatorPeer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::driver::{self, DriverInput};
use crate::wire;

/// How many inputs may wait for the consensus driver before senders are slowed down.
pub const DRIVER_QUEUE_CAPACITY: usize = 4096;

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Sets up logging: `RUST_LOG` if set, else the config's `log` filter.
fn init_tracing(filter: &str) {
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let _ = tracing_subscriber::fmt().with_env_filter(env).with_target(false).with_ansi(ansi).try_init();
}

pub fn run(config: PathBuf) -> anyhow::Result<()> {
    let cfg = NodeConfig::load(&config).with_context(|| format!("could not load {}", config.display()))?;
    init_tracing(&cfg.log);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("ordo").build()?;
    rt.block_on(node_main(cfg))
}

/// The PBFT parameters: the genesis's protocol values (every validator must agree on them)
/// over the core's defaults.
pub fn pbft_config(g: &Genesis) -> PbftConfig {
    let p = &g.params;
    PbftConfig {
        batch_max_txs: p.batch_max_txs as usize,
        batch_max_bytes: p.batch_max_bytes as usize,
        batch_timeout_ms: p.batch_timeout_ms,
        checkpoint_interval: p.checkpoint_interval,
        watermark_window: 2 * p.checkpoint_interval,
        view_change_timeout_ms: p.view_change_timeout_ms,
        view_change_timeout_max_ms: 16 * p.view_change_timeout_ms,
        // A NEW-VIEW carries the body of every batch it re-proposes (up to the watermark
        // window's), so it can be far larger than one batch; the core's default limit leaves
        // room for it.
        ..PbftConfig::default()
    }
}

/// What every task of the node shares.
pub struct Shared {
    pub genesis: Genesis,
    pub me: PublicKey,
    pub name: String,
    pub rules: TxRules,
    pub chain: LocalChain,
    pub store: Arc<RocksStore>,
    pub p2p: P2pHandle,
    pub verify_ctx: VerifyContext,
    pub driver: mpsc::Sender<DriverInput>,
    /// Woken when the mempool admitted something, which the driver then hands to the core.
    pub admitted: tokio::sync::Notify,
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
}

/// How often readiness is looked at for `event: status` (it also follows the catch-up flag,
/// which changes without any event of its own).
const READINESS_POLL: Duration = Duration::from_millis(500);

/// Tells the event streams when readiness flips.
async fn watch_readiness(shared: Arc<Shared>, shutdown: CancellationToken) {
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

async fn node_main(cfg: NodeConfig) -> anyhow::Result<()> {
    let genesis = Genesis::load(&cfg.genesis_file)?;
    let key: Keypair = KeyFile::read(&cfg.key_file)?;
    let me = key.public();
    let Some(info) = genesis.validator(&me).cloned() else {
        bail!("this node's key {me} is not a validator of {}; check key_file", cfg.genesis_file.display());
    };
    if genesis.consensus != ConsensusKind::Pbft {
        bail!("consensus kind {:?} is not available in this build yet: use \"pbft\"", genesis.consensus.as_str());
    }
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("could not create {}", cfg.data_dir.display()))?;
    let store = Arc::new(RocksStore::open(&cfg.data_dir).context("could not open the store")?);
    let (g_block, g_writes) = genesis.block();
    match store.block(0)? {
        None => store.commit(&g_block, &g_writes)?,
        Some(b) if b.hash != g_block.hash => {
            bail!(
                "{} holds another chain (genesis {}), not this genesis ({})",
                cfg.data_dir.display(),
                b.hash,
                g_block.hash
            )
        }
        Some(_) => {}
    }
    let tip = store.latest_block()?.expect("genesis is stored");
    info!(name = %info.name, node_id = %me, height = tip.height(), "starting validator");

    let rules = TxRules { chain_id: genesis.chain_id.clone(), limits: cfg.limits, clients: genesis.clients.clone() };
    let mut pbft = pbft_config(&genesis);
    // The core's pool mirrors the mempool (the driver follows it), so it must hold as much.
    pbft.pool_max_txs = pbft.pool_max_txs.max(cfg.mempool_max_txs);
    pbft.pool_max_bytes = pbft.pool_max_bytes.max(cfg.mempool_max_bytes);
    let mempool =
        Arc::new(Mempool::new(MempoolConfig { max_txs: cfg.mempool_max_txs, max_bytes: cfg.mempool_max_bytes }));
    // A backup verified most of a PRE-PREPARE's transactions already, when they were gossiped
    // to it: batch verification takes those from the mempool instead of checking them twice.
    let known = mempool.clone();
    let verify_ctx = VerifyContext::new(genesis.committee(), rules.clone(), &pbft)
        .with_known_txs(Arc::new(move |id: &ordo_chain::Hash| known.get(id)));
    let restore = ordo_consensus::pbft::replica::Restore {
        safety: store.load_safety()?,
        executed_height: tip.height(),
        executed_hash: tip.hash,
    };
    // The tip's certificate lets a restarted node help a lagging peer before its next commit.
    let replica = Replica::new(pbft.clone(), verify_ctx.clone(), key.clone(), g_block.hash, restore, now_ms())
        .context("could not start the consensus core")?
        .with_tip_certificate(tip.certificate.clone())
        .with_bodies_from_store(&*store)
        .context("could not read the recent blocks back from the store")?;

    let shutdown = CancellationToken::new();
    let validators: Vec<ValidatorPeer> = genesis
        .validators
        .iter()
        .map(|v| ValidatorPeer { key: v.public_key, name: v.name.clone(), p2p_addr: v.p2p_addr.clone() })
        .collect();
    let mut p2p_cfg = P2pConfig::new(genesis.chain_id.clone(), key.seed(), cfg.p2p_listen.clone(), validators);
    p2p_cfg.bootstrap = cfg.bootstrap.clone();
    p2p_cfg.max_message_bytes = pbft.message_max_bytes;
    let (p2p, events) = ordo_p2p::spawn(p2p_cfg, shutdown.clone()).await.context("could not start networking")?;

    let metrics = ordo_api::metrics::Metrics::new(genesis.consensus.as_str(), genesis.validators.len());
    let chain = LocalChain::new(store.clone() as Arc<dyn Store>, mempool, metrics)?;
    let (driver_tx, driver_rx) = mpsc::channel(DRIVER_QUEUE_CAPACITY);
    let status = ordo_consensus::Consensus::status(&replica);
    let shared = Arc::new(Shared {
        me,
        name: info.name.clone(),
        rules,
        chain,
        store,
        p2p,
        verify_ctx,
        driver: driver_tx,
        admitted: tokio::sync::Notify::new(),
        status: RwLock::new(status),
        syncing: AtomicBool::new(false),
        runtime: tokio::runtime::Handle::current(),
        genesis,
    });

    let driver_task = tokio::spawn(driver::run(shared.clone(), replica, driver_rx, shutdown.clone()));
    let events_task = tokio::spawn(driver::p2p_events(shared.clone(), events, shutdown.clone()));
    tokio::spawn(crate::regossip::run(shared.clone(), shutdown.clone()));
    tokio::spawn(watch_readiness(shared.clone(), shutdown.clone()));
    {
        let metrics = shared.chain.metrics();
        metrics.round.set(status.view as i64);
        metrics.is_leader.set(i64::from(status.leader == me));
        shared.connectivity_changed();
    }

    let api_cfg = ApiConfig {
        request_timeout_ms: cfg.api_request_timeout_ms,
        tx_wait_max_ms: cfg.api_request_timeout_ms.saturating_sub(1000).clamp(1, 25_000),
        rate_limit_per_sec: cfg.api_rate_limit_per_sec,
        rate_limit_burst: cfg.api_rate_limit_per_sec,
        ..ApiConfig::default()
    };
    let router = ordo_api::router(shared.clone() as Arc<dyn NodeHandle>, api_cfg)?;
    let listener = tokio::net::TcpListener::bind(&cfg.api_listen)
        .await
        .with_context(|| format!("could not listen on {} (is another node using it?)", cfg.api_listen))?;
    info!(api = %cfg.api_listen, p2p = %cfg.p2p_listen, "serving");

    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down");
        stop.cancel();
    });
    let stop = shutdown.clone();
    let served = ordo_api::serve(listener, router, async move { stop.cancelled().await }).await;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), driver_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), events_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), shared.p2p.stopped()).await;
    served?;
    info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
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
        let need = self.verify_ctx.committee.quorum() - 1;
        if connected < need {
            return Readiness::NotReady {
                reason: format!("connected to {connected} validators, a quorum needs {need}"),
            };
        }
        // A view change or a short catch-up is no reason to refuse clients: what they submit is
        // admitted and gossiped, and ordered as soon as the committee has a primary again. Only a
        // node far behind refuses, since it could not tell a client the current state.
        if self.syncing.load(Ordering::Relaxed) {
            return Readiness::NotReady { reason: "catching up with the committee (far behind)".into() };
        }
        Readiness::Ready
    }

    fn submit(&self, txs: Vec<VerifiedTx>) -> Result<Vec<Admission>, ApiError> {
        let outcomes = self.chain.admit(txs.clone())?;
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
            // The driver follows the mempool; wake it.
            self.admitted.notify_one();
        }
        Ok(outcomes)
    }

    fn status(&self) -> Result<NodeStatus, ApiError> {
        let s = *self.status.read().expect("status lock");
        let committee = &self.verify_ctx.committee;
        let peers = self
            .p2p
            .peers()
            .into_iter()
            .map(|p| ApiPeer { node_id: p.key, name: p.name, connected: p.connected })
            .collect();
        Ok(NodeStatus {
            chain_id: self.genesis.chain_id.clone(),
            node_id: self.me,
            name: self.name.clone(),
            consensus: self.genesis.consensus,
            round: ConsensusRound::View(s.view),
            leader: Some(s.leader),
            chain: self.chain.chain_status()?,
            peers,
            validators: committee.n(),
            f: committee.f(),
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
