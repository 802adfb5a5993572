//! BLAKE2s as WireGuard uses it: `HASH`, keyed `MAC`, `HMAC` and the HKDF-style
//! `KDF1`, `KDF2`, `KDF3` built on it. The tunnel's handshake and cookies use
//! all of them; the mesh uses `HASH`, `HMAC` and `KDF1` for the keys of its
//! sealed bundles and introductions, so both derive keys by one code.
//!
//! `HASH` is BLAKE2s-256; `HMAC` is RFC 2104 HMAC over BLAKE2s-256 (block
//! size 64); `KDF1(key, input) = HMAC(HMAC(key, input), 0x01)`, the first
//! output of HKDF with `key` as the salt and `input` as the keying material,
//! and `KDF2`, `KDF3` the next outputs, exactly as in the WireGuard
//! whitepaper. Intermediate keys are zeroed; the outputs are the caller's to
//! zero (the mesh keeps them in `Zeroizing`).
//!
//! A key used more than once is absorbed once: [`MacKey`] (`mac1`'s key) and
//! the HMAC key inside `KDF2` and `KDF3` keep the states after their padded
//! key blocks were compressed. (The
//! `blake2` crate keeps a block buffered until more data comes, so a cloned
//! hasher that has seen only the key would compress it again.)

use std::hint::black_box;

use blake2::digest::consts::U16;
use blake2::digest::core_api::{Block, Buffer, UpdateCore, VariableOutputCore};
use blake2::digest::{Digest, Mac, Output};
use blake2::{Blake2s256, Blake2sMac, Blake2sVarCore};
use zeroize::Zeroize;

/// Output length of `HASH`, `HMAC` and each `KDF` output.
pub const HASH_LEN: usize = 32;
/// Output length of `MAC`.
pub const MAC_LEN: usize = 16;
/// BLAKE2s block size, the HMAC block size.
const BLOCK_LEN: usize = 64;

/// `HASH(parts[0] || parts[1] || ...)`: unkeyed BLAKE2s-256.
#[inline]
pub fn hash(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut hasher = Blake2s256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// `MAC(key, parts...)`: keyed BLAKE2s with a 16-byte output. WireGuard
/// keys it with 32-byte hashes and 16-byte cookies.
///
/// # Panics
///
/// When `key` is empty or longer than 32 bytes, which BLAKE2s does not
/// take as a key.
#[inline]
pub fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    debug_assert!((1..=HASH_LEN).contains(&key.len()));
    // Keys of 1 to 32 bytes are valid BLAKE2s keys; ours are 16 or 32.
    let mut mac =
        <Blake2sMac<U16> as Mac>::new_from_slice(key).expect("BLAKE2s key of 1..=32 bytes");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// `HMAC(key, parts...)` with BLAKE2s-256 (RFC 2104). A key longer than a
/// block is hashed first, as RFC 2104 says.
#[inline]
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; HASH_LEN] {
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

/// BLAKE2s with a first block already compressed: a padded key.
#[derive(Clone)]
struct Absorbed(Blake2sVarCore);

impl Absorbed {
    /// The state after `block`, for a hash of `output_len` bytes whose
    /// parameter block declares a key of `key_len` bytes (0: unkeyed).
    fn new(block: &[u8; BLOCK_LEN], key_len: usize, output_len: usize) -> Self {
        let mut core = Blake2sVarCore::new_with_params(&[], &[], key_len, output_len);
        core.update_blocks(&[Block::<Blake2sVarCore>::clone_from_slice(block)]);
        Self(core)
    }

    /// The hash of the block followed by `parts`, which must not all be
    /// empty: the compressed block cannot be the final one.
    fn finish(&self, parts: &[&[u8]]) -> Output<Blake2sVarCore> {
        let mut core = self.0.clone();
        let mut buffer = Buffer::<Blake2sVarCore>::default();
        for part in parts {
            buffer.digest_blocks(part, |blocks| core.update_blocks(blocks));
        }
        debug_assert!(buffer.get_pos() > 0, "a message after the key block");
        let mut out = Output::<Blake2sVarCore>::default();
        core.finalize_variable_core(&mut buffer, &mut out);
        out
    }

    /// Overwrites the state: what it holds computes MACs under the key. Not
    /// a guaranteed zeroization (the `blake2` crate offers none), but the
    /// store is not optimised away.
    fn erase(&mut self) {
        self.0 = Blake2sVarCore::new_with_params(&[], &[], 0, HASH_LEN);
        black_box(&self.0);
    }
}

/// `MAC(key, ...)` under one key, its key block compressed once: one
/// compression fewer per MAC than [`mac`]. For keys derived from public
/// values (`mac1`'s); the state is not erased on drop.
#[derive(Clone)]
pub struct MacKey(Absorbed);

impl MacKey {
    /// The state of `MAC(key, ...)` with the key block compressed.
    pub fn new(key: &[u8; HASH_LEN]) -> Self {
        let mut block = [0u8; BLOCK_LEN];
        block[..HASH_LEN].copy_from_slice(key);
        Self(Absorbed::new(&block, HASH_LEN, MAC_LEN))
    }

    /// `MAC(key, parts...)`; `parts` must not all be empty.
    #[inline]
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        let out = self.0.finish(parts);
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&out[..MAC_LEN]);
        mac
    }
}

/// `HMAC(key, ...)` under one 32-byte key, with the inner and outer padded
/// key blocks compressed once: two compressions fewer per HMAC than [`hmac`].
/// Erased on drop.
struct HmacKey {
    inner: Absorbed,
    outer: Absorbed,
}

impl HmacKey {
    fn new(key: &[u8; HASH_LEN]) -> Self {
        let mut pad = [0x36u8; BLOCK_LEN];
        for (p, k) in pad.iter_mut().zip(key) {
            *p ^= k;
        }
        let inner = Absorbed::new(&pad, 0, HASH_LEN);
        for p in pad.iter_mut() {
            *p ^= 0x36 ^ 0x5c;
        }
        let outer = Absorbed::new(&pad, 0, HASH_LEN);
        pad.zeroize();
        Self { inner, outer }
    }

    /// `HMAC(key, parts...)`; `parts` must not all be empty.
    fn hmac(&self, parts: &[&[u8]]) -> [u8; HASH_LEN] {
        let mut inner = self.inner.finish(parts);
        let out = self.outer.finish(&[&inner]).into();
        inner.zeroize();
        out
    }
}

impl Drop for HmacKey {
    fn drop(&mut self) {
        self.inner.erase();
        self.outer.erase();
    }
}

/// The HKDF pseudorandom key `HMAC(key, input)`, ready to expand.
fn extract(key: &[u8], input: &[u8]) -> HmacKey {
    let mut prk = hmac(key, &[input]);
    let expand = HmacKey::new(&prk);
    prk.zeroize();
    expand
}

/// `KDF1(key, input)`: the first output of the HKDF construction. Its one
/// HMAC under the pseudorandom key would not repay compressing the key
/// blocks ahead.
#[inline]
pub fn kdf1(key: &[u8], input: &[u8]) -> [u8; HASH_LEN] {
    let mut prk = hmac(key, &[input]);
    let t1 = hmac(&prk, &[&[1]]);
    prk.zeroize();
    t1
}

/// `KDF2(key, input)`: the first two outputs of the HKDF construction.
#[inline]
pub fn kdf2(key: &[u8], input: &[u8]) -> ([u8; HASH_LEN], [u8; HASH_LEN]) {
    let prk = extract(key, input);
    let t1 = prk.hmac(&[&[1]]);
    let t2 = prk.hmac(&[&t1, &[2]]);
    (t1, t2)
}

/// `KDF3(key, input)`: the first three outputs of the HKDF construction.
#[inline]
pub fn kdf3(key: &[u8], input: &[u8]) -> ([u8; HASH_LEN], [u8; HASH_LEN], [u8; HASH_LEN]) {
    let prk = extract(key, input);
    let t1 = prk.hmac(&[&[1]]);
    let t2 = prk.hmac(&[&t1, &[2]]);
    let t3 = prk.hmac(&[&t2, &[3]]);
    (t1, t2, t3)
}

#[cfg(test)]
mod known_answers;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    // Known answers from Python's `hashlib.blake2s` and `hmac`. The
    // handshake's vectors (which exercise every function here) are the
    // tunnel's `known_answers`.
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
            hex(&kdf1(&salt, &[0x42; 32])),
            "0ea6f0217a53befc18a7e7527be9bb465ec1478b4571f3efb0d9feece725111a"
        );
    }

    #[test]
    fn long_keys_are_hashed_first() {
        let long = [7u8; 100];
        assert_eq!(hmac(&long, &[b"x"]), hmac(&hash(&[&long]), &[b"x"]));
    }

    #[test]
    fn kdf_outputs_chain_as_hkdf() {
        let (key, input) = ([3u8; 32], [9u8; 40]);
        let (a1, a2) = kdf2(&key, &input);
        let (b1, b2, b3) = kdf3(&key, &input);
        assert_eq!((a1, a2), (b1, b2));
        assert_eq!(kdf1(&key, &input), a1);
        let prk = hmac(&key, &[&input]);
        assert_eq!(b3, hmac(&prk, &[&b2, &[3]]));
    }

    proptest! {
        // Messages of one to three blocks, in two parts, so both the final
        // block and the whole blocks before it go through the kept state.
        #[test]
        fn hmac_key_equals_hmac(
            key in any::<[u8; HASH_LEN]>(),
            message in proptest::collection::vec(any::<u8>(), 1..200),
            cut in any::<prop::sample::Index>(),
        ) {
            let (a, b) = message.split_at(cut.index(message.len()));
            prop_assert_eq!(HmacKey::new(&key).hmac(&[a, b]), hmac(&key, &[&message]));
        }

        #[test]
        fn mac_key_equals_mac(
            key in any::<[u8; HASH_LEN]>(),
            message in proptest::collection::vec(any::<u8>(), 1..200),
            cut in any::<prop::sample::Index>(),
        ) {
            let (a, b) = message.split_at(cut.index(message.len()));
            prop_assert_eq!(MacKey::new(&key).mac(&[a, b]), mac(&key, &[&message]));
        }
    }
}
