//! Checks every value of a [`RawConfig`] and the relations between peers,
//! reporting each problem at its value; yields a [`Draft`], the valid
//! config before its key files are read.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::{NonZeroU16, NonZeroU32};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sentrymesh_types::{InterfaceAddress, IpNet, PublicKey};
use toml::Spanned;

use super::DEFAULT_MTU;
use super::MeshSettings;
use super::error::{Diagnostic, Location, Source};
use super::raw::{RawConfig, RawInterface, RawPeer};
use super::values::InterfaceName;

mod aliases;
mod firewall;
mod mesh;

/// The most peers `[ready] min_trusted_peers` may wait for.
const MAX_READY_PEERS: i64 = 4096;
/// The accepted MTUs: IPv4's minimum to a common jumbo frame.
const MTU_RANGE: RangeInclusive<i64> = 576..=9000;
/// The least MTU of a link that carries IPv6 (RFC 8200).
const IPV6_MIN_MTU: u16 = 1280;

/// A config whose values are all valid, with its key files still unread.
#[derive(Debug)]
pub(super) struct Draft {
    pub(super) interface: DraftInterface,
    pub(super) peers: Vec<DraftPeer>,
    pub(super) min_trusted_peers: usize,
    pub(super) metrics: Option<SocketAddr>,
    pub(super) mesh: Option<MeshSettings>,
}

/// A valid `[interface]`.
#[derive(Debug)]
pub(super) struct DraftInterface {
    pub(super) name: InterfaceName,
    pub(super) private_key_file: KeyFileRef,
    pub(super) listen_port: Option<NonZeroU16>,
    pub(super) addresses: Vec<InterfaceAddress>,
    pub(super) mtu: u16,
    pub(super) fwmark: Option<NonZeroU32>,
}

/// A valid `[[peer]]`.
#[derive(Debug)]
pub(super) struct DraftPeer {
    pub(super) public_key: PublicKey,
    pub(super) public_key_at: Location,
    pub(super) endpoint: Option<SocketAddr>,
    pub(super) allowed_ips: Vec<IpNet>,
    pub(super) preshared_key_file: Option<KeyFileRef>,
    pub(super) persistent_keepalive: Option<Duration>,
}

/// A key file named by the config: its path, resolved against the config's
/// directory, and where the config names it.
#[derive(Debug)]
pub(super) struct KeyFileRef {
    pub(super) path: PathBuf,
    pub(super) at: Location,
}

/// Checks `raw`, the content of `source`.
pub(super) fn validate(raw: &RawConfig, source: Source<'_>) -> Result<Draft, Vec<Diagnostic>> {
    let mut checker = Checker {
        source,
        diagnostics: Vec::new(),
    };
    let interface = checker.interface(raw.interface.get_ref());
    let peers: Vec<Option<DraftPeer>> = raw
        .peers
        .iter()
        .enumerate()
        .map(|(i, peer)| checker.peer(&format!("peer[{i}]"), peer.get_ref()))
        .collect();
    checker.unique_public_keys(raw, &peers);
    checker.disjoint_allowed_ips(raw, &peers);
    let min_trusted_peers = match raw
        .ready
        .as_ref()
        .and_then(|ready| ready.min_trusted_peers.as_ref())
    {
        None => Some(0),
        Some(value) => checker
            .integer(
                value,
                "ready.min_trusted_peers",
                0..=MAX_READY_PEERS,
                "a number of peers",
            )
            .and_then(|value| usize::try_from(value).ok()),
    };

    let metrics = match &raw.metrics {
        None => Some(None),
        Some(metrics) => checker
            .metrics_listen(
                &metrics.listen,
                metrics
                    .allow_public
                    .as_ref()
                    .is_some_and(|allow| *allow.get_ref()),
            )
            .map(Some),
    };
    let mesh = checker.mesh(raw);

    let peers: Option<Vec<DraftPeer>> = peers.into_iter().collect();
    match (interface, peers, min_trusted_peers, metrics, mesh) {
        (Some(interface), Some(peers), Some(min_trusted_peers), Some(metrics), Some(mesh))
            if checker.diagnostics.is_empty() =>
        {
            Ok(Draft {
                interface,
                peers,
                min_trusted_peers,
                metrics,
                mesh,
            })
        }
        _ => Err(checker.diagnostics),
    }
}

/// The source and the problems found so far. Each check returns `None`
/// exactly when it has reported a problem.
struct Checker<'a> {
    source: Source<'a>,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn report(&mut self, span: Range<usize>, key: &str, message: String) {
        let location = self.source.locate(span.start, key);
        self.diagnostics.push(Diagnostic { location, message });
    }

    fn interface(&mut self, raw: &RawInterface) -> Option<DraftInterface> {
        let name = raw.name.get_ref().parse::<InterfaceName>();
        let name = name
            .map_err(|error| {
                let message = format!("{:?}: {error}", raw.name.get_ref());
                self.report(raw.name.span(), "interface.name", message);
            })
            .ok();
        let private_key_file = self.key_file(&raw.private_key_file, "interface.private_key_file");
        let listen_port = match &raw.listen_port {
            None => Some(None),
            Some(port) => self
                .integer(port, "interface.listen_port", 0..=65535, "a UDP port")
                .map(|port| u16::try_from(port).ok().and_then(NonZeroU16::new)),
        };
        let addresses = self.addresses(raw);
        let mtu = match &raw.mtu {
            None => Some(DEFAULT_MTU),
            Some(mtu) => self
                .integer(mtu, "interface.mtu", MTU_RANGE, "an MTU")
                .and_then(|value| u16::try_from(value).ok()),
        };
        if let (Some(mtu @ ..IPV6_MIN_MTU), Some(raw_mtu), Some(addresses)) =
            (mtu, &raw.mtu, &addresses)
        {
            if let Some(v6) = addresses.iter().find(|a| a.addr().is_ipv6()) {
                let message = format!(
                    "{mtu} is too small for IPv6 (at least {IPV6_MIN_MTU}), and {v6} is an \
                     IPv6 address"
                );
                self.report(raw_mtu.span(), "interface.mtu", message);
            }
        }
        let fwmark = match &raw.fwmark {
            None => Some(None),
            Some(mark) => self
                .integer(
                    mark,
                    "interface.fwmark",
                    0..=u32::MAX.into(),
                    "a firewall mark",
                )
                .map(|mark| u32::try_from(mark).ok().and_then(NonZeroU32::new)),
        };
        Some(DraftInterface {
            name: name?,
            private_key_file: private_key_file?,
            listen_port: listen_port?,
            addresses: addresses?,
            mtu: mtu?,
            fwmark: fwmark?,
        })
    }

    fn addresses(&mut self, raw: &RawInterface) -> Option<Vec<InterfaceAddress>> {
        let key = "interface.addresses";
        if raw.addresses.get_ref().is_empty() {
            let message = "lists no address; the interface needs at least one".to_owned();
            self.report(raw.addresses.span(), key, message);
            return None;
        }
        let mut seen = BTreeMap::new();
        let mut addresses = Some(Vec::new());
        for (i, text) in raw.addresses.get_ref().iter().enumerate() {
            let key = format!("{key}[{i}]");
            let address = match text.get_ref().parse::<InterfaceAddress>() {
                Err(_) => Err(format!(
                    "{:?} is not an interface address (ADDRESS/PREFIX, e.g. 198.19.1.2/32)",
                    text.get_ref()
                )),
                Ok(address) => check_interface_address(address),
            };
            let address = address.and_then(|address| {
                match seen.insert(address.addr(), self.source.line(text.span().start)) {
                    Some(line) => Err(format!("{address} is listed twice (also on line {line})")),
                    None => Ok(address),
                }
            });
            match address {
                Ok(address) => {
                    if let Some(list) = &mut addresses {
                        list.push(address);
                    }
                }
                Err(message) => {
                    self.report(text.span(), &key, message);
                    addresses = None;
                }
            }
        }
        addresses
    }

    fn peer(&mut self, prefix: &str, raw: &RawPeer) -> Option<DraftPeer> {
        let public_key = raw.public_key.get_ref().parse::<PublicKey>();
        let public_key = public_key
            .map_err(|_| {
                // The text is not repeated: a private key pasted here by
                // mistake must not reach a log.
                let message = "not a WireGuard public key (44 characters of base64, as \
                               `wg pubkey` prints it)"
                    .to_owned();
                self.report(
                    raw.public_key.span(),
                    &format!("{prefix}.public_key"),
                    message,
                );
            })
            .ok();
        let public_key_at = self
            .source
            .locate(raw.public_key.span().start, format!("{prefix}.public_key"));
        let endpoint = match &raw.endpoint {
            None => Some(None),
            Some(text) => self.endpoint(text, &format!("{prefix}.endpoint")).map(Some),
        };
        let allowed_ips = self.allowed_ips(prefix, raw);
        let preshared_key_file = match &raw.preshared_key_file {
            None => Some(None),
            Some(path) => self
                .key_file(path, &format!("{prefix}.preshared_key_file"))
                .map(Some),
        };
        let persistent_keepalive = match &raw.persistent_keepalive {
            None => Some(None),
            Some(seconds) if *seconds.get_ref() == 0 => {
                let message = "0 is not an interval; leave the key out to send no keepalives";
                let key = format!("{prefix}.persistent_keepalive");
                self.report(seconds.span(), &key, message.to_owned());
                None
            }
            Some(seconds) => self
                .integer(
                    seconds,
                    &format!("{prefix}.persistent_keepalive"),
                    1..=65535,
                    "a keepalive interval in seconds",
                )
                .map(|seconds| Some(Duration::from_secs(seconds.unsigned_abs()))),
        };
        Some(DraftPeer {
            public_key: public_key?,
            public_key_at,
            endpoint: endpoint?,
            allowed_ips: allowed_ips?,
            preshared_key_file: preshared_key_file?,
            persistent_keepalive: persistent_keepalive?,
        })
    }

    /// An endpoint: an IP address and a port, never a name (see the module
    /// documentation of `config`).
    fn endpoint(&mut self, text: &Spanned<String>, key: &str) -> Option<SocketAddr> {
        let message = match text.get_ref().parse::<SocketAddr>() {
            Err(_) => format!(
                "{:?} is not an IP address and port (198.18.0.2:51820 or [2001:db8::2]:51820); \
                 host names are not resolved",
                text.get_ref()
            ),
            Ok(addr) if addr.port() == 0 => format!("{addr}: port 0 cannot be sent to"),
            Ok(addr) if addr.ip().is_unspecified() || addr.ip().is_multicast() => {
                format!("{addr}: {} is no peer's address", addr.ip())
            }
            Ok(addr) => return Some(addr),
        };
        self.report(text.span(), key, message);
        None
    }

    /// Where the metrics are served: an IP address and a port, on loopback
    /// unless `allow_public`. The metrics name every peer's key, traffic and
    /// handshake times and the mesh's operators: served on an address
    /// others reach, they tell anyone (a rival operator on the overlay, a
    /// scanner on the underlay) who this host talks to.
    fn metrics_listen(&mut self, text: &Spanned<String>, allow_public: bool) -> Option<SocketAddr> {
        let message = match text.get_ref().parse::<SocketAddr>() {
            Err(_) => format!(
                "{:?} is not an IP address and port to listen on (127.0.0.1:9586 or [::1]:9586)",
                text.get_ref()
            ),
            Ok(addr) if addr.port() == 0 => {
                format!("{addr}: give a port, so that Prometheus knows where to look")
            }
            Ok(addr) if addr.ip().is_multicast() => {
                format!("{addr}: {} is a multicast address", addr.ip())
            }
            Ok(addr) if !addr.ip().is_loopback() && !allow_public => format!(
                "{addr}: {} is not a loopback address, and the metrics name every peer and \
                 operator this host knows; listen on 127.0.0.1 or [::1], or set \
                 `allow_public = true` where only your monitoring can reach it",
                addr.ip()
            ),
            Ok(addr) => return Some(addr),
        };
        self.report(text.span(), "metrics.listen", message);
        None
    }

    fn allowed_ips(&mut self, prefix: &str, raw: &RawPeer) -> Option<Vec<IpNet>> {
        let key = format!("{prefix}.allowed_ips");
        if raw.allowed_ips.get_ref().is_empty() {
            let message = "lists no network; the peer could send nothing through the tunnel, \
                           list at least one (its overlay address as a /32 or /128)"
                .to_owned();
            self.report(raw.allowed_ips.span(), &key, message);
            return None;
        }
        let mut networks = Some(Vec::new());
        for (i, text) in raw.allowed_ips.get_ref().iter().enumerate() {
            let net = parse_allowed_ip(text.get_ref());
            match net {
                Ok(net) => {
                    if let Some(list) = &mut networks {
                        list.push(net);
                    }
                }
                Err(message) => {
                    self.report(text.span(), &format!("{key}[{i}]"), message);
                    networks = None;
                }
            }
        }
        networks
    }

    /// A path to a key file, resolved against the config file's directory.
    fn key_file(&mut self, text: &Spanned<String>, key: &str) -> Option<KeyFileRef> {
        if text.get_ref().is_empty() {
            self.report(text.span(), key, "an empty path names no file".to_owned());
            return None;
        }
        let directory = self.source.file.parent().unwrap_or(Path::new(""));
        Some(KeyFileRef {
            path: directory.join(text.get_ref()),
            at: self.source.locate(text.span().start, key),
        })
    }

    /// An integer in `range`; `what` names it in the message.
    fn integer(
        &mut self,
        value: &Spanned<i64>,
        key: &str,
        range: RangeInclusive<i64>,
        what: &str,
    ) -> Option<i64> {
        let number = *value.get_ref();
        if range.contains(&number) {
            return Some(number);
        }
        let message = format!(
            "{number} is not {what}: expected {}..={}",
            range.start(),
            range.end()
        );
        self.report(value.span(), key, message);
        None
    }

    /// Refuses a public key that two peers share.
    fn unique_public_keys(&mut self, raw: &RawConfig, peers: &[Option<DraftPeer>]) {
        let mut first = BTreeMap::new();
        for (i, peer) in peers.iter().enumerate() {
            let Some(peer) = peer else { continue };
            let j = match first.entry(peer.public_key) {
                Entry::Vacant(entry) => {
                    entry.insert(i);
                    continue;
                }
                Entry::Occupied(entry) => *entry.get(),
            };
            let line = self.source.line(raw.peers[j].span().start);
            let message =
                format!("the same key as peer[{j}] (line {line}); each peer is listed once");
            let span = raw.peers[i].get_ref().public_key.span();
            self.report(span, &format!("peer[{i}].public_key"), message);
        }
    }

    /// Refuses allowed IPs that overlap between two peers: WireGuard routes
    /// each address to one peer and would silently take it from the other.
    fn disjoint_allowed_ips(&mut self, raw: &RawConfig, peers: &[Option<DraftPeer>]) {
        let mut earlier: Vec<(usize, IpNet)> = Vec::new();
        for (i, peer) in peers.iter().enumerate() {
            let Some(peer) = peer else { continue };
            for (k, net) in peer.allowed_ips.iter().enumerate() {
                let clash = earlier
                    .iter()
                    .find(|(j, other)| *j != i && overlap(net, other));
                if let Some(&(j, other)) = clash {
                    let line = self.source.line(raw.peers[j].span().start);
                    let message = format!(
                        "{net} overlaps {other} of peer[{j}] (line {line}); WireGuard would \
                         route the common addresses to only one of the two peers"
                    );
                    let span = raw.peers[i].get_ref().allowed_ips.get_ref()[k].span();
                    self.report(span, &format!("peer[{i}].allowed_ips[{k}]"), message);
                }
            }
            earlier.extend(peer.allowed_ips.iter().map(|net| (i, *net)));
        }
    }
}

/// Refuses addresses no interface can have.
fn check_interface_address(address: InterfaceAddress) -> Result<InterfaceAddress, String> {
    let addr = address.addr();
    if addr.is_unspecified() || addr.is_multicast() {
        return Err(format!("{addr} cannot be an interface's address"));
    }
    if address.is_network_or_broadcast() {
        let network = address.network();
        // The host bits of the network's address are zero: no overflow.
        let first_host = match network.addr() {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) + 1)),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) + 1)),
        };
        let which = if addr == network.addr() {
            "the address of the network"
        } else {
            "the broadcast address of"
        };
        return Err(format!(
            "{address} is {which} {network}, not a host's; an interface address keeps \
             its host bits, e.g. {first_host}/{}",
            address.prefix_len()
        ));
    }
    Ok(address)
}

/// An allowed-IPs network, refused with host bits set: `198.18.0.1/24` is
/// more likely a typo for `/32` than a wish for the whole `/24`.
fn parse_allowed_ip(text: &str) -> Result<IpNet, String> {
    let Ok(address) = text.parse::<InterfaceAddress>() else {
        return Err(format!(
            "{text:?} is not an IP network (ADDRESS/PREFIX, e.g. 198.19.1.1/32)"
        ));
    };
    let network = address.network();
    if network.addr() != address.addr() {
        let host_len = if address.addr().is_ipv4() { 32 } else { 128 };
        return Err(format!(
            "{text:?} has host bits set: write {network} for the network, or {}/{host_len} \
             for the one host",
            address.addr()
        ));
    }
    Ok(network)
}

/// Whether two networks share an address: one holds the other's start.
fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b.addr()) || b.contains(a.addr())
}
