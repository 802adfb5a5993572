//! Hostile input to a live session: no panics, no acceptance, no change.
//!
//! A `Pair` completes a handshake (through a cookie exchange, so every
//! message type is captured from the wire), and then each test feeds one of
//! the engines datagrams that must be refused: random bytes, and every real
//! message type truncated, extended, retyped, bit-flipped and overwritten —
//! some with `mac1` recomputed, so they reach the cryptography. After every
//! refusal:
//!
//! * `handle_datagram` returned `Err(_)` (it did not panic, and did not
//!   accept anything but an unmodified fresh message);
//! * nothing changed: no output queued, same stats, endpoints and deadlines;
//!   a fresh message the forgery was made from is still accepted, so the
//!   replay counter only moves after authentication;
//! * the session still carries a data packet each way.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use blake2::digest::consts::U16;
use blake2::digest::{Digest, KeyInit, Mac};
use blake2::{Blake2s256, Blake2sMac};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, TestRng, TestRunner};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use sentrymesh_tunnel::sim;
use sentrymesh_tunnel::sim::{
    BUF_LEN, COOKIE_REPLY, DATA, INITIATION, Pair, RESPONSE, Side, ipv4_packet,
};
use sentrymesh_tunnel::{
    COOKIE_REPLY_LEN, DATA_HEADER_LEN, Encapsulated, Engine, Error, INITIATION_LEN, KEEPALIVE_LEN,
    PeerConfig, PeerStats, RESPONSE_LEN,
};
use sentrymesh_types::{PrivateKey, PublicKey};

/// Where the hostile datagrams claim to come from: a refused datagram must
/// not move a peer's endpoint here.
const SPOOFED: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(203, 0, 113, 66),
    4444,
));

/// The virtual time at which the hostile input arrives.
const ATTACK_TIME: Duration = Duration::from_secs(10);

/// Cases per property: enough to cover every target and mutation many
/// times, few enough for a debug build to finish in seconds.
const CASES: u32 = 256;

// ----- the fixture -----------------------------------------------------------

/// The messages captured from the wire while the session was made.
struct Captured {
    /// a's first initiation, refused by b (under load) for want of a cookie.
    refused_initiation: Vec<u8>,
    /// a's initiation that b accepted.
    initiation: Vec<u8>,
    /// b's response to it.
    response: Vec<u8>,
    /// b's cookie reply to the refused initiation.
    cookie_reply: Vec<u8>,
    /// The cookie reply addressed to a's live session index, so that a
    /// looks it up and tries to decrypt it.
    readdressed_cookie_reply: Vec<u8>,
    /// a's keepalive confirming the session.
    keepalive: Vec<u8>,
    /// A data message a → b, received.
    data_to_b: Vec<u8>,
    /// A data message b → a, received.
    data_to_a: Vec<u8>,
}

/// What a test mutates: a captured message (stale: already received, so
/// even unmodified it is refused) or a fresh one sealed for the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    RefusedInitiation,
    Initiation,
    Response,
    CookieReply,
    ReaddressedCookieReply,
    Keepalive,
    DataToB,
    DataToA,
    FreshDataToB,
    FreshDataToA,
    FreshKeepaliveToB,
    FreshKeepaliveToA,
}

const TARGETS: [Target; 12] = [
    Target::RefusedInitiation,
    Target::Initiation,
    Target::Response,
    Target::CookieReply,
    Target::ReaddressedCookieReply,
    Target::Keepalive,
    Target::DataToB,
    Target::DataToA,
    Target::FreshDataToB,
    Target::FreshDataToA,
    Target::FreshKeepaliveToB,
    Target::FreshKeepaliveToA,
];

impl Target {
    /// Who the message is for.
    fn recipient(self) -> Side {
        match self {
            Self::RefusedInitiation
            | Self::Initiation
            | Self::Keepalive
            | Self::DataToB
            | Self::FreshDataToB
            | Self::FreshKeepaliveToB => Side::B,
            Self::Response
            | Self::CookieReply
            | Self::ReaddressedCookieReply
            | Self::DataToA
            | Self::FreshDataToA
            | Self::FreshKeepaliveToA => Side::A,
        }
    }
}

/// What the unmodified message should do when delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Original {
    /// Already received: refused even unmodified.
    Stale,
    /// Fresh data: accepted, carrying this packet.
    Packet(Vec<u8>),
    /// A fresh keepalive: accepted as a control message.
    Keepalive,
}

/// Everything a refusal must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    stats: [Option<PeerStats>; 2],
    endpoints: [Option<SocketAddr>; 2],
    timeouts: [Option<Instant>; 2],
}

/// An established pair, the messages captured while making it, and a
/// counter to vary packets.
struct Fixture {
    pair: Pair,
    captured: Captured,
    tag: u8,
}

impl Fixture {
    fn new() -> Self {
        let mut pair = Pair::new();
        // Under load, b answers a's first initiation with a cookie reply; a
        // retries REKEY_TIMEOUT later with mac2 and b accepts.
        pair.b.engine.set_under_load(true);
        let (peer, now) = (pair.a.peer, pair.now);
        pair.a.engine.connect(now, peer).expect("connect");
        pair.drive();
        assert_eq!(
            pair.b.rejected,
            vec![(Duration::ZERO, Error::CookieRequired)]
        );
        assert!(pair.advance_to_next_timeout());
        for host in [&pair.a, &pair.b] {
            let stats = host.engine.peer_stats(host.peer).expect("peer");
            assert_eq!(stats.last_handshake, Some(pair.now), "handshake completed");
        }
        pair.b.engine.set_under_load(false);

        pair.advance_to(ATTACK_TIME);
        // 64-byte data messages: with another type byte, they have the
        // length of a cookie reply.
        let packet = ipv4_packet(32, 0xaa);
        assert!(matches!(
            pair.send(Side::A, &packet),
            Encapsulated::Sealed { .. }
        ));
        assert!(matches!(
            pair.send(Side::B, &packet),
            Encapsulated::Sealed { .. }
        ));

        let initiations = pair.a.initiations();
        assert_eq!(initiations.len(), 2);
        let data = |host: &sim::Host| {
            let sent = host.sent.iter().find(|s| s.is_data()).expect("data");
            assert_eq!(sent.bytes.len(), COOKIE_REPLY_LEN);
            sent.bytes.clone()
        };
        let cookie_reply = pair
            .b
            .last_sent(COOKIE_REPLY)
            .expect("cookie")
            .bytes
            .clone();
        let data_to_a = data(&pair.b);
        let mut readdressed_cookie_reply = cookie_reply.clone();
        readdressed_cookie_reply[4..8].copy_from_slice(&data_to_a[4..8]);
        let captured = Captured {
            refused_initiation: initiations[0].bytes.clone(),
            initiation: initiations[1].bytes.clone(),
            response: pair.b.last_sent(RESPONSE).expect("response").bytes.clone(),
            cookie_reply,
            readdressed_cookie_reply,
            keepalive: pair
                .a
                .sent
                .iter()
                .find(|s| s.is_keepalive())
                .expect("keepalive")
                .bytes
                .clone(),
            data_to_b: data(&pair.a),
            data_to_a,
        };
        assert_eq!(captured.initiation.len(), INITIATION_LEN);
        assert_eq!(captured.response.len(), RESPONSE_LEN);
        assert_eq!(captured.keepalive.len(), KEEPALIVE_LEN);
        Self {
            pair,
            captured,
            tag: 0,
        }
    }

    fn next_packet(&mut self) -> Vec<u8> {
        self.tag = self.tag.wrapping_add(1);
        ipv4_packet(20 + usize::from(self.tag % 64), self.tag)
    }

    /// The message `target` names; a fresh one is sealed now.
    fn message(&mut self, target: Target) -> (Vec<u8>, Original) {
        let stale = |bytes: &Vec<u8>| (bytes.clone(), Original::Stale);
        match target {
            Target::RefusedInitiation => stale(&self.captured.refused_initiation),
            Target::Initiation => stale(&self.captured.initiation),
            Target::Response => stale(&self.captured.response),
            Target::CookieReply => stale(&self.captured.cookie_reply),
            Target::ReaddressedCookieReply => stale(&self.captured.readdressed_cookie_reply),
            Target::Keepalive => stale(&self.captured.keepalive),
            Target::DataToB => stale(&self.captured.data_to_b),
            Target::DataToA => stale(&self.captured.data_to_a),
            Target::FreshDataToB | Target::FreshDataToA => {
                let packet = self.next_packet();
                let from = target.recipient().other();
                (self.pair.seal(from, &packet), Original::Packet(packet))
            }
            Target::FreshKeepaliveToB | Target::FreshKeepaliveToA => {
                let from = target.recipient().other();
                (self.pair.seal(from, &[]), Original::Keepalive)
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        let (a, b) = (&self.pair.a, &self.pair.b);
        Snapshot {
            stats: [a.engine.peer_stats(a.peer), b.engine.peer_stats(b.peer)],
            endpoints: [
                a.engine.peer_endpoint(a.peer),
                b.engine.peer_endpoint(b.peer),
            ],
            timeouts: [a.engine.poll_timeout(), b.engine.poll_timeout()],
        }
    }

    /// Gives `datagram` to `to` from a spoofed address and checks it was
    /// refused without a trace. Returns why.
    fn refuse(&mut self, to: Side, datagram: &[u8]) -> Error {
        let before = self.snapshot();
        let now = self.pair.now;
        let mut buf = datagram.to_vec();
        let engine = &mut self.pair.host(to).engine;
        let result = engine
            .handle_datagram(now, SPOOFED, &mut buf)
            .map(|accepted| format!("{accepted:?}"));
        let error = match result {
            Err(error) => error,
            Ok(accepted) => panic!("{to:?} accepted {datagram:02x?}: {accepted}"),
        };
        let mut out = [0u8; BUF_LEN];
        for side in [Side::A, Side::B] {
            let transmit = self.pair.host(side).engine.poll_transmit(now, &mut out);
            assert_eq!(
                transmit, None,
                "{side:?} answers a refused datagram ({error:?})"
            );
        }
        assert_eq!(
            self.snapshot(),
            before,
            "refusing ({error:?}) changed state"
        );
        error
    }

    /// Delivers a fresh message as it was sealed: it must still be accepted.
    fn accept(&mut self, to: Side, datagram: &[u8], original: &Original) {
        let expected = match original {
            Original::Stale => unreachable!("only fresh messages are accepted"),
            Original::Packet(packet) => Some(packet.clone()),
            Original::Keepalive => None,
        };
        assert_eq!(self.pair.deliver(to, datagram), Ok(expected));
    }

    /// The session carries one packet each way.
    fn check_alive(&mut self) {
        for from in [Side::A, Side::B] {
            let packet = self.next_packet();
            let result = self.pair.send(from, &packet);
            assert!(
                matches!(result, Encapsulated::Sealed { .. }),
                "{from:?}: {result:?}"
            );
            let delivered = &self.pair.host(from.other()).delivered;
            let last = delivered.last().map(|(_, p)| p);
            assert_eq!(last, Some(&packet), "{from:?} → {:?}", from.other());
        }
    }

    /// Mutates the message `target` names and checks the whole contract:
    /// refused (unless unmodified and fresh), no trace, a fresh original
    /// still accepted, the session alive.
    fn check(&mut self, target: Target, mutate: impl FnOnce(&mut Vec<u8>, &PublicKey)) {
        let (original, kind) = self.message(target);
        let to = target.recipient();
        let recipient_key = *self.pair.host(to).engine.public_key();
        let mut bytes = original.clone();
        mutate(&mut bytes, &recipient_key);
        if bytes == original && kind != Original::Stale {
            self.accept(to, &original, &kind);
        } else {
            self.refuse(to, &bytes);
            if kind != Original::Stale {
                self.accept(to, &original, &kind);
            }
        }
        self.check_alive();
    }
}

// ----- mac1 ------------------------------------------------------------------

/// Recomputes `mac1` of a handshake message for the owner of `receiver`, so
/// a mutated message passes the first check and reaches the cryptography.
/// Only initiations and responses of their exact length are stamped.
fn stamp_mac1(message: &mut [u8], receiver: &PublicKey) {
    let len = message.len();
    let is_handshake = matches!(
        (message.first(), len),
        (Some(&INITIATION), INITIATION_LEN) | (Some(&RESPONSE), RESPONSE_LEN)
    );
    if !is_handshake {
        return;
    }
    let key = Blake2s256::new()
        .chain_update(b"mac1----")
        .chain_update(receiver.as_bytes())
        .finalize();
    let mut mac = <Blake2sMac<U16> as KeyInit>::new_from_slice(&key).expect("32-byte key");
    mac.update(&message[..len - 32]);
    message[len - 32..len - 16].copy_from_slice(&mac.finalize().into_bytes());
}

// ----- mutations ---------------------------------------------------------------

/// One change to a datagram.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(Index),
    Extend(Vec<u8>),
    SetType(u8),
    FlipBit(Index, u8),
    Overwrite(Index, u8),
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        match self {
            Self::Truncate(at) if len > 0 => bytes.truncate(at.index(len)),
            Self::Extend(extra) => bytes.extend_from_slice(extra),
            Self::SetType(kind) if len > 0 => bytes[0] = *kind,
            Self::FlipBit(at, bit) if len > 0 => bytes[at.index(len)] ^= 1 << bit,
            Self::Overwrite(at, value) if len > 0 => bytes[at.index(len)] = *value,
            _ => {}
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => vec(any::<u8>(), 1..=64).prop_map(Mutation::Extend),
        1 => any::<u8>().prop_map(Mutation::SetType),
        3 => (any::<Index>(), 0..8u8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(at, v)| Mutation::Overwrite(at, v)),
    ]
}

/// How a random datagram is shaped before it is sent, to get past the
/// cheap checks into deeper code.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// As generated.
    Raw,
    /// With a valid header `[kind, 0, 0, 0]`.
    Header(u8),
    /// With a valid header and the exact length of its type.
    Exact(u8),
    /// A data message to the recipient's live session index, with a small
    /// counter or a random one.
    ToSession { small_counter: bool },
    /// An initiation or response of exact length with a valid mac1.
    Stamped(u8),
    /// A stamped initiation whose ephemeral key has low order.
    LowOrderEphemeral(u8),
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Raw),
        (1..=4u8).prop_map(Shape::Header),
        (1..=4u8).prop_map(Shape::Exact),
        any::<bool>().prop_map(|small_counter| Shape::ToSession { small_counter }),
        (1..=2u8).prop_map(Shape::Stamped),
        (0..2u8).prop_map(Shape::LowOrderEphemeral),
    ]
}

/// Exact lengths by type; data gets the shortest, a keepalive's.
fn exact_len(kind: u8) -> usize {
    match kind {
        INITIATION => INITIATION_LEN,
        RESPONSE => RESPONSE_LEN,
        COOKIE_REPLY => COOKIE_REPLY_LEN,
        _ => KEEPALIVE_LEN,
    }
}

fn set_header(bytes: &mut Vec<u8>, kind: u8, len: Option<usize>) {
    match len {
        Some(len) => bytes.resize(len, 0x5a),
        None if bytes.len() < 4 => bytes.resize(4, 0),
        None => {}
    }
    bytes[..4].copy_from_slice(&[kind, 0, 0, 0]);
}

fn runner() -> TestRunner {
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(config.rng_algorithm);
    TestRunner::new_with_rng(config, rng)
}

// ----- properties ----------------------------------------------------------------

#[test]
fn random_datagrams_are_refused() {
    let fixture = RefCell::new(Fixture::new());
    let strategy = (
        vec(any::<u8>(), 0..200),
        shape(),
        select(vec![Side::A, Side::B]),
    );
    runner()
        .run(&strategy, |(mut bytes, shape, to)| {
            let mut fixture = fixture.borrow_mut();
            let recipient_key = *fixture.pair.host(to).engine.public_key();
            match shape {
                Shape::Raw => {}
                Shape::Header(kind) => set_header(&mut bytes, kind, None),
                Shape::Exact(kind) => set_header(&mut bytes, kind, Some(exact_len(kind))),
                Shape::ToSession { small_counter } => {
                    let live = match to {
                        Side::A => &fixture.captured.data_to_a,
                        Side::B => &fixture.captured.data_to_b,
                    };
                    let index: [u8; 4] = live[4..8].try_into().expect("index");
                    let len = bytes.len().max(KEEPALIVE_LEN);
                    set_header(&mut bytes, DATA, Some(len));
                    bytes[4..8].copy_from_slice(&index);
                    if small_counter {
                        let counter = u64::from(bytes[8] % 8);
                        bytes[8..16].copy_from_slice(&counter.to_le_bytes());
                    }
                }
                Shape::Stamped(kind) => {
                    set_header(&mut bytes, kind, Some(exact_len(kind)));
                    stamp_mac1(&mut bytes, &recipient_key);
                }
                Shape::LowOrderEphemeral(point) => {
                    set_header(&mut bytes, INITIATION, Some(INITIATION_LEN));
                    let mut ephemeral = [0u8; 32];
                    ephemeral[0] = point;
                    bytes[8..40].copy_from_slice(&ephemeral);
                    stamp_mac1(&mut bytes, &recipient_key);
                }
            }
            fixture.refuse(to, &bytes);
            fixture.check_alive();
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

#[test]
fn mutated_messages_are_refused_and_change_nothing() {
    let fixture = RefCell::new(Fixture::new());
    let strategy = (
        select(TARGETS.to_vec()),
        vec(mutation(), 1..=4),
        any::<bool>(),
    );
    runner()
        .run(&strategy, |(target, mutations, restamp)| {
            fixture.borrow_mut().check(target, |bytes, recipient| {
                for mutation in &mutations {
                    mutation.apply(bytes);
                }
                if restamp {
                    stamp_mac1(bytes, recipient);
                }
            });
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

// ----- every truncation, extension and type ----------------------------------------

#[test]
fn every_truncation_of_every_message_is_refused() {
    let mut fixture = Fixture::new();
    for target in TARGETS {
        let len = fixture.message(target).0.len();
        for keep in 0..len {
            fixture.check(target, |bytes, _| bytes.truncate(keep));
        }
    }
}

#[test]
fn every_extension_of_every_message_is_refused() {
    let mut fixture = Fixture::new();
    for target in TARGETS {
        for extra in [1, 2, 15, 16, 17, 32, 100, 1500] {
            for fill in [0x00, 0xff] {
                fixture.check(target, |bytes, recipient| {
                    bytes.resize(bytes.len() + extra, fill);
                    stamp_mac1(bytes, recipient);
                });
            }
        }
    }
}

#[test]
fn every_other_type_byte_and_any_reserved_byte_is_refused() {
    let mut fixture = Fixture::new();
    for target in TARGETS {
        for kind in 0..=u8::MAX {
            for restamp in [false, true] {
                fixture.check(target, |bytes, recipient| {
                    if bytes[0] != kind {
                        bytes[0] = kind;
                        if restamp {
                            stamp_mac1(bytes, recipient);
                        }
                    } else {
                        // Where the type is the original, break a reserved byte.
                        bytes[1 + usize::from(kind) % 3] = 1;
                    }
                });
            }
        }
    }
}

// ----- refusals leave no trace ---------------------------------------------------

#[test]
fn replayed_messages_are_refused_for_the_right_reason() {
    let mut fixture = Fixture::new();
    let c = &fixture.captured;
    let cases = [
        (Side::B, c.data_to_b.clone(), Error::ReplayedCounter),
        (Side::A, c.data_to_a.clone(), Error::ReplayedCounter),
        (Side::B, c.keepalive.clone(), Error::ReplayedCounter),
        (Side::B, c.initiation.clone(), Error::ReplayedInitiation),
        (
            Side::B,
            c.refused_initiation.clone(),
            Error::ReplayedInitiation,
        ),
        // The handshake this answered is over.
        (Side::A, c.response.clone(), Error::UnknownIndex),
        // The cookie reply is addressed to the refused initiation's index,
        // which a's retry replaced.
        (Side::A, c.cookie_reply.clone(), Error::UnknownIndex),
        // Addressed to the live session, it does not decrypt under the
        // mac1 a last sent.
        (
            Side::A,
            c.readdressed_cookie_reply.clone(),
            Error::Decryption,
        ),
    ];
    for (to, datagram, expected) in cases {
        assert_eq!(fixture.refuse(to, &datagram), expected, "{datagram:02x?}");
        fixture.check_alive();
    }
}

#[test]
fn a_forged_data_message_does_not_move_the_counter() {
    let mut fixture = Fixture::new();
    for to in [Side::B, Side::A] {
        let packet = fixture.next_packet();
        let fresh = fixture.pair.seal(to.other(), &packet);
        let counter = u64::from_le_bytes(fresh[8..16].try_into().expect("counter"));

        // A flipped bit in the ciphertext, in the tag, in the counter (to a
        // counter not yet received).
        for at in [DATA_HEADER_LEN, fresh.len() - 1, 9] {
            let mut forged = fresh.clone();
            forged[at] ^= 0x01;
            assert_eq!(
                fixture.refuse(to, &forged),
                Error::Decryption,
                "bit at {at}"
            );
        }
        // A forgery far ahead of the window: had it slid the window, the
        // fresh message would now be too old.
        for ahead in [1, 8192, 1 << 20, 1 << 59] {
            let mut forged = fresh.clone();
            forged[8..16].copy_from_slice(&(counter + ahead).to_le_bytes());
            assert_eq!(
                fixture.refuse(to, &forged),
                Error::Decryption,
                "{ahead} ahead"
            );
        }
        // Another session's index.
        let mut forged = fresh.clone();
        forged[4] ^= 0x80;
        assert_eq!(fixture.refuse(to, &forged), Error::UnknownIndex);

        // The genuine message is still accepted, once.
        assert_eq!(fixture.pair.deliver(to, &fresh), Ok(Some(packet)));
        assert_eq!(fixture.refuse(to, &fresh), Error::ReplayedCounter);
        fixture.check_alive();
    }
}

#[test]
fn a_forged_initiation_does_not_burn_its_timestamp() {
    let mut fixture = Fixture::new();
    // A second instance of a's identity makes a fresh initiation to b.
    let (mut twin, peer) = fixture.pair.twin(Side::A, 77);
    let now = fixture.pair.now;
    twin.connect(now, peer).expect("connect");
    let mut buf = [0u8; BUF_LEN];
    let transmit = twin.poll_transmit(now, &mut buf).expect("initiation");
    let initiation = buf[..transmit.len].to_vec();
    assert_eq!(initiation[0], INITIATION);
    let b_key = *fixture.pair.b.engine.public_key();

    // Forgeries in the ephemeral key, the encrypted static key and the
    // encrypted timestamp, with a valid mac1, fail authentication.
    for at in [8, 40, 88, 100] {
        let mut forged = initiation.clone();
        forged[at] ^= 0x04;
        assert_eq!(
            fixture.refuse(Side::B, &forged),
            Error::InvalidMac1,
            "byte {at}"
        );
        stamp_mac1(&mut forged, &b_key);
        assert_eq!(
            fixture.refuse(Side::B, &forged),
            Error::Decryption,
            "byte {at}"
        );
    }
    fixture.check_alive();

    // The genuine one is still fresh: b accepts it and answers.
    assert_eq!(fixture.pair.deliver(Side::B, &initiation), Ok(None));
    assert_eq!(fixture.pair.b.sent.last().expect("response").kind, RESPONSE);
    // And now it is a replay.
    assert_eq!(
        fixture.refuse(Side::B, &initiation),
        Error::ReplayedInitiation
    );
    fixture.check_alive();
}

#[test]
fn an_initiation_from_a_stranger_is_refused() {
    let mut fixture = Fixture::new();
    let now = fixture.pair.now;
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let stranger_key = PrivateKey::generate(&mut rng);
    let mut stranger = Engine::new(stranger_key, rng, now, sim::UNIX_NOW);
    let mut config = PeerConfig::new(*fixture.pair.b.engine.public_key());
    config.endpoint = Some(sim::ADDR_B);
    let peer = stranger.add_peer(now, config).expect("peer");
    stranger.connect(now, peer).expect("connect");
    let mut buf = [0u8; BUF_LEN];
    let transmit = stranger.poll_transmit(now, &mut buf).expect("initiation");
    assert_eq!(
        fixture.refuse(Side::B, &buf[..transmit.len]),
        Error::UnknownPeer
    );
    fixture.check_alive();
}
