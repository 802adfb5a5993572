//! The protocol on a network that loses and reorders datagrams: the
//! harness's seeded [`Conditions`], so every run loses the same ones.

use sentrymesh_tunnel::sim::{Conditions, DATA, Pair, Side, ipv4_packet};
use sentrymesh_tunnel::timers::REKEY_ATTEMPT_TIME;

/// With two datagrams in five lost, a handshake still completes by its
/// retries (every `REKEY_TIMEOUT` plus jitter) well within the
/// `REKEY_ATTEMPT_TIME` it is given, and a packet sent after it arrives
/// unless the network loses that one too.
#[test]
fn a_handshake_completes_through_loss_by_retrying() {
    let mut retried = 0;
    for seed in 0..16 {
        let mut pair = Pair::with_seed(seed);
        pair.conditions = Conditions {
            loss_per_mille: 400,
            reorder: false,
        };
        let peer = pair.a.peer;
        pair.a.engine.connect(pair.now, peer).expect("connect");
        pair.drive();
        while pair
            .a
            .engine
            .peer_stats(peer)
            .expect("peer")
            .last_handshake
            .is_none()
        {
            assert!(
                pair.elapsed() < REKEY_ATTEMPT_TIME,
                "seed {seed}: no handshake, {} initiations",
                pair.a.initiations().len()
            );
            assert!(
                pair.advance_to_next_timeout(),
                "seed {seed}: no timer armed"
            );
        }
        if pair.a.initiations().len() > 1 {
            retried += 1;
        }

        let packet = ipv4_packet(84, seed as u8);
        pair.send(Side::A, &packet);
        let sent = pair.a.last_sent(DATA).expect("the packet went out");
        let arrived = pair.b.delivered.iter().any(|(_, p)| *p == packet);
        assert_eq!(arrived, !sent.dropped, "seed {seed}");
    }
    assert!(retried > 0, "the network lost no initiation or response");
}

/// A batch sealed together and delivered in a shuffled order arrives
/// whole: the replay window takes counters out of order.
#[test]
fn a_reordered_batch_arrives_whole_through_the_replay_window() {
    let mut pair = Pair::established();
    pair.conditions.reorder = true;
    let packets: Vec<Vec<u8>> = (0..64).map(|tag| ipv4_packet(100, tag)).collect();
    pair.send_batch(Side::A, &packets);
    let mut got: Vec<Vec<u8>> = pair.b.delivered.iter().map(|(_, p)| p.clone()).collect();
    assert_ne!(got, packets, "the network reordered nothing");
    got.sort();
    assert_eq!(got, packets);
    assert!(pair.b.rejected.is_empty(), "{:?}", pair.b.rejected);
}

/// The same seed gives the same datagrams at the same virtual times,
/// through the same losses; another seed gives others.
#[test]
fn a_seed_gives_the_same_run_every_time() {
    let run = |seed| {
        let mut pair = Pair::with_seed(seed);
        pair.conditions = Conditions {
            loss_per_mille: 300,
            reorder: true,
        };
        let packets: Vec<Vec<u8>> = (0..16).map(|tag| ipv4_packet(100, tag)).collect();
        pair.send_batch(Side::A, &packets);
        pair.advance(std::time::Duration::from_secs(30));
        pair.send_batch(Side::B, &packets);
        [&pair.a, &pair.b].map(|host| (host.sent.clone(), host.delivered.clone()))
    };
    let first = run(5);
    assert!(first[0].0.iter().any(|sent| sent.dropped));
    assert_eq!(run(5), first);
    assert_ne!(run(6), first);
}
