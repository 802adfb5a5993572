//! The hosts gossip talks to, as the peer manager chose them: what is due
//! to each, which have a WireGuard session, and fair, random choices among
//! them — each in O(1) or O(log n), whatever their number.
//!
//! Random choices are fair by operator, then by host: an operator is picked
//! uniformly among those with a host to offer, then one of its hosts. An
//! admitted rival may have a peer for every card it signs; picking by host
//! would give it most of this host's pushes and reconciliations (and with
//! them the chance to withhold what it should relay), picking by operator
//! gives it one share in the number of operators, however many hosts it
//! has. For the same reason the sessions gossip keeps up are counted in
//! operators ([`Neighbours::linked_operators`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use sentrymesh_types::{PublicKey, UnixTime};

use super::views::{View, ViewRoot};
use crate::identity::OperatorId;
use crate::object::ObjectId;

/// The last reconciliation with a peer that left nothing to do: its root
/// and ours then. While both stay the same, a summary that does not match
/// is the difference of two admissions (objects one side refuses), not
/// news, and is not reconciled again before a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Settled {
    pub(super) theirs: ViewRoot,
    pub(super) mine: ViewRoot,
    pub(super) at: UnixTime,
}

/// One host gossip talks to, and what is due to it.
#[derive(Debug, Clone)]
pub(super) struct Neighbour {
    pub(super) operator: OperatorId,
    /// What it may be shown.
    pub(super) view: View,
    /// It has a WireGuard session with this host (the daemon says so, or a
    /// message came from it).
    pub(super) linked: bool,
    /// A summary of our view is due to it.
    pub(super) summary_due: bool,
    /// Our buckets are due to it: its summary did not match.
    pub(super) buckets_due: bool,
    /// The recent ids are due to it (a lazy announcement).
    pub(super) announce_due: bool,
    /// The buckets whose ids are due to it: its buckets differed there.
    pub(super) ranges_due: BTreeSet<u8>,
    /// In the bucket this id begins with, the ids up to it were sent
    /// (ignored once another bucket comes first in `ranges_due`).
    pub(super) ranges_after: Option<ObjectId>,
    /// Objects to send (pushed or wanted), filtered when sent.
    pub(super) push: BTreeSet<ObjectId>,
    /// Ids to ask it for.
    pub(super) want: BTreeSet<ObjectId>,
    pub(super) settled: Option<Settled>,
    /// Summaries of our statements of these vouchers are due to it.
    pub(super) statements_due: BTreeSet<OperatorId>,
    /// When it was last sent a summary of our statements of a voucher:
    /// the digests it sends a little after are its listing.
    pub(super) asked_statements: Option<UnixTime>,
    /// Our ids of these vouchers' statements are due to it, each after
    /// this id (from the first when `None`): its summaries of them did not
    /// match. At most one entry per voucher whose statements we keep.
    pub(super) listing_due: BTreeMap<OperatorId, Option<ObjectId>>,
    /// In the queue of neighbours with something to send.
    queued: bool,
    /// Its place in its operator's `Pool::all`.
    place: usize,
    /// Its place in its operator's `Pool::linked`.
    linked_place: Option<usize>,
}

impl Neighbour {
    pub(super) fn has_output(&self) -> bool {
        self.summary_due
            || self.buckets_due
            || self.announce_due
            || !self.ranges_due.is_empty()
            || !self.push.is_empty()
            || !self.want.is_empty()
            || !self.statements_due.is_empty()
            || !self.listing_due.is_empty()
    }
}

/// One operator's neighbours, for random choices.
#[derive(Debug, Clone, Default)]
struct Pool {
    /// Its place in `Neighbours::operators`.
    place: usize,
    all: Vec<PublicKey>,
    linked: Vec<PublicKey>,
}

/// The neighbours, by key. See the [module docs](self).
#[derive(Debug, Clone)]
pub(super) struct Neighbours {
    local: OperatorId,
    map: BTreeMap<PublicKey, Neighbour>,
    /// The operators with a neighbour, in no order: for random choices.
    operators: Vec<OperatorId>,
    pools: BTreeMap<OperatorId, Pool>,
    /// Linked neighbours.
    linked: usize,
    /// Operators other than this host's with a linked neighbour.
    linked_operators: usize,
    /// The neighbours of this host's own operator.
    own: BTreeSet<PublicKey>,
    /// Neighbours with something to send, in turn.
    ready: VecDeque<PublicKey>,
    rng: SplitMix64,
}

impl Neighbours {
    /// No neighbours yet, for a host of `local`.
    pub(super) fn new(local: OperatorId, seed: u64) -> Self {
        Self {
            local,
            map: BTreeMap::new(),
            operators: Vec::new(),
            pools: BTreeMap::new(),
            linked: 0,
            linked_operators: 0,
            own: BTreeSet::new(),
            ready: VecDeque::new(),
            rng: SplitMix64(seed),
        }
    }

    /// Replaces the seed of the random choices.
    pub(super) fn reseed(&mut self, seed: u64) {
        self.rng = SplitMix64(seed);
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// How many operators other than this host's have a linked neighbour.
    pub(super) fn linked_operators(&self) -> usize {
        self.linked_operators
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &PublicKey> {
        self.map.keys()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&PublicKey, &Neighbour)> {
        self.map.iter()
    }

    /// Whether any neighbour is of `operator`.
    pub(super) fn has_operator(&self, operator: &OperatorId) -> bool {
        self.pools.contains_key(operator)
    }

    /// The neighbours of this host's own operator.
    pub(super) fn own(&self) -> impl Iterator<Item = &PublicKey> {
        self.own.iter()
    }

    pub(super) fn get(&self, key: &PublicKey) -> Option<&Neighbour> {
        self.map.get(key)
    }

    /// Adds a neighbour; `false` when it was one already.
    pub(super) fn insert(&mut self, key: PublicKey, operator: OperatorId, view: View) -> bool {
        if self.map.contains_key(&key) {
            return false;
        }
        let operators = &mut self.operators;
        let pool = self.pools.entry(operator).or_insert_with(|| {
            operators.push(operator);
            Pool {
                place: operators.len() - 1,
                ..Pool::default()
            }
        });
        self.map.insert(
            key,
            Neighbour {
                operator,
                view,
                linked: false,
                summary_due: false,
                buckets_due: false,
                announce_due: false,
                ranges_due: BTreeSet::new(),
                ranges_after: None,
                push: BTreeSet::new(),
                want: BTreeSet::new(),
                settled: None,
                statements_due: BTreeSet::new(),
                asked_statements: None,
                listing_due: BTreeMap::new(),
                queued: false,
                place: pool.all.len(),
                linked_place: None,
            },
        );
        pool.all.push(key);
        if view == View::Own {
            self.own.insert(key);
        }
        true
    }

    /// Removes a neighbour with everything due to it; returns it.
    pub(super) fn remove(&mut self, key: &PublicKey) -> Option<Neighbour> {
        self.set_linked(key, false);
        let neighbour = self.map.remove(key)?;
        let operator = neighbour.operator;
        let pool = self.pools.get_mut(&operator)?;
        pool.all.swap_remove(neighbour.place);
        if let Some(moved) = pool.all.get(neighbour.place) {
            if let Some(moved) = self.map.get_mut(moved) {
                moved.place = neighbour.place;
            }
        }
        if pool.all.is_empty() {
            let place = pool.place;
            self.pools.remove(&operator);
            self.operators.swap_remove(place);
            if let Some(moved) = self.operators.get(place) {
                if let Some(pool) = self.pools.get_mut(moved) {
                    pool.place = place;
                }
            }
        }
        self.own.remove(key);
        // A queued key no longer a neighbour is skipped when popped.
        Some(neighbour)
    }

    /// Notes whether the neighbour has a session.
    pub(super) fn set_linked(&mut self, key: &PublicKey, linked: bool) {
        let Some(neighbour) = self.map.get_mut(key) else {
            return;
        };
        let operator = neighbour.operator;
        let Some(pool) = self.pools.get_mut(&operator) else {
            return;
        };
        let counted = operator != self.local;
        match (neighbour.linked_place, linked) {
            (None, true) => {
                neighbour.linked = true;
                neighbour.linked_place = Some(pool.linked.len());
                pool.linked.push(*key);
                self.linked += 1;
                if counted && pool.linked.len() == 1 {
                    self.linked_operators += 1;
                }
            }
            (Some(place), false) => {
                neighbour.linked = false;
                neighbour.linked_place = None;
                pool.linked.swap_remove(place);
                if let Some(moved) = pool.linked.get(place) {
                    if let Some(moved) = self.map.get_mut(moved) {
                        moved.linked_place = Some(place);
                    }
                }
                self.linked -= 1;
                if counted && pool.linked.is_empty() {
                    self.linked_operators -= 1;
                }
            }
            _ => {}
        }
    }

    /// Changes what is due to a neighbour, and queues it if it now has
    /// something to send.
    pub(super) fn update<R>(
        &mut self,
        key: &PublicKey,
        change: impl FnOnce(&mut Neighbour) -> R,
    ) -> Option<R> {
        let neighbour = self.map.get_mut(key)?;
        let result = change(neighbour);
        if !neighbour.queued && neighbour.has_output() {
            neighbour.queued = true;
            self.ready.push_back(*key);
        }
        Some(result)
    }

    /// The next neighbour with something to send, in turn; it is taken off
    /// the queue until [`Neighbours::requeue`].
    pub(super) fn pop_ready(&mut self) -> Option<PublicKey> {
        while let Some(key) = self.ready.pop_front() {
            if let Some(neighbour) = self.map.get_mut(&key) {
                neighbour.queued = false;
                return Some(key);
            }
        }
        None
    }

    /// Queues the neighbour again if it still has something to send.
    pub(super) fn requeue(&mut self, key: &PublicKey) {
        self.update(key, |_| ());
    }

    /// Up to `n` distinct neighbours picked at random, fair by operator
    /// (see the [module docs](self)), among the linked ones that
    /// `eligible` accepts, then, if too few are linked, among the others.
    /// O(n).
    pub(super) fn sample(
        &mut self,
        n: usize,
        eligible: impl Fn(&PublicKey, &Neighbour) -> bool,
    ) -> Vec<PublicKey> {
        let mut picked = Vec::with_capacity(n);
        for linked_only in [true, false] {
            // A few tries per place: with most of the pool eligible this
            // fills it; with little, it ends anyway.
            for _ in 0..4 * n {
                if picked.len() == n {
                    break;
                }
                let Some(key) = self.pick(linked_only) else {
                    continue;
                };
                if !picked.contains(&key) && eligible(&key, &self.map[&key]) {
                    picked.push(key);
                }
            }
        }
        picked
    }

    /// One neighbour of `operator` picked at random, a linked one if it
    /// has one. O(1).
    pub(super) fn pick_of(&mut self, operator: OperatorId) -> Option<PublicKey> {
        let pool = self.pools.get(&operator)?;
        let hosts = if pool.linked.is_empty() {
            &pool.all
        } else {
            &pool.linked
        };
        Some(hosts[self.rng.below(hosts.len())])
    }

    /// One neighbour picked at random, fair by operator, among those not
    /// linked, if any.
    pub(super) fn sample_unlinked(&mut self) -> Option<PublicKey> {
        if self.linked == self.map.len() {
            return None;
        }
        for _ in 0..8 {
            if let Some(key) = self.pick(false) {
                if !self.map[&key].linked {
                    return Some(key);
                }
            }
        }
        None
    }

    /// A random operator, then a random host of it: linked ones only, or
    /// any. `None` when the operator picked has none.
    fn pick(&mut self, linked_only: bool) -> Option<PublicKey> {
        if self.operators.is_empty() {
            return None;
        }
        let operator = self.operators[self.rng.below(self.operators.len())];
        let pool = &self.pools[&operator];
        let hosts = if linked_only { &pool.linked } else { &pool.all };
        if hosts.is_empty() {
            return None;
        }
        Some(hosts[self.rng.below(hosts.len())])
    }
}

/// SplitMix64: a small, fast generator for fair choices, seeded by the
/// caller (never for secrets).
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (not 0), near enough to uniform for `n` far
    /// below 2^64.
    fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        // Lemire's multiply-shift reduction.
        usize::try_from((u128::from(self.next()) * u128::from(n)) >> 64).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> PublicKey {
        PublicKey::from_bytes([i; 32])
    }

    /// Every neighbour's places match the pools they are in.
    fn assert_places(n: &Neighbours) {
        for (place, operator) in n.operators.iter().enumerate() {
            let pool = &n.pools[operator];
            assert_eq!(pool.place, place);
            for (place, k) in pool.all.iter().enumerate() {
                assert_eq!(n.map[k].place, place);
                assert_eq!(n.map[k].operator, *operator);
            }
            for (place, k) in pool.linked.iter().enumerate() {
                assert_eq!(n.map[k].linked_place, Some(place));
            }
        }
        assert_eq!(n.operators.len(), n.pools.len());
    }

    #[test]
    fn places_stay_right_through_removals_and_links() {
        let (a, b) = (
            crate::testing::operator(1).operator_id(),
            crate::testing::operator(2).operator_id(),
        );
        let mut n = Neighbours::new(a, 7);
        for i in 0..10 {
            assert!(n.insert(key(i), if i < 7 { a } else { b }, View::Public));
        }
        assert!(!n.insert(key(3), a, View::Public));
        for i in [2, 5, 9] {
            n.set_linked(&key(i), true);
        }
        assert_eq!(n.linked_operators(), 1, "operator b; a is this host's");
        n.remove(&key(5));
        n.remove(&key(0));
        n.set_linked(&key(2), false);
        assert_eq!(n.len(), 8);
        assert_eq!(n.linked, 1);
        assert_places(&n);
        // Linked neighbours are picked first.
        assert_eq!(n.sample(1, |_, _| true), vec![key(9)]);
        let three = n.sample(3, |_, _| true);
        assert_eq!(three.len(), 3);
        assert!(three.contains(&key(9)));
        assert!(
            n.sample(5, |k, _| *k == key(4))
                .iter()
                .all(|k| *k == key(4))
        );
        // An operator whose last neighbour goes leaves the choices.
        for i in 7..10 {
            n.remove(&key(i));
        }
        assert_places(&n);
        assert!(!n.has_operator(&b));
        assert_eq!(n.linked_operators(), 0);
    }

    #[test]
    fn an_operator_with_many_hosts_gets_one_share_of_the_choices() {
        let local = crate::testing::operator(1).operator_id();
        let (rival, other) = (
            crate::testing::operator(2).operator_id(),
            crate::testing::operator(3).operator_id(),
        );
        let mut n = Neighbours::new(local, 11);
        for i in 0..100 {
            n.insert(key(i), rival, View::Public);
            n.set_linked(&key(i), true);
        }
        n.insert(key(200), other, View::Public);
        n.set_linked(&key(200), true);
        let picked = (0..1000)
            .filter(|_| n.sample(1, |_, _| true) == vec![key(200)])
            .count();
        // One share in two operators, not one in 101 hosts.
        assert!((400..600).contains(&picked), "{picked}");
        assert_eq!(n.linked_operators(), 2);
    }

    #[test]
    fn the_ready_queue_serves_each_once_and_skips_the_gone() {
        let op = crate::testing::operator(1).operator_id();
        let mut n = Neighbours::new(op, 1);
        n.insert(key(1), op, View::Own);
        n.insert(key(2), op, View::Own);
        n.update(&key(1), |x| x.summary_due = true);
        n.update(&key(1), |x| x.announce_due = true);
        n.update(&key(2), |x| x.summary_due = true);
        n.remove(&key(2));
        assert_eq!(n.pop_ready(), Some(key(1)));
        assert_eq!(n.pop_ready(), None);
        n.requeue(&key(1));
        assert_eq!(n.pop_ready(), Some(key(1)));
    }

    #[test]
    fn below_stays_below() {
        let mut rng = SplitMix64(3);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            seen[rng.below(7)] += 1;
        }
        assert!(seen.iter().all(|&count| count > 800), "{seen:?}");
    }
}
