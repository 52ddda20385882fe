//! The handlers of protocol §7, one per route. Each turns its input into typed values, asks the
//! [`NodeHandle`] (on the blocking pool when that may touch the disk) and shapes the answer; every
//! failure is an [`ApiError`].
//!
//! Each handler carries its `#[utoipa::path]`: the route's parameters, answers and error codes
//! as `GET /v1/openapi.json` publishes them, next to the code that produces them.

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
use utoipa::IntoParams;

use crate::body;
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::metrics::RejectReason;
use crate::node::{NodeHandle, Readiness, BLOCKS_PAGE_MAX};
use crate::openapi::schemas::{
    BlockSchema, ErrorBodySchema, HashSchema, NodeStatusSchema, StateEntrySchema, TransactionSchema,
};
use crate::openapi::V1Refusals;
use crate::wire::{
    self, AcceptedJson, BatchItemJson, BlockPageJson, HealthJson, HealthState, ReadyJson, TxState, TxStatusJson,
    ValidatorsJson,
};
use ordo_chain::ledger::TxStatus;
use ordo_chain::mempool::{Admission, Origin};

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

/// Refuses while the node is not ready; `txs` submitted transactions are then counted as
/// rejected (`not_ready`), 0 for a probe.
fn ensure_ready(node: &dyn NodeHandle, config: &ApiConfig, txs: usize) -> Result<(), ApiError> {
    match node.readiness() {
        Readiness::Ready => Ok(()),
        Readiness::NotReady { reason } => {
            node.chain().metrics().rejected(RejectReason::not_ready, txs as u64);
            Err(ApiError::NotReady { reason, retry_after_secs: config.retry_after_secs })
        }
    }
}

/// Refuses, before their signatures are checked, a client's new transactions that the mempool
/// has no room left for (`mempool_full`), counting the room in transactions: checked, they
/// would be refused all the same, and on an overloaded node those checks took the cores the
/// committee needed to drain the backlog (docs/performance.md, thirteenth round). A transaction
/// whose id is pending or committed still takes the usual path, so its answer does not change
/// (its status; `bad_signature` for a forged copy); so do items that are errors already.
/// Admission checks both limits again, as other requests may take the room meanwhile.
fn refuse_what_does_not_fit(
    node: &dyn NodeHandle,
    items: Vec<Result<Transaction, ApiError>>,
    config: &ApiConfig,
) -> Result<Vec<Result<Transaction, ApiError>>, ApiError> {
    let ledger = node.chain().ledger();
    let mut room = ledger.mempool().room(Origin::Client).txs;
    if room >= items.len() {
        return Ok(items);
    }
    let ids: Vec<Hash> = items.iter().filter_map(|i| i.as_ref().ok()).map(Transaction::tx_id).collect();
    let mut known = ledger.known(&ids)?.into_iter();
    let mut refused = 0u64;
    let items = items
        .into_iter()
        .map(|item| match item {
            Ok(tx) if !known.next().expect("one answer per id") => {
                if room > 0 {
                    room -= 1;
                    Ok(tx)
                } else {
                    refused += 1;
                    Err(ApiError::MempoolFull { retry_after_secs: config.retry_after_secs })
                }
            }
            other => other,
        })
        .collect();
    node.chain().metrics().rejected(RejectReason::full, refused);
    Ok(items)
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
#[utoipa::path(
    post,
    path = "/v1/transactions",
    tag = "transactions",
    description = "Submits one signed transaction (protocol §3). It is verified here (rules, \
        admission, signature), admitted to the mempool and gossiped to the other validators. A \
        refused request changes nothing. Checks run in this order, the first failure answering: \
        rate limit, `Content-Type`, body size, JSON shape and hex, readiness, the protocol rules \
        and signature, mempool room.",
    request_body(content = TransactionSchema, content_type = "application/json",
        description = "One transaction; at most `request_max_bytes` (1 MiB by default)."),
    responses(
        (status = 202, description = "Admitted to the mempool and gossiped.", body = AcceptedJson),
        (status = 200, description = "Already pending or committed: its current status, exactly as \
            `GET /v1/transactions/{tx_id}` serves it. Nothing was added or gossiped.", body = TxStatusJson),
        (status = 400, description = "`malformed_json` (not JSON), `invalid_json` (missing, unknown \
            or mistyped field, unknown `op.type`), `bad_hex` (`sender` or `signature`), \
            `unreadable_body`.", body = ErrorBodySchema),
        (status = 413, description = "`body_too_large`: over the node's `request_max_bytes`. The \
            connection is closed after the answer.", body = ErrorBodySchema),
        (status = 415, description = "`unsupported_media_type`: `Content-Type` is missing or not \
            `application/json` (parameters and `application/*+json` are accepted).", body = ErrorBodySchema),
        (status = 422, description = "A well-formed transaction against a rule of protocol §3: \
            `wrong_chain_id`, `chain_id_too_long`, `empty_key`, `key_too_long`, `value_too_long`, \
            `bad_signature`, `sender_not_admitted`.", body = ErrorBodySchema),
        (status = 503, description = "`mempool_full`, `not_ready` (not connected to a quorum, or far \
            behind), or `timeout`.", body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        V1Refusals,
    )
)]
pub async fn submit_tx(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let limit_bytes = app.node.tx_rules().limits.request_max_bytes;
    let bytes = read_json_body(&headers, body, limit_bytes).await?;
    let tx = wire::parse_tx(&bytes)?;
    ensure_ready(app.node.as_ref(), &app.config, 1)?;
    let node = app.node.clone();
    let config = app.config;
    let answer = blocking(move || {
        let tx =
            refuse_what_does_not_fit(node.as_ref(), vec![Ok(tx)], &config)?.pop().expect("one item in, one out")?;
        let verified =
            node.tx_rules().verify(tx).inspect_err(|_| node.chain().metrics().rejected(RejectReason::invalid, 1))?;
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
#[utoipa::path(
    post,
    path = "/v1/transactions/batch",
    tag = "transactions",
    description = "Submits many transactions at once; their signatures are verified as one ed25519 \
        batch. Each item is answered on its own, in order, as `POST /v1/transactions` would have \
        answered it alone; the batch as a whole is refused only when its body cannot be read as \
        such an array or the node is not ready, and then nothing of it is admitted. A transaction \
        twice in one batch is admitted once; the second copy is answered as already known.",
    request_body(content = Vec<TransactionSchema>, content_type = "application/json",
        description = "A JSON array of at most `batch_max_txs` transactions (1,000 by default), at most \
        `batch_request_max_bytes` (8 MiB by default)."),
    responses(
        (status = 200, description = "One item per transaction, in order: `Accepted`, `TxStatus` \
            (already known) or `ErrorBody` (that item was refused).", body = Vec<BatchItemJson>,
            headers(("Retry-After" = u64, description = "Present when an item was refused for \
            `mempool_full`: seconds to wait before offering it again."))),
        (status = 400, description = "`malformed_json`, `invalid_json` (the body is not an array), \
            `unreadable_body`.", body = ErrorBodySchema),
        (status = 413, description = "`body_too_large` (over `batch_request_max_bytes`; the \
            connection is closed after the answer) or `batch_too_large` (more than `batch_max_txs` \
            items).", body = ErrorBodySchema),
        (status = 415, description = "`unsupported_media_type`: `Content-Type` is missing or not \
            `application/json`.", body = ErrorBodySchema),
        (status = 503, description = "`not_ready` or `timeout`.", body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        V1Refusals,
    )
)]
pub async fn submit_batch(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let limits = app.node.tx_rules().limits;
    let bytes = read_json_body(&headers, body, limits.batch_request_max_bytes).await?;
    let parsed = wire::parse_batch(&bytes, limits.batch_max_txs)?;
    ensure_ready(app.node.as_ref(), &app.config, parsed.len())?;
    let node = app.node.clone();
    let config = app.config;
    let (items, any_full) = blocking(move || {
        // Verify every well-formed item in one batch, then offer the verified ones in one call.
        let mut results: Vec<Result<Option<VerifiedTx>, ApiError>> = Vec::with_capacity(parsed.len());
        let mut to_verify: Vec<Transaction> = Vec::new();
        for item in refuse_what_does_not_fit(node.as_ref(), parsed, &config)? {
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
                Err(e) => {
                    node.chain().metrics().rejected(RejectReason::invalid, 1);
                    *slot = Err(e.into());
                }
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

/// The query of `GET /v1/transactions/{tx_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Wait up to this many milliseconds for a pending or still unknown transaction to be
    /// committed, answering as soon as it is. Capped at the node's `tx_wait_max_ms` (25,000 by
    /// default): larger values are lowered, not refused. 0 or absent answers at once.
    wait_ms: Option<u64>,
}

fn parse_hash(raw: Result<Path<String>, PathRejection>) -> Result<Hash, ApiError> {
    let Path(s) = raw.map_err(|e| ApiError::InvalidPath { reason: e.body_text() })?;
    Ok(Hash::from_hex(&s)?)
}

/// `GET /v1/transactions/{tx_id}[?wait_ms=N]`. With `wait_ms`, a pending or still unknown
/// transaction is looked up again after each commit until it is committed or the wait ends.
#[utoipa::path(
    get,
    path = "/v1/transactions/{tx_id}",
    tag = "transactions",
    description = "A transaction's status: pending (in the mempool) or committed (with its block, \
        position and result).",
    params(("tx_id" = HashSchema, Path, description = "The transaction's id."), WaitQuery),
    responses(
        (status = 200, description = "Known: pending or committed.", body = TxStatusJson),
        (status = 400, description = "`bad_hex` (`tx_id`) or `invalid_query` (`wait_ms` not a \
            number).", body = ErrorBodySchema),
        (status = 404, description = "`not_found`: no such transaction (after the wait, if any).",
            body = ErrorBodySchema),
        (status = 503, description = "`timeout`.", body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        V1Refusals,
    )
)]
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
#[utoipa::path(
    get,
    path = "/v1/blocks/latest",
    tag = "blocks",
    description = "The newest committed block.",
    responses(
        (status = 200, description = "The block.", body = BlockSchema),
        (status = 404, description = "`not_found`: no such block.", body = ErrorBodySchema),
        (status = 503, description = "`timeout`.", body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        V1Refusals,
    )
)]
pub async fn latest_block(State(app): State<AppState>) -> Result<Json<BlockJson>, ApiError> {
    let node = app.node.clone();
    let block = blocking(move || node.latest_block()).await?;
    block.map(|b| Json(BlockJson::from(&b))).ok_or(ApiError::NotFound { what: "block".into() })
}

/// `GET /v1/blocks/{height}`.
#[utoipa::path(
    get,
    path = "/v1/blocks/{height}",
    tag = "blocks",
    description = "The block at a height; the genesis block is height 0.",
    params(("height" = u64, Path, description = "The block's height.")),
    responses(
        (status = 200, description = "The block.", body = BlockSchema),
        (status = 400, description = "`invalid_path`: the height is not a number.", body = ErrorBodySchema),
        (status = 404, description = "`not_found`: no such block.", body = ErrorBodySchema),
        (status = 503, description = "`timeout`.", body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        V1Refusals,
    )
)]
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
#[utoipa::path(
    get,
    path = "/v1/blocks/by-hash/{hash}",
    tag = "blocks",
    description = "The block with this hash.",
    params(("hash" = HashSchema, Path, description = "The block's hash.")),
    responses(
        (status = 200, description = "The block.", body = BlockSchema),
        (status = 400, description = "`bad_hex`: the hash is not 64 hex digits.", body = ErrorBodySchema),
        (status = 404, description = "`not_found`: no such block.", body = ErrorBodySchema),
        (status = 503, description = "`timeout`.", body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        V1Refusals,
    )
)]
pub async fn block_by_hash(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<BlockJson>, ApiError> {
    let hash = parse_hash(path)?;
    let node = app.node.clone();
    let block = blocking(move || node.block_by_hash(&hash)).await?;
    block.map(|b| Json(BlockJson::from(&b))).ok_or(ApiError::NotFound { what: format!("block {hash}") })
}

/// The query of `GET /v1/blocks`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Blocks below this height; without it, the page starts at the tip.
    before: Option<u64>,
    /// How many blocks, 1 to 100; 20 when absent.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100, default = 20)]
    limit: Option<usize>,
}

/// `GET /v1/blocks?before=H&limit=N`.
#[utoipa::path(
    get,
    path = "/v1/blocks",
    tag = "blocks",
    description = "A page of blocks, newest first.",
    params(PageQuery),
    responses(
        (status = 200, description = "Up to `limit` blocks with heights below `before`.", body = BlockPageJson),
        (status = 400, description = "`invalid_query`: a parameter that is not a number, or `limit` \
            outside 1 to 100.", body = ErrorBodySchema),
        (status = 503, description = "`timeout`.", body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        V1Refusals,
    )
)]
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
#[utoipa::path(
    get,
    path = "/v1/state/{*key}",
    tag = "state",
    description = "A state key's value at the tip.",
    params(("key" = String, Path, description = "The key. It may contain `/`, written as is or as `%2F`.")),
    responses(
        (status = 200, description = "The value, and the height it was read at.", body = StateEntrySchema),
        (status = 400, description = "`invalid_path`: the key is not valid percent-encoded UTF-8.",
            body = ErrorBodySchema),
        (status = 404, description = "`not_found`: the key is absent.", body = ErrorBodySchema),
        (status = 503, description = "`timeout`.", body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        V1Refusals,
    )
)]
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
#[utoipa::path(
    get,
    path = "/v1/status",
    tag = "node",
    description = "This node's view of the chain and the consensus.",
    responses(
        (status = 200, description = "The status.", body = NodeStatusSchema),
        (status = 503, description = "`timeout`.", body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        V1Refusals,
    )
)]
pub async fn status(State(app): State<AppState>) -> Result<Response, ApiError> {
    let node = app.node.clone();
    let status = blocking(move || node.status()).await?;
    Ok(Json(status).into_response())
}

/// `GET /v1/validators`: `{"validators":[...]}`.
#[utoipa::path(
    get,
    path = "/v1/validators",
    tag = "node",
    description = "The genesis validator set, in genesis order, with each one's connectivity as \
        this node sees it.",
    responses(
        (status = 200, description = "The validators.", body = ValidatorsJson),
        (status = 503, description = "`timeout`.", body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        V1Refusals,
    )
)]
pub async fn validators(State(app): State<AppState>) -> Result<Json<ValidatorsJson>, ApiError> {
    let node = app.node.clone();
    let validators = blocking(move || node.validators()).await?;
    Ok(Json(ValidatorsJson { validators }))
}

/// `GET /healthz`: the process is up and serving.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "node",
    description = "Liveness: answers whenever the process serves requests. Not rate limited.",
    responses((status = 200, description = "Alive.", body = HealthJson))
)]
pub async fn healthz() -> Json<HealthJson> {
    Json(HealthJson { status: HealthState::Ok })
}

/// `GET /readyz`: 200 once the node is ready, else 503 with `Retry-After`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "node",
    description = "Readiness: ready once connected to a quorum of validators and caught up. Not \
        rate limited.",
    responses(
        (status = 200, description = "Ready.", body = ReadyJson),
        (status = 503, description = "`not_ready`, with the reason in `message`.", body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<ReadyJson>, ApiError> {
    ensure_ready(app.node.as_ref(), &app.config, 0)?;
    Ok(Json(ReadyJson { ready: true }))
}

/// Any path no route matches.
pub async fn no_route(uri: Uri) -> ApiError {
    ApiError::NoRoute { path: uri.path().to_string() }
}

/// A known path with a method it does not serve.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().to_string() }
}
