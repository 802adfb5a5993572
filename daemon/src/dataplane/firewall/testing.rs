//! Packets for the firewall's tests: IPv4 and IPv6 headers around TCP, UDP
//! and ICMP headers, whole or in fragments.

use std::net::IpAddr;

/// An IP packet from `source` to `destination` (both of one family) of
/// protocol `proto` carrying `payload`.
pub(crate) fn ip(source: &str, destination: &str, proto: u8, payload: &[u8]) -> Vec<u8> {
    let source: IpAddr = source.parse().unwrap();
    let destination: IpAddr = destination.parse().unwrap();
    match (source, destination) {
        (IpAddr::V4(source), IpAddr::V4(destination)) => {
            let mut packet = vec![0u8; 20];
            packet[0] = 0x45;
            let total = u16::try_from(20 + payload.len()).unwrap();
            packet[2..4].copy_from_slice(&total.to_be_bytes());
            packet[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
            packet[8] = 64;
            packet[9] = proto;
            packet[12..16].copy_from_slice(&source.octets());
            packet[16..20].copy_from_slice(&destination.octets());
            packet.extend_from_slice(payload);
            packet
        }
        (IpAddr::V6(source), IpAddr::V6(destination)) => {
            let mut packet = vec![0u8; 40];
            packet[0] = 0x60;
            let len = u16::try_from(payload.len()).unwrap();
            packet[4..6].copy_from_slice(&len.to_be_bytes());
            packet[6] = proto;
            packet[7] = 64;
            packet[8..24].copy_from_slice(&source.octets());
            packet[24..40].copy_from_slice(&destination.octets());
            packet.extend_from_slice(payload);
            packet
        }
        _ => panic!("one family"),
    }
}

/// A TCP header (no options, no payload) from `source` to `destination`.
pub(crate) fn tcp(source: u16, destination: u16) -> Vec<u8> {
    let mut header = vec![0u8; 20];
    header[0..2].copy_from_slice(&source.to_be_bytes());
    header[2..4].copy_from_slice(&destination.to_be_bytes());
    header[12] = 5 << 4;
    header[13] = 0x02;
    header
}

/// A UDP header and 4 bytes of payload from `source` to `destination`.
pub(crate) fn udp(source: u16, destination: u16) -> Vec<u8> {
    let mut header = vec![0u8; 12];
    header[0..2].copy_from_slice(&source.to_be_bytes());
    header[2..4].copy_from_slice(&destination.to_be_bytes());
    header[4..6].copy_from_slice(&12u16.to_be_bytes());
    header
}

/// An ICMP(v6) message of type `kind` with identifier `ident`, then `rest`.
pub(crate) fn icmp(kind: u8, ident: u16, rest: &[u8]) -> Vec<u8> {
    let mut message = vec![0u8; 8];
    message[0] = kind;
    message[4..6].copy_from_slice(&ident.to_be_bytes());
    message.extend_from_slice(rest);
    message
}

/// A TCP packet from `source:source_port` to `destination:port`.
pub(crate) fn tcp_packet(source: &str, source_port: u16, destination: &str, port: u16) -> Vec<u8> {
    ip(source, destination, 6, &tcp(source_port, port))
}

/// A UDP packet from `source:source_port` to `destination:port`.
pub(crate) fn udp_packet(source: &str, source_port: u16, destination: &str, port: u16) -> Vec<u8> {
    ip(source, destination, 17, &udp(source_port, port))
}

/// An echo request (`reply` false) or reply of `ident` between the two.
pub(crate) fn echo(source: &str, destination: &str, reply: bool, ident: u16) -> Vec<u8> {
    let v6 = source.contains(':');
    let (proto, kind) = match (v6, reply) {
        (false, false) => (1, 8),
        (false, true) => (1, 0),
        (true, false) => (58, 128),
        (true, true) => (58, 129),
    };
    ip(source, destination, proto, &icmp(kind, ident, &[]))
}

/// `packet` (IPv4) marked as the fragment at `offset` (8-byte units),
/// with more to follow when `more`.
pub(crate) fn fragment_v4(mut packet: Vec<u8>, offset: u16, more: bool) -> Vec<u8> {
    let field = offset | if more { 0x2000 } else { 0 };
    packet[6..8].copy_from_slice(&field.to_be_bytes());
    packet
}

/// `packet` (IPv6) with a fragment header of `ident` at `offset`.
pub(crate) fn fragment_v6(packet: &[u8], offset: u16, more: bool, ident: u32) -> Vec<u8> {
    let mut out = packet[..40].to_vec();
    let next = out[6];
    out[6] = 44;
    let mut header = vec![next, 0];
    header.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    header.extend_from_slice(&ident.to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&packet[40..]);
    let len = u16::try_from(out.len() - 40).unwrap();
    out[4..6].copy_from_slice(&len.to_be_bytes());
    out
}

/// `N` peer ids of a real engine.
pub(crate) fn peer_ids<const N: usize>() -> [sentrymesh_tunnel::PeerId; N] {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use sentrymesh_types::PrivateKey;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let now = std::time::Instant::now();
    let mut engine = sentrymesh_tunnel::Engine::new(
        PrivateKey::generate(&mut rng),
        rng.clone(),
        now,
        std::time::Duration::from_secs(1_700_000_000),
    );
    std::array::from_fn(|_| {
        let key = PrivateKey::generate(&mut rng).public_key();
        engine
            .add_peer(now, sentrymesh_tunnel::PeerConfig::new(key))
            .unwrap()
    })
}
