//! Fixtures shared by the tests (the unit tests, the integration tests and
//! the [`sim`](crate::sim) harness): deterministic operators, host keys and
//! cards, and cards signed as an operator issues them. Compiled only with
//! the `testing` feature (or in this crate's own tests).
//!
//! A fixture panics when what it builds is refused: its inputs are
//! constants of the tests, so a refusal is a broken fixture, never input
//! from a network.

pub mod mutation;

use std::collections::BTreeMap;
use std::sync::Mutex;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sentrymesh_types::{IpNet, PrivateKey, PublicKey, UnixTime, blake2s};

use crate::card::{HostCard, SignCardError, SignedCard};
use crate::identity::OperatorSecret;
use crate::overlay::Overlay;
use crate::role::Role;

/// 2026-05-01 00:00:00 UTC: "now" in the tests.
pub const NOW: UnixTime = UnixTime(1_777_593_600);

/// Why [`HOST_KEYS`] may not be read: a test panicked while holding it.
const POISONED: &str = "a test panicked holding the host keys";

/// The private key of every host key the fixtures made, so that
/// [`SignCard::sign`] can prove possession for any card built from them.
static HOST_KEYS: Mutex<BTreeMap<PublicKey, [u8; 32]>> = Mutex::new(BTreeMap::new());

/// Every operator [`operator`] made, as deriving one's public key costs a
/// scalar multiplication and a simulation of 250 operators asks for them
/// hundreds of thousands of times.
static OPERATORS: Mutex<BTreeMap<u8, OperatorSecret>> = Mutex::new(BTreeMap::new());

/// Operator number `n`, the same key every run.
pub fn operator(n: u8) -> OperatorSecret {
    OPERATORS
        .lock()
        .expect("a test panicked holding the operators")
        .entry(n)
        .or_insert_with(|| {
            let mut seed = [n; 32];
            // Keep clear of the bit pattern refused as a WireGuard key.
            seed[0] |= 1;
            OperatorSecret::from_seed(seed)
        })
        .clone()
}

/// The WireGuard private key made from `seed` (hashed, so seeds that
/// differ only in the bits X25519 clamps give different keys), remembered
/// for [`SignCard::sign`].
pub fn wg_secret(seed: [u8; 32]) -> PrivateKey {
    let seed = blake2s::hash(&[&seed]);
    let secret = PrivateKey::from_bytes(seed);
    HOST_KEYS
        .lock()
        .expect(POISONED)
        .insert(secret.public_key(), seed);
    secret
}

/// The public half of [`wg_secret`]`(seed)`: a real WireGuard key whose
/// private key the fixtures know.
pub fn wg_key(seed: [u8; 32]) -> PublicKey {
    wg_secret(seed).public_key()
}

/// The private key the fixtures made for `key`, or another one when they
/// made none.
pub fn secret_of(key: &PublicKey) -> PrivateKey {
    let seed = HOST_KEYS
        .lock()
        .expect(POISONED)
        .get(key)
        .copied()
        .unwrap_or([0xee; 32]);
    PrivateKey::from_bytes(seed)
}

/// A deterministic RNG for proofs and seals.
pub fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0)
}

/// A card for a host of `op` that names `victim`'s WireGuard key, with a
/// proof made by a key `op` holds: what a rival operator can make to claim
/// another's key.
pub fn claim(op: &OperatorSecret, name: &str, victim: &PublicKey) -> SignedCard {
    let mut c = card(op, name, Role::Sentry);
    let own = secret_of(&c.wg_public_key);
    c.wg_public_key = *victim;
    c.forge(op, &own, &mut rng())
}

/// A valid card for a host of `op`, valid from an hour before [`NOW`] for
/// ninety days, with an endpoint when the role is public.
pub fn card(op: &OperatorSecret, name: &str, role: Role) -> HostCard {
    let operator = op.operator_id();
    let seed = blake2s::hash(&[operator.as_bytes(), name.as_bytes()]);
    HostCard {
        operator,
        name: name.to_owned(),
        role,
        wg_public_key: wg_key(seed),
        addresses: vec!["198.18.1.1/24".parse().expect("an address")],
        endpoints: if role.is_hidden() {
            Vec::new()
        } else {
            vec!["198.18.0.1:51820".parse().expect("an endpoint")]
        },
        allowed_ips: vec!["198.19.0.0/16".parse().expect("a range")],
        not_before: NOW - 3600,
        not_after: NOW + 90 * 86_400,
        serial: 1,
        chain_p2p: Some(
            "f2a1b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4@26656"
                .parse()
                .expect("a chain p2p id"),
        ),
    }
}

/// Operator `n`'s overlay range in the fixtures (these and the
/// [`sim`](crate::sim)'s): 198.19.`n`.0/24, in the mesh overlay
/// 198.19.0.0/16 of [`overlay_of`].
pub fn operator_range(n: u8) -> IpNet {
    format!("198.19.{n}.0/24").parse().expect("a range")
}

/// The mesh overlay 198.19.0.0/16 with the ranges [`operator_range`] gives
/// the operators numbered `operators`.
pub fn overlay_of(operators: impl IntoIterator<Item = u8>) -> Overlay {
    Overlay::new(
        "198.19.0.0/16".parse().expect("a range"),
        operators
            .into_iter()
            .map(|n| (operator(n).operator_id(), operator_range(n))),
    )
    .expect("an overlay")
}

/// `card`, edited from [`card`], signed by its operator `op`.
pub fn signed(card: HostCard, op: &OperatorSecret) -> SignedCard {
    card.sign(op).expect("a card its operator signs")
}

/// Signing a test card the way `card issue` does, with the host key the
/// fixtures made for it.
pub trait SignCard {
    /// [`HostCard::issue`] by `op`, proving possession with the private
    /// key the fixtures remember for the card's key (another one when they
    /// know none, so the card is refused as it would be without the key).
    fn sign(&self, op: &OperatorSecret) -> Result<SignedCard, SignCardError>;
}

impl SignCard for HostCard {
    fn sign(&self, op: &OperatorSecret) -> Result<SignedCard, SignCardError> {
        self.issue(op, &secret_of(&self.wg_public_key), &mut rng())
    }
}
