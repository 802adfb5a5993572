//! Trust that scales: a web of 250 operators, each trusting its two ring
//! neighbours directly with a threshold of 2 and vouching for every other
//! operator (62,250 vouches in all), admits every operator at every host,
//! and each host keeps only the vouches that can count for it; a directly
//! trusted rival that vouches for 100,000 made-up operators and signs
//! cards beyond its quota changes neither.
//!
//! In the first two, each host is its [`Store`] and [`TrustPolicy`],
//! offered every object as gossip would offer it (gossip itself only adds
//! that the signer is admitted, which every operator here ends up being).
//! The third runs a smaller web of the same shape through gossip (the
//! crate's `sim` harness): a vouch travels only through the hosts that keep
//! it — its voucher's, and those it counts for — and still reaches every
//! host that needs it.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use sentrymesh_mesh::testing::{NOW, SignCard, card, operator, operator_range};
use sentrymesh_mesh::{
    HOST_QUOTA, InsertError, OperatorId, OperatorSecret, Overlay, Role, STATEMENT_QUOTA,
    SignedCard, SignedVouch, Store, TrustPolicy, Vouch,
};
use sentrymesh_types::IpNet;

/// Operators in the web.
const OPERATORS: usize = 250;
/// Vouches needed to admit an operator not trusted directly.
const THRESHOLD: usize = 2;
/// Operators the rival vouches for that do not exist.
const MADE_UP: usize = 100_000;

fn id(n: usize) -> OperatorId {
    operator(n as u8).operator_id()
}

/// The two ring neighbours of operator `n`.
fn neighbours(n: usize) -> [usize; 2] {
    [(n + OPERATORS - 1) % OPERATORS, (n + 1) % OPERATORS]
}

/// The policy of a host of operator `n`.
fn policy(n: usize) -> TrustPolicy {
    let configured = std::iter::once(n).chain(neighbours(n));
    let overlay = Overlay::new(
        "198.19.0.0/16".parse().unwrap(),
        configured.map(|m| (id(m), operator_range(m as u8))),
    )
    .unwrap();
    TrustPolicy::new(id(n), neighbours(n).map(id), THRESHOLD, overlay).unwrap()
}

/// An empty store of a host of operator `n`, as gossip sets it up.
fn store(n: usize) -> Store {
    let mut store = Store::new();
    let policy = policy(n);
    store.reserve_room(policy.local(), policy.direct());
    store
}

fn vouch(by: &OperatorSecret, subject: OperatorId, range: IpNet) -> SignedVouch {
    Vouch {
        voucher: by.operator_id(),
        subject,
        overlay: range,
        issued_at: NOW,
    }
    .sign(by)
    .unwrap()
}

/// Every operator's vouch for every other, naming its range (signed once
/// for both tests).
fn web() -> &'static [SignedVouch] {
    static WEB: OnceLock<Vec<SignedVouch>> = OnceLock::new();
    WEB.get_or_init(|| {
        let ids: Vec<OperatorId> = (0..OPERATORS).map(id).collect();
        let mut vouches = Vec::with_capacity(OPERATORS * (OPERATORS - 1));
        for v in 0..OPERATORS {
            let voucher = operator(v as u8);
            for s in (0..OPERATORS).filter(|&s| s != v) {
                vouches.push(vouch(&voucher, ids[s], operator_range(s as u8)));
            }
        }
        vouches
    })
}

/// Offers `store` every vouch; returns how many it refused as unable to
/// count here, or over their voucher's quota (any other refusal fails the
/// test).
fn offer(store: &mut Store, vouches: &[SignedVouch]) -> usize {
    let mut refused = 0;
    for vouch in vouches {
        match store.insert_vouch(vouch.clone(), NOW) {
            Ok(_) => {}
            Err(InsertError::NotCounted { .. } | InsertError::OverQuota { .. }) => refused += 1,
            Err(other) => panic!("a vouch refused otherwise: {other}"),
        }
    }
    refused
}

/// The vouch pairs a host of an operator trusting `d` others directly
/// holds in a web of `operators` each vouching for every other: every
/// vouch of its vouchers (the `d` and its own operator), and no other.
fn bound(d: usize, operators: usize) -> usize {
    (d + 1) * (operators - 1)
}

#[test]
fn a_web_of_250_operators_admits_every_operator_at_every_host() {
    let vouches = web();
    assert_eq!(vouches.len(), 62_250);
    let everyone: BTreeSet<OperatorId> = (0..OPERATORS).map(id).collect();
    for n in 0..OPERATORS {
        let policy = policy(n);
        let mut store = store(n);
        let refused = offer(&mut store, vouches);
        let admitted = policy.admitted_operators(store.vouches(), store.revocations());
        assert_eq!(admitted, everyone, "host of operator {n}");
        // Only its three vouchers' vouches (its own operator's, which it
        // publishes, and its two neighbours'): 747 of 62,250.
        let d = policy.direct().len();
        let held = store.vouches().count();
        assert_eq!(held, bound(d, OPERATORS), "host of operator {n}");
        assert_eq!(held + refused, vouches.len());
    }
}

/// Made-up operator `n`: a key no one but the rival vouches for.
fn made_up(n: usize) -> OperatorId {
    let mut seed = [0x77; 32];
    seed[..8].copy_from_slice(&(n as u64).to_le_bytes());
    OperatorSecret::from_seed(seed).operator_id()
}

#[test]
fn a_rival_vouching_for_made_up_operators_fills_only_its_own_share() {
    // Operator 100 is the rival: trusted directly by 99 and 101, admitted
    // by vouches everywhere else.
    let rival_n = 100;
    let rival = operator(rival_n as u8);
    let flood: Vec<SignedVouch> = (0..MADE_UP)
        .map(|n| vouch(&rival, made_up(n), operator_range(255)))
        .collect();
    let cards: Vec<SignedCard> = (0..=HOST_QUOTA)
        .map(|n| {
            card(&rival, &format!("made-up-{n}"), Role::Sentry)
                .sign(&rival)
                .unwrap()
        })
        .collect();
    let vouches = web();
    let everyone: BTreeSet<OperatorId> = (0..OPERATORS).map(id).collect();
    // Where the rival vouches (99, 101) and where it does not (0).
    for n in [99, 101, 0] {
        let policy = policy(n);
        let mut store = store(n);
        // The flood comes first, so that it would crowd out what follows
        // if it could.
        let flood_refused = offer(&mut store, &flood);
        let mut over_quota = 0;
        for card in &cards {
            match store.insert_card(card.clone(), NOW) {
                Ok(_) => {}
                Err(InsertError::OverQuota { .. }) => over_quota += 1,
                Err(other) => panic!("a card refused otherwise: {other}"),
            }
        }
        offer(&mut store, vouches);
        let admitted = policy.admitted_operators(store.vouches(), store.revocations());
        assert_eq!(admitted, everyone, "host of operator {n}");
        let (rival_cards, rival_pairs) = store.usage_of(&rival.operator_id());
        assert_eq!((rival_cards, over_quota), (HOST_QUOTA, 1));
        let d = policy.direct().len();
        let honest = bound(d, OPERATORS);
        let held = store.vouches().count();
        if policy.is_voucher(&rival.operator_id()) {
            // Its share, and not one more; the others' vouches all in.
            let share = store.statement_quota();
            assert!(share <= STATEMENT_QUOTA);
            assert_eq!(rival_pairs, share);
            assert_eq!(flood_refused, MADE_UP - share, "host of operator {n}");
            assert_eq!(held, honest - (OPERATORS - 1) + share);
        } else {
            // Where its vouches cannot count, none is kept.
            assert_eq!((rival_pairs, flood_refused), (0, MADE_UP));
            assert_eq!(held, honest);
        }
        // Nothing of the made-up operators is admitted.
        assert!(admitted.iter().all(|op| everyone.contains(op)));
    }
}

/// Operators of the web run through gossip.
const GOSSIPED: u8 = 8;

#[test]
fn a_sparse_web_converges_through_gossip_keeping_only_what_counts() {
    use sentrymesh_mesh::sim::{Net, policy as sim_policy, seed};
    // Operators 1 to 8 in a ring, each trusting its two neighbours with a
    // threshold of 2, each vouching for every other at one of its own
    // sentries; each sentry starts knowing one sentry of every operator.
    let ring = |op: u8| [(op + GOSSIPED - 2) % GOSSIPED + 1, op % GOSSIPED + 1];
    let ops: Vec<u8> = (1..=GOSSIPED).collect();
    let mut net = Net::launch(&ops, |op| sim_policy(op, &ring(op), THRESHOLD), seed());
    for &voucher in &ops {
        for subject in ops.iter().filter(|&&s| s != voucher) {
            let v = vouch(
                &operator(voucher),
                operator(*subject).operator_id(),
                operator_range(*subject),
            );
            net.hand(voucher, "sentry-1", v);
        }
    }
    net.run_for(30);
    let everyone: BTreeSet<OperatorId> = ops.iter().map(|&op| operator(op).operator_id()).collect();
    let d = 2;
    for m in net.nodes() {
        assert_eq!(m.mesh.admitted_operators(), &everyone, "{}", m.name());
        // Its three vouchers' vouches: 21 of the 56 the web signed.
        let held = m.mesh.store().vouches().count();
        assert_eq!(held, bound(d, usize::from(GOSSIPED)), "{}", m.name());
    }
    net.assert_events_match();
    net.assert_no_hidden_leaks();
}
