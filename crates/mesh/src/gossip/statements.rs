//! Vouches and vouch withdrawals — statements — reconciled per voucher.
//!
//! Which statements a host keeps depends on whom it trusts: those its own
//! operator and the operators it trusts directly signed, each voucher's
//! all of them within its share ([`Store`]). Hosts whose direct operators
//! differ keep different statements, so statements are left out of the
//! views (which would then never summarise alike between such hosts and
//! be reconciled, and the refused statements fetched again, over and
//! over). Instead, each voucher's statements are one set, the same at
//! every host that keeps them, summarised by its own root.
//!
//! Each round a host takes the next voucher it keeps (its own operator,
//! then each it trusts directly, in turn) whose statements it has not
//! asked about at its present root for [`RESETTLE_AFTER`](super::RESETTLE_AFTER)
//! seconds — and every voucher it has never asked about, at boot or once
//! it trusts it directly, or asked about only once, a few seconds before
//! — and sends that root to a host of the voucher or of its own
//! operator, which keep them too. A host whose root for that voucher
//! differs answers with the ids of its statements of the voucher, in
//! digests; the asker wants what it lacks. A voucher's own hosts hold all
//! its statements, so every host keeping them converges on them; a steady
//! mesh sends one short message per voucher per
//! [`RESETTLE_AFTER`](super::RESETTLE_AFTER) seconds, and at most one a
//! round, whatever its size.
//!
//! Kept up to date from the store's journal: O(log n) per change, and a
//! voucher's root recomputed, in O(its statements), only when next needed
//! after one of them changed.

use std::collections::{BTreeMap, BTreeSet};

use sentrymesh_types::{UnixTime, blake2s};

use super::views::{ROOT_HASH_LEN, ViewRoot};
use crate::identity::OperatorId;
use crate::object::{ObjectId, ObjectRef};
use crate::revocation::RevocationTarget;
use crate::store::{Changes, Store};

/// Whether `object` is a statement: a vouch or a vouch withdrawal.
pub(super) fn is_statement(object: ObjectRef<'_>) -> bool {
    match object {
        ObjectRef::Vouch(_) => true,
        ObjectRef::Revocation(revocation) => {
            matches!(revocation.revocation().target, RevocationTarget::Vouch(_))
        }
        ObjectRef::Card(_) => false,
    }
}

/// One voucher's statements held, and their root once computed.
#[derive(Debug, Clone, Default)]
struct Held {
    ids: BTreeSet<ObjectId>,
    root: Option<ViewRoot>,
}

/// When a voucher's statements were last asked about.
#[derive(Debug, Clone, Copy)]
struct Asked {
    /// This host's root of them then.
    root: ViewRoot,
    at: UnixTime,
    /// Not the first time since the voucher was kept.
    again: bool,
}

/// The statements held, by voucher, and which vouchers' were asked about
/// lately. See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub(super) struct Statements {
    by_voucher: BTreeMap<OperatorId, Held>,
    /// The vouchers asked about, and when.
    asked: BTreeMap<OperatorId, Asked>,
    /// The voucher asked about last: the next round takes the one after.
    last_asked: Option<OperatorId>,
}

impl Statements {
    /// Takes in what the store's journal says changed: O(log n) per
    /// change; O(n) for [`Changes::Everything`].
    pub(super) fn note(&mut self, changes: &Changes, store: &Store) {
        match changes {
            Changes::Everything => {
                self.by_voucher.clear();
                for (id, object) in store.objects() {
                    if is_statement(object) {
                        self.by_voucher
                            .entry(object.signer())
                            .or_default()
                            .ids
                            .insert(id);
                    }
                }
            }
            Changes::Objects(changes) => {
                for change in changes {
                    let Some(voucher) = change.subject.voucher() else {
                        continue;
                    };
                    let held = self.by_voucher.entry(voucher).or_default();
                    held.root = None;
                    if store.contains(&change.id) {
                        held.ids.insert(change.id);
                    } else {
                        held.ids.remove(&change.id);
                        if held.ids.is_empty() {
                            self.by_voucher.remove(&voucher);
                        }
                    }
                }
            }
        }
    }

    /// The root of `voucher`'s statements held: O(1) when none changed
    /// since it was last computed, else O(its statements).
    pub(super) fn root(&mut self, voucher: OperatorId) -> ViewRoot {
        match self.by_voucher.get_mut(&voucher) {
            Some(held) => *held.root.get_or_insert_with(|| root_of(voucher, &held.ids)),
            None => root_of(voucher, &BTreeSet::new()),
        }
    }

    /// How many statements of `voucher` are held.
    pub(super) fn count(&self, voucher: &OperatorId) -> usize {
        self.by_voucher
            .get(voucher)
            .map_or(0, |held| held.ids.len())
    }

    /// Up to `n` ids of `voucher`'s statements after `after` (from the
    /// first when `None`), ascending. O(n + log n).
    pub(super) fn ids_after(
        &self,
        voucher: &OperatorId,
        after: Option<ObjectId>,
        n: usize,
    ) -> Vec<ObjectId> {
        let Some(held) = self.by_voucher.get(voucher) else {
            return Vec::new();
        };
        match after {
            None => held.ids.iter().take(n).copied().collect(),
            Some(after) => held
                .ids
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .take(n)
                .copied()
                .collect(),
        }
    }

    /// The vouchers of `vouchers` to ask about at `now`: each one never
    /// asked about (at boot, or newly trusted directly) and each asked
    /// about once, `retry` seconds ago or more — the answer may have been
    /// lost, or come from a host that had none yet —, and the next one in
    /// turn, after the one asked about last, that was not asked about
    /// since its root here changed, or not for `settle` seconds.
    /// O(vouchers).
    pub(super) fn due(
        &mut self,
        vouchers: &BTreeSet<OperatorId>,
        retry: u64,
        settle: u64,
        now: UnixTime,
    ) -> Vec<OperatorId> {
        let mut due: Vec<OperatorId> = vouchers
            .iter()
            .filter(|voucher| {
                self.asked
                    .get(voucher)
                    .is_none_or(|asked| !asked.again && now >= asked.at.saturating_add(retry))
            })
            .copied()
            .collect();
        let after = self.last_asked;
        let (later, earlier): (Vec<OperatorId>, Vec<OperatorId>) = vouchers
            .iter()
            .partition(|voucher| after.is_none_or(|after| **voucher > after));
        let next = later.into_iter().chain(earlier).find(|voucher| {
            let root = self.root(*voucher);
            self.asked
                .get(voucher)
                .is_none_or(|asked| asked.root != root || now >= asked.at.saturating_add(settle))
        });
        if let Some(next) = next.filter(|next| !due.contains(next)) {
            due.push(next);
        }
        due
    }

    /// Notes that `voucher` was asked about at `now`, at this host's
    /// present root.
    pub(super) fn asked(&mut self, voucher: OperatorId, now: UnixTime) {
        let root = self.root(voucher);
        let again = self.asked.contains_key(&voucher);
        self.asked.insert(
            voucher,
            Asked {
                root,
                at: now,
                again,
            },
        );
        self.last_asked = Some(voucher);
    }

    /// Notes that `voucher` was due but had no one to be asked of: the
    /// next round takes the one after it, and it stays due.
    pub(super) fn passed_over(&mut self, voucher: OperatorId) {
        self.last_asked = Some(voucher);
    }

    /// Forgets what was asked about vouchers not in `vouchers`.
    pub(super) fn retain_asked(&mut self, vouchers: &BTreeSet<OperatorId>) {
        self.asked.retain(|voucher, _| vouchers.contains(voucher));
    }
}

/// The root of `voucher`'s statements `ids`: their count and a hash of the
/// voucher and the ids, ascending.
fn root_of(voucher: OperatorId, ids: &BTreeSet<ObjectId>) -> ViewRoot {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(ids.len() + 2);
    parts.push(b"sentrymesh statements root");
    parts.push(voucher.as_bytes());
    parts.extend(ids.iter().map(|id| id.as_bytes().as_slice()));
    let full = blake2s::hash(&parts);
    let mut hash = [0; ROOT_HASH_LEN];
    hash.copy_from_slice(&full[..ROOT_HASH_LEN]);
    ViewRoot {
        count: u32::try_from(ids.len()).unwrap_or(u32::MAX),
        hash,
    }
}
