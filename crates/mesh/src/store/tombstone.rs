//! The store's memory of revoked hosts: tombstones (how long a host
//! revocation must stand), the public cards their operator revoked, kept
//! aside, and the keys a revocation blocks for every operator; see the
//! [store's docs](super).

use super::{MAX_CARDS, Store};
use crate::card::SignedCard;
use crate::identity::OperatorId;
use crate::wg_key::WgPublicKey;

impl Store {
    /// Notes that the host revocation by `issuer` of `key` revoked a card
    /// valid until `not_after`, so it must stand until then at least.
    pub(super) fn bind_tombstone(&mut self, issuer: OperatorId, key: WgPublicKey, not_after: u64) {
        if !self.revokes_host(issuer, key) {
            return;
        }
        let until = self.tombstones.entry((issuer, key)).or_insert(not_after);
        if *until < not_after {
            self.tombstone_expiries.remove(&(*until, issuer, key));
            *until = not_after;
        }
        self.tombstone_expiries.insert((*until, issuer, key));
        self.tombstoned_keys.entry(key).or_default().insert(issuer);
    }

    /// Keeps aside a revoked card, if it is a public host's and lasts longer
    /// than the one kept for its key; says whether it did.
    pub(super) fn retire(&mut self, card: SignedCard) -> bool {
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

    pub(super) fn unretire(&mut self, key: &WgPublicKey) {
        if let Some(card) = self.retired.remove(key) {
            self.retired_expiries.remove(&(card.card().not_after, *key));
        }
    }

    /// An operator other than `operator` that revoked `key` after the store
    /// held (or refused, coming after the revocation) a card of its own for
    /// that key: while its tombstone stands, the key is blocked for every
    /// operator. A revocation of a key whose card the store never saw from
    /// its issuer blocks nothing, so a rival cannot block our keys.
    pub(super) fn revoked_elsewhere(
        &self,
        operator: OperatorId,
        key: WgPublicKey,
    ) -> Option<OperatorId> {
        self.tombstoned_keys
            .get(&key)?
            .iter()
            .find(|issuer| **issuer != operator)
            .copied()
    }
}
