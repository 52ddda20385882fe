//! Oversized request bodies, sent by real clients to the real API server (the router served on a
//! real TCP listener, as the node serves it; harness in `common`).
//!
//! A client that writes its whole body before it reads the answer must get the 413 and its JSON
//! error, not a broken pipe: Python's `urllib` (run from `tests/urllib_post.py`), `ureq`, and
//! raw sockets for the cases a library hides (chunked, `Expect: 100-continue`, a stalled body).
//! And the server's patience is bounded: a body far past the limit is cut off, not read.
//!
//! Python 3 is required, not optional: without it the Python tests fail saying so, so a missing
//! interpreter never passes for a working server. `$PYTHON` picks another interpreter.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use ordo_api::body::REFUSED_BODY_DRAIN_MAX_BYTES;
use ordo_chain::Transaction;
use serde_json::{json, Value};

/// How many times each client posts: every one of them must get the 413.
const ATTEMPTS: usize = 20;

const MIB: usize = 1024 * 1024;

/// What a client can push into a connection the server has stopped reading: the server's
/// receive buffer (loopback autotuning grows it up to `net.ipv4.tcp_rmem`'s maximum, 32 MiB
/// here) and the client's send buffer (4 MiB). Well under the 256 MiB the endless clients offer.
const SOCKET_BUFFERS_MAX_BYTES: u64 = 48 * MIB as u64;

/// A signed transaction whose JSON is just over 2 MiB: twice the single-body limit.
fn two_mib_tx() -> Vec<u8> {
    serde_json::to_vec(&put(1, "k", &"v".repeat(2 * MIB))).unwrap()
}

/// A batch of 150 signed transactions whose JSON is about 9 MiB: over the 8 MiB batch limit.
fn nine_mib_batch() -> Vec<u8> {
    let txs: Vec<Transaction> = (0..150).map(|i| put(i, "k", &"v".repeat(60 * 1024))).collect();
    let body = serde_json::to_vec(&txs).unwrap();
    assert!(body.len() > 8 * MIB && body.len() < 10 * MIB, "{}", body.len());
    body
}

/// Runs `tests/urllib_post.py`: `count` posts of `body` to `url`, one JSON result line each.
fn python_post(url: &str, count: usize, mode: &str, body: &[u8]) -> Vec<Value> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/urllib_post.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .args([url, &count.to_string(), mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `{python}` ({e}); these tests need Python 3 (set $PYTHON to choose one)")
        });
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(body).expect("write the body to urllib_post.py");
    drop(stdin);
    let out = child.wait_with_output().expect("wait for urllib_post.py");
    assert!(out.status.success(), "urllib_post.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<Value> = String::from_utf8(out.stdout)
        .expect("urllib_post.py prints UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(results.len(), count, "one result per attempt: {results:?}");
    results
}

/// Checks that every attempt got the 413 with exactly the SPEC error body and `Connection: close`.
fn assert_all_413(results: &[Value]) {
    let got = results.iter().filter(|r| r["status"] == 413).count();
    assert_eq!(got, results.len(), "{got} of {} attempts got the 413; all results: {results:#?}", results.len());
    for r in results {
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
        assert_eq!(body["error"]["code"], "body_too_large", "{body}");
        assert_eq!(body["error"].as_object().unwrap().len(), 2, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("over the limit"), "{body}");
        assert_eq!(r["connection"], "close", "{r}");
    }
}

async fn python_gets_413(path: &str, mode: &str, body: Vec<u8>) {
    let h = Harness::start().await;
    let before = h.snapshot();
    let url = h.url(path);
    let mode = mode.to_string();
    let results = tokio::task::spawn_blocking(move || python_post(&url, ATTEMPTS, &mode, &body)).await.unwrap();
    assert_all_413(&results);
    assert_eq!(h.snapshot(), before, "a refused body changes nothing");
    assert_eq!(before.gossiped, 0);
    assert!(h.node.chain.mempool().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn python_urllib_gets_the_413_for_a_2_mib_transaction_every_time() {
    python_gets_413("/v1/transactions", "length", two_mib_tx()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_urllib_gets_the_413_for_a_9_mib_batch_every_time() {
    python_gets_413("/v1/transactions/batch", "length", nine_mib_batch()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_urllib_gets_the_413_for_a_chunked_2_mib_transaction_every_time() {
    // No Content-Length: the limit is crossed while reading, and the rest is drained.
    python_gets_413("/v1/transactions", "chunked", two_mib_tx()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ureq_gets_the_413_every_time() {
    let h = Harness::start().await;
    let before = h.snapshot();
    let cases = [(h.url("/v1/transactions"), two_mib_tx()), (h.url("/v1/transactions/batch"), nine_mib_batch())];
    tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
        for (url, body) in cases {
            for attempt in 0..ATTEMPTS {
                match agent.post(&url).set("Content-Type", "application/json").send_bytes(&body) {
                    Err(ureq::Error::Status(413, resp)) => {
                        assert_eq!(resp.header("connection"), Some("close"));
                        let body: Value = resp.into_json().unwrap();
                        assert_eq!(body["error"]["code"], "body_too_large", "{body}");
                    }
                    other => panic!("{url} attempt {attempt}: expected the 413, got {other:?}"),
                }
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(h.snapshot(), before);
}

/// Writes `head`, then `frame(i)` for i = 0, 1, ... until the server stops taking them or
/// `max_bytes` are written; returns how many body bytes the socket accepted and whether a write
/// failed (the server closed the connection).
fn write_until_refused(addr: &str, head: &str, max_bytes: u64, frame: impl Fn() -> Vec<u8>) -> (u64, bool) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.write_all(head.as_bytes()).unwrap();
    let frame = frame();
    let mut written = 0u64;
    while written < max_bytes {
        if conn.write_all(&frame).is_err() {
            return (written, true);
        }
        written += frame.len() as u64;
    }
    (written, false)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_declared_body_is_refused_without_being_read() {
    // 1 GiB declared is past the drain bound, so none of it is read: the 413 goes out at once and
    // the connection is closed under the client.
    let h = Harness::start().await;
    let before = h.snapshot();
    let addr = h.addr();
    let gib = 1u64 << 30;
    let head = format!(
        "POST /v1/transactions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {gib}\r\n\r\n"
    );
    let (written, refused) =
        tokio::task::spawn_blocking(move || write_until_refused(&addr, &head, gib, || vec![b' '; 64 * 1024]))
            .await
            .unwrap();
    assert!(refused, "the server read the whole gigabyte");
    assert!(written < SOCKET_BUFFERS_MAX_BYTES, "the client pushed {written} bytes before the close");
    assert_eq!(h.snapshot(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_chunked_body_is_cut_off_at_the_drain_bound() {
    let h = Harness::start().await;
    let before = h.snapshot();
    let addr = h.addr();
    let head = format!(
        "POST /v1/transactions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    let offered = 256 * MIB as u64;
    let (written, refused) = tokio::task::spawn_blocking(move || {
        write_until_refused(&addr, &head, offered, || {
            let mut frame = format!("{:x}\r\n", 64 * 1024).into_bytes();
            frame.extend_from_slice(&[b' '; 64 * 1024]);
            frame.extend_from_slice(b"\r\n");
            frame
        })
    })
    .await
    .unwrap();
    assert!(refused, "the server read all {offered} bytes of an endless body");
    let bound = MIB as u64 + REFUSED_BODY_DRAIN_MAX_BYTES + SOCKET_BUFFERS_MAX_BYTES;
    assert!(written < bound, "the client pushed {written} bytes, past the limit, the drain bound and the buffers");
    assert_eq!(h.snapshot(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_body_gets_the_413_at_the_drain_time_bound() {
    // 2 MiB declared, 1.5 MiB sent, then nothing: the drain gives up after its time bound and
    // answers 413, well before the 30 s request timeout would answer 503.
    let h = Harness::start().await;
    let before = h.snapshot();
    let addr = h.addr();
    let answer = tokio::task::spawn_blocking(move || {
        let mut conn = TcpStream::connect(&addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(25))).unwrap();
        let head = format!(
            "POST /v1/transactions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            2 * MIB
        );
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(&vec![b' '; 3 * MIB / 2]).unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).expect("the server answers and closes");
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert!(answer.contains(r#"{"error":{"code":"body_too_large","message":"#), "{answer}");
    assert_eq!(h.snapshot(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn expect_100_continue_gets_the_413_before_sending_the_body() {
    let h = Harness::start().await;
    let addr = h.addr();
    let answer = tokio::task::spawn_blocking(move || {
        let mut conn = TcpStream::connect(&addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(25))).unwrap();
        let head = format!(
            "POST /v1/transactions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            2 * MIB
        );
        conn.write_all(head.as_bytes()).unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).expect("the server answers and closes");
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "no 100 Continue, the final answer: {answer}");
    assert!(answer.contains(r#""code":"body_too_large""#), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_415_is_read_by_a_client_that_sends_its_whole_body() {
    // The Content-Type check refuses before the body is read; the body is drained all the same.
    let h = Harness::start().await;
    let body = serde_json::to_vec(&json!({"pad": "x".repeat(MIB * 9 / 10)})).unwrap();
    let url = h.url("/v1/transactions");
    let results = tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
        (0..ATTEMPTS)
            .map(|_| match agent.post(&url).set("Content-Type", "text/plain").send_bytes(&body) {
                Err(ureq::Error::Status(status, resp)) => (status, resp.into_json::<Value>().unwrap()),
                other => panic!("expected the 415, got {other:?}"),
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (status, body) in results {
        assert_eq!((status, &body["error"]["code"]), (415, &json!("unsupported_media_type")), "{body}");
    }
}
