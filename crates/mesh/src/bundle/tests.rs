//! Tests of sealing and opening, including bundles a misbehaving sender or
//! a relay in the middle might produce.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::card::HostCard;
use crate::testing::{NOW, SignCard, card, claim, operator};

/// Where the ephemeral key starts in an encoded bundle.
const EPHEMERAL_AT: usize = 1 + 32 + 8;
/// Where the first recipient's wrapped key starts.
const FIRST_WRAPPED_AT: usize = EPHEMERAL_AT + 32 + 2 + 32;

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(11)
}

fn signed(op: &OperatorSecret, name: &str, role: Role) -> SignedCard {
    card(op, name, role).sign(op).unwrap()
}

/// Replaces the signature of an encoded bundle with a fresh one by `signer`
/// over the (possibly edited) body.
fn resign(mut bytes: Vec<u8>, signer: &OperatorSecret) -> Vec<u8> {
    let body_len = bytes.len() - 64;
    let signature = signer.sign(Domain::Bundle, &bytes[..body_len]);
    bytes[body_len..].copy_from_slice(&signature);
    bytes
}

fn set(ids: &[OperatorId]) -> BTreeSet<OperatorId> {
    ids.iter().copied().collect()
}

#[test]
fn every_recipient_opens_it_and_no_one_else() {
    let (alice, bob, carol, mallory) = (operator(1), operator(2), operator(3), operator(4));
    let cards = [
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&alice, "full-1", Role::Full),
    ];
    let recipients = [bob.operator_id(), carol.operator_id(), bob.operator_id()];
    let bundle = seal(&alice, &recipients, &cards, NOW, &mut rng()).unwrap();
    assert_eq!(bundle.sender(), alice.operator_id());
    assert_eq!(bundle.created_at(), NOW);
    assert_eq!(bundle.recipients().len(), 2);
    assert!(bundle.recipients().windows(2).all(|w| w[0] < w[1]));

    for reader in [&bob, &carol] {
        let opened = open(reader, bundle.as_bytes(), NOW + 60).unwrap();
        assert_eq!(opened.sender, alice.operator_id());
        assert_eq!(opened.created_at, NOW);
        assert_eq!(opened.cards, cards);
        assert_eq!(opened.recipients, bundle.recipients());
        assert_eq!(open_text(reader, &bundle.to_text(), NOW).unwrap(), opened);
    }
    for outsider in [&alice, &mallory] {
        let err = open(outsider, bundle.as_bytes(), NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "bundle is not addressed to operator {}",
                outsider.operator_id()
            )
        );
    }
    assert!(bundle.to_text().starts_with("sentrymesh-bundle v1\n"));
    let debug = format!("{bundle:?}");
    assert!(
        debug.starts_with("SealedBundle { sender: OperatorId("),
        "{debug}"
    );
}

#[test]
fn sealing_twice_gives_different_bytes() {
    let (alice, bob) = (operator(1), operator(2));
    let cards = [signed(&alice, "sentry-1", Role::Sentry)];
    let mut rng = rng();
    let one = seal(&alice, &[bob.operator_id()], &cards, NOW, &mut rng).unwrap();
    let two = seal(&alice, &[bob.operator_id()], &cards, NOW, &mut rng).unwrap();
    assert_ne!(one.as_bytes(), two.as_bytes());
    assert_eq!(one.open(&bob, NOW).unwrap(), two.open(&bob, NOW).unwrap());
}

#[test]
fn seal_refuses_what_it_must() {
    let (alice, bob) = (operator(1), operator(2));
    let to_bob = [bob.operator_id()];
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let mut rng = rng();
    assert_eq!(
        seal(&alice, &[], std::slice::from_ref(&sentry), NOW, &mut rng),
        Err(SealError::NoRecipients)
    );
    assert_eq!(
        seal(&alice, &to_bob, &[], NOW, &mut rng),
        Err(SealError::NoCards)
    );
    let many: Vec<OperatorId> = (0..=MAX_RECIPIENTS as u8)
        .map(|n| operator(n + 10).operator_id())
        .collect();
    assert_eq!(
        seal(&alice, &many, std::slice::from_ref(&sentry), NOW, &mut rng),
        Err(SealError::TooManyRecipients {
            count: MAX_RECIPIENTS + 1
        })
    );
    let bobs = signed(&bob, "sentry-9", Role::Sentry);
    assert!(matches!(
        seal(&alice, &to_bob, &[bobs], NOW, &mut rng),
        Err(SealError::NotSendersCard { .. })
    ));
    assert!(matches!(
        seal(
            &alice,
            &to_bob,
            &[sentry.clone(), sentry.clone()],
            NOW,
            &mut rng
        ),
        Err(SealError::DuplicateHost { .. })
    ));
    let err = seal(&alice, &to_bob, &[sentry], NOW + 365 * 86_400, &mut rng).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the card for host `sentry-1` expired at 2026-"),
        "{err}"
    );
}

#[test]
fn hidden_cards_are_sealed_only_to_their_own_operator() {
    let (alice, bob) = (operator(1), operator(2));
    let producer = signed(&alice, "producer-1", Role::Producer);
    let bios = signed(&alice, "bios-1", Role::Bios);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let mut rng = rng();
    for recipients in [
        vec![bob.operator_id()],
        vec![alice.operator_id(), bob.operator_id()],
    ] {
        let err = seal(
            &alice,
            &recipients,
            &[sentry.clone(), producer.clone()],
            NOW,
            &mut rng,
        )
        .unwrap_err();
        assert_eq!(
            err,
            SealError::HiddenCardToOthers {
                host: "producer-1".into(),
                role: Role::Producer,
                others: 1
            }
        );
    }
    let own = seal(
        &alice,
        &[alice.operator_id()],
        &[producer.clone(), bios, sentry],
        NOW,
        &mut rng,
    )
    .unwrap();
    assert_eq!(own.open(&alice, NOW).unwrap().cards.len(), 3);

    // A sender that skips the check is caught by the reader.
    let leaked = seal_unchecked(
        &alice,
        &set(&[alice.operator_id(), bob.operator_id()]),
        &[producer],
        NOW,
        &mut rng,
    );
    assert_eq!(
        leaked.open(&bob, NOW),
        Err(OpenError::HiddenCardShared {
            host: "producer-1".into(),
            role: Role::Producer
        })
    );
}

#[test]
fn a_relay_cannot_pass_off_another_operators_cards() {
    let (alice, bob, mallory) = (operator(1), operator(2), operator(4));
    let alices = signed(&alice, "sentry-1", Role::Sentry);
    let bundle = seal_unchecked(
        &mallory,
        &set(&[bob.operator_id()]),
        &[alices],
        NOW,
        &mut rng(),
    );
    let err = bundle.open(&bob, NOW).unwrap_err();
    assert_eq!(
        err,
        OpenError::CardNotFromSender {
            host: "sentry-1".into(),
            card_operator: alice.operator_id(),
            sender: mallory.operator_id()
        }
    );
}

#[test]
fn tampering_is_reported_as_such() {
    let (alice, bob, mallory) = (operator(1), operator(2), operator(4));
    let cards = [signed(&alice, "sentry-1", Role::Sentry)];
    let bundle = seal(&alice, &[bob.operator_id()], &cards, NOW, &mut rng()).unwrap();
    let bytes = bundle.as_bytes().to_vec();

    let mut altered = bytes.clone();
    let mid = altered.len() - 100;
    altered[mid] ^= 1;
    let err = open(&bob, &altered, NOW).unwrap_err();
    assert_eq!(
        err,
        OpenError::BadSignature {
            sender: alice.operator_id()
        }
    );
    assert!(
        err.to_string()
            .starts_with("signature does not verify: the bundle was altered")
    );

    // Re-signed by someone who is not the sender named inside.
    assert_eq!(
        open(&bob, &resign(bytes.clone(), &mallory), NOW),
        Err(OpenError::BadSignature {
            sender: alice.operator_id()
        })
    );

    let mut unsigned = bytes.clone();
    let len = unsigned.len();
    unsigned[len - 64..].fill(0);
    assert_eq!(
        open(&bob, &unsigned, NOW),
        Err(OpenError::Unsigned {
            sender: alice.operator_id()
        })
    );

    assert!(matches!(
        open(&bob, &bytes[..bytes.len() - 64], NOW),
        Err(OpenError::Malformed(_))
    ));
    assert!(matches!(
        open(&bob, &bytes[..10], NOW),
        Err(OpenError::Malformed(DecodeError::Truncated { .. }))
    ));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(open(&bob, &longer, NOW).is_err());
    assert!(matches!(
        open_text(&bob, &cards[0].to_text(), NOW),
        Err(OpenError::Armour(ArmourError::WrongKind { .. }))
    ));
}

#[test]
fn expired_and_future_bundles_are_refused() {
    let (alice, bob) = (operator(1), operator(2));
    let c: HostCard = card(&alice, "full-1", Role::Full);
    let cards = [c.sign(&alice).unwrap()];
    let bundle = seal(&alice, &[bob.operator_id()], &cards, NOW, &mut rng()).unwrap();
    let err = bundle.open(&bob, c.not_after).unwrap_err();
    assert_eq!(
        err,
        OpenError::CardTime(CardTimeError::Expired {
            host: "full-1".into(),
            expired_at: c.not_after
        })
    );
    assert!(
        err.to_string().contains("`full-1` expired at 2026-07-30"),
        "{err}"
    );

    let early = NOW - CLOCK_SKEW - 1;
    assert_eq!(
        bundle.open(&bob, early),
        Err(OpenError::CreatedInFuture {
            created_at: NOW,
            now: early
        })
    );
    assert!(bundle.open(&bob, NOW - CLOCK_SKEW).is_ok());
}

#[test]
fn a_signed_bundle_that_does_not_decrypt() {
    let (alice, bob) = (operator(1), operator(2));
    let cards = [signed(&alice, "sentry-1", Role::Sentry)];
    let bundle = seal(&alice, &[bob.operator_id()], &cards, NOW, &mut rng()).unwrap();

    let mut bytes = bundle.as_bytes().to_vec();
    bytes[FIRST_WRAPPED_AT] ^= 1;
    let err = open(&bob, &resign(bytes, &alice), NOW).unwrap_err();
    assert_eq!(
        err,
        OpenError::Decryption {
            operator: bob.operator_id()
        }
    );

    let mut bytes = bundle.as_bytes().to_vec();
    bytes[EPHEMERAL_AT..EPHEMERAL_AT + 32].fill(0);
    assert_eq!(
        open(&bob, &resign(bytes, &alice), NOW),
        Err(OpenError::LowOrderKey)
    );

    let mut bytes = bundle.as_bytes().to_vec();
    let last = bytes.len() - 65;
    bytes[last] ^= 1;
    assert_eq!(
        open(&bob, &resign(bytes, &alice), NOW),
        Err(OpenError::Decryption {
            operator: bob.operator_id()
        })
    );
}

#[test]
fn recipients_must_be_canonical() {
    let (alice, bob, carol) = (operator(1), operator(2), operator(3));
    let cards = [signed(&alice, "sentry-1", Role::Sentry)];
    let bundle = seal(
        &alice,
        &[bob.operator_id(), carol.operator_id()],
        &cards,
        NOW,
        &mut rng(),
    )
    .unwrap();
    // Swap the two recipient entries and sign again: same set, other order.
    let mut bytes = bundle.as_bytes().to_vec();
    let first = EPHEMERAL_AT + 32 + 2;
    let entry = 32 + WRAPPED_KEY_LEN;
    let (a, b) = bytes[first..first + 2 * entry].split_at_mut(entry);
    a.swap_with_slice(b);
    assert!(matches!(
        open(&bob, &resign(bytes, &alice), NOW),
        Err(OpenError::Malformed(DecodeError::Invalid {
            field: "recipient list",
            ..
        }))
    ));
}

#[test]
fn a_bad_card_inside_is_named_by_position() {
    // An honest sender cannot seal a card that does not verify (a
    // `SignedCard` always does), so feed the payload decoder directly.
    let alice = operator(1);
    let good = signed(&alice, "sentry-1", Role::Sentry);
    let mut bad = good.as_bytes().to_vec();
    let len = bad.len();
    bad[len - 1] ^= 1;
    let mut plain = Writer::new();
    plain.count(2);
    plain.bytes(good.as_bytes());
    plain.bytes(&bad);
    let err = decode_cards(plain.as_slice()).unwrap_err();
    assert!(matches!(
        err,
        OpenError::Card {
            index: 2,
            source: ParseCardError::BadSignature { .. }
        }
    ));
    assert!(
        err.to_string()
            .starts_with("card 2 of the bundle: signature does not verify")
    );
}

#[test]
fn a_card_for_another_operators_key_is_refused_when_opened() {
    let (alice, bob, mallory) = (operator(1), operator(2), operator(3));
    let real = signed(&alice, "sentry-1", Role::Sentry);
    let squat = claim(&mallory, "sentry-1", &real.card().wg_public_key);
    let sealed = seal(&mallory, &[bob.operator_id()], &[squat], NOW, &mut rng()).unwrap();
    let err = open(&bob, sealed.as_bytes(), NOW).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Card {
                index: 1,
                source: ParseCardError::BadProof { .. }
            }
        ),
        "{err}"
    );
}
