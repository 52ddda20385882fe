//! Request bodies: reading one within its limit, and draining one the API refuses.
//!
//! A refused body is still read, up to a bound, before the answer goes out. A client that sends
//! its whole body before it reads the answer (Python's `urllib`, `ureq`, most simple clients)
//! would otherwise have the connection closed under it while it is still writing: the server's
//! kernel answers data arriving on a closed socket with a reset, and the client reports "Broken
//! pipe" instead of the 413. nginx (lingering close) and Go's `net/http` drain the same way. The
//! bound keeps a client that sends a gigabyte from holding the server: past it, or past the time
//! limit, the connection is closed and that client sees the reset.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::BodyExt;

use crate::error::ApiError;

/// How many bytes past a body limit the API reads and discards of a refused body.
pub const REFUSED_BODY_DRAIN_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// The longest the API spends reading and discarding a refused body.
pub const REFUSED_BODY_DRAIN_MAX_MS: u64 = 2_000;

/// What became of a refused body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Read to its end: the client has finished sending and will read the answer.
    All,
    /// Not read to its end (over the bound, too slow, the client asked to wait with
    /// `Expect: 100-continue`, or the connection failed); the connection is closed after the answer.
    Cut,
}

/// The declared `Content-Length`, if any and well-formed.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

/// Whether the client waits for `100 Continue` before it sends the body.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Reads a body of at most `limit_bytes`. An oversized body is refused from its `Content-Length`
/// before any of it is read, or at the limit while it is read (a chunked body), and in both cases
/// drained (see [`discard_refused`]) before the 413 goes out.
pub async fn read_limited(headers: &HeaderMap, mut body: Body, limit_bytes: usize) -> Result<Bytes, ApiError> {
    let limit = limit_bytes as u64;
    let declared = declared_length(headers);
    if declared.is_some_and(|n| n > limit) {
        discard_refused(headers, body, 0, limit).await;
        return Err(ApiError::BodyTooLarge { limit_bytes });
    }
    // The declared length is at most the limit here, so it may size the buffer.
    let mut buf = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::UnreadableBody { reason: e.to_string() })?;
        // Trailers carry nothing the API reads.
        let Ok(data) = frame.into_data() else { continue };
        let read = (buf.len() + data.len()) as u64;
        if read > limit {
            drop(buf);
            discard_refused(headers, body, read, limit).await;
            return Err(ApiError::BodyTooLarge { limit_bytes });
        }
        buf.extend_from_slice(&data);
    }
    Ok(Bytes::from(buf))
}

/// Reads and discards the rest of a refused body, of which `already_read` bytes were read, so the
/// client can read the answer; at most `limit_bytes + REFUSED_BODY_DRAIN_MAX_BYTES` in all and
/// for at most `REFUSED_BODY_DRAIN_MAX_MS`.
pub async fn discard_refused(headers: &HeaderMap, body: Body, already_read: u64, limit_bytes: u64) -> Drained {
    discard_within(
        headers,
        body,
        already_read,
        limit_bytes.saturating_add(REFUSED_BODY_DRAIN_MAX_BYTES),
        Duration::from_millis(REFUSED_BODY_DRAIN_MAX_MS),
    )
    .await
}

/// [`discard_refused`] with its bounds as arguments: at most `max_total_bytes` read in all,
/// counting `already_read`, and at most `max_time`.
async fn discard_within(
    headers: &HeaderMap,
    mut body: Body,
    already_read: u64,
    max_total_bytes: u64,
    max_time: Duration,
) -> Drained {
    // A client waiting for `100 Continue` has not sent the body and, given a final answer
    // instead, never will: reading would only invite it to.
    if already_read == 0 && expects_continue(headers) {
        return Drained::Cut;
    }
    // A declared body past the bound cannot be drained; reading part of it only delays the close.
    if declared_length(headers).is_some_and(|n| n > max_total_bytes) {
        return Drained::Cut;
    }
    let drain = async {
        let mut read = already_read;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return Drained::Cut };
            if let Some(data) = frame.data_ref() {
                read = read.saturating_add(data.len() as u64);
                if read > max_total_bytes {
                    return Drained::Cut;
                }
            }
        }
        Drained::All
    };
    let drained = tokio::time::timeout(max_time, drain).await.unwrap_or(Drained::Cut);
    tracing::debug!(?drained, "refused request body discarded");
    drained
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use axum::http::HeaderValue;
    use http_body_util::Channel;

    use super::*;

    const CHUNK_BYTES: usize = 64 * 1024;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.clone(), HeaderValue::from_static(v))).collect()
    }

    /// A body fed by a task that sends `total_chunks` chunks of `CHUNK_BYTES` (or without end
    /// when `None`), then stalls without ending the body when `stall` is set. Returns the body
    /// and how many chunks the reader has taken (the channel holds one more).
    fn fed_body(total_chunks: Option<u64>, stall: bool) -> (Body, Arc<AtomicU64>) {
        let (mut tx, body) = Channel::<Bytes, axum::Error>::new(1);
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        tokio::spawn(async move {
            while total_chunks.is_none_or(|n| counter.load(Ordering::Relaxed) < n) {
                if tx.send_data(Bytes::from(vec![b' '; CHUNK_BYTES])).await.is_err() {
                    return;
                }
                counter.fetch_add(1, Ordering::Relaxed);
            }
            if stall {
                std::future::pending::<()>().await;
            }
        });
        (Body::new(body), sent)
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let (body, _) = fed_body(Some(4), false);
        let bytes = read_limited(&HeaderMap::new(), body, 4 * CHUNK_BYTES).await.unwrap();
        assert_eq!(bytes.len(), 4 * CHUNK_BYTES);
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_refused_and_drained_to_its_end() {
        // 2 MiB against a 1 MiB limit: within the drain bound, so all of it is read.
        let (body, sent) = fed_body(Some(32), false);
        let e = read_limited(&HeaderMap::new(), body, 1024 * 1024).await.unwrap_err();
        assert!(matches!(e, ApiError::BodyTooLarge { limit_bytes: 1_048_576 }), "{e}");
        assert_eq!(sent.load(Ordering::Relaxed), 32, "the whole body was taken from the client");
    }

    #[tokio::test]
    async fn draining_stops_at_the_byte_bound() {
        let (body, sent) = fed_body(None, false);
        let limit = 1024 * 1024;
        let drained =
            discard_within(&HeaderMap::new(), body, 0, limit + REFUSED_BODY_DRAIN_MAX_BYTES, Duration::from_secs(3600))
                .await;
        assert_eq!(drained, Drained::Cut);
        let bound_chunks = (limit + REFUSED_BODY_DRAIN_MAX_BYTES) / CHUNK_BYTES as u64;
        let taken = sent.load(Ordering::Relaxed);
        // The reader stops at the first chunk past the bound; the channel may hold one more.
        assert!((bound_chunks + 1..=bound_chunks + 2).contains(&taken), "took {taken} chunks, bound {bound_chunks}");
    }

    #[tokio::test]
    async fn draining_stops_at_the_time_bound() {
        // The body stalls without end, so only the time bound can end the drain.
        let (body, sent) = fed_body(Some(3), true);
        let drained = discard_within(&HeaderMap::new(), body, 0, u64::MAX, Duration::from_millis(100)).await;
        assert_eq!(drained, Drained::Cut);
        assert_eq!(sent.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_declared_length_past_the_bound_is_not_read() {
        let (body, sent) = fed_body(None, false);
        let h = headers(&[(header::CONTENT_LENGTH, "1073741824")]);
        let e = read_limited(&h, body, 1024 * 1024).await.unwrap_err();
        assert!(matches!(e, ApiError::BodyTooLarge { .. }), "{e}");
        assert!(sent.load(Ordering::Relaxed) <= 1, "nothing was read");
    }

    #[tokio::test]
    async fn a_client_waiting_for_100_continue_is_answered_without_reading() {
        let (body, sent) = fed_body(Some(32), false);
        let h = headers(&[(header::CONTENT_LENGTH, "2097152"), (header::EXPECT, "100-continue")]);
        assert!(matches!(read_limited(&h, body, 1024 * 1024).await, Err(ApiError::BodyTooLarge { .. })));
        assert!(sent.load(Ordering::Relaxed) <= 1, "nothing was read");
        // Without the expectation, the same body is drained.
        let (body, sent) = fed_body(Some(32), false);
        let h = headers(&[(header::CONTENT_LENGTH, "2097152")]);
        assert!(matches!(read_limited(&h, body, 1024 * 1024).await, Err(ApiError::BodyTooLarge { .. })));
        assert_eq!(sent.load(Ordering::Relaxed), 32);
    }
}
