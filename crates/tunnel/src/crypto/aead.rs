//! The AEADs of WireGuard.
//!
//! * [`seal`] / [`open`]: ChaCha20-Poly1305 with a 64-bit counter nonce, for
//!   the few bytes of handshake messages (RustCrypto, constant-time, portable).
//! * [`xseal`] / [`xopen`]: XChaCha20-Poly1305, for cookie replies.
//! * [`TransportKey`]: the data-path ChaCha20-Poly1305 key. It is `ring`'s
//!   assembly implementation by default (about 3.4× faster than the portable
//!   crate on this project's machines); the `portable-aead` feature, or turning
//!   off the `ring` feature, selects the RustCrypto implementation instead.

use chacha20poly1305::aead::{AeadInPlace, Nonce};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, XChaCha20Poly1305};
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
    let cipher = ChaCha20Poly1305::new(key.into());
    seal_detached(&cipher, &counter_nonce(counter).into(), plaintext, aad, out);
}

/// The inverse of [`seal`]: `ciphertext` holds the ciphertext and tag, `out`
/// receives `ciphertext.len() - TAG_LEN` bytes of plaintext.
pub(crate) fn open(
    key: &[u8; 32],
    counter: u64,
    ciphertext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<(), AuthenticationFailed> {
    let cipher = ChaCha20Poly1305::new(key.into());
    open_detached(
        &cipher,
        &counter_nonce(counter).into(),
        ciphertext,
        aad,
        out,
    )
}

/// `XAEAD(key, nonce, plaintext, aad)` into `out` (`plaintext.len() + TAG_LEN` bytes).
pub(crate) fn xseal(
    key: &[u8; 32],
    nonce: &[u8; XNONCE_LEN],
    plaintext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) {
    seal_detached(
        &XChaCha20Poly1305::new(key.into()),
        nonce.into(),
        plaintext,
        aad,
        out,
    );
}

/// The inverse of [`xseal`].
pub(crate) fn xopen(
    key: &[u8; 32],
    nonce: &[u8; XNONCE_LEN],
    ciphertext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<(), AuthenticationFailed> {
    open_detached(
        &XChaCha20Poly1305::new(key.into()),
        nonce.into(),
        ciphertext,
        aad,
        out,
    )
}

/// Seals `plaintext` into `out` as ciphertext followed by the tag.
fn seal_detached<A: AeadInPlace>(
    cipher: &A,
    nonce: &Nonce<A>,
    plaintext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) {
    debug_assert_eq!(out.len(), plaintext.len() + TAG_LEN);
    let (body, tag_out) = out.split_at_mut(plaintext.len());
    body.copy_from_slice(plaintext);
    // Sealing fails only for messages over 256 GiB; ours are handshake
    // fields and cookies of a few dozen bytes.
    let tag = cipher
        .encrypt_in_place_detached(nonce, aad, body)
        .expect("message far below the AEAD length limit");
    tag_out.copy_from_slice(&tag);
}

/// Opens ciphertext-then-tag into `out`; on failure `out` is zeroed.
fn open_detached<A: AeadInPlace>(
    cipher: &A,
    nonce: &Nonce<A>,
    ciphertext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<(), AuthenticationFailed> {
    let body_len = ciphertext
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(AuthenticationFailed)?;
    debug_assert_eq!(out.len(), body_len);
    let (body, tag) = ciphertext.split_at(body_len);
    out.copy_from_slice(body);
    cipher
        .decrypt_in_place_detached(nonce, aad, out, tag.into())
        .map_err(|_| {
            out.zeroize();
            AuthenticationFailed
        })
}

/// A data-path key: one direction of one session.
pub(crate) struct TransportKey {
    #[cfg(all(feature = "ring", not(feature = "portable-aead")))]
    key: ring::aead::LessSafeKey,
    #[cfg(not(all(feature = "ring", not(feature = "portable-aead"))))]
    key: ChaCha20Poly1305,
}

impl TransportKey {
    /// Expands a 32-byte key; the caller zeroizes its copy.
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        #[cfg(all(feature = "ring", not(feature = "portable-aead")))]
        let key = ring::aead::LessSafeKey::new(
            // Any 32 bytes are a valid ChaCha20-Poly1305 key.
            ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key)
                .expect("32-byte ChaCha20-Poly1305 key"),
        );
        #[cfg(not(all(feature = "ring", not(feature = "portable-aead"))))]
        let key = ChaCha20Poly1305::new(key.into());
        Self { key }
    }

    /// Encrypts `body` in place under `counter` and writes its tag to `tag`.
    #[inline]
    pub(crate) fn seal_in_place(&self, counter: u64, body: &mut [u8], tag: &mut [u8; TAG_LEN]) {
        #[cfg(all(feature = "ring", not(feature = "portable-aead")))]
        {
            let nonce = ring::aead::Nonce::assume_unique_for_key(counter_nonce(counter));
            let sealed = self
                .key
                .seal_in_place_separate_tag(nonce, ring::aead::Aad::empty(), body)
                .expect("datagram far below the AEAD length limit");
            tag.copy_from_slice(sealed.as_ref());
        }
        #[cfg(not(all(feature = "ring", not(feature = "portable-aead"))))]
        {
            let sealed = self
                .key
                .encrypt_in_place_detached(&counter_nonce(counter).into(), &[], body)
                .expect("datagram far below the AEAD length limit");
            tag.copy_from_slice(&sealed);
        }
    }

    /// Decrypts `buf` (ciphertext followed by the tag) in place; on success the
    /// plaintext is `buf[..buf.len() - TAG_LEN]`.
    #[inline]
    pub(crate) fn open_in_place(
        &self,
        counter: u64,
        buf: &mut [u8],
    ) -> Result<(), AuthenticationFailed> {
        if buf.len() < TAG_LEN {
            return Err(AuthenticationFailed);
        }
        #[cfg(all(feature = "ring", not(feature = "portable-aead")))]
        {
            let nonce = ring::aead::Nonce::assume_unique_for_key(counter_nonce(counter));
            self.key
                .open_in_place(nonce, ring::aead::Aad::empty(), buf)
                .map(|_| ())
                .map_err(|_| AuthenticationFailed)
        }
        #[cfg(not(all(feature = "ring", not(feature = "portable-aead"))))]
        {
            let (body, tag) = buf.split_at_mut(buf.len() - TAG_LEN);
            let tag = chacha20poly1305::Tag::clone_from_slice(tag);
            self.key
                .decrypt_in_place_detached(&counter_nonce(counter).into(), &[], body, &tag)
                .map_err(|_| AuthenticationFailed)
        }
    }
}
