//! The command line of `ordo` (protocol §8), declared with clap's derive API.

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
    /// Run a workload and random faults on a running testnet, then check nothing was lost.
    Chaos(ChaosArgs),
}

/// A kind of fault `ordo chaos` injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum ChaosFault {
    /// SIGKILL a random node, restart it after a random delay.
    Kill,
    /// SIGSTOP a random node, resume it after a random delay.
    Pause,
    /// SIGKILL a random node and restart it at once.
    Restart,
    /// SIGKILL the current leader (PBFT primary), restart it after a random delay.
    Leader,
}

#[derive(Args, Debug)]
pub struct ChaosArgs {
    /// The directory of the running `ordo testnet`.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
    /// How long to inject faults, in minutes; fractions are fine (0.5).
    #[arg(long, default_value_t = 2.0)]
    pub minutes: f64,
    /// The kinds of fault to draw from, separated by commas.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "kill,pause,restart,leader")]
    pub faults: Vec<ChaosFault>,
    /// The seed of the fault schedule; drawn at random (and printed) when absent.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The workload's offered rate, in transactions per second.
    #[arg(long, default_value_t = 20)]
    pub rate: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The API URLs to submit to, round-robin (repeat the flag or separate with commas); a node
    /// that refuses a request is skipped for the next one, and the chain is followed on any node
    /// that answers. Default: the four nodes of `ordo testnet`.
    #[arg(long = "node", value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// How many transactions to submit (per rate of a sweep).
    #[arg(long, default_value_t = 20_000)]
    pub txs: usize,
    /// Distinct client keys signing the transactions (transaction i is signed by key i mod N).
    #[arg(long, default_value_t = 10_000)]
    pub senders: usize,
    /// The offered load in transactions per second; 0 offers them as fast as they are admitted.
    #[arg(long, default_value_t = 0, conflicts_with = "rates")]
    pub rate: u64,
    /// A sweep: one step per offered rate (e.g. `2000,5000,10000`), each waiting for its
    /// transactions to commit; one table row per rate.
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<u64>,
    /// A steady load for this many seconds at `--rate` (or each of `--rates`): rate x SECS
    /// transactions instead of `--txs`.
    #[arg(long, value_name = "SECS", conflicts_with = "txs")]
    pub duration: Option<u64>,
    /// Transactions per `POST /v1/transactions/batch` request.
    #[arg(long, default_value_t = 200)]
    pub batch: usize,
    /// Concurrent HTTP submitters.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// The size of each transaction's value, in bytes.
    #[arg(long, default_value_t = 16)]
    pub value_size: usize,
    /// Seconds to wait, after the last transaction is due at the offered rate (at once with
    /// `--rate 0`), for everything to commit before giving up.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Print the report as JSON (an array of reports for a sweep).
    #[arg(long)]
    pub json: bool,
    /// Also keep this many `/v1/events` streams open during each step (spread over the nodes),
    /// reading every block with its transactions, as explorers and indexers do: the report then
    /// says what they received, and comparing runs shows what they cost.
    #[arg(long, default_value_t = 0)]
    pub subscribers: usize,
    /// The `--subscribers` ask for blocks without their transactions (`?txs=false`), as the
    /// explorer's dashboard does.
    #[arg(long, requires = "subscribers")]
    pub subscribers_headers_only: bool,
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

/// `ordo testnet` runs a testnet; with a subcommand, it acts on the one running in `--dir`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TestnetArgs {
    #[command(subcommand)]
    pub command: Option<TestnetCommand>,
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

/// Faults a user causes on a running testnet from another terminal (the supervisor applies them).
#[derive(Subcommand, Debug)]
pub enum TestnetCommand {
    /// SIGKILL a validator.
    Kill(TestnetNodeArgs),
    /// SIGSTOP a validator: it stays alive but neither answers nor votes.
    Pause(TestnetNodeArgs),
    /// SIGCONT a paused validator.
    Resume(TestnetNodeArgs),
    /// Start a stopped (killed or exited) validator again; it catches up from its peers.
    Restart(TestnetNodeArgs),
    /// List the validators: state, pid, API.
    Nodes(TestnetNodesArgs),
}

#[derive(Args, Debug)]
pub struct TestnetNodeArgs {
    /// A validator's name (node2), its index (2), or `leader` (asked of the running nodes).
    pub node: String,
    /// The directory of the running testnet.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct TestnetNodesArgs {
    /// The directory of the running testnet.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,
}
