//! BLAKE2s as WireGuard uses it: `HASH`, keyed `MAC`, `HMAC` and the HKDF-style
//! `KDF1`, `KDF2`, `KDF3` built on it.

use blake2::digest::consts::U16;
use blake2::digest::{Digest, Mac};
use blake2::{Blake2s256, Blake2sMac};
use zeroize::Zeroize;

/// Output length of `HASH`, `HMAC` and each `KDF` output.
pub(crate) const HASH_LEN: usize = 32;
/// Output length of `MAC`.
pub(crate) const MAC_LEN: usize = 16;
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

/// `MAC(key, parts...)`: keyed BLAKE2s with a 16-byte output. WireGuard
/// keys it with 32-byte hashes and 16-byte cookies.
pub(crate) fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    debug_assert!((1..=HASH_LEN).contains(&key.len()));
    // Keys of 1 to 32 bytes are valid BLAKE2s keys; ours are 16 or 32.
    let mut mac =
        <Blake2sMac<U16> as Mac>::new_from_slice(key).expect("BLAKE2s key of 1..=32 bytes");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// `HMAC(key, parts...)` with BLAKE2s-256 (RFC 2104).
pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut hashed_key = [0u8; HASH_LEN];
    let key = if key.len() > BLOCK_LEN {
        hashed_key = hash(&[key]);
        &hashed_key[..]
    } else {
        key
    };
    // The key padded to a block and XORed with ipad, then with opad.
    let mut pad = [0x36u8; BLOCK_LEN];
    for (p, k) in pad.iter_mut().zip(key) {
        *p ^= k;
    }
    let mut inner = Blake2s256::new();
    inner.update(pad);
    for part in parts {
        inner.update(part);
    }
    let mut inner_hash: [u8; HASH_LEN] = inner.finalize().into();
    for p in pad.iter_mut() {
        *p ^= 0x36 ^ 0x5c;
    }
    let out = hash(&[&pad, &inner_hash]);
    pad.zeroize();
    inner_hash.zeroize();
    hashed_key.zeroize();
    out
}

/// `KDF1(key, input)`: the first output of the HKDF construction.
pub(crate) fn kdf1(key: &[u8], input: &[u8]) -> [u8; HASH_LEN] {
    let mut prk = hmac(key, &[input]);
    let t1 = hmac(&prk, &[&[1]]);
    prk.zeroize();
    t1
}

/// `KDF2(key, input)`: the first two outputs of the HKDF construction.
pub(crate) fn kdf2(key: &[u8], input: &[u8]) -> ([u8; HASH_LEN], [u8; HASH_LEN]) {
    let mut prk = hmac(key, &[input]);
    let t1 = hmac(&prk, &[&[1]]);
    let t2 = hmac(&prk, &[&t1, &[2]]);
    prk.zeroize();
    (t1, t2)
}

/// `KDF3(key, input)`: the first three outputs of the HKDF construction.
pub(crate) fn kdf3(key: &[u8], input: &[u8]) -> ([u8; HASH_LEN], [u8; HASH_LEN], [u8; HASH_LEN]) {
    let mut prk = hmac(key, &[input]);
    let t1 = hmac(&prk, &[&[1]]);
    let t2 = hmac(&prk, &[&t1, &[2]]);
    let t3 = hmac(&prk, &[&t2, &[3]]);
    prk.zeroize();
    (t1, t2, t3)
}
