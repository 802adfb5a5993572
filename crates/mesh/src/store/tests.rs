//! Tests of the store rules and of the state file, including files that
//! were damaged or altered.

use super::state::{STATE_MAGIC, STATE_VERSION};
use super::*;
use crate::codec::{DecodeError, Writer};
use crate::identity::OperatorSecret;
use crate::object::ParseObjectError;
use crate::revocation::Revocation;
use crate::role::Role;
use crate::testing::{NOW, SignCard, card, claim, operator};
use crate::vouch::Vouch;

pub(super) fn signed(op: &OperatorSecret, name: &str, serial: u64) -> SignedCard {
    let mut c = card(op, name, Role::Sentry);
    c.serial = serial;
    c.sign(op).unwrap()
}

pub(super) fn vouch(by: &OperatorSecret, subject: &OperatorSecret, at: UnixTime) -> SignedVouch {
    Vouch {
        voucher: by.operator_id(),
        subject: subject.operator_id(),
        overlay: "198.19.9.0/24".parse().unwrap(),
        issued_at: at,
    }
    .sign(by)
    .unwrap()
}

pub(super) fn revoke_host(by: &OperatorSecret, key: PublicKey, at: UnixTime) -> SignedRevocation {
    Revocation {
        issuer: by.operator_id(),
        target: RevocationTarget::Host(key),
        issued_at: at,
    }
    .sign(by)
    .unwrap()
}

/// The signed encoding of the revoked card kept aside for `key`.
fn retired_bytes<'a>(store: &'a Store, key: &PublicKey) -> Option<&'a [u8]> {
    store.retired.get(key).map(RetiredCard::as_bytes)
}

/// A store with two cards, a vouch and a revocation.
fn sample() -> Store {
    let (alice, bob) = (operator(1), operator(2));
    let mut store = Store::new();
    store
        .insert_card(signed(&alice, "sentry-1", 1), NOW)
        .unwrap();
    store.insert_card(signed(&bob, "sentry-1", 1), NOW).unwrap();
    store.insert_vouch(vouch(&alice, &bob, NOW), NOW).unwrap();
    let old = signed(&alice, "sentry-9", 1);
    store
        .insert_revocation(revoke_host(&alice, old.card().wg_public_key, NOW), NOW)
        .unwrap();
    store
}

#[test]
fn a_higher_serial_supersedes_and_a_lower_one_is_outdated() {
    let alice = operator(1);
    let (v1, v2) = (signed(&alice, "sentry-1", 1), signed(&alice, "sentry-1", 2));
    let (id1, id2) = (Object::from(v1.clone()).id(), Object::from(v2.clone()).id());
    let mut store = Store::new();
    assert_eq!(store.insert_card(v1.clone(), NOW), Ok(Inserted::New));
    assert_eq!(
        store.insert_card(v1.clone(), NOW),
        Ok(Inserted::AlreadyHeld)
    );
    assert_eq!(store.generation(), 1);
    assert_eq!(
        store.insert_card(v2.clone(), NOW),
        Ok(Inserted::Superseding { replaced: id1 })
    );
    assert!(!store.contains(&id1) && store.contains(&id2));
    assert_eq!(store.insert_card(v1, NOW), Ok(Inserted::Outdated));
    assert_eq!(store.card(&v2.card().wg_public_key), Some(&v2));
    assert_eq!(store.get(&id2), Some(ObjectRef::Card(&v2)));
    assert_eq!((store.len(), store.generation()), (1, 2));
    assert!(!Inserted::Outdated.changed() && Inserted::New.changed());
}

#[test]
fn two_cards_with_one_serial_settle_on_the_lower_id_in_any_order() {
    let alice = operator(1);
    let a = signed(&alice, "sentry-1", 5);
    let mut other = a.card().clone();
    other.endpoints = vec!["198.18.0.77:51820".parse().unwrap()];
    let b = other.sign(&alice).unwrap();
    let lower = if Object::from(a.clone()).id() < Object::from(b.clone()).id() {
        &a
    } else {
        &b
    };
    for (first, second) in [(&a, &b), (&b, &a)] {
        let mut store = Store::new();
        store.insert_card(first.clone(), NOW).unwrap();
        store.insert_card(second.clone(), NOW).unwrap();
        assert_eq!(store.card(&a.card().wg_public_key), Some(lower));
    }
}

#[test]
fn cards_out_of_their_validity_are_refused_and_pruned() {
    let alice = operator(1);
    let c = signed(&alice, "sentry-1", 1);
    let (not_before, not_after) = (c.card().not_before, c.card().not_after);
    let mut store = Store::new();
    assert!(matches!(
        store.insert_card(c.clone(), not_after),
        Err(InsertError::Time(CardTimeError::Expired { .. }))
    ));
    assert!(matches!(
        store.insert_card(c.clone(), not_before - CLOCK_SKEW - 1),
        Err(InsertError::Time(CardTimeError::NotYetValid { .. }))
    ));
    store.insert_card(c, NOW).unwrap();
    assert_eq!(store.next_expiry(), Some(not_after));
    assert_eq!(store.prune(not_after - 1), 0);
    assert_eq!(store.generation(), 1);
    assert_eq!(store.prune(not_after), 1);
    assert!(store.is_empty());
    assert_eq!((store.next_expiry(), store.generation()), (None, 2));
}

#[test]
fn a_key_claimed_by_another_operator_keeps_the_first_card() {
    let (alice, mallory) = (operator(1), operator(4));
    let real = signed(&alice, "sentry-1", 1);
    let mut squat = real.card().clone();
    squat.operator = mallory.operator_id();
    squat.name = "squat".into();
    squat.serial = 99;
    let squat = squat.sign(&mallory).unwrap();
    let mut store = Store::new();
    store.insert_card(real.clone(), NOW).unwrap();
    let err = store.insert_card(squat.clone(), NOW).unwrap_err();
    assert_eq!(
        err,
        InsertError::KeyConflict(Box::new(KeyConflict {
            host: "squat".into(),
            claimed_by: mallory.operator_id(),
            key: real.card().wg_public_key,
            held_host: "sentry-1".into(),
            held_by: alice.operator_id(),
        }))
    );
    assert!(err.to_string().ends_with("the first card is kept"));
    assert_eq!(store.card(&real.card().wg_public_key), Some(&real));
    // Once the first card has expired, the key is free again.
    let later = real.card().not_after;
    let mut squat_later = squat.card().clone();
    squat_later.not_after = later + 86_400;
    let squat_later = squat_later.sign(&mallory).unwrap();
    assert!(matches!(
        store.insert_card(squat_later.clone(), later),
        Ok(Inserted::Superseding { .. })
    ));
}

#[test]
fn a_host_revocation_removes_the_card_and_refuses_every_later_one() {
    let (alice, mallory) = (operator(1), operator(4));
    let c = signed(&alice, "sentry-1", 1);
    let key = c.card().wg_public_key;
    let mut store = Store::new();
    store.insert_card(c.clone(), NOW).unwrap();
    // Someone else's revocation of Alice's host is kept but does nothing.
    store
        .insert_revocation(revoke_host(&mallory, key, NOW), NOW)
        .unwrap();
    assert_eq!(store.card(&key), Some(&c));
    assert!(!store.is_revoked(c.card()));
    store
        .insert_revocation(revoke_host(&alice, key, NOW), NOW)
        .unwrap();
    assert_eq!(store.card(&key), None);
    assert!(store.is_revoked(c.card()));
    let err = store
        .insert_card(signed(&alice, "sentry-1", 1000), NOW)
        .unwrap_err();
    assert!(matches!(err, InsertError::Revoked { .. }));
    assert!(err.to_string().contains("revoked its key"), "{err}");
    // An older revocation of the same key changes nothing.
    assert_eq!(
        store.insert_revocation(revoke_host(&alice, key, NOW - 10), NOW),
        Ok(Inserted::Outdated)
    );
    assert_eq!(store.revocations().count(), 2);
}

#[test]
fn the_newest_vouch_wins_and_future_statements_are_refused() {
    let (alice, bob) = (operator(1), operator(2));
    let mut store = Store::new();
    store.insert_vouch(vouch(&alice, &bob, NOW), NOW).unwrap();
    assert!(matches!(
        store.insert_vouch(vouch(&alice, &bob, NOW + 5), NOW),
        Ok(Inserted::Superseding { .. })
    ));
    assert_eq!(
        store.insert_vouch(vouch(&alice, &bob, NOW - 5), NOW),
        Ok(Inserted::Outdated)
    );
    assert_eq!(store.vouches().count(), 1);
    assert_eq!(store.vouches().next().unwrap().vouch().issued_at, NOW + 5);
    let future = vouch(&alice, &bob, NOW + CLOCK_SKEW + 1);
    let err = store.insert_vouch(future.clone(), NOW).unwrap_err();
    assert!(matches!(
        err,
        InsertError::FromTheFuture {
            kind: ObjectKind::Vouch,
            ..
        }
    ));
    assert!(store.insert_vouch(future, NOW + 1).is_ok());
    assert!(matches!(
        store.insert_revocation(
            revoke_host(&alice, PublicKey::from_bytes([1; 32]), NOW + 1000),
            NOW
        ),
        Err(InsertError::FromTheFuture {
            kind: ObjectKind::Revocation,
            ..
        })
    ));
}

#[test]
fn objects_are_listed_by_id() {
    let store = sample();
    let ids: Vec<ObjectId> = store.objects().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    for (id, object) in store.objects() {
        assert_eq!(object.id(), id);
    }
    let after: Vec<ObjectId> = store
        .objects_after(Some(ids[1]))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(after, ids[2..]);
    assert!(format!("{store:?}").contains("cards: 2"));
}

#[test]
fn the_state_file_round_trips() {
    let store = sample();
    let bytes = store.encode();
    assert!(bytes.starts_with(b"sentrymesh state\x01"));
    let again = Store::decode(&bytes).unwrap();
    assert_eq!(again, store);
    assert_eq!(again.encode(), bytes);
    assert_eq!(again.generation(), 0);
    assert_eq!(Store::decode(&Store::new().encode()).unwrap(), Store::new());
}

#[test]
fn a_tampered_state_file_is_refused() {
    let store = sample();
    let bytes = store.encode();

    // A flipped bit inside the first card.
    let mut altered = bytes.clone();
    altered[40] ^= 1;
    let err = Store::decode(&altered).unwrap_err();
    assert!(
        matches!(
            err,
            StateError::BadObject {
                kind: ObjectKind::Card,
                index: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("the state file is damaged or was altered: card 0 is refused"),
        "{err}"
    );

    // The last byte of the revocation's signature, before the (empty)
    // list of retired cards.
    let mut altered = bytes.clone();
    let at = altered.len() - 3;
    altered[at] ^= 0x80;
    assert!(matches!(
        Store::decode(&altered),
        Err(StateError::BadObject {
            kind: ObjectKind::Revocation,
            ..
        })
    ));

    assert_eq!(
        Store::decode(b"not a state file"),
        Err(StateError::NotAStateFile)
    );
    let mut version = bytes.clone();
    version[16] = 9;
    assert_eq!(
        Store::decode(&version),
        Err(StateError::UnsupportedVersion { found: 9 })
    );
    assert!(matches!(
        Store::decode(&bytes[..bytes.len() - 1]),
        Err(StateError::Malformed(DecodeError::Truncated { .. }))
    ));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        Store::decode(&longer),
        Err(StateError::Malformed(DecodeError::TrailingBytes {
            count: 1
        }))
    ));
}

#[test]
fn a_state_file_with_valid_objects_out_of_place_is_refused() {
    let (alice, bob) = (operator(1), operator(2));
    let (a, b) = (signed(&alice, "sentry-1", 1), signed(&bob, "sentry-1", 1));
    let file = |cards: &[&SignedCard], revocations: &[&SignedRevocation]| {
        let mut w = Writer::new();
        w.array(STATE_MAGIC);
        w.u8(STATE_VERSION);
        w.count(cards.len());
        cards.iter().for_each(|c| w.bytes(c.as_bytes()));
        w.count(0);
        w.count(revocations.len());
        revocations.iter().for_each(|r| w.bytes(r.as_bytes()));
        w.count(0);
        w.into_bytes()
    };
    let (first, second) = if a.card().wg_public_key < b.card().wg_public_key {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert!(Store::decode(&file(&[first, second], &[])).is_ok());
    assert_eq!(
        Store::decode(&file(&[second, first], &[])),
        Err(StateError::NotCanonical)
    );
    assert_eq!(
        Store::decode(&file(&[first, first], &[])),
        Err(StateError::NotCanonical)
    );
    // A card whose key the file also revokes: the revocation, read
    // after it, removed it, so the file is not what we would write.
    let revoked = revoke_host(&alice, a.card().wg_public_key, NOW);
    assert_eq!(
        Store::decode(&file(&[&a], &[&revoked])),
        Err(StateError::NotCanonical)
    );
    // A rival operator's card for the same key, without its proof of
    // possession: refused whatever its place in the file.
    let squat = claim(&bob, "squat", &a.card().wg_public_key);
    for cards in [[&a, &squat], [&squat, &a]] {
        assert!(matches!(
            Store::decode(&file(&cards, &[])),
            Err(StateError::BadObject {
                source: ParseObjectError::Card(crate::ParseCardError::BadProof { .. }),
                ..
            })
        ));
    }
    // A second operator's card for the same key, proved by the key's
    // holder (a host handed from one operator to another).
    let mut squat = a.card().clone();
    squat.operator = bob.operator_id();
    let squat = squat.sign(&bob).unwrap();
    assert!(matches!(
        Store::decode(&file(&[&a, &squat], &[])),
        Err(StateError::Inconsistent {
            kind: ObjectKind::Card,
            index: 1,
            source: InsertError::KeyConflict(_),
        })
    ));
}

#[test]
fn a_revoked_public_card_is_kept_aside_until_it_expires() {
    let alice = operator(1);
    let sentry = signed(&alice, "sentry-1", 1);
    let producer = card(&alice, "producer-1", Role::Producer)
        .sign(&alice)
        .unwrap();
    let mut store = Store::new();
    store.insert_card(sentry.clone(), NOW).unwrap();
    store.insert_card(producer.clone(), NOW).unwrap();
    for c in [&sentry, &producer] {
        store
            .insert_revocation(revoke_host(&alice, c.card().wg_public_key, NOW), NOW)
            .unwrap();
    }
    let (s_key, p_key) = (sentry.card().wg_public_key, producer.card().wg_public_key);
    // Neither is a card any more; the public one is remembered.
    assert_eq!((store.card(&s_key), store.card(&p_key)), (None, None));
    assert_eq!(
        store.public_host_operator(&s_key),
        Some(alice.operator_id())
    );
    assert_eq!(retired_bytes(&store, &s_key), Some(sentry.as_bytes()));
    assert_eq!(store.public_host_operator(&p_key), None);
    assert_eq!(retired_bytes(&store, &p_key), None);
    assert_eq!(store.objects().count(), 2, "the two revocations");
    // It survives the state file, and goes when it expires.
    let again = Store::decode(&store.encode()).unwrap();
    assert_eq!(again, store);
    assert_eq!(
        again.public_host_operator(&s_key),
        Some(alice.operator_id())
    );
    assert_eq!(retired_bytes(&again, &s_key), Some(sentry.as_bytes()));
    let expiry = sentry.card().not_after;
    assert_eq!(store.next_expiry(), Some(expiry));
    // Once the cards they revoked have expired, the revocations need not
    // stand any more: the retired card and both tombstones go.
    assert_eq!(store.prune(expiry - 1), 0);
    assert_eq!(store.prune(expiry), 3);
    assert_eq!(store.public_host_operator(&s_key), None);
    assert_eq!(retired_bytes(&store, &s_key), None);
    assert_eq!((store.next_expiry(), store.len()), (None, 0));
    assert_eq!(store.usage_of(&alice.operator_id()), (0, 0));
}

#[test]
fn a_card_arriving_after_its_revocation_is_refused_but_remembered() {
    let alice = operator(1);
    let sentry = signed(&alice, "sentry-1", 1);
    let key = sentry.card().wg_public_key;
    let mut store = Store::new();
    store
        .insert_revocation(revoke_host(&alice, key, NOW), NOW)
        .unwrap();
    let generation = store.generation();
    assert!(matches!(
        store.insert_card(sentry.clone(), NOW),
        Err(InsertError::Revoked { .. })
    ));
    assert_eq!(store.public_host_operator(&key), Some(alice.operator_id()));
    assert_eq!(retired_bytes(&store, &key), Some(sentry.as_bytes()));
    assert_eq!(store.generation(), generation + 1, "worth writing down");
    assert!(store.insert_card(sentry, NOW).is_err());
    assert_eq!(store.generation(), generation + 1);
}

#[test]
fn a_retired_card_without_its_revocation_is_refused_in_a_state_file() {
    let alice = operator(1);
    let sentry = signed(&alice, "sentry-1", 1);
    let mut store = Store::new();
    store.insert_card(sentry.clone(), NOW).unwrap();
    store
        .insert_revocation(revoke_host(&alice, sentry.card().wg_public_key, NOW), NOW)
        .unwrap();
    let bytes = store.encode();
    // Drop the revocation from the file, keeping the retired card.
    let mut w = Writer::new();
    w.array(STATE_MAGIC);
    w.u8(STATE_VERSION);
    w.count(0);
    w.count(0);
    w.count(0);
    w.count(1);
    w.bytes(sentry.as_bytes());
    assert_eq!(
        Store::decode(&w.into_bytes()),
        Err(StateError::NotCanonical)
    );
    // And a damaged retired card is named as such.
    let mut altered = bytes.clone();
    let at = altered.len() - 10;
    altered[at] ^= 1;
    let err = Store::decode(&altered).unwrap_err();
    assert!(
        matches!(err, StateError::BadRetiredCard { index: 0, .. }),
        "{err:?}"
    );
}

/// A key no card names.
pub(super) fn stray_key(n: u32) -> PublicKey {
    let mut key = [0x33; 32];
    key[..4].copy_from_slice(&n.to_le_bytes());
    PublicKey::from_bytes(key)
}

/// Operator number `n` beyond the 256 of [`operator`].
pub(super) fn many_operator(n: u16) -> OperatorSecret {
    let mut seed = [0x44; 32];
    seed[..2].copy_from_slice(&n.to_le_bytes());
    OperatorSecret::from_seed(seed)
}

#[test]
fn an_operator_at_its_quota_can_still_revoke_its_own_hosts() {
    let (alice, bob) = (operator(1), operator(2));
    let mut store = Store::new();
    let sentry = signed(&alice, "sentry-1", 1);
    store.insert_card(sentry.clone(), NOW).unwrap();
    for n in 1..HOST_QUOTA as u32 {
        store
            .insert_revocation(revoke_host(&alice, stray_key(n), NOW), NOW)
            .unwrap();
    }
    assert_eq!(store.usage_of(&alice.operator_id()), (HOST_QUOTA, 0));
    // Read before any signature check: a revocation of a stray key needs
    // room Alice has no more of; one of her card held, or one she holds
    // already, does not; Bob has room.
    let room = |store: &Store, by: &OperatorSecret, key| {
        let r = revoke_host(by, key, NOW + 1);
        store.may_have_room(by.operator_id(), ObjectKind::Revocation, r.as_bytes())
    };
    assert!(!room(&store, &alice, stray_key(0)));
    assert!(room(&store, &alice, sentry.card().wg_public_key));
    assert!(room(&store, &alice, stray_key(1)));
    assert!(room(&store, &bob, stray_key(0)));
    let over = store
        .insert_revocation(revoke_host(&alice, stray_key(0), NOW), NOW)
        .unwrap_err();
    assert!(
        matches!(
            over,
            InsertError::OverQuota {
                quota: HOST_QUOTA,
                ..
            }
        ),
        "{over}"
    );
    assert!(matches!(
        store.insert_card(signed(&alice, "sentry-2", 1), NOW),
        Err(InsertError::OverQuota { .. })
    ));
    // A renewal takes its card's place; another operator has its own room.
    store
        .insert_card(signed(&alice, "sentry-1", 2), NOW)
        .unwrap();
    store.insert_card(signed(&bob, "sentry-1", 1), NOW).unwrap();
    // Revoking its own card held takes that card's room: never refused.
    let key = sentry.card().wg_public_key;
    assert_eq!(
        store.insert_revocation(revoke_host(&alice, key, NOW), NOW),
        Ok(Inserted::New)
    );
    assert!(store.card(&key).is_none());
    assert_eq!(store.usage_of(&alice.operator_id()), (HOST_QUOTA, 0));
    // The state file takes it all back.
    assert_eq!(Store::decode(&store.encode()).unwrap(), store);
}

#[test]
fn an_operator_at_its_vouch_quota_can_still_withdraw_its_vouches() {
    let alice = operator(1);
    let subjects: Vec<OperatorSecret> = (0..=STATEMENT_QUOTA as u16).map(many_operator).collect();
    let mut store = Store::new();
    for subject in &subjects[..STATEMENT_QUOTA] {
        store
            .insert_vouch(vouch(&alice, subject, NOW), NOW)
            .unwrap();
    }
    let withdraw = |subject: &OperatorSecret| {
        Revocation {
            issuer: alice.operator_id(),
            target: RevocationTarget::Vouch(subject.operator_id()),
            issued_at: NOW + 1,
        }
        .sign(&alice)
        .unwrap()
    };
    let last = &subjects[STATEMENT_QUOTA];
    // Read before any signature check: a new pair needs room Alice has no
    // more of; a newer vouch or a withdrawal of a pair held does not.
    let id = alice.operator_id();
    let room = |store: &Store, kind, bytes: &[u8]| store.may_have_room(id, kind, bytes);
    assert!(!room(
        &store,
        ObjectKind::Vouch,
        vouch(&alice, last, NOW).as_bytes()
    ));
    assert!(!room(
        &store,
        ObjectKind::Revocation,
        withdraw(last).as_bytes()
    ));
    let held = &subjects[0];
    assert!(room(
        &store,
        ObjectKind::Vouch,
        vouch(&alice, held, NOW + 1).as_bytes()
    ));
    assert!(room(
        &store,
        ObjectKind::Revocation,
        withdraw(held).as_bytes()
    ));
    assert!(matches!(
        store.insert_vouch(vouch(&alice, last, NOW), NOW),
        Err(InsertError::OverQuota {
            what: "vouches",
            ..
        })
    ));
    assert!(matches!(
        store.insert_revocation(withdraw(last), NOW + 1),
        Err(InsertError::OverQuota { .. })
    ));
    // A withdrawal of a vouch held shares its pair: never refused.
    assert_eq!(
        store.insert_revocation(withdraw(&subjects[0]), NOW + 1),
        Ok(Inserted::New)
    );
    assert_eq!(store.usage_of(&alice.operator_id()), (0, STATEMENT_QUOTA));
}

#[test]
fn a_tombstone_stands_until_every_card_it_revoked_has_expired() {
    let alice = operator(1);
    let short = signed(&alice, "sentry-1", 1);
    let key = short.card().wg_public_key;
    let mut long = card(&alice, "sentry-1", Role::Sentry);
    long.serial = 2;
    long.not_after += 86_400;
    let long = long.sign(&alice).unwrap();
    let mut store = Store::new();
    store.insert_card(short.clone(), NOW).unwrap();
    store
        .insert_revocation(revoke_host(&alice, key, NOW), NOW)
        .unwrap();
    // A later card of the key, replayed after the revocation, is refused
    // and keeps the tombstone standing until it expires too.
    assert!(matches!(
        store.insert_card(long.clone(), NOW),
        Err(InsertError::Revoked { .. })
    ));
    store.prune(short.card().not_after);
    assert!(store.is_revoked(long.card()));
    assert_eq!(store.next_expiry(), Some(long.card().not_after));
    store.prune(long.card().not_after);
    assert!(!store.is_revoked(long.card()));
    assert_eq!(store.len(), 0);
    // A revocation of a key never seen on a card here is kept.
    store
        .insert_revocation(revoke_host(&alice, stray_key(1), NOW), NOW)
        .unwrap();
    assert_eq!(store.prune(UnixTime(u64::MAX - 1)), 0);
    assert_eq!(store.revocations().count(), 1);
}

#[test]
fn operators_no_longer_admitted_leave_but_their_tombstones_stay() {
    let (alice, bob, carol) = (operator(1), operator(2), operator(3));
    let mut store = Store::new();
    let (a, b) = (signed(&alice, "sentry-1", 1), signed(&bob, "sentry-1", 1));
    let b_gone = signed(&bob, "sentry-2", 1);
    for c in [&a, &b, &b_gone] {
        store.insert_card(c.clone(), NOW).unwrap();
    }
    store.insert_vouch(vouch(&alice, &bob, NOW), NOW).unwrap();
    store.insert_vouch(vouch(&bob, &carol, NOW), NOW).unwrap();
    let tombstone = revoke_host(&bob, b_gone.card().wg_public_key, NOW);
    let stray = revoke_host(&bob, stray_key(1), NOW);
    store.insert_revocation(tombstone.clone(), NOW).unwrap();
    store.insert_revocation(stray.clone(), NOW).unwrap();
    let generation = store.generation();
    let admitted = BTreeSet::from([alice.operator_id()]);
    // Bob's card, vouch and stray revocation go; Alice's vouch for Bob
    // stays, and so does Bob's revocation of a card it had here.
    assert_eq!(store.retain_signers(&admitted), 3);
    assert!(store.generation() > generation);
    assert_eq!(store.cards().collect::<Vec<_>>(), [&a]);
    assert_eq!(store.vouches().count(), 1);
    assert_eq!(store.revocations().collect::<Vec<_>>(), [&tombstone]);
    assert_eq!(
        store.public_host_operator(&b_gone.card().wg_public_key),
        Some(bob.operator_id())
    );
    assert_eq!(store.usage_of(&bob.operator_id()), (1, 0));
    assert_eq!(Store::decode(&store.encode()).unwrap(), store);
    assert_eq!(store.retain_signers(&admitted), 0);
}

/// The objects the property below draws from: three operators' cards (a
/// renewal and a short-lived one among them, a hidden host's too), host
/// revocations of their own keys, of another's and of stray keys, vouches
/// and withdrawals.
fn pool() -> &'static [Object] {
    static POOL: std::sync::OnceLock<Vec<Object>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let ops: Vec<OperatorSecret> = (1..=3).map(operator).collect();
        let mut pool: Vec<Object> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let other = &ops[(i + 1) % ops.len()];
            for name in ["h0", "h1"] {
                pool.push(signed(op, name, 1).into());
                pool.push(signed(op, name, 2).into());
            }
            let mut short = card(op, "h1", Role::Sentry);
            short.serial = 3;
            short.not_after = NOW + 100;
            pool.push(short.sign(op).unwrap().into());
            let hidden = card(op, "p0", Role::Producer).sign(op).unwrap();
            let own = [
                signed(op, "h0", 1).card().wg_public_key,
                signed(op, "h1", 1).card().wg_public_key,
                hidden.card().wg_public_key,
            ];
            pool.push(hidden.into());
            for key in own {
                pool.push(revoke_host(op, key, NOW).into());
            }
            let theirs = signed(other, "h0", 1).card().wg_public_key;
            pool.push(revoke_host(op, theirs, NOW).into());
            pool.push(revoke_host(op, stray_key(i as u32), NOW).into());
            pool.push(vouch(op, other, NOW).into());
            pool.push(vouch(op, other, NOW + 10).into());
            // Operator 4 is trusted by no one: vouches for it count when
            // operator 1 or 2 signs them.
            pool.push(vouch(op, &operator(4), NOW).into());
            pool.push(
                Revocation {
                    issuer: op.operator_id(),
                    target: RevocationTarget::Vouch(other.operator_id()),
                    issued_at: NOW + 5,
                }
                .sign(op)
                .unwrap()
                .into(),
            );
        }
        pool
    })
}

/// What the property does to a store.
#[derive(Debug, Clone)]
enum Step {
    Insert(usize),
    Prune(u64),
    Retain(u8),
    /// Operator 1 trusts directly the operators of the mask's bits (2 to
    /// 4).
    Trust(u8),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        6 => any::<usize>().prop_map(Step::Insert),
        1 => prop::sample::select(vec![0, 101, 91 * 86_400]).prop_map(Step::Prune),
        1 => (1u8..8).prop_map(Step::Retain),
        1 => (0u8..8).prop_map(Step::Trust),
    ]
}

/// The counters the quotas rest on agree with what the store holds, and so
/// do its indexes; only what can count is kept; the state file
/// round-trips.
fn assert_consistent(store: &Store) {
    let mut usage: BTreeMap<OperatorId, Usage> = BTreeMap::new();
    for held in store.cards.values() {
        usage.entry(held.object.card().operator).or_default().hosts += 1;
    }
    let mut pairs = BTreeSet::new();
    for &(issuer, target) in store.revocations.keys() {
        match target {
            RevocationTarget::Host(_) => {
                usage.entry(issuer).or_default().hosts += 1;
            }
            RevocationTarget::Vouch(subject) => {
                pairs.insert((issuer, subject));
            }
        }
    }
    pairs.extend(store.vouches.keys().copied());
    for (voucher, _) in pairs {
        usage.entry(voucher).or_default().statements += 1;
    }
    assert_eq!(store.usage, usage);
    let pooled: usize = store
        .usage
        .iter()
        .filter(|(operator, _)| store.local != Some(**operator) && !store.direct.contains(operator))
        .map(|(_, usage)| usage.hosts)
        .sum();
    assert_eq!(store.pooled_hosts, pooled);
    // Only vouches and withdrawals that can count, or the local
    // operator's, are kept.
    let withdrawals = store
        .revocations
        .keys()
        .filter_map(|&(issuer, target)| match target {
            RevocationTarget::Vouch(subject) => Some((issuer, subject)),
            RevocationTarget::Host(_) => None,
        });
    for (voucher, _) in store.vouches.keys().copied().chain(withdrawals) {
        assert!(store.keeps(voucher));
    }
    assert_eq!(
        store.ids.len(),
        store.cards.len() + store.vouches.len() + store.revocations.len()
    );
    assert_eq!(store.tombstones.len(), store.tombstone_expiries.len());
    let tombstoned: BTreeSet<(OperatorId, PublicKey)> = store
        .tombstoned_keys
        .iter()
        .flat_map(|(key, issuers)| issuers.iter().map(|issuer| (*issuer, *key)))
        .collect();
    assert!(tombstoned.iter().eq(store.tombstones.keys()));
    for (&(issuer, key), &until) in &store.tombstones {
        assert!(store.revokes_host(issuer, key));
        assert!(store.tombstone_expiries.contains(&(until, issuer, key)));
    }
    assert_eq!(store.retired.len(), store.retired_expiries.len());
    for (key, retired) in &store.retired {
        assert!(store.revokes_host(retired.operator(), *key));
        assert!(
            store
                .retired_expiries
                .contains(&(retired.not_after(), *key))
        );
        // What is kept is the public card its operator revoked.
        let card = SignedCard::decode(retired.as_bytes()).unwrap();
        let card = card.card();
        assert_eq!(
            (card.wg_public_key, card.operator, card.not_after),
            (*key, retired.operator(), retired.not_after())
        );
        assert!(!card.role.is_hidden());
    }
    assert_eq!(&Store::decode(&store.encode()).unwrap(), store);
}

proptest::proptest! {
    #[test]
    fn the_quota_counters_follow_every_insert_prune_retain_and_reload(
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let pool = pool();
        // Operator 1 is local, 2 trusted directly, 3 admitted by vouches:
        // only 1's and 2's vouches for 3 and 4 can count (1's for 2 is
        // kept too), until a step changes whom 1 trusts directly.
        let mut store = Store::new();
        store.reserve_room(operator(1).operator_id(), &BTreeSet::from([operator(2).operator_id()]));
        for step in steps {
            match step {
                Step::Insert(i) => {
                    let _ = store.insert(pool[i % pool.len()].clone(), NOW);
                }
                Step::Prune(after) => {
                    store.prune(NOW + after);
                }
                Step::Retain(mask) => {
                    let admitted: BTreeSet<OperatorId> = (1..=3u8)
                        .filter(|n| mask & (1 << (n - 1)) != 0)
                        .map(|n| operator(n).operator_id())
                        .collect();
                    store.retain_signers(&admitted);
                }
                Step::Trust(mask) => {
                    let direct: BTreeSet<OperatorId> = (2..=4u8)
                        .filter(|n| mask & (1 << (n - 2)) != 0)
                        .map(|n| operator(n).operator_id())
                        .collect();
                    store.reserve_room(operator(1).operator_id(), &direct);
                }
            }
            assert_consistent(&store);
        }
    }
}
