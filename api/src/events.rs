//! `GET /v1/events` (protocol §7.1): committed blocks and status changes as Server-Sent Events.
//!
//! Each subscriber keeps a cursor, the next height it owes the client, and reads blocks from
//! the store at its own pace; the live side is only a wake-up (the [`crate::CommitNotifier`]
//! height watch, and a status generation watch). So a stream can neither skip nor repeat a
//! height, and a client too slow for the chain's pace is simply further behind in its replay
//! from the store: it is never dropped and never given a gap, and it costs the others nothing.
//! The order of operations makes that exact: the stream subscribes to both watches before it
//! reads the tip, so a commit that lands in between still wakes it.
//!
//! Blocks are rendered once and shared: [`EventHub`] keeps, for recent heights (bounded by count
//! and bytes), each block's whole SSE frame (`event`, `id` and `data` lines) as reference-counted
//! [`Bytes`]. Fifty subscribers at the tip cost one store read, one serialisation and one framing
//! per block; each stream then hands the same buffer to its connection, with no copy of its own.
//! The rendering of a new height is single-flight: every stream wakes on the same commit, the
//! first one reads and renders the block, and the others wait for that rendering instead of
//! each doing it again (a herd of fifty renders per block cost more CPU than the rest of the
//! streams together).
//! (axum's `Sse`/`Event` would copy and re-scan every block's text once per stream, so the
//! stream is framed here, following the same wire format: `field: value` lines and a blank line.)
//!
//! `?txs=false` is an extension for dashboards: the block events carry every field but `txs`.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::stream;
use ordo_chain::{Block, BlockJson, Certificate, Hash, PublicKey};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, OnceCell};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::node::NodeHandle;
use crate::routes::AppState;

/// The reconnection delay the stream asks clients for (`retry:`).
pub const RETRY_MS: u64 = 2_000;
/// How often an idle stream sends a keep-alive comment (the protocol asks for at most 15 s).
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How many blocks one replay step reads from the store at once.
const REPLAY_CHUNK: u64 = 32;
/// The rendered blocks kept for subscribers: at most this many heights ...
const CACHE_BLOCKS_MAX: usize = 256;
/// ... and at most this many bytes of JSON.
const CACHE_BYTES_MAX: usize = 32 << 20;

/// A block's two `event: block` frames, ready to write: with and without its transactions.
#[derive(Debug)]
struct Rendered {
    full: Bytes,
    header: Bytes,
}

impl Rendered {
    fn of(block: &Block) -> Self {
        let height = block.height();
        Rendered {
            full: frame("block", Some(height), &BlockJson::from(block)),
            header: frame("block", Some(height), &HeaderJson::from(block)),
        }
    }

    fn bytes(&self) -> usize {
        self.full.len() + self.header.len()
    }
}

/// One SSE event: `event: NAME`, `id: ID` if any, `data: JSON` (compact JSON holds no newline,
/// so one `data` line carries it all), and the blank line that dispatches it.
fn frame<T: Serialize>(name: &str, id: Option<u64>, data: &T) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    if let Some(id) = id {
        out.extend_from_slice(format!("\nid: {id}").as_bytes());
    }
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut out, data).expect("event data always serializes");
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The comment an idle stream sends so that proxies and clients see it alive.
const KEEP_ALIVE_FRAME: &[u8] = b":\n\n";

/// A block as `GET /v1/blocks/{height}` serves it, minus `txs`.
#[derive(Serialize)]
struct HeaderJson<'a> {
    height: u64,
    hash: Hash,
    prev_hash: Hash,
    batch_digest: Hash,
    state_hash: Hash,
    timestamp_ms: u64,
    proposer: PublicKey,
    tx_root: Hash,
    tx_count: u32,
    certificate: &'a Option<Certificate>,
}

impl<'a> From<&'a Block> for HeaderJson<'a> {
    fn from(b: &'a Block) -> Self {
        HeaderJson {
            height: b.height(),
            hash: b.hash,
            prev_hash: b.prev_hash,
            batch_digest: b.batch_digest,
            state_hash: b.state_hash,
            timestamp_ms: b.header.timestamp_ms,
            proposer: b.header.proposer,
            tx_root: b.header.tx_root,
            tx_count: b.header.tx_count,
            certificate: &b.certificate,
        }
    }
}

/// What every event stream of a node shares: the status wake-up, the subscriber count and the
/// rendered-block cache. Owned by [`crate::LocalChain`].
#[derive(Debug)]
pub struct EventHub {
    status: watch::Sender<u64>,
    subscribers: Arc<AtomicUsize>,
    cache: Mutex<Cache>,
}

/// One height's rendering: empty until the first stream that needs it fills it.
type Cell = Arc<OnceCell<Arc<Rendered>>>;

#[derive(Debug, Default)]
struct Cache {
    /// Each height's cell and the bytes its rendering holds (0 until filled and counted).
    blocks: BTreeMap<u64, (Cell, usize)>,
    bytes: usize,
}

impl Cache {
    /// Evicts the lowest heights while over the bounds (the newest one always stays).
    fn evict(&mut self) {
        while self.blocks.len() > CACHE_BLOCKS_MAX || (self.bytes > CACHE_BYTES_MAX && self.blocks.len() > 1) {
            let (_, (_, bytes)) = self.blocks.pop_first().expect("not empty");
            self.bytes -= bytes;
        }
    }
}

/// Why a height could not be rendered.
enum LoadError {
    /// The store does not hold it yet (the commit watch ran ahead of this reader's view).
    NotYet,
    Failed(ApiError),
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    pub fn new() -> Self {
        Self { status: watch::Sender::new(0), subscribers: Arc::new(AtomicUsize::new(0)), cache: Mutex::default() }
    }

    /// Called by the node when its view or term, leader or readiness changed: every stream sends
    /// an `event: status` with the `/v1/status` body it reads then. Several changes before a
    /// stream wakes are sent as one (the newest status).
    pub fn status_changed(&self) {
        self.status.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Open streams.
    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::Relaxed)
    }

    /// The rendering of `height` if some stream made it already.
    fn cached(&self, height: u64) -> Option<Arc<Rendered>> {
        self.cache.lock().expect("event cache lock").blocks.get(&height).and_then(|(cell, _)| cell.get().cloned())
    }

    /// The cell of `height`, created empty if new (evicting the lowest heights over the bounds).
    fn cell(&self, height: u64) -> Cell {
        let mut c = self.cache.lock().expect("event cache lock");
        let cell = c.blocks.entry(height).or_default().0.clone();
        c.evict();
        cell
    }

    /// Counts the bytes of a freshly filled cell, if the cache still holds it.
    fn filled(&self, height: u64, rendered: &Rendered) {
        let mut c = self.cache.lock().expect("event cache lock");
        let Some((_, counted)) = c.blocks.get_mut(&height) else { return };
        if *counted == 0 {
            *counted = rendered.bytes();
            c.bytes += rendered.bytes();
            c.evict();
        }
    }

    /// Keeps the rendering of `height` (a replay made it), unless another stream's is there.
    fn keep(&self, height: u64, rendered: Arc<Rendered>) -> Arc<Rendered> {
        let cell = self.cell(height);
        let kept = match cell.set(rendered.clone()) {
            Ok(()) => rendered,
            Err(_) => cell.get().cloned().expect("a cell that refused a value holds one"),
        };
        self.filled(height, &kept);
        kept
    }
}

/// Holds one subscriber slot; frees it (and updates the gauge) when the stream is dropped.
struct Slot {
    count: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl Slot {
    fn take(hub: &EventHub, max: usize, metrics: Arc<Metrics>) -> Option<Slot> {
        hub.subscribers.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok().map(
            |_| {
                metrics.events_subscribers.inc();
                Slot { count: hub.subscribers.clone(), metrics }
            },
        )
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.metrics.events_subscribers.dec();
    }
}

/// `GET /v1/events` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// The first height to send (the start point is `from_height - 1`).
    from_height: Option<u64>,
    /// `false` leaves each block's `txs` out.
    txs: Option<bool>,
}

/// The `hello` event's body.
#[derive(Debug, Serialize)]
struct Hello<'a> {
    chain_id: &'a str,
    node_id: PublicKey,
    height: u64,
    /// The lowest height this node serves (it keeps every block).
    oldest_height: u64,
}

/// `GET /v1/events[?from_height=H][&txs=false]`, resuming after `Last-Event-ID` if sent.
pub async fn events(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::InvalidQuery { reason: e.body_text() })?;
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(v) => {
            let text = v.to_str().unwrap_or("").trim();
            let id = text.parse::<u64>().map_err(|_| ApiError::InvalidQuery {
                reason: format!("Last-Event-ID {text:?} is not a block height"),
            })?;
            Some(id)
        }
    };
    let node = app.node.clone();
    let chain = node.chain();
    let metrics = chain.metrics().clone();
    let slot =
        Slot::take(chain.events(), app.config.events_max_subscribers, metrics).ok_or(ApiError::TooManySubscribers {
            max: app.config.events_max_subscribers,
            retry_after_secs: app.config.retry_after_secs,
        })?;
    // Subscribe before reading the tip, so a commit in between still wakes the stream.
    let commits = node.commits().subscribe();
    let status = chain.events().status.subscribe();
    let status_node = node.clone();
    let now = tokio::task::spawn_blocking(move || status_node.status())
        .await
        .map_err(|e| ApiError::Internal { reason: format!("node call failed: {e}") })??;
    let tip = now.chain.height;
    let next = match (resume, q.from_height) {
        (Some(id), _) => id.saturating_add(1),
        (None, Some(h)) => h,
        (None, None) => tip + 1,
    };
    let hello = Hello { chain_id: &now.chain_id, node_id: now.node_id, height: tip, oldest_height: 0 };
    let first = vec![Bytes::from(format!("retry: {RETRY_MS}\n\n")), frame("hello", None, &hello)];
    let state =
        Subscriber { node, next, txs: q.txs.unwrap_or(true), commits, status, pending: first.into(), _slot: slot };
    let stream = stream::unfold(state, |mut s| async move {
        let event = s.next_event().await?;
        Some((Ok::<Bytes, Infallible>(event), s))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::Internal { reason: format!("could not build the event stream: {e}") })
}

/// One subscriber's state: what it owes the client next.
struct Subscriber {
    node: Arc<dyn NodeHandle>,
    /// The next height to send.
    next: u64,
    txs: bool,
    commits: watch::Receiver<u64>,
    status: watch::Receiver<u64>,
    /// Frames ready to go, in order.
    pending: VecDeque<Bytes>,
    _slot: Slot,
}

impl Subscriber {
    /// The next frame, waiting for a commit or a status change when there is none (and sending
    /// a keep-alive after [`KEEP_ALIVE`] of silence); `None` ends the stream (the node is
    /// shutting down, or the store failed).
    async fn next_event(&mut self) -> Option<Bytes> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            let tip = *self.commits.borrow_and_update();
            if self.next <= tip {
                let to = tip.min(self.next + REPLAY_CHUNK - 1);
                match self.load(self.next, to).await {
                    Ok(events) if !events.is_empty() => {
                        self.next += events.len() as u64;
                        self.pending.extend(events);
                        continue;
                    }
                    // The store does not show the height yet: wait for the next wake-up.
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "event stream could not read blocks; closing it");
                        return None;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(KEEP_ALIVE) => return Some(Bytes::from_static(KEEP_ALIVE_FRAME)),
                changed = self.commits.changed() => changed.ok()?,
                changed = self.status.changed() => {
                    changed.ok()?;
                    self.status.borrow_and_update();
                    let node = self.node.clone();
                    match tokio::task::spawn_blocking(move || node.status()).await {
                        Ok(Ok(s)) => self.pending.push_back(frame("status", None, &s)),
                        Ok(Err(e)) => tracing::warn!(error = %e, "event stream could not read the status"),
                        Err(e) => tracing::warn!(error = %e, "event stream could not read the status"),
                    }
                }
            }
        }
    }

    /// The block events for heights `from..=to`, from the shared cache or the store. Stops early
    /// at a height the store does not hold yet (the notifier ran ahead of a reader's view). Heights
    /// another stream rendered cost no blocking-pool hop; the newest height, which every stream
    /// at the tip wants at once, is rendered by one of them while the others wait for it; older
    /// heights (a replay) are read in one blocking call.
    async fn load(&self, from: u64, to: u64) -> Result<Vec<Bytes>, ApiError> {
        let txs = self.txs;
        let hub = self.node.chain().events();
        let mut out = Vec::with_capacity((to - from + 1) as usize);
        let mut next = from;
        while let Some(r) = (next <= to).then(|| hub.cached(next)).flatten() {
            out.push(block_event(&r, txs));
            next += 1;
        }
        if next > to {
            return Ok(out);
        }
        if next == to {
            return match self.render_once(next).await {
                Ok(r) => {
                    out.push(block_event(&r, txs));
                    Ok(out)
                }
                Err(LoadError::NotYet) => Ok(out),
                Err(LoadError::Failed(e)) => Err(e),
            };
        }
        let node = self.node.clone();
        let rest = tokio::task::spawn_blocking(move || {
            let hub = node.chain().events();
            let mut rest = Vec::new();
            for h in next..=to {
                let rendered = match hub.cached(h) {
                    Some(r) => r,
                    None => match node.block(h)? {
                        Some(b) => hub.keep(h, Arc::new(Rendered::of(&b))),
                        None => break,
                    },
                };
                rest.push(block_event(&rendered, txs));
            }
            Ok::<_, ApiError>(rest)
        })
        .await
        .map_err(|e| ApiError::Internal { reason: format!("event stream read failed: {e}") })??;
        out.extend(rest);
        Ok(out)
    }
}

impl Subscriber {
    /// The rendering of `height`, made by exactly one of the streams that want it at once.
    async fn render_once(&self, height: u64) -> Result<Arc<Rendered>, LoadError> {
        let hub = self.node.chain().events();
        let cell = hub.cell(height);
        let node = self.node.clone();
        let rendered = cell
            .get_or_try_init(|| async move {
                let read = tokio::task::spawn_blocking(move || node.block(height)).await;
                match read {
                    Ok(Ok(Some(b))) => Ok(Arc::new(Rendered::of(&b))),
                    Ok(Ok(None)) => Err(LoadError::NotYet),
                    Ok(Err(e)) => Err(LoadError::Failed(e)),
                    Err(e) => {
                        Err(LoadError::Failed(ApiError::Internal { reason: format!("event stream read failed: {e}") }))
                    }
                }
            })
            .await?
            .clone();
        hub.filled(height, &rendered);
        Ok(rendered)
    }
}

/// The `event: block` frame of a height, with or without its transactions: the shared buffer
/// itself (a reference count, no copy).
fn block_event(rendered: &Rendered, txs: bool) -> Bytes {
    if txs {
        rendered.full.clone()
    } else {
        rendered.header.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_the_sse_wire_format() {
        let f = frame("block", Some(7), &serde_json::json!({"height": 7, "key": "a\nb"}));
        // The newline inside a JSON string is escaped by the serializer: one `data` line.
        assert_eq!(&f[..], b"event: block\nid: 7\ndata: {\"height\":7,\"key\":\"a\\nb\"}\n\n");
        let f = frame("status", None, &serde_json::json!({}));
        assert_eq!(&f[..], b"event: status\ndata: {}\n\n");
    }

    #[test]
    fn cache_is_bounded_and_evicts_the_lowest() {
        let hub = EventHub::new();
        let r = |n: usize| Arc::new(Rendered { full: Bytes::from("x".repeat(n)), header: Bytes::new() });
        for h in 0..(CACHE_BLOCKS_MAX as u64 + 10) {
            hub.keep(h, r(10));
        }
        // A second rendering of a kept height is not counted twice: the first one stays.
        let first = hub.cached(100).unwrap();
        assert!(Arc::ptr_eq(&hub.keep(100, r(10)), &first));
        let c = hub.cache.lock().unwrap();
        assert_eq!(c.blocks.len(), CACHE_BLOCKS_MAX);
        assert_eq!(*c.blocks.keys().next().unwrap(), 10);
        assert_eq!(c.bytes, CACHE_BLOCKS_MAX * 10);
        drop(c);
        // An empty cell (a rendering under way) counts no bytes.
        let _pending = hub.cell(9_999);
        hub.keep(10_000, r(CACHE_BYTES_MAX));
        let c = hub.cache.lock().unwrap();
        assert_eq!(
            c.blocks.keys().copied().collect::<Vec<_>>(),
            vec![9_999, 10_000],
            "one huge block pushes out the rest but stays"
        );
        assert_eq!(c.bytes, CACHE_BYTES_MAX);
    }
}
