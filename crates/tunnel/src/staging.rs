//! Packets waiting for a session, for every peer of an interface, within
//! one budget.
//!
//! A packet sent to a peer without a usable session is kept until the
//! handshake it starts completes. The kernel keeps up to 128 a peer, which
//! with many peers that never answer (the hosts of a rival's cards, hosts
//! that are down) is most of a daemon's memory. Here the packets of all
//! peers share one budget, [`BUDGET_BYTES`], and each peer keeps at most
//! [`MAX_PACKETS_PER_PEER`]:
//!
//! * a peer at its cap drops its own oldest packet for a new one;
//! * when the budget is spent, the peer with the most bytes waiting drops
//!   its oldest packet, again and again until the new one fits. A peer
//!   that holds the most is the one that loses, so the budget is shared
//!   max-min fairly: each of `n` peers with packets waiting keeps at least
//!   `BUDGET_BYTES / n` of them, however many packets the others are sent.
//!   A rival's hundreds of unreachable hosts cannot starve the staging of
//!   a few peers of our own: they only drive every share down together.
//!
//! Every packet dropped is counted ([`StagingStats`]): to make room, or
//! because its peer gave up its handshake or was removed. A peer with
//! nothing waiting costs nothing here: its queue exists only while it
//! holds packets. Staging a packet costs `O(log n)` in the peers with
//! packets waiting; it is off the data path, which seals under a session.
//!
//! ```text
//!   queues:   peer 3 [p p p p]   peer 7 [p]   peer 9 [p p]     bytes: Σ
//!   by_size:  (bytes 7, peer 7) < (bytes 9, peer 9) < (bytes 3, peer 3)
//!                                                     ^ drops first when over
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::engine::PeerId;

/// The most bytes all peers' waiting packets may take together: what an
/// interface spends on peers without a session, however many there are.
pub const BUDGET_BYTES: usize = 4 << 20;

/// The most packets one peer keeps waiting; its oldest goes for a new one.
pub const MAX_PACKETS_PER_PEER: usize = 32;

/// What a waiting packet is charged beyond its own bytes: its allocation's
/// header and rounding, and its place in the queue. Tiny packets cannot
/// hold more memory than the budget says.
const OVERHEAD_PER_PACKET: usize = 48;

/// What staging holds and has dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StagingStats {
    /// Packets waiting now, all peers together.
    pub packets: usize,
    /// The bytes they are charged, against [`BUDGET_BYTES`].
    pub bytes: usize,
    /// Packets dropped to make room: their peer's cap was reached, or the
    /// interface's budget and their peer held the most.
    pub dropped_for_room: u64,
    /// Packets dropped because their peer gave up its handshake (no
    /// answer for 90 s) or was removed.
    pub dropped_no_session: u64,
}

/// One peer's waiting packets, oldest first, and what they are charged.
#[derive(Debug, Default)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
struct Queue {
    packets: VecDeque<Box<[u8]>>,
    bytes: usize,
}

/// Every peer's waiting packets, within the budget; see the
/// [module](self).
#[derive(Debug)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(crate) struct Staging {
    queues: BTreeMap<PeerId, Queue>,
    /// The peers with packets waiting, by the bytes they are charged: the
    /// last holds the most.
    by_size: BTreeSet<(usize, PeerId)>,
    budget: usize,
    max_per_peer: usize,
    stats: StagingStats,
}

impl Default for Staging {
    fn default() -> Self {
        Self::with_limits(BUDGET_BYTES, MAX_PACKETS_PER_PEER)
    }
}

impl Staging {
    /// Staging within `budget` bytes and `max_per_peer` packets a peer
    /// (at least one).
    pub(crate) fn with_limits(budget: usize, max_per_peer: usize) -> Self {
        Self {
            queues: BTreeMap::new(),
            by_size: BTreeSet::new(),
            budget,
            max_per_peer: max_per_peer.max(1),
            stats: StagingStats::default(),
        }
    }

    /// What staging holds and has dropped.
    pub(crate) fn stats(&self) -> StagingStats {
        self.stats
    }

    /// Whether `peer` has packets waiting.
    pub(crate) fn has_packets(&self, peer: PeerId) -> bool {
        self.queues.contains_key(&peer)
    }

    /// Keeps a copy of `packet` for `peer`, making room as the
    /// [module](self) says; a packet larger than the whole budget is
    /// dropped at once.
    pub(crate) fn stage(&mut self, peer: PeerId, packet: &[u8]) {
        let charge = packet.len() + OVERHEAD_PER_PACKET;
        if charge > self.budget {
            self.stats.dropped_for_room += 1;
            return;
        }
        if self
            .queues
            .get(&peer)
            .is_some_and(|queue| queue.packets.len() >= self.max_per_peer)
        {
            self.drop_oldest(peer);
        }
        while self.stats.bytes + charge > self.budget {
            // Not empty: the bytes charged are those of waiting packets.
            let Some(&(_, fattest)) = self.by_size.last() else {
                break;
            };
            self.drop_oldest(fattest);
        }
        let queue = self.queues.entry(peer).or_default();
        self.by_size.remove(&(queue.bytes, peer));
        queue.packets.push_back(packet.into());
        queue.bytes += charge;
        self.by_size.insert((queue.bytes, peer));
        self.stats.packets += 1;
        self.stats.bytes += charge;
    }

    /// Drops every packet waiting for `peer`, counted as dropped for want
    /// of a session.
    pub(crate) fn clear(&mut self, peer: PeerId) {
        let Some(queue) = self.queues.remove(&peer) else {
            return;
        };
        self.by_size.remove(&(queue.bytes, peer));
        self.stats.packets -= queue.packets.len();
        self.stats.bytes -= queue.bytes;
        self.stats.dropped_no_session += queue.packets.len() as u64;
    }

    /// Drops `peer`'s oldest packet, counted as dropped for room.
    fn drop_oldest(&mut self, peer: PeerId) {
        if self.pop(peer).is_some() {
            self.stats.dropped_for_room += 1;
        }
    }

    /// Takes `peer`'s oldest waiting packet; a queue left empty goes, with
    /// its memory.
    pub(crate) fn pop(&mut self, peer: PeerId) -> Option<Box<[u8]>> {
        let queue = self.queues.get_mut(&peer)?;
        let packet = queue.packets.pop_front()?;
        let charge = packet.len() + OVERHEAD_PER_PACKET;
        self.by_size.remove(&(queue.bytes, peer));
        queue.bytes -= charge;
        self.stats.packets -= 1;
        self.stats.bytes -= charge;
        if queue.packets.is_empty() {
            self.queues.remove(&peer);
        } else {
            self.by_size.insert((queue.bytes, peer));
        }
        Some(packet)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn peer(slot: u32) -> PeerId {
        PeerId {
            slot,
            generation: 0,
        }
    }

    fn packet(len: usize, tag: u8) -> Vec<u8> {
        vec![tag; len]
    }

    #[test]
    fn a_peer_at_its_cap_drops_its_own_oldest() {
        let mut staging = Staging::with_limits(1 << 20, 3);
        for tag in 0..5 {
            staging.stage(peer(1), &packet(100, tag));
        }
        let stats = staging.stats();
        assert_eq!((stats.packets, stats.dropped_for_room), (3, 2));
        let left: Vec<u8> = std::iter::from_fn(|| staging.pop(peer(1)))
            .map(|p| p[0])
            .collect();
        assert_eq!(left, [2, 3, 4]);
        assert!(!staging.has_packets(peer(1)));
        assert_eq!(staging.stats().bytes, 0);
    }

    #[test]
    fn over_the_budget_the_peer_holding_most_pays() {
        let charge = 100 + OVERHEAD_PER_PACKET;
        let mut staging = Staging::with_limits(10 * charge, 100);
        // A flooder fills the whole budget.
        for tag in 0..10 {
            staging.stage(peer(9), &packet(100, tag));
        }
        assert_eq!(staging.stats().bytes, 10 * charge);
        // Another peer's packets each push out one of the flooder's.
        for tag in 0..3 {
            staging.stage(peer(1), &packet(100, 100 + tag));
        }
        let stats = staging.stats();
        assert_eq!((stats.packets, stats.bytes), (10, 10 * charge));
        assert_eq!(stats.dropped_for_room, 3);
        let own: Vec<u8> = std::iter::from_fn(|| staging.pop(peer(1)))
            .map(|p| p[0])
            .collect();
        assert_eq!(own, [100, 101, 102]);
        // The flooder lost its oldest.
        assert_eq!(staging.pop(peer(9)).map(|p| p[0]), Some(3));
    }

    #[test]
    fn a_packet_larger_than_the_budget_is_dropped() {
        let mut staging = Staging::with_limits(1000, 8);
        staging.stage(peer(1), &packet(100, 1));
        staging.stage(peer(2), &packet(1000, 2));
        let stats = staging.stats();
        assert_eq!((stats.packets, stats.dropped_for_room), (1, 1));
        assert!(staging.has_packets(peer(1)));
        assert!(!staging.has_packets(peer(2)));
    }

    #[test]
    fn clearing_a_peer_counts_its_packets_as_without_a_session() {
        let mut staging = Staging::with_limits(1 << 20, 8);
        staging.stage(peer(1), &packet(10, 1));
        staging.stage(peer(1), &packet(10, 2));
        staging.stage(peer(2), &packet(10, 3));
        staging.clear(peer(1));
        staging.clear(peer(3));
        let stats = staging.stats();
        assert_eq!((stats.packets, stats.dropped_no_session), (1, 2));
        assert_eq!(stats.bytes, 10 + OVERHEAD_PER_PACKET);
        assert!(!staging.has_packets(peer(1)));
    }

    proptest! {
        /// Whatever is staged, popped and cleared: the books match the
        /// queues, the budget and each cap hold, nothing is lost uncounted,
        /// and a peer that stages while others flood keeps its fair share.
        #[test]
        fn the_budget_holds_and_shares_fairly(
            ops in proptest::collection::vec((0u32..6, 0usize..400, 0u8..10), 1..400),
        ) {
            let budget = 2000;
            let mut staging = Staging::with_limits(budget, 8);
            let (mut staged, mut popped) = (0u64, 0u64);
            for (slot, len, op) in ops {
                match op {
                    0 => staging.clear(peer(slot)),
                    1 | 2 => popped += u64::from(staging.pop(peer(slot)).is_some()),
                    _ => {
                        staging.stage(peer(slot), &packet(len, op));
                        staged += 1;
                    }
                }
                let stats = staging.stats();
                prop_assert!(stats.bytes <= budget);
                let (mut packets, mut bytes) = (0, 0);
                for (&id, queue) in &staging.queues {
                    prop_assert!(!queue.packets.is_empty());
                    prop_assert!(queue.packets.len() <= 8);
                    let charged: usize =
                        queue.packets.iter().map(|p| p.len() + OVERHEAD_PER_PACKET).sum();
                    prop_assert_eq!(charged, queue.bytes);
                    prop_assert!(staging.by_size.contains(&(queue.bytes, id)));
                    packets += queue.packets.len();
                    bytes += queue.bytes;
                }
                prop_assert_eq!(staging.by_size.len(), staging.queues.len());
                prop_assert_eq!((packets, bytes), (stats.packets, stats.bytes));
                prop_assert_eq!(
                    staged,
                    popped + stats.packets as u64 + stats.dropped_for_room
                        + stats.dropped_no_session
                );
            }
        }

        /// Five flooders stage without end; a sixth peer stages a few
        /// packets after them and keeps every one (its share is a sixth of
        /// the budget).
        #[test]
        fn flooders_do_not_starve_a_quiet_peer(len in 1usize..1400, rounds in 1usize..200) {
            let charge = len + OVERHEAD_PER_PACKET;
            let budget = 64 * 1400;
            let mut staging = Staging::with_limits(budget, 32);
            for round in 0..rounds {
                for slot in 0..5 {
                    staging.stage(peer(slot), &packet(1400, round as u8));
                }
            }
            let quiet = (budget / 6 / charge).min(32);
            for tag in 0..quiet {
                staging.stage(peer(99), &packet(len, tag as u8));
            }
            let kept = std::iter::from_fn(|| staging.pop(peer(99))).count();
            prop_assert_eq!(kept, quiet);
        }
    }
}
