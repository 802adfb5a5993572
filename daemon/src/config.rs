//! The native config of `sentrymesh up -c FILE.toml`: read, parsed and
//! checked completely — every value, the relations between peers and the key
//! files — before anything touches the system. This module does not create
//! devices, assign addresses or resolve names.
//!
//! ```toml
//! [interface]
//! name = "sm0"                             # the TUN device: 1..=15 of [A-Za-z0-9_.-]
//! private_key_file = "sm0.key"             # relative: next to this file; mode 0600
//! listen_port = 51820                      # optional; 0 or absent: any free port
//! addresses = ["198.18.0.1/24"]            # this host on its subnet, host bits kept
//! mtu = 1420                               # optional, 576..=9000 (>= 1280 with IPv6)
//! fwmark = 0                               # optional; 0 or absent: no mark
//!
//! [[peer]]
//! public_key = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
//! endpoint = "198.18.0.2:51820"            # optional: IP:port or [IPv6]:port
//! allowed_ips = ["198.18.0.2/32"]          # networks routed to this peer
//! preshared_key_file = "sm0-peer1.psk"     # optional; mode 0600
//! persistent_keepalive = 25                # optional, seconds, 1..=65535
//!
//! [ready]                                  # optional
//! min_trusted_peers = 2                    # READY=1 once 2 peers have a live session
//!
//! [metrics]                                # optional
//! listen = "127.0.0.1:9586"                # Prometheus text format at /metrics
//! allow_public = false                     # optional: true to listen off loopback
//! ```
//!
//! A mesh member has no `[[peer]]` sections: its peers come from the cards
//! of the mesh, as its roles and trust allow.
//!
//! ```toml
//! [mesh]
//! card_file = "sentry-1.card"              # this host's card, signed by its operator
//! known_dir = "known"                      # optional: *.card, *.vouch, *.revocation to start from
//! state_dir = "/var/lib/sentrymesh/sm0"    # what gossip taught this host, kept across restarts
//! gossip_port = 51900                      # optional: gossip with peers, through the tunnel
//! introduction_port = 51901                # optional: new hosts introduce themselves (underlay)
//!
//! [trust]
//! overlay = "198.19.0.0/16"                # the mesh's overlay: nothing outside it is routed in
//! own_overlay = "198.19.1.0/24"            # this host's operator's range, inside the overlay
//! operators = [                            # operators trusted directly, each with its range
//!     { id = "Qm9i...=", overlay = "198.19.2.0/24" },
//! ]
//! vouch_threshold = 2                      # vouches from them, naming one range, admit another
//!
//! [firewall]                               # optional: the defaults hold without it
//! open_to_own = true                       # the own operator's hosts reach everything
//! conntrack_max = 32768                    # flows tracked, at most
//!
//! [[firewall.inbound]]                     # allow, beside the chain p2p port, gossip and echo
//! from = "operators"                       # "operators" (all others), "own", or an OPERATOR_ID
//! roles = ["sentry"]                       # optional: the peer's role; absent: any
//! proto = "tcp"                            # "tcp", "udp", "icmp" or "any" (absent: any)
//! ports = "26660-26670"                    # optional: "PORT" or "FIRST-LAST"; absent: every port
//! ```
//!
//! Every card is confined to its operator's range: one that names an
//! address or allowed IP outside it is refused, so no operator can route
//! another's traffic or anything outside the overlay. An operator admitted
//! by vouches gets the range its vouchers name (`sentrymesh trust vouch
//! --overlay`). The ranges must lie inside the overlay and not overlap,
//! and a mesh member's interface addresses must lie inside the overlay too.
//!
//! Keys are never written into the config, only the names of files holding
//! them (see [`crate::config::keyfile`]), so the config can be shared, diffed and
//! logged.
//!
//! An endpoint is an IP address, never a host name: the config is checked
//! completely before the daemon starts, and a name's lookup can fail or give
//! another answer later; at boot the resolver may not be up yet, or may only
//! be reachable through the mesh itself; and an answer from a spoofed or
//! hijacked resolver would point the peer at a host of the attacker's choice.
//! Write the address (a template or config management can fill it in).
//!
//! Overlapping allowed IPs of two peers are refused: WireGuard routes each
//! address to one peer and would silently take it from the other.
//!
//! # Errors
//!
//! Each problem is reported, one a line, as `FILE:LINE:COLUMN: KEY: MESSAGE`
//! pointing at the value at fault, e.g.
//!
//! ```text
//! sm0.toml:12:16: peer[1].allowed_ips[0]: "198.18.0.300/32" is not an IP network (ADDRESS/PREFIX, e.g. 198.19.1.1/32)
//! ```
//!
//! Peers and list items are counted from 0 in file order. Syntax errors
//! stop at the first; all problems with values are reported together.

mod error;
pub mod keyfile;
mod raw;
mod validate;
mod values;

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::num::{NonZeroU16, NonZeroU32};
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyfile::KeyFileError;
use sentrymesh_mesh::OperatorId;
use sentrymesh_tunnel::{PeerConfig, PresharedKey};
use sentrymesh_types::{InterfaceAddress, IpNet, PrivateKey, PublicKey};

use crate::dataplane::firewall::Rules;

use self::error::Source;
pub use self::error::{ConfigError, Diagnostic, Location};
use self::raw::RawConfig;
use self::validate::{Draft, KeyFileRef};
pub use self::values::{InterfaceName, InterfaceNameError, MAX_INTERFACE_NAME_LEN};

/// The MTU when the config sets none: 1500 less WireGuard's overhead over
/// IPv6 (40 IPv6 + 8 UDP + 32 WireGuard), as `wg-quick` picks.
pub const DEFAULT_MTU: u16 = 1420;

/// A valid config with its keys read: all that `up` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The local interface.
    pub interface: InterfaceSection,
    /// The peers, in file order.
    pub peers: Vec<PeerSection>,
    /// How many peers must have a live session before the daemon tells
    /// systemd it is ready (`[ready] min_trusted_peers`; 0: at once).
    pub min_trusted_peers: usize,
    /// Where `/metrics` is served (`[metrics] listen`); `None`: nowhere.
    pub metrics: Option<SocketAddr>,
    /// The mesh this host is a member of (`[mesh]` and `[trust]`), whose
    /// cards give its peers; `None`: the peers are the `[[peer]]` sections.
    pub mesh: Option<MeshSettings>,
}

/// `[mesh]` and `[trust]`: where this host's card and what it learned are
/// kept, how gossip reaches its peers, and whom it trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshSettings {
    /// This host's card, signed by its operator (`sentrymesh card issue`).
    pub card_file: PathBuf,
    /// Cards, vouches and revocations to start from (`*.card`, `*.vouch`,
    /// `*.revocation`, e.g. written by `sentrymesh card open --out-dir`).
    pub known_dir: Option<PathBuf>,
    /// Where what gossip taught this host is kept across restarts.
    pub state_dir: PathBuf,
    /// The UDP port of gossip between peers, through the tunnel.
    pub gossip_port: u16,
    /// The UDP port on which a public host hears new hosts introduce
    /// themselves over the underlay.
    pub introduction_port: u16,
    /// The mesh's overlay range (`[trust] overlay`): every route the mesh
    /// adds, and every address of the interface, lies inside it.
    pub overlay: IpNet,
    /// This host's operator's range (`[trust] own_overlay`).
    pub own_overlay: IpNet,
    /// The operators trusted directly, each with its overlay range.
    pub trusted_operators: BTreeMap<OperatorId, IpNet>,
    /// How many directly trusted operators must vouch for another one.
    pub vouch_threshold: usize,
    /// Local names for operators (`[operators]`), shown beside their ids
    /// by `sentrymesh status`.
    pub aliases: BTreeMap<OperatorId, String>,
    /// `[firewall]`: what the peers may open to this host, and this host
    /// to them (the defaults when the section is absent).
    pub firewall: Rules,
}

/// The local interface: `[interface]`.
#[derive(Debug, Clone)]
pub struct InterfaceSection {
    /// The TUN device's name.
    pub name: InterfaceName,
    /// The interface's static private key.
    pub private_key: PrivateKey,
    /// The UDP port to listen on; `None`: any free port.
    pub listen_port: Option<NonZeroU16>,
    /// The interface's addresses with their subnets; at least one.
    pub addresses: Vec<InterfaceAddress>,
    /// The TUN device's MTU.
    pub mtu: u16,
    /// The firewall mark of sent UDP packets; `None`: no mark.
    pub fwmark: Option<NonZeroU32>,
}

/// A peer: one `[[peer]]`.
#[derive(Debug, Clone)]
pub struct PeerSection {
    /// The peer's static public key; no other peer has it, and it is not
    /// the interface's own.
    pub public_key: PublicKey,
    /// Where to send handshakes until the peer is heard from.
    pub endpoint: Option<SocketAddr>,
    /// The networks routed to the peer, host bits clear, disjoint from every
    /// other peer's; at least one.
    pub allowed_ips: Vec<IpNet>,
    /// The preshared key, if the peers use one.
    pub preshared_key: Option<PresharedKey>,
    /// The interval of keepalives sent to hold NAT mappings open.
    pub persistent_keepalive: Option<Duration>,
}

impl PeerSection {
    /// The peer as the tunnel engine takes it.
    pub fn engine_config(&self) -> PeerConfig {
        PeerConfig {
            public_key: self.public_key,
            preshared_key: self.preshared_key.clone().unwrap_or_default(),
            endpoint: self.endpoint,
            persistent_keepalive: self.persistent_keepalive,
        }
    }
}

/// A config whose text is valid, with its key files not read yet.
#[derive(Debug)]
pub struct ParsedConfig {
    draft: Draft,
}

/// Reads, parses and checks the config file at `path`, then reads the key
/// files it names.
///
/// # Errors
///
/// [`ConfigError::Read`] when the file cannot be read;
/// [`ConfigError::Invalid`] with every problem found, as [`parse`] and
/// [`ParsedConfig::read_keys`] report them.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)?.read_keys()
}

/// Parses and checks the config `text`, read from `path`. Messages name
/// `path`, and relative key file paths are resolved against its directory;
/// nothing is read from the file system.
///
/// # Errors
///
/// [`ConfigError::Invalid`]: the first syntax error, missing, unknown or
/// mistyped key; or else every bad value, repeated public key and overlap of
/// allowed IPs between peers.
pub fn parse(text: &str, path: &Path) -> Result<ParsedConfig, ConfigError> {
    let source = Source { file: path, text };
    let raw: RawConfig = toml::from_str(text)
        .map_err(|error| ConfigError::Invalid(vec![source.toml_error(&error)]))?;
    let draft = validate::validate(&raw, source).map_err(sorted)?;
    Ok(ParsedConfig { draft })
}

impl ParsedConfig {
    /// Reads the key files with [`keyfile`] and checks the keys; see
    /// [`resolve_keys`](Self::resolve_keys).
    ///
    /// # Errors
    ///
    /// As [`resolve_keys`](Self::resolve_keys).
    pub fn read_keys(self) -> Result<Config, ConfigError> {
        self.resolve_keys(keyfile::read_private_key, keyfile::read_preshared_key)
    }

    /// Reads the key files with `read_private` and `read_preshared` and
    /// checks what needs the private key: that no peer has the interface's
    /// own public key (or, pasted by mistake, its private key).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] with every key file that cannot be read,
    /// located at the key naming it, and every peer with the interface's key.
    pub fn resolve_keys(
        self,
        mut read_private: impl FnMut(&Path) -> Result<PrivateKey, KeyFileError>,
        mut read_preshared: impl FnMut(&Path) -> Result<PresharedKey, KeyFileError>,
    ) -> Result<Config, ConfigError> {
        let Draft {
            interface,
            peers,
            min_trusted_peers,
            metrics,
            mesh,
        } = self.draft;
        let mut diagnostics = Vec::new();
        let private_key = read_key(
            &interface.private_key_file,
            &mut read_private,
            &mut diagnostics,
        );
        let preshared_keys: Vec<Option<Option<PresharedKey>>> = peers
            .iter()
            .map(|peer| match &peer.preshared_key_file {
                None => Some(None),
                Some(file) => read_key(file, &mut read_preshared, &mut diagnostics).map(Some),
            })
            .collect();

        if let Some(private_key) = &private_key {
            let own = private_key.public_key();
            let secret = private_key.to_bytes();
            for peer in &peers {
                let message = if peer.public_key == own {
                    "the interface's own public key (of its private_key_file); a peer is \
                     another host"
                } else if peer.public_key.as_bytes() == &*secret {
                    "this is the interface's private key, not a peer's public key: remove \
                     it, and make a new private key, since this one has been exposed"
                } else {
                    continue;
                };
                diagnostics.push(Diagnostic {
                    location: peer.public_key_at.clone(),
                    message: message.to_owned(),
                });
            }
        }

        let peers: Option<Vec<PeerSection>> = peers
            .into_iter()
            .zip(preshared_keys)
            .map(|(peer, preshared_key)| {
                Some(PeerSection {
                    public_key: peer.public_key,
                    endpoint: peer.endpoint,
                    allowed_ips: peer.allowed_ips,
                    preshared_key: preshared_key?,
                    persistent_keepalive: peer.persistent_keepalive,
                })
            })
            .collect();
        match (private_key, peers) {
            (Some(private_key), Some(peers)) if diagnostics.is_empty() => Ok(Config {
                interface: InterfaceSection {
                    name: interface.name,
                    private_key,
                    listen_port: interface.listen_port,
                    addresses: interface.addresses,
                    mtu: interface.mtu,
                    fwmark: interface.fwmark,
                },
                peers,
                min_trusted_peers,
                metrics,
                mesh,
            }),
            _ => Err(sorted(diagnostics)),
        }
    }
}

/// Reads the key `file` with `read`; a failure becomes a diagnostic at the
/// key naming the file.
fn read_key<K>(
    file: &KeyFileRef,
    read: &mut impl FnMut(&Path) -> Result<K, KeyFileError>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<K> {
    read(&file.path)
        .map_err(|error| {
            diagnostics.push(Diagnostic {
                location: file.at.clone(),
                message: error.to_string(),
            });
        })
        .ok()
}

/// The diagnostics in file order, as an error.
fn sorted(mut diagnostics: Vec<Diagnostic>) -> ConfigError {
    diagnostics.sort_by(|a, b| a.location.cmp(&b.location));
    ConfigError::Invalid(diagnostics)
}

#[cfg(test)]
mod tests;
