//! Segmentation: a TCP super packet read from TUN (the kernel's TSO output)
//! split into MSS-sized IP packets, and the checksum of a plain
//! `NEEDS_CSUM` packet completed.

use std::net::IpAddr;

use sentrymesh_tunnel::ip::{
    self, HeaderError, IpPacket, IpPacketMut, Ipv4Packet, Ipv6Packet, PROTOCOL_TCP, PROTOCOL_UDP,
    TCP_CHECKSUM_OFFSET, TcpFlags, TcpSegment, TcpSegmentMut, UDP_CHECKSUM_OFFSET, UDP_HEADER_LEN,
    UdpDatagram, UdpDatagramMut,
};

use super::checksum;
use super::virtio::{GsoType, VirtioNetHdr};

/// Why a packet read from TUN could not be segmented.
///
/// On an error the slots may have been partly written; none holds a packet
/// to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SegmentError {
    /// The packet is too short for the headers it claims.
    #[error("packet truncated: {0} bytes")]
    Truncated(usize),
    /// The IP version does not match the GSO type.
    #[error("IP version {version} does not match gso_type {gso_type:?}")]
    VersionMismatch {
        /// The version nibble of the packet.
        version: u8,
        /// The GSO type of the virtio header.
        gso_type: GsoType,
    },
    /// An IPv4 header length below 20 bytes.
    #[error("bad IPv4 header length {0}")]
    BadIpHeaderLen(usize),
    /// The IP length field disagrees with the packet length.
    #[error("IP length field says {field}, packet has {actual} bytes")]
    LengthMismatch {
        /// What the IPv4 total length or IPv6 payload length implies.
        field: usize,
        /// The length of the packet.
        actual: usize,
    },
    /// An IPv4 fragment cannot be a TSO super packet.
    #[error("IPv4 fragment in a super packet")]
    Fragment,
    /// The transport protocol (IPv4) or next header (IPv6; extension headers
    /// are not supported) is not the one of the GSO type: TCP for TCPV4 and
    /// TCPV6, UDP for UDP_L4.
    #[error("protocol {0} does not match the gso_type")]
    WrongProtocol(u8),
    /// `csum_start` is not where the TCP header starts.
    #[error("csum_start {csum_start} is not the transport offset {expected}")]
    BadCsumStart {
        /// `csum_start` of the virtio header.
        csum_start: u16,
        /// The IP header length.
        expected: usize,
    },
    /// `csum_offset` is not the TCP (or UDP) checksum field.
    #[error("csum_offset {0} is not the transport checksum offset")]
    BadCsumOffset(u16),
    /// The checksum range of a `NEEDS_CSUM` packet is outside the packet.
    #[error("checksum field at {csum_start}+{csum_offset} is beyond the packet")]
    CsumOutOfRange {
        /// `csum_start` of the virtio header.
        csum_start: u16,
        /// `csum_offset` of the virtio header.
        csum_offset: u16,
    },
    /// A TCP data offset below 20 bytes, or a UDP header beyond the packet.
    /// (A TCP header beyond the packet is [`SegmentError::Truncated`].)
    #[error("bad transport header length {0}")]
    BadTransportHeaderLen(usize),
    /// `hdr_len` points beyond the end of the packet.
    #[error("hdr_len {hdr_len} beyond the packet of {len} bytes")]
    HdrLenBeyondPacket {
        /// `hdr_len` of the virtio header.
        hdr_len: u16,
        /// The length of the packet.
        len: usize,
    },
    /// A super packet without payload.
    #[error("super packet without payload")]
    EmptyPayload,
    /// A segment would be longer than an IP length field can say.
    #[error("segment of {0} bytes is too long for IP")]
    SegmentTooLong(usize),
    /// The slots ran out before the last segment.
    #[error("{needed} segments, but fewer slots")]
    TooFewSlots {
        /// How many segments the packet splits into.
        needed: usize,
    },
    /// A slot is shorter than its segment.
    #[error("slot {index} holds {capacity} bytes, segment needs {needed}")]
    SlotTooSmall {
        /// Index of the slot.
        index: usize,
        /// Its length.
        capacity: usize,
        /// The length of the segment.
        needed: usize,
    },
}

/// Where [`segment`] put its packets: slot `i` holds [`Segments::len_of`]`(i)`
/// bytes from its start, for `i` below [`Segments::count`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segments {
    count: usize,
    segment_len: usize,
    last_len: usize,
}

impl Segments {
    /// How many slots hold a packet.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The length of the packet in slot `index`, or 0 past the last.
    pub(crate) fn len_of(&self, index: usize) -> usize {
        match index.checked_add(1) {
            Some(n) if n < self.count => self.segment_len,
            Some(n) if n == self.count => self.last_len,
            _ => 0,
        }
    }

    /// The lengths of the packets, slot by slot.
    #[cfg(test)]
    pub(crate) fn lengths(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.count).map(|i| self.len_of(i))
    }
}

/// Turns one packet read from TUN (after its virtio header `hdr`) into
/// complete IP packets, written to the start of consecutive `slots`.
///
/// - `GsoType::None`: the packet is copied to the first slot, its checksum
///   completed if `NEEDS_CSUM` is set (see [`complete_checksum`]).
/// - `GsoType::TcpV4` / `TcpV6`: the super packet is split into segments of
///   `gso_size` payload bytes (the last may be shorter). Each gets a copy of
///   the IP header (IPv4 options included) with its length fixed, the IPv4
///   identification advanced by the segment index and the header checksum
///   recomputed, and a copy of the TCP header with the sequence number
///   advanced, CWR only on the first, FIN and PSH only on the last segment,
///   and the full TCP checksum.
/// - `GsoType::UdpL4` (USO, IPv4 or IPv6): the same split into datagrams,
///   each with its UDP length and checksum (0 sent as `0xffff`).
///
/// The header length is taken from the packet (IP header plus TCP data
/// offset, or plus 8 for UDP), as wireguard-go does: the kernel reports
/// `skb_headlen` as `hdr_len`, which need not be the header length, so it is
/// only checked to lie inside the packet. IP extension headers are not
/// supported.
///
/// Slots can be any buffers: `out.chunks_mut(stride)` for one buffer with a
/// stride, or `bufs.iter_mut().map(|b| &mut b[..])`.
///
/// # Errors
///
/// [`SegmentError`] if the headers are malformed or disagree with `hdr`, the
/// GSO type is UDP_L4, or the slots are too few or too small.
pub(crate) fn segment<'o>(
    hdr: &VirtioNetHdr,
    packet: &[u8],
    slots: impl IntoIterator<Item = &'o mut [u8]>,
) -> Result<Segments, SegmentError> {
    let mut slots = slots.into_iter();
    match hdr.gso_type {
        GsoType::None => {
            let needed = packet.len();
            let slot = slots
                .next()
                .ok_or(SegmentError::TooFewSlots { needed: 1 })?;
            let capacity = slot.len();
            let out = slot.get_mut(..needed).ok_or(SegmentError::SlotTooSmall {
                index: 0,
                capacity,
                needed,
            })?;
            out.copy_from_slice(packet);
            if hdr.needs_csum() {
                complete_checksum(hdr, out)?;
            }
            Ok(Segments {
                count: 1,
                segment_len: needed,
                last_len: needed,
            })
        }
        GsoType::TcpV4 | GsoType::TcpV6 | GsoType::UdpL4 => segment_gso(hdr, packet, slots),
    }
}

/// Completes a `CHECKSUM_PARTIAL` packet in place: sums `packet` from
/// `csum_start` to the end, starting from the pseudo-header sum that the
/// checksum field at `csum_start + csum_offset` holds, and stores the result
/// there (a zero result as `0xffff`, as the kernel does). Does nothing
/// unless `NEEDS_CSUM` is set.
///
/// # Errors
///
/// [`SegmentError::CsumOutOfRange`] if the checksum field is not inside the
/// packet.
pub(crate) fn complete_checksum(hdr: &VirtioNetHdr, packet: &mut [u8]) -> Result<(), SegmentError> {
    if !hdr.needs_csum() {
        return Ok(());
    }
    let start = usize::from(hdr.csum_start);
    let at = start + usize::from(hdr.csum_offset);
    let out_of_range = SegmentError::CsumOutOfRange {
        csum_start: hdr.csum_start,
        csum_offset: hdr.csum_offset,
    };
    let field = packet.get_mut(at..at + 2).ok_or(out_of_range)?;
    let partial = u16::from_be_bytes([field[0], field[1]]);
    field.fill(0);
    let sum = checksum::add(u64::from(partial), &packet[start..]);
    // As the kernel's `skb_checksum_help`: a zero result goes out as
    // `0xffff` (equal in ones' complement, and required by UDP).
    let sum = match !checksum::fold(sum) {
        0 => 0xffff,
        sum => sum,
    };
    packet[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// The layout of a checked super packet.
struct Layout {
    ip_hdr_len: usize,
    hdr_len: usize,
    is_v6: bool,
    is_udp: bool,
    source: IpAddr,
    destination: IpAddr,
}

/// Checks a super packet against its virtio header, through the views of
/// its IP header and its TCP or UDP header.
fn check_super_packet(hdr: &VirtioNetHdr, packet: &[u8]) -> Result<Layout, SegmentError> {
    let len = packet.len();
    let gso_type = hdr.gso_type;
    let version = ip::version(packet).map_err(|error| ip_error(error, gso_type))?;
    let ip = match (gso_type, version) {
        (GsoType::TcpV4 | GsoType::UdpL4, 4) => Ipv4Packet::new_checked(packet).map(IpPacket::V4),
        (GsoType::TcpV6 | GsoType::UdpL4, 6) => Ipv6Packet::new_checked(packet).map(IpPacket::V6),
        (gso_type, version) => return Err(SegmentError::VersionMismatch { version, gso_type }),
    }
    .map_err(|error| ip_error(error, gso_type))?;
    if ip.packet_len() != len {
        return Err(SegmentError::LengthMismatch {
            field: ip.packet_len(),
            actual: len,
        });
    }
    if matches!(ip, IpPacket::V4(v4) if v4.is_fragment()) {
        return Err(SegmentError::Fragment);
    }
    let is_udp = gso_type == GsoType::UdpL4;
    let (protocol, csum_offset) = if is_udp {
        (PROTOCOL_UDP, UDP_CHECKSUM_OFFSET)
    } else {
        (PROTOCOL_TCP, TCP_CHECKSUM_OFFSET)
    };
    if ip.protocol() != protocol {
        return Err(SegmentError::WrongProtocol(ip.protocol()));
    }
    let ip_hdr_len = ip.header_len();
    if usize::from(hdr.csum_start) != ip_hdr_len {
        return Err(SegmentError::BadCsumStart {
            csum_start: hdr.csum_start,
            expected: ip_hdr_len,
        });
    }
    if usize::from(hdr.csum_offset) != csum_offset {
        return Err(SegmentError::BadCsumOffset(hdr.csum_offset));
    }
    let (transport_hdr_len, payload_len) = if is_udp {
        let udp = UdpDatagram::new_checked(ip.payload())
            .map_err(|_| SegmentError::BadTransportHeaderLen(UDP_HEADER_LEN))?;
        (UDP_HEADER_LEN, udp.payload().len())
    } else {
        let tcp =
            TcpSegment::new_checked(ip.payload()).map_err(|error| transport_error(error, len))?;
        (tcp.header_len(), tcp.payload().len())
    };
    if usize::from(hdr.hdr_len) > len {
        return Err(SegmentError::HdrLenBeyondPacket {
            hdr_len: hdr.hdr_len,
            len,
        });
    }
    if payload_len == 0 {
        return Err(SegmentError::EmptyPayload);
    }
    Ok(Layout {
        ip_hdr_len,
        hdr_len: ip_hdr_len + transport_hdr_len,
        is_v6: matches!(ip, IpPacket::V6(_)),
        is_udp,
        source: ip.source(),
        destination: ip.destination(),
    })
}

/// Why the IP header of a packet with `gso_type` did not check.
fn ip_error(error: HeaderError, gso_type: GsoType) -> SegmentError {
    match error {
        HeaderError::Truncated { len } => SegmentError::Truncated(len),
        HeaderError::Version(version) => SegmentError::VersionMismatch { version, gso_type },
        HeaderError::HeaderLen(len) => SegmentError::BadIpHeaderLen(len),
        HeaderError::Length { field, actual } => SegmentError::LengthMismatch { field, actual },
    }
}

/// Why the TCP or UDP header of a packet of `len` bytes did not check.
fn transport_error(error: HeaderError, len: usize) -> SegmentError {
    match error {
        HeaderError::HeaderLen(header_len) => SegmentError::BadTransportHeaderLen(header_len),
        HeaderError::Truncated { .. } | HeaderError::Version(_) | HeaderError::Length { .. } => {
            SegmentError::Truncated(len)
        }
    }
}

fn segment_gso<'o>(
    hdr: &VirtioNetHdr,
    packet: &[u8],
    mut slots: impl Iterator<Item = &'o mut [u8]>,
) -> Result<Segments, SegmentError> {
    let Layout {
        ip_hdr_len,
        hdr_len,
        is_v6,
        is_udp,
        source,
        destination,
    } = check_super_packet(hdr, packet)?;
    let (headers, payload) = packet.split_at(hdr_len);
    let gso_size = usize::from(hdr.gso_size);
    let count = payload.len().div_ceil(gso_size);
    let segment_len = hdr_len + gso_size.min(payload.len());
    let last_len = hdr_len + (payload.len() - (count - 1) * gso_size);
    let longest = if is_v6 {
        segment_len - ip_hdr_len
    } else {
        segment_len
    };
    if longest > usize::from(u16::MAX) {
        return Err(SegmentError::SegmentTooLong(segment_len));
    }

    for (index, chunk) in payload.chunks(gso_size).enumerate() {
        let needed = hdr_len + chunk.len();
        let slot = slots
            .next()
            .ok_or(SegmentError::TooFewSlots { needed: count })?;
        let capacity = slot.len();
        let out = slot.get_mut(..needed).ok_or(SegmentError::SlotTooSmall {
            index,
            capacity,
            needed,
        })?;
        out[..hdr_len].copy_from_slice(headers);
        out[hdr_len..].copy_from_slice(chunk);

        // The headers are a copy of the checked ones, so their views check
        // again.
        let transport = fix_ip_header(out, index).map_err(|error| ip_error(error, hdr.gso_type))?;
        let pseudo = checksum::pseudo_header(
            source,
            destination,
            if is_udp { PROTOCOL_UDP } else { PROTOCOL_TCP },
            transport.len(),
        );
        if is_udp {
            fix_udp_header(transport, pseudo)
        } else {
            let position = Position {
                index,
                count,
                gso_size,
            };
            fix_tcp_header(transport, position, pseudo)
        }
        .map_err(|error| transport_error(error, needed))?;
    }
    Ok(Segments {
        count,
        segment_len,
        last_len,
    })
}

/// Fixes the IP header of segment `index` (a copy of the super packet's):
/// the length field for the segment's length, and for IPv4 the
/// identification advanced by `index` and the header checksum. Returns the
/// transport header and payload.
fn fix_ip_header(segment: &mut [u8], index: usize) -> Result<&mut [u8], HeaderError> {
    let len = segment.len();
    // The length checks of `segment_gso` keep the lengths within `u16`; the
    // index wraps like the identification it advances.
    match IpPacketMut::new_checked(segment)? {
        IpPacketMut::V4(mut packet) => {
            packet.set_total_len(len as u16);
            packet.set_ident(packet.ident().wrapping_add(index as u16));
            checksum::fill_ipv4_header(&mut packet);
            Ok(packet.into_payload_mut())
        }
        IpPacketMut::V6(mut packet) => {
            let payload_len = packet.payload_mut().len();
            packet.set_payload_len(payload_len as u16);
            Ok(packet.into_payload_mut())
        }
    }
}

/// Where a segment is in its super packet: segment `index` of `count`,
/// after `gso_size` bytes of payload for each before it.
#[derive(Clone, Copy)]
struct Position {
    index: usize,
    count: usize,
    gso_size: usize,
}

/// Fixes the TCP header of a segment (a copy of the super packet's): the
/// sequence number advanced by the payload before it, CWR only on the first,
/// FIN and PSH only on the last segment, and the checksum, from the
/// pseudo-header sum `pseudo`.
fn fix_tcp_header(transport: &mut [u8], at: Position, pseudo: u64) -> Result<(), HeaderError> {
    let mut tcp = TcpSegmentMut::new_checked(transport)?;
    // The offset wraps like the sequence number it advances.
    let offset = (at.index * at.gso_size) as u32;
    tcp.set_sequence(tcp.sequence().wrapping_add(offset));
    let mut flags = tcp.flags();
    if at.index > 0 {
        flags = flags.without(TcpFlags::CWR);
    }
    if at.index + 1 < at.count {
        flags = flags.without(TcpFlags::FIN | TcpFlags::PSH);
    }
    tcp.set_flags(flags);
    tcp.set_checksum(0);
    let (header, rest) = tcp.parts();
    let sum = !checksum::fold(checksum::add(checksum::add(pseudo, header), rest));
    tcp.set_checksum(sum);
    Ok(())
}

/// Fixes the UDP header of a datagram (a copy of the super packet's): its
/// length, and its checksum from the pseudo-header sum `pseudo`.
fn fix_udp_header(transport: &mut [u8], pseudo: u64) -> Result<(), HeaderError> {
    // The length checks of `segment_gso` keep the length within `u16`.
    let len = transport.len() as u16;
    let mut udp = UdpDatagramMut::new_checked(transport)?;
    udp.set_length(len);
    udp.set_checksum(0);
    let (header, payload) = udp.parts();
    let sum = match !checksum::fold(checksum::add(checksum::add(pseudo, header), payload)) {
        // RFC 768: a computed zero is sent as all ones.
        0 => 0xffff,
        sum => sum,
    };
    udp.set_checksum(sum);
    Ok(())
}
