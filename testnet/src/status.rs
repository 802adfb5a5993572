//! What a running daemon says about its peers, read over its UAPI socket
//! (`/var/run/wireguard/IFNAME.sock`, shared by every namespace) as `wg
//! show` reads it: each peer's key, endpoint, last handshake, traffic and
//! allowed IPs.
//!
//! The reply is read by `sentrymesh::control::client::peers`, which keeps
//! nothing but the peers' public data, as the daemon's own
//! [`PeerState`]s.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, anyhow};
use sentrymesh::control::client;
use sentrymesh::dataplane::PeerState;

/// How many daemons [`peers_of`] asks at once.
const PARALLEL: usize = 8;

/// The peers of the daemon serving interface `ifname`.
///
/// # Errors
///
/// When no daemon answers on the socket, or its reply is not a `get` reply.
pub(super) fn peers(ifname: &str) -> Result<Vec<PeerState>> {
    client::peers(&client::socket_path(ifname))
}

/// The peers of the daemons serving `ifnames`, [`PARALLEL`] asked at once
/// (a daemon busy with its mesh may take a while to answer): each as
/// [`peers`] returns it, in the order of `ifnames`.
pub(super) fn peers_of(ifnames: &[&str]) -> Vec<Result<Vec<PeerState>>> {
    let next = AtomicUsize::new(0);
    let answers: Vec<Mutex<Option<Result<Vec<PeerState>>>>> =
        ifnames.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL.min(ifnames.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(ifname) = ifnames.get(index) else {
                        return;
                    };
                    let answer = peers(ifname);
                    if let Ok(mut slot) = answers[index].lock() {
                        *slot = Some(answer);
                    }
                }
            });
        }
    });
    answers
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(anyhow!("the thread asking the daemon failed")))
        })
        .collect()
}
