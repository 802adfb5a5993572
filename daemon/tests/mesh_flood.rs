//! The trust mesh under attack, on namespace hosts running `sentrymesh up`:
//! an admitted rival's sentry floods a member's gossip port through its
//! tunnel with objects signed by fresh keys and by its own operator, while
//! the member's operator revokes one of its own hosts that has turned
//! hostile. The revocation still takes effect everywhere, the revoked host
//! never learns of it and is not taken back from its own introductions or a
//! re-issued card relayed by the rival, and every daemon's store and memory
//! stay bounded. The latencies measured are printed, not asserted against
//! the wall clock (the README's mesh section gives them).
//!
//! The tests need root and fail (never skip) without it. Every address is in
//! 198.18.0.0/15; see [`sentrymesh_lab::mesh_lab`].

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sentrymesh_lab::mesh_lab::{
    GOSSIP_PORT, Lab, Member, Operator, REVOKED_WITHIN, Role, assert_peers,
};
use sentrymesh_lab::{EVENT_WITHIN, wait_until};
use sentrymesh_mesh::{
    GossipMessage, HOST_QUOTA, Object, OperatorSecret, Revocation, RevocationTarget,
    STATEMENT_QUOTA, SignedCard, Vouch,
};
use sentrymesh_types::{PublicKey, UnixTime};

/// The daemon under test, built with these tests.
const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

/// Objects signed by fresh keys, and by the rival, in the flood.
const FRESH_OBJECTS: usize = 100_000;
const RIVAL_OBJECTS: usize = 50_000;
/// Each fresh key signs this many.
const PER_FRESH_KEY: usize = 4;
/// Objects per flood message.
const PER_MESSAGE: usize = 200;
/// Flood messages sent a second: twelve times what a peer's receive budget
/// lets in, so the budget stays spent.
const FLOOD_RATE: u64 = 100;
/// The most resident memory a daemon may use after the flood (a debug
/// build; its store is bounded by the quotas, its queues by their limits).
const RSS_BOUND_KIB: u64 = 64 * 1024;

fn secret(operator: &Operator) -> OperatorSecret {
    let text = std::fs::read_to_string(&operator.key_file).expect("the operator key file");
    OperatorSecret::from_text(&text).expect("an operator key")
}

fn revoke(by: &OperatorSecret, n: usize) -> Object {
    let mut key = [0x99; 32];
    key[..8].copy_from_slice(&(n as u64).to_le_bytes());
    Revocation {
        issuer: by.operator_id(),
        target: RevocationTarget::Host(PublicKey::from_bytes(key)),
        issued_at: now() - 60,
    }
    .sign(by)
    .expect("sign")
    .into()
}

fn now() -> UnixTime {
    UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
}

/// The flood's messages: revocations by fresh keys of keys no card names,
/// and the rival's own revocations and vouches for the fresh keys,
/// interleaved.
fn flood_messages(rival: &OperatorSecret) -> Vec<Vec<u8>> {
    let fresh: Vec<OperatorSecret> = (0..FRESH_OBJECTS / PER_FRESH_KEY)
        .map(|n| {
            let mut seed = [0x66; 32];
            seed[..8].copy_from_slice(&(n as u64).to_le_bytes());
            OperatorSecret::from_seed(seed)
        })
        .collect();
    let fresh_objects: Vec<Object> = (0..FRESH_OBJECTS)
        .map(|n| revoke(&fresh[n / PER_FRESH_KEY], n))
        .collect();
    let rival_objects: Vec<Object> = (0..RIVAL_OBJECTS)
        .map(|n| match n % 2 {
            0 => revoke(rival, FRESH_OBJECTS + n),
            _ => Vouch {
                voucher: rival.operator_id(),
                subject: fresh[n % fresh.len()].operator_id(),
                overlay: "198.19.200.0/24".parse().expect("a range"),
                issued_at: now() - 60 - (n / fresh.len()) as u64,
            }
            .sign(rival)
            .expect("sign")
            .into(),
        })
        .collect();
    let encode = |chunk: &[Object]| {
        GossipMessage::Objects {
            objects: chunk.to_vec(),
        }
        .encode()
        .expect("a flood message")
    };
    let mut messages = Vec::new();
    let mut rival_chunks = rival_objects.chunks(PER_MESSAGE);
    for chunk in fresh_objects.chunks(PER_MESSAGE) {
        messages.push(encode(chunk));
        messages.extend(rival_chunks.next().map(encode));
    }
    messages.extend(rival_chunks.map(encode));
    messages
}

/// Sends `messages` from inside `from`'s namespace to `to`'s gossip port —
/// through `from`'s tunnel, from its overlay address, as its daemon's own
/// gossip goes — in turn, at [`FLOOD_RATE`] a second, until `stop`.
fn flood(
    from: &Member,
    to: &Member,
    messages: Vec<Vec<u8>>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> std::thread::JoinHandle<std::io::Result<()>> {
    let target = SocketAddr::new(to.overlay.into(), GOSSIP_PORT);
    from.host.spawn_in_namespace(move || {
        let socket = UdpSocket::bind(("0.0.0.0", 0)).expect("a flood socket");
        let interval = Duration::from_micros(1_000_000 / FLOOD_RATE);
        for message in messages.iter().cycle() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            // The tunnel may drop some under load; the flood goes on.
            let _ = socket.send_to(message, target);
            sent.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(interval);
        }
    })
}

#[test]
fn a_flood_and_a_hostile_revoked_host_change_nothing_for_the_mesh() {
    let mut lab = Lab::new(SENTRYMESH, "flood");
    let (a, b) = (lab.operator("a"), lab.operator("b"));
    let mut first = lab.member(&a, "a-sentry-1", Role::Sentry);
    let mut hostile = lab.member(&a, "a-sentry-2", Role::Sentry);
    let mut rival = lab.member(&b, "b-sentry-1", Role::Sentry);
    for (member, others) in [
        (&first, [&hostile, &rival]),
        (&hostile, [&first, &rival]),
        (&rival, [&first, &hostile]),
    ] {
        for other in others {
            member.know_card(other);
        }
    }
    // Each operator trusts the other directly, and admits a third only on
    // two vouches: the rival alone admits no one.
    first.configure(&[&b], 2, 2);
    hostile.configure(&[&b], 2, 2);
    rival.configure(&[&a], 2, 2);
    for member in [&mut first, &mut hostile, &mut rival] {
        member.start();
    }
    assert_peers(&first, &[&hostile, &rival]);
    assert_peers(&rival, &[&first, &hostile]);

    // The rival's sentry floods the first sentry's gossip port.
    let messages = flood_messages(&secret(&b));
    let objects = FRESH_OBJECTS + RIVAL_OBJECTS;
    let (stop, sent) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    // Every message sent twice, about 15 s: the member reads what the
    // rival's budget lets in (32 messages, then 8 a second: some 150, or
    // 30,000 objects, more than the 16,384 revocations a store held in all
    // before quotas) and drops the rest unread; and the rival's quota is
    // reached.
    let to_send = 2 * messages.len() as u64;
    let flooder = flood(&rival, &first, messages, stop.clone(), sent.clone());
    let flood_started = Instant::now();
    let flooded = wait_until(Duration::from_secs(10 * to_send / FLOOD_RATE), || {
        sent.load(Ordering::Relaxed) >= to_send
            && first.metric(
                "sentrymesh_gossip_objects_refused_total",
                ",reason=\"over_quota\"",
            ) > 0
    });
    assert!(flooded, "the flood did not get through:\n{}", first.log());

    // Operator a revokes its second sentry, published at the first while
    // the flood goes on.
    first.know_revocation(&lab, &a, &hostile);
    let published = Instant::now();
    first.reload();
    let mut dropped_by = Vec::new();
    for member in [&first, &rival] {
        let gone = wait_until(REVOKED_WITHIN, || {
            !member.peers().contains(&hostile.wg_public)
        });
        assert!(
            gone,
            "{} still has the revoked host:\n{}",
            member.name,
            member.log()
        );
        dropped_by.push((member.name.clone(), published.elapsed()));
    }
    stop.store(true, Ordering::Relaxed);
    flooder
        .join()
        .expect("the flood thread")
        .expect("the flood thread entered the rival's namespace");
    eprintln!(
        "flood: {} messages of {} objects sent in {:?}; revoked host dropped by {dropped_by:?} \
         after its revocation was published",
        sent.load(Ordering::Relaxed),
        objects,
        flood_started.elapsed(),
    );

    // The hostile host keeps introducing itself (its daemon does, every
    // five seconds), and the rival relays a card for its key re-issued
    // with a higher serial: no one takes it back. It never heard of its
    // revocation: its peers dropped it before anything could reach it.
    hostile.change_card(&a, Role::Sentry);
    let card = SignedCard::from_text(&std::fs::read_to_string(hostile.card()).expect("the card"))
        .expect("a card");
    let relayed = GossipMessage::Objects {
        objects: vec![card.into()],
    }
    .encode()
    .expect("a message");
    let refused =
        |member: &Member| member.metric("sentrymesh_gossip_objects_total", ",outcome=\"refused\"");
    let refused_before = refused(&first);
    let (stop, sent) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let relay = flood(&rival, &first, vec![relayed], stop.clone(), sent);
    // The relayed card reaching the first sentry, refused, is the event.
    let reached = wait_until(EVENT_WITHIN, || refused(&first) > refused_before);
    stop.store(true, Ordering::Relaxed);
    relay
        .join()
        .expect("the relay thread")
        .expect("the relay thread entered the rival's namespace");
    for member in [&first, &rival] {
        assert!(
            !member.peers().contains(&hostile.wg_public),
            "{} took the revoked host back:\n{}",
            member.name,
            member.log()
        );
    }
    assert!(reached, "the re-issued card never reached the first sentry");
    assert_eq!(
        hostile.metric("sentrymesh_mesh_objects", ",kind=\"revocation\""),
        0,
        "the revoked host learned of its revocation"
    );

    // What the flood left: nothing of the fresh keys, the rival within its
    // quotas, and bounded memory.
    let not_admitted = first.metric(
        "sentrymesh_gossip_objects_refused_total",
        ",reason=\"not_admitted\"",
    );
    assert!(not_admitted > 0);
    for member in [&first, &rival, &hostile] {
        let stored: u64 = ["card", "vouch", "revocation"]
            .iter()
            .map(|kind| member.metric("sentrymesh_mesh_objects", &format!(",kind=\"{kind}\"")))
            .sum();
        let admitted = member.metric("sentrymesh_mesh_admitted_operators", "");
        let bound = (HOST_QUOTA + 2 * STATEMENT_QUOTA) as u64 * admitted;
        let rss = member.rss_kib();
        eprintln!(
            "{}: {stored} objects (bound {bound}), {rss} KiB resident (bound {RSS_BOUND_KIB})",
            member.name
        );
        assert!(stored <= bound, "{}: {stored} objects", member.name);
        assert!(rss <= RSS_BOUND_KIB, "{}: {rss} KiB", member.name);
    }
    let over_budget = first.metric(
        "sentrymesh_gossip_messages_total",
        ",outcome=\"over_budget\"",
    );
    let over_quota = first.metric(
        "sentrymesh_gossip_objects_refused_total",
        ",reason=\"over_quota\"",
    );
    eprintln!(
        "the first sentry dropped {over_budget} messages over the rival's budget unread, \
         {not_admitted} objects of operators not admitted unverified, and {over_quota} over the \
         rival's quota"
    );
}
