//! The command line of `ordo` (SPEC §8), declared with clap's derive API.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "ordo", version, about = "Ordo: a permissioned blockchain node (PBFT or Raft)")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate an ed25519 key (a client's or a validator's).
    Keygen(KeygenArgs),
    /// Write a network directory: genesis.json and nodeI/{node.key,config.toml}.
    Genesis(GenesisArgs),
    /// Re-derive and check every hash and certificate of a chain.
    VerifyChain(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Write the key file here (mode 0600) instead of printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ConsensusArg {
    Pbft,
    Raft,
}

#[derive(Args, Debug)]
pub struct GenesisArgs {
    /// The number of validators.
    #[arg(long)]
    pub validators: usize,
    #[arg(long, value_enum, default_value = "pbft")]
    pub consensus: ConsensusArg,
    #[arg(long, default_value = "ordo-testnet")]
    pub chain_id: String,
    /// The directory to write.
    #[arg(long, default_value = "testnet")]
    pub out: PathBuf,
    /// The IP address every node listens on and is reached at.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Node I listens for peers on P+I.
    #[arg(long, default_value_t = 7000)]
    pub p2p_port: u16,
    /// Node I serves its API on A+I.
    #[arg(long, default_value_t = 8080)]
    pub api_port: u16,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// A node's data directory (its RocksDB store), or the node directory holding config.toml.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The genesis file; by default the one named by config.toml, or the nearest genesis.json
    /// in the directory or above it.
    #[arg(long)]
    pub genesis: Option<PathBuf>,
}
