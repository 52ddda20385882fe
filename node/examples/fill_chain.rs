//! Writes a long certified chain into every node of a network directory made by `ordo genesis`
//! (or `ordo testnet`), so that `ordo testnet --dir DIR` then starts at that height. It exists to
//! measure what depends on chain length (the explorer's pages, catch-up) on a chain of realistic
//! size without committing it through consensus first.
//!
//!   cargo run --release -p ordo-node --example fill_chain -- DIR BLOCKS [TXS_PER_BLOCK]
//!
//! The blocks are real: transactions signed by a client key, executed, hash-chained, each with a
//! PBFT certificate of view 0 signed by the first 2f+1 validators' own keys from DIR, so
//! `ordo verify-chain --data-dir DIR/node0/data` accepts the result. Node 0's store is written
//! block by block (one synced write each, as a node does) and copied to the other nodes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use ordo_chain::store::{RocksStore, Store};
use ordo_chain::{BatchHeader, Certificate, Keypair, Op, Transaction, VerifiedTx};
use ordo_genesis::{layout, Genesis, KeyFile, NodeConfig};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 || args.len() > 3 {
        bail!("usage: fill_chain DIR BLOCKS [TXS_PER_BLOCK]");
    }
    let dir = PathBuf::from(&args[0]);
    let blocks: u64 = args[1].parse().context("BLOCKS must be a number")?;
    let per_block: u64 =
        args.get(2).map(|s| s.parse()).transpose().context("TXS_PER_BLOCK must be a number")?.unwrap_or(4);

    let genesis = Genesis::load(&dir.join("genesis.json"))?;
    let n = genesis.validators.len();
    let configs: Vec<NodeConfig> =
        (0..n).map(|i| NodeConfig::load(&layout::node_dir(&dir, i).join("config.toml"))).collect::<Result<_, _>>()?;
    for c in &configs {
        if c.data_dir.exists() {
            bail!("{} exists: fill_chain writes a new chain into a network that never ran", c.data_dir.display());
        }
    }
    let keys: Vec<Keypair> = configs.iter().map(|c| KeyFile::read(&c.key_file)).collect::<Result<_, _>>()?;
    let quorum = genesis.committee().quorum();
    let signers = &keys[..quorum];

    let store = RocksStore::open(&configs[0].data_dir)?;
    let (mut prev, writes) = genesis.block();
    store.commit(&prev, &writes)?;
    let client = Keypair::from_seed([42; 32]);
    let started = Instant::now();
    let mut nonce = 0;
    for height in 1..=blocks {
        let txs: Vec<VerifiedTx> = (0..per_block)
            .map(|i| {
                nonce += 1;
                let op = Op::Put { key: format!("fill/{}", nonce % 10_000), value: format!("{height}.{i}") };
                VerifiedTx::from_trusted_store(Transaction::sign(&genesis.chain_id, &client, nonce, op))
            })
            .collect();
        let timestamp_ms = prev.header.timestamp_ms + 50;
        let header = BatchHeader::for_txs(height, timestamp_ms, keys[(height as usize) % n].public(), &txs);
        let cert = Certificate::pbft_signed(&genesis.chain_id, 0, height, header.digest(&genesis.chain_id), signers);
        let committed = vec![false; txs.len()];
        let (block, exec) = ordo_chain::Block::build(&genesis.chain_id, &prev, header, &txs, &committed, Some(cert));
        store.commit(&block, &exec.writes)?;
        prev = block;
        if height % 10_000 == 0 {
            eprintln!("{height} blocks ({:.0} blocks/s)", height as f64 / started.elapsed().as_secs_f64());
        }
    }
    drop(store);
    for c in &configs[1..] {
        copy_dir(&configs[0].data_dir, &c.data_dir)?;
    }
    println!(
        "wrote {blocks} blocks of {per_block} transactions to {n} nodes in {:.1} s; tip {}",
        started.elapsed().as_secs_f64(),
        prev.hash
    );
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
