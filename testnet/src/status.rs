//! What a running daemon says about its peers, read over its UAPI socket
//! (`/var/run/wireguard/IFNAME.sock`, shared by every namespace) as `wg
//! show` reads it: each peer's key, endpoint, last handshake, traffic and
//! allowed IPs.
//!
//! The reply is read by `sentrymesh::control::client::peers`, which keeps
//! nothing but the peers' public data, as the daemon's own
//! [`PeerState`]s.

use anyhow::Result;
use sentrymesh::control::client;
use sentrymesh::dataplane::PeerState;

/// The peers of the daemon serving interface `ifname`.
///
/// # Errors
///
/// When no daemon answers on the socket, or its reply is not a `get` reply.
pub(super) fn peers(ifname: &str) -> Result<Vec<PeerState>> {
    client::peers(&client::socket_path(ifname))
}
