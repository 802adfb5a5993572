//! A cloned [`Pair`] (and so a cloned `Engine`) is an independent copy in
//! the same state: the fuzz targets build their fixture once and copy it
//! for every input, which is only sound if a copy behaves exactly as the
//! original would and nothing one copy does reaches another.

use std::time::Duration;

use sentrymesh_tunnel::sim::{Pair, Side, ipv4_packet};

/// Everything both hosts sent, as the harness recorded it.
fn sent(pair: &Pair) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let bytes = |host: &sentrymesh_tunnel::sim::Host| {
        host.sent.iter().map(|sent| sent.bytes.clone()).collect()
    };
    (bytes(&pair.a), bytes(&pair.b))
}

#[test]
fn a_copy_draws_the_same_randomness_as_the_original() {
    let original = Pair::with_seed(7);
    let mut copy = original.clone();
    let mut original = original;
    // The copy draws first: if the two shared an RNG, the original's
    // ephemeral keys and indices would then differ.
    copy.handshake();
    original.handshake();
    assert_eq!(sent(&copy), sent(&original));
    assert!(!copy.a.sent.is_empty());
}

#[test]
fn a_copy_of_an_established_pair_seals_and_rekeys_as_the_original() {
    let mut original = Pair::established();
    let mut copy = original.clone();
    for pair in [&mut original, &mut copy] {
        for round in 0..4u8 {
            pair.send(Side::A, &ipv4_packet(100, round));
            pair.send(Side::B, &ipv4_packet(200, round));
            // Past REKEY_AFTER_TIME (120 s) in four steps: a rekey with
            // fresh ephemeral keys and indices from the copied RNGs.
            pair.advance(Duration::from_secs(40));
        }
    }
    assert_eq!(sent(&copy), sent(&original));
    assert!(
        original.a.initiations().len() > 1,
        "the pair rekeyed: {:?}",
        original.a.summary_since(Duration::ZERO)
    );
    assert_eq!(copy.b.delivered, original.b.delivered);
}

#[test]
fn what_a_copy_receives_leaves_the_original_as_it_was() {
    let mut original = Pair::established();
    let datagram = original.seal(Side::B, &ipv4_packet(84, 1));
    let mut copy = original.clone();
    let peer = original.a.peer;
    let before = original.a.engine.peer_stats(peer);
    assert_eq!(
        copy.deliver(Side::A, &datagram),
        Ok(Some(ipv4_packet(84, 1)))
    );
    assert_ne!(copy.a.engine.peer_stats(peer), before);
    // The original did not see it: not its counters, not its replay window.
    assert_eq!(original.a.engine.peer_stats(peer), before);
    assert_eq!(
        original.deliver(Side::A, &datagram),
        Ok(Some(ipv4_packet(84, 1)))
    );
    // And the copy refuses it a second time, as the original now does.
    assert!(copy.deliver(Side::A, &datagram).is_err());
    assert!(original.deliver(Side::A, &datagram).is_err());
}
