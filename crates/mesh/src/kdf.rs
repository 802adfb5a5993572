//! BLAKE2s hashing and the HKDF-style key derivation WireGuard uses, for
//! the key-wrapping keys of sealed bundles.
//!
//! `HASH` is BLAKE2s-256; `HMAC` is RFC 2104 HMAC over BLAKE2s-256 (block
//! size 64); `KDF1(key, input) = HMAC(HMAC(key, input), 0x01)`, the first
//! output of HKDF with `key` as the salt and `input` as the keying material,
//! exactly as in the WireGuard whitepaper.

use blake2::{Blake2s256, Digest};
use zeroize::{Zeroize, Zeroizing};

/// Output length of `HASH`, `HMAC` and `KDF1`.
pub(crate) const HASH_LEN: usize = 32;
/// BLAKE2s block size, the HMAC block size.
const BLOCK_LEN: usize = 64;

/// `HASH(parts[0] || parts[1] || ...)`: unkeyed BLAKE2s-256.
pub(crate) fn hash(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut hasher = Blake2s256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// `HMAC(key, parts...)` with BLAKE2s-256. Keys are at most one block (ours
/// are 32 bytes); a longer key is hashed first, as RFC 2104 says.
pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut hashed_key = Zeroizing::new([0u8; HASH_LEN]);
    let key = if key.len() > BLOCK_LEN {
        *hashed_key = hash(&[key]);
        &hashed_key[..]
    } else {
        key
    };
    let mut pad = Zeroizing::new([0x36u8; BLOCK_LEN]);
    for (p, k) in pad.iter_mut().zip(key) {
        *p ^= k;
    }
    let mut inner = Blake2s256::new();
    inner.update(*pad);
    for part in parts {
        inner.update(part);
    }
    let mut inner_hash: [u8; HASH_LEN] = inner.finalize().into();
    for p in pad.iter_mut() {
        *p ^= 0x36 ^ 0x5c;
    }
    let out = hash(&[&pad[..], &inner_hash]);
    inner_hash.zeroize();
    out
}

/// `KDF1(key, input)`: HKDF-Extract with `key` as salt, then the first
/// 32-byte block of HKDF-Expand with empty info. Zeroed on drop.
pub(crate) fn kdf1(key: &[u8], input: &[u8]) -> Zeroizing<[u8; HASH_LEN]> {
    let prk = Zeroizing::new(hmac(key, &[input]));
    Zeroizing::new(hmac(&prk[..], &[&[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    // Known answers from Python's `hashlib.blake2s` and `hmac`.
    #[test]
    fn known_answers() {
        assert_eq!(
            hex(&hash(&[b"a", b"bc"])),
            "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982"
        );
        assert_eq!(
            hex(&hmac(
                b"key",
                &[b"The quick brown fox ", b"jumps over the lazy dog"]
            )),
            "f93215bb90d4af4c3061cd932fb169fb8bb8a91d0b4022baea1271e1323cd9a0"
        );
        let salt: Vec<u8> = (0..32).collect();
        assert_eq!(
            hex(&kdf1(&salt, &[0x42; 32])[..]),
            "0ea6f0217a53befc18a7e7527be9bb465ec1478b4571f3efb0d9feece725111a"
        );
    }

    #[test]
    fn long_keys_are_hashed_first() {
        let long = [7u8; 100];
        assert_eq!(hmac(&long, &[b"x"]), hmac(&hash(&[&long]), &[b"x"]));
    }
}
