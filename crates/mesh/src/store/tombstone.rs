//! The store's memory of revoked hosts: tombstones (how long a host
//! revocation must stand), the public cards their operator revoked, kept
//! aside, and the keys a revocation blocks for every operator; and the
//! pruning of what has expired. See the [store's docs](super).

use sentrymesh_types::{PublicKey, UnixTime};

use super::{MAX_CARDS, Store};
use crate::card::SignedCard;
use crate::identity::OperatorId;
use crate::revocation::RevocationTarget;

/// A public host's card that its operator revoked, kept aside until it
/// expires: only what the store needs of it. Its operator, for whom the
/// store still knows the key as a public host (so that operator's
/// revocation of the key may go to other operators); its `not_after`, for
/// pruning; and its signed encoding, exactly as received, for the state
/// file, which verifies it again on load. The parsed card (its name,
/// addresses, endpoints) is not kept.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct RetiredCard {
    operator: OperatorId,
    not_after: UnixTime,
    encoded: Box<[u8]>,
}

impl RetiredCard {
    /// What is kept of `card`.
    fn of(card: &SignedCard) -> Self {
        let c = card.card();
        Self {
            operator: c.operator,
            not_after: c.not_after,
            encoded: card.as_bytes().into(),
        }
    }

    /// The operator whose card it was, and which revoked it.
    pub(super) fn operator(&self) -> OperatorId {
        self.operator
    }

    /// When the card expires, and with it the need to keep it.
    pub(super) fn not_after(&self) -> UnixTime {
        self.not_after
    }

    /// The card's signed encoding.
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }
}

impl Store {
    /// Drops every card expired at `now` (retired ones too) and every host
    /// revocation whose revoked cards have all expired; returns how many.
    pub fn prune(&mut self, now: UnixTime) -> usize {
        let bound = (now.saturating_add(1), PublicKey::from_bytes([0; 32]));
        let expired: Vec<PublicKey> = self.expiries.range(..bound).map(|&(_, key)| key).collect();
        for key in &expired {
            self.remove_card(key);
        }
        let retired: Vec<PublicKey> = self
            .retired_expiries
            .range(..bound)
            .map(|&(_, key)| key)
            .collect();
        for key in &retired {
            self.unretire(key);
        }
        let tombstones: Vec<(OperatorId, PublicKey)> = self
            .tombstone_expiries
            .iter()
            .take_while(|&&(until, _, _)| until <= now)
            .map(|&(_, issuer, key)| (issuer, key))
            .collect();
        for &(issuer, key) in &tombstones {
            self.remove_revocation((issuer, RevocationTarget::Host(key)));
        }
        let pruned = expired.len() + retired.len() + tombstones.len();
        if pruned > 0 {
            self.generation += 1;
        }
        pruned
    }

    /// When the next card or tombstone expires: the time to call
    /// [`Store::prune`].
    pub fn next_expiry(&self) -> Option<UnixTime> {
        [
            self.expiries.first().map(|&(at, _)| at),
            self.retired_expiries.first().map(|&(at, _)| at),
            self.tombstone_expiries.first().map(|&(at, _, _)| at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Notes that the host revocation by `issuer` of `key` revoked a card
    /// valid until `not_after`, so it must stand until then at least.
    pub(super) fn bind_tombstone(
        &mut self,
        issuer: OperatorId,
        key: PublicKey,
        not_after: UnixTime,
    ) {
        if !self.revokes_host(issuer, key) {
            return;
        }
        let until = self.tombstones.entry((issuer, key)).or_insert(not_after);
        if *until < not_after {
            self.tombstone_expiries.remove(&(*until, issuer, key));
            *until = not_after;
        }
        self.tombstone_expiries.insert((*until, issuer, key));
        let issuers = self.tombstoned_keys.entry(key).or_default();
        if let Err(at) = issuers.binary_search(&issuer) {
            // Room for this one only: most keys have no other.
            issuers.reserve_exact(1);
            issuers.insert(at, issuer);
        }
    }

    /// Keeps aside a revoked card, if it is a public host's and lasts longer
    /// than the one kept for its key; says whether it did.
    pub(super) fn retire(&mut self, card: &SignedCard) -> bool {
        let c = card.card();
        if c.role.is_hidden() || self.retired.len() >= MAX_CARDS {
            return false;
        }
        let key = c.wg_public_key;
        let not_after = c.not_after;
        if let Some(old) = self.retired.get(&key) {
            if old.not_after() >= not_after {
                return false;
            }
            let (old_operator, old_not_after) = (old.operator(), old.not_after());
            self.retired_expiries.remove(&(old_not_after, key));
            // Its operator's revocation of the key no longer has it.
            self.note_known_card(old_operator, key);
        }
        self.retired_expiries.insert((not_after, key));
        let retired = RetiredCard::of(card);
        let operator = retired.operator();
        self.retired.insert(key, retired);
        self.note_known_card(operator, key);
        true
    }

    pub(super) fn unretire(&mut self, key: &PublicKey) {
        if let Some(retired) = self.retired.remove(key) {
            self.retired_expiries.remove(&(retired.not_after(), *key));
            self.note_known_card(retired.operator(), *key);
        }
    }

    /// An operator other than `operator` that revoked `key` after the store
    /// held (or refused, coming after the revocation) a card of its own for
    /// that key: while its tombstone stands, the key is blocked for every
    /// operator. A revocation of a key whose card the store never saw from
    /// its issuer blocks nothing, so a rival cannot block our keys. The
    /// local operator's revocations block their keys whether or not the
    /// store saw the card (a hidden host's revoked card leaves no tombstone
    /// across a restart): no one else can sign them.
    pub(super) fn revoked_elsewhere(
        &self,
        operator: OperatorId,
        key: PublicKey,
    ) -> Option<OperatorId> {
        if let Some(local) = self.local.filter(|local| *local != operator) {
            if self.revokes_host(local, key) {
                return Some(local);
            }
        }
        self.tombstoned_keys
            .get(&key)?
            .iter()
            .find(|issuer| **issuer != operator)
            .copied()
    }
}
