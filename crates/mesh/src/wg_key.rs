//! A host's WireGuard keys as the mesh sees them: the public key a card
//! carries, checked to be a usable X25519 key, and the private key that
//! proves the host holds it.
//!
//! A public key is *usable* when it is a canonical u-coordinate (below
//! `p = 2^255 - 19`) of a point that is not of low order. The eight
//! low-order points of Curve25519 and those of its twist (u = 0, 1, -1 and
//! the two u of order 8) make every X25519 result with them zero, the
//! all-zero key included: a tunnel peer refuses them, and a card naming one
//! would stop every host that tried to peer with it. A key on the twist is
//! not refused here; it cannot carry a valid proof of possession, so a card
//! with one never verifies (see [`crate::xeddsa`]).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use curve25519_dalek::{MontgomeryPoint, Scalar};
use zeroize::{Zeroize, Zeroizing};

use crate::identity::decode_key;
use crate::xeddsa;

/// A host's WireGuard (X25519) public key: what its tunnel peers know it by.
/// Written as 44 characters of base64, as `wg pubkey` prints it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WgPublicKey([u8; 32]);

/// Text that is not a base64-encoded 32-byte key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a WireGuard public key: expected 44 characters of base64 encoding 32 bytes")]
pub struct WgKeyError;

impl WgPublicKey {
    /// The key with these bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether every byte is zero: no key at all.
    pub(crate) fn is_zero(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    /// What makes the key unusable, if anything.
    pub(crate) fn defect(&self) -> Option<KeyDefect> {
        if self.is_zero() {
            Some(KeyDefect::Zero)
        } else if !xeddsa::is_canonical_u(&self.0) {
            Some(KeyDefect::NonCanonical)
        } else if (MontgomeryPoint(self.0) * Scalar::from(8u8)).0 == [0; 32] {
            // Eight times a point is the identity (u = 0 here) exactly when
            // the point's order divides 8, on the curve and on its twist.
            Some(KeyDefect::LowOrder)
        } else {
            None
        }
    }
}

/// Why a public key cannot be a WireGuard peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyDefect {
    /// All zeros: no key at all.
    Zero,
    /// Not below `p`: an encoding X25519 would silently reduce.
    NonCanonical,
    /// A point of low order: every shared secret with it is zero.
    LowOrder,
}

/// A host's WireGuard (X25519) private key, as `wg genkey` writes it: what
/// makes the proof of possession on the host's card. Zeroed on drop;
/// `Debug` shows only the public key.
#[derive(Clone)]
pub struct WgSecretKey(Zeroizing<[u8; 32]>);

impl WgSecretKey {
    /// The key with these bytes (clamped when used, as X25519 does); the
    /// caller's copy is zeroed.
    pub fn from_bytes(mut bytes: [u8; 32]) -> Self {
        let key = Self(Zeroizing::new(bytes));
        bytes.zeroize();
        key
    }

    /// The public key, as `wg pubkey` prints it.
    pub fn public_key(&self) -> WgPublicKey {
        WgPublicKey(MontgomeryPoint::mul_base_clamped(*self.0).to_bytes())
    }

    /// The raw bytes.
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for WgSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WgSecretKey")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl FromStr for WgPublicKey {
    type Err = WgKeyError;

    fn from_str(text: &str) -> Result<Self, WgKeyError> {
        decode_key(text).map(Self).ok_or(WgKeyError)
    }
}

impl fmt::Display for WgPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE64.encode(self.0))
    }
}

impl fmt::Debug for WgPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WgPublicKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

    #[test]
    fn text_round_trip() {
        let key: WgPublicKey = PUBLIC.parse().unwrap();
        assert_eq!(key.to_string(), PUBLIC);
        assert_eq!(WgPublicKey::from_bytes(*key.as_bytes()), key);
        assert_eq!(format!("{key:?}"), format!("WgPublicKey({PUBLIC})"));
        assert!(!key.is_zero());
    }

    #[test]
    fn the_public_key_is_what_wg_pubkey_prints() {
        // `wg genkey`: "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=" whose
        // `wg pubkey` is "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=".
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(
            &BASE64
                .decode("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=")
                .unwrap(),
        );
        let secret = WgSecretKey::from_bytes(bytes);
        assert_eq!(secret.public_key().to_string(), PUBLIC);
        assert_eq!(
            format!("{secret:?}"),
            format!("WgSecretKey {{ public_key: WgPublicKey({PUBLIC}), .. }}")
        );
        assert_eq!(secret.public_key().defect(), None);
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

    fn from_hex(hex: &str) -> WgPublicKey {
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        WgPublicKey(bytes)
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
        let good: WgPublicKey = PUBLIC.parse().unwrap();
        let mut high = good;
        high.0[31] |= 0x80;
        assert_eq!(high.defect(), Some(KeyDefect::NonCanonical));
    }

    #[test]
    fn bad_text_is_refused() {
        for text in [
            "",
            "abc",
            &PUBLIC[..43],
            &format!("{PUBLIC}A"),
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=",
        ] {
            assert_eq!(text.parse::<WgPublicKey>(), Err(WgKeyError), "{text:?}");
        }
    }
}
