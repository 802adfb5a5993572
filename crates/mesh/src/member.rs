//! [`Mesh`]: one member of the mesh — its store, its gossip and its peer
//! manager kept in step — as the single sans-IO object the daemon drives.

use std::collections::{BTreeMap, BTreeSet};

use sentrymesh_types::{IpNet, PublicKey, UnixTime};

use crate::card::SignedCard;
use crate::gossip::{Gossip, GossipError, GossipStats, Refusal};
use crate::identity::OperatorId;
use crate::object::Object;
use crate::peers::{
    CardRefusal, LocalCardError, LocalConfigError, PeerEvent, PeerManager, PeerSpec,
};
use crate::store::{InsertError, Inserted, Store};
use crate::trust::TrustPolicy;

/// Why a mesh member cannot start, or a reload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// The card and the policy do not fit together.
    #[error(transparent)]
    Config(#[from] LocalConfigError),
    /// The store refuses this host's own card.
    #[error("this host's own card is refused: {0}")]
    LocalCard(#[source] InsertError),
}

/// One member of the mesh: its store, its gossip and its peer manager kept
/// in step, as the single sans-IO object the daemon drives.
///
/// Every input may change the store; after each one the peers are brought
/// up to date with what changed (only that: see [`PeerManager::apply`]),
/// gossip is told the peers added and removed and the admitted operators,
/// and the differences are queued as [`PeerEvent`]s. So a revocation received in a
/// message has, by the time [`Mesh::handle_message`] returns, removed its
/// host from the peers, been queued for every other peer, and dropped
/// whatever was queued for the revoked host.
///
/// # The run loop
///
/// ```text
/// let mut mesh = Mesh::new(card, policy, Store::decode(&state_file)?, unix_now())?;
/// loop {
///     apply every mesh.poll_event():       Added/Changed → configure the peer (sessions of a
///                                          changed peer stay); Removed → drop it and its sessions
///     send every mesh.poll_transmit():     (peer key, bytes) → through that peer's tunnel session
///     log every mesh.poll_refusal() and mesh.poll_card_refusal()
///     if mesh.store().generation() != written, and the last write began a second ago or more
///                                          → write mesh.store().encode() atomically, off the
///                                            loop's thread (and once more when stopping)
///     wait for: a gossip datagram (→ mesh.handle_message(peer, bytes, unix_now())),
///               an object from the operator (→ mesh.insert(..)), a reload
///               (→ set_policy, set_local_card), or mesh.poll_timeout() (→ handle_timeout)
/// }
/// ```
///
/// and, for every WireGuard handshake: answer only keys for which
/// [`Mesh::is_admitted_peer`] holds. Seed gossip's random choices once
/// from the operating system ([`Mesh::reseed`]), and tell it every few
/// seconds which peers have a live session ([`Mesh::set_linked`]); a
/// message for a peer that never had one is better dropped, and a
/// handshake started, than left waiting in the tunnel.
#[derive(Debug)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub struct Mesh {
    gossip: Gossip,
    peers: PeerManager,
    /// The [`PeerManager::admissions`] gossip was last told of.
    admissions_told: Option<u64>,
}

impl Mesh {
    /// The member with card `local` and trust `policy`, starting from
    /// `store` (read from the state directory, or empty), at `now` (Unix
    /// seconds). The card is added to the store; a newer card for the same
    /// host already there is used instead.
    ///
    /// # Errors
    ///
    /// [`MeshError::Config`] when the policy is another operator's;
    /// [`MeshError::LocalCard`] when the card is expired or not yet valid,
    /// its key was revoked, or another operator's card holds its key.
    pub fn new(
        local: SignedCard,
        policy: TrustPolicy,
        store: Store,
        now: UnixTime,
    ) -> Result<Self, MeshError> {
        let peers = PeerManager::new(local.clone(), policy)?;
        let mut gossip = Gossip::new(store, local.card().operator);
        // Hosts of one operator choose apart; the daemon reseeds at random.
        let key = local.card().wg_public_key;
        gossip.reseed(u64::from_be_bytes(
            key.as_bytes()[..8].try_into().unwrap_or_default(),
        ));
        gossip.set_direct(peers.policy().direct());
        gossip
            .insert(local.into(), now)
            .map_err(MeshError::LocalCard)?;
        let mut mesh = Self {
            gossip,
            peers,
            admissions_told: None,
        };
        mesh.refresh(now);
        Ok(mesh)
    }

    // ----- inputs ------------------------------------------------------

    /// Handles a gossip message from the peer with key `from` — the peer
    /// whose tunnel session it arrived through, never a key read from the
    /// packet.
    ///
    /// # Errors
    ///
    /// [`GossipError`] when the message is dropped (it is counted in
    /// [`Mesh::stats`]); the daemon may log it.
    pub fn handle_message(
        &mut self,
        from: PublicKey,
        bytes: &[u8],
        now: UnixTime,
    ) -> Result<(), GossipError> {
        let result = self.gossip.handle_message(from, bytes, now);
        self.refresh_if_changed(now);
        result
    }

    /// Adds an object learned locally — a card or vouch from a bundle or the
    /// control socket, a revocation the operator signed — and spreads it.
    ///
    /// # Errors
    ///
    /// [`InsertError::NotAdmitted`] when its signer is not admitted (yet:
    /// offer it again when more operators are); [`InsertError`] when the
    /// store refuses it.
    pub fn insert(
        &mut self,
        object: impl Into<Object>,
        now: UnixTime,
    ) -> Result<Inserted, InsertError> {
        let result = self.gossip.insert(object.into(), now);
        self.refresh_if_changed(now);
        result
    }

    /// Replaces the trust policy (a reload); the peers change at once.
    ///
    /// # Errors
    ///
    /// [`MeshError::Config`] when the policy is another operator's; nothing
    /// changes then.
    pub fn set_policy(&mut self, policy: TrustPolicy, now: UnixTime) -> Result<(), MeshError> {
        self.peers.set_policy(policy, self.gossip.store(), now)?;
        self.refresh(now);
        Ok(())
    }

    /// Replaces this host's card with a renewal (same key and operator),
    /// which is spread like any new object.
    ///
    /// # Errors
    ///
    /// [`MeshError::Config`] for a card of another host, or one outside
    /// its operator's range; [`MeshError::LocalCard`] when the store
    /// refuses it. Nothing changes then, the store included. An older card
    /// than the one held is no error: the result says
    /// [`Inserted::Outdated`] and the held one stays in use.
    pub fn set_local_card(
        &mut self,
        card: SignedCard,
        now: UnixTime,
    ) -> Result<Inserted, MeshError> {
        self.reconfigure(self.peers.policy().clone(), card, now)
    }

    /// Replaces the trust policy and this host's card together (a reload),
    /// each checked against the other rather than against what it
    /// replaces: so a policy that moves this operator's overlay range and a
    /// card in the new range are taken as one. An older card than the one
    /// held is no error; the held one stays in use, and must fit.
    ///
    /// # Errors
    ///
    /// [`MeshError::Config`] when the card is another host's, or the card
    /// in use afterwards does not fit the policy (another operator's, or
    /// outside its range); [`MeshError::LocalCard`] when the store refuses
    /// the card. Nothing changes then.
    pub fn reconfigure(
        &mut self,
        policy: TrustPolicy,
        card: SignedCard,
        now: UnixTime,
    ) -> Result<Inserted, MeshError> {
        let held = self.peers.local_card();
        crate::peers::check_same_host(held, &card)?;
        let in_use = if card.card().serial > held.card().serial {
            &card
        } else {
            held
        };
        crate::peers::check_policy(in_use, &policy)?;
        let inserted = self
            .gossip
            .insert(card.clone().into(), now)
            .map_err(MeshError::LocalCard)?;
        let card = inserted.changed().then_some(card);
        self.peers
            .reconfigure(policy, card, self.gossip.store(), now);
        self.refresh(now);
        Ok(inserted)
    }

    /// Notes whether the peer with `key` has a WireGuard session (as the
    /// daemon's session watch sees it): gossip prefers peers that do, and
    /// keeps a few up ([`crate::gossip`]).
    pub fn set_linked(&mut self, key: &PublicKey, linked: bool) {
        self.gossip.set_linked(key, linked);
    }

    /// Seeds gossip's random choices of peers: give it the operating
    /// system's randomness, so no one can tell which peers a host will pick.
    pub fn reseed(&mut self, seed: u64) {
        self.gossip.reseed(seed);
    }

    /// Runs the timers due at `now`: gossip rounds, expiry of cards (and of
    /// the peers they made).
    pub fn handle_timeout(&mut self, now: UnixTime) {
        self.gossip.handle_timeout(now);
        self.refresh_if_changed(now);
    }

    // ----- outputs -----------------------------------------------------

    /// When [`Mesh::handle_timeout`] next has work, in Unix seconds. Sleep
    /// by the wall clock, and for at most a few seconds at a time, so a
    /// clock stepped back does not stall the mesh.
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        self.gossip
            .poll_timeout()
            .into_iter()
            .chain(self.peers.next_due())
            .min()
    }

    /// The next gossip message: the peer to send it to, through that peer's
    /// session, and the bytes.
    pub fn poll_transmit(&mut self) -> Option<(PublicKey, Vec<u8>)> {
        self.gossip.poll_transmit()
    }

    /// The next change to the WireGuard peers.
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        self.peers.poll_event()
    }

    /// The next object the store refused, to log.
    pub fn poll_refusal(&mut self) -> Option<Refusal> {
        self.gossip.poll_refusal()
    }

    /// The next card refused for claiming what its operator's overlay
    /// range does not hold, to log: each card once.
    pub fn poll_card_refusal(&mut self) -> Option<CardRefusal> {
        self.peers.poll_refusal()
    }

    // ----- state -------------------------------------------------------

    /// Whether `key` is one of this host's peers; a handshake from any other
    /// key gets no session.
    pub fn is_admitted_peer(&self, key: &PublicKey) -> bool {
        self.peers.is_admitted_peer(key)
    }

    /// The current peers, ascending by key.
    pub fn peers(&self) -> impl Iterator<Item = &PeerSpec> {
        self.peers.peers()
    }

    /// The peer with this key.
    pub fn peer(&self, key: &PublicKey) -> Option<&PeerSpec> {
        self.peers.peer(key)
    }

    /// This host's card in use.
    pub fn local_card(&self) -> &SignedCard {
        self.peers.local_card()
    }

    /// Why this host has no peers, when its own card is the reason
    /// (revoked, expired).
    pub fn local_error(&self) -> Option<&LocalCardError> {
        self.peers.local_error()
    }

    /// The trust policy.
    pub fn policy(&self) -> &TrustPolicy {
        self.peers.policy()
    }

    /// The operators admitted now.
    pub fn admitted_operators(&self) -> &BTreeSet<OperatorId> {
        self.peers.admitted_operators()
    }

    /// How many cards were refused for claiming what their operator's
    /// overlay range does not hold, each counted once.
    pub fn cards_refused(&self) -> u64 {
        self.peers.cards_refused()
    }

    /// The operators admitted now, each with the overlay range its cards
    /// must keep inside.
    pub fn admitted_ranges(&self) -> &BTreeMap<OperatorId, IpNet> {
        self.peers.admitted_ranges()
    }

    /// The store, to write to the state directory when its
    /// [`Store::generation`] changed.
    pub fn store(&self) -> &Store {
        self.gossip.store()
    }

    /// The gossip counters.
    pub fn stats(&self) -> GossipStats {
        self.gossip.stats()
    }

    /// Takes what changed in the store into the peers and gossip: O(what
    /// changed) (see [`PeerManager::apply`]).
    fn refresh_if_changed(&mut self, now: UnixTime) {
        let changes = self.gossip.take_changes();
        self.peers.apply(self.gossip.store(), &changes, now);
        self.sync_gossip(now);
    }

    /// Recomputes the peers whole (a new policy or card) and tells gossip.
    fn refresh(&mut self, now: UnixTime) {
        self.gossip.take_changes();
        self.peers.update(self.gossip.store(), now);
        self.gossip.set_direct(self.peers.policy().direct());
        self.sync_gossip(now);
    }

    /// Tells gossip the peers added and removed, and the admitted
    /// operators when they changed.
    fn sync_gossip(&mut self, now: UnixTime) {
        for (key, operator) in self.peers.take_membership() {
            match operator {
                Some(operator) => self.gossip.add_peer(key, operator),
                None => self.gossip.remove_peer(&key),
            }
        }
        if self.admissions_told != Some(self.peers.admissions()) {
            self.gossip
                .set_admitted(self.peers.admitted_operators().clone(), now);
            self.admissions_told = Some(self.peers.admissions());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::Overlay;
    use crate::role::Role;
    use crate::testing::{NOW, card, operator, signed};

    /// Operator 1's policy, trusting operator 2, with operator 1's range
    /// `own` in 198.19.0.0/16 and operator 2's 198.19.2.0/24.
    fn policy(own: &str) -> TrustPolicy {
        let overlay = Overlay::new(
            "198.19.0.0/16".parse().unwrap(),
            [
                (operator(1).operator_id(), own.parse().unwrap()),
                (operator(2).operator_id(), "198.19.2.0/24".parse().unwrap()),
            ],
        )
        .unwrap();
        TrustPolicy::new(
            operator(1).operator_id(),
            [operator(2).operator_id()],
            1,
            overlay,
        )
        .unwrap()
    }

    /// Operator 1's sentry at `address`, serial `serial`.
    fn sentry(address: &str, serial: u64) -> SignedCard {
        let mut c = card(&operator(1), "sentry", Role::Sentry);
        c.addresses = vec![address.parse().unwrap()];
        c.allowed_ips = vec![];
        c.serial = serial;
        signed(c, &operator(1))
    }

    #[test]
    fn a_moved_range_and_a_card_in_it_are_taken_together() {
        let old = sentry("198.19.1.1/32", 1);
        let moved = sentry("198.19.5.1/32", 2);
        let mut mesh = Mesh::new(old.clone(), policy("198.19.1.0/24"), Store::new(), NOW).unwrap();
        // One at a time, each is refused against the other's predecessor.
        assert!(matches!(
            mesh.set_policy(policy("198.19.5.0/24"), NOW),
            Err(MeshError::Config(LocalConfigError::OutOfRange(_)))
        ));
        assert!(matches!(
            mesh.set_local_card(moved.clone(), NOW),
            Err(MeshError::Config(LocalConfigError::OutOfRange(_)))
        ));
        // A pair that does not fit is refused, and nothing changes.
        assert!(matches!(
            mesh.reconfigure(policy("198.19.6.0/24"), moved.clone(), NOW),
            Err(MeshError::Config(LocalConfigError::OutOfRange(_)))
        ));
        assert_eq!(mesh.local_card(), &old);
        assert_eq!(mesh.policy(), &policy("198.19.1.0/24"));
        // Together they are one change.
        let inserted = mesh
            .reconfigure(policy("198.19.5.0/24"), moved.clone(), NOW)
            .unwrap();
        assert!(inserted.changed());
        assert_eq!(mesh.local_card(), &moved);
        assert_eq!(mesh.policy(), &policy("198.19.5.0/24"));
        assert_eq!(mesh.local_error(), None);
        // An older card given with a policy the held one fits: no error,
        // the held card stays.
        let inserted = mesh
            .reconfigure(policy("198.19.5.0/24"), old.clone(), NOW)
            .unwrap();
        assert!(!inserted.changed());
        assert_eq!(mesh.local_card(), &moved);
        // ... and with one it does not fit: refused.
        assert!(mesh.reconfigure(policy("198.19.1.0/24"), old, NOW).is_err());
        assert_eq!(mesh.policy(), &policy("198.19.5.0/24"));
    }
}
