//! The AEADs of WireGuard.
//!
//! * [`ChaChaKey`]: ChaCha20-Poly1305 with WireGuard's 64-bit counter nonce,
//!   for the data path and the encrypted fields of handshake messages. It is
//!   `ring`'s assembly implementation by default (about 3.4× faster than the
//!   portable crate on this project's machines); the `portable-aead` feature,
//!   or turning off the `ring` feature, selects the RustCrypto implementation.
//! * [`seal`] / [`open`]: one handshake field under a one-off key.
//! * [`xseal`] / [`xopen`]: XChaCha20-Poly1305 (RustCrypto), for cookie replies.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use zeroize::Zeroize;

/// Length of a Poly1305 tag.
pub(crate) const TAG_LEN: usize = 16;
/// Length of an XChaCha20 nonce.
pub(crate) const XNONCE_LEN: usize = 24;

/// An AEAD tag did not verify: the message was forged, corrupted or sealed
/// under another key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AuthenticationFailed;

/// The 96-bit ChaCha20-Poly1305 nonce of WireGuard: 32 zero bits, then the
/// counter little-endian.
fn counter_nonce(counter: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    nonce
}

/// `AEAD(key, counter, plaintext, aad)`: writes ciphertext and tag to `out`,
/// which must be exactly `plaintext.len() + TAG_LEN` bytes.
pub(crate) fn seal(key: &[u8; 32], counter: u64, plaintext: &[u8], aad: &[u8], out: &mut [u8]) {
    debug_assert_eq!(out.len(), plaintext.len() + TAG_LEN);
    let (body, tag) = out.split_at_mut(plaintext.len());
    body.copy_from_slice(plaintext);
    let tag = tag.try_into().expect("TAG_LEN bytes after the body");
    ChaChaKey::new(key).seal_in_place(counter, aad, body, tag);
}

/// The inverse of [`seal`]: `ciphertext` holds the ciphertext and tag, `out`
/// receives `ciphertext.len() - TAG_LEN` bytes of plaintext (zeros on failure).
pub(crate) fn open(
    key: &[u8; 32],
    counter: u64,
    ciphertext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<(), AuthenticationFailed> {
    let (body, tag) = split_tag(ciphertext)?;
    debug_assert_eq!(out.len(), body.len());
    out.copy_from_slice(body);
    ChaChaKey::new(key)
        .open_detached(counter, aad, out, tag)
        .inspect_err(|_| out.zeroize())
}

/// `XAEAD(key, nonce, plaintext, aad)` into `out` (`plaintext.len() + TAG_LEN` bytes).
pub(crate) fn xseal(
    key: &[u8; 32],
    nonce: &[u8; XNONCE_LEN],
    plaintext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) {
    debug_assert_eq!(out.len(), plaintext.len() + TAG_LEN);
    let (body, tag_out) = out.split_at_mut(plaintext.len());
    body.copy_from_slice(plaintext);
    // Sealing fails only for messages over 256 GiB; a cookie is 16 bytes.
    let tag = XChaCha20Poly1305::new(key.into())
        .encrypt_in_place_detached(nonce.into(), aad, body)
        .expect("cookie far below the AEAD length limit");
    tag_out.copy_from_slice(&tag);
}

/// The inverse of [`xseal`]; `out` is zeroed on failure.
pub(crate) fn xopen(
    key: &[u8; 32],
    nonce: &[u8; XNONCE_LEN],
    ciphertext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<(), AuthenticationFailed> {
    let (body, tag) = split_tag(ciphertext)?;
    debug_assert_eq!(out.len(), body.len());
    out.copy_from_slice(body);
    XChaCha20Poly1305::new(key.into())
        .decrypt_in_place_detached(nonce.into(), aad, out, tag.as_slice().into())
        .map_err(|_| {
            out.zeroize();
            AuthenticationFailed
        })
}

/// Splits ciphertext-then-tag; too short to hold a tag fails like a forgery.
fn split_tag(ciphertext: &[u8]) -> Result<(&[u8], &[u8; TAG_LEN]), AuthenticationFailed> {
    let body_len = ciphertext
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(AuthenticationFailed)?;
    let (body, tag) = ciphertext.split_at(body_len);
    Ok((body, tag.try_into().expect("TAG_LEN bytes after the body")))
}

/// A ChaCha20-Poly1305 key from the selected backend.
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(crate) struct ChaChaKey {
    #[cfg(all(feature = "ring", not(feature = "portable-aead")))]
    key: ring::aead::LessSafeKey,
    #[cfg(not(all(feature = "ring", not(feature = "portable-aead"))))]
    key: chacha20poly1305::ChaCha20Poly1305,
}

#[cfg(all(feature = "ring", not(feature = "portable-aead")))]
impl ChaChaKey {
    /// Expands a 32-byte key; the caller zeroizes its copy.
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        // Any 32 bytes are a valid ChaCha20-Poly1305 key.
        let key = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key)
            .expect("32-byte ChaCha20-Poly1305 key");
        Self {
            key: ring::aead::LessSafeKey::new(key),
        }
    }

    /// Encrypts `body` in place under `counter` and writes its tag to `tag`.
    #[inline]
    pub(crate) fn seal_in_place(
        &self,
        counter: u64,
        aad: &[u8],
        body: &mut [u8],
        tag: &mut [u8; TAG_LEN],
    ) {
        let nonce = ring::aead::Nonce::assume_unique_for_key(counter_nonce(counter));
        let sealed = self
            .key
            .seal_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), body)
            .expect("datagram far below the AEAD length limit");
        tag.copy_from_slice(sealed.as_ref());
    }

    /// Decrypts `buf` (ciphertext followed by the tag) in place; on success the
    /// plaintext is `buf[..buf.len() - TAG_LEN]`.
    #[inline]
    pub(crate) fn open_in_place(
        &self,
        counter: u64,
        buf: &mut [u8],
    ) -> Result<(), AuthenticationFailed> {
        let nonce = ring::aead::Nonce::assume_unique_for_key(counter_nonce(counter));
        self.key
            .open_in_place(nonce, ring::aead::Aad::empty(), buf)
            .map(|_| ())
            .map_err(|_| AuthenticationFailed)
    }

    /// Decrypts `body` in place, authenticated by `tag` and `aad`.
    fn open_detached(
        &self,
        counter: u64,
        aad: &[u8],
        body: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthenticationFailed> {
        let nonce = ring::aead::Nonce::assume_unique_for_key(counter_nonce(counter));
        self.key
            .open_in_place_separate_tag(
                nonce,
                ring::aead::Aad::from(aad),
                ring::aead::Tag::from(*tag),
                body,
                0..,
            )
            .map(|_| ())
            .map_err(|_| AuthenticationFailed)
    }
}

#[cfg(not(all(feature = "ring", not(feature = "portable-aead"))))]
impl ChaChaKey {
    /// Expands a 32-byte key; the caller zeroizes its copy.
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self {
            key: chacha20poly1305::ChaCha20Poly1305::new(key.into()),
        }
    }

    /// Encrypts `body` in place under `counter` and writes its tag to `tag`.
    #[inline]
    pub(crate) fn seal_in_place(
        &self,
        counter: u64,
        aad: &[u8],
        body: &mut [u8],
        tag: &mut [u8; TAG_LEN],
    ) {
        let sealed = self
            .key
            .encrypt_in_place_detached(&counter_nonce(counter).into(), aad, body)
            .expect("datagram far below the AEAD length limit");
        tag.copy_from_slice(&sealed);
    }

    /// Decrypts `buf` (ciphertext followed by the tag) in place; on success the
    /// plaintext is `buf[..buf.len() - TAG_LEN]`.
    #[inline]
    pub(crate) fn open_in_place(
        &self,
        counter: u64,
        buf: &mut [u8],
    ) -> Result<(), AuthenticationFailed> {
        let body_len = buf.len().checked_sub(TAG_LEN).ok_or(AuthenticationFailed)?;
        let (body, tag) = buf.split_at_mut(body_len);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().expect("TAG_LEN bytes");
        self.open_detached(counter, &[], body, tag)
    }

    /// Decrypts `body` in place, authenticated by `tag` and `aad`.
    fn open_detached(
        &self,
        counter: u64,
        aad: &[u8],
        body: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthenticationFailed> {
        self.key
            .decrypt_in_place_detached(&counter_nonce(counter).into(), aad, body, tag.into())
            .map_err(|_| AuthenticationFailed)
    }
}
