//! `sentrymesh`: parses the command line, sets up logging and runs the
//! command. Invoked as `sentrymesh-wg IFNAME` (a link, for wg-quick's
//! `WG_QUICK_USERSPACE_IMPLEMENTATION`) it is `sentrymesh wg IFNAME`.

use std::ffi::OsString;
use std::io::{self, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sentrymesh::cli::keygen;
use sentrymesh::cli::{
    self, CardCommand, ExportCommand, ImportCommand, OperatorCommand, TrustCommand,
};
use sentrymesh::control::client;
use sentrymesh::dataplane::Offloads;
use sentrymesh::logging::{self, LogFormat};
use sentrymesh::modes::{ready, up, wg};

/// A userspace WireGuard mesh for block producers and validators.
#[derive(Debug, Parser)]
#[command(name = "sentrymesh", version, about)]
struct Cli {
    /// Which kernel offloads the data path uses: `auto` (every one the
    /// kernel offers: TUN segmentation, UDP GSO and GRO) or `off`.
    #[arg(
        long,
        global = true,
        env = "SENTRYMESH_OFFLOADS",
        default_value = "auto"
    )]
    offloads: Offloads,
    /// How log lines look: `human` (under systemd's journal without
    /// timestamps, with syslog priorities) or `json` (one object a line).
    #[arg(
        long,
        global = true,
        env = "SENTRYMESH_LOG_FORMAT",
        default_value = "human"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run interface IFNAME as a userspace WireGuard configured with `wg`
    /// (as `wireguard-go IFNAME`).
    Wg {
        /// Stay in the foreground (also: WG_PROCESS_FOREGROUND=1).
        #[arg(short, long)]
        foreground: bool,
        /// The interface to create.
        ifname: String,
    },
    /// Run the interface described by a native configuration file; SIGHUP
    /// reloads it.
    Up {
        /// The configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: std::path::PathBuf,
    },
    /// Check a native configuration file and everything it names (key
    /// files; a mesh member's card, known directory, state and trust)
    /// without changing anything on the system: exit 0 when `up` would take
    /// it, else 1 with the first problem at FILE:LINE:COLUMN.
    Check {
        /// The configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: std::path::PathBuf,
    },
    /// Print a new private key (as `wg genkey`).
    Genkey,
    /// Read a private key on standard input, print its public key (as `wg pubkey`).
    Pubkey,
    /// Print a new preshared key (as `wg genpsk`).
    Genpsk,
    /// Make a running `sentrymesh up` re-read its config and apply what
    /// changed, keeping the sessions of unchanged peers (as SIGHUP), and
    /// wait for its answer: what changed, or (exit 1) why it refused the
    /// file and runs on with the config it had.
    Reload {
        /// The interface; default: the only one running.
        #[arg(short, long)]
        interface: Option<String>,
    },
    /// Wait until at least N peers have a live session (a handshake in the
    /// last 180 s): exit 0 then, 1 at the timeout. For use before a chain
    /// node starts.
    WaitReady {
        /// The interface; default: the only one running.
        #[arg(short, long)]
        interface: Option<String>,
        /// How many peers must have a live session.
        #[arg(long, value_name = "N")]
        min_peers: usize,
        /// How long to wait: 90s, 5m, 500ms, or seconds.
        #[arg(long, value_name = "DURATION", value_parser = ready::parse_duration, default_value = "60s")]
        timeout: Duration,
    },
    /// Show the interface as this host sees it: peers, sessions and, for a
    /// mesh member, hosts, operators, trust, readiness, and why known hosts
    /// have no session (docs/status.md).
    Status {
        /// Print the JSON document (docs/status.md) instead of tables.
        #[arg(long)]
        json: bool,
        /// The interface; default: the only one running.
        ifname: Option<String>,
    },
    /// Operator identities: make an operator key, show its operator id.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Host cards: issue and show them, seal them into bundles for other
    /// operators, open bundles.
    #[command(subcommand)]
    Card(CardCommand),
    /// The web of trust: sign vouches for operators and revocations.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Turn another tool's config into a native one: `import wg-quick
    /// FILE.conf` prints the TOML, with the keys moved to 0600 files.
    #[command(subcommand)]
    Import(ImportCommand),
    /// The chain node's peer config for this host, from the mesh: the
    /// `[p2p]` keys of a Tendermint config.toml, or nodeos config.ini lines.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Build a whole mesh of operators' producers and sentries in network
    /// namespaces on this machine, check that it forms as the roles
    /// require, and remove it (root): runs the `sentrymesh-testnet` beside
    /// this program with ARGS (`sentrymesh testnet --help` shows them).
    #[command(disable_help_flag = true)]
    Testnet {
        /// The testnet's arguments: --operators N --sentries M, ...
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

/// The arguments, with `sentrymesh-wg ARGS` read as `sentrymesh wg ARGS`.
fn arguments() -> Vec<OsString> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|arg0| Path::new(arg0).file_name())
        .map(|name| name.to_os_string());
    if invoked_as.as_deref() == Some("sentrymesh-wg".as_ref()) {
        args.insert(1, "wg".into());
    }
    args
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(arguments());
    logging::init(cli.log_format);
    let mut stdout = io::stdout().lock();
    let result = match cli.command {
        Command::Wg { foreground, ifname } => {
            let foreground =
                foreground || std::env::var("WG_PROCESS_FOREGROUND").as_deref() == Ok("1");
            drop(stdout);
            wg::run(&ifname, foreground, cli.offloads)
        }
        Command::Up { config } => {
            drop(stdout);
            up::run(&config, cli.offloads)
        }
        Command::Check { config } => cli::check::run(&config, &mut stdout),
        Command::Genkey => keygen::genkey(&mut stdout),
        Command::Pubkey => keygen::pubkey(&mut io::stdin().lock(), &mut stdout),
        Command::Genpsk => keygen::genpsk(&mut stdout),
        Command::Reload { interface } => {
            client::request_reload(interface.as_deref()).and_then(|(name, changes)| {
                writeln!(stdout, "{name} reloaded its config: {changes}")?;
                Ok(())
            })
        }
        Command::WaitReady {
            interface,
            min_peers,
            timeout,
        } => match ready::wait_ready(interface.as_deref(), min_peers, timeout, &mut stdout) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(error) => Err(error),
        },
        Command::Status { json, ifname } => cli::status::run(ifname.as_deref(), json, &mut stdout),
        Command::Operator(command) => cli::operator::run(command, &mut stdout),
        Command::Card(command) => cli::card::run(command, &mut stdout),
        Command::Trust(command) => cli::trust::run(command, &mut stdout),
        Command::Import(command) => {
            cli::wg_quick::run(command, &mut stdout, &mut io::stderr().lock())
        }
        Command::Export(command) => cli::export::run(command, &mut stdout),
        Command::Testnet { args } => cli::testnet::exec(cli.offloads, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sentrymesh: {error:#}");
            ExitCode::FAILURE
        }
    }
}
