//! Gossip: how members exchange cards, vouches and revocations with their
//! mesh peers, as a sans-IO state machine whose cost per host does not grow
//! with the mesh.
//!
//! The shared state is a set of signed objects that only grows (see
//! [`Store`]), so members converge by anti-entropy with no leader. Two
//! mechanisms, as Plumtree and libp2p's gossipsub pair them:
//!
//! **Epidemic broadcast of what is new.** An object new to this host is
//! pushed at once, whole, to every peer of its own operator (a hidden
//! producer hears everything from its own sentries) and to
//! [`EAGER_FANOUT`] other peers ([`REVOCATION_FANOUT`] for a revocation)
//! picked at random, preferring those with a
//! WireGuard session; each host that learns it does the same, so it
//! crosses the mesh in a few hops. Its id is then announced, lazily, in a
//! digest to [`LAZY_FANOUT`] random peers each round for [`LAZY_ROUNDS`]
//! rounds, so a host the pushes missed asks for it within a round or two.
//!
//! **Reconciliation of what is held**, every [`ROUND`] with one random peer
//! (and at once with a new peer of our own operator):
//!
//! ```text
//!   A                                          B
//!   │ ── Summary { root of A's view for B } ─► │   equal to B's root for A: done (a steady mesh
//!   │                                          │   stops here: 22 bytes, whatever the store holds)
//!   │ ◄── Buckets { B's 256 bucket sums } ──── │   else
//!   │ ── Ranges { A's ids in the buckets ────► │   B wants what it lacks, and sends what A lacks
//!   │            that differ }                 │
//!   │ ◄── Want / Objects ───────────────────── │
//! ```
//!
//! A view is what this host may show a peer, vouches aside (below):
//! everything, to its own operator's hosts; the public view to everyone
//! else's (see `gossip/views.rs`). Where two hosts admit different operators their
//! roots never match; once a reconciliation found nothing either side takes,
//! the pair of roots is settled and not reconciled again for
//! [`RESETTLE_AFTER`] seconds unless one of them changes.
//!
//! Steady state, each host sends one summary a round and answers about one,
//! and one summary of a voucher's statements per voucher it keeps every
//! [`RESETTLE_AFTER`] seconds: O(1) bytes and CPU per round in the size of
//! the mesh. A new object costs
//! each host about `EAGER_FANOUT + own operator's hosts` pushes and a few
//! lazy ids, not one per peer.
//!
//! Sessions: a host tells gossip which peers have a WireGuard session
//! ([`Gossip::set_linked`]; a message from a peer proves one). Random
//! choices are fair by operator, then by host, so a rival with a host per
//! card it signs gets one operator's share of them, and prefer linked
//! peers; while fewer than [`LINKED_TARGET`] other operators have a linked
//! peer, each round also sends a summary to one that is not linked, which
//! makes the daemon open a session with it, so each host keeps a few
//! sessions up rather than one with every peer.
//!
//! # What goes to whom
//!
//! Every object is filtered per recipient, when the message is built:
//!
//! * nothing goes anywhere unless its signer is this host's operator or one
//!   it admits: an object of an operator no longer admitted is not relayed;
//! * a hidden host's card (producer, BIOS) goes only to its own operator's
//!   hosts, and so does a host revocation of a key this host does not know
//!   as a public host of the revoking operator (held, or kept aside after
//!   the revocation; see [`Store`]) — revoking a producer never shows its
//!   key to another operator — and never to the host it revokes, which must
//!   not learn of it before the rest of the mesh has dropped it (by then it
//!   is no peer of anyone's);
//! * vouches and vouch withdrawals go to every peer (peers are admitted
//!   hosts);
//! * a summary, a bucket or a list of ids sent to a peer covers only its
//!   view, so another operator's host never even learns the id of a hidden
//!   card, and a want for an id it may not have is silently ignored.
//!
//! On receipt, a message is first charged to the budget of its sender's
//! operator — one for all of an operator's peers, since a rival can have a
//! peer per card it signs — of [`RECEIVE_BURST`] bytes, refilled at
//! [`RECEIVE_RATE`] bytes a second: a message over it — from a compromised
//! member flooding valid objects, each costing a signature check — is
//! dropped and counted, unread, and gossip asks again for what it lost.
//! What a short message makes this host do or send is charged to the same
//! budget before it is done: a summary that does not match, the buckets
//! it is answered with; a buckets message, every id of this host's view in
//! the buckets that differ (as if the sender had asked for each by id); a
//! ranges message, every id of this host's view in the buckets it spans,
//! before they are walked. What the budget cannot pay is left for a later
//! reconciliation, so a 24-byte message cannot make this host walk or list
//! its whole store over and over.
//! Another operator's replacements of its own objects (a renewed card, a
//! later vouch), which need no room but are relayed and change every
//! store, are limited the same way, per operator: [`REPLACEMENT_BURST`],
//! then one every [`REPLACEMENT_EVERY`] seconds; one over it is dropped,
//! counted as over the quota, and asked for again later. Then each object is taken in the
//! cheapest order of checks that refuses a flood:
//!
//! ```text
//! decode the framing → signer admitted? (a set lookup on the id the encoding names; no: dropped,
//!                      unverified, counted as not admitted)
//!                    → room? (when its signer is at its quota, a card, vouch or revocation that would
//!                      need room, read from the encoding, is dropped unverified and counted)
//!                    → held already, or refused lately? (one hash: dropped, counted)
//!                    → signature and validity (a message with a bad one is dropped, counted)
//!                    → a hidden card of another operator? (dropped, counted)
//!                    → the store: its rules and its signer's quota (refused, counted) → relayed if new
//! ```
//!
//! Vouches count the same way, and more narrowly: a vouch is stored only
//! when it can count here — signed by this host's operator, or by one it
//! trusts directly ([`Store`]; the screen refuses the others unverified) —
//! so the vouches that admit an operator are stored before it is admitted,
//! and its own objects after. When the admitted operators shrink, what the
//! others signed leaves the store ([`Store::retain_signers`]); when they
//! grow, objects refused before are asked for again.
//!
//! # Vouches are reconciled per voucher
//!
//! Hosts whose direct operators differ keep different vouches, so vouches
//! and their withdrawals (statements) are no part of the views: were they,
//! two such hosts' roots would never match, and each pair would reconcile
//! again and fetch what the other keeps and it refuses, every
//! [`RESETTLE_AFTER`] seconds, at a cost that grows with the web. Each
//! voucher's statements are instead one set, the same at every host that
//! keeps them, with a root of its own: each round a host sends the root of
//! the next voucher it keeps (its own operator, those it trusts directly,
//! in turn; one it asked about at the same root less than
//! [`RESETTLE_AFTER`] seconds ago is passed over; one it never asked about,
//! at boot or newly trusted, is asked about at once, and again a few
//! seconds later) to a host of that voucher, or else of its own operator,
//! which answers a root that differs with digests
//! of its ids of them, paid by the asker (`gossip/statements.rs`).
//!
//! ```text
//!   A                                               B (a host of V, or of A's operator)
//!   │ ── Statements { V, root of V's that A holds } ─► │   equal: done
//!   │ ◄── Digest { B's ids of V's statements } ─────── │   else
//!   │ ── Want / ◄── Objects ───────────────────────── │
//! ```
//!
//! # Cost of each path
//!
//! With `n` objects in the store, `p` peers, `b` ids in a bucket (`n / 256`),
//! `v` vouchers kept and `m` the size of a message: a received message is
//! O(m log n) and objects in it O(log n) each besides their signature
//! check; a new object O(EAGER_FANOUT + own hosts); a round O(LAZY_FANOUT +
//! v); a summary compared O(1) once the views are fresh; the views
//! refreshed O(b) per changed bucket; buckets compared O(256); a range
//! answered O(b log n); a summary of statements O(1) once its voucher's
//! root is fresh, O(the voucher's statements) to refresh it after they
//! changed; picking the next peer to serve O(1); [`Gossip::set_peers`]
//! O(p log p).

mod budget;
mod message;
mod neighbours;
mod statements;
mod views;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use budget::{ReceiveBudget, Replacements};
use message::{
    BUCKET_LEN, BUCKETS_HEADER_LEN, ObjectsWriter, RANGE_HEADER_LEN, RANGES_HEADER_LEN, Screen,
    encode_buckets, encode_digest, encode_ranges, encode_statements, encode_summary, encode_want,
};
pub use message::{
    EncodeMessageError, GOSSIP_VERSION, GossipMessage, IdRange, MAX_IDS, MAX_MESSAGE_LEN,
    MAX_OBJECTS, MAX_RANGES, MessageError,
};
use neighbours::{Neighbours, Settled};
use sentrymesh_types::{PublicKey, UnixTime};
use statements::{Statements, is_statement};
pub use views::{BUCKET_HASH_LEN, BucketSum, ROOT_HASH_LEN, ViewRoot};
use views::{View, Views, bucket_range, in_view};

use crate::identity::OperatorId;
use crate::object::{OBJECT_ID_LEN, Object, ObjectId, ObjectKind, ObjectRef, claimed_signer};
use crate::revocation::RevocationTarget;
use crate::store::{Changes, InsertError, Inserted, Store};

/// Seconds between two rounds: a summary to one peer, lazy announcements.
pub const ROUND: u64 = 1;
/// Peers of other operators a new object is pushed to, whole, at once.
pub const EAGER_FANOUT: usize = 6;
/// Peers of other operators a new revocation is pushed to: twice as many,
/// since it must reach every host soonest, and revocations are few.
pub const REVOCATION_FANOUT: usize = 2 * EAGER_FANOUT;
/// Peers the recent ids are announced to each round.
pub const LAZY_FANOUT: usize = 3;
/// Rounds a new id is announced for.
pub const LAZY_ROUNDS: u64 = 3;
/// Operators besides its own a host keeps a linked peer (with a session)
/// of: while it has fewer, each round it reaches out to one more peer.
/// Counted in operators, so a rival with many hosts cannot fill it.
pub const LINKED_TARGET: usize = 6;
/// Seconds a settled pair of roots is not reconciled again.
pub const RESETTLE_AFTER: u64 = 60;
/// Seconds an object the store refused is not asked for again.
const IGNORE_FOR: u64 = 600;
/// Seconds before an id asked for and not received is asked again.
const REQUEST_TIMEOUT: u64 = 3;
/// The most refused ids remembered.
const MAX_IGNORED: usize = 4096;
/// The most requested ids remembered.
const MAX_REQUESTED: usize = 8192;
/// The most ids queued to ask one peer for; a peer listing more is asked
/// for the rest in a later round.
const MAX_WANTED: usize = 4 * MAX_IDS;
/// The most ids announced lazily at once.
const MAX_RECENT: usize = MAX_IDS;
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
/// relayed and changes the store (peers recomputed, the state written):
/// without a limit a rival could make every member do that as fast as it
/// can sign.
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
    /// Summaries received that matched this host's view: nothing to do.
    pub summaries_matched: u64,
    /// Reconciliations begun: summaries received that did not match.
    pub reconciliations: u64,
    /// Summaries of a voucher's statements received that matched this
    /// host's.
    pub statements_matched: u64,
    /// Summaries of a voucher's statements received that did not match
    /// this host's: answered with its ids of them, when paid for.
    pub statements_listed: u64,
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
    /// Objects received that this host refused lately (for
    /// `IGNORE_FOR` seconds, or until it admits more operators): dropped
    /// before their signature is checked, not counted again as refused. A
    /// peer whose admissions differ from ours sends them when it reconciles.
    pub objects_refused_lately: u64,
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
    neighbours: Neighbours,
    /// The summaries of what each kind of peer may be shown.
    views: Views,
    /// The vouches and withdrawals held, by voucher.
    statements: Statements,
    /// The vouchers whose statements the store keeps: the local operator
    /// and those it trusts directly.
    vouchers: BTreeSet<OperatorId>,
    /// What each operator's peers may still send us.
    budgets: BTreeMap<OperatorId, ReceiveBudget>,
    /// How many of its objects each other operator may still replace.
    replacements: BTreeMap<OperatorId, Replacements>,
    /// When the next round is due.
    next_round: UnixTime,
    /// Ids learned lately, and when: announced lazily.
    recent: VecDeque<(ObjectId, UnixTime)>,
    /// Ids refused recently, not asked for again until the time given.
    ignored: BTreeMap<ObjectId, UnixTime>,
    /// Ids asked for, when, and of whom.
    requested: BTreeMap<ObjectId, (UnixTime, PublicKey)>,
    /// Ids queued to be asked for, and of whom.
    asking: BTreeMap<ObjectId, PublicKey>,
    refusals: VecDeque<Refusal>,
    /// What changed in the store since [`Gossip::take_changes`].
    changes: Changes,
    last_now: UnixTime,
    stats: GossipStats,
}

impl Gossip {
    /// Gossip for a host of `local_operator`, starting from `store` and with
    /// no peers yet. The store is pruned to the operators admitted at the
    /// first [`Gossip::set_peers`]. Random choices start from a fixed seed:
    /// give a random one with [`Gossip::reseed`].
    pub fn new(mut store: Store, local_operator: OperatorId) -> Self {
        store.reserve_room(local_operator, &BTreeSet::new());
        store.take_changes();
        let mut statements = Statements::default();
        statements.note(&Changes::Everything, &store);
        Self {
            store,
            local_operator,
            admitted: BTreeSet::from([local_operator]),
            admitted_keys: BTreeMap::from([(*local_operator.as_bytes(), local_operator)]),
            unpruned: true,
            neighbours: Neighbours::new(
                local_operator,
                u64::from_be_bytes(
                    local_operator.as_bytes()[..8]
                        .try_into()
                        .unwrap_or_default(),
                ),
            ),
            views: Views::new(),
            statements,
            vouchers: BTreeSet::from([local_operator]),
            budgets: BTreeMap::new(),
            replacements: BTreeMap::new(),
            next_round: UnixTime(0),
            recent: VecDeque::new(),
            ignored: BTreeMap::new(),
            requested: BTreeMap::new(),
            asking: BTreeMap::new(),
            refusals: VecDeque::new(),
            changes: Changes::Everything,
            last_now: UnixTime(0),
            stats: GossipStats::default(),
        }
    }

    /// Seeds the random choices of peers (from the operating system's
    /// randomness, in the daemon; from the test's seed, in a simulation).
    pub fn reseed(&mut self, seed: u64) {
        self.neighbours.reseed(seed);
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The counters.
    pub fn stats(&self) -> GossipStats {
        self.stats
    }

    /// What changed in the store since the last call (everything, the
    /// first time): for the peer manager to look at only that.
    pub fn take_changes(&mut self) -> Changes {
        self.note_changes();
        std::mem::replace(&mut self.changes, Changes::none())
    }

    /// The peers gossiped with.
    pub fn peers(&self) -> impl Iterator<Item = &PublicKey> {
        self.neighbours.keys()
    }

    /// Sets whom to gossip with — each peer's key and operator, as the peer
    /// manager decided — and the operators this host admits: the peers
    /// missing are removed, the new ones added ([`Gossip::add_peer`],
    /// [`Gossip::remove_peer`], [`Gossip::set_admitted`]). O(p log p).
    pub fn set_peers(
        &mut self,
        peers: impl IntoIterator<Item = (PublicKey, OperatorId)>,
        admitted: BTreeSet<OperatorId>,
        now: UnixTime,
    ) {
        let wanted: BTreeMap<PublicKey, OperatorId> = peers.into_iter().collect();
        let gone: Vec<PublicKey> = self
            .neighbours
            .iter()
            .filter(|(key, peer)| wanted.get(key) != Some(&peer.operator))
            .map(|(key, _)| *key)
            .collect();
        for key in gone {
            self.remove_peer(&key);
        }
        for (key, operator) in wanted {
            self.add_peer(key, operator);
        }
        self.set_admitted(admitted, now);
    }

    /// Gossips with the peer with `key`, of `operator` (a peer already
    /// known under another operator is replaced). A new peer of this
    /// host's own operator gets a summary at once. O(log p).
    pub fn add_peer(&mut self, key: PublicKey, operator: OperatorId) {
        if self
            .neighbours
            .get(&key)
            .is_some_and(|peer| peer.operator != operator)
        {
            self.remove_peer(&key);
        }
        let view = View::for_recipient(operator, self.local_operator);
        if self.neighbours.insert(key, operator, view) && view == View::Own {
            self.neighbours.update(&key, |peer| peer.summary_due = true);
        }
    }

    /// Stops gossiping with the peer with `key`, forgetting everything
    /// queued for it. O(log p + what was queued).
    pub fn remove_peer(&mut self, key: &PublicKey) {
        let Some(peer) = self.neighbours.remove(key) else {
            return;
        };
        for id in peer.want {
            self.asking.remove(&id);
        }
        if !self.neighbours.has_operator(&peer.operator) {
            self.budgets.remove(&peer.operator);
        }
    }

    /// Sets the operators this host admits. A change drops from the store
    /// what the others signed ([`Store::retain_signers`]), and, when it
    /// admits more, forgets the refusals and reconciles with a few peers at
    /// once. O(1) when nothing changed; O(n) when something did.
    pub fn set_admitted(&mut self, admitted: BTreeSet<OperatorId>, now: UnixTime) {
        self.note_time(now);
        let mut admitted = admitted;
        admitted.insert(self.local_operator);
        if admitted != self.admitted || self.unpruned {
            let more = !admitted.is_subset(&self.admitted);
            self.store.retain_signers(&admitted);
            self.replacements
                .retain(|operator, _| admitted.contains(operator));
            self.unpruned = false;
            self.admitted_keys = admitted.iter().map(|op| (*op.as_bytes(), *op)).collect();
            self.admitted = admitted;
            self.views.note_everything();
            if more {
                self.ignored.clear();
                for key in self.neighbours.sample(LAZY_FANOUT, |_, _| true) {
                    self.neighbours.update(&key, |peer| peer.summary_due = true);
                }
            }
        }
        self.note_changes();
    }

    /// Notes whether the peer with `key` has a WireGuard session: random
    /// choices prefer peers that do. A message from a peer notes it too.
    pub fn set_linked(&mut self, key: &PublicKey, linked: bool) {
        self.neighbours.set_linked(key, linked);
    }

    /// Sets the operators this host trusts directly: with the local one,
    /// they never compete for the store's global caps with the operators
    /// admitted by vouches ([`Store::reserve_room`]). When it trusts more,
    /// the statements it refused lately (not kept then) are no longer
    /// ignored.
    pub fn set_direct(&mut self, direct: &BTreeSet<OperatorId>) {
        self.store.reserve_room(self.local_operator, direct);
        let mut vouchers = direct.clone();
        vouchers.insert(self.local_operator);
        if !vouchers.is_subset(&self.vouchers) {
            self.ignored.clear();
        }
        self.vouchers = vouchers;
        self.statements.retain_asked(&self.vouchers);
        self.note_changes();
    }

    /// Inserts an object learned locally (from the configuration, a bundle,
    /// the control socket) and spreads it.
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
            self.announce(id, None, now);
        }
        self.note_changes();
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
        let Some(peer) = self.neighbours.get(&from) else {
            self.stats.messages_from_strangers += 1;
            return Err(GossipError::UnknownPeer { from });
        };
        let operator = peer.operator;
        self.neighbours.set_linked(&from, true);
        let budget = self
            .budgets
            .entry(operator)
            .or_insert_with(|| ReceiveBudget::new(now));
        if !budget.take(bytes.len(), now) {
            self.stats.messages_over_budget += 1;
            return Err(GossipError::OverBudget { from });
        }
        let (admitted, store, ignored) = (&self.admitted_keys, &self.store, &self.ignored);
        let screen = |kind, encoded: &[u8]| match claimed_signer(encoded) {
            None => Screen::Verify,
            Some(signer) => match admitted.get(signer) {
                None => Screen::NotAdmitted,
                Some(&signer) if !store.may_have_room(signer, kind, encoded) => Screen::NoRoom,
                Some(_) => {
                    // One hash, to spare the signature check of a copy.
                    let id = ObjectId::of(kind, encoded);
                    if store.contains(&id) {
                        Screen::Held
                    } else if ignored.contains_key(&id) {
                        Screen::Refused
                    } else {
                        Screen::Verify
                    }
                }
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
            self.forget_request(&id);
            match why {
                Screen::Held => {
                    self.stats.objects_known += 1;
                    continue;
                }
                Screen::Refused => {
                    self.stats.objects_refused_lately += 1;
                    continue;
                }
                Screen::Verify | Screen::NotAdmitted | Screen::NoRoom => {}
            }
            self.stats.objects_refused += 1;
            match why {
                Screen::NoRoom => self.stats.objects_over_quota += 1,
                Screen::NotAdmitted | Screen::Verify | Screen::Refused | Screen::Held => {
                    self.stats.objects_not_admitted += 1;
                }
            }
            self.ignore(id, now);
        }
        match message {
            GossipMessage::Digest { ids } => self.handle_digest(from, ids, now),
            GossipMessage::Want { ids } => self.handle_want(from, ids),
            GossipMessage::Objects { objects } => self.handle_objects(from, objects, now),
            GossipMessage::Summary { root } => self.handle_summary(from, root, now),
            GossipMessage::Statements { voucher, root } => {
                self.handle_statements(from, &voucher, root, now);
            }
            GossipMessage::Buckets { buckets, .. } => self.handle_buckets(from, &buckets, now),
            GossipMessage::Ranges { root, ranges } => self.handle_ranges(from, root, &ranges, now),
        }
        self.note_changes();
        Ok(())
    }

    /// Runs the timers due at `now`: a round (a summary to a random peer,
    /// the recent ids to a few, one more session while too few are up),
    /// forgets old refusals and requests, and prunes expired cards from the
    /// store. O(LAZY_FANOUT + own hosts) besides the pruning.
    pub fn handle_timeout(&mut self, now: UnixTime) {
        self.note_time(now);
        if self.next_round <= now {
            self.next_round = now.saturating_add(ROUND);
            self.round(now);
        }
        self.ignored.retain(|_, until| *until > now);
        self.requested
            .retain(|_, (at, _)| at.saturating_add(REQUEST_TIMEOUT) > now);
        self.store.prune(now);
        self.note_changes();
    }

    /// When [`Gossip::handle_timeout`] next has work (Unix seconds).
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        let round = (self.neighbours.len() > 0).then_some(self.next_round);
        match (round, self.store.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next message to send: the peer's key and the bytes. Peers are
    /// served in turn; objects go before wants, wants before the steps of
    /// a reconciliation, those before lazy announcements, and revocations
    /// before anything else. O(1) to pick the peer.
    pub fn poll_transmit(&mut self) -> Option<(PublicKey, Vec<u8>)> {
        self.note_changes();
        while let Some(key) = self.neighbours.pop_ready() {
            let bytes = self.build(key);
            self.neighbours.requeue(&key);
            if let Some(bytes) = bytes {
                self.stats.messages_sent += 1;
                return Some((key, bytes));
            }
        }
        None
    }

    /// The next object the store refused, to log.
    pub fn poll_refusal(&mut self) -> Option<Refusal> {
        self.refusals.pop_front()
    }

    /// Whether `object` may be sent to a host of `recipient`: the filter of
    /// the [module docs](self).
    pub fn may_send(&self, object: ObjectRef<'_>, recipient: &OperatorId) -> bool {
        in_view(
            View::for_recipient(*recipient, self.local_operator),
            object,
            self.local_operator,
            &self.admitted,
            &self.store,
        )
    }

    // ----- inputs ------------------------------------------------------

    fn round(&mut self, now: UnixTime) {
        let lazy_since = now.saturating_sub(LAZY_ROUNDS);
        while self.recent.front().is_some_and(|(_, at)| *at < lazy_since) {
            self.recent.pop_front();
        }
        if !self.recent.is_empty() {
            for key in self.neighbours.sample(LAZY_FANOUT, |_, _| true) {
                self.neighbours
                    .update(&key, |peer| peer.announce_due = true);
            }
        }
        for key in self.neighbours.sample(1, |_, _| true) {
            self.neighbours.update(&key, |peer| peer.summary_due = true);
        }
        let own_unlinked: Vec<PublicKey> = self
            .neighbours
            .own()
            .filter(|key| self.neighbours.get(key).is_some_and(|peer| !peer.linked))
            .copied()
            .collect();
        for key in own_unlinked {
            self.neighbours.update(&key, |peer| peer.summary_due = true);
        }
        if self.neighbours.linked_operators() < LINKED_TARGET {
            if let Some(key) = self.neighbours.sample_unlinked() {
                self.neighbours.update(&key, |peer| peer.summary_due = true);
            }
        }
        self.ask_about_statements(now);
    }

    /// Sends the root of the statements of each voucher due to be asked
    /// about ([`Statements::due`]: the next in turn, and those never asked
    /// about or asked once only), each to a host of that voucher, which
    /// holds all of them, or else (a hidden host, which peers with its own
    /// operator's only) of this host's operator. A voucher with no such
    /// host is passed over, and not counted as asked about: it is due
    /// again once one comes. O(vouchers).
    fn ask_about_statements(&mut self, now: UnixTime) {
        let due = self
            .statements
            .due(&self.vouchers, REQUEST_TIMEOUT, RESETTLE_AFTER, now);
        for voucher in due {
            let to = self
                .neighbours
                .pick_of(voucher)
                .or_else(|| self.neighbours.pick_of(self.local_operator));
            let Some(key) = to else {
                self.statements.passed_over(voucher);
                continue;
            };
            self.statements.asked(voucher, now);
            self.neighbours.update(&key, |peer| {
                peer.statements_due.insert(voucher);
            });
        }
    }

    /// Answers a summary of `voucher`'s statements that does not match
    /// this host's with the ids of those it holds, in digests, paid by the
    /// sender as if it had asked for each by id. A voucher this host does
    /// not admit is passed over: it holds none of its statements.
    fn handle_statements(
        &mut self,
        from: PublicKey,
        voucher: &[u8; 32],
        theirs: ViewRoot,
        now: UnixTime,
    ) {
        let Some(&voucher) = self.admitted_keys.get(voucher) else {
            return;
        };
        if self.statements.root(voucher) == theirs {
            self.stats.statements_matched += 1;
            return;
        }
        self.stats.statements_listed += 1;
        let Some(peer) = self.neighbours.get(&from) else {
            return;
        };
        let held = self.statements.count(&voucher);
        // A listing of this voucher due already is not sent twice, nor
        // paid twice; one of another voucher goes after it.
        if held == 0 || peer.listing_due.contains_key(&voucher) {
            return;
        }
        let operator = peer.operator;
        if self.charge(operator, held.saturating_mul(OBJECT_ID_LEN), now) {
            self.neighbours.update(&from, |peer| {
                peer.listing_due.insert(voucher, None);
            });
        }
    }

    /// Wants what a digest lists. One from a peer this host asked about a
    /// voucher's statements within [`REQUEST_TIMEOUT`] (a host of the
    /// voucher or of its own operator) is taken as the listing, and each id
    /// in it asked of that peer even when asked of another already: a
    /// rival that announces the ids and never sends the objects must not
    /// hold them back.
    fn handle_digest(&mut self, from: PublicKey, ids: Vec<ObjectId>, now: UnixTime) {
        let listing = self.neighbours.get(&from).is_some_and(|peer| {
            peer.asked_statements
                .is_some_and(|at| now < at.saturating_add(REQUEST_TIMEOUT))
        });
        for id in ids {
            if listing {
                self.unclaim(&id, &from);
            }
            if !self.consider_want(from, id, now) {
                break;
            }
        }
    }

    /// Forgets that `id` is to be asked of, or was asked of, a peer other
    /// than `from`.
    fn unclaim(&mut self, id: &ObjectId, from: &PublicKey) {
        if self.requested.get(id).is_some_and(|(_, of)| of != from) {
            self.requested.remove(id);
        }
        if let Some(of) = self.asking.get(id).copied().filter(|of| of != from) {
            self.asking.remove(id);
            self.neighbours.update(&of, |peer| peer.want.remove(id));
        }
    }

    /// Queues `id` to be asked of `from` unless held, refused, or asked for
    /// already; `false` when `from`'s queue is full.
    fn consider_want(&mut self, from: PublicKey, id: ObjectId, now: UnixTime) -> bool {
        let asked_recently = self
            .requested
            .get(&id)
            .is_some_and(|&(at, _)| at.saturating_add(REQUEST_TIMEOUT) > now);
        if self.store.contains(&id)
            || self.ignored.contains_key(&id)
            || asked_recently
            || self.asking.contains_key(&id)
        {
            return true;
        }
        let queued = self.neighbours.update(&from, |peer| {
            (peer.want.len() < MAX_WANTED) && peer.want.insert(id)
        });
        if queued == Some(true) {
            self.asking.insert(id, from);
            true
        } else {
            false
        }
    }

    fn handle_want(&mut self, from: PublicKey, ids: Vec<ObjectId>) {
        let store = &self.store;
        // Whether each may go to this peer is decided when it is sent.
        self.neighbours.update(&from, |peer| {
            peer.push
                .extend(ids.into_iter().filter(|id| store.contains(id)));
        });
    }

    fn handle_summary(&mut self, from: PublicKey, theirs: ViewRoot, now: UnixTime) {
        let Some(view) = self.neighbours.get(&from).map(|peer| peer.view) else {
            return;
        };
        self.refresh_views();
        let mine = self.views.root(view);
        if mine == theirs {
            self.stats.summaries_matched += 1;
            return;
        }
        let Some(peer) = self.neighbours.get(&from) else {
            return;
        };
        let settled = peer.settled.is_some_and(|s| {
            s.theirs == theirs && s.mine == mine && now < s.at.saturating_add(RESETTLE_AFTER)
        });
        self.stats.reconciliations += 1;
        if settled || peer.buckets_due {
            return;
        }
        // The buckets it makes this host send are paid by the asker.
        let operator = peer.operator;
        let buckets = self
            .views
            .buckets(view)
            .iter()
            .filter(|bucket| bucket.count > 0)
            .count();
        if self.charge(operator, BUCKETS_HEADER_LEN + buckets * BUCKET_LEN, now) {
            self.neighbours
                .update(&from, |peer| peer.buckets_due = true);
        }
    }

    /// Queues this host's ids in the buckets that differ from the sender's,
    /// each bucket paid from the sender's budget as if it had asked for
    /// those ids by id (a short buckets message must not make this host
    /// list its whole view again and again); the buckets past what it can
    /// pay wait for a later reconciliation. O(256).
    fn handle_buckets(&mut self, from: PublicKey, theirs: &[(u8, BucketSum)], now: UnixTime) {
        let Some(peer) = self.neighbours.get(&from) else {
            return;
        };
        let (view, operator) = (peer.view, peer.operator);
        self.refresh_views();
        let mine = self.views.buckets(view);
        let mut theirs = theirs.iter().peekable();
        let mut differ = BTreeSet::new();
        for (index, bucket) in mine.iter().enumerate() {
            // Invariant: index < 256.
            let index = index as u8;
            let their = match theirs.peek() {
                Some((i, sum)) if *i == index => {
                    theirs.next();
                    *sum
                }
                _ => BucketSum::default(),
            };
            if their != *bucket {
                differ.insert(index);
            }
        }
        let Some(peer) = self.neighbours.get(&from) else {
            return;
        };
        // Buckets due already are not sent twice, nor paid twice.
        differ.retain(|index| !peer.ranges_due.contains(index));
        let mut paid = BTreeSet::new();
        for index in differ {
            let ids = self.views.buckets(view)[usize::from(index)].count as usize;
            let cost = RANGE_HEADER_LEN + ids.saturating_mul(OBJECT_ID_LEN);
            if !self.charge(operator, cost, now) {
                break;
            }
            paid.insert(index);
        }
        self.neighbours.update(&from, |peer| {
            peer.ranges_due.extend(paid);
        });
    }

    /// Takes `cost` bytes from the budget of `operator`'s peers for what a
    /// message of theirs makes this host do or send; `false`, counted,
    /// when it cannot pay.
    fn charge(&mut self, operator: OperatorId, cost: usize, now: UnixTime) -> bool {
        let paid = self
            .budgets
            .entry(operator)
            .or_insert_with(|| ReceiveBudget::new(now))
            .take(cost, now);
        if !paid {
            self.stats.messages_over_budget += 1;
        }
        paid
    }

    fn handle_ranges(
        &mut self,
        from: PublicKey,
        theirs: ViewRoot,
        ranges: &[IdRange],
        now: UnixTime,
    ) {
        let Some(peer) = self.neighbours.get(&from) else {
            return;
        };
        let (view, operator) = (peer.view, peer.operator);
        self.refresh_views();
        // Each range is paid before it is walked, as if the sender had
        // asked by id for every id of this host's view in the buckets it
        // spans (each bucket once): what it lacks is among them, and a
        // short range over the whole store must not make this host walk
        // it unpaid. The ranges past what it can pay wait for a later
        // reconciliation.
        let mut paid_to: Option<u8> = None;
        let mut paid = 0;
        for range in ranges {
            let (first, last) = (range.first.as_bytes()[0], range.last.as_bytes()[0]);
            let from_bucket = match paid_to {
                Some(to) if to >= first => to.checked_add(1),
                _ => Some(first),
            };
            let ids: usize = from_bucket.map_or(0, |from_bucket| {
                (from_bucket..=last)
                    .map(|index| self.views.buckets(view)[usize::from(index)].count as usize)
                    .sum()
            });
            if !self.charge(operator, ids.saturating_mul(OBJECT_ID_LEN), now) {
                break;
            }
            paid_to = Some(last);
            paid += 1;
        }
        let mut lacking = Vec::new();
        for range in &ranges[..paid] {
            let mine = self.ids_in(view, &from, range.first..=range.last);
            let (mut a, mut b) = (mine.iter().peekable(), range.ids.iter().peekable());
            loop {
                match (a.peek(), b.peek()) {
                    (Some(m), Some(t)) if m == t => {
                        a.next();
                        b.next();
                    }
                    (Some(m), Some(t)) if m < t => lacking.push(*a.next().expect("peeked")),
                    (Some(_) | None, Some(_)) => {
                        let id = *b.next().expect("peeked");
                        self.consider_want(from, id, now);
                    }
                    (Some(_), None) => lacking.push(*a.next().expect("peeked")),
                    (None, None) => break,
                }
            }
        }
        let mine = self.views.root(view);
        let whole = paid == ranges.len();
        self.neighbours.update(&from, |peer| {
            peer.push.extend(lacking);
            // Settled only when every range was taken.
            if whole {
                peer.settled = Some(Settled {
                    theirs,
                    mine,
                    at: now,
                });
            }
        });
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
                    self.announce(id, Some(from), now);
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

    /// Spreads a new object: pushed to every peer of this host's operator
    /// and to [`EAGER_FANOUT`] others that may have it ([`REVOCATION_FANOUT`]
    /// for a revocation), but its sender, and announced lazily for a few
    /// rounds. O(fanout + own hosts).
    fn announce(&mut self, id: ObjectId, except: Option<PublicKey>, now: UnixTime) {
        self.ignored.remove(&id);
        if self.recent.len() == MAX_RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((id, now));
        let public = self.store.get(&id).is_some_and(|object| {
            in_view(
                View::Public,
                object,
                self.local_operator,
                &self.admitted,
                &self.store,
            )
        });
        let fanout = match self.store.get(&id).map(|object| object.kind()) {
            Some(ObjectKind::Revocation) => REVOCATION_FANOUT,
            _ => EAGER_FANOUT,
        };
        let mut targets: Vec<PublicKey> = self.neighbours.own().copied().collect();
        if public {
            targets.extend(self.neighbours.sample(fanout, |key, peer| {
                peer.view == View::Public && Some(*key) != except
            }));
        } else if let Some(issuer) = self.store.get(&id).and_then(host_revocation_issuer) {
            // Back to the hosts of the operator that revoked the key.
            targets.extend(self.neighbours.sample(fanout, |key, peer| {
                peer.operator == issuer && Some(*key) != except
            }));
        }
        for key in targets {
            if Some(key) != except {
                self.neighbours.update(&key, |peer| {
                    peer.push.insert(id);
                });
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
        if let Some(key) = self.asking.remove(id) {
            self.neighbours.update(&key, |peer| peer.want.remove(id));
        }
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
            self.next_round = self.next_round.min(now.saturating_add(ROUND));
            self.requested.clear();
            let latest = now.saturating_add(IGNORE_FOR);
            self.ignored
                .values_mut()
                .for_each(|until| *until = latest.min(*until));
        }
        self.last_now = now;
    }

    /// Takes the store's journal into the views, and keeps it for
    /// [`Gossip::take_changes`]. O(changes).
    fn note_changes(&mut self) {
        let changes = self.store.take_changes();
        self.views.note(&changes);
        self.statements.note(&changes, &self.store);
        self.changes.merge(changes);
    }

    fn refresh_views(&mut self) {
        self.note_changes();
        self.views
            .refresh(&self.store, self.local_operator, &self.admitted);
    }

    /// The ids in `range` that `view` holds and that may go to the peer
    /// with key `to`, ascending. O(ids in range + log n).
    fn ids_in(
        &self,
        view: View,
        to: &PublicKey,
        range: std::ops::RangeInclusive<ObjectId>,
    ) -> Vec<ObjectId> {
        self.store
            .objects_in(range)
            .filter(|(_, object)| {
                !is_statement(*object)
                    && in_view(
                        view,
                        *object,
                        self.local_operator,
                        &self.admitted,
                        &self.store,
                    )
                    && !revokes(*object, to)
            })
            .map(|(id, _)| id)
            .collect()
    }

    // ----- outputs -----------------------------------------------------

    /// The next message for peer `key`, or `None` when, once filtered,
    /// nothing was left to send it.
    fn build(&mut self, key: PublicKey) -> Option<Vec<u8>> {
        let peer = self.neighbours.get(&key)?;
        let view = peer.view;
        if !peer.push.is_empty() {
            if let Some(bytes) = self.build_objects(key) {
                return Some(bytes);
            }
        }
        let peer = self.neighbours.get(&key)?;
        if !peer.want.is_empty() {
            if let Some(bytes) = self.build_want(key) {
                return Some(bytes);
            }
        }
        let peer = self.neighbours.get(&key)?;
        if !peer.ranges_due.is_empty() {
            if let Some(bytes) = self.build_ranges(key, view) {
                return Some(bytes);
            }
        }
        let peer = self.neighbours.get(&key)?;
        if !peer.listing_due.is_empty() {
            if let Some(bytes) = self.build_listing(key) {
                return Some(bytes);
            }
        }
        let peer = self.neighbours.get(&key)?;
        if let Some(&voucher) = peer.statements_due.first() {
            let root = self.statements.root(voucher);
            let now = self.last_now;
            self.neighbours.update(&key, |peer| {
                peer.statements_due.remove(&voucher);
                peer.asked_statements = Some(now);
            });
            return Some(encode_statements(voucher.as_bytes(), root));
        }
        let peer = self.neighbours.get(&key)?;
        let (buckets_due, summary_due, announce_due) =
            (peer.buckets_due, peer.summary_due, peer.announce_due);
        if buckets_due || summary_due {
            self.refresh_views();
            let root = self.views.root(view);
            self.neighbours.update(&key, |peer| {
                peer.buckets_due = false;
                peer.summary_due = false;
            });
            if buckets_due {
                let buckets: Vec<(u8, BucketSum)> = self
                    .views
                    .buckets(view)
                    .iter()
                    .enumerate()
                    .filter(|(_, bucket)| bucket.count > 0)
                    // Invariant: index < 256.
                    .map(|(index, bucket)| (index as u8, *bucket))
                    .collect();
                return Some(encode_buckets(root, &buckets));
            }
            return Some(encode_summary(root));
        }
        if announce_due {
            self.neighbours
                .update(&key, |peer| peer.announce_due = false);
            let mut ids: Vec<ObjectId> = self
                .recent
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| self.may_go(&key, id))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.truncate(MAX_IDS);
            if !ids.is_empty() {
                return Some(encode_digest(&ids));
            }
        }
        None
    }

    /// Whether the object with `id` is held and may go to the peer `to`:
    /// in the peer's view, or a host revocation going to a host of its
    /// issuer (which this host may not know as a public host's); and never
    /// a revocation of the peer itself.
    fn may_go(&self, to: &PublicKey, id: &ObjectId) -> bool {
        let Some(peer) = self.neighbours.get(to) else {
            return false;
        };
        self.store.get(id).is_some_and(|object| {
            !revokes(object, to)
                && (in_view(
                    peer.view,
                    object,
                    self.local_operator,
                    &self.admitted,
                    &self.store,
                ) || returns_to_issuer(object, &peer.operator))
        })
    }

    fn build_objects(&mut self, key: PublicKey) -> Option<Vec<u8>> {
        let push = self
            .neighbours
            .update(&key, |peer| std::mem::take(&mut peer.push))?;
        // Revocations first, then vouches, then cards.
        let mut ready: Vec<(u8, ObjectId)> = push
            .iter()
            .filter(|id| self.may_go(&key, id))
            .filter_map(|id| Some((rank(self.store.get(id)?.kind()), *id)))
            .collect();
        ready.sort_unstable();
        let mut writer = ObjectsWriter::new();
        let mut sent = 0;
        for (_, id) in &ready {
            match self.store.get(id) {
                Some(object) if writer.try_push(object) => sent += 1,
                _ => break,
            }
        }
        let left: BTreeSet<ObjectId> = ready[sent..].iter().map(|(_, id)| *id).collect();
        self.neighbours.update(&key, |peer| peer.push.extend(left));
        writer.finish()
    }

    /// The next digest of this host's ids of the statements of the first
    /// voucher whose listing is due to `key`, from where the last one
    /// stopped.
    fn build_listing(&mut self, key: PublicKey) -> Option<Vec<u8>> {
        let (&voucher, &after) = self.neighbours.get(&key)?.listing_due.first_key_value()?;
        let chunk = self.statements.ids_after(&voucher, after, MAX_IDS);
        let next = (chunk.len() == MAX_IDS).then(|| chunk.last().copied());
        self.neighbours.update(&key, |peer| match next {
            Some(after) => {
                peer.listing_due.insert(voucher, after);
            }
            None => {
                peer.listing_due.remove(&voucher);
            }
        });
        let ids: Vec<ObjectId> = chunk
            .into_iter()
            .filter(|id| self.may_go(&key, id))
            .collect();
        (!ids.is_empty()).then(|| encode_digest(&ids))
    }

    fn build_want(&mut self, key: PublicKey) -> Option<Vec<u8>> {
        let store = &self.store;
        let ids = self.neighbours.update(&key, |peer| {
            peer.want.retain(|id| !store.contains(id));
            let ids: Vec<ObjectId> = peer.want.iter().take(MAX_IDS).copied().collect();
            for id in &ids {
                peer.want.remove(id);
            }
            ids
        })?;
        for id in &ids {
            self.asking.remove(id);
            if self.requested.len() < MAX_REQUESTED {
                self.requested.insert(*id, (self.last_now, key));
            }
        }
        (!ids.is_empty()).then(|| encode_want(&ids))
    }

    /// The next ranges message: this host's ids in the buckets due, from
    /// where the last one stopped, as many as fit.
    fn build_ranges(&mut self, key: PublicKey, view: View) -> Option<Vec<u8>> {
        self.refresh_views();
        let root = self.views.root(view);
        let peer = self.neighbours.get(&key)?;
        let mut due: Vec<u8> = peer.ranges_due.iter().copied().collect();
        let mut after = peer.ranges_after;
        let mut ranges: Vec<IdRange> = Vec::new();
        let (mut len, mut total) = (RANGES_HEADER_LEN, 0);
        let mut done = 0;
        'buckets: for &index in &due {
            let whole = bucket_range(index);
            let (first_of_bucket, last) = whole.clone().into_inner();
            // The cursor is an id of the bucket it was left in: a buckets
            // message since may have put buckets before it in front.
            let first = after
                .filter(|after| after.as_bytes()[0] == index)
                .map_or(first_of_bucket, next_id);
            let ids = self.ids_in(view, &key, first..=last);
            if ranges.len() == MAX_RANGES
                || len + RANGE_HEADER_LEN + OBJECT_ID_LEN > MAX_MESSAGE_LEN
            {
                break;
            }
            let room =
                ((MAX_MESSAGE_LEN - len - RANGE_HEADER_LEN) / OBJECT_ID_LEN).min(MAX_IDS - total);
            if ids.len() <= room {
                len += RANGE_HEADER_LEN + ids.len() * OBJECT_ID_LEN;
                total += ids.len();
                ranges.push(IdRange { first, last, ids });
                after = None;
                done += 1;
                continue 'buckets;
            }
            // The bucket does not fit: send what does, up to its last id,
            // and go on from there next time.
            if room == 0 {
                break;
            }
            let ids: Vec<ObjectId> = ids.into_iter().take(room).collect();
            let last = *ids.last().expect("room > 0");
            ranges.push(IdRange { first, last, ids });
            after = Some(last);
            break;
        }
        due.drain(..done);
        self.neighbours.update(&key, |peer| {
            peer.ranges_due = due.into_iter().collect();
            peer.ranges_after = after;
        });
        (!ranges.is_empty()).then(|| encode_ranges(root, &ranges))
    }
}

/// The id just after `id` (itself when it is the last there is).
fn next_id(id: ObjectId) -> ObjectId {
    let mut bytes = *id.as_bytes();
    for byte in bytes.iter_mut().rev() {
        if *byte == 0xff {
            *byte = 0;
        } else {
            *byte += 1;
            return ObjectId::from_bytes(bytes);
        }
    }
    id
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

/// The issuer of a host revocation; `None` for any other object.
fn host_revocation_issuer(object: ObjectRef<'_>) -> Option<OperatorId> {
    match object {
        ObjectRef::Revocation(r) if matches!(r.revocation().target, RevocationTarget::Host(_)) => {
            Some(r.revocation().issuer)
        }
        _ => None,
    }
}

/// Whether `object` is a host revocation by `recipient`'s operator: it may
/// go back to that operator's hosts even where this host does not know
/// the key as a public host's (the operator handed it to another's host).
/// Outside the views, so pushed and announced, not reconciled.
fn returns_to_issuer(object: ObjectRef<'_>, recipient: &OperatorId) -> bool {
    host_revocation_issuer(object) == Some(*recipient)
}

/// Whether `object` is a revocation of the host with key `host`.
fn revokes(object: ObjectRef<'_>, host: &PublicKey) -> bool {
    matches!(object, ObjectRef::Revocation(r)
        if r.revocation().target == RevocationTarget::Host(*host))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_adversary;
#[cfg(test)]
mod tests_budget;
#[cfg(test)]
mod tests_reconcile;
#[cfg(test)]
mod tests_statements;
