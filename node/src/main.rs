//! `ordo`: the one binary of Ordo (SPEC §8).
//!
//! Layout: `cli` parses the command line (clap); each subcommand lives in its own module:
//! `keygen`, `genesis_cmd`, `verify` (offline), and `client` (the commands that speak the REST API). Errors reach the user through `anyhow` here, at the edge,
//! with a line that says what to do next.

mod cli;
mod client;
mod genesis_cmd;
mod keygen;
mod verify;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Keygen(a) => keygen::run(a),
        cli::Command::Genesis(a) => genesis_cmd::run(a),
        cli::Command::VerifyChain(a) => verify::run(a),
        cli::Command::Tx(a) => client::tx(a),
        cli::Command::Block(a) => client::block(a),
        cli::Command::State(c) => client::state(c),
        cli::Command::Status(a) => client::status(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
