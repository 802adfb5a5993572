//! Card requests: a host card with its proof of possession, made on the
//! host, for its operator to sign somewhere else.
//!
//! [`HostCard::issue`] needs the operator's key and the host's WireGuard
//! key in one place. A request splits that in two, so neither key travels:
//! the host makes the request with its own key ([`HostCard::request`],
//! `sentrymesh card request`), the request goes to the operator (it holds
//! the card's endpoints, so not in the clear where they are private), and
//! the operator checks it and signs it ([`CardRequest::sign`], `sentrymesh
//! card sign`). The signed card is exactly the one `issue` would have made.
//!
//! The encoding is the signed card's without the signature: the card's
//! body, then the 64-byte proof. The printable form is armoured as
//! `sentrymesh-card-request v1`.

use std::fmt;

use rand_core::CryptoRngCore;
use sentrymesh_types::PrivateKey;

use super::{HostCard, MAX_CARD_LEN, ParseCardError, SignCardError, SignedCard};
use crate::armour::{self, ArmourKind};
use crate::codec::DecodeError;
use crate::identity::OperatorSecret;

/// A valid host card with a proof of possession that verifies under its
/// WireGuard key, not yet signed by its operator.
#[derive(Clone, PartialEq, Eq)]
pub struct CardRequest {
    card: HostCard,
    /// The card's body, then the 64-byte proof.
    encoded: Vec<u8>,
}

impl HostCard {
    /// Validates the card and proves with `host_key` (the host's WireGuard
    /// private key) that the host holds the key the card names, for the
    /// card's operator to sign with [`CardRequest::sign`].
    ///
    /// # Errors
    ///
    /// [`SignCardError::Invalid`] when the card is invalid;
    /// [`SignCardError::NotTheHostKey`] when `host_key` is not the private
    /// key of `self.wg_public_key`.
    pub fn request(
        &self,
        host_key: &PrivateKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<CardRequest, SignCardError> {
        self.validate()?;
        if host_key.public_key() != self.wg_public_key {
            return Err(SignCardError::NotTheHostKey {
                host: self.name.clone(),
            });
        }
        Ok(CardRequest {
            card: self.clone(),
            encoded: self.prove(host_key, rng),
        })
    }
}

impl CardRequest {
    /// The card asked for.
    pub fn card(&self) -> &HostCard {
        &self.card
    }

    /// The binary encoding: the card's body and its proof.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// The request in its binary encoding, checked: well-formed, valid, and
    /// with a proof that verifies under the card's WireGuard key.
    ///
    /// # Errors
    ///
    /// [`ParseCardError`] saying what is malformed or invalid, or that the
    /// proof does not verify.
    pub fn decode(bytes: &[u8]) -> Result<Self, ParseCardError> {
        if bytes.len() > MAX_CARD_LEN {
            return Err(DecodeError::TooLong {
                field: "card request",
                len: bytes.len(),
                max: MAX_CARD_LEN,
            }
            .into());
        }
        Ok(Self {
            card: HostCard::decode_proved(bytes)?,
            encoded: bytes.to_vec(),
        })
    }

    /// The printable form: `sentrymesh-card-request v1` and base64.
    pub fn to_text(&self) -> String {
        armour::encode(ArmourKind::CardRequest, &self.encoded)
    }

    /// The request in its printable form, checked as
    /// [`CardRequest::decode`] checks it.
    ///
    /// # Errors
    ///
    /// [`ParseCardError::Armour`] when the text is not an armoured card
    /// request, and the errors of [`CardRequest::decode`].
    pub fn from_text(text: &str) -> Result<Self, ParseCardError> {
        Self::decode(&armour::decode(ArmourKind::CardRequest, text)?)
    }

    /// Signs the requested card as its operator: the signed card carries
    /// the host's proof and the operator's signature over both.
    ///
    /// # Errors
    ///
    /// [`SignCardError::NotTheOperator`] when `operator` is not the key of
    /// the operator the card names.
    pub fn sign(&self, operator: &OperatorSecret) -> Result<SignedCard, SignCardError> {
        let signer = operator.operator_id();
        if signer != self.card.operator {
            return Err(SignCardError::NotTheOperator {
                host: self.card.name.clone(),
                card_operator: self.card.operator,
                signer,
            });
        }
        Ok(SignedCard::sign_proved(
            self.card.clone(),
            self.encoded.clone(),
            operator,
        ))
    }
}

impl fmt::Debug for CardRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardRequest")
            .field("card", &self.card)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::armour::ArmourError;
    use crate::role::Role;
    use crate::testing::{card, claim, operator, rng, secret_of};

    #[test]
    fn a_request_signed_elsewhere_is_the_card_issue_makes() {
        let alice = operator(1);
        let c = card(&alice, "sentry-1", Role::Sentry);
        let host_key = secret_of(&c.wg_public_key);
        // On the host: no operator key.
        let request = c.request(&host_key, &mut rng()).unwrap();
        assert_eq!(
            format!("{request:?}"),
            format!("CardRequest {{ card: {c:?}, .. }}")
        );
        let text = request.to_text();
        assert!(text.starts_with("sentrymesh-card-request v1\n"), "{text}");
        // On the operator's machine: no host key.
        let received = CardRequest::from_text(&text).unwrap();
        assert_eq!(received, request);
        let signed = received.sign(&alice).unwrap();
        assert_eq!(SignedCard::decode(signed.as_bytes()).unwrap(), signed);
        assert_eq!(signed, c.issue(&alice, &host_key, &mut rng()).unwrap());
        assert_eq!(
            received.sign(&operator(2)),
            Err(SignCardError::NotTheOperator {
                host: "sentry-1".into(),
                card_operator: alice.operator_id(),
                signer: operator(2).operator_id(),
            })
        );
    }

    #[test]
    fn a_request_without_a_valid_proof_is_refused() {
        let (alice, mallory) = (operator(1), operator(2));
        let c = card(&alice, "sentry-1", Role::Sentry);
        assert!(matches!(
            c.request(
                &secret_of(&card(&alice, "other", Role::Sentry).wg_public_key),
                &mut rng()
            ),
            Err(SignCardError::NotTheHostKey { .. })
        ));
        // Mallory's card for Alice's key, its signature cut off.
        let squat = claim(&mallory, "sentry-1", &c.wg_public_key);
        let bytes = &squat.as_bytes()[..squat.as_bytes().len() - 64];
        assert!(matches!(
            CardRequest::decode(bytes),
            Err(ParseCardError::BadProof { .. })
        ));
        // A signed card is not a request, nor a request a card.
        let signed = c
            .issue(&alice, &secret_of(&c.wg_public_key), &mut rng())
            .unwrap();
        assert!(matches!(
            CardRequest::from_text(&signed.to_text()),
            Err(ParseCardError::Armour(ArmourError::WrongKind { .. }))
        ));
        let request = c.request(&secret_of(&c.wg_public_key), &mut rng()).unwrap();
        assert!(matches!(
            SignedCard::from_text(&request.to_text()),
            Err(ParseCardError::Armour(ArmourError::WrongKind { .. }))
        ));
    }
}
