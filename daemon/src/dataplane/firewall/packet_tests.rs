use proptest::prelude::*;

use super::*;
use crate::dataplane::firewall::testing::{
    echo, fragment_v4, fragment_v6, icmp, ip, tcp, tcp_packet, udp_packet,
};

const US: &str = "198.19.1.1";
const THEM: &str = "198.19.2.1";

#[test]
fn both_ways_of_a_flow_have_one_key() {
    let request = parse(&tcp_packet(THEM, 40000, US, 26656), Direction::Inbound).unwrap();
    let reply = parse(&tcp_packet(US, 26656, THEM, 40000), Direction::Outbound).unwrap();
    assert_eq!(request.kind, Kind::Opens(Service::Tcp(26656)));
    assert_eq!(reply.kind, Kind::Opens(Service::Tcp(40000)));
    assert_eq!(request.flow, reply.flow);
    assert_eq!(request.fragments, None);
    assert_eq!(request.way_back, Some(Service::Tcp(40000)));
    assert_eq!(reply.way_back, Some(Service::Tcp(26656)));
    // Another port, protocol or family is another flow.
    let other = parse(&tcp_packet(THEM, 40001, US, 26656), Direction::Inbound).unwrap();
    assert_ne!(other.flow, request.flow);
    let udp = parse(&udp_packet(THEM, 40000, US, 26656), Direction::Inbound).unwrap();
    assert_eq!(udp.kind, Kind::Opens(Service::Udp(26656)));
    assert_ne!(udp.flow, request.flow);
    let v6 = parse(
        &tcp_packet("2001:db8::2", 40000, "2001:db8::1", 26656),
        Direction::Inbound,
    )
    .unwrap();
    assert_eq!(v6.kind, Kind::Opens(Service::Tcp(26656)));
}

#[test]
fn an_echo_and_its_reply_share_the_identifier() {
    for (us, them) in [(US, THEM), ("2001:db8::1", "2001:db8::2")] {
        let ping = parse(&echo(us, them, false, 7), Direction::Outbound).unwrap();
        let pong = parse(&echo(them, us, true, 7), Direction::Inbound).unwrap();
        assert_eq!(ping.kind, Kind::Opens(Service::IcmpEcho));
        assert_eq!(pong.kind, Kind::Answers);
        assert_eq!((ping.way_back, pong.way_back), (None, None));
        assert_eq!(ping.flow, pong.flow);
        let other = parse(&echo(them, us, true, 8), Direction::Inbound).unwrap();
        assert_ne!(other.flow, ping.flow);
    }
    // ICMPv6 in IPv4, or ICMP in IPv6, is only a protocol number.
    let odd = parse(&ip(THEM, US, 58, &icmp(128, 1, &[])), Direction::Inbound).unwrap();
    assert_eq!(odd.kind, Kind::Opens(Service::Other(58)));
    let odd = parse(
        &ip("2001:db8::2", "2001:db8::1", 1, &icmp(8, 1, &[])),
        Direction::Inbound,
    )
    .unwrap();
    assert_eq!(odd.kind, Kind::Opens(Service::Other(1)));
    // Neighbour discovery and the like open nothing but "any".
    let solicit = parse(
        &ip("2001:db8::2", "2001:db8::1", 58, &icmp(135, 0, &[])),
        Direction::Inbound,
    )
    .unwrap();
    assert_eq!(solicit.kind, Kind::Opens(Service::Other(58)));
}

#[test]
fn an_error_is_about_our_packet_only_when_it_quotes_one_we_sent_it() {
    let ours = tcp_packet(US, 40000, THEM, 26656);
    let unreachable = ip(THEM, US, 1, &icmp(3, 0, &ours));
    let packet = parse(&unreachable, Direction::Inbound).unwrap();
    assert_eq!(
        packet.kind,
        Kind::Error {
            about_own_packet: true
        }
    );
    let theirs = tcp_packet("198.19.3.1", 40000, US, 26656);
    let forged = ip(THEM, US, 1, &icmp(3, 0, &theirs));
    assert_eq!(
        parse(&forged, Direction::Inbound).unwrap().kind,
        Kind::Error {
            about_own_packet: false
        }
    );
    let cut = ip(THEM, US, 1, &icmp(3, 0, &ours[..12]));
    assert_eq!(
        parse(&cut, Direction::Inbound).unwrap().kind,
        Kind::Error {
            about_own_packet: false
        }
    );
    let ours6 = tcp_packet("2001:db8::1", 40000, "2001:db8::2", 443);
    let too_big = ip("2001:db8::2", "2001:db8::1", 58, &icmp(2, 0, &ours6));
    assert_eq!(
        parse(&too_big, Direction::Inbound).unwrap().kind,
        Kind::Error {
            about_own_packet: true
        }
    );
}

#[test]
fn a_first_fragment_names_the_flow_of_the_rest() {
    let whole = tcp_packet(THEM, 40000, US, 26656);
    let first = parse(&fragment_v4(whole.clone(), 0, true), Direction::Inbound).unwrap();
    assert_eq!(first.kind, Kind::Opens(Service::Tcp(26656)));
    let fragments = first.fragments.unwrap();
    let later = parse(&fragment_v4(whole.clone(), 3, false), Direction::Inbound).unwrap();
    assert_eq!(later.kind, Kind::LaterFragment);
    assert_eq!(later.flow, fragments);
    // The other way, the same identification is another fragment flow.
    let out = parse(&fragment_v4(whole, 3, false), Direction::Outbound).unwrap();
    assert_ne!(out.flow, fragments);

    let whole6 = tcp_packet("2001:db8::2", 40000, "2001:db8::1", 22);
    let first6 = parse(&fragment_v6(&whole6, 0, true, 99), Direction::Inbound).unwrap();
    assert_eq!(first6.kind, Kind::Opens(Service::Tcp(22)));
    let later6 = parse(&fragment_v6(&whole6, 2, false, 99), Direction::Inbound).unwrap();
    assert_eq!(later6.kind, Kind::LaterFragment);
    assert_eq!(Some(later6.flow), first6.fragments);
    let other6 = parse(&fragment_v6(&whole6, 2, false, 100), Direction::Inbound).unwrap();
    assert_ne!(Some(other6.flow), first6.fragments);
}

#[test]
fn extension_headers_are_walked_to_the_transport() {
    let whole = tcp_packet("2001:db8::2", 40000, "2001:db8::1", 26656);
    // A hop-by-hop header of 8 bytes before TCP.
    let mut packet = whole[..40].to_vec();
    packet[6] = 0;
    packet.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    packet.extend_from_slice(&whole[40..]);
    let len = u16::try_from(packet.len() - 40).unwrap();
    packet[4..6].copy_from_slice(&len.to_be_bytes());
    let parsed = parse(&packet, Direction::Inbound).unwrap();
    assert_eq!(parsed.kind, Kind::Opens(Service::Tcp(26656)));
    // A chain longer than the limit, or one cut short, is malformed.
    let mut chain = whole[..40].to_vec();
    chain[6] = 60;
    for _ in 0..=MAX_EXTENSION_HEADERS {
        chain.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    }
    let len = u16::try_from(chain.len() - 40).unwrap();
    chain[4..6].copy_from_slice(&len.to_be_bytes());
    assert_eq!(parse(&chain, Direction::Inbound), Err(Malformed));
    let mut cut = whole[..40].to_vec();
    cut[6] = 0;
    cut.extend_from_slice(&[6, 3]);
    cut[4..6].copy_from_slice(&2u16.to_be_bytes());
    assert_eq!(parse(&cut, Direction::Inbound), Err(Malformed));
}

#[test]
fn headers_cut_short_are_malformed() {
    // A TCP header in two fragments (the tiny-fragment attack) is refused.
    let short = ip(THEM, US, 6, &tcp(40000, 26656)[..8]);
    assert_eq!(parse(&short, Direction::Inbound), Err(Malformed));
    assert_eq!(
        parse(&ip(THEM, US, 17, &[0; 7]), Direction::Inbound),
        Err(Malformed)
    );
    assert_eq!(
        parse(&ip(THEM, US, 1, &[8; 7]), Direction::Inbound),
        Err(Malformed)
    );
    assert_eq!(parse(&[], Direction::Inbound), Err(Malformed));
    assert_eq!(parse(&[0x45; 19], Direction::Inbound), Err(Malformed));
    // A protocol without ports is its number.
    let gre = parse(&ip(THEM, US, 47, &[0; 4]), Direction::Inbound).unwrap();
    assert_eq!(gre.kind, Kind::Opens(Service::Other(47)));
}

proptest! {
    #[test]
    fn no_bytes_make_it_panic(bytes in prop::collection::vec(any::<u8>(), 0..128), inbound: bool) {
        let direction = if inbound { Direction::Inbound } else { Direction::Outbound };
        let _ = parse(&bytes, direction);
        // And with a valid IPv4 or IPv6 header in front.
        for (version, header_len) in [(0x45u8, 20usize), (0x60, 40)] {
            let mut packet = vec![0u8; header_len];
            packet[0] = version;
            packet.extend_from_slice(&bytes);
            if version == 0x45 {
                let total = u16::try_from(packet.len()).unwrap();
                packet[2..4].copy_from_slice(&total.to_be_bytes());
                packet[9] = bytes.first().copied().unwrap_or(6);
            } else {
                let len = u16::try_from(bytes.len()).unwrap();
                packet[4..6].copy_from_slice(&len.to_be_bytes());
                packet[6] = bytes.first().copied().unwrap_or(6);
            }
            let _ = parse(&packet, direction);
        }
    }
}
