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
//! - [`events`]: `GET /v1/events`, committed blocks and status changes as Server-Sent Events.
//! - [`metrics`]: `GET /metrics` and the HTTP metrics middleware; [`recent`]: the newest blocks'
//!   summaries, in memory, for the dashboard.
//! - [`explorer`]: the block explorer's HTML pages; [`openapi`]: the OpenAPI document
//!   (`GET /v1/openapi.json`), built from the same declarations as the routes.
//!
//! Submitted transactions are verified here, with batch signature verification on the blocking
//! pool, so the node only ever receives `VerifiedTx`. A rejected request changes nothing: it never
//! reaches `NodeHandle::submit`. docs/api.md is the reference for clients.

pub mod body;
pub mod config;
pub mod error;
pub mod events;
pub mod explorer;
pub mod metrics;
pub mod middleware;
pub mod node;
pub mod notify;
pub mod openapi;
pub mod recent;
pub mod refusals;
pub mod routes;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::routing::get;
use axum::{Extension, Router};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use config::ApiConfig;
pub use error::ApiError;
pub use node::{
    ChainStatus, ConsensusRound, LocalChain, NodeHandle, NodeStatus, PeerStatus, Readiness, StateEntry, ValidatorStatus,
};
pub use notify::CommitNotifier;
pub use ordo_chain::ledger::{Ledger, TxStatus};
pub use ordo_chain::mempool::{Admission, Mempool, MempoolConfig, MempoolStats};
pub use refusals::{Refusal, RefusalCounter, RefusalSummary};

use routes::AppState;

/// Builds the API's router over `node`, after checking `config`.
pub fn router(node: Arc<dyn NodeHandle>, config: ApiConfig) -> Result<Router, ApiError> {
    config.validate()?;
    let state = AppState { node, config };
    let refusals = Arc::new(RefusalCounter::new(config.refusal_log_interval_ms, Instant::now()));
    let metrics = state.node.chain().metrics().clone();
    // Each `/v1` route is registered with its `#[utoipa::path]`: its method and path come from
    // the attribute, so the route and its documentation cannot disagree. `ApiDoc` documents the
    // routes added below, outside this block; `tests/openapi.rs` checks nothing is left out.
    let (v1, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(routes::submit_tx))
        .routes(routes!(routes::submit_batch))
        .routes(routes!(routes::get_tx))
        .routes(routes!(routes::list_blocks))
        .routes(routes!(routes::latest_block))
        .routes(routes!(routes::block_by_height))
        .routes(routes!(routes::block_by_hash))
        .routes(routes!(routes::get_state))
        .routes(routes!(routes::status))
        .routes(routes!(routes::validators))
        .routes(routes!(openapi::openapi_json))
        .split_for_parts();
    let mut v1 = v1.layer(Extension(openapi::Document::new(document)));
    // The API and the explorer's pages (which read the store) share one per-IP limiter. Health
    // probes are not rate limited: an orchestrator polling them must never be refused.
    let mut pages = explorer::router();
    if let Some(limit) = middleware::RateLimit::new(&config) {
        v1 = v1.route_layer(axum::middleware::from_fn_with_state(limit.clone(), middleware::rate_limit));
        pages = pages.route_layer(axum::middleware::from_fn_with_state(limit, middleware::rate_limit));
    }
    let timeout = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |e| async move { middleware::timeout_error(e, &config) }))
        .timeout(Duration::from_millis(config.request_timeout_ms));
    let app = Router::new()
        .merge(v1)
        .merge(pages)
        .route("/v1/events", get(events::events))
        .route("/metrics", get(metrics::serve))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .fallback(routes::no_route)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(timeout)
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::track_http))
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
