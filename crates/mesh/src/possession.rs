//! The proof of possession on a host card: an XEdDSA signature by the
//! host's WireGuard private key, which shows that whoever issued the card
//! holds the key it names.
//!
//! Without it an admitted operator could sign a card for another
//! operator's WireGuard key; the hosts that saw that card first would keep
//! it and refuse the real one. With it, only a holder of the private key
//! can put the key on a card.
//!
//! The signed message binds three things, so a proof cannot be lifted into
//! another card or another operator's card:
//!
//! ```text
//! u8  length of the context, then the context "sentrymesh card proof of possession v1"
//! 32  the operator id the card names
//! ..  the card's body: format version and every field, exactly as encoded
//! ```
//!
//! (The body starts with the operator id too; naming it first again keeps
//! the binding explicit whatever the body's layout becomes.) The operator's
//! Ed25519 signature then covers the body *and* the proof: the signed card
//! is one object, and its [`crate::ObjectId`] names both.
//!
//! XEdDSA, not a second key: a WireGuard key is an X25519 key, and XEdDSA
//! (Signal's construction, [`crate::xeddsa`]) signs with exactly that key,
//! so `card issue` needs only the key file the host already has. A key on
//! the twist of Curve25519 has no Edwards point, and a key of low order is
//! refused, so neither can carry a valid proof.

use rand_core::CryptoRngCore;
use sentrymesh_types::{PrivateKey, PublicKey};

use crate::identity::OperatorId;
use crate::xeddsa;

/// Length of a proof of possession.
pub(crate) const PROOF_LEN: usize = xeddsa::SIGNATURE_LEN;

/// What the proof's message starts with, after its length byte.
const CONTEXT: &[u8] = b"sentrymesh card proof of possession v1";

/// A proof, by the holder of `key`, that the card `body` of `operator`
/// names its public key.
pub(crate) fn prove(
    key: &PrivateKey,
    operator: &OperatorId,
    body: &[u8],
    rng: &mut impl CryptoRngCore,
) -> [u8; PROOF_LEN] {
    xeddsa::sign(&key.to_bytes(), &message(operator, body), rng)
}

/// Whether `proof` was made by the holder of `key` over `operator`'s card
/// `body`.
pub(crate) fn verify(
    key: &PublicKey,
    operator: &OperatorId,
    body: &[u8],
    proof: &[u8; PROOF_LEN],
) -> bool {
    xeddsa::verify(key.as_bytes(), &message(operator, body), proof)
}

/// `len(context) || context || operator id || body`.
fn message(operator: &OperatorId, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(1 + CONTEXT.len() + 32 + body.len());
    // The context is 38 bytes.
    message.push(CONTEXT.len() as u8);
    message.extend_from_slice(CONTEXT);
    message.extend_from_slice(operator.as_bytes());
    message.extend_from_slice(body);
    message
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::testing::operator;

    #[test]
    fn a_proof_holds_only_for_its_key_operator_and_body() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let (key, other_key) = (
            PrivateKey::from_bytes([7; 32]),
            PrivateKey::from_bytes([8; 32]),
        );
        let (alice, mallory) = (operator(1).operator_id(), operator(2).operator_id());
        let proof = prove(&key, &alice, b"body", &mut rng);
        assert!(verify(&key.public_key(), &alice, b"body", &proof));
        assert!(!verify(&other_key.public_key(), &alice, b"body", &proof));
        assert!(!verify(&key.public_key(), &mallory, b"body", &proof));
        assert!(!verify(&key.public_key(), &alice, b"bodz", &proof));
        // Another domain's message over the same bytes: a bare XEdDSA
        // signature of the body is not a proof.
        let bare = xeddsa::sign(&key.to_bytes(), b"body", &mut rng);
        assert!(!verify(&key.public_key(), &alice, b"body", &bare));
    }
}
