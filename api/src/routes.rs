//! The handlers of protocol §7, one per route. Each turns its input into typed values, asks the
//! [`NodeHandle`] (on the blocking pool when that may touch the disk) and shapes the answer; every
//! failure is an [`ApiError`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ordo_chain::{BlockJson, Hash, Transaction, VerifiedTx};
use serde::Deserialize;
use tokio::time::Instant;

use crate::body;
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::mempool::Admission;
use crate::node::{NodeHandle, Readiness, TxStatus, BLOCKS_PAGE_MAX};
use crate::wire::{self, AcceptedJson, BatchItemJson, BlockPageJson, TxState, TxStatusJson};

/// The page size of `GET /v1/blocks` when `limit` is absent.
pub const BLOCKS_PAGE_DEFAULT: usize = 20;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub node: Arc<dyn NodeHandle>,
    pub config: ApiConfig,
}

/// Runs a node call on the blocking pool, where a disk read or a full gossip channel may wait.
async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal { reason: format!("node call failed: {e}") })?
}

/// Accepts `application/json`, with parameters such as `charset`, and `application/*+json`.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let got = headers.get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let is_json = got.as_deref().is_some_and(|v| {
        let essence = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
    });
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType { got })
    }
}

/// Reads a JSON body of at most `limit_bytes` (see [`body::read_limited`]). A body refused for
/// its type is drained too, so its client can read the 415.
async fn read_json_body(headers: &HeaderMap, body: Body, limit_bytes: usize) -> Result<Bytes, ApiError> {
    if let Err(e) = require_json(headers) {
        body::discard_refused(headers, body, 0, limit_bytes as u64).await;
        return Err(e);
    }
    body::read_limited(headers, body, limit_bytes).await
}

fn ensure_ready(node: &dyn NodeHandle, config: &ApiConfig) -> Result<(), ApiError> {
    match node.readiness() {
        Readiness::Ready => Ok(()),
        Readiness::NotReady { reason } => Err(ApiError::NotReady { reason, retry_after_secs: config.retry_after_secs }),
    }
}

/// The answer for one offered transaction, exactly what `POST /v1/transactions` sends for it.
enum Outcome {
    Accepted(AcceptedJson),
    Known(Box<TxStatusJson>),
}

fn outcome(
    node: &dyn NodeHandle,
    tx: VerifiedTx,
    admission: Admission,
    config: &ApiConfig,
) -> Result<Outcome, ApiError> {
    match admission {
        Admission::Admitted => Ok(Outcome::Accepted(AcceptedJson { tx_id: tx.id(), status: TxState::Pending })),
        Admission::AlreadyPending | Admission::AlreadyCommitted => {
            // A pending transaction may leave the mempool (taken for a proposal) before the
            // lookup; it is still pending as far as the client can tell.
            let status = match node.tx_status(&tx.id())? {
                Some(s) => s,
                None if admission == Admission::AlreadyPending => TxStatus::Pending(tx),
                None => {
                    return Err(ApiError::Internal { reason: format!("committed transaction {} not found", tx.id()) })
                }
            };
            Ok(Outcome::Known(Box::new(status.into())))
        }
        Admission::Full => Err(ApiError::MempoolFull { retry_after_secs: config.retry_after_secs }),
    }
}

fn one_outcome_per_tx(outcomes: &[Admission], count: usize) -> Result<(), ApiError> {
    if outcomes.len() == count {
        Ok(())
    } else {
        Err(ApiError::Internal {
            reason: format!("node answered {} outcomes for {count} transactions", outcomes.len()),
        })
    }
}

/// `POST /v1/transactions`.
pub async fn submit_tx(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let limit_bytes = app.node.tx_rules().limits.request_max_bytes;
    let bytes = read_json_body(&headers, body, limit_bytes).await?;
    let tx = wire::parse_tx(&bytes)?;
    ensure_ready(app.node.as_ref(), &app.config)?;
    let node = app.node.clone();
    let config = app.config;
    let answer = blocking(move || {
        let verified = node.tx_rules().verify(tx)?;
        let outcomes = node.submit(vec![verified.clone()])?;
        one_outcome_per_tx(&outcomes, 1)?;
        outcome(node.as_ref(), verified, outcomes[0], &config)
    })
    .await?;
    Ok(match answer {
        Outcome::Accepted(a) => (StatusCode::ACCEPTED, Json(a)).into_response(),
        Outcome::Known(k) => (StatusCode::OK, Json(*k)).into_response(),
    })
}

/// `POST /v1/transactions/batch`: 200 with one item per transaction, in order. A failed item is
/// an error object; the batch as a whole fails only when it cannot be read as a bounded array.
pub async fn submit_batch(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let limits = app.node.tx_rules().limits;
    let bytes = read_json_body(&headers, body, limits.batch_request_max_bytes).await?;
    let parsed = wire::parse_batch(&bytes, limits.batch_max_txs)?;
    ensure_ready(app.node.as_ref(), &app.config)?;
    let node = app.node.clone();
    let config = app.config;
    let (items, any_full) = blocking(move || {
        // Verify every well-formed item in one batch, then offer the verified ones in one call.
        let mut results: Vec<Result<Option<VerifiedTx>, ApiError>> = Vec::with_capacity(parsed.len());
        let mut to_verify: Vec<Transaction> = Vec::new();
        for item in parsed {
            match item {
                Ok(tx) => {
                    to_verify.push(tx);
                    results.push(Ok(None));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        let mut verified_iter = node.tx_rules().verify_many(to_verify).into_iter();
        let mut verified: Vec<VerifiedTx> = Vec::new();
        for slot in results.iter_mut().filter(|r| r.is_ok()) {
            match verified_iter.next().expect("one verification result per well-formed item") {
                Ok(v) => {
                    verified.push(v.clone());
                    *slot = Ok(Some(v));
                }
                Err(e) => *slot = Err(e.into()),
            }
        }
        let outcomes = if verified.is_empty() { Vec::new() } else { node.submit(verified)? };
        one_outcome_per_tx(&outcomes, results.iter().filter(|r| r.is_ok()).count())?;
        let mut outcomes = outcomes.into_iter();
        let mut any_full = false;
        let items: Vec<BatchItemJson> = results
            .into_iter()
            .map(|r| {
                let answer = r.and_then(|v| {
                    let v = v.expect("every surviving item was verified");
                    let admission = outcomes.next().expect("counted above");
                    outcome(node.as_ref(), v, admission, &config)
                });
                match answer {
                    Ok(Outcome::Accepted(a)) => BatchItemJson::Accepted(a),
                    Ok(Outcome::Known(k)) => BatchItemJson::Known(*k),
                    Err(e) => {
                        any_full |= matches!(e, ApiError::MempoolFull { .. });
                        BatchItemJson::Error(e.body())
                    }
                }
            })
            .collect();
        Ok((items, any_full))
    })
    .await?;
    let mut response = (StatusCode::OK, Json(items)).into_response();
    if any_full {
        // The batch itself succeeded, but tells the client when the refused items may fit.
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(app.config.retry_after_secs));
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct WaitQuery {
    wait_ms: Option<u64>,
}

fn parse_hash(raw: Result<Path<String>, PathRejection>) -> Result<Hash, ApiError> {
    let Path(s) = raw.map_err(|e| ApiError::InvalidPath { reason: e.body_text() })?;
    Ok(Hash::from_hex(&s)?)
}

/// `GET /v1/transactions/{tx_id}[?wait_ms=N]`. With `wait_ms`, a pending or still unknown
/// transaction is looked up again after each commit until it is committed or the wait ends.
pub async fn get_tx(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Json<TxStatusJson>, ApiError> {
    let id = parse_hash(path)?;
    let Query(q) = query.map_err(|e| ApiError::InvalidQuery { reason: e.body_text() })?;
    let wait_ms = q.wait_ms.unwrap_or(0).min(app.config.tx_wait_max_ms);
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    // Subscribe before the first lookup, so a commit between the two still wakes us.
    let mut commits = app.node.commits().subscribe();
    loop {
        let node = app.node.clone();
        let status = blocking(move || node.tx_status(&id)).await?;
        let committed = status.as_ref().is_some_and(TxStatus::is_committed);
        let waited_out = committed
            || wait_ms == 0
            || !matches!(tokio::time::timeout_at(deadline, commits.changed()).await, Ok(Ok(())));
        if waited_out {
            return status.map(|s| Json(s.into())).ok_or(ApiError::NotFound { what: format!("transaction {id}") });
        }
    }
}

/// `GET /v1/blocks/latest`.
pub async fn latest_block(State(app): State<AppState>) -> Result<Json<BlockJson>, ApiError> {
    let node = app.node.clone();
    let block = blocking(move || node.latest_block()).await?;
    block.map(|b| Json(BlockJson::from(&b))).ok_or(ApiError::NotFound { what: "block".into() })
}

/// `GET /v1/blocks/{height}`.
pub async fn block_by_height(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<BlockJson>, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::InvalidPath { reason: e.body_text() })?;
    let height: u64 =
        raw.parse().map_err(|_| ApiError::InvalidPath { reason: format!("height {raw:?} is not a u64") })?;
    let node = app.node.clone();
    let block = blocking(move || node.block(height)).await?;
    block.map(|b| Json(BlockJson::from(&b))).ok_or(ApiError::NotFound { what: format!("block {height}") })
}

/// `GET /v1/blocks/by-hash/{hash}`.
pub async fn block_by_hash(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<BlockJson>, ApiError> {
    let hash = parse_hash(path)?;
    let node = app.node.clone();
    let block = blocking(move || node.block_by_hash(&hash)).await?;
    block.map(|b| Json(BlockJson::from(&b))).ok_or(ApiError::NotFound { what: format!("block {hash}") })
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

/// `GET /v1/blocks?before=H&limit=N`.
pub async fn list_blocks(
    State(app): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<BlockPageJson>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::InvalidQuery { reason: e.body_text() })?;
    let limit = q.limit.unwrap_or(BLOCKS_PAGE_DEFAULT);
    if !(1..=BLOCKS_PAGE_MAX).contains(&limit) {
        return Err(ApiError::InvalidQuery { reason: format!("limit must be 1 to {BLOCKS_PAGE_MAX}, got {limit}") });
    }
    let node = app.node.clone();
    let page = blocking(move || node.blocks_before(q.before, limit)).await?;
    Ok(Json(page.into()))
}

/// `GET /v1/state/{key}`; a key may hold `/`, percent-encoded or not.
pub async fn get_state(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(key) = path.map_err(|e| ApiError::InvalidPath { reason: e.body_text() })?;
    let node = app.node.clone();
    let lookup_key = key.clone();
    let entry = blocking(move || node.state_get(&lookup_key)).await?;
    entry.map(|e| Json(e).into_response()).ok_or(ApiError::NotFound { what: format!("state key {key:?}") })
}

/// `GET /v1/status`.
pub async fn status(State(app): State<AppState>) -> Result<Response, ApiError> {
    let node = app.node.clone();
    let status = blocking(move || node.status()).await?;
    Ok(Json(status).into_response())
}

/// `GET /v1/validators`: `{"validators":[...]}`.
pub async fn validators(State(app): State<AppState>) -> Result<Response, ApiError> {
    let node = app.node.clone();
    let validators = blocking(move || node.validators()).await?;
    Ok(Json(serde_json::json!({ "validators": validators })).into_response())
}

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 once the node is ready, else 503 with `Retry-After`.
pub async fn readyz(State(app): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    ensure_ready(app.node.as_ref(), &app.config)?;
    Ok(Json(serde_json::json!({ "ready": true })))
}

/// Any path no route matches.
pub async fn no_route(uri: Uri) -> ApiError {
    ApiError::NoRoute { path: uri.path().to_string() }
}

/// A known path with a method it does not serve.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().to_string() }
}
