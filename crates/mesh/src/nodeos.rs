//! A nodeos peer key: the public key a nodeos (EOSIO, Leap, Spring) node
//! signs its p2p handshakes with, which another node lists as `peer-key`
//! to accept it under `allowed-connection = specified`.
//!
//! A key is written `EOS` and the base58 of its 33-byte compressed point
//! followed by the first four bytes of the point's RIPEMD-160 (the legacy
//! form), or `PUB_K1_` / `PUB_R1_` and the base58 of the point followed by
//! the first four bytes of the RIPEMD-160 of the point and the curve's name
//! (`K1`, `R1`). Both forms are checked, checksum included, so a typo on a
//! card is refused where it is issued, not found when nodeos drops the
//! connection; the key is kept as written, which every nodeos reads.

use std::fmt;
use std::str::FromStr;

use ripemd::{Digest, Ripemd160};

use crate::codec::{DecodeError, Reader, Writer};

/// The longest nodeos peer key text, in bytes: `PUB_K1_` and the base58 of
/// 37 bytes (at most 51 characters).
pub const MAX_NODEOS_KEY_LEN: usize = 58;

/// The length of a compressed elliptic-curve point.
const POINT_LEN: usize = 33;
/// The length of the checksum after the point.
const CHECKSUM_LEN: usize = 4;
/// The base58 alphabet of nodeos keys (Bitcoin's).
const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A nodeos peer key, checked, as written: `EOS6MRy...` or `PUB_K1_...`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeosPeerKey(String);

/// Text that is not a nodeos public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a nodeos public key: write EOS... or PUB_K1_... / PUB_R1_... as `cleos create \
     key` prints it"
)]
pub struct NodeosKeyError(pub String);

impl NodeosPeerKey {
    /// The key as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.str(&self.0);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let text = r.str("nodeos peer key", MAX_NODEOS_KEY_LEN)?;
        text.parse().map_err(|_| DecodeError::Invalid {
            field: "nodeos peer key",
            reason: "not a nodeos public key with a valid checksum",
        })
    }
}

impl FromStr for NodeosPeerKey {
    type Err = NodeosKeyError;

    fn from_str(text: &str) -> Result<Self, NodeosKeyError> {
        let text = text.trim();
        let bad = || NodeosKeyError(text.to_owned());
        if text.len() > MAX_NODEOS_KEY_LEN {
            return Err(bad());
        }
        let (encoded, suffix): (&str, &[u8]) = if let Some(rest) = text.strip_prefix("PUB_K1_") {
            (rest, b"K1")
        } else if let Some(rest) = text.strip_prefix("PUB_R1_") {
            (rest, b"R1")
        } else if let Some(rest) = text.strip_prefix("EOS") {
            (rest, b"")
        } else {
            return Err(bad());
        };
        let bytes = base58_decode(encoded).ok_or_else(bad)?;
        if bytes.len() != POINT_LEN + CHECKSUM_LEN || !matches!(bytes[0], 2 | 3) {
            return Err(bad());
        }
        let (point, checksum) = bytes.split_at(POINT_LEN);
        let digest = Ripemd160::new()
            .chain_update(point)
            .chain_update(suffix)
            .finalize();
        if digest[..CHECKSUM_LEN] != *checksum {
            return Err(bad());
        }
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Display for NodeosPeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The bytes `text` encodes in base58; `None` for an empty text or a
/// character outside the alphabet.
fn base58_decode(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() {
        return None;
    }
    // Big-endian base-256 digits of the number, built digit by digit.
    let mut number: Vec<u8> = Vec::with_capacity(text.len());
    for c in text.bytes() {
        let mut carry = u32::try_from(BASE58.iter().position(|&d| d == c)?).ok()?;
        for byte in number.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            number.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    // Each leading `1` is a leading zero byte.
    let zeros = text.bytes().take_while(|&c| c == b'1').count();
    let mut bytes = vec![0; zeros];
    bytes.extend(number);
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The well-known development key of EOSIO (`eosio`'s genesis key), in
    /// its legacy and its K1 form.
    const LEGACY: &str = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV";
    const K1: &str = "PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63";

    #[test]
    fn both_forms_of_a_key_parse_and_print_as_written() {
        for text in [LEGACY, K1] {
            let key: NodeosPeerKey = text.parse().unwrap();
            assert_eq!(key.to_string(), text);
            let mut w = Writer::new();
            key.encode(&mut w);
            let bytes = w.into_bytes();
            let mut r = Reader::new(&bytes);
            assert_eq!(NodeosPeerKey::decode(&mut r).unwrap(), key);
            r.finish().unwrap();
        }
    }

    #[test]
    fn a_typo_or_another_form_is_refused() {
        let typo = LEGACY.replace("GDW5CV", "GDW5CW");
        let k1_with_legacy_checksum = K1.replace("BoDq63", "GDW5CV");
        for text in [
            "",
            "EOS",
            "PUB_K1_",
            &typo,
            &k1_with_legacy_checksum,
            &LEGACY.replace("EOS", "PUB_R1_"),
            &LEGACY.replace('6', "0"),
            &format!("{LEGACY}1"),
            "5KQwrPbwdL6PhXujxW37FSSQZ1JiwsST4cqQzDeyXtP79zkvFD3",
        ] {
            assert!(text.parse::<NodeosPeerKey>().is_err(), "{text}");
        }
        let mut w = Writer::new();
        w.str(&typo);
        let bytes = w.into_bytes();
        assert!(matches!(
            NodeosPeerKey::decode(&mut Reader::new(&bytes)),
            Err(DecodeError::Invalid { .. })
        ));
    }

    #[test]
    fn base58_keeps_leading_zeros() {
        assert_eq!(base58_decode("1"), Some(vec![0]));
        assert_eq!(base58_decode("11z"), Some(vec![0, 0, 57]));
        assert_eq!(base58_decode("5R"), Some(vec![1, 0]));
        assert_eq!(base58_decode("0"), None);
        assert_eq!(base58_decode(""), None);
    }
}
