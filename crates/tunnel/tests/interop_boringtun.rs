//! Interoperability with boringtun 0.7.1 (`boringtun::noise::Tunn`), in process.
//!
//! Each test builds a [`Pair`]: our [`Engine`] with one peer, and a
//! boringtun tunnel holding the matching keys, joined by in-memory queues.
//! Time is virtual on both sides: the pair moves our `now` and boringtun's
//! thread-local `mock_instant::MockClock` together, jumping to our next timer
//! or to boringtun's next 250 ms timer tick, so a two-minute rekey runs in
//! microseconds. Every datagram either side sends is logged with its virtual
//! send time; the tests assert on that log and on what each side handed to
//! its TUN device.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use Kind::*;
use Side::{Ours, Theirs};
use blake2::digest::consts::U16;
use blake2::digest::{Digest, Mac};
use blake2::{Blake2s256, Blake2sMac};
use boringtun::noise::errors::WireGuardError;
use boringtun::noise::rate_limiter::RateLimiter as BoringtunRateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use mock_instant::MockClock;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use sentrymesh_tunnel::sim::ipv4_packet;
use sentrymesh_tunnel::timers::{
    KEEPALIVE_TIMEOUT, REKEY_AFTER_TIME, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX,
};
use sentrymesh_tunnel::{
    COOKIE_REPLY_LEN, DATA_HEADER_LEN, DATA_OVERHEAD, Encapsulated, Engine, Error, KEEPALIVE_LEN,
    PeerConfig, PeerId, PeerStats, PresharedKey, Received, Transmit,
};
use sentrymesh_types::{PrivateKey, PublicKey};

const PSK: [u8; 32] = [0x5a; 32];
const OTHER_PSK: [u8; 32] = [0xa5; 32];

// ----- handshakes -------------------------------------------------------

#[test]
fn handshake_we_initiate() {
    handshake_carries_the_first_packet(Ours, None);
}

#[test]
fn handshake_we_initiate_with_psk() {
    handshake_carries_the_first_packet(Ours, Some(PSK));
}

#[test]
fn handshake_they_initiate() {
    handshake_carries_the_first_packet(Theirs, None);
}

#[test]
fn handshake_they_initiate_with_psk() {
    handshake_carries_the_first_packet(Theirs, Some(PSK));
}

/// A packet sent with no session starts a handshake; the handshake
/// completes in the protocol's order and the packet follows it.
fn handshake_carries_the_first_packet(initiator: Side, psk: Option<[u8; 32]>) {
    let responder = initiator.other();
    let mut pair = Pair::new(Config {
        our_psk: psk,
        their_psk: psk,
        ..Config::default()
    });
    let first = ipv4_packet(84, 1);
    pair.send(initiator, &first);
    pair.run();

    let mut expected = vec![(initiator, Initiation), (responder, Response)];
    if initiator == Theirs {
        // boringtun confirms with a keepalive, then sends its queue; we
        // confirm with the queued packet itself.
        expected.push((Theirs, Keepalive));
    }
    expected.push((initiator, Data));
    assert_eq!(pair.kinds(), expected);
    assert_eq!(pair.delivered(responder), [first]);
    assert_eq!(pair.stats().last_handshake, Some(pair.now()));

    let reply = ipv6_packet(120, 2);
    pair.send(responder, &reply);
    pair.run();
    assert_eq!(pair.delivered(initiator), [reply]);
    pair.assert_no_errors();
}

/// Both sides initiate in the same instant, with our static key the greater
/// and then the smaller. Greater: we keep our initiation (and send it again)
/// instead of answering theirs, and boringtun answers ours. Smaller: we
/// answer theirs, and boringtun, which keeps its own initiation apart from
/// the one it answers, completes with our response. A session forms at
/// once either way.
#[test]
fn simultaneous_initiations_with_boringtun() {
    let mut seen = [false; 2];
    for seed in 0..64 {
        let mut pair = Pair::new(Config {
            seed: Some(seed),
            ..Config::default()
        });
        let ours = *pair.engine.public_key().as_bytes();
        let ours_greater = ours > *pair.their_public().as_bytes();
        if std::mem::replace(&mut seen[usize::from(ours_greater)], true) {
            continue;
        }
        let start = pair.now();
        pair.engine.connect(start, pair.peer).unwrap();
        pair.drain_ours();
        let mut buf = [0u8; BUF_LEN];
        match pair.tunn.format_handshake_initiation(&mut buf, false) {
            TunnResult::WriteToNetwork(d) => pair.record(Theirs, d.to_vec()),
            other => panic!("boringtun initiation: {other:?}"),
        }
        pair.run();
        assert_eq!(
            pair.stats().last_handshake,
            Some(start),
            "ours greater: {ours_greater}: {:?}",
            pair.kinds()
        );
        for (from, to) in [(Ours, Theirs), (Theirs, Ours)] {
            let packet = ipv4_packet(84, 3);
            pair.send(from, &packet);
            pair.run();
            assert_eq!(pair.delivered(to).last(), Some(&packet), "seed {seed}");
        }
    }
    assert_eq!(seen, [true, true], "both orders of keys were tried");
}

#[test]
fn mismatched_psk_fails_when_we_initiate() {
    mismatched_psk_never_completes(Ours);
}

#[test]
fn mismatched_psk_fails_when_they_initiate() {
    mismatched_psk_never_completes(Theirs);
}

/// The preshared key enters the handshake in the response (Noise `psk2`):
/// the responder answers, the initiator refuses the answer, every retry
/// fails the same way and no data ever moves.
fn mismatched_psk_never_completes(initiator: Side) {
    let mut pair = Pair::new(Config {
        our_psk: Some(PSK),
        their_psk: Some(OTHER_PSK),
        ..Config::default()
    });
    pair.send(initiator, &ipv4_packet(60, 3));
    pair.run();
    pair.advance(Duration::from_secs(20));

    let initiations = pair.sent(initiator, Initiation).len();
    assert!(initiations >= 3, "retried: {:?}", pair.kinds());
    let responses = pair.sent(initiator.other(), Response).len();
    assert_eq!(responses, initiations);
    let (refusals, expected) = match initiator {
        Ours => (debug_all(&pair.our_errors), "Decryption"),
        Theirs => (debug_all(&pair.their_errors), "InvalidAeadTag"),
    };
    assert_eq!(refusals, vec![expected; initiations]);
    assert_eq!(pair.stats().last_handshake, None);
    assert!(pair.sent(Ours, Data).is_empty() && pair.sent(Theirs, Data).is_empty());
    assert!(pair.delivered(Ours).is_empty() && pair.delivered(Theirs).is_empty());
    assert_eq!(pair.send_ours(&ipv4_packet(60, 4)), Encapsulated::Queued);
}

// ----- data -------------------------------------------------------------

#[test]
fn data_of_many_sizes_arrives_intact_both_ways() {
    let mut pair = Pair::established(Config::default(), Ours);
    let before = pair.stats();
    // Around multiples of 16 (the padding unit), up to WireGuard's usual MTU.
    let v4 = [20, 21, 33, 48, 49, 576, 1409, 1419, 1420].map(|len| (ipv4_packet as Build, len));
    let v6 = [40, 41, 49, 64, 65, 1280, 1409, 1420].map(|len| (ipv6_packet as Build, len));
    let (mut packets, mut replies) = (Vec::new(), Vec::new());
    for (i, (build, len)) in v4.into_iter().chain(v6).enumerate() {
        let packet = build(len, i as u8);
        let sealed = pair.seal_ours(&packet, i % 2 == 1);
        assert!(matches!(sealed, Encapsulated::Sealed { .. }), "{sealed:?}");
        let on_wire = pair.wire.last().unwrap().bytes.len();
        assert_eq!(on_wire, DATA_OVERHEAD + len.div_ceil(16) * 16, "padded");
        packets.push(packet);

        let reply = build(len, 0x80 | i as u8);
        pair.send_theirs(&reply);
        replies.push(reply);
        pair.run();
    }
    assert_eq!(pair.delivered(Theirs), packets);
    assert_eq!(pair.delivered(Ours), replies);
    pair.assert_no_errors();

    // The counters are those of `wg show`: whole datagrams, handshake included.
    let stats = pair.stats();
    assert!(stats.tx_bytes > before.tx_bytes && stats.rx_bytes > before.rx_bytes);
    assert_eq!(stats.tx_bytes, pair.bytes_sent(Ours));
    assert_eq!(stats.rx_bytes, pair.bytes_sent(Theirs));
}

// ----- keepalives -------------------------------------------------------

#[test]
fn keepalive_answers_their_data_after_ten_silent_seconds() {
    let mut pair = Pair::established(Config::default(), Ours);
    pair.advance(Duration::from_secs(1));
    let packet = ipv4_packet(200, 5);
    pair.send_theirs(&packet);
    pair.run();
    assert_eq!(pair.delivered(Ours), [packet]);
    let received_at = pair.elapsed;

    pair.advance(Duration::from_secs(30));
    let keepalives: Vec<Duration> = (pair.sent(Ours, Keepalive).iter())
        .map(|s| s.at)
        .filter(|&at| at > received_at)
        .collect();
    assert_eq!(keepalives, [received_at + KEEPALIVE_TIMEOUT]);
    // boringtun took it as a sign of life: having sent data and heard
    // nothing for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT, it would have started a
    // new handshake.
    assert!(pair.sent(Theirs, Initiation).is_empty());
    pair.assert_no_errors();
}

#[test]
fn persistent_keepalive_fires_at_its_interval() {
    let interval = Duration::from_secs(25);
    let mut pair = Pair::new(Config {
        persistent_keepalive: Some(interval),
        ..Config::default()
    });
    // As in the kernel, setting it starts a handshake at once, so the peer
    // learns where we are.
    pair.run();
    let handshake = [(Ours, Initiation), (Theirs, Response), (Ours, Keepalive)];
    assert_eq!(pair.kinds(), handshake);

    pair.advance(Duration::from_secs(80));
    let later: Vec<_> = (pair.wire[3..].iter())
        .map(|s| (s.from, s.kind(), s.at))
        .collect();
    let expected: Vec<_> = (1..=3).map(|n| (Ours, Keepalive, interval * n)).collect();
    assert_eq!(later, expected);
    pair.assert_no_errors();
}

// ----- cookies ----------------------------------------------------------

#[test]
fn under_load_we_make_them_prove_their_address() {
    let mut pair = Pair::new(Config::default());
    pair.engine.set_under_load(true);
    let packet = ipv4_packet(60, 6);
    pair.send_theirs(&packet);
    let initiation = pair.take_in_flight(Ours);
    assert_eq!(pair.inject(initiation.clone()), Err(Error::CookieRequired));
    let reply = pair.wire.last().unwrap().clone();
    assert_eq!((reply.from, reply.kind()), (Ours, CookieReply));
    assert_eq!(reply.bytes.len(), COOKIE_REPLY_LEN);
    assert_eq!(reply.bytes[4..8], initiation[4..8], "to their index");
    pair.run();
    assert!(pair.their_errors.is_empty(), "boringtun takes the cookie");
    assert_eq!(pair.stats().last_handshake, None);

    // boringtun retries after REKEY_TIMEOUT, now with mac2.
    pair.advance(REKEY_TIMEOUT + Duration::from_secs(1));
    let initiations = pair.sent(Theirs, Initiation);
    assert_eq!(initiations.len(), 2);
    assert_eq!(initiations[0].mac2(), [0; 16]);
    assert_ne!(initiations[1].mac2(), [0; 16]);
    assert_eq!(initiations[1].at - initiations[0].at, REKEY_TIMEOUT);
    let after_cookie = pair.kinds().split_off(2);
    let expected = [
        (Theirs, Initiation),
        (Ours, Response),
        (Theirs, Keepalive),
        (Theirs, Data),
    ];
    assert_eq!(after_cookie, expected);
    assert_eq!(pair.our_errors, [Error::CookieRequired]);
    assert_eq!(pair.delivered(Ours), [packet]);
    assert!(pair.stats().last_handshake.is_some());
}

#[test]
fn under_load_they_make_us_prove_our_address() {
    let mut pair = Pair::new(Config {
        their_rate_limit: Some(0),
        ..Config::default()
    });
    let packet = ipv4_packet(60, 7);
    assert_eq!(pair.send_ours(&packet), Encapsulated::Queued);
    let initiation = pair.take_in_flight(Theirs);
    pair.deliver_to_theirs(initiation);
    assert_eq!(pair.kinds(), [(Ours, Initiation), (Theirs, CookieReply)]);
    let reply = pair.take_in_flight(Ours);
    // A reply that does not decrypt under our mac1 is refused.
    assert_eq!(pair.inject(flip(&reply, 40)), Err(Error::Decryption));
    assert_eq!(pair.inject(reply), Ok(None));
    pair.our_errors.clear();

    // Our retry after REKEY_TIMEOUT (and jitter) carries mac2 and is answered.
    pair.advance(REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX);
    let initiations = pair.sent(Ours, Initiation);
    assert_eq!(initiations.len(), 2);
    assert_eq!(initiations[0].mac2(), [0; 16]);
    assert_ne!(initiations[1].mac2(), [0; 16]);
    let gap = initiations[1].at - initiations[0].at;
    let jitter = gap.checked_sub(REKEY_TIMEOUT);
    assert!(
        jitter.is_some_and(|j| j < REKEY_TIMEOUT_JITTER_MAX),
        "{gap:?}"
    );
    let after_cookie = pair.kinds().split_off(2);
    assert_eq!(
        after_cookie,
        [(Ours, Initiation), (Theirs, Response), (Ours, Data)]
    );
    assert_eq!(pair.delivered(Theirs), [packet]);
    assert!(pair.stats().last_handshake.is_some());
    pair.assert_no_errors();
}

// ----- rekeying ---------------------------------------------------------

#[test]
fn rekey_after_two_minutes_when_we_initiated() {
    rekey_after_two_minutes(Ours);
}

#[test]
fn rekey_after_two_minutes_when_they_initiated() {
    rekey_after_two_minutes(Theirs);
}

/// With a packet each way every second, the initiator of the session starts
/// a new handshake once it is REKEY_AFTER_TIME old; both sides move to the
/// new session (a new receiver index on the wire) and no packet is lost.
fn rekey_after_two_minutes(initiator: Side) {
    let mut pair = Pair::established(Config::default(), initiator);
    let (mut to_them, mut to_us) = (Vec::new(), Vec::new());
    for second in 1..=130 {
        pair.advance(Duration::from_secs(1));
        to_them.push(ipv4_packet(100 + second, second as u8));
        pair.send_ours(to_them.last().unwrap());
        to_us.push(ipv6_packet(100 + second, !(second as u8)));
        pair.send_theirs(to_us.last().unwrap());
        pair.run();
    }
    assert_eq!(pair.delivered(Theirs), to_them);
    assert_eq!(pair.delivered(Ours), to_us);
    pair.assert_no_errors();

    let initiations = pair.sent(initiator, Initiation);
    assert_eq!(initiations.len(), 2, "{:?}", pair.kinds());
    let (started, rekeyed) = (initiations[0].at, initiations[1].at);
    let late = (rekeyed - started).checked_sub(REKEY_AFTER_TIME);
    assert!(late.is_some_and(|late| late <= Duration::from_secs(1)));
    assert!(pair.sent(initiator.other(), Initiation).is_empty());
    let last_handshake = pair.stats().last_handshake;
    assert!(last_handshake.is_some_and(|at| at >= pair.start + rekeyed));

    for side in [Ours, Theirs] {
        let data = pair.sent(side, Data);
        let mut sessions: Vec<u32> = data.iter().map(|s| s.receiver()).collect();
        sessions.dedup();
        assert_eq!(sessions.len(), 2, "{side:?} changed once: {sessions:x?}");
        let switched = data.iter().find(|s| s.receiver() == sessions[1]).unwrap();
        assert!(switched.at - rekeyed <= Duration::from_secs(1), "{side:?}");
    }
}

// ----- forgeries --------------------------------------------------------

#[test]
fn forged_response_is_rejected_and_the_real_one_completes() {
    let mut pair = Pair::new(Config::default());
    let packet = ipv4_packet(80, 8);
    pair.send_ours(&packet);
    let initiation = pair.take_in_flight(Theirs);
    pair.deliver_to_theirs(initiation);
    let genuine = pair.take_in_flight(Ours);
    let our_public = *pair.engine.public_key();

    // Any flipped bit before the MACs breaks mac1.
    assert_eq!(pair.inject(flip(&genuine, 20)), Err(Error::InvalidMac1));
    // With mac1 made valid again, the ephemeral key or the authenticated
    // empty payload fail.
    for offset in [20, 50] {
        let mut forged = flip(&genuine, offset);
        restamp_mac1(&mut forged, &our_public);
        assert_eq!(pair.inject(forged), Err(Error::Decryption), "{offset}");
    }
    assert_eq!(pair.stats().rx_bytes, 0, "forgeries are not counted");
    assert_eq!(pair.wire.len(), 2, "nor answered");

    assert_eq!(pair.inject(genuine.clone()), Ok(None));
    pair.run();
    assert_eq!(pair.delivered(Theirs), [packet]);
    assert_eq!(pair.inject(genuine), Err(Error::UnknownIndex), "used once");
    pair.assert_session_works(2);
}

#[test]
fn forged_initiation_is_rejected_and_the_real_one_completes() {
    let mut pair = Pair::new(Config::default());
    let packet = ipv4_packet(80, 9);
    pair.send_theirs(&packet);
    let genuine = pair.take_in_flight(Ours);
    let our_public = *pair.engine.public_key();

    assert_eq!(pair.inject(flip(&genuine, 100)), Err(Error::InvalidMac1));
    // Ephemeral key, encrypted static key, encrypted timestamp.
    for offset in [8, 60, 100] {
        let mut forged = flip(&genuine, offset);
        restamp_mac1(&mut forged, &our_public);
        assert_eq!(pair.inject(forged), Err(Error::Decryption), "{offset}");
    }
    assert_eq!(pair.stats(), PeerStats::default());
    assert_eq!(pair.wire.len(), 1, "forgeries are not answered");

    assert!(pair.inject(genuine.clone()).is_ok());
    pair.run();
    assert_eq!(pair.delivered(Ours), [packet]);
    let replayed = pair.inject(genuine);
    assert_eq!(replayed, Err(Error::ReplayedInitiation));
    pair.assert_session_works(2);
}

#[test]
fn forged_data_is_rejected_and_the_session_keeps_working() {
    let mut pair = Pair::established(Config::default(), Theirs);
    let packet = ipv4_packet(100, 10);
    pair.send_theirs(&packet);
    let genuine = pair.take_in_flight(Ours);
    let before = pair.stats();

    // Counter (part of the nonce), ciphertext, tag.
    for offset in [8, DATA_HEADER_LEN + 3, genuine.len() - 1] {
        let forged = flip(&genuine, offset);
        assert_eq!(pair.inject(forged), Err(Error::Decryption), "{offset}");
    }
    assert_eq!(pair.inject(flip(&genuine, 5)), Err(Error::UnknownIndex));
    let truncated = genuine[..KEEPALIVE_LEN - 1].to_vec();
    assert_eq!(pair.inject(truncated), Err(Error::Malformed));
    assert_eq!(pair.stats(), before, "forgeries change nothing");

    // The forgeries did not use up the genuine message's counter.
    assert_eq!(pair.inject(genuine.clone()), Ok(Some(packet)));
    assert_eq!(pair.inject(genuine), Err(Error::ReplayedCounter));
    pair.assert_session_works(3);
}

// ----- the harness ------------------------------------------------------

const OUR_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), 51820);
const THEIR_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)), 51821);
/// The Unix time our engine starts at.
const UNIX_START: Duration = Duration::from_secs(1_700_000_000);
/// boringtun's device runs its timers every 250 ms; so does the pair.
const BORINGTUN_TICK: Duration = Duration::from_millis(250);
/// Large enough for any datagram of these tests.
const BUF_LEN: usize = 2048;
/// More datagrams than this in one exchange means the sides never go quiet.
const MAX_EXCHANGE: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Ours = 0,
    Theirs = 1,
}

impl Side {
    fn other(self) -> Self {
        match self {
            Ours => Theirs,
            Theirs => Ours,
        }
    }
}

/// What a datagram is, by its type byte and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Initiation,
    Response,
    CookieReply,
    Keepalive,
    Data,
}

/// A datagram as it went on the wire.
#[derive(Debug, Clone)]
struct Sent {
    from: Side,
    /// Virtual time since the pair was made.
    at: Duration,
    bytes: Vec<u8>,
}

impl Sent {
    fn kind(&self) -> Kind {
        match (self.bytes[0], self.bytes.len()) {
            (1, _) => Initiation,
            (2, _) => Response,
            (3, _) => CookieReply,
            (4, KEEPALIVE_LEN) => Keepalive,
            (4, _) => Data,
            _ => panic!("not a WireGuard message: {:?}", self.bytes),
        }
    }

    /// The receiver index of a data message: the session it is sent under.
    fn receiver(&self) -> u32 {
        u32::from_le_bytes(self.bytes[4..8].try_into().unwrap())
    }

    /// The `mac2` of a handshake message.
    fn mac2(&self) -> &[u8] {
        &self.bytes[self.bytes.len() - 16..]
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Config {
    our_psk: Option<[u8; 32]>,
    their_psk: Option<[u8; 32]>,
    /// Our persistent keepalive interval.
    persistent_keepalive: Option<Duration>,
    /// boringtun's handshake limit per second with its own rate limiter,
    /// which nothing resets, so 0 means always under load. `None` for its
    /// default limiter.
    their_rate_limit: Option<u64>,
    /// The seed of both sides' keys; `None` for the one every other test
    /// uses.
    seed: Option<u64>,
}

/// Our engine and a boringtun tunnel, each the other's peer.
struct Pair {
    engine: Engine,
    peer: PeerId,
    tunn: Tunn,
    /// boringtun's static public key.
    their_public: PublicKey,
    start: Instant,
    elapsed: Duration,
    /// Datagrams on their way, by the side they go to.
    in_flight: [VecDeque<Vec<u8>>; 2],
    /// Every datagram sent, in order.
    wire: Vec<Sent>,
    /// Inner packets each side handed to its TUN device.
    delivered: [Vec<Vec<u8>>; 2],
    /// Why each side refused datagrams.
    our_errors: Vec<Error>,
    their_errors: Vec<WireGuardError>,
}

impl Pair {
    fn new(config: Config) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed.unwrap_or(7));
        let our_key = PrivateKey::generate(&mut rng);
        let our_public = x25519_dalek::PublicKey::from(*our_key.public_key().as_bytes());
        let their_key = x25519_dalek::StaticSecret::random_from_rng(&mut rng);
        let their_public = x25519_dalek::PublicKey::from(&their_key);

        let start = Instant::now();
        let mut engine = Engine::new(our_key, rng, start, UNIX_START);
        let psk = config.our_psk;
        let peer_config = PeerConfig {
            public_key: PublicKey::from_bytes(their_public.to_bytes()),
            preshared_key: psk.map_or_else(PresharedKey::none, PresharedKey::from_bytes),
            endpoint: Some(THEIR_ADDR),
            persistent_keepalive: config.persistent_keepalive,
        };
        let peer = engine.add_peer(start, peer_config).unwrap();
        let limiter = (config.their_rate_limit)
            .map(|limit| Arc::new(BoringtunRateLimiter::new(&their_public, limit)));
        let tunn = Tunn::new(their_key, our_public, config.their_psk, None, 1, limiter);
        let mut pair = Self {
            engine,
            peer,
            tunn,
            their_public: PublicKey::from_bytes(their_public.to_bytes()),
            start,
            elapsed: Duration::ZERO,
            in_flight: Default::default(),
            wire: Vec::new(),
            delivered: Default::default(),
            our_errors: Vec::new(),
            their_errors: Vec::new(),
        };
        pair.drain_ours();
        pair
    }

    /// A pair whose handshake, started by `initiator`, has completed.
    fn established(config: Config, initiator: Side) -> Self {
        let mut pair = Self::new(config);
        match initiator {
            Ours => {
                pair.engine.connect(pair.now(), pair.peer).unwrap();
                pair.drain_ours();
            }
            Theirs => {
                let mut buf = [0u8; BUF_LEN];
                match pair.tunn.format_handshake_initiation(&mut buf, false) {
                    TunnResult::WriteToNetwork(d) => pair.record(Theirs, d.to_vec()),
                    other => panic!("boringtun initiation: {other:?}"),
                }
            }
        }
        pair.run();
        assert!(pair.stats().last_handshake.is_some(), "{:?}", pair.kinds());
        pair
    }

    fn now(&self) -> Instant {
        self.start + self.elapsed
    }

    fn their_public(&self) -> PublicKey {
        self.their_public
    }

    fn stats(&self) -> PeerStats {
        self.engine.peer_stats(self.peer).unwrap()
    }

    // ----- inputs -------------------------------------------------------

    /// Gives a packet to `from`'s side, as if read from its TUN device.
    fn send(&mut self, from: Side, packet: &[u8]) {
        match from {
            Ours => {
                self.send_ours(packet);
            }
            Theirs => self.send_theirs(packet),
        }
    }

    fn send_ours(&mut self, packet: &[u8]) -> Encapsulated {
        self.seal_ours(packet, false)
    }

    /// Seals with [`Engine::encapsulate`] or, `in_place`, with
    /// [`Engine::encapsulate_in_place`].
    fn seal_ours(&mut self, packet: &[u8], in_place: bool) -> Encapsulated {
        let mut buf = [0u8; BUF_LEN];
        let (now, peer, len) = (self.now(), self.peer, packet.len());
        let result = if in_place {
            buf[DATA_HEADER_LEN..][..len].copy_from_slice(packet);
            self.engine.encapsulate_in_place(now, peer, &mut buf, len)
        } else {
            self.engine.encapsulate(now, peer, packet, &mut buf)
        };
        if let Ok(Encapsulated::Sealed { len }) = result {
            let destination = self
                .engine
                .peer_endpoint(peer)
                .expect("sealed for a known endpoint");
            let transmit = Transmit {
                destination,
                len,
                peer: Some(peer),
            };
            self.record_ours(transmit, &buf);
        }
        self.drain_ours();
        result.unwrap()
    }

    fn send_theirs(&mut self, packet: &[u8]) {
        let mut buf = [0u8; BUF_LEN];
        match self.tunn.encapsulate(packet, &mut buf) {
            TunnResult::WriteToNetwork(d) => self.record(Theirs, d.to_vec()),
            // Queued behind a handshake in progress.
            TunnResult::Done => {}
            other => panic!("boringtun encapsulate: {other:?}"),
        }
    }

    /// The next datagram on its way to `to`, taken off the wire.
    fn take_in_flight(&mut self, to: Side) -> Vec<u8> {
        self.in_flight[to as usize].pop_front().expect("a datagram")
    }

    /// Hands our engine a datagram from boringtun's address; returns the
    /// inner packet it carried.
    fn inject(&mut self, mut datagram: Vec<u8>) -> Result<Option<Vec<u8>>, Error> {
        let (now, peer) = (self.now(), self.peer);
        let result = self.engine.handle_datagram(now, THEIR_ADDR, &mut datagram);
        let result = match result {
            Ok(Received::Packet { peer: from, packet }) => {
                assert_eq!(from, peer);
                self.delivered[Ours as usize].push(packet.to_vec());
                Ok(Some(packet.to_vec()))
            }
            Ok(Received::Control(from)) => {
                assert_eq!(from, peer);
                Ok(None)
            }
            Err(error) => {
                self.our_errors.push(error);
                Err(error)
            }
        };
        self.drain_ours();
        result
    }

    fn deliver_to_theirs(&mut self, datagram: Vec<u8>) {
        let mut buf = [0u8; BUF_LEN];
        match (self.tunn).decapsulate(Some(OUR_ADDR.ip()), &datagram, &mut buf) {
            TunnResult::Done => {}
            TunnResult::WriteToNetwork(d) => {
                self.record(Theirs, d.to_vec());
                // boringtun's queued packets come out of repeated calls.
                loop {
                    match self.tunn.decapsulate(None, &[], &mut buf) {
                        TunnResult::WriteToNetwork(d) => self.record(Theirs, d.to_vec()),
                        TunnResult::Done => break,
                        other => panic!("boringtun queue: {other:?}"),
                    }
                }
            }
            TunnResult::WriteToTunnelV4(packet, _) | TunnResult::WriteToTunnelV6(packet, _) => {
                self.delivered[Theirs as usize].push(packet.to_vec());
            }
            TunnResult::Err(error) => self.their_errors.push(error),
        }
    }

    /// Delivers datagrams both ways until neither side has more to say.
    fn run(&mut self) {
        for _ in 0..MAX_EXCHANGE {
            if let Some(datagram) = self.in_flight[Theirs as usize].pop_front() {
                self.deliver_to_theirs(datagram);
            } else if let Some(datagram) = self.in_flight[Ours as usize].pop_front() {
                // A refusal is kept in `our_errors`.
                let _ = self.inject(datagram);
            } else {
                return;
            }
        }
        panic!(
            "no quiet after {MAX_EXCHANGE} datagrams: {:?}",
            self.kinds()
        );
    }

    /// Moves both clocks forward by `by`, stopping at each of our timers and
    /// each boringtun tick to run the timers and deliver what they send.
    fn advance(&mut self, by: Duration) {
        let until = self.elapsed + by;
        let mut stalled = 0;
        while self.elapsed < until {
            let ticks = self.elapsed.as_millis() / BORINGTUN_TICK.as_millis();
            let next_tick = BORINGTUN_TICK * (ticks as u32 + 1);
            let our_timer =
                (self.engine.poll_timeout()).map(|at| at.saturating_duration_since(self.start));
            let next = [Some(until), Some(next_tick), our_timer]
                .into_iter()
                .flatten()
                .min()
                .unwrap()
                .max(self.elapsed);
            stalled = if next == self.elapsed { stalled + 1 } else { 0 };
            assert!(stalled < 100, "poll_timeout stuck at {next:?}");
            MockClock::advance(next - self.elapsed);
            self.elapsed = next;

            self.engine.handle_timeout(self.now());
            self.drain_ours();
            let mut buf = [0u8; BUF_LEN];
            // Timer errors (an expired connection) are boringtun's own affair.
            if let TunnResult::WriteToNetwork(d) = self.tunn.update_timers(&mut buf) {
                self.record(Theirs, d.to_vec());
            }
            self.run();
        }
    }

    // ----- outputs ------------------------------------------------------

    fn drain_ours(&mut self) {
        let mut buf = [0u8; BUF_LEN];
        while let Some(transmit) = self.engine.poll_transmit(self.now(), &mut buf) {
            self.record_ours(transmit, &buf);
        }
    }

    fn record_ours(&mut self, transmit: Transmit, buf: &[u8]) {
        assert_eq!(transmit.destination, THEIR_ADDR);
        let bytes = buf[..transmit.len].to_vec();
        // A cookie reply answers an address, not a peer.
        let peer = (bytes[0] != 3).then_some(self.peer);
        assert_eq!(transmit.peer, peer);
        self.record(Ours, bytes);
    }

    fn record(&mut self, from: Side, bytes: Vec<u8>) {
        let at = self.elapsed;
        self.in_flight[from.other() as usize].push_back(bytes.clone());
        self.wire.push(Sent { from, at, bytes });
    }

    // ----- observations -------------------------------------------------

    fn kinds(&self) -> Vec<(Side, Kind)> {
        self.wire.iter().map(|s| (s.from, s.kind())).collect()
    }

    fn sent(&self, from: Side, kind: Kind) -> Vec<&Sent> {
        (self.wire.iter())
            .filter(|s| s.from == from && s.kind() == kind)
            .collect()
    }

    fn bytes_sent(&self, from: Side) -> u64 {
        let sent = self.wire.iter().filter(|s| s.from == from);
        sent.map(|s| s.bytes.len() as u64).sum()
    }

    fn delivered(&self, to: Side) -> &[Vec<u8>] {
        &self.delivered[to as usize]
    }

    fn assert_no_errors(&self) {
        let (ours, theirs) = (&self.our_errors, &self.their_errors);
        assert!(ours.is_empty() && theirs.is_empty(), "{ours:?} {theirs:?}");
    }

    /// Sends `count` packets each way and checks that all arrive.
    fn assert_session_works(&mut self, count: usize) {
        let before = [Ours, Theirs].map(|side| self.delivered(side).len());
        let to_them: Vec<_> = (0..count).map(|i| ipv4_packet(64 + i, i as u8)).collect();
        let to_us: Vec<_> = (0..count).map(|i| ipv6_packet(64 + i, i as u8)).collect();
        for (to_them, to_us) in to_them.iter().zip(&to_us) {
            assert!(matches!(
                self.send_ours(to_them),
                Encapsulated::Sealed { .. }
            ));
            self.send_theirs(to_us);
            self.run();
        }
        assert_eq!(self.delivered(Theirs)[before[1]..], to_them);
        assert_eq!(self.delivered(Ours)[before[0]..], to_us);
    }
}

/// Makes an IP packet of a length with a seeded payload.
type Build = fn(usize, u8) -> Vec<u8>;

/// An IPv6 packet of `len` bytes (at least a header) with a `seed`ed payload.
fn ipv6_packet(len: usize, seed: u8) -> Vec<u8> {
    let mut packet = payload(len, seed);
    packet[..8].fill(0);
    packet[0] = 0x60;
    packet[4..6].copy_from_slice(&u16::try_from(len - 40).unwrap().to_be_bytes());
    packet[6] = 17; // UDP
    packet[7] = 64; // hop limit
    let address = |host| [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, host];
    packet[8..24].copy_from_slice(&address(2));
    packet[24..40].copy_from_slice(&address(1));
    packet
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    let byte = |i: usize| (i as u8).wrapping_mul(31).wrapping_add(seed);
    (0..len).map(byte).collect()
}

/// `datagram` with one bit of byte `offset` flipped.
fn flip(datagram: &[u8], offset: usize) -> Vec<u8> {
    let mut forged = datagram.to_vec();
    forged[offset] ^= 0x10;
    forged
}

/// Recomputes the `mac1` of a handshake message sent to `receiver`, as a
/// forger who knows the receiver's public key can.
fn restamp_mac1(message: &mut [u8], receiver: &PublicKey) {
    let key = Blake2s256::new()
        .chain_update(b"mac1----")
        .chain_update(receiver.as_bytes())
        .finalize();
    let offset = message.len() - 32;
    let mut mac = <Blake2sMac<U16> as Mac>::new_from_slice(&key).unwrap();
    mac.update(&message[..offset]);
    message[offset..offset + 16].copy_from_slice(&mac.finalize().into_bytes());
}

fn debug_all<T: std::fmt::Debug>(items: &[T]) -> Vec<String> {
    items.iter().map(|item| format!("{item:?}")).collect()
}
