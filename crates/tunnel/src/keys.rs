//! The keys an operator handles: the interface's private key, peers' public
//! keys and optional preshared keys, in WireGuard's base64 text form.
//!
//! `Debug` never shows secret material: a private or preshared key prints as
//! `PrivateKey(..)` / `PresharedKey(..)`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::x25519::{DhPublic, SecretKey};

/// Length in bytes of every WireGuard key.
pub const KEY_LEN: usize = 32;

/// Text that is not a base64-encoded 32-byte key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a WireGuard key: expected 44 characters of base64 encoding 32 bytes")]
pub struct KeyParseError;

fn decode_key(text: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyParseError> {
    let text = text.trim();
    // 32 bytes are 44 base64 characters with one '=' of padding.
    if text.len() != 44 {
        return Err(KeyParseError);
    }
    let mut out = Zeroizing::new([0u8; KEY_LEN + 1]);
    let len = BASE64
        .decode_slice(text, out.as_mut_slice())
        .map_err(|_| KeyParseError)?;
    if len != KEY_LEN {
        return Err(KeyParseError);
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&out[..KEY_LEN]);
    Ok(key)
}

/// A Curve25519 private key: the static identity of an interface.
#[derive(Clone)]
pub struct PrivateKey(SecretKey);

impl PrivateKey {
    /// A new random key from `rng`, clamped (RFC 7748) as `wg genkey`
    /// writes keys, so a key file looks the same whichever tool made it.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(bytes.as_mut_slice());
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        Self(SecretKey::from_bytes(*bytes))
    }

    /// The key with these bytes (clamped when used, as X25519 specifies).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(SecretKey::from_bytes(bytes))
    }

    /// The raw bytes, zeroed when the returned value is dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(*self.0.as_bytes())
    }

    /// The base64 text form, as `wg genkey` prints it.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE64.encode(*self.to_bytes()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.public_key())
    }

    pub(crate) fn secret(&self) -> &SecretKey {
        &self.0
    }
}

impl FromStr for PrivateKey {
    type Err = KeyParseError;

    fn from_str(text: &str) -> Result<Self, KeyParseError> {
        decode_key(text).map(|bytes| Self::from_bytes(*bytes))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

/// A Curve25519 public key: a peer's identity.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// The key with these bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key prepared for Diffie-Hellman.
    pub(crate) fn to_dh(self) -> DhPublic {
        DhPublic::new(self.0)
    }
}

impl FromStr for PublicKey {
    type Err = KeyParseError;

    fn from_str(text: &str) -> Result<Self, KeyParseError> {
        decode_key(text).map(|bytes| Self(*bytes))
    }
}

impl fmt::Display for PublicKey {
    /// The base64 text form, as `wg pubkey` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE64.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// A symmetric key mixed into the handshake for post-quantum resistance; all
/// zeros when a peer has none, as the protocol specifies.
#[derive(Clone, PartialEq, Eq)]
pub struct PresharedKey(Zeroizing<[u8; KEY_LEN]>);

impl PresharedKey {
    /// A new random key from `rng`, as `wg genpsk` makes one.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(key.as_mut_slice());
        Self(key)
    }

    /// The key with these bytes; the caller's copy is zeroed.
    pub fn from_bytes(mut bytes: [u8; KEY_LEN]) -> Self {
        let key = Self(Zeroizing::new(bytes));
        bytes.zeroize();
        key
    }

    /// The all-zero key used when a peer has no preshared key.
    pub fn none() -> Self {
        Self(Zeroizing::new([0u8; KEY_LEN]))
    }

    /// Whether this is the all-zero "no preshared key" value.
    pub fn is_none(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The base64 text form.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE64.encode(*self.0))
    }
}

impl Default for PresharedKey {
    fn default() -> Self {
        Self::none()
    }
}

impl FromStr for PresharedKey {
    type Err = KeyParseError;

    fn from_str(text: &str) -> Result<Self, KeyParseError> {
        decode_key(text).map(Self)
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;

    use super::*;

    // The example key of wg(8); its public key as `wg pubkey` prints it.
    const PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const PUBLIC: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

    #[test]
    fn public_key_of_a_known_private_key() {
        let private: PrivateKey = PRIVATE.parse().unwrap();
        assert_eq!(private.public_key().to_string(), PUBLIC);
        assert_eq!(*private.to_base64(), PRIVATE);
    }

    #[test]
    fn generated_keys_are_clamped_as_wg_genkey_writes_them() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for _ in 0..64 {
            let bytes = PrivateKey::generate(&mut rng).to_bytes();
            assert_eq!(bytes[0] & 7, 0);
            assert_eq!(bytes[31] & 0xc0, 0x40);
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let private: PrivateKey = PRIVATE.parse().unwrap();
        let psk = PresharedKey::from_bytes([7; 32]);
        let printed = format!("{private:?} {psk:?}");
        assert!(!printed.contains(PRIVATE));
        assert!(!printed.contains(&*psk.to_base64()));
        assert_eq!(printed, "PrivateKey(..) PresharedKey(..)");
    }

    #[test]
    fn malformed_keys_are_refused() {
        for text in [
            "",
            "abc",
            &PUBLIC[..43],
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=",
            &format!("{PUBLIC}A"),
        ] {
            assert_eq!(text.parse::<PublicKey>(), Err(KeyParseError), "{text:?}");
        }
    }
}
