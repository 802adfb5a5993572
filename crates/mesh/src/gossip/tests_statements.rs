//! Tests of vouches reconciled per voucher: hosts that trust different
//! operators keep different vouches and still summarise their views alike;
//! a voucher's statements reach the hosts that keep them; the answers are
//! paid by the asker.

use super::tests::{end, host, kinds, net_of, round_at, run, signed};
use super::*;
use crate::identity::OperatorSecret;
use crate::role::Role;
use crate::sim::{Host, Net};
use crate::testing::{NOW, operator};
use crate::vouch::{SignedVouch, Vouch};

fn vouch(by: &OperatorSecret, subject: u8) -> SignedVouch {
    Vouch {
        voucher: by.operator_id(),
        subject: operator(subject).operator_id(),
        overlay: format!("198.19.{subject}.0/24").parse().unwrap(),
        issued_at: NOW,
    }
    .sign(by)
    .unwrap()
}

/// Sets each host's directly trusted operators and its peers (every other
/// host), all four operators admitted everywhere.
fn wire(net: &mut Net<Gossip>, direct: &[&[u8]]) {
    let ends: Vec<(PublicKey, OperatorId)> = net.hosts.iter().map(end).collect();
    let admitted: BTreeSet<OperatorId> = ends.iter().map(|(_, op)| *op).collect();
    for (i, host) in net.hosts.iter_mut().enumerate() {
        let trusted = direct[i].iter().map(|&n| operator(n).operator_id());
        host.node.set_direct(&trusted.collect());
        let peers = ends
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, end)| *end);
        host.node.set_peers(peers, admitted.clone(), NOW);
    }
}

fn vouchers_of(host: &Gossip) -> BTreeSet<OperatorId> {
    host.store()
        .vouches()
        .map(|vouch| vouch.vouch().voucher)
        .collect()
}

#[test]
fn hosts_trusting_different_operators_keep_different_vouches_and_summarise_alike() {
    let [alice, bob, carol, dave] = [1, 2, 3, 4].map(operator);
    let cards = [&alice, &bob, &carol, &dave].map(|op| signed(op, "sentry-1", Role::Sentry));
    let mut net = net_of(cards.iter().map(|c| host(c, &[])));
    // Carol and Dave each vouch for two operators outside the mesh.
    net.hosts[2]
        .node
        .insert(vouch(&carol, 10).into(), NOW)
        .unwrap();
    net.hosts[2]
        .node
        .insert(vouch(&carol, 11).into(), NOW)
        .unwrap();
    net.hosts[3]
        .node
        .insert(vouch(&dave, 12).into(), NOW)
        .unwrap();
    net.hosts[3]
        .node
        .insert(vouch(&dave, 13).into(), NOW)
        .unwrap();
    // Alice trusts Carol directly, Bob trusts Dave: each keeps only its
    // voucher's vouches. Carol and Dave trust the others.
    wire(&mut net, &[&[3], &[4], &[1, 2, 4], &[1, 2, 3]]);
    for round in 0..=LAZY_ROUNDS + 4 {
        round_at(&mut net, NOW + round);
    }
    let [a, b] = [0, 1].map(|i| &net.hosts[i].node);
    assert_eq!(vouchers_of(a), BTreeSet::from([carol.operator_id()]));
    assert_eq!(vouchers_of(b), BTreeSet::from([dave.operator_id()]));
    assert_eq!(a.store().vouches().count(), 2);
    assert_eq!(b.store().vouches().count(), 2);
    // Their views for each other summarise alike: vouches are no part of
    // them.
    let mut roots = [0, 1].map(|i| {
        let node = &mut net.hosts[i].node;
        node.refresh_views();
        node.views.root(View::Public)
    });
    assert_eq!(roots[0], roots[1]);
    // Steady: summaries, and now and then one of a voucher's statements;
    // no buckets, no ranges, nothing refused and fetched again.
    let refused: Vec<u64> = net
        .nodes()
        .map(|g| g.stats().objects_refused + g.stats().objects_refused_lately)
        .collect();
    let mut sent = Vec::new();
    for round in LAZY_ROUNDS + 5..2 * RESETTLE_AFTER {
        sent.extend(kinds(&round_at(&mut net, NOW + round)));
    }
    assert!(sent.iter().all(|&kind| kind == 4 || kind == 7), "{sent:?}");
    assert!(sent.contains(&7), "each voucher is asked about again");
    let refused_after: Vec<u64> = net
        .nodes()
        .map(|g| g.stats().objects_refused + g.stats().objects_refused_lately)
        .collect();
    assert_eq!(refused, refused_after);
    roots = [0, 1].map(|i| {
        let node = &mut net.hosts[i].node;
        node.refresh_views();
        node.views.root(View::Public)
    });
    assert_eq!(roots[0], roots[1]);
}

#[test]
fn a_voucher_statements_no_push_reached_are_fetched_by_their_root() {
    let [alice, carol] = [1, 3].map(operator);
    let (a1, c1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&carol, "sentry-1", Role::Sentry),
    );
    let mut net = net_of([host(&a1, &[]), host(&c1, &[])]);
    // Carol vouched long before Alice's host came: nothing is pushed or
    // announced any more.
    for subject in 10..20 {
        net.hosts[1]
            .node
            .insert(vouch(&carol, subject).into(), NOW)
            .unwrap();
    }
    wire(&mut net, &[&[3], &[1]]);
    let later = NOW + LAZY_ROUNDS + 1;
    for round in 0..4 {
        round_at(&mut net, later + round);
    }
    assert_eq!(net.hosts[0].node.store().vouches().count(), 10);
    assert_eq!(net.hosts[1].node.stats().statements_listed, 1);
}

/// Carol's host holding `n` vouches of hers, with Alice's host as its peer.
fn carol_holding(n: usize) -> (Gossip, PublicKey) {
    let [alice, carol] = [1, 3].map(operator);
    let (a1, c1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&carol, "sentry-1", Role::Sentry),
    );
    let mut store = Store::new();
    store.insert_card(c1, NOW).unwrap();
    let mut gossip = Gossip::new(store, carol.operator_id());
    let alice_key = a1.card().wg_public_key;
    gossip.set_direct(&BTreeSet::from([alice.operator_id()]));
    gossip.set_peers(
        [(alice_key, alice.operator_id())],
        BTreeSet::from([alice.operator_id(), carol.operator_id()]),
        NOW,
    );
    let mut made = 0;
    'all: for high in 0..=u8::MAX {
        for low in 0..=u8::MAX {
            if made == n {
                break 'all;
            }
            let mut seed = [0x55; 32];
            (seed[0], seed[1]) = (high, low);
            let subject = OperatorSecret::from_seed(seed).operator_id();
            let vouch = Vouch {
                voucher: carol.operator_id(),
                subject,
                overlay: "198.19.200.0/24".parse().unwrap(),
                issued_at: NOW,
            }
            .sign(&carol)
            .unwrap();
            gossip.insert(vouch.into(), NOW).unwrap();
            made += 1;
        }
    }
    while gossip.poll_transmit().is_some() {}
    (gossip, alice_key)
}

fn statements_of_carol(root: ViewRoot) -> Vec<u8> {
    GossipMessage::Statements {
        voucher: *operator(3).operator_id().as_bytes(),
        root,
    }
    .encode()
    .unwrap()
}

const EMPTY: ViewRoot = ViewRoot {
    count: 0,
    hash: [0; ROOT_HASH_LEN],
};

#[test]
fn a_long_listing_is_sent_in_digests_of_at_most_max_ids() {
    let (mut carol, alice) = carol_holding(MAX_IDS + 10);
    carol
        .handle_message(alice, &statements_of_carol(EMPTY), NOW)
        .unwrap();
    let mut digests = Vec::new();
    while let Some((to, bytes)) = carol.poll_transmit() {
        assert_eq!(to, alice);
        match GossipMessage::decode(&bytes).unwrap() {
            GossipMessage::Digest { ids } => digests.push(ids),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        digests.iter().map(Vec::len).collect::<Vec<_>>(),
        [MAX_IDS, 10]
    );
    let listed: BTreeSet<ObjectId> = digests.into_iter().flatten().collect();
    let held: BTreeSet<ObjectId> = carol
        .store()
        .objects()
        .filter(|(_, object)| object.kind() == ObjectKind::Vouch)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(listed, held);
    // The same root again: nothing, it matches.
    let root = carol.statements.root(operator(3).operator_id());
    carol
        .handle_message(alice, &statements_of_carol(root), NOW)
        .unwrap();
    assert!(carol.poll_transmit().is_none());
    assert_eq!(carol.stats().statements_matched, 1);
}

/// A summary of statements is 54 bytes; its answer lists every id of the
/// voucher's statements held. A rival sending such summaries as fast as
/// its budget lets must pay for each answer, or get none.
#[test]
fn a_listing_its_asker_cannot_pay_for_is_not_sent() {
    let (mut carol, alice) = carol_holding(300);
    let ask = statements_of_carol(EMPTY);
    let answer = 300 * OBJECT_ID_LEN;
    let mut listings = 0;
    let mut sent = 0;
    for _ in 0..2 * RECEIVE_BURST as usize / answer {
        if carol.handle_message(alice, &ask, NOW).is_err() {
            break;
        }
        while let Some((_, bytes)) = carol.poll_transmit() {
            sent += bytes.len();
            listings += 1;
        }
    }
    assert!(carol.stats().messages_over_budget > 0);
    assert!(listings > 0);
    assert!(
        sent as u64 <= RECEIVE_BURST,
        "{sent} bytes listed for a budget of {RECEIVE_BURST}"
    );
    // A voucher this host does not admit, or one it holds nothing of: no
    // answer at all.
    let (mut carol, alice) = carol_holding(3);
    for voucher in [operator(9), operator(1)] {
        let ask = GossipMessage::Statements {
            voucher: *voucher.operator_id().as_bytes(),
            root: ViewRoot {
                count: 7,
                hash: [7; ROOT_HASH_LEN],
            },
        }
        .encode()
        .unwrap();
        carol.handle_message(alice, &ask, NOW).unwrap();
        assert!(carol.poll_transmit().is_none());
    }
}

/// A hidden host peers with its own operator's public hosts only, so it
/// asks one of them about every voucher it trusts directly, several in
/// one round at boot. Each ask must be answered, not only the first: the
/// others would wait [`RESETTLE_AFTER`] seconds for their next turn.
#[test]
fn asks_about_several_vouchers_of_one_host_in_one_round_are_each_answered() {
    let [alice, carol, dave, erin] = [1, 3, 4, 5].map(operator);
    let (hidden, sentry) = (
        signed(&alice, "producer-1", Role::Producer),
        signed(&alice, "sentry-1", Role::Sentry),
    );
    let vouchers = [&carol, &dave, &erin];
    let direct: BTreeSet<OperatorId> = vouchers.iter().map(|op| op.operator_id()).collect();
    let mut admitted = direct.clone();
    admitted.insert(alice.operator_id());
    // The sentry holds two statements of each voucher from before the
    // hidden host came: nothing is pushed or announced any more.
    let mut store = Store::new();
    store.insert_card(sentry.clone(), NOW).unwrap();
    store.insert_card(hidden.clone(), NOW).unwrap();
    for (n, voucher) in (10..).step_by(2).zip(vouchers) {
        for subject in [n, n + 1] {
            store.insert(vouch(voucher, subject).into(), NOW).unwrap();
        }
    }
    let mut net = net_of([
        host(&hidden, &[&sentry]),
        Host {
            key: sentry.card().wg_public_key,
            node: Gossip::new(store, alice.operator_id()),
        },
    ]);
    let ends: Vec<(PublicKey, OperatorId)> = net.hosts.iter().map(end).collect();
    for (i, host) in net.hosts.iter_mut().enumerate() {
        host.node.set_direct(&direct);
        host.node.set_peers([ends[1 - i]], admitted.clone(), NOW);
    }
    assert_eq!(net.hosts[1].node.store().vouches().count(), 6);
    let later = NOW + LAZY_ROUNDS + 1;
    // The first round, and the retry of the asks REQUEST_TIMEOUT later.
    for round in 0..=REQUEST_TIMEOUT {
        round_at(&mut net, later + round);
    }
    assert_eq!(vouchers_of(&net.hosts[0].node), direct);
    assert_eq!(net.hosts[0].node.store().vouches().count(), 6);
}

/// A statement of an operator admitted but not trusted directly is
/// refused, and not asked for again for a while. Once the host trusts
/// that operator directly, it keeps its statements: those refused before
/// are asked for at once, as when it admits more operators.
#[test]
fn statements_refused_before_their_voucher_was_trusted_directly_are_fetched_once_it_is() {
    let [alice, carol] = [1, 3].map(operator);
    let (a1, c1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&carol, "sentry-1", Role::Sentry),
    );
    let mut net = net_of([host(&a1, &[]), host(&c1, &[])]);
    wire(&mut net, &[&[], &[1]]);
    run(&mut net);
    net.hosts[1]
        .node
        .insert(vouch(&carol, 10).into(), NOW)
        .unwrap();
    let later = NOW + 1;
    for round in 0..=LAZY_ROUNDS {
        round_at(&mut net, later + round);
    }
    // Pushed and announced, and refused: Alice's host keeps none of Carol's.
    assert_eq!(net.hosts[0].node.store().vouches().count(), 0);
    assert!(net.hosts[0].node.stats().objects_refused > 0);
    net.hosts[0]
        .node
        .set_direct(&BTreeSet::from([carol.operator_id()]));
    let later = later + LAZY_ROUNDS + 1;
    for round in 0..=REQUEST_TIMEOUT {
        round_at(&mut net, later + round);
    }
    assert_eq!(
        vouchers_of(&net.hosts[0].node),
        BTreeSet::from([carol.operator_id()])
    );
}

/// A rival announces the id of a voucher's old statement every round and
/// never sends it when asked. The listing of the voucher's host, which
/// holds it, must still bring it: asked of the rival a moment before, it
/// was passed over, every time.
#[test]
fn a_rival_announcing_a_statement_it_never_sends_does_not_keep_it_away() {
    let [alice, rob, carol] = [1, 2, 3].map(operator);
    let cards = [&alice, &rob, &carol].map(|op| signed(op, "sentry-1", Role::Sentry));
    let mut net = net_of(cards.iter().map(|c| host(c, &[])));
    let old = vouch(&carol, 10);
    let old_id = Object::from(old.clone()).id();
    net.hosts[2].node.insert(old.into(), NOW).unwrap();
    // Alice's host trusts Carol directly; Rob's keeps none of hers.
    wire(&mut net, &[&[3], &[], &[1]]);
    let rob_key = net.hosts[1].key;
    let digest = GossipMessage::Digest { ids: vec![old_id] }
        .encode()
        .unwrap();
    let later = NOW + LAZY_ROUNDS + 1;
    for round in 0..=REQUEST_TIMEOUT {
        net.hosts[0]
            .node
            .handle_message(rob_key, &digest, later + round)
            .unwrap();
        round_at(&mut net, later + round);
    }
    assert!(net.hosts[0].node.store().contains(&old_id));
}

/// A host's first rounds may come before it has any peer that keeps a
/// voucher's statements (at first boot, before it learned their cards).
/// An ask that had no one to go to is no ask: once such a peer comes,
/// the voucher is asked about at once, not a turn of RESETTLE_AFTER later.
#[test]
fn a_voucher_is_asked_about_once_a_peer_to_ask_comes_after_the_first_rounds() {
    let [alice, carol] = [1, 3].map(operator);
    let (a1, c1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&carol, "sentry-1", Role::Sentry),
    );
    let mut net = net_of([host(&a1, &[]), host(&c1, &[])]);
    for subject in 10..13 {
        net.hosts[1]
            .node
            .insert(vouch(&carol, subject).into(), NOW)
            .unwrap();
    }
    let admitted = BTreeSet::from([alice.operator_id(), carol.operator_id()]);
    net.hosts[0]
        .node
        .set_direct(&BTreeSet::from([carol.operator_id()]));
    net.hosts[0].node.set_peers([], admitted.clone(), NOW);
    // Rounds with no peer: nothing to ask of anyone.
    for round in 0..=REQUEST_TIMEOUT + 1 {
        round_at(&mut net, NOW + round);
    }
    let later = NOW + REQUEST_TIMEOUT + 2;
    let ends: Vec<(PublicKey, OperatorId)> = net.hosts.iter().map(end).collect();
    net.hosts[0]
        .node
        .set_peers([ends[1]], admitted.clone(), later);
    net.hosts[1]
        .node
        .set_direct(&BTreeSet::from([alice.operator_id()]));
    net.hosts[1].node.set_peers([ends[0]], admitted, later);
    for round in 0..=REQUEST_TIMEOUT {
        round_at(&mut net, later + round);
    }
    assert_eq!(net.hosts[0].node.store().vouches().count(), 3);
}
