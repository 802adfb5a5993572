//! The store: every signed object a member knows, kept under the rules that
//! make the shared state grow only and so converge by plain anti-entropy,
//! and within bounds no operator can push it past.
//!
//! * **Cards** are keyed by the host's WireGuard key. A card with a higher
//!   serial from the same operator supersedes the one held; at an equal
//!   serial (an operator that signed two different cards) the one with the
//!   lower [`ObjectId`] is kept, so every member settles on the same card. A
//!   card for a key another operator's card already holds is refused as a
//!   [`InsertError::KeyConflict`] — the first is kept — until the held card
//!   expires. Every card carries a proof that its issuer holds the key (see
//!   [`crate::SignedCard`]), so a rival operator cannot make such a card:
//!   two operators' cards for one key come only from the key's holder (a
//!   host handed from one operator to another, or one key copied onto two
//!   operators' hosts). Keeping the first is still the rule every member
//!   can apply alike, and the conflict is still counted, now as that
//!   operators' mistake rather than an attack. A card for a key its own
//!   operator revoked is refused while the revocation stands. So is a card
//!   for that key from **any other operator**, once the store has held (or
//!   refused, coming late) a card of the revoking operator for it: a
//!   revoked host holds its key and can prove it, so without this it could
//!   rejoin under a colluding rival's card. The key is blocked until the
//!   tombstone goes (below); a host handed to another operator needs a new
//!   key. A rival's revocation of our key blocks nothing, since the store
//!   never held a card of the rival's for it. On the local operator's own
//!   hosts, its revocations block their keys even with no tombstone (a
//!   revocation read from the state file, whose card was hidden or never
//!   seen): no one else can sign them. Expired cards are refused,
//!   and dropped by [`Store::prune`].
//! * **Vouches** are keyed by (voucher, subject): the newest `issued_at`
//!   wins (the lower id at an equal time).
//! * **Revocations** are keyed by (issuer, target) the same way. A host
//!   revocation is a tombstone that removes its card and refuses every card
//!   for that key from that operator, whatever its serial; the newest vouch
//!   withdrawal is the one the trust policy needs.
//! * A **public host's card that its operator revoked** is kept aside, inert
//!   — never listed, never sent, never a peer — until it expires; only its
//!   operator, its `not_after` and its signed encoding (for the state file)
//!   are kept, not the parsed card. It is how the store remembers that the
//!   revoked key was a public host's, so the revocation, which names the
//!   key, may go to other operators; a revocation of a key never seen on a
//!   public card stays with its operator, as a hidden host's card does.
//!
//! # Bounds
//!
//! Gossip stores only objects signed by operators this host admits (see
//! [`crate::gossip`]), and the store keeps each operator within quotas that
//! follow from the host's trust configuration ([`Store::reserve_room`]), so
//! an admitted rival fills only its own:
//!
//! * **Vouches and withdrawals are kept only where they can count**, and
//!   at their voucher's own hosts. A host admits an operator on the
//!   vouches of its own operator and of the `d` operators it trusts
//!   directly (see [`crate::TrustPolicy`]); it also keeps every vouch of
//!   its own operator, which it publishes for other operators' hosts. Any
//!   other operator's vouch or withdrawal is refused
//!   ([`InsertError::NotCounted`]), however admitted its signer. A kept
//!   voucher's statements are all kept, within its share (below), even
//!   those about operators this host configures itself, which count only
//!   elsewhere: so every host keeping a voucher's statements keeps the
//!   same set, which gossip reconciles per voucher. So a host holds at
//!   most `d + 1` vouch pairs per operator it admits by vouches — or
//!   considers: a subject short of `k` vouches — or configures, not every
//!   vouch of the mesh: in a web of 250 operators where each vouches for
//!   every other (62,250 vouches), a host trusting 2 directly holds 747. A
//!   vouch reaches the hosts it counts for from its voucher's hosts, which
//!   every such host peers with (it admits the voucher directly), and from
//!   any host it counts for.
//! * **[`Store::statement_quota`]** (voucher, subject) pairs per directly
//!   trusted operator, a vouch and a withdrawal of it sharing one, an
//!   equal share of [`VOUCH_ROOM`] of at most [`STATEMENT_QUOTA`]:
//!   withdrawing a vouch the store holds is never refused for room. A
//!   directly trusted rival that vouches for any number of made-up
//!   operators fills only its own share: the vouches of the others, that
//!   admit the real operators, each have theirs. Which of a voucher's
//!   vouches matter cannot be told when they arrive — a subject with one
//!   vouch is admitted when `k - 1` more come — so none is preferred; and
//!   once a subject is admitted, its vouches beyond `k` are still kept:
//!   they keep it admitted when one is withdrawn, and a second range named
//!   `k` times must leave it out on every host alike, whatever arrived
//!   first (see [`crate::TrustPolicy`]).
//! * **[`HOST_QUOTA`]** cards and host revocations together per operator.
//!   A revocation by an operator of a card of its own that the store holds
//!   takes that card's place, so it is **never refused for room** — not by
//!   the quota, not by [`MAX_CARDS`]. A host revocation of a key the store
//!   holds no card of needs room like a card.
//! * At most [`MAX_CARDS`] cards and host revocations of the operators
//!   admitted by vouches (and formerly admitted ones whose tombstones still
//!   stand), all of them together: one operator fills at most
//!   [`HOST_QUOTA`] of it, so only 64 at their quotas reach it — stand-ins
//!   that `k` colluding vouchers (or one, with a threshold of 1) admit —
//!   and then only they are refused: the operators this host trusts itself
//!   are outside it.
//! * The **local operator's objects are never refused for room** (its key
//!   signs nothing a rival can multiply).
//!
//! So besides the local operator's objects the store holds at most
//! `min(HOST_QUOTA × vouched, MAX_CARDS) + HOST_QUOTA × d` cards and host
//! revocations (`vouched`: the operators admitted by vouches), as many
//! revoked cards aside (at most [`MAX_CARDS`]), and `d ×
//! statement_quota ≤ VOUCH_ROOM` vouch pairs, of which at most `d + 1` are
//! about any one operator; no list ever more than [`MAX_LISTED`], whoever
//! signed it, since the state file counts each in 16 bits.
//!
//! A host revocation that revoked a card here — held, or refused because it
//! came later — needs to outlive only that card: the tombstone is dropped
//! by [`Store::prune`] once the latest such card has expired (no card of
//! that key from that operator is valid any more), which is what keeps the
//! tombstones bounded over time. The price: a card of that key this store
//! never saw, valid beyond every one it saw, would be taken once the
//! tombstone is gone — which needs the operator to have signed it before
//! the revocation and the host's key to prove it; until then, any copy of
//! it that arrives is refused and keeps the tombstone standing longer. A host revocation of a key never seen on
//! a card here is kept, within its issuer's quota. [`Store::retain_signers`]
//! drops what operators no longer admitted signed, but keeps their
//! tombstones of revoked cards until they expire: a revocation is not
//! undone by its issuer leaving the web of trust.
//!
//! The store judges objects on their own: signatures (checked when the
//! object was decoded), time, these rules and quotas. Whether an object's
//! operator is admitted, and to whom it may be shown, is for the peer
//! manager and the gossip layer. The state file: [`Store::encode`].

mod index;
mod quota;
mod state;
mod tombstone;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;

use index::IdIndex;
pub use index::{Change, Changes, Subject};
use quota::Usage;
pub use quota::{HOST_QUOTA, MAX_CARDS, MAX_LISTED, STATEMENT_QUOTA, VOUCH_ROOM};
use sentrymesh_types::{CLOCK_SKEW, PublicKey, UnixTime};
pub use state::StateError;
use tombstone::RetiredCard;

use crate::card::{CardTimeError, HostCard, SignedCard};
use crate::identity::OperatorId;
use crate::object::{Object, ObjectId, ObjectKind, ObjectRef};
use crate::revocation::{RevocationTarget, SignedRevocation};
use crate::vouch::SignedVouch;

/// The longest encoded vouch or revocation.
const MAX_STATEMENT_LEN: usize = 256;

/// What inserting an object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The object is new to the store.
    New,
    /// The object replaced an older one (a card with a lower serial, an
    /// older vouch or revocation, or an expired card for the same key).
    Superseding {
        /// The id of the object replaced.
        replaced: ObjectId,
    },
    /// The store already holds this very object.
    AlreadyHeld,
    /// The store holds a newer version; nothing changed.
    Outdated,
}

impl Inserted {
    /// Whether the store changed.
    pub fn changed(&self) -> bool {
        matches!(self, Self::New | Self::Superseding { .. })
    }
}

/// Why a member refuses an object: the store's rules, or (from gossip and
/// [`crate::Mesh::insert`]) an operator it does not admit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InsertError {
    /// A card that has expired or is not yet valid.
    #[error(transparent)]
    Time(#[from] CardTimeError),
    /// A vouch or revocation dated beyond the allowed clock skew.
    #[error(
        "the {kind} by operator {signer} is dated {issued_at}, more than {CLOCK_SKEW} seconds \
         ahead of this host's clock"
    )]
    FromTheFuture {
        /// `vouch` or `revocation`.
        kind: ObjectKind,
        /// The operator who signed it.
        signer: OperatorId,
        /// Its date.
        issued_at: UnixTime,
    },
    /// A card for a host key its operator revoked, or that the operator of
    /// a card the store held for the key revoked.
    #[error("the card for host `{host}` is refused: operator {operator} revoked its key {key}")]
    Revoked {
        /// The host's name on the card.
        host: String,
        /// The revoked key.
        key: PublicKey,
        /// Who revoked it: the card's operator, or the operator whose card
        /// for the key the store held.
        operator: OperatorId,
    },
    /// A card for a key that another operator's card holds.
    #[error(transparent)]
    KeyConflict(Box<KeyConflict>),
    /// A vouch or vouch withdrawal that cannot count on this host, nor is
    /// its own operator's: its signer is not trusted directly (see
    /// [`Store::reserve_room`]).
    #[error(
        "the {kind} by operator {voucher} about operator {subject} cannot count on this host: \
         only its own operator's and its directly trusted operators' vouches count"
    )]
    NotCounted {
        /// `vouch` or `revocation`.
        kind: ObjectKind,
        /// The operator who signed it.
        voucher: OperatorId,
        /// The operator it is about.
        subject: OperatorId,
    },
    /// An object signed by an operator this host does not admit.
    #[error("the {kind} is signed by operator {signer}, which this host does not admit")]
    NotAdmitted {
        /// The kind of object.
        kind: ObjectKind,
        /// The operator who signed it.
        signer: OperatorId,
    },
    /// The signer already has as many objects of the kind as one operator
    /// may keep here.
    #[error("operator {operator} already has {quota} {what} here, the most one operator may")]
    OverQuota {
        /// The operator who signed the object.
        operator: OperatorId,
        /// `cards and host revocations` or `vouches`.
        what: &'static str,
        /// Its quota.
        quota: usize,
    },
    /// The store holds as many objects of the kind as it keeps.
    #[error("the store already holds {max} {what}, the most it keeps")]
    Full {
        /// `cards and host revocations` (those of the operators admitted
        /// by vouches, [`MAX_CARDS`]) or `objects of one kind`
        /// ([`MAX_LISTED`]).
        what: &'static str,
        /// The limit.
        max: usize,
    },
}

/// Two operators' cards naming one WireGuard key: the first is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the card for host `{host}` of operator {claimed_by} claims the WireGuard key {key}, which \
     the card for host `{held_host}` of operator {held_by} already holds; the first card is kept"
)]
pub struct KeyConflict {
    /// The refused card's host name.
    pub host: String,
    /// The refused card's operator.
    pub claimed_by: OperatorId,
    /// The key both cards name.
    pub key: PublicKey,
    /// The held card's host name.
    pub held_host: String,
    /// The held card's operator.
    pub held_by: OperatorId,
}

/// An object the store holds, with its id.
#[derive(Debug, Clone)]
struct Held<T> {
    id: ObjectId,
    object: T,
}

/// Where the object with an id is kept.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Card(PublicKey),
    Vouch(OperatorId, OperatorId),
    Revocation(OperatorId, RevocationTarget),
}

/// Whether an insert must find room for what it adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    /// A new object: quotas and limits apply.
    Needed,
    /// An object the store held before (a state file): it is taken back.
    Held,
}

/// Every signed object a member knows. See the [module docs](self).
#[derive(Clone, Default)]
pub struct Store {
    cards: BTreeMap<PublicKey, Held<SignedCard>>,
    /// `(not_after, key)` of every card, for pruning.
    expiries: BTreeSet<(UnixTime, PublicKey)>,
    vouches: BTreeMap<(OperatorId, OperatorId), Held<SignedVouch>>,
    revocations: BTreeMap<(OperatorId, RevocationTarget), Held<SignedRevocation>>,
    /// Until when each host revocation that revoked a card here must stand:
    /// the latest `not_after` of its issuer's cards for the key.
    tombstones: BTreeMap<(OperatorId, PublicKey), UnixTime>,
    /// `(until, issuer, key)` of every entry of `tombstones`.
    tombstone_expiries: BTreeSet<(UnixTime, OperatorId, PublicKey)>,
    /// The issuers of the entries of `tombstones`, by key, ascending: a
    /// key has one issuer but for rivals' claims, and a set of one took a
    /// B-tree node (368 bytes) for each revoked host.
    tombstoned_keys: BTreeMap<PublicKey, Vec<OperatorId>>,
    /// What is kept of the public cards their operator revoked, until they
    /// expire.
    retired: BTreeMap<PublicKey, RetiredCard>,
    /// `(not_after, key)` of every retired card.
    retired_expiries: BTreeSet<(UnixTime, PublicKey)>,
    /// Each operator's objects, against its quotas; no entry when none.
    usage: BTreeMap<OperatorId, Usage>,
    /// The local operator, whose objects are never refused for room.
    local: Option<OperatorId>,
    /// The directly trusted operators: with the local one, the only
    /// vouchers whose vouches count here; held to their quotas, but
    /// outside [`MAX_CARDS`].
    direct: BTreeSet<OperatorId>,
    /// The cards and host revocations of every other operator, against
    /// [`MAX_CARDS`].
    pooled_hosts: usize,
    ids: IdIndex,
    generation: u64,
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts any object; see the `insert_*` methods.
    ///
    /// # Errors
    ///
    /// [`InsertError`] saying why the object is refused.
    pub fn insert(&mut self, object: Object, now: UnixTime) -> Result<Inserted, InsertError> {
        match object {
            Object::Card(card) => self.insert_card(card, now),
            Object::Vouch(vouch) => self.insert_vouch(vouch, now),
            Object::Revocation(revocation) => self.insert_revocation(revocation, now),
        }
    }

    /// Inserts a card valid at `now` (Unix seconds).
    ///
    /// # Errors
    ///
    /// [`InsertError::Time`] when the card is not valid at `now`;
    /// [`InsertError::Revoked`] when its operator revoked its key;
    /// [`InsertError::KeyConflict`] when another operator's unexpired card
    /// holds its key; [`InsertError::OverQuota`] or [`InsertError::Full`] when
    /// its operator, or the store, has no room for it.
    pub fn insert_card(
        &mut self,
        card: SignedCard,
        now: UnixTime,
    ) -> Result<Inserted, InsertError> {
        card.check_valid_at(now)?;
        self.put_card(card, Some(now))
    }

    /// Inserts a vouch.
    ///
    /// # Errors
    ///
    /// [`InsertError::FromTheFuture`] when it is dated more than
    /// [`CLOCK_SKEW`] seconds after `now`; [`InsertError::NotCounted`] when
    /// it cannot count here; [`InsertError::OverQuota`] or
    /// [`InsertError::Full`] when there is no room for it (a revocation of a
    /// card held, or a withdrawal of a vouch held, always has room).
    pub fn insert_vouch(
        &mut self,
        vouch: SignedVouch,
        now: UnixTime,
    ) -> Result<Inserted, InsertError> {
        let v = vouch.vouch();
        check_not_future(ObjectKind::Vouch, v.voucher, v.issued_at, now)?;
        self.check_kept(ObjectKind::Vouch, v.voucher, v.subject)?;
        self.put_vouch(vouch, Room::Needed)
    }

    /// Inserts a revocation. A host revocation removes the card it revokes.
    ///
    /// # Errors
    ///
    /// [`InsertError::FromTheFuture`] when it is dated more than
    /// [`CLOCK_SKEW`] seconds after `now`; [`InsertError::NotCounted`] for
    /// a vouch withdrawal that cannot count here; [`InsertError::OverQuota`] or
    /// [`InsertError::Full`] when there is no room for it (a revocation of a
    /// card held, or a withdrawal of a vouch held, always has room).
    pub fn insert_revocation(
        &mut self,
        revocation: SignedRevocation,
        now: UnixTime,
    ) -> Result<Inserted, InsertError> {
        let r = revocation.revocation();
        check_not_future(ObjectKind::Revocation, r.issuer, r.issued_at, now)?;
        if let RevocationTarget::Vouch(subject) = r.target {
            self.check_kept(ObjectKind::Revocation, r.issuer, subject)?;
        }
        self.put_revocation(revocation, Room::Needed)
    }

    /// Drops every object signed by an operator `admitted` does not hold —
    /// cards, vouches, vouch withdrawals and host revocations of keys never
    /// seen on their cards — keeping the tombstones of cards they revoked
    /// until those expire, and every vouch and withdrawal that cannot count
    /// here ([`Store::reserve_room`]); returns how many were dropped. For
    /// when the operators admitted change: memory follows the trust
    /// configuration.
    pub fn retain_signers(&mut self, admitted: &BTreeSet<OperatorId>) -> usize {
        let cards: Vec<PublicKey> = self
            .cards
            .iter()
            .filter(|(_, held)| !admitted.contains(&held.object.card().operator))
            .map(|(key, _)| *key)
            .collect();
        for key in &cards {
            self.remove_card(key);
        }
        let statements = self.retain_statements(|store, voucher| {
            admitted.contains(&voucher) && store.keeps(voucher)
        });
        let revocations: Vec<(OperatorId, RevocationTarget)> = self
            .revocations
            .keys()
            .filter(|&&(issuer, target)| match target {
                RevocationTarget::Host(key) => {
                    !admitted.contains(&issuer) && !self.tombstones.contains_key(&(issuer, key))
                }
                RevocationTarget::Vouch(_) => false,
            })
            .copied()
            .collect();
        for &key in &revocations {
            self.remove_revocation(key);
        }
        let dropped = cards.len() + statements + revocations.len();
        if dropped > 0 {
            self.generation += 1;
        }
        dropped
    }

    /// Whether the store holds the object with this id.
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.ids.contains_key(id)
    }

    /// The object with this id.
    pub fn get(&self, id: &ObjectId) -> Option<ObjectRef<'_>> {
        let slot = self.ids.get(id)?;
        self.resolve(slot)
    }

    /// Every object with its id, ascending by id.
    pub fn objects(&self) -> impl Iterator<Item = (ObjectId, ObjectRef<'_>)> {
        self.objects_after(None)
    }

    /// The objects with ids after `cursor` (all when `None`), ascending.
    pub(crate) fn objects_after(
        &self,
        cursor: Option<ObjectId>,
    ) -> impl Iterator<Item = (ObjectId, ObjectRef<'_>)> {
        let start = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        self.objects_in((start, Bound::Unbounded))
    }

    /// The objects with ids in `range`, ascending. O(log n) to start.
    pub(crate) fn objects_in(
        &self,
        range: impl std::ops::RangeBounds<ObjectId>,
    ) -> impl Iterator<Item = (ObjectId, ObjectRef<'_>)> {
        self.ids
            .range(range)
            .filter_map(|(id, slot)| Some((*id, self.resolve(slot)?)))
    }

    /// The cards, ascending by WireGuard key.
    pub fn cards(&self) -> impl Iterator<Item = &SignedCard> {
        self.cards.values().map(|held| &held.object)
    }

    /// The card for a WireGuard key.
    pub fn card(&self, key: &PublicKey) -> Option<&SignedCard> {
        self.cards.get(key).map(|held| &held.object)
    }

    /// The vouches, the newest per (voucher, subject).
    pub fn vouches(&self) -> impl Iterator<Item = &SignedVouch> {
        self.vouches.values().map(|held| &held.object)
    }

    /// The revocations, the newest per (issuer, target).
    pub fn revocations(&self) -> impl Iterator<Item = &SignedRevocation> {
        self.revocations.values().map(|held| &held.object)
    }

    /// Whether the card's own operator revoked its key.
    pub fn is_revoked(&self, card: &HostCard) -> bool {
        self.revokes_host(card.operator, card.wg_public_key)
    }

    /// The operator for which the store knows `key` as a public (not
    /// hidden) host: that of the card held for the key, if it is a public
    /// host's, or, when none is held, that of a public card its operator
    /// revoked (kept aside until it expires). For judging to whom a
    /// revocation of the key may go: only that operator's may leave it.
    pub fn public_host_operator(&self, key: &PublicKey) -> Option<OperatorId> {
        match self.card(key) {
            Some(held) => {
                let card = held.card();
                (!card.role.is_hidden()).then_some(card.operator)
            }
            None => self.retired.get(key).map(RetiredCard::operator),
        }
    }

    /// How many objects the store holds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// A number that grows whenever the store changes (and is 0 for a new
    /// or decoded store): the daemon writes the state file when it differs
    /// from the one last written.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    // ----- the rules ---------------------------------------------------

    /// Inserts a card whose validity at `now` the caller checked (when
    /// `now` is known; a decoded state file has none, and its cards need
    /// no room).
    fn put_card(
        &mut self,
        card: SignedCard,
        now: Option<UnixTime>,
    ) -> Result<Inserted, InsertError> {
        let id = ObjectId::of(ObjectKind::Card, card.as_bytes());
        if self.ids.contains_key(&id) {
            return Ok(Inserted::AlreadyHeld);
        }
        let new = card.card();
        if self.revokes_host(new.operator, new.wg_public_key) {
            let error = InsertError::Revoked {
                host: new.name.clone(),
                key: new.wg_public_key,
                operator: new.operator,
            };
            let (operator, key, not_after) = (new.operator, new.wg_public_key, new.not_after);
            self.bind_tombstone(operator, key, not_after);
            // Another operator's card for the key came first; the key's
            // operator revoked it, so it is blocked for everyone.
            let rival = self
                .cards
                .get(&key)
                .is_some_and(|held| held.object.card().operator != operator);
            if rival {
                self.remove_card(&key);
            }
            if self.retire(&card) || rival {
                self.generation += 1;
            }
            return Err(error);
        }
        if let Some(revoker) = self.revoked_elsewhere(new.operator, new.wg_public_key) {
            return Err(InsertError::Revoked {
                host: new.name.clone(),
                key: new.wg_public_key,
                operator: revoker,
            });
        }
        let (replaced, same_operator) = match self.cards.get(&new.wg_public_key) {
            None => (None, false),
            Some(held) => {
                let old = held.object.card();
                let old_expired = now.is_some_and(|now| now >= old.not_after);
                if old.operator != new.operator {
                    if !old_expired {
                        return Err(InsertError::KeyConflict(Box::new(KeyConflict {
                            host: new.name.clone(),
                            claimed_by: new.operator,
                            key: new.wg_public_key,
                            held_host: old.name.clone(),
                            held_by: old.operator,
                        })));
                    }
                } else if (new.serial, Reverse(id)) < (old.serial, Reverse(held.id)) {
                    return Ok(Inserted::Outdated);
                }
                (Some(held.id), old.operator == new.operator)
            }
        };
        if now.is_some() && !same_operator {
            // A card replacing another operator's expired one takes its
            // place in the pool, but not in its operator's quota.
            self.check_host_room(new.operator, replaced.is_none())?;
        }
        if replaced.is_none() {
            Self::check_listed(self.cards.len())?;
        }
        let (key, operator, not_after) = (new.wg_public_key, new.operator, new.not_after);
        self.remove_card(&key);
        self.expiries.insert((not_after, key));
        self.ids.insert(id, Slot::Card(key));
        self.cards.insert(key, Held { id, object: card });
        self.charge(operator, |usage| usage.hosts += 1);
        self.note_known_card(operator, key);
        Ok(self.changed(replaced))
    }

    fn put_vouch(&mut self, vouch: SignedVouch, room: Room) -> Result<Inserted, InsertError> {
        let id = ObjectId::of(ObjectKind::Vouch, vouch.as_bytes());
        if self.ids.contains_key(&id) {
            return Ok(Inserted::AlreadyHeld);
        }
        let v = *vouch.vouch();
        let key = (v.voucher, v.subject);
        let replaced = match self.vouches.get(&key) {
            Some(held)
                if (v.issued_at, Reverse(id))
                    < (held.object.vouch().issued_at, Reverse(held.id)) =>
            {
                return Ok(Inserted::Outdated);
            }
            Some(held) => Some(held.id),
            None => None,
        };
        if replaced.is_none() {
            Self::check_listed(self.vouches.len())?;
        }
        let new_pair = replaced.is_none() && !self.withdraws(v.voucher, v.subject);
        if new_pair {
            if room == Room::Needed {
                self.check_statement_room(v.voucher)?;
            }
            self.charge(v.voucher, |usage| usage.statements += 1);
        }
        if let Some(old) = replaced {
            self.ids.remove(&old);
        }
        self.ids.insert(id, Slot::Vouch(key.0, key.1));
        self.vouches.insert(key, Held { id, object: vouch });
        Ok(self.changed(replaced))
    }

    fn put_revocation(
        &mut self,
        revocation: SignedRevocation,
        room: Room,
    ) -> Result<Inserted, InsertError> {
        let id = ObjectId::of(ObjectKind::Revocation, revocation.as_bytes());
        if self.ids.contains_key(&id) {
            return Ok(Inserted::AlreadyHeld);
        }
        let r = *revocation.revocation();
        let key = (r.issuer, r.target);
        let replaced = match self.revocations.get(&key) {
            Some(held)
                if (r.issued_at, Reverse(id))
                    < (held.object.revocation().issued_at, Reverse(held.id)) =>
            {
                return Ok(Inserted::Outdated);
            }
            Some(held) => Some(held.id),
            None => None,
        };
        // The card this revokes, if the store holds it.
        let revoked_card = match r.target {
            RevocationTarget::Host(host) => self
                .cards
                .get(&host)
                .filter(|held| held.object.card().operator == r.issuer)
                .map(|_| host),
            RevocationTarget::Vouch(_) => None,
        };
        if replaced.is_none() {
            Self::check_listed(self.revocations.len())?;
            match r.target {
                // Revoking a card held takes the card's room: never refused.
                RevocationTarget::Host(_) if revoked_card.is_some() => {}
                RevocationTarget::Host(_) if room == Room::Needed => {
                    self.check_host_room(r.issuer, true)?;
                }
                RevocationTarget::Vouch(subject)
                    if !self.vouches.contains_key(&(r.issuer, subject)) =>
                {
                    if room == Room::Needed {
                        self.check_statement_room(r.issuer)?;
                    }
                    self.charge(r.issuer, |usage| usage.statements += 1);
                }
                RevocationTarget::Host(_) | RevocationTarget::Vouch(_) => {}
            }
            if let RevocationTarget::Host(_) = r.target {
                self.charge(r.issuer, |usage| usage.hosts += 1);
            }
        }
        if let Some(old) = replaced {
            self.ids.remove(&old);
        }
        self.ids.insert(id, Slot::Revocation(key.0, key.1));
        self.revocations.insert(
            key,
            Held {
                id,
                object: revocation,
            },
        );
        if let Some(host) = revoked_card {
            if let Some(card) = self.remove_card(&host) {
                self.bind_tombstone(r.issuer, host, card.card().not_after);
                self.retire(&card);
            }
        }
        Ok(self.changed(replaced))
    }

    /// Records a change and says what it was.
    fn changed(&mut self, replaced: Option<ObjectId>) -> Inserted {
        self.generation += 1;
        match replaced {
            Some(replaced) => Inserted::Superseding { replaced },
            None => Inserted::New,
        }
    }

    fn remove_card(&mut self, key: &PublicKey) -> Option<SignedCard> {
        let held = self.cards.remove(key)?;
        self.ids.remove(&held.id);
        let card = held.object.card();
        self.expiries.remove(&(card.not_after, *key));
        let operator = card.operator;
        self.release(operator, |usage| usage.hosts -= 1);
        self.note_known_card(operator, *key);
        Some(held.object)
    }

    fn remove_vouch(&mut self, pair: (OperatorId, OperatorId)) {
        if let Some(held) = self.vouches.remove(&pair) {
            self.ids.remove(&held.id);
            if !self.withdraws(pair.0, pair.1) {
                self.release(pair.0, |usage| usage.statements -= 1);
            }
        }
    }

    fn remove_revocation(&mut self, key: (OperatorId, RevocationTarget)) {
        let Some(held) = self.revocations.remove(&key) else {
            return;
        };
        self.ids.remove(&held.id);
        match key.1 {
            RevocationTarget::Host(host) => {
                self.release(key.0, |usage| usage.hosts -= 1);
                if let Some(until) = self.tombstones.remove(&(key.0, host)) {
                    self.tombstone_expiries.remove(&(until, key.0, host));
                    if let Some(issuers) = self.tombstoned_keys.get_mut(&host) {
                        issuers.retain(|issuer| *issuer != key.0);
                        if issuers.is_empty() {
                            self.tombstoned_keys.remove(&host);
                        }
                    }
                }
                if self
                    .retired
                    .get(&host)
                    .is_some_and(|retired| retired.operator() == key.0)
                {
                    self.unretire(&host);
                }
            }
            RevocationTarget::Vouch(subject) => {
                if !self.vouches.contains_key(&(key.0, subject)) {
                    self.release(key.0, |usage| usage.statements -= 1);
                }
            }
        }
    }

    fn revokes_host(&self, operator: OperatorId, key: PublicKey) -> bool {
        self.revocations
            .contains_key(&(operator, RevocationTarget::Host(key)))
    }

    /// Whether the store holds a withdrawal by `voucher` of its vouch for
    /// `subject`.
    fn withdraws(&self, voucher: OperatorId, subject: OperatorId) -> bool {
        self.revocations
            .contains_key(&(voucher, RevocationTarget::Vouch(subject)))
    }

    fn resolve(&self, slot: &Slot) -> Option<ObjectRef<'_>> {
        match slot {
            Slot::Card(key) => self.cards.get(key).map(|h| ObjectRef::Card(&h.object)),
            Slot::Vouch(voucher, subject) => self
                .vouches
                .get(&(*voucher, *subject))
                .map(|h| ObjectRef::Vouch(&h.object)),
            Slot::Revocation(issuer, target) => self
                .revocations
                .get(&(*issuer, *target))
                .map(|h| ObjectRef::Revocation(&h.object)),
        }
    }
}

impl PartialEq for Store {
    /// Two stores are equal when they hold the same objects (and the same
    /// revoked cards aside).
    fn eq(&self, other: &Self) -> bool {
        self.ids.keys().eq(other.ids.keys()) && self.retired == other.retired
    }
}

impl Eq for Store {}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("cards", &self.cards.len())
            .field("vouches", &self.vouches.len())
            .field("revocations", &self.revocations.len())
            .field("retired", &self.retired.len())
            .field("generation", &self.generation)
            .finish()
    }
}

fn check_not_future(
    kind: ObjectKind,
    signer: OperatorId,
    issued_at: UnixTime,
    now: UnixTime,
) -> Result<(), InsertError> {
    if issued_at > now.saturating_add(CLOCK_SKEW) {
        return Err(InsertError::FromTheFuture {
            kind,
            signer,
            issued_at,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rivals;
#[cfg(test)]
mod tests_vouches;
