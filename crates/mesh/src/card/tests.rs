//! Tests of cards: signing, decoding, validation, proofs of possession.

use sentrymesh_types::PrivateKey;

use super::*;
use crate::testing::{SignCard, card, claim, operator, rng, secret_of, wg_key};

#[test]
fn sign_then_decode() {
    let op = operator(1);
    let signed = card(&op, "sentry-1", Role::Sentry).sign(&op).unwrap();
    let again = SignedCard::decode(signed.as_bytes()).unwrap();
    assert_eq!(again, signed);
    assert_eq!(SignedCard::from_text(&signed.to_text()).unwrap(), signed);
    assert!(signed.to_text().starts_with("sentrymesh-card v1\n"));
}

#[test]
fn the_largest_valid_card_fits_the_limit() {
    let op = operator(1);
    let mut c = card(&op, &"n".repeat(MAX_NAME_LEN), Role::Full);
    c.addresses = (0..MAX_ADDRESSES)
        .map(|i| format!("2001:db8::{i}/64").parse().unwrap())
        .collect();
    c.endpoints = (1..=MAX_ENDPOINTS)
        .map(|port| Endpoint {
            host: crate::endpoint::EndpointHost::Name(format!(
                "{0}.{0}.{0}.{1}",
                "a".repeat(63),
                "b".repeat(61)
            )),
            port: port as u16,
        })
        .collect();
    c.allowed_ips = (0..MAX_ALLOWED_IPS)
        .map(|i| format!("2001:db8:{i:x}::/48").parse().unwrap())
        .collect();
    c.chain_p2p = Some(ChainP2p {
        id: "x".repeat(crate::endpoint::MAX_CHAIN_ID_LEN),
        port: 1,
        nodeos_peer_key: Some(
            "PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63"
                .parse()
                .unwrap(),
        ),
    });
    let signed = c.sign(&op).unwrap();
    assert!(
        signed.as_bytes().len() <= MAX_CARD_LEN,
        "{}",
        signed.as_bytes().len()
    );
    assert_eq!(SignedCard::decode(signed.as_bytes()).unwrap(), signed);
}

#[test]
fn only_the_cards_operator_signs_it() {
    let (op, other) = (operator(1), operator(2));
    let err = card(&op, "sentry-1", Role::Sentry)
        .sign(&other)
        .unwrap_err();
    assert_eq!(
        err,
        SignCardError::NotTheOperator {
            host: "sentry-1".into(),
            card_operator: op.operator_id(),
            signer: other.operator_id(),
        }
    );
    assert!(err.to_string().contains(&op.operator_id().to_string()));
}

#[test]
fn validation_rules() {
    let op = operator(1);
    let base = card(&op, "sentry-1", Role::Sentry);
    let check = |edit: &dyn Fn(&mut HostCard)| {
        let mut c = base.clone();
        edit(&mut c);
        c.validate().unwrap_err()
    };
    assert!(matches!(
        check(&|c| c.name = "Sentry".into()),
        InvalidCard::Name(_)
    ));
    assert!(matches!(
        check(&|c| c.name = "-x".into()),
        InvalidCard::Name(_)
    ));
    assert!(matches!(
        check(&|c| c.name = "a.b".into()),
        InvalidCard::Name(_)
    ));
    assert!(matches!(
        check(&|c| c.name = "a".repeat(64)),
        InvalidCard::Name(_)
    ));
    assert!(matches!(
        check(&|c| c.addresses.clear()),
        InvalidCard::NoAddress { .. }
    ));
    let err = check(&|c| c.role = Role::Producer);
    assert_eq!(
        err.to_string(),
        "host `sentry-1` is a producer, a hidden role: it may publish no endpoint"
    );
    assert!(matches!(
        check(&|c| c.addresses.push(c.addresses[0])),
        InvalidCard::Duplicate {
            what: "addresses",
            ..
        }
    ));
    assert!(matches!(
        check(&|c| c.not_after = c.not_before),
        InvalidCard::EmptyValidity { .. }
    ));
    assert!(matches!(
        check(&|c| c.wg_public_key = PublicKey::from_bytes([0; 32])),
        InvalidCard::ZeroKey { .. }
    ));
    let err = check(&|c| c.endpoints = vec!["[::ffff:198.19.1.7]:51820".parse().unwrap()]);
    assert_eq!(
        err.to_string(),
        "host `sentry-1` has the endpoint [::ffff:198.19.1.7]:51820, an IPv4-mapped IPv6 \
         address (write the IPv4 address): give an address other hosts reach it at"
    );
    for endpoint in ["127.0.0.1:51820", "[::]:51820", "[ff02::1]:51820"] {
        assert!(
            matches!(
                check(&|c| c.endpoints = vec![endpoint.parse().unwrap()]),
                InvalidCard::EndpointAddress { .. }
            ),
            "{endpoint}"
        );
    }
    assert!(matches!(
        check(&|c| c.endpoints[0].port = 0),
        InvalidCard::Endpoint { .. }
    ));
    assert!(matches!(
        check(&|c| c.endpoints = vec![c.endpoints[0].clone(); MAX_ENDPOINTS + 1]),
        InvalidCard::TooMany {
            what: "endpoints",
            ..
        }
    ));
    assert!(matches!(
        check(&|c| c.chain_p2p = Some(ChainP2p {
            id: "a b".into(),
            port: 1,
            nodeos_peer_key: None,
        })),
        InvalidCard::ChainP2p { .. }
    ));
    let mut hidden = base.clone();
    hidden.role = Role::Bios;
    hidden.endpoints.clear();
    hidden.validate().unwrap();
}

#[test]
fn validity_window_with_skew() {
    let op = operator(1);
    let signed = card(&op, "full-1", Role::Full).sign(&op).unwrap();
    let (nb, na) = (signed.card().not_before, signed.card().not_after);
    assert!(signed.check_valid_at(nb - CLOCK_SKEW).is_ok());
    assert!(signed.check_valid_at(na - 1).is_ok());
    assert_eq!(
        signed.check_valid_at(nb - CLOCK_SKEW - 1),
        Err(CardTimeError::NotYetValid {
            host: "full-1".into(),
            not_before: nb
        })
    );
    let expired = signed.check_valid_at(na).unwrap_err();
    assert_eq!(
        expired.to_string(),
        format!("the card for host `full-1` expired at {}", na)
    );
    assert!(expired.to_string().contains("expired at 20"));
}

#[test]
fn a_higher_serial_supersedes() {
    let op = operator(1);
    let mut c = card(&op, "sentry-1", Role::Sentry);
    let old = c.sign(&op).unwrap();
    c.serial += 1;
    let new = c.sign(&op).unwrap();
    assert!(new.supersedes(&old));
    assert!(!old.supersedes(&new));
    assert!(!new.supersedes(&new));
    c.wg_public_key = wg_key([9; 32]);
    c.serial += 1;
    assert!(!c.sign(&op).unwrap().supersedes(&old));
}

#[test]
fn forged_and_unsigned_cards_are_refused() {
    let (op, other) = (operator(1), operator(2));
    let signed = card(&op, "sentry-1", Role::Sentry).sign(&op).unwrap();
    let mut bytes = signed.as_bytes().to_vec();
    let sig_start = bytes.len() - 64;
    bytes[sig_start..].fill(0);
    assert_eq!(
        SignedCard::decode(&bytes),
        Err(ParseCardError::Unsigned {
            host: "sentry-1".into()
        })
    );
    // Someone else's signature over the same body.
    let forged_sig = other.sign(Domain::Card, &bytes[..sig_start]);
    bytes[sig_start..].copy_from_slice(&forged_sig);
    let err = SignedCard::decode(&bytes).unwrap_err();
    assert!(matches!(err, ParseCardError::BadSignature { .. }));
    assert!(err.to_string().starts_with("signature does not verify"));
}

#[test]
fn an_invalid_card_is_refused_even_when_signed() {
    let op = operator(1);
    let mut c = card(&op, "producer-1", Role::Producer);
    c.endpoints.push("198.18.0.9:51820".parse().unwrap());
    let forged = c.forge(&op, &secret_of(&c.wg_public_key), &mut rng());
    assert!(matches!(
        SignedCard::decode(forged.as_bytes()),
        Err(ParseCardError::Invalid(InvalidCard::HiddenEndpoint { .. }))
    ));
    c.endpoints.clear();
    assert!(c.sign(&op).is_ok());
}

/// `c` encoded, followed by `proof`, signed by `op`.
fn with_proof(c: &HostCard, proof: &[u8], op: &OperatorSecret) -> Vec<u8> {
    let mut w = Writer::versioned();
    c.encode(&mut w);
    w.array(proof);
    let signature = op.sign(Domain::Card, w.as_slice());
    w.array(&signature);
    w.into_bytes()
}

/// An RNG other than the fixtures'.
fn other_rng() -> rand_chacha::ChaCha20Rng {
    rand_core::SeedableRng::seed_from_u64(1)
}

/// The proof of possession in an encoded card.
fn proof_of(card: &SignedCard) -> Vec<u8> {
    let bytes = card.as_bytes();
    bytes[bytes.len() - 128..bytes.len() - 64].to_vec()
}

#[test]
fn a_card_for_another_operators_key_is_refused() {
    let (alice, mallory) = (operator(1), operator(2));
    let real = card(&alice, "sentry-1", Role::Sentry).sign(&alice).unwrap();
    let victim = real.card().wg_public_key;
    // Mallory signs a card naming the key, proved with a key she holds.
    let squat = claim(&mallory, "sentry-9", &victim);
    assert_eq!(squat.card().wg_public_key, victim);
    let err = SignedCard::decode(squat.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        ParseCardError::BadProof {
            host: "sentry-9".into(),
            operator: mallory.operator_id(),
        }
    );
    assert!(
        err.to_string()
            .contains("has no valid proof that its host holds the WireGuard key it names"),
        "{err}"
    );
    assert!(!err.to_string().contains(&victim.to_string()));
    assert!(SignedCard::from_text(&squat.to_text()).is_err());

    // Alice's own proof, lifted into Mallory's card, binds Alice's id.
    let mut lifted = real.card().clone();
    lifted.operator = mallory.operator_id();
    let bytes = with_proof(&lifted, &proof_of(&real), &mallory);
    assert!(matches!(
        SignedCard::decode(&bytes),
        Err(ParseCardError::BadProof { .. })
    ));
    // ...and the card's body: not even Alice can reuse it on another card.
    let mut other = real.card().clone();
    other.serial += 1;
    let bytes = with_proof(&other, &proof_of(&real), &alice);
    assert!(matches!(
        SignedCard::decode(&bytes),
        Err(ParseCardError::BadProof { .. })
    ));
    // A blank proof is no proof.
    let bytes = with_proof(real.card(), &[0; 64], &alice);
    assert!(matches!(
        SignedCard::decode(&bytes),
        Err(ParseCardError::BadProof { .. })
    ));
    // The same body with its own proof is the real card.
    let bytes = with_proof(real.card(), &proof_of(&real), &alice);
    assert_eq!(SignedCard::decode(&bytes).unwrap(), real);
}

#[test]
fn the_operator_signature_covers_the_proof() {
    let alice = operator(1);
    let real = card(&alice, "sentry-1", Role::Sentry).sign(&alice).unwrap();
    // Another valid proof by the same key over the same body...
    let again = real.card().forge(
        &alice,
        &secret_of(&real.card().wg_public_key),
        &mut other_rng(),
    );
    assert_ne!(proof_of(&again), proof_of(&real));
    SignedCard::decode(again.as_bytes()).unwrap();
    // ...swapped into the signed card breaks the operator's signature.
    let mut bytes = real.as_bytes().to_vec();
    let at = bytes.len() - 128;
    bytes[at..at + 64].copy_from_slice(&proof_of(&again));
    assert!(matches!(
        SignedCard::decode(&bytes),
        Err(ParseCardError::BadSignature { .. })
    ));
}

#[test]
fn issuing_needs_the_hosts_private_key() {
    let alice = operator(1);
    let c = card(&alice, "sentry-1", Role::Sentry);
    let err = c
        .issue(&alice, &PrivateKey::from_bytes([3; 32]), &mut rng())
        .unwrap_err();
    assert_eq!(
        err,
        SignCardError::NotTheHostKey {
            host: "sentry-1".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "the WireGuard private key given is not the one of the public key on the card for host \
         `sentry-1`"
    );
    c.issue(&alice, &secret_of(&c.wg_public_key), &mut rng())
        .unwrap();
}

/// A key whose first byte is `low`, last `high`, and the rest `middle`.
fn key_of(low: u8, middle: u8, high: u8) -> PublicKey {
    let mut key = [middle; 32];
    key[0] = low;
    key[31] = high;
    PublicKey::from_bytes(key)
}

#[test]
fn a_low_order_or_non_canonical_key_is_refused_when_decoded() {
    let alice = operator(1);
    let base = card(&alice, "sentry-1", Role::Sentry);
    let low_order = |host: &str| InvalidCard::LowOrderKey { host: host.into() };
    let cases = [
        (
            key_of(0, 0, 0),
            InvalidCard::ZeroKey {
                host: "sentry-1".into(),
            },
        ),
        (key_of(1, 0, 0), low_order("sentry-1")),
        // u = -1 = p - 1.
        (key_of(0xec, 0xff, 0x7f), low_order("sentry-1")),
        // u = p.
        (
            key_of(0xed, 0xff, 0x7f),
            InvalidCard::NonCanonicalKey {
                host: "sentry-1".into(),
            },
        ),
    ];
    for (key, expected) in cases {
        let mut c = base.clone();
        c.wg_public_key = key;
        // Signed by its operator, with any proof: refused before either is
        // looked at.
        let bytes = with_proof(&c, &[0x11; 64], &alice);
        assert_eq!(
            SignedCard::decode(&bytes),
            Err(ParseCardError::Invalid(expected.clone()))
        );
        assert_eq!(c.validate(), Err(expected));
    }
    assert_eq!(
        low_order("sentry-1").to_string(),
        "host `sentry-1` has a WireGuard public key of low order, which no tunnel can peer with"
    );
}

#[test]
fn the_key_read_ahead_of_decoding_is_the_cards_or_none() {
    let op = operator(1);
    for name in ["s", "sentry-1", &"n".repeat(MAX_NAME_LEN)] {
        let signed = card(&op, name, Role::Sentry).sign(&op).unwrap();
        let bytes = signed.as_bytes();
        assert_eq!(claimed_key(bytes), Some(signed.card().wg_public_key));
        // Every prefix that ends before the key names none, and reading
        // never panics.
        let key_end = 1 + 32 + 2 + name.len() + 1 + 32;
        for len in 0..key_end {
            assert_eq!(claimed_key(&bytes[..len]), None, "{len}");
        }
        assert_eq!(
            claimed_key(&bytes[..key_end]),
            Some(signed.card().wg_public_key)
        );
    }
    // A name longer than any card's is not read past.
    let mut long = vec![1u8; 33];
    long.extend_from_slice(&[0, 64]);
    long.extend_from_slice(&[b'a'; 64 + 1 + 32]);
    assert_eq!(claimed_key(&long), None);
}

/// A card issued by a build from before cards could carry a nodeos peer
/// key (`sentrymesh card issue ... --chain-p2p ID@26656`, at commit
/// 11019aa).
const CARD_BEFORE_NODEOS_KEYS: &str = "sentrymesh-card v1
AbMkjUDrVhW+KDjaBs8To25D/zs8PihsM1WJeTvYOtJCAAhzZW50cnktMQOXVieY
f2I8bKkVu22PTSu/qSaOzW0rW5j2uPYPcqpwSAABBMYTAQEgAAEExhIAAcpsAAAA
AAAAaxFD+QAAAAB93Ub5AAAAAAAAAAcBAChmMmExYjNjNGQ1ZTZmNzA4MTkyYTNi
NGM1ZDZlN2Y4MDkxYTJiM2M0aCDvF/VdGFuXgbpGsl+O5LvALll+uZtyT+qrJsgZ
ejmVxsP9jphZg/rwkO/PxFZD+jAWFKNMrlG2sAHxMqY1AwAHjFHEcHDzbCtML4x+
g0SMAKWfheGmzMVpKLV2ILFyaSmh1+rJr78WcIcJqAIcRr9wcykv4y4JBxzXrpiX
Iy68BA==
";

#[test]
fn a_card_from_before_nodeos_keys_still_decodes_and_encodes_alike() {
    let old = SignedCard::from_text(CARD_BEFORE_NODEOS_KEYS).unwrap();
    let p2p = old.card().chain_p2p.clone().unwrap();
    assert_eq!(
        p2p.to_string(),
        "f2a1b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4@26656"
    );
    assert_eq!(p2p.nodeos_peer_key, None);
    // The same card encodes to the same body: a key-less chain field is
    // written as before.
    let mut w = Writer::versioned();
    old.card().encode(&mut w);
    assert!(old.as_bytes().starts_with(w.as_slice()));
    assert_eq!(old.as_bytes().len(), w.as_slice().len() + PROOF_LEN + 64);
}

#[test]
fn a_nodeos_peer_key_travels_on_the_card() {
    let op = operator(1);
    let mut c = card(&op, "sentry-1", Role::Sentry);
    let key: crate::NodeosPeerKey = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"
        .parse()
        .unwrap();
    c.chain_p2p = Some(ChainP2p {
        id: "sentry-1".into(),
        port: 9876,
        nodeos_peer_key: Some(key.clone()),
    });
    let signed = c.sign(&op).unwrap();
    let again = SignedCard::decode(signed.as_bytes()).unwrap();
    assert_eq!(
        again.card().chain_p2p.as_ref().unwrap().nodeos_peer_key,
        Some(key)
    );

    // The tag before the chain field: 2 here; 3 is no tag at all.
    let mut w = Writer::versioned();
    c.chain_p2p = None;
    c.encode(&mut w);
    let tag_at = w.as_slice().len() - 1;
    let mut bytes = signed.as_bytes().to_vec();
    assert_eq!(bytes[tag_at], 2);
    bytes[tag_at] = 3;
    assert!(matches!(
        HostCard::decode(&mut Reader::new(&bytes[1..])),
        Err(DecodeError::BadValue {
            field: "chain p2p tag",
            value: 3
        })
    ));
}
