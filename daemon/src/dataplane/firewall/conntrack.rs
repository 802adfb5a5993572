//! The connection tracker: the flows the firewall let through one way,
//! whose packets then pass the other way too (replies to connections this
//! host opened, answers to echoes, the later fragments of a packet).
//!
//! A fixed table allocated once: open addressing with a short linear probe
//! ([`PROBE`] slots) from a hash keyed at random when the table is made, so
//! no peer can aim its flows at one slot. Each entry expires a while after
//! its flow's last packet ([`timeout`]); a new flow takes an empty or
//! expired slot of its probe, and when every one is live, the one that
//! expires first (counted as an eviction). So the table never holds more
//! than its capacity, whatever a flood opens, and a lookup reads at most
//! [`PROBE`] slots. Nothing is allocated after [`Conntrack::new`].

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

use sentrymesh_tunnel::PeerId;
use sentrymesh_tunnel::ip::{PROTOCOL_TCP, PROTOCOL_UDP};

use super::packet::{Direction, FlowKey};
use super::policy::Service;

/// Slots a key may sit in: its hash's and the ones after it.
const PROBE: usize = 8;
/// The fewest slots a table has.
pub(crate) const MIN_CAPACITY: usize = 64;
/// The most slots a table has.
pub(crate) const MAX_CAPACITY: usize = 1 << 22;

/// How long a flow of `proto` is kept after its last packet (a fragment
/// flow's, [`FRAGMENT_TIMEOUT`]): TCP 12 minutes and UDP 3 as in Nebula,
/// an echo 30 seconds, anything else 10 minutes.
pub(crate) fn timeout(proto: u8) -> Duration {
    match proto {
        PROTOCOL_TCP => Duration::from_secs(12 * 60),
        PROTOCOL_UDP => Duration::from_secs(3 * 60),
        1 | 58 => Duration::from_secs(30),
        _ => Duration::from_secs(10 * 60),
    }
}

/// How long the later fragments of a packet are waited for.
pub(crate) const FRAGMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A tracked flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The peer whose packets belong to it.
    pub(crate) peer: PeerId,
    /// Which way the packet that opened it went.
    pub(crate) opened: Direction,
    /// What that packet asked for; `None` for a fragment flow.
    pub(crate) service: Option<Service>,
}

#[derive(Clone, Copy)]
struct Slot {
    key: FlowKey,
    entry: Entry,
    expires: Instant,
}

/// What [`Conntrack::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// The flow was tracked already: its time is renewed.
    Renewed,
    /// A free or expired slot took it.
    New,
    /// It took the slot of a live flow, the one of its probe that would
    /// have expired first.
    Evicted,
}

/// The table.
pub(crate) struct Conntrack {
    slots: Box<[Option<Slot>]>,
    mask: usize,
    hasher: RandomState,
    evictions: u64,
}

impl std::fmt::Debug for Conntrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conntrack")
            .field("capacity", &self.slots.len())
            .field("evictions", &self.evictions)
            .finish_non_exhaustive()
    }
}

impl Conntrack {
    /// A table of `capacity` slots, rounded up to a power of two within
    /// [`MIN_CAPACITY`] and [`MAX_CAPACITY`].
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity
            .clamp(MIN_CAPACITY, MAX_CAPACITY)
            .next_power_of_two();
        Self {
            slots: vec![None; capacity].into_boxed_slice(),
            mask: capacity - 1,
            hasher: RandomState::new(),
            evictions: 0,
        }
    }

    /// The number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Live flows evicted to make room, since the table was made.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The flows live at `now`.
    pub(crate) fn len(&self, now: Instant) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|slot| slot.expires > now)
            .count()
    }

    /// Whether `key` is a live flow of `peer`; if so, it is kept for
    /// `timeout` from `now`.
    pub(crate) fn renew(
        &mut self,
        key: &FlowKey,
        peer: PeerId,
        now: Instant,
        timeout: Duration,
    ) -> bool {
        let start = self.start(key);
        for step in 0..PROBE {
            let index = (start + step) & self.mask;
            if let Some(slot) = &mut self.slots[index] {
                if slot.key == *key && slot.expires > now {
                    if slot.entry.peer != peer {
                        return false;
                    }
                    slot.expires = now + timeout;
                    return true;
                }
            }
        }
        false
    }

    /// Tracks `key` for `entry` until `timeout` after `now`.
    pub(crate) fn insert(
        &mut self,
        key: FlowKey,
        entry: Entry,
        now: Instant,
        timeout: Duration,
    ) -> Inserted {
        let start = self.start(&key);
        let mut free = None;
        let mut soonest: Option<(usize, Instant)> = None;
        for step in 0..PROBE {
            let index = (start + step) & self.mask;
            match &mut self.slots[index] {
                Some(slot) if slot.key == key && slot.expires > now => {
                    slot.entry = entry;
                    slot.expires = now + timeout;
                    return Inserted::Renewed;
                }
                Some(slot) if slot.expires > now => {
                    if soonest.is_none_or(|(_, expires)| slot.expires < expires) {
                        soonest = Some((index, slot.expires));
                    }
                }
                _ => {
                    free.get_or_insert(index);
                }
            }
        }
        let (index, inserted) = match (free, soonest) {
            (Some(index), _) => (index, Inserted::New),
            (None, Some((index, _))) => {
                self.evictions += 1;
                (index, Inserted::Evicted)
            }
            // Not reached: PROBE > 0, and each slot probed is free or live.
            (None, None) => (start, Inserted::New),
        };
        self.slots[index] = Some(Slot {
            key,
            entry,
            expires: now + timeout,
        });
        inserted
    }

    /// Forgets every flow for which `keep` says no.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        for slot in self.slots.iter_mut() {
            if slot.as_ref().is_some_and(|slot| !keep(&slot.entry)) {
                *slot = None;
            }
        }
    }

    /// Moves the flows live at `now` into `other`, each with the time it
    /// had left.
    pub(crate) fn drain_into(&mut self, other: &mut Conntrack, now: Instant) {
        for slot in self.slots.iter_mut() {
            if let Some(slot) = slot.take().filter(|slot| slot.expires > now) {
                other.insert(slot.key, slot.entry, now, slot.expires - now);
            }
        }
    }

    /// The first slot of `key`'s probe.
    fn start(&self, key: &FlowKey) -> usize {
        // Only the low bits are used: truncating is the point.
        #[allow(clippy::cast_possible_truncation)]
        let hash = self.hasher.hash_one(key) as usize;
        hash & self.mask
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::dataplane::firewall::packet::parse;
    use crate::dataplane::firewall::testing::{peer_ids, tcp_packet};

    fn key(port: u16) -> FlowKey {
        parse(
            &tcp_packet("198.19.1.1", port, "198.19.2.1", 26656),
            Direction::Outbound,
        )
        .unwrap()
        .flow
    }

    fn entry(peer: PeerId) -> Entry {
        Entry {
            peer,
            opened: Direction::Outbound,
            service: Some(Service::Tcp(26656)),
        }
    }

    fn peers() -> (PeerId, PeerId) {
        let [one, two] = peer_ids();
        (one, two)
    }

    #[test]
    fn a_flow_lives_until_its_timeout_after_its_last_packet() {
        let (peer, other) = peers();
        let mut table = Conntrack::new(64);
        let now = Instant::now();
        let timeout = Duration::from_secs(10);
        assert!(!table.renew(&key(1), peer, now, timeout));
        assert_eq!(
            table.insert(key(1), entry(peer), now, timeout),
            Inserted::New
        );
        assert_eq!(table.len(now), 1);
        let later = now + Duration::from_secs(9);
        assert!(table.renew(&key(1), peer, later, timeout));
        // Renewed at 9 s: alive at 18 s, gone at 19 s.
        assert!(table.renew(&key(1), peer, now + Duration::from_secs(18), timeout));
        assert!(!table.renew(&key(1), peer, now + Duration::from_secs(29), timeout));
        assert_eq!(table.len(now + Duration::from_secs(29)), 0);
        // Another peer's packets do not belong to it.
        table.insert(key(2), entry(peer), now, timeout);
        assert!(!table.renew(&key(2), other, now, timeout));
        assert_eq!(
            table.insert(key(2), entry(peer), now, timeout),
            Inserted::Renewed
        );
        table.retain(|entry| entry.peer != peer);
        assert!(!table.renew(&key(2), peer, now, timeout));
    }

    #[test]
    fn a_flood_stays_within_the_capacity_and_evicts_the_oldest() {
        let (peer, _) = peers();
        let mut table = Conntrack::new(100);
        assert_eq!(table.capacity(), 128);
        let start = Instant::now();
        let timeout = Duration::from_secs(600);
        let mut evicted = 0;
        for port in 1..=5000u16 {
            let now = start + Duration::from_millis(u64::from(port));
            if table.insert(key(port), entry(peer), now, timeout) == Inserted::Evicted {
                evicted += 1;
            }
        }
        let now = start + Duration::from_secs(5);
        assert!(table.len(now) <= 128);
        assert!(table.len(now) >= 100, "the table fills: {}", table.len(now));
        assert_eq!(table.evictions(), evicted);
        assert!(evicted >= 5000 - 128);
        // The newest flow is there; the first are gone.
        assert!(table.renew(&key(5000), peer, now, timeout));
        assert!(!table.renew(&key(1), peer, now, timeout));
    }

    #[test]
    fn a_slot_is_as_small_as_the_readme_says() {
        // README, "Firewall": about 72 bytes a slot, 2.3 MiB at the default.
        assert!(std::mem::size_of::<Option<Slot>>() <= 72);
    }

    proptest! {
        /// Against a model without a bound: whatever the table says is
        /// tracked, the model tracks, and what the model tracks the table
        /// loses only to evictions it counted.
        #[test]
        fn the_table_never_makes_up_a_flow(
            operations in prop::collection::vec((any::<bool>(), 1u16..300, 0u64..40), 1..400),
        ) {
            let (peer, _) = peers();
            let mut table = Conntrack::new(64);
            let mut model: std::collections::HashMap<u16, Instant> = Default::default();
            let start = Instant::now();
            let timeout = Duration::from_secs(20);
            let mut now = start;
            for (insert, port, advance) in operations {
                now += Duration::from_secs(advance);
                let live = model.get(&port).is_some_and(|&expires| expires > now);
                if insert {
                    table.insert(key(port), entry(peer), now, timeout);
                    model.insert(port, now + timeout);
                } else {
                    let found = table.renew(&key(port), peer, now, timeout);
                    prop_assert!(!found || live, "a flow the model does not have");
                    if found {
                        model.insert(port, now + timeout);
                    } else {
                        prop_assert!(
                            !live || table.evictions() > 0,
                            "a live flow lost without an eviction"
                        );
                        model.remove(&port);
                    }
                }
                prop_assert!(table.len(now) <= table.capacity());
            }
        }
    }
}
