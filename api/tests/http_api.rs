//! The API over real HTTP: the real router, served on a real TCP listener on 127.0.0.1:0, in
//! front of an in-process node built from the real `MemStore`, `Mempool` and `LocalChain` (the
//! harness in `common`).
//!
//! Every rejection of protocol §7 is checked for its status code, its exact error body, and that it
//! changed nothing: no mempool entry, no gossip, no stored block or state.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use ordo_api::node::ChainStatus;
use ordo_api::{ApiConfig, MempoolConfig, NodeStatus, Readiness};
use ordo_chain::{BatchHeader, Block, BlockJson, Hash, Op, Transaction};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// Submission: happy paths

#[tokio::test]
async fn submit_admits_gossips_and_answers_202() {
    let h = Harness::start().await;
    let tx = put(1, "user:1", "John Doe");
    let resp = h.post_json("/v1/transactions", &serde_json::to_value(&tx).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"tx_id": tx.tx_id().to_hex(), "status": "pending"}));
    assert!(h.node.chain.mempool().contains(&tx.tx_id()));
    assert_eq!(*h.node.gossiped.lock().unwrap(), vec![tx.tx_id()]);

    let resp = h.get(&format!("/v1/transactions/{}", tx.tx_id())).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(sorted_keys(&body), ["height", "index", "result", "status", "tx", "tx_id"]);
    assert_eq!(body["status"], "pending");
    assert!(body["height"].is_null() && body["index"].is_null() && body["result"].is_null());
    assert_eq!(body["tx"], serde_json::to_value(&tx).unwrap());
}

#[tokio::test]
async fn resubmitting_a_pending_tx_answers_200_and_changes_nothing() {
    let h = Harness::start().await;
    let tx = serde_json::to_value(put(1, "k", "v")).unwrap();
    assert_eq!(h.post_json("/v1/transactions", &tx).await.status(), StatusCode::ACCEPTED);
    let before = h.snapshot();
    let resp = h.post_json("/v1/transactions", &tx).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    assert_eq!(body["tx"], tx);
    assert_eq!(h.snapshot(), before, "no second mempool entry, no second gossip");
}

#[tokio::test]
async fn replay_of_a_committed_tx_answers_200_committed_and_changes_nothing() {
    let h = Harness::start().await;
    let tx = put(1, "user:1", "John Doe");
    let json_tx = serde_json::to_value(&tx).unwrap();
    assert_eq!(h.post_json("/v1/transactions", &json_tx).await.status(), StatusCode::ACCEPTED);
    h.commit_block(std::slice::from_ref(&tx));
    assert!(h.node.chain.mempool().is_empty(), "commit removes it from the mempool");
    let before = h.snapshot();

    let resp = h.post_json("/v1/transactions", &json_tx).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"tx_id": tx.tx_id().to_hex(), "status": "committed", "height": 1, "index": 0,
               "result": "applied", "tx": json_tx})
    );
    assert_eq!(h.snapshot(), before);
}

#[tokio::test]
async fn batch_answers_one_item_per_tx_in_order() {
    let h = Harness::start().await;
    let committed = put(1, "a", "1");
    h.commit_block(std::slice::from_ref(&committed));
    let fresh = put(2, "b", "2");
    let mut bad_sig = put(3, "c", "3");
    bad_sig.nonce = 4;
    let also_fresh = put(5, "d", "4");
    let body = json!([
        fresh,
        bad_sig,
        fresh,
        {"chain_id": CHAIN},
        committed,
        also_fresh,
        Transaction::sign(CHAIN, &outsider(), 1, Op::Delete { key: "a".into() }),
    ]);
    let resp = h.post_json("/v1/transactions/batch", &body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("retry-after").is_none());
    let items: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(items.len(), 7);
    assert_eq!(items[0], json!({"tx_id": fresh.tx_id().to_hex(), "status": "pending"}));
    assert_eq!(items[1]["error"]["code"], "bad_signature");
    // A repeat within one batch is answered as an already-known transaction.
    assert_eq!(items[2]["status"], "pending");
    assert_eq!(items[2]["tx"], serde_json::to_value(&fresh).unwrap());
    assert_eq!(items[3]["error"]["code"], "invalid_json");
    assert_eq!(items[4]["status"], "committed");
    assert_eq!(items[4]["height"], 1);
    assert_eq!(items[5], json!({"tx_id": also_fresh.tx_id().to_hex(), "status": "pending"}));
    assert_eq!(items[6]["error"]["code"], "sender_not_admitted");
    for i in [1, 3, 6] {
        assert_eq!(sorted_keys(&items[i]["error"]), ["code", "message"]);
    }
    assert_eq!(h.node.chain.mempool().len(), 2);
    assert_eq!(*h.node.gossiped.lock().unwrap(), vec![fresh.tx_id(), also_fresh.tx_id()]);
}

#[tokio::test]
async fn empty_batch_is_an_empty_answer() {
    let h = Harness::start().await;
    let resp = h.post_json("/v1/transactions/batch", &json!([])).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!([]));
}

// ---------------------------------------------------------------------------------------------
// Submission: every rejection of protocol §7, each changing nothing

async fn rejected_single(h: &Harness, content_type: &str, body: Vec<u8>, status: StatusCode, code: &str) {
    let before = h.snapshot();
    let resp = h.post_raw("/v1/transactions", content_type, body).await;
    assert_error(resp, status, code).await;
    assert_eq!(h.snapshot(), before, "a rejected request changes nothing ({code})");
    assert_eq!(before.gossiped, 0);
    assert!(h.node.chain.mempool().is_empty());
}

fn tx_value_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = serde_json::to_value(put(1, "k", "v")).unwrap();
    edit(&mut v);
    v.to_string().into_bytes()
}

#[tokio::test]
async fn malformed_json_is_400() {
    let h = Harness::start().await;
    rejected_single(&h, "application/json", b"{\"chain_id\": ".to_vec(), StatusCode::BAD_REQUEST, "malformed_json")
        .await;
    rejected_single(&h, "application/json", Vec::new(), StatusCode::BAD_REQUEST, "malformed_json").await;
}

#[tokio::test]
async fn missing_field_is_400() {
    let h = Harness::start().await;
    let body = tx_value_with(|v| {
        v.as_object_mut().unwrap().remove("nonce");
    });
    rejected_single(&h, "application/json", body, StatusCode::BAD_REQUEST, "invalid_json").await;
}

#[tokio::test]
async fn unknown_field_is_400() {
    let h = Harness::start().await;
    let body = tx_value_with(|v| v["fee"] = json!(1));
    rejected_single(&h, "application/json", body, StatusCode::BAD_REQUEST, "invalid_json").await;
    let body = tx_value_with(|v| v["op"]["extra"] = json!("x"));
    rejected_single(&h, "application/json", body, StatusCode::BAD_REQUEST, "invalid_json").await;
}

#[tokio::test]
async fn bad_hex_is_400() {
    let h = Harness::start().await;
    let body = tx_value_with(|v| v["sender"] = json!("zz".repeat(32)));
    rejected_single(&h, "application/json", body, StatusCode::BAD_REQUEST, "bad_hex").await;
    let body = tx_value_with(|v| v["signature"] = json!("abcd"));
    rejected_single(&h, "application/json", body, StatusCode::BAD_REQUEST, "bad_hex").await;
}

#[tokio::test]
async fn bad_signature_is_422() {
    let h = Harness::start().await;
    let body = tx_value_with(|v| v["nonce"] = json!(2));
    rejected_single(&h, "application/json", body, StatusCode::UNPROCESSABLE_ENTITY, "bad_signature").await;
}

#[tokio::test]
async fn wrong_chain_id_is_422() {
    let h = Harness::start().await;
    let tx = Transaction::sign("other-chain", &client(), 1, Op::Put { key: "k".into(), value: "v".into() });
    let body = serde_json::to_vec(&tx).unwrap();
    rejected_single(&h, "application/json", body, StatusCode::UNPROCESSABLE_ENTITY, "wrong_chain_id").await;
}

#[tokio::test]
async fn over_limit_key_is_422() {
    let h = Harness::start().await;
    let body = serde_json::to_vec(&put(1, &"k".repeat(257), "v")).unwrap();
    rejected_single(&h, "application/json", body, StatusCode::UNPROCESSABLE_ENTITY, "key_too_long").await;
}

#[tokio::test]
async fn over_limit_value_is_422() {
    let h = Harness::start().await;
    let body = serde_json::to_vec(&put(1, "k", &"v".repeat(64 * 1024 + 1))).unwrap();
    rejected_single(&h, "application/json", body, StatusCode::UNPROCESSABLE_ENTITY, "value_too_long").await;
}

#[tokio::test]
async fn sender_not_admitted_is_422() {
    let h = Harness::start().await;
    let tx = Transaction::sign(CHAIN, &outsider(), 1, Op::Put { key: "k".into(), value: "v".into() });
    let body = serde_json::to_vec(&tx).unwrap();
    rejected_single(&h, "application/json", body, StatusCode::UNPROCESSABLE_ENTITY, "sender_not_admitted").await;
}

#[tokio::test]
async fn body_over_one_mib_is_413() {
    let h = Harness::start().await;
    let body = serde_json::to_vec(&put(1, "k", &"v".repeat(1024 * 1024))).unwrap();
    rejected_single(&h, "application/json", body, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    // Without Content-Length the limit is enforced while reading; reqwest always sets the
    // length, so this speaks HTTP/1.1 by hand.
    let h = Harness::start().await;
    let before = h.snapshot();
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/transactions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    // Write until the server answers and closes; 2 MiB is past the 1 MiB limit.
    for _ in 0..32 {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if conn.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains(r#"{"error":{"code":"body_too_large","message":"#), "{text}");
    assert_eq!(h.snapshot(), before);
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let h = Harness::start().await;
    let body = serde_json::to_vec(&put(1, "k", "v")).unwrap();
    rejected_single(&h, "text/plain", body.clone(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    let before = h.snapshot();
    let resp = h.http.post(h.url("/v1/transactions")).body(body.clone()).send().await.unwrap();
    assert_error(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    assert_eq!(h.snapshot(), before);
    // A charset parameter is still JSON.
    let resp = h.post_raw("/v1/transactions", "application/json; charset=utf-8", body).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn batch_over_1000_items_is_413() {
    let h = Harness::start().await;
    let txs: Vec<Transaction> = (0..1001).map(|i| put(i, "k", "v")).collect();
    let before = h.snapshot();
    let resp = h.post_json("/v1/transactions/batch", &serde_json::to_value(&txs).unwrap()).await;
    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large").await;
    assert_eq!(h.snapshot(), before);
    // Exactly 1000 is allowed.
    let resp = h.post_json("/v1/transactions/batch", &serde_json::to_value(&txs[..1000]).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Vec<Value>>().await.unwrap().len(), 1000);
    assert_eq!(h.node.chain.mempool().len(), 1000);
}

#[tokio::test]
async fn batch_body_over_8_mib_is_413_and_not_an_array_is_400() {
    let h = Harness::start().await;
    let before = h.snapshot();
    let big: Vec<Transaction> = (0..200).map(|i| put(i, "k", &"v".repeat(60 * 1024))).collect();
    let resp = h.post_json("/v1/transactions/batch", &serde_json::to_value(&big).unwrap()).await;
    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    let resp = h.post_json("/v1/transactions/batch", &serde_json::to_value(put(1, "k", "v")).unwrap()).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_json").await;
    let resp = h.post_raw("/v1/transactions/batch", "application/json", b"[{".to_vec()).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "malformed_json").await;
    let resp = h.post_raw("/v1/transactions/batch", "text/plain", b"[]".to_vec()).await;
    assert_error(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    assert_eq!(h.snapshot(), before);
}

#[tokio::test]
async fn mempool_full_is_503_with_retry_after() {
    let h = Harness::start_with(
        ApiConfig { retry_after_secs: 2, ..ApiConfig::default() },
        MempoolConfig { max_txs: 1, max_bytes: 1 << 20 },
    )
    .await;
    let first = serde_json::to_value(put(1, "k", "v")).unwrap();
    assert_eq!(h.post_json("/v1/transactions", &first).await.status(), StatusCode::ACCEPTED);
    let before = h.snapshot();
    let resp = h.post_json("/v1/transactions", &serde_json::to_value(put(2, "k", "v")).unwrap()).await;
    let headers = assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "mempool_full").await;
    assert_eq!(retry_after(&headers), 2);
    assert_eq!(h.snapshot(), before);
    // In a batch the refusal is per item, and the answer still says when to retry.
    let resp = h.post_json("/v1/transactions/batch", &json!([first, put(3, "k", "v")])).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(retry_after(resp.headers()), 2);
    let items: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(items[0]["status"], "pending");
    assert_eq!(items[1]["error"]["code"], "mempool_full");
    assert_eq!(h.snapshot(), before);
}

/// With no room left for clients, a new transaction is refused before its signature is checked
/// (a forged one is answered `mempool_full`, not `bad_signature`: nothing checked it), while a
/// known id is answered as ever, a forged copy of it included.
#[tokio::test]
async fn a_full_mempool_refuses_new_transactions_before_checking_them() {
    // Clients fill three of the four places.
    let h = Harness::start_with(
        ApiConfig { retry_after_secs: 3, ..ApiConfig::default() },
        MempoolConfig { max_txs: 4, max_bytes: 1 << 20 },
    )
    .await;
    let admitted: Vec<Transaction> = (1..=3).map(|n| put(n, "k", "v")).collect();
    let resp = h.post_json("/v1/transactions/batch", &json!(admitted)).await;
    let items: Vec<Value> = resp.json().await.unwrap();
    assert!(items.iter().all(|i| i["status"] == "pending"), "{items:?}");
    let before = h.snapshot();

    let mut forged_new = put(10, "k", "v");
    forged_new.nonce = 11; // the signature no longer matches
    let mut forged_copy = admitted[0].clone();
    forged_copy.signature = admitted[1].signature;
    let resp =
        h.post_json("/v1/transactions/batch", &json!([admitted[0], forged_copy, forged_new, put(12, "k", "v")])).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(retry_after(resp.headers()), 3);
    let items: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(items[0]["status"], "pending", "a known transaction gets its status: {items:?}");
    assert_eq!(items[1]["error"]["code"], "bad_signature", "a forged copy of a known id is still checked");
    assert_eq!(items[2]["error"]["code"], "mempool_full", "a new one is refused unchecked");
    assert_eq!(items[3]["error"]["code"], "mempool_full");
    let resp = h.post_json("/v1/transactions", &serde_json::to_value(&forged_new).unwrap()).await;
    let headers = assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "mempool_full").await;
    assert_eq!(retry_after(&headers), 3);
    let resp = h.post_json("/v1/transactions", &serde_json::to_value(&admitted[2]).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK, "a known one is answered with its status, full or not");
    assert_eq!(h.snapshot(), before);
}

#[tokio::test]
async fn not_ready_refuses_submissions_with_503() {
    let h = Harness::start().await;
    *h.node.readiness.lock().unwrap() = Readiness::NotReady { reason: "connected to 1 of 3".into() };
    let before = h.snapshot();
    let resp = h.post_json("/v1/transactions", &serde_json::to_value(put(1, "k", "v")).unwrap()).await;
    let headers = assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
    assert_eq!(retry_after(&headers), 1);
    let resp = h.post_json("/v1/transactions/batch", &json!([put(1, "k", "v")])).await;
    assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
    assert_eq!(h.snapshot(), before);
    let headers = assert_error(h.get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
    assert_eq!(retry_after(&headers), 1);
    // Reads are still served.
    assert_eq!(h.get("/v1/blocks/latest").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_is_429_with_retry_after_per_client() {
    let config = ApiConfig { rate_limit_per_sec: 1, rate_limit_burst: 3, ..ApiConfig::default() };
    let h = Harness::start_with(config, MempoolConfig::default()).await;
    for _ in 0..3 {
        assert_eq!(h.get("/v1/status").await.status(), StatusCode::OK, "within the burst");
    }
    // One token comes back per second, so a slow machine may see a success or two more; ten
    // requests cannot all pass.
    let mut limited = None;
    for _ in 0..10 {
        let resp = h.get("/v1/status").await;
        if resp.status() != StatusCode::OK {
            limited = Some(assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await);
            break;
        }
    }
    let headers = limited.expect("ten requests at once exceed a quota of 1/s with a burst of 3");
    assert!((1..=2).contains(&retry_after(&headers)), "{headers:?}");
    // A rate-limited submission changes nothing.
    let mut refused = false;
    for nonce in 0..10 {
        let before = h.snapshot();
        let resp = h.post_json("/v1/transactions", &serde_json::to_value(put(nonce, "k", "v")).unwrap()).await;
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
            assert_eq!(h.snapshot(), before);
            refused = true;
            break;
        }
    }
    assert!(refused, "submissions share the client's quota");
    // Health probes are never rate limited.
    assert_eq!(h.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(h.get("/readyz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn slow_request_times_out_with_503() {
    let config = ApiConfig { request_timeout_ms: 300, tx_wait_max_ms: 100, ..ApiConfig::default() };
    let h = Harness::start_with(config, MempoolConfig::default()).await;
    h.node.status_delay_ms.store(2_000, Ordering::Relaxed);
    let started = Instant::now();
    let headers = assert_error(h.get("/v1/status").await, StatusCode::SERVICE_UNAVAILABLE, "timeout").await;
    assert!(started.elapsed() < Duration::from_millis(1_500), "answered at the timeout, not after the handler");
    assert_eq!(retry_after(&headers), 1);
}

// ---------------------------------------------------------------------------------------------
// Transactions: lookup and waiting

#[tokio::test]
async fn unknown_tx_is_404_and_bad_id_is_400() {
    let h = Harness::start().await;
    let unknown = put(9, "k", "v").tx_id();
    assert_error(h.get(&format!("/v1/transactions/{unknown}")).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(h.get("/v1/transactions/xyz").await, StatusCode::BAD_REQUEST, "bad_hex").await;
    let resp = h.get(&format!("/v1/transactions/{unknown}?wait_ms=abc")).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_query").await;
}

#[tokio::test]
async fn wait_returns_as_soon_as_the_commit_is_notified() {
    let h = Harness::start().await;
    let tx = put(1, "k", "v");
    assert_eq!(h.post_json("/v1/transactions", &serde_json::to_value(&tx).unwrap()).await.status(), 202);
    let node = h.node.clone();
    let committer = {
        let tx = tx.clone();
        let h_commit = move || {
            std::thread::sleep(Duration::from_millis(300));
            // Commit through the same Ledger the node uses; its observer notifies waiters.
            let chain = &node.chain;
            let prev = chain.store().latest_block().unwrap().unwrap();
            let verified = vec![node.rules.verify(tx).unwrap()];
            let header = BatchHeader::for_txs(1, 1, validator_keys()[0].public(), &verified);
            let (block, exec) = Block::build(CHAIN, &prev, header, &verified, &[false], None);
            chain.ledger().commit(&block, &exec.writes).unwrap();
        };
        tokio::task::spawn_blocking(h_commit)
    };
    let started = Instant::now();
    let resp = h.get(&format!("/v1/transactions/{}?wait_ms=20000", tx.tx_id())).await;
    let elapsed = started.elapsed();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "committed");
    assert_eq!(body["height"], 1);
    assert!(elapsed >= Duration::from_millis(250), "it waited for the commit: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "it returned at the commit, not the deadline: {elapsed:?}");
    committer.await.unwrap();
}

#[tokio::test]
async fn wait_times_out_with_the_current_status() {
    let h = Harness::start().await;
    let tx = put(1, "k", "v");
    assert_eq!(h.post_json("/v1/transactions", &serde_json::to_value(&tx).unwrap()).await.status(), 202);
    let started = Instant::now();
    let resp = h.get(&format!("/v1/transactions/{}?wait_ms=400", tx.tx_id())).await;
    let elapsed = started.elapsed();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "pending");
    assert!(elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(5), "{elapsed:?}");
    // An unrelated commit wakes the waiter, which looks again and keeps waiting.
    let started = Instant::now();
    let other = put(2, "x", "y");
    let waiter = {
        let http = h.http.clone();
        let url = h.url(&format!("/v1/transactions/{}?wait_ms=600", tx.tx_id()));
        tokio::spawn(async move { http.get(url).send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.commit_block(&[other]);
    let resp = waiter.await.unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "pending");
    assert!(started.elapsed() >= Duration::from_millis(600));
    // An unknown id waits too (it may be committed through another node), then is 404.
    let unknown = put(3, "k", "v").tx_id();
    let started = Instant::now();
    assert_error(h.get(&format!("/v1/transactions/{unknown}?wait_ms=300")).await, StatusCode::NOT_FOUND, "not_found")
        .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn wait_is_capped() {
    let config = ApiConfig { request_timeout_ms: 2_000, tx_wait_max_ms: 300, ..ApiConfig::default() };
    let h = Harness::start_with(config, MempoolConfig::default()).await;
    let tx = put(1, "k", "v");
    assert_eq!(h.post_json("/v1/transactions", &serde_json::to_value(&tx).unwrap()).await.status(), 202);
    let started = Instant::now();
    let resp = h.get(&format!("/v1/transactions/{}?wait_ms=60000", tx.tx_id())).await;
    assert_eq!(resp.status(), StatusCode::OK, "the cap ends the wait before the request timeout");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(1_500), "{elapsed:?}");
}

// ---------------------------------------------------------------------------------------------
// Blocks, state, status, validators, health

#[tokio::test]
async fn blocks_by_height_hash_and_latest() {
    let h = Harness::start().await;
    let tx = put(1, "user:1", "John Doe");
    let block = h.commit_block(std::slice::from_ref(&tx));

    let latest: Value = h.get("/v1/blocks/latest").await.json().await.unwrap();
    assert_eq!(
        sorted_keys(&latest),
        [
            "batch_digest",
            "certificate",
            "hash",
            "height",
            "prev_hash",
            "proposer",
            "state_hash",
            "timestamp_ms",
            "tx_count",
            "tx_root",
            "txs"
        ]
    );
    assert_eq!(latest["height"], 1);
    assert_eq!(latest["txs"][0]["tx_id"], tx.tx_id().to_hex());
    assert_eq!(latest["txs"][0]["result"], "applied");
    assert_eq!(latest["certificate"]["kind"], "pbft");
    let served: BlockJson = serde_json::from_value(latest.clone()).unwrap();
    assert_eq!(Block::from(served), block, "the served block is the stored block");

    let by_height: Value = h.get("/v1/blocks/1").await.json().await.unwrap();
    assert_eq!(by_height, latest);
    let by_hash: Value = h.get(&format!("/v1/blocks/by-hash/{}", block.hash)).await.json().await.unwrap();
    assert_eq!(by_hash, latest);
    let genesis: Value = h.get("/v1/blocks/0").await.json().await.unwrap();
    assert_eq!(genesis["prev_hash"], Hash::ZERO.to_hex());
    assert!(genesis["certificate"].is_null());

    assert_error(h.get("/v1/blocks/2").await, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(h.get("/v1/blocks/abc").await, StatusCode::BAD_REQUEST, "invalid_path").await;
    assert_error(h.get("/v1/blocks/-1").await, StatusCode::BAD_REQUEST, "invalid_path").await;
    let missing = format!("/v1/blocks/by-hash/{}", Hash([7; 32]));
    assert_error(h.get(&missing).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(h.get("/v1/blocks/by-hash/00ff").await, StatusCode::BAD_REQUEST, "bad_hex").await;
}

#[tokio::test]
async fn blocks_pages_newest_first() {
    let h = Harness::start().await;
    for i in 0..5 {
        h.commit_block(&[put(i, "k", &i.to_string())]);
    }
    let heights = |page: &Value| -> Vec<u64> {
        page["blocks"].as_array().unwrap().iter().map(|b| b["height"].as_u64().unwrap()).collect()
    };
    let page: Value = h.get("/v1/blocks?limit=2").await.json().await.unwrap();
    assert_eq!(sorted_keys(&page), ["blocks", "next"]);
    assert_eq!((heights(&page), page["next"].clone()), (vec![5, 4], json!(4)));
    let page: Value = h.get("/v1/blocks?before=4&limit=2").await.json().await.unwrap();
    assert_eq!((heights(&page), page["next"].clone()), (vec![3, 2], json!(2)));
    let page: Value = h.get("/v1/blocks?before=2&limit=2").await.json().await.unwrap();
    assert_eq!((heights(&page), page["next"].clone()), (vec![1, 0], Value::Null));
    let page: Value = h.get("/v1/blocks").await.json().await.unwrap();
    assert_eq!((heights(&page), page["next"].clone()), (vec![5, 4, 3, 2, 1, 0], Value::Null));
    let page: Value = h.get("/v1/blocks?before=100&limit=1").await.json().await.unwrap();
    assert_eq!((heights(&page), page["next"].clone()), (vec![5], json!(5)));
    let page: Value = h.get("/v1/blocks?before=0").await.json().await.unwrap();
    assert_eq!(page, json!({"blocks": [], "next": null}));
    assert_eq!(h.get("/v1/blocks?limit=100").await.status(), StatusCode::OK);
    assert_error(h.get("/v1/blocks?limit=101").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_error(h.get("/v1/blocks?limit=0").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_error(h.get("/v1/blocks?before=x").await, StatusCode::BAD_REQUEST, "invalid_query").await;
}

#[tokio::test]
async fn state_reads_with_height() {
    let h = Harness::start().await;
    let resp = h.get("/v1/state/greeting").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"key": "greeting", "value": "hello", "height": 0}));
    h.commit_block(&[put(1, "user:1", "John Doe"), put(2, "dir/file", "x")]);
    let v: Value = h.get("/v1/state/user:1").await.json().await.unwrap();
    assert_eq!(v, json!({"key": "user:1", "value": "John Doe", "height": 1}));
    let v: Value = h.get("/v1/state/dir/file").await.json().await.unwrap();
    assert_eq!(v["value"], "x");
    let v: Value = h.get("/v1/state/dir%2Ffile").await.json().await.unwrap();
    assert_eq!(v["value"], "x");
    assert_error(h.get("/v1/state/absent").await, StatusCode::NOT_FOUND, "not_found").await;
    h.commit_block(&[Transaction::sign(CHAIN, &client(), 3, Op::Delete { key: "user:1".into() })]);
    assert_error(h.get("/v1/state/user:1").await, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn status_has_exactly_the_spec_fields() {
    let h = Harness::start().await;
    let tx = put(1, "k", "v");
    assert_eq!(h.post_json("/v1/transactions", &serde_json::to_value(&tx).unwrap()).await.status(), 202);
    let s: Value = h.get("/v1/status").await.json().await.unwrap();
    assert_eq!(
        sorted_keys(&s),
        [
            "chain_id",
            "consensus",
            "f",
            "height",
            "last_block_hash",
            "leader",
            "mempool",
            "name",
            "node_id",
            "peers",
            "ready",
            "state_hash",
            "validators",
            "view"
        ]
    );
    let tip = h.node.chain.store().latest_block().unwrap().unwrap();
    assert_eq!(s["chain_id"], CHAIN);
    assert_eq!(s["consensus"], "pbft");
    assert_eq!(s["node_id"], validator_keys()[0].public().to_hex());
    assert_eq!(s["leader"], s["node_id"]);
    assert_eq!(s["height"], 0);
    assert_eq!(s["last_block_hash"], tip.hash.to_hex());
    assert_eq!(s["state_hash"], tip.state_hash.to_hex());
    assert_eq!(s["mempool"], json!({"txs": 1, "bytes": h.node.chain.mempool().stats().bytes}));
    assert_eq!(s["validators"], 4);
    assert_eq!(s["f"], 1);
    assert_eq!(s["ready"], true);
    assert_eq!(s["peers"].as_array().unwrap().len(), 3);
    assert_eq!(sorted_keys(&s["peers"][0]), ["connected", "name", "node_id"]);
    let parsed: NodeStatus = serde_json::from_value(s).unwrap();
    assert_eq!(parsed.chain, ChainStatus { height: 0, ..parsed.chain.clone() });
}

#[tokio::test]
async fn validators_health_and_readiness() {
    let h = Harness::start().await;
    let v: Value = h.get("/v1/validators").await.json().await.unwrap();
    let list = v["validators"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(
        list[1],
        json!({"name": "node1", "public_key": validator_keys()[1].public().to_hex(),
               "p2p_addr": "/ip4/127.0.0.1/tcp/7001", "api_addr": "http://127.0.0.1:8081", "connected": true})
    );
    let resp = h.get("/healthz").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let resp = h.get("/readyz").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"ready": true}));
}

#[tokio::test]
async fn unknown_routes_and_methods_have_error_bodies() {
    let h = Harness::start().await;
    assert_error(h.get("/v2/nothing").await, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(h.get("/v1").await, StatusCode::NOT_FOUND, "not_found").await;
    let headers =
        assert_error(h.get("/v1/transactions").await, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    assert_eq!(headers["allow"], "POST");
    let resp = h.http.delete(h.url("/v1/status")).send().await.unwrap();
    assert_error(resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let resp = h.post_json("/v1/blocks/latest", &json!({})).await;
    assert_error(resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}
