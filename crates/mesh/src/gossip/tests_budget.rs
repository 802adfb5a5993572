//! Tests of what gossip reads from a peer under its budget and quotas:
//! the receive budget shared by an operator's peers, the rate of another
//! operator's replacements, and objects dropped before their checks when
//! their signer has no room.

use super::tests::{connect, host, net_of, signed};
use super::*;
use crate::card::SignedCard;
use crate::identity::OperatorSecret;
use crate::revocation::{Revocation, RevocationTarget};
use crate::role::Role;
use crate::testing::{NOW, SignCard, card, operator};
use crate::vouch::Vouch;

#[test]
fn a_peer_over_its_budget_is_not_read_until_it_refills() {
    let (alice, bob, carol) = (operator(1), operator(2), operator(3));
    let (a1, b1, c1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
        signed(&carol, "sentry-1", Role::Sentry),
    );
    let mut net = net_of([host(&a1, &[]), host(&b1, &[]), host(&c1, &[])]);
    connect(&mut net, &[(0, 1), (0, 2)]);
    let (from_bob, from_carol) = (b1.card().wg_public_key, c1.card().wg_public_key);
    let gossip = &mut net.hosts[0].node;
    // Bob floods full-length messages, which are read (and do not decode)
    // until his burst is spent.
    let junk = vec![0xff; MAX_MESSAGE_LEN];
    let burst = usize::try_from(RECEIVE_BURST).unwrap() / MAX_MESSAGE_LEN;
    for _ in 0..burst {
        assert!(matches!(
            gossip.handle_message(from_bob, &junk, NOW),
            Err(GossipError::Malformed { .. })
        ));
    }
    // Then even a good message of his is dropped unread.
    let objects = |card: SignedCard| {
        GossipMessage::Objects {
            objects: vec![card.into()],
        }
        .encode()
        .unwrap()
    };
    let bobs_card = objects(signed(&bob, "sentry-2", Role::Sentry));
    assert_eq!(
        gossip.handle_message(from_bob, &bobs_card, NOW),
        Err(GossipError::OverBudget { from: from_bob })
    );
    assert_eq!(gossip.store().len(), 1);
    // Carol's budget is her own.
    let carols_card = objects(signed(&carol, "sentry-2", Role::Sentry));
    assert_eq!(gossip.handle_message(from_carol, &carols_card, NOW), Ok(()));
    assert_eq!(gossip.store().len(), 2);
    // A second later Bob may send RECEIVE_RATE bytes again.
    assert_eq!(gossip.handle_message(from_bob, &bobs_card, NOW + 1), Ok(()));
    assert_eq!(gossip.store().len(), 3);
    let stats = gossip.stats();
    assert_eq!(
        (
            stats.messages_over_budget,
            stats.messages_malformed,
            stats.messages_received
        ),
        (1, burst as u64, 2)
    );
}

#[test]
fn what_a_signer_at_its_quota_cannot_store_is_dropped_before_its_signature_is_checked() {
    let (alice, bob) = (operator(1), operator(2));
    let (a1, b1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
    );
    let subject = |n: u16| {
        let mut seed = [0x44; 32];
        seed[..2].copy_from_slice(&n.to_le_bytes());
        OperatorSecret::from_seed(seed)
    };
    let vouch = |n: u16| {
        Vouch {
            voucher: bob.operator_id(),
            subject: subject(n).operator_id(),
            overlay: "198.19.9.0/24".parse().unwrap(),
            issued_at: NOW,
        }
        .sign(&bob)
        .unwrap()
    };
    let mut net = net_of([host(&a1, &[&b1]), host(&b1, &[])]);
    connect(&mut net, &[(0, 1)]);
    for n in 0..crate::store::STATEMENT_QUOTA as u16 {
        net.hosts[0].node.store.insert_vouch(vouch(n), NOW).unwrap();
    }
    let from = b1.card().wg_public_key;
    // A vouch for a new subject, its signature broken: dropped as over the
    // quota, unverified — the message is not malformed.
    let mut bytes = GossipMessage::Objects {
        objects: vec![vouch(crate::store::STATEMENT_QUOTA as u16).into()],
    }
    .encode()
    .unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 1;
    let gossip = &mut net.hosts[0].node;
    gossip.handle_message(from, &bytes, NOW).unwrap();
    let stats = gossip.stats();
    assert_eq!((stats.objects_over_quota, stats.messages_malformed), (1, 0));
    // A withdrawal of a vouch it holds still goes in.
    let withdrawal = Revocation {
        issuer: bob.operator_id(),
        target: RevocationTarget::Vouch(subject(0).operator_id()),
        issued_at: NOW + 1,
    }
    .sign(&bob)
    .unwrap();
    let bytes = GossipMessage::Objects {
        objects: vec![withdrawal.clone().into()],
    }
    .encode()
    .unwrap();
    gossip.handle_message(from, &bytes, NOW + 1).unwrap();
    assert!(gossip.store().contains(&Object::from(withdrawal).id()));
}

#[test]
fn a_card_its_operator_has_no_room_for_is_dropped_before_its_checks() {
    let (alice, bob) = (operator(1), operator(2));
    let (a1, b1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
    );
    let stray = |n: u32| {
        let mut key = [0x33; 32];
        key[..4].copy_from_slice(&n.to_le_bytes());
        PublicKey::from_bytes(key)
    };
    let mut net = net_of([host(&a1, &[&b1]), host(&b1, &[])]);
    for n in 1..crate::store::HOST_QUOTA as u32 {
        let revocation = Revocation {
            issuer: bob.operator_id(),
            target: RevocationTarget::Host(stray(n)),
            issued_at: NOW,
        }
        .sign(&bob)
        .unwrap();
        net.hosts[0]
            .node
            .store
            .insert_revocation(revocation, NOW)
            .unwrap();
    }
    connect(&mut net, &[(0, 1)]);
    let from = b1.card().wg_public_key;
    // Cards for fresh keys, their signatures broken: each dropped as over
    // the quota, its proof and signature unchecked — not one message is
    // refused as malformed, which a check would have found.
    const FLOOD: usize = 20;
    for n in 0..FLOOD {
        let mut bytes = GossipMessage::Objects {
            objects: vec![signed(&bob, &format!("flood-{n}"), Role::Sentry).into()],
        }
        .encode()
        .unwrap();
        let at = bytes.len() - 10;
        bytes[at] ^= 1;
        net.hosts[0].node.handle_message(from, &bytes, NOW).unwrap();
    }
    let stats = net.hosts[0].node.stats();
    assert_eq!(
        (stats.objects_over_quota, stats.messages_malformed),
        (FLOOD as u64, 0)
    );
    // A renewal of a card Bob holds here needs no room: it goes in.
    let mut renewal = card(&bob, "sentry-1", Role::Sentry);
    renewal.serial = 2;
    let renewal = renewal.sign(&bob).unwrap();
    let bytes = GossipMessage::Objects {
        objects: vec![renewal.clone().into()],
    }
    .encode()
    .unwrap();
    net.hosts[0].node.handle_message(from, &bytes, NOW).unwrap();
    assert_eq!(net.hosts[0].node.store().card(&from), Some(&renewal));
}

#[test]
fn an_operators_peers_share_one_budget() {
    let (alice, bob) = (operator(1), operator(2));
    let (a1, b1, b2) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
        signed(&bob, "sentry-2", Role::Sentry),
    );
    let mut net = net_of([host(&a1, &[&b1, &b2]), host(&b1, &[]), host(&b2, &[])]);
    connect(&mut net, &[(0, 1), (0, 2)]);
    let gossip = &mut net.hosts[0].node;
    let junk = vec![0xff; MAX_MESSAGE_LEN];
    let burst = usize::try_from(RECEIVE_BURST).unwrap() / MAX_MESSAGE_LEN;
    for _ in 0..burst {
        let _ = gossip.handle_message(b1.card().wg_public_key, &junk, NOW);
    }
    // Bob's second host has no budget of its own: another card does not
    // buy its operator more.
    let from = b2.card().wg_public_key;
    assert_eq!(
        gossip.handle_message(from, &junk, NOW),
        Err(GossipError::OverBudget { from })
    );
}

#[test]
fn another_operators_replacements_are_limited_in_rate() {
    let (alice, bob, carol) = (operator(1), operator(2), operator(3));
    let (a1, b1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
    );
    let mut net = net_of([host(&a1, &[&b1]), host(&b1, &[])]);
    connect(&mut net, &[(0, 1)]);
    let from = b1.card().wg_public_key;
    // Bob re-signs one vouch with a later date again and again: each would
    // replace the last, be relayed to every peer and change the store.
    let send = |gossip: &mut Gossip, n: u64, now: UnixTime| {
        let vouch = Vouch {
            voucher: bob.operator_id(),
            subject: carol.operator_id(),
            overlay: "198.19.9.0/24".parse().unwrap(),
            issued_at: NOW - 1000 + n,
        }
        .sign(&bob)
        .unwrap();
        let bytes = GossipMessage::Objects {
            objects: vec![vouch.into()],
        }
        .encode()
        .unwrap();
        gossip.handle_message(from, &bytes, now).unwrap();
    };
    let gossip = &mut net.hosts[0].node;
    let extra = 10;
    for n in 0..=REPLACEMENT_BURST + extra {
        send(gossip, n, NOW);
    }
    let stats = gossip.stats();
    // The first is new, then a burst of replacements; the rest dropped.
    assert_eq!(
        (stats.objects_new, stats.objects_over_quota),
        (1 + REPLACEMENT_BURST, extra)
    );
    // One more once the interval has passed.
    send(gossip, 1000, NOW + REPLACEMENT_EVERY);
    assert_eq!(gossip.stats().objects_new, 2 + REPLACEMENT_BURST);
    // The local operator's own are not limited.
    for n in 0..=REPLACEMENT_BURST + extra {
        let vouch = Vouch {
            voucher: alice.operator_id(),
            subject: carol.operator_id(),
            overlay: "198.19.9.0/24".parse().unwrap(),
            issued_at: NOW - 1000 + n,
        }
        .sign(&alice)
        .unwrap();
        let bytes = GossipMessage::Objects {
            objects: vec![vouch.into()],
        }
        .encode()
        .unwrap();
        gossip.handle_message(from, &bytes, NOW + 10).unwrap();
    }
    assert_eq!(gossip.stats().objects_over_quota, extra);
}
