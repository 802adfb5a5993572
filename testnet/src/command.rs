//! `sentrymesh-testnet`: builds a testnet, waits for the mesh, prints it and
//! the verdict, keeps it up `--seconds` if asked, and removes it.
//!
//! The hosts run the `sentrymesh` binary beside this one (where `cargo
//! build` puts both), or the one `--sentrymesh PATH` (`SENTRYMESH_BIN`)
//! names. The testnet is a program of its own, not a `sentrymesh`
//! subcommand, so the daemon operators install does not carry it.
//!
//! ```text
//! sentrymesh-testnet: 3 operators, each with a hidden producer and 2 sentries: 9 hosts
//! created in 0.4 s (network 0.1 s, keys, cards and configs 0.1 s, daemons 0.2 s); files (keys, cards, bundles, vouches, configs, logs) in /tmp/sentrymesh-testnet-…
//!
//! operators (vouch threshold 1: each trusts the next directly, and admits the others on its vouches)
//!   op   operator id  trust
//!   op1  Jq3…=        trusts op2; admits op3 on op2's vouch
//!   ...
//! hosts
//!   host  name          role      underlay         endpoint          overlay          namespace            interface
//!   1P    op1-producer  producer  198.18.1.1/16    hidden            198.19.1.1/32    smtn-…-op1-producer  tn…-0-0
//!   1S1   op1-sentry-1  sentry    198.18.1.2/16    198.18.1.2:51820  198.19.1.2/32    smtn-…-op1-sentry-1  tn…-0-1
//!   ...
//! waiting up to 60 s for every pair of hosts the roles require to peer to have a live session at both ends and answer pings both ways, and every daemon to report ready
//! the mesh formed 0.7 s after the first daemon started
//!
//! peers ... (the report: see `report`)
//! (the peers of every host and the ping matrix took 1.0 s)
//!
//! removed everything the testnet made in 0.9 s
//! ```
//!
//! While it builds, standard error shows how far it got (see
//! [`progress`](crate::progress)): one line rewritten in place on a
//! terminal, a line per change otherwise.
//!
//! The exit status is 0 only when the mesh formed exactly as the roles
//! require; otherwise the report ends with what failed, followed by the
//! end of the log of each daemon involved.

use std::collections::BTreeSet;
use std::io::{self, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use sentrymesh::dataplane::Offloads;
use sentrymesh::modes::ready;
use sentrymesh_netns::interrupt;

use crate::progress::Progress;
use crate::report::Violation;
use crate::{Testnet, TestnetSpec, plan};

/// Log lines shown of each daemon involved in a violation.
const LOG_LINES: usize = 15;

/// The program's name, beside which the daemon's binary is looked for.
const SENTRYMESH: &str = "sentrymesh";

/// `sentrymesh-testnet`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct TestnetArgs {
    /// How many operators, each with one hidden producer and its sentries
    /// (1 to 64; 256 hosts at most).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub operators: usize,
    /// How many sentries each operator has (1 to 16).
    #[arg(long, value_name = "M", default_value_t = 2)]
    pub sentries: usize,
    /// Keep the mesh up this many seconds after it formed, to look around
    /// (`ip netns exec NAMESPACE wg show`), before removing it.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seconds: u64,
    /// How long the mesh may take to form: 90s, 2m, or seconds.
    #[arg(long, value_name = "DURATION", value_parser = ready::parse_duration, default_value = "60s")]
    pub timeout: Duration,
    /// The `sentrymesh` binary the hosts run; default: the one beside this
    /// program.
    #[arg(long, value_name = "PATH", env = "SENTRYMESH_BIN")]
    pub sentrymesh: Option<PathBuf>,
    /// Which kernel offloads the hosts' data paths use: `auto` or `off`
    /// (their `--offloads`).
    #[arg(
        long,
        value_name = "auto|off",
        env = "SENTRYMESH_OFFLOADS",
        default_value = "auto"
    )]
    pub offloads: Offloads,
}

/// Runs the testnet `args` describe, printing to `out`; returns whether
/// the mesh formed as the roles require. Everything it made is removed
/// before it returns, also on error and on Ctrl-C.
///
/// # Errors
///
/// When not root, there is no `sentrymesh` binary, the testnet cannot be
/// built, a daemon exits, or it was interrupted before the mesh was
/// checked.
pub fn run(args: &TestnetArgs, out: &mut impl Write) -> Result<bool> {
    plan::check_size(args.operators, args.sentries)?;
    crate::require_root()?;
    interrupt::install().context("installing the Ctrl-C handler")?;
    let spec = TestnetSpec {
        operators: args.operators,
        sentries: args.sentries,
        binary: sentrymesh_binary(args.sentrymesh.as_deref())?,
        offloads: args.offloads,
    };
    let result = run_spec(&spec, args, out);
    match result {
        Err(_) if interrupt::requested() => Err(anyhow!(
            "interrupted; everything the testnet made was removed"
        )),
        other => other,
    }
}

/// The daemon the hosts run: `given`, else `sentrymesh` beside this
/// program.
///
/// # Errors
///
/// When that is not a file, saying how to build or name one.
fn sentrymesh_binary(given: Option<&Path>) -> Result<PathBuf> {
    let path = match given {
        Some(path) => path.to_owned(),
        None => std::env::current_exe()
            .context("finding this program")?
            .with_file_name(SENTRYMESH),
    };
    if !path.is_file() {
        bail!(
            "no sentrymesh binary at {}: build it (`cargo build --release -p sentrymesh`) or \
             name one with --sentrymesh PATH",
            path.display()
        );
    }
    Ok(path)
}

fn run_spec(spec: &TestnetSpec, args: &TestnetArgs, out: &mut impl Write) -> Result<bool> {
    writeln!(
        out,
        "sentrymesh-testnet: {} operators, each with a hidden producer and {} sentries: {} hosts",
        spec.operators,
        spec.sentries,
        spec.operators * (1 + spec.sentries)
    )?;
    let started = Instant::now();
    let stderr = io::stderr();
    let terminal = stderr.is_terminal();
    let mut progress = Progress::new(stderr.lock(), terminal);
    let mut show = |stage| {
        // Progress that cannot be shown is no reason to stop the testnet.
        let _ = progress.show(Instant::now(), stage);
    };
    let created = Testnet::create_with_progress(spec, &mut show);
    let _ = progress.finish();
    let mut testnet = created?;
    let times = testnet.creation_times();
    writeln!(
        out,
        "created in {:.1} s (network {:.1} s, keys, cards and configs {:.1} s, daemons {:.1} s); \
         files (keys, cards, bundles, vouches, configs, logs) in {}",
        started.elapsed().as_secs_f64(),
        times.network.as_secs_f64(),
        times.identities.as_secs_f64(),
        times.daemons.as_secs_f64(),
        testnet.dir().display()
    )?;
    writeln!(out)?;
    write_plan(&testnet, out)?;
    if let Some(raised) = testnet.neighbour_caps_raised() {
        writeln!(
            out,
            "the kernel's neighbour table, which every namespace shares, is too small for \
             this mesh: raised for this run ({raised}), put back when it ends"
        )?;
    }
    writeln!(
        out,
        "waiting up to {} s for every pair of hosts the roles require to peer to have a live \
         session at both ends and answer pings both ways, and every daemon to report ready",
        args.timeout.as_secs_f64()
    )?;
    let mut show = |stage| {
        let _ = progress.show(Instant::now(), stage);
    };
    let formed = testnet.wait_ready_with_progress(args.timeout, &mut show);
    let _ = progress.finish();
    let formed = formed?;
    if formed {
        writeln!(
            out,
            "the mesh formed {:.1} s after the first daemon started",
            testnet.started().elapsed().as_secs_f64()
        )?;
    } else {
        writeln!(
            out,
            "the mesh did not form within {} s",
            args.timeout.as_secs_f64()
        )?;
    }
    writeln!(out)?;
    let checking = Instant::now();
    let report = testnet.report();
    // A matrix cut short by Ctrl-C proves nothing.
    interrupt::check()?;
    write!(out, "{report}")?;
    writeln!(
        out,
        "(the peers of every host and the ping matrix took {:.1} s)",
        checking.elapsed().as_secs_f64()
    )?;
    let violations = report.violations();
    if !violations.is_empty() {
        write_logs(&testnet, &violations, out)?;
    }
    if args.seconds > 0 && !interrupt::requested() {
        write_hold(&testnet, args.seconds, out)?;
        interrupt::sleep(Duration::from_secs(args.seconds));
    }
    let removing = Instant::now();
    drop(testnet);
    writeln!(
        out,
        "\nremoved everything the testnet made in {:.1} s",
        removing.elapsed().as_secs_f64()
    )?;
    Ok(violations.is_empty())
}

/// The operators with their trust, and the hosts with their addresses.
fn write_plan(testnet: &Testnet, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "operators (vouch threshold 1: each trusts the next directly, and admits the others on \
         its vouches)"
    )?;
    let id_width = testnet
        .operators()
        .iter()
        .map(|operator| operator.id.to_string().len())
        .max()
        .unwrap_or(0);
    writeln!(out, "  {:<4} {:<id_width$}  trust", "op", "operator id")?;
    for operator in testnet.operators() {
        let trust = match operator.trusts {
            None => "trusts no other operator".to_owned(),
            Some(direct) => {
                let mut text = format!("trusts op{direct}");
                if !operator.admits_by_vouch.is_empty() {
                    let admitted: Vec<String> = operator
                        .admits_by_vouch
                        .iter()
                        .map(|number| format!("op{number}"))
                        .collect();
                    text.push_str(&format!(
                        "; admits {} on op{direct}'s vouch",
                        admitted.join(", ")
                    ));
                }
                text
            }
        };
        writeln!(
            out,
            "  {:<4} {:<id_width$}  {trust}",
            operator.label,
            operator.id.to_string()
        )?;
    }
    writeln!(out, "hosts")?;
    let hosts = testnet.hosts();
    let width = |field: fn(&crate::TestnetHost) -> usize| hosts.iter().map(field).max();
    let label = width(|host| host.label.len())
        .unwrap_or(0)
        .max("host".len());
    let name = width(|host| host.name.len()).unwrap_or(0);
    let namespace = width(|host| host.namespace.len())
        .unwrap_or(0)
        .max("namespace".len());
    // An address with its prefix length, as wide as the widest.
    let (underlay, overlay) = (15, 15);
    writeln!(
        out,
        "  {:<label$}  {:<name$}  {:<8}  {:<underlay$}  {:<16}  {:<overlay$}  {:<namespace$}  \
         interface",
        "host", "name", "role", "underlay", "endpoint", "overlay", "namespace",
    )?;
    for host in hosts {
        let endpoint = host
            .endpoint
            .map_or_else(|| "hidden".to_owned(), |endpoint| endpoint.to_string());
        writeln!(
            out,
            "  {:<label$}  {:<name$}  {:<8}  {:<underlay$}  {endpoint:<16}  {:<overlay$}  \
             {:<namespace$}  {}",
            host.label,
            host.name,
            host.role.to_string(),
            format!("{}/{}", host.underlay, plan::UNDERLAY_PREFIX),
            format!("{}/{}", host.overlay, plan::OVERLAY_PREFIX),
            host.namespace,
            host.ifname,
        )?;
    }
    Ok(())
}

/// The end of the log of each host named in a violation.
fn write_logs(testnet: &Testnet, violations: &[Violation], out: &mut impl Write) -> Result<()> {
    let involved: BTreeSet<&str> = violations
        .iter()
        .flat_map(|violation| match violation {
            Violation::NotReady { host, .. }
            | Violation::NoAnswer { host, .. }
            | Violation::MissingPeer { host, .. }
            | Violation::UnexpectedPeer { host, .. }
            | Violation::NoSession { host, .. } => vec![host.as_str()],
            Violation::NoReply { from, to } | Violation::UnexpectedReply { from, to } => {
                vec![from.as_str(), to.as_str()]
            }
        })
        .collect();
    for host in testnet
        .hosts()
        .iter()
        .filter(|host| involved.contains(host.name.as_str()))
    {
        writeln!(out, "\nthe log of {} ends:", host.name)?;
        writeln!(out, "{}", testnet.log_tail(host, LOG_LINES))?;
    }
    Ok(())
}

/// How to look around while the mesh stays up.
fn write_hold(testnet: &Testnet, seconds: u64, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "\nthe mesh stays up for {seconds} s (Ctrl-C ends it early); look around, e.g.:"
    )?;
    if let Some(producer) = testnet.hosts().first() {
        writeln!(
            out,
            "  sudo ip netns exec {} wg show {}",
            producer.namespace, producer.ifname
        )?;
        if let Some(peer) = testnet.host(producer.expected_peers.first().map_or("", String::as_str))
        {
            writeln!(
                out,
                "  sudo ip netns exec {} ping {}",
                producer.namespace, peer.overlay
            )?;
        }
    }
    Ok(())
}
