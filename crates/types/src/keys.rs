//! A host's WireGuard (X25519) keys: the public key its tunnel peers know
//! it by and its cards name, and the private key that runs its handshakes
//! and proves, on a card, that the host holds the public one. Both are
//! written as 44 characters of base64, as `wg genkey` and `wg pubkey` print
//! them.
//!
//! A public key is *usable* ([`PublicKey::defect`]) when it is a canonical
//! u-coordinate (below `p = 2^255 - 19`) of a point that is not of low
//! order. The eight low-order points of Curve25519 and those of its twist
//! (u = 0, 1, -1 and the two u of order 8) make every X25519 result with
//! them zero, the all-zero key included: a tunnel refuses them, and a card
//! naming one would stop every host that tried to peer with it. Parsing
//! does not refuse them — `wg` takes them, and the tunnel refuses the
//! handshake — so the mesh checks [`PublicKey::defect`] where a card is
//! validated.
//!
//! `Debug` of a [`PrivateKey`] prints `PrivateKey(..)`, nothing of the key
//! and not even its public half: the tunnel's rule, the stricter of the
//! two the crates had (the mesh printed the public key). A hidden host's
//! public key is its identity on the mesh, and a private key is logged by
//! mistake far more often than on purpose. A [`PublicKey`] prints in full
//! in `Debug` and `Display`, as both crates did: it is what `wg show`
//! prints, and what must not leak — a hidden host's key to the path — is
//! kept out of logs where it is used, not by hiding it from the operator.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use curve25519_dalek::{EdwardsPoint, MontgomeryPoint, Scalar};
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

/// Length in bytes of every WireGuard key.
pub const KEY_LEN: usize = 32;

/// Text that is not a base64-encoded 32-byte key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a WireGuard key: expected 44 characters of base64 encoding 32 bytes")]
pub struct KeyParseError;

/// The 32 bytes of a key written in base64 (surrounding white space
/// ignored), zeroed when dropped: the one parser of every key text, public
/// or secret.
///
/// # Errors
///
/// [`KeyParseError`] when the text is not 44 characters of base64 that
/// encode 32 bytes.
pub fn decode_base64_key(text: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyParseError> {
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

/// A WireGuard (X25519) public key: a u-coordinate on Curve25519.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

/// Why a public key cannot be a WireGuard peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDefect {
    /// All zeros: no key at all.
    Zero,
    /// Not below `p`: an encoding X25519 would silently reduce.
    NonCanonical,
    /// A point of low order: every shared secret with it is zero.
    LowOrder,
}

impl PublicKey {
    /// The key with these bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Whether the bytes are below `p = 2^255 - 19`: the one encoding of a
    /// field element.
    pub fn is_canonical(&self) -> bool {
        let u = &self.0;
        // u ≥ p exactly when the top bit is set, or when u is p..2^255-1:
        // 0x7f, thirty 0xff, then a low byte of at least 0xed.
        if u[31] & 0x80 != 0 {
            return false;
        }
        !(u[31] == 0x7f && u[1..31].iter().all(|&b| b == 0xff) && u[0] >= 0xed)
    }

    /// What makes the key unusable by a tunnel, if anything.
    pub fn defect(&self) -> Option<KeyDefect> {
        if self.0.iter().all(|&b| b == 0) {
            Some(KeyDefect::Zero)
        } else if !self.is_canonical() {
            Some(KeyDefect::NonCanonical)
        } else if (MontgomeryPoint(self.0) * Scalar::from(8u8)).0 == [0; KEY_LEN] {
            // Eight times a point is the identity (u = 0 here) exactly when
            // the point's order divides 8, on the curve and on its twist.
            Some(KeyDefect::LowOrder)
        } else {
            None
        }
    }
}

impl FromStr for PublicKey {
    type Err = KeyParseError;

    fn from_str(text: &str) -> Result<Self, KeyParseError> {
        decode_base64_key(text).map(|bytes| Self(*bytes))
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

/// A WireGuard (X25519) private key: the static identity of an interface.
/// Zeroed on drop; `Debug` shows nothing of it.
#[derive(Clone)]
pub struct PrivateKey(Zeroizing<[u8; KEY_LEN]>);

impl PrivateKey {
    /// A new random key from `rng`, clamped (RFC 7748) as `wg genkey`
    /// writes keys, so a key file looks the same whichever tool made it.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(bytes.as_mut_slice());
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        Self(bytes)
    }

    /// The key with these bytes (clamped when used, as X25519 specifies);
    /// the caller's copy is zeroed.
    pub fn from_bytes(mut bytes: [u8; KEY_LEN]) -> Self {
        let key = Self(Zeroizing::new(bytes));
        bytes.zeroize();
        key
    }

    /// The raw bytes, zeroed when the returned value is dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        self.0.clone()
    }

    /// The base64 text form, as `wg genkey` prints it.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE64.encode(*self.0))
    }

    /// The matching public key, as `wg pubkey` prints it: the u-coordinate
    /// of the clamped scalar times the base point.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(
            EdwardsPoint::mul_base_clamped(*self.0)
                .to_montgomery()
                .to_bytes(),
        )
    }
}

impl FromStr for PrivateKey {
    type Err = KeyParseError;

    fn from_str(text: &str) -> Result<Self, KeyParseError> {
        decode_base64_key(text).map(Self)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(..)")
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
        assert_eq!(private.public_key().defect(), None);
    }

    #[test]
    fn text_round_trip() {
        let key: PublicKey = PUBLIC.parse().unwrap();
        assert_eq!(key.to_string(), PUBLIC);
        assert_eq!(PublicKey::from_bytes(*key.as_bytes()), key);
        assert_eq!(format!("{key:?}"), format!("PublicKey({PUBLIC})"));
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
    fn debug_output_hides_the_private_key_and_its_public_half() {
        let private: PrivateKey = PRIVATE.parse().unwrap();
        let printed = format!("{private:?}");
        assert_eq!(printed, "PrivateKey(..)");
        assert!(!printed.contains(PUBLIC));
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
            assert!(text.parse::<PrivateKey>().is_err(), "{text:?}");
        }
    }

    /// The low-order points X25519 implementations refuse (the list of
    /// libsodium and RFC 7748's discussion), little-endian hex.
    const LOW_ORDER: [&str; 5] = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];

    fn from_hex(hex: &str) -> PublicKey {
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        PublicKey(bytes)
    }

    #[test]
    fn low_order_and_non_canonical_keys_are_defective() {
        assert_eq!(from_hex(LOW_ORDER[0]).defect(), Some(KeyDefect::Zero));
        for hex in &LOW_ORDER[1..] {
            assert_eq!(from_hex(hex).defect(), Some(KeyDefect::LowOrder), "{hex}");
        }
        // p and p + 1: u = 0 and u = 1 written again.
        for hex in [
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ] {
            assert_eq!(
                from_hex(hex).defect(),
                Some(KeyDefect::NonCanonical),
                "{hex}"
            );
        }
        // Every low-order key with the top bit set, which X25519 ignores.
        for hex in LOW_ORDER {
            let mut key = from_hex(hex);
            key.0[31] |= 0x80;
            assert_eq!(key.defect(), Some(KeyDefect::NonCanonical), "{hex}");
        }
        let good: PublicKey = PUBLIC.parse().unwrap();
        let mut high = good;
        high.0[31] |= 0x80;
        assert_eq!(high.defect(), Some(KeyDefect::NonCanonical));
    }
}
