use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

/// An IPv4 packet of `total` bytes with an IHL of `ihl` words, protocol
/// TCP, from 198.18.0.1 to 198.18.0.2, in a buffer of `buffer` bytes.
fn ipv4(ihl: u8, total: u16, buffer: usize) -> Vec<u8> {
    let mut packet = vec![0u8; buffer];
    packet[0] = 0x40 | ihl;
    packet[1] = 0xb8;
    packet[2..4].copy_from_slice(&total.to_be_bytes());
    packet[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    packet[6] = 0x40;
    packet[8] = 64;
    packet[9] = PROTOCOL_TCP;
    packet[10..12].copy_from_slice(&0xbeefu16.to_be_bytes());
    packet[12..16].copy_from_slice(&[198, 18, 0, 1]);
    packet[16..20].copy_from_slice(&[198, 18, 0, 2]);
    packet
}

/// An IPv6 packet with `payload` bytes of payload, next header UDP, from
/// 2001:2::1 to 2001:2::2, in a buffer of `buffer` bytes.
fn ipv6(payload: u16, buffer: usize) -> Vec<u8> {
    let mut packet = vec![0u8; buffer];
    packet[..4].copy_from_slice(&[0x6a, 0xb1, 0x23, 0x45]);
    packet[4..6].copy_from_slice(&payload.to_be_bytes());
    packet[6] = PROTOCOL_UDP;
    packet[7] = 3;
    packet[8..24].copy_from_slice(&"2001:2::1".parse::<Ipv6Addr>().unwrap().octets());
    packet[24..40].copy_from_slice(&"2001:2::2".parse::<Ipv6Addr>().unwrap().octets());
    packet
}

/// A TCP header with a data offset of `offset` words, then `payload` bytes.
fn tcp(offset: u8, payload: usize) -> Vec<u8> {
    let mut segment = vec![0u8; usize::from(offset) * 4 + payload];
    segment[..4].copy_from_slice(&[0x1f, 0x90, 0xc3, 0x50]);
    segment[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    segment[8..12].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    segment[12] = offset << 4;
    segment[13] = (TcpFlags::ACK | TcpFlags::PSH).0;
    segment[14..16].copy_from_slice(&512u16.to_be_bytes());
    segment[16..18].copy_from_slice(&0xabcdu16.to_be_bytes());
    segment
}

#[test]
fn ipv4_fields_come_from_their_offsets() {
    let mut bytes = ipv4(6, 28, 48);
    bytes[20..24].copy_from_slice(&[1, 1, 0, 0]);
    let packet = Ipv4Packet::new_checked(&bytes).unwrap();
    assert_eq!(packet.header_len(), 24);
    assert_eq!(packet.packet_len(), 28);
    assert_eq!(packet.as_bytes(), &bytes[..28]);
    assert_eq!(packet.options(), &[1, 1, 0, 0]);
    assert_eq!(packet.payload(), &bytes[24..28]);
    assert_eq!(packet.fixed_header()[..], bytes[..20]);
    assert_eq!(packet.tos(), 0xb8);
    assert_eq!(packet.ident(), 0x1234);
    assert_eq!(packet.flags(), 0b010, "Don't Fragment");
    assert!(!packet.is_fragment());
    assert_eq!(packet.ttl(), 64);
    assert_eq!(packet.protocol(), PROTOCOL_TCP);
    assert_eq!(packet.checksum(), 0xbeef);
    assert_eq!(packet.source(), Ipv4Addr::new(198, 18, 0, 1));
    assert_eq!(packet.destination(), Ipv4Addr::new(198, 18, 0, 2));

    for (byte6, byte7) in [(0x20, 0), (0, 1), (0x1f, 0xff)] {
        let mut fragment = bytes.clone();
        fragment[6] = byte6;
        fragment[7] = byte7;
        let packet = Ipv4Packet::new_checked(&fragment).unwrap();
        assert!(packet.is_fragment(), "{byte6:#x} {byte7:#x}");
    }
}

#[test]
fn ipv4_checks_version_lengths_and_ihl() {
    let bytes = ipv4(5, 28, 28);
    assert!(Ipv4Packet::new_checked(&bytes).is_ok());
    for len in 0..20 {
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..len]).unwrap_err(),
            HeaderError::Truncated { len }
        );
    }
    for len in 20..28 {
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..len]).unwrap_err(),
            HeaderError::Length {
                field: 28,
                actual: len
            },
            "total length past the buffer"
        );
    }
    for ihl in 0..5 {
        let bytes = ipv4(ihl, 28, 28);
        assert_eq!(
            Ipv4Packet::new_checked(&bytes).unwrap_err(),
            HeaderError::HeaderLen(usize::from(ihl) * 4)
        );
    }
    let options = ipv4(15, 60, 60);
    assert_eq!(Ipv4Packet::new_checked(&options).unwrap().header_len(), 60);
    for len in 20..60 {
        assert_eq!(
            Ipv4Packet::new_checked(&options[..len]).unwrap_err(),
            HeaderError::Truncated { len },
            "options past the buffer"
        );
    }
    assert_eq!(
        Ipv4Packet::new_checked(&ipv4(6, 20, 40)).unwrap_err(),
        HeaderError::Length {
            field: 20,
            actual: 40
        },
        "total length shorter than the header"
    );
    for version in [0, 1, 5, 6, 15] {
        let mut bytes = bytes.clone();
        bytes[0] = version << 4 | 5;
        assert_eq!(
            Ipv4Packet::new_checked(&bytes).unwrap_err(),
            HeaderError::Version(version)
        );
    }
}

#[test]
fn ipv6_fields_come_from_their_offsets() {
    let bytes = ipv6(8, 64);
    let packet = Ipv6Packet::new_checked(&bytes).unwrap();
    assert_eq!(packet.packet_len(), 48);
    assert_eq!(packet.as_bytes(), &bytes[..48]);
    assert_eq!(packet.payload(), &bytes[40..48]);
    assert_eq!(packet.fixed_header()[..], bytes[..40]);
    assert_eq!(packet.traffic_class(), 0xab);
    assert_eq!(packet.flow_label(), 0x12345);
    assert_eq!(packet.next_header(), PROTOCOL_UDP);
    assert_eq!(packet.hop_limit(), 3);
    assert_eq!(packet.source(), "2001:2::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(
        packet.destination(),
        "2001:2::2".parse::<Ipv6Addr>().unwrap()
    );
}

#[test]
fn ipv6_checks_version_and_lengths() {
    let bytes = ipv6(8, 48);
    for len in 0..40 {
        assert_eq!(
            Ipv6Packet::new_checked(&bytes[..len]).unwrap_err(),
            HeaderError::Truncated { len }
        );
    }
    for len in 40..48 {
        assert_eq!(
            Ipv6Packet::new_checked(&bytes[..len]).unwrap_err(),
            HeaderError::Length {
                field: 48,
                actual: len
            },
            "payload length past the buffer"
        );
    }
    let longest = ipv6(u16::MAX, 48);
    assert_eq!(
        Ipv6Packet::new_checked(&longest).unwrap_err(),
        HeaderError::Length {
            field: 40 + 65535,
            actual: 48
        }
    );
    for version in [0, 4, 7, 15] {
        let mut bytes = bytes.clone();
        bytes[0] = version << 4;
        assert_eq!(
            Ipv6Packet::new_checked(&bytes).unwrap_err(),
            HeaderError::Version(version)
        );
    }
}

#[test]
fn ip_packet_dispatches_on_the_version() {
    let v4 = ipv4(5, 28, 48);
    let packet = IpPacket::new_checked(&v4).unwrap();
    assert!(matches!(packet, IpPacket::V4(_)));
    assert_eq!(packet.packet_len(), 28);
    assert_eq!(packet.header_len(), 20);
    assert_eq!(packet.protocol(), PROTOCOL_TCP);
    assert_eq!(packet.source(), IpAddr::from([198, 18, 0, 1]));
    assert_eq!(packet.destination(), IpAddr::from([198, 18, 0, 2]));
    assert_eq!(packet.payload(), &v4[20..28]);
    assert_eq!(packet.as_bytes(), &v4[..28]);

    let v6 = ipv6(8, 48);
    let packet = IpPacket::new_checked(&v6).unwrap();
    assert!(matches!(packet, IpPacket::V6(_)));
    assert_eq!(packet.packet_len(), 48);
    assert_eq!(packet.header_len(), 40);
    assert_eq!(packet.protocol(), PROTOCOL_UDP);
    assert_eq!(packet.source(), "2001:2::1".parse::<IpAddr>().unwrap());
    assert_eq!(packet.destination(), "2001:2::2".parse::<IpAddr>().unwrap());
    assert_eq!(packet.payload(), &v6[40..48]);

    assert_eq!(
        IpPacket::new_checked(&[]).unwrap_err(),
        HeaderError::Truncated { len: 0 }
    );
    assert_eq!(
        IpPacket::new_checked(&[0x10; 40]).unwrap_err(),
        HeaderError::Version(1)
    );
    assert_eq!(
        IpPacket::new_checked(&[0x45]).unwrap_err(),
        HeaderError::Truncated { len: 1 }
    );
    assert_eq!(
        IpPacket::new_checked(&[0x60, 0, 0, 0, 0]).unwrap_err(),
        HeaderError::Truncated { len: 5 }
    );
}

#[test]
fn ip_header_reads_addresses_without_trusting_lengths() {
    // A total length past the buffer, and an IHL under 5: no packet, but
    // the fixed header holds the addresses.
    let mut v4 = ipv4(2, 1500, 20);
    assert!(IpPacket::new_checked(&v4).is_err());
    let header = IpHeader::new_checked(&v4).unwrap();
    assert_eq!(header.source(), IpAddr::from([198, 18, 0, 1]));
    assert_eq!(header.destination(), IpAddr::from([198, 18, 0, 2]));
    v4[12..20].copy_from_slice(&[198, 19, 0, 3, 198, 19, 0, 4]);
    let header = IpHeader::new_checked(&v4).unwrap();
    assert_eq!(header.source(), IpAddr::from([198, 19, 0, 3]));
    assert_eq!(header.destination(), IpAddr::from([198, 19, 0, 4]));

    let v6 = ipv6(9999, 40);
    let header = IpHeader::new_checked(&v6).unwrap();
    assert_eq!(header.source(), "2001:2::1".parse::<IpAddr>().unwrap());
    assert_eq!(header.destination(), "2001:2::2".parse::<IpAddr>().unwrap());

    assert_eq!(
        IpHeader::new_checked(&v4[..19]).unwrap_err(),
        HeaderError::Truncated { len: 19 }
    );
    assert_eq!(
        IpHeader::new_checked(&v6[..39]).unwrap_err(),
        HeaderError::Truncated { len: 39 }
    );
    assert_eq!(
        IpHeader::new_checked(&[]).unwrap_err(),
        HeaderError::Truncated { len: 0 }
    );
    assert_eq!(
        IpHeader::new_checked(&[0x10; 40]).unwrap_err(),
        HeaderError::Version(1)
    );
    assert_eq!(version(&v6), Ok(6));
    assert_eq!(version(&[0x45]), Ok(4));
    assert_eq!(version(&[]), Err(HeaderError::Truncated { len: 0 }));
}

#[test]
fn tcp_fields_come_from_their_offsets() {
    let mut bytes = tcp(6, 5);
    bytes[20..24].copy_from_slice(&[1, 1, 8, 10]);
    let segment = TcpSegment::new_checked(&bytes).unwrap();
    assert_eq!(segment.header_len(), 24);
    assert_eq!(segment.source_port(), 8080);
    assert_eq!(segment.destination_port(), 50000);
    assert_eq!(segment.sequence(), 0xdead_beef);
    assert_eq!(segment.acknowledgment(), 0x0102_0304);
    assert_eq!(segment.flags(), TcpFlags::ACK | TcpFlags::PSH);
    assert!(segment.flags().contains(TcpFlags::PSH));
    assert!(!segment.flags().contains(TcpFlags::FIN | TcpFlags::PSH));
    assert_eq!(segment.flags().without(TcpFlags::PSH), TcpFlags::ACK);
    assert_eq!(segment.window(), 512);
    assert_eq!(segment.checksum(), 0xabcd);
    assert_eq!(bytes[TCP_CHECKSUM_OFFSET..][..2], [0xab, 0xcd]);
    assert_eq!(segment.options(), &[1, 1, 8, 10]);
    assert_eq!(segment.payload().len(), 5);
}

#[test]
fn tcp_checks_the_data_offset() {
    let bytes = tcp(15, 0);
    assert_eq!(TcpSegment::new_checked(&bytes).unwrap().header_len(), 60);
    for len in 0..60 {
        assert_eq!(
            TcpSegment::new_checked(&bytes[..len]).unwrap_err(),
            HeaderError::Truncated { len },
            "header or options past the buffer"
        );
    }
    for offset in 0..5 {
        assert_eq!(
            TcpSegment::new_checked(&tcp(offset, 40)).unwrap_err(),
            HeaderError::HeaderLen(usize::from(offset) * 4)
        );
    }
    let header_only = tcp(5, 0);
    assert!(
        TcpSegment::new_checked(&header_only)
            .unwrap()
            .payload()
            .is_empty()
    );
}

#[test]
fn udp_checks_the_header() {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&[0x1f, 0x90, 0xc3, 0x50, 0, 12, 0xab, 0xcd]);
    let datagram = UdpDatagram::new_checked(&bytes).unwrap();
    assert_eq!(datagram.source_port(), 8080);
    assert_eq!(datagram.destination_port(), 50000);
    assert_eq!(datagram.length(), 12);
    assert_eq!(datagram.checksum(), 0xabcd);
    assert_eq!(bytes[UDP_CHECKSUM_OFFSET..][..2], [0xab, 0xcd]);
    assert_eq!(datagram.payload().len(), 4);
    for len in 0..8 {
        assert_eq!(
            UdpDatagram::new_checked(&bytes[..len]).unwrap_err(),
            HeaderError::Truncated { len }
        );
    }
}

#[test]
fn mutable_views_write_their_fields() {
    // An IPv4 header with options whose total length is past the buffer:
    // a mutable view does not check it, it is there to write it.
    let mut bytes = ipv4(6, 1000, 24 + 20 + 4);
    bytes[24..44].copy_from_slice(&tcp(5, 0));
    let mut packet = Ipv4PacketMut::new_checked(&mut bytes).unwrap();
    assert_eq!(packet.header_len(), 24);
    assert_eq!(packet.total_len(), 1000);
    assert_eq!(packet.ident(), 0x1234);
    assert_eq!(packet.source_octets(), [198, 18, 0, 1]);
    assert_eq!(packet.destination_octets(), [198, 18, 0, 2]);
    assert_eq!(packet.source(), Ipv4Addr::new(198, 18, 0, 1));
    assert_eq!(packet.destination(), Ipv4Addr::new(198, 18, 0, 2));
    packet.set_total_len(48);
    packet.set_ident(7);
    packet.set_checksum(0x0102);
    assert_eq!(packet.options().len(), 4);
    assert_eq!(packet.fixed_header()[10..12], [1, 2]);
    let mut segment = TcpSegmentMut::new_checked(packet.into_payload_mut()).unwrap();
    assert_eq!(segment.header_len(), 20);
    assert_eq!(segment.sequence(), 0xdead_beef);
    segment.set_sequence(0x0a0b_0c0d);
    segment.set_flags(segment.flags().without(TcpFlags::PSH));
    segment.set_checksum(0xfeed);
    let (header, rest) = segment.parts();
    assert_eq!((header.len(), rest.len()), (20, 4));

    let packet = Ipv4Packet::new_checked(&bytes).unwrap();
    assert_eq!(
        (packet.packet_len(), packet.ident(), packet.checksum()),
        (48, 7, 0x0102)
    );
    let segment = TcpSegment::new_checked(packet.payload()).unwrap();
    assert_eq!(segment.sequence(), 0x0a0b_0c0d);
    assert_eq!(segment.flags(), TcpFlags::ACK);
    assert_eq!(segment.checksum(), 0xfeed);

    let mut bytes = ipv6(9999, 40 + 8 + 2);
    let mut packet = Ipv6PacketMut::new_checked(&mut bytes).unwrap();
    assert_eq!(packet.payload_len(), 9999);
    assert_eq!(packet.source_octets()[..2], [0x20, 0x01]);
    assert_eq!(packet.destination_octets()[15], 2);
    assert_eq!(packet.source(), "2001:2::1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(
        packet.destination(),
        "2001:2::2".parse::<Ipv6Addr>().unwrap()
    );
    packet.set_payload_len(10);
    let mut datagram = UdpDatagramMut::new_checked(packet.payload_mut()).unwrap();
    datagram.set_length(10);
    datagram.set_checksum(0xffff);
    assert_eq!(datagram.length(), 10);
    assert_eq!(datagram.parts().1.len(), 2);
    let packet = Ipv6Packet::new_checked(&bytes).unwrap();
    let datagram = UdpDatagram::new_checked(packet.payload()).unwrap();
    assert_eq!((datagram.length(), datagram.checksum()), (10, 0xffff));

    let mut short = ipv4(6, 20, 22);
    assert_eq!(
        Ipv4PacketMut::new_checked(&mut short).unwrap_err(),
        HeaderError::Truncated { len: 22 }
    );
    let mut bad_ihl = ipv4(4, 20, 20);
    assert_eq!(
        IpPacketMut::new_checked(&mut bad_ihl).unwrap_err(),
        HeaderError::HeaderLen(16)
    );
    let mut v6 = ipv6(0, 40);
    let packet = IpPacketMut::new_checked(&mut v6).unwrap();
    assert_eq!(packet.header_len(), 40);
    assert_eq!(packet.source(), "2001:2::1".parse::<IpAddr>().unwrap());
    assert_eq!(packet.destination(), "2001:2::2".parse::<IpAddr>().unwrap());
    let mut v4 = ipv4(5, 20, 20);
    let packet = IpPacketMut::new_checked(&mut v4).unwrap();
    assert_eq!(packet.source(), IpAddr::from([198, 18, 0, 1]));
    assert_eq!(packet.destination(), IpAddr::from([198, 18, 0, 2]));
    assert_eq!(
        TcpSegmentMut::new_checked(&mut [0x40; 20]).unwrap_err(),
        HeaderError::HeaderLen(16)
    );
    assert_eq!(
        UdpDatagramMut::new_checked(&mut [0; 7]).unwrap_err(),
        HeaderError::Truncated { len: 7 }
    );
}

#[test]
fn debug_shows_no_address_or_port() {
    let v4 = ipv4(5, 40, 40);
    let shown = format!("{:?}", IpPacket::new_checked(&v4).unwrap());
    assert!(!shown.contains("198"), "{shown}");
    let shown = format!("{:?}", IpHeader::new_checked(&v4).unwrap());
    assert!(!shown.contains("198"), "{shown}");
    let v6 = ipv6(0, 40);
    let shown = format!("{:?}", IpPacket::new_checked(&v6).unwrap());
    assert!(!shown.contains("2001"), "{shown}");
    let segment = tcp(5, 0);
    let shown = format!("{:?}", TcpSegment::new_checked(&segment).unwrap());
    assert!(
        !shown.contains("8080") && !shown.contains("50000"),
        "{shown}"
    );
}

/// Every accessor of every read view of `bytes`.
fn read_everything(bytes: &[u8]) {
    if let Ok(header) = IpHeader::new_checked(bytes) {
        let _ = (header.source(), header.destination(), version(bytes));
    }
    if let Ok(packet) = IpPacket::new_checked(bytes) {
        assert!(packet.packet_len() <= bytes.len());
        assert!(packet.header_len() <= packet.packet_len());
        assert_eq!(
            packet.header_len() + packet.payload().len(),
            packet.packet_len()
        );
        let _ = (packet.protocol(), packet.source(), packet.destination());
        match packet {
            IpPacket::V4(v4) => {
                let _ = (v4.tos(), v4.ident(), v4.flags(), v4.is_fragment());
                let _ = (v4.ttl(), v4.checksum(), v4.options(), v4.fixed_header());
            }
            IpPacket::V6(v6) => {
                let _ = (v6.traffic_class(), v6.flow_label(), v6.hop_limit());
            }
        }
        if let Ok(segment) = TcpSegment::new_checked(packet.payload()) {
            assert_eq!(
                segment.header_len() + segment.payload().len(),
                packet.payload().len()
            );
            assert!((TCP_HEADER_LEN..=TCP_MAX_HEADER_LEN).contains(&segment.header_len()));
            let _ = (segment.source_port(), segment.destination_port());
            let _ = (
                segment.sequence(),
                segment.acknowledgment(),
                segment.flags(),
            );
            let _ = (segment.window(), segment.checksum(), segment.options());
        }
        if let Ok(datagram) = UdpDatagram::new_checked(packet.payload()) {
            let _ = (datagram.source_port(), datagram.destination_port());
            let _ = (datagram.length(), datagram.checksum(), datagram.payload());
        }
    }
}

/// Every setter of every mutable view of `bytes`.
fn write_everything(bytes: &mut [u8]) {
    let Ok(mut packet) = IpPacketMut::new_checked(bytes) else {
        return;
    };
    assert!(packet.header_len() >= IPV4_HEADER_LEN);
    let _ = (packet.source(), packet.destination());
    let payload = match &mut packet {
        IpPacketMut::V4(v4) => {
            v4.set_total_len(1);
            v4.set_ident(2);
            v4.set_checksum(3);
            v4.payload_mut()
        }
        IpPacketMut::V6(v6) => {
            v6.set_payload_len(4);
            v6.payload_mut()
        }
    };
    if let Ok(mut segment) = TcpSegmentMut::new_checked(payload) {
        segment.set_sequence(5);
        segment.set_flags(TcpFlags::ACK);
        segment.set_checksum(6);
    }
    if let Ok(mut datagram) = UdpDatagramMut::new_checked(payload) {
        datagram.set_length(7);
        datagram.set_checksum(8);
    }
}

proptest! {
    #[test]
    fn no_input_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        read_everything(&bytes);
        write_everything(&mut bytes);
    }

    #[test]
    fn no_header_like_input_panics(
        version in prop::sample::select(vec![4u8, 6]),
        ihl in 0u8..16,
        length in any::<u16>(),
        offset in 0u8..16,
        mut bytes in proptest::collection::vec(any::<u8>(), 0..140),
    ) {
        // Headers that get past the first checks more often than random
        // bytes do.
        if let Some(first) = bytes.first_mut() {
            *first = version << 4 | ihl;
        }
        let at = if version == 4 { 2 } else { 4 };
        if bytes.len() >= at + 2 {
            bytes[at..at + 2].copy_from_slice(&(length % 160).to_be_bytes());
        }
        let tcp_at = if version == 4 { usize::from(ihl) * 4 } else { 40 } + 12;
        if let Some(byte) = bytes.get_mut(tcp_at) {
            *byte = offset << 4;
        }
        read_everything(&bytes);
        write_everything(&mut bytes);
    }
}
