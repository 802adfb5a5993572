//! The signed objects members keep and gossip — cards, vouches and
//! revocations — and the ids that name them.
//!
//! An [`ObjectId`] is the BLAKE2s-256 hash of a context string, the kind of
//! object and its canonical signed encoding:
//!
//! ```text
//! id = BLAKE2s-256("sentrymesh object id v1" || kind (1: card, 2: vouch, 3: revocation) || encoding)
//! ```
//!
//! Since every [`Object`] is already verified and canonically encoded, two
//! members holding the same object name it by the same id, and an id names
//! exactly one object: digests of ids are enough to tell who lacks what.

use std::fmt;

use sentrymesh_types::blake2s;

use crate::card::{ParseCardError, SignedCard};
use crate::identity::OperatorId;
use crate::revocation::SignedRevocation;
use crate::statement::ParseStatementError;
use crate::vouch::SignedVouch;

/// Length of an [`ObjectId`].
pub const OBJECT_ID_LEN: usize = 32;

/// The context string hashed into every object id.
const ID_CONTEXT: &[u8] = b"sentrymesh object id v1";

/// The name of a signed object: a hash of its kind and its signed
/// encoding. Ordered by its bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId([u8; OBJECT_ID_LEN]);

impl ObjectId {
    /// The id with these bytes (as a digest carries it).
    pub const fn from_bytes(bytes: [u8; OBJECT_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; OBJECT_ID_LEN] {
        &self.0
    }

    /// The id of the object of `kind` with this signed encoding.
    pub(crate) fn of(kind: ObjectKind, encoded: &[u8]) -> Self {
        Self(blake2s::hash(&[ID_CONTEXT, &[kind.tag()], encoded]))
    }
}

impl fmt::Display for ObjectId {
    /// Lower-case hex of all 32 bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ObjectId {
    /// The first eight bytes in hex, enough to tell ids apart in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ObjectId(")?;
        self.0[..8].iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        f.write_str("..)")
    }
}

/// The kinds of signed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    /// A signed host card.
    Card,
    /// A signed vouch.
    Vouch,
    /// A signed revocation.
    Revocation,
}

impl ObjectKind {
    /// Every kind, in order.
    pub const ALL: [Self; 3] = [Self::Card, Self::Vouch, Self::Revocation];

    /// `card`, `vouch` or `revocation`.
    pub const fn word(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Vouch => "vouch",
            Self::Revocation => "revocation",
        }
    }

    /// The kind's tag in ids, gossip messages and state files.
    pub(crate) const fn tag(self) -> u8 {
        match self {
            Self::Card => 1,
            Self::Vouch => 2,
            Self::Revocation => 3,
        }
    }

    /// The kind with this tag.
    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.tag() == tag)
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// Why bytes are not a valid signed object of the kind expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseObjectError {
    /// Not a valid signed card.
    #[error(transparent)]
    Card(#[from] ParseCardError),
    /// Not a valid signed vouch or revocation.
    #[error(transparent)]
    Statement(#[from] ParseStatementError),
}

/// A verified signed object: what members keep and gossip.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Object {
    /// A host card.
    Card(SignedCard),
    /// A vouch.
    Vouch(SignedVouch),
    /// A revocation.
    Revocation(SignedRevocation),
}

impl Object {
    /// The object of `kind` in its signed encoding, checked as the kind's
    /// own `decode` checks it (well-formed, valid, signature verified).
    ///
    /// # Errors
    ///
    /// [`ParseObjectError`] saying what is wrong.
    pub fn decode(kind: ObjectKind, bytes: &[u8]) -> Result<Self, ParseObjectError> {
        // A simulation may install a checker that makes the check instead.
        #[cfg(any(test, feature = "testing"))]
        let decoded = crate::sim::checks::checked(kind, bytes, Self::decode_verified);
        #[cfg(not(any(test, feature = "testing")))]
        let decoded = Self::decode_verified(kind, bytes);
        decoded
    }

    /// [`Object::decode`]'s check itself, which a simulation's checker
    /// (with the `testing` feature) may make instead.
    fn decode_verified(kind: ObjectKind, bytes: &[u8]) -> Result<Self, ParseObjectError> {
        Ok(match kind {
            ObjectKind::Card => Self::Card(SignedCard::decode(bytes)?),
            ObjectKind::Vouch => Self::Vouch(SignedVouch::decode(bytes)?),
            ObjectKind::Revocation => Self::Revocation(SignedRevocation::decode(bytes)?),
        })
    }

    /// A borrowed view of the object.
    pub fn as_ref(&self) -> ObjectRef<'_> {
        match self {
            Self::Card(card) => ObjectRef::Card(card),
            Self::Vouch(vouch) => ObjectRef::Vouch(vouch),
            Self::Revocation(revocation) => ObjectRef::Revocation(revocation),
        }
    }

    /// What kind of object this is.
    pub fn kind(&self) -> ObjectKind {
        self.as_ref().kind()
    }

    /// The signed encoding.
    pub fn as_bytes(&self) -> &[u8] {
        self.as_ref().as_bytes()
    }

    /// The object's id (a hash, computed on each call).
    pub fn id(&self) -> ObjectId {
        self.as_ref().id()
    }
}

/// The operator an object's encoding names as its signer (the card's
/// operator, the voucher, the issuer), read without decoding or verifying
/// anything: every kind's encoding is a format version byte, then that
/// operator's 32-byte id. For refusing an object of an operator not
/// admitted before paying for its signature check; `None` when the bytes
/// are too short to name one.
pub(crate) fn claimed_signer(encoded: &[u8]) -> Option<&[u8; 32]> {
    encoded.get(1..33)?.try_into().ok()
}

impl From<SignedCard> for Object {
    fn from(card: SignedCard) -> Self {
        Self::Card(card)
    }
}

impl From<SignedVouch> for Object {
    fn from(vouch: SignedVouch) -> Self {
        Self::Vouch(vouch)
    }
}

impl From<SignedRevocation> for Object {
    fn from(revocation: SignedRevocation) -> Self {
        Self::Revocation(revocation)
    }
}

/// A borrowed signed object, as the store hands it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectRef<'a> {
    /// A host card.
    Card(&'a SignedCard),
    /// A vouch.
    Vouch(&'a SignedVouch),
    /// A revocation.
    Revocation(&'a SignedRevocation),
}

impl<'a> ObjectRef<'a> {
    /// What kind of object this is.
    pub fn kind(self) -> ObjectKind {
        match self {
            Self::Card(_) => ObjectKind::Card,
            Self::Vouch(_) => ObjectKind::Vouch,
            Self::Revocation(_) => ObjectKind::Revocation,
        }
    }

    /// The signed encoding.
    pub fn as_bytes(self) -> &'a [u8] {
        match self {
            Self::Card(card) => card.as_bytes(),
            Self::Vouch(vouch) => vouch.as_bytes(),
            Self::Revocation(revocation) => revocation.as_bytes(),
        }
    }

    /// The object's id (a hash, computed on each call).
    pub fn id(self) -> ObjectId {
        ObjectId::of(self.kind(), self.as_bytes())
    }

    /// The operator who signed it: the card's operator, the voucher, the
    /// issuer.
    pub fn signer(self) -> OperatorId {
        match self {
            Self::Card(card) => card.card().operator,
            Self::Vouch(vouch) => vouch.vouch().voucher,
            Self::Revocation(revocation) => revocation.revocation().issuer,
        }
    }

    /// An owned copy.
    pub fn to_object(self) -> Object {
        match self {
            Self::Card(card) => Object::Card(card.clone()),
            Self::Vouch(vouch) => Object::Vouch(vouch.clone()),
            Self::Revocation(revocation) => Object::Revocation(revocation.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::OperatorSecret;
    use crate::role::Role;
    use crate::testing::{NOW, SignCard, card, operator};
    use crate::vouch::Vouch;

    #[test]
    fn ids_are_stable_and_depend_on_kind_and_bytes() {
        let op = operator(1);
        let signed = card(&op, "sentry-1", Role::Sentry).sign(&op).unwrap();
        let object = Object::from(signed.clone());
        assert_eq!(
            object.id(),
            ObjectId::of(ObjectKind::Card, signed.as_bytes())
        );
        assert_eq!(object.id(), object.as_ref().id());
        assert_ne!(
            object.id(),
            ObjectId::of(ObjectKind::Vouch, signed.as_bytes())
        );
        let decoded = Object::decode(ObjectKind::Card, signed.as_bytes()).unwrap();
        assert_eq!(decoded, object);
        assert_eq!(decoded.as_ref().to_object(), object);
        assert_eq!(object.id().to_string().len(), 64);
        assert!(format!("{:?}", object.id()).starts_with("ObjectId("));
    }

    #[test]
    fn decoding_checks_the_kind() {
        let (alice, bob) = (operator(1), operator(2));
        let vouch = Vouch {
            voucher: alice.operator_id(),
            subject: bob.operator_id(),
            overlay: "198.19.9.0/24".parse().unwrap(),
            issued_at: NOW,
        }
        .sign(&alice)
        .unwrap();
        assert!(matches!(
            Object::decode(ObjectKind::Card, vouch.as_bytes()),
            Err(ParseObjectError::Card(_))
        ));
        assert!(matches!(
            Object::decode(ObjectKind::Revocation, vouch.as_bytes()),
            Err(ParseObjectError::Statement(_))
        ));
        let object = Object::decode(ObjectKind::Vouch, vouch.as_bytes()).unwrap();
        assert_eq!(object.kind(), ObjectKind::Vouch);
        assert_eq!(object.as_bytes(), vouch.as_bytes());
    }

    #[test]
    fn the_claimed_signer_is_the_signer_of_every_kind() {
        let (alice, bob) = (operator(1), operator(2));
        let card = card(&alice, "sentry-1", Role::Sentry).sign(&alice).unwrap();
        let vouch = Vouch {
            voucher: bob.operator_id(),
            subject: alice.operator_id(),
            overlay: "198.19.9.0/24".parse().unwrap(),
            issued_at: NOW,
        }
        .sign(&bob)
        .unwrap();
        let revocation = crate::revocation::Revocation {
            issuer: alice.operator_id(),
            target: crate::revocation::RevocationTarget::Vouch(bob.operator_id()),
            issued_at: NOW,
        }
        .sign(&alice)
        .unwrap();
        let objects: [(Object, &OperatorSecret); 3] = [
            (card.into(), &alice),
            (vouch.into(), &bob),
            (revocation.into(), &alice),
        ];
        for (object, signer) in objects {
            assert_eq!(
                claimed_signer(object.as_bytes()),
                Some(signer.operator_id().as_bytes()),
                "{}",
                object.kind()
            );
        }
        assert_eq!(claimed_signer(&[1; 32]), None);
    }

    #[test]
    fn tags_round_trip() {
        for kind in ObjectKind::ALL {
            assert_eq!(ObjectKind::from_tag(kind.tag()), Some(kind));
        }
        assert_eq!(ObjectKind::from_tag(0), None);
        assert_eq!(ObjectKind::from_tag(4), None);
        assert_eq!(ObjectKind::Revocation.to_string(), "revocation");
    }
}
