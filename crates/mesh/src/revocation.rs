//! Revocations: an operator's signed withdrawal of one of its host keys or
//! of one of its vouches.
//!
//! A host revocation counts only when signed by the operator of the host's
//! card, and it is permanent: a revoked host key stays revoked, whatever
//! cards with whatever serials follow. A vouch revocation withdraws the
//! issuer's vouches for the target issued at or before the revocation; a
//! later vouch stands again.
//!
//! Encoding after the format version: issuer id (32), target kind (1: host,
//! 2: vouch), target key (32: a WireGuard key or an operator id),
//! `issued_at` (`u64`), then the issuer's 64-byte signature.

use std::fmt;

use sentrymesh_types::{PublicKey, UnixTime};

use crate::armour::{self, ArmourKind};
use crate::card::HostCard;
use crate::codec::DecodeError;
use crate::identity::{OperatorId, OperatorSecret};
use crate::statement::{self, ParseStatementError, SignStatementError, StatementKind};

const KIND: StatementKind = StatementKind::Revocation;

/// What a revocation withdraws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RevocationTarget {
    /// A host, by its WireGuard key: retired for good.
    Host(PublicKey),
    /// The issuer's vouch for this operator.
    Vouch(OperatorId),
}

impl fmt::Display for RevocationTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Host(key) => write!(f, "host key {key}"),
            Self::Vouch(operator) => write!(f, "vouch for operator {operator}"),
        }
    }
}

/// "Operator `issuer` withdraws `target`", as of `issued_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revocation {
    /// The operator revoking, who signs.
    pub issuer: OperatorId,
    /// What is revoked.
    pub target: RevocationTarget,
    /// When (Unix seconds).
    pub issued_at: UnixTime,
}

/// A revocation with a signature that verifies under its issuer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedRevocation {
    revocation: Revocation,
    encoded: Vec<u8>,
}

impl Revocation {
    /// Signs the revocation with the issuer's key.
    ///
    /// # Errors
    ///
    /// [`SignStatementError::NotTheSigner`] when `secret` is not the
    /// issuer's key.
    pub fn sign(&self, secret: &OperatorSecret) -> Result<SignedRevocation, SignStatementError> {
        let encoded = statement::sign(KIND, self.issuer, secret, |w| {
            w.array(self.issuer.as_bytes());
            match &self.target {
                RevocationTarget::Host(key) => {
                    w.u8(1);
                    w.array(key.as_bytes());
                }
                RevocationTarget::Vouch(operator) => {
                    w.u8(2);
                    w.array(operator.as_bytes());
                }
            }
            w.time(self.issued_at);
        })?;
        Ok(SignedRevocation {
            revocation: *self,
            encoded,
        })
    }
}

impl SignedRevocation {
    /// The revocation.
    pub fn revocation(&self) -> &Revocation {
        &self.revocation
    }

    /// Whether this revokes `card`'s host: it targets the card's WireGuard
    /// key and was issued by the card's own operator. (Anyone else's
    /// revocation of a host is ignored.)
    pub fn revokes_host(&self, card: &HostCard) -> bool {
        self.revocation.target == RevocationTarget::Host(card.wg_public_key)
            && self.revocation.issuer == card.operator
    }

    /// The binary encoding, signature included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// A revocation in its binary encoding, its issuer's signature checked.
    ///
    /// # Errors
    ///
    /// [`ParseStatementError`]: malformed, unsigned, or a signature that
    /// does not verify.
    pub fn decode(bytes: &[u8]) -> Result<Self, ParseStatementError> {
        let revocation = statement::verify(KIND, bytes, |r| {
            let issuer = statement::operator_id(KIND, r, "issuer operator id")?;
            let target = match r.u8("revocation target").map_err(|e| KIND.malformed(e))? {
                1 => RevocationTarget::Host(PublicKey::from_bytes(
                    r.array("revoked host key").map_err(|e| KIND.malformed(e))?,
                )),
                2 => RevocationTarget::Vouch(statement::operator_id(
                    KIND,
                    r,
                    "operator of the revoked vouch",
                )?),
                tag => {
                    return Err(KIND.malformed(DecodeError::BadValue {
                        field: "revocation target",
                        value: tag.into(),
                    }));
                }
            };
            let issued_at = r.time("issue time").map_err(|e| KIND.malformed(e))?;
            Ok((
                Revocation {
                    issuer,
                    target,
                    issued_at,
                },
                issuer,
            ))
        })?;
        Ok(Self {
            revocation,
            encoded: bytes.to_vec(),
        })
    }

    /// The printable form: `sentrymesh-revocation v1` and base64.
    pub fn to_text(&self) -> String {
        armour::encode(ArmourKind::Revocation, &self.encoded)
    }

    /// A revocation in its printable form, checked as
    /// [`SignedRevocation::decode`] checks it.
    ///
    /// # Errors
    ///
    /// [`ParseStatementError::Armour`] when the text is not an armoured
    /// revocation, and the errors of [`SignedRevocation::decode`].
    pub fn from_text(text: &str) -> Result<Self, ParseStatementError> {
        Self::decode(&armour::decode(ArmourKind::Revocation, text)?)
    }
}

/// Whether any of `revocations` revokes `card`'s host (see
/// [`SignedRevocation::revokes_host`]). A host revocation is a tombstone: it
/// applies to every card for that key from that operator, older or newer.
pub fn is_host_revoked<'a>(
    card: &HostCard,
    revocations: impl IntoIterator<Item = &'a SignedRevocation>,
) -> bool {
    revocations.into_iter().any(|r| r.revokes_host(card))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Domain;
    use crate::role::Role;
    use crate::testing::{NOW, card, operator};

    #[test]
    fn sign_and_read_back_both_kinds() {
        let (alice, bob) = (operator(1), operator(2));
        let host = card(&alice, "sentry-1", Role::Sentry);
        for target in [
            RevocationTarget::Host(host.wg_public_key),
            RevocationTarget::Vouch(bob.operator_id()),
        ] {
            let revocation = Revocation {
                issuer: alice.operator_id(),
                target,
                issued_at: NOW,
            };
            let signed = revocation.sign(&alice).unwrap();
            assert_eq!(signed.as_bytes().len(), 1 + 32 + 1 + 32 + 8 + 64);
            assert_eq!(SignedRevocation::decode(signed.as_bytes()).unwrap(), signed);
            let text = signed.to_text();
            assert!(text.starts_with("sentrymesh-revocation v1\n"));
            assert_eq!(SignedRevocation::from_text(&text).unwrap(), signed);
            assert_eq!(signed.revocation(), &revocation);
        }
        assert!(matches!(
            Revocation {
                issuer: alice.operator_id(),
                target: RevocationTarget::Vouch(bob.operator_id()),
                issued_at: NOW,
            }
            .sign(&bob),
            Err(SignStatementError::NotTheSigner {
                kind: "revocation",
                ..
            })
        ));
    }

    #[test]
    fn only_the_hosts_operator_revokes_it_and_for_good() {
        let (alice, mallory) = (operator(1), operator(4));
        let mut host = card(&alice, "sentry-1", Role::Sentry);
        let by = |op: &OperatorSecret| {
            Revocation {
                issuer: op.operator_id(),
                target: RevocationTarget::Host(host.wg_public_key),
                issued_at: NOW,
            }
            .sign(op)
            .unwrap()
        };
        let (own, foreign) = (by(&alice), by(&mallory));
        assert!(own.revokes_host(&host));
        assert!(!foreign.revokes_host(&host));
        assert!(!is_host_revoked(&host, [&foreign]));
        assert!(is_host_revoked(&host, [&foreign, &own]));
        // A newer card for the same key, issued after the revocation.
        host.serial += 10;
        host.not_before = NOW + 86_400;
        assert!(is_host_revoked(&host, [&own]));
        // Another key of the same operator is untouched.
        host.wg_public_key = crate::testing::wg_key([5; 32]);
        assert!(!is_host_revoked(&host, [&own]));
    }

    #[test]
    fn forged_and_malformed_revocations_are_refused() {
        let (alice, mallory) = (operator(1), operator(4));
        let signed = Revocation {
            issuer: alice.operator_id(),
            target: RevocationTarget::Host(PublicKey::from_bytes([3; 32])),
            issued_at: NOW,
        }
        .sign(&alice)
        .unwrap();
        let mut bytes = signed.as_bytes().to_vec();
        let body_len = bytes.len() - 64;
        let forged = mallory.sign(Domain::Revocation, &bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&forged);
        assert_eq!(
            SignedRevocation::decode(&bytes),
            Err(ParseStatementError::BadSignature {
                kind: "revocation",
                signer: alice.operator_id()
            })
        );
        let mut bytes = signed.as_bytes().to_vec();
        bytes[33] = 3;
        assert!(matches!(
            SignedRevocation::decode(&bytes),
            Err(ParseStatementError::Malformed {
                source: DecodeError::BadValue { value: 3, .. },
                ..
            })
        ));
        assert!(matches!(
            SignedRevocation::from_text(&signed.to_text().replace("revocation", "vouch")),
            Err(ParseStatementError::Armour(_))
        ));
    }

    #[test]
    fn targets_are_shown_plainly() {
        let bob = operator(2).operator_id();
        assert_eq!(
            RevocationTarget::Vouch(bob).to_string(),
            format!("vouch for operator {bob}")
        );
    }
}
