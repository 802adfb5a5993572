//! Tests of the peer manager: who peers with whom, the events, the allowed
//! IPs, admission by vouches, revocation, expiry and reloads.

use super::*;
use crate::identity::OperatorSecret;
use crate::revocation::{Revocation, RevocationTarget};
use crate::testing::{NOW, SignCard, card, operator, operator_range, overlay_of, signed};
use crate::vouch::Vouch;

/// A card for host `name` of operator number `op`, with its own address
/// 198.19.`op`.`n`/16 (in its operator's range 198.19.`op`.0/24) and no
/// allowed IPs.
fn host(op: u8, name: &str, role: Role, n: u8) -> SignedCard {
    let secret = operator(op);
    let mut c = card(&secret, name, role);
    c.addresses = vec![format!("198.19.{op}.{n}/16").parse().unwrap()];
    c.allowed_ips = vec![];
    c.sign(&secret).unwrap()
}

fn policy(op: u8, direct: &[u8], k: usize) -> TrustPolicy {
    TrustPolicy::new(
        operator(op).operator_id(),
        direct.iter().map(|&d| operator(d).operator_id()),
        k,
        overlay_of(std::iter::once(op).chain(direct.iter().copied())),
    )
    .unwrap()
}

fn store_of(cards: &[&SignedCard]) -> Store {
    let mut store = Store::new();
    for c in cards {
        store.insert_card((*c).clone(), NOW).unwrap();
    }
    store
}

fn names(manager: &PeerManager) -> Vec<String> {
    manager
        .peers()
        .map(|p| p.name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn events(manager: &mut PeerManager) -> Vec<PeerEvent> {
    std::iter::from_fn(|| manager.poll_event()).collect()
}

/// Operator `op`'s revocation of `target`'s key.
pub(super) fn revoke(op: u8, target: &SignedCard) -> crate::revocation::SignedRevocation {
    let secret = operator(op);
    Revocation {
        issuer: secret.operator_id(),
        target: RevocationTarget::Host(target.card().wg_public_key),
        issued_at: NOW,
    }
    .sign(&secret)
    .unwrap()
}

fn vouch(by: u8, subject: u8) -> crate::vouch::SignedVouch {
    let secret: OperatorSecret = operator(by);
    Vouch {
        voucher: secret.operator_id(),
        subject: operator(subject).operator_id(),
        overlay: operator_range(subject),
        issued_at: NOW,
    }
    .sign(&secret)
    .unwrap()
}

/// Operators 1 and 2 each with a producer and two sentries, and a sentry
/// of operator 3, whom neither trusts.
struct World {
    p1: SignedCard,
    s1a: SignedCard,
    s1b: SignedCard,
    p2: SignedCard,
    s2a: SignedCard,
    s3: SignedCard,
    store: Store,
}

fn world() -> World {
    let p1 = host(1, "producer", Role::Producer, 1);
    let s1a = host(1, "sentry-a", Role::Sentry, 2);
    let s1b = host(1, "sentry-b", Role::Sentry, 3);
    let p2 = host(2, "producer", Role::Producer, 1);
    let s2a = host(2, "sentry-a", Role::Sentry, 2);
    let s3 = host(3, "sentry-a", Role::Sentry, 2);
    let store = store_of(&[&p1, &s1a, &s1b, &p2, &s2a, &s3]);
    World {
        p1,
        s1a,
        s1b,
        p2,
        s2a,
        s3,
        store,
    }
}

#[test]
fn a_producer_peers_with_its_own_sentries_only_and_keeps_them_alive() {
    let w = world();
    let mut producer = PeerManager::new(w.p1.clone(), policy(1, &[2], 1)).unwrap();
    producer.update(&w.store, NOW);
    assert_eq!(names(&producer), ["sentry-a", "sentry-b"]);
    assert!(
        producer
            .peers()
            .all(|p| p.operator == operator(1).operator_id())
    );
    let spec = producer.peer(&w.s1a.card().wg_public_key).unwrap();
    assert_eq!(spec.persistent_keepalive, Some(PERSISTENT_KEEPALIVE));
    assert_eq!(spec.endpoint, w.s1a.card().endpoints.first().cloned());
    assert_eq!(spec.allowed_ips, ["198.19.1.2/32".parse().unwrap()]);
    assert!(!producer.is_admitted_peer(&w.s2a.card().wg_public_key));
    assert!(!producer.is_admitted_peer(&w.p2.card().wg_public_key));
    assert_eq!(events(&mut producer).len(), 2);
}

#[test]
fn a_sentry_peers_across_admitted_operators_and_with_its_own_producer() {
    let w = world();
    let mut sentry = PeerManager::new(w.s1a.clone(), policy(1, &[2], 1)).unwrap();
    sentry.update(&w.store, NOW);
    let keys: BTreeSet<PublicKey> = sentry.peers().map(|p| p.public_key).collect();
    let expected: BTreeSet<PublicKey> = [&w.p1, &w.s1b, &w.s2a]
        .iter()
        .map(|c| c.card().wg_public_key)
        .collect();
    assert_eq!(keys, expected, "not operator 2's producer, not operator 3");
    let producer = sentry.peer(&w.p1.card().wg_public_key).unwrap();
    assert_eq!(
        (producer.endpoint.as_ref(), producer.persistent_keepalive),
        (None, None)
    );
    assert!(!sentry.is_admitted_peer(&w.s3.card().wg_public_key));
    assert_eq!(
        sentry.admitted_operators(),
        &BTreeSet::from([operator(1).operator_id(), operator(2).operator_id()])
    );
}

#[test]
fn an_operator_is_admitted_with_k_vouches_not_k_minus_one() {
    let w = world();
    // Operator 1 trusts 2, 4 and 5 directly and needs two vouches.
    let mut sentry = PeerManager::new(w.s1a.clone(), policy(1, &[2, 4, 5], 2)).unwrap();
    let mut store = w.store.clone();
    store.insert_vouch(vouch(4, 3), NOW).unwrap();
    sentry.update(&store, NOW);
    assert!(!sentry.is_admitted_peer(&w.s3.card().wg_public_key));
    events(&mut sentry);
    store.insert_vouch(vouch(5, 3), NOW).unwrap();
    sentry.update(&store, NOW);
    assert!(sentry.is_admitted_peer(&w.s3.card().wg_public_key));
    assert!(
        matches!(&events(&mut sentry)[..], [PeerEvent::Added(spec)] if spec.public_key == w.s3.card().wg_public_key)
    );
    // Operator 3's sentry is admitted, its producer could never be.
    let p3 = host(3, "producer", Role::Producer, 1);
    store.insert_card(p3.clone(), NOW).unwrap();
    sentry.update(&store, NOW);
    assert!(!sentry.is_admitted_peer(&p3.card().wg_public_key));
}

#[test]
fn events_follow_changes_revocation_and_expiry() {
    let w = world();
    let mut producer = PeerManager::new(w.p1.clone(), policy(1, &[], 1)).unwrap();
    let mut store = w.store.clone();
    producer.update(&store, NOW);
    events(&mut producer);
    producer.update(&store, NOW);
    assert_eq!(events(&mut producer), [], "nothing changed");

    // A new serial with a new endpoint: a change, not a new peer.
    let secret = operator(1);
    let mut moved = w.s1a.card().clone();
    moved.serial = 2;
    moved.endpoints = vec!["198.18.200.2:51820".parse().unwrap()];
    moved.not_after = NOW + 1000;
    store
        .insert_card(moved.sign(&secret).unwrap(), NOW)
        .unwrap();
    producer.update(&store, NOW);
    let spec = producer.peer(&moved.wg_public_key).unwrap().clone();
    assert_eq!(spec.endpoint, moved.endpoints.first().cloned());
    assert_eq!(events(&mut producer), [PeerEvent::Changed(spec)]);

    // Revocation removes a peer.
    store.insert_revocation(revoke(1, &w.s1b), NOW).unwrap();
    producer.update(&store, NOW);
    assert_eq!(
        events(&mut producer),
        [PeerEvent::Removed(w.s1b.card().wg_public_key)]
    );

    // Expiry removes the other, even before the store is pruned.
    producer.update(&store, NOW + 1000);
    assert_eq!(
        events(&mut producer),
        [PeerEvent::Removed(moved.wg_public_key)]
    );
    assert_eq!(producer.peers().count(), 0);
}

#[test]
fn a_revoked_or_expired_host_has_no_peers() {
    let w = world();
    let mut sentry = PeerManager::new(w.s1a.clone(), policy(1, &[2], 1)).unwrap();
    let mut store = w.store.clone();
    sentry.update(&store, NOW);
    assert_eq!(sentry.local_error(), None);
    sentry.update(&store, w.s1a.card().not_after);
    assert!(matches!(
        sentry.local_error(),
        Some(LocalCardError::Time(CardTimeError::Expired { .. }))
    ));
    assert_eq!(sentry.peers().count(), 0);
    // Nothing is due: an expired card never becomes valid again (a time
    // in the past here would make the daemon's loop spin).
    assert_eq!(sentry.next_due(), None);
    sentry.update(&store, NOW);
    assert_eq!(sentry.peers().count(), 3);
    store.insert_revocation(revoke(1, &w.s1a), NOW).unwrap();
    sentry.update(&store, NOW);
    let err = sentry.local_error().unwrap();
    assert!(matches!(err, LocalCardError::Revoked { .. }));
    assert!(err.to_string().contains("revoked its key"), "{err}");
    assert_eq!(sentry.peers().count(), 0);
    assert_eq!(
        events(&mut sentry)
            .iter()
            .filter(|e| matches!(e, PeerEvent::Removed(_)))
            .count(),
        6
    );
}

#[test]
fn a_host_whose_card_is_not_valid_yet_is_due_when_it_becomes_valid() {
    let w = world();
    let secret = operator(1);
    let mut early = w.s1a.card().clone();
    early.not_before = NOW + 3600;
    early.serial = 2;
    let mut sentry = PeerManager::new(early.sign(&secret).unwrap(), policy(1, &[2], 1)).unwrap();
    sentry.update(&w.store, NOW);
    assert_eq!(sentry.peers().count(), 0);
    let due = NOW + 3600 - CLOCK_SKEW;
    assert_eq!(sentry.next_due(), Some(due));
    sentry.update(&w.store, due);
    assert_eq!(sentry.local_error(), None);
    assert_eq!(sentry.peers().count(), 3);
    assert_eq!(sentry.next_due(), None);
}

#[test]
fn a_network_named_twice_goes_to_one_peer_this_host_first() {
    let w = world();
    let one = operator(1);
    // The producer and sentry-b (operator 1's) both name one network in
    // their range; sentry-b also claims this host's own address.
    let shared: IpNet = "198.19.1.128/25".parse().unwrap();
    let mut b = w.s1b.card().clone();
    b.serial = 2;
    b.allowed_ips = vec!["198.19.1.2/32".parse().unwrap(), shared];
    let mut p = w.p1.card().clone();
    p.serial = 2;
    p.allowed_ips = vec![shared];
    let mut store = w.store.clone();
    store.insert_card(signed(b.clone(), &one), NOW).unwrap();
    store.insert_card(signed(p.clone(), &one), NOW).unwrap();
    let mut sentry = PeerManager::new(w.s1a.clone(), policy(1, &[2], 1)).unwrap();
    sentry.update(&store, NOW);
    let of = |card: &SignedCard| {
        sentry
            .peer(&card.card().wg_public_key)
            .unwrap()
            .allowed_ips
            .clone()
    };
    let (low, high) = if b.wg_public_key < p.wg_public_key {
        (&w.s1b, &w.p1)
    } else {
        (&w.p1, &w.s1b)
    };
    let own_address = |card: &SignedCard| IpNet::host(card.card().addresses[0].addr());
    assert_eq!(of(low), [own_address(low), shared]);
    assert_eq!(of(high), [own_address(high)]);
    assert_eq!(sentry.cards_refused(), 0);
}

#[test]
fn a_card_claiming_outside_its_range_is_refused_whole_and_reported_once() {
    let w = world();
    let two = operator(2);
    let mut sentry = PeerManager::new(w.s1a.clone(), policy(1, &[2, 3], 1)).unwrap();
    sentry.update(&w.store, NOW);
    events(&mut sentry);
    assert!(sentry.is_admitted_peer(&w.s2a.card().wg_public_key));
    let s3_endpoint = match w.s3.card().endpoints[0].host {
        crate::endpoint::EndpointHost::Ip(ip) => IpNet::host(ip),
        crate::endpoint::EndpointHost::Name(_) => unreachable!(),
    };
    // (what, the claim, whether it is claimed as an address rather than
    // as an allowed IP)
    let claims: [(&str, IpNet, bool); 7] = [
        ("0.0.0.0/1", "0.0.0.0/1".parse().unwrap(), false),
        ("128.0.0.0/1", "128.0.0.0/1".parse().unwrap(), false),
        ("::/1", "::/1".parse().unwrap(), false),
        ("operator 3's endpoint", s3_endpoint, false),
        (
            "a slice of operator 1's range",
            "198.19.1.0/25".parse().unwrap(),
            false,
        ),
        (
            "operator 1's sentry",
            "198.19.1.3/32".parse().unwrap(),
            true,
        ),
        ("the whole overlay", "198.19.0.0/16".parse().unwrap(), false),
    ];
    for (serial, (what, claim, as_address)) in (2..).zip(claims) {
        let mut greedy = w.s2a.card().clone();
        greedy.serial = serial;
        if as_address {
            greedy
                .addresses
                .push(InterfaceAddress::new(claim.addr(), claim.prefix_len()).unwrap());
        } else {
            greedy.allowed_ips = vec![claim];
        }
        let mut store = w.store.clone();
        store
            .insert_card(signed(greedy.clone(), &two), NOW)
            .unwrap();
        let before = sentry.cards_refused();
        sentry.update(&store, NOW);
        sentry.update(&store, NOW + 1);
        assert!(
            !sentry.is_admitted_peer(&greedy.wg_public_key),
            "{what} is refused"
        );
        assert!(
            sentry
                .peers()
                .flat_map(|p| &p.allowed_ips)
                .all(|ip| operator_range(1).contains_net(ip) || operator_range(3).contains_net(ip)),
            "{what}: nothing of it is routed"
        );
        assert_eq!(sentry.cards_refused(), before + 1, "{what}: counted once");
        let refusal = sentry.poll_refusal().unwrap();
        assert_eq!(sentry.poll_refusal(), None, "{what}: reported once");
        assert_eq!(
            (refusal.name.as_str(), refusal.operator, refusal.serial),
            ("sentry-a", two.operator_id(), serial)
        );
        let text = refusal.to_string();
        assert!(
            text.contains("sentry-a") && text.contains("198.19.2.0/24"),
            "{text}"
        );
        assert!(!text.contains(&claim.to_string()), "{text}");
        // Back to the honest card: a peer again.
        sentry.update(&w.store, NOW);
        events(&mut sentry);
    }
}

#[test]
fn this_hosts_own_card_must_keep_inside_its_range() {
    let w = world();
    let mut outside = w.s1a.card().clone();
    outside.allowed_ips = vec!["198.19.2.0/24".parse().unwrap()];
    let outside = signed(outside, &operator(1));
    assert_eq!(
        PeerManager::new(outside.clone(), policy(1, &[2], 1)).unwrap_err(),
        LocalConfigError::OutOfRange(OutOfRange::AllowedIp {
            range: operator_range(1)
        })
    );
    let mut sentry = PeerManager::new(w.s1a.clone(), policy(1, &[2], 1)).unwrap();
    assert!(matches!(
        sentry.set_local_card(outside, &w.store, NOW),
        Err(LocalConfigError::OutOfRange(_))
    ));
    assert_eq!(sentry.local_card(), &w.s1a);
}

#[test]
fn a_policy_reload_applies_at_once() {
    let w = world();
    let mut sentry = PeerManager::new(w.s1a.clone(), policy(1, &[2], 1)).unwrap();
    sentry.update(&w.store, NOW);
    events(&mut sentry);
    sentry
        .set_policy(policy(1, &[3], 1), &w.store, NOW)
        .unwrap();
    assert_eq!(
        events(&mut sentry),
        [
            PeerEvent::Removed(w.s2a.card().wg_public_key),
            PeerEvent::Added(sentry.peer(&w.s3.card().wg_public_key).unwrap().clone()),
        ]
    );
    assert_eq!(
        sentry.set_policy(policy(2, &[1], 1), &w.store, NOW),
        Err(LocalConfigError::OperatorMismatch {
            card: operator(1).operator_id(),
            policy: operator(2).operator_id(),
        })
    );
    assert_eq!(sentry.policy(), &policy(1, &[3], 1));
}

#[test]
fn this_hosts_card_follows_the_newest_in_the_store() {
    let w = world();
    let mut producer = PeerManager::new(w.p1.clone(), policy(1, &[], 1)).unwrap();
    let mut store = w.store.clone();
    let mut renewed = w.p1.card().clone();
    renewed.serial = 7;
    let renewed = renewed.sign(&operator(1)).unwrap();
    store.insert_card(renewed.clone(), NOW).unwrap();
    producer.update(&store, NOW);
    assert_eq!(producer.local_card(), &renewed);
    // A renewal given locally is for this host only.
    assert!(matches!(
        producer.set_local_card(w.s1a.clone(), &store, NOW),
        Err(LocalConfigError::OtherKey { .. })
    ));
    assert!(PeerManager::new(w.p1.clone(), policy(2, &[], 1)).is_err());
}

/// Claims a card may make: outside the overlay, the whole overlay, and
/// inside and across the ranges of operators 1, 2 and 3.
const CLAIMS: [&str; 12] = [
    "0.0.0.0/1",
    "128.0.0.0/1",
    "::/1",
    "198.18.0.1/32",
    "198.19.0.0/16",
    "198.19.0.0/22",
    "198.19.1.0/24",
    "198.19.1.128/25",
    "198.19.2.0/24",
    "198.19.2.7/32",
    "198.19.3.0/25",
    "198.19.3.200/32",
];

proptest::proptest! {
    /// Whatever operators 1, 2 and 3 claim, every allowed IP a peer gets
    /// lies inside its operator's range, no two peers share one, and each
    /// card that claims beyond its range is refused and counted once.
    #[test]
    fn every_allowed_ip_lies_in_its_operators_range(
        claims in proptest::collection::vec((1u8..=3, 0..CLAIMS.len()), 0..12),
    ) {
        let w = world();
        let mut store = w.store.clone();
        let mut beyond = 0;
        for (i, &(op, claim)) in claims.iter().enumerate() {
            let secret = operator(op);
            let mut extra = card(&secret, &format!("extra-{i}"), Role::Sentry);
            extra.addresses = vec![format!("198.19.{op}.{}/32", 100 + i).parse().unwrap()];
            let claim: IpNet = CLAIMS[claim].parse().unwrap();
            extra.allowed_ips = vec![claim];
            beyond += u64::from(!operator_range(op).contains_net(&claim));
            store.insert_card(signed(extra, &secret), NOW).unwrap();
        }
        let mut sentry = PeerManager::new(w.s1a.clone(), policy(1, &[2, 3], 1)).unwrap();
        sentry.update(&store, NOW);
        sentry.update(&store, NOW + 1);
        let mut seen = BTreeSet::new();
        for peer in sentry.peers() {
            let range = sentry.admitted_ranges()[&peer.operator];
            for ip in &peer.allowed_ips {
                proptest::prop_assert!(range.contains_net(ip), "{} routes {ip}", peer.name);
                proptest::prop_assert!(seen.insert(*ip), "{ip} twice");
            }
        }
        proptest::prop_assert_eq!(sentry.cards_refused(), beyond);
        proptest::prop_assert_eq!(
            std::iter::from_fn(|| sentry.poll_refusal()).count() as u64,
            beyond
        );
    }
}
