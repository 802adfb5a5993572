//! `sentrymesh`: parses the command line, sets up logging and runs the
//! command.

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sentrymesh::keygen;

/// A userspace WireGuard mesh for block producers and validators.
#[derive(Debug, Parser)]
#[command(name = "sentrymesh", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a new private key (as `wg genkey`).
    Genkey,
    /// Read a private key on standard input, print its public key (as `wg pubkey`).
    Pubkey,
    /// Print a new preshared key (as `wg genpsk`).
    Genpsk,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut stdout = io::stdout().lock();
    let result = match cli.command {
        Command::Genkey => keygen::genkey(&mut stdout),
        Command::Pubkey => keygen::pubkey(&mut io::stdin().lock(), &mut stdout),
        Command::Genpsk => keygen::genpsk(&mut stdout),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sentrymesh: {error:#}");
            ExitCode::FAILURE
        }
    }
}
