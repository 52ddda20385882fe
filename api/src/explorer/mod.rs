//! The block explorer (protocol §7.2): server-rendered HTML pages served by every node, from the
//! same origin as the API, with no outside resources.
//!
//! Layout:
//! - [`pages`]: one handler per page, and the HTML error pages (404 for an unknown block,
//!   transaction or key; 400 for a malformed request);
//! - [`search`]: `/search?q=`, which redirects to what it finds;
//! - [`view`]: the view-models (what each page shows, formatted); [`format`]: the text helpers
//!   they use (UTC times, short hashes, percent-encoded links);
//! - [`chart`]: the dashboard's transactions/s and block-interval chart, drawn as inline SVG;
//! - [`templates`]: the askama template structs (`api/templates/*.html`);
//! - [`assets`]: the inline stylesheet and scripts, and the Content-Security-Policy naming them.
//!
//! Pages are rendered by askama, which checks templates at compile time and escapes every value
//! (client-written keys and values render as text). The dashboard reads the recent blocks from
//! memory ([`crate::recent`]), never the store block by block, and its script keeps it live from
//! `/v1/events` (protocol §7.1), polling `/v1/status` and `/v1/blocks` while the stream is stale.

pub mod assets;
pub mod chart;
pub mod format;
pub mod pages;
pub mod search;
pub mod templates;
pub mod view;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::routes::AppState;

/// The explorer's pages, merged into the API's router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/blocks", get(pages::blocks))
        .route("/blocks/{height}", get(pages::block))
        .route("/tx/{tx_id}", get(pages::tx))
        .route("/state", get(pages::state_by_query))
        .route("/state/{*key}", get(pages::state))
        .route("/validators", get(pages::validators))
        .route("/search", get(search::search))
        .route("/favicon.ico", get(no_icon))
}

/// Browsers ask every site for `/favicon.ico`; the explorer has none, and says so with 204
/// rather than the JSON 404 of unknown paths, which would show as an error in every console.
async fn no_icon() -> StatusCode {
    StatusCode::NO_CONTENT
}
