//! `sentrymesh-testnet`: parses the command line, sets up logging and runs
//! a testnet (see the library's `command` module). Exit status 0 only when
//! the mesh formed exactly as the roles require.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use sentrymesh_testnet::TestnetArgs;
use tracing_subscriber::EnvFilter;

/// Build a mesh of N operators (a hidden producer and M sentries each) in
/// network namespaces here, check it forms as the roles require, print it,
/// and remove it (root). Exit 0 only if it formed.
#[derive(Debug, Parser)]
#[command(name = "sentrymesh-testnet", version, about)]
struct Cli {
    #[command(flatten)]
    args: TestnetArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .init();
    let mut stdout = io::stdout().lock();
    match sentrymesh_testnet::run(&cli.args, &mut stdout) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("sentrymesh-testnet: {error:#}");
            ExitCode::FAILURE
        }
    }
}
