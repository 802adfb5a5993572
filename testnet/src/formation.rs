//! Whether the mesh formed, worked out from what the testnet sees: the
//! criterion of [`Testnet::wait_ready`](crate::Testnet::wait_ready).
//!
//! A pair of hosts the roles require to peer (a *peering*) has formed when
//! both ends list the other as a peer with a live session (a handshake
//! less than 180 s ago) and a ping over the overlay got its reply both
//! ways; the mesh has formed when every peering has, and every daemon
//! reported ready. What a user relies on: every host has the peers it
//! should, and traffic flows between any two hosts that should reach each
//! other. (Whether anything else is reachable, and whether the hidden
//! hosts stayed hidden, the report checks afterwards.)
//!
//! Pure bookkeeping: the testnet feeds it the sessions it read and the
//! pings it sent, and asks what is left to ask about.

use std::collections::{BTreeMap, BTreeSet};

use crate::progress::Stage;

/// What is known so far about each peering.
#[derive(Debug)]
pub(super) struct Formation {
    /// Each host's index by name.
    index: BTreeMap<String, usize>,
    /// The peerings: (lower index, higher).
    peerings: Vec<(usize, usize)>,
    /// Each host's peers that the roles require.
    expected: Vec<BTreeSet<usize>>,
    /// Each host's required peers it last listed with a live session.
    live: Vec<BTreeSet<usize>>,
    /// The (from, to) pings answered.
    answered: BTreeSet<(usize, usize)>,
}

impl Formation {
    /// Nothing known yet about `peerings` between the hosts named `names`
    /// (by index).
    pub(super) fn new(names: &[String], peerings: &[(usize, usize)]) -> Self {
        let mut expected = vec![BTreeSet::new(); names.len()];
        for &(a, b) in peerings {
            expected[a].insert(b);
            expected[b].insert(a);
        }
        Self {
            index: names
                .iter()
                .enumerate()
                .map(|(index, name)| (name.clone(), index))
                .collect(),
            peerings: peerings.to_vec(),
            live: vec![BTreeSet::new(); names.len()],
            expected,
            answered: BTreeSet::new(),
        }
    }

    /// Whether host `host` last listed every required peer with a live
    /// session (it need not be asked again).
    pub(super) fn has_all_sessions(&self, host: usize) -> bool {
        self.live[host] == self.expected[host]
    }

    /// Host `host` lists the peers named `live` with a live session now.
    pub(super) fn handle_sessions(&mut self, host: usize, live: &BTreeSet<String>) {
        self.live[host] = live
            .iter()
            .filter_map(|name| self.index.get(name).copied())
            .filter(|peer| self.expected[host].contains(peer))
            .collect();
    }

    /// The (from, to) pings of the peerings not answered yet, both ways.
    pub(super) fn unanswered_pings(&self) -> Vec<(usize, usize)> {
        self.peerings
            .iter()
            .flat_map(|&(a, b)| [(a, b), (b, a)])
            .filter(|ping| !self.answered.contains(ping))
            .collect()
    }

    /// Of `pings`, those whose `answered` is true got their reply.
    pub(super) fn handle_pings(&mut self, pings: &[(usize, usize)], answered: &[bool]) {
        for (&ping, _) in pings
            .iter()
            .zip(answered)
            .filter(|(_, answered)| **answered)
        {
            self.answered.insert(ping);
        }
    }

    /// How far it got, with `ready` each host's readiness.
    pub(super) fn stage(&self, ready: &[bool]) -> Stage {
        let sessions = self
            .peerings
            .iter()
            .filter(|&&(a, b)| self.live[a].contains(&b) && self.live[b].contains(&a))
            .count();
        let pings = self
            .peerings
            .iter()
            .filter(|&&(a, b)| self.answered.contains(&(a, b)) && self.answered.contains(&(b, a)))
            .count();
        Stage::Forming {
            sessions,
            pings,
            peerings: self.peerings.len(),
            ready: ready.iter().filter(|ready| **ready).count(),
            hosts: ready.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    /// A producer P with sentries S1 and S2, who peer with each other.
    fn formation() -> Formation {
        let hosts = ["P", "S1", "S2"].map(str::to_owned);
        Formation::new(&hosts, &[(0, 1), (0, 2), (1, 2)])
    }

    #[test]
    fn a_peering_has_formed_with_sessions_at_both_ends_and_pings_both_ways() {
        let mut formation = formation();
        assert_eq!(
            formation.stage(&[false; 3]),
            Stage::Forming {
                sessions: 0,
                pings: 0,
                peerings: 3,
                ready: 0,
                hosts: 3
            }
        );
        assert_eq!(formation.unanswered_pings().len(), 6);
        // One end's session is not the peering's.
        formation.handle_sessions(0, &names(&["S1", "S2"]));
        assert!(formation.has_all_sessions(0));
        assert!(!formation.has_all_sessions(1));
        formation.handle_sessions(1, &names(&["P"]));
        // A ping one way is not the peering's either.
        formation.handle_pings(&[(0, 1), (1, 0), (0, 2)], &[true, true, true]);
        assert_eq!(formation.unanswered_pings(), [(2, 0), (1, 2), (2, 1)]);
        let stage = formation.stage(&[true, true, false]);
        assert_eq!(
            stage,
            Stage::Forming {
                sessions: 1,
                pings: 1,
                peerings: 3,
                ready: 2,
                hosts: 3
            }
        );
        assert!(!stage.is_complete());

        formation.handle_sessions(1, &names(&["P", "S2"]));
        formation.handle_sessions(2, &names(&["P", "S1"]));
        formation.handle_pings(&formation.unanswered_pings(), &[true, false, true]);
        assert_eq!(formation.unanswered_pings(), [(1, 2)]);
        formation.handle_pings(&[(1, 2)], &[true]);
        assert!(formation.unanswered_pings().is_empty());
        assert!(!formation.stage(&[true, true, false]).is_complete());
        assert!(formation.stage(&[true; 3]).is_complete());
    }

    #[test]
    fn peers_the_roles_do_not_require_and_lost_sessions_do_not_count() {
        let mut formation = formation();
        formation.handle_sessions(0, &names(&["S1", "S2", "someone-else", "S9"]));
        assert!(formation.has_all_sessions(0));
        // A session that lapsed since.
        formation.handle_sessions(0, &names(&["S2"]));
        assert!(!formation.has_all_sessions(0));
        formation.handle_sessions(1, &names(&["P", "S2"]));
        formation.handle_sessions(2, &names(&["P", "S1"]));
        let Stage::Forming { sessions, .. } = formation.stage(&[true; 3]) else {
            unreachable!()
        };
        assert_eq!(sessions, 2);
    }
}
