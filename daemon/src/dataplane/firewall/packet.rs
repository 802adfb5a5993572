//! An IP packet as the firewall reads it: the flow it belongs to, seen from
//! this host, and whether it may open one, only answers one, or is an
//! ICMP error or a later fragment.
//!
//! - TCP and UDP: the flow is the two addresses and ports; the service is
//!   the destination port. A TCP header that is not all in the packet (a
//!   tiny first fragment) is malformed.
//! - ICMP and ICMPv6 echo: the flow's "ports" are the echo identifier;
//!   a request may open a flow, a reply only answers one.
//! - ICMP errors (unreachable, packet too big, time exceeded, parameter
//!   problem) pass when the packet they quote went between the same two
//!   hosts the other way: the overlay has no routers, so an error comes
//!   from the host a packet was sent to, about that packet.
//! - Fragments: the first carries the ports and is judged as its flow; it
//!   also names the fragment flow (the identification field) that the
//!   later ones, which carry no port, are let through by.
//! - IPv6 extension headers (hop-by-hop, routing, destination options,
//!   fragment, authentication) are walked, at most [`MAX_EXTENSION_HEADERS`].
//! - Anything else is its protocol number: a service only `proto = "any"`
//!   allows.

use std::fmt;
use std::net::IpAddr;

use sentrymesh_tunnel::ip::{
    IpHeader, IpPacket, PROTOCOL_TCP, PROTOCOL_UDP, TcpSegment, UDP_HEADER_LEN,
};

use super::policy::Service;

/// IP protocol number of ICMP.
const PROTOCOL_ICMP: u8 = 1;
/// IPv6 next header of ICMPv6.
const PROTOCOL_ICMPV6: u8 = 58;
/// The most IPv6 extension headers walked before the packet is refused.
pub(crate) const MAX_EXTENSION_HEADERS: usize = 8;
/// Length of an ICMP header up to the quoted packet.
const ICMP_HEADER_LEN: usize = 8;

/// Which way a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// From a peer to this host.
    Inbound,
    /// From this host to a peer.
    Outbound,
}

/// A flow as the connection tracker keys it, the same for the packets of
/// both ways: this host's address and port, the peer's address and port.
/// `Debug` shows the protocol only: the addresses may be a hidden host's.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct FlowKey {
    /// What is keyed (a flow, or an inbound or outbound fragment flow)
    /// and the address family.
    tag: u8,
    proto: u8,
    local_port: u16,
    remote_port: u16,
    local: [u8; 16],
    remote: [u8; 16],
}

impl FlowKey {
    /// The protocol of the flow.
    pub(crate) fn proto(&self) -> u8 {
        self.proto
    }
}

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowKey")
            .field("proto", &self.proto)
            .finish_non_exhaustive()
    }
}

/// The tag of a flow's own packets.
const TAG_FLOW: u8 = 1;
/// The tag of the later fragments of packets received.
const TAG_FRAGMENTS_IN: u8 = 2;
/// The tag of the later fragments of packets sent.
const TAG_FRAGMENTS_OUT: u8 = 3;
/// Added to the tag for IPv6.
const TAG_V6: u8 = 0x10;

/// What a packet is to the firewall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// It may open its flow, if the rules allow the service.
    Opens(Service),
    /// It only answers a flow (an echo reply).
    Answers,
    /// An ICMP error; whether it quotes a packet of the same two hosts
    /// going the other way.
    Error {
        /// The quoted packet went from the error's destination to its
        /// source.
        about_own_packet: bool,
    },
    /// A fragment after the first: its flow is the fragment flow.
    LaterFragment,
}

/// A packet read for the firewall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packet {
    /// The flow it belongs to (for a later fragment, the fragment flow).
    pub(crate) flow: FlowKey,
    /// What it is.
    pub(crate) kind: Kind,
    /// For the first fragment of a packet cut in pieces, the fragment flow
    /// of the pieces that follow.
    pub(crate) fragments: Option<FlowKey>,
    /// What a packet of the same flow going the other way asks for (TCP or
    /// UDP to this packet's source port, the same protocol); `None` when
    /// it could only answer this one (an echo reply), or for what is no
    /// flow's opener.
    pub(crate) way_back: Option<Service>,
}

/// Why a packet could not be read: it is not what its headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// Where a packet's transport header is, after its IP headers.
struct Transport<'a> {
    proto: u8,
    bytes: &'a [u8],
    /// Fragment offset (in 8-byte units) and identification, if a fragment.
    fragment: Option<(u16, u32)>,
}

/// Reads `bytes`, going `direction`, for the firewall.
///
/// # Errors
///
/// [`Malformed`] for a packet whose IP headers do not check, an IPv6 chain
/// of extension headers that is cut short or too long, or a first fragment
/// (or whole packet) too short for its TCP, UDP or ICMP header.
pub(crate) fn parse(bytes: &[u8], direction: Direction) -> Result<Packet, Malformed> {
    let ip = IpPacket::new_checked(bytes).map_err(|_| Malformed)?;
    let transport = match ip {
        IpPacket::V4(v4) => {
            let fixed = v4.fixed_header();
            let field = u16::from_be_bytes([fixed[6], fixed[7]]);
            let more = field & 0x2000 != 0;
            let offset = field & 0x1fff;
            Transport {
                proto: v4.protocol(),
                bytes: v4.payload(),
                fragment: (more || offset != 0).then_some((offset, u32::from(v4.ident()))),
            }
        }
        IpPacket::V6(v6) => walk_extensions(v6.next_header(), v6.payload())?,
    };
    let (source, destination) = (ip.source(), ip.destination());
    let (local, remote) = match direction {
        Direction::Inbound => (destination, source),
        Direction::Outbound => (source, destination),
    };
    let v6 = matches!(ip, IpPacket::V6(_));
    let key = |tag: u8, proto: u8, local_port: u16, remote_port: u16| FlowKey {
        tag: tag | if v6 { TAG_V6 } else { 0 },
        proto,
        local_port,
        remote_port,
        local: octets(local),
        remote: octets(remote),
    };
    let fragments = match transport.fragment {
        None => None,
        Some((offset, ident)) => {
            let tag = match direction {
                Direction::Inbound => TAG_FRAGMENTS_IN,
                Direction::Outbound => TAG_FRAGMENTS_OUT,
            };
            let [a, b, c, d] = ident.to_be_bytes();
            let fragments = key(
                tag,
                transport.proto,
                u16::from_be_bytes([a, b]),
                u16::from_be_bytes([c, d]),
            );
            if offset != 0 {
                return Ok(Packet {
                    flow: fragments,
                    kind: Kind::LaterFragment,
                    fragments: None,
                    way_back: None,
                });
            }
            Some(fragments)
        }
    };
    let proto = transport.proto;
    let payload = transport.bytes;
    let (source_port, destination_port, kind) = match proto {
        PROTOCOL_TCP => {
            let tcp = TcpSegment::new_checked(payload).map_err(|_| Malformed)?;
            let port = tcp.destination_port();
            (tcp.source_port(), port, Kind::Opens(Service::Tcp(port)))
        }
        PROTOCOL_UDP => {
            let header: &[u8; UDP_HEADER_LEN] = payload.first_chunk().ok_or(Malformed)?;
            let source = u16::from_be_bytes([header[0], header[1]]);
            let port = u16::from_be_bytes([header[2], header[3]]);
            (source, port, Kind::Opens(Service::Udp(port)))
        }
        PROTOCOL_ICMP | PROTOCOL_ICMPV6 if (proto == PROTOCOL_ICMPV6) == v6 => {
            let header: &[u8; ICMP_HEADER_LEN] = payload.first_chunk().ok_or(Malformed)?;
            let ident = u16::from_be_bytes([header[4], header[5]]);
            let kind = match icmp_class(v6, header[0]) {
                IcmpClass::EchoRequest => Kind::Opens(Service::IcmpEcho),
                IcmpClass::EchoReply => Kind::Answers,
                IcmpClass::Error => Kind::Error {
                    about_own_packet: quotes_reverse(
                        &payload[ICMP_HEADER_LEN..],
                        source,
                        destination,
                    ),
                },
                IcmpClass::Other => Kind::Opens(Service::Other(proto)),
            };
            (ident, ident, kind)
        }
        other => (0, 0, Kind::Opens(Service::Other(other))),
    };
    let (local_port, remote_port) = match (direction, kind) {
        // An echo's identifier is the same both ways.
        (_, Kind::Opens(Service::IcmpEcho) | Kind::Answers) => (source_port, source_port),
        (Direction::Inbound, _) => (destination_port, source_port),
        (Direction::Outbound, _) => (source_port, destination_port),
    };
    let way_back = match kind {
        Kind::Opens(Service::Tcp(_)) => Some(Service::Tcp(source_port)),
        Kind::Opens(Service::Udp(_)) => Some(Service::Udp(source_port)),
        Kind::Opens(Service::Other(proto)) => Some(Service::Other(proto)),
        _ => None,
    };
    Ok(Packet {
        flow: key(TAG_FLOW, proto, local_port, remote_port),
        kind,
        fragments,
        way_back,
    })
}

/// The kinds of ICMP message the firewall tells apart.
enum IcmpClass {
    EchoRequest,
    EchoReply,
    Error,
    Other,
}

/// The class of an ICMP (`v6` false) or ICMPv6 message of type `kind`.
fn icmp_class(v6: bool, kind: u8) -> IcmpClass {
    match (v6, kind) {
        (false, 8) | (true, 128) => IcmpClass::EchoRequest,
        (false, 0) | (true, 129) => IcmpClass::EchoReply,
        // Unreachable, time exceeded, parameter problem; and for ICMPv6
        // packet too big.
        (false, 3 | 11 | 12) | (true, 1..=4) => IcmpClass::Error,
        _ => IcmpClass::Other,
    }
}

/// Whether the packet an ICMP error quotes (its fixed header at least)
/// went from `destination` to `source`: the reverse of the error.
fn quotes_reverse(quoted: &[u8], source: IpAddr, destination: IpAddr) -> bool {
    IpHeader::new_checked(quoted)
        .is_ok_and(|header| header.source() == destination && header.destination() == source)
}

/// Follows IPv6 extension headers from `next` over `payload` to the
/// transport header, noting a fragment header on the way.
fn walk_extensions(mut next: u8, mut payload: &[u8]) -> Result<Transport<'_>, Malformed> {
    const HOP_BY_HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const AUTHENTICATION: u8 = 51;
    const DESTINATION_OPTIONS: u8 = 60;
    let mut fragment = None;
    for _ in 0..=MAX_EXTENSION_HEADERS {
        let (following, len) = match next {
            HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS => {
                let header: &[u8; 2] = payload.first_chunk().ok_or(Malformed)?;
                (header[0], (usize::from(header[1]) + 1) * 8)
            }
            AUTHENTICATION => {
                let header: &[u8; 2] = payload.first_chunk().ok_or(Malformed)?;
                (header[0], (usize::from(header[1]) + 2) * 4)
            }
            FRAGMENT => {
                let header: &[u8; 8] = payload.first_chunk().ok_or(Malformed)?;
                let field = u16::from_be_bytes([header[2], header[3]]);
                let ident = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
                fragment = Some((field >> 3, ident));
                (header[0], 8)
            }
            proto => {
                return Ok(Transport {
                    proto,
                    bytes: payload,
                    fragment,
                });
            }
        };
        next = following;
        payload = payload.get(len..).ok_or(Malformed)?;
    }
    Err(Malformed)
}

/// An address as 16 bytes (IPv4 mapped; the key's tag tells the family).
fn octets(address: IpAddr) -> [u8; 16] {
    match address {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
