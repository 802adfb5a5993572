//! Fixtures shared by the unit tests: deterministic operators and cards.

use blake2::{Blake2s256, Digest};

use crate::card::{HostCard, SignedCard};
use crate::cidr::Cidr;
use crate::identity::OperatorSecret;
use crate::overlay::Overlay;
use crate::role::Role;
use crate::wg_key::WgPublicKey;

/// 2026-05-01 00:00:00 UTC: "now" in the tests.
pub(crate) const NOW: u64 = 1_777_593_600;

/// Operator number `n`, the same key every run.
pub(crate) fn operator(n: u8) -> OperatorSecret {
    let mut seed = [n; 32];
    // Keep clear of the bit pattern refused as a WireGuard key.
    seed[0] |= 1;
    OperatorSecret::from_seed(seed)
}

/// A valid card for a host of `op`, valid from an hour before [`NOW`] for
/// ninety days, with an endpoint when the role is public.
pub(crate) fn card(op: &OperatorSecret, name: &str, role: Role) -> HostCard {
    let operator = op.operator_id();
    let key: [u8; 32] = Blake2s256::new()
        .chain_update(operator.as_bytes())
        .chain_update(name)
        .finalize()
        .into();
    HostCard {
        operator,
        name: name.to_owned(),
        role,
        wg_public_key: WgPublicKey::from_bytes(key),
        addresses: vec!["198.18.1.1/24".parse().unwrap()],
        endpoints: if role.is_hidden() {
            Vec::new()
        } else {
            vec!["198.18.0.1:51820".parse().unwrap()]
        },
        allowed_ips: vec!["198.19.0.0/16".parse().unwrap()],
        not_before: NOW - 3600,
        not_after: NOW + 90 * 86_400,
        serial: 1,
        chain_p2p: Some(
            "f2a1b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4@26656"
                .parse()
                .unwrap(),
        ),
    }
}

/// Operator `n`'s overlay range in the tests: 198.19.`n`.0/24.
pub(crate) fn range_of(n: u8) -> Cidr {
    format!("198.19.{n}.0/24").parse().unwrap()
}

/// The mesh overlay 198.19.0.0/16 with the ranges [`range_of`] gives the
/// operators numbered `operators`.
pub(crate) fn overlay_of(operators: impl IntoIterator<Item = u8>) -> Overlay {
    Overlay::new(
        "198.19.0.0/16".parse().unwrap(),
        operators
            .into_iter()
            .map(|n| (operator(n).operator_id(), range_of(n))),
    )
    .unwrap()
}

/// `card`, edited from [`card`], signed by its operator `op`.
pub(crate) fn signed(card: HostCard, op: &OperatorSecret) -> SignedCard {
    card.sign(op).unwrap()
}
