//! The ping matrix: from each host's namespace, an ICMP echo request to
//! every other host's overlay address, sent and read in this process
//! (`sentrymesh_netns::echo`: a raw socket per namespace) rather than by a
//! `ping` process each, so the 39,800 pings of a 200-host testnet take
//! seconds.
//!
//! A ping the roles require gets three tries (waiting a second for the
//! replies of each); one they forbid gets one. Most forbidden ones fail at
//! once: the host has no route to the address. A stop request (Ctrl-C)
//! ends the matrix early, with the pings done so far.

use std::net::Ipv4Addr;
use std::time::Duration;

use sentrymesh_netns::echo::{Pinger, ping_pairs};

use crate::plan::{PlannedHost, must_peer};
use crate::report::Ping;

/// Tries of a ping the roles require.
const TRIES: usize = 3;
/// How long the replies of one try are waited for.
const WAIT: Duration = Duration::from_secs(1);

/// Pings between every two `hosts`, from `pingers` (one in each host's
/// namespace, in the same order); which must be answered is
/// [`must_peer`]'s. In row order: by source, then destination.
pub(super) fn ping_matrix(pingers: &[Pinger], hosts: &[PlannedHost]) -> Vec<Ping> {
    let overlays: Vec<Ipv4Addr> = hosts.iter().map(|host| host.overlay).collect();
    let pairs: Vec<(usize, usize)> = (0..hosts.len())
        .flat_map(|from| (0..hosts.len()).map(move |to| (from, to)))
        .filter(|(from, to)| from != to)
        .collect();
    let (required, forbidden): (Vec<usize>, Vec<usize>) = (0..pairs.len()).partition(|&index| {
        let (from, to) = pairs[index];
        must_peer(&hosts[from], &hosts[to])
    });
    let mut replied = vec![false; pairs.len()];
    for (indices, tries) in [(required, TRIES), (forbidden, 1)] {
        let subset: Vec<(usize, usize)> = indices.iter().map(|&index| pairs[index]).collect();
        let answered = ping_pairs(pingers, &overlays, &subset, tries, WAIT);
        for (index, answered) in indices.into_iter().zip(answered) {
            replied[index] = answered;
        }
    }
    pairs
        .into_iter()
        .zip(replied)
        .map(|((from, to), replied)| Ping {
            from: hosts[from].name.clone(),
            to: hosts[to].name.clone(),
            expected: must_peer(&hosts[from], &hosts[to]),
            replied,
        })
        .collect()
}
