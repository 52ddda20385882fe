//! The explorer's page handlers (protocol §7.2). Each reads what it shows from the
//! [`NodeHandle`] (on the blocking pool when that may touch the disk), builds the view-models
//! and renders its template; every failure becomes an HTML page with the matching status.

use askama::Template;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use ordo_chain::Hash;
use serde::Deserialize;

use crate::error::ApiError;
use crate::explorer::assets;
use crate::explorer::chart::{Chart, Sample};
use crate::explorer::format::figure;
use crate::explorer::templates::{
    BlockPage, BlocksPage, DashboardPage, MessagePage, StatePage, TxPage, ValidatorsPage,
};
use crate::explorer::view::{BlockRow, BlockView, Names, TxView, ValidatorRow};
use crate::node::ConsensusRound;
use crate::routes::AppState;

/// How many blocks one `/blocks` page lists.
pub const BLOCKS_PER_PAGE: usize = 25;

/// How many rows the dashboard's recent-blocks table shows (its chart uses every recent block).
pub const DASHBOARD_ROWS: usize = 20;

/// Why a page could not be shown.
#[derive(Debug)]
pub enum Failure {
    /// 404: the block, transaction or key does not exist (the message says which).
    NotFound(String),
    /// 404 for a search that matched nothing: what was searched.
    NothingFound(String),
    /// 400: the request itself is malformed (the message says how).
    BadRequest(String),
    /// The node failed to answer: its own status (500, or 503 while it is overloaded).
    Node(ApiError),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Node(e)
    }
}

/// What a page handler returns before it is turned into a response.
pub type PageResult = Result<Response, Failure>;

/// Runs a node call on the blocking pool, where a disk read may wait.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal { reason: format!("node call failed: {e}") })?
}

/// The chain id every page's header shows; cheap, so read on the runtime.
fn chain_id(app: &AppState) -> String {
    app.node.tx_rules().chain_id.clone()
}

/// An HTML answer with the explorer's security headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(assets::content_security_policy()));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Renders a page with status 200.
pub fn render(page: &impl Template) -> PageResult {
    let body = page.render().map_err(|e| ApiError::Internal { reason: format!("rendering a page: {e}") })?;
    Ok(html(StatusCode::OK, body))
}

/// Turns a handler's result into the response: the page, or the HTML page of its failure.
pub fn respond(app: &AppState, result: PageResult) -> Response {
    let failure = match result {
        Ok(response) => return response,
        Err(failure) => failure,
    };
    let (status, heading, message, searched, retry_after) = match failure {
        Failure::NotFound(message) => (StatusCode::NOT_FOUND, "Not found", message, None, None),
        Failure::NothingFound(q) => {
            (StatusCode::NOT_FOUND, "Not found", "Nothing on this chain matches the search.".into(), Some(q), None)
        }
        Failure::BadRequest(message) => (StatusCode::BAD_REQUEST, "Bad request", message, None, None),
        Failure::Node(e) => {
            if e.status().is_server_error() && e.refusal().is_none() {
                tracing::warn!(error = %e, "explorer page failed");
            }
            (e.status(), "Error", e.to_string(), None, e.retry_after_secs())
        }
    };
    let page = MessagePage { chain_id: chain_id(app), heading, message, searched };
    let mut response = match page.render() {
        Ok(body) => html(status, body),
        // The message page has no fallible part; should rendering fail anyway, plain text
        // still tells the reader what happened.
        Err(e) => (status, format!("{heading}: {e}")).into_response(),
    };
    if let Some(secs) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// `GET /`: the dashboard. Its block list and chart come from the in-memory recent blocks, so
/// it costs the same on any length of chain.
pub async fn dashboard(State(app): State<AppState>) -> Response {
    let result = dashboard_page(&app).await;
    respond(&app, result)
}

async fn dashboard_page(app: &AppState) -> PageResult {
    let node = app.node.clone();
    let (status, validators) = blocking(move || Ok((node.status()?, node.validators()?))).await?;
    let recent = app.node.chain().recent();
    let summaries = recent.newest_first();
    let names = Names::new(&validators);
    let samples: Vec<Sample> = summaries.iter().rev().map(Sample::from).collect();
    let chart = Chart::new(&samples);
    let (round_label, round) = match status.round {
        ConsensusRound::View(v) => ("View", v),
        ConsensusRound::Term(t) => ("Term", t),
    };
    let page = DashboardPage {
        chain_id: status.chain_id.clone(),
        node_name: status.name.clone(),
        consensus: status.consensus.as_str(),
        round_label,
        round,
        height: status.chain.height,
        leader: status.leader.as_ref().map_or_else(|| "none".to_string(), |k| names.label(k)),
        leader_key: status.leader.as_ref().map(|k| k.to_hex()).unwrap_or_default(),
        mempool_txs: status.chain.mempool.txs,
        mempool_bytes: status.chain.mempool.bytes,
        ready: status.ready,
        validators: ValidatorRow::list(&validators, recent, status.leader.as_ref(), Some(&status.node_id)),
        blocks: summaries.iter().take(DASHBOARD_ROWS).map(|b| BlockRow::of_summary(b, &names)).collect(),
        rows_max: DASHBOARD_ROWS,
        tx_per_sec: chart.summary.tx_per_sec.map_or_else(|| "–".to_string(), figure),
        block_interval_ms: chart.summary.block_interval_ms.map_or_else(|| "–".to_string(), figure),
        chart,
    };
    render(&page)
}

/// The query of `/blocks`: `before` is kept as text so a malformed one gets a clear 400 page.
#[derive(Debug, Deserialize)]
pub struct BlocksQuery {
    before: Option<String>,
}

/// `GET /blocks?before=H`: [`BLOCKS_PER_PAGE`] blocks below `H` (below the tip + 1 without it),
/// newest first; the "older" link carries the page's `next`.
pub async fn blocks(State(app): State<AppState>, query: Result<Query<BlocksQuery>, QueryRejection>) -> Response {
    let result = blocks_page(&app, query).await;
    respond(&app, result)
}

async fn blocks_page(app: &AppState, query: Result<Query<BlocksQuery>, QueryRejection>) -> PageResult {
    let Query(q) = query.map_err(|e| Failure::BadRequest(format!("The query is malformed: {}", e.body_text())))?;
    let before = match q.before.as_deref() {
        None => None,
        Some(raw) => Some(raw.parse::<u64>().map_err(|_| {
            Failure::BadRequest(format!("`before` must be a block height (a whole number), not {raw:?}."))
        })?),
    };
    let node = app.node.clone();
    let (page, validators, tip) = blocking(move || {
        Ok((node.blocks_before(before, BLOCKS_PER_PAGE)?, node.validators()?, node.commits().height()))
    })
    .await?;
    let names = Names::new(&validators);
    let range = page.blocks.first().zip(page.blocks.last()).map(|(newest, oldest)| (newest.height(), oldest.height()));
    let newer_href = range.and_then(|(newest, _)| {
        (newest < tip).then(|| {
            // The newer page lists the BLOCKS_PER_PAGE heights above this one's newest.
            let newer_before = newest.saturating_add(1 + BLOCKS_PER_PAGE as u64);
            if newer_before > tip {
                "/blocks".to_string()
            } else {
                format!("/blocks?before={newer_before}")
            }
        })
    });
    render(&BlocksPage {
        chain_id: chain_id(app),
        blocks: page.blocks.iter().map(|b| BlockRow::of_block(b, &names)).collect(),
        range,
        older: page.next,
        newer_href,
        before,
    })
}

/// `GET /blocks/{height}`.
pub async fn block(State(app): State<AppState>, path: Result<Path<String>, PathRejection>) -> Response {
    let result = block_page(&app, path).await;
    respond(&app, result)
}

async fn block_page(app: &AppState, path: Result<Path<String>, PathRejection>) -> PageResult {
    let Path(raw) = path.map_err(|e| Failure::BadRequest(e.body_text()))?;
    let height: u64 =
        raw.parse().map_err(|_| Failure::BadRequest(format!("{raw:?} is not a block height (a whole number).")))?;
    let node = app.node.clone();
    let (block, validators, tip) =
        blocking(move || Ok((node.block(height)?, node.validators()?, node.commits().height()))).await?;
    let block = block.ok_or_else(|| {
        Failure::NotFound(format!("There is no block at height {height}: this node's chain ends at height {tip}."))
    })?;
    let names = Names::new(&validators);
    render(&BlockPage { chain_id: chain_id(app), block: BlockView::of(&block, &names, tip) })
}

/// `GET /tx/{tx_id}`.
pub async fn tx(State(app): State<AppState>, path: Result<Path<String>, PathRejection>) -> Response {
    let result = tx_page(&app, path).await;
    respond(&app, result)
}

async fn tx_page(app: &AppState, path: Result<Path<String>, PathRejection>) -> PageResult {
    let Path(raw) = path.map_err(|e| Failure::BadRequest(e.body_text()))?;
    let id = Hash::from_hex(&raw)
        .map_err(|_| Failure::BadRequest(format!("{raw:?} is not a transaction id (64 hexadecimal characters).")))?;
    let node = app.node.clone();
    let (status, validators) = blocking(move || Ok((node.tx_status(&id)?, node.validators()?))).await?;
    let status = status
        .ok_or_else(|| Failure::NotFound(format!("No transaction {id} is pending or committed on this node.")))?;
    render(&TxPage { chain_id: chain_id(app), tx: TxView::of(&status, &Names::new(&validators)) })
}

/// `GET /state/{key}`: the key may hold `/` (percent-encoded or not).
pub async fn state(State(app): State<AppState>, path: Result<Path<String>, PathRejection>) -> Response {
    let result = match path {
        Ok(Path(key)) => state_page(&app, key).await,
        Err(e) => Err(Failure::BadRequest(e.body_text())),
    };
    respond(&app, result)
}

/// The query of `/state?key=K`, the form for keys that cannot be a path segment (`.`, `..`).
#[derive(Debug, Deserialize)]
pub struct StateQuery {
    key: Option<String>,
}

/// `GET /state?key=K`.
pub async fn state_by_query(State(app): State<AppState>, query: Result<Query<StateQuery>, QueryRejection>) -> Response {
    let result = match query {
        Ok(Query(StateQuery { key: Some(key) })) => state_page(&app, key).await,
        Ok(Query(StateQuery { key: None })) => Err(Failure::BadRequest("Which key? Use /state/KEY.".into())),
        Err(e) => Err(Failure::BadRequest(format!("The query is malformed: {}", e.body_text()))),
    };
    respond(&app, result)
}

async fn state_page(app: &AppState, key: String) -> PageResult {
    if key.is_empty() {
        return Err(Failure::BadRequest("A state key is never empty.".into()));
    }
    let node = app.node.clone();
    let lookup = key.clone();
    let entry = blocking(move || node.state_get(&lookup)).await?;
    let entry = entry.ok_or_else(|| Failure::NotFound(format!("The state holds no key {key:?}.")))?;
    render(&StatePage { chain_id: chain_id(app), key: entry.key, value: entry.value, height: entry.height })
}

/// `GET /validators`.
pub async fn validators(State(app): State<AppState>) -> Response {
    let result = validators_page(&app).await;
    respond(&app, result)
}

async fn validators_page(app: &AppState) -> PageResult {
    let node = app.node.clone();
    let (status, validators) = blocking(move || Ok((node.status()?, node.validators()?))).await?;
    let recent = app.node.chain().recent();
    render(&ValidatorsPage {
        chain_id: status.chain_id.clone(),
        validators: ValidatorRow::list(&validators, recent, status.leader.as_ref(), Some(&status.node_id)),
        f: status.f,
    })
}
