//! Tests of what an admitted rival operator can do to the store: make a
//! host we revoked rejoin under its own card, and fill the room our own
//! objects need.

use super::tests::{many_operator, revoke_host, signed, stray_key, vouch};
use super::*;
use crate::testing::{NOW, SignCard, operator};

/// A card of `op` named `name` for `key`, proved by the key's holder (the
/// fixtures know every key they made).
fn card_for(op: &crate::identity::OperatorSecret, name: &str, key: PublicKey) -> SignedCard {
    let mut c = signed(op, name, 1).into_card();
    c.wg_public_key = key;
    c.sign(op).unwrap()
}

#[test]
fn a_key_its_holder_revoked_is_refused_under_every_operator() {
    let (alice, mallory) = (operator(1), operator(4));
    let sentry = signed(&alice, "sentry-1", 1);
    let key = sentry.card().wg_public_key;
    // The revoked host still holds its key: a colluding rival signs it a
    // card, with a valid proof.
    let rejoin = card_for(&mallory, "rejoin", key);
    let mut store = Store::new();
    store.insert_card(sentry.clone(), NOW).unwrap();
    store
        .insert_revocation(revoke_host(&alice, key, NOW), NOW)
        .unwrap();
    let refused = store.insert_card(rejoin.clone(), NOW).unwrap_err();
    assert_eq!(
        refused,
        InsertError::Revoked {
            host: "rejoin".into(),
            key,
            operator: alice.operator_id(),
        }
    );
    assert!(store.card(&key).is_none());
    // It stands as long as the tombstone: across the state file too, and
    // until the card Alice revoked has expired.
    let mut again = Store::decode(&store.encode()).unwrap();
    assert!(again.insert_card(rejoin.clone(), NOW).is_err());
    let expiry = sentry.card().not_after;
    store.prune(expiry);
    let mut later = rejoin.card().clone();
    later.not_after = expiry + 86_400;
    assert!(
        store
            .insert_card(later.sign(&mallory).unwrap(), expiry)
            .is_ok()
    );
}

#[test]
fn our_own_revocation_blocks_the_key_for_rivals_without_a_tombstone() {
    let (alice, mallory) = (operator(1), operator(4));
    let producer = crate::testing::card(&alice, "producer-1", crate::role::Role::Producer)
        .sign(&alice)
        .unwrap();
    let key = producer.card().wg_public_key;
    let rejoin = card_for(&mallory, "rejoin", key);
    // A store that never saw the card holds the revocation but no
    // tombstone (a hidden host's revoked card is not kept aside, so after a
    // restart no store has one): on a host of the revoking operator the key
    // stays blocked all the same.
    let mut store = Store::new();
    store
        .insert_revocation(revoke_host(&alice, key, NOW), NOW)
        .unwrap();
    let mut ours = Store::decode(&store.encode()).unwrap();
    ours.reserve_room(alice.operator_id(), &BTreeSet::new());
    assert!(matches!(
        ours.insert_card(rejoin.clone(), NOW),
        Err(InsertError::Revoked { operator, .. }) if operator == alice.operator_id()
    ));
    // Another operator's host, which never saw the card, takes it.
    let mut theirs = Store::decode(&store.encode()).unwrap();
    theirs.reserve_room(operator(2).operator_id(), &BTreeSet::new());
    assert!(theirs.insert_card(rejoin, NOW).is_ok());
}

#[test]
fn a_rival_card_that_came_first_goes_when_the_revoked_card_arrives() {
    let (alice, mallory) = (operator(1), operator(4));
    let sentry = signed(&alice, "sentry-1", 1);
    let key = sentry.card().wg_public_key;
    let mut store = Store::new();
    store
        .insert_card(card_for(&mallory, "rejoin", key), NOW)
        .unwrap();
    store
        .insert_revocation(revoke_host(&alice, key, NOW), NOW)
        .unwrap();
    let generation = store.generation();
    assert!(matches!(
        store.insert_card(sentry, NOW),
        Err(InsertError::Revoked { .. })
    ));
    assert!(store.card(&key).is_none());
    assert!(store.generation() > generation);
    assert_eq!(store.usage_of(&mallory.operator_id()), (0, 0));
}

#[test]
fn a_rival_revocation_of_our_key_blocks_nothing() {
    let (alice, mallory) = (operator(1), operator(4));
    let sentry = signed(&alice, "sentry-1", 1);
    let key = sentry.card().wg_public_key;
    let mut store = Store::new();
    store
        .insert_revocation(revoke_host(&mallory, key, NOW), NOW)
        .unwrap();
    assert_eq!(store.insert_card(sentry.clone(), NOW), Ok(Inserted::New));
    let renewal = signed(&alice, "sentry-1", 2);
    assert!(store.insert_card(renewal, NOW).unwrap().changed());
    store.insert_card(sentry, NOW).unwrap();
    assert!(store.card(&key).is_some());
}

/// A store of a host of operator 1, trusting operator 2 directly, whose
/// pool 64 operators admitted by vouches filled with [`MAX_CARDS`] host
/// revocations of stray keys.
fn filled_by_vouched_operators() -> Store {
    let mut store = Store::new();
    store.reserve_room(
        operator(1).operator_id(),
        &BTreeSet::from([operator(2).operator_id()]),
    );
    let per = MAX_CARDS / HOST_QUOTA;
    for n in 0..per {
        let op = many_operator(n as u16);
        for k in 0..HOST_QUOTA {
            let key = stray_key((n * HOST_QUOTA + k) as u32);
            store
                .insert_revocation(revoke_host(&op, key, NOW), NOW)
                .unwrap();
        }
    }
    store
}

#[test]
fn operators_admitted_by_vouches_cannot_fill_the_room_of_those_we_trust() {
    let (alice, bob) = (operator(1), operator(2));
    let mut store = filled_by_vouched_operators();
    // The caps still hold the operators admitted by vouches.
    let late = many_operator(999);
    let full =
        |result: Result<Inserted, InsertError>| matches!(result, Err(InsertError::Full { .. }));
    assert!(full(store.insert_revocation(
        revoke_host(&late, stray_key(u32::MAX), NOW),
        NOW
    )));
    // Their vouches count nowhere here: none is kept.
    assert!(matches!(
        store.insert_vouch(vouch(&late, &many_operator(1000), NOW), NOW),
        Err(InsertError::NotCounted { .. })
    ));
    assert!(!store.may_have_room(
        late.operator_id(),
        ObjectKind::Vouch,
        vouch(&late, &alice, NOW).as_bytes()
    ));
    // A directly trusted operator has its quota's room: a card, a vouch.
    assert_eq!(
        store.insert_card(signed(&bob, "sentry-1", 1), NOW),
        Ok(Inserted::New)
    );
    assert_eq!(
        store.insert_vouch(vouch(&bob, &late, NOW), NOW),
        Ok(Inserted::New)
    );
    // The local operator's objects are never refused for room: not by
    // the caps, not past its quota.
    for k in 0..HOST_QUOTA {
        store
            .insert_revocation(revoke_host(&alice, stray_key(1 << 20 | k as u32), NOW), NOW)
            .unwrap();
    }
    assert_eq!(
        store.insert_card(signed(&alice, "sentry-1", 1), NOW),
        Ok(Inserted::New)
    );
    assert_eq!(
        store.insert_vouch(vouch(&alice, &late, NOW), NOW),
        Ok(Inserted::New)
    );
    // The state file takes it all back, and a member of the local operator
    // starting from it takes its rotated card.
    let again = Store::decode(&store.encode()).unwrap();
    assert_eq!(again, store);
    let mut gossip = crate::gossip::Gossip::new(again, alice.operator_id());
    let rotated = signed(&alice, "sentry-2", 1);
    assert_eq!(gossip.insert(rotated.into(), NOW), Ok(Inserted::New));
}
