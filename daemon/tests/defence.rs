//! A sentry under attack keeps forwarding, on namespace hosts running
//! `sentrymesh up`: a third host floods its WireGuard port with handshake
//! initiations that carry a valid `mac1` for its key (random everything
//! else, many spoofed sources), then with garbage (random, truncated,
//! oversized and replayed datagrams, at its WireGuard and mesh ports). The
//! session with its producer carries pings throughout, the flood is
//! answered with cookie replies, a new sentry still completes its
//! handshake, memory stays bounded, and every drop is counted by reason.
//!
//! The tests need root and fail (never skip) without it. Every address is
//! in 198.18.0.0/15; see [`sentrymesh_lab::mesh_lab`] and [`sentrymesh_lab::spoof`]. No
//! assertion depends on the wall clock: they wait for events, with
//! generous ceilings.

use std::net::{SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use sentrymesh_lab::capture::Capture;
use sentrymesh_lab::mesh_lab::{
    GOSSIP_PORT, INTRODUCTION_PORT, Lab, Member, Operator, Role, WG_PORT, assert_peers,
    base64_decode,
};
use sentrymesh_lab::spoof::{Spoofer, spoofed_source};
use sentrymesh_lab::wait_until;
use sentrymesh_types::{PublicKey, blake2s};

const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

/// Spoofed sources the floods send from.
const SOURCES: u32 = 20_000;
/// Datagrams sent back to back, then a pause of [`PAUSE`]: bursts far
/// larger than what the sentry handles in one turn, so its handshake
/// backlog grows and it goes under load, at an average rate its debug
/// build reads on this shared machine.
const BURST: u32 = 400;
const PAUSE: Duration = Duration::from_millis(40);
/// The most resident memory the sentry may use under the flood (a debug
/// build; its handshake queue and cookie replies are bounded).
const RSS_BOUND_KIB: u64 = 64 * 1024;
/// The length of an initiation, and where its `mac1` starts.
const INITIATION_LEN: usize = 148;
const MAC1_OFFSET: usize = 116;

/// A sentry (the target), its producer with a session to it, and a flooder
/// that knows the sentry's key, as any host of an operator its card was
/// shared with does. The spoofed sources are routed back through the
/// flooder, which drops the answers.
struct Scene {
    // Members before the lab: their daemons stop before the switch goes.
    sentry: Member,
    producer: Member,
    flooder: Member,
    lab: Lab,
    /// The operator of the sentry and the producer.
    own: Operator,
    /// An operator they trust, whose sentries may join.
    foreign: Operator,
}

impl Scene {
    fn new(label: &str) -> Scene {
        let mut lab = Lab::new(SENTRYMESH, label);
        let (a, b, c) = (lab.operator("a"), lab.operator("b"), lab.operator("c"));
        let mut producer = lab.member(&a, "a-producer", Role::Producer);
        let mut sentry = lab.member(&a, "a-sentry-1", Role::Sentry);
        let flooder = lab.member(&c, "flooder", Role::Sentry);
        producer.know_card(&sentry);
        sentry.know_card(&producer);
        producer.configure(&[&b], 1, 1);
        sentry.configure(&[&b], 1, 1);
        let underlay_link = format!("u{}", sentry.underlay.octets()[3]);
        for link in ["all", "default", &underlay_link] {
            sentry.host.run(
                "sysctl",
                &["-qw", &format!("net.ipv4.conf.{link}.rp_filter=0")],
            );
        }
        // More specific than this, the lab's own 198.18.0.0/24 stays direct.
        sentry.host.ip(&[
            "route",
            "add",
            "198.18.0.0/16",
            "via",
            &flooder.underlay.to_string(),
        ]);
        producer.start();
        sentry.start();
        assert_peers(&producer, &[&sentry]);
        assert_peers(&sentry, &[&producer]);
        Scene {
            sentry,
            producer,
            flooder,
            lab,
            own: a,
            foreign: b,
        }
    }

    /// The sentry's WireGuard public key.
    fn sentry_key(&self) -> PublicKey {
        PublicKey::from_bytes(
            base64_decode(&self.sentry.wg_public)
                .try_into()
                .expect("a 32-byte key"),
        )
    }

    /// The sentry's count of datagrams dropped for `reason`.
    fn dropped(&self, reason: &str) -> u64 {
        self.sentry.metric(
            "sentrymesh_dropped_datagrams_total",
            &format!(",reason=\"{reason}\""),
        )
    }

    /// Whether the producer's pings still cross the session.
    fn session_carries_pings(&self) -> bool {
        wait_until(Duration::from_secs(30), || {
            self.producer.pings(&self.sentry)
        })
    }
}

/// A flood running on its own thread, from the flooder's namespace.
struct Flood {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl Flood {
    /// Sends `next(n)` to the sentry's `port` from spoofed sources, in
    /// bursts, until stopped or `count` datagrams are sent.
    fn start(
        scene: &Scene,
        count: u64,
        mut next: impl FnMut(u64) -> (u16, Vec<u8>) + Send + 'static,
    ) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let spoofer = Spoofer::new(&scene.flooder.host);
        let target = scene.sentry.underlay;
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut sent = 0;
                for n in 0..count {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let (port, payload) = next(n);
                    let source = spoofed_source(u32::try_from(n % u64::from(SOURCES)).unwrap());
                    let source = SocketAddrV4::new(source, 40_000);
                    let destination = SocketAddrV4::new(target, port);
                    if spoofer.send(source, destination, &payload).is_ok() {
                        sent += 1;
                    }
                    if n % u64::from(BURST) == 0 {
                        std::thread::sleep(PAUSE);
                    }
                }
                sent
            })
        };
        Flood { stop, thread }
    }

    /// Stops the flood; returns how many datagrams it sent.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Waits for the flood to send all it was to; returns how many
    /// datagrams it sent.
    fn join(self) -> u64 {
        self.thread.join().expect("the flood thread")
    }
}

/// An initiation to `to` with a valid `mac1` and random everything else
/// (sender index, ephemeral key, encrypted static key and timestamp): it
/// costs a responder not under load its Diffie-Hellman operations.
fn flood_initiation(to: &PublicKey, rng: &mut ChaCha20Rng) -> Vec<u8> {
    let mut message = vec![0; INITIATION_LEN];
    message[0] = 1;
    rng.fill_bytes(&mut message[4..MAC1_OFFSET]);
    let key = blake2s::hash(&[b"mac1----", to.as_bytes()]);
    let mac1 = blake2s::mac(&key, &[&message[..MAC1_OFFSET]]);
    message[MAC1_OFFSET..MAC1_OFFSET + 16].copy_from_slice(&mac1);
    message
}

/// A handshake flood with a valid `mac1` for the sentry's key, while the
/// producer pings it and a new sentry joins: the sentry goes under load
/// and answers with cookie replies, the session carries pings, the
/// newcomer completes its handshake (through the cookie round trip, the
/// sentry being under load), and the sentry's memory stays bounded.
#[test]
fn a_handshake_flood_is_answered_with_cookies_and_the_session_goes_on() {
    let mut scene = Scene::new("hsflood");
    let mut newcomer = scene.lab.member(&scene.foreign, "b-sentry-1", Role::Sentry);
    newcomer.know_card(&scene.sentry);
    newcomer.configure(&[&scene.own], 1, 1);
    let key = scene.sentry_key();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let flood = Flood::start(&scene, u64::MAX, move |_| {
        (WG_PORT, flood_initiation(&key, &mut rng))
    });
    let cookies = |scene: &Scene| {
        scene
            .sentry
            .metric("sentrymesh_cookie_replies_sent_total", "")
    };
    assert!(
        wait_until(Duration::from_secs(120), || cookies(&scene) >= 1_000),
        "the sentry is not under load: {} cookie replies\n{}",
        cookies(&scene),
        scene.sentry.log()
    );
    assert!(scene.session_carries_pings(), "the session is gone");

    // A sentry of the operator the sentry trusts, knowing the sentry's
    // card: it introduces itself and handshakes while the flood goes on.
    let cookie_required = scene.dropped("cookie_required");
    newcomer.start();
    assert!(
        wait_until(Duration::from_secs(120), || newcomer
            .has_session_with(&scene.sentry)),
        "the newcomer has no session with the sentry:\n{}",
        newcomer.log()
    );
    assert!(
        scene.dropped("cookie_required") > cookie_required,
        "the sentry was not under load while the newcomer joined"
    );
    assert!(newcomer.pings(&scene.sentry));
    assert!(scene.session_carries_pings(), "the session is gone");
    let rss = scene.sentry.rss_kib();
    let sent = flood.stop();
    eprintln!(
        "{sent} initiations from {SOURCES} sources: {} cookie replies, drops: {} cookie \
         required, {} handshake queue full, {} rate limited, {} failed authentication; the \
         sentry's RSS {rss} KiB",
        cookies(&scene),
        scene.dropped("cookie_required"),
        scene.dropped("handshake_queue_full"),
        scene.dropped("rate_limited"),
        scene.dropped("failed_authentication"),
    );
    assert!(rss < RSS_BOUND_KIB, "the sentry uses {rss} KiB");
}

/// Garbage at the sentry's WireGuard and mesh ports: random bytes, every
/// handshake message type a byte off its length or with a random mac1,
/// data for no session, datagrams far larger than any message, and the
/// producer's own datagrams replayed from its address; random bytes at the
/// introduction port, and through the tunnel at the gossip port. The sentry
/// stays up, the session goes on, and the drops show by reason.
#[test]
fn garbage_is_dropped_by_reason_and_the_session_goes_on() {
    const GARBAGE: u64 = 200_000;
    const OVERSIZED: u64 = 2_000;
    const GOSSIP_GARBAGE: u64 = 2_000;
    let scene = Scene::new("garbage");
    // Datagrams the producer sent the sentry, to replay.
    let capture = Capture::start(&scene.sentry.host, scene.sentry.underlay, WG_PORT);
    assert!(scene.session_carries_pings());
    for _ in 0..5 {
        assert!(scene.producer.pings(&scene.sentry));
    }
    let recorded: Vec<Vec<u8>> = capture
        .stop()
        .into_iter()
        .filter(|payload| payload.first() == Some(&4))
        .collect();
    assert!(!recorded.is_empty(), "no data from the producer recorded");
    let replayer = Spoofer::new(&scene.flooder.host);
    let from = SocketAddrV4::new(scene.producer.underlay, WG_PORT);
    let to = SocketAddrV4::new(scene.sentry.underlay, WG_PORT);
    for _ in 0..20 {
        for datagram in &recorded {
            // The flooder has a route to the producer's address only as a
            // spoofed source; a refused send is retried by the next round.
            let _ = replayer.send(from, to, datagram);
        }
    }

    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let sent = Flood::start(&scene, GARBAGE, move |n| garbage(n, &mut rng)).join();
    // Datagrams far larger than any message, fragmented on the way (from
    // the flooder's own address: a raw socket does not fragment).
    let socket = scene
        .flooder
        .host
        .in_namespace(|| UdpSocket::bind("0.0.0.0:0").expect("a UDP socket"));
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    for _ in 0..OVERSIZED {
        let mut datagram = vec![0; 2_000 + rng.next_u32() as usize % 7_000];
        rng.fill_bytes(&mut datagram);
        datagram[..4].copy_from_slice(&[4, 0, 0, 0]);
        // A full socket buffer refuses some: the count below says so.
        let _ = socket.send_to(&datagram, to);
    }
    // Garbage at the gossip port, which hears only what comes through the
    // tunnel: from the producer.
    let gossip = scene
        .producer
        .host
        .in_namespace(|| UdpSocket::bind("0.0.0.0:0").expect("a UDP socket"));
    let sentry_gossip = SocketAddrV4::new(scene.sentry.overlay, GOSSIP_PORT);
    for _ in 0..GOSSIP_GARBAGE {
        let mut datagram = vec![0; 1 + rng.next_u32() as usize % 1_200];
        rng.fill_bytes(&mut datagram);
        let _ = gossip.send_to(&datagram, sentry_gossip);
    }
    // The sentry reads what reached its sockets; its counters settle.
    let mut last = 0;
    assert!(wait_until(Duration::from_secs(60), || {
        let total: u64 = [
            "malformed",
            "unknown_type",
            "invalid_mac1",
            "unknown_index",
            "replayed",
        ]
        .iter()
        .map(|reason| scene.dropped(reason))
        .sum();
        let settled = total == last && total > 0;
        last = total;
        settled
    }));
    for reason in [
        "malformed",
        "unknown_type",
        "invalid_mac1",
        "unknown_index",
        "replayed",
    ] {
        assert!(scene.dropped(reason) > 0, "no {reason} drops");
    }
    let introductions = |outcome: &str| {
        scene.sentry.metric(
            "sentrymesh_introductions_total",
            &format!(",outcome=\"{outcome}\""),
        )
    };
    let gossip_malformed = || {
        scene
            .sentry
            .metric("sentrymesh_gossip_messages_total", ",outcome=\"malformed\"")
    };
    assert!(
        wait_until(Duration::from_secs(60), || gossip_malformed() > 0),
        "no malformed gossip counted"
    );
    assert!(introductions("malformed") + introductions("bad_mac") > 0);
    eprintln!(
        "{sent} garbage datagrams, {OVERSIZED} oversized and {} replays: drops {}; \
         introductions malformed {}, bad mac {}; gossip malformed {} of {GOSSIP_GARBAGE}",
        recorded.len() * 20,
        [
            "truncated",
            "malformed",
            "unknown_type",
            "invalid_mac1",
            "unknown_index",
            "replayed",
            "failed_authentication",
            "handshake_queue_full",
        ]
        .iter()
        .map(|reason| format!("{reason} {}", scene.dropped(reason)))
        .collect::<Vec<_>>()
        .join(", "),
        introductions("malformed"),
        introductions("bad_mac"),
        gossip_malformed(),
    );
    assert!(scene.session_carries_pings(), "the session is gone");
    assert!(scene.sentry.has_session_with(&scene.producer));
    let rss = scene.sentry.rss_kib();
    assert!(rss < RSS_BOUND_KIB, "the sentry uses {rss} KiB");
}

/// The `n`th garbage datagram and its port: random bytes of random length;
/// each handshake message type a byte too short or too long, or with random
/// contents at its right length; data for a session that is not there.
fn garbage(n: u64, rng: &mut ChaCha20Rng) -> (u16, Vec<u8>) {
    let port = if n % 8 == 0 {
        INTRODUCTION_PORT
    } else {
        WG_PORT
    };
    let length = |rng: &mut ChaCha20Rng, below: u32| rng.next_u32() as usize % below as usize;
    // A handshake message type, and its length.
    let kind = length(rng, 3);
    let right_length = [INITIATION_LEN, 92, 64][kind];
    let (kind, len) = match n % 5 {
        // Random bytes: mostly no message type at all, or cut short.
        0 => (None, length(rng, 200)),
        1 => (None, length(rng, 4)),
        // A handshake message a byte too short or too long.
        2 => (Some(kind + 1), right_length + 2 * length(rng, 2) - 1),
        // A handshake message of the right length, and a random mac1.
        3 => (Some(kind + 1), right_length),
        // Data for a session index that is not the sentry's.
        _ => (Some(4), 32 + length(rng, 1_400)),
    };
    let mut datagram = vec![0; len];
    rng.fill_bytes(&mut datagram);
    if let Some(kind) = kind {
        datagram[..4].copy_from_slice(&[u8::try_from(kind).unwrap(), 0, 0, 0]);
    }
    (port, datagram)
}
