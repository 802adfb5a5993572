//! Small idle peers (issue 14, point 4), on namespace hosts running
//! `sentrymesh up`: a sentry of a two-operator mesh learns by gossip the
//! cards of 1,000 more sentries of four more operators that it trusts
//! (250 each, within the store's quota per operator), whose endpoints
//! never answer. It takes every one as a peer and tries a handshake with
//! each; no gossip waits in the interface's staging for them, and each
//! costs at most [`MAX_KIB_PER_PEER`] of resident anonymous memory. Then
//! their operators revoke them: the peers go, with their memory, but for
//! what the mesh keeps of revoked hosts (see [`MAX_KIB_KEPT_PER_REVOKED`]).
//!
//! ```text
//!   switch (bridge 198.18.0.0/24)
//!     |-- a-sentry 198.18.0.1, overlay 198.19.1.1 (measured)
//!     |     sinkA 198.18.250.1/30 -- veth -- sinkB: 198.18.128.0/17 via
//!     |     198.18.250.2, a permanent neighbour whose MAC nobody has, so
//!     |     what goes to the 1,000 endpoints (198.18.130.1–198.18.133.250)
//!     |     leaves and is lost
//!     `-- b-sentry 198.18.0.2, overlay 198.19.2.2: the cards and the
//!           revocations come from its overlay address, through its tunnel,
//!           as its own gossip would
//! ```
//!
//! Memory is the daemon's resident anonymous memory (`RssAnon`): what its
//! heaps hold. Its whole resident memory (`VmRSS`) is printed beside it,
//! but not bounded: it also counts the pages of the program a debug build
//! faults in as it first runs a path (the handling of 1,000 revocations
//! faults in about 0.8 MiB of them), which hold nothing of any peer.
//!
//! The figures (memory before, with the peers, per peer, after the
//! revocations) are printed; `benches/README.md` ("Many peers")
//! quotes them. Every wait is for the event, with a ceiling far above what
//! a quiet machine takes. The test needs root and fails (never skips)
//! without it.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use rand_core::OsRng;
use sentrymesh_lab::mesh_lab::{GOSSIP_PORT, Lab, Member, Operator, Role, assert_peers};
use sentrymesh_lab::wait_until;
use sentrymesh_mesh::{
    GossipMessage, HOST_QUOTA, HostCard, Object, OperatorSecret, Revocation, RevocationTarget,
    Role as CardRole,
};
use sentrymesh_types::{PrivateKey, PublicKey, UnixTime};

/// The daemon under test, built with these tests.
const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

/// The extra peers, and how many operators sign their cards.
const EXTRA_PEERS: usize = 1_000;
const EXTRA_OPERATORS: usize = 4;
/// Objects a gossip message carries.
const PER_MESSAGE: usize = 25;
/// The most resident anonymous memory an idle peer may cost: measured at
/// 5.2–6.0 KiB (`benches/README.md`, "Many peers"), the rest room for
/// what a busy machine's daemon allocated and freed meanwhile (the spread
/// of the figure under load was 1.1 KiB).
const MAX_KIB_PER_PEER: f64 = 7.0;
/// What the member may keep of each revoked peer once it is gone. What it
/// must keep is the store's: the revocation, and the revoked public card
/// aside until it expires (so that the revocation may go to other
/// operators), with their indices: 2.0 KiB a host of live heap
/// (heaptrack), and 0.2 KiB of gossip's and the trust log's records of
/// them. The peers' own memory comes back (the data path gives freed
/// memory back to the system after removals) but for the pages that what
/// is kept shares with it, about 1.5 KiB a host more; measured at 3.6–4.2
/// KiB a host (`benches/README.md`, "Many peers").
const MAX_KIB_KEPT_PER_REVOKED: f64 = 5.0;
/// The ceiling of every wait: a quiet machine takes seconds.
const WITHIN: Duration = Duration::from_secs(300);
/// How often a wait scrapes the member's metrics: each scrape lists every
/// peer, work a debug build with 1,000 peers on a busy machine feels.
const SCRAPE_EVERY: Duration = Duration::from_secs(1);

/// The value of `member`'s metric `name{labels}`, read at most every
/// [`SCRAPE_EVERY`] by a wait that polls it.
fn scrape(member: &Member, name: &str, labels: &str) -> u64 {
    std::thread::sleep(SCRAPE_EVERY);
    member.metric(name, labels)
}

fn secret(operator: &Operator) -> OperatorSecret {
    let text = std::fs::read_to_string(&operator.key_file).expect("the operator key file");
    OperatorSecret::from_text(&text).expect("an operator key")
}

fn now() -> UnixTime {
    UnixTime(sentrymesh_lab::unix_now())
}

/// Extra host `index` of operator `operator` (the lab's number `number`):
/// its WireGuard key, and its card with an endpoint nobody answers at.
fn extra_host(operator: &OperatorSecret, number: u8, index: u8) -> (PublicKey, Object) {
    let mut seed = [0x3c; 32];
    seed[1] = number;
    seed[2] = index;
    let key = PrivateKey::from_bytes(seed);
    let card = HostCard {
        operator: operator.operator_id(),
        name: format!("e{number}-sentry-{index}"),
        role: CardRole::Sentry,
        wg_public_key: key.public_key(),
        addresses: vec![
            format!("198.19.{number}.{index}/32")
                .parse()
                .expect("an address"),
        ],
        endpoints: vec![
            format!("198.18.{}.{index}:51820", 127 + number)
                .parse()
                .expect("an endpoint"),
        ],
        allowed_ips: Vec::new(),
        not_before: UnixTime(now().0 - 60),
        not_after: UnixTime(now().0 + 86_400),
        serial: 1,
        chain_p2p: None,
    };
    let signed = card
        .issue(operator, &key, &mut OsRng)
        .expect("an extra host's card");
    (key.public_key(), signed.into())
}

/// The revocation by `operator` of the host key `key`.
fn revocation(operator: &OperatorSecret, key: PublicKey) -> Object {
    Revocation {
        issuer: operator.operator_id(),
        target: RevocationTarget::Host(key),
        issued_at: now(),
    }
    .sign(operator)
    .expect("a revocation")
    .into()
}

/// Sends `objects` by gossip from `from`'s overlay address, through its
/// tunnel, to `to`'s gossip port, in messages of [`PER_MESSAGE`] with a
/// pause between them (the receiver's budget per peer is 8 messages a
/// second, after a burst), until `done` holds.
fn gossip_until(from: &Member, to: &Member, objects: &[Object], done: impl Fn() -> bool) {
    let messages: Vec<Vec<u8>> = objects
        .chunks(PER_MESSAGE)
        .map(|chunk| {
            GossipMessage::Objects {
                objects: chunk.to_vec(),
            }
            .encode()
            .expect("a gossip message")
        })
        .collect();
    let target = SocketAddr::new(to.overlay.into(), GOSSIP_PORT);
    let delivered = wait_until(WITHIN, || {
        let messages = messages.clone();
        from.host.in_namespace(move || {
            let socket = UdpSocket::bind(("0.0.0.0", 0)).expect("a gossip socket");
            for message in &messages {
                // Lost under load, it goes again on the next pass.
                let _ = socket.send_to(message, target);
                std::thread::sleep(Duration::from_millis(150));
            }
        });
        done()
    });
    assert!(delivered, "the gossip never took\n{}", to.log());
}

/// A daemon's memory, in KiB: resident, and of that anonymous.
#[derive(Clone, Copy)]
struct Memory {
    rss: u64,
    anon: u64,
}

impl Memory {
    fn of(member: &Member) -> Memory {
        Memory {
            rss: member.rss_kib(),
            anon: member.anon_kib(),
        }
    }

    /// The anonymous memory this holds more than `base`, per extra host.
    fn per_host_over(&self, base: &Memory) -> f64 {
        self.anon.saturating_sub(base.anon) as f64 / EXTRA_PEERS as f64
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} KiB anonymous ({} KiB resident)", self.anon, self.rss)
    }
}

/// The keys of the interface's peers that sent something (a handshake
/// initiation), by `wg show IF transfer`.
fn peers_sent_to(member: &Member) -> usize {
    member
        .host
        .run("wg", &["show", &member.ifname, "transfer"])
        .lines()
        .filter(|line| line.split('\t').nth(2).is_some_and(|sent| sent != "0"))
        .count()
}

#[test]
fn a_thousand_idle_peers_by_gossip_are_small_and_go_with_their_revocation() {
    assert!(
        EXTRA_PEERS.div_ceil(EXTRA_OPERATORS) <= HOST_QUOTA.min(250),
        "each extra operator's hosts fit its quota and its /24"
    );
    let mut lab = Lab::new(SENTRYMESH, "idle");
    let a_op = lab.operator("a");
    let b_op = lab.operator("b");
    let extra_ops: Vec<Operator> = (0..EXTRA_OPERATORS)
        .map(|n| lab.operator(&format!("e{n}")))
        .collect();
    let mut a = lab.member(&a_op, "a-sentry", Role::Sentry);
    let mut b = lab.member(&b_op, "b-sentry", Role::Sentry);
    let a_trusts: Vec<&Operator> = std::iter::once(&b_op).chain(&extra_ops).collect();
    let b_trusts: Vec<&Operator> = std::iter::once(&a_op).chain(&extra_ops).collect();
    a.configure(&a_trusts, 1, 1);
    b.configure(&b_trusts, 1, 1);
    a.know_card(&b);
    b.know_card(&a);

    // Where the extra hosts' endpoints lead: out of a sink, to nobody.
    for args in [
        &[
            "link", "add", "sinkA", "type", "veth", "peer", "name", "sinkB",
        ][..],
        &["addr", "add", "198.18.250.1/30", "dev", "sinkA"],
        &["link", "set", "sinkA", "up"],
        &["link", "set", "sinkB", "up"],
        &[
            "neigh",
            "add",
            "198.18.250.2",
            "lladdr",
            "02:00:00:00:00:02",
            "dev",
            "sinkA",
            "nud",
            "permanent",
        ],
        &["route", "add", "198.18.128.0/17", "via", "198.18.250.2"],
    ] {
        a.host.ip(args);
    }

    a.start();
    b.start();
    assert_peers(&a, &[&b]);
    assert_peers(&b, &[&a]);
    // Settled: a few rounds of gossip each way.
    let settled = wait_until(WITHIN, || {
        scrape(
            &a,
            "sentrymesh_gossip_messages_total",
            ",outcome=\"received\"",
        ) >= 3
    });
    assert!(settled, "no gossip from b\n{}", a.log());
    let before = Memory::of(&a);

    let per_operator = EXTRA_PEERS / EXTRA_OPERATORS;
    let secrets: Vec<OperatorSecret> = extra_ops.iter().map(secret).collect();
    let mut keys = Vec::new();
    let mut cards = Vec::new();
    for (operator, secret) in extra_ops.iter().zip(&secrets) {
        for index in 1..=per_operator {
            let index = u8::try_from(index).expect("at most 250 a /24");
            let (key, card) = extra_host(secret, operator.number, index);
            keys.push((secret, key));
            cards.push(card);
        }
    }
    gossip_until(&b, &a, &cards, || {
        a.metric("sentrymesh_peers", "") == (1 + EXTRA_PEERS) as u64
    });
    // Most new peers were given a handshake to try (their introductions
    // start one; gossip reaches out to a few peers only), so the figure
    // below counts peers that hold a handshake's state, not bare entries.
    let tried = wait_until(WITHIN, || {
        std::thread::sleep(SCRAPE_EVERY);
        peers_sent_to(&a) > EXTRA_PEERS / 2
    });
    assert!(
        tried,
        "{} of the peers had a handshake tried\n{}",
        peers_sent_to(&a),
        a.log()
    );
    // Gossip went to new peers that never had a session (its rounds reach
    // out to one a round, and pushes pick some): none of it waits.
    let dropped = wait_until(WITHIN, || {
        scrape(
            &a,
            "sentrymesh_gossip_messages_total",
            ",outcome=\"no_session\"",
        ) >= 3
    });
    assert!(dropped, "no gossip went to the new peers");
    assert_eq!(
        a.metric("sentrymesh_staged_packets", ""),
        0,
        "gossip waits in staging for peers that never had a session"
    );
    let with_peers = Memory::of(&a);
    let per_peer = with_peers.per_host_over(&before);
    eprintln!(
        "a-sentry's memory: {before} with 1 peer, {with_peers} with {} peers learnt by gossip, \
         none answering: {per_peer:.2} KiB anonymous per idle peer ({:.2} KiB resident)",
        1 + EXTRA_PEERS,
        with_peers.rss.saturating_sub(before.rss) as f64 / EXTRA_PEERS as f64,
    );
    assert!(
        per_peer <= MAX_KIB_PER_PEER,
        "{per_peer:.2} KiB per idle peer, more than {MAX_KIB_PER_PEER}"
    );

    // Their operators revoke them all.
    let revocations: Vec<Object> = keys
        .iter()
        .map(|(secret, key)| revocation(secret, *key))
        .collect();
    gossip_until(&b, &a, &revocations, || {
        a.metric("sentrymesh_peers", "") == 1
    });
    assert_eq!(
        a.metric("sentrymesh_mesh_objects", ",kind=\"revocation\""),
        EXTRA_PEERS as u64
    );
    assert_peers(&a, &[&b]);
    // The data path gives the memory back within a second of the last
    // removal, when its loop turns: waited for, not assumed.
    let mut after = Memory::of(&a);
    wait_until(WITHIN, || {
        std::thread::sleep(SCRAPE_EVERY);
        after = Memory::of(&a);
        after.per_host_over(&before) <= MAX_KIB_KEPT_PER_REVOKED
    });
    let kept = after.per_host_over(&before);
    eprintln!(
        "after their revocation: {after}, {kept:.2} KiB anonymous per revoked peer more than \
         before ({} of the {} KiB the peers took came back)",
        with_peers.anon.saturating_sub(after.anon),
        with_peers.anon.saturating_sub(before.anon)
    );
    assert!(
        kept <= MAX_KIB_KEPT_PER_REVOKED,
        "{kept:.2} KiB per revoked peer kept, more than {MAX_KIB_KEPT_PER_REVOKED}"
    );
}
