//! Documentation of the routes whose handlers live in other modules and answer something other
//! than JSON: the event stream ([`crate::events`]), the metrics ([`crate::metrics`]) and the
//! explorer's pages ([`crate::explorer`]).
//!
//! Each function here is the `#[utoipa::path]` of one such route and is never called: it exists
//! so the route's operation can be listed in [`super::ApiDoc`]. `api/tests/openapi.rs` compares
//! the router's paths with the document's, so a route added there without an entry here fails.

// The functions are never called; only the path types their attributes generate are used.
#![allow(dead_code)]

use super::schemas::{ErrorBodySchema, HashSchema};

/// The description of `GET /v1/events`: what the stream carries.
const EVENTS: &str = "A Server-Sent Events stream (protocol §7.1). It opens with `retry: 2000`, then \
    an `event: hello` (no id) whose data is a `HelloEvent`. Then, for every committed height after \
    the start point, in order and without gaps or duplicates, an `event: block` with `id: <height>` \
    whose data is the `Block` exactly as `GET /v1/blocks/{height}` serves it: first replayed from \
    the store, then live. The start point is `Last-Event-ID` when sent, else `from_height - 1`, else \
    the tip. An `event: status` (no id) carries the `NodeStatus` of `GET /v1/status` whenever the \
    view or term, the leader or the readiness changes. Comment lines keep an idle stream alive \
    (at least every 15 s). A client too slow for the live pace is moved back to replay from the \
    store; it is never dropped and never skips a block.";

/// `GET /v1/events`: the live stream (handler: `crate::events::events`).
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    description = EVENTS,
    params(
        ("from_height" = Option<u64>, Query, description = "The first height to send; ignored \
            when `Last-Event-ID` is sent. Without either, the stream starts after the tip."),
        ("txs" = Option<bool>, Query, description = "`false` leaves each block event's `txs` out \
            (every other field stays). Default `true`."),
        ("Last-Event-ID" = Option<u64>, Header, description = "The height of the last block event \
            received: the stream resumes right after it. Browsers' `EventSource` sends it on \
            reconnection."),
    ),
    responses(
        (status = 200, description = "The event stream.", body = String, content_type = "text/event-stream"),
        (status = 400, description = "`invalid_query`: a query parameter of the wrong type, or a \
            `Last-Event-ID` that is not a height.", body = ErrorBodySchema),
        (status = 503, description = "`too_many_subscribers`: the node's limit of open streams is \
            reached; `timeout`.", body = ErrorBodySchema,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        (status = 500, description = "A fault inside the node.", body = ErrorBodySchema),
    )
)]
fn events() {}

/// `GET /metrics`: Prometheus metrics (handler: `crate::metrics::serve`).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "node",
    description = "The node's metrics (protocol §7.3) in the OpenMetrics text format, which \
        Prometheus scrapes natively. Names start with `ordo_`, use base units, counters end in \
        `_total`, and no label holds a height, hash or id. Not rate limited.",
    responses(
        (status = 200, description = "The metrics.", body = String, content_type = crate::metrics::CONTENT_TYPE),
    )
)]
fn metrics() {}

/// The answer of an explorer page that names something the chain does not hold.
const PAGE_NOT_FOUND: &str = "An HTML page saying the block, transaction or key is unknown.";
/// The answer of an explorer page whose request is malformed.
const PAGE_BAD_REQUEST: &str = "An HTML page saying what is malformed in the request.";
/// The answer of an explorer page when the node could not answer.
const PAGE_FAILED: &str = "The node failed to answer: an HTML page with the error.";
/// The answer of an explorer page when the node is overloaded.
const PAGE_UNAVAILABLE: &str = "The node is overloaded or the request took too long (`timeout`): an \
    HTML page, or the JSON error body when the request timed out.";

/// `GET /`: the dashboard (handler: `crate::explorer::pages::dashboard`).
#[utoipa::path(
    get,
    path = "/",
    tag = "explorer",
    description = "The dashboard: chain, consensus, height, view or term, leader, validators and \
        their connectivity, mempool, recent blocks, transactions per second and block interval, \
        kept up to date from `GET /v1/events` without reloading.",
    responses(
        (status = 200, description = "The page.", body = String, content_type = "text/html"),
        (status = 500, description = PAGE_FAILED, body = String, content_type = "text/html"),
        (status = 503, description = PAGE_UNAVAILABLE, content((String = "text/html"), (ErrorBodySchema = "application/json")),
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    )
)]
fn dashboard_page() {}

/// `GET /blocks`: pages of blocks (handler: `crate::explorer::pages::blocks`).
#[utoipa::path(
    get,
    path = "/blocks",
    tag = "explorer",
    description = "Blocks, newest first, one page at a time, with links to the older and newer pages.",
    params(("before" = Option<u64>, Query, description = "Show blocks below this height; \
        without it, from the tip.")),
    responses(
        (status = 200, description = "The page.", body = String, content_type = "text/html"),
        (status = 400, description = PAGE_BAD_REQUEST, body = String, content_type = "text/html"),
        (status = 500, description = PAGE_FAILED, body = String, content_type = "text/html"),
        (status = 503, description = PAGE_UNAVAILABLE, content((String = "text/html"), (ErrorBodySchema = "application/json")),
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    )
)]
fn blocks_page() {}

/// `GET /blocks/{height}`: one block (handler: `crate::explorer::pages::block`).
#[utoipa::path(
    get,
    path = "/blocks/{height}",
    tag = "explorer",
    description = "Every header field of a block, its certificate with each signer's name, and \
        its transactions.",
    params(("height" = u64, Path, description = "The block's height.")),
    responses(
        (status = 200, description = "The page.", body = String, content_type = "text/html"),
        (status = 400, description = PAGE_BAD_REQUEST, body = String, content_type = "text/html"),
        (status = 404, description = PAGE_NOT_FOUND, body = String, content_type = "text/html"),
        (status = 500, description = PAGE_FAILED, body = String, content_type = "text/html"),
        (status = 503, description = PAGE_UNAVAILABLE, content((String = "text/html"), (ErrorBodySchema = "application/json")),
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    )
)]
fn block_page() {}

/// `GET /tx/{tx_id}`: one transaction (handler: `crate::explorer::pages::tx`).
#[utoipa::path(
    get,
    path = "/tx/{tx_id}",
    tag = "explorer",
    description = "A transaction: its fields, its status, and for a committed one its block and \
        result.",
    params(("tx_id" = HashSchema, Path, description = "The transaction's id.")),
    responses(
        (status = 200, description = "The page.", body = String, content_type = "text/html"),
        (status = 400, description = PAGE_BAD_REQUEST, body = String, content_type = "text/html"),
        (status = 404, description = PAGE_NOT_FOUND, body = String, content_type = "text/html"),
        (status = 500, description = PAGE_FAILED, body = String, content_type = "text/html"),
        (status = 503, description = PAGE_UNAVAILABLE, content((String = "text/html"), (ErrorBodySchema = "application/json")),
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    )
)]
fn tx_page() {}

/// `GET /state/{key}`: one state key (handler: `crate::explorer::pages::state`).
#[utoipa::path(
    get,
    path = "/state/{key}",
    tag = "explorer",
    description = "A state key's value at the tip.",
    params(("key" = String, Path, description = "The key; it may contain `/`, as is or as `%2F`.")),
    responses(
        (status = 200, description = "The page.", body = String, content_type = "text/html"),
        (status = 400, description = PAGE_BAD_REQUEST, body = String, content_type = "text/html"),
        (status = 404, description = PAGE_NOT_FOUND, body = String, content_type = "text/html"),
        (status = 500, description = PAGE_FAILED, body = String, content_type = "text/html"),
        (status = 503, description = PAGE_UNAVAILABLE, content((String = "text/html"), (ErrorBodySchema = "application/json")),
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    )
)]
fn state_page() {}

/// `GET /state?key=`: one state key named in the query (handler:
/// `crate::explorer::pages::state_by_query`).
#[utoipa::path(
    get,
    path = "/state",
    tag = "explorer",
    description = "A state key's value at the tip, for keys that cannot be a path segment (`.`, `..`).",
    params(("key" = String, Query, description = "The key.")),
    responses(
        (status = 200, description = "The page.", body = String, content_type = "text/html"),
        (status = 400, description = "An HTML page saying the key is missing or empty.", body = String,
            content_type = "text/html"),
        (status = 404, description = PAGE_NOT_FOUND, body = String, content_type = "text/html"),
        (status = 500, description = PAGE_FAILED, body = String, content_type = "text/html"),
        (status = 503, description = PAGE_UNAVAILABLE, content((String = "text/html"), (ErrorBodySchema = "application/json")),
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    )
)]
fn state_query_page() {}

/// `GET /validators`: the validator set (handler: `crate::explorer::pages::validators`).
#[utoipa::path(
    get,
    path = "/validators",
    tag = "explorer",
    description = "The validator set: names, keys, addresses and connectivity.",
    responses(
        (status = 200, description = "The page.", body = String, content_type = "text/html"),
        (status = 500, description = PAGE_FAILED, body = String, content_type = "text/html"),
        (status = 503, description = PAGE_UNAVAILABLE, content((String = "text/html"), (ErrorBodySchema = "application/json")),
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    )
)]
fn validators_page() {}

/// `GET /search?q=`: finds a height, block hash, tx_id or key (handler:
/// `crate::explorer::search::search`).
#[utoipa::path(
    get,
    path = "/search",
    tag = "explorer",
    description = "Looks `q` up as a block height, a block hash, a transaction id or a state key, \
        and redirects to the page of what it found.",
    params(("q" = String, Query, description = "What to look for.")),
    responses(
        (status = 303, description = "Found: `Location` is its page.",
            headers(("Location" = String, description = "The page of what was found."))),
        (status = 400, description = "An HTML page asking for something to search for (`q` missing or blank).",
            body = String, content_type = "text/html"),
        (status = 404, description = "An HTML page saying nothing on this chain matches.", body = String,
            content_type = "text/html"),
        (status = 500, description = PAGE_FAILED, body = String, content_type = "text/html"),
        (status = 503, description = PAGE_UNAVAILABLE, content((String = "text/html"), (ErrorBodySchema = "application/json")),
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
    )
)]
fn search_page() {}

/// `GET /favicon.ico` (handler: `crate::explorer::no_icon`).
#[utoipa::path(
    get,
    path = "/favicon.ico",
    tag = "explorer",
    description = "Browsers ask every site for an icon; the explorer has none and says so without \
        an error.",
    responses((status = 204, description = "No icon."))
)]
fn favicon() {}
