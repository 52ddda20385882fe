//! `ordo-api`: the REST API of an Ordo node (protocol §7) and the mempool it feeds. This is the only
//! crate of Ordo that imports axum.
//!
//! Layout:
//! - [`node`]: the [`NodeHandle`] trait the node implements, the answers it returns, and
//!   [`LocalChain`], the reusable store-and-mempool half of a node.
//! - [`mempool`]: [`Mempool`], verified transactions waiting for a proposal, FIFO and bounded.
//! - [`notify`]: [`CommitNotifier`], how the node wakes requests waiting for a commit.
//! - [`routes`]: one handler per route; [`wire`]: request parsing and answer shapes.
//! - [`body`]: reading a body within its limit, and draining a refused one so the client reads
//!   the answer.
//! - [`middleware`]: rate limiting, timeouts, the error-body guard, refusal counting and the
//!   request trace's idea of a failure; [`error`]: [`ApiError`].
//! - [`refusals`]: refused requests counted per reason and summarised in the log.
//! - [`config`]: the API's own settings, [`ApiConfig`].
//!
//! Submitted transactions are verified here, with batch signature verification on the blocking
//! pool, so the node only ever receives `VerifiedTx`. A rejected request changes nothing: it never
//! reaches `NodeHandle::submit`. docs/api.md is the reference for clients.

pub mod body;
pub mod config;
pub mod error;
pub mod mempool;
pub mod middleware;
pub mod node;
pub mod notify;
pub mod refusals;
pub mod routes;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;

pub use config::ApiConfig;
pub use error::ApiError;
pub use mempool::{Admission, Mempool, MempoolConfig, MempoolStats};
pub use node::{
    ChainStatus, ConsensusRound, LocalChain, NodeHandle, NodeStatus, PeerStatus, Readiness, StateEntry, TxStatus,
    ValidatorStatus,
};
pub use notify::CommitNotifier;
pub use refusals::{Refusal, RefusalCounter, RefusalSummary};

use routes::AppState;

/// Builds the API's router over `node`, after checking `config`.
pub fn router(node: Arc<dyn NodeHandle>, config: ApiConfig) -> Result<Router, ApiError> {
    config.validate()?;
    let state = AppState { node, config };
    let refusals = Arc::new(RefusalCounter::new(config.refusal_log_interval_ms, Instant::now()));
    let mut v1 = Router::new()
        .route("/v1/transactions", post(routes::submit_tx))
        .route("/v1/transactions/batch", post(routes::submit_batch))
        .route("/v1/transactions/{tx_id}", get(routes::get_tx))
        .route("/v1/blocks", get(routes::list_blocks))
        .route("/v1/blocks/latest", get(routes::latest_block))
        .route("/v1/blocks/{height}", get(routes::block_by_height))
        .route("/v1/blocks/by-hash/{hash}", get(routes::block_by_hash))
        .route("/v1/state/{*key}", get(routes::get_state))
        .route("/v1/status", get(routes::status))
        .route("/v1/validators", get(routes::validators));
    // Health probes are not rate limited: an orchestrator polling them must never be refused.
    if let Some(limit) = middleware::RateLimit::new(&config) {
        v1 = v1.route_layer(axum::middleware::from_fn_with_state(limit, middleware::rate_limit));
    }
    let timeout = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |e| async move { middleware::timeout_error(e, &config) }))
        .timeout(Duration::from_millis(config.request_timeout_ms));
    let app = Router::new()
        .merge(v1)
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .fallback(routes::no_route)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(timeout)
        .layer(TraceLayer::new_for_http().on_failure(middleware::trace_failure))
        .layer(axum::middleware::from_fn(middleware::json_errors))
        .layer(axum::middleware::from_fn_with_state(refusals, middleware::count_refusals))
        .with_state(state);
    Ok(app)
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
/// Peer addresses are recorded, which per-IP rate limiting needs.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
