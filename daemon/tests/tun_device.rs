//! The TUN device against the real kernel (needs root, as CI runs it): a
//! packet the kernel routes to the device comes out of it, and a packet
//! written to it reaches a socket.
//!
//! The device gets an address in 198.18.0.0/15, unique to this process, and
//! disappears with its file descriptor even when the test fails.

use std::fs;
use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use sentrymesh::sys::tun::Tun;
use sentrymesh_lab::{EVENT_WITHIN, require_root};

/// An IPv4 header checksum over `header`.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn packets_flow_through_the_device_both_ways() {
    require_root();
    let id = std::process::id();
    let name = format!("smtun{}", id % 100_000);
    // A /30 of our own inside 198.18.0.0/15, different for each process.
    let subnet = [
        198,
        18 + ((id >> 14) & 1) as u8,
        ((id >> 6) & 0xff) as u8,
        ((id & 0x3f) << 2) as u8,
    ];
    let local = Ipv4Addr::new(subnet[0], subnet[1], subnet[2], subnet[3] + 1);
    let remote = Ipv4Addr::new(subnet[0], subnet[1], subnet[2], subnet[3] + 2);

    let tun = Tun::create(&name).expect("create the TUN device");
    assert_eq!(tun.name(), name);
    tun.set_mtu(1280).expect("set the MTU");
    tun.set_up().expect("bring the device up");
    tun.set_nonblocking(true).expect("non-blocking");
    let mtu = fs::read_to_string(format!("/sys/class/net/{name}/mtu")).expect("sysfs mtu");
    assert_eq!(mtu.trim(), "1280");
    let status = Command::new("ip")
        .args(["addr", "add", &format!("{local}/30"), "dev", &name])
        .status()
        .expect("run ip");
    assert!(status.success(), "ip addr add failed");

    // Out of the kernel, into the device.
    let socket = UdpSocket::bind((local, 0)).expect("bind");
    socket
        .set_read_timeout(Some(EVENT_WITHIN))
        .expect("timeout");
    socket.send_to(b"sentrymesh", (remote, 9)).expect("send");
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + EVENT_WITHIN;
    let packet = loop {
        match tun.recv(&mut buf) {
            // The kernel also sends IPv6 neighbour discovery; find our datagram.
            Ok(len)
                if len >= 28
                    && buf[0] >> 4 == 4
                    && buf[9] == 17
                    && buf[16..20] == remote.octets() =>
            {
                break buf[..len].to_vec();
            }
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "no packet came out of the device"
                );
                sleep(Duration::from_millis(5));
            }
            Err(error) => panic!("reading the device: {error}"),
        }
    };
    assert_eq!(&packet[12..16], &local.octets());
    assert_eq!(&packet[28..], b"sentrymesh");

    // A reply written into the device reaches the socket.
    let mut reply = packet.clone();
    reply[12..16].copy_from_slice(&remote.octets());
    reply[16..20].copy_from_slice(&local.octets());
    let (source_port, destination_port) = ([packet[20], packet[21]], [packet[22], packet[23]]);
    reply[20..22].copy_from_slice(&destination_port);
    reply[22..24].copy_from_slice(&source_port);
    reply[26..28].copy_from_slice(&[0, 0]); // no UDP checksum, allowed over IPv4
    reply[10..12].copy_from_slice(&[0, 0]);
    let checksum = ipv4_checksum(&reply[..20]);
    reply[10..12].copy_from_slice(&checksum.to_be_bytes());
    assert_eq!(tun.send(&reply).expect("write to the device"), reply.len());
    let (len, from) = socket.recv_from(&mut buf).expect("the reply arrives");
    assert_eq!(&buf[..len], b"sentrymesh");
    assert_eq!(from, (remote, 9).into());

    drop(tun);
    assert!(
        !std::path::Path::new(&format!("/sys/class/net/{name}")).exists(),
        "the device outlived its descriptor"
    );
}
