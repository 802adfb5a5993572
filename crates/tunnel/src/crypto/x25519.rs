//! `DH` over Curve25519, refusing results that a low-order point forces.

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// A Diffie-Hellman result that is all zeros: the peer's point has low order,
/// so the "shared" secret is known to everyone and must not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonContributory;

/// `DH(private, public)`, or an error when the result is all zeros.
pub(crate) fn dh(
    private: &StaticSecret,
    public: &PublicKey,
) -> Result<Zeroizing<[u8; 32]>, NonContributory> {
    let shared = private.diffie_hellman(public);
    if shared.was_contributory() {
        Ok(Zeroizing::new(shared.to_bytes()))
    } else {
        Err(NonContributory)
    }
}
