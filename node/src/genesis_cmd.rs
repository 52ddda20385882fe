//! `ordo genesis`: writes a network directory for N validators (protocol §8).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ordo_genesis::layout::{node_dir, write_network, NetworkSpec};
use ordo_genesis::ConsensusKind;

use crate::cli::{ConsensusArg, GenesisArgs};

pub fn run(args: GenesisArgs) -> anyhow::Result<()> {
    let spec = NetworkSpec {
        validators: args.validators,
        consensus: match args.consensus {
            ConsensusArg::Pbft => ConsensusKind::Pbft,
            ConsensusArg::Raft => ConsensusKind::Raft,
        },
        chain_id: args.chain_id,
        out_dir: args.out.clone(),
        host: args.host,
        p2p_port: args.p2p_port,
        api_port: args.api_port,
        genesis_time_ms: SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64,
    };
    let g = write_network(&spec).with_context(|| format!("could not write the network to {}", args.out.display()))?;
    let c = g.committee();
    println!(
        "wrote {} ({} validators, {}, f = {}, quorum = {})",
        args.out.join("genesis.json").display(),
        c.n(),
        g.consensus.as_str(),
        c.f(),
        c.quorum()
    );
    for (i, v) in g.validators.iter().enumerate() {
        println!("  {}: {} p2p {} api {}", node_dir(&args.out, i).display(), v.public_key, v.p2p_addr, v.api_addr);
    }
    Ok(())
}
