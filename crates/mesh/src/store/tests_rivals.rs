//! Tests of what an admitted rival operator can do to the store: make a
//! host we revoked rejoin under its own card, and fill the room our own
//! objects need.

use super::tests::{revoke_host, signed};
use super::*;
use crate::testing::{NOW, SignCard, operator};

/// A card of `op` named `name` for `key`, proved by the key's holder (the
/// fixtures know every key they made).
fn card_for(op: &crate::identity::OperatorSecret, name: &str, key: WgPublicKey) -> SignedCard {
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
