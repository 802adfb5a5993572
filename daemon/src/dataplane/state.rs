//! What a running interface reports of itself: [`DeviceState`] for every
//! part of the daemon, and [`UapiState`], with the secrets, for the UAPI
//! socket alone.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use sentrymesh_tunnel::PresharedKey;
use sentrymesh_types::{IpNet, PrivateKey, PublicKey};

/// A snapshot of an interface, with no secret in it: no private key and no
/// preshared key. This is what the native mode, the mesh member and metrics
/// get (see [`DeviceHandle::state`](crate::dataplane::handle::DeviceHandle::state)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceState {
    /// The UDP port the device listens on.
    pub listen_port: u16,
    /// The fwmark of the device's socket, if it has one.
    pub fwmark: Option<u32>,
    /// The peers, ordered by public key.
    pub peers: Vec<PeerState>,
}

/// A snapshot of one peer, with no secret in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    /// The peer's public key.
    pub public_key: PublicKey,
    /// The peer's current address. An IPv4 address is a `SocketAddr::V4`,
    /// not `::ffff:a.b.c.d`, as wireguard-go reports it.
    pub endpoint: Option<SocketAddr>,
    /// When the last handshake completed, since the Unix epoch; `None` if
    /// none has.
    pub last_handshake: Option<Duration>,
    /// Bytes received from the peer.
    pub rx_bytes: u64,
    /// Bytes sent to the peer.
    pub tx_bytes: u64,
    /// The persistent keepalive interval in seconds; `None` when off.
    pub persistent_keepalive: Option<u16>,
    /// The networks routed to the peer.
    pub allowed_ips: Vec<IpNet>,
}

/// What answers a UAPI `get=1`: the state and the secrets `wg show` and
/// `wg showconf` print. Only the UAPI socket asks for it
/// ([`UapiHandle::uapi_state`](crate::dataplane::handle::UapiHandle::uapi_state)):
/// the daemon's own tasks have no use for the keys, so they never hold a
/// copy that a log line or a `Debug` could show.
#[derive(Debug, Clone, Default)]
pub struct UapiState {
    /// The interface's private key, if one is set.
    pub private_key: Option<PrivateKey>,
    /// Each peer's preshared key, for the peers that have one.
    pub preshared_keys: BTreeMap<PublicKey, PresharedKey>,
    /// The rest of the state.
    pub state: DeviceState,
}
