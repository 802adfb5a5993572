//! A property of the member against an admitted rival: whatever sequence of
//! validly signed objects an admitted operator sends — cards with random
//! names, roles, keys, addresses, allowed IPs (inside its range),
//! endpoints, validity and serials; vouches for anyone with any range;
//! revocations of anything — the member never panics and keeps working:
//! its own card stays in force, its own operator's other sentry stays a
//! peer, no peer it is given has a key an interface would refuse (of low
//! order), and a change to that sentry's card still becomes a peer event.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use sentrymesh_mesh::testing::overlay_of;
use sentrymesh_mesh::testing::{NOW, SignCard, operator, wg_key};
use sentrymesh_mesh::{
    Endpoint, EndpointHost, GossipMessage, HostCard, Mesh, Object, PeerEvent, Revocation,
    RevocationTarget, Role, SignedCard, Store, TrustPolicy, Vouch,
};
use sentrymesh_types::{InterfaceAddress, IpNet, PublicKey, UnixTime};

/// The member's operator, the rival's, and the operators the rival may
/// vouch for.
const OWN: u8 = 1;
const RIVAL: u8 = 2;
const OTHERS: [u8; 3] = [3, 4, 5];

/// The WireGuard key of host `i` of operator `op`.
fn host_key(op: u8, i: u8) -> PublicKey {
    let mut seed = [0x5a; 32];
    seed[0] = op;
    seed[1] = i;
    wg_key(seed)
}

/// Host `i` of operator `op`: 198.19.`op`.`i`/32, endpoint 198.18.`op`.`i`.
fn host(op: u8, name: &str, i: u8, serial: u64) -> SignedCard {
    HostCard {
        operator: operator(op).operator_id(),
        name: name.into(),
        role: Role::Sentry,
        wg_public_key: host_key(op, i),
        addresses: vec![InterfaceAddress::host(Ipv4Addr::new(198, 19, op, i).into())],
        endpoints: vec![format!("198.18.{op}.{i}:51820").parse().unwrap()],
        allowed_ips: vec![],
        not_before: NOW - 3600,
        not_after: NOW + 30 * 86_400,
        serial,
        chain_p2p: None,
    }
    .sign(&operator(op))
    .unwrap()
}

/// The member (operator 1's sentry-1), knowing its own sentry-2 and the
/// rival's sentry, whose messages the tests send.
struct Member {
    mesh: Mesh,
    own_peer: SignedCard,
    rival: SignedCard,
}

fn member() -> Member {
    let own = host(OWN, "sentry-1", 1, 1);
    let own_peer = host(OWN, "sentry-2", 2, 1);
    let rival = host(RIVAL, "sentry-1", 1, 1);
    let mut store = Store::new();
    store.insert_card(own_peer.clone(), NOW).unwrap();
    store.insert_card(rival.clone(), NOW).unwrap();
    let overlay = overlay_of([OWN, RIVAL]);
    let policy = TrustPolicy::new(
        operator(OWN).operator_id(),
        [operator(RIVAL).operator_id()],
        1,
        overlay,
    )
    .unwrap();
    let mut mesh = Mesh::new(own, policy, store, NOW).unwrap();
    while mesh.poll_event().is_some() {}
    assert!(mesh.is_admitted_peer(&own_peer.card().wg_public_key));
    assert!(mesh.is_admitted_peer(&rival.card().wg_public_key));
    Member {
        mesh,
        own_peer,
        rival,
    }
}

/// What the rival sends.
#[derive(Debug, Clone)]
enum Sent {
    Card(HostCard),
    Vouch(Vouch),
    Revocation(Revocation),
}

/// The low-order points of Curve25519 and its twist (u = 0, 1, two of
/// order 8, p - 1), and p + 1 (u = 1 not reduced), little-endian hex.
const LOW_ORDER: [&str; 6] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

fn from_hex(hex: &str) -> PublicKey {
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    PublicKey::from_bytes(bytes)
}

/// A key the rival may name: a random one it holds, the key of one of the
/// three hosts above (only its own sentry's is its to prove), or a key of
/// low order, which would make every interface refuse the peer.
fn key() -> impl Strategy<Value = PublicKey> {
    prop_oneof![
        4 => any::<[u8; 32]>().prop_map(wg_key),
        1 => prop::sample::select(vec![(OWN, 1u8), (OWN, 2), (RIVAL, 1)])
            .prop_map(|(op, i)| host_key(op, i)),
        1 => prop::sample::select(LOW_ORDER.to_vec()).prop_map(from_hex),
    ]
}

/// Whether a tunnel can peer with `key`: X25519 with it is not all zeros.
fn usable(key: &PublicKey) -> bool {
    let secret = x25519_dalek::StaticSecret::from([0x42; 32]);
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*key.as_bytes()));
    shared.as_bytes() != &[0; 32]
}

/// A network inside the rival's range, or a host address in it.
fn inside_range() -> impl Strategy<Value = InterfaceAddress> {
    (any::<u8>(), 24u8..=32).prop_map(|(last, prefix)| {
        InterfaceAddress::new(Ipv4Addr::new(198, 19, RIVAL, last).into(), prefix).unwrap()
    })
}

fn card() -> impl Strategy<Value = HostCard> {
    (
        "[a-z][a-z0-9-]{0,20}[a-z0-9]",
        prop::sample::select(Role::ALL.to_vec()),
        key(),
        prop::collection::btree_set(inside_range(), 1..=3),
        prop::collection::btree_set(
            (any::<u16>(), 1u16..).prop_map(|(host, port)| Endpoint {
                host: EndpointHost::Ip(
                    Ipv4Addr::new(198, 18, (host >> 8) as u8, host as u8).into(),
                ),
                port,
            }),
            0..=2,
        ),
        prop::collection::btree_set(inside_range().prop_map(|c| c.network()), 0..=3),
        (-100_000i64..100_000, 1u64..200_000),
        0u64..4,
    )
        .prop_map(
            |(name, role, wg_public_key, addresses, endpoints, allowed, (start, span), serial)| {
                let not_before = UnixTime(NOW.0.saturating_add_signed(start));
                HostCard {
                    operator: operator(RIVAL).operator_id(),
                    name,
                    role,
                    wg_public_key,
                    addresses: addresses.into_iter().collect(),
                    endpoints: if role.is_hidden() {
                        Vec::new()
                    } else {
                        endpoints.into_iter().collect()
                    },
                    allowed_ips: allowed.into_iter().collect(),
                    not_before,
                    not_after: not_before + span,
                    serial,
                    chain_p2p: None,
                }
            },
        )
}

fn sent() -> impl Strategy<Value = Sent> {
    let operator_number = prop::sample::select(vec![OWN, RIVAL, 3, 4, 5]);
    prop_oneof![
        4 => card().prop_map(Sent::Card),
        1 => (prop::sample::select(OTHERS.to_vec()), any::<u8>(), 16u8..=24, -1000i64..1000)
            .prop_map(|(subject, third, prefix, at)| {
                let overlay =
                    IpNet::truncating(Ipv4Addr::new(198, 19, third, 0).into(), prefix).unwrap();
                Sent::Vouch(Vouch {
                    voucher: operator(RIVAL).operator_id(),
                    subject: operator(subject).operator_id(),
                    overlay,
                    issued_at: UnixTime(NOW.0.saturating_add_signed(at)),
                })
            }),
        1 => prop_oneof![
            key().prop_map(RevocationTarget::Host),
            operator_number.prop_map(|op| RevocationTarget::Vouch(operator(op).operator_id())),
        ]
        .prop_map(|target| Sent::Revocation(Revocation {
            issuer: operator(RIVAL).operator_id(),
            target,
            issued_at: NOW,
        })),
    ]
}

/// The object the rival signs, if it can: an invalid card is refused when
/// issued, and a card naming another operator's host key cannot carry a
/// valid proof (the test's fixtures know every key; the rival does not).
fn signed(sent: &Sent) -> Option<Object> {
    let rival = operator(RIVAL);
    match sent {
        Sent::Card(card)
            if [1, 2]
                .map(|i| host_key(OWN, i))
                .contains(&card.wg_public_key) =>
        {
            None
        }
        Sent::Card(card) => card.sign(&rival).ok().map(Object::from),
        Sent::Vouch(vouch) => vouch.sign(&rival).ok().map(Object::from),
        Sent::Revocation(revocation) => revocation.sign(&rival).ok().map(Object::from),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn nothing_an_admitted_rival_signs_stops_the_member(
        rounds in prop::collection::vec(
            (prop::collection::vec(sent(), 1..4), 0u64..600),
            1..8,
        ),
    ) {
        let Member { mut mesh, own_peer, rival } = member();
        let from = rival.card().wg_public_key;
        let mut now = NOW;
        for (batch, wait) in &rounds {
            let objects: Vec<Object> = batch.iter().filter_map(signed).collect();
            if let Ok(bytes) = (GossipMessage::Objects { objects }).encode() {
                // Refused objects are counted; nothing here may panic.
                let _ = mesh.handle_message(from, &bytes, now);
            }
            now += *wait;
            mesh.handle_timeout(now);
            while let Some(event) = mesh.poll_event() {
                if let PeerEvent::Added(peer) | PeerEvent::Changed(peer) = event {
                    prop_assert!(usable(&peer.public_key), "{:?}", peer.public_key);
                }
            }
            while mesh.poll_refusal().is_some() {}
            while mesh.poll_card_refusal().is_some() {}
            while let Some((_, out)) = mesh.poll_transmit() {
                prop_assert!(GossipMessage::decode(&out).is_ok());
            }
            prop_assert!(mesh.local_error().is_none(), "{:?}", mesh.local_error());
            prop_assert!(mesh.is_admitted_peer(&own_peer.card().wg_public_key));
        }
        // The member still works: a new card for its own sentry is a
        // change of that peer.
        let mut moved = own_peer.card().clone();
        moved.serial += 1;
        moved.endpoints = vec!["198.18.1.99:51820".parse().unwrap()];
        mesh.insert(moved.sign(&operator(OWN)).unwrap(), now).unwrap();
        let events: Vec<PeerEvent> = std::iter::from_fn(|| mesh.poll_event()).collect();
        prop_assert!(
            events.iter().any(|event| matches!(
                event,
                PeerEvent::Changed(peer) if peer.public_key == own_peer.card().wg_public_key
            )),
            "{:?}",
            events
        );
    }
}
