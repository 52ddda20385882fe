//! The bookkeeping shared by the request-response protocols whose answers come from the node
//! (block sync and the transaction fetch): outbound requests in flight, each with the channel
//! its answer goes back on, and inbound requests waiting, with a deadline, for the node's reply.
//!
//! The network task keeps one `Exchange` per protocol and lends it that protocol's libp2p
//! behaviour; the exchange owns the limits, so every such protocol bounds, times out, refuses
//! and size-checks in the same way. What a request means (parsing, the event handed to the
//! node) stays with the network task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::PeerId;
use ordo_chain::PublicKey;
use tokio::sync::oneshot;
use tracing::{debug, warn};

use crate::codec::FrameCodec;
use crate::error::{P2pError, Result};
use crate::identity::Committee;

/// One request-response protocol's libp2p behaviour.
pub(crate) type Behaviour = request_response::Behaviour<FrameCodec>;

/// The limits of one exchange, all from `P2pConfig`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExchangeLimits {
    /// How long an outbound request waits for its answer, and an inbound one for the node.
    pub timeout_ms: u64,
    /// The largest answer sent; a larger one from the node is dropped, which refuses.
    pub max_response_bytes: usize,
    /// Inbound requests waiting for the node at once; more are refused.
    pub max_pending_replies: usize,
    /// Outbound requests in flight at once; more fail with `TooManyRequests`.
    pub max_outbound: usize,
}

/// A request from a validator, for the network task to hand to the node.
pub(crate) struct Inbound {
    pub from: PublicKey,
    pub request: Vec<u8>,
    pub channel: ResponseChannel<Vec<u8>>,
}

/// The node's answer to an inbound request: `None` when it refused (dropped the sender) or let
/// the deadline pass.
pub(crate) struct Answer {
    bytes: Option<Vec<u8>>,
    channel: ResponseChannel<Vec<u8>>,
    to: PublicKey,
}

/// Who an outbound request went to, and where its answer goes.
type Pending = (PublicKey, oneshot::Sender<Result<Vec<u8>>>);

pub(crate) struct Exchange {
    /// Names the protocol in logs and errors: "block", "tx".
    kind: &'static str,
    limits: ExchangeLimits,
    outbound: HashMap<OutboundRequestId, Pending>,
    answers: FuturesUnordered<BoxFuture<'static, Answer>>,
}

impl Exchange {
    pub fn new(kind: &'static str, limits: ExchangeLimits) -> Self {
        Exchange { kind, limits, outbound: HashMap::new(), answers: FuturesUnordered::new() }
    }

    /// Sends `request` to `peer` (validator `key`, already known to be connected); the answer,
    /// or why there is none, arrives on `reply`.
    pub fn request(
        &mut self,
        behaviour: &mut Behaviour,
        peer: PeerId,
        key: PublicKey,
        request: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>>>,
    ) {
        if self.outbound.len() >= self.limits.max_outbound {
            let _ = reply.send(Err(P2pError::TooManyRequests { kind: self.kind, max: self.limits.max_outbound }));
            return;
        }
        let id = behaviour.send_request(&peer, request);
        self.outbound.insert(id, (key, reply));
    }

    /// Settles what libp2p reports about this protocol and returns an inbound request from a
    /// validator, if that is what the event was.
    pub fn on_event(
        &mut self,
        ev: request_response::Event<Vec<u8>, Vec<u8>>,
        committee: &Committee,
    ) -> Option<Inbound> {
        let kind = self.kind;
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    // The allow list admits validators only; an unknown peer is never answered.
                    let from = committee.key_of(&peer)?;
                    return Some(Inbound { from, request, channel });
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some((_, reply)) = self.outbound.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, .. } => {
                if let Some((key, reply)) = self.outbound.remove(&request_id) {
                    let err = match error {
                        request_response::OutboundFailure::Timeout => {
                            P2pError::RequestTimeout { key, timeout_ms: self.limits.timeout_ms }
                        }
                        other => P2pError::RequestFailed { key, reason: other.to_string() },
                    };
                    let _ = reply.send(Err(err));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(kind, %peer, %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
        None
    }

    /// Starts waiting for the node's answer to a request from `from`, and returns the sender the
    /// node answers on. `None` when too many requests wait already: the request is then refused
    /// (dropping `channel` tells the requester no; it retries elsewhere or later).
    pub fn await_answer(
        &mut self,
        from: PublicKey,
        channel: ResponseChannel<Vec<u8>>,
    ) -> Option<oneshot::Sender<Vec<u8>>> {
        if self.answers.len() >= self.limits.max_pending_replies {
            warn!(kind = self.kind, %from, max = self.limits.max_pending_replies, "too many requests waiting for the node; refused");
            return None;
        }
        let (tx, rx) = oneshot::channel();
        // The deadline is fixed now, when the request arrives, not when the future is first polled.
        let answer = tokio::time::timeout(Duration::from_millis(self.limits.timeout_ms), rx);
        self.answers.push(Box::pin(async move {
            let bytes = answer.await.ok().and_then(|r| r.ok());
            Answer { bytes, channel, to: from }
        }));
        Some(tx)
    }

    /// The next answer the node gave, refused or let lapse. Pending while none waits, so that
    /// it can sit in a `select!` beside other sources; dropping it loses nothing.
    pub async fn next_answer(&mut self) -> Answer {
        match self.answers.next().await {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }

    /// Sends the node's answer to the requester, unless there is none or it is too large (both
    /// refuse: the requester sees its request fail).
    pub fn answer(&self, behaviour: &mut Behaviour, answer: Answer, oversize_dropped: &AtomicU64) {
        let (kind, max_bytes) = (self.kind, self.limits.max_response_bytes);
        let Answer { bytes, channel, to } = answer;
        let Some(bytes) = bytes else {
            debug!(kind, %to, "the node refused a request or did not answer it in time");
            return;
        };
        if bytes.len() > max_bytes {
            oversize_dropped.fetch_add(1, Ordering::Relaxed);
            warn!(kind, %to, size_bytes = bytes.len(), max_bytes, "response too large; not sent");
            return;
        }
        if behaviour.send_response(channel, bytes).is_err() {
            debug!(kind, %to, "response not sent: the requester is gone");
        }
    }

    /// Fails every outbound request still in flight (the service is stopping).
    pub fn fail_all(&mut self, reason: &str) {
        for (_, (key, reply)) in self.outbound.drain() {
            let _ = reply.send(Err(P2pError::RequestFailed { key, reason: reason.to_string() }));
        }
    }
}
