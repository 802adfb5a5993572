//! The engine's peer table and timer heap: slots reused without an old id
//! reaching a new peer, and the heap against a scan of every peer (the
//! engine's former way, kept here as the reference model).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use sentrymesh_types::PrivateKey;

use super::*;
use crate::timers::REKEY_TIMEOUT;

const UNIX_NOW: Duration = Duration::from_secs(1_700_000_000);
const HUB: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 1)),
    51820,
);

fn key(n: u8) -> PrivateKey {
    PrivateKey::from_bytes([n; 32])
}

/// Where spoke `n` listens: 198.18.1.n.
fn spoke_addr(n: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 1, n], 51820))
}

fn engine(n: u8, start: Instant) -> Engine {
    Engine::new(
        key(n),
        ChaCha8Rng::seed_from_u64(u64::from(n)),
        start,
        UNIX_NOW,
    )
}

fn config(n: u8, endpoint: Option<SocketAddr>) -> PeerConfig {
    let mut config = PeerConfig::new(key(n).public_key());
    config.endpoint = endpoint;
    config
}

/// A 20-byte IPv4 header: a packet the other side accepts.
fn ip_packet() -> [u8; 20] {
    let mut packet = [0u8; 20];
    packet[0] = 0x45;
    packet[3] = 20;
    packet
}

/// The earliest deadline of any peer, by a scan of every slot.
fn scanned_timeout(engine: &Engine) -> Option<Instant> {
    engine
        .peers
        .iter()
        .filter_map(|(_, peer)| peer.poll_timeout())
        .min()
}

/// The engine's former `handle_timeout`: a scan of every slot, running
/// each peer found due.
fn handle_timeout_by_scan(engine: &mut Engine, now: Instant) {
    let ids: Vec<PeerId> = engine.peers.iter().map(|(id, _)| id).collect();
    for id in ids {
        let due = engine
            .peer(id)
            .and_then(Peer::poll_timeout)
            .is_some_and(|at| at <= now);
        if due {
            if let Ok((peer, mut ctx)) = engine.split(now, id) {
                peer.handle_timeout(&mut ctx);
            }
            engine.schedule(now, id);
        }
    }
}

#[test]
fn add_remove_cycles_keep_the_slots_at_the_peak() {
    let start = Instant::now();
    let mut hub = engine(1, start);
    let mut held = Vec::new();
    for round in 0..500u32 {
        let n = u8::try_from(2 + round % 200).unwrap();
        if hub.peer_id(&key(n).public_key()).is_none() {
            held.push(hub.add_peer(start, config(n, Some(spoke_addr(n)))).unwrap());
        }
        if held.len() == 12 {
            for id in held.drain(..5) {
                assert!(hub.remove_peer(id));
            }
        }
    }
    assert_eq!(
        hub.peers.slot_count(),
        12,
        "never more than 12 peers at once"
    );
    assert_eq!(hub.peers().count(), held.len());
}

#[test]
fn a_peer_limit_is_kept_and_a_removal_makes_room() {
    let start = Instant::now();
    let mut hub = Engine::with_peer_limit(key(1), ChaCha8Rng::seed_from_u64(1), start, UNIX_NOW, 2);
    assert_eq!(hub.peer_room(), 2);
    let first = hub.add_peer(start, config(2, None)).unwrap();
    hub.add_peer(start, config(3, None)).unwrap();
    assert_eq!(hub.peer_room(), 0);
    assert!(matches!(
        hub.check_new_peer(&key(4).public_key()),
        Err(Error::TooManyPeers)
    ));
    assert!(matches!(
        hub.add_peer(start, config(4, None)),
        Err(Error::TooManyPeers)
    ));
    assert!(hub.remove_peer(first));
    assert_eq!(hub.peer_room(), 1);
    hub.add_peer(start, config(4, None)).unwrap();
    assert_eq!(hub.peers().count(), 2);
}

#[test]
fn an_old_id_is_refused_after_its_slot_is_reused() {
    let start = Instant::now();
    let mut hub = engine(1, start);
    let old = hub.add_peer(start, config(2, Some(spoke_addr(2)))).unwrap();
    assert!(hub.remove_peer(old));
    let new = hub.add_peer(start, config(3, Some(spoke_addr(3)))).unwrap();
    assert_eq!(new.slot, old.slot, "the slot is reused");
    assert_ne!(new, old);
    let mut out = [0u8; 256];
    assert_eq!(hub.peer_stats(old), None);
    assert_eq!(hub.peer_endpoint(old), None);
    assert!(matches!(
        hub.encapsulate(start, old, &ip_packet(), &mut out),
        Err(Error::NoSuchPeer)
    ));
    assert!(matches!(
        hub.set_peer_endpoint(old, spoke_addr(9)),
        Err(Error::NoSuchPeer)
    ));
    assert!(matches!(hub.connect(start, old), Err(Error::NoSuchPeer)));
    assert!(!hub.remove_peer(old));
    assert_eq!(hub.peer_endpoint(new), Some(spoke_addr(3)));
    assert_eq!(hub.peer_id(&key(3).public_key()), Some(new));
}

#[test]
fn nothing_queued_for_an_old_peer_reaches_the_new_one() {
    let start = Instant::now();
    let mut hub = engine(1, start);
    let mut spoke = engine(2, start);
    spoke.add_peer(start, config(1, Some(HUB))).unwrap();
    let old = hub.add_peer(start, config(2, Some(spoke_addr(2)))).unwrap();
    let mut buf = vec![0u8; 2048];
    // The old peer's initiation goes out; a packet waits for its session
    // and another is queued behind a second request to send.
    assert_eq!(
        hub.encapsulate(start, old, &ip_packet(), &mut buf).unwrap(),
        Encapsulated::Queued
    );
    let initiation = hub.poll_transmit(start, &mut buf).unwrap();
    assert_eq!(initiation.peer, Some(old));
    let mut datagram = buf[..initiation.len].to_vec();
    spoke.handle_datagram(start, HUB, &mut datagram).unwrap();
    let response = spoke.poll_transmit(start, &mut buf).unwrap();
    let mut response = buf[..response.len].to_vec();
    hub.connect(start, old).unwrap();
    assert!(hub.poll_timeout().is_some(), "the retransmission is due");

    assert!(hub.remove_peer(old));
    let new = hub.add_peer(start, config(3, None)).unwrap();
    assert_eq!(new.slot, old.slot);
    // The old peer's queued keepalive, its retransmission timer and the
    // response to its handshake: none of them acts on the new peer.
    assert_eq!(hub.poll_transmit(start, &mut buf), None);
    assert_eq!(hub.poll_timeout(), None);
    assert!(matches!(
        hub.handle_datagram(start, spoke_addr(2), &mut response),
        Err(Error::UnknownIndex)
    ));
    hub.handle_timeout(start + REKEY_TIMEOUT * 2);
    assert_eq!(hub.poll_transmit(start + REKEY_TIMEOUT * 2, &mut buf), None);
    let stats = hub.peer_stats(new).unwrap();
    assert_eq!(stats, PeerStats::default());
    assert_eq!(hub.peer_endpoint(new), None);
}

#[test]
fn a_deadline_change_of_one_peer_among_many_is_honoured() {
    let start = Instant::now();
    let at = |secs| start + Duration::from_secs(secs);
    let mut hub = engine(1, start);
    // 200 peers without an endpoint, peer i with a keepalive of 100 + i s.
    let ids: Vec<PeerId> = (0..200u8)
        .map(|i| {
            let mut config = config(i.wrapping_add(2), None);
            config.persistent_keepalive = Some(Duration::from_secs(100 + u64::from(i)));
            hub.add_peer(start, config).unwrap()
        })
        .collect();
    assert_eq!(hub.poll_timeout(), Some(at(100)));
    // One peer's deadline moves earlier, then away, then others' do.
    let keepalive = |secs| Some(Duration::from_secs(secs));
    hub.set_peer_persistent_keepalive(at(10), ids[57], keepalive(5))
        .unwrap();
    assert_eq!(hub.poll_timeout(), Some(at(15)));
    hub.set_peer_persistent_keepalive(at(10), ids[57], None)
        .unwrap();
    assert_eq!(hub.poll_timeout(), Some(at(100)));
    hub.set_peer_persistent_keepalive(at(10), ids[0], None)
        .unwrap();
    assert_eq!(hub.poll_timeout(), Some(at(101)));
    hub.remove_peer(ids[1]);
    assert_eq!(hub.poll_timeout(), Some(at(102)));
    assert_eq!(hub.poll_timeout(), scanned_timeout(&hub));
    // Only peer 2 is due at 102 s: it tries a handshake (with nowhere to
    // send it) and will retry after REKEY_TIMEOUT; peer 3 is next.
    hub.handle_timeout(at(102));
    assert_eq!(hub.poll_transmit(at(102), &mut [0u8; 256]), None);
    assert_eq!(hub.poll_timeout(), Some(at(103)));
    let retry = hub.peer(ids[2]).and_then(Peer::poll_timeout).unwrap();
    assert!(retry >= at(102) + REKEY_TIMEOUT, "{:?}", retry - start);
    // Untouched: the others keep their deadlines (peer 57 has none).
    for &id in ids[3..].iter().filter(|&&id| id != ids[57]) {
        let scheduled = hub.peer(id).and_then(Peer::poll_timeout);
        assert!(scheduled.is_some_and(|at| at > start + Duration::from_secs(102)));
    }
    assert!(hub.timers.len() <= 3 * 199 + 64);
}

#[test]
fn the_heap_stays_bounded_under_traffic() {
    let start = Instant::now();
    let mut hub = engine(1, start);
    let mut spoke = engine(2, start);
    spoke.add_peer(start, config(1, Some(HUB))).unwrap();
    let id = hub.add_peer(start, config(2, Some(spoke_addr(2)))).unwrap();
    let mut buf = vec![0u8; 2048];
    let mut now = start;
    for _ in 0..2000 {
        now += Duration::from_millis(7);
        // Data each way: the deadline flips between the keepalive and the
        // new-handshake timers at every packet.
        let _ = hub.encapsulate(now, id, &ip_packet(), &mut buf);
        World::deliver_pair(&mut hub, &mut spoke, now);
        let peer = spoke.peer_id(&key(1).public_key()).unwrap();
        let _ = spoke.encapsulate(now, peer, &ip_packet(), &mut buf);
        World::deliver_pair(&mut hub, &mut spoke, now);
        assert_eq!(hub.poll_timeout(), scanned_timeout(&hub));
        assert!(hub.timers.len() <= 3 + 64, "{} entries", hub.timers.len());
    }
    assert!(hub.peer_stats(id).unwrap().rx_bytes > 0);
}

/// A hub engine and spokes that each know the hub: the hub's peers come
/// and go, traffic flows both ways, time jumps. `by_scan` runs the hub's
/// timers by the reference scan instead of the heap.
struct World {
    now: Instant,
    hub: Engine,
    spokes: Vec<Engine>,
    by_scan: bool,
    /// Every datagram the hub sent: destination and bytes.
    hub_sent: Vec<(SocketAddr, Vec<u8>)>,
}

/// Spokes 2 to 2 + SPOKES - 1.
const SPOKES: u8 = 4;

#[derive(Debug, Clone)]
enum Op {
    Add { spoke: u8, keepalive: Option<u8> },
    Remove { spoke: u8 },
    HubSends { spoke: u8 },
    SpokeSends { spoke: u8 },
    Advance { millis: u32 },
    AdvanceToTimeout,
}

fn op() -> impl Strategy<Value = Op> {
    let spoke = 0..SPOKES;
    prop_oneof![
        (spoke.clone(), proptest::option::of(1u8..30))
            .prop_map(|(spoke, keepalive)| Op::Add { spoke, keepalive }),
        spoke.clone().prop_map(|spoke| Op::Remove { spoke }),
        spoke.clone().prop_map(|spoke| Op::HubSends { spoke }),
        spoke.prop_map(|spoke| Op::SpokeSends { spoke }),
        (0u32..200_000).prop_map(|millis| Op::Advance { millis }),
        Just(Op::AdvanceToTimeout),
        Just(Op::AdvanceToTimeout),
    ]
}

impl World {
    fn new(start: Instant, by_scan: bool) -> Self {
        let spokes = (0..SPOKES)
            .map(|i| {
                let mut spoke = engine(2 + i, start);
                spoke.add_peer(start, config(1, Some(HUB))).unwrap();
                spoke
            })
            .collect();
        Self {
            now: start,
            hub: engine(1, start),
            spokes,
            by_scan,
            hub_sent: Vec::new(),
        }
    }

    fn hub_id(&self, spoke: u8) -> Option<PeerId> {
        self.hub.peer_id(&key(2 + spoke).public_key())
    }

    fn apply(&mut self, op: &Op) {
        let mut buf = vec![0u8; 2048];
        let now = self.now;
        match *op {
            Op::Add { spoke, keepalive } => {
                let mut config = config(2 + spoke, Some(spoke_addr(2 + spoke)));
                config.persistent_keepalive = keepalive.map(|s| Duration::from_secs(s.into()));
                let _ = self.hub.add_peer(now, config);
            }
            Op::Remove { spoke } => {
                if let Some(id) = self.hub_id(spoke) {
                    self.hub.remove_peer(id);
                }
            }
            Op::HubSends { spoke } => {
                if let Some(id) = self.hub_id(spoke) {
                    if let Ok(Encapsulated::Sealed { len }) =
                        self.hub.encapsulate(now, id, &ip_packet(), &mut buf)
                    {
                        self.hub_sent
                            .push((spoke_addr(2 + spoke), buf[..len].to_vec()));
                        self.route(spoke_addr(2 + spoke), HUB, buf[..len].to_vec());
                    }
                }
            }
            Op::SpokeSends { spoke } => {
                let engine = &mut self.spokes[usize::from(spoke)];
                let id = engine.peer_id(&key(1).public_key()).unwrap();
                if let Ok(Encapsulated::Sealed { len }) =
                    engine.encapsulate(now, id, &ip_packet(), &mut buf)
                {
                    self.route(HUB, spoke_addr(2 + spoke), buf[..len].to_vec());
                }
            }
            Op::Advance { millis } => {
                self.now += Duration::from_millis(millis.into());
                self.run_timers();
            }
            Op::AdvanceToTimeout => {
                if let Some(at) = scanned_timeout(&self.hub) {
                    self.now = self.now.max(at);
                    self.run_timers();
                }
            }
        }
        self.exchange();
    }

    fn run_timers(&mut self) {
        let now = self.now;
        if self.by_scan {
            handle_timeout_by_scan(&mut self.hub, now);
        } else {
            self.hub.handle_timeout(now);
        }
        for spoke in &mut self.spokes {
            spoke.handle_timeout(now);
        }
    }

    /// Hands a datagram to the engine at `to`.
    fn route(&mut self, to: SocketAddr, from: SocketAddr, mut datagram: Vec<u8>) {
        let now = self.now;
        let engine = if to == HUB {
            &mut self.hub
        } else {
            let spoke = (0..SPOKES).find(|&n| spoke_addr(2 + n) == to);
            let Some(n) = spoke else { return };
            &mut self.spokes[usize::from(n)]
        };
        let _ = engine.handle_datagram(now, from, &mut datagram);
    }

    /// Carries every queued datagram until no engine has one.
    fn exchange(&mut self) {
        let mut buf = vec![0u8; 2048];
        for _ in 0..64 {
            let now = self.now;
            let mut quiet = true;
            while let Some(transmit) = self.hub.poll_transmit(now, &mut buf) {
                quiet = false;
                let datagram = buf[..transmit.len].to_vec();
                self.hub_sent.push((transmit.destination, datagram.clone()));
                self.route(transmit.destination, HUB, datagram);
            }
            for n in 0..SPOKES {
                while let Some(transmit) = self.spokes[usize::from(n)].poll_transmit(now, &mut buf)
                {
                    quiet = false;
                    let datagram = buf[..transmit.len].to_vec();
                    self.route(transmit.destination, spoke_addr(2 + n), datagram);
                }
            }
            if quiet {
                return;
            }
        }
    }

    /// For the single-peer traffic test: carries datagrams between two
    /// engines until both are quiet.
    fn deliver_pair(hub: &mut Engine, spoke: &mut Engine, now: Instant) {
        let mut buf = vec![0u8; 2048];
        loop {
            let mut quiet = true;
            if let Some(transmit) = hub.poll_transmit(now, &mut buf) {
                quiet = false;
                let mut datagram = buf[..transmit.len].to_vec();
                let _ = spoke.handle_datagram(now, HUB, &mut datagram);
            }
            if let Some(transmit) = spoke.poll_transmit(now, &mut buf) {
                quiet = false;
                let mut datagram = buf[..transmit.len].to_vec();
                let _ = hub.handle_datagram(now, spoke_addr(2), &mut datagram);
            }
            if quiet {
                return;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The heap gives the deadline a scan of every peer gives, after every
    /// input, and runs the same timers: the hub sends the same datagrams,
    /// byte for byte, as a hub whose timers are run by the scan.
    #[test]
    fn the_heap_matches_a_scan_of_every_peer(ops in proptest::collection::vec(op(), 1..60)) {
        let start = Instant::now();
        let mut heap = World::new(start, false);
        let mut scan = World::new(start, true);
        for op in &ops {
            heap.apply(op);
            scan.apply(op);
            prop_assert_eq!(heap.now, scan.now);
            prop_assert_eq!(heap.hub.poll_timeout(), scanned_timeout(&heap.hub));
            prop_assert_eq!(heap.hub.poll_timeout(), scanned_timeout(&scan.hub));
            prop_assert!(heap.hub.timers.len() <= 3 * usize::from(SPOKES) + 64);
            prop_assert_eq!(&heap.hub_sent, &scan.hub_sent);
        }
        prop_assert!(heap.hub.peers.slot_count() <= usize::from(SPOKES));
    }
}

/// Spoke `n`'s first initiation to the hub (key 1 at [`HUB`]).
fn initiation_from(n: u8, now: Instant) -> Vec<u8> {
    let mut spoke = engine(n, now);
    let hub = spoke.add_peer(now, config(1, Some(HUB))).unwrap();
    spoke.connect(now, hub).unwrap();
    let mut buf = [0u8; 256];
    let transmit = spoke.poll_transmit(now, &mut buf).unwrap();
    buf[..transmit.len].to_vec()
}

#[test]
fn an_unknown_initiator_is_reported_once_and_a_bad_mac1_never() {
    let now = Instant::now();
    let mut hub = engine(1, now);
    let mut initiation = initiation_from(2, now);
    let mut twice = initiation.clone();
    assert_eq!(
        hub.handle_datagram(now, spoke_addr(2), &mut initiation),
        Err(Error::UnknownPeer)
    );
    assert_eq!(
        hub.handle_datagram(now, spoke_addr(2), &mut twice),
        Err(Error::UnknownPeer)
    );
    assert_eq!(hub.poll_unknown_initiator(), Some(key(2).public_key()));
    assert_eq!(hub.poll_unknown_initiator(), None, "one key, once");

    // A wrong mac1 is refused before any Diffie-Hellman: no key is read.
    let mut forged = initiation_from(3, now);
    let last = forged.len() - 17;
    forged[last] ^= 1;
    assert_eq!(
        hub.handle_datagram(now, spoke_addr(3), &mut forged),
        Err(Error::InvalidMac1)
    );
    assert_eq!(hub.poll_unknown_initiator(), None);

    // A known peer's initiation is no stranger's.
    hub.add_peer(now, config(4, None)).unwrap();
    let mut known = initiation_from(4, now);
    assert!(hub.handle_datagram(now, spoke_addr(4), &mut known).is_ok());
    assert_eq!(hub.poll_unknown_initiator(), None);
}

#[test]
fn unknown_initiators_wait_in_a_bounded_set() {
    let now = Instant::now();
    let mut hub = engine(1, now);
    for n in 10..10 + MAX_UNKNOWN_INITIATORS as u8 + 20 {
        let mut initiation = initiation_from(n, now);
        assert_eq!(
            hub.handle_datagram(now, spoke_addr(n), &mut initiation),
            Err(Error::UnknownPeer)
        );
    }
    let reported = std::iter::from_fn(|| hub.poll_unknown_initiator()).count();
    assert_eq!(reported, MAX_UNKNOWN_INITIATORS);
    // Polled, the set has room again.
    let mut initiation = initiation_from(9, now);
    let _ = hub.handle_datagram(now, spoke_addr(9), &mut initiation);
    assert_eq!(hub.poll_unknown_initiator(), Some(key(9).public_key()));
}
