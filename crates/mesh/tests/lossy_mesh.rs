//! Meshes on a network that loses and delays messages (the harness's
//! seeded `Conditions`): anti-entropy still converges, and a revocation
//! still reaches everyone, only later.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use sentrymesh_mesh::{Revocation, RevocationTarget};

use sentrymesh_mesh::sim::*;
use sentrymesh_mesh::testing::{NOW, operator};

/// With one message in five lost and each taking up to three seconds,
/// every host ends with the peers it has on a perfect network, by digest
/// rounds that ask again for what was lost, and no producer shows.
#[test]
fn three_operators_converge_through_loss_and_delay() {
    let perfect = converged_three();
    for seed in 0..4 {
        let mut net = Net::launch(THREE, everyone(THREE), ChaCha8Rng::seed_from_u64(seed));
        net.conditions = Conditions {
            loss_per_mille: 200,
            delay_ms: 0..=3000,
        };
        net.run_for(120);
        assert!(net.dropped > 0, "seed {seed}: the network lost nothing");
        for (member, expected) in net.nodes().zip(perfect.nodes()) {
            assert_eq!(
                member.peer_names(),
                expected.peer_names(),
                "seed {seed}: {}",
                member.name()
            );
        }
        net.assert_events_match();
        net.assert_no_hidden_leaks();
    }
}

/// With every message delayed one to two seconds, a revocation reaches
/// every host but the revoked one, a few hops and seconds later. (The
/// net never goes quiet here: gossip's rounds are as short as the delay.)
#[test]
fn a_delayed_revocation_reaches_everyone_a_few_seconds_later() {
    let mut net = converged_three();
    net.conditions.delay_ms = 1000..=2000;
    let doomed = hosts_of(2)[2].card().wg_public_key;
    let revocation = Revocation {
        issuer: operator(2).operator_id(),
        target: RevocationTarget::Host(doomed),
        issued_at: NOW,
    }
    .sign(&operator(2))
    .unwrap();
    let start = net.now;
    net.hand(1, "producer", revocation.clone());
    let object = revocation.into();
    let mut waited = 0;
    while !net.everyone_holds(&object, &[doomed]) {
        assert!(waited < 60, "not everywhere after 60 virtual seconds");
        net.run_for(1);
        waited += 1;
    }
    assert!(
        net.now >= start + 2,
        "no delay: {} s",
        net.now.secs_since(start)
    );
    for m in net.nodes().filter(|m| m.key() != doomed) {
        assert!(!m.mesh.is_admitted_peer(&doomed), "{}", m.name());
    }
    net.run_for(5);
    net.assert_events_match();
}

/// The same seed gives the same run, message for message, through loss
/// and delay; another seed loses other messages.
#[test]
fn a_seed_gives_the_same_run_every_time() {
    let run = |seed| {
        let mut net = Net::launch(THREE, everyone(THREE), ChaCha8Rng::seed_from_u64(seed));
        net.conditions = Conditions {
            loss_per_mille: 200,
            delay_ms: 0..=3000,
        };
        net.run_for(30);
        (net.log().to_vec(), net.dropped)
    };
    let first = run(3);
    assert!(!first.0.is_empty());
    assert_eq!(run(3), first);
    assert_ne!(run(4), first);
}

/// Workers change how fast a run goes, not what it does: the same seed
/// gives the same messages in the same order, and the same peers, with
/// the hosts on one thread or on three.
#[test]
fn workers_change_nothing_a_run_does() {
    const SIX: &[u8] = &[1, 2, 3, 4, 5, 6];
    let run = |workers| {
        let mut net = Net::launch(SIX, everyone(SIX), ChaCha8Rng::seed_from_u64(5));
        net.set_workers(workers);
        // No jitter: the 18 hosts' messages arrive together, and their
        // timers fire together, so workers share the steps.
        net.conditions = Conditions {
            loss_per_mille: 50,
            delay_ms: 40..=40,
        };
        net.run_for(20);
        let peers: Vec<_> = net.nodes().map(Member::peer_names).collect();
        (net.log().to_vec(), net.dropped, peers)
    };
    let one = run(1);
    assert!(one.0.len() > 100 && one.1 > 0);
    assert_eq!(run(3), one);
}
