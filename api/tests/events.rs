//! `GET /v1/events` (protocol §7.1) over a real socket: the preamble, replay then live without a
//! gap or a duplicate, resuming with `Last-Event-ID`, a slow reader while thousands of blocks
//! commit, status events, the subscriber cap and bad input.

mod common;

use std::time::Duration;

use common::{put, Harness};
use ordo_api::{ApiConfig, MempoolConfig};
use reqwest::StatusCode;
use serde_json::Value;

/// One parsed server-sent event (comment-only blocks are skipped).
#[derive(Debug, Default, Clone)]
struct Sse {
    event: Option<String>,
    id: Option<String>,
    data: String,
    retry: Option<u64>,
}

/// Reads events off a streaming response, as an `EventSource` would.
struct Reader {
    resp: reqwest::Response,
    buf: String,
}

impl Reader {
    async fn open(h: &Harness, path: &str, last_event_id: Option<u64>) -> Reader {
        let mut req = h.http.get(h.url(path)).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Reader { resp, buf: String::new() }
    }

    /// The next event, waiting at most 10 s.
    async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut e = Sse::default();
                let mut any = false;
                for line in block.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "" => continue, // a comment (keep-alive)
                        "event" => e.event = Some(value.to_string()),
                        "id" => e.id = Some(value.to_string()),
                        "retry" => e.retry = Some(value.parse().unwrap()),
                        "data" => {
                            if !e.data.is_empty() {
                                e.data.push('\n');
                            }
                            e.data.push_str(value);
                        }
                        other => panic!("unknown SSE field {other:?} in {block:?}"),
                    }
                    any = true;
                }
                if any {
                    return e;
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.resp.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .expect("the stream stays open");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Skips the preamble (`retry`, `hello`), checking it.
    async fn preamble(&mut self) -> Value {
        let retry = self.next().await;
        assert_eq!(retry.retry, Some(2000), "{retry:?}");
        assert!(retry.event.is_none() && retry.data.is_empty());
        let hello = self.next().await;
        assert_eq!(hello.event.as_deref(), Some("hello"));
        assert!(hello.id.is_none(), "hello carries no id");
        serde_json::from_str(&hello.data).unwrap()
    }

    /// The next block event's height, checking that its id and body agree.
    async fn block(&mut self) -> (u64, Value) {
        loop {
            let e = self.next().await;
            if e.event.as_deref() == Some("status") {
                continue;
            }
            assert_eq!(e.event.as_deref(), Some("block"), "{e:?}");
            let body: Value = serde_json::from_str(&e.data).unwrap();
            let h = body["height"].as_u64().unwrap();
            assert_eq!(e.id, Some(h.to_string()));
            return (h, body);
        }
    }
}

fn commit_n(h: &Harness, n: u64, first_nonce: u64) {
    for i in 0..n {
        let nonce = first_nonce + i;
        h.commit_block(&[put(nonce, &format!("k{nonce}"), "v")]);
    }
}

#[tokio::test]
async fn replays_then_goes_live_and_resumes_without_gap_or_duplicate() {
    let h = Harness::start().await;
    commit_n(&h, 20, 1);

    let mut r = Reader::open(&h, "/v1/events?from_height=1", None).await;
    let hello = r.preamble().await;
    assert_eq!(hello["chain_id"], common::CHAIN);
    assert_eq!(hello["height"], 20);
    assert_eq!(hello["oldest_height"], 0);
    assert_eq!(hello["node_id"].as_str().unwrap().len(), 64);
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(r.block().await.0);
    }
    // The body is exactly the block as `GET /v1/blocks/{h}` serves it.
    let (h11, body) = r.block().await;
    seen.push(h11);
    let served: Value = h.get("/v1/blocks/11").await.json().await.unwrap();
    assert_eq!(body, served);
    drop(r); // cut the connection

    let last = *seen.last().unwrap();
    let mut r = Reader::open(&h, "/v1/events?from_height=1", Some(last)).await;
    r.preamble().await;
    while seen.len() < 20 {
        seen.push(r.block().await.0);
    }
    // Live: blocks committed now arrive on the open stream.
    commit_n(&h, 5, 100);
    while seen.len() < 25 {
        seen.push(r.block().await.0);
    }
    assert_eq!(seen, (1..=25).collect::<Vec<u64>>(), "contiguous, no duplicate");
}

#[tokio::test]
async fn starts_at_the_tip_by_default_and_can_leave_out_transactions() {
    let h = Harness::start().await;
    commit_n(&h, 3, 1);
    let mut r = Reader::open(&h, "/v1/events?txs=false", None).await;
    assert_eq!(r.preamble().await["height"], 3);
    commit_n(&h, 1, 10);
    let (height, body) = r.block().await;
    assert_eq!(height, 4, "nothing before the tip is replayed");
    assert!(body.get("txs").is_none());
    assert_eq!(body["tx_count"], 1);
    let mut served: Value = h.get("/v1/blocks/4").await.json().await.unwrap();
    served.as_object_mut().unwrap().remove("txs");
    assert_eq!(body, served, "every other field as served");
}

/// A client that reads slowly while 5,000 blocks commit still receives every height, in order:
/// it falls behind and replays from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_gets_every_height_while_5000_blocks_commit() {
    const BLOCKS: u64 = 5_000;
    let h = Harness::start().await;
    let mut r = Reader::open(&h, "/v1/events?from_height=1", None).await;
    r.preamble().await;
    let node = h.node.clone();
    let writer = tokio::task::spawn_blocking(move || {
        for i in 0..BLOCKS {
            common::commit_block_on(&node, &[put(1 + i, &format!("slow{i}"), "v")]);
        }
    });
    let mut expected = 1;
    while expected <= BLOCKS {
        let (height, body) = r.block().await;
        assert_eq!(height, expected, "no gap, no duplicate");
        assert_eq!(body["txs"].as_array().unwrap().len(), 1);
        expected += 1;
        if height % 100 == 0 {
            // Slower than the writer: the stream falls far behind the tip.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    writer.await.unwrap();
}

#[tokio::test]
async fn status_event_when_the_node_says_its_status_changed() {
    let h = Harness::start().await;
    let mut r = Reader::open(&h, "/v1/events", None).await;
    r.preamble().await;
    h.node.chain.events().status_changed();
    let e = r.next().await;
    assert_eq!(e.event.as_deref(), Some("status"));
    assert!(e.id.is_none());
    let status: Value = serde_json::from_str(&e.data).unwrap();
    let served: Value = h.get("/v1/status").await.json().await.unwrap();
    assert_eq!(status["chain_id"], served["chain_id"]);
    assert_eq!(status["height"], served["height"]);
}

#[tokio::test]
async fn subscriber_cap_answers_503_and_frees_slots() {
    let config = ApiConfig { events_max_subscribers: 2, ..ApiConfig::default() };
    let h = Harness::start_with(config, MempoolConfig::default()).await;
    let mut a = Reader::open(&h, "/v1/events", None).await;
    a.preamble().await;
    let mut b = Reader::open(&h, "/v1/events", None).await;
    b.preamble().await;
    assert_eq!(h.node.chain.events().subscribers(), 2);
    let resp = h.get("/v1/events").await;
    let headers = common::assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "too_many_subscribers").await;
    assert_eq!(common::retry_after(&headers), 1);
    let metrics = h.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("ordo_events_subscribers 2"), "{metrics}");

    drop(a);
    // The server notices the closed stream when it next writes; a commit makes it write.
    let mut freed = false;
    for i in 0..100 {
        commit_n(&h, 1, 1 + i);
        tokio::time::sleep(Duration::from_millis(50)).await;
        if h.node.chain.events().subscribers() < 2 {
            freed = true;
            break;
        }
    }
    assert!(freed, "a closed stream frees its slot");
    let mut c = Reader::open(&h, "/v1/events", None).await;
    c.preamble().await;
    b.block().await;
}

#[tokio::test]
async fn bad_input_is_refused() {
    let h = Harness::start().await;
    let resp = h.http.get(h.url("/v1/events")).header("last-event-id", "abc").send().await.unwrap();
    common::assert_error(resp, StatusCode::BAD_REQUEST, "invalid_query").await;
    common::assert_error(h.get("/v1/events?from_height=x").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    common::assert_error(h.get("/v1/events?nope=1").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_eq!(h.node.chain.events().subscribers(), 0, "a refused request holds no slot");
}
