//! The store: every signed object a member knows, kept under the rules that
//! make the shared state grow only and so converge by plain anti-entropy.
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
//!   operator revoked is refused for good.
//!   Expired cards are refused, and dropped by [`Store::prune`].
//! * **Vouches** are keyed by (voucher, subject): the newest `issued_at`
//!   wins (the lower id at an equal time).
//! * **Revocations** are keyed by (issuer, target) the same way and are never
//!   dropped: a host revocation is a tombstone that removes its card and
//!   refuses every card for that key from that operator, whatever its
//!   serial; the newest vouch withdrawal is the one the trust policy needs.
//! * A **public host's card that its operator revoked** is kept aside, inert
//!   — never listed, never sent, never a peer — until it expires. It is how
//!   the store remembers that the revoked key was a public host's, so the
//!   revocation, which names the key, may go to other operators; a
//!   revocation of a key never seen on a public card stays with its
//!   operator, as a hidden host's card does.
//!
//! The store judges objects on their own: signatures (checked when the
//! object was decoded), time and these rules. Whether an object's operator
//! is admitted, and to whom it may be shown, is for the peer manager and the
//! gossip layer.
//!
//! # State file
//!
//! [`Store::encode`] writes the whole store for the daemon's state
//! directory; [`Store::decode`] reads it back and re-verifies every
//! signature, so an altered file is refused rather than trusted:
//!
//! ```text
//! [16]  "sentrymesh state"
//! u8    state format version (1)
//! u16   card count, then per card (ascending by WireGuard key):              u16 length, signed card
//! u16   vouch count, then per vouch (ascending by voucher, subject):          u16 length, signed vouch
//! u16   revocation count, then per revocation (ascending by issuer, target):  u16 length, signed revocation
//! u16   retired card count, then per card (ascending by WireGuard key):      u16 length, signed card
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;

use crate::card::{CardTimeError, HostCard, MAX_CARD_LEN, SignedCard};
use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::OperatorId;
use crate::object::{Object, ObjectId, ObjectKind, ObjectRef, ParseObjectError};
use crate::revocation::{RevocationTarget, SignedRevocation};
use crate::time::{CLOCK_SKEW, UnixTime};
use crate::vouch::SignedVouch;
use crate::wg_key::WgPublicKey;

/// The most cards a store keeps.
pub const MAX_CARDS: usize = 16_384;
/// The most vouches a store keeps.
pub const MAX_VOUCHES: usize = 16_384;
/// The most revocations a store keeps.
pub const MAX_REVOCATIONS: usize = 16_384;

/// The first bytes of a state file.
const STATE_MAGIC: &[u8; 16] = b"sentrymesh state";
/// The state file format this build writes and reads.
const STATE_VERSION: u8 = 1;
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

/// Why the store refuses an object.
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
    /// A card for a host key its operator revoked.
    #[error("the card for host `{host}` is refused: operator {operator} revoked its key {key}")]
    Revoked {
        /// The host's name on the card.
        host: String,
        /// The revoked key.
        key: WgPublicKey,
        /// The card's operator, who revoked it.
        operator: OperatorId,
    },
    /// A card for a key that another operator's card holds.
    #[error(transparent)]
    KeyConflict(Box<KeyConflict>),
    /// The store holds as many objects of the kind as it keeps.
    #[error("the store already holds {max} {what}, the most it keeps")]
    Full {
        /// `cards`, `vouches` or `revocations`.
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
    pub key: WgPublicKey,
    /// The held card's host name.
    pub held_host: String,
    /// The held card's operator.
    pub held_by: OperatorId,
}

/// Why bytes are not a state file this build can trust.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The bytes do not start as a state file does.
    #[error("not a sentrymesh state file: it does not start with `sentrymesh state`")]
    NotAStateFile,
    /// A state format this build does not read.
    #[error("state file format {found} is not supported (this build reads format {STATE_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        found: u8,
    },
    /// The framing is broken: a truncated or damaged file.
    #[error("the state file is damaged or truncated: {0}")]
    Malformed(#[from] DecodeError),
    /// An object that is not valid or whose signature does not verify.
    #[error("the state file is damaged or was altered: {kind} {index} is refused: {source}")]
    BadObject {
        /// The kind of object.
        kind: ObjectKind,
        /// Its position in its list, from 0.
        index: usize,
        /// What is wrong with it.
        source: ParseObjectError,
    },
    /// A revoked card kept aside that is not valid or does not verify.
    #[error("the state file is damaged or was altered: retired card {index} is refused: {source}")]
    BadRetiredCard {
        /// Its position in its list, from 0.
        index: usize,
        /// What is wrong with it.
        source: ParseObjectError,
    },
    /// Valid objects the store would never hold together.
    #[error("the state file is inconsistent: {kind} {index} is refused: {source}")]
    Inconsistent {
        /// The kind of object.
        kind: ObjectKind,
        /// Its position in its list, from 0.
        index: usize,
        /// Why the store refuses it.
        source: InsertError,
    },
    /// Valid objects, but not as this build writes them: out of order,
    /// repeated, or superseded by another in the file.
    #[error(
        "the state file was altered: its objects are not as sentrymesh writes them (out of \
         order, repeated or superseded)"
    )]
    NotCanonical,
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
    Card(WgPublicKey),
    Vouch(OperatorId, OperatorId),
    Revocation(OperatorId, RevocationTarget),
}

/// Every signed object a member knows. See the [module docs](self).
#[derive(Clone, Default)]
pub struct Store {
    cards: BTreeMap<WgPublicKey, Held<SignedCard>>,
    /// `(not_after, key)` of every card, for pruning.
    expiries: BTreeSet<(u64, WgPublicKey)>,
    vouches: BTreeMap<(OperatorId, OperatorId), Held<SignedVouch>>,
    revocations: BTreeMap<(OperatorId, RevocationTarget), Held<SignedRevocation>>,
    /// Public cards their operator revoked, until they expire.
    retired: BTreeMap<WgPublicKey, SignedCard>,
    /// `(not_after, key)` of every retired card.
    retired_expiries: BTreeSet<(u64, WgPublicKey)>,
    ids: BTreeMap<ObjectId, Slot>,
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
    pub fn insert(&mut self, object: Object, now: u64) -> Result<Inserted, InsertError> {
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
    /// holds its key; [`InsertError::Full`].
    pub fn insert_card(&mut self, card: SignedCard, now: u64) -> Result<Inserted, InsertError> {
        card.check_valid_at(now)?;
        self.put_card(card, Some(now))
    }

    /// Inserts a vouch.
    ///
    /// # Errors
    ///
    /// [`InsertError::FromTheFuture`] when it is dated more than
    /// [`CLOCK_SKEW`] seconds after `now`; [`InsertError::Full`].
    pub fn insert_vouch(&mut self, vouch: SignedVouch, now: u64) -> Result<Inserted, InsertError> {
        let v = vouch.vouch();
        check_not_future(ObjectKind::Vouch, v.voucher, v.issued_at, now)?;
        self.put_vouch(vouch)
    }

    /// Inserts a revocation. A host revocation removes the card it revokes.
    ///
    /// # Errors
    ///
    /// [`InsertError::FromTheFuture`] when it is dated more than
    /// [`CLOCK_SKEW`] seconds after `now`; [`InsertError::Full`].
    pub fn insert_revocation(
        &mut self,
        revocation: SignedRevocation,
        now: u64,
    ) -> Result<Inserted, InsertError> {
        let r = revocation.revocation();
        check_not_future(ObjectKind::Revocation, r.issuer, r.issued_at, now)?;
        self.put_revocation(revocation)
    }

    /// Drops every card expired at `now` (retired ones too); returns how
    /// many.
    pub fn prune(&mut self, now: u64) -> usize {
        let bound = (now.saturating_add(1), WgPublicKey::from_bytes([0; 32]));
        let expired: Vec<WgPublicKey> = self.expiries.range(..bound).map(|&(_, key)| key).collect();
        for key in &expired {
            self.remove_card(key);
        }
        let retired: Vec<(u64, WgPublicKey)> =
            self.retired_expiries.range(..bound).copied().collect();
        for entry in &retired {
            self.retired_expiries.remove(entry);
            self.retired.remove(&entry.1);
        }
        let pruned = expired.len() + retired.len();
        if pruned > 0 {
            self.generation += 1;
        }
        pruned
    }

    /// When the next card expires (its `not_after`): the time to call
    /// [`Store::prune`].
    pub fn next_expiry(&self) -> Option<u64> {
        let live = self.expiries.first().map(|&(at, _)| at);
        let retired = self.retired_expiries.first().map(|&(at, _)| at);
        match (live, retired) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
        self.ids
            .range((start, Bound::Unbounded))
            .filter_map(|(id, slot)| Some((*id, self.resolve(slot)?)))
    }

    /// The cards, ascending by WireGuard key.
    pub fn cards(&self) -> impl Iterator<Item = &SignedCard> {
        self.cards.values().map(|held| &held.object)
    }

    /// The card for a WireGuard key.
    pub fn card(&self, key: &WgPublicKey) -> Option<&SignedCard> {
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

    /// The card the store knows for a key: the one held, or a public card
    /// its operator revoked (kept until it expires). For judging to whom a
    /// revocation of the key may go.
    pub fn known_card(&self, key: &WgPublicKey) -> Option<&SignedCard> {
        self.card(key).or_else(|| self.retired.get(key))
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

    /// The state file: every object, in the format of the [module
    /// docs](self).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.array(STATE_MAGIC);
        w.u8(STATE_VERSION);
        // Invariant (for `count` and `bytes`): each map is capped at 16384
        // entries, and every object is shorter than 65536 bytes.
        w.count(self.cards.len());
        self.cards().for_each(|card| w.bytes(card.as_bytes()));
        w.count(self.vouches.len());
        self.vouches().for_each(|vouch| w.bytes(vouch.as_bytes()));
        w.count(self.revocations.len());
        self.revocations().for_each(|r| w.bytes(r.as_bytes()));
        w.count(self.retired.len());
        self.retired
            .values()
            .for_each(|card| w.bytes(card.as_bytes()));
        w.into_bytes()
    }

    /// Reads a state file [`Store::encode`] wrote, verifying every object
    /// again. Time is not checked: an expired card is kept until the next
    /// [`Store::prune`].
    ///
    /// # Errors
    ///
    /// [`StateError`]: not a state file, damaged, an object that does not
    /// verify, or objects the store would not hold together or would not
    /// write so.
    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        let body = bytes
            .strip_prefix(STATE_MAGIC)
            .ok_or(StateError::NotAStateFile)?;
        let mut r = Reader::new(body);
        match r.u8("state format version")? {
            STATE_VERSION => {}
            found => return Err(StateError::UnsupportedVersion { found }),
        }
        let mut store = Self::new();
        let lists = [
            (ObjectKind::Card, "card list", MAX_CARDS, MAX_CARD_LEN),
            (
                ObjectKind::Vouch,
                "vouch list",
                MAX_VOUCHES,
                MAX_STATEMENT_LEN,
            ),
            (
                ObjectKind::Revocation,
                "revocation list",
                MAX_REVOCATIONS,
                MAX_STATEMENT_LEN,
            ),
        ];
        for (kind, field, max_count, max_len) in lists {
            for index in 0..r.count(field, max_count)? {
                let encoded = r.bytes(field, max_len)?;
                let object =
                    Object::decode(kind, encoded).map_err(|source| StateError::BadObject {
                        kind,
                        index,
                        source,
                    })?;
                let put = match object {
                    Object::Card(card) => store.put_card(card, None),
                    Object::Vouch(vouch) => store.put_vouch(vouch),
                    Object::Revocation(revocation) => store.put_revocation(revocation),
                };
                put.map_err(|source| StateError::Inconsistent {
                    kind,
                    index,
                    source,
                })?;
            }
        }
        for index in 0..r.count("retired card list", MAX_CARDS)? {
            let encoded = r.bytes("retired card", MAX_CARD_LEN)?;
            let card =
                SignedCard::decode(encoded).map_err(|source| StateError::BadRetiredCard {
                    index,
                    source: source.into(),
                })?;
            let c = card.card();
            // Only a public card its operator revoked is kept aside.
            if !store.revokes_host(c.operator, c.wg_public_key) || c.role.is_hidden() {
                return Err(StateError::NotCanonical);
            }
            store.retire(card);
        }
        r.finish()?;
        if store.encode() != bytes {
            return Err(StateError::NotCanonical);
        }
        store.generation = 0;
        Ok(store)
    }

    // ----- the rules ---------------------------------------------------

    /// Inserts a card whose validity at `now` the caller checked (when
    /// `now` is known; a decoded state file has none).
    fn put_card(&mut self, card: SignedCard, now: Option<u64>) -> Result<Inserted, InsertError> {
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
            if self.retire(card) {
                self.generation += 1;
            }
            return Err(error);
        }
        let replaced = match self.cards.get(&new.wg_public_key) {
            None => None,
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
                Some(held.id)
            }
        };
        if replaced.is_none() && self.cards.len() >= MAX_CARDS {
            return Err(full("cards", MAX_CARDS));
        }
        let key = new.wg_public_key;
        self.remove_card(&key);
        self.expiries.insert((new.not_after, key));
        self.ids.insert(id, Slot::Card(key));
        self.cards.insert(key, Held { id, object: card });
        Ok(self.changed(replaced))
    }

    fn put_vouch(&mut self, vouch: SignedVouch) -> Result<Inserted, InsertError> {
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
            None if self.vouches.len() >= MAX_VOUCHES => {
                return Err(full("vouches", MAX_VOUCHES));
            }
            None => None,
        };
        if let Some(old) = replaced {
            self.ids.remove(&old);
        }
        self.ids.insert(id, Slot::Vouch(key.0, key.1));
        self.vouches.insert(key, Held { id, object: vouch });
        Ok(self.changed(replaced))
    }

    fn put_revocation(&mut self, revocation: SignedRevocation) -> Result<Inserted, InsertError> {
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
            None if self.revocations.len() >= MAX_REVOCATIONS => {
                return Err(full("revocations", MAX_REVOCATIONS));
            }
            None => None,
        };
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
        if let RevocationTarget::Host(host) = r.target {
            if self
                .cards
                .get(&host)
                .is_some_and(|held| held.object.card().operator == r.issuer)
            {
                if let Some(card) = self.remove_card(&host) {
                    self.retire(card);
                }
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

    fn remove_card(&mut self, key: &WgPublicKey) -> Option<SignedCard> {
        let held = self.cards.remove(key)?;
        self.ids.remove(&held.id);
        self.expiries.remove(&(held.object.card().not_after, *key));
        Some(held.object)
    }

    /// Keeps aside a revoked card, if it is a public host's and lasts longer
    /// than the one kept for its key; says whether it did.
    fn retire(&mut self, card: SignedCard) -> bool {
        let c = card.card();
        if c.role.is_hidden() || self.retired.len() >= MAX_CARDS {
            return false;
        }
        let key = c.wg_public_key;
        let not_after = c.not_after;
        if let Some(old) = self.retired.get(&key) {
            if old.card().not_after >= not_after {
                return false;
            }
            self.retired_expiries.remove(&(old.card().not_after, key));
        }
        self.retired_expiries.insert((not_after, key));
        self.retired.insert(key, card);
        true
    }

    fn revokes_host(&self, operator: OperatorId, key: WgPublicKey) -> bool {
        self.revocations
            .contains_key(&(operator, RevocationTarget::Host(key)))
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
    issued_at: u64,
    now: u64,
) -> Result<(), InsertError> {
    if issued_at > now.saturating_add(CLOCK_SKEW) {
        return Err(InsertError::FromTheFuture {
            kind,
            signer,
            issued_at: UnixTime(issued_at),
        });
    }
    Ok(())
}

fn full(what: &'static str, max: usize) -> InsertError {
    InsertError::Full { what, max }
}
#[cfg(test)]
mod tests;
