//! `ordo node --config FILE`: one validator. This module wires the parts together and owns the
//! runtime: RocksDB store, mempool, the consensus engine the genesis names (`build_pbft` or
//! `build_raft`; the rest of the node is generic over [`Engine`]), its driver (`driver`), libp2p
//! (`ordo-p2p`, with `inbound` on its events) and the REST API (`ordo-api`). One shutdown token
//! fans out to every task on SIGINT or SIGTERM; a fatal driver error (the store failed) stops the
//! node with a non-zero exit.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{bail, Context};
use ordo_api::{ApiConfig, LocalChain, NodeHandle};
use ordo_chain::store::{RocksStore, Store};
use ordo_chain::{Block, Keypair, Ledger, Mempool, MempoolConfig, TxRules};
use ordo_consensus::pbft::{Lease, Replica, VerifyContext};
use ordo_consensus::raft::{RaftEngine, RaftRestore, RaftVerifyContext};
use ordo_consensus::{Engine, PbftConfig, RaftConfig, Verifier};
use ordo_genesis::{ConsensusKind, Genesis, KeyFile, NodeConfig, ValidatorInfo};
use ordo_p2p::{P2pConfig, ValidatorPeer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::driver::{self, Inbound};
use crate::inflight::InFlight;
use crate::marker::RaftMarker;
use crate::shared::{now_ms, watch_readiness, Shared, WakeDriver};

/// How many inputs may wait for the consensus driver before senders are slowed down.
pub const DRIVER_QUEUE_CAPACITY: usize = 4096;

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

/// What start-up prepared before the engine is chosen.
struct Setup {
    cfg: NodeConfig,
    genesis: Genesis,
    key: Keypair,
    info: ValidatorInfo,
    store: Arc<RocksStore>,
    tip: Block,
    rules: TxRules,
    ledger: Arc<Ledger>,
    /// Woken by every admission to the ledger (see `shared::WakeDriver`).
    admitted: Arc<tokio::sync::Notify>,
    /// Transactions being verified, shared by gossip and PRE-PREPARE verification.
    inflight: Arc<InFlight>,
}

async fn node_main(cfg: NodeConfig) -> anyhow::Result<()> {
    let genesis = Genesis::load(&cfg.genesis_file)?;
    let key: Keypair = KeyFile::read(&cfg.key_file)?;
    let me = key.public();
    let Some(info) = genesis.validator(&me).cloned() else {
        bail!("this node's key {me} is not a validator of {}; check key_file", cfg.genesis_file.display());
    };
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
    info!(name = %info.name, node_id = %me, consensus = genesis.consensus.as_str(), height = tip.height(), "starting validator");

    let rules = TxRules { chain_id: genesis.chain_id.clone(), limits: cfg.limits, clients: genesis.clients.clone() };
    let mempool =
        Arc::new(Mempool::new(MempoolConfig { max_txs: cfg.mempool_max_txs, max_bytes: cfg.mempool_max_bytes }));
    let ledger = Arc::new(Ledger::new(store.clone() as Arc<dyn Store>, mempool)?);
    let admitted = Arc::new(tokio::sync::Notify::new());
    ledger.observe(Arc::new(WakeDriver(admitted.clone())));
    let setup = Setup { cfg, genesis, key, info, store, tip, rules, ledger, admitted, inflight: InFlight::new() };
    match setup.genesis.consensus {
        ConsensusKind::Pbft => {
            let (replica, verifier) = build_pbft(&setup, g_block.hash)?;
            serve(setup, replica, verifier).await
        }
        ConsensusKind::Raft => {
            let (engine, verifier) = build_raft(&setup)?;
            serve(setup, engine, verifier).await
        }
    }
}

/// The Raft parameters: the genesis's protocol values over the engine's defaults.
pub fn raft_config(g: &Genesis) -> RaftConfig {
    let p = &g.params;
    RaftConfig {
        batch_max_txs: p.batch_max_txs as usize,
        batch_max_bytes: p.batch_max_bytes as usize,
        batch_timeout_ms: p.batch_timeout_ms,
        election_timeout_ms: p.election_timeout_ms,
        heartbeat_interval_ms: p.heartbeat_interval_ms,
        ..RaftConfig::default()
    }
}

/// The Raft engine and its verifier, restored from the store's log.
fn build_raft(s: &Setup) -> anyhow::Result<(RaftEngine, RaftVerifyContext)> {
    let mut cfg = raft_config(&s.genesis);
    // The engine's pool mirrors the mempool (the driver follows it), so it must hold as much.
    cfg.pool_max_txs = cfg.pool_max_txs.max(s.cfg.mempool_max_txs);
    cfg.pool_max_bytes = cfg.pool_max_bytes.max(s.cfg.mempool_max_bytes);
    cfg.validate().context("the genesis's Raft parameters are not usable")?;
    let ctx = RaftVerifyContext::new(s.genesis.committee(), s.rules.clone(), &cfg);
    let log = s.store.load_log()?;
    RaftMarker::new(&s.cfg, &s.genesis).check(log.meta.is_some())?;
    let restore = RaftRestore { log, executed_height: s.tip.height(), executed_hash: s.tip.hash };
    // The engine draws its election timeouts from this seed (it has no randomness of its own).
    let engine = RaftEngine::new(cfg, ctx.clone(), s.key.clone(), restore, rand::random(), now_ms())
        .context("could not start the consensus core")?;
    Ok((engine, ctx))
}

/// Fills the gaps of `found` (one entry per id) with the transactions this node committed. A
/// store error leaves them empty: they are then checked as if new, which costs time, never
/// safety.
fn from_store_where_missing(ledger: &Ledger, ids: &[ordo_chain::Hash], found: &mut [Option<ordo_chain::VerifiedTx>]) {
    let missing: Vec<usize> = (0..ids.len()).filter(|&i| found[i].is_none()).collect();
    if missing.is_empty() {
        return;
    }
    let missing_ids: Vec<ordo_chain::Hash> = missing.iter().map(|&i| ids[i]).collect();
    match ledger.committed_txs(&missing_ids) {
        Ok(committed) => {
            for (i, tx) in missing.into_iter().zip(committed) {
                found[i] = tx;
            }
        }
        Err(e) => warn!(error = %e, "could not read committed transactions back; checking them again"),
    }
}

/// The PBFT replica and its verifier, restored from the store.
fn build_pbft(s: &Setup, genesis_hash: ordo_chain::Hash) -> anyhow::Result<(Replica, VerifyContext)> {
    let mut pbft = pbft_config(&s.genesis);
    // The core's pool mirrors the mempool (the driver follows it), so it must hold as much.
    pbft.pool_max_txs = pbft.pool_max_txs.max(s.cfg.mempool_max_txs);
    pbft.pool_max_bytes = pbft.pool_max_bytes.max(s.cfg.mempool_max_bytes);
    // A backup verified most of a PRE-PREPARE's transactions already, when they were gossiped
    // to it: batch verification takes those from the mempool instead of checking them twice,
    // waiting for those whose gossip is being checked at this moment (`inflight`). And the ones
    // a PRE-PREPARE brings first are claimed while they are checked and then admitted to the
    // mempool, so that their gossip, arriving later or meanwhile, is not checked again either.
    // The batches a view change's proofs carry (`reported` false: VIEW-CHANGE and NEW-VIEW
    // bodies, fetched blocks) are often ones this node committed already, whose transactions
    // left the mempool: those are taken from the store, as it verified them. A PRE-PREPARE's
    // new transactions are not looked for there, so that path costs no store read.
    let mempool = s.ledger.mempool().clone();
    let inflight = s.inflight.clone();
    let ledger = s.ledger.clone();
    let committed_ledger = s.ledger.clone();
    let verify_ctx = VerifyContext::new(s.genesis.committee(), s.rules.clone(), &pbft)
        .with_known_txs(Arc::new(move |ids: &[ordo_chain::Hash], reported: bool| {
            let (mut found, claim) = inflight.recall(ids, reported, |ids| mempool.get_many(ids));
            if !reported {
                from_store_where_missing(&committed_ledger, ids, &mut found);
            }
            (found, Box::new(claim) as Lease)
        }))
        .with_fresh_txs(Arc::new(move |txs| {
            if let Err(e) = ledger.admit(txs, ordo_chain::Origin::Peer) {
                warn!(error = %e, "could not keep a PRE-PREPARE's transactions in the mempool");
            }
        }))
        .with_final_height({
            let store = s.store.clone();
            Arc::new(move || store.latest_height().ok().flatten().unwrap_or(0))
        });
    let restore = ordo_consensus::pbft::replica::Restore {
        safety: s.store.load_safety()?,
        executed_height: s.tip.height(),
        executed_hash: s.tip.hash,
    };
    // The tip's certificate lets a restarted node help a lagging peer before its next commit.
    let replica = Replica::new(pbft, verify_ctx.clone(), s.key.clone(), genesis_hash, restore, now_ms())
        .context("could not start the consensus core")?
        .with_tip_certificate(s.tip.certificate.clone())
        .with_bodies_from_store(&*s.store)
        .context("could not read the recent blocks back from the store")?;
    Ok((replica, verify_ctx))
}

/// Starts networking, the driver of `engine`, the API and the background tasks, and runs until
/// a signal or a fatal driver error.
async fn serve<E: Engine>(setup: Setup, engine: E, verifier: E::Verifier) -> anyhow::Result<()> {
    let Setup { cfg, genesis, key, info, store, tip: _, rules, ledger, admitted, inflight } = setup;
    let me = key.public();
    let shutdown = CancellationToken::new();
    let validators: Vec<ValidatorPeer> = genesis
        .validators
        .iter()
        .map(|v| ValidatorPeer { key: v.public_key, name: v.name.clone(), p2p_addr: v.p2p_addr.clone() })
        .collect();
    let mut p2p_cfg = P2pConfig::new(genesis.chain_id.clone(), key.seed(), cfg.p2p_listen.clone(), validators);
    p2p_cfg.bootstrap = cfg.bootstrap.clone();
    p2p_cfg.max_message_bytes = verifier.message_max_bytes();
    let (p2p, events) = ordo_p2p::spawn(p2p_cfg, shutdown.clone()).await.context("could not start networking")?;

    let metrics = ordo_api::metrics::Metrics::new(genesis.consensus.as_str(), genesis.validators.len());
    let chain = LocalChain::new(ledger.clone(), metrics)?;
    let (driver_tx, driver_rx) = mpsc::channel(DRIVER_QUEUE_CAPACITY);
    let status = engine.status();
    let shared = Arc::new(Shared {
        me,
        name: info.name.clone(),
        rules,
        ledger,
        chain,
        store,
        p2p,
        quorum: engine.quorum(),
        faults_tolerated: verifier.faults_tolerated(),
        raft_marker: (genesis.consensus == ConsensusKind::Raft).then(|| RaftMarker::new(&cfg, &genesis)),
        admitted,
        inflight,
        inbound_stats: Default::default(),
        status: RwLock::new(status),
        syncing: AtomicBool::new(false),
        runtime: tokio::runtime::Handle::current(),
        genesis,
    });
    let inbound = Inbound { verifier: Arc::new(verifier), driver: driver_tx };

    let driver_task = tokio::spawn(driver::run(shared.clone(), engine, inbound.clone(), driver_rx, shutdown.clone()));
    let events_task = tokio::spawn(crate::inbound::p2p_events(shared.clone(), inbound, events, shutdown.clone()));
    tokio::spawn(crate::regossip::run(shared.clone(), shutdown.clone()));
    tokio::spawn(watch_readiness(shared.clone(), shutdown.clone()));
    {
        let metrics = shared.chain.metrics();
        metrics.round.set(status.view as i64);
        metrics.is_leader.set(i64::from(status.leader == Some(me)));
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
    let driver_result = match tokio::time::timeout(Duration::from_secs(10), driver_task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(anyhow::anyhow!("the consensus driver panicked: {e}")),
        Err(_) => {
            warn!("the consensus driver did not stop within 10 s");
            Ok(())
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), events_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), shared.p2p.stopped()).await;
    served?;
    driver_result?;
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
