//! XEdDSA over Curve25519, as Signal specifies it: a signature made with an
//! X25519 private key — a WireGuard private key — and checked against its
//! X25519 public key, the Montgomery u-coordinate a card carries.
//!
//! Signing: the clamped private scalar `k` gives the Edwards point
//! `E = kB`; the public Edwards key `A` is `E` with its sign bit cleared,
//! and the signing scalar `a` is `k`, or `-k mod q` when `E`'s sign bit was
//! set (so that `aB = A`). With 64 random bytes `Z` from the caller's RNG,
//! `r = hash1(a || M || Z) mod q` (`hash1` is SHA-512 behind a 32-byte
//! prefix of `0xFE` and 31 `0xFF`), `R = rB`, `h = SHA-512(R || A || M) mod
//! q`, `s = r + h·a mod q`; the signature is `R || s`.
//!
//! Verifying: a u-coordinate that is not canonical (`u ≥ p`) is refused;
//! `A` is the Edwards point with sign 0 for `u`, refused when `u` is on the
//! twist (no such point) or `A` is of low order; `s` must be canonical
//! (`s < q`); and `sB - hA` must encode exactly as `R`. Since `h` is the
//! Ed25519 challenge, an XEdDSA signature is an Ed25519 signature by `A`:
//! the tests check ours with `ed25519-dalek`.

use curve25519_dalek::scalar::clamp_integer;
use curve25519_dalek::{EdwardsPoint, MontgomeryPoint, Scalar};
use rand_core::CryptoRngCore;
use sentrymesh_types::PublicKey;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

/// Length of an XEdDSA signature: `R` (32) and `s` (32).
pub(crate) const SIGNATURE_LEN: usize = 64;

/// `2^256 - 1 - 1` in 32 little-endian bytes: the prefix of `hash1`.
const HASH1_PREFIX: [u8; 32] = {
    let mut prefix = [0xff; 32];
    prefix[0] = 0xfe;
    prefix
};

/// Signs `message` with the X25519 private key `private` (clamped here, as
/// X25519 clamps it), taking the nonce's 64 random bytes from `rng`.
pub(crate) fn sign(
    private: &[u8; 32],
    message: &[u8],
    rng: &mut impl CryptoRngCore,
) -> [u8; SIGNATURE_LEN] {
    let mut k = Scalar::from_bytes_mod_order(clamp_integer(*private));
    let mut public = EdwardsPoint::mul_base(&k).compress().to_bytes();
    let mut a = if public[31] & 0x80 == 0 { k } else { -k };
    public[31] &= 0x7f;
    let mut random = Zeroizing::new([0u8; 64]);
    rng.fill_bytes(random.as_mut());
    let mut r = scalar_of(
        Sha512::new()
            .chain_update(HASH1_PREFIX)
            .chain_update(a.as_bytes())
            .chain_update(message)
            .chain_update(random.as_ref()),
    );
    let big_r = EdwardsPoint::mul_base(&r).compress().to_bytes();
    let h = challenge(&big_r, &public, message);
    let s = r + h * a;
    k.zeroize();
    a.zeroize();
    r.zeroize();
    let mut signature = [0u8; SIGNATURE_LEN];
    signature[..32].copy_from_slice(&big_r);
    signature[32..].copy_from_slice(s.as_bytes());
    signature
}

/// Whether `signature` is a valid XEdDSA signature of `message` by the
/// holder of the X25519 public key `public` (a u-coordinate).
pub(crate) fn verify(public: &[u8; 32], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    if !PublicKey::from_bytes(*public).is_canonical() {
        return false;
    }
    // Sign 0 by construction of the signer's `A`; no point for a u on the
    // twist (or for u = -1).
    let Some(a) = MontgomeryPoint(*public).to_edwards(0) else {
        return false;
    };
    if a.is_small_order() {
        return false;
    }
    let mut big_r = [0u8; 32];
    big_r.copy_from_slice(&signature[..32]);
    let mut s = [0u8; 32];
    s.copy_from_slice(&signature[32..]);
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else {
        return false;
    };
    let h = challenge(&big_r, &a.compress().to_bytes(), message);
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, &-a, &s);
    check.compress().to_bytes() == big_r
}

/// `SHA-512(R || A || M) mod q`: the Ed25519 challenge.
fn challenge(big_r: &[u8; 32], public: &[u8; 32], message: &[u8]) -> Scalar {
    scalar_of(
        Sha512::new()
            .chain_update(big_r)
            .chain_update(public)
            .chain_update(message),
    )
}

/// The hash's 64-byte output reduced mod q.
fn scalar_of(hash: Sha512) -> Scalar {
    let mut wide = Zeroizing::new([0u8; 64]);
    wide.copy_from_slice(&hash.finalize());
    Scalar::from_bytes_mod_order_wide(&wide)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signature, VerifyingKey};
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    use super::*;

    fn key_pair(seed: u64) -> ([u8; 32], [u8; 32]) {
        let mut private = [0u8; 32];
        ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut private);
        let public = MontgomeryPoint::mul_base_clamped(private).to_bytes();
        (private, public)
    }

    #[test]
    fn a_signature_verifies_and_is_an_ed25519_signature_by_the_edwards_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        // Enough keys that both signs of E occur.
        let mut negated = 0;
        for seed in 0..32 {
            let (private, public) = key_pair(seed);
            let message = format!("message {seed}");
            let signature = sign(&private, message.as_bytes(), &mut rng);
            assert!(verify(&public, message.as_bytes(), &signature));
            let edwards = EdwardsPoint::mul_base_clamped(private)
                .compress()
                .to_bytes();
            negated += usize::from(edwards[31] >> 7);
            let a = MontgomeryPoint(public).to_edwards(0).unwrap().compress();
            let key = VerifyingKey::from_bytes(a.as_bytes()).unwrap();
            key.verify_strict(message.as_bytes(), &Signature::from_bytes(&signature))
                .unwrap();
        }
        assert!((1..32).contains(&negated), "{negated}");
    }

    #[test]
    fn two_signatures_of_one_message_differ_and_both_verify() {
        let (private, public) = key_pair(1);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let one = sign(&private, b"m", &mut rng);
        let two = sign(&private, b"m", &mut rng);
        assert_ne!(one, two);
        assert!(verify(&public, b"m", &one) && verify(&public, b"m", &two));
    }

    #[test]
    fn any_flipped_bit_or_other_key_or_message_fails() {
        let (private, public) = key_pair(2);
        let (_, other) = key_pair(3);
        let signature = sign(&private, b"card", &mut ChaCha20Rng::seed_from_u64(2));
        for bit in 0..SIGNATURE_LEN * 8 {
            let mut bad = signature;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(!verify(&public, b"card", &bad), "bit {bit}");
        }
        for bit in 0..255 {
            let mut key = public;
            key[bit / 8] ^= 1 << (bit % 8);
            assert!(!verify(&key, b"card", &signature), "key bit {bit}");
        }
        assert!(!verify(&other, b"card", &signature));
        assert!(!verify(&public, b"card!", &signature));
        assert!(!verify(&public, b"", &signature));
    }

    #[test]
    fn a_non_canonical_s_is_refused() {
        let (private, public) = key_pair(4);
        let signature = sign(&private, b"m", &mut ChaCha20Rng::seed_from_u64(4));
        // s + q is the same scalar, encoded non-canonically.
        let q = Scalar::ZERO - Scalar::ONE;
        let mut s_plus_q = [0u8; 32];
        let mut carry = 1u16; // q = (q - 1) + 1
        let s = &signature[32..];
        for i in 0..32 {
            let sum = u16::from(s[i]) + u16::from(q.as_bytes()[i]) + carry;
            s_plus_q[i] = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "s + q fits 256 bits");
        let mut bad = signature;
        bad[32..].copy_from_slice(&s_plus_q);
        assert!(!verify(&public, b"m", &bad));
    }

    #[test]
    fn a_key_on_the_twist_or_not_canonical_never_verifies() {
        // u = 2 is on the twist of Curve25519: no Edwards point has it.
        let mut twist = [0u8; 32];
        twist[0] = 2;
        assert!(MontgomeryPoint(twist).to_edwards(0).is_none());
        let any = [0x55u8; SIGNATURE_LEN];
        assert!(!verify(&twist, b"m", &any));

        let (_, public) = key_pair(5);
        let mut high = public;
        high[31] |= 0x80;
        assert!(!PublicKey::from_bytes(high).is_canonical());
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(!PublicKey::from_bytes(p).is_canonical());
        p[0] = 0xec;
        assert!(PublicKey::from_bytes(p).is_canonical());
        assert!(PublicKey::from_bytes(public).is_canonical());
    }

    #[test]
    fn the_signer_of_a_small_order_key_cannot_be_checked() {
        // u = 0 and u = 1 map to Edwards points of order 2 and 4.
        for u in [0u8, 1] {
            let mut key = [0u8; 32];
            key[0] = u;
            assert!(!verify(&key, b"m", &[0; SIGNATURE_LEN]));
            // R = identity, s = 0: sB - hA = -hA, the identity for some h.
            let mut identity = [0u8; SIGNATURE_LEN];
            identity[0] = 1;
            assert!(!verify(&key, b"m", &identity));
        }
    }
}
