//! The gossip wire format: three messages, versioned, strictly decoded.
//!
//! ```text
//! u8    gossip protocol version (1)
//! u8    message type: 1 digest, 2 want, 3 objects
//! digest: u16 id count (0 to 1000), then the ids, strictly ascending, 32 bytes each
//! want:   u16 id count (1 to 1000), then the ids, strictly ascending, 32 bytes each
//! objects: u16 object count (1 to 256), then per object:
//!         u8 kind (1 card, 2 vouch, 3 revocation), u16 length, the signed encoding
//! ```
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

const DIGEST: u8 = 1;
const WANT: u8 = 2;
const OBJECTS: u8 = 3;
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
