//! Tests of the gossip machine between a few hosts wired by hand, in
//! virtual time.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;
use crate::card::{ParseCardError, SignedCard};
use crate::identity::OperatorSecret;
use crate::object::ParseObjectError;
use crate::revocation::{Revocation, RevocationTarget};
use crate::role::Role;
use crate::sim::{Host, Net};
use crate::testing::{NOW, SignCard, card, claim, operator};
use crate::vouch::Vouch;

pub(super) fn signed(op: &OperatorSecret, name: &str, role: Role) -> SignedCard {
    card(op, name, role).sign(op).unwrap()
}

/// A host whose own card is `own`, knowing `others` too.
pub(super) fn host(own: &SignedCard, others: &[&SignedCard]) -> Host<Gossip> {
    let mut store = Store::new();
    for c in std::iter::once(own).chain(others.iter().copied()) {
        store.insert_card(c.clone(), NOW).unwrap();
    }
    Host {
        key: own.card().wg_public_key,
        node: Gossip::new(store, own.card().operator),
    }
}

/// The hosts on a perfect network at [`NOW`], recording every message.
pub(super) fn net_of(hosts: impl IntoIterator<Item = Host<Gossip>>) -> Net<Gossip> {
    let mut net = Net::new(NOW, ChaCha8Rng::seed_from_u64(0));
    net.record();
    for host in hosts {
        net.add(host.key, host.node);
    }
    net
}

/// A host's key and operator, as a peer of another.
pub(super) fn end(host: &Host<Gossip>) -> (PublicKey, OperatorId) {
    (host.key, host.node.local_operator)
}

/// Makes every listed pair peers, every host trusting every other
/// operator directly.
pub(super) fn connect(net: &mut Net<Gossip>, pairs: &[(usize, usize)]) {
    let admitted: BTreeSet<OperatorId> = net.nodes().map(|g| g.local_operator).collect();
    let ends: Vec<(PublicKey, OperatorId)> = net.hosts.iter().map(end).collect();
    for (i, host) in net.hosts.iter_mut().enumerate() {
        let mut direct = admitted.clone();
        direct.remove(&host.node.local_operator);
        host.node.set_direct(&direct);
        let peers = pairs.iter().filter_map(|&(a, b)| match i {
            _ if i == a => Some(ends[b]),
            _ if i == b => Some(ends[a]),
            _ => None,
        });
        host.node.set_peers(peers, admitted.clone(), NOW);
    }
}

/// Delivers every message until none is left; returns them as
/// (from, to, bytes).
pub(super) fn run(net: &mut Net<Gossip>) -> Vec<(usize, usize, Vec<u8>)> {
    run_at(net, NOW)
}

/// [`run`] at `now`.
///
/// # Panics
///
/// If a host refuses a message for any reason, its sender's budget too.
pub(super) fn run_at(net: &mut Net<Gossip>, now: UnixTime) -> Vec<(usize, usize, Vec<u8>)> {
    net.now = now;
    let (logged, dropped) = (net.log().len(), net.dropped);
    net.deliver();
    assert_eq!(net.dropped, dropped, "a message was refused");
    net.log()[logged..]
        .iter()
        .map(|d| (d.from, d.to, d.bytes.clone()))
        .collect()
}

pub(super) fn ids(host: &Host<Gossip>) -> BTreeSet<ObjectId> {
    host.node.store().objects().map(|(id, _)| id).collect()
}

pub(super) fn revoke(op: &OperatorSecret, target: &SignedCard) -> SignedRevocation {
    Revocation {
        issuer: op.operator_id(),
        target: RevocationTarget::Host(target.card().wg_public_key),
        issued_at: NOW,
    }
    .sign(op)
    .unwrap()
}

use crate::revocation::SignedRevocation;

/// Runs a round at each host at `now`, then delivers until quiet; returns
/// what was sent.
pub(super) fn round_at(net: &mut Net<Gossip>, now: UnixTime) -> Vec<(usize, usize, Vec<u8>)> {
    for h in &mut net.hosts {
        h.node.handle_timeout(now);
    }
    run_at(net, now)
}

/// The message types of a log, in order.
pub(super) fn kinds(log: &[(usize, usize, Vec<u8>)]) -> Vec<u8> {
    log.iter().map(|(_, _, b)| b[1]).collect()
}

#[test]
fn two_hosts_converge_by_summary_buckets_ranges_and_objects() {
    let (alice, bob, carol) = (operator(1), operator(2), operator(3));
    let (a1, a2, b1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&alice, "sentry-2", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
    );
    let vouch = Vouch {
        voucher: alice.operator_id(),
        subject: carol.operator_id(),
        overlay: "198.19.9.0/24".parse().unwrap(),
        issued_at: NOW,
    }
    .sign(&alice)
    .unwrap();
    let mut net = net_of([host(&a1, &[&a2]), host(&b1, &[])]);
    net.hosts[0].node.insert(vouch.into(), NOW).unwrap();
    // Admitting another operator, each reconciles with a peer at once.
    connect(&mut net, &[(0, 1)]);
    let log = run(&mut net);
    let sent = kinds(&log);
    // Host 0 summarised its view; host 1's buckets answered it (and stood
    // for its own summary); host 0 listed its ids in the buckets that
    // differ; then each sent what the other lacked, both ways at once.
    assert_eq!(sent, vec![4, 5, 6, 3, 2, 3]);
    let stats = net.hosts[1].node.stats();
    assert_eq!(stats.objects_new, 2, "alice's cards");
    assert_eq!(stats.reconciliations, 1);
    // The vouch is no part of the views: host 1, trusting alice
    // directly, asks about her statements in its first round (and once
    // more a few seconds later), and has it announced too.
    let settled = LAZY_ROUNDS.max(REQUEST_TIMEOUT) + 1;
    for round in 0..settled {
        round_at(&mut net, NOW + round);
    }
    assert_eq!(ids(&net.hosts[0]), ids(&net.hosts[1]));
    assert_eq!(net.hosts[1].node.store().len(), 4);
    // Steady: a round is a summary each way, nothing more, the same size
    // however much the store holds.
    let matched = net.hosts[1].node.stats().summaries_matched;
    for round in settled..settled + 3 {
        let log = round_at(&mut net, NOW + round);
        assert_eq!(kinds(&log), vec![4, 4], "only the two summaries");
        assert!(log.iter().all(|(_, _, b)| b.len() == 2 + 4 + ROOT_HASH_LEN));
        assert_eq!(net.hosts[0].node.poll_timeout(), Some(NOW + round + ROUND));
    }
    assert_eq!(net.hosts[1].node.stats().summaries_matched, matched + 3);
    // Each voucher's statements are asked about again once settled for a
    // while: one short message each, which matches. (Each host asks about
    // the other's operator; about its own, it has no peer to ask.)
    let matched = net.hosts[1].node.stats().statements_matched;
    let mut sent = Vec::new();
    for round in RESETTLE_AFTER..RESETTLE_AFTER + settled + 1 {
        sent.extend(kinds(&round_at(&mut net, NOW + round)));
    }
    assert_eq!(
        sent.iter().filter(|&&kind| kind == 7).count(),
        2,
        "{sent:?}"
    );
    assert_eq!(
        sent.iter().filter(|&&kind| kind != 4 && kind != 7).count(),
        0
    );
    assert_eq!(net.hosts[1].node.stats().statements_matched, matched + 1);
}

#[test]
fn hidden_cards_and_their_ids_stay_with_their_operator() {
    let (alice, bob) = (operator(1), operator(2));
    let producer = signed(&alice, "producer-1", Role::Producer);
    let (a1, a2, b1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&alice, "sentry-2", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
    );
    // Alice's sentry-1 knows her producer; sentry-2 and Bob's sentry do not.
    let mut net = net_of([host(&a1, &[&producer]), host(&a2, &[]), host(&b1, &[])]);
    connect(&mut net, &[(0, 1), (0, 2), (1, 2)]);
    let log = run(&mut net);
    let producer_id = Object::from(producer.clone()).id();
    assert!(net.hosts[1].node.store().contains(&producer_id));
    assert!(!net.hosts[2].node.store().contains(&producer_id));
    let key = producer.card().wg_public_key;
    for (_, to, bytes) in log.iter().filter(|(_, to, _)| *to == 2) {
        assert!(
            !bytes.windows(32).any(|w| w == key.as_bytes()),
            "the producer's key went to host {to}"
        );
        assert!(!bytes.windows(32).any(|w| w == producer_id.as_bytes()));
    }
    // Asking for it by id gets nothing.
    let want = GossipMessage::Want {
        ids: vec![producer_id],
    }
    .encode()
    .unwrap();
    net.hosts[0]
        .node
        .handle_message(b1.card().wg_public_key, &want, NOW)
        .unwrap();
    assert_eq!(net.hosts[0].node.poll_transmit(), None);
    let b_operator = bob.operator_id();
    let store = net.hosts[0].node.store();
    assert!(
        !net.hosts[0]
            .node
            .may_send(store.get(&producer_id).unwrap(), &b_operator)
    );
    assert!(
        net.hosts[0]
            .node
            .may_send(store.get(&producer_id).unwrap(), &alice.operator_id())
    );
}

#[test]
fn cards_of_operators_this_host_does_not_admit_are_not_relayed() {
    let (alice, bob, carol) = (operator(1), operator(2), operator(3));
    let (a1, b1, c1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
        signed(&carol, "sentry-1", Role::Sentry),
    );
    let mut net = net_of([host(&a1, &[&c1]), host(&b1, &[])]);
    let peers = end;
    let (pa, pb) = (peers(&net.hosts[0]), peers(&net.hosts[1]));
    let both = BTreeSet::from([alice.operator_id(), bob.operator_id()]);
    net.hosts[0].node.set_peers([pb], both.clone(), NOW);
    net.hosts[1].node.set_peers([pa], both, NOW);
    run(&mut net);
    let carol_id = Object::from(c1).id();
    assert!(!net.hosts[1].node.store().contains(&carol_id));
    assert_eq!(net.hosts[1].node.store().len(), 2);
}

#[test]
fn new_objects_are_pushed_at_once_and_relayed_once() {
    let alice = operator(1);
    let cards: Vec<SignedCard> = (1..=5)
        .map(|i| signed(&alice, &format!("sentry-{i}"), Role::Sentry))
        .collect();
    let all: Vec<&SignedCard> = cards.iter().collect();
    // A line: 0 - 1 - 2 - 3; the fifth card is no host's here.
    let mut net = net_of(cards[..4].iter().map(|c| host(c, &all)));
    connect(&mut net, &[(0, 1), (1, 2), (2, 3)]);
    run(&mut net);
    let revocation = revoke(&alice, &cards[4]);
    net.hosts[0].node.insert(revocation.into(), NOW).unwrap();
    let log = run(&mut net);
    // One objects message per hop, forward only; no digest, no want.
    let hops: Vec<(usize, usize)> = log.iter().map(|(f, t, _)| (*f, *t)).collect();
    assert_eq!(hops, [(0, 1), (1, 2), (2, 3)]);
    assert!(log.iter().all(|(_, _, b)| b[1] == 3));
    for h in &net.hosts {
        assert!(
            h.node
                .store()
                .card(&cards[4].card().wg_public_key)
                .is_none()
        );
    }
}

#[test]
fn bad_messages_are_dropped_and_counted() {
    let (alice, bob, mallory) = (operator(1), operator(2), operator(4));
    let (a1, b1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
    );
    let mut net = net_of([host(&a1, &[]), host(&b1, &[])]);
    connect(&mut net, &[(0, 1)]);
    let from = b1.card().wg_public_key;
    let gossip = &mut net.hosts[0].node;
    let stranger = PublicKey::from_bytes([9; 32]);
    let digest = GossipMessage::Digest { ids: vec![] }.encode().unwrap();
    assert_eq!(
        gossip.handle_message(stranger, &digest, NOW),
        Err(GossipError::UnknownPeer { from: stranger })
    );
    assert!(matches!(
        gossip.handle_message(from, b"\x01\x07", NOW),
        Err(GossipError::Malformed { .. })
    ));
    // A card altered by a relay: refused whole, nothing stored.
    let mut bytes = GossipMessage::Objects {
        objects: vec![signed(&bob, "sentry-9", Role::Sentry).into()],
    }
    .encode()
    .unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 1;
    let err = gossip.handle_message(from, &bytes, NOW).unwrap_err();
    assert!(err.to_string().starts_with("gossip message from"), "{err}");
    // An operator not admitted: its objects are dropped before their
    // signatures are checked — even a bad signature goes unnoticed.
    let mut bytes = GossipMessage::Objects {
        objects: vec![signed(&mallory, "sentry-9", Role::Sentry).into()],
    }
    .encode()
    .unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 1;
    gossip.handle_message(from, &bytes, NOW).unwrap();
    let stats = gossip.stats();
    assert_eq!(
        (
            stats.messages_from_strangers,
            stats.messages_malformed,
            stats.messages_received,
            stats.objects_not_admitted
        ),
        (1, 2, 1, 1)
    );
    assert_eq!(gossip.store().len(), 1);
}

#[test]
fn another_operators_hidden_card_is_not_for_us() {
    let (alice, bob) = (operator(1), operator(2));
    let (a1, b1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
    );
    let producer = signed(&bob, "producer-1", Role::Producer);
    let mut net = net_of([host(&a1, &[]), host(&b1, &[])]);
    connect(&mut net, &[(0, 1)]);
    let message = GossipMessage::Objects {
        objects: vec![producer.clone().into()],
    }
    .encode()
    .unwrap();
    net.hosts[0]
        .node
        .handle_message(b1.card().wg_public_key, &message, NOW)
        .unwrap();
    assert_eq!(
        net.hosts[0]
            .node
            .store()
            .card(&producer.card().wg_public_key),
        None
    );
    assert_eq!(net.hosts[0].node.stats().objects_not_for_us, 1);
}

#[test]
fn a_refused_object_is_reported_once_and_not_asked_for_again() {
    let (alice, bob) = (operator(1), operator(2));
    let (a1, b1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
    );
    // Each side holds its own operator's card for one shared key.
    let (a_claim, b_claim) = (signed(&alice, "shared", Role::Full), {
        let mut c = card(&alice, "shared", Role::Full);
        c.operator = bob.operator_id();
        c.sign(&bob).unwrap()
    });
    let mut net = net_of([host(&a1, &[&a_claim]), host(&b1, &[&b_claim])]);
    connect(&mut net, &[(0, 1)]);
    round_at(&mut net, NOW);
    for h in &mut net.hosts {
        assert_eq!(h.node.stats().key_conflicts, 1);
        let refusal = h.node.poll_refusal().unwrap();
        assert!(matches!(refusal.error, InsertError::KeyConflict(_)));
        assert!(h.node.poll_refusal().is_none());
    }
    // The views differ for good: once a reconciliation settles that, the
    // pair is not reconciled again (the next rounds are summaries only),
    // and the refused card is neither asked for nor checked again.
    let mut last = Vec::new();
    for round in 1..5 {
        last = kinds(&round_at(&mut net, NOW + round));
        assert!(!last.contains(&2), "no want: {last:?}");
    }
    assert_eq!(last, vec![4, 4], "summaries only");
    for h in &mut net.hosts {
        assert_eq!(h.node.stats().key_conflicts, 1);
        assert!(h.node.poll_refusal().is_none());
    }
    // A while later they reconcile again, in case a message was lost; the
    // card offered again is dropped unread.
    let later = NOW + 4 + RESETTLE_AFTER;
    let log = kinds(&round_at(&mut net, later));
    assert!(log.contains(&6), "{log:?}");
    for h in &net.hosts {
        assert_eq!(h.node.stats().key_conflicts, 1);
    }
}

#[test]
fn a_card_for_another_operators_key_is_refused_whichever_arrives_first() {
    let (alice, bob, mallory) = (operator(1), operator(2), operator(3));
    let (a1, b1, m1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
        signed(&mallory, "sentry-1", Role::Sentry),
    );
    let real = signed(&alice, "sentry-2", Role::Sentry);
    let key = real.card().wg_public_key;
    // Mallory's member sends a card naming the key of Alice's sentry-2.
    let squat = claim(&mallory, "sentry-2", &key);
    let objects = |c: &SignedCard| {
        GossipMessage::Objects {
            objects: vec![c.clone().into()],
        }
        .encode()
        .unwrap()
    };
    for squat_first in [true, false] {
        let mut net = net_of([host(&b1, &[]), host(&a1, &[]), host(&m1, &[])]);
        connect(&mut net, &[(0, 1), (0, 2)]);
        run(&mut net);
        let (from_alice, from_mallory) = (net.hosts[1].key, net.hosts[2].key);
        let bob = &mut net.hosts[0].node;
        let deliver_squat = |bob: &mut Gossip| {
            let result = bob.handle_message(from_mallory, &objects(&squat), NOW);
            let Err(GossipError::Malformed {
                source: MessageError::BadObject { source, .. },
                ..
            }) = result
            else {
                panic!("{result:?}")
            };
            assert!(
                matches!(
                    *source,
                    ParseObjectError::Card(ParseCardError::BadProof { .. })
                ),
                "{source}"
            );
        };
        if squat_first {
            deliver_squat(bob);
            assert_eq!(bob.store().card(&key), None);
        }
        bob.handle_message(from_alice, &objects(&real), NOW)
            .unwrap();
        if !squat_first {
            deliver_squat(bob);
        }
        assert_eq!(
            bob.store().card(&key),
            Some(&real),
            "squat first: {squat_first}"
        );
        assert_eq!(bob.stats().messages_malformed, 1);
        assert_eq!(bob.stats().key_conflicts, 0);
    }
}

#[test]
fn long_ranges_are_sent_in_parts() {
    let alice = operator(1);
    let a1 = signed(&alice, "sentry-1", Role::Sentry);
    let mut net = net_of([
        host(&a1, &[]),
        host(&signed(&alice, "sentry-2", Role::Sentry), &[]),
    ]);
    let admitted = BTreeSet::from([alice.operator_id()]);
    let ends: Vec<(PublicKey, OperatorId)> = net.hosts.iter().map(end).collect();
    net.hosts[0].node.set_peers([], admitted.clone(), NOW);
    for n in 0..MAX_IDS + 10 {
        let card = signed(&alice, &format!("full-node-{n}"), Role::Sentry);
        net.hosts[0].node.insert(card.into(), NOW).unwrap();
    }
    net.hosts[0]
        .node
        .set_peers([ends[1]], admitted.clone(), NOW);
    net.hosts[1].node.set_peers([ends[0]], admitted, NOW);
    // Hosts of one operator summarise to each other at once; host 0's ids
    // come in two ranges messages, and host 1 asks for every id it lacks
    // (the objects themselves are not delivered: verifying a thousand
    // signatures is slow in a debug build).
    let keys = [net.hosts[0].key, net.hosts[1].key];
    let mut ranges = 0;
    let mut wanted = BTreeSet::new();
    loop {
        let mut quiet = true;
        for (i, from) in keys.into_iter().enumerate() {
            while let Some((_, bytes)) = net.hosts[i].node.poll_transmit() {
                quiet = false;
                assert!(bytes.len() <= MAX_MESSAGE_LEN);
                match GossipMessage::decode(&bytes).unwrap() {
                    GossipMessage::Objects { .. } => continue,
                    GossipMessage::Want { ids } => wanted.extend(ids),
                    GossipMessage::Ranges { .. } if i == 0 => ranges += 1,
                    _ => {}
                }
                net.hosts[1 - i]
                    .node
                    .handle_message(from, &bytes, NOW)
                    .unwrap();
            }
        }
        if quiet {
            break;
        }
    }
    assert_eq!(ranges, 2);
    let missing: BTreeSet<ObjectId> = ids(&net.hosts[0])
        .difference(&ids(&net.hosts[1]))
        .copied()
        .collect();
    assert_eq!(missing.len(), MAX_IDS + 11, "the cards and host 0's own");
    assert_eq!(wanted, missing);
}

#[test]
fn timers_survive_a_clock_step_back() {
    let alice = operator(1);
    let (a1, a2) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&alice, "sentry-2", Role::Sentry),
    );
    let mut net = net_of([host(&a1, &[]), host(&a2, &[])]);
    connect(&mut net, &[(0, 1)]);
    run(&mut net);
    let gossip = &mut net.hosts[0].node;
    gossip.handle_timeout(NOW + 3600);
    assert_eq!(gossip.poll_timeout(), Some(NOW + 3600 + ROUND));
    // The clock goes back an hour: the next round is due soon after it.
    gossip.handle_timeout(NOW + 10);
    assert_eq!(gossip.poll_timeout(), Some(NOW + 10 + ROUND));
}

#[test]
fn expired_cards_are_pruned_on_time() {
    let alice = operator(1);
    let a1 = signed(&alice, "sentry-1", Role::Sentry);
    let mut short = card(&alice, "sentry-2", Role::Sentry);
    short.not_after = NOW + 100;
    let short = short.sign(&alice).unwrap();
    let mut h = host(&a1, &[&short]);
    assert_eq!(h.node.poll_timeout(), Some(NOW + 100));
    h.node.handle_timeout(NOW + 100);
    assert_eq!(h.node.store().len(), 1);
    assert_eq!(h.node.poll_timeout(), Some(a1.card().not_after));
}

#[test]
fn a_revocation_goes_only_where_the_revoked_card_may_go() {
    let (alice, bob) = (operator(1), operator(2));
    let (a1, a2, a3, b1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&alice, "sentry-2", Role::Sentry),
        signed(&alice, "sentry-3", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
    );
    let producer = signed(&alice, "producer-1", Role::Producer);
    let mut net = net_of([
        host(&a1, &[&producer, &a2, &a3]),
        host(&a2, &[&producer]),
        host(&b1, &[&a2, &a3]),
    ]);
    connect(&mut net, &[(0, 1), (0, 2)]);
    run(&mut net);
    let (of_producer, of_sentry) = (revoke(&alice, &producer), revoke(&alice, &a3));
    let ids = [
        Object::from(of_producer.clone()).id(),
        Object::from(of_sentry.clone()).id(),
    ];
    net.hosts[0].node.insert(of_producer.into(), NOW).unwrap();
    net.hosts[0].node.insert(of_sentry.into(), NOW).unwrap();
    let log = run(&mut net);
    // Alice's other sentry gets both; Bob's sentry only the public one's.
    assert!(net.hosts[1].node.store().contains(&ids[0]));
    assert!(net.hosts[1].node.store().contains(&ids[1]));
    assert!(!net.hosts[2].node.store().contains(&ids[0]));
    assert!(net.hosts[2].node.store().contains(&ids[1]));
    let key = producer.card().wg_public_key;
    assert!(
        log.iter()
            .filter(|(_, to, _)| *to == 2)
            .all(|(_, _, b)| !b.windows(32).any(|w| w == key.as_bytes()))
    );
    // Nor is it listed in a digest, or sent when asked for.
    net.hosts[0].node.handle_timeout(NOW + ROUND);
    let want = GossipMessage::Want { ids: vec![ids[0]] }.encode().unwrap();
    net.hosts[0]
        .node
        .handle_message(b1.card().wg_public_key, &want, NOW + ROUND)
        .unwrap();
    while let Some((to, bytes)) = net.hosts[0].node.poll_transmit() {
        if to == b1.card().wg_public_key {
            assert!(
                !bytes
                    .windows(32)
                    .any(|w| w == ids[0].as_bytes() || w == key.as_bytes())
            );
        }
    }
}

#[test]
fn a_revocation_never_goes_to_the_host_it_revokes() {
    let alice = operator(1);
    let (a1, a2, a3) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&alice, "sentry-2", Role::Sentry),
        signed(&alice, "sentry-3", Role::Sentry),
    );
    let mut net = net_of([
        host(&a1, &[&a2, &a3]),
        host(&a2, &[&a1, &a3]),
        host(&a3, &[&a1, &a2]),
    ]);
    connect(&mut net, &[(0, 1), (0, 2), (1, 2)]);
    run(&mut net);
    // Host 2 is still everyone's gossip peer here (no peer manager drops
    // it), yet nothing names its revocation to it: not pushed, not in a
    // digest, not sent when it asks.
    let revocation = revoke(&alice, &a3);
    let id = Object::from(revocation.clone()).id();
    net.hosts[0].node.insert(revocation.into(), NOW).unwrap();
    run(&mut net);
    assert!(net.hosts[1].node.store().contains(&id));
    let mut log = Vec::new();
    for round in 1..=10 {
        let later = NOW + round * ROUND;
        for h in &mut net.hosts[..2] {
            h.node.handle_timeout(later);
            let want = GossipMessage::Want { ids: vec![id] }.encode().unwrap();
            h.node
                .handle_message(a3.card().wg_public_key, &want, later)
                .unwrap();
        }
        log.extend(run_at(&mut net, later));
    }
    assert!(log.iter().any(|(_, to, _)| *to == 2), "it still gossips");
    assert!(!net.hosts[2].node.store().contains(&id));
    assert!(
        log.iter()
            .filter(|(_, to, _)| *to == 2)
            .all(|(_, _, b)| !b.windows(32).any(|w| w == id.as_bytes()))
    );
}
