//! A host's WireGuard public key as a card carries it.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::identity::decode_key;

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
