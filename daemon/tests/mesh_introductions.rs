//! A new sentry joins through a flood of spoofed introductions at a
//! sentry's introduction port, by a flooder that knows the sentry's key:
//! under load only senders that proved their address with a cookie are
//! opened, and a flood from one proved address is held per source.
//!
//! The test needs root and fails (never skips) without it. Every address is
//! in 198.18.0.0/15; see [`sentrymesh_lab::mesh_lab`] and
//! [`sentrymesh_lab::spoof`].

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand_core::OsRng;
use sentrymesh_lab::mesh_lab::{
    INTRODUCTION_PORT, Lab, Member, Role, armoured_bytes, assert_peers, base64_decode,
};
use sentrymesh_lab::spoof::{Spoofer, spoofed_source};
use sentrymesh_lab::wait_until;
use sentrymesh_mesh::introduction::{CHECKS_PER_SECOND, RESERVED_FOR_PROVEN};
use sentrymesh_mesh::{Introducer, SignedCard, seal_introduction};
use sentrymesh_types::{PublicKey, UnixTime};

/// The daemon under test, built with these tests.
const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

/// A flood at a sentry's introduction port from 20 000 spoofed sources
/// (more than its per-source limiters track) by someone who knows the
/// sentry's WireGuard key: every datagram is an introduction sealed to the
/// sentry by the mesh crate's own sealing (of a card of an operator the
/// sentry does not admit), each sent from several sources, fresh ones
/// faster than the budget's open share. Kept up while a new sentry
/// introduces itself: the newcomer joins, and the flood cost the sentry at
/// most the open share of key agreements a second, and otherwise cookie
/// replies. Then the flooder, having taken a cookie at its own address as
/// any real introducer can, floods from that address: the sentry's
/// per-source limiter holds it. The real time it took, the counts, and
/// whether the newcomer went through a cookie round trip are printed.
#[test]
fn a_new_sentry_joins_through_a_flood_of_spoofed_introductions() {
    const SOURCES: u32 = 20_000;
    /// How many sources send each introduction.
    const SOURCES_EACH: u32 = 8;
    /// The share of the sentry's budget of checks a second that
    /// introductions without a cookie may spend.
    const OPEN_SHARE: u64 = CHECKS_PER_SECOND - RESERVED_FOR_PROVEN;
    let mut lab = Lab::new(SENTRYMESH, "flood");
    let (a, b, c) = (lab.operator("a"), lab.operator("b"), lab.operator("c"));
    let mut sentry = lab.member(&a, "a-sentry-1", Role::Sentry);
    let mut newcomer = lab.member(&b, "b-sentry-1", Role::Sentry);
    let flooder = lab.member(&c, "flooder", Role::Sentry);
    newcomer.know_card(&sentry);
    sentry.configure(&[&b], 1, 1);
    newcomer.configure(&[&a], 1, 1);
    // The spoofed sources are off the sentry's subnet: no reverse-path
    // filter may drop them before the port.
    let underlay_link = format!("u{}", sentry.underlay.octets()[3]);
    for link in ["all", "default", &underlay_link] {
        sentry.host.run(
            "sysctl",
            &["-qw", &format!("net.ipv4.conf.{link}.rp_filter=0")],
        );
    }
    sentry.start();

    // The flooder knows the sentry's key, as any host of an operator its
    // card was shared with does.
    let sentry_key = PublicKey::from_bytes(
        base64_decode(&sentry.wg_public)
            .try_into()
            .expect("a 32-byte key"),
    );
    let flooder_card = SignedCard::decode(&armoured_bytes(&flooder.card())).expect("a card");

    let stop = Arc::new(AtomicBool::new(false));
    let spoofer = Spoofer::new(&flooder.host);
    let target = SocketAddrV4::new(sentry.underlay, INTRODUCTION_PORT);
    let flooding = Instant::now();
    let flood = {
        let stop = Arc::clone(&stop);
        let card = flooder_card.clone();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            let mut payload = Vec::new();
            for n in 0u32.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // A fresh introduction for every few sources, for as long
                // as the flood lasts: the sentry remembers the ephemeral
                // keys it paid for and drops their replays unopened, so a
                // flood that cycled through a fixed set would stop loading
                // it after a while (and a late cookie request would find
                // the sentry idle).
                if n % SOURCES_EACH == 0 {
                    payload = seal_introduction(&card, &sentry_key, unix_now(), &mut OsRng)
                        .expect("sealed to the sentry");
                }
                let source = SocketAddrV4::new(spoofed_source(n % SOURCES), 40_000);
                if spoofer.send(source, target, &payload).is_ok() {
                    sent += 1;
                }
                // About 2 500 a second, fresh ones at about 300 a second:
                // what the sentry's debug build reads without its socket
                // overflowing on this shared machine.
                if n % 25 == 0 {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            sent
        })
    };
    let cookies = |member: &Member, outcome: &str| {
        member.metric(
            "sentrymesh_introduction_cookies_total",
            &format!(",outcome=\"{outcome}\""),
        )
    };
    assert!(
        wait_until(Duration::from_secs(120), || cookies(&sentry, "replied")
            >= u64::from(SOURCES) / 10),
        "the sentry is not under load: {} cookie replies",
        cookies(&sentry, "replied")
    );

    let started = Instant::now();
    newcomer.start();
    assert_peers(&sentry, &[&newcomer]);
    let joined = started.elapsed();
    // The flooder also sends from its own address: under load, it gets a
    // cookie as any real introducer would.
    let mut own = OwnAddressFlooder::new(&flooder, SocketAddr::V4(target));
    own.take_cookie(&flooder_card, &sentry_key);
    stop.store(true, Ordering::Relaxed);
    let sent = flood.join().expect("the flood thread");
    let flood_lasted = flooding.elapsed();
    assert_peers(&newcomer, &[&sentry]);
    assert!(newcomer.pings(&sentry));

    let outcome = |outcome: &str| {
        sentry.metric(
            "sentrymesh_introductions_total",
            &format!(",outcome=\"{outcome}\""),
        )
    };
    let agreements = sentry.metric(
        "sentrymesh_introduction_checks_total",
        ",check=\"key_agreement\"",
    );
    let introduced = newcomer.metric("sentrymesh_introductions_total", ",outcome=\"sealed\"");
    eprintln!(
        "the newcomer joined {joined:?} after it started, through {sent} spoofed introductions \
         from {SOURCES} sources sealed to the sentry's key over {flood_lasted:?}: {} cookie \
         replies sent ({} held by the per-source limit), {agreements} key agreements ({} not \
         admitted), {} replays dropped, {} over budget, {} introductions with a cookie, {} \
         accepted; the newcomer sealed {introduced} introductions, took {} cookies and sealed {} \
         with one",
        cookies(&sentry, "replied"),
        cookies(&sentry, "reply_limited"),
        outcome("not_admitted"),
        outcome("replayed"),
        outcome("over_budget"),
        cookies(&sentry, "proven"),
        outcome("accepted"),
        cookies(&newcomer, "taken"),
        cookies(&newcomer, "sealed_with"),
    );
    assert!(outcome("accepted") >= 1);
    // The budget refills once a second of the sentry's clock (Unix
    // seconds), so a flood lasting T seconds touches at most ⌊T⌋ + 2 of
    // those seconds, in each of which the open share may be spent afresh.
    let seconds = flood_lasted.as_secs() + 2;
    assert!(
        agreements <= OPEN_SHARE * seconds + introduced,
        "the flood cost {agreements} key agreements in {seconds} s, for {introduced} real \
         introductions"
    );

    // With its cookie, the flooder's own address is proved: a flood from it
    // is held by the sentry's per-source limiter.
    const OWN: u64 = 200;
    let limited_before = outcome("rate_limited");
    let proven_before = cookies(&sentry, "proven");
    let own_started = Instant::now();
    for _ in 0..OWN {
        own.send(&flooder_card, &sentry_key);
    }
    let own_sent = own_started.elapsed();
    assert!(
        wait_until(Duration::from_secs(60), || cookies(&sentry, "proven")
            >= proven_before + OWN),
        "the sentry did not read the flood from one address: {} proven",
        cookies(&sentry, "proven") - proven_before
    );
    let limited = outcome("rate_limited") - limited_before;
    let own_agreements = sentry.metric(
        "sentrymesh_introduction_checks_total",
        ",check=\"key_agreement\"",
    ) - agreements;
    eprintln!(
        "{OWN} introductions with a cookie from the flooder's own address in {own_sent:?}: \
         {limited} held by the per-source limiter, {own_agreements} key agreements"
    );
    // The limiter's burst (5), and its rate (2 a second) for as long as
    // the sending took.
    let allowed = 5 + 2 * (own_sent.as_secs() + 1);
    assert!(
        own_agreements <= allowed && limited >= OWN - allowed,
        "{own_agreements} key agreements, {limited} held, for {OWN} from one address"
    );
}

/// A flooder sending from its host's own address, with the mesh crate's
/// own introducer: it takes cookies and seals with them.
struct OwnAddressFlooder {
    socket: std::net::UdpSocket,
    destination: SocketAddr,
    introducer: Introducer,
}

impl OwnAddressFlooder {
    /// A socket in `member`'s namespace, introducing to `destination`.
    fn new(member: &Member, destination: SocketAddr) -> OwnAddressFlooder {
        let socket = member
            .host
            .in_namespace(|| std::net::UdpSocket::bind("0.0.0.0:0").expect("a UDP socket"));
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .expect("a read timeout");
        OwnAddressFlooder {
            socket,
            destination,
            introducer: Introducer::new(),
        }
    }

    /// Sends `card`, sealed to `recipient`.
    fn send(&mut self, card: &SignedCard, recipient: &PublicKey) {
        let sealed = self
            .introducer
            .seal(card, recipient, self.destination, unix_now(), &mut OsRng)
            .expect("sealed to the recipient");
        self.socket
            .send_to(&sealed, self.destination)
            .expect("sent from the flooder's own address");
    }

    /// Introduces `card` until a cookie reply comes back and is taken.
    fn take_cookie(&mut self, card: &SignedCard, recipient: &PublicKey) {
        let mut buf = [0u8; 1500];
        for _ in 0..60 {
            self.send(card, recipient);
            if let Ok((len, from)) = self.socket.recv_from(&mut buf) {
                if self
                    .introducer
                    .handle_cookie_reply(from, &buf[..len], unix_now())
                    .is_ok()
                {
                    return;
                }
            }
        }
        panic!("no cookie reply in a minute of introductions under load");
    }
}

/// The wall clock, as the daemon reads it.
fn unix_now() -> UnixTime {
    UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs(),
    )
}
