//! A `Pair` of sentrymesh endpoints joined by a virtual network, under
//! virtual time — quinn-proto's test harness, for WireGuard.
//!
//! Nothing here reads a clock or the OS's entropy: the clock is an
//! [`Instant`] that only moves when a test moves it, and every key and
//! random draw comes from a seeded [`ChaCha8Rng`]. A three-minute rekey
//! scenario runs in microseconds and the same seed gives the same bytes.
//!
//! ```text
//!      Host a (198.18.0.1:51820)                 Host b (198.18.0.2:51820)
//!   ┌────────────────────────────┐            ┌────────────────────────────┐
//!   │ Endpoint ── poll_transmit ─┼─ drive() ─►│ inbound ─► handle_datagram │
//!   │ handle_datagram ◄─ inbound ◄┼─ drive() ──┼─ poll_transmit ── Endpoint │
//!   └────────────────────────────┘            └────────────────────────────┘
//!   every datagram sent is recorded (`Host::sent`) with its virtual send
//!   time and type, and delivered unless the sender's `drop_outgoing` is set.
//! ```
// Each test crate uses a different part of the harness.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use sentrymesh_tunnel::{
    Encapsulated, Endpoint, Error, KEEPALIVE_LEN, PeerConfig, PeerId, PrivateKey, Received,
};

/// Where host `a` lives.
pub(crate) const ADDR_A: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 51820));
/// Where host `b` lives.
pub(crate) const ADDR_B: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 51820));
/// The wall-clock reading both endpoints are created with.
pub(crate) const UNIX_NOW: Duration = Duration::from_secs(1_700_000_000);
/// Room for any datagram the tests make.
pub(crate) const BUF_LEN: usize = 2048;

/// The first byte of a handshake initiation.
pub(crate) const INITIATION: u8 = 1;
/// The first byte of a handshake response.
pub(crate) const RESPONSE: u8 = 2;
/// The first byte of a cookie reply.
pub(crate) const COOKIE_REPLY: u8 = 3;
/// The first byte of a data message (and of a keepalive).
pub(crate) const DATA: u8 = 4;

/// After this many delivery rounds without quiescence, `drive` gives up:
/// the endpoints are ping-ponging.
const MAX_DRIVE_ROUNDS: usize = 1000;
/// After this many timer steps within one `advance_to`, the timers are
/// firing in a loop.
const MAX_TIMER_STEPS: usize = 100_000;

/// One of the two hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    A,
    B,
}

impl Side {
    /// The other host.
    pub(crate) fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

/// A datagram a host sent, as recorded by the harness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Virtual time since the pair was made.
    pub(crate) at: Duration,
    /// The message type: the first byte.
    pub(crate) kind: u8,
    /// The whole datagram.
    pub(crate) bytes: Vec<u8>,
    /// Whether the network dropped it (the sender's `drop_outgoing`).
    pub(crate) dropped: bool,
}

impl Sent {
    /// Whether this is a keepalive: a data message with an empty payload.
    pub(crate) fn is_keepalive(&self) -> bool {
        self.kind == DATA && self.bytes.len() == KEEPALIVE_LEN
    }

    /// Whether this is a data message with a non-empty payload.
    pub(crate) fn is_data(&self) -> bool {
        self.kind == DATA && self.bytes.len() > KEEPALIVE_LEN
    }

    /// The index at bytes 4..8: the sender index of an initiation or a
    /// response, the receiver index of a cookie reply or a data message.
    pub(crate) fn index_at_4(&self) -> u32 {
        u32::from_le_bytes(self.bytes[4..8].try_into().expect("4 bytes"))
    }

    /// `(at, kind, len)`: what assertions compare.
    pub(crate) fn summary(&self) -> (Duration, u8, usize) {
        (self.at, self.kind, self.bytes.len())
    }
}

/// One host: an endpoint with the other host as its only peer.
pub(crate) struct Host {
    /// The engine under test.
    pub(crate) endpoint: Endpoint,
    /// This host's UDP address.
    pub(crate) addr: SocketAddr,
    /// This host's private key (to build a twin of it).
    pub(crate) private_key: PrivateKey,
    /// The other host, as a peer of this endpoint.
    pub(crate) peer: PeerId,
    /// Every datagram this host sent, in order.
    pub(crate) sent: Vec<Sent>,
    /// Every inner packet this host received, with the virtual time.
    pub(crate) delivered: Vec<(Duration, Vec<u8>)>,
    /// Every datagram this host refused, with the virtual time.
    pub(crate) rejected: Vec<(Duration, Error)>,
    /// Drop every datagram this host sends (it still records them).
    pub(crate) drop_outgoing: bool,
    inbound: VecDeque<Vec<u8>>,
}

impl Host {
    /// What this host sent at or after `since`.
    pub(crate) fn sent_since(&self, since: Duration) -> Vec<&Sent> {
        self.sent.iter().filter(|s| s.at >= since).collect()
    }

    /// `summary()` of everything sent at or after `since`.
    pub(crate) fn summary_since(&self, since: Duration) -> Vec<(Duration, u8, usize)> {
        self.sent
            .iter()
            .filter(|s| s.at >= since)
            .map(Sent::summary)
            .collect()
    }

    /// The initiations this host sent.
    pub(crate) fn initiations(&self) -> Vec<&Sent> {
        self.sent.iter().filter(|s| s.kind == INITIATION).collect()
    }

    /// The last datagram of type `kind` this host sent.
    pub(crate) fn last_sent(&self, kind: u8) -> Option<&Sent> {
        self.sent.iter().rev().find(|s| s.kind == kind)
    }
}

/// Two endpoints that are each other's peer, a network between them and a
/// virtual clock.
pub(crate) struct Pair {
    /// The host at 198.18.0.1.
    pub(crate) a: Host,
    /// The host at 198.18.0.2.
    pub(crate) b: Host,
    /// Virtual time zero.
    pub(crate) epoch: Instant,
    /// The current virtual time.
    pub(crate) now: Instant,
}

impl Pair {
    /// A pair from seed 0 where each knows the other's endpoint.
    pub(crate) fn new() -> Self {
        Self::with_seed(0)
    }

    /// A pair whose keys and random draws come from `seed`.
    pub(crate) fn with_seed(seed: u64) -> Self {
        Self::with_config(seed, |_, _| {})
    }

    /// A pair whose peer configurations `configure` may change first:
    /// `configure(a's view of b, b's view of a)`. By default each knows the
    /// other's endpoint and nothing else.
    pub(crate) fn with_config(
        seed: u64,
        configure: impl FnOnce(&mut PeerConfig, &mut PeerConfig),
    ) -> Self {
        let mut keys = ChaCha8Rng::seed_from_u64(seed);
        let key_a = PrivateKey::generate(&mut keys);
        let key_b = PrivateKey::generate(&mut keys);
        let epoch = Instant::now();
        let mut a = Endpoint::new(
            key_a.clone(),
            ChaCha8Rng::seed_from_u64(seed.wrapping_mul(2).wrapping_add(1_000)),
            epoch,
            UNIX_NOW,
        );
        let mut b = Endpoint::new(
            key_b.clone(),
            ChaCha8Rng::seed_from_u64(seed.wrapping_mul(2).wrapping_add(1_001)),
            epoch,
            UNIX_NOW,
        );
        let mut a_to_b = PeerConfig::new(key_b.public_key());
        a_to_b.endpoint = Some(ADDR_B);
        let mut b_to_a = PeerConfig::new(key_a.public_key());
        b_to_a.endpoint = Some(ADDR_A);
        configure(&mut a_to_b, &mut b_to_a);
        let peer_b = a.add_peer(epoch, a_to_b).expect("add b to a");
        let peer_a = b.add_peer(epoch, b_to_a).expect("add a to b");
        let host = |endpoint, addr, private_key, peer| Host {
            endpoint,
            addr,
            private_key,
            peer,
            sent: Vec::new(),
            delivered: Vec::new(),
            rejected: Vec::new(),
            drop_outgoing: false,
            inbound: VecDeque::new(),
        };
        let mut pair = Self {
            a: host(a, ADDR_A, key_a, peer_b),
            b: host(b, ADDR_B, key_b, peer_a),
            epoch,
            now: epoch,
        };
        // A configuration may have asked for output (a persistent keepalive).
        pair.drive();
        pair
    }

    /// A pair that completed a handshake at time zero, `a` the initiator.
    pub(crate) fn established() -> Self {
        let mut pair = Self::new();
        pair.handshake();
        pair
    }

    /// Has `a` connect to `b` now and checks that the handshake completed
    /// on both sides (`a`'s keepalive confirmed it to `b`).
    pub(crate) fn handshake(&mut self) {
        let (peer, now) = (self.a.peer, self.now);
        self.a.endpoint.connect(now, peer).expect("connect");
        self.drive();
        for host in [&self.a, &self.b] {
            let stats = host.endpoint.peer_stats(host.peer).expect("peer");
            assert_eq!(stats.last_handshake, Some(now), "handshake completed");
        }
    }

    /// The host on `side`.
    pub(crate) fn host(&mut self, side: Side) -> &mut Host {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    fn hosts(&mut self, side: Side) -> (&mut Host, &mut Host) {
        match side {
            Side::A => (&mut self.a, &mut self.b),
            Side::B => (&mut self.b, &mut self.a),
        }
    }

    /// Virtual time since the pair was made.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.epoch
    }

    /// The instant at virtual time `at`.
    pub(crate) fn at(&self, at: Duration) -> Instant {
        self.epoch + at
    }

    // ----- the network ----------------------------------------------------

    /// Delivers datagrams both ways until neither endpoint has anything to
    /// send: after every input, every output is drained.
    ///
    /// # Panics
    ///
    /// If the endpoints keep answering each other forever.
    pub(crate) fn drive(&mut self) {
        for _ in 0..MAX_DRIVE_ROUNDS {
            self.drain(Side::A);
            self.drain(Side::B);
            if self.a.inbound.is_empty() && self.b.inbound.is_empty() {
                return;
            }
            self.deliver_inbound(Side::A);
            self.deliver_inbound(Side::B);
        }
        panic!("the endpoints did not go quiet after {MAX_DRIVE_ROUNDS} rounds");
    }

    /// Drains `side`'s `poll_transmit` onto the network.
    fn drain(&mut self, side: Side) {
        let mut buf = [0u8; BUF_LEN];
        loop {
            let now = self.now;
            let host = self.host(side);
            let Some(transmit) = host.endpoint.poll_transmit(now, &mut buf) else {
                return;
            };
            assert_eq!(
                transmit.destination,
                self.host(side.other()).addr,
                "{side:?} sent to the wrong address"
            );
            self.transmit(side, buf[..transmit.len].to_vec());
        }
    }

    /// Records a datagram `from` sent and puts it on the wire.
    fn transmit(&mut self, from: Side, bytes: Vec<u8>) {
        let at = self.elapsed();
        let (sender, receiver) = self.hosts(from);
        let dropped = sender.drop_outgoing;
        sender.sent.push(Sent {
            at,
            kind: bytes.first().copied().unwrap_or_default(),
            bytes: bytes.clone(),
            dropped,
        });
        if !dropped {
            receiver.inbound.push_back(bytes);
        }
    }

    fn deliver_inbound(&mut self, to: Side) {
        while let Some(mut datagram) = self.host(to).inbound.pop_front() {
            // A refusal is recorded in `rejected`; what the network carried
            // was sent by the other endpoint, so tests check that list.
            let _ = self.receive(to, &mut datagram);
        }
    }

    /// Gives `datagram` to `to` as if from the other host, recording what
    /// became of it. Does not drive.
    fn receive(&mut self, to: Side, datagram: &mut [u8]) -> Result<Option<Vec<u8>>, Error> {
        let (at, now) = (self.elapsed(), self.now);
        let from = self.host(to.other()).addr;
        let host = self.host(to);
        match host.endpoint.handle_datagram(now, from, datagram) {
            Ok(Received::Packet { peer, packet }) => {
                assert_eq!(peer, host.peer, "packet from an unexpected peer");
                host.delivered.push((at, packet.to_vec()));
                Ok(Some(packet.to_vec()))
            }
            Ok(Received::Control(peer)) => {
                assert_eq!(peer, host.peer, "control message from an unexpected peer");
                Ok(None)
            }
            Err(error) => {
                host.rejected.push((at, error));
                Err(error)
            }
        }
    }

    /// Hands `datagram` to `to` as if it came from the other host, then
    /// drives. Returns the inner packet, `None` for a control message.
    ///
    /// # Errors
    ///
    /// Why `to` refused it.
    pub(crate) fn deliver(&mut self, to: Side, datagram: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let mut datagram = datagram.to_vec();
        let result = self.receive(to, &mut datagram);
        self.drive();
        result
    }

    /// Gives `packet` to `from`'s `encapsulate`; a sealed datagram goes on
    /// the wire like any other. Then drives.
    pub(crate) fn send(&mut self, from: Side, packet: &[u8]) -> Encapsulated {
        let (result, datagram) = self.encapsulate(from, packet);
        if let Some(datagram) = datagram {
            self.transmit(from, datagram);
        }
        self.drive();
        result
    }

    /// Seals `packet` at `from` and hands back the datagram without sending
    /// it (the test decides its fate). Anything else `from` has to send
    /// (a handshake the seal triggered) goes out as usual.
    ///
    /// # Panics
    ///
    /// If `from` has no session to seal with.
    pub(crate) fn seal(&mut self, from: Side, packet: &[u8]) -> Vec<u8> {
        let (result, datagram) = self.encapsulate(from, packet);
        let Some(datagram) = datagram else {
            panic!("{from:?} could not seal: {result:?}");
        };
        self.drive();
        datagram
    }

    fn encapsulate(&mut self, from: Side, packet: &[u8]) -> (Encapsulated, Option<Vec<u8>>) {
        let now = self.now;
        let to = self.host(from.other()).addr;
        let host = self.host(from);
        let mut out = vec![0u8; host.endpoint.encapsulated_len(packet.len())];
        let result = host
            .endpoint
            .encapsulate(now, host.peer, packet, &mut out)
            .expect("encapsulate");
        match result {
            Encapsulated::Sealed { len } => {
                let destination = host.endpoint.peer_endpoint(host.peer);
                assert_eq!(destination, Some(to), "sealed for the wrong address");
                out.truncate(len);
                (result, Some(out))
            }
            Encapsulated::Queued => (result, None),
        }
    }

    // ----- time -----------------------------------------------------------

    /// The earliest deadline of either endpoint.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        [
            self.a.endpoint.poll_timeout(),
            self.b.endpoint.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Jumps to the next deadline of either endpoint, runs the timers of
    /// both and drives. Returns `false` (and does nothing) when no timer is
    /// armed.
    pub(crate) fn advance_to_next_timeout(&mut self) -> bool {
        let Some(deadline) = self.next_timeout() else {
            return false;
        };
        self.now = self.now.max(deadline);
        self.run_timers();
        true
    }

    /// Moves virtual time forward by `d`, stopping at every deadline on the
    /// way (`advance_to`).
    pub(crate) fn advance(&mut self, d: Duration) {
        self.advance_to(self.elapsed() + d);
    }

    /// Moves virtual time to `at` (since the epoch), stopping at every
    /// deadline up to and including `at` to run the timers and drive.
    ///
    /// # Panics
    ///
    /// If `at` is in the past, or the timers fire in a loop.
    pub(crate) fn advance_to(&mut self, at: Duration) {
        let target = self.at(at);
        assert!(target >= self.now, "time only moves forward");
        for _ in 0..MAX_TIMER_STEPS {
            match self.next_timeout() {
                Some(deadline) if deadline <= target => {
                    self.now = self.now.max(deadline);
                    self.run_timers();
                }
                _ => {
                    self.now = target;
                    return;
                }
            }
        }
        panic!("timers fired {MAX_TIMER_STEPS} times before {at:?}");
    }

    /// A fresh endpoint with `side`'s private key and the other host as its
    /// only peer: a second instance of the same identity, whose handshakes
    /// the other host takes for `side`'s. Its wall clock agrees with the
    /// pair's, so its initiations carry current timestamps.
    pub(crate) fn twin(&mut self, side: Side, seed: u64) -> (Endpoint, PeerId) {
        let (now, unix_now) = (self.now, UNIX_NOW + self.elapsed());
        let (host, other) = self.hosts(side);
        let mut endpoint = Endpoint::new(
            host.private_key.clone(),
            ChaCha8Rng::seed_from_u64(seed),
            now,
            unix_now,
        );
        let mut config = PeerConfig::new(*other.endpoint.public_key());
        config.endpoint = Some(other.addr);
        let peer = endpoint.add_peer(now, config).expect("add peer to twin");
        (endpoint, peer)
    }

    fn run_timers(&mut self) {
        let now = self.now;
        self.a.endpoint.handle_timeout(now);
        self.b.endpoint.handle_timeout(now);
        self.drive();
    }
}

/// An IPv4 packet of `len` bytes (at least 20) whose body is `tag`.
pub(crate) fn ipv4_packet(len: usize, tag: u8) -> Vec<u8> {
    assert!(len >= 20, "an IPv4 header is 20 bytes");
    let mut packet = vec![tag; len];
    packet[0] = 0x45;
    packet[1] = 0;
    packet[2..4].copy_from_slice(&u16::try_from(len).expect("IPv4 length").to_be_bytes());
    packet
}
