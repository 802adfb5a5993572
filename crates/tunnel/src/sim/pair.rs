//! [`Pair`]: two engines, each the other's peer, on a virtual network
//! and a virtual clock.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sentrymesh_types::PrivateKey;

use crate::{Encapsulated, Engine, Error, KEEPALIVE_LEN, PeerConfig, PeerId, Received};

/// Where host `a` lives.
pub const ADDR_A: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 51820));
/// Where host `b` lives.
pub const ADDR_B: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 51820));
/// The wall-clock reading both engines are created with.
pub const UNIX_NOW: Duration = Duration::from_secs(1_700_000_000);
/// Room for any datagram the harness carries.
pub const BUF_LEN: usize = 2048;

/// The first byte of a handshake initiation.
pub const INITIATION: u8 = 1;
/// The first byte of a handshake response.
pub const RESPONSE: u8 = 2;
/// The first byte of a cookie reply.
pub const COOKIE_REPLY: u8 = 3;
/// The first byte of a data message (and of a keepalive).
pub const DATA: u8 = 4;

/// After this many delivery rounds without quiescence, `drive` gives up:
/// the engines are ping-ponging.
const MAX_DRIVE_ROUNDS: usize = 1000;
/// After this many timer steps within one `advance_to`, the timers are
/// firing in a loop.
const MAX_TIMER_STEPS: usize = 100_000;

/// What the network between the two hosts does to the datagrams it
/// carries, decided by the pair's seeded RNG: the same seed loses and
/// reorders the same datagrams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conditions {
    /// Out of 1000 datagrams, how many are lost on the way (recorded with
    /// [`Sent::dropped`] set).
    pub loss_per_mille: u16,
    /// Whether the datagrams in flight together arrive in a shuffled order.
    pub reorder: bool,
}

/// One of the two hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The host at 198.18.0.1, the initiator of [`Pair::handshake`].
    A,
    /// The host at 198.18.0.2.
    B,
}

impl Side {
    /// The other host.
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

/// A datagram a host sent, as recorded by the harness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Virtual time since the pair was made.
    pub at: Duration,
    /// The message type: the first byte.
    pub kind: u8,
    /// The whole datagram.
    pub bytes: Vec<u8>,
    /// Whether the network dropped it: the sender's `drop_outgoing`, or
    /// lost under the pair's [`Conditions`].
    pub dropped: bool,
}

impl Sent {
    /// Whether this is a keepalive: a data message with an empty payload.
    pub fn is_keepalive(&self) -> bool {
        self.kind == DATA && self.bytes.len() == KEEPALIVE_LEN
    }

    /// Whether this is a data message with a non-empty payload.
    pub fn is_data(&self) -> bool {
        self.kind == DATA && self.bytes.len() > KEEPALIVE_LEN
    }

    /// The index at bytes 4..8: the sender index of an initiation or a
    /// response, the receiver index of a cookie reply or a data message.
    ///
    /// # Panics
    ///
    /// If the datagram is shorter than 8 bytes (no message of the protocol
    /// is).
    pub fn index_at_4(&self) -> u32 {
        u32::from_le_bytes(self.bytes[4..8].try_into().expect("4 bytes"))
    }

    /// `(at, kind, len)`: what assertions compare.
    pub fn summary(&self) -> (Duration, u8, usize) {
        (self.at, self.kind, self.bytes.len())
    }
}

/// One host: an engine with the other host as its only peer. A clone is
/// an independent copy (see [`Pair`]).
#[derive(Clone)]
pub struct Host {
    /// The engine under test.
    pub engine: Engine,
    /// This host's UDP address.
    pub addr: SocketAddr,
    /// This host's private key (to build a twin of it).
    pub private_key: PrivateKey,
    /// The other host, as a peer of this engine.
    pub peer: PeerId,
    /// Every datagram this host sent, in order.
    pub sent: Vec<Sent>,
    /// Every inner packet this host received, with the virtual time.
    pub delivered: Vec<(Duration, Vec<u8>)>,
    /// Every datagram this host refused, with the virtual time.
    pub rejected: Vec<(Duration, Error)>,
    /// Drop every datagram this host sends (it still records them).
    pub drop_outgoing: bool,
    inbound: VecDeque<Vec<u8>>,
}

impl Host {
    /// What this host sent at or after `since`.
    pub fn sent_since(&self, since: Duration) -> Vec<&Sent> {
        self.sent.iter().filter(|s| s.at >= since).collect()
    }

    /// `summary()` of everything sent at or after `since`.
    pub fn summary_since(&self, since: Duration) -> Vec<(Duration, u8, usize)> {
        self.sent
            .iter()
            .filter(|s| s.at >= since)
            .map(Sent::summary)
            .collect()
    }

    /// The initiations this host sent.
    pub fn initiations(&self) -> Vec<&Sent> {
        self.sent.iter().filter(|s| s.kind == INITIATION).collect()
    }

    /// The last datagram of type `kind` this host sent.
    pub fn last_sent(&self, kind: u8) -> Option<&Sent> {
        self.sent.iter().rev().find(|s| s.kind == kind)
    }
}

/// Two engines that are each other's peer, a network between them and a
/// virtual clock.
///
/// A clone is an independent copy in the same state (keys, sessions,
/// timers, RNGs, datagrams in flight, virtual time): a fixture built once,
/// with its handshake, and copied for each case behaves as one built
/// afresh each time.
#[derive(Clone)]
pub struct Pair {
    /// The host at 198.18.0.1.
    pub a: Host,
    /// The host at 198.18.0.2.
    pub b: Host,
    /// Virtual time zero.
    pub epoch: Instant,
    /// The current virtual time.
    pub now: Instant,
    /// What the network does to datagrams; perfect unless a test sets it.
    pub conditions: Conditions,
    /// Draws the losses and the reordering of [`Pair::conditions`].
    network_rng: ChaCha8Rng,
}

impl Default for Pair {
    fn default() -> Self {
        Self::new()
    }
}

impl Pair {
    /// A pair from seed 0 where each knows the other's endpoint.
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// A pair whose keys and random draws come from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self::with_config(seed, |_, _| {})
    }

    /// A pair whose peer configurations `configure` may change first:
    /// `configure(a's view of b, b's view of a)`. By default each knows the
    /// other's endpoint and nothing else.
    ///
    /// # Panics
    ///
    /// If an engine refuses its peer's configuration.
    pub fn with_config(
        seed: u64,
        configure: impl FnOnce(&mut PeerConfig, &mut PeerConfig),
    ) -> Self {
        let mut keys = ChaCha8Rng::seed_from_u64(seed);
        let key_a = PrivateKey::generate(&mut keys);
        let key_b = PrivateKey::generate(&mut keys);
        let epoch = Instant::now();
        let mut a = Engine::new(
            key_a.clone(),
            ChaCha8Rng::seed_from_u64(seed.wrapping_mul(2).wrapping_add(1_000)),
            epoch,
            UNIX_NOW,
        );
        let mut b = Engine::new(
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
        let host = |engine, addr, private_key, peer| Host {
            engine,
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
            conditions: Conditions::default(),
            network_rng: ChaCha8Rng::seed_from_u64(seed.wrapping_mul(2).wrapping_add(1_002)),
        };
        // A configuration may have asked for output (a persistent keepalive).
        pair.drive();
        pair
    }

    /// A pair that completed a handshake at time zero, `a` the initiator.
    pub fn established() -> Self {
        let mut pair = Self::new();
        pair.handshake();
        pair
    }

    /// Has `a` connect to `b` now and checks that the handshake completed
    /// on both sides (`a`'s keepalive confirmed it to `b`).
    ///
    /// # Panics
    ///
    /// If the handshake did not complete at once (a lossy network, a
    /// configuration that makes the peers refuse each other).
    pub fn handshake(&mut self) {
        let (peer, now) = (self.a.peer, self.now);
        self.a.engine.connect(now, peer).expect("connect");
        self.drive();
        for host in [&self.a, &self.b] {
            let stats = host.engine.peer_stats(host.peer).expect("peer");
            assert_eq!(stats.last_handshake, Some(now), "handshake completed");
        }
    }

    /// The host on `side`.
    pub fn host(&mut self, side: Side) -> &mut Host {
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
    pub fn elapsed(&self) -> Duration {
        self.now - self.epoch
    }

    /// The instant at virtual time `at`.
    pub fn at(&self, at: Duration) -> Instant {
        self.epoch + at
    }

    // ----- the network ----------------------------------------------------

    /// Delivers datagrams both ways until neither engine has anything to
    /// send: after every input, every output is drained.
    ///
    /// # Panics
    ///
    /// If the engines keep answering each other forever.
    pub fn drive(&mut self) {
        for _ in 0..MAX_DRIVE_ROUNDS {
            self.drain(Side::A);
            self.drain(Side::B);
            if self.a.inbound.is_empty() && self.b.inbound.is_empty() {
                return;
            }
            self.deliver_inbound(Side::A);
            self.deliver_inbound(Side::B);
        }
        panic!("the engines did not go quiet after {MAX_DRIVE_ROUNDS} rounds");
    }

    /// Drains `side`'s `poll_transmit` onto the network.
    fn drain(&mut self, side: Side) {
        let mut buf = [0u8; BUF_LEN];
        loop {
            let now = self.now;
            let host = self.host(side);
            let Some(transmit) = host.engine.poll_transmit(now, &mut buf) else {
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

    /// Records a datagram `from` sent and puts it on the wire, unless the
    /// sender drops everything or the network loses it.
    fn transmit(&mut self, from: Side, bytes: Vec<u8>) {
        let at = self.elapsed();
        let lost = self.conditions.loss_per_mille > 0
            && self.network_rng.next_u32() % 1000 < u32::from(self.conditions.loss_per_mille);
        let (sender, receiver) = self.hosts(from);
        let dropped = sender.drop_outgoing || lost;
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
        if self.conditions.reorder {
            self.shuffle_inbound(to);
        }
        while let Some(mut datagram) = self.host(to).inbound.pop_front() {
            // A refusal is recorded in `rejected`; what the network carried
            // was sent by the other engine, so tests check that list.
            let _ = self.receive(to, &mut datagram);
        }
    }

    /// Shuffles what is in flight to `to` (Fisher–Yates, seeded).
    fn shuffle_inbound(&mut self, to: Side) {
        let (inbound, rng) = match to {
            Side::A => (&mut self.a.inbound, &mut self.network_rng),
            Side::B => (&mut self.b.inbound, &mut self.network_rng),
        };
        let inbound = inbound.make_contiguous();
        for i in (1..inbound.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            inbound.swap(i, j);
        }
    }

    /// Gives `datagram` to `to` as if from the other host, recording what
    /// became of it. Does not drive.
    fn receive(&mut self, to: Side, datagram: &mut [u8]) -> Result<Option<Vec<u8>>, Error> {
        let (at, now) = (self.elapsed(), self.now);
        let from = self.host(to.other()).addr;
        let host = self.host(to);
        match host.engine.handle_datagram(now, from, datagram) {
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
    pub fn deliver(&mut self, to: Side, datagram: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let mut datagram = datagram.to_vec();
        let result = self.receive(to, &mut datagram);
        self.drive();
        result
    }

    /// Gives `packet` to `from`'s `encapsulate`; a sealed datagram goes on
    /// the wire like any other. Then drives.
    ///
    /// # Panics
    ///
    /// If `from`'s engine refuses the packet.
    pub fn send(&mut self, from: Side, packet: &[u8]) -> Encapsulated {
        let (result, datagram) = self.encapsulate(from, packet);
        if let Some(datagram) = datagram {
            self.transmit(from, datagram);
        }
        self.drive();
        result
    }

    /// Seals every packet of `packets` at `from` and puts them on the wire
    /// together, as the daemon sends a batch, then drives: under
    /// [`Conditions::reorder`] they arrive in a shuffled order. Returns what
    /// became of each.
    ///
    /// # Panics
    ///
    /// If `from`'s engine refuses a packet.
    pub fn send_batch(&mut self, from: Side, packets: &[Vec<u8>]) -> Vec<Encapsulated> {
        let results = packets
            .iter()
            .map(|packet| {
                let (result, datagram) = self.encapsulate(from, packet);
                if let Some(datagram) = datagram {
                    self.transmit(from, datagram);
                }
                result
            })
            .collect();
        self.drive();
        results
    }

    /// Seals `packet` at `from` and hands back the datagram without sending
    /// it (the test decides its fate). Anything else `from` has to send
    /// (a handshake the seal triggered) goes out as usual.
    ///
    /// # Panics
    ///
    /// If `from` has no session to seal with.
    pub fn seal(&mut self, from: Side, packet: &[u8]) -> Vec<u8> {
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
        let mut out = vec![0u8; host.engine.encapsulated_len(packet.len())];
        let result = host
            .engine
            .encapsulate(now, host.peer, packet, &mut out)
            .expect("encapsulate");
        match result {
            Encapsulated::Sealed { len } => {
                let destination = host.engine.peer_endpoint(host.peer);
                assert_eq!(destination, Some(to), "sealed for the wrong address");
                out.truncate(len);
                (result, Some(out))
            }
            Encapsulated::Queued => (result, None),
        }
    }

    // ----- time -----------------------------------------------------------

    /// The earliest deadline of either engine.
    pub fn next_timeout(&self) -> Option<Instant> {
        [self.a.engine.poll_timeout(), self.b.engine.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Jumps to the next deadline of either engine, runs the timers of
    /// both and drives. Returns `false` (and does nothing) when no timer is
    /// armed.
    pub fn advance_to_next_timeout(&mut self) -> bool {
        let Some(deadline) = self.next_timeout() else {
            return false;
        };
        self.now = self.now.max(deadline);
        self.run_timers();
        true
    }

    /// Moves virtual time forward by `d`, stopping at every deadline on the
    /// way (`advance_to`).
    pub fn advance(&mut self, d: Duration) {
        self.advance_to(self.elapsed() + d);
    }

    /// Moves virtual time to `at` (since the epoch), stopping at every
    /// deadline up to and including `at` to run the timers and drive.
    ///
    /// # Panics
    ///
    /// If `at` is in the past, or the timers fire in a loop.
    pub fn advance_to(&mut self, at: Duration) {
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

    /// A fresh engine with `side`'s private key and the other host as its
    /// only peer: a second instance of the same identity, whose handshakes
    /// the other host takes for `side`'s. Its wall clock agrees with the
    /// pair's, so its initiations carry current timestamps.
    pub fn twin(&mut self, side: Side, seed: u64) -> (Engine, PeerId) {
        let (now, unix_now) = (self.now, UNIX_NOW + self.elapsed());
        let (host, other) = self.hosts(side);
        let mut engine = Engine::new(
            host.private_key.clone(),
            ChaCha8Rng::seed_from_u64(seed),
            now,
            unix_now,
        );
        let mut config = PeerConfig::new(*other.engine.public_key());
        config.endpoint = Some(other.addr);
        let peer = engine.add_peer(now, config).expect("add peer to twin");
        (engine, peer)
    }

    fn run_timers(&mut self) {
        let now = self.now;
        self.a.engine.handle_timeout(now);
        self.b.engine.handle_timeout(now);
        self.drive();
    }
}
