//! `/search?q=`: what the header's search box finds (protocol §7.2). A query is tried as, in
//! order, a block height (digits), a block hash then a transaction id (64 hex characters), and a
//! state key; the first that exists answers 303 to its page. Nothing found is a 404 page that
//! says what was searched.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use ordo_chain::Hash;
use serde::Deserialize;

use crate::error::ApiError;
use crate::explorer::format::state_href;
use crate::explorer::pages::{blocking, respond, Failure, PageResult};
use crate::node::NodeHandle;
use crate::routes::AppState;

/// What a search found: where it leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Block(u64),
    Tx(Hash),
    State(String),
}

impl Found {
    /// The page of what was found.
    pub fn href(&self) -> String {
        match self {
            Found::Block(height) => format!("/blocks/{height}"),
            Found::Tx(id) => format!("/tx/{id}"),
            Found::State(key) => state_href(key),
        }
    }
}

/// Looks `q` up as each kind of thing in turn (see the module header). Surrounding whitespace
/// is ignored for heights and hashes; a key is tried as typed, then trimmed.
pub fn resolve(node: &dyn NodeHandle, q: &str) -> Result<Option<Found>, ApiError> {
    let trimmed = q.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(height) = trimmed.parse::<u64>() {
            if node.chain().store().latest_height()?.is_some_and(|tip| height <= tip) {
                return Ok(Some(Found::Block(height)));
            }
        }
    }
    if trimmed.len() == 2 * Hash::LEN && trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
        let hash = Hash::from_hex(&trimmed.to_ascii_lowercase())?;
        if let Some(block) = node.block_by_hash(&hash)? {
            return Ok(Some(Found::Block(block.height())));
        }
        if node.tx_status(&hash)?.is_some() {
            return Ok(Some(Found::Tx(hash)));
        }
    }
    let keys = if trimmed == q { vec![q] } else { vec![q, trimmed] };
    for key in keys {
        if !key.is_empty() && node.state_get(key)?.is_some() {
            return Ok(Some(Found::State(key.to_string())));
        }
    }
    Ok(None)
}

/// The query of `/search`.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

/// `GET /search?q=`.
pub async fn search(State(app): State<AppState>, query: Result<Query<SearchQuery>, QueryRejection>) -> Response {
    let result = search_answer(&app, query).await;
    respond(&app, result)
}

async fn search_answer(app: &AppState, query: Result<Query<SearchQuery>, QueryRejection>) -> PageResult {
    let Query(SearchQuery { q }) =
        query.map_err(|e| Failure::BadRequest(format!("The query is malformed: {}", e.body_text())))?;
    let q = q.unwrap_or_default();
    if q.trim().is_empty() {
        return Err(Failure::BadRequest(
            "Type a block height, a block hash, a transaction id or a state key to search for.".into(),
        ));
    }
    let node = app.node.clone();
    let lookup = q.clone();
    match blocking(move || resolve(node.as_ref(), &lookup)).await? {
        Some(found) => Ok(Redirect::to(&found.href()).into_response()),
        None => Err(Failure::NothingFound(q)),
    }
}
