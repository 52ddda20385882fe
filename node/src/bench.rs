//! `ordo bench` (SPEC §8): a load generator that speaks only the REST API, like any client.
//!
//! It signs every transaction before the clock starts (signing is the client's cost, not the
//! committee's), submits them in `POST /v1/transactions/batch` requests spread round-robin over
//! the nodes at an offered rate (or as fast as the nodes admit them), retries what a full
//! mempool refused, and follows the chain block by block on one node to see when each of its
//! transactions committed. It reports the committed throughput and the submit-to-commit latency
//! percentiles.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ordo_chain::{Hash, Keypair, Op, Transaction};
use rand::RngCore;
use serde_json::{json, Value};

use crate::cli::BenchArgs;
use crate::client::Api;

/// One prepared request: its transactions' ids and its JSON body.
struct Request {
    ids: Vec<Hash>,
    txs: Vec<Value>,
}

/// What the submitters and the watcher share.
struct Run {
    /// When each transaction was first offered, by id (set once, before its first POST).
    submitted: Mutex<HashMap<Hash, Instant>>,
    admitted: AtomicUsize,
    retried: AtomicUsize,
    failed: AtomicUsize,
    requests: AtomicU64,
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    if a.txs == 0 || a.batch == 0 || a.clients == 0 {
        bail!("--txs, --batch and --clients must be at least 1");
    }
    let nodes: Vec<String> = if a.nodes.is_empty() {
        (0..4).map(|i| format!("http://127.0.0.1:{}", 8080 + i)).collect()
    } else {
        a.nodes.clone()
    };
    let first = Api::new(&nodes[0]);
    let status = first.get("/v1/status")?.context("no status")?;
    let chain_id = status["chain_id"].as_str().context("status has no chain_id")?.to_string();
    let start_height = status["height"].as_u64().context("status has no height")?;

    eprintln!("signing {} transactions for {chain_id} ...", a.txs);
    let requests = sign_all(&chain_id, &a)?;
    let ids: Vec<Hash> = requests.iter().flat_map(|r| r.ids.iter().copied()).collect();

    let shared = Arc::new(Run {
        submitted: Mutex::new(HashMap::with_capacity(ids.len())),
        admitted: AtomicUsize::new(0),
        retried: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        requests: AtomicU64::new(0),
    });
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    let started = Instant::now();

    // The watcher follows the chain from the height before the run.
    let watcher = {
        let url = nodes[0].clone();
        let ids = ids.clone();
        std::thread::spawn(move || watch(&url, start_height, ids, deadline))
    };

    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..a.clients {
        let (requests, next, shared, nodes) = (requests.clone(), next.clone(), shared.clone(), nodes.clone());
        let (rate, batch) = (a.rate, a.batch);
        workers.push(std::thread::spawn(move || {
            let apis: Vec<Api> = nodes.iter().map(|n| Api::new(n)).collect();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(req) = requests.get(i) else { break };
                if rate > 0 {
                    // Request i is due when the offered load reaches its first transaction.
                    let due = started + Duration::from_secs_f64((i * batch) as f64 / rate as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                submit(&apis[(i + w) % apis.len()], req, &shared, deadline);
            }
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    let submit_secs = started.elapsed().as_secs_f64();
    let (commits, blocks) = watcher.join().map_err(|_| anyhow::anyhow!("the block watcher panicked"))??;

    let submitted = shared.submitted.lock().expect("lock");
    let mut latencies: Vec<f64> = commits
        .iter()
        .filter_map(|(id, at)| submitted.get(id).map(|s| at.saturating_duration_since(*s).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(|x, y| x.total_cmp(y));
    let committed = latencies.len();
    let first_submit = submitted.values().min().copied().unwrap_or(started);
    let last_commit = commits.values().max().copied().unwrap_or(started);
    let window = last_commit.saturating_duration_since(first_submit).as_secs_f64().max(1e-9);
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        latencies[(((latencies.len() as f64) * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let report = json!({
        "nodes": nodes,
        "txs": a.txs,
        "offered_rate": a.rate,
        "batch": a.batch,
        "clients": a.clients,
        "requests": shared.requests.load(Ordering::Relaxed),
        "admitted": shared.admitted.load(Ordering::Relaxed),
        "retried_after_full": shared.retried.load(Ordering::Relaxed),
        "failed": shared.failed.load(Ordering::Relaxed),
        "committed": committed,
        "blocks": blocks,
        "submit_seconds": round(submit_secs),
        "commit_window_seconds": round(window),
        "throughput_tx_per_s": round(committed as f64 / window),
        "latency_ms": {
            "p50": round(pct(0.50)), "p90": round(pct(0.90)), "p99": round(pct(0.99)),
            "max": round(latencies.last().copied().unwrap_or(f64::NAN)),
        },
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "committed {committed}/{} transactions in {blocks} blocks over {:.2} s: {:.0} tx/s",
            a.txs,
            window,
            committed as f64 / window
        );
        println!(
            "submit-to-commit latency (ms): p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            latencies.last().copied().unwrap_or(f64::NAN)
        );
        println!(
            "offered {} tx/s, {} requests of {} over {} clients; {} retried after a full mempool, {} failed",
            if a.rate == 0 { "max".to_string() } else { a.rate.to_string() },
            shared.requests.load(Ordering::Relaxed),
            a.batch,
            a.clients,
            shared.retried.load(Ordering::Relaxed),
            shared.failed.load(Ordering::Relaxed)
        );
    }
    if committed < a.txs {
        bail!("{} of {} transactions did not commit within {} s", a.txs - committed, a.txs, a.timeout);
    }
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Signs every transaction with a fresh client key, on every core, grouped into requests.
fn sign_all(chain_id: &str, a: &BenchArgs) -> anyhow::Result<Vec<Request>> {
    let mut seed = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut seed);
    let key = Keypair::from_seed(seed);
    let run_tag = hex_prefix(&seed);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunks: Vec<(usize, usize)> =
        (0..a.txs).step_by(a.batch).map(|start| (start, (start + a.batch).min(a.txs))).collect();
    let per = chunks.len().div_ceil(threads);
    let value = "v".repeat(a.value_size);
    let mut out: Vec<Request> = Vec::with_capacity(chunks.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .chunks(per.max(1))
            .map(|group| {
                let (key, value, run_tag) = (&key, &value, &run_tag);
                s.spawn(move || {
                    group
                        .iter()
                        .map(|&(from, to)| {
                            let txs: Vec<Transaction> = (from..to)
                                .map(|i| {
                                    let op = Op::Put { key: format!("bench/{run_tag}/{i}"), value: value.clone() };
                                    Transaction::sign(chain_id, key, i as u64, op)
                                })
                                .collect();
                            Request {
                                ids: txs.iter().map(Transaction::tx_id).collect(),
                                txs: txs.iter().map(|t| serde_json::to_value(t).expect("serializable")).collect(),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            out.extend(h.join().expect("signing thread"));
        }
    });
    Ok(out)
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().take(4).map(|x| format!("{x:02x}")).collect()
}

/// Posts one request, re-offering the items a full mempool (or the rate limiter) refused.
fn submit(api: &Api, req: &Request, run: &Run, deadline: Instant) {
    {
        let now = Instant::now();
        let mut s = run.submitted.lock().expect("lock");
        for id in &req.ids {
            s.entry(*id).or_insert(now);
        }
    }
    let mut pending: Vec<usize> = (0..req.txs.len()).collect();
    while !pending.is_empty() {
        if Instant::now() > deadline {
            run.failed.fetch_add(pending.len(), Ordering::Relaxed);
            return;
        }
        let body = Value::Array(pending.iter().map(|&i| req.txs[i].clone()).collect());
        run.requests.fetch_add(1, Ordering::Relaxed);
        let (code, answer) = match api.post("/v1/transactions/batch", &body) {
            Ok(r) => r,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        if code == 429 || code == 503 {
            run.retried.fetch_add(pending.len(), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let Some(items) = answer.as_array().filter(|_| code == 200) else {
            run.failed.fetch_add(pending.len(), Ordering::Relaxed);
            eprintln!("batch refused: {code} {answer}");
            return;
        };
        let mut again = Vec::new();
        for (&i, item) in pending.iter().zip(items) {
            match item["error"]["code"].as_str() {
                None => {
                    run.admitted.fetch_add(1, Ordering::Relaxed);
                }
                Some("mempool_full") | Some("not_ready") | Some("rate_limited") => again.push(i),
                Some(other) => {
                    run.failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("transaction refused: {other}: {}", item["error"]["message"]);
                }
            }
        }
        if !again.is_empty() {
            run.retried.fetch_add(again.len(), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(50));
        }
        pending = again;
    }
}

/// Follows the chain on one node from `from + 1`, noting when each of `ids` is seen committed.
/// Returns the commit instants and the number of blocks that carried at least one of them.
fn watch(url: &str, from: u64, ids: Vec<Hash>, deadline: Instant) -> anyhow::Result<(HashMap<Hash, Instant>, u64)> {
    let api = Api::new(url);
    let wanted: std::collections::HashSet<Hash> = ids.into_iter().collect();
    let mut seen: HashMap<Hash, Instant> = HashMap::with_capacity(wanted.len());
    let mut blocks = 0u64;
    let mut next = from + 1;
    while seen.len() < wanted.len() && Instant::now() < deadline {
        let Some(block) = api.get(&format!("/v1/blocks/{next}"))? else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let at = Instant::now();
        let mut ours = false;
        for tx in block["txs"].as_array().map(Vec::as_slice).unwrap_or_default() {
            if let Some(id) = tx["tx_id"].as_str().and_then(|s| Hash::from_hex(s).ok()) {
                if wanted.contains(&id) {
                    seen.entry(id).or_insert(at);
                    ours = true;
                }
            }
        }
        blocks += ours as u64;
        next += 1;
    }
    Ok((seen, blocks))
}
