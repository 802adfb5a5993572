//! The peer manager: which WireGuard peers a host should have, given its own
//! card, its trust policy and what its store knows — and what changed.
//!
//! A card in the store becomes a peer when it is valid now, not revoked,
//! [`may_peer`] allows it for this host's card and admitted operators, and
//! it keeps inside its operator's overlay range ([`crate::overlay`]): a card
//! that claims anything outside it is refused whole, counted, and reported
//! once ([`PeerManager::poll_refusal`]). So every allowed IP a peer gets,
//! and every route the daemon adds for it, lies inside the mesh overlay and
//! inside that operator's own range.
//!
//! ```text
//!  Store (cards, vouches, revocations) ──┐
//!  TrustPolicy ──► admitted operators ───┼──► desired peers ──diff──► PeerEvent::{Added, Changed, Removed}
//!  this host's card ─────────────────────┘
//! ```
//!
//! Each [`PeerSpec`] is what the daemon configures: the key, the first
//! endpoint (none for hidden hosts — the daemon learns their address from
//! their handshakes), the allowed IPs (the card's addresses as host routes,
//! then its allowed IPs) and a persistent keepalive when this host has no
//! endpoint of its own and the peer has one, so a hidden producer keeps its
//! path to its sentries open.
//!
//! Two peers never get the same allowed IP: where cards name the same
//! network, this host's own card keeps it, then a card of its own operator,
//! then the lowest key — so another operator's card cannot capture traffic
//! meant for one of this operator's hosts. (A wider network that contains a
//! narrower one is left to WireGuard's longest-prefix match.)
//!
//! A host is its operator and its name: when an operator gives a host a new
//! key (a new card, same name), the newest valid card of that name — by
//! `not_before`, then serial, then the lower key — is the host, and the
//! older cards of the name make no peer and claim no network, whether or
//! not the old key was revoked yet. So a key rotation takes effect
//! wherever the new card arrives, and the old key gets no traffic.
//!
//! When this host's own card is revoked, expired or not yet valid it has no
//! peers at all ([`PeerManager::local_error`] says why).
//!
//! # Cost
//!
//! [`PeerManager::update`] recomputes everything: O(c log c) for `c` cards,
//! plus the trust policy's admission over the vouches. It runs when the
//! policy or this host's card changes, and when a vouch or vouch
//! withdrawal does (the admitted operators may change, and with them
//! every peer). Every other change — cards and host revocations, by far
//! the most — goes through [`PeerManager::apply`]: O(k log c) for `k`
//! changed cards and the hosts that claim the same networks, whatever the
//! size of the mesh. A card not yet valid is looked at again when it
//! becomes so ([`PeerManager::next_due`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use sentrymesh_types::{CLOCK_SKEW, InterfaceAddress, IpNet, PublicKey, UnixTime};

use crate::card::{CardTimeError, HostCard, SignedCard};
use crate::endpoint::Endpoint;
use crate::identity::OperatorId;
use crate::overlay::{self, OutOfRange};
use crate::peering::may_peer;
use crate::revocation::RevocationTarget;
use crate::role::Role;
use crate::store::{Changes, Store, Subject};
use crate::trust::TrustPolicy;

/// The persistent keepalive, in seconds, of a host without an endpoint
/// towards peers that have one (WireGuard's customary value).
pub const PERSISTENT_KEEPALIVE: u16 = 25;

/// One WireGuard peer as the mesh wants it, from its card: what the daemon
/// configures (after resolving a named endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// The peer's WireGuard public key.
    pub public_key: PublicKey,
    /// Its operator.
    pub operator: OperatorId,
    /// Its host name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its overlay addresses as its card gives them: where gossip and the
    /// chain's traffic reach it.
    pub addresses: Vec<InterfaceAddress>,
    /// Where to send to it: its card's first endpoint; `None` for a host
    /// without one, whose address the daemon learns from its handshakes.
    pub endpoint: Option<Endpoint>,
    /// The networks routed to it, ascending.
    pub allowed_ips: Vec<IpNet>,
    /// Seconds between keepalives, when this host must keep the path open.
    pub persistent_keepalive: Option<u16>,
}

/// A change to the peer set, for the daemon to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A new peer.
    Added(PeerSpec),
    /// A peer whose configuration changed; its sessions may stay.
    Changed(PeerSpec),
    /// A peer to remove, with its sessions.
    Removed(PublicKey),
}

/// A card refused because it claims what its operator was not given:
/// reported once per card (key and serial). It names the host and its
/// operator and says why, never the prefix at fault, so it may be logged
/// even for a hidden host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the card of host {name} (serial {serial}) of operator {operator} is refused: {reason}")]
pub struct CardRefusal {
    /// The card's WireGuard key.
    pub key: PublicKey,
    /// Its host name.
    pub name: String,
    /// Its operator.
    pub operator: OperatorId,
    /// Its serial.
    pub serial: u64,
    /// What it claims that it may not.
    pub reason: OutOfRange,
}

/// Why this host has no peers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalCardError {
    /// This host's card is not valid now.
    #[error("this host has no mesh peers: {0}")]
    Time(CardTimeError),
    /// Its operator revoked this host's key.
    #[error("this host has no mesh peers: its operator {operator} revoked its key {key}")]
    Revoked {
        /// This host's key.
        key: PublicKey,
        /// Its operator.
        operator: OperatorId,
    },
}

/// A card or policy that does not fit this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalConfigError {
    /// The trust policy is another operator's.
    #[error("the trust policy is for operator {policy}, but this host's card is operator {card}'s")]
    OperatorMismatch {
        /// The card's operator.
        card: OperatorId,
        /// The policy's local operator.
        policy: OperatorId,
    },
    /// A new card for this host with another key.
    #[error("the new card is for key {new}, but this host is key {current}")]
    OtherKey {
        /// This host's key.
        current: PublicKey,
        /// The new card's key.
        new: PublicKey,
    },
    /// A new card for this host from another operator.
    #[error("the new card is operator {new}'s, but this host is operator {current}'s")]
    OtherOperator {
        /// This host's operator.
        current: OperatorId,
        /// The new card's operator.
        new: OperatorId,
    },
    /// This host's own card claims what its operator's range does not hold.
    #[error("this host's card has {0}")]
    OutOfRange(OutOfRange),
}

/// A card's claim on the networks it routes.
#[derive(Debug, Clone)]
struct Claim {
    /// 0 for this host, 1 for its operator's hosts, 2 for the others.
    rank: u8,
    /// Ascending, without repeats: one allocation the size of the networks
    /// (a set of them took a B-tree node, over 200 bytes, for one).
    routes: Box<[IpNet]>,
}

/// The least and the greatest key: the bounds of a range of the index
/// entries of one network or one host.
const LEAST_KEY: PublicKey = PublicKey::from_bytes([0; 32]);
const GREATEST_KEY: PublicKey = PublicKey::from_bytes([0xff; 32]);

/// Computes a host's WireGuard peers and reports changes. See the [module
/// docs](self).
#[derive(Debug)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub struct PeerManager {
    local: SignedCard,
    policy: TrustPolicy,
    admitted: BTreeSet<OperatorId>,
    /// The admitted operators' overlay ranges.
    ranges: BTreeMap<OperatorId, IpNet>,
    local_error: Option<LocalCardError>,
    peers: BTreeMap<PublicKey, PeerSpec>,
    /// The cards that may be peers now (valid, not revoked, allowed, in
    /// range), by key, and this host's own: each with its claim's rank and
    /// the networks it claims.
    candidates: BTreeMap<PublicKey, Claim>,
    /// Who claims each network, as (network, rank, key): for each
    /// network, the least holds it. One set of triples, not a set per
    /// network: most networks have one claimant, and a set of one takes a
    /// B-tree node of its own (over 300 bytes) for it.
    claimants: BTreeSet<(IpNet, u8, PublicKey)>,
    /// Cards held that are not valid yet, by when they become so.
    pending: BTreeSet<(UnixTime, PublicKey)>,
    /// The keys of the cards held for each host, as (operator, name,
    /// key): one set, for the reason `claimants` is one.
    hosts: BTreeSet<(OperatorId, String, PublicKey)>,
    /// The host (operator and name) of each key in `hosts`.
    host_of: BTreeMap<PublicKey, (OperatorId, String)>,
    /// Grows whenever the admitted operators change.
    admissions: u64,
    events: VecDeque<PeerEvent>,
    /// Peers added (with their operator) and removed since
    /// [`PeerManager::take_membership`]: for gossip.
    membership: Vec<(PublicKey, Option<OperatorId>)>,
    /// The cards refused as of the last update: key -> serial.
    refused: BTreeMap<PublicKey, u64>,
    refusals: VecDeque<CardRefusal>,
    cards_refused: u64,
}

impl PeerManager {
    /// The peer manager of the host with card `local` and trust `policy`,
    /// with no peers until the first [`PeerManager::update`].
    ///
    /// # Errors
    ///
    /// [`LocalConfigError::OperatorMismatch`] when the policy is not for the
    /// card's operator; [`LocalConfigError::OutOfRange`] when the card
    /// claims what the policy's range for its operator does not hold.
    pub fn new(local: SignedCard, policy: TrustPolicy) -> Result<Self, LocalConfigError> {
        check_policy(&local, &policy)?;
        let admitted = BTreeSet::from([policy.local()]);
        Ok(Self {
            local,
            policy,
            admitted,
            ranges: BTreeMap::new(),
            local_error: None,
            peers: BTreeMap::new(),
            candidates: BTreeMap::new(),
            claimants: BTreeSet::new(),
            pending: BTreeSet::new(),
            hosts: BTreeSet::new(),
            host_of: BTreeMap::new(),
            admissions: 0,
            events: VecDeque::new(),
            membership: Vec::new(),
            refused: BTreeMap::new(),
            refusals: VecDeque::new(),
            cards_refused: 0,
        })
    }

    /// This host's card: the one given, or a newer one for the same key
    /// from the store.
    pub fn local_card(&self) -> &SignedCard {
        &self.local
    }

    /// The trust policy.
    pub fn policy(&self) -> &TrustPolicy {
        &self.policy
    }

    /// The operators admitted as of the last update.
    pub fn admitted_operators(&self) -> &BTreeSet<OperatorId> {
        &self.admitted
    }

    /// Why this host has no peers, if its own card is the reason.
    pub fn local_error(&self) -> Option<&LocalCardError> {
        self.local_error.as_ref()
    }

    /// A number that grows whenever the admitted operators change.
    pub fn admissions(&self) -> u64 {
        self.admissions
    }

    /// The admitted operators' overlay ranges as of the last update.
    pub fn admitted_ranges(&self) -> &BTreeMap<OperatorId, IpNet> {
        &self.ranges
    }

    /// How many cards were refused for claiming what their operator was
    /// not given, each counted once (per key and serial).
    pub fn cards_refused(&self) -> u64 {
        self.cards_refused
    }

    /// Replaces the trust policy (a configuration reload) and updates.
    ///
    /// # Errors
    ///
    /// [`LocalConfigError::OperatorMismatch`] or
    /// [`LocalConfigError::OutOfRange`]; nothing changes then.
    pub fn set_policy(
        &mut self,
        policy: TrustPolicy,
        store: &Store,
        now: UnixTime,
    ) -> Result<(), LocalConfigError> {
        check_policy(&self.local, &policy)?;
        self.policy = policy;
        self.update(store, now);
        Ok(())
    }

    /// Replaces this host's card with a new one for the same key and
    /// operator (a renewal), and updates. A newer card in the store still
    /// wins.
    ///
    /// # Errors
    ///
    /// [`LocalConfigError::OtherKey`], [`LocalConfigError::OtherOperator`]
    /// or [`LocalConfigError::OutOfRange`]; nothing changes then.
    pub fn set_local_card(
        &mut self,
        card: SignedCard,
        store: &Store,
        now: UnixTime,
    ) -> Result<(), LocalConfigError> {
        check_same_host(&self.local, &card)?;
        check_policy(&card, &self.policy)?;
        self.local = card;
        self.update(store, now);
        Ok(())
    }

    /// Replaces the policy and, when given, this host's card, and updates;
    /// the caller has checked that they fit each other and this host
    /// ([`crate::Mesh::reconfigure`]).
    pub(crate) fn reconfigure(
        &mut self,
        policy: TrustPolicy,
        card: Option<SignedCard>,
        store: &Store,
        now: UnixTime,
    ) {
        self.policy = policy;
        if let Some(card) = card {
            self.local = card;
        }
        self.update(store, now);
    }

    /// Recomputes the peers from the store at `now` and queues an event for
    /// each difference: removals first, then changes, then additions.
    /// O(c log c) for `c` cards, and the admission over the vouches.
    pub fn update(&mut self, store: &Store, now: UnixTime) {
        if let Some(held) = store.card(&self.local.card().wg_public_key) {
            let newer = held.card().operator == self.local.card().operator
                && held.card().serial >= self.local.card().serial;
            // A renewal that leaves the range is not adopted.
            if newer && held != &self.local && check_policy(held, &self.policy).is_ok() {
                self.local = held.clone();
            }
        }
        self.ranges = self
            .policy
            .admitted_ranges(store.vouches(), store.revocations());
        let admitted: BTreeSet<OperatorId> = self.ranges.keys().copied().collect();
        if admitted != self.admitted {
            self.admitted = admitted;
            self.admissions += 1;
        }
        self.local_error = self.local_error_at(store, now);
        self.candidates.clear();
        self.claimants.clear();
        self.pending.clear();
        self.hosts.clear();
        self.host_of.clear();
        for card in store.cards() {
            self.index_host(store, card.card().wg_public_key);
        }
        let mut refused = BTreeMap::new();
        if self.local_error.is_none() {
            let local = self.local.card();
            self.add_claim(local.wg_public_key, 0, routes(local));
            for card in store.cards() {
                self.consider(store, card.card().wg_public_key, now, &mut refused);
            }
        }
        self.refused = refused;
        let keys: BTreeSet<PublicKey> = self
            .peers
            .keys()
            .chain(self.candidates.keys())
            .copied()
            .collect();
        self.respecify(store, keys);
    }

    /// Takes what changed in the store since the last update into the
    /// peers, and queues an event for each difference. Changes to the
    /// trust (vouches, their withdrawals) or to this host's card, and
    /// [`Changes::Everything`], recompute everything
    /// ([`PeerManager::update`]); any other change is O(k log c) for `k`
    /// cards changed (and due to become valid) and those claiming the same
    /// networks.
    pub fn apply(&mut self, store: &Store, changes: &Changes, now: UnixTime) {
        let local_key = self.local.card().wg_public_key;
        let Changes::Objects(changes) = changes else {
            return self.update(store, now);
        };
        let mut keys = BTreeSet::new();
        for change in changes {
            match change.subject {
                Subject::Vouch(_) | Subject::Revocation(_, RevocationTarget::Vouch(_)) => {
                    return self.update(store, now);
                }
                Subject::Card(key) | Subject::Revocation(_, RevocationTarget::Host(key)) => {
                    if key == local_key {
                        return self.update(store, now);
                    }
                    keys.insert(key);
                }
            }
        }
        if self.local_error_at(store, now) != self.local_error {
            return self.update(store, now);
        }
        if self.local_error.is_some() {
            return;
        }
        while let Some(&(at, key)) = self.pending.first() {
            if at > now {
                break;
            }
            self.pending.pop_first();
            keys.insert(key);
        }
        if keys.is_empty() {
            return;
        }
        // A card that came or went changes which card of its host is the
        // newest: every card of the host is looked at again.
        let mut same_host = BTreeSet::new();
        for key in &keys {
            if let Some(host) = self.host_of.get(key) {
                same_host.extend(self.keys_of_host(host));
            }
            self.index_host(store, *key);
            if let Some(host) = self.host_of.get(key) {
                same_host.extend(self.keys_of_host(host));
            }
        }
        keys.extend(same_host);
        keys.remove(&local_key);
        let mut touched = keys.clone();
        let mut refused = std::mem::take(&mut self.refused);
        for key in keys {
            refused.remove(&key);
            if let Some(old) = self.candidates.remove(&key) {
                for &cidr in &old.routes {
                    self.claimants.remove(&(cidr, old.rank, key));
                    touched.extend(self.claimants_of(cidr).map(|&(_, _, k)| k));
                }
            }
            if self.consider(store, key, now, &mut refused) {
                let claim = &self.candidates[&key];
                for &cidr in &claim.routes {
                    touched.extend(self.claimants_of(cidr).map(|&(_, _, k)| k));
                }
            }
        }
        self.refused = refused;
        touched.remove(&local_key);
        self.respecify(store, touched);
    }

    /// When a card held, or this host's own, becomes valid: the time to
    /// call [`PeerManager::apply`] (with no changes) by. An expired card
    /// never becomes valid, so it sets no time.
    pub fn next_due(&self) -> Option<UnixTime> {
        let local_due = match &self.local_error {
            Some(LocalCardError::Time(CardTimeError::NotYetValid { not_before, .. })) => {
                Some(not_before.saturating_sub(CLOCK_SKEW))
            }
            _ => None,
        };
        self.pending
            .first()
            .map(|&(at, _)| at)
            .into_iter()
            .chain(local_due)
            .min()
    }

    /// Why this host has no peers at `now`, if its own card is the reason.
    fn local_error_at(&self, store: &Store, now: UnixTime) -> Option<LocalCardError> {
        let local = self.local.card();
        if store.is_revoked(local) {
            Some(LocalCardError::Revoked {
                key: local.wg_public_key,
                operator: local.operator,
            })
        } else {
            self.local
                .check_valid_at(now)
                .err()
                .map(LocalCardError::Time)
        }
    }

    /// Takes the card held for `key` as a candidate if it may be a peer;
    /// notes it for later if it is not valid yet, and refuses (reporting
    /// once per serial) one that claims what its operator's range does not
    /// hold. Says whether it was taken.
    fn consider(
        &mut self,
        store: &Store,
        key: PublicKey,
        now: UnixTime,
        refused: &mut BTreeMap<PublicKey, u64>,
    ) -> bool {
        let Some(signed) = store.card(&key) else {
            return false;
        };
        let card = signed.card();
        if let Err(CardTimeError::NotYetValid { not_before, .. }) = signed.check_valid_at(now) {
            self.pending
                .insert((not_before.saturating_sub(CLOCK_SKEW), key));
            return false;
        }
        let local = self.local.card();
        if !usable(store, signed, now)
            || !may_peer(local, card, &self.admitted)
            || !self.is_newest_of_its_host(store, card, now)
        {
            return false;
        }
        // may_peer admits only operators with a range.
        let Some(&range) = self.ranges.get(&card.operator) else {
            return false;
        };
        if let Err(reason) = overlay::check_card(card, range, self.policy.overlay().overlay()) {
            refused.insert(key, card.serial);
            if self.refused.get(&key) != Some(&card.serial) {
                self.cards_refused += 1;
                self.refusals.push_back(CardRefusal {
                    key,
                    name: card.name.clone(),
                    operator: card.operator,
                    serial: card.serial,
                    reason,
                });
            }
            return false;
        }
        // Each network goes to one claimant: this host, then its own
        // operator's hosts, then the lowest key.
        let rank = if card.operator == local.operator {
            1
        } else {
            2
        };
        self.add_claim(key, rank, routes(card));
        true
    }

    /// Files the card held for `key` under its host, and takes the key
    /// out of the host it was filed under before. O(log c).
    fn index_host(&mut self, store: &Store, key: PublicKey) {
        if let Some((operator, name)) = self.host_of.remove(&key) {
            self.hosts.remove(&(operator, name, key));
        }
        if let Some(card) = store.card(&key) {
            let (operator, name) = (card.card().operator, card.card().name.clone());
            self.hosts.insert((operator, name.clone(), key));
            self.host_of.insert(key, (operator, name));
        }
    }

    /// The keys of the cards held for the host `(operator, name)`.
    /// O(log c + cards of the host).
    fn keys_of_host<'a>(
        &'a self,
        (operator, name): &(OperatorId, String),
    ) -> impl Iterator<Item = PublicKey> + 'a {
        let operator = *operator;
        self.hosts
            .range((operator, name.clone(), LEAST_KEY)..=(operator, name.clone(), GREATEST_KEY))
            .map(|&(_, _, key)| key)
    }

    /// The claims on `cidr`, the one that holds it first. O(log n).
    fn claimants_of(&self, cidr: IpNet) -> impl Iterator<Item = &(IpNet, u8, PublicKey)> {
        self.claimants
            .range((cidr, 0, LEAST_KEY)..=(cidr, u8::MAX, GREATEST_KEY))
    }

    /// Whether `card` is the newest usable card of its host (operator and
    /// name): by `not_before`, then serial, then the lower key. O(cards of
    /// the host).
    fn is_newest_of_its_host(&self, store: &Store, card: &HostCard, now: UnixTime) -> bool {
        let rank = |c: &HostCard| (c.not_before, c.serial, std::cmp::Reverse(c.wg_public_key));
        self.keys_of_host(&(card.operator, card.name.clone()))
            .filter(|key| *key != card.wg_public_key)
            .filter_map(|key| store.card(&key))
            .filter(|other| usable(store, other, now))
            .all(|other| rank(other.card()) < rank(card))
    }

    fn add_claim(&mut self, key: PublicKey, rank: u8, routes: Box<[IpNet]>) {
        for &cidr in &routes {
            self.claimants.insert((cidr, rank, key));
        }
        self.candidates.insert(key, Claim { rank, routes });
    }

    /// Recomputes the peers with these keys and queues an event for each
    /// difference: removals first, then changes, then additions.
    fn respecify(&mut self, store: &Store, keys: BTreeSet<PublicKey>) {
        let (mut removed, mut changed, mut added) = (Vec::new(), Vec::new(), Vec::new());
        let local_key = self.local.card().wg_public_key;
        for key in keys {
            let spec = if key == local_key {
                None
            } else {
                self.spec(store, &key)
            };
            match (self.peers.get(&key), spec) {
                (None, None) => {}
                (Some(_), None) => {
                    self.peers.remove(&key);
                    self.membership.push((key, None));
                    removed.push(PeerEvent::Removed(key));
                }
                (None, Some(spec)) => {
                    self.membership.push((key, Some(spec.operator)));
                    added.push(PeerEvent::Added(spec.clone()));
                    self.peers.insert(key, spec);
                }
                (Some(old), Some(spec)) => {
                    if old.operator != spec.operator {
                        self.membership.push((key, Some(spec.operator)));
                    }
                    if *old != spec {
                        changed.push(PeerEvent::Changed(spec.clone()));
                        self.peers.insert(key, spec);
                    }
                }
            }
        }
        self.events.extend(removed);
        self.events.extend(changed);
        self.events.extend(added);
    }

    /// The peer a candidate makes: its card, with the networks it holds.
    fn spec(&self, store: &Store, key: &PublicKey) -> Option<PeerSpec> {
        let claim = self.candidates.get(key)?;
        let card = store.card(key)?.card();
        let local = self.local.card();
        let mut allowed_ips: Vec<IpNet> = claim
            .routes
            .iter()
            .filter(|&&cidr| {
                self.claimants_of(cidr)
                    .next()
                    .is_some_and(|&(_, _, owner)| owner == *key)
            })
            .copied()
            .collect();
        // Kept as long as the peer: no room for four when it has one.
        allowed_ips.shrink_to_fit();
        Some(PeerSpec {
            public_key: card.wg_public_key,
            operator: card.operator,
            name: card.name.clone(),
            role: card.role,
            addresses: card.addresses.clone(),
            endpoint: card.endpoints.first().cloned(),
            allowed_ips,
            persistent_keepalive: (local.endpoints.is_empty() && !card.endpoints.is_empty())
                .then_some(PERSISTENT_KEEPALIVE),
        })
    }

    /// The peers added, with their operator, and removed (`None`) since
    /// the last call, in order: what gossip must learn. O(1).
    pub fn take_membership(&mut self) -> Vec<(PublicKey, Option<OperatorId>)> {
        std::mem::take(&mut self.membership)
    }

    /// The next change to apply.
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    /// The next card refused for its claims, to log.
    pub fn poll_refusal(&mut self) -> Option<CardRefusal> {
        self.refusals.pop_front()
    }

    /// The current peers, ascending by key.
    pub fn peers(&self) -> impl Iterator<Item = &PeerSpec> {
        self.peers.values()
    }

    /// The peer with this key.
    pub fn peer(&self, key: &PublicKey) -> Option<&PeerSpec> {
        self.peers.get(key)
    }

    /// Whether `key` is one of this host's peers: a handshake from any
    /// other key is to be ignored.
    pub fn is_admitted_peer(&self, key: &PublicKey) -> bool {
        self.peers.contains_key(key)
    }
}

/// Whether a card may make a peer at `now` at all: valid, and its key not
/// revoked by its operator.
fn usable(store: &Store, card: &SignedCard, now: UnixTime) -> bool {
    card.check_valid_at(now).is_ok() && !store.is_revoked(card.card())
}

/// The networks a card asks to have routed to its host: its addresses as
/// host routes, and its allowed IPs; ascending, without repeats.
fn routes(card: &HostCard) -> Box<[IpNet]> {
    let mut routes: Vec<IpNet> = card
        .addresses
        .iter()
        .map(|address| IpNet::host(address.addr()))
        .chain(card.allowed_ips.iter().copied())
        .collect();
    routes.sort_unstable();
    routes.dedup();
    routes.into_boxed_slice()
}

/// Whether the card `local` fits `policy`: its operator's, and inside the
/// range the policy gives that operator.
pub(crate) fn check_policy(
    local: &SignedCard,
    policy: &TrustPolicy,
) -> Result<(), LocalConfigError> {
    if policy.local() != local.card().operator {
        return Err(LocalConfigError::OperatorMismatch {
            card: local.card().operator,
            policy: policy.local(),
        });
    }
    let overlay = policy.overlay();
    // TrustPolicy::new refuses a policy without a range for its own operator.
    if let Some(range) = overlay.range(&policy.local()) {
        overlay::check_card(local.card(), range, overlay.overlay())
            .map_err(LocalConfigError::OutOfRange)?;
    }
    Ok(())
}

pub(crate) fn check_same_host(
    current: &SignedCard,
    new: &SignedCard,
) -> Result<(), LocalConfigError> {
    let (current, new) = (current.card(), new.card());
    if current.wg_public_key != new.wg_public_key {
        return Err(LocalConfigError::OtherKey {
            current: current.wg_public_key,
            new: new.wg_public_key,
        });
    }
    if current.operator != new.operator {
        return Err(LocalConfigError::OtherOperator {
            current: current.operator,
            new: new.operator,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_incremental;
