//! `ordo verify-chain --data-dir`: re-derives every tx_id, tx_root, batch_digest, state_hash
//! and block_hash of a node's store and checks every certificate against the genesis committee.
//! The store is opened read-only, so a running node can be checked. `ordo verify-chain --node URL`
//! does the same over a node's REST API.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ordo_chain::store::{RocksStore, Store};
use ordo_chain::{BlockJson, ChainVerifier, TxResult};
use ordo_genesis::{Genesis, NodeConfig};

use crate::cli::VerifyArgs;

/// Finds the store directory and the genesis file from what the user named.
fn locate(data_dir: &Path, args: &VerifyArgs) -> anyhow::Result<(PathBuf, PathBuf)> {
    let config = data_dir.join("config.toml");
    if config.exists() {
        let cfg = NodeConfig::load(&config)?;
        return Ok((cfg.data_dir, args.genesis.clone().unwrap_or(cfg.genesis_file)));
    }
    let genesis = match &args.genesis {
        Some(g) => g.clone(),
        None => data_dir
            .ancestors()
            .take(4)
            .map(|d| d.join("genesis.json"))
            .find(|p| p.exists())
            .context("no genesis.json found in or above the data directory; pass --genesis FILE")?,
    };
    Ok((data_dir.to_path_buf(), genesis))
}

/// `ordo verify-chain --node URL`: fetches every block over the API and checks it against the
/// genesis (which must come from the consortium, not from the node being checked).
pub fn verify_node(node: &str, genesis_path: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let genesis = Genesis::load(genesis_path)?;
    let api = crate::client::Api::new(node);
    let fetch = |h: u64| -> anyhow::Result<ordo_chain::Block> {
        let v = api.get(&format!("/v1/blocks/{h}"))?.with_context(|| format!("the node has no block {h}"))?;
        let j: BlockJson = serde_json::from_value(v).with_context(|| format!("block {h} is malformed"))?;
        Ok(j.into())
    };
    let tip = api.get("/v1/blocks/latest")?.context("the node has no blocks")?["height"]
        .as_u64()
        .context("latest block has no height")?;
    let (expected, _) = genesis.block();
    let mut v = ChainVerifier::new(genesis.tx_rules(), genesis.committee(), genesis.cert_kind(), expected, &fetch(0)?)
        .context("the node's genesis block is not this genesis.json's")?;
    let mut last_report = Instant::now();
    let mut txs = 0;
    for h in 1..=tip {
        let b = fetch(h)?;
        txs += b.txs.len();
        v.push(b).with_context(|| format!("block {h} does not verify"))?;
        if last_report.elapsed() >= Duration::from_secs(2) {
            eprintln!("verified {h}/{tip} blocks...");
            last_report = Instant::now();
        }
    }
    println!(
        "ok: {} blocks (0..={tip}), {txs} transactions from {node}, tip {}; every certificate verified against \
         the {} validators of {} ({:.1}s)",
        tip + 1,
        v.tip().hash,
        genesis.validators.len(),
        genesis.chain_id,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    if let Some(node) = &args.node {
        let genesis = args.genesis.clone().unwrap_or_else(|| PathBuf::from("testnet/genesis.json"));
        if !genesis.exists() {
            bail!("{} does not exist: pass the consortium's genesis with --genesis FILE", genesis.display());
        }
        return verify_node(node, &genesis);
    }
    let data_dir = args.data_dir.clone().expect("clap requires --data-dir or --node");
    let (data_dir, genesis_path) = locate(&data_dir, &args)?;
    let genesis = Genesis::load(&genesis_path)?;
    let store = RocksStore::open_read_only(&data_dir)
        .with_context(|| format!("could not open the store in {}", data_dir.display()))?;
    verify_store(&store, &genesis, &data_dir)
}

fn verify_store(store: &RocksStore, genesis: &Genesis, dir: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let Some(tip) = store.latest_height()? else { bail!("{} holds no blocks yet", dir.display()) };
    let (expected_genesis, _) = genesis.block();
    let b0 = store.block(0)?.context("the store has no genesis block")?;
    let mut v = ChainVerifier::new(genesis.tx_rules(), genesis.committee(), genesis.cert_kind(), expected_genesis, &b0)
        .context("the store's genesis block is not this genesis.json's")?;
    let (mut txs, mut applied) = (0usize, 0usize);
    let mut last_report = Instant::now();
    for h in 1..=tip {
        let block = store.block(h)?.with_context(|| format!("block {h} is missing below the tip {tip}"))?;
        // The transaction index must agree with the blocks: every applied transaction is indexed
        // at its own place.
        for (i, (id, r)) in block.tx_ids.iter().zip(&block.results).enumerate() {
            if *r == TxResult::Applied {
                let loc = store.tx_location(id)?.with_context(|| format!("block {h}: tx {id} is not indexed"))?;
                if loc.height != h || loc.index as usize != i {
                    bail!("block {h}: tx {id} is indexed at {}:{}, not {h}:{i}", loc.height, loc.index);
                }
                applied += 1;
            }
        }
        txs += block.txs.len();
        v.push(block).with_context(|| format!("block {h} does not verify"))?;
        if last_report.elapsed().as_secs() >= 2 {
            eprintln!("verified {h}/{tip} blocks...");
            last_report = Instant::now();
        }
    }
    println!(
        "ok: {} blocks (0..={tip}), {txs} transactions ({applied} applied), tip {} state {}; every certificate \
         verified against the {} validators of {} ({:.1}s)",
        tip + 1,
        v.tip().hash,
        v.tip().state_hash,
        genesis.validators.len(),
        genesis.chain_id,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
