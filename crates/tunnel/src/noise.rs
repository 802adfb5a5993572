//! The Noise symmetric state (`ck`, `h`) and its operations, as the Noise
//! specification names them. The WireGuard handshake in [`crate::handshake`]
//! is the `IKpsk2` pattern played on this state; the known-answer tests play
//! the same pattern with the vectors published for `snow`.

use sentrymesh_types::blake2s::{HASH_LEN, hash, kdf1, kdf2, kdf3};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::aead::{self, AuthenticationFailed, TAG_LEN};

/// A 32-byte cipher key produced by `MixKey` or `Split`, zeroed on drop.
pub(crate) type CipherKey = Zeroizing<[u8; 32]>;

/// The chaining key and handshake hash of a Noise handshake in progress.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SymmetricState {
    chaining_key: [u8; HASH_LEN],
    hash: [u8; HASH_LEN],
}

impl SymmetricState {
    /// `InitializeSymmetric(protocol_name)` followed by `MixHash(prologue)`.
    pub(crate) fn new(protocol_name: &[u8], prologue: &[u8]) -> Self {
        let h = if protocol_name.len() <= HASH_LEN {
            let mut h = [0u8; HASH_LEN];
            h[..protocol_name.len()].copy_from_slice(protocol_name);
            h
        } else {
            hash(&[protocol_name])
        };
        let mut state = Self {
            chaining_key: h,
            hash: h,
        };
        state.mix_hash(prologue);
        state
    }

    /// The state after `new(protocol_name, prologue)` and `MixHash(responder_static)`:
    /// what every handshake with one responder starts from, so it can be computed once.
    pub(crate) fn with_responder(mut self, responder_static: &[u8; 32]) -> Self {
        self.mix_hash(responder_static);
        self
    }

    /// The handshake hash `h` (WireGuard never exports it; the known-answer
    /// tests compare it with the published vectors).
    #[cfg(test)]
    pub(crate) fn handshake_hash(&self) -> &[u8; HASH_LEN] {
        &self.hash
    }

    /// `MixHash(data)`: `h = HASH(h || data)`.
    pub(crate) fn mix_hash(&mut self, data: &[u8]) {
        self.hash = hash(&[&self.hash, data]);
    }

    /// `MixKey(input)` without its cipher key: `ck = KDF1(ck, input)`. Used where
    /// the key it would yield is replaced before use (the `e` token of psk modes).
    pub(crate) fn mix_chaining_key(&mut self, input: &[u8]) {
        self.chaining_key = kdf1(&self.chaining_key, input);
    }

    /// `MixKey(input)`: `(ck, k) = KDF2(ck, input)`; returns `k`.
    pub(crate) fn mix_key(&mut self, input: &[u8]) -> CipherKey {
        let (ck, k) = kdf2(&self.chaining_key, input);
        self.chaining_key = ck;
        Zeroizing::new(k)
    }

    /// `MixKeyAndHash(input)`: `(ck, t, k) = KDF3(ck, input)`, `MixHash(t)`; returns `k`.
    pub(crate) fn mix_key_and_hash(&mut self, input: &[u8]) -> CipherKey {
        let (ck, mut t, k) = kdf3(&self.chaining_key, input);
        self.chaining_key = ck;
        self.mix_hash(&t);
        t.zeroize();
        Zeroizing::new(k)
    }

    /// `EncryptAndHash(plaintext)` under `key` with nonce 0: writes
    /// `plaintext.len() + 16` bytes to `out` and mixes them into `h`.
    pub(crate) fn encrypt_and_hash(&mut self, key: &CipherKey, plaintext: &[u8], out: &mut [u8]) {
        aead::seal(key, 0, plaintext, &self.hash, out);
        self.mix_hash(out);
    }

    /// `DecryptAndHash(ciphertext)` under `key` with nonce 0: writes
    /// `ciphertext.len() - 16` bytes to `out`. On failure the state is unchanged.
    pub(crate) fn decrypt_and_hash(
        &mut self,
        key: &CipherKey,
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<(), AuthenticationFailed> {
        debug_assert_eq!(out.len() + TAG_LEN, ciphertext.len());
        aead::open(key, 0, ciphertext, &self.hash, out)?;
        self.mix_hash(ciphertext);
        Ok(())
    }

    /// `Split()`: the initiator's sending key and the responder's sending key.
    pub(crate) fn split(&self) -> (CipherKey, CipherKey) {
        let (initiator, responder) = kdf2(&self.chaining_key, &[]);
        (Zeroizing::new(initiator), Zeroizing::new(responder))
    }
}
