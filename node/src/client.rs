//! The client commands of `ordo` (protocol §8): `tx`, `block`, `state get`, `status` and
//! `verify-chain --node`. They speak only the REST API of protocol §7, as a client in any other
//! language would, over a small blocking HTTP client (ureq).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ordo_chain::{Keypair, Op, Transaction};
use ordo_genesis::KeyFile;
use rand::RngCore;
use serde_json::Value;

use crate::cli::{BlockArgs, NodeArgs, StateCommand, TxArgs, TxCommand};

/// A thin wrapper that turns the API's error bodies into readable errors.
pub struct Api {
    base: String,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(base: &str) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
        Self { base: base.trim_end_matches('/').to_string(), agent }
    }

    fn answer(&self, what: &str, r: Result<ureq::Response, ureq::Error>) -> anyhow::Result<(u16, Value)> {
        match r {
            Ok(resp) => {
                let code = resp.status();
                Ok((code, resp.into_json().with_context(|| format!("{what}: the answer is not JSON"))?))
            }
            Err(ureq::Error::Status(code, resp)) => {
                let body: Value = resp.into_json().unwrap_or(Value::Null);
                Ok((code, body))
            }
            Err(e) => Err(anyhow::anyhow!("{what}: {e}; is a node listening at {}?", self.base)),
        }
    }

    /// GET a path; 404 gives `None`, other errors fail with the API's message.
    pub fn get(&self, path: &str) -> anyhow::Result<Option<Value>> {
        let (code, body) = self.answer(path, self.agent.get(&format!("{}{path}", self.base)).call())?;
        match code {
            200 => Ok(Some(body)),
            404 => Ok(None),
            _ => bail!("GET {path}: {code} {}", error_text(&body)),
        }
    }

    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.answer(path, self.agent.post(&format!("{}{path}", self.base)).send_json(body))
    }
}

fn error_text(body: &Value) -> String {
    match (body["error"]["code"].as_str(), body["error"]["message"].as_str()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        _ => body.to_string(),
    }
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("JSON prints"));
}

/// The client key: `--key FILE`, or `./client.key`, created on first use.
fn client_key(path: Option<&Path>) -> anyhow::Result<Keypair> {
    let path: PathBuf = path.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("client.key"));
    if path.exists() {
        return Ok(KeyFile::read(&path)?);
    }
    let key = Keypair::generate();
    KeyFile::write_new(&key, &path)?;
    eprintln!("created client key {} ({})", path.display(), key.public());
    Ok(key)
}

/// Waits until a transaction is committed, in slices of the API's long poll.
fn wait_committed(api: &Api, tx_id: &str, timeout: Duration) -> anyhow::Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let v =
            api.get(&format!("/v1/transactions/{tx_id}?wait_ms=10000"))?.context("the node forgot the transaction")?;
        if v["status"] == "committed" {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("transaction {tx_id} is still pending after {}s", timeout.as_secs());
        }
    }
}

pub fn tx(args: TxArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.node);
    let op = match args.command {
        TxCommand::Get { tx_id } => {
            let v = if args.wait {
                wait_committed(&api, &tx_id, Duration::from_secs(60))?
            } else {
                api.get(&format!("/v1/transactions/{tx_id}"))?
                    .with_context(|| format!("unknown transaction {tx_id}"))?
            };
            print(&v);
            return Ok(());
        }
        TxCommand::Put { key, value } => Op::Put { key, value },
        TxCommand::Delete { key } => Op::Delete { key },
    };
    let status = api.get("/v1/status")?.context("the node has no /v1/status")?;
    let chain_id = status["chain_id"].as_str().context("status has no chain_id")?;
    let key = client_key(args.key_file.as_deref())?;
    // A random nonce makes otherwise-equal transactions distinct (protocol §3).
    let tx = Transaction::sign(chain_id, &key, rand::rngs::OsRng.next_u64(), op);
    let (code, body) = api.post("/v1/transactions", &serde_json::to_value(&tx)?)?;
    if !(code == 200 || code == 202) {
        bail!("the node refused the transaction: {code} {}", error_text(&body));
    }
    if args.wait {
        let id = body["tx_id"].as_str().context("the answer has no tx_id")?;
        print(&wait_committed(&api, id, Duration::from_secs(60))?);
    } else {
        print(&body);
    }
    Ok(())
}

pub fn block(args: BlockArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.node.node);
    let path = match args.height.as_str() {
        "latest" => "/v1/blocks/latest".to_string(),
        h => format!("/v1/blocks/{}", h.parse::<u64>().context("HEIGHT is a number or `latest`")?),
    };
    print(&api.get(&path)?.with_context(|| format!("no block {}", args.height))?);
    Ok(())
}

pub fn state(cmd: StateCommand) -> anyhow::Result<()> {
    let StateCommand::Get { key, node } = cmd;
    let api = Api::new(&node.node);
    let path = format!("/v1/state/{}", urlencode(&key));
    print(&api.get(&path)?.with_context(|| format!("key {key:?} is absent"))?);
    Ok(())
}

pub fn status(args: NodeArgs) -> anyhow::Result<()> {
    print(&Api::new(&args.node).get("/v1/status")?.context("the node has no /v1/status")?);
    Ok(())
}

/// Percent-encodes a state key for a URL path segment.
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
