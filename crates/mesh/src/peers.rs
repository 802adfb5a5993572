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
//! When this host's own card is revoked, expired or not yet valid it has no
//! peers at all ([`PeerManager::local_error`] says why).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use sentrymesh_types::{InterfaceAddress, IpNet, PublicKey, UnixTime};

use crate::card::{CardTimeError, HostCard, SignedCard};
use crate::endpoint::Endpoint;
use crate::identity::OperatorId;
use crate::overlay::{self, OutOfRange};
use crate::peering::may_peer;
use crate::role::Role;
use crate::store::Store;
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
    events: VecDeque<PeerEvent>,
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
            events: VecDeque::new(),
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
        self.admitted = self.ranges.keys().copied().collect();
        let local = self.local.card();
        self.local_error = if store.is_revoked(local) {
            Some(LocalCardError::Revoked {
                key: local.wg_public_key,
                operator: local.operator,
            })
        } else {
            self.local
                .check_valid_at(now)
                .err()
                .map(LocalCardError::Time)
        };
        let desired = match self.local_error {
            Some(_) => BTreeMap::new(),
            None => self.desired(store, now),
        };

        let mut changed = Vec::new();
        let mut added = Vec::new();
        for (key, spec) in &desired {
            match self.peers.get(key) {
                None => added.push(PeerEvent::Added(spec.clone())),
                Some(old) if old != spec => changed.push(PeerEvent::Changed(spec.clone())),
                Some(_) => {}
            }
        }
        let removed = self
            .peers
            .keys()
            .filter(|key| !desired.contains_key(key))
            .map(|key| PeerEvent::Removed(*key));
        self.events.extend(removed);
        self.events.extend(changed);
        self.events.extend(added);
        self.peers = desired;
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

    /// The peers this host should have now; refuses (and reports once)
    /// the cards that claim what their operator's range does not hold.
    fn desired(&mut self, store: &Store, now: UnixTime) -> BTreeMap<PublicKey, PeerSpec> {
        let local = self.local.card();
        let overlay = self.policy.overlay().overlay();
        let mut refused = BTreeMap::new();
        let mut remotes: Vec<&HostCard> = Vec::new();
        for card in store
            .cards()
            .filter(|signed| signed.check_valid_at(now).is_ok())
            .map(SignedCard::card)
            .filter(|card| !store.is_revoked(card) && may_peer(local, card, &self.admitted))
        {
            // may_peer admits only operators with a range.
            let Some(&range) = self.ranges.get(&card.operator) else {
                continue;
            };
            match overlay::check_card(card, range, overlay) {
                Ok(()) => remotes.push(card),
                Err(reason) => {
                    refused.insert(card.wg_public_key, card.serial);
                    if self.refused.get(&card.wg_public_key) != Some(&card.serial) {
                        self.cards_refused += 1;
                        self.refusals.push_back(CardRefusal {
                            key: card.wg_public_key,
                            name: card.name.clone(),
                            operator: card.operator,
                            serial: card.serial,
                            reason,
                        });
                    }
                }
            }
        }
        self.refused = refused;

        // Each network goes to one claimant: this host, then its own
        // operator's hosts, then the lowest key.
        let mut owner: BTreeMap<IpNet, (u8, PublicKey)> = BTreeMap::new();
        let mut claim = |card: &HostCard, rank: u8| {
            for cidr in routes(card) {
                let claimant = (rank, card.wg_public_key);
                owner
                    .entry(cidr)
                    .and_modify(|held| *held = (*held).min(claimant))
                    .or_insert(claimant);
            }
        };
        claim(local, 0);
        for card in &remotes {
            claim(
                card,
                if card.operator == local.operator {
                    1
                } else {
                    2
                },
            );
        }

        remotes
            .into_iter()
            .map(|card| {
                let allowed_ips = routes(card)
                    .into_iter()
                    .filter(|cidr| owner.get(cidr).map(|o| o.1) == Some(card.wg_public_key))
                    .collect();
                let spec = PeerSpec {
                    public_key: card.wg_public_key,
                    operator: card.operator,
                    name: card.name.clone(),
                    role: card.role,
                    addresses: card.addresses.clone(),
                    endpoint: card.endpoints.first().cloned(),
                    allowed_ips,
                    persistent_keepalive: (local.endpoints.is_empty()
                        && !card.endpoints.is_empty())
                    .then_some(PERSISTENT_KEEPALIVE),
                };
                (card.wg_public_key, spec)
            })
            .collect()
    }
}

/// The networks a card asks to have routed to its host: its addresses as
/// host routes, and its allowed IPs.
fn routes(card: &HostCard) -> BTreeSet<IpNet> {
    card.addresses
        .iter()
        .map(|address| IpNet::host(address.addr()))
        .chain(card.allowed_ips.iter().copied())
        .collect()
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
