//! Operator identities: the Ed25519 key an operator signs with, its public
//! half that names the operator everywhere in the mesh, and the X25519 keys
//! derived from them to seal bundles.
//!
//! Every signature of this crate is domain-separated: the signed message is
//! one length byte, a context string naming the kind of object (such as
//! `sentrymesh signed card v1`), then the object's canonical encoding. A
//! signature made over one kind can therefore never be replayed as another.
//! Verification is strict ([`ed25519_dalek::VerifyingKey::verify_strict`]):
//! no low-order keys, no malleable signatures.
//!
//! The key file is one line of base64 of the 32-byte Ed25519 seed, like a
//! key from `wg genkey`. Because the two look alike, a seed that has the bit
//! pattern of a clamped X25519 key — which every WireGuard private key has
//! and one in 32 random seeds would — is never generated and is refused on
//! reading as "a WireGuard private key", so a mixed-up file is caught at once.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use sentrymesh_types::keys::decode_base64_key;
use zeroize::{Zeroize, Zeroizing};

/// Length of an operator id and of an operator key seed.
pub const OPERATOR_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub(crate) const SIGNATURE_LEN: usize = 64;
/// The longest key file text worth decoding; anything longer is not a key.
const MAX_KEY_FILE_LEN: usize = 4096;

/// The kinds of signed object, each signed under its own context string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Domain {
    Card,
    Bundle,
    Vouch,
    Revocation,
}

impl Domain {
    /// The context string prefixed to the signed bytes.
    const fn context(self) -> &'static [u8] {
        match self {
            Self::Card => b"sentrymesh signed card v1",
            Self::Bundle => b"sentrymesh sealed bundle v1",
            Self::Vouch => b"sentrymesh vouch v1",
            Self::Revocation => b"sentrymesh revocation v1",
        }
    }

    /// `len(context) || context || body`: the message actually signed.
    fn message(self, body: &[u8]) -> Vec<u8> {
        let context = self.context();
        let mut message = Vec::with_capacity(1 + context.len() + body.len());
        // Every context string above is shorter than 256 bytes.
        message.push(context.len() as u8);
        message.extend_from_slice(context);
        message.extend_from_slice(body);
        message
    }
}

/// A signature that does not verify under the key it was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadSignature;

/// Whether a signature field is all zeros: an object that was never signed.
pub(crate) fn is_blank_signature(signature: &[u8; SIGNATURE_LEN]) -> bool {
    signature.iter().all(|&b| b == 0)
}

/// Why a key file does not hold an operator key. The message never quotes
/// the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file holds nothing but whitespace.
    #[error("the operator key file is empty")]
    Empty,
    /// The file is not base64.
    #[error(
        "the operator key file is not an operator key: expected one line of base64 \
         (44 characters, as `sentrymesh operator new` writes)"
    )]
    NotBase64,
    /// Base64 of the wrong number of bytes.
    #[error(
        "the operator key file holds {len} bytes; an operator key is 32 bytes \
         (44 characters of base64)"
    )]
    WrongLength {
        /// The number of bytes the base64 decodes to.
        len: usize,
    },
    /// Thirty-two bytes with the bit pattern of an X25519 private key.
    #[error(
        "this looks like a WireGuard private key (as `wg genkey` makes), not a sentrymesh \
         operator key"
    )]
    WireGuardKey,
    /// A card, bundle, vouch or revocation instead of a key.
    #[error("this is a sentrymesh card, bundle, vouch or revocation, not an operator key file")]
    NotAKeyFile,
}

/// An operator's Ed25519 signing key. Zeroed on drop; `Debug` shows only the
/// public [`OperatorId`].
#[derive(Clone)]
pub struct OperatorSecret(SigningKey);

impl OperatorSecret {
    /// A new random key from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        loop {
            let key = SigningKey::generate(rng);
            if !looks_like_x25519_secret(key.as_bytes()) {
                return Self(key);
            }
        }
    }

    /// The key with this 32-byte seed; the caller's copy is zeroed.
    pub fn from_seed(mut seed: [u8; OPERATOR_KEY_LEN]) -> Self {
        let key = Self(SigningKey::from_bytes(&seed));
        seed.zeroize();
        key
    }

    /// The text of the key file: base64 of the seed and a newline. The file
    /// should be written with mode 0600.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(BASE64.encode(self.0.as_bytes()));
        text.push('\n');
        text
    }

    /// The key in a key file's text (surrounding whitespace is ignored).
    ///
    /// # Errors
    ///
    /// [`KeyFileError`] when the text is not base64 of a 32-byte seed, or is
    /// a WireGuard key or another sentrymesh file.
    pub fn from_text(text: &str) -> Result<Self, KeyFileError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyFileError::Empty);
        }
        if text.starts_with("sentrymesh-") {
            return Err(KeyFileError::NotAKeyFile);
        }
        if text.len() > MAX_KEY_FILE_LEN {
            return Err(KeyFileError::WrongLength {
                len: text.len() / 4 * 3,
            });
        }
        let bytes = Zeroizing::new(BASE64.decode(text).map_err(|_| KeyFileError::NotBase64)?);
        let seed: &[u8; OPERATOR_KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyFileError::WrongLength { len: bytes.len() })?;
        if looks_like_x25519_secret(seed) {
            return Err(KeyFileError::WireGuardKey);
        }
        Ok(Self(SigningKey::from_bytes(seed)))
    }

    /// The operator this key signs for.
    pub fn operator_id(&self) -> OperatorId {
        OperatorId(self.0.verifying_key().to_bytes())
    }

    /// Signs `body` in `domain`.
    pub(crate) fn sign(&self, domain: Domain, body: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(&domain.message(body)).to_bytes()
    }

    /// The X25519 secret matching [`OperatorId::x25519_public`], for opening
    /// bundles. Zeroed on drop.
    pub(crate) fn x25519_secret(&self) -> x25519_dalek::StaticSecret {
        let scalar = Zeroizing::new(self.0.to_scalar_bytes());
        x25519_dalek::StaticSecret::from(*scalar)
    }
}

impl fmt::Debug for OperatorSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorSecret")
            .field("operator", &self.operator_id())
            .finish_non_exhaustive()
    }
}

/// Whether 32 bytes have the bits X25519 clamping forces: the low three
/// bits clear, the top bit clear and the next one set.
fn looks_like_x25519_secret(bytes: &[u8; OPERATOR_KEY_LEN]) -> bool {
    bytes[0] & 0b111 == 0 && bytes[31] & 0b1100_0000 == 0b0100_0000
}

/// Why text or bytes are not an operator id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorIdError {
    /// Not 44 characters of base64 encoding 32 bytes.
    #[error("not an operator id: expected 44 characters of base64 encoding 32 bytes")]
    NotBase64Key,
    /// Thirty-two bytes that are not the canonical encoding of a point.
    #[error("not an operator id: the 32 bytes are not an Ed25519 public key")]
    NotAPoint,
    /// A low-order point, for which signatures mean nothing.
    #[error("not an operator id: a low-order Ed25519 key")]
    WeakKey,
}

/// The bytes of an operator id its short form shows: 6 bytes, 8 base64
/// characters without padding.
const SHORT_LEN: usize = 6;

/// An operator's public identity: its Ed25519 public key, always a
/// canonically encoded point of large order. Written like a WireGuard key,
/// as 44 characters of base64; ordered by its bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperatorId([u8; OPERATOR_KEY_LEN]);

impl OperatorId {
    /// The operator id with these bytes.
    ///
    /// # Errors
    ///
    /// [`OperatorIdError`] when the bytes are not a canonical Ed25519 public
    /// key of large order.
    pub fn from_bytes(bytes: &[u8; OPERATOR_KEY_LEN]) -> Result<Self, OperatorIdError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| OperatorIdError::NotAPoint)?;
        if VerifyingKey::from(key.to_edwards()).as_bytes() != bytes {
            return Err(OperatorIdError::NotAPoint);
        }
        if key.is_weak() {
            return Err(OperatorIdError::WeakKey);
        }
        Ok(Self(*bytes))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; OPERATOR_KEY_LEN] {
        &self.0
    }

    /// The short form for logs and tables: the first 8 characters of the
    /// id's text (its first 6 bytes), enough to tell operators apart by
    /// eye; never to name one in trust settings, which take the whole id.
    pub fn short(&self) -> String {
        BASE64.encode(&self.0[..SHORT_LEN])
    }

    /// The Ed25519 key.
    fn verifying_key(&self) -> VerifyingKey {
        // Invariant: an `OperatorId` is made only from bytes `from_bytes`
        // checked to decompress, or from a signing key's public half.
        VerifyingKey::from_bytes(&self.0).expect("operator id checked to be a valid point")
    }

    /// Checks a signature made in `domain` over `body`.
    pub(crate) fn verify(
        &self,
        domain: Domain,
        body: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), BadSignature> {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.verifying_key()
            .verify_strict(&domain.message(body), &signature)
            .map_err(|_| BadSignature)
    }

    /// The X25519 public key bundles are sealed to (the birational map of
    /// the Ed25519 key to Montgomery form).
    pub(crate) fn x25519_public(&self) -> x25519_dalek::PublicKey {
        x25519_dalek::PublicKey::from(self.verifying_key().to_montgomery().to_bytes())
    }
}

impl FromStr for OperatorId {
    type Err = OperatorIdError;

    fn from_str(text: &str) -> Result<Self, OperatorIdError> {
        let bytes = *decode_base64_key(text).map_err(|_| OperatorIdError::NotBase64Key)?;
        Self::from_bytes(&bytes)
    }
}

impl fmt::Display for OperatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE64.encode(self.as_bytes()))
    }
}

impl fmt::Debug for OperatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OperatorId({self})")
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(7)
    }

    // RFC 8032, test 1.
    const RFC8032_SEED: [u8; 32] = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ];
    const RFC8032_PUBLIC: [u8; 32] = [
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07,
        0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07,
        0x51, 0x1a,
    ];

    #[test]
    fn known_key_and_its_id() {
        let secret = OperatorSecret::from_seed(RFC8032_SEED);
        assert_eq!(secret.operator_id().as_bytes(), &RFC8032_PUBLIC);
        let text = secret.operator_id().to_string();
        assert_eq!(text, "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
        assert_eq!(text.parse::<OperatorId>().unwrap(), secret.operator_id());
    }

    #[test]
    fn the_short_form_begins_the_id() {
        let id = OperatorSecret::from_seed(RFC8032_SEED).operator_id();
        assert_eq!(id.short(), "11qYAYKx");
        assert!(id.to_string().starts_with(&id.short()));
    }

    #[test]
    fn key_file_round_trip() {
        let secret = OperatorSecret::generate(&mut rng());
        let text = secret.to_text();
        assert_eq!(text.len(), 45);
        assert!(text.ends_with('\n'));
        let again = OperatorSecret::from_text(&format!("  {}\r\n", text.trim())).unwrap();
        assert_eq!(again.operator_id(), secret.operator_id());
    }

    #[test]
    fn wrong_key_files_are_named() {
        assert_eq!(
            OperatorSecret::from_text(" \n").unwrap_err(),
            KeyFileError::Empty
        );
        assert_eq!(
            OperatorSecret::from_text("not a key at all").unwrap_err(),
            KeyFileError::NotBase64
        );
        assert_eq!(
            OperatorSecret::from_text("AAAA").unwrap_err(),
            KeyFileError::WrongLength { len: 3 }
        );
        assert_eq!(
            OperatorSecret::from_text(&BASE64.encode([1u8; 64])).unwrap_err(),
            KeyFileError::WrongLength { len: 64 }
        );
        // The example private key of wg(8).
        assert_eq!(
            OperatorSecret::from_text("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=").unwrap_err(),
            KeyFileError::WireGuardKey
        );
        assert_eq!(
            OperatorSecret::from_text("sentrymesh-card v1\nAAAA").unwrap_err(),
            KeyFileError::NotAKeyFile
        );
    }

    #[test]
    fn generated_keys_never_look_like_wireguard_keys() {
        let mut rng = rng();
        for _ in 0..200 {
            let secret = OperatorSecret::generate(&mut rng);
            assert!(OperatorSecret::from_text(&secret.to_text()).is_ok());
        }
    }

    #[test]
    fn debug_hides_the_seed() {
        let secret = OperatorSecret::from_seed(RFC8032_SEED);
        let printed = format!("{secret:?}");
        let seed_text = BASE64.encode(RFC8032_SEED);
        assert!(!printed.contains(&seed_text), "{printed}");
        assert!(
            printed.contains(&secret.operator_id().to_string()),
            "{printed}"
        );
    }

    #[test]
    fn signatures_are_domain_separated() {
        let secret = OperatorSecret::generate(&mut rng());
        let id = secret.operator_id();
        let signature = secret.sign(Domain::Card, b"body");
        assert_eq!(id.verify(Domain::Card, b"body", &signature), Ok(()));
        assert_eq!(
            id.verify(Domain::Vouch, b"body", &signature),
            Err(BadSignature)
        );
        assert_eq!(
            id.verify(Domain::Card, b"bodY", &signature),
            Err(BadSignature)
        );
        let other = OperatorSecret::generate(&mut rng()).operator_id();
        let other = if other == id {
            OperatorSecret::from_seed(RFC8032_SEED).operator_id()
        } else {
            other
        };
        assert_eq!(
            other.verify(Domain::Card, b"body", &signature),
            Err(BadSignature)
        );
        assert!(is_blank_signature(&[0; 64]));
        assert!(!is_blank_signature(&signature));
    }

    #[test]
    fn x25519_keys_match() {
        let secret = OperatorSecret::generate(&mut rng());
        let public = x25519_dalek::PublicKey::from(&secret.x25519_secret());
        assert_eq!(public, secret.operator_id().x25519_public());
    }

    #[test]
    fn bad_operator_ids_are_refused() {
        assert_eq!(
            "abc".parse::<OperatorId>(),
            Err(OperatorIdError::NotBase64Key)
        );
        // The identity point: canonical, but of order one.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            OperatorId::from_bytes(&identity),
            Err(OperatorIdError::WeakKey)
        );
        // y = p + 1 (a non-canonical encoding of the identity's y = 1).
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert_eq!(
            OperatorId::from_bytes(&non_canonical),
            Err(OperatorIdError::NotAPoint)
        );
        // Not on the curve: y = 2 has no x.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert_eq!(
            OperatorId::from_bytes(&off_curve),
            Err(OperatorIdError::NotAPoint)
        );
    }

    #[test]
    fn ids_order_by_bytes() {
        let mut rng = rng();
        let mut ids: Vec<OperatorId> = (0..8)
            .map(|_| OperatorSecret::generate(&mut rng).operator_id())
            .collect();
        ids.sort();
        assert!(ids.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()));
    }
}
