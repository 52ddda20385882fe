//! `ordo`: the one binary of Ordo (protocol §8).
//!
//! Layout: `cli` parses the command line (clap); `run` starts a validator (store, mempool, p2p,
//! API) with the engine its genesis names, `driver` runs that engine, `inbound` verifies what
//! the network delivers (with `inflight`, so that gossip and a PRE-PREPARE never check the same
//! transaction twice), `shared` is the state every task shares and the node's answers to the
//! API; `wire` holds the node's p2p payloads; each other
//! subcommand lives in its own module:
//! `keygen`, `genesis_cmd`, `verify` (offline), `client` (the commands that speak the REST API),
//! `bench` (the load generator) and `chaos` (a workload plus random faults on a running testnet, then
//! a check that nothing was lost). Errors reach the user through `anyhow` here, at the edge,
//! with a line that says what to do next.

mod bench;
mod chaos;
mod cli;
mod client;
mod driver;
mod genesis_cmd;
mod inbound;
mod inflight;
mod keygen;
mod marker;
mod regossip;
mod run;
mod shared;
mod testnet;
mod verify;
mod wire;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Like any Unix filter, end quietly when the reader of our output goes away
    // (`ordo block | head`), instead of panicking on a broken pipe.
    // SAFETY: resetting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Keygen(a) => keygen::run(a),
        cli::Command::Genesis(a) => genesis_cmd::run(a),
        cli::Command::Node(a) => run::run(a.config),
        cli::Command::Testnet(a) => testnet::run(a),
        cli::Command::VerifyChain(a) => verify::run(a),
        cli::Command::Tx(a) => client::tx(a),
        cli::Command::Block(a) => client::block(a),
        cli::Command::State(c) => client::state(c),
        cli::Command::Status(a) => client::status(a),
        cli::Command::Bench(a) => bench::run(a),
        cli::Command::Chaos(a) => chaos::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
