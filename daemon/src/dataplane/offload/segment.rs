//! Segmentation: a TCP super packet read from TUN (the kernel's TSO output)
//! split into MSS-sized IP packets, and the checksum of a plain
//! `NEEDS_CSUM` packet completed.

use super::checksum;
use super::virtio::{GsoType, VirtioNetHdr};
use super::{
    IPPROTO_TCP, IPPROTO_UDP, IPV4_MIN_HDR_LEN, IPV6_HDR_LEN, TCP_CSUM_OFFSET, TCP_FLAG_CWR,
    TCP_FLAG_FIN, TCP_FLAG_PSH, TCP_FLAGS_OFFSET, TCP_MAX_HDR_LEN, TCP_MIN_HDR_LEN,
    UDP_CSUM_OFFSET, UDP_HDR_LEN, addresses,
};

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
    /// A TCP data offset below 20 or beyond the packet, or a UDP header
    /// beyond the packet.
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
}

fn check_super_packet(hdr: &VirtioNetHdr, packet: &[u8]) -> Result<Layout, SegmentError> {
    let len = packet.len();
    let first = *packet.first().ok_or(SegmentError::Truncated(len))?;
    let version = first >> 4;
    let is_v6 = match (hdr.gso_type, version) {
        (GsoType::TcpV4 | GsoType::UdpL4, 4) => false,
        (GsoType::TcpV6 | GsoType::UdpL4, 6) => true,
        (gso_type, version) => return Err(SegmentError::VersionMismatch { version, gso_type }),
    };
    let is_udp = hdr.gso_type == GsoType::UdpL4;
    let (protocol, csum_offset) = if is_udp {
        (IPPROTO_UDP, UDP_CSUM_OFFSET)
    } else {
        (IPPROTO_TCP, TCP_CSUM_OFFSET)
    };
    let ip_hdr_len = if is_v6 {
        if len < IPV6_HDR_LEN {
            return Err(SegmentError::Truncated(len));
        }
        let field = IPV6_HDR_LEN + usize::from(u16::from_be_bytes([packet[4], packet[5]]));
        if field != len {
            return Err(SegmentError::LengthMismatch { field, actual: len });
        }
        if packet[6] != protocol {
            return Err(SegmentError::WrongProtocol(packet[6]));
        }
        IPV6_HDR_LEN
    } else {
        if len < IPV4_MIN_HDR_LEN {
            return Err(SegmentError::Truncated(len));
        }
        let ihl = usize::from(first & 0x0f) * 4;
        if ihl < IPV4_MIN_HDR_LEN {
            return Err(SegmentError::BadIpHeaderLen(ihl));
        }
        if ihl > len {
            return Err(SegmentError::Truncated(len));
        }
        let field = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
        if field != len {
            return Err(SegmentError::LengthMismatch { field, actual: len });
        }
        // MF set or a fragment offset.
        if u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0 {
            return Err(SegmentError::Fragment);
        }
        if packet[9] != protocol {
            return Err(SegmentError::WrongProtocol(packet[9]));
        }
        ihl
    };
    if usize::from(hdr.csum_start) != ip_hdr_len {
        return Err(SegmentError::BadCsumStart {
            csum_start: hdr.csum_start,
            expected: ip_hdr_len,
        });
    }
    if usize::from(hdr.csum_offset) != csum_offset {
        return Err(SegmentError::BadCsumOffset(hdr.csum_offset));
    }
    let transport_hdr_len = if is_udp {
        UDP_HDR_LEN
    } else {
        let doff_byte = *packet
            .get(ip_hdr_len + 12)
            .ok_or(SegmentError::Truncated(len))?;
        usize::from(doff_byte >> 4) * 4
    };
    if !is_udp && !(TCP_MIN_HDR_LEN..=TCP_MAX_HDR_LEN).contains(&transport_hdr_len)
        || ip_hdr_len + transport_hdr_len > len
    {
        return Err(SegmentError::BadTransportHeaderLen(transport_hdr_len));
    }
    if usize::from(hdr.hdr_len) > len {
        return Err(SegmentError::HdrLenBeyondPacket {
            hdr_len: hdr.hdr_len,
            len,
        });
    }
    let hdr_len = ip_hdr_len + transport_hdr_len;
    if hdr_len == len {
        return Err(SegmentError::EmptyPayload);
    }
    Ok(Layout {
        ip_hdr_len,
        hdr_len,
        is_v6,
        is_udp,
    })
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
    } = check_super_packet(hdr, packet)?;
    let (headers, payload) = packet.split_at(hdr_len);
    let gso_size = usize::from(hdr.gso_size);
    let count = payload.len().div_ceil(gso_size);
    let segment_len = hdr_len + gso_size.min(payload.len());
    let last_len = hdr_len + (payload.len() - (count - 1) * gso_size);
    let longest = if is_v6 {
        segment_len - IPV6_HDR_LEN
    } else {
        segment_len
    };
    if longest > usize::from(u16::MAX) {
        return Err(SegmentError::SegmentTooLong(segment_len));
    }
    let (src, dst) = addresses(packet, is_v6);
    let l4_at = ip_hdr_len;
    let first_id = u16::from_be_bytes([headers[4], headers[5]]);
    let (protocol, csum_at) = if is_udp {
        (IPPROTO_UDP, l4_at + UDP_CSUM_OFFSET)
    } else {
        (IPPROTO_TCP, l4_at + TCP_CSUM_OFFSET)
    };

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

        // The length checks above keep these conversions lossless; the
        // segment index and offset wrap like the fields they go into.
        if is_v6 {
            let payload_len = (needed - IPV6_HDR_LEN) as u16;
            out[4..6].copy_from_slice(&payload_len.to_be_bytes());
        } else {
            out[2..4].copy_from_slice(&(needed as u16).to_be_bytes());
            let id = first_id.wrapping_add(index as u16);
            out[4..6].copy_from_slice(&id.to_be_bytes());
            out[10..12].fill(0);
            let sum = !checksum::fold(checksum::add(0, &out[..ip_hdr_len]));
            out[10..12].copy_from_slice(&sum.to_be_bytes());
        }

        let l4 = &mut out[l4_at..];
        if is_udp {
            let udp_len = (needed - l4_at) as u16;
            l4[4..6].copy_from_slice(&udp_len.to_be_bytes());
        } else {
            fix_tcp_header(l4, index, count, gso_size);
        }
        out[csum_at..csum_at + 2].fill(0);
        let transport = &out[l4_at..];
        let sum = checksum::pseudo_header(src, dst, protocol, transport.len());
        let mut sum = !checksum::fold(checksum::add(sum, transport));
        if is_udp && sum == 0 {
            // RFC 768: a computed zero is sent as all ones.
            sum = 0xffff;
        }
        out[csum_at..csum_at + 2].copy_from_slice(&sum.to_be_bytes());
    }
    Ok(Segments {
        count,
        segment_len,
        last_len,
    })
}

/// Advances the sequence number of segment `index` of `count` (the copied
/// header holds the first one's) and keeps CWR only on the first, FIN and
/// PSH only on the last segment.
fn fix_tcp_header(tcp: &mut [u8], index: usize, count: usize, gso_size: usize) {
    let first_seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    let seq = first_seq.wrapping_add((index * gso_size) as u32);
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    if index > 0 {
        tcp[TCP_FLAGS_OFFSET] &= !TCP_FLAG_CWR;
    }
    if index + 1 < count {
        tcp[TCP_FLAGS_OFFSET] &= !(TCP_FLAG_FIN | TCP_FLAG_PSH);
    }
}
