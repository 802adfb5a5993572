//! Datagrams against an established session: `a` receives a datagram that
//! is raw input or one of `b`'s genuine data datagrams mutated
//! (`sentrymesh_fuzz::shape`), possibly after a genuine one was received.
//!
//! Input: a flags byte (bit 0: receive genuine datagram 0 first; bit 1:
//! the datagram comes from `b`'s address, else from a stranger's), then the
//! input of `shape`.
//!
//! What must hold: only a genuine datagram, never received before, is
//! accepted, and it carries its packet; a refused datagram leaves the
//! peer's counters and endpoint as they were; the session survives (a
//! datagram `b` seals afterwards is accepted).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentrymesh_fuzz::tunnel::{Established, established};
use sentrymesh_fuzz::{STRANGER, shape};
use sentrymesh_tunnel::Received;
use sentrymesh_tunnel::sim::{ADDR_B, Side, ipv4_packet};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let Established {
        mut pair,
        genuine,
        inner,
    } = established();
    let now = pair.now;
    let peer = pair.a.peer;
    let mut received = vec![false; genuine.len()];
    if flags & 1 != 0 {
        let mut datagram = genuine[0].clone();
        let result = pair.a.engine.handle_datagram(now, ADDR_B, &mut datagram);
        assert!(matches!(result, Ok(Received::Packet { .. })), "{result:?}");
        received[0] = true;
    }
    let from = if flags & 2 != 0 { ADDR_B } else { STRANGER };
    let sources: Vec<&[u8]> = genuine.iter().map(Vec::as_slice).collect();
    let shaped = shape(input, &sources);
    let stats = pair.a.engine.peer_stats(peer);
    let endpoint = pair.a.engine.peer_endpoint(peer);
    let mut datagram = shaped.clone();
    match pair.a.engine.handle_datagram(now, from, &mut datagram) {
        Ok(accepted) => {
            let index = genuine
                .iter()
                .position(|g| *g == shaped)
                .expect("accepted a datagram that is not genuine");
            assert!(!received[index], "accepted a replayed datagram");
            match accepted {
                Received::Packet { packet, .. } => assert_eq!(packet, &inner[index][..]),
                Received::Control(_) => panic!("a data datagram taken as control"),
            }
        }
        Err(_) => {
            assert_eq!(
                pair.a.engine.peer_stats(peer),
                stats,
                "a refusal changed counters"
            );
            assert_eq!(
                pair.a.engine.peer_endpoint(peer),
                endpoint,
                "a refusal moved the peer"
            );
        }
    }
    // The session survives whatever came in.
    let packet = ipv4_packet(60, 9);
    let fresh = pair.seal(Side::B, &packet);
    assert_eq!(pair.deliver(Side::A, &fresh), Ok(Some(packet)));
});
