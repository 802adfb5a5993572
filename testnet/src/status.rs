//! What a running daemon says about its peers, read over its UAPI socket
//! (`/var/run/wireguard/IFNAME.sock`, shared by every namespace) as `wg
//! show` reads it: each peer's key, endpoint and last handshake.
//!
//! The reply is read by `sentrymesh::control::client::peers`, which keeps
//! nothing but the peers' public data.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use sentrymesh::control::client;
use sentrymesh_types::PublicKey;

/// One peer as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's WireGuard public key.
    pub public_key: PublicKey,
    /// Where the daemon sends to it: its card's endpoint, or for a hidden
    /// host the address its handshakes came from.
    pub endpoint: Option<SocketAddr>,
    /// When its last handshake completed, since the Unix epoch.
    pub last_handshake: Option<Duration>,
}

/// The peers of the daemon serving interface `ifname`.
///
/// # Errors
///
/// When no daemon answers on the socket, or its reply is not a `get` reply.
pub(super) fn peers(ifname: &str) -> Result<Vec<PeerStatus>> {
    let reports = client::peers(&client::socket_path(ifname))?;
    Ok(reports
        .into_iter()
        .map(|report| PeerStatus {
            public_key: report.public_key,
            endpoint: report.endpoint,
            last_handshake: report.last_handshake,
        })
        .collect())
}
