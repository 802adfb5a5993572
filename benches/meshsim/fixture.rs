//! The simulated launch group: N/4 operators, each a hidden producer and
//! three sentries, trusting each other directly or through a sparse web of
//! vouches, and what each host knows when it boots.

use std::collections::BTreeSet;

use sentrymesh_mesh::sim::{host_card, policy};
use sentrymesh_mesh::testing::{NOW, operator, operator_range};
use sentrymesh_mesh::{
    OperatorId, Revocation, RevocationTarget, Role, SignedCard, SignedRevocation, SignedVouch,
    Store, TrustPolicy, Vouch,
};

/// Hosts each operator runs: a producer and [`SENTRIES`] sentries.
pub const HOSTS_PER_OPERATOR: usize = 4;
/// Sentries each operator runs.
pub const SENTRIES: u8 = 3;
/// The most operators: the fixtures number operators with a `u8` and give
/// operator `n` the overlay range 198.19.`n`.0/24.
pub const MAX_OPERATORS: usize = 250;
/// The fewest operators of a web: each trusts its four ring neighbours
/// directly, and at least one other must be left to vouch in.
pub const MIN_WEB_OPERATORS: usize = 6;
/// The vouch threshold of the web.
pub const WEB_THRESHOLD: usize = 2;

/// How the operators trust each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trust {
    /// Every operator trusts every other directly (threshold 1, no vouch).
    Direct,
    /// On a ring, every operator trusts its two neighbours on each side
    /// directly with a threshold of [`WEB_THRESHOLD`]; the operators at even
    /// places of the ring vouch for every other operator, which puts at
    /// least two vouchers among every operator's four neighbours, so every
    /// operator admits every other when its store has room for the vouches.
    Web,
}

impl Trust {
    /// `direct` or `web`, as the command line names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Web => "web",
        }
    }
}

/// One operator of the simulation: its number (the fixtures'
/// `operator(n)`), cards, trust and signed vouches.
#[derive(Debug)]
pub(crate) struct Operator {
    pub(crate) number: u8,
    /// The producer, then the sentries.
    pub(crate) hosts: Vec<SignedCard>,
    pub(crate) policy: TrustPolicy,
    /// The operators trusted directly.
    pub(crate) direct: Vec<u8>,
    pub(crate) vouches: Vec<SignedVouch>,
}

/// Operators `1..=count` trusting each other by `trust`.
///
/// # Panics
///
/// If a fixture is refused (a bug in the fixtures); the caller checks
/// `count` against [`MAX_OPERATORS`] and [`MIN_WEB_OPERATORS`].
pub(crate) fn operators(count: usize, trust: Trust) -> Vec<Operator> {
    (0..count)
        .map(|place| {
            let number = number_at(place);
            let direct: Vec<u8> = match trust {
                Trust::Direct => (0..count).filter(|&p| p != place).map(number_at).collect(),
                Trust::Web => ring_neighbours(place, count)
                    .into_iter()
                    .map(number_at)
                    .collect(),
            };
            let (threshold, vouches) = match trust {
                Trust::Direct => (1, Vec::new()),
                Trust::Web => (WEB_THRESHOLD, vouches_of(place, count)),
            };
            Operator {
                number,
                hosts: (0..=SENTRIES).map(|slot| host(number, slot)).collect(),
                policy: policy(number, &direct, threshold),
                direct,
                vouches,
            }
        })
        .collect()
}

/// The operator's number at `place` (from 0) of the ring.
pub(crate) fn number_at(place: usize) -> u8 {
    u8::try_from(place + 1).expect("at most MAX_OPERATORS operators")
}

/// Host `slot` of operator `op`: 0 the producer, then `sentry-1`, ...
pub(crate) fn host(op: u8, slot: u8) -> SignedCard {
    if slot == 0 {
        host_card(op, "producer", Role::Producer, 1)
    } else {
        host_card(op, &format!("sentry-{slot}"), Role::Sentry, slot + 1)
    }
}

/// The places of the operators that `place` trusts on a ring of `count`:
/// two on each side.
pub(crate) fn ring_neighbours(place: usize, count: usize) -> BTreeSet<usize> {
    [count - 2, count - 1, 1, 2]
        .into_iter()
        .map(|step| (place + step) % count)
        .filter(|&p| p != place)
        .collect()
}

/// Whether the operator at `place` vouches in the web: the even places.
pub(crate) fn is_voucher(place: usize) -> bool {
    place % 2 == 0
}

/// The vouches the operator at `place` signs in the web: one for every
/// other operator when it is a voucher, each naming that operator's range.
fn vouches_of(place: usize, count: usize) -> Vec<SignedVouch> {
    if !is_voucher(place) {
        return Vec::new();
    }
    let voucher = number_at(place);
    (0..count)
        .filter(|&p| p != place)
        .map(|p| {
            let subject = number_at(p);
            Vouch {
                voucher: operator(voucher).operator_id(),
                subject: operator(subject).operator_id(),
                overlay: operator_range(subject),
                issued_at: NOW - 60,
            }
            .sign(&operator(voucher))
            .expect("a vouch")
        })
        .collect()
}

/// What host `slot` of `op` knows when it boots: its operator's cards and
/// vouches and, on a sentry, the first sentry of every operator it trusts
/// directly — the cards that operator's sealed bundle gave it (put in the
/// store as opened, which a sealing per pair of operators would only make
/// slower to set up).
pub(crate) fn boot_store(op: &Operator, slot: u8, all: &[Operator]) -> Store {
    let mut store = Store::new();
    for card in &op.hosts {
        store.insert_card(card.clone(), NOW).expect("an own card");
    }
    for vouch in &op.vouches {
        store
            .insert_vouch(vouch.clone(), NOW)
            .expect("an own vouch");
    }
    if slot > 0 {
        for other in all.iter().filter(|o| op.direct.contains(&o.number)) {
            store
                .insert_card(other.hosts[1].clone(), NOW)
                .expect("a bundle's card");
        }
    }
    store
}

/// A revocation by `op` of its host `card`, as its operator signs it.
pub(crate) fn revocation(op: u8, card: &SignedCard) -> SignedRevocation {
    Revocation {
        issuer: operator(op).operator_id(),
        target: RevocationTarget::Host(card.card().wg_public_key),
        issued_at: NOW,
    }
    .sign(&operator(op))
    .expect("a revocation")
}

/// Every operator's id.
pub(crate) fn ids(operators: &[Operator]) -> BTreeSet<OperatorId> {
    operators
        .iter()
        .map(|o| operator(o.number).operator_id())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The web admits everyone: for every ring size, every operator has at
    /// least [`WEB_THRESHOLD`] vouchers among its direct ones for each
    /// operator it does not trust directly.
    #[test]
    fn every_operator_has_enough_vouchers_for_every_other() {
        for count in MIN_WEB_OPERATORS..=MAX_OPERATORS {
            for place in 0..count {
                let direct = ring_neighbours(place, count);
                assert_eq!(direct.len(), 4, "{count}: {place}");
                let vouchers = direct.iter().filter(|&&p| is_voucher(p)).count();
                assert!(vouchers >= WEB_THRESHOLD, "{count}: {place} has {vouchers}");
            }
        }
    }
}
