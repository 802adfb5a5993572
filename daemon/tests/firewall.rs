//! The overlay firewall on namespace hosts (issue 13): operator A's
//! producer and sentry, operator B's sentry. B's sentry reaches A's
//! sentry's chain p2p port (26656, from its card), its gossip and its echo,
//! but no other TCP listener on its overlay address (22, 9586), and A's
//! producer not at all; A's producer reaches every port of its own sentry;
//! a rule added by a reload opens a port while a connection and the
//! session stay; a flood of flows stays within the connection tracker's
//! bound.
//!
//! The tests need root and fail (never skip) without it. Every address is in
//! 198.18.0.0/15; see [`sentrymesh_lab::mesh_lab`].

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use sentrymesh_lab::capture::Capture;
use sentrymesh_lab::mesh_lab::{GOSSIP_PORT, Lab, Member, Role, assert_peers};
use sentrymesh_lab::{EVENT_WITHIN, wait_until};

/// The daemon under test, built with these tests.
const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");
/// The chain p2p port every lab card publishes.
const CHAIN_P2P: u16 = 26656;
/// How long an allowed connection may take on a loaded machine.
const CONNECTS_WITHIN: Duration = EVENT_WITHIN;
/// How long a refused connection is given to get through anyway: a SYN
/// the firewall drops gets no answer at all, so this is only how long the
/// test watches it not succeed.
const REFUSED_FOR: Duration = Duration::from_secs(3);

/// Operator A's producer and sentry and operator B's sentry, mesh formed.
struct Mesh {
    // The members first: their daemons stop before the lab's switch goes.
    a_producer: Member,
    a_sentry: Member,
    b_sentry: Member,
    _lab: Lab,
}

impl Mesh {
    /// Forms the mesh, `a_sentry_firewall` appended to A's sentry's config.
    fn form(label: &str, a_sentry_firewall: &str) -> Mesh {
        let mut lab = Lab::new(SENTRYMESH, label);
        let (a, b) = (lab.operator("a"), lab.operator("b"));
        let mut a_producer = lab.member(&a, "a-producer", Role::Producer);
        let mut a_sentry = lab.member(&a, "a-sentry", Role::Sentry);
        let mut b_sentry = lab.member(&b, "b-sentry", Role::Sentry);
        a_producer.know_card(&a_sentry);
        a_sentry.know_card(&a_producer);
        a_sentry.know_card(&b_sentry);
        b_sentry.know_card(&a_sentry);
        a_producer.configure(&[&b], 1, 1);
        a_sentry.configure(&[&b], 1, 2);
        b_sentry.configure(&[&a], 1, 1);
        append_config(&a_sentry, a_sentry_firewall);
        for member in [&mut a_producer, &mut a_sentry, &mut b_sentry] {
            member.start();
        }
        assert_peers(&a_producer, &[&a_sentry]);
        assert_peers(&a_sentry, &[&a_producer, &b_sentry]);
        assert_peers(&b_sentry, &[&a_sentry]);
        Mesh {
            a_producer,
            a_sentry,
            b_sentry,
            _lab: lab,
        }
    }
}

/// Appends `text` to `member`'s config.
fn append_config(member: &Member, text: &str) {
    let path = member.host.dir().join("sm.toml");
    let config = std::fs::read_to_string(&path).expect("the config");
    member
        .host
        .write_file("sm.toml", &format!("{config}\n{text}"));
}

/// A TCP listener on `member`'s overlay address at `port`, in its
/// namespace, answering each connection with what it reads.
fn listen(member: &Member, port: u16) -> TcpListener {
    let address = SocketAddr::new(member.overlay.into(), port);
    let listener = member
        .host
        .in_namespace(move || TcpListener::bind(address))
        .unwrap_or_else(|error| panic!("listening on {address}: {error}"));
    let echoing = listener.try_clone().expect("a listener clone");
    std::thread::spawn(move || {
        for stream in echoing.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(len @ 1..) = stream.read(&mut buf) {
                    if stream.write_all(&buf[..len]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    listener
}

/// A TCP connection from `from`'s namespace to `to`'s overlay address at
/// `port`, given `within` to succeed.
fn connect(from: &Member, to: IpAddr, port: u16, within: Duration) -> std::io::Result<TcpStream> {
    let address = SocketAddr::new(to, port);
    from.host
        .in_namespace(move || TcpStream::connect_timeout(&address, within))
}

/// Sends one UDP datagram from `from`'s namespace to `to:port`.
fn send_udp(from: &Member, to: IpAddr, port: u16, message: &[u8]) {
    let message = message.to_vec();
    from.host.in_namespace(move || {
        let socket = UdpSocket::bind("0.0.0.0:0").expect("a socket");
        socket
            .send_to(&message, SocketAddr::new(to, port))
            .expect("sending a datagram");
    });
}

/// Sends `message` over `stream` and reads the echo.
fn echoes(stream: &mut TcpStream, message: &[u8]) -> bool {
    stream
        .set_read_timeout(Some(CONNECTS_WITHIN))
        .expect("a read timeout");
    let mut echo = vec![0u8; message.len()];
    stream.write_all(message).is_ok() && stream.read_exact(&mut echo).is_ok() && echo == message
}

/// The firewall's inbound drops on `member`.
fn inbound_drops(member: &Member) -> u64 {
    member.metric(
        "sentrymesh_dropped_packets_total",
        ",reason=\"firewall_inbound\"",
    )
}

#[test]
fn a_rival_reaches_the_chain_port_gossip_and_echo_and_nothing_else() {
    let mesh = Mesh::form("fw-rival", "");
    let (a_sentry, a_producer, b_sentry) = (&mesh.a_sentry, &mesh.a_producer, &mesh.b_sentry);
    let sentry = IpAddr::from(a_sentry.overlay);
    let _listeners: Vec<TcpListener> = [CHAIN_P2P, 22, 9586]
        .into_iter()
        .map(|port| listen(a_sentry, port))
        .collect();
    let _producer_listener = listen(a_producer, CHAIN_P2P);

    // The chain p2p port, from another operator's sentry.
    let mut chain = connect(b_sentry, sentry, CHAIN_P2P, CONNECTS_WITHIN)
        .expect("B's sentry reaches A's sentry's chain p2p port");
    assert!(echoes(&mut chain, b"hello, p2p"));
    // Echo.
    assert!(
        b_sentry.pings(a_sentry),
        "B's sentry cannot ping A's sentry"
    );
    // Gossip: a datagram from B's sentry to A's sentry's gossip port is
    // written to A's TUN device (past the firewall), where a capture sees
    // it; one to another UDP port is not.
    let gossip = Capture::start(&a_sentry.host, a_sentry.overlay, GOSSIP_PORT);
    let other = Capture::start(&a_sentry.host, a_sentry.overlay, 9999);
    let marker = format!("firewall test {}", std::process::id());
    let dropped_before = inbound_drops(a_sentry);
    send_udp(b_sentry, sentry, GOSSIP_PORT, marker.as_bytes());
    send_udp(b_sentry, sentry, 9999, marker.as_bytes());
    // The capture of the other port is stopped only after the gossip
    // datagram, sent after it, is seen.
    let seen = wait_until(CONNECTS_WITHIN, || inbound_drops(a_sentry) > dropped_before);
    assert!(
        seen,
        "the datagram to port 9999 was not dropped by the firewall"
    );
    let gossiped = gossip.stop();
    assert!(
        gossiped.iter().any(|payload| payload == marker.as_bytes()),
        "B's datagram did not reach A's gossip port"
    );
    assert!(
        !other
            .stop()
            .iter()
            .any(|payload| payload == marker.as_bytes()),
        "B's datagram reached UDP 9999"
    );

    // SSH and the metrics port: dropped, and counted.
    let before = inbound_drops(a_sentry);
    for port in [22, 9586] {
        let refused = connect(b_sentry, sentry, port, REFUSED_FOR);
        assert!(
            refused.is_err(),
            "B's sentry reached TCP {port} of A's sentry"
        );
    }
    assert!(
        inbound_drops(a_sentry) >= before + 2,
        "the firewall did not count the SYNs it dropped"
    );
    let log = a_sentry.log();
    assert!(
        log.contains("firewall: dropped tcp to port 22 from the peer")
            && log.contains(&b_sentry.wg_public),
        "the first drop is not logged by peer:\n{log}"
    );
    // Not the producer at all: B's sentry has no route to it.
    let producer = IpAddr::from(a_producer.overlay);
    assert!(connect(b_sentry, producer, CHAIN_P2P, REFUSED_FOR).is_err());
    assert!(!b_sentry.pings(a_producer));

    // A's producer, of the same operator, reaches every port.
    for port in [CHAIN_P2P, 22, 9586] {
        let mut own = connect(a_producer, sentry, port, CONNECTS_WITHIN)
            .unwrap_or_else(|error| panic!("A's producer cannot reach TCP {port}: {error}"));
        assert!(echoes(&mut own, b"own operator"));
    }
    // And `wg show` is what it was: the peers and their sessions.
    assert_peers(a_sentry, &[a_producer, b_sentry]);
}

#[test]
fn a_rule_added_by_reload_opens_a_port_and_keeps_the_session() {
    let mesh = Mesh::form("fw-reload", "");
    let (a_sentry, b_sentry) = (&mesh.a_sentry, &mesh.b_sentry);
    let sentry = IpAddr::from(a_sentry.overlay);
    let _listeners: Vec<TcpListener> = [CHAIN_P2P, 9586]
        .into_iter()
        .map(|port| listen(a_sentry, port))
        .collect();
    let mut chain = connect(b_sentry, sentry, CHAIN_P2P, CONNECTS_WITHIN).expect("the chain port");
    assert!(echoes(&mut chain, b"before"));
    assert!(connect(b_sentry, sentry, 9586, REFUSED_FOR).is_err());
    let handshake = latest_handshake(a_sentry, b_sentry);

    append_config(
        a_sentry,
        "[[firewall.inbound]]\nfrom = \"operators\"\nroles = [\"sentry\"]\nproto = \"tcp\"\n\
         ports = \"9586\"\n",
    );
    a_sentry.reload();
    let mut opened =
        connect(b_sentry, sentry, 9586, CONNECTS_WITHIN).expect("the port the reload opened");
    assert!(echoes(&mut opened, b"opened"));
    // The connection made before the reload carries on, in the same
    // session (no new handshake was needed).
    assert!(echoes(&mut chain, b"after"));
    assert!(a_sentry.has_session_with(b_sentry));
    assert_eq!(latest_handshake(a_sentry, b_sentry), handshake);
}

/// The time of the last handshake of `member` with `peer`, as `wg show`
/// prints it.
fn latest_handshake(member: &Member, peer: &Member) -> String {
    member
        .host
        .run("wg", &["show", &member.ifname, "latest-handshakes"])
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{}\t", peer.wg_public)))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{} has no peer {}", member.name, peer.name))
}

#[test]
fn a_flood_of_flows_stays_within_the_trackers_bound() {
    // Outbound rules make A's sentry track what B's sentry opens (its
    // answers would be refused otherwise); a small table makes a flood of
    // a few thousand flows overflow it.
    let mesh = Mesh::form(
        "fw-flood",
        "[firewall]\nconntrack_max = 64\n\n[[firewall.outbound]]\nfrom = \"operators\"\n\
         proto = \"icmp\"\n",
    );
    let (a_sentry, b_sentry) = (&mesh.a_sentry, &mesh.b_sentry);
    let gossip = SocketAddr::new(a_sentry.overlay.into(), GOSSIP_PORT);
    const FLOWS: u64 = 3000;
    b_sentry.host.in_namespace(move || {
        for _ in 0..FLOWS {
            // Each socket a new source port: a new flow.
            let socket = UdpSocket::bind("0.0.0.0:0").expect("a socket");
            let _ = socket.send_to(b"flood", gossip);
        }
    });
    let capacity = a_sentry.metric("sentrymesh_conntrack_capacity", "");
    assert_eq!(capacity, 64);
    let evicted = wait_until(Duration::from_secs(30), || {
        a_sentry.metric("sentrymesh_conntrack_evictions_total", "") > 0
    });
    assert!(evicted, "the flood evicted nothing");
    let entries = a_sentry.metric("sentrymesh_conntrack_entries", "");
    assert!(
        entries <= capacity,
        "{entries} flows tracked in {capacity} slots"
    );
    // The member goes on: its session, its echo, its chain port.
    let _listener = listen(a_sentry, CHAIN_P2P);
    let mut chain = connect(
        b_sentry,
        a_sentry.overlay.into(),
        CHAIN_P2P,
        CONNECTS_WITHIN,
    )
    .expect("the chain port after the flood");
    assert!(echoes(&mut chain, b"still here"));
    assert!(b_sentry.pings(a_sentry));
    assert!(a_sentry.has_session_with(b_sentry));
}
