//! Packets waiting for a session share one budget per interface
//! (`sentrymesh_tunnel::staging`): a rival's hundreds of hosts that never
//! answer, each sent more than its cap, hold no more than the budget, and
//! a peer of our own that a packet is sent to meanwhile keeps every packet
//! of its fair share and delivers them when its handshake completes. What
//! is dropped is counted; what a removed peer held goes with it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use sentrymesh_tunnel::sim::ipv4_packet;
use sentrymesh_tunnel::staging::{BUDGET_BYTES, MAX_PACKETS_PER_PEER};
use sentrymesh_tunnel::{Encapsulated, Engine, PeerConfig, PeerId, Received, StagingStats};
use sentrymesh_types::PrivateKey;

const UNIX_NOW: Duration = Duration::from_secs(1_700_000_000);
/// The rival's hosts: more than the budget holds at their cap.
const RIVAL_HOSTS: u16 = 200;
/// The size of every packet sent.
const PACKET_LEN: usize = 1400;

fn key(n: u16) -> PrivateKey {
    let mut seed = [0x5a; 32];
    seed[1..3].copy_from_slice(&n.to_le_bytes());
    PrivateKey::from_bytes(seed)
}

fn engine(n: u16, start: Instant) -> Engine {
    Engine::new(
        key(n),
        ChaCha8Rng::seed_from_u64(u64::from(n)),
        start,
        UNIX_NOW,
    )
}

/// Where host `n` is said to be: an address in 198.18.0.0/15.
fn address(n: u16) -> SocketAddr {
    let [high, low] = n.to_be_bytes();
    SocketAddr::from(([198, 18, high, low], 51820))
}

fn peer(engine: &mut Engine, now: Instant, n: u16) -> PeerId {
    let mut config = PeerConfig::new(key(n).public_key());
    config.endpoint = Some(address(n));
    engine.add_peer(now, config).expect("a new peer")
}

fn send(engine: &mut Engine, now: Instant, peer: PeerId, tag: u8) {
    let mut out = vec![0u8; 2048];
    let packet = ipv4_packet(PACKET_LEN, tag);
    assert_eq!(
        engine.encapsulate(now, peer, &packet, &mut out).unwrap(),
        Encapsulated::Queued
    );
}

/// Carries what `from` sends to `to` (and only that), as received from
/// `from_address`; returns the tags of the packets `to` opened.
fn carry(
    from: &mut Engine,
    to: &mut Engine,
    to_peer: PeerId,
    from_address: SocketAddr,
    now: Instant,
) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut tags = Vec::new();
    while let Some(transmit) = from.poll_transmit(now, &mut buf) {
        if transmit.peer != Some(to_peer) {
            continue;
        }
        let mut datagram = buf[..transmit.len].to_vec();
        if let Ok(Received::Packet { packet, .. }) =
            to.handle_datagram(now, from_address, &mut datagram)
        {
            tags.push(packet[PACKET_LEN - 1]);
        }
    }
    tags
}

#[test]
fn a_rivals_unreachable_hosts_hold_the_budget_at_most_and_starve_no_one() {
    let now = Instant::now();
    let mut hub = engine(0, now);
    let mut ours = engine(1, now);
    let ours_at_hub = peer(&mut hub, now, 1);
    let hub_at_ours = peer(&mut ours, now, 0);
    let rivals: Vec<PeerId> = (1000..1000 + RIVAL_HOSTS)
        .map(|n| peer(&mut hub, now, n))
        .collect();

    // Every rival host is sent more than its cap; none answers.
    for round in 0..MAX_PACKETS_PER_PEER + 8 {
        for &rival in &rivals {
            send(&mut hub, now, rival, round as u8);
        }
    }
    let flooded = hub.staging_stats();
    assert!(
        flooded.bytes <= BUDGET_BYTES,
        "{} bytes staged, over the budget of {BUDGET_BYTES}",
        flooded.bytes
    );
    assert!(flooded.packets <= usize::from(RIVAL_HOSTS) * MAX_PACKETS_PER_PEER);
    let sent = usize::from(RIVAL_HOSTS) * (MAX_PACKETS_PER_PEER + 8);
    assert_eq!(
        flooded.packets as u64 + flooded.dropped_for_room,
        sent as u64,
        "every packet is staged or counted as dropped"
    );
    assert!(
        flooded.bytes > BUDGET_BYTES - 2 * PACKET_LEN,
        "the budget is used"
    );

    // A peer of our own, sent as many packets as its share of the budget
    // holds, keeps every one of them.
    let share = BUDGET_BYTES / (usize::from(RIVAL_HOSTS) + 1) / (PACKET_LEN + 64);
    let share = share.min(MAX_PACKETS_PER_PEER);
    assert!(
        share >= 8,
        "a share of {share} packets is too small to test"
    );
    for tag in 0..share {
        send(&mut hub, now, ours_at_hub, 200 + tag as u8);
    }
    let before = hub.staging_stats();
    assert!(before.bytes <= BUDGET_BYTES);
    assert!(before.dropped_for_room > flooded.dropped_for_room);

    // The handshake: its initiation, the response, then the packets.
    let initiation = carry(&mut hub, &mut ours, hub_at_ours, address(0), now);
    assert!(initiation.is_empty());
    let response = carry(&mut ours, &mut hub, ours_at_hub, address(1), now);
    assert!(response.is_empty());
    let delivered = carry(&mut hub, &mut ours, hub_at_ours, address(0), now);
    let expected: Vec<u8> = (0..share).map(|tag| 200 + tag as u8).collect();
    assert_eq!(delivered, expected, "our own peer lost staged packets");

    // The rival's hosts go: what they held goes with them, counted.
    let left = hub.staging_stats();
    for rival in rivals {
        assert!(hub.remove_peer(rival));
    }
    let after = hub.staging_stats();
    assert_eq!(
        after,
        StagingStats {
            packets: 0,
            bytes: 0,
            dropped_for_room: left.dropped_for_room,
            dropped_no_session: left.packets as u64,
        }
    );
}
