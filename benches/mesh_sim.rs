//! `mesh-sim`: the mesh simulation bench (see `meshsim` in the library and
//! `benches/README.md`). Runs every combination of `--hosts` and
//! `--trust`, prints progress to stderr and the tables (or `--json`) to
//! stdout, and exits with 1 if any run found a hidden-filter violation.
//!
//! ```text
//! mesh-sim [--hosts 100,300,1000] [--trust direct,web] [--seed 1]
//!          [--loss-per-mille 10] [--delay-ms 50] [--jitter-ms 5]
//!          [--timeout-virtual 120] [--steady-rounds 61] [--no-memo]
//!          [--workers N] [--json]
//! ```

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use sentrymesh_benches::meshsim::{self, Setup, Trust};
use sentrymesh_mesh::gossip::RESETTLE_AFTER;

/// Simulates N mesh hosts (N/4 operators, each a hidden producer and three
/// sentries) on virtual time and reports convergence, traffic, CPU, store
/// size and hidden-filter violations.
#[derive(Debug, Parser)]
#[command(name = "mesh-sim")]
struct Args {
    /// Host counts to run, each a multiple of 4 up to 1000.
    #[arg(long, value_delimiter = ',', default_value = "100,300,1000")]
    hosts: Vec<usize>,
    /// Trust setups to run.
    #[arg(long, value_delimiter = ',', default_value = "direct,web")]
    trust: Vec<TrustArg>,
    /// Seed of the network's loss and delay.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Messages lost per 1000.
    #[arg(long, default_value_t = 10)]
    loss_per_mille: u16,
    /// One-way delay of every link, milliseconds.
    #[arg(long, default_value_t = 50)]
    delay_ms: u64,
    /// Each delay is drawn uniformly within this many milliseconds of
    /// --delay-ms.
    #[arg(long, default_value_t = 5)]
    jitter_ms: u64,
    /// Virtual seconds each phase (boot, new card, revocation) may take;
    /// a fraction stops a run inside boot's first round. A boot that does
    /// not converge in time ends the run.
    #[arg(long, default_value_t = 120.0)]
    timeout_virtual: f64,
    /// Gossip rounds of the steady state measured: by default one more
    /// than a settled pair or voucher waits to be reconciled again
    /// (`gossip::RESETTLE_AFTER`), so every periodic message is in it.
    #[arg(long, default_value_t = RESETTLE_AFTER + 1)]
    steady_rounds: u64,
    /// Check each host's objects on that host, not each distinct object
    /// once for the whole net: the same figures, at the cost of every
    /// check (for comparing with the memo).
    #[arg(long)]
    no_memo: bool,
    /// Threads the hosts run on (the figures are the same with any
    /// number); by default the machine's processors.
    #[arg(long)]
    workers: Option<usize>,
    /// Print JSON instead of the tables.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TrustArg {
    Direct,
    Web,
}

impl From<TrustArg> for Trust {
    fn from(arg: TrustArg) -> Self {
        match arg {
            TrustArg::Direct => Trust::Direct,
            TrustArg::Web => Trust::Web,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let mut reports = Vec::new();
    for &hosts in &args.hosts {
        for &trust in &args.trust {
            let setup = Setup {
                hosts,
                trust: trust.into(),
                seed: args.seed,
                loss_per_mille: args.loss_per_mille,
                delay_ms: args.delay_ms,
                jitter_ms: args.jitter_ms,
                timeout_virtual_ms: (args.timeout_virtual.max(0.0) * 1000.0) as u64,
                steady_rounds: args.steady_rounds,
                memo: !args.no_memo,
                workers,
            };
            match meshsim::run(&setup, &mut |line| eprintln!("{line}")) {
                Ok(report) => reports.push(report),
                Err(error) => {
                    eprintln!("mesh-sim: {error}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    let out = if args.json {
        format!("{:#}\n", meshsim::json(&reports))
    } else {
        meshsim::table(&reports)
    };
    if std::io::stdout().lock().write_all(out.as_bytes()).is_err() {
        return ExitCode::from(2);
    }
    let violations: u64 = reports.iter().map(|r| r.violations).sum();
    if violations > 0 {
        eprintln!("mesh-sim: {violations} hidden-filter violations");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
