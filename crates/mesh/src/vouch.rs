//! Vouches: one operator's signed word that it trusts another, and the
//! overlay range it allocates to it.
//!
//! Encoding after the format version: voucher id (32), subject id (32), the
//! overlay range (family byte 4 or 6, the address, the prefix length),
//! `issued_at` (`u64`), then the voucher's 64-byte signature.
//!
//! The range is part of what the voucher signs, so it is the voucher's word
//! too: a host admits an operator by vouches only with a range that `k` of
//! its directly trusted operators name alike (see [`crate::TrustPolicy`]),
//! and refuses every card of that operator that claims anything outside it.

use sentrymesh_types::{IpNet, UnixTime};

use crate::armour::{self, ArmourKind};
use crate::identity::{OperatorId, OperatorSecret};
use crate::statement::{self, ParseStatementError, SignStatementError, StatementKind};

const KIND: StatementKind = StatementKind::Vouch;

/// "Operator `voucher` trusts operator `subject`", as of `issued_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vouch {
    /// The operator vouching, who signs.
    pub voucher: OperatorId,
    /// The operator vouched for.
    pub subject: OperatorId,
    /// The overlay range the voucher allocates to the subject: a network
    /// (no host bits), inside which the subject's cards must keep every
    /// address and allowed IP.
    pub overlay: IpNet,
    /// When the vouch was made (Unix seconds); a later withdrawal of it
    /// overrides it, a later vouch overrides the withdrawal.
    pub issued_at: UnixTime,
}

/// A vouch with a signature that verifies under its voucher.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedVouch {
    vouch: Vouch,
    encoded: Vec<u8>,
}

impl Vouch {
    /// Signs the vouch with the voucher's key.
    ///
    /// # Errors
    ///
    /// [`SignStatementError::NotTheSigner`] when `secret` is not the
    /// voucher's key; [`SignStatementError::SelfVouch`] when the voucher is
    /// the subject.
    pub fn sign(&self, secret: &OperatorSecret) -> Result<SignedVouch, SignStatementError> {
        if self.voucher == self.subject {
            return Err(SignStatementError::SelfVouch {
                operator: self.voucher,
            });
        }
        let encoded = statement::sign(KIND, self.voucher, secret, |w| {
            w.array(self.voucher.as_bytes());
            w.array(self.subject.as_bytes());
            w.ip_net(&self.overlay);
            w.time(self.issued_at);
        })?;
        Ok(SignedVouch {
            vouch: *self,
            encoded,
        })
    }
}

impl SignedVouch {
    /// The vouch.
    pub fn vouch(&self) -> &Vouch {
        &self.vouch
    }

    /// The binary encoding, signature included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// A vouch in its binary encoding, its voucher's signature checked.
    ///
    /// # Errors
    ///
    /// [`ParseStatementError`]: malformed (a range with host bits among
    /// them), a self-vouch, unsigned, or a signature that does not verify.
    pub fn decode(bytes: &[u8]) -> Result<Self, ParseStatementError> {
        let vouch = statement::verify(KIND, bytes, |r| {
            let voucher = statement::operator_id(KIND, r, "voucher operator id")?;
            let subject = statement::operator_id(KIND, r, "subject operator id")?;
            let overlay = r.ip_net("overlay range").map_err(|e| KIND.malformed(e))?;
            let issued_at = r.time("issue time").map_err(|e| KIND.malformed(e))?;
            if voucher == subject {
                return Err(ParseStatementError::SelfVouch { operator: voucher });
            }
            Ok((
                Vouch {
                    voucher,
                    subject,
                    overlay,
                    issued_at,
                },
                voucher,
            ))
        })?;
        Ok(Self {
            vouch,
            encoded: bytes.to_vec(),
        })
    }

    /// The printable form: `sentrymesh-vouch v1` and base64.
    pub fn to_text(&self) -> String {
        armour::encode(ArmourKind::Vouch, &self.encoded)
    }

    /// A vouch in its printable form, checked as [`SignedVouch::decode`]
    /// checks it.
    ///
    /// # Errors
    ///
    /// [`ParseStatementError::Armour`] when the text is not an armoured
    /// vouch, and the errors of [`SignedVouch::decode`].
    pub fn from_text(text: &str) -> Result<Self, ParseStatementError> {
        Self::decode(&armour::decode(ArmourKind::Vouch, text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::DecodeError;
    use crate::identity::Domain;
    use crate::testing::{NOW, operator};

    fn vouch(voucher: &OperatorSecret, subject: &OperatorSecret) -> Vouch {
        Vouch {
            voucher: voucher.operator_id(),
            subject: subject.operator_id(),
            overlay: "198.19.2.0/24".parse().unwrap(),
            issued_at: NOW,
        }
    }

    #[test]
    fn sign_and_read_back() {
        let (alice, bob) = (operator(1), operator(2));
        let signed = vouch(&alice, &bob).sign(&alice).unwrap();
        assert_eq!(signed.as_bytes().len(), 1 + 32 + 32 + 6 + 8 + 64);
        assert_eq!(SignedVouch::decode(signed.as_bytes()).unwrap(), signed);
        let text = signed.to_text();
        assert!(text.starts_with("sentrymesh-vouch v1\n"));
        assert_eq!(SignedVouch::from_text(&text).unwrap(), signed);
        assert_eq!(signed.vouch(), &vouch(&alice, &bob));
    }

    #[test]
    fn only_the_voucher_signs_and_not_for_itself() {
        let (alice, bob) = (operator(1), operator(2));
        assert!(matches!(
            vouch(&alice, &bob).sign(&bob),
            Err(SignStatementError::NotTheSigner { kind: "vouch", .. })
        ));
        assert_eq!(
            vouch(&alice, &alice).sign(&alice),
            Err(SignStatementError::SelfVouch {
                operator: alice.operator_id()
            })
        );
    }

    #[test]
    fn forged_vouches_are_refused() {
        let (alice, bob, mallory) = (operator(1), operator(2), operator(4));
        let signed = vouch(&alice, &bob).sign(&alice).unwrap();
        let mut bytes = signed.as_bytes().to_vec();
        let body_len = bytes.len() - 64;
        // Mallory signs a vouch that names Alice as the voucher.
        let forged = mallory.sign(Domain::Vouch, &bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&forged);
        let err = SignedVouch::decode(&bytes).unwrap_err();
        assert_eq!(
            err,
            ParseStatementError::BadSignature {
                kind: "vouch",
                signer: alice.operator_id()
            }
        );
        assert!(
            err.to_string()
                .starts_with("signature does not verify: the vouch was altered")
        );
        // A card signature over the same bytes is no vouch signature.
        let cross = alice.sign(Domain::Card, &bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&cross);
        assert!(matches!(
            SignedVouch::decode(&bytes),
            Err(ParseStatementError::BadSignature { .. })
        ));
        bytes[body_len..].fill(0);
        assert!(matches!(
            SignedVouch::decode(&bytes),
            Err(ParseStatementError::Unsigned { kind: "vouch", .. })
        ));
        assert!(matches!(
            SignedVouch::decode(&bytes[..50]),
            Err(ParseStatementError::Malformed { kind: "vouch", .. })
        ));
    }

    #[test]
    fn a_self_vouch_is_refused_even_when_signed() {
        let alice = operator(1);
        let mut body = vec![1];
        body.extend_from_slice(alice.operator_id().as_bytes());
        body.extend_from_slice(alice.operator_id().as_bytes());
        body.extend_from_slice(&[4, 198, 19, 2, 0, 24]);
        body.extend_from_slice(&NOW.0.to_be_bytes());
        let signature = alice.sign(Domain::Vouch, &body);
        body.extend_from_slice(&signature);
        assert_eq!(
            SignedVouch::decode(&body),
            Err(ParseStatementError::SelfVouch {
                operator: alice.operator_id()
            })
        );
    }

    #[test]
    fn a_range_with_host_bits_is_refused_even_when_signed() {
        let (alice, bob) = (operator(1), operator(2));
        let mut body = vec![1];
        body.extend_from_slice(alice.operator_id().as_bytes());
        body.extend_from_slice(bob.operator_id().as_bytes());
        body.extend_from_slice(&[4, 198, 19, 2, 1, 24]);
        body.extend_from_slice(&NOW.0.to_be_bytes());
        let signature = alice.sign(Domain::Vouch, &body);
        body.extend_from_slice(&signature);
        assert_eq!(
            SignedVouch::decode(&body),
            Err(ParseStatementError::Malformed {
                kind: "vouch",
                source: DecodeError::Invalid {
                    field: "overlay range",
                    reason: "host bits set"
                }
            })
        );
    }
}
