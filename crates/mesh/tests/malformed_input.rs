//! Property tests of everything that parses untrusted input: random bytes and
//! text, and random mutations of real cards, bundles, vouches and
//! revocations, never panic and are never accepted as anything but the
//! original; arbitrary valid cards survive every round trip.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sentrymesh_mesh::bundle::{open, open_text, seal};
use sentrymesh_mesh::testing::mutation::{apply, mutation};
use sentrymesh_mesh::testing::{NOW, SignCard, operator, wg_key};
use sentrymesh_mesh::{
    ChainP2p, Endpoint, EndpointHost, HostCard, NodeosPeerKey, OperatorSecret, Revocation,
    RevocationTarget, Role, SealedBundle, SignedCard, SignedRevocation, SignedVouch, Vouch,
};
use sentrymesh_types::{InterfaceAddress, PublicKey, UnixTime};

fn sample_card(op: &OperatorSecret) -> SignedCard {
    HostCard {
        operator: op.operator_id(),
        name: "sentry-1".into(),
        role: Role::Sentry,
        wg_public_key: wg_key([7; 32]),
        addresses: vec!["198.18.1.1/24".parse().unwrap()],
        endpoints: vec![
            "198.18.0.1:51820".parse().unwrap(),
            "[2001:db8::1]:51820".parse().unwrap(),
            "sentry-1.example.net:51820".parse().unwrap(),
        ],
        allowed_ips: vec!["198.19.0.0/16".parse().unwrap()],
        not_before: NOW - 3600,
        not_after: NOW + 86_400,
        serial: 3,
        chain_p2p: Some(
            "f2a1b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4@26656"
                .parse()
                .unwrap(),
        ),
    }
    .sign(op)
    .unwrap()
}

fn sample_bundle() -> Vec<u8> {
    let (alice, bob) = (operator(1), operator(2));
    seal(
        &alice,
        &[bob.operator_id(), operator(3).operator_id()],
        &[sample_card(&alice)],
        NOW,
        &mut ChaCha20Rng::seed_from_u64(1),
    )
    .unwrap()
    .as_bytes()
    .to_vec()
}

fn sample_vouch() -> Vec<u8> {
    let alice = operator(1);
    Vouch {
        voucher: alice.operator_id(),
        subject: operator(2).operator_id(),
        overlay: "198.19.9.0/24".parse().unwrap(),
        issued_at: NOW,
    }
    .sign(&alice)
    .unwrap()
    .as_bytes()
    .to_vec()
}

fn sample_revocation() -> Vec<u8> {
    let alice = operator(1);
    Revocation {
        issuer: alice.operator_id(),
        target: RevocationTarget::Host(wg_key([7; 32])),
        issued_at: NOW,
    }
    .sign(&alice)
    .unwrap()
    .as_bytes()
    .to_vec()
}

proptest! {
    #[test]
    fn random_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let bob = operator(2);
        prop_assert!(SignedCard::decode(&bytes).is_err());
        prop_assert!(SealedBundle::decode(&bytes).is_err());
        prop_assert!(open(&bob, &bytes, NOW).is_err());
        prop_assert!(SignedVouch::decode(&bytes).is_err());
        prop_assert!(SignedRevocation::decode(&bytes).is_err());
    }

    #[test]
    fn random_text_is_refused(text in "(sentrymesh-(card|bundle|vouch|revocation) v1\n)?[A-Za-z0-9+/= \n]{0,400}") {
        let bob = operator(2);
        prop_assert!(SignedCard::from_text(&text).is_err());
        prop_assert!(open_text(&bob, &text, NOW).is_err());
        prop_assert!(SignedVouch::from_text(&text).is_err());
        prop_assert!(SignedRevocation::from_text(&text).is_err());
        let _ = OperatorSecret::from_text(&text);
    }

    #[test]
    fn a_mutated_card_is_refused(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let original = sample_card(&operator(1));
        let bytes = apply(original.as_bytes(), &mutations);
        match SignedCard::decode(&bytes) {
            Ok(card) => prop_assert_eq!(card.as_bytes(), original.as_bytes()),
            Err(_) => prop_assert_ne!(&bytes[..], original.as_bytes()),
        }
    }

    #[test]
    fn a_mutated_bundle_is_refused(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let original = sample_bundle();
        let bytes = apply(&original, &mutations);
        match open(&operator(2), &bytes, NOW) {
            Ok(_) => prop_assert_eq!(&bytes, &original),
            Err(_) => prop_assert_ne!(&bytes, &original),
        }
    }

    #[test]
    fn mutated_statements_are_refused(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let vouch = sample_vouch();
        let bytes = apply(&vouch, &mutations);
        prop_assert_eq!(SignedVouch::decode(&bytes).is_ok(), bytes == vouch);
        let revocation = sample_revocation();
        let bytes = apply(&revocation, &mutations);
        prop_assert_eq!(SignedRevocation::decode(&bytes).is_ok(), bytes == revocation);
    }

    /// Text edits either break the armour or leave the very same card.
    #[test]
    fn mutated_card_text_is_the_card_or_refused(
        edits in proptest::collection::vec((any::<usize>(), prop::char::range(' ', '~')), 1..4),
    ) {
        let original = sample_card(&operator(1));
        let mut chars: Vec<char> = original.to_text().chars().collect();
        for (at, c) in edits {
            let len = chars.len();
            chars[at % len] = c;
        }
        let text: String = chars.into_iter().collect();
        if let Ok(card) = SignedCard::from_text(&text) {
            prop_assert_eq!(card, original);
        }
    }
}

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
}

fn interface_address() -> impl Strategy<Value = InterfaceAddress> {
    prop_oneof![
        (any::<u32>(), 0u8..=32).prop_map(|(a, p)| InterfaceAddress::new(
            Ipv4Addr::from(a).into(),
            p
        )
        .unwrap()),
        (any::<u128>(), 0u8..=128).prop_map(|(a, p)| InterfaceAddress::new(
            Ipv6Addr::from(a).into(),
            p
        )
        .unwrap()),
    ]
}

fn endpoint() -> impl Strategy<Value = Endpoint> {
    let host = prop_oneof![
        any::<u32>().prop_map(|a| EndpointHost::Ip(IpAddr::V4(a.into()))),
        any::<u128>().prop_map(|a| EndpointHost::Ip(IpAddr::V6(a.into()))),
        "[a-z][a-z0-9-]{0,10}[a-z0-9](\\.[a-z][a-z0-9]{0,10}){0,3}".prop_map(EndpointHost::Name),
    ];
    // Only addresses a card may give (not loopback, multicast, ...).
    let host = host.prop_filter("an address of another host", |host| match host {
        EndpointHost::Ip(ip) => sentrymesh_mesh::unreachable_reason(*ip).is_none(),
        EndpointHost::Name(_) => true,
    });
    (host, 1u16..).prop_map(|(host, port)| Endpoint { host, port })
}

/// A nodeos peer key, in either form.
fn nodeos_key() -> impl Strategy<Value = NodeosPeerKey> {
    prop_oneof![
        Just("EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"),
        Just("PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63"),
    ]
    .prop_map(|text| text.parse().expect("a nodeos key"))
}

fn host_card(op: OperatorSecret) -> impl Strategy<Value = HostCard> {
    let operator = op.operator_id();
    (
        name(),
        prop::sample::select(Role::ALL.to_vec()),
        any::<[u8; 32]>(),
        proptest::collection::btree_set(interface_address(), 1..=4),
        proptest::collection::btree_set(endpoint(), 0..=4),
        proptest::collection::btree_set(interface_address().prop_map(|c| c.network()), 0..=8),
        (any::<u64>(), 1u64..u64::MAX / 2),
        any::<u64>(),
        proptest::option::of(
            (
                "[A-Za-z0-9._-]{1,128}",
                1u16..,
                proptest::option::of(nodeos_key()),
            )
                .prop_map(|(id, port, nodeos_peer_key)| ChainP2p {
                    id,
                    port,
                    nodeos_peer_key,
                }),
        ),
    )
        .prop_map(
            move |(
                name,
                role,
                key,
                addresses,
                endpoints,
                allowed,
                (start, span),
                serial,
                chain_p2p,
            )| {
                let not_before = start / 2;
                HostCard {
                    operator,
                    name,
                    role,
                    wg_public_key: wg_key(key),
                    addresses: addresses.into_iter().collect(),
                    endpoints: if role.is_hidden() {
                        Vec::new()
                    } else {
                        endpoints.into_iter().collect()
                    },
                    allowed_ips: allowed
                        .into_iter()
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                    not_before: UnixTime(not_before),
                    not_after: UnixTime(not_before) + span,
                    serial,
                    chain_p2p,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn valid_cards_round_trip(card in host_card(operator(1)), seed in any::<u64>()) {
        let alice = operator(1);
        card.validate().unwrap();
        let signed = card.sign(&alice).unwrap();
        prop_assert_eq!(signed.card(), &card);
        let decoded = SignedCard::decode(signed.as_bytes()).unwrap();
        prop_assert_eq!(&decoded, &signed);
        prop_assert_eq!(&SignedCard::from_text(&signed.to_text()).unwrap(), &signed);

        // Through a bundle, at a time the card is valid.
        let now = card.not_before;
        let recipients = if card.role.is_hidden() {
            vec![alice.operator_id()]
        } else {
            vec![alice.operator_id(), operator(2).operator_id()]
        };
        let bundle = seal(&alice, &recipients, std::slice::from_ref(&signed), now, &mut ChaCha20Rng::seed_from_u64(seed)).unwrap();
        let opened = open_text(&alice, &bundle.to_text(), now).unwrap();
        prop_assert_eq!(opened.cards, vec![signed]);
    }

    #[test]
    fn card_text_forms_round_trip(card in host_card(operator(1))) {
        for address in &card.addresses {
            prop_assert_eq!(address.to_string().parse::<InterfaceAddress>().unwrap(), *address);
        }
        for endpoint in &card.endpoints {
            prop_assert_eq!(&endpoint.to_string().parse::<Endpoint>().unwrap(), endpoint);
        }
        if let Some(p2p) = &card.chain_p2p {
            let mut parsed = p2p.to_string().parse::<ChainP2p>().unwrap();
            parsed.nodeos_peer_key = p2p.nodeos_peer_key.as_ref().map(|key| key.to_string().parse().unwrap());
            prop_assert_eq!(&parsed, p2p);
        }
        prop_assert_eq!(card.wg_public_key.to_string().parse::<PublicKey>().unwrap(), card.wg_public_key);
        prop_assert_eq!(card.role.to_string().parse::<Role>().unwrap(), card.role);
    }
}
