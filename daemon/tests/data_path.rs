//! The data path end to end: a TCP bulk transfer as fast as the tunnel goes
//! (through the segmentation and coalescing offloads) arrives intact, and a
//! UDP stream on the then uncongested tunnel, paced by what has arrived (so
//! a busy machine slows it, never overflows a queue), arrives complete, in
//! order and intact; over IPv4 and IPv6, inside and outside. (Beside a bulk
//! transfer the tunnel is congested by design: TCP fills it until packets
//! drop, so the two are run one after the other.)

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use sentrymesh_lab::{
    Daemon, EVENT_WITHIN, Host, Implementation, Keys, Overlay, PeerSection, add_address, configure,
    link, ping, set_up, unique_ifname,
};

/// The daemon under test, built with these tests.
const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

const DATAGRAMS: u64 = 20_000;
/// The most datagrams of the paced stream on their way at once: fewer
/// than the smallest queue they pass (a TUN device's 500 packets).
const IN_FLIGHT: u64 = 128;
const DATAGRAM_LEN: usize = 1_000;
const TCP_BYTES: usize = 32 << 20;

/// Gives a socket an 8 MiB receive buffer, so the test's own reader never
/// drops what the tunnel delivered.
fn large_receive_buffer(socket: &impl AsRawFd) {
    let size: libc::c_int = 8 << 20;
    // SAFETY: SO_RCVBUFFORCE reads a `c_int` from the pointer given.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const size).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(
        result,
        0,
        "SO_RCVBUFFORCE: {}",
        std::io::Error::last_os_error()
    );
}

/// Two hosts with sentrymesh on each (`a` sends, as `implementations.0`;
/// `b` receives), joined over IPv4 or IPv6.
struct Tunnel {
    a: Host,
    b: Host,
    overlay: Overlay,
    _daemons: (Daemon, Daemon),
}

fn tunnel(
    label: &str,
    ipv6_underlay: bool,
    implementations: (Implementation, Implementation),
) -> Tunnel {
    let (a, b) = (
        Host::new(&format!("{label}-a")),
        Host::new(&format!("{label}-b")),
    );
    let underlay = link(&a, &b);
    let overlay = Overlay::allocate();
    let (if_a, if_b) = (unique_ifname(), unique_ifname());
    let daemons = (
        implementations.0.start(&a, &if_a),
        implementations.1.start(&b, &if_b),
    );
    let (keys_a, keys_b) = (Keys::generate(), Keys::generate());
    let (end_a, end_b): (IpAddr, IpAddr) = if ipv6_underlay {
        (underlay.a6.into(), underlay.b6.into())
    } else {
        (underlay.a4.into(), underlay.b4.into())
    };
    for (host, ifname, keys, peer_keys, peer_end, peer4, peer6, own4, own6) in [
        (
            &a, &if_a, &keys_a, &keys_b, end_b, overlay.b4, overlay.b6, overlay.a4, overlay.a6,
        ),
        (
            &b, &if_b, &keys_b, &keys_a, end_a, overlay.a4, overlay.a6, overlay.b4, overlay.b6,
        ),
    ] {
        let peer = PeerSection {
            public_key: peer_keys.public.clone(),
            endpoint: Some(SocketAddr::new(peer_end, 51820)),
            allowed_ips: vec![format!("{peer4}/32"), format!("{peer6}/128")],
            ..PeerSection::default()
        };
        configure(host, ifname, &keys.private, Some(51820), &[peer]);
        add_address(host, ifname, own4.into(), Overlay::PREFIX4);
        add_address(host, ifname, own6.into(), Overlay::PREFIX6);
        host.ip(&["link", "set", ifname, "mtu", "1420"]);
        set_up(host, ifname);
    }
    ping(&a, overlay.b4.into(), 2);
    Tunnel {
        a,
        b,
        overlay,
        _daemons: daemons,
    }
}

/// The bytes of datagram `sequence`: the number, then a pattern made from it.
fn datagram(sequence: u64) -> [u8; DATAGRAM_LEN] {
    let mut bytes = [0u8; DATAGRAM_LEN];
    bytes[..8].copy_from_slice(&sequence.to_be_bytes());
    for (index, byte) in bytes.iter_mut().enumerate().skip(8) {
        *byte = (sequence as usize).wrapping_mul(31).wrapping_add(index) as u8;
    }
    bytes
}

/// Byte `index` of the TCP transfer.
fn stream_byte(index: usize) -> u8 {
    (index.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// Held while a test moves traffic: a bulk transfer in one test would
/// congest the CPUs under another's paced stream, which then may lose
/// datagrams in a TUN queue as the sending daemon waits for a core.
static TRAFFIC: Mutex<()> = Mutex::new(());

fn bulk_then_stream(tunnel: &Tunnel, inner_ipv6: bool) {
    let _alone = TRAFFIC.lock().unwrap_or_else(PoisonError::into_inner);
    let (to, from): (IpAddr, IpAddr) = if inner_ipv6 {
        (tunnel.overlay.b6.into(), tunnel.overlay.a6.into())
    } else {
        (tunnel.overlay.b4.into(), tunnel.overlay.a4.into())
    };
    let receiver = tunnel
        .b
        .in_namespace(move || UdpSocket::bind((to, 0)).expect("bind"));
    large_receive_buffer(&receiver);
    receiver
        .set_read_timeout(Some(EVENT_WITHIN))
        .expect("timeout");
    let destination = receiver.local_addr().expect("address");
    let sender = tunnel
        .a
        .in_namespace(move || UdpSocket::bind((from, 0)).expect("bind"));
    let listener = tunnel
        .b
        .in_namespace(move || TcpListener::bind((to, 0)).expect("listen"));
    let tcp_destination = listener.local_addr().expect("address");
    let tcp_sender = tunnel
        .a
        .in_namespace(move || TcpStream::connect(tcp_destination).expect("connect"));

    // First a TCP bulk transfer, checked byte by byte.
    let tcp_reader = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 1 << 16];
        let mut offset = 0;
        loop {
            let read = stream.read(&mut buf).expect("read the TCP stream");
            if read == 0 {
                return offset;
            }
            for (index, byte) in buf[..read].iter().enumerate() {
                assert_eq!(
                    *byte,
                    stream_byte(offset + index),
                    "TCP byte {} corrupted",
                    offset + index
                );
            }
            offset += read;
        }
    });
    let tcp_writer = thread::spawn(move || {
        let mut stream = tcp_sender;
        let data: Vec<u8> = (0..TCP_BYTES).map(stream_byte).collect();
        stream.write_all(&data).expect("write the TCP stream");
    });

    tcp_writer.join().expect("the TCP writer");
    let received = tcp_reader.join().expect("the TCP stream arrived intact");
    assert_eq!(received, TCP_BYTES);

    // Then the stream: numbered datagrams, paced by what arrived, so no
    // queue on the way (the TUN devices' 500 packets, the sockets') can
    // overflow however slowly a busy machine lets the daemons run.
    let arrived = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&arrived);
    let udp_reader = thread::spawn(move || {
        let mut buf = [0u8; 2 * DATAGRAM_LEN];
        for expected in 0..DATAGRAMS {
            let len = receiver
                .recv(&mut buf)
                .unwrap_or_else(|error| panic!("datagram {expected} never came: {error}"));
            let sequence = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
            assert_eq!(sequence, expected, "datagrams lost or reordered");
            assert_eq!(
                &buf[..len],
                &datagram(sequence)[..],
                "datagram {sequence} corrupted"
            );
            counted.store(expected + 1, Ordering::Release);
        }
    });

    let started = Instant::now();
    for sequence in 0..DATAGRAMS {
        while sequence - arrived.load(Ordering::Acquire) >= IN_FLIGHT {
            if udp_reader.is_finished() {
                // It failed; its panic says how.
                break;
            }
            thread::sleep(Duration::from_micros(200));
        }
        sender
            .send_to(&datagram(sequence), destination)
            .expect("send");
    }
    udp_reader.join().expect("the UDP stream arrived whole");
    eprintln!(
        "inner IPv{}: {DATAGRAMS} datagrams in order and {TCP_BYTES} TCP bytes intact in {:?}",
        if inner_ipv6 { 6 } else { 4 },
        started.elapsed()
    );
}

const OFFLOADS_ON: (Implementation, Implementation) = (
    Implementation::Sentrymesh(SENTRYMESH),
    Implementation::Sentrymesh(SENTRYMESH),
);

#[test]
fn streams_arrive_in_order_and_intact_over_an_ipv4_underlay() {
    let tunnel = tunnel("order4", false, OFFLOADS_ON);
    bulk_then_stream(&tunnel, false);
    bulk_then_stream(&tunnel, true);
}

#[test]
fn streams_arrive_in_order_and_intact_over_an_ipv6_underlay() {
    let tunnel = tunnel("order6", true, OFFLOADS_ON);
    bulk_then_stream(&tunnel, false);
    bulk_then_stream(&tunnel, true);
}

/// A sender without offloads: one packet per TUN read, one datagram per UDP
/// message, to a receiver that coalesces.
#[test]
fn streams_arrive_in_order_and_intact_from_a_sender_without_offloads() {
    let tunnel = tunnel(
        "orderoff",
        false,
        (
            Implementation::SentrymeshOffloadsOff(SENTRYMESH),
            Implementation::Sentrymesh(SENTRYMESH),
        ),
    );
    bulk_then_stream(&tunnel, false);
    bulk_then_stream(&tunnel, true);
}

/// A receiver without offloads: GSO batches arrive as single datagrams and
/// every packet goes to the TUN device alone.
#[test]
fn streams_arrive_in_order_and_intact_to_a_receiver_without_offloads() {
    let tunnel = tunnel(
        "orderoffrx",
        true,
        (
            Implementation::Sentrymesh(SENTRYMESH),
            Implementation::SentrymeshOffloadsOff(SENTRYMESH),
        ),
    );
    bulk_then_stream(&tunnel, false);
    bulk_then_stream(&tunnel, true);
}
