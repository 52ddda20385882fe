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
//! Blocks are rendered to JSON once and shared: [`EventHub`] keeps the rendering of recent
//! heights (bounded by count and bytes), so fifty subscribers at the tip cost one store read
//! and one serialisation per block, not fifty.
//!
//! `?txs=false` is an extension for dashboards: the block events carry every field but `txs`.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use ordo_chain::{Block, BlockJson, Certificate, Hash, PublicKey};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

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

/// A block's two renderings: with and without its transactions.
#[derive(Debug)]
struct Rendered {
    full: Arc<str>,
    header: Arc<str>,
}

impl Rendered {
    fn of(block: &Block) -> Self {
        let full = serde_json::to_string(&BlockJson::from(block)).expect("a block always serializes");
        let header = serde_json::to_string(&HeaderJson::from(block)).expect("a header always serializes");
        Rendered { full: full.into(), header: header.into() }
    }

    fn bytes(&self) -> usize {
        self.full.len() + self.header.len()
    }
}

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

#[derive(Debug, Default)]
struct Cache {
    blocks: BTreeMap<u64, Arc<Rendered>>,
    bytes: usize,
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

    fn cached(&self, height: u64) -> Option<Arc<Rendered>> {
        self.cache.lock().expect("event cache lock").blocks.get(&height).cloned()
    }

    /// Keeps the rendering of `height`, evicting the lowest heights over the bounds.
    fn keep(&self, height: u64, rendered: Arc<Rendered>) {
        let mut c = self.cache.lock().expect("event cache lock");
        c.bytes += rendered.bytes();
        if let Some(old) = c.blocks.insert(height, rendered) {
            c.bytes -= old.bytes();
        }
        while c.blocks.len() > CACHE_BLOCKS_MAX || (c.bytes > CACHE_BYTES_MAX && c.blocks.len() > 1) {
            let (_, old) = c.blocks.pop_first().expect("not empty");
            c.bytes -= old.bytes();
        }
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
    let first = vec![
        Event::default().retry(Duration::from_millis(RETRY_MS)),
        Event::default().event("hello").data(serde_json::to_string(&hello).expect("hello serializes")),
    ];
    let state =
        Subscriber { node, next, txs: q.txs.unwrap_or(true), commits, status, pending: first.into(), _slot: slot };
    let stream = stream::unfold(state, |mut s| async move {
        let event = s.next_event().await?;
        Some((Ok::<Event, Infallible>(event), s))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

/// One subscriber's state: what it owes the client next.
struct Subscriber {
    node: Arc<dyn NodeHandle>,
    /// The next height to send.
    next: u64,
    txs: bool,
    commits: watch::Receiver<u64>,
    status: watch::Receiver<u64>,
    /// Events ready to go, in order.
    pending: VecDeque<Event>,
    _slot: Slot,
}

impl Subscriber {
    /// The next event, waiting for a commit or a status change when there is none; `None` ends
    /// the stream (the node is shutting down, or the store failed).
    async fn next_event(&mut self) -> Option<Event> {
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
                changed = self.commits.changed() => changed.ok()?,
                changed = self.status.changed() => {
                    changed.ok()?;
                    self.status.borrow_and_update();
                    let node = self.node.clone();
                    match tokio::task::spawn_blocking(move || node.status()).await {
                        Ok(Ok(s)) => {
                            let data = serde_json::to_string(&s).expect("status serializes");
                            self.pending.push_back(Event::default().event("status").data(data));
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "event stream could not read the status"),
                        Err(e) => tracing::warn!(error = %e, "event stream could not read the status"),
                    }
                }
            }
        }
    }

    /// The block events for heights `from..=to`, from the shared cache or the store. Stops early
    /// at a height the store does not hold yet (the notifier ran ahead of a reader's view). At the
    /// tip every height is usually rendered already, and then no blocking-pool hop is made.
    async fn load(&self, from: u64, to: u64) -> Result<Vec<Event>, ApiError> {
        let txs = self.txs;
        let hub = self.node.chain().events();
        let mut out = Vec::with_capacity((to - from + 1) as usize);
        let mut next = from;
        while let Some(r) = (next <= to).then(|| hub.cached(next)).flatten() {
            out.push(block_event(next, &r, txs));
            next += 1;
        }
        if next > to {
            return Ok(out);
        }
        let node = self.node.clone();
        let rest = tokio::task::spawn_blocking(move || {
            let hub = node.chain().events();
            let mut rest = Vec::new();
            for h in next..=to {
                let rendered = match hub.cached(h) {
                    Some(r) => r,
                    None => match node.block(h)? {
                        Some(b) => {
                            let r = Arc::new(Rendered::of(&b));
                            hub.keep(h, r.clone());
                            r
                        }
                        None => break,
                    },
                };
                rest.push(block_event(h, &rendered, txs));
            }
            Ok::<_, ApiError>(rest)
        })
        .await
        .map_err(|e| ApiError::Internal { reason: format!("event stream read failed: {e}") })??;
        out.extend(rest);
        Ok(out)
    }
}

/// The `event: block` of `height`, with or without its transactions.
fn block_event(height: u64, rendered: &Rendered, txs: bool) -> Event {
    let data = if txs { &rendered.full } else { &rendered.header };
    Event::default().event("block").id(height.to_string()).data(&**data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_bounded_and_evicts_the_lowest() {
        let hub = EventHub::new();
        let r = |n: usize| Arc::new(Rendered { full: "x".repeat(n).into(), header: "".into() });
        for h in 0..(CACHE_BLOCKS_MAX as u64 + 10) {
            hub.keep(h, r(10));
        }
        let c = hub.cache.lock().unwrap();
        assert_eq!(c.blocks.len(), CACHE_BLOCKS_MAX);
        assert_eq!(*c.blocks.keys().next().unwrap(), 10);
        assert_eq!(c.bytes, CACHE_BLOCKS_MAX * 10);
        drop(c);
        hub.keep(10_000, r(CACHE_BYTES_MAX));
        let c = hub.cache.lock().unwrap();
        assert_eq!(c.blocks.len(), 1, "one huge block pushes out the rest but stays");
        assert_eq!(c.bytes, CACHE_BYTES_MAX);
    }
}
