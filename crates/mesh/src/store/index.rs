//! The store's index of objects by id, which also journals every change to
//! it: gossip keeps per-view summaries of the store up to date from the
//! journal, touching only what changed ([`Store::take_changes`]).

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::ops::RangeBounds;

use super::{Slot, Store};
use crate::identity::OperatorId;
use crate::object::ObjectId;
use crate::revocation::RevocationTarget;
use sentrymesh_types::PublicKey;

/// The most changes the journal keeps; past it, it says only that
/// everything may have changed.
const MAX_JOURNAL: usize = 4096;

/// What changed in the store since the last [`Store::take_changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// The objects added, removed, or whose standing changed (a host
    /// revocation whose card came, went or was set aside), each at most
    /// once, ascending by id.
    Objects(Vec<Change>),
    /// More changed than the journal keeps: anything may have.
    Everything,
}

/// One object that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// Its id.
    pub id: ObjectId,
    /// What it is about.
    pub subject: Subject,
}

/// What an object that changed is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    /// The card of the host with this key.
    Card(PublicKey),
    /// A vouch by this voucher.
    Vouch(OperatorId),
    /// A revocation by this issuer of this target.
    Revocation(OperatorId, RevocationTarget),
}

impl Subject {
    /// The voucher of a vouch or a vouch withdrawal; `None` for a card or
    /// a host revocation.
    pub fn voucher(&self) -> Option<OperatorId> {
        match *self {
            Self::Vouch(voucher) | Self::Revocation(voucher, RevocationTarget::Vouch(_)) => {
                Some(voucher)
            }
            Self::Card(_) | Self::Revocation(_, RevocationTarget::Host(_)) => None,
        }
    }
}

impl Changes {
    /// Nothing changed.
    pub fn none() -> Self {
        Self::Objects(Vec::new())
    }

    /// Adds later changes to these.
    pub fn merge(&mut self, later: Changes) {
        match (&mut *self, later) {
            (Self::Everything, _) => {}
            (_, Self::Everything) => *self = Self::Everything,
            (Self::Objects(held), Self::Objects(more)) => {
                if held.len() + more.len() > MAX_JOURNAL {
                    *self = Self::Everything;
                } else {
                    held.extend(more);
                    held.sort_unstable();
                    held.dedup();
                }
            }
        }
    }
}

fn subject(slot: Slot) -> Subject {
    match slot {
        Slot::Card(key) => Subject::Card(key),
        Slot::Vouch(voucher, _) => Subject::Vouch(voucher),
        Slot::Revocation(issuer, target) => Subject::Revocation(issuer, target),
    }
}

/// Objects by id, with a journal of the ids touched.
#[derive(Debug, Clone, Default)]
pub(super) struct IdIndex {
    slots: BTreeMap<ObjectId, Slot>,
    journal: Vec<Change>,
    overflowed: bool,
}

impl IdIndex {
    pub(super) fn insert(&mut self, id: ObjectId, slot: Slot) {
        self.slots.insert(id, slot);
        self.note(id, subject(slot));
    }

    pub(super) fn remove(&mut self, id: &ObjectId) {
        if let Some(slot) = self.slots.remove(id) {
            self.note(*id, subject(slot));
        }
    }

    pub(super) fn contains_key(&self, id: &ObjectId) -> bool {
        self.slots.contains_key(id)
    }

    pub(super) fn get(&self, id: &ObjectId) -> Option<&Slot> {
        self.slots.get(id)
    }

    pub(super) fn range(
        &self,
        range: impl RangeBounds<ObjectId>,
    ) -> btree_map::Range<'_, ObjectId, Slot> {
        self.slots.range(range)
    }

    pub(super) fn keys(&self) -> btree_map::Keys<'_, ObjectId, Slot> {
        self.slots.keys()
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Journals a change to the object with this id.
    pub(super) fn note(&mut self, id: ObjectId, subject: Subject) {
        if self.overflowed {
            return;
        }
        if self.journal.len() == MAX_JOURNAL {
            self.journal = Vec::new();
            self.overflowed = true;
        } else {
            self.journal.push(Change { id, subject });
        }
    }

    fn take(&mut self) -> Changes {
        if std::mem::take(&mut self.overflowed) {
            return Changes::Everything;
        }
        let mut changes = std::mem::take(&mut self.journal);
        changes.sort_unstable();
        changes.dedup();
        Changes::Objects(changes)
    }
}

impl Store {
    /// What changed since the last call: the objects added, removed, or
    /// whose standing changed. O(changes · log changes).
    pub fn take_changes(&mut self) -> Changes {
        self.ids.take()
    }

    /// Notes that the card the store knows for `key` as `operator`'s (held,
    /// or set aside) came or went: `operator`'s revocation of the key, if
    /// held, now goes to different recipients. O(log revocations).
    pub(super) fn note_known_card(&mut self, operator: OperatorId, key: PublicKey) {
        if let Some(held) = self
            .revocations
            .get(&(operator, RevocationTarget::Host(key)))
        {
            self.ids.note(
                held.id,
                Subject::Revocation(operator, RevocationTarget::Host(key)),
            );
        }
    }
}
