//! The test harness the API's integration tests share: the real router, served on a real TCP
//! listener on 127.0.0.1:0, in front of an in-process node built from the real `MemStore`,
//! `Ledger` and `LocalChain`, plus the checks of the protocol §7 error shape.

// Each test binary uses its own part of the harness.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ordo_api::node::{ConsensusRound, PeerStatus};
use ordo_api::{
    ApiConfig, ApiError, Ledger, LocalChain, Mempool, MempoolConfig, MempoolStats, NodeHandle, NodeStatus, Readiness,
    ValidatorStatus,
};
use ordo_chain::cert::{pbft_commit_bytes, PbftCertificate, ValidatorSignature};
use ordo_chain::store::{MemStore, Store};
use ordo_chain::tx::Clients;
use ordo_chain::{BatchHeader, Block, Certificate, Hash, Keypair, Op, Transaction, TxRules, VerifiedTx};
use ordo_genesis::{ConsensusKind, ValidatorInfo};
use reqwest::StatusCode;
use serde_json::Value;

pub const CHAIN: &str = "ordo-testnet";

pub fn validator_keys() -> Vec<Keypair> {
    (0..4u8).map(|i| Keypair::from_seed([100 + i; 32])).collect()
}

/// The admitted client every test signs with.
pub fn client() -> Keypair {
    Keypair::from_seed([1; 32])
}

/// A well-formed key that the genesis does not admit.
pub fn outsider() -> Keypair {
    Keypair::from_seed([2; 32])
}

pub fn put(nonce: u64, key: &str, value: &str) -> Transaction {
    Transaction::sign(CHAIN, &client(), nonce, Op::Put { key: key.into(), value: value.into() })
}

/// A node as the binary will build one: a store, a mempool, and gossip (here recorded).
pub struct TestNode {
    pub rules: TxRules,
    pub chain: LocalChain,
    pub validators: Vec<ValidatorInfo>,
    pub readiness: Mutex<Readiness>,
    pub gossiped: Mutex<Vec<Hash>>,
    /// Makes `status` slow, to exercise the request timeout.
    pub status_delay_ms: AtomicU64,
    /// Makes `status` fail with a fault of the node (500).
    pub status_fails: AtomicBool,
}

impl NodeHandle for TestNode {
    fn tx_rules(&self) -> &TxRules {
        &self.rules
    }

    fn chain(&self) -> &LocalChain {
        &self.chain
    }

    fn readiness(&self) -> Readiness {
        self.readiness.lock().unwrap().clone()
    }

    fn submit(&self, txs: Vec<VerifiedTx>) -> Result<Vec<ordo_api::Admission>, ApiError> {
        let ids: Vec<Hash> = txs.iter().map(VerifiedTx::id).collect();
        let outcomes = self.chain.admit(txs)?;
        let mut gossiped = self.gossiped.lock().unwrap();
        for (id, outcome) in ids.into_iter().zip(&outcomes) {
            if *outcome == ordo_api::Admission::Admitted {
                gossiped.push(id);
            }
        }
        Ok(outcomes)
    }

    fn status(&self) -> Result<NodeStatus, ApiError> {
        std::thread::sleep(Duration::from_millis(self.status_delay_ms.load(Ordering::Relaxed)));
        if self.status_fails.load(Ordering::Relaxed) {
            return Err(ApiError::Internal { reason: "the test node was told to fail".into() });
        }
        let me = &self.validators[0];
        Ok(NodeStatus {
            chain_id: self.rules.chain_id.clone(),
            node_id: me.public_key,
            name: me.name.clone(),
            consensus: ConsensusKind::Pbft,
            round: ConsensusRound::View(0),
            leader: Some(me.public_key),
            chain: self.chain.chain_status()?,
            peers: self.validators[1..]
                .iter()
                .map(|v| PeerStatus { node_id: v.public_key, name: v.name.clone(), connected: true })
                .collect(),
            validators: self.validators.len(),
            f: (self.validators.len() - 1) / 3,
            ready: self.readiness() == Readiness::Ready,
        })
    }

    fn validators(&self) -> Result<Vec<ValidatorStatus>, ApiError> {
        Ok(self.validators.iter().map(|v| ValidatorStatus::new(v, true)).collect())
    }
}

/// What must not change when a request is rejected.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub mempool: MempoolStats,
    pub gossiped: usize,
    pub height: Option<u64>,
    pub tip: Hash,
}

pub struct Harness {
    pub node: Arc<TestNode>,
    pub base: String,
    pub http: reqwest::Client,
    pub shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(ApiConfig::default(), MempoolConfig::default()).await
    }

    pub async fn start_with(config: ApiConfig, mempool: MempoolConfig) -> Harness {
        let store = Arc::new(MemStore::new());
        let state: BTreeMap<String, String> = [("greeting".to_string(), "hello".to_string())].into();
        let (genesis, writes) = Block::genesis(CHAIN, 1_764_288_000_000, &state);
        store.commit(&genesis, &writes).unwrap();
        let mut rules = TxRules::new(CHAIN);
        rules.clients = Clients::Only([client().public()].into_iter().collect());
        let validators = validator_keys()
            .iter()
            .enumerate()
            .map(|(i, k)| ValidatorInfo {
                name: format!("node{i}"),
                public_key: k.public(),
                p2p_addr: format!("/ip4/127.0.0.1/tcp/{}", 7000 + i),
                api_addr: format!("http://127.0.0.1:{}", 8080 + i),
            })
            .collect();
        let node = Arc::new(TestNode {
            rules,
            chain: LocalChain::new(
                Arc::new(Ledger::new(store, Arc::new(Mempool::new(mempool))).unwrap()),
                ordo_api::metrics::Metrics::new("pbft", 4),
            )
            .unwrap(),
            validators,
            readiness: Mutex::new(Readiness::Ready),
            gossiped: Mutex::new(Vec::new()),
            status_delay_ms: AtomicU64::new(0),
            status_fails: AtomicBool::new(false),
        });
        let router = ordo_api::router(node.clone(), config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(async move {
            ordo_api::serve(listener, router, async {
                rx.await.ok();
            })
            .await
            .unwrap();
        });
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Harness { node, base, http, shutdown: Some(tx), server: Some(server) }
    }

    /// `127.0.0.1:port`, for clients that speak HTTP by hand.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post_raw(path, "application/json", body.to_string().into_bytes()).await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        self.http.post(self.url(path)).header("content-type", content_type).body(body).send().await.unwrap()
    }

    pub fn snapshot(&self) -> Snapshot {
        let store = self.node.chain.store();
        Snapshot {
            mempool: self.node.chain.mempool().stats(),
            gossiped: self.node.gossiped.lock().unwrap().len(),
            height: store.latest_height().unwrap(),
            tip: store.latest_block().unwrap().unwrap().hash,
        }
    }

    /// Commits the next block holding `txs`, certified by three of the four validators, through
    /// `Ledger::commit` as the node does (store, then mempool, then the API's observer).
    pub fn commit_block(&self, txs: &[Transaction]) -> Block {
        commit_block_on(&self.node, txs)
    }
}

/// [`Harness::commit_block`] on a node, for a test that commits from another thread.
pub fn commit_block_on(node: &TestNode, txs: &[Transaction]) -> Block {
    let verified: Vec<VerifiedTx> = txs.iter().map(|t| node.rules.verify(t.clone()).unwrap()).collect();
    let chain = &node.chain;
    let prev = chain.store().latest_block().unwrap().unwrap();
    let keys = validator_keys();
    let header =
        BatchHeader::for_txs(prev.height() + 1, 1_764_288_000_000 + prev.height() + 1, keys[0].public(), &verified);
    let ids: Vec<Hash> = verified.iter().map(VerifiedTx::id).collect();
    let committed = chain.store().committed(&ids).unwrap();
    let digest = header.digest(CHAIN);
    let msg = pbft_commit_bytes(CHAIN, 0, header.height, &digest);
    let cert = Certificate::Pbft(PbftCertificate {
        view: 0,
        height: header.height,
        batch_digest: digest,
        signatures: keys[..3]
            .iter()
            .map(|k| ValidatorSignature { validator: k.public(), signature: k.sign(&msg) })
            .collect(),
    });
    let (block, exec) = Block::build(CHAIN, &prev, header, &verified, &committed, Some(cert));
    chain.ledger().commit(&block, &exec.writes).unwrap();
    block
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Checks the status, that the body is exactly `{"error":{"code","message"}}` with this code,
/// and returns the response headers.
pub async fn assert_error(resp: reqwest::Response, status: StatusCode, code: &str) -> reqwest::header::HeaderMap {
    assert_eq!(resp.status(), status, "status");
    let headers = resp.headers().clone();
    assert!(
        headers["content-type"].to_str().unwrap().starts_with("application/json"),
        "content-type {:?}",
        headers["content-type"]
    );
    let body: Value = resp.json().await.unwrap();
    let obj = body.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), vec!["error"], "{body}");
    let err = body["error"].as_object().unwrap();
    let mut keys: Vec<&String> = err.keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["code", "message"], "{body}");
    assert_eq!(err["code"], code, "{body}");
    assert!(!err["message"].as_str().unwrap().is_empty(), "{body}");
    headers
}

pub fn sorted_keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

pub fn retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    headers.get("retry-after").expect("Retry-After header").to_str().unwrap().parse().unwrap()
}
