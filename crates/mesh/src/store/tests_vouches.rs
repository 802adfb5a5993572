//! Tests of which vouches the store keeps: only those that can count on
//! this host, each directly trusted voucher within its own share.

use super::tests::{many_operator, vouch};
use super::*;
use crate::identity::OperatorSecret;
use crate::revocation::Revocation;
use crate::testing::{NOW, operator};

fn withdraw(by: &OperatorSecret, subject: &OperatorSecret) -> SignedRevocation {
    Revocation {
        issuer: by.operator_id(),
        target: RevocationTarget::Vouch(subject.operator_id()),
        issued_at: NOW + 1,
    }
    .sign(by)
    .unwrap()
}

/// A store of a host of operator 1 trusting 2 and 3 directly.
fn store_of_one() -> Store {
    let mut store = Store::new();
    store.reserve_room(
        operator(1).operator_id(),
        &BTreeSet::from([operator(2).operator_id(), operator(3).operator_id()]),
    );
    store
}

#[test]
fn only_vouches_that_can_count_are_kept() {
    let [local, two, three, four, subject] = [1, 2, 3, 4, 20].map(operator);
    let mut store = store_of_one();
    let screened = |store: &Store, object: &Object| {
        let (signer, kind) = (object.as_ref().signer(), object.kind());
        store.may_have_room(signer, kind, object.as_bytes())
    };
    // The local operator's and the direct ones' vouches and withdrawals
    // are kept, whatever their subject: those about operators this host
    // configures count elsewhere, and every host keeping a voucher's
    // statements keeps the same ones.
    for object in [
        Object::from(vouch(&local, &subject, NOW)),
        vouch(&two, &subject, NOW).into(),
        withdraw(&three, &subject).into(),
        vouch(&local, &two, NOW).into(),
        vouch(&two, &three, NOW).into(),
        vouch(&two, &local, NOW).into(),
        withdraw(&three, &two).into(),
    ] {
        assert!(screened(&store, &object));
        assert_eq!(store.insert(object, NOW), Ok(Inserted::New));
    }
    // Operator 4 vouches for no one here, whoever admits it.
    for object in [
        Object::from(vouch(&four, &subject, NOW)),
        withdraw(&four, &subject).into(),
        vouch(&four, &two, NOW).into(),
    ] {
        assert!(!screened(&store, &object), "{object:?}");
        assert!(
            matches!(
                store.insert(object, NOW),
                Err(InsertError::NotCounted { .. })
            ),
            "refused"
        );
    }
    assert_eq!(store.vouches().count(), 5);
    assert_eq!(store.revocations().count(), 2);
    assert_eq!(store.usage_of(&four.operator_id()), (0, 0));
}

#[test]
fn what_cannot_count_leaves_at_the_next_retain() {
    let [local, two, three, four, subject] = [1, 2, 3, 4, 20].map(operator);
    // A state file, or a store before the trust configuration is known,
    // takes any vouch.
    let mut store = Store::new();
    for vouch in [
        vouch(&two, &subject, NOW),
        vouch(&four, &subject, NOW),
        vouch(&two, &three, NOW),
    ] {
        store.insert_vouch(vouch, NOW).unwrap();
    }
    store
        .insert_revocation(withdraw(&four, &three), NOW)
        .unwrap();
    let mut store = Store::decode(&store.encode()).unwrap();
    store.reserve_room(
        local.operator_id(),
        &BTreeSet::from([two.operator_id(), three.operator_id()]),
    );
    // Operator 4 admitted, but no voucher here: its vouch and withdrawal
    // go; a direct voucher's stay, even about a direct operator.
    let admitted = [&local, &two, &three, &four, &subject]
        .map(OperatorSecret::operator_id)
        .into();
    assert_eq!(store.retain_signers(&admitted), 2);
    let left: Vec<_> = store.vouches().map(|v| *v.vouch()).collect();
    let mut kept = vec![
        *vouch(&two, &subject, NOW).vouch(),
        *vouch(&two, &three, NOW).vouch(),
    ];
    kept.sort_by_key(|v| (v.voucher, v.subject));
    assert_eq!(left, kept);
    assert_eq!(store.revocations().count(), 0);
    assert_eq!(store.usage_of(&four.operator_id()), (0, 0));
    assert_eq!(store.usage_of(&two.operator_id()), (0, 2));
}

#[test]
fn a_reload_drops_what_can_no_longer_count() {
    let [local, two, three, subject, other] = [1, 2, 3, 20, 21].map(operator);
    let mut store = store_of_one();
    store.insert_vouch(vouch(&two, &subject, NOW), NOW).unwrap();
    store
        .insert_vouch(vouch(&three, &subject, NOW), NOW)
        .unwrap();
    store
        .insert_revocation(withdraw(&three, &other), NOW)
        .unwrap();
    let generation = store.generation();
    // Operator 3 is no longer trusted directly: its vouch and withdrawal
    // go at once.
    store.reserve_room(local.operator_id(), &BTreeSet::from([two.operator_id()]));
    assert!(store.generation() > generation);
    assert_eq!(store.vouches().count(), 1);
    assert_eq!(store.revocations().count(), 0);
    assert_eq!(store.usage_of(&three.operator_id()), (0, 0));
    // Operator 2 is trusted directly no more: its vouch goes too.
    store.reserve_room(
        local.operator_id(),
        &BTreeSet::from([subject.operator_id()]),
    );
    assert_eq!(store.vouches().count(), 0);
    assert_eq!(store.usage_of(&two.operator_id()), (0, 0));
}

#[test]
fn each_direct_voucher_has_its_own_share() {
    let (rival, honest, local) = (operator(2), operator(3), operator(1));
    let mut store = store_of_one();
    let quota = store.statement_quota();
    assert_eq!(quota, STATEMENT_QUOTA);
    // The rival, trusted directly, vouches for made-up operators first.
    let made_up: Vec<OperatorSecret> = (0..=quota as u16).map(many_operator).collect();
    for subject in &made_up[..quota] {
        store
            .insert_vouch(vouch(&rival, subject, NOW), NOW)
            .unwrap();
    }
    let over = vouch(&rival, &made_up[quota], NOW);
    assert!(!store.may_have_room(rival.operator_id(), ObjectKind::Vouch, over.as_bytes()));
    assert_eq!(
        store.insert_vouch(over, NOW),
        Err(InsertError::OverQuota {
            operator: rival.operator_id(),
            what: "vouches",
            quota,
        })
    );
    // The honest voucher and the local operator have all their room, for
    // the same made-up subjects as for real ones.
    let real = operator(20);
    for by in [&honest, &local] {
        for subject in [&real, &made_up[0], &made_up[quota]] {
            assert_eq!(
                store.insert_vouch(vouch(by, subject, NOW), NOW),
                Ok(Inserted::New)
            );
        }
    }
    assert_eq!(store.usage_of(&honest.operator_id()), (0, 3));
}

#[test]
fn the_share_follows_the_number_of_operators_trusted_directly() {
    let local = operator(1).operator_id();
    let mut store = Store::new();
    assert_eq!(store.statement_quota(), STATEMENT_QUOTA);
    store.reserve_room(local, &BTreeSet::new());
    assert_eq!(store.statement_quota(), STATEMENT_QUOTA);
    let direct = |n: u16| -> BTreeSet<OperatorId> {
        (0..n).map(|i| many_operator(i).operator_id()).collect()
    };
    store.reserve_room(local, &direct(32));
    assert_eq!(store.statement_quota(), STATEMENT_QUOTA);
    store.reserve_room(local, &direct(64));
    assert_eq!(store.statement_quota(), VOUCH_ROOM / 64);
    // Together, the direct operators never pass VOUCH_ROOM.
    for n in [1, 10, 33, 100, 1000] {
        store.reserve_room(local, &direct(n));
        assert!(n as usize * store.statement_quota() <= VOUCH_ROOM);
    }
}
