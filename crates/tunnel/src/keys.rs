//! The preshared key: the one key of the engine's that is not a host's
//! X25519 key (those, `PrivateKey` and `PublicKey`, are
//! `sentrymesh_types::keys`, shared with the mesh), in WireGuard's base64
//! text form.
//!
//! `Debug` never shows secret material: a preshared key prints as
//! `PresharedKey(..)`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand_core::{CryptoRng, RngCore};
use sentrymesh_types::keys::{KEY_LEN, KeyParseError, decode_base64_key};
use zeroize::{Zeroize, Zeroizing};

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
        decode_base64_key(text).map(Self)
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_key() {
        let psk = PresharedKey::from_bytes([7; 32]);
        let printed = format!("{psk:?}");
        assert!(!printed.contains(&*psk.to_base64()));
        assert_eq!(printed, "PresharedKey(..)");
    }

    #[test]
    fn text_round_trip_and_the_zero_key() {
        let psk = PresharedKey::from_bytes([7; 32]);
        assert_eq!(psk.to_base64().parse::<PresharedKey>().unwrap(), psk);
        assert!(PresharedKey::none().is_none());
        assert!(!psk.is_none());
        assert_eq!("abc".parse::<PresharedKey>(), Err(KeyParseError));
    }
}
