//! The two views of the store gossip reconciles, and their summaries.
//!
//! What this host may show a peer depends only on whether the peer is of
//! its own operator: its own operator's hosts may have everything it holds
//! ([`View::Own`]), every other admitted operator's hosts the same less its
//! hidden hosts' cards and the revocations that would name them
//! ([`View::Public`]). So it keeps two views, and the hidden filter of the
//! [gossip docs](super) stays exact: a peer of another operator is never
//! shown, in a summary, a list of ids or an object, anything outside the
//! public view.
//!
//! Vouches and their withdrawals are shown to every peer but are no part
//! of the views: which of them a host keeps depends on whom it trusts, so
//! they are reconciled per voucher (`gossip/statements.rs`).
//!
//! Each view is summarised in 256 buckets by the first byte of the object
//! id: a bucket's count and a hash of its ids, and a root hash over the
//! buckets. Two hosts whose views hold the same objects have the same root;
//! a steady mesh compares roots only, a few dozen bytes whatever the size
//! of the store. Hashes (BLAKE2s), not sums or XORs: a rival can make
//! objects with ids of its choosing, and must not be able to make two
//! different sets summarise alike.
//!
//! Kept up to date from the store's journal ([`Store::take_changes`]): a
//! change marks its bucket stale in both views; a stale bucket is
//! recomputed from the store when next needed, in O(objects in the bucket);
//! the root in O(256) when a bucket changed.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use sentrymesh_types::blake2s;

use super::statements::is_statement;
use crate::identity::OperatorId;
use crate::object::{OBJECT_ID_LEN, ObjectId, ObjectRef};
use crate::revocation::RevocationTarget;
use crate::store::{Changes, Store};

/// The number of buckets of a view summary.
pub(super) const BUCKETS: usize = 256;
/// Bytes of a bucket's hash.
pub const BUCKET_HASH_LEN: usize = 8;
/// Bytes of a view's root hash.
pub const ROOT_HASH_LEN: usize = 16;

/// Which of this host's views a peer may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum View {
    /// Everything: for hosts of this host's own operator.
    Own,
    /// Everything but the own operator's hidden hosts: for hosts of other
    /// admitted operators.
    Public,
}

impl View {
    /// The view a host of `recipient` may be shown by a host of `local`.
    pub(super) fn for_recipient(recipient: OperatorId, local: OperatorId) -> Self {
        if recipient == local {
            Self::Own
        } else {
            Self::Public
        }
    }
}

/// A view's summary: how many objects it holds and the hash over its
/// buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ViewRoot {
    /// Objects in the view.
    pub count: u32,
    /// The hash over the buckets.
    pub hash: [u8; ROOT_HASH_LEN],
}

/// One bucket of a view: the objects whose id begins with `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BucketSum {
    /// Objects in the bucket.
    pub count: u32,
    /// The hash of their ids, ascending.
    pub hash: [u8; BUCKET_HASH_LEN],
}

/// Whether `object` is in `view` of a host of `local` admitting `admitted`.
pub(super) fn in_view(
    view: View,
    object: ObjectRef<'_>,
    local: OperatorId,
    admitted: &BTreeSet<OperatorId>,
    store: &Store,
) -> bool {
    let signer = object.signer();
    if signer != local && !admitted.contains(&signer) {
        return false;
    }
    if view == View::Own && signer == local {
        return true;
    }
    match object {
        ObjectRef::Card(card) => !card.card().role.is_hidden(),
        ObjectRef::Vouch(_) => true,
        ObjectRef::Revocation(revocation) => {
            let revocation = revocation.revocation();
            match revocation.target {
                RevocationTarget::Vouch(_) => true,
                // Only where the store knows the key as a public host of
                // the issuer: revoking a hidden host never shows its key.
                RevocationTarget::Host(key) => {
                    store.public_host_operator(&key) == Some(revocation.issuer)
                }
            }
        }
    }
}

/// The ids a bucket covers.
pub(super) fn bucket_range(index: u8) -> RangeInclusive<ObjectId> {
    let mut first = [0; OBJECT_ID_LEN];
    first[0] = index;
    let mut last = [0xff; OBJECT_ID_LEN];
    last[0] = index;
    ObjectId::from_bytes(first)..=ObjectId::from_bytes(last)
}

/// One view's buckets and root, each recomputed when stale.
#[derive(Debug, Clone)]
struct ViewIndex {
    buckets: Box<[BucketSum; BUCKETS]>,
    root: ViewRoot,
}

impl ViewIndex {
    fn new() -> Self {
        let mut index = Self {
            buckets: Box::new([BucketSum::default(); BUCKETS]),
            root: ViewRoot {
                count: 0,
                hash: [0; ROOT_HASH_LEN],
            },
        };
        index.rehash_root();
        index
    }

    fn rehash_root(&mut self) {
        let mut bytes = Vec::with_capacity(BUCKETS * (4 + BUCKET_HASH_LEN));
        let mut count = 0u32;
        for bucket in self.buckets.iter() {
            bytes.extend_from_slice(&bucket.count.to_be_bytes());
            bytes.extend_from_slice(&bucket.hash);
            count = count.saturating_add(bucket.count);
        }
        let full = blake2s::hash(&[b"sentrymesh view root", &bytes]);
        let mut hash = [0; ROOT_HASH_LEN];
        hash.copy_from_slice(&full[..ROOT_HASH_LEN]);
        self.root = ViewRoot { count, hash };
    }
}

/// The two views' summaries, kept in step with the store. See the
/// [module docs](self).
#[derive(Debug, Clone)]
pub(super) struct Views {
    own: ViewIndex,
    public: ViewIndex,
    /// Buckets to recompute, by first id byte.
    stale: [bool; BUCKETS],
    any_stale: bool,
}

impl Views {
    /// Views of nothing, every bucket stale.
    pub(super) fn new() -> Self {
        Self {
            own: ViewIndex::new(),
            public: ViewIndex::new(),
            stale: [true; BUCKETS],
            any_stale: true,
        }
    }

    /// Marks what the store's journal says changed. O(changes).
    pub(super) fn note(&mut self, changes: &Changes) {
        match changes {
            Changes::Everything => self.note_everything(),
            Changes::Objects(changes) => {
                for change in changes.iter().filter(|c| c.subject.voucher().is_none()) {
                    self.stale[usize::from(change.id.as_bytes()[0])] = true;
                    self.any_stale = true;
                }
            }
        }
    }

    /// Marks every bucket stale: what may be shown changed for every
    /// object (the admitted operators changed).
    pub(super) fn note_everything(&mut self) {
        self.stale = [true; BUCKETS];
        self.any_stale = true;
    }

    /// Recomputes the stale buckets from the store: O(objects in them),
    /// and O(256) for each root.
    pub(super) fn refresh(
        &mut self,
        store: &Store,
        local: OperatorId,
        admitted: &BTreeSet<OperatorId>,
    ) {
        if !self.any_stale {
            return;
        }
        for index in 0..BUCKETS {
            if !std::mem::take(&mut self.stale[index]) {
                continue;
            }
            // Invariant: index < 256.
            let range = bucket_range(index as u8);
            let (mut own, mut public) = (Vec::new(), Vec::new());
            for (id, object) in store.objects_in(range) {
                if is_statement(object) {
                    continue;
                }
                if in_view(View::Own, object, local, admitted, store) {
                    own.push(id);
                }
                if in_view(View::Public, object, local, admitted, store) {
                    public.push(id);
                }
            }
            self.own.buckets[index] = bucket_sum(&own);
            self.public.buckets[index] = bucket_sum(&public);
        }
        self.own.rehash_root();
        self.public.rehash_root();
        self.any_stale = false;
    }

    /// The root of `view`; call [`Views::refresh`] first.
    pub(super) fn root(&self, view: View) -> ViewRoot {
        self.index(view).root
    }

    /// The buckets of `view`; call [`Views::refresh`] first.
    pub(super) fn buckets(&self, view: View) -> &[BucketSum; BUCKETS] {
        &self.index(view).buckets
    }

    fn index(&self, view: View) -> &ViewIndex {
        match view {
            View::Own => &self.own,
            View::Public => &self.public,
        }
    }
}

/// The summary of a bucket holding `ids`, ascending.
fn bucket_sum(ids: &[ObjectId]) -> BucketSum {
    if ids.is_empty() {
        return BucketSum::default();
    }
    let parts: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes().as_slice()).collect();
    let full = blake2s::hash(&parts);
    let mut hash = [0; BUCKET_HASH_LEN];
    hash.copy_from_slice(&full[..BUCKET_HASH_LEN]);
    BucketSum {
        count: u32::try_from(ids.len()).unwrap_or(u32::MAX),
        hash,
    }
}
