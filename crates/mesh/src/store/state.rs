//! The state file: the whole store as the daemon keeps it in its state
//! directory, in the format of [`Store::encode`]; [`Store::decode`] reads
//! it back and re-verifies every signature, so an altered file is refused
//! rather than trusted.
//!
//! The file holds what the store held, so the per-operator quotas are not
//! checked again when it is read (a file written under other quotas still
//! loads); each list is bounded by [`MAX_LISTED`], as the store's are.

use super::{InsertError, MAX_CARDS, MAX_LISTED, MAX_STATEMENT_LEN, Room, Store};
use crate::card::{MAX_CARD_LEN, SignedCard};
use crate::codec::{DecodeError, Reader, Writer};
use crate::object::{Object, ObjectKind, ParseObjectError};

/// The first bytes of a state file.
pub(super) const STATE_MAGIC: &[u8; 16] = b"sentrymesh state";
/// The state file format this build writes and reads.
pub(super) const STATE_VERSION: u8 = 1;

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

impl Store {
    /// The state file: every object, in this format:
    ///
    /// ```text
    /// [16]  "sentrymesh state"
    /// u8    state format version (1)
    /// u16   card count, then per card (ascending by WireGuard key):              u16 length, signed card
    /// u16   vouch count, then per vouch (ascending by voucher, subject):          u16 length, signed vouch
    /// u16   revocation count, then per revocation (ascending by issuer, target):  u16 length, signed revocation
    /// u16   retired card count, then per card (ascending by WireGuard key):      u16 length, signed card
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.array(STATE_MAGIC);
        w.u8(STATE_VERSION);
        // Invariant (for `count` and `bytes`): no list holds more than
        // MAX_LISTED (65535) entries (every insert that grows one checks
        // it; the retired cards are at most MAX_CARDS), and every object is shorter than
        // 65536 bytes.
        w.count(self.cards.len());
        self.cards().for_each(|card| w.bytes(card.as_bytes()));
        w.count(self.vouches.len());
        self.vouches().for_each(|vouch| w.bytes(vouch.as_bytes()));
        w.count(self.revocations.len());
        self.revocations().for_each(|r| w.bytes(r.as_bytes()));
        w.count(self.retired.len());
        self.retired
            .values()
            .for_each(|retired| w.bytes(retired.as_bytes()));
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
            (ObjectKind::Card, "card list", MAX_LISTED, MAX_CARD_LEN),
            (
                ObjectKind::Vouch,
                "vouch list",
                MAX_LISTED,
                MAX_STATEMENT_LEN,
            ),
            (
                ObjectKind::Revocation,
                "revocation list",
                MAX_LISTED,
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
                    Object::Vouch(vouch) => store.put_vouch(vouch, Room::Held),
                    Object::Revocation(revocation) => store.put_revocation(revocation, Room::Held),
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
            let (operator, key, not_after) = (c.operator, c.wg_public_key, c.not_after);
            store.retire(&card);
            store.bind_tombstone(operator, key, not_after);
        }
        r.finish()?;
        if store.encode() != bytes {
            return Err(StateError::NotCanonical);
        }
        store.generation = 0;
        Ok(store)
    }
}
