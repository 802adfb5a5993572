//! A change to a running interface, as every part of the daemon asks for
//! one: the native mode, the mesh member and the UAPI socket (whose `set=1`
//! text is parsed into a [`ConfigChange`]). The device checks a change as a
//! whole and applies all of it or none of it (see
//! [`Interface::check`](crate::dataplane::interface::Interface::check)).

use std::io;
use std::net::SocketAddr;

use sentrymesh_tunnel::PresharedKey;
use sentrymesh_types::{IpNet, PrivateKey, PublicKey};

use crate::dataplane::firewall::PeerPolicy;

/// A whole change to an interface, applied completely or not at all.
///
/// Applying the fields in this order gives wireguard-go's result for every
/// request `wg` sends: the private key, the listen port, the fwmark, then
/// `replace_peers`, then each peer change in order. (wireguard-go applies
/// each line as it reads it, so a bad line leaves the lines before it
/// applied; the device applies this whole or refuses it whole.)
#[derive(Debug, Clone, Default)]
pub struct ConfigChange {
    /// `Some(Some(key))` sets the key, `Some(None)` removes it (the
    /// interface then neither sends nor answers), `None` leaves it.
    pub private_key: Option<Option<PrivateKey>>,
    /// The UDP port to listen on; 0 asks for a port chosen by the system.
    pub listen_port: Option<u16>,
    /// The firewall mark of the sockets: `Some(None)` removes it.
    pub fwmark: Option<Option<u32>>,
    /// Size the firewall's connection tracker for about this many flows
    /// (the flows it tracks stay).
    pub conntrack_max: Option<usize>,
    /// Remove every peer before the changes in `peers`.
    pub replace_peers: bool,
    /// The peer changes, in order. A key may appear more than once; the
    /// changes then apply one after the other.
    pub peers: Vec<PeerChange>,
}

/// A change to one peer.
///
/// A change to the interface's own public key is ignored, as wireguard-go
/// ignores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerChange {
    /// Create the peer unless it exists (or, with
    /// [`PeerUpdate::update_only`], only if it exists), then change what the
    /// update names.
    Set(PeerUpdate),
    /// Remove the peer, with its sessions and allowed IPs.
    Remove(PublicKey),
}

impl PeerChange {
    /// The peer changed.
    pub fn public_key(&self) -> &PublicKey {
        match self {
            Self::Set(update) => &update.public_key,
            Self::Remove(public_key) => public_key,
        }
    }
}

/// What changes of a peer that stays: each `None` leaves a setting as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerUpdate {
    /// The peer.
    pub public_key: PublicKey,
    /// Change the peer only if it exists; a peer that does not is not
    /// created (the whole change is skipped).
    pub update_only: bool,
    /// The preshared key: the all-zero key ([`PresharedKey::none`]) removes
    /// it.
    pub preshared_key: Option<PresharedKey>,
    /// The peer's address.
    pub endpoint: Option<SocketAddr>,
    /// The persistent keepalive interval, in seconds; 0 turns it off.
    pub persistent_keepalive: Option<u16>,
    /// Remove the peer's allowed IPs before applying `allowed_ips`.
    pub replace_allowed_ips: bool,
    /// Allowed IPs to add or remove, in order.
    pub allowed_ips: Vec<AllowedIpChange>,
    /// The firewall's policy for the peer (a mesh peer's, from its card
    /// and the rules); a peer never given one passes everything. The flows
    /// the new policy still allows stay tracked.
    pub policy: Option<PeerPolicy>,
}

impl PeerUpdate {
    /// An update that only names the peer: applied, it creates the peer if
    /// missing.
    pub fn new(public_key: PublicKey) -> Self {
        Self {
            public_key,
            update_only: false,
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: None,
            replace_allowed_ips: false,
            allowed_ips: Vec::new(),
            policy: None,
        }
    }
}

/// One change to a peer's allowed IPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllowedIpChange {
    /// Route `NET` to the peer (taking it from any other).
    Add(IpNet),
    /// Remove `NET` from the peer, if the peer has it.
    Remove(IpNet),
}

/// Why an interface refused a [`ConfigChange`]; nothing of it was applied.
///
/// No variant names a key or an address: a refusal is logged, and the
/// peers of a hidden host are not for the log.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// A new peer's public key has low order: no handshake can work with it.
    #[error("a new peer's public key cannot be used: it has low order")]
    InvalidPeerKey,
    /// The interface has as many peers as it can hold.
    #[error("the interface has as many peers as it can hold")]
    TooManyPeers,
    /// The new listen port could not be bound.
    #[error("cannot listen on UDP port {port}")]
    PortInUse {
        /// The port asked for (0: any).
        port: u16,
        /// Why binding failed.
        #[source]
        source: io::Error,
    },
    /// The new firewall mark could not be set on the socket.
    #[error("cannot set the firewall mark")]
    Fwmark(#[source] io::Error),
    /// The device's run loop has stopped: nothing will be applied again.
    #[error(transparent)]
    DeviceGone(#[from] crate::dataplane::handle::DeviceGone),
}
