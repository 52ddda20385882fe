//! A real local consortium for end-to-end tests: `ordo genesis` writes the network, and every
//! validator is a real `ordo node` OS process on loopback, talked to over its REST API.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ordo_chain::{Keypair, Op, Transaction};
use ordo_genesis::Genesis;
use serde_json::Value;

pub fn ordo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ordo"))
}

/// Where `free_ports` looks: 20,000 up to 55,000.
const PORTS_FROM: u32 = 20_000;
const PORTS_SPAN: u32 = 35_000;

/// Finds a base port with `n` free consecutive ports for p2p and `n` for the API.
///
/// The tests of one binary run at once, in threads of one process, and a range found free is
/// only bound later, when the nodes start: two tests must never be handed the same range (a CI
/// run once saw two of them start their node0s on the same ports). So each call takes the next
/// range after the last one handed out in this process, from a random start (other test
/// binaries and other processes), and skips any port found in use.
pub fn free_ports(n: u16) -> (u16, u16) {
    static START: OnceLock<u32> = OnceLock::new();
    static HANDED_OUT: AtomicU32 = AtomicU32::new(0);
    let start = *START.get_or_init(|| rand::random::<u32>() % PORTS_SPAN);
    let width = 2 * u32::from(n);
    for _ in 0..200 {
        let offset = (start + HANDED_OUT.fetch_add(width, Ordering::Relaxed)) % PORTS_SPAN;
        if offset + width > PORTS_SPAN {
            continue;
        }
        let base = (PORTS_FROM + offset) as u16;
        let all_free = (0..2 * n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return (base, base + n);
        }
    }
    panic!("no free ports found");
}

pub struct Testnet {
    pub dir: tempfile::TempDir,
    pub genesis: Genesis,
    pub nodes: Vec<Option<Child>>,
    pub agent: ureq::Agent,
}

impl Testnet {
    /// Writes a network of `n` validators and starts them all.
    pub fn start(n: usize) -> Testnet {
        Self::start_with(n, |_| {})
    }

    /// Like `start`, with `edit` applied to the JSON of `genesis.json` before any node starts
    /// (e.g. to admit only a list of clients).
    pub fn start_with(n: usize, edit: impl FnOnce(&mut Value)) -> Testnet {
        Self::start_consensus(n, "pbft", edit)
    }

    /// Like `start_with`, for a network of `consensus` ("pbft" or "raft") validators.
    pub fn start_consensus(n: usize, consensus: &str, edit: impl FnOnce(&mut Value)) -> Testnet {
        Self::start_configured(n, consensus, edit, |config| config)
    }

    /// Like `start_consensus`, with `configure` applied to the text of each validator's
    /// `config.toml` (as `ordo genesis` wrote it) before any node starts.
    pub fn start_configured(
        n: usize,
        consensus: &str,
        edit: impl FnOnce(&mut Value),
        configure: impl Fn(String) -> String,
    ) -> Testnet {
        let dir = tempfile::tempdir().unwrap();
        let (p2p, api) = free_ports(n as u16);
        let out = ordo()
            .args(["genesis", "--consensus", consensus, "--validators", &n.to_string(), "--out"])
            .arg(dir.path().join("net"))
            .args(["--p2p-port", &p2p.to_string(), "--api-port", &api.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let genesis_file = dir.path().join("net/genesis.json");
        let mut json: Value = serde_json::from_slice(&std::fs::read(&genesis_file).unwrap()).unwrap();
        edit(&mut json);
        std::fs::write(&genesis_file, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        let genesis = Genesis::load(&genesis_file).unwrap();
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(40)).build();
        let mut t = Testnet { dir, genesis, nodes: (0..n).map(|_| None).collect(), agent };
        for i in 0..n {
            let file = t.node_dir(i).join("config.toml");
            std::fs::write(&file, configure(std::fs::read_to_string(&file).unwrap())).unwrap();
        }
        for i in 0..n {
            t.start_node(i);
        }
        t
    }

    pub fn net_dir(&self) -> PathBuf {
        self.dir.path().join("net")
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.net_dir().join(format!("node{i}"))
    }

    pub fn start_node(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is already running");
        let log = std::fs::File::options().create(true).append(true).open(self.node_dir(i).join("node.log")).unwrap();
        let child = ordo()
            .arg("node")
            .arg("--config")
            .arg(self.node_dir(i).join("config.toml"))
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.nodes[i] = Some(child);
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self, i: usize) {
        let mut c = self.nodes[i].take().expect("node is running");
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self, i: usize) {
        let mut c = self.nodes[i].take().expect("node is running");
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                assert!(status.success(), "node {i} exited with {status} after SIGTERM; log:\n{}", self.log(i));
                return;
            }
            assert!(Instant::now() < deadline, "node {i} did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The whole log file of node `i`.
    pub fn full_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.node_dir(i).join("node.log")).unwrap_or_default()
    }

    pub fn log(&self, i: usize) -> String {
        let s = std::fs::read_to_string(self.node_dir(i).join("node.log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    pub fn api(&self, i: usize) -> String {
        self.genesis.validators[i].api_addr.clone()
    }

    pub fn get(&self, i: usize, path: &str) -> (u16, Value) {
        match self.agent.get(&format!("{}{path}", self.api(i))).call() {
            Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
            Err(ureq::Error::Status(c, r)) => (c, r.into_json().unwrap_or(Value::Null)),
            Err(e) => (0, Value::String(e.to_string())),
        }
    }

    pub fn post_json(&self, i: usize, path: &str, body: &Value) -> (u16, Value) {
        match self.agent.post(&format!("{}{path}", self.api(i))).send_json(body) {
            Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
            Err(ureq::Error::Status(c, r)) => (c, r.into_json().unwrap_or(Value::Null)),
            Err(e) => (0, Value::String(e.to_string())),
        }
    }

    /// POSTs raw bytes with the given `Content-Type` (none when `None`) over a plain HTTP/1.1
    /// connection; returns the status, the answer's `Content-Type` and its body (`Null` when it
    /// is not JSON). The body is written from another thread while the answer is read, because
    /// a node refuses an oversized body from its `Content-Length` and answers before reading
    /// it: a client that insists on writing everything first sees only a broken pipe.
    pub fn post_raw(&self, i: usize, path: &str, content_type: Option<&str>, body: &[u8]) -> (u16, String, Value) {
        use std::io::{Read, Write};
        let addr = self.api(i).trim_start_matches("http://").to_string();
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n", body.len());
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        let mut writer = conn.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let _ = writer.write_all(&request);
        });
        let mut answer = Vec::new();
        let _ = conn.read_to_end(&mut answer);
        let _ = conn.shutdown(std::net::Shutdown::Both);
        let _ = sender.join();
        parse_http_answer(&answer)
    }

    /// Waits until `pred` holds, or fails with the logs of every node.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut pred: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if pred(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let logs: Vec<String> = (0..self.nodes.len()).map(|i| format!("--- node{i}:\n{}", self.log(i))).collect();
        panic!("timed out waiting for {what}\n{}", logs.join("\n"));
    }

    pub fn wait_ready(&self, i: usize) {
        self.wait_for(&format!("node{i} ready"), Duration::from_secs(60), |t| t.get(i, "/readyz").0 == 200);
    }

    pub fn height(&self, i: usize) -> Option<u64> {
        let (c, v) = self.get(i, "/v1/blocks/latest");
        (c == 200).then(|| v["height"].as_u64()).flatten()
    }

    pub fn tx(&self, key: &Keypair, nonce: u64, k: &str, v: &str) -> Transaction {
        Transaction::sign(&self.genesis.chain_id, key, nonce, Op::Put { key: k.into(), value: v.into() })
    }

    /// Every running node serves the same block hash and state hash at every height up to `h`.
    pub fn assert_agree_up_to(&self, h: u64) {
        let running: Vec<usize> = (0..self.nodes.len()).filter(|i| self.nodes[*i].is_some()).collect();
        for height in 0..=h {
            let mut seen: Option<(Value, Value)> = None;
            for &i in &running {
                let (c, b) = self.get(i, &format!("/v1/blocks/{height}"));
                assert_eq!(c, 200, "node{i} has no block {height}");
                let pair = (b["hash"].clone(), b["state_hash"].clone());
                match &seen {
                    None => seen = Some(pair),
                    Some(s) => assert_eq!(*s, pair, "fork at height {height}: node{i} disagrees"),
                }
            }
        }
    }

    pub fn verify_chain(&self, i: usize) {
        let out = ordo()
            .args(["verify-chain", "--node", &self.api(i), "--genesis"])
            .arg(self.net_dir().join("genesis.json"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "verify-chain --node failed for node{i}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        for c in self.nodes.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Submits `count` transactions round-robin over the running nodes; returns the ids admitted.
pub fn submit_round_robin(t: &Testnet, key: &Keypair, first_nonce: u64, count: u64, nodes: &[usize]) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        let node = nodes[n as usize % nodes.len()];
        let tx = t.tx(key, first_nonce + n, &format!("k{}", first_nonce + n), &format!("v{n}"));
        let (code, body) = t.post_json(node, "/v1/transactions", &serde_json::to_value(&tx).unwrap());
        if code == 202 || code == 200 {
            ids.push(body["tx_id"].as_str().unwrap().to_string());
        }
    }
    ids
}

pub fn wait_committed(t: &Testnet, node: usize, ids: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    for id in ids {
        loop {
            let (code, v) = t.get(node, &format!("/v1/transactions/{id}?wait_ms=2000"));
            if code == 200 && v["status"] == "committed" {
                break;
            }
            if Instant::now() > deadline {
                panic!("tx {id} not committed on node{node}: {code} {v}\n{}", t.log(node));
            }
        }
    }
}

/// Splits a raw HTTP/1.1 answer into status, `Content-Type` and JSON body (chunked or not).
pub fn parse_http_answer(raw: &[u8]) -> (u16, String, Value) {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (0, String::new(), Value::String(format!("no HTTP answer: {text:?}")));
    };
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let body = if header("transfer-encoding").eq_ignore_ascii_case("chunked") {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_string()
    };
    (status, header("content-type"), serde_json::from_str(&body).unwrap_or(Value::Null))
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One unlabelled sample of node `i`'s `/metrics` (e.g. `ordo_consensus_height`), `None` when the
/// node does not answer or has no such sample.
pub fn metric(t: &Testnet, i: usize, sample: &str) -> Option<f64> {
    let body = t.agent.get(&format!("{}/metrics", t.api(i))).call().ok()?.into_string().ok()?;
    body.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse().ok())
}
