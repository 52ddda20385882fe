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
    /// Run one validator.
    Node(NodeRunArgs),
    /// Run a local consortium: every validator its own process.
    Testnet(TestnetArgs),
    /// Re-derive and check every hash and certificate of a chain.
    VerifyChain(VerifyArgs),
    /// Submit a transaction, or look one up.
    Tx(TxArgs),
    /// Show a block: `ordo block 5`, `ordo block latest`.
    Block(BlockArgs),
    /// Read the state.
    #[command(subcommand)]
    State(StateCommand),
    /// Show a node's status.
    Status(NodeArgs),
    /// Load the nodes with signed transactions; report throughput and commit latency.
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The API URLs to submit to, round-robin (repeat the flag or separate with commas); the
    /// first one is also followed for commits. Default: the four nodes of `ordo testnet`.
    #[arg(long = "node", value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// How many transactions to submit.
    #[arg(long, default_value_t = 20_000)]
    pub txs: usize,
    /// The offered load in transactions per second; 0 offers them as fast as they are admitted.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Transactions per `POST /v1/transactions/batch` request.
    #[arg(long, default_value_t = 200)]
    pub batch: usize,
    /// Concurrent HTTP submitters.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// The size of each transaction's value, in bytes.
    #[arg(long, default_value_t = 16)]
    pub value_size: usize,
    /// Seconds to wait for everything to commit before giving up.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Which node to talk to.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// The node's API URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub node: String,
}

#[derive(Args, Debug)]
pub struct TxArgs {
    #[command(subcommand)]
    pub command: TxCommand,
    /// The client key file; `./client.key` by default, created on first use.
    #[arg(long = "key", id = "key_file", value_name = "FILE", global = true)]
    pub key_file: Option<PathBuf>,
    /// The node's API URL.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    pub node: String,
    /// Wait until the transaction is committed, then print its status.
    #[arg(long, global = true)]
    pub wait: bool,
}

#[derive(Subcommand, Debug)]
pub enum TxCommand {
    /// Set KEY to VALUE.
    Put { key: String, value: String },
    /// Remove KEY.
    Delete { key: String },
    /// Show a transaction's status.
    Get { tx_id: String },
}

#[derive(Args, Debug)]
pub struct BlockArgs {
    /// A height, or `latest`.
    #[arg(default_value = "latest")]
    pub height: String,
    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// The value of KEY.
    Get {
        key: String,
        #[command(flatten)]
        node: NodeArgs,
    },
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
#[command(group(clap::ArgGroup::new("source").required(true).args(["data_dir", "node"])))]
pub struct VerifyArgs {
    /// A node's data directory (its RocksDB store), or the node directory holding config.toml.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A node's API URL: every block is fetched over the API.
    #[arg(long)]
    pub node: Option<String>,
    /// The consortium's genesis file. With --data-dir, by default the one named by config.toml
    /// or the nearest genesis.json in or above the directory; with --node, ./testnet/genesis.json.
    #[arg(long)]
    pub genesis: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct NodeRunArgs {
    /// The node's config.toml.
    #[arg(long)]
    pub config: PathBuf,
}

#[derive(Args, Debug)]
pub struct TestnetArgs {
    /// The number of validators (when DIR is new).
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    #[arg(long, value_enum, default_value = "pbft")]
    pub consensus: ConsensusArg,
    /// The network directory; reused, data included, when it already holds a genesis.json.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
    /// Node I listens for peers on P+I.
    #[arg(long, default_value_t = 7000)]
    pub p2p_port: u16,
    /// Node I serves its API on A+I.
    #[arg(long, default_value_t = 8080)]
    pub api_port: u16,
}
