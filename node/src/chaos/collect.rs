//! What `ordo chaos` reads from every node once the faults are healed: its status, its whole
//! chain (hashes and transaction places, in pages of `GET /v1/blocks`), its answer for every
//! acknowledged transaction, and the verdict of `ordo verify-chain --node` on it. The verdict
//! comes from running the real command, so the chain is checked by exactly the code a user runs,
//! and its printed summary stays out of this command's own output.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use ordo_chain::Hash;
use serde_json::Value;

use super::check::{FinalStatus, Lookup, NodeChain, NodeFinal};
use crate::client::Api;

/// `GET /v1/blocks` serves at most this many blocks a page (protocol §7).
const BLOCKS_PAGE_MAX: u64 = 100;

/// Blocks `from..=to` of a node, in height order, read page by page.
pub fn blocks(api: &Api, from: u64, to: u64) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = to.min(start + BLOCKS_PAGE_MAX - 1);
        let page = api
            .get(&format!("/v1/blocks?before={}&limit={}", end + 1, end - start + 1))?
            .context("GET /v1/blocks answered 404")?;
        let mut got: Vec<Value> = page["blocks"].as_array().cloned().unwrap_or_default();
        got.reverse();
        let heights: Vec<u64> = got.iter().filter_map(|b| b["height"].as_u64()).collect();
        if heights != (start..=end).collect::<Vec<_>>() {
            bail!("asked for blocks {start}..={end}, got heights {heights:?}");
        }
        out.extend(got);
        start = end + 1;
    }
    Ok(out)
}

/// The ids of a block's transactions, with whether each was applied.
pub fn block_txs(block: &Value) -> anyhow::Result<Vec<(Hash, bool)>> {
    let txs = block["txs"].as_array().context("a block without txs")?;
    txs.iter()
        .map(|t| {
            let id = t["tx_id"].as_str().context("a transaction without tx_id")?;
            Ok((Hash::from_hex(id)?, t["result"] == "applied"))
        })
        .collect()
}

fn read_chain(api: &Api, tip: u64) -> anyhow::Result<NodeChain> {
    let mut chain = NodeChain::default();
    for b in blocks(api, 0, tip)? {
        let height = b["height"].as_u64().context("a block without height")?;
        let hash = Hash::from_hex(b["hash"].as_str().context("a block without hash")?)?;
        chain.push_block(height, hash, block_txs(&b)?);
    }
    Ok(chain)
}

fn lookup(api: &Api, id: &Hash) -> Lookup {
    match api.get(&format!("/v1/transactions/{id}")) {
        Ok(None) => Lookup::Unknown,
        Ok(Some(v)) => match v["status"].as_str() {
            Some("pending") => Lookup::Pending,
            Some("committed") => match (v["height"].as_u64(), v["index"].as_u64()) {
                (Some(height), Some(index)) => {
                    Lookup::Committed { height, index: index as u32, applied: v["result"] == "applied" }
                }
                _ => Lookup::Failed(format!("a committed status without height or index: {v}")),
            },
            _ => Lookup::Failed(format!("not a transaction status: {v}")),
        },
        Err(e) => Lookup::Failed(format!("{e:#}")),
    }
}

/// Runs `ordo verify-chain --node URL --genesis FILE` with the `ordo` binary at `exe`; its last
/// line is the verdict.
fn verify(exe: &Path, url: &str, genesis: &Path) -> Result<String, String> {
    let out = Command::new(exe)
        .args(["verify-chain", "--node", url, "--genesis"])
        .arg(genesis)
        .output()
        .map_err(|e| format!("cannot run {} verify-chain: {e}", exe.display()))?;
    let last = |b: &[u8]| String::from_utf8_lossy(b).lines().last().unwrap_or_default().trim().to_string();
    if out.status.success() {
        Ok(last(&out.stdout))
    } else {
        Err(last(&out.stderr))
    }
}

/// Reads everything the check needs from one node.
pub fn node_final(exe: &Path, name: &str, url: &str, genesis: &Path, acked: &HashSet<Hash>) -> NodeFinal {
    let api = Api::new(url);
    let status = match api.get("/v1/status") {
        Ok(Some(v)) => match (v["height"].as_u64(), v["view"].as_u64().or_else(|| v["term"].as_u64())) {
            (Some(height), Some(view)) => Ok(FinalStatus { height, view, ready: v["ready"] == true }),
            _ => Err(format!("a status without height or view: {v}")),
        },
        Ok(None) => Err("GET /v1/status answered 404".into()),
        Err(e) => Err(format!("{e:#}")),
    };
    let chain = api
        .get("/v1/blocks/latest")
        .and_then(|b| b.context("the node has no blocks")?["height"].as_u64().context("a block without height"))
        .and_then(|tip| read_chain(&api, tip))
        .map_err(|e| format!("{e:#}"));
    let lookups: HashMap<Hash, Lookup> = acked.iter().map(|id| (*id, lookup(&api, id))).collect();
    let verify = verify(exe, url, genesis);
    NodeFinal { name: name.to_string(), status, chain, lookups, verify }
}
