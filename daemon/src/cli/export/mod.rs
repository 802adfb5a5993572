//! `sentrymesh export tendermint | nodeos`: the chain node's peer config
//! for this host, from the mesh and the chain p2p addresses on the cards.
//!
//! ```text
//!  config (card, trust, known dir) ─┐
//!  state dir (what gossip taught) ──┴─► the mesh's peers ─► ChainView ─► tendermint: [p2p] keys
//!                                      (as the daemon has them)          nodeos: config.ini lines
//! ```
//!
//! # Where the mesh comes from
//!
//! The export reads what the daemon of the same config reads — the config,
//! this host's card, the known directory — and what it keeps, its state
//! directory, and computes the peers with the same [`sentrymesh_mesh::Mesh`] the daemon
//! runs ([`read_mesh`]). It does not ask the daemon over its control
//! socket, because:
//!
//! * the peers a chain node is told of are the hosts this one is
//!   *configured* to peer with by roles and trust, whether or not a
//!   session is up at this moment (a sentry rebooting must not drop out
//!   of its validator's `persistent_peers`); sessions add nothing here;
//! * it works before the daemon runs and while it restarts, as a chain
//!   node's `ExecStartPre` needs, and it needs no new request in the
//!   socket's protocol;
//! * the state is at most a second behind the daemon (its write
//!   interval), and replaced by a rename, so it is always whole.
//!
//! It must run as a user that can read the state directory (root, or the
//! daemon's user). With `--watch FILE` it keeps FILE up to date as the
//! mesh changes (see [`watch`]).
//!
//! Neither export ever names another operator's hidden host: the mesh
//! gives none as a peer, and the view drops any all the same.

mod nodeos;
mod tendermint;
mod view;
mod watch;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use sentrymesh_mesh::Role;

pub use nodeos::nodeos;
pub use tendermint::{TendermintOptions, tendermint};
pub use view::ChainView;
use watch::Rendered;

use super::clock;
use crate::config::{self, Config};
use crate::modes::mesh_member::read_mesh;
use crate::modes::ready::parse_duration;

/// `sentrymesh export ...`.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Print the `[p2p]` keys of a CometBFT (Tendermint) config.toml for this
    /// host's sentry-node layout: a validator (producer) gets its sentries
    /// as persistent peers and no peer exchange; a sentry gets its validator
    /// as a private persistent peer, peer exchange and its external address.
    Tendermint(TendermintArgs),
    /// Print the lines of a nodeos config.ini that name this host's chain
    /// peers: p2p-peer-address for each, and peer-key and
    /// allowed-connection when their cards carry nodeos peer keys.
    Nodeos(NodeosArgs),
}

/// Where an export reads the mesh and where it writes.
#[derive(Debug, Args)]
pub struct Source {
    /// The config file of this host's `sentrymesh up`.
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// Instead of printing once, keep FILE up to date: rewrite it
    /// (atomically) whenever the mesh changes it, until SIGTERM.
    #[arg(long, value_name = "FILE")]
    watch: Option<PathBuf>,
    /// With --watch, how often to look for changes: 2s, 500ms, 1m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s", requires = "watch")]
    interval: Duration,
}

/// `sentrymesh export tendermint`.
#[derive(Debug, Args)]
pub struct TendermintArgs {
    #[command(flatten)]
    source: Source,
    /// On a sentry: list its operator's other sentries in persistent_peers
    /// too.
    #[arg(long)]
    own_sentries: bool,
}

/// `sentrymesh export nodeos`.
#[derive(Debug, Args)]
pub struct NodeosArgs {
    #[command(flatten)]
    source: Source,
}

/// Why this host has no export of the kind asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The role has no config in the sentry-node layout.
    #[error(
        "this host is a {role}: the sentry-node layout has a config for validators (role \
         producer) and sentries only"
    )]
    Role {
        /// This host's role.
        role: Role,
    },
    /// A sentry whose card has no chain p2p address.
    #[error(
        "the card of host `{host}` has no chain p2p address (card issue --chain-p2p ID@PORT): a \
         sentry's external_address is its endpoint with that port"
    )]
    NoChainP2p {
        /// This host's name.
        host: String,
    },
    /// A sentry whose card has no endpoint.
    #[error(
        "the card of host `{host}` has no endpoint: a sentry's external_address is its public \
         endpoint"
    )]
    NoEndpoint {
        /// This host's name.
        host: String,
    },
}

/// Makes an export's text from a view.
type MakeExport = dyn Fn(&ChainView) -> Result<String>;

/// Runs an `export` command: prints the export to `out`, or with
/// `--watch` keeps a file up to date until SIGTERM.
///
/// # Errors
///
/// When the config, a file it names or the state cannot be read or does not
/// verify, when this host has no export of the kind asked, or when the
/// watched file cannot be written.
pub fn run(command: ExportCommand, out: &mut impl Write) -> Result<()> {
    let (source, make): (&Source, Box<MakeExport>) = match &command {
        ExportCommand::Tendermint(args) => {
            let options = TendermintOptions {
                own_sentries: args.own_sentries,
            };
            (
                &args.source,
                Box::new(move |view| Ok(tendermint(view, options)?)),
            )
        }
        ExportCommand::Nodeos(args) => (&args.source, Box::new(|view| Ok(nodeos(view)))),
    };
    let render = || -> Result<Rendered> {
        let (config, inputs) = read_config(&source.config)?;
        let mesh = read_mesh(&config, clock::now()?)?;
        if let Some(error) = mesh.local_error() {
            // The export is then empty of peers, as the daemon's peers are.
            tracing::warn!("{error}");
        }
        Ok(Rendered {
            text: make(&ChainView::of_mesh(&mesh))?,
            inputs,
        })
    };
    match &source.watch {
        Some(path) => watch::watch(path, source.interval, render),
        None => out
            .write_all(render()?.text.as_bytes())
            .context("cannot write to standard output"),
    }
}

/// The config at `path`, and the files an export made from it reads: the
/// config, this host's card, the known directory, the state directory.
fn read_config(path: &Path) -> Result<(Config, Vec<PathBuf>)> {
    let config = config::load(path).map_err(|error| anyhow!("{error}"))?;
    let mesh = config
        .mesh
        .as_ref()
        .ok_or_else(|| anyhow!("{} has no mesh ([mesh] and [trust])", path.display()))?;
    let mut inputs = vec![
        path.to_path_buf(),
        mesh.card_file.clone(),
        mesh.state_dir.clone(),
    ];
    inputs.extend(mesh.known_dir.clone());
    Ok((config, inputs))
}

#[cfg(test)]
pub(crate) mod tests {
    //! Fixtures: hosts of two operators, with fixed keys and addresses.

    use sentrymesh_mesh::{HostCard, OperatorSecret, Role};
    use sentrymesh_types::{PublicKey, UnixTime};

    use super::ChainView;

    /// This host's operator.
    pub(crate) const OWN: u8 = 1;
    /// Another operator.
    pub(crate) const OTHER: u8 = 2;

    /// Host number `n` of operator `operator`: overlay address
    /// `198.19.0.N`, endpoint `198.18.0.N:51820` unless hidden, chain p2p
    /// `nodeN@26656`.
    pub(crate) fn host(operator: u8, name: &str, role: Role, n: u8) -> HostCard {
        HostCard {
            operator: OperatorSecret::from_seed([operator; 32]).operator_id(),
            name: name.to_owned(),
            role,
            wg_public_key: PublicKey::from_bytes([n; 32]),
            addresses: vec![format!("198.19.0.{n}/32").parse().unwrap()],
            endpoints: if role.is_hidden() {
                Vec::new()
            } else {
                vec![format!("198.18.0.{n}:51820").parse().unwrap()]
            },
            allowed_ips: Vec::new(),
            not_before: UnixTime(0),
            not_after: UnixTime(u64::MAX),
            serial: 1,
            chain_p2p: Some(format!("node{n}@26656").parse().unwrap()),
        }
    }

    /// The view of `local` with `peers`.
    pub(crate) fn view(local: HostCard, peers: Vec<HostCard>) -> ChainView {
        ChainView::new(local, peers)
    }
}
