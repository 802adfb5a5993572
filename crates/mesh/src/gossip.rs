//! Gossip: how members exchange cards, vouches and revocations with their
//! mesh peers, as a sans-IO state machine.
//!
//! The shared state is a set of signed objects that only grows (see
//! [`Store`]), so members converge by anti-entropy with no leader:
//!
//! ```text
//!   A                                   B
//!   │ ── Digest { ids A may show B } ──► │   every DIGEST_INTERVAL, and at once to a new peer
//!   │ ◄── Want { ids B lacks } ───────── │
//!   │ ── Objects { the objects } ──────► │   B verifies, stores, and pushes what is new
//!   │                                    │   to its other peers at once
//! ```
//!
//! A newly learned object is pushed to every other peer straight away
//! rather than waiting for the next digest round, so a revocation crosses
//! the mesh in one network traversal per hop.
//!
//! # What goes to whom
//!
//! Every object is filtered per recipient, when the message is built:
//!
//! * nothing goes anywhere unless its signer is this host's operator or one
//!   it admits: an object of an operator no longer admitted is not relayed;
//! * a card goes to a peer only when [`may_share`] allows it for the peer's
//!   operator — a producer's or BIOS node's card only to its own operator's
//!   hosts;
//! * a host revocation names the host's key, so it goes where that host's
//!   card may go: to the revoking operator's own hosts, and to others only
//!   when this host knows the key as a public host of that operator (held,
//!   or kept aside after the revocation; see [`Store`]) — revoking a
//!   producer never shows its key to another operator — and never to the
//!   host it revokes, which must not learn of it before the rest of the
//!   mesh has dropped it (by then it is no peer of anyone's);
//! * vouches and vouch withdrawals go to every peer (peers are admitted
//!   hosts);
//! * the digest sent to a peer lists only the ids of objects it may receive,
//!   so another operator's host never even learns the id of a hidden card,
//!   and a want for an id it may not have is silently ignored.
//!
//! On receipt, a message is first charged to the budget of its sender's
//! operator — one for all of an operator's peers, since a rival can have a
//! peer per card it signs — of [`RECEIVE_BURST`] bytes, refilled at
//! [`RECEIVE_RATE`] bytes a second: a message over it — from a compromised
//! member flooding valid objects, each costing a signature check — is
//! dropped and counted, unread, and gossip asks again for what it lost.
//! Another operator's replacements of its own objects (a renewed card, a
//! later vouch), which need no room but are relayed everywhere and change
//! every store, are limited the same way, per operator: [`REPLACEMENT_BURST`],
//! then one every [`REPLACEMENT_EVERY`] seconds; one over it is dropped,
//! counted as over the quota, and asked for again later. Then each object is taken in the
//! cheapest order of checks that refuses a flood:
//!
//! ```text
//! decode the framing → signer admitted? (a set lookup on the id the encoding names; no: dropped,
//!                      unverified, counted as not admitted)
//!                    → room? (when its signer is at its quota, a card, vouch or revocation that would
//!                      need room, read from the encoding, is dropped unverified and counted)
//!                    → signature and validity (a message with a bad one is dropped, counted)
//!                    → a hidden card of another operator? (dropped, counted)
//!                    → the store: its rules and its signer's quota (refused, counted) → relayed if new
//! ```
//!
//! Vouches count the same way: a vouch is stored only when its voucher is
//! admitted — and every operator the trust policy takes vouches from (a
//! directly trusted one) is — so the vouches that admit an operator are
//! stored before it is admitted, and its own objects after. When the
//! admitted operators shrink, what the others signed leaves the store
//! ([`Store::retain_signers`]); when they grow, objects refused before are
//! asked for again at once.

mod budget;
mod message;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;

use budget::{ReceiveBudget, Replacements};
pub use message::{
    EncodeMessageError, GOSSIP_VERSION, GossipMessage, MAX_IDS, MAX_MESSAGE_LEN, MAX_OBJECTS,
    MessageError,
};
use message::{ObjectsWriter, Screen, encode_digest, encode_want};
use sentrymesh_types::{PublicKey, UnixTime};

use crate::card::HostCard;
use crate::identity::OperatorId;
use crate::object::{Object, ObjectId, ObjectKind, ObjectRef, claimed_signer};
use crate::peering::may_share;
use crate::revocation::RevocationTarget;
use crate::store::{InsertError, Inserted, Store};

/// Seconds between two digests to one peer.
pub const DIGEST_INTERVAL: u64 = 3;
/// Seconds an object the store refused is not asked for again.
const IGNORE_FOR: u64 = 600;
/// Seconds before an id asked for and not received is asked again.
const REQUEST_TIMEOUT: u64 = DIGEST_INTERVAL;
/// The most refused ids remembered.
const MAX_IGNORED: usize = 4096;
/// The most requested ids remembered.
const MAX_REQUESTED: usize = 8192;
/// The most ids queued to ask one peer for; a peer listing more is asked
/// for the rest in a later round.
const MAX_WANTED: usize = 4 * MAX_IDS;
/// The most refusals kept for [`Gossip::poll_refusal`].
const MAX_REFUSALS: usize = 64;
/// Bytes of gossip an operator's peers together may send at once: 32 full
/// messages, many times what the first exchange of a launch group's hosts
/// takes.
pub const RECEIVE_BURST: u64 = 32 * MAX_MESSAGE_LEN as u64;
/// Bytes of gossip an operator's peers together may send per second once
/// their burst is spent: 8 full messages.
pub const RECEIVE_RATE: u64 = 8 * MAX_MESSAGE_LEN as u64;
/// How many of its objects another operator may replace through gossip at
/// once: a renewal of each of a launch group operator's hosts, and more.
pub const REPLACEMENT_BURST: u64 = 32;
/// Seconds between two replacements another operator may make once its
/// burst is spent (30 a minute). A replacement needs no room, yet is
/// relayed to every peer and changes the store (peers recomputed, the
/// state written): without a limit a rival could make every member do
/// that as fast as it can sign.
pub const REPLACEMENT_EVERY: u64 = 2;

/// Counters of what gossip did, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GossipStats {
    /// Messages decoded from peers.
    pub messages_received: u64,
    /// Messages handed out by [`Gossip::poll_transmit`].
    pub messages_sent: u64,
    /// Messages dropped because they did not decode (malformed, too long,
    /// or carrying an object that does not verify).
    pub messages_malformed: u64,
    /// Messages dropped because their sender is not a peer.
    pub messages_from_strangers: u64,
    /// Messages dropped unread because their sender's operator had spent
    /// its budget ([`RECEIVE_BURST`], [`RECEIVE_RATE`]).
    pub messages_over_budget: u64,
    /// Objects received in valid messages.
    pub objects_received: u64,
    /// Objects received that were new to the store (and relayed).
    pub objects_new: u64,
    /// Objects received that the store held already, or held newer.
    pub objects_known: u64,
    /// Objects received that the store refused (expired, revoked, key
    /// conflict, dated in the future, no room), or whose signer is not
    /// admitted.
    pub objects_refused: u64,
    /// Of the refused objects, those signed by an operator this host does
    /// not admit: dropped before their signature was checked.
    pub objects_not_admitted: u64,
    /// Of the refused objects, those their signer's quota, or the store's
    /// limit, had no room for (most dropped before their signature was
    /// checked), and replacements over their signer's rate
    /// ([`REPLACEMENT_BURST`], [`REPLACEMENT_EVERY`]).
    pub objects_over_quota: u64,
    /// Cards of another operator's hidden hosts, which no peer should send
    /// this host.
    pub objects_not_for_us: u64,
    /// Of the refused objects, cards claiming a key another operator's card
    /// holds. Every card proves its key, so these come from a key's holder
    /// that signed for two operators, not from a rival.
    pub key_conflicts: u64,
}

/// Why a gossip message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GossipError {
    /// The sender is not one of this host's mesh peers.
    #[error("gossip message from {from}, which is not a mesh peer of this host")]
    UnknownPeer {
        /// The sender's key.
        from: PublicKey,
    },
    /// The sender's operator's peers have sent more than its budget allows.
    #[error(
        "gossip message from {from} dropped: its operator's peers send more than {RECEIVE_RATE} \
         bytes a second"
    )]
    OverBudget {
        /// The sender's key.
        from: PublicKey,
    },
    /// The message does not decode.
    #[error("gossip message from {from} dropped: {source}")]
    Malformed {
        /// The sender's key.
        from: PublicKey,
        /// What is wrong with it.
        source: MessageError,
    },
}

/// An object the store refused, for the daemon to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The peer that sent it; `None` when it was inserted locally.
    pub from: Option<PublicKey>,
    /// The object's id.
    pub id: ObjectId,
    /// Why the store refused it.
    pub error: InsertError,
}

/// A neighbour: a host this host gossips with (one of its WireGuard peers,
/// as the peer manager chose them), and what gossip keeps about it.
#[derive(Debug)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
struct Neighbour {
    operator: OperatorId,
    next_digest: UnixTime,
    /// A digest round is under way.
    digest_due: bool,
    /// The round continues after this id.
    digest_cursor: Option<ObjectId>,
    /// Objects to send (pushed or wanted), filtered when sent.
    push: BTreeSet<ObjectId>,
    /// Ids to ask for.
    want: BTreeSet<ObjectId>,
}

impl Neighbour {
    fn new(operator: OperatorId, now: UnixTime) -> Self {
        Self {
            operator,
            next_digest: now.saturating_add(DIGEST_INTERVAL),
            digest_due: true,
            digest_cursor: None,
            push: BTreeSet::new(),
            want: BTreeSet::new(),
        }
    }

    fn has_output(&self) -> bool {
        self.digest_due || !self.push.is_empty() || !self.want.is_empty()
    }

    fn start_digest(&mut self) {
        self.digest_due = true;
        self.digest_cursor = None;
    }
}

/// One host's gossip: its store, its peers and what is due to each. See the
/// [module docs](self).
#[derive(Debug)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub struct Gossip {
    store: Store,
    local_operator: OperatorId,
    admitted: BTreeSet<OperatorId>,
    /// The admitted operators by the bytes of their ids, for the checks
    /// before a signature is.
    admitted_keys: BTreeMap<[u8; 32], OperatorId>,
    /// Whether the store still holds what it was given, not yet pruned to
    /// the admitted operators.
    unpruned: bool,
    /// The neighbours, by WireGuard key.
    neighbours: BTreeMap<PublicKey, Neighbour>,
    /// What each operator's peers may still send us.
    budgets: BTreeMap<OperatorId, ReceiveBudget>,
    /// How many of its objects each other operator may still replace.
    replacements: BTreeMap<OperatorId, Replacements>,
    /// The peer served last by `poll_transmit`, for round robin.
    last_served: Option<PublicKey>,
    /// Ids refused recently, not asked for again until the time given.
    ignored: BTreeMap<ObjectId, UnixTime>,
    /// Ids asked for, and when.
    requested: BTreeMap<ObjectId, UnixTime>,
    refusals: VecDeque<Refusal>,
    last_now: UnixTime,
    stats: GossipStats,
}

impl Gossip {
    /// Gossip for a host of `local_operator`, starting from `store` and with
    /// no peers yet. The store is pruned to the operators admitted at the
    /// first [`Gossip::set_peers`].
    pub fn new(mut store: Store, local_operator: OperatorId) -> Self {
        store.reserve_room(local_operator, &BTreeSet::new());
        Self {
            store,
            local_operator,
            admitted: BTreeSet::from([local_operator]),
            admitted_keys: BTreeMap::from([(*local_operator.as_bytes(), local_operator)]),
            unpruned: true,
            neighbours: BTreeMap::new(),
            budgets: BTreeMap::new(),
            replacements: BTreeMap::new(),
            last_served: None,
            ignored: BTreeMap::new(),
            requested: BTreeMap::new(),
            refusals: VecDeque::new(),
            last_now: UnixTime(0),
            stats: GossipStats::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The counters.
    pub fn stats(&self) -> GossipStats {
        self.stats
    }

    /// The peers gossiped with.
    pub fn peers(&self) -> impl Iterator<Item = &PublicKey> {
        self.neighbours.keys()
    }

    /// Sets whom to gossip with — each peer's key and operator, as the peer
    /// manager decided — and the operators this host admits. A new peer
    /// gets a digest at once; a peer gone is forgotten with everything
    /// queued for it; a change of admitted operators drops from the store
    /// what the others signed ([`Store::retain_signers`]), forgets the
    /// refusals when it admits more, and starts a digest round to every
    /// peer.
    pub fn set_peers(
        &mut self,
        peers: impl IntoIterator<Item = (PublicKey, OperatorId)>,
        admitted: BTreeSet<OperatorId>,
        now: UnixTime,
    ) {
        self.note_time(now);
        let wanted: BTreeMap<PublicKey, OperatorId> = peers.into_iter().collect();
        self.neighbours
            .retain(|key, peer| wanted.get(key) == Some(&peer.operator));
        for (key, operator) in wanted {
            self.neighbours
                .entry(key)
                .or_insert_with(|| Neighbour::new(operator, now));
        }
        let neighbours = &self.neighbours;
        self.budgets
            .retain(|operator, _| neighbours.values().any(|peer| peer.operator == *operator));
        let mut admitted = admitted;
        admitted.insert(self.local_operator);
        if admitted != self.admitted || self.unpruned {
            if !admitted.is_subset(&self.admitted) {
                self.ignored.clear();
            }
            self.store.retain_signers(&admitted);
            self.replacements
                .retain(|operator, _| admitted.contains(operator));
            self.unpruned = false;
            self.admitted_keys = admitted.iter().map(|op| (*op.as_bytes(), *op)).collect();
            self.admitted = admitted;
            self.neighbours
                .values_mut()
                .for_each(Neighbour::start_digest);
        }
    }

    /// Sets the operators this host trusts directly: with the local one,
    /// they never compete for the store's global caps with the operators
    /// admitted by vouches ([`Store::reserve_room`]).
    pub fn set_direct(&mut self, direct: &BTreeSet<OperatorId>) {
        self.store.reserve_room(self.local_operator, direct);
    }

    /// Inserts an object learned locally (from the configuration, a bundle,
    /// the control socket) and pushes it to every peer that may have it.
    ///
    /// # Errors
    ///
    /// [`InsertError::NotAdmitted`] when its signer is not admitted;
    /// [`InsertError`] when the store refuses it.
    pub fn insert(&mut self, object: Object, now: UnixTime) -> Result<Inserted, InsertError> {
        self.note_time(now);
        let signer = object.as_ref().signer();
        if !self.admits(&signer) {
            return Err(InsertError::NotAdmitted {
                kind: object.kind(),
                signer,
            });
        }
        let id = object.id();
        let inserted = self.store.insert(object, now)?;
        if inserted.changed() {
            self.announce(id, None);
        }
        Ok(inserted)
    }

    /// Handles a message from peer `from` (the key of the WireGuard session
    /// it arrived through) at `now` (Unix seconds).
    ///
    /// # Errors
    ///
    /// [`GossipError`] when the message is dropped: the sender is not a
    /// peer, it is over its budget, or the message does not decode. Objects the store refuses are counted
    /// and queued as [`Refusal`]s, not errors.
    pub fn handle_message(
        &mut self,
        from: PublicKey,
        bytes: &[u8],
        now: UnixTime,
    ) -> Result<(), GossipError> {
        self.note_time(now);
        let Some(peer) = self.neighbours.get_mut(&from) else {
            self.stats.messages_from_strangers += 1;
            return Err(GossipError::UnknownPeer { from });
        };
        let budget = self
            .budgets
            .entry(peer.operator)
            .or_insert_with(|| ReceiveBudget::new(now));
        if !budget.take(bytes.len(), now) {
            self.stats.messages_over_budget += 1;
            return Err(GossipError::OverBudget { from });
        }
        let (admitted, store) = (&self.admitted_keys, &self.store);
        let screen = |kind, encoded: &[u8]| match claimed_signer(encoded) {
            None => Screen::Verify,
            Some(signer) => match admitted.get(signer) {
                None => Screen::NotAdmitted,
                Some(&signer) if !store.may_have_room(signer, kind, encoded) => Screen::NoRoom,
                Some(_) => Screen::Verify,
            },
        };
        let (message, skipped) =
            GossipMessage::decode_screened(bytes, screen).map_err(|source| {
                self.stats.messages_malformed += 1;
                GossipError::Malformed { from, source }
            })?;
        self.stats.messages_received += 1;
        for (id, why) in skipped {
            self.stats.objects_received += 1;
            self.stats.objects_refused += 1;
            match why {
                Screen::NoRoom => self.stats.objects_over_quota += 1,
                Screen::NotAdmitted | Screen::Verify => self.stats.objects_not_admitted += 1,
            }
            self.forget_request(&id);
            self.ignore(id, now);
        }
        match message {
            GossipMessage::Digest { ids } => self.handle_digest(from, ids, now),
            GossipMessage::Want { ids } => self.handle_want(from, ids),
            GossipMessage::Objects { objects } => self.handle_objects(from, objects, now),
        }
        Ok(())
    }

    /// Runs the timers due at `now`: starts digest rounds, forgets old
    /// refusals and requests, and prunes expired cards from the store.
    pub fn handle_timeout(&mut self, now: UnixTime) {
        self.note_time(now);
        for peer in self.neighbours.values_mut() {
            if peer.next_digest <= now {
                peer.start_digest();
                peer.next_digest = now.saturating_add(DIGEST_INTERVAL);
            }
        }
        self.ignored.retain(|_, until| *until > now);
        self.requested
            .retain(|_, at| at.saturating_add(REQUEST_TIMEOUT) > now);
        self.store.prune(now);
    }

    /// When [`Gossip::handle_timeout`] next has work (Unix seconds).
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        let digests = self.neighbours.values().map(|peer| peer.next_digest).min();
        match (digests, self.store.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next message to send: the peer's key and the bytes. Peers are
    /// served in turn; objects go before wants, wants before digests, and
    /// revocations before anything else.
    pub fn poll_transmit(&mut self) -> Option<(PublicKey, Vec<u8>)> {
        loop {
            let key = self.next_peer_with_output()?;
            self.last_served = Some(key);
            // Each build either returns a message or empties part of the
            // peer's queue, so this loop ends.
            if let Some(bytes) = self.build(key) {
                self.stats.messages_sent += 1;
                return Some((key, bytes));
            }
        }
    }

    /// The next object the store refused, to log.
    pub fn poll_refusal(&mut self) -> Option<Refusal> {
        self.refusals.pop_front()
    }

    /// Whether `object` may be sent to a host of `recipient`: the filter of
    /// the [module docs](self).
    pub fn may_send(&self, object: ObjectRef<'_>, recipient: &OperatorId) -> bool {
        may_send(
            object,
            recipient,
            &self.admitted,
            self.local_operator,
            &self.store,
        )
    }

    // ----- inputs ------------------------------------------------------

    fn handle_digest(&mut self, from: PublicKey, ids: Vec<ObjectId>, now: UnixTime) {
        for id in ids {
            let asked_recently = self
                .requested
                .get(&id)
                .is_some_and(|&at| at.saturating_add(REQUEST_TIMEOUT) > now);
            if self.store.contains(&id)
                || self.ignored.contains_key(&id)
                || asked_recently
                || self.neighbours.values().any(|peer| peer.want.contains(&id))
            {
                continue;
            }
            match self.neighbours.get_mut(&from) {
                Some(peer) if peer.want.len() < MAX_WANTED => {
                    peer.want.insert(id);
                }
                _ => break,
            }
        }
    }

    fn handle_want(&mut self, from: PublicKey, ids: Vec<ObjectId>) {
        let Some(peer) = self.neighbours.get_mut(&from) else {
            return;
        };
        // Whether each may go to this peer is decided when it is sent.
        peer.push
            .extend(ids.into_iter().filter(|id| self.store.contains(id)));
    }

    fn handle_objects(&mut self, from: PublicKey, objects: Vec<Object>, now: UnixTime) {
        for object in objects {
            self.stats.objects_received += 1;
            let id = object.id();
            self.forget_request(&id);
            if let Object::Card(card) = &object {
                let card = card.card();
                if card.role.is_hidden() && card.operator != self.local_operator {
                    self.stats.objects_not_for_us += 1;
                    self.ignore(id, now);
                    continue;
                }
            }
            if !self.may_replace(&object, id, now) {
                self.stats.objects_refused += 1;
                self.stats.objects_over_quota += 1;
                self.ignore(id, now);
                continue;
            }
            match self.store.insert(object, now) {
                Ok(inserted) if inserted.changed() => {
                    self.stats.objects_new += 1;
                    self.announce(id, Some(from));
                }
                Ok(inserted) => {
                    self.stats.objects_known += 1;
                    if inserted == Inserted::Outdated {
                        self.ignore(id, now);
                    }
                }
                Err(error) => {
                    self.stats.objects_refused += 1;
                    match error {
                        InsertError::KeyConflict(_) => self.stats.key_conflicts += 1,
                        InsertError::OverQuota { .. } | InsertError::Full { .. } => {
                            self.stats.objects_over_quota += 1;
                        }
                        _ => {}
                    }
                    self.ignore(id, now);
                    if self.refusals.len() == MAX_REFUSALS {
                        self.refusals.pop_front();
                    }
                    self.refusals.push_back(Refusal {
                        from: Some(from),
                        id,
                        error,
                    });
                }
            }
        }
    }

    /// Whether `object` may go on to the store: anything but a replacement
    /// of another operator's own object over that operator's rate
    /// ([`REPLACEMENT_BURST`], [`REPLACEMENT_EVERY`]).
    fn may_replace(&mut self, object: &Object, id: ObjectId, now: UnixTime) -> bool {
        let signer = object.as_ref().signer();
        if signer == self.local_operator || !self.store.would_replace(object, id) {
            return true;
        }
        self.replacements
            .entry(signer)
            .or_insert_with(|| Replacements::new(now))
            .take(now)
    }

    /// Queues a new object for every peer but its sender.
    fn announce(&mut self, id: ObjectId, except: Option<PublicKey>) {
        self.ignored.remove(&id);
        for (key, peer) in &mut self.neighbours {
            peer.want.remove(&id);
            if Some(*key) != except {
                peer.push.insert(id);
            }
        }
    }

    /// Whether objects signed by `signer` are taken.
    fn admits(&self, signer: &OperatorId) -> bool {
        *signer == self.local_operator || self.admitted.contains(signer)
    }

    /// An object arrived: no longer to be asked for.
    fn forget_request(&mut self, id: &ObjectId) {
        self.requested.remove(id);
        self.neighbours.values_mut().for_each(|peer| {
            peer.want.remove(id);
        });
    }

    fn ignore(&mut self, id: ObjectId, now: UnixTime) {
        if self.ignored.len() < MAX_IGNORED {
            self.ignored.insert(id, now.saturating_add(IGNORE_FOR));
        }
    }

    /// Notes the time; when the clock stepped back, timers set by the
    /// later time are pulled in so nothing waits for the clock to catch up.
    fn note_time(&mut self, now: UnixTime) {
        if now < self.last_now {
            for peer in self.neighbours.values_mut() {
                peer.next_digest = peer.next_digest.min(now.saturating_add(DIGEST_INTERVAL));
            }
            self.requested.clear();
            let latest = now.saturating_add(IGNORE_FOR);
            self.ignored
                .values_mut()
                .for_each(|until| *until = latest.min(*until));
        }
        self.last_now = now;
    }

    // ----- outputs -----------------------------------------------------

    /// The first peer after the one served last that has something to send.
    fn next_peer_with_output(&self) -> Option<PublicKey> {
        let after = self.last_served.map_or(Bound::Unbounded, Bound::Excluded);
        let before = self.last_served.map_or(Bound::Unbounded, Bound::Included);
        self.neighbours
            .range((after, Bound::Unbounded))
            .chain(self.neighbours.range((Bound::Unbounded, before)))
            .find(|(_, peer)| peer.has_output())
            .map(|(key, _)| *key)
    }

    /// The next message for peer `key`, or `None` when, once filtered,
    /// nothing was left to send it.
    fn build(&mut self, key: PublicKey) -> Option<Vec<u8>> {
        let Self {
            store,
            local_operator,
            admitted,
            neighbours,
            requested,
            last_now,
            ..
        } = self;
        let peer = neighbours.get_mut(&key)?;
        let allowed = |object: ObjectRef<'_>| {
            may_send(object, &peer.operator, admitted, *local_operator, store)
                && !revokes(object, &key)
        };

        if !peer.push.is_empty() {
            // Revocations first, then vouches, then cards.
            let mut ready: Vec<(u8, ObjectId)> = Vec::new();
            peer.push.retain(|id| match store.get(id) {
                Some(object) if allowed(object) => {
                    ready.push((rank(object.kind()), *id));
                    true
                }
                _ => false,
            });
            ready.sort_unstable();
            let mut writer = ObjectsWriter::new();
            for (_, id) in ready {
                match store.get(&id) {
                    Some(object) if writer.try_push(object) => {
                        peer.push.remove(&id);
                    }
                    _ => break,
                }
            }
            if let Some(bytes) = writer.finish() {
                return Some(bytes);
            }
        }

        if !peer.want.is_empty() {
            peer.want.retain(|id| !store.contains(id));
            let ids: Vec<ObjectId> = peer.want.iter().take(MAX_IDS).copied().collect();
            for id in &ids {
                peer.want.remove(id);
                if requested.len() < MAX_REQUESTED {
                    requested.insert(*id, *last_now);
                }
            }
            if !ids.is_empty() {
                return Some(encode_want(&ids));
            }
        }

        if peer.digest_due {
            let mut ids = Vec::new();
            let mut more = false;
            for (id, object) in store.objects_after(peer.digest_cursor) {
                if !allowed(object) {
                    continue;
                }
                if ids.len() == MAX_IDS {
                    more = true;
                    break;
                }
                ids.push(id);
            }
            if more {
                peer.digest_cursor = ids.last().copied();
            } else {
                peer.digest_due = false;
                peer.digest_cursor = None;
            }
            if !ids.is_empty() {
                return Some(encode_digest(&ids));
            }
        }
        None
    }
}

/// The order objects are sent in: revocations first, since they must
/// arrive soonest and before any card they revoke, then vouches, then cards.
fn rank(kind: ObjectKind) -> u8 {
    match kind {
        ObjectKind::Revocation => 0,
        ObjectKind::Vouch => 1,
        ObjectKind::Card => 2,
    }
}

/// Whether `object` is a revocation of the host with key `host`.
fn revokes(object: ObjectRef<'_>, host: &PublicKey) -> bool {
    matches!(object, ObjectRef::Revocation(r)
        if r.revocation().target == RevocationTarget::Host(*host))
}

/// The sharing filter: see the [module docs](self).
fn may_send(
    object: ObjectRef<'_>,
    recipient: &OperatorId,
    admitted: &BTreeSet<OperatorId>,
    local_operator: OperatorId,
    store: &Store,
) -> bool {
    let signer = object.signer();
    if signer != local_operator && !admitted.contains(&signer) {
        return false;
    }
    let card_may_go = |card: &HostCard| may_share(card, recipient, admitted);
    match object {
        ObjectRef::Card(card) => card_may_go(card.card()),
        ObjectRef::Vouch(_) => true,
        ObjectRef::Revocation(revocation) => {
            let revocation = revocation.revocation();
            match revocation.target {
                RevocationTarget::Vouch(_) => true,
                RevocationTarget::Host(key) => {
                    *recipient == revocation.issuer
                        || store.known_card(&key).is_some_and(|card| {
                            card.card().operator == revocation.issuer && card_may_go(card.card())
                        })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_budget;
