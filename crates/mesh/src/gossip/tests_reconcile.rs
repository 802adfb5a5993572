//! Tests of what keeps gossip's cost bounded: pushes to a few peers, views
//! that summarise alike whatever hidden cards a host holds, and answers to
//! a ranges message paid from its sender's budget.

use super::tests::{connect, host, net_of, round_at, signed};
use super::*;
use crate::role::Role;
use crate::sim::Net;
use crate::testing::{NOW, operator};

#[test]
fn a_new_object_is_pushed_to_own_hosts_and_a_few_others_not_to_every_peer() {
    let alice = operator(1);
    let a1 = signed(&alice, "sentry-1", Role::Sentry);
    let own = [
        signed(&alice, "sentry-2", Role::Sentry),
        signed(&alice, "producer", Role::Producer),
    ];
    let others: Vec<_> = (2..=21u8)
        .map(|op| signed(&operator(op), "sentry-1", Role::Sentry))
        .collect();
    let mut hosts = vec![host(&a1, &[])];
    hosts.extend(own.iter().map(|c| host(c, &[])));
    hosts.extend(others.iter().map(|c| host(c, &[])));
    let mut net = net_of(hosts);
    let pairs: Vec<(usize, usize)> = (1..net.hosts.len()).map(|i| (0, i)).collect();
    connect(&mut net, &pairs);
    // Let the first exchanges settle, then drain what is left.
    for round in 0..=LAZY_ROUNDS + 1 {
        round_at(&mut net, NOW + round);
    }
    while net.hosts[0].node.poll_transmit().is_some() {}
    let later = NOW + LAZY_ROUNDS + 2;
    let card = signed(&alice, "sentry-3", Role::Sentry);
    net.hosts[0].node.insert(card.into(), later).unwrap();
    let mut pushed = BTreeSet::new();
    while let Some((to, bytes)) = net.hosts[0].node.poll_transmit() {
        assert_eq!(bytes[1], 3, "objects only");
        assert!(pushed.insert(to), "one push each");
    }
    for c in &own {
        assert!(pushed.contains(&c.card().wg_public_key));
    }
    assert_eq!(pushed.len(), own.len() + EAGER_FANOUT);
    // A hidden card goes to its own operator's hosts only.
    let hidden = signed(&alice, "bios", Role::Bios);
    net.hosts[0].node.insert(hidden.into(), later).unwrap();
    let mut to: BTreeSet<PublicKey> = BTreeSet::new();
    while let Some((key, _)) = net.hosts[0].node.poll_transmit() {
        to.insert(key);
    }
    let own_keys: BTreeSet<PublicKey> = own.iter().map(|c| c.card().wg_public_key).collect();
    assert_eq!(to, own_keys);
}

#[test]
fn a_hidden_card_leaves_the_public_view_as_it_was() {
    let (alice, bob) = (operator(1), operator(2));
    let (a1, a2, b1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&alice, "sentry-2", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
    );
    let producer = signed(&alice, "producer", Role::Producer);
    // Two hosts of alice with the same public objects, one knowing her
    // producer: to bob's host they summarise alike.
    let mut net = net_of([
        host(&a1, &[&a2, &b1, &producer]),
        host(&a2, &[&a1, &b1]),
        host(&b1, &[&a1, &a2]),
    ]);
    connect(&mut net, &[(0, 2), (1, 2)]);
    let bob_key = b1.card().wg_public_key;
    let summary_to_bob = |net: &mut Net<Gossip>, i: usize| {
        net.hosts[i]
            .node
            .neighbours
            .update(&bob_key, |peer| peer.summary_due = true);
        let mut found = None;
        while let Some((to, bytes)) = net.hosts[i].node.poll_transmit() {
            if to == bob_key && bytes[1] == 4 {
                found = Some(bytes);
            }
        }
        found.expect("a summary to bob")
    };
    assert_eq!(summary_to_bob(&mut net, 0), summary_to_bob(&mut net, 1));
    // And the whole exchange ends with bob's host holding what it may, and
    // no message to it naming the producer (`Net::assert_no_hidden_leaks`
    // checks the same across whole meshes).
    for round in 0..3 {
        round_at(&mut net, NOW + round);
    }
    let producer_id = Object::from(producer).id();
    assert!(!net.hosts[2].node.store().contains(&producer_id));
    for delivery in net.log().iter().filter(|d| d.to == 2) {
        assert!(!crate::sim::contains(
            &delivery.bytes,
            producer_id.as_bytes()
        ));
    }
}

#[test]
fn what_a_ranges_message_makes_this_host_send_is_paid_from_its_senders_budget() {
    let (alice, bob) = (operator(1), operator(2));
    let (a1, b1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
    );
    let mut net = net_of([host(&a1, &[]), host(&b1, &[])]);
    connect(&mut net, &[(0, 1)]);
    round_at(&mut net, NOW);
    let from_bob = b1.card().wg_public_key;
    // Bob claims, again and again, to hold nothing at all: each time the
    // answer (alice's whole public view, here two cards) is charged to his
    // budget as if he had asked for each id, so it runs out.
    let nothing = GossipMessage::Ranges {
        root: ViewRoot {
            count: 0,
            hash: [0; ROOT_HASH_LEN],
        },
        ranges: vec![IdRange {
            first: ObjectId::from_bytes([0; 32]),
            last: ObjectId::from_bytes([0xff; 32]),
            ids: vec![],
        }],
    }
    .encode()
    .unwrap();
    let gossip = &mut net.hosts[0].node;
    let per_message = nothing.len() + 2 * OBJECT_ID_LEN;
    let answered = usize::try_from(RECEIVE_BURST).unwrap() / per_message;
    let mut sent = 0;
    for _ in 0..answered + 10 {
        let _ = gossip.handle_message(from_bob, &nothing, NOW);
        while let Some((to, bytes)) = gossip.poll_transmit() {
            assert_eq!(to, from_bob);
            if bytes[1] == 3 {
                sent += 1;
            }
        }
    }
    assert!(sent <= answered + 1, "{sent} answers to {answered} paid");
    assert!(gossip.stats().messages_over_budget >= 10);
}
