//! What the crate's integration tests share: a fixed clock, operators made
//! from a number, host keys made from a seed, cards signed with them,
//! random mutations of byte strings, and a mesh in virtual time ([`net`]).
// Each test crate uses a different part.
#![allow(dead_code)]

pub(crate) mod net;

use std::collections::BTreeMap;
use std::sync::Mutex;

use blake2::{Blake2s256, Digest};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sentrymesh_mesh::{
    HostCard, OperatorSecret, SignCardError, SignedCard, WgPublicKey, WgSecretKey,
};

/// 2026-05-01 00:00:00 UTC.
pub(crate) const NOW: u64 = 1_777_593_600;

/// Operator `n`, always the same key.
pub(crate) fn operator(n: u8) -> OperatorSecret {
    let mut seed = [n; 32];
    seed[0] |= 1;
    OperatorSecret::from_seed(seed)
}

/// The private key of every host key [`wg_key`] made, so that
/// [`SignCard::sign`] can prove possession for a card built from it.
static HOST_KEYS: Mutex<BTreeMap<WgPublicKey, [u8; 32]>> = Mutex::new(BTreeMap::new());

/// The WireGuard private key made from `seed` (hashed, so seeds that
/// differ only in the bits X25519 clamps give different keys), remembered
/// for [`SignCard::sign`].
pub(crate) fn wg_secret(seed: [u8; 32]) -> WgSecretKey {
    let seed: [u8; 32] = Blake2s256::digest(seed).into();
    let secret = WgSecretKey::from_bytes(seed);
    HOST_KEYS.lock().unwrap().insert(secret.public_key(), seed);
    secret
}

/// The public half of [`wg_secret`]`(seed)`: a real WireGuard key whose
/// private key the fixtures know.
pub(crate) fn wg_key(seed: [u8; 32]) -> WgPublicKey {
    wg_secret(seed).public_key()
}

/// Signing a test card the way `card issue` does, with the host key the
/// fixtures made for it.
pub(crate) trait SignCard {
    /// [`HostCard::issue`] by `op`, proving possession with the private
    /// key remembered for the card's key (another one when none is, so the
    /// card is refused as it would be without the key).
    fn sign(&self, op: &OperatorSecret) -> Result<SignedCard, SignCardError>;
}

impl SignCard for HostCard {
    fn sign(&self, op: &OperatorSecret) -> Result<SignedCard, SignCardError> {
        let seed = HOST_KEYS
            .lock()
            .unwrap()
            .get(&self.wg_public_key)
            .copied()
            .unwrap_or([0xee; 32]);
        self.issue(
            op,
            &WgSecretKey::from_bytes(seed),
            &mut ChaCha20Rng::seed_from_u64(u64::from(seed[0])),
        )
    }
}

/// A change to a byte string.
#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    FlipBit { at: usize, bit: u8 },
    SetByte { at: usize, value: u8 },
    Truncate { to: usize },
    Extend { with: Vec<u8> },
    Insert { at: usize, value: u8 },
    Remove { at: usize },
}

pub(crate) fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::SetByte { at, value }),
        any::<usize>().prop_map(|to| Mutation::Truncate { to }),
        proptest::collection::vec(any::<u8>(), 1..40).prop_map(|with| Mutation::Extend { with }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Insert { at, value }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
    ]
}

pub(crate) fn apply(original: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for m in mutations {
        let len = bytes.len();
        match m {
            Mutation::FlipBit { at, bit } if len > 0 => bytes[at % len] ^= 1 << bit,
            Mutation::SetByte { at, value } if len > 0 => bytes[at % len] = *value,
            Mutation::Truncate { to } => bytes.truncate(to % (len + 1)),
            Mutation::Extend { with } => bytes.extend_from_slice(with),
            Mutation::Insert { at, value } => bytes.insert(at % (len + 1), *value),
            Mutation::Remove { at } if len > 0 => {
                bytes.remove(at % len);
            }
            _ => {}
        }
    }
    bytes
}
