//! Whole meshes in one process (the crate's `sim` harness): operators'
//! producers and sentries converging, admitting by vouches, introducing new
//! hosts and revoking them, and never showing a producer to another
//! operator.

use std::collections::BTreeSet;

use sentrymesh_mesh::sim::*;
use sentrymesh_mesh::testing::{NOW, operator, operator_range};
use sentrymesh_mesh::{
    GossipError, GossipMessage, InsertError, Mesh, Object, PeerSpec, Revocation, RevocationTarget,
    Role, SignedCard, Store, Vouch,
};
use sentrymesh_types::PublicKey;

#[test]
fn three_operators_converge_with_producers_behind_their_own_sentries() {
    let net = converged_three();
    for m in net.nodes() {
        let op = m.op;
        let expected = if m.mesh.local_card().card().role == Role::Producer {
            names(&[&format!("{op}/sentry-1"), &format!("{op}/sentry-2")])
        } else {
            let own = m.mesh.local_card().card().name.clone();
            let mut all: BTreeSet<String> = THREE
                .iter()
                .flat_map(|o| [format!("{o}/sentry-1"), format!("{o}/sentry-2")])
                .collect();
            all.insert(format!("{op}/producer"));
            all.remove(&format!("{op}/{own}"));
            all
        };
        assert_eq!(m.peer_names(), expected, "{}", m.name());
        assert!(m.mesh.local_error().is_none());
    }
    net.assert_events_match();
    net.assert_no_hidden_leaks();
    // Each producer keeps its sentries' paths open; sentries reach the
    // producer by the address its handshakes come from.
    let producer = net.nodes().find(|m| m.name() == "1/producer").unwrap();
    assert!(
        producer
            .mesh
            .peers()
            .all(|p| p.persistent_keepalive == Some(25) && p.endpoint.is_some())
    );
    let sentry = net.nodes().find(|m| m.name() == "1/sentry-1").unwrap();
    let to_producer = sentry.mesh.peer(&producer.key()).unwrap();
    assert_eq!(
        (
            to_producer.endpoint.as_ref(),
            to_producer.persistent_keepalive
        ),
        (None, None)
    );
    assert_eq!(to_producer.allowed_ips, ["198.19.1.1/32".parse().unwrap()]);
}

#[test]
fn no_host_of_another_operator_learns_anything_of_a_producer() {
    let net = converged_three();
    for m in net.nodes() {
        for other in net.nodes().filter(|o| o.op != m.op) {
            let other_card = other.mesh.local_card();
            if other_card.card().role.is_hidden() {
                assert!(
                    m.mesh
                        .store()
                        .card(&other_card.card().wg_public_key)
                        .is_none()
                );
                assert!(!m.mesh.is_admitted_peer(&other_card.card().wg_public_key));
            }
        }
    }
    let stats = net
        .nodes()
        .map(|m| m.mesh.stats())
        .fold(0, |n, s| n + s.objects_not_for_us);
    assert_eq!(stats, 0, "no host even tried");
}

#[test]
fn a_key_in_no_admitted_card_gets_no_session() {
    let mut net = converged_three();
    let stranger = PublicKey::from_bytes([0x77; 32]);
    let digest = GossipMessage::Digest { ids: vec![] }.encode().unwrap();
    let now = net.now;
    for m in net.nodes_mut() {
        assert!(!m.mesh.is_admitted_peer(&stranger));
        assert_eq!(
            m.mesh.handle_message(stranger, &digest, now),
            Err(GossipError::UnknownPeer { from: stranger })
        );
    }
    // Operator 4 is known to no one: its sentry's messages are dropped.
    let before = net.dropped;
    let s4 = host_card(4, "sentry-1", Role::Sentry, 2);
    let mut store = Store::new();
    store.insert_card(hosts_of(1)[1].clone(), NOW).unwrap();
    net.join(4, s4.clone(), policy(4, &[1], 1), store);
    net.deliver();
    assert!(net.dropped > before);
    assert!(
        net.nodes()
            .all(|m| !m.mesh.is_admitted_peer(&s4.card().wg_public_key))
    );
}

#[test]
fn an_operator_is_admitted_on_k_vouches_not_on_k_minus_one() {
    // Operators 1, 2 and 3 trust each other and need two vouches for
    // anyone else; operator 4 trusts all three.
    const FOUR: &[u8] = &[1, 2, 3, 4];
    let mut net = Net::launch(
        FOUR,
        |op| match op {
            4 => policy(4, &[1, 2, 3], 1),
            _ => {
                let others: Vec<u8> = [1, 2, 3].into_iter().filter(|&o| o != op).collect();
                policy(op, &others, 2)
            }
        },
        seed(),
    );
    net.run_for(10);
    let s4 = hosts_of(4)[1].card().wg_public_key;
    assert!(
        net.nodes()
            .filter(|m| m.op != 4)
            .all(|m| !m.mesh.is_admitted_peer(&s4))
    );

    let vouch = |by: u8| {
        Vouch {
            voucher: operator(by).operator_id(),
            subject: operator(4).operator_id(),
            overlay: operator_range(4),
            issued_at: NOW,
        }
        .sign(&operator(by))
        .unwrap()
    };
    // k - 1 = 1 vouch: operator 2's, introduced at its producer.
    net.hand(2, "producer", vouch(2));
    net.deliver();
    assert!(
        net.nodes()
            .filter(|m| m.op != 4)
            .all(|m| !m.mesh.is_admitted_peer(&s4))
    );
    // Operator 4's card, opened from its bundle, is not kept while operator
    // 4 is not admitted: memory follows the trust configuration.
    assert!(net.at(1, "sentry-1").mesh.store().card(&s4).is_none());
    // k = 2: operator 3's too. Operator 1 trusts both and admits operator
    // 4; so do operators 2 and 3, each counting its own vouch with the
    // other's (a host's own operator's vouch counts towards k).
    net.hand(3, "sentry-2", vouch(3));
    net.deliver();
    let four = operator(4).operator_id();
    assert!(
        net.at(1, "sentry-1")
            .mesh
            .admitted_operators()
            .contains(&four)
    );
    // Its sentry's card comes again — from the known directory, which the
    // daemon takes again when it admits more, or from the sentry's own
    // introduction — and is kept now.
    net.hand(1, "sentry-1", hosts_of(4)[1].clone());
    net.deliver();
    for m in net.nodes().filter(|m| m.op != 4) {
        let is_sentry = m.mesh.local_card().card().role == Role::Sentry;
        assert!(m.mesh.admitted_operators().contains(&four), "{}", m.name());
        assert_eq!(m.mesh.is_admitted_peer(&s4), is_sentry, "{}", m.name());
    }
    net.run_for(10);
    assert_eq!(
        net.sessions(4, "sentry-1"),
        names(&[
            "1/sentry-1",
            "1/sentry-2",
            "2/sentry-1",
            "2/sentry-2",
            "3/sentry-1",
            "3/sentry-2",
            "4/producer",
            "4/sentry-2"
        ])
    );
    net.assert_events_match();
    net.assert_no_hidden_leaks();

    // Operator 3 withdraws its vouch: back to k - 1 everywhere, and every
    // sentry drops operator 4's at once.
    let withdrawal = Revocation {
        issuer: operator(3).operator_id(),
        target: RevocationTarget::Vouch(operator(4).operator_id()),
        issued_at: net.now,
    }
    .sign(&operator(3))
    .unwrap();
    net.hand(3, "producer", withdrawal);
    net.deliver();
    assert!(
        net.nodes()
            .filter(|m| m.op != 4)
            .all(|m| !m.mesh.is_admitted_peer(&s4))
    );
    assert_eq!(
        net.sessions(4, "sentry-1"),
        names(&["4/producer", "4/sentry-2"])
    );
    net.assert_events_match();
}

#[test]
fn a_rivals_cards_beyond_its_range_are_relayed_but_route_nothing_anywhere() {
    let mut net = converged_three();
    // Operator 3, admitted everywhere, publishes sentries claiming the
    // world, operator 1's sentry and a slice of operator 2's range.
    let claims = ["0.0.0.0/1", "198.19.1.2/32", "198.19.2.128/25", "::/1"];
    let greedy: Vec<SignedCard> = claims
        .iter()
        .zip(10u8..)
        .map(|(claim, i)| {
            host_card_with(3, &format!("greedy-{i}"), Role::Sentry, i, |c| {
                c.allowed_ips = vec![claim.parse().unwrap()];
            })
        })
        .collect();
    for c in &greedy {
        net.hand(3, "sentry-1", c.clone());
    }
    net.run_for(10);
    for m in net.nodes() {
        let sentry = m.mesh.local_card().card().role == Role::Sentry;
        for c in &greedy {
            let object = Object::from(c.clone());
            // Gossip still carries them (they are validly signed by an
            // admitted operator) to every sentry, but no one peers.
            if sentry {
                assert!(m.mesh.store().contains(&object.id()), "{}", m.name());
            }
            assert!(
                !m.mesh.is_admitted_peer(&c.card().wg_public_key),
                "{}",
                m.name()
            );
        }
        for peer in m.mesh.peers() {
            let range = m.mesh.admitted_ranges()[&peer.operator];
            assert!(
                peer.allowed_ips.iter().all(|ip| range.contains_net(ip)),
                "{} routes {:?} to {}",
                m.name(),
                peer.allowed_ips,
                peer.name
            );
        }
        // Every sentry weighed them and refused each once, and so did
        // operator 3's producer; another producer never peers with another
        // operator's hosts, so never weighs them.
        let weighs = sentry || m.op == 3;
        let expected = if weighs { greedy.len() as u64 } else { 0 };
        assert_eq!(m.mesh.cards_refused(), expected, "{}", m.name());
    }
    net.assert_events_match();
}

#[test]
fn a_new_sentry_introduced_at_one_host_reaches_everyone_and_its_producer() {
    let mut net = converged_three();
    let newcomer = host_card(1, "sentry-3", Role::Sentry, 4);
    let key = newcomer.card().wg_public_key;
    // The new host starts with its own card and one sentry of its operator.
    let mut store = Store::new();
    store.insert_card(hosts_of(1)[1].clone(), NOW).unwrap();
    net.join(1, newcomer.clone(), everyone(THREE)(1), store);
    // Its card is handed to a host of another operator.
    net.hand(3, "sentry-2", newcomer);
    net.deliver();
    for m in net.nodes().filter(|m| m.key() != key) {
        // Its own producer and every sentry; not other operators' producers.
        let peers = m.op == 1 || m.mesh.local_card().card().role == Role::Sentry;
        assert_eq!(m.mesh.is_admitted_peer(&key), peers, "{}", m.name());
        assert_eq!(m.configured.contains_key(&key), peers, "{}", m.name());
    }
    net.run_for(10);
    let expected: BTreeSet<String> = THREE
        .iter()
        .flat_map(|o| [format!("{o}/sentry-1"), format!("{o}/sentry-2")])
        .chain(["1/producer".to_string()])
        .collect();
    assert_eq!(net.at(1, "sentry-3").peer_names(), expected);
    net.assert_events_match();
    net.assert_no_hidden_leaks();
}

#[test]
fn a_revocation_introduced_anywhere_removes_the_host_everywhere_at_once() {
    let mut net = converged_three();
    let doomed = hosts_of(2)[2].clone();
    let key = doomed.card().wg_public_key;
    let revocation = Revocation {
        issuer: operator(2).operator_id(),
        target: RevocationTarget::Host(key),
        issued_at: NOW,
    }
    .sign(&operator(2))
    .unwrap();
    // Handed to another operator's producer; no clock moves after that.
    net.hand(1, "producer", revocation.clone());
    let delivered = net.deliver();
    assert!(delivered > 0);
    assert!(net.everyone_holds(&revocation.into(), &[key]));
    for m in net.nodes().filter(|m| m.key() != key) {
        assert!(!m.mesh.is_admitted_peer(&key), "{}", m.name());
        assert!(!m.configured.contains_key(&key), "{}", m.name());
        assert!(m.mesh.store().card(&key).is_none(), "{}", m.name());
        let had_it = m.op == 2 || m.mesh.local_card().card().role == Role::Sentry;
        assert_eq!(m.removed.contains(&key), had_it, "{}", m.name());
    }
    // A producer revoked by its operator, handed to another operator's
    // sentry, which never knew that producer.
    let producer = hosts_of(1)[0].card().wg_public_key;
    let revocation = Revocation {
        issuer: operator(1).operator_id(),
        target: RevocationTarget::Host(producer),
        issued_at: NOW,
    }
    .sign(&operator(1))
    .unwrap();
    net.hand(3, "sentry-1", revocation.clone());
    net.deliver();
    for m in net.nodes().filter(|m| m.op == 1) {
        assert!(!m.mesh.is_admitted_peer(&producer), "{}", m.name());
    }
    assert!(net.sessions(1, "producer").is_empty());
    // The revocation names the producer's key, so it went to operator 1's
    // hosts only (its sentries dropped the producer before it could hear
    // why): not to another operator's host that was not handed it.
    let id = Object::from(revocation).id();
    for m in net.nodes() {
        let expected = (m.op == 1 && m.key() != producer) || m.name() == "3/sentry-1";
        assert_eq!(m.mesh.store().contains(&id), expected, "{}", m.name());
    }
    net.assert_no_hidden_leaks();
    net.assert_events_match();
}

#[test]
fn a_revoked_hostile_host_learns_last_and_is_never_taken_back() {
    let mut net = converged_three();
    let hostile = hosts_of(2)[2].clone();
    let key = hostile.card().wg_public_key;
    let revocation = Revocation {
        issuer: operator(2).operator_id(),
        target: RevocationTarget::Host(key),
        issued_at: NOW,
    }
    .sign(&operator(2))
    .unwrap();
    let id = Object::from(revocation.clone()).id();
    // Its operator hands the revocation to its other sentry; within the
    // same instant of virtual time every other host has dropped it, and it
    // has not heard a word of it.
    net.hand(2, "sentry-1", revocation);
    net.deliver();
    for m in net.nodes().filter(|m| m.key() != key) {
        assert!(!m.mesh.is_admitted_peer(&key), "{}", m.name());
    }
    let heard = |net: &Net<Member>| {
        let to = net.index_of(&key).unwrap();
        net.hosts[to].node.mesh.store().contains(&id)
            || net
                .log()
                .iter()
                .any(|d| d.to == to && contains(&d.bytes, id.as_bytes()))
    };
    assert!(!heard(&net), "the revoked host learned of its revocation");

    // It goes on as before: its own gossip, and a card for its key
    // re-issued with a higher serial, relayed by another operator's sentry
    // or handed to a member the way an introduction is. No one takes it.
    let reissued = host_card_with(2, "sentry-2", Role::Sentry, 3, |c| c.serial = 2);
    let digest = GossipMessage::Digest { ids: vec![] }.encode().unwrap();
    let relayed = GossipMessage::Objects {
        objects: vec![reissued.clone().into()],
    }
    .encode()
    .unwrap();
    let rival = net.at(3, "sentry-1").key();
    let now = net.now;
    let first = net.at(1, "sentry-1");
    assert_eq!(
        first.mesh.handle_message(key, &digest, now),
        Err(GossipError::UnknownPeer { from: key })
    );
    let refused = first.mesh.stats().objects_refused;
    first.mesh.handle_message(rival, &relayed, now).unwrap();
    assert_eq!(first.mesh.stats().objects_refused, refused + 1);
    assert!(matches!(
        first.mesh.insert(reissued, now),
        Err(InsertError::Revoked { .. })
    ));
    net.run_for(60);
    for m in net.nodes().filter(|m| m.key() != key) {
        assert!(!m.mesh.is_admitted_peer(&key), "{}", m.name());
    }
    assert!(!heard(&net));
    assert!(net.sessions(2, "sentry-2").is_empty());
    net.assert_events_match();
}

#[test]
fn a_restart_from_the_state_file_forgets_nothing() {
    let mut net = converged_three();
    let doomed = hosts_of(2)[2].clone();
    let revocation = Revocation {
        issuer: operator(2).operator_id(),
        target: RevocationTarget::Host(doomed.card().wg_public_key),
        issued_at: NOW,
    }
    .sign(&operator(2))
    .unwrap();
    net.hand(2, "sentry-1", revocation);
    net.deliver();
    let member = net.at(1, "sentry-1");
    let state = member.mesh.store().encode();
    let peers: Vec<PeerSpec> = member.mesh.peers().cloned().collect();
    let own = hosts_of(1)[1].clone();
    let mut restarted = Mesh::new(
        own,
        everyone(THREE)(1),
        Store::decode(&state).unwrap(),
        NOW + 60,
    )
    .unwrap();
    assert_eq!(restarted.peers().cloned().collect::<Vec<_>>(), peers);
    assert!(matches!(
        restarted.insert(doomed, NOW + 60),
        Err(InsertError::Revoked { .. })
    ));
    // A state file altered on disk is refused, not trusted.
    let mut altered = state.clone();
    let at = altered.len() / 2;
    altered[at] ^= 0x20;
    assert!(Store::decode(&altered).is_err());
}
