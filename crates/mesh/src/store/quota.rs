//! The store's quotas: how much of it one operator may fill, and in all;
//! see the [store's docs](super) for the rules and the bound they give.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use sentrymesh_types::PublicKey;

use super::{InsertError, Store};
use crate::card::claimed_key;
use crate::identity::OperatorId;
use crate::object::{Object, ObjectId, ObjectKind};
use crate::revocation::RevocationTarget;

/// Where a revocation's encoding has its target: after the format version
/// and the issuer's id, a tag (1: a host key, 2: a vouch's subject) and 32
/// bytes. (The store's tests check it against real revocations.)
const REVOCATION_TARGET_AT: usize = 33;
/// Where a vouch's encoding has its subject: after the format version and
/// the voucher's id.
const VOUCH_SUBJECT_AT: usize = 33;

/// Cards and host revocations one operator may have in a store. An
/// operator of a launch group runs a few producers, sentries and full
/// nodes, each with one card (a renewal replaces it) and, over the cards'
/// lifetimes, a few revoked keys: 256 is many times that, and 64 operators
/// at their quota fill [`MAX_CARDS`].
pub const HOST_QUOTA: usize = 256;
/// Vouch pairs — (voucher, subject), a vouch and its withdrawal sharing
/// one — one directly trusted operator may have in a store: the most
/// operators one voucher can help admit here. A validator set is hundreds
/// of operators; an operator that vouches for every member of a set of
/// 1,000 fits. Fewer when the host trusts more than
/// `VOUCH_ROOM / STATEMENT_QUOTA` operators directly: see
/// [`Store::statement_quota`].
pub const STATEMENT_QUOTA: usize = 1024;
/// The vouch pairs the directly trusted operators together may have in a
/// store: each has an equal share of it, at most [`STATEMENT_QUOTA`], so
/// whatever they sign, the local operator's own vouches keep the other
/// half of [`MAX_LISTED`].
pub const VOUCH_ROOM: usize = 32_768;
/// The most cards and host revocations a store keeps of the operators
/// admitted by vouches, all of them together.
pub const MAX_CARDS: usize = 16_384;

/// The most objects of one list (cards, vouches, revocations) a store
/// holds, whoever signed them: the state file counts each list in 16 bits.
/// The only limit the local operator's objects meet; the quotas and caps
/// keep any real store far below it (the operators admitted by vouches
/// fill at most [`MAX_CARDS`], each directly trusted one [`HOST_QUOTA`]
/// cards and its share of [`VOUCH_ROOM`] vouches).
pub const MAX_LISTED: usize = u16::MAX as usize;

// The directly trusted operators' vouches leave the local operator's a
// list's other half.
const _: () = assert!(2 * VOUCH_ROOM <= MAX_LISTED + 1);

/// What one operator has in the store, against its quotas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Usage {
    /// Cards and host revocations it signed.
    pub(super) hosts: usize,
    /// (signer, subject) pairs of its vouches and withdrawals.
    pub(super) statements: usize,
}

impl Store {
    /// How many cards and host revocations `operator` signed here, against
    /// [`HOST_QUOTA`], and how many vouch pairs, against
    /// [`Store::statement_quota`].
    pub fn usage_of(&self, operator: &OperatorId) -> (usize, usize) {
        let usage = self.usage(*operator);
        (usage.hosts, usage.statements)
    }

    /// Sets this host's trust configuration as the store needs it: its
    /// `local` operator and the operators it trusts `direct`ly.
    ///
    /// * Only their vouches and withdrawals can count here (see
    ///   [`crate::TrustPolicy`]), so only those are stored: any other is
    ///   refused as [`InsertError::NotCounted`], and
    ///   [`Store::retain_signers`] drops those held. All of theirs, even
    ///   about an operator this host configures itself (which counts only
    ///   elsewhere): every host that keeps a voucher's statements then
    ///   keeps the same ones, which gossip reconciles per voucher.
    /// * The local operator's objects are never refused for room (its own
    ///   revocations and renewed cards must always go in, and it signs
    ///   nothing a rival can multiply); each directly trusted operator has
    ///   [`HOST_QUOTA`] cards and host revocations and
    ///   [`Store::statement_quota`] vouch pairs, outside [`MAX_CARDS`], so
    ///   however many operators a few vouchers admit, they cannot fill the
    ///   room of the operators this host trusts itself.
    ///
    /// Until it is called, every operator's vouches are taken, each within
    /// [`STATEMENT_QUOTA`]. When it changes what was set before (a
    /// reload), the vouches and withdrawals that can no longer count go
    /// at once; the first call leaves that to [`Store::retain_signers`],
    /// so that a state file's vouches of directly trusted operators stay
    /// while the directly trusted operators are being set.
    pub fn reserve_room(&mut self, local: OperatorId, direct: &BTreeSet<OperatorId>) {
        if self.local == Some(local) && self.direct == *direct {
            return;
        }
        let reload = self.local.is_some();
        self.local = Some(local);
        self.direct = direct.clone();
        self.pooled_hosts = self
            .usage
            .iter()
            .filter(|(operator, _)| !self.is_reserved(**operator))
            .map(|(_, usage)| usage.hosts)
            .sum();
        if reload && self.retain_statements(|store, voucher| store.keeps(voucher)) > 0 {
            self.generation += 1;
        }
    }

    /// Keeps only the vouches and vouch withdrawals whose voucher `keep`
    /// accepts in this store; returns how many went.
    pub(super) fn retain_statements(&mut self, keep: impl Fn(&Self, OperatorId) -> bool) -> usize {
        let vouches: Vec<(OperatorId, OperatorId)> = self
            .vouches
            .keys()
            .filter(|&&(voucher, _)| !keep(self, voucher))
            .copied()
            .collect();
        let withdrawals: Vec<(OperatorId, RevocationTarget)> = self
            .revocations
            .keys()
            .filter(|&&(issuer, target)| match target {
                RevocationTarget::Vouch(_) => !keep(self, issuer),
                RevocationTarget::Host(_) => false,
            })
            .copied()
            .collect();
        for &pair in &vouches {
            self.remove_vouch(pair);
        }
        for &key in &withdrawals {
            self.remove_revocation(key);
        }
        vouches.len() + withdrawals.len()
    }

    /// The vouch pairs each directly trusted operator may have here: an
    /// equal share of [`VOUCH_ROOM`], at most [`STATEMENT_QUOTA`] (1,024
    /// each for up to 32 operators trusted directly). Before
    /// [`Store::reserve_room`], [`STATEMENT_QUOTA`] for every operator.
    pub fn statement_quota(&self) -> usize {
        STATEMENT_QUOTA.min(VOUCH_ROOM / self.direct.len().max(1))
    }

    /// Whether the store keeps the vouches and withdrawals `voucher`
    /// signed (see [`Store::reserve_room`]): before the trust
    /// configuration is set, everyone's.
    pub(super) fn keeps(&self, voucher: OperatorId) -> bool {
        self.local
            .is_none_or(|local| voucher == local || self.direct.contains(&voucher))
    }

    /// Refuses a vouch or withdrawal (`kind`) the store does not keep.
    pub(super) fn check_kept(
        &self,
        kind: ObjectKind,
        voucher: OperatorId,
        subject: OperatorId,
    ) -> Result<(), InsertError> {
        if self.keeps(voucher) {
            return Ok(());
        }
        Err(InsertError::NotCounted {
            kind,
            voucher,
            subject,
        })
    }

    /// Whether a list of `len` objects may grow by one: below
    /// [`MAX_LISTED`].
    pub(super) fn check_listed(len: usize) -> Result<(), InsertError> {
        if len >= MAX_LISTED {
            return Err(InsertError::Full {
                what: "objects of one kind",
                max: MAX_LISTED,
            });
        }
        Ok(())
    }

    /// Whether [`MAX_CARDS`] leaves `operator`'s objects out.
    fn is_reserved(&self, operator: OperatorId) -> bool {
        self.local == Some(operator) || self.direct.contains(&operator)
    }

    /// Whether operator `operator` may add a card or host revocation:
    /// within its quota and, when `grows_pool`, within [`MAX_CARDS`]
    /// (always, for the local operator).
    pub(super) fn check_host_room(
        &self,
        operator: OperatorId,
        grows_pool: bool,
    ) -> Result<(), InsertError> {
        if self.local == Some(operator) {
            return Ok(());
        }
        if self.usage(operator).hosts >= HOST_QUOTA {
            return Err(InsertError::OverQuota {
                operator,
                what: "cards and host revocations",
                quota: HOST_QUOTA,
            });
        }
        if grows_pool && !self.is_reserved(operator) && self.pooled_hosts >= MAX_CARDS {
            return Err(InsertError::Full {
                what: "cards and host revocations",
                max: MAX_CARDS,
            });
        }
        Ok(())
    }

    /// Whether operator `operator` may add a vouch pair: within
    /// [`Store::statement_quota`] (always, for the local operator).
    pub(super) fn check_statement_room(&self, operator: OperatorId) -> Result<(), InsertError> {
        if self.local == Some(operator) {
            return Ok(());
        }
        let quota = self.statement_quota();
        if self.usage(operator).statements >= quota {
            return Err(InsertError::OverQuota {
                operator,
                what: "vouches",
                quota,
            });
        }
        Ok(())
    }

    pub(super) fn usage(&self, operator: OperatorId) -> Usage {
        self.usage.get(&operator).copied().unwrap_or_default()
    }

    /// Adds one of `operator`'s objects to its usage (and its cards and
    /// host revocations to the pool's).
    pub(super) fn charge(&mut self, operator: OperatorId, add: impl Fn(&mut Usage)) {
        let usage = self.usage.entry(operator).or_default();
        let before = usage.hosts;
        add(usage);
        let added = usage.hosts - before;
        if !self.is_reserved(operator) {
            self.pooled_hosts += added;
        }
    }

    /// Takes one of `operator`'s objects off its usage (and the pool's).
    pub(super) fn release(&mut self, operator: OperatorId, take: impl Fn(&mut Usage)) {
        if let Some(usage) = self.usage.get_mut(&operator) {
            let before = usage.hosts;
            take(usage);
            let taken = before - usage.hosts;
            if *usage == Usage::default() {
                self.usage.remove(&operator);
            }
            if !self.is_reserved(operator) {
                self.pooled_hosts -= taken;
            }
        }
    }

    /// Whether an object of `kind` signed by `signer` may find room here,
    /// judged from its encoding before its signature is checked: `false`
    /// only when the store would certainly refuse it — a vouch or
    /// withdrawal that cannot count here ([`Store::reserve_room`]), or an
    /// object that needs room its signer has no more of: a card or a
    /// revocation of a key whose card the store does not hold from that
    /// operator, a vouch or withdrawal of a new pair — so what the store
    /// would refuse anyway costs a lookup, not a signature check. Anything
    /// it cannot read is left to the decoder (`true`).
    pub(crate) fn may_have_room(
        &self,
        signer: OperatorId,
        kind: ObjectKind,
        encoded: &[u8],
    ) -> bool {
        let at = |offset: usize| -> Option<[u8; 32]> {
            encoded.get(offset..offset + 32)?.try_into().ok()
        };
        match kind {
            ObjectKind::Card => match claimed_key(encoded) {
                // A card for a key held by another operator takes its
                // place in the pool if that card has expired.
                Some(key) => self.host_may_have_room(signer, key, !self.cards.contains_key(&key)),
                None => true,
            },
            ObjectKind::Revocation => {
                let target = at(REVOCATION_TARGET_AT + 1);
                match (encoded.get(REVOCATION_TARGET_AT), target) {
                    (Some(1), Some(key)) => {
                        self.host_may_have_room(signer, PublicKey::from_bytes(key), true)
                    }
                    (Some(2), Some(subject)) => self.pair_may_have_room(signer, &subject),
                    _ => true,
                }
            }
            ObjectKind::Vouch => match at(VOUCH_SUBJECT_AT) {
                Some(subject) => self.pair_may_have_room(signer, &subject),
                None => true,
            },
        }
    }

    /// Whether `object`, whose id is `id`, would replace one of its signer's
    /// own that the store holds (a card of the same key by a higher serial,
    /// a vouch or revocation of the same pair or target by a later date):
    /// what needs no room, so gossip limits its rate instead.
    pub(crate) fn would_replace(&self, object: &Object, id: ObjectId) -> bool {
        match object {
            Object::Card(card) => {
                let c = card.card();
                self.cards.get(&c.wg_public_key).is_some_and(|held| {
                    let old = held.object.card();
                    old.operator == c.operator
                        && (c.serial, Reverse(id)) > (old.serial, Reverse(held.id))
                })
            }
            Object::Vouch(vouch) => {
                let v = vouch.vouch();
                self.vouches
                    .get(&(v.voucher, v.subject))
                    .is_some_and(|held| {
                        (v.issued_at, Reverse(id))
                            > (held.object.vouch().issued_at, Reverse(held.id))
                    })
            }
            Object::Revocation(revocation) => {
                let r = revocation.revocation();
                self.revocations
                    .get(&(r.issuer, r.target))
                    .is_some_and(|held| {
                        (r.issued_at, Reverse(id))
                            > (held.object.revocation().issued_at, Reverse(held.id))
                    })
            }
        }
    }

    /// Whether a card or host revocation by `signer` of `key` may find
    /// room: its signer has room for one more (and the store too, when it
    /// `grows_pool`), or the object needs none — it replaces `signer`'s own
    /// card of the key, or meets `signer`'s revocation of it (held; a card
    /// that comes after is refused, but the store remembers it).
    fn host_may_have_room(&self, signer: OperatorId, key: PublicKey, grows_pool: bool) -> bool {
        self.check_host_room(signer, grows_pool).is_ok()
            || self.revokes_host(signer, key)
            || self
                .cards
                .get(&key)
                .is_some_and(|held| held.object.card().operator == signer)
    }

    /// Whether a vouch or withdrawal by `signer` for `subject` may find
    /// room: it can count here, and its signer has room for a pair or
    /// holds this one.
    fn pair_may_have_room(&self, signer: OperatorId, subject: &[u8; 32]) -> bool {
        if !self.keeps(signer) {
            return false;
        }
        if self.check_statement_room(signer).is_ok() {
            return true;
        }
        // Only at the quota: the id's check is cheaper than a signature's.
        let Ok(subject) = OperatorId::from_bytes(subject) else {
            return true;
        };
        self.vouches.contains_key(&(signer, subject)) || self.withdraws(signer, subject)
    }
}
