//! The device without a kernel: in-memory TUN devices and sockets, and a
//! clock that only moves when a test moves it.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sentrymesh_tunnel::{
    COOKIE_REPLY_LEN, Encapsulated, Engine, INITIATION_LEN, PeerConfig, PeerId, RESPONSE_LEN,
};
use sentrymesh_types::{PrivateKey, PublicKey, blake2s};

use super::handshakes::QUEUE_CAPACITY;
use super::receive::HANDSHAKE_BUDGET;
use super::shedding::{CALM_WINDOWS, WINDOW};
use super::*;
use crate::dataplane::change::{AllowedIpChange, PeerChange, PeerUpdate};
use crate::sys::batch_udp::{Run, SendReport};
use crate::sys::socket_filter::ShedRates;

/// A TUN device in memory: packets to read, and the packets written.
#[derive(Default)]
struct FakeTun {
    to_read: VecDeque<Vec<u8>>,
    written: Vec<Vec<u8>>,
}

impl TunIo for FakeTun {
    fn read_packet(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let packet = self.to_read.pop_front().ok_or(io::ErrorKind::WouldBlock)?;
        buf[..packet.len()].copy_from_slice(&packet);
        Ok(packet.len())
    }

    fn write_packet(&mut self, packet: &[u8]) -> io::Result<()> {
        self.written.push(packet.to_vec());
        Ok(())
    }

    fn has_offloads(&self) -> bool {
        false
    }

    fn mtu(&self) -> io::Result<u32> {
        Ok(1420)
    }
}

/// A socket in memory: datagrams to receive, and each batch sent, as the
/// datagrams it held.
struct FakeSocket {
    port: u16,
    inbox: VecDeque<(SocketAddr, Vec<u8>)>,
    batches: Vec<Vec<(SocketAddr, Vec<u8>)>>,
    /// Each pair of shedding rates the device asked for, in order.
    shedding: Vec<ShedRates>,
}

impl FakeSocket {
    fn new(port: u16) -> Self {
        Self {
            port,
            inbox: VecDeque::new(),
            batches: Vec::new(),
            shedding: Vec::new(),
        }
    }
}

impl DatagramIo for FakeSocket {
    fn recv_batch(&mut self, bufs: &mut [Vec<u8>], meta: &mut [RecvMeta]) -> io::Result<usize> {
        if self.inbox.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut count = 0;
        for (buf, meta) in bufs.iter_mut().zip(meta.iter_mut()) {
            let Some((source, datagram)) = self.inbox.pop_front() else {
                break;
            };
            buf[..datagram.len()].copy_from_slice(&datagram);
            *meta = RecvMeta {
                source,
                len: datagram.len(),
                segment_size: datagram.len(),
                truncated: false,
            };
            count += 1;
        }
        Ok(count)
    }

    fn send_batch(&mut self, buf: &[u8], runs: &[Run]) -> SendReport {
        let datagrams: Vec<(SocketAddr, Vec<u8>)> = runs
            .iter()
            .flat_map(|run| {
                buf[run.start..run.start + run.len]
                    .chunks(run.segment_size)
                    .map(|datagram| (run.destination, datagram.to_vec()))
            })
            .collect();
        let sent = datagrams.len();
        self.batches.push(datagrams);
        SendReport {
            sent,
            ..SendReport::default()
        }
    }

    fn local_port(&self) -> io::Result<u16> {
        Ok(self.port)
    }

    fn rebind(&mut self, port: u16, _fwmark: Option<u32>) -> io::Result<()> {
        self.port = port;
        Ok(())
    }

    fn set_mark(&mut self, _mark: u32) -> io::Result<()> {
        Ok(())
    }

    fn shed_handshakes(&mut self, rates: ShedRates) -> io::Result<()> {
        self.shedding.push(rates);
        Ok(())
    }
}

type FakeDevice = Device<FakeTun, FakeSocket>;

const PORT: u16 = 51820;

fn key(byte: u8) -> PrivateKey {
    PrivateKey::from_bytes([byte; 32])
}

/// The underlay address of host `host`.
fn underlay(host: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 0, host], PORT))
}

/// A peer with key `byte`, at `endpoint`, allowed `nets`.
fn peer(byte: u8, endpoint: Option<SocketAddr>, nets: &[&str]) -> PeerChange {
    let mut update = PeerUpdate::new(key(byte).public_key());
    update.endpoint = endpoint;
    update.allowed_ips = nets
        .iter()
        .map(|net| AllowedIpChange::Add(net.parse().unwrap()))
        .collect();
    PeerChange::Set(update)
}

/// A device with key `byte` and `peers`, configured at `now`.
fn device(byte: u8, now: Instant, peers: Vec<PeerChange>) -> FakeDevice {
    let mut device = Device::with_io(
        FakeTun::default(),
        FakeSocket::new(PORT),
        now,
        Duration::from_secs(1_700_000_000),
    )
    .unwrap();
    let request = ConfigChange {
        private_key: Some(Some(key(byte))),
        peers,
        ..ConfigChange::default()
    };
    device.apply(request, now).unwrap();
    device
}

/// An IPv4 packet from `src` to `dst` with a payload of `len` bytes of 0xAB.
fn ipv4(src: [u8; 4], dst: [u8; 4], len: usize) -> Vec<u8> {
    let total = 20 + len;
    let mut packet = vec![0xAB; total];
    packet[..20].fill(0);
    packet[0] = 0x45;
    packet[2..4].copy_from_slice(&u16::try_from(total).unwrap().to_be_bytes());
    packet[8] = 64;
    packet[9] = 17;
    packet[12..16].copy_from_slice(&src);
    packet[16..20].copy_from_slice(&dst);
    packet
}

/// Moves every datagram `from` (at `from_addr`) sent to `to_addr` into the
/// inbox of `to`; returns how many.
fn deliver(
    from: &mut FakeDevice,
    from_addr: SocketAddr,
    to: &mut FakeDevice,
    to_addr: SocketAddr,
) -> usize {
    let mut moved = 0;
    for batch in &mut from.socket.batches {
        batch.retain(|(destination, datagram)| {
            let ours = *destination == to_addr;
            if ours {
                to.socket.inbox.push_back((from_addr, datagram.clone()));
                moved += 1;
            }
            !ours
        });
    }
    from.socket.batches.retain(|batch| !batch.is_empty());
    moved
}

/// Hosts 1 and 2 with a session: host 1 owns 198.18.1.0/24, host 2
/// 198.18.2.0/24, and host 1 also knows host 3, owning 198.18.3.0/24.
fn connected_pair(now: Instant) -> (FakeDevice, FakeDevice) {
    let mut one = device(
        1,
        now,
        vec![
            peer(2, Some(underlay(2)), &["198.18.2.0/24"]),
            peer(3, Some(underlay(3)), &["198.18.3.0/24"]),
        ],
    );
    let mut two = device(2, now, vec![peer(1, Some(underlay(1)), &["198.18.1.0/24"])]);
    // A packet for host 2 starts the handshake; it waits for the session.
    let first = ipv4([198, 18, 1, 1], [198, 18, 2, 7], 100);
    one.tun.to_read.push_back(first.clone());
    one.drain_tun(now).unwrap();
    assert_eq!(one.socket.batches.len(), 1);
    let (to, initiation) = &one.socket.batches[0][0];
    assert_eq!(
        (*to, initiation.len(), initiation[0]),
        (underlay(2), INITIATION_LEN, 1)
    );
    assert_eq!(deliver(&mut one, underlay(1), &mut two, underlay(2)), 1);
    two.drain_socket(now);
    assert_eq!(deliver(&mut two, underlay(2), &mut one, underlay(1)), 1);
    // The response completes it, and the waiting packet goes.
    one.drain_socket(now);
    assert_eq!(deliver(&mut one, underlay(1), &mut two, underlay(2)), 1);
    two.drain_socket(now);
    assert_eq!(two.tun.written, [first]);
    two.tun.written.clear();
    two.socket.batches.clear();
    (one, two)
}

#[test]
fn a_packet_from_the_tun_device_reaches_its_peer_sealed() {
    let now = Instant::now();
    let (mut one, mut two) = connected_pair(now);
    let packet = ipv4([198, 18, 1, 1], [198, 18, 2, 9], 1000);
    one.tun.to_read.push_back(packet.clone());
    one.drain_tun(now).unwrap();
    // One batch, one datagram: a data message to host 2, not host 3, and
    // nothing of the packet in the clear.
    let [batch] = one.socket.batches.as_slice() else {
        panic!("{} batches", one.socket.batches.len());
    };
    let [(to, datagram)] = batch.as_slice() else {
        panic!("{} datagrams", batch.len());
    };
    assert_eq!(*to, underlay(2));
    assert_eq!(datagram[0], 4);
    assert_eq!(
        datagram.len(),
        one.interface.engine().encapsulated_len(packet.len())
    );
    assert!(!datagram.windows(16).any(|window| window == [0xAB; 16]));
    deliver(&mut one, underlay(1), &mut two, underlay(2));
    two.drain_socket(now);
    assert_eq!(two.tun.written, [packet]);
    // A packet to an address no peer owns goes nowhere, and is counted.
    one.tun
        .to_read
        .push_back(ipv4([198, 18, 1, 1], [198, 18, 9, 9], 10));
    one.drain_tun(now).unwrap();
    assert!(one.socket.batches.is_empty());
    assert_eq!(one.drops.no_route, 1);
}

#[test]
fn a_packet_from_outside_its_peers_allowed_ips_is_dropped_and_counted() {
    let now = Instant::now();
    let (mut one, mut two) = connected_pair(now);
    // Host 2 sends from an address no peer owns, then from host 3's, then
    // from its own: host 1 takes only the last.
    let stray = ipv4([198, 18, 9, 9], [198, 18, 1, 1], 40);
    let spoofed = ipv4([198, 18, 3, 5], [198, 18, 1, 1], 40);
    let own = ipv4([198, 18, 2, 5], [198, 18, 1, 1], 40);
    // Sealed through the engine (host 2's device would route these by
    // destination alike); the datagrams are what the wire carries.
    let mut sealed = Vec::new();
    for packet in [&stray, &spoofed, &own] {
        let mut out = vec![0; 1600];
        let peer = two
            .interface
            .engine()
            .peer_id(&key(1).public_key())
            .unwrap();
        let Ok(Encapsulated::Sealed { len }) = two
            .interface
            .engine_mut()
            .encapsulate(now, peer, packet, &mut out)
        else {
            panic!("not sealed");
        };
        out.truncate(len);
        sealed.push(out);
    }
    for datagram in sealed {
        one.socket.inbox.push_back((underlay(2), datagram));
    }
    one.drain_socket(now);
    assert_eq!(one.tun.written, [own]);
    assert_eq!(one.drops.not_allowed_source, 2);
    assert_eq!(one.drops.datagrams, DatagramDrops::default());
}

#[test]
fn a_burst_of_handshake_initiations_leaves_as_one_batched_send() {
    let now = Instant::now();
    let peers = (0..50u8)
        .map(|index| {
            let endpoint = SocketAddr::from(([198, 18, 1, index], PORT));
            peer(
                index + 10,
                Some(endpoint),
                &[&format!("198.19.{index}.0/24")],
            )
        })
        .collect();
    let mut one = device(1, now, peers);
    for index in 0..50 {
        one.tun
            .to_read
            .push_back(ipv4([198, 18, 0, 1], [198, 19, index, 1], 20));
    }
    one.drain_tun(now).unwrap();
    let [batch] = one.socket.batches.as_slice() else {
        panic!("{} sends", one.socket.batches.len());
    };
    assert_eq!(batch.len(), 50);
    let mut destinations: Vec<SocketAddr> = batch.iter().map(|(to, _)| *to).collect();
    destinations.sort();
    destinations.dedup();
    assert_eq!(destinations.len(), 50);
    assert!(
        batch
            .iter()
            .all(|(_, datagram)| datagram.len() == INITIATION_LEN && datagram[0] == 1)
    );
}

#[test]
fn a_burst_of_handshake_responses_leaves_in_one_batched_send_a_turn() {
    let now = Instant::now();
    let unix_now = Duration::from_secs(1_700_000_000);
    let peers = (0..50u8)
        .map(|index| peer(index + 10, None, &[&format!("198.19.{index}.0/24")]))
        .collect();
    let mut one = device(1, now, peers);
    // Fifty hosts initiate at once; each is an engine of its own.
    for index in 0..50u8 {
        let rng = ChaCha20Rng::seed_from_u64(u64::from(index));
        let mut initiator = Engine::new(key(index + 10), rng, now, unix_now);
        let mut config = PeerConfig::new(key(1).public_key());
        config.endpoint = Some(underlay(1));
        let id = initiator.add_peer(now, config).unwrap();
        initiator.connect(now, id).unwrap();
        let mut buf = [0; 256];
        let transmit = initiator.poll_transmit(now, &mut buf).unwrap();
        let from = SocketAddr::from((Ipv4Addr::new(198, 18, 1, index), PORT));
        one.socket
            .inbox
            .push_back((from, buf[..transmit.len].to_vec()));
    }
    // Each turn answers a budget of them in one batched send, until all
    // are answered.
    let mut turns = 0;
    loop {
        one.drain_socket(now);
        turns += 1;
        if !one.socket_has_work() {
            break;
        }
    }
    assert_eq!(turns, 50usize.div_ceil(HANDSHAKE_BUDGET));
    assert_eq!(one.socket.batches.len(), turns);
    assert!(
        one.socket
            .batches
            .iter()
            .all(|batch| batch.len() <= HANDSHAKE_BUDGET)
    );
    let responses: Vec<&Vec<u8>> = one
        .socket
        .batches
        .iter()
        .flatten()
        .map(|(_, d)| d)
        .collect();
    assert_eq!(responses.len(), 50);
    assert!(
        responses
            .iter()
            .all(|datagram| datagram.len() == RESPONSE_LEN && datagram[0] == 2)
    );
}

#[test]
fn segment_layout_reads_the_headers_of_a_super_packet() {
    let hdr = |gso_type, gso_size| VirtioNetHdr {
        gso_type,
        gso_size,
        ..VirtioNetHdr::NONE
    };
    let (src, dst) = ([198, 18, 0, 1], [198, 18, 0, 2]);
    let udp = ipv4(src, dst, 8 + 2500);
    assert_eq!(
        segment_layout(&hdr(GsoType::UdpL4, 1000), &udp),
        Some((20 + 8 + 1000, 3))
    );
    assert_eq!(
        segment_layout(&hdr(GsoType::None, 0), &udp),
        Some((udp.len(), 1))
    );
    // TCP with 12 bytes of options: a data offset of 8 words.
    let mut tcp = ipv4(src, dst, 32 + 2500);
    tcp[9] = 6;
    tcp[20 + 12] = 8 << 4;
    assert_eq!(
        segment_layout(&hdr(GsoType::TcpV4, 1000), &tcp),
        Some((20 + 32 + 1000, 3))
    );
    assert_eq!(
        segment_layout(&hdr(GsoType::TcpV4, 4000), &tcp),
        Some((tcp.len(), 1))
    );
    // A data offset under 20 bytes, or a packet cut short of its length
    // field: no layout.
    let mut short_offset = tcp.clone();
    short_offset[20 + 12] = 4 << 4;
    assert_eq!(
        segment_layout(&hdr(GsoType::TcpV4, 1000), &short_offset),
        None
    );
    assert_eq!(
        segment_layout(&hdr(GsoType::TcpV4, 1000), &tcp[..1000]),
        None
    );
}

/// An initiation to `to` with a valid `mac1` and random everything else,
/// as a flood makes them: it costs a responder not under load its
/// Diffie-Hellman operations before it fails.
fn flood_initiation(to: &PublicKey, rng: &mut ChaCha20Rng) -> Vec<u8> {
    let mut message = vec![0; INITIATION_LEN];
    message[0] = 1;
    rng.fill_bytes(&mut message[4..MAC1_OFFSET]);
    let key = blake2s::hash(&[b"mac1----", to.as_bytes()]);
    let mac1 = blake2s::mac(&key, &[&message[..MAC1_OFFSET]]);
    message[MAC1_OFFSET..MAC1_OFFSET + 16].copy_from_slice(&mac1);
    message
}

/// Where `mac1` starts in an initiation.
const MAC1_OFFSET: usize = INITIATION_LEN - 32;

/// A spoofed source: one of many addresses in 198.18.0.0/15.
fn spoofed(n: usize) -> SocketAddr {
    let [_, _, high, low] = u32::try_from(n).unwrap().to_be_bytes();
    SocketAddr::from(([198, 19, high, low], 40_000))
}

/// Host 1 seals `packet` for host 2: the data datagram the wire carries.
fn sealed_for_two(one: &mut FakeDevice, now: Instant, packet: &[u8]) -> Vec<u8> {
    let engine = one.interface.engine_mut();
    let peer = engine.peer_id(&key(2).public_key()).unwrap();
    let mut out = vec![0; 1600];
    let Ok(Encapsulated::Sealed { len }) = engine.encapsulate(now, peer, packet, &mut out) else {
        panic!("not sealed");
    };
    out.truncate(len);
    out
}

#[test]
fn a_handshake_flood_puts_the_device_under_load_and_data_still_flows() {
    let now = Instant::now();
    let (mut one, mut two) = connected_pair(now);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    // More initiations than the queue holds, then a packet of the session.
    let flood = QUEUE_CAPACITY + 500;
    for n in 0..flood {
        let initiation = flood_initiation(&key(2).public_key(), &mut rng);
        two.socket.inbox.push_back((spoofed(n), initiation));
    }
    let packet = ipv4([198, 18, 1, 1], [198, 18, 2, 9], 200);
    let datagram = sealed_for_two(&mut one, now, &packet);
    two.socket.inbox.push_back((underlay(1), datagram));
    // Turn by turn, the packet reaches the TUN device as soon as its
    // datagram is read, while the handshake queue is still full.
    let mut turns = 0;
    loop {
        two.drain_socket(now);
        assert!(two.handshakes.len() <= QUEUE_CAPACITY);
        turns += 1;
        if !two.tun.written.is_empty() {
            break;
        }
        assert!(two.socket_has_work(), "the packet was lost");
    }
    assert_eq!(two.tun.written, [packet]);
    assert!(turns < 20, "{turns} turns");
    assert!(two.handshakes.len() > QUEUE_CAPACITY / 2);
    assert!(two.socket.inbox.is_empty());
    // The rest of the backlog is handled, under load: cookie replies, no
    // handshakes, to the spoofed sources.
    while two.socket_has_work() {
        two.drain_socket(now);
    }
    let drops = two.drops.datagrams;
    assert!(drops.handshake_queue_full > 0);
    assert!(drops.cookie_required > 0);
    assert_eq!(
        drops.handshake_queue_full + drops.cookie_required + drops.failed_authentication,
        u64::try_from(flood).unwrap()
    );
    assert_eq!(two.cookie_replies_sent, drops.cookie_required);
    let replies = two.socket.batches.iter().flatten();
    assert!(replies.clone().all(|(to, reply)| {
        reply.len() == COOKIE_REPLY_LEN && reply[0] == 3 && to.ip() != underlay(1).ip()
    }));
    assert_eq!(replies.count(), two.cookie_replies_sent as usize);
    // The queue overflowed in the first window: from the next turn on, the
    // socket sheds handshake messages without a cookie (one in two pass).
    // Under load for a second after the backlog went down, and while the
    // socket sheds: an initiation still gets a cookie reply. Once the
    // windows since were calm long enough, the socket sheds nothing, and
    // an initiation is handled again (and, this one being garbage, fails
    // its authentication).
    assert!(two.socket.shedding.is_empty());
    let initiation = flood_initiation(&key(2).public_key(), &mut rng);
    two.socket.inbox.push_back((spoofed(0), initiation.clone()));
    two.drain_socket(now + Duration::from_millis(999));
    let no_cookie_shed = ShedRates {
        no_cookie: 2,
        claimed_cookie: 1,
    };
    assert_eq!(two.socket.shedding, [no_cookie_shed]);
    assert_eq!(
        two.drops.datagrams.cookie_required,
        drops.cookie_required + 1
    );
    two.socket.inbox.push_back((spoofed(0), initiation));
    two.drain_socket(now + WINDOW * (CALM_WINDOWS + 1));
    assert_eq!(two.socket.shedding, [no_cookie_shed, ShedRates::NONE]);
    assert_eq!(
        two.drops.datagrams.cookie_required,
        drops.cookie_required + 1
    );
    assert_eq!(
        two.drops.datagrams.failed_authentication,
        drops.failed_authentication + 1
    );
}

#[test]
fn a_flood_of_forged_cookies_is_shed_by_its_own_rate() {
    let now = Instant::now();
    let (_one, mut two) = connected_pair(now);
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    // Initiations whose mac2 is random: each claims a cookie it does not
    // have, and the reserved room refuses those that find the queue full.
    for n in 0..QUEUE_CAPACITY + 500 {
        let mut initiation = flood_initiation(&key(2).public_key(), &mut rng);
        rng.fill_bytes(&mut initiation[INITIATION_LEN - 16..]);
        two.socket.inbox.push_back((spoofed(n), initiation));
    }
    two.drain_socket(now);
    while two.socket_has_work() {
        two.drain_socket(now);
    }
    let drops = two.drops.datagrams;
    assert!(drops.handshake_queue_full > 0);
    assert_eq!(
        drops.handshake_queue_full + drops.cookie_required + drops.failed_authentication,
        u64::try_from(QUEUE_CAPACITY + 500).unwrap()
    );
    assert!(two.socket.shedding.is_empty());
    // The next window sheds messages that claim a cookie, not the others:
    // a new peer's first initiation has no more to fear than before.
    two.drain_socket(now + WINDOW);
    assert_eq!(
        two.socket.shedding,
        [ShedRates {
            no_cookie: 1,
            claimed_cookie: 2
        }]
    );
}

#[test]
fn a_long_drain_is_cut_and_resumed() {
    let now = Instant::now();
    let (mut one, mut two) = connected_pair(now);
    // More packets than one drain of the TUN device takes.
    for n in 0..300 {
        one.tun
            .to_read
            .push_back(ipv4([198, 18, 1, 1], [198, 18, 2, 9], n));
    }
    one.drain_tun(now).unwrap();
    assert!(one.tun_pending);
    assert!(!one.tun.to_read.is_empty());
    while one.tun_pending {
        one.drain_tun(now).unwrap();
    }
    assert!(one.tun.to_read.is_empty());
    assert_eq!(deliver(&mut one, underlay(1), &mut two, underlay(2)), 300);
    // And more datagrams than one drain of the socket takes.
    two.drain_socket(now);
    assert!(two.socket_has_work());
    assert!(!two.socket.inbox.is_empty());
    while two.socket_has_work() {
        two.drain_socket(now);
    }
    assert_eq!(two.tun.written.len(), 300);
}

#[test]
fn a_full_handshake_queue_keeps_room_for_a_retry_with_a_cookie() {
    let now = Instant::now();
    let unix_now = Duration::from_secs(1_700_000_000);
    let mut two = device(2, now, vec![peer(1, None, &["198.18.1.0/24"])]);
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let mut initiator = Engine::new(key(1), ChaCha20Rng::seed_from_u64(1), now, unix_now);
    let mut config = PeerConfig::new(key(2).public_key());
    config.endpoint = Some(underlay(2));
    let id = initiator.add_peer(now, config).unwrap();
    let mut buf = [0; 256];
    let mut initiation = |initiator: &mut Engine, at: Instant| {
        let transmit = initiator.poll_transmit(at, &mut buf).unwrap();
        assert_eq!(buf[0], 1);
        buf[..transmit.len].to_vec()
    };
    // A flood puts host 2 under load: the initiation behind it gets a
    // cookie reply.
    initiator.connect(now, id).unwrap();
    let first = initiation(&mut initiator, now);
    for n in 0..300 {
        let flood = flood_initiation(&key(2).public_key(), &mut rng);
        two.socket.inbox.push_back((spoofed(n), flood));
    }
    two.socket.inbox.push_back((underlay(1), first));
    while two.socket_has_work() || !two.socket.inbox.is_empty() {
        two.drain_socket(now);
    }
    let reply = two
        .socket
        .batches
        .iter()
        .flatten()
        .find(|(to, _)| *to == underlay(1))
        .map(|(_, reply)| reply.clone())
        .expect("a cookie reply to host 1");
    assert_eq!(reply[0], 3);
    let mut reply = reply;
    initiator
        .handle_datagram(now, underlay(2), &mut reply)
        .unwrap();
    two.socket.batches.clear();
    // The flood goes on and fills the queue; host 1's retry, with the
    // cookie, still gets in, and is answered with a handshake.
    let later = now + Duration::from_secs(6);
    initiator.handle_timeout(later);
    let retry = initiation(&mut initiator, later);
    let mut n = 0;
    while two.handshakes.push(
        spoofed(n),
        &flood_initiation(&key(2).public_key(), &mut rng),
    ) {
        n += 1;
    }
    let full = two.drops.datagrams.handshake_queue_full;
    let flood = flood_initiation(&key(2).public_key(), &mut rng);
    two.socket.inbox.push_back((spoofed(n), flood));
    two.socket.inbox.push_back((underlay(1), retry));
    two.drain_socket(later);
    assert_eq!(two.drops.datagrams.handshake_queue_full, full + 1);
    assert_eq!(two.handshakes.len(), QUEUE_CAPACITY + 1 - HANDSHAKE_BUDGET);
    while two.socket_has_work() {
        two.drain_socket(later);
    }
    let answers: Vec<&Vec<u8>> = two
        .socket
        .batches
        .iter()
        .flatten()
        .filter(|(to, _)| *to == underlay(1))
        .map(|(_, datagram)| datagram)
        .collect();
    assert_eq!(answers.len(), 1);
    assert_eq!((answers[0].len(), answers[0][0]), (RESPONSE_LEN, 2));
}

/// An engine with key `byte` whose one peer is host 2, at its underlay
/// address: a host that initiates to host 2.
fn initiator(byte: u8, now: Instant) -> (Engine, PeerId) {
    let unix_now = Duration::from_secs(1_700_000_000);
    let rng = ChaCha20Rng::seed_from_u64(u64::from(byte));
    let mut engine = Engine::new(key(byte), rng, now, unix_now);
    let mut config = PeerConfig::new(key(2).public_key());
    config.endpoint = Some(underlay(2));
    let id = engine.add_peer(now, config).unwrap();
    (engine, id)
}

/// The initiation `initiator` sends next, at `at`.
fn next_initiation(initiator: &mut Engine, at: Instant) -> Vec<u8> {
    let mut buf = [0; 256];
    let transmit = initiator.poll_transmit(at, &mut buf).unwrap();
    assert_eq!((transmit.destination, buf[0]), (underlay(2), 1));
    buf[..transmit.len].to_vec()
}

/// What host 2 sent to `to`, taken out of its sent batches.
fn sent_to(two: &mut FakeDevice, to: SocketAddr) -> Vec<Vec<u8>> {
    let mut taken = Vec::new();
    for batch in &mut two.socket.batches {
        batch.retain(|(destination, datagram)| {
            let ours = *destination == to;
            if ours {
                taken.push(datagram.clone());
            }
            !ours
        });
    }
    taken
}

#[test]
fn a_host_with_a_cookie_cannot_keep_the_reserved_room_to_itself() {
    let now = Instant::now();
    let mut two = device(2, now, vec![peer(3, None, &["198.18.3.0/24"])]);
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    // Host 3 is host 2's peer; host 4, a rival, is anyone with a real
    // address: both can get a cookie for their own address.
    let (mut three, three_id) = initiator(3, now);
    let (mut rival, rival_id) = initiator(4, now);
    three.connect(now, three_id).unwrap();
    rival.connect(now, rival_id).unwrap();
    for n in 0..300 {
        let flood = flood_initiation(&key(2).public_key(), &mut rng);
        two.socket.inbox.push_back((spoofed(n), flood));
    }
    two.socket
        .inbox
        .push_back((underlay(3), next_initiation(&mut three, now)));
    two.socket
        .inbox
        .push_back((underlay(4), next_initiation(&mut rival, now)));
    while two.socket_has_work() || !two.socket.inbox.is_empty() {
        two.drain_socket(now);
    }
    for (engine, host) in [(&mut three, 3), (&mut rival, 4)] {
        let mut replies = sent_to(&mut two, underlay(host));
        assert_eq!(replies.len(), 1, "one cookie reply to host {host}");
        assert_eq!(replies[0][0], 3);
        engine
            .handle_datagram(now, underlay(2), &mut replies[0])
            .unwrap();
    }
    two.socket.batches.clear();
    // Both retry with their cookie. The rival sends its proven initiation
    // again and again, faster than host 2 handles handshakes, while the
    // spoofed flood keeps the queue full: a valid mac2 each time, from
    // the address its cookie is for.
    let later = now + Duration::from_secs(6);
    three.handle_timeout(later);
    rival.handle_timeout(later);
    let retry = next_initiation(&mut three, later);
    let proven = next_initiation(&mut rival, later);
    let mut n = 0;
    while two.handshakes.push(
        spoofed(n),
        &flood_initiation(&key(2).public_key(), &mut rng),
    ) {
        n += 1;
    }
    let rate_limited = two.drops.datagrams.rate_limited;
    for turn in 0..40 {
        for _ in 0..2 * HANDSHAKE_BUDGET {
            n += 1;
            let flood = flood_initiation(&key(2).public_key(), &mut rng);
            two.socket.inbox.push_back((spoofed(n), flood));
            two.socket.inbox.push_back((underlay(4), proven.clone()));
        }
        if turn == 20 {
            two.socket.inbox.push_back((underlay(3), retry.clone()));
        }
        two.drain_socket(later);
    }
    assert!(
        two.drops.datagrams.rate_limited > rate_limited,
        "the rival's flood is limited as it arrives"
    );
    while two.socket_has_work() {
        two.drain_socket(later);
    }
    // Host 3's retry got in, and is answered with a handshake response,
    // which completes host 3's handshake.
    let mut answers = sent_to(&mut two, underlay(3));
    assert_eq!(answers.len(), 1);
    assert_eq!((answers[0].len(), answers[0][0]), (RESPONSE_LEN, 2));
    three
        .handle_datagram(later, underlay(2), &mut answers[0])
        .unwrap();
    let stats = three.peer_stats(three_id).unwrap();
    assert!(stats.last_handshake.is_some());
}

mod firewall;
