//! The gossip wire format: seven messages, versioned, strictly decoded.
//!
//! ```text
//! u8    gossip protocol version (1)
//! u8    message type: 1 digest, 2 want, 3 objects, 4 summary, 5 buckets, 6 ranges,
//!       7 statements
//! digest: u16 id count (0 to 1000), then the ids, strictly ascending, 32 bytes each
//! want:   u16 id count (1 to 1000), then the ids, strictly ascending, 32 bytes each
//! objects: u16 object count (1 to 256), then per object:
//!         u8 kind (1 card, 2 vouch, 3 revocation), u16 length, the signed encoding
//! root (in the next three): u32 object count, 16 bytes hash
//! summary: root
//! buckets: root, u16 bucket count (0 to 256), then per bucket, strictly ascending by index:
//!         u8 index, u32 object count (not 0), 8 bytes hash
//! ranges:  root, u16 range count (1 to 256), then per range, ascending and disjoint:
//!         32 bytes first id, 32 bytes last id (not below the first), u16 id count,
//!         the ids, strictly ascending, each within the range; at most 1000 ids in all
//! statements: 32 bytes voucher's operator id, root (of the voucher's vouches and withdrawals)
//! ```
//!
//! Types 4 to 7 came after the first release of version 1: a member that
//! does not know them drops them as malformed and still answers digests,
//! so members of both kinds converge.
//!
//! A message is at most [`MAX_MESSAGE_LEN`] bytes, which the decoder checks
//! before anything else; every count and length is checked against its
//! limit before it is read, and trailing bytes are refused. Decoding an
//! objects message verifies every object (its validity and signature), so
//! a [`GossipMessage`] only ever holds objects their signers made; one bad
//! object refuses the whole message. Gossip decodes with a filter of the
//! operators it admits, which skips, unverified, every object whose encoding
//! names another signer: a flood of objects signed by throwaway keys costs
//! a lookup each, not a signature check. Decoding never panics.

use crate::card::MAX_CARD_LEN;
use crate::codec::{DecodeError, Reader, Writer};
use crate::gossip::views::{
    BUCKET_HASH_LEN, BUCKETS as MAX_BUCKETS, BucketSum, ROOT_HASH_LEN, ViewRoot,
};
use crate::object::{
    OBJECT_ID_LEN, Object, ObjectId, ObjectKind, ObjectRef, ParseObjectError, claimed_signer,
};

/// The gossip protocol version this build speaks.
pub const GOSSIP_VERSION: u8 = 1;
/// The longest gossip message, in bytes.
pub const MAX_MESSAGE_LEN: usize = 32 * 1024;
/// The most ids in one digest or want.
pub const MAX_IDS: usize = 1000;
/// The most objects in one objects message.
pub const MAX_OBJECTS: usize = 256;
/// The most ranges in one ranges message.
pub const MAX_RANGES: usize = 256;

const DIGEST: u8 = 1;
const WANT: u8 = 2;
const OBJECTS: u8 = 3;
const SUMMARY: u8 = 4;
const BUCKETS: u8 = 5;
const RANGES: u8 = 6;
const STATEMENTS: u8 = 7;
/// Version, type and root: the start of a summary, buckets or ranges
/// message.
const ROOT_HEADER_LEN: usize = HEADER_LEN + 4 + ROOT_HASH_LEN;
/// The bytes a ranges message takes before its first range.
pub(crate) const RANGES_HEADER_LEN: usize = ROOT_HEADER_LEN + 2;
/// The bytes a buckets message takes before its first bucket.
pub(crate) const BUCKETS_HEADER_LEN: usize = ROOT_HEADER_LEN + 2;
/// The bytes a bucket takes in a buckets message.
pub(crate) const BUCKET_LEN: usize = 1 + 4 + BUCKET_HASH_LEN;
/// The bytes a range takes besides its ids.
pub(crate) const RANGE_HEADER_LEN: usize = 2 * OBJECT_ID_LEN + 2;
/// Version and type.
const HEADER_LEN: usize = 2;
/// Kind and length before each object.
const OBJECT_HEADER_LEN: usize = 3;

/// One gossip message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipMessage {
    /// "I hold these objects": the ids of objects the sender may show the
    /// recipient (a long list is sent as several digests).
    Digest {
        /// The ids, ascending.
        ids: Vec<ObjectId>,
    },
    /// "Send me these objects."
    Want {
        /// The ids, ascending.
        ids: Vec<ObjectId>,
    },
    /// Objects, answering a want or pushed as soon as they are learned.
    Objects {
        /// The objects, each verified.
        objects: Vec<Object>,
    },
    /// "What I may show you sums up to this": the root of the sender's
    /// view for the recipient.
    Summary {
        /// The sender's root.
        root: ViewRoot,
    },
    /// "Ours differ; here are my buckets": the answer to a summary that
    /// does not match, each bucket that holds anything.
    Buckets {
        /// The sender's root.
        root: ViewRoot,
        /// The buckets, by index, ascending.
        buckets: Vec<(u8, BucketSum)>,
    },
    /// "The vouches and withdrawals of this voucher I hold sum up to
    /// this": answered, when they differ, with digests of the
    /// recipient's.
    Statements {
        /// The id of the operator that signed them, as it is encoded: the
        /// recipient looks it up among the operators it admits, which is
        /// cheaper than checking it is a key.
        voucher: [u8; 32],
        /// The sender's root of them.
        root: ViewRoot,
    },
    /// "These are all the ids I may show you in these ranges": the answer
    /// to buckets that differ. The recipient wants what it lacks and sends
    /// what the sender lacks.
    Ranges {
        /// The sender's root.
        root: ViewRoot,
        /// The ranges, ascending and disjoint.
        ranges: Vec<IdRange>,
    },
}

/// All the ids a host may show a peer between two ids, both included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdRange {
    /// The first id of the range.
    pub first: ObjectId,
    /// The last id of the range.
    pub last: ObjectId,
    /// The ids in it, ascending.
    pub ids: Vec<ObjectId>,
}

/// Why bytes are not a gossip message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Longer than [`MAX_MESSAGE_LEN`].
    #[error("a gossip message of {len} bytes, more than the {MAX_MESSAGE_LEN} allowed")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A protocol version this build does not speak.
    #[error(
        "gossip protocol version {found} is not supported (this build speaks {GOSSIP_VERSION})"
    )]
    UnsupportedVersion {
        /// The version found.
        found: u8,
    },
    /// Broken framing.
    #[error("malformed gossip message: {0}")]
    Malformed(#[from] DecodeError),
    /// Ids out of order or repeated.
    #[error("the ids of a gossip message are not strictly ascending")]
    UnorderedIds,
    /// Buckets out of order or empty, or ranges out of order, overlapping,
    /// reversed, or listing an id outside them.
    #[error("the {what} of a gossip message are out of order or inconsistent")]
    BadSummary {
        /// `buckets` or `ranges`.
        what: &'static str,
    },
    /// An object that is not valid or whose signature does not verify.
    #[error("object {index} of a gossip message, a {kind}, is refused: {source}")]
    BadObject {
        /// Its position, from 0.
        index: usize,
        /// Its kind.
        kind: ObjectKind,
        /// What is wrong with it.
        source: Box<ParseObjectError>,
    },
}

/// Why a [`GossipMessage`] cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeMessageError {
    /// A want or objects message with nothing in it.
    #[error("a gossip {what} message must carry at least one item")]
    Empty {
        /// `want` or `objects`.
        what: &'static str,
    },
    /// More ids than [`MAX_IDS`] or objects than [`MAX_OBJECTS`].
    #[error("a gossip message may carry at most {max} {what}, not {count}")]
    TooMany {
        /// `ids` or `objects`.
        what: &'static str,
        /// How many there are.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The objects would make the message longer than [`MAX_MESSAGE_LEN`].
    #[error("the objects would make a gossip message longer than {MAX_MESSAGE_LEN} bytes")]
    TooLong,
}

impl GossipMessage {
    /// The message's bytes. Ids are written sorted, once each.
    ///
    /// # Errors
    ///
    /// [`EncodeMessageError`] when the message breaks a limit of the
    /// format.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeMessageError> {
        match self {
            Self::Digest { ids } | Self::Want { ids } => {
                let mut ids = ids.clone();
                ids.sort_unstable();
                ids.dedup();
                let is_want = matches!(self, Self::Want { .. });
                if is_want && ids.is_empty() {
                    return Err(EncodeMessageError::Empty { what: "want" });
                }
                if ids.len() > MAX_IDS {
                    return Err(EncodeMessageError::TooMany {
                        what: "ids",
                        count: ids.len(),
                        max: MAX_IDS,
                    });
                }
                Ok(encode_ids(if is_want { WANT } else { DIGEST }, &ids))
            }
            Self::Objects { objects } => {
                if objects.len() > MAX_OBJECTS {
                    return Err(EncodeMessageError::TooMany {
                        what: "objects",
                        count: objects.len(),
                        max: MAX_OBJECTS,
                    });
                }
                let mut writer = ObjectsWriter::new();
                for object in objects {
                    if !writer.try_push(object.as_ref()) {
                        return Err(EncodeMessageError::TooLong);
                    }
                }
                writer
                    .finish()
                    .ok_or(EncodeMessageError::Empty { what: "objects" })
            }
            Self::Summary { root } => Ok(encode_summary(*root)),
            Self::Statements { voucher, root } => Ok(encode_statements(voucher, *root)),
            Self::Buckets { root, buckets } => {
                if buckets.len() > MAX_BUCKETS {
                    return Err(EncodeMessageError::TooMany {
                        what: "buckets",
                        count: buckets.len(),
                        max: MAX_BUCKETS,
                    });
                }
                Ok(encode_buckets(*root, buckets))
            }
            Self::Ranges { root, ranges } => {
                let ids: usize = ranges.iter().map(|range| range.ids.len()).sum();
                if ranges.is_empty() {
                    return Err(EncodeMessageError::Empty { what: "ranges" });
                }
                if ranges.len() > MAX_RANGES {
                    return Err(EncodeMessageError::TooMany {
                        what: "ranges",
                        count: ranges.len(),
                        max: MAX_RANGES,
                    });
                }
                if ids > MAX_IDS {
                    return Err(EncodeMessageError::TooMany {
                        what: "ids",
                        count: ids,
                        max: MAX_IDS,
                    });
                }
                Ok(encode_ranges(*root, ranges))
            }
        }
    }

    /// Reads and checks a message; every object in it is verified.
    ///
    /// # Errors
    ///
    /// [`MessageError`] saying what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        Self::decode_admitting(bytes, |_| true).map(|(message, _)| message)
    }

    /// Reads and checks a message, skipping unverified every object whose
    /// signer — the operator its encoding names, a lookup before any
    /// signature check — `admit` refuses; returns the message of the other
    /// objects, each verified, and the ids of those skipped.
    ///
    /// # Errors
    ///
    /// [`MessageError`] saying what is wrong with the message or with an
    /// object that was not skipped.
    pub fn decode_admitting(
        bytes: &[u8],
        admit: impl Fn(&[u8; 32]) -> bool,
    ) -> Result<(Self, Vec<ObjectId>), MessageError> {
        let screen = |_: ObjectKind, encoded: &[u8]| match claimed_signer(encoded) {
            Some(signer) if !admit(signer) => Screen::NotAdmitted,
            _ => Screen::Verify,
        };
        Self::decode_screened(bytes, screen)
            .map(|(message, skipped)| (message, skipped.into_iter().map(|(id, _)| id).collect()))
    }

    /// Reads and checks a message, skipping unverified every object that
    /// `screen`, shown its kind and encoding before any signature check,
    /// does not pass; returns the message of the other objects, each
    /// verified, and the ids of those skipped with why.
    ///
    /// # Errors
    ///
    /// [`MessageError`] saying what is wrong with the message or with an
    /// object that was not skipped.
    pub(crate) fn decode_screened(
        bytes: &[u8],
        screen: impl Fn(ObjectKind, &[u8]) -> Screen,
    ) -> Result<(Self, Vec<(ObjectId, Screen)>), MessageError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(MessageError::TooLong { len: bytes.len() });
        }
        let mut r = Reader::new(bytes);
        match r.u8("gossip protocol version")? {
            GOSSIP_VERSION => {}
            found => return Err(MessageError::UnsupportedVersion { found }),
        }
        let mut skipped = Vec::new();
        let message = match r.u8("gossip message type")? {
            DIGEST => Self::Digest {
                ids: decode_ids(&mut r, 0)?,
            },
            WANT => Self::Want {
                ids: decode_ids(&mut r, 1)?,
            },
            OBJECTS => Self::Objects {
                objects: decode_objects(&mut r, &screen, &mut skipped)?,
            },
            SUMMARY => Self::Summary {
                root: decode_root(&mut r)?,
            },
            BUCKETS => Self::Buckets {
                root: decode_root(&mut r)?,
                buckets: decode_buckets(&mut r)?,
            },
            RANGES => Self::Ranges {
                root: decode_root(&mut r)?,
                ranges: decode_ranges(&mut r)?,
            },
            STATEMENTS => Self::Statements {
                voucher: r.array::<32>("voucher")?,
                root: decode_root(&mut r)?,
            },
            value => {
                return Err(DecodeError::BadValue {
                    field: "gossip message type",
                    value: value.into(),
                }
                .into());
            }
        };
        r.finish()?;
        Ok((message, skipped))
    }
}

/// A digest of ids the caller sorted and capped at [`MAX_IDS`].
pub(crate) fn encode_digest(ids: &[ObjectId]) -> Vec<u8> {
    encode_ids(DIGEST, ids)
}

/// A want of ids the caller sorted and capped at [`MAX_IDS`].
pub(crate) fn encode_want(ids: &[ObjectId]) -> Vec<u8> {
    encode_ids(WANT, ids)
}

fn encode_ids(kind: u8, ids: &[ObjectId]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(GOSSIP_VERSION);
    w.u8(kind);
    // Invariant: callers pass at most MAX_IDS ids.
    w.count(ids.len());
    ids.iter().for_each(|id| w.array(id.as_bytes()));
    w.into_bytes()
}

/// A summary of the sender's view.
pub(crate) fn encode_summary(root: ViewRoot) -> Vec<u8> {
    root_writer(SUMMARY, root).into_bytes()
}

/// A summary of the sender's statements of `voucher`.
pub(crate) fn encode_statements(voucher: &[u8; 32], root: ViewRoot) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(GOSSIP_VERSION);
    w.u8(STATEMENTS);
    w.array(voucher);
    w.array(&root.count.to_be_bytes());
    w.array(&root.hash);
    w.into_bytes()
}

/// The non-empty buckets of a view, ascending by index, at most 256.
pub(crate) fn encode_buckets(root: ViewRoot, buckets: &[(u8, BucketSum)]) -> Vec<u8> {
    let mut w = root_writer(BUCKETS, root);
    // Invariant: at most MAX_BUCKETS (256) buckets.
    w.count(buckets.len());
    for (index, bucket) in buckets {
        w.u8(*index);
        w.array(&bucket.count.to_be_bytes());
        w.array(&bucket.hash);
    }
    w.into_bytes()
}

/// Ranges the caller made ascending, disjoint and within the limits.
pub(crate) fn encode_ranges(root: ViewRoot, ranges: &[IdRange]) -> Vec<u8> {
    let mut w = root_writer(RANGES, root);
    // Invariant: at most MAX_RANGES ranges, MAX_IDS ids in all.
    w.count(ranges.len());
    for range in ranges {
        w.array(range.first.as_bytes());
        w.array(range.last.as_bytes());
        w.count(range.ids.len());
        range.ids.iter().for_each(|id| w.array(id.as_bytes()));
    }
    w.into_bytes()
}

fn root_writer(kind: u8, root: ViewRoot) -> Writer {
    let mut w = Writer::new();
    w.u8(GOSSIP_VERSION);
    w.u8(kind);
    w.array(&root.count.to_be_bytes());
    w.array(&root.hash);
    w
}

fn decode_root(r: &mut Reader<'_>) -> Result<ViewRoot, MessageError> {
    Ok(ViewRoot {
        count: u32::from_be_bytes(r.array::<4>("object count")?),
        hash: r.array::<ROOT_HASH_LEN>("root hash")?,
    })
}

fn decode_buckets(r: &mut Reader<'_>) -> Result<Vec<(u8, BucketSum)>, MessageError> {
    let count = r.count("bucket count", MAX_BUCKETS)?;
    let mut buckets: Vec<(u8, BucketSum)> = Vec::with_capacity(count);
    for _ in 0..count {
        let index = r.u8("bucket index")?;
        let bucket = BucketSum {
            count: u32::from_be_bytes(r.array::<4>("bucket count")?),
            hash: r.array::<BUCKET_HASH_LEN>("bucket hash")?,
        };
        if bucket.count == 0 || buckets.last().is_some_and(|(last, _)| *last >= index) {
            return Err(MessageError::BadSummary { what: "buckets" });
        }
        buckets.push((index, bucket));
    }
    Ok(buckets)
}

fn decode_ranges(r: &mut Reader<'_>) -> Result<Vec<IdRange>, MessageError> {
    let count = r.count("range count", MAX_RANGES)?;
    if count == 0 {
        return Err(DecodeError::BadValue {
            field: "range count",
            value: 0,
        }
        .into());
    }
    let mut ranges: Vec<IdRange> = Vec::with_capacity(count);
    let mut total = 0;
    for _ in 0..count {
        let first = ObjectId::from_bytes(r.array::<OBJECT_ID_LEN>("object id")?);
        let last = ObjectId::from_bytes(r.array::<OBJECT_ID_LEN>("object id")?);
        if first > last || ranges.last().is_some_and(|prev| prev.last >= first) {
            return Err(MessageError::BadSummary { what: "ranges" });
        }
        let ids = decode_ids(r, 0)?;
        total += ids.len();
        if total > MAX_IDS {
            return Err(DecodeError::TooLong {
                field: "ids",
                len: total,
                max: MAX_IDS,
            }
            .into());
        }
        if ids.iter().any(|id| *id < first || *id > last) {
            return Err(MessageError::BadSummary { what: "ranges" });
        }
        ranges.push(IdRange { first, last, ids });
    }
    Ok(ranges)
}

fn decode_ids(r: &mut Reader<'_>, min: usize) -> Result<Vec<ObjectId>, MessageError> {
    let count = r.count("id count", MAX_IDS)?;
    if count < min {
        return Err(DecodeError::BadValue {
            field: "id count",
            value: 0,
        }
        .into());
    }
    let mut ids: Vec<ObjectId> = Vec::with_capacity(count);
    for _ in 0..count {
        let id = ObjectId::from_bytes(r.array::<OBJECT_ID_LEN>("object id")?);
        if ids.last().is_some_and(|last| *last >= id) {
            return Err(MessageError::UnorderedIds);
        }
        ids.push(id);
    }
    Ok(ids)
}

/// What gossip makes of an object before checking its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Screen {
    /// Check it and take it to the store.
    Verify,
    /// Its signer is not admitted.
    NotAdmitted,
    /// It needs room its signer's quota, or the store, no longer has.
    NoRoom,
    /// This host refused it lately.
    Refused,
    /// This host holds it already.
    Held,
}

fn decode_objects(
    r: &mut Reader<'_>,
    screen: impl Fn(ObjectKind, &[u8]) -> Screen,
    skipped: &mut Vec<(ObjectId, Screen)>,
) -> Result<Vec<Object>, MessageError> {
    let count = r.count("object count", MAX_OBJECTS)?;
    if count == 0 {
        return Err(DecodeError::BadValue {
            field: "object count",
            value: 0,
        }
        .into());
    }
    let mut objects = Vec::with_capacity(count);
    for index in 0..count {
        let tag = r.u8("object kind")?;
        let kind = ObjectKind::from_tag(tag).ok_or(DecodeError::BadValue {
            field: "object kind",
            value: tag.into(),
        })?;
        let bytes = r.bytes("object", MAX_CARD_LEN)?;
        match screen(kind, bytes) {
            Screen::Verify => {}
            skipped_for => {
                skipped.push((ObjectId::of(kind, bytes), skipped_for));
                continue;
            }
        }
        let object = Object::decode(kind, bytes).map_err(|source| MessageError::BadObject {
            index,
            kind,
            source: Box::new(source),
        })?;
        objects.push(object);
    }
    Ok(objects)
}

/// Builds an objects message of borrowed objects, within the limits.
#[derive(Debug)]
pub(crate) struct ObjectsWriter {
    body: Writer,
    count: usize,
    len: usize,
}

impl ObjectsWriter {
    pub(crate) fn new() -> Self {
        Self {
            body: Writer::new(),
            count: 0,
            len: HEADER_LEN + 2,
        }
    }

    /// Adds the object if it fits; says whether it did.
    pub(crate) fn try_push(&mut self, object: ObjectRef<'_>) -> bool {
        let bytes = object.as_bytes();
        let len = self.len + OBJECT_HEADER_LEN + bytes.len();
        if self.count == MAX_OBJECTS || len > MAX_MESSAGE_LEN || bytes.len() > MAX_CARD_LEN {
            return false;
        }
        self.body.u8(object.kind().tag());
        // Invariant: checked above to be at most MAX_CARD_LEN bytes.
        self.body.bytes(bytes);
        self.count += 1;
        self.len = len;
        true
    }

    /// The message, or `None` when no object was added.
    pub(crate) fn finish(self) -> Option<Vec<u8>> {
        if self.count == 0 {
            return None;
        }
        let mut w = Writer::new();
        w.u8(GOSSIP_VERSION);
        w.u8(OBJECTS);
        // Invariant: at most MAX_OBJECTS objects were added.
        w.count(self.count);
        w.array(self.body.as_slice());
        Some(w.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::{Revocation, RevocationTarget};
    use crate::role::Role;
    use crate::testing::{NOW, SignCard, card, operator};
    use crate::vouch::Vouch;
    use sentrymesh_types::PublicKey;

    fn objects() -> Vec<Object> {
        let (alice, bob) = (operator(1), operator(2));
        vec![
            card(&alice, "sentry-1", Role::Sentry)
                .sign(&alice)
                .unwrap()
                .into(),
            Vouch {
                voucher: alice.operator_id(),
                subject: bob.operator_id(),
                overlay: "198.19.9.0/24".parse().unwrap(),
                issued_at: NOW,
            }
            .sign(&alice)
            .unwrap()
            .into(),
            Revocation {
                issuer: alice.operator_id(),
                target: RevocationTarget::Host(PublicKey::from_bytes([3; 32])),
                issued_at: NOW,
            }
            .sign(&alice)
            .unwrap()
            .into(),
        ]
    }

    fn ids(n: u8) -> Vec<ObjectId> {
        (0..n).map(|i| ObjectId::from_bytes([i; 32])).collect()
    }

    #[test]
    fn every_message_round_trips() {
        for message in [
            GossipMessage::Digest { ids: vec![] },
            GossipMessage::Digest { ids: ids(3) },
            GossipMessage::Want { ids: ids(2) },
            GossipMessage::Objects { objects: objects() },
        ] {
            let bytes = message.encode().unwrap();
            assert_eq!(GossipMessage::decode(&bytes).unwrap(), message);
        }
        let digest = GossipMessage::Digest { ids: ids(2) }.encode().unwrap();
        assert_eq!(&digest[..4], &[1, 1, 0, 2]);
        assert_eq!(digest.len(), 4 + 64);
        // Ids are sorted and deduplicated on the way out.
        let mut shuffled = ids(3);
        shuffled.reverse();
        shuffled.push(shuffled[0]);
        let bytes = GossipMessage::Want { ids: shuffled }.encode().unwrap();
        assert_eq!(
            GossipMessage::decode(&bytes).unwrap(),
            GossipMessage::Want { ids: ids(3) }
        );
    }

    fn root(n: u8) -> ViewRoot {
        ViewRoot {
            count: u32::from(n),
            hash: [n; ROOT_HASH_LEN],
        }
    }

    fn sum(n: u8) -> BucketSum {
        BucketSum {
            count: u32::from(n),
            hash: [n; BUCKET_HASH_LEN],
        }
    }

    #[test]
    fn summaries_round_trip_and_are_checked() {
        let range = |first: u8, last: u8, ids: &[u8]| IdRange {
            first: ObjectId::from_bytes([first; 32]),
            last: ObjectId::from_bytes([last; 32]),
            ids: ids.iter().map(|&i| ObjectId::from_bytes([i; 32])).collect(),
        };
        for message in [
            GossipMessage::Summary { root: root(3) },
            GossipMessage::Statements {
                voucher: [7; 32],
                root: root(4),
            },
            GossipMessage::Buckets {
                root: root(2),
                buckets: vec![],
            },
            GossipMessage::Buckets {
                root: root(2),
                buckets: vec![(0, sum(1)), (7, sum(2)), (255, sum(9))],
            },
            GossipMessage::Ranges {
                root: root(1),
                ranges: vec![
                    range(1, 3, &[1, 2]),
                    range(4, 4, &[]),
                    range(9, 200, &[100]),
                ],
            },
        ] {
            let bytes = message.encode().unwrap();
            assert_eq!(GossipMessage::decode(&bytes).unwrap(), message);
        }
        assert_eq!(
            GossipMessage::Summary { root: root(3) }
                .encode()
                .unwrap()
                .len(),
            2 + 4 + ROOT_HASH_LEN
        );
        let statements = GossipMessage::Statements {
            voucher: [7; 32],
            root: root(4),
        }
        .encode()
        .unwrap();
        assert_eq!(statements.len(), 2 + 32 + 4 + ROOT_HASH_LEN);
        assert_eq!(&statements[..3], &[1, 7, 7]);
        // Cut short, or with a byte more.
        assert!(GossipMessage::decode(&statements[..statements.len() - 1]).is_err());
        assert!(GossipMessage::decode(&[statements.as_slice(), &[0]].concat()).is_err());
        let bad =
            |message: GossipMessage| GossipMessage::decode(&message.encode().unwrap()).unwrap_err();
        // Buckets out of order, repeated, or empty.
        for buckets in [
            vec![(7, sum(1)), (3, sum(1))],
            vec![(7, sum(1)), (7, sum(1))],
            vec![(7, sum(0))],
        ] {
            let err = bad(GossipMessage::Buckets {
                root: root(1),
                buckets,
            });
            assert_eq!(err, MessageError::BadSummary { what: "buckets" });
        }
        // Ranges reversed, overlapping, or listing an id outside them.
        for ranges in [
            vec![range(5, 4, &[])],
            vec![range(1, 5, &[]), range(5, 9, &[])],
            vec![range(1, 5, &[6])],
        ] {
            let err = bad(GossipMessage::Ranges {
                root: root(1),
                ranges,
            });
            assert_eq!(err, MessageError::BadSummary { what: "ranges" });
        }
        assert_eq!(
            GossipMessage::Ranges {
                root: root(1),
                ranges: vec![]
            }
            .encode(),
            Err(EncodeMessageError::Empty { what: "ranges" })
        );
        // More ids across the ranges than one message may carry.
        let many: Vec<ObjectId> = (0..=MAX_IDS as u16)
            .map(|i| {
                let mut bytes = [0; 32];
                bytes[..2].copy_from_slice(&i.to_be_bytes());
                ObjectId::from_bytes(bytes)
            })
            .collect();
        let (low, high) = many.split_at(600);
        let over = encode_ranges(
            root(1),
            &[
                IdRange {
                    first: low[0],
                    last: low[low.len() - 1],
                    ids: low.to_vec(),
                },
                IdRange {
                    first: high[0],
                    last: high[high.len() - 1],
                    ids: high.to_vec(),
                },
            ],
        );
        assert!(matches!(
            GossipMessage::decode(&over),
            Err(MessageError::TooLong { .. } | MessageError::Malformed(DecodeError::TooLong { .. }))
        ));
    }

    #[test]
    fn the_limits_hold_both_ways() {
        let many: Vec<ObjectId> = (0..=MAX_IDS as u16)
            .map(|i| {
                let mut bytes = [0; 32];
                bytes[..2].copy_from_slice(&i.to_be_bytes());
                ObjectId::from_bytes(bytes)
            })
            .collect();
        assert_eq!(
            GossipMessage::Digest { ids: many.clone() }.encode(),
            Err(EncodeMessageError::TooMany {
                what: "ids",
                count: MAX_IDS + 1,
                max: MAX_IDS
            })
        );
        let full = encode_digest(&many[..MAX_IDS]);
        assert!(full.len() <= MAX_MESSAGE_LEN);
        assert!(GossipMessage::decode(&full).is_ok());
        let over = encode_digest(&many);
        assert!(matches!(
            GossipMessage::decode(&over),
            Err(MessageError::Malformed(DecodeError::TooLong { .. }))
        ));
        assert_eq!(
            GossipMessage::decode(&vec![1; MAX_MESSAGE_LEN + 1]),
            Err(MessageError::TooLong {
                len: MAX_MESSAGE_LEN + 1
            })
        );
        assert_eq!(
            GossipMessage::Want { ids: vec![] }.encode(),
            Err(EncodeMessageError::Empty { what: "want" })
        );
        assert_eq!(
            GossipMessage::Objects { objects: vec![] }.encode(),
            Err(EncodeMessageError::Empty { what: "objects" })
        );
        // Objects stop fitting before the message grows too long.
        let card = objects().remove(0);
        let mut writer = ObjectsWriter::new();
        let mut fitted = 0;
        while writer.try_push(card.as_ref()) {
            fitted += 1;
        }
        assert!(fitted > 1 && fitted <= MAX_OBJECTS);
        assert!(writer.finish().unwrap().len() <= MAX_MESSAGE_LEN);
        let too_many = GossipMessage::Objects {
            objects: vec![card; fitted + 1],
        };
        assert!(too_many.encode().is_err());
    }

    #[test]
    fn malformed_messages_say_what_is_wrong() {
        let decode = GossipMessage::decode;
        assert_eq!(
            decode(&[2, 1, 0, 0]),
            Err(MessageError::UnsupportedVersion { found: 2 })
        );
        assert!(matches!(
            decode(&[1, 9, 0, 0]),
            Err(MessageError::Malformed(DecodeError::BadValue {
                value: 9,
                ..
            }))
        ));
        assert!(matches!(
            decode(&[1, 2, 0, 0]),
            Err(MessageError::Malformed(DecodeError::BadValue { .. }))
        ));
        assert!(matches!(
            decode(&[1, 3, 0, 0]),
            Err(MessageError::Malformed(DecodeError::BadValue { .. }))
        ));
        assert!(matches!(
            decode(&[1, 1, 0, 1, 7]),
            Err(MessageError::Malformed(DecodeError::Truncated { .. }))
        ));
        assert!(matches!(
            decode(&[1, 1, 0, 0, 0]),
            Err(MessageError::Malformed(DecodeError::TrailingBytes {
                count: 1
            }))
        ));
        let mut unordered = encode_digest(&ids(2));
        unordered[4..36].fill(9);
        assert_eq!(decode(&unordered), Err(MessageError::UnorderedIds));
        let twice = encode_want(&[ObjectId::from_bytes([4; 32]); 2]);
        assert_eq!(decode(&twice), Err(MessageError::UnorderedIds));
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn one_altered_object_refuses_the_message() {
        let message = GossipMessage::Objects { objects: objects() };
        let mut bytes = message.encode().unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = GossipMessage::decode(&bytes).unwrap_err();
        assert!(
            matches!(
                err,
                MessageError::BadObject {
                    index: 2,
                    kind: ObjectKind::Revocation,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("object 2 of a gossip message, a revocation, is refused"),
            "{err}"
        );
        // A kind tag that does not match the bytes.
        let mut bytes = message.encode().unwrap();
        bytes[4] = 2;
        assert!(matches!(
            GossipMessage::decode(&bytes),
            Err(MessageError::BadObject {
                index: 0,
                kind: ObjectKind::Vouch,
                ..
            })
        ));
        bytes[4] = 0;
        assert!(matches!(
            GossipMessage::decode(&bytes),
            Err(MessageError::Malformed(DecodeError::BadValue { .. }))
        ));
    }
}
