//! The OpenAPI 3 document of the API (protocol §7), served at `GET /v1/openapi.json`.
//!
//! A JSON route and its documentation are one declaration: each handler in [`crate::routes`]
//! carries its `#[utoipa::path]`, and [`crate::router`] registers the `/v1` routes through
//! `utoipa_axum`'s `OpenApiRouter` and `routes!`, which adds the route to axum and its
//! operation to the document together. This module holds what that cannot:
//! - [`ApiDoc`]: the document's frame (info, tags) and the routes registered outside the `/v1`
//!   block: the probes (whose attributes sit on their handlers) and the routes whose handlers
//!   live in other modules ([`other_routes`]: the event stream, the metrics, the explorer pages);
//! - [`schemas`]: the shapes of types that cannot derive a schema here (the `ordo-chain`
//!   protocol types must not depend on utoipa);
//! - [`Document`]: the finished document, serialized once per router, and its handler.
//!
//! `api/tests/openapi.rs` keeps the document true: every path the router serves is documented,
//! real answers validate against their schemas, and `docs/openapi.json` is the served document.

pub mod other_routes;
pub mod schemas;

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{IntoResponses, OpenApi};

use crate::routes;
use schemas::ErrorBodySchema;

/// The document's frame and the operations not registered through the `/v1` `OpenApiRouter`.
/// [`crate::router`] starts its `OpenApiRouter` from this, so the served document is this plus
/// every `/v1` route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ordo node API",
        description = "The REST API every validator of an Ordo chain serves (protocol §7): submit \
            transactions, read blocks, transactions and state, follow the chain live, and watch the \
            node. Every error answer is `{\"error\":{\"code\",\"message\"}}`; branch on `code`. \
            docs/api.md is the guide to this document."
    ),
    paths(
        routes::healthz,
        routes::readyz,
        other_routes::events,
        other_routes::metrics,
        other_routes::dashboard_page,
        other_routes::blocks_page,
        other_routes::block_page,
        other_routes::tx_page,
        other_routes::state_page,
        other_routes::state_query_page,
        other_routes::validators_page,
        other_routes::search_page,
        other_routes::favicon,
    ),
    components(schemas(schemas::HelloEventSchema, schemas::ErrorBodySchema)),
    tags(
        (name = "transactions", description = "Submitting transactions and following them to commit."),
        (name = "blocks", description = "The committed chain."),
        (name = "state", description = "The key-value state at the tip."),
        (name = "node", description = "This node: its status, the validator set, probes, metrics."),
        (name = "events", description = "Server-Sent Events: committed blocks and status changes, live."),
        (name = "explorer", description = "The block explorer's HTML pages (protocol §7.2)."),
        (name = "meta", description = "This document."),
    )
)]
pub struct ApiDoc;

/// The refusals every rate-limited `/v1` route may answer besides its own outcomes.
#[derive(IntoResponses)]
pub enum V1Refusals {
    /// `rate_limited`: this client's IP address is over its quota (when rate limiting is on).
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait before trying again.")))]
    RateLimited(ErrorBodySchema),
    /// A fault inside the node: `internal`, or a store code such as `io` or `corrupt`.
    #[response(status = 500)]
    Internal(ErrorBodySchema),
}

/// The finished document as served: pretty JSON and a final newline, exactly the bytes of
/// `docs/openapi.json`. Built once per router and shared by every request.
#[derive(Debug, Clone)]
pub struct Document {
    json: Bytes,
}

impl Document {
    /// Completes `doc` (what `OpenApiRouter::split_for_parts` returned) for publishing: axum's
    /// catch-all segments (`{*key}`) become OpenAPI path parameters (`{key}`), then it is
    /// serialized.
    pub fn new(mut doc: OpenApiDoc) -> Document {
        let paths = std::mem::take(&mut doc.paths.paths);
        doc.paths.paths = paths.into_iter().map(|(path, item)| (openapi_path(&path), item)).collect();
        let mut json = doc.to_pretty_json().expect("an OpenAPI document always serializes");
        json.push('\n');
        Document { json: Bytes::from(json) }
    }

    /// The served bytes.
    pub fn json(&self) -> &Bytes {
        &self.json
    }
}

/// An axum path template as OpenAPI writes it: `{*key}` (a catch-all) becomes `{key}`.
pub fn openapi_path(axum_path: &str) -> String {
    axum_path.replace("{*", "{")
}

/// `GET /v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API, the same on every node \
            of a version.", body = Object, content_type = "application/json"),
        V1Refusals,
    )
)]
pub async fn openapi_json(Extension(doc): Extension<Document>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], doc.json.clone()).into_response()
}
