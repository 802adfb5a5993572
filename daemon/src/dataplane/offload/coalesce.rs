//! Coalescing (GRO): in-order TCP segments of one flow appended into one
//! super packet to write to TUN, under the rules of wireguard-go's `tcpGRO`
//! and `tcpPacketsCanCoalesce` (themselves after the kernel's GRO self tests).
//!
//! A packet joins the pending super packet only if:
//! - both are TCP over IPv4 without options (no fragments) or over IPv6
//!   without extension headers, with consistent length fields and a payload;
//! - the TCP flags are exactly ACK, or ACK|PSH (PSH then ends the super
//!   packet);
//! - addresses, ports, acknowledgment number, window and TCP options are
//!   equal, as are the IPv4 TOS, DF and TTL, or the IPv6 version, traffic
//!   class, flow label and hop limit;
//! - its sequence number follows the pending payload, its payload is no
//!   longer than the first one's (`gso_size`), and no shorter one came before;
//! - both checksums are valid (the kernel will trust the result), and the
//!   result fits the buffer and an IP length field.
//!
//! As in wireguard-go, the IPv4 identification is not compared: the kernel
//! numbers the segments it cuts from the first one's. Unlike wireguard-go
//! this only appends, never prepends: the caller hands packets in the order
//! they were received.

use super::checksum;
use super::virtio::{FLAG_NEEDS_CSUM, GsoType, VIRTIO_NET_HDR_LEN, VirtioNetHdr};
use super::{
    IPPROTO_TCP, IPV4_MIN_HDR_LEN, IPV6_HDR_LEN, TCP_CSUM_OFFSET, TCP_FLAG_ACK, TCP_FLAG_PSH,
    TCP_FLAGS_OFFSET, TCP_MAX_HDR_LEN, TCP_MIN_HDR_LEN, addresses,
};

/// Why [`TcpCoalescer::handle_packet`] did not take a packet. Except for
/// [`Refusal::TooBig`], the caller writes out [`TcpCoalescer::finish`] and
/// hands the packet again, which then starts the next super packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// The packet alone does not fit the buffer after the virtio header; it
    /// cannot be written through this coalescer.
    #[error("packet of {len} bytes does not fit a buffer of {capacity}")]
    TooBig {
        /// Length of the packet.
        len: usize,
        /// Length of the coalescer's buffer.
        capacity: usize,
    },
    /// The pending packet takes no more: it is not a coalescing candidate,
    /// carries PSH, ended with a short segment, or has a bad checksum.
    #[error("the pending packet takes no more segments")]
    Sealed,
    /// The packet is not a coalescing candidate (see the module docs).
    #[error("not a coalescing candidate")]
    NotCandidate,
    /// Another address family, addresses or ports.
    #[error("another flow")]
    OtherFlow,
    /// IP or TCP header fields that must be equal differ.
    #[error("headers differ from the pending packet")]
    HeadersDiffer,
    /// The sequence number does not follow the pending payload.
    #[error("sequence number does not follow")]
    NotNext,
    /// The payload is longer than the segment size.
    #[error("segment larger than gso_size")]
    LargerSegment,
    /// The result would not fit the buffer or an IP length field.
    #[error("no room in the super packet")]
    NoRoom,
    /// The packet's TCP checksum is wrong.
    #[error("bad TCP checksum")]
    BadChecksum,
}

/// What [`TcpCoalescer::handle_packet`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Appended {
    /// The packet started a new pending packet.
    Started,
    /// The packet was coalesced into the pending super packet.
    Coalesced,
}

/// A coalescing candidate, as far as its headers go.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    is_v6: bool,
    ip_hdr_len: usize,
    tcp_hdr_len: usize,
    seq: u32,
    psh: bool,
    payload_len: usize,
}

/// The pending packet.
#[derive(Debug, Clone, Copy)]
enum Pending {
    /// Nothing pending.
    Empty,
    /// A packet that is written as it is.
    Sealed,
    /// A TCP segment that may take more.
    Open(Flow),
}

/// The bookkeeping of an open super packet.
#[derive(Debug, Clone, Copy)]
struct Flow {
    head: Candidate,
    next_seq: u32,
    merged: usize,
    head_checksum_checked: bool,
    ended_short: bool,
    psh: bool,
}

/// Builds one super packet at a time in a caller-owned buffer:
/// `[virtio_net_hdr][IP packet]`, ready to write to TUN.
///
/// The run loop: hand each received packet to [`handle_packet`]; when it is
/// refused, write [`finish`] to the device and hand the packet again; after
/// the batch, write [`finish`] once more.
///
/// ```text
///   handle_packet(p1) = Started      buf: [hdr][p1]
///   handle_packet(p2) = Coalesced    buf: [hdr][p1 + payload of p2]
///   handle_packet(q)  = Err(..)      finish() -> [TCPV4 hdr][super packet]
///   handle_packet(q)  = Started      ...
/// ```
///
/// [`handle_packet`]: TcpCoalescer::handle_packet
/// [`finish`]: TcpCoalescer::finish
#[derive(Debug)]
pub(crate) struct TcpCoalescer<'b> {
    buf: &'b mut [u8],
    len: usize,
    pending: Pending,
}

impl<'b> TcpCoalescer<'b> {
    /// A coalescer writing into `buf`; 10 + 65535 bytes hold any super
    /// packet, a smaller buffer limits them.
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            len: 0,
            pending: Pending::Empty,
        }
    }

    /// Whether no packet is pending.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self.pending, Pending::Empty)
    }

    /// Takes one received IP packet: starts a pending packet with it if none
    /// is pending, or appends its payload to the pending super packet.
    ///
    /// # Errors
    ///
    /// A [`Refusal`] when the packet cannot join; nothing changed then,
    /// except that a pending packet found with a bad checksum is sealed.
    pub(crate) fn handle_packet(&mut self, packet: &[u8]) -> Result<Appended, Refusal> {
        match self.pending {
            Pending::Empty => self.start(packet),
            Pending::Sealed => Err(Refusal::Sealed),
            Pending::Open(flow) => self.append(flow, packet),
        }
    }

    /// Completes the pending packet and returns the bytes to write to TUN,
    /// virtio header first (empty if nothing is pending). The coalescer is
    /// empty afterwards.
    ///
    /// A lone packet gets a `GSO_NONE` header and is left as received. A
    /// super packet gets its IP length fields and IPv4 header checksum
    /// fixed, the pseudo-header sum in its TCP checksum field and a header
    /// with `NEEDS_CSUM`, `gso_type` TCPV4/TCPV6 and `gso_size` the payload
    /// of its first segment, as the kernel expects of `CHECKSUM_PARTIAL`.
    pub(crate) fn finish(&mut self) -> &[u8] {
        let pending = std::mem::replace(&mut self.pending, Pending::Empty);
        let len = std::mem::take(&mut self.len);
        let hdr = match pending {
            Pending::Empty => return &[],
            Pending::Open(flow) if flow.merged > 0 => self.seal_super_packet(&flow, len),
            Pending::Open(_) | Pending::Sealed => VirtioNetHdr::NONE,
        };
        // Something is pending, so `start` found room for the header and
        // the packet: the buffer is at least `VIRTIO_NET_HDR_LEN + len` long.
        let (hdr_bytes, _) = self.buf.split_at_mut(VIRTIO_NET_HDR_LEN);
        hdr_bytes.copy_from_slice(&hdr.to_bytes());
        &self.buf[..VIRTIO_NET_HDR_LEN + len]
    }

    fn start(&mut self, packet: &[u8]) -> Result<Appended, Refusal> {
        let too_big = Refusal::TooBig {
            len: packet.len(),
            capacity: self.buf.len(),
        };
        let end = VIRTIO_NET_HDR_LEN
            .checked_add(packet.len())
            .ok_or(too_big)?;
        let out = self.buf.get_mut(VIRTIO_NET_HDR_LEN..end).ok_or(too_big)?;
        out.copy_from_slice(packet);
        self.len = packet.len();
        self.pending = match candidate(packet) {
            Some(head) if !head.psh => Pending::Open(Flow {
                head,
                next_seq: head.seq.wrapping_add(head.payload_len as u32),
                merged: 0,
                head_checksum_checked: false,
                ended_short: false,
                psh: false,
            }),
            Some(_) | None => Pending::Sealed,
        };
        Ok(Appended::Started)
    }

    fn append(&mut self, mut flow: Flow, packet: &[u8]) -> Result<Appended, Refusal> {
        if flow.psh || flow.ended_short {
            return Err(Refusal::Sealed);
        }
        let new = candidate(packet).ok_or(Refusal::NotCandidate)?;
        let head = flow.head;
        let pending = &self.buf[VIRTIO_NET_HDR_LEN..VIRTIO_NET_HDR_LEN + self.len];
        if new.is_v6 != head.is_v6
            || addresses(packet, new.is_v6) != addresses(pending, head.is_v6)
            || packet[new.ip_hdr_len..new.ip_hdr_len + 4]
                != pending[head.ip_hdr_len..head.ip_hdr_len + 4]
        {
            return Err(Refusal::OtherFlow);
        }
        if !ip_headers_match(pending, packet, head.is_v6)
            || !tcp_headers_match(pending, packet, &head, &new)
        {
            return Err(Refusal::HeadersDiffer);
        }
        if new.seq != flow.next_seq {
            return Err(Refusal::NotNext);
        }
        if new.payload_len > head.payload_len {
            return Err(Refusal::LargerSegment);
        }
        let new_len = self.len + new.payload_len;
        let ip_len = if head.is_v6 {
            new_len - IPV6_HDR_LEN
        } else {
            new_len
        };
        if VIRTIO_NET_HDR_LEN + new_len > self.buf.len() || ip_len > usize::from(u16::MAX) {
            return Err(Refusal::NoRoom);
        }
        if !flow.head_checksum_checked {
            if !checksum_valid(pending, &head) {
                self.pending = Pending::Sealed;
                return Err(Refusal::Sealed);
            }
            flow.head_checksum_checked = true;
        }
        if !checksum_valid(packet, &new) {
            self.pending = Pending::Open(flow);
            return Err(Refusal::BadChecksum);
        }

        let at = VIRTIO_NET_HDR_LEN + self.len;
        let payload = &packet[new.ip_hdr_len + new.tcp_hdr_len..];
        self.buf[at..at + payload.len()].copy_from_slice(payload);
        self.len = new_len;
        flow.next_seq = flow.next_seq.wrapping_add(new.payload_len as u32);
        flow.merged += 1;
        flow.ended_short = new.payload_len < head.payload_len;
        if new.psh {
            flow.psh = true;
            self.buf[VIRTIO_NET_HDR_LEN + head.ip_hdr_len + TCP_FLAGS_OFFSET] |= TCP_FLAG_PSH;
        }
        self.pending = Pending::Open(flow);
        Ok(Appended::Coalesced)
    }

    /// Fixes the headers of a super packet of `len` bytes and returns its
    /// virtio header.
    fn seal_super_packet(&mut self, flow: &Flow, len: usize) -> VirtioNetHdr {
        let head = &flow.head;
        let packet = &mut self.buf[VIRTIO_NET_HDR_LEN..VIRTIO_NET_HDR_LEN + len];
        // `append` kept the IP length fields within `u16`.
        if head.is_v6 {
            packet[4..6].copy_from_slice(&((len - IPV6_HDR_LEN) as u16).to_be_bytes());
        } else {
            packet[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            packet[10..12].fill(0);
            let sum = !checksum::fold(checksum::add(0, &packet[..head.ip_hdr_len]));
            packet[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        let (src, dst) = addresses(packet, head.is_v6);
        let pseudo = checksum::fold(checksum::pseudo_header(
            src,
            dst,
            IPPROTO_TCP,
            len - head.ip_hdr_len,
        ));
        let csum_at = head.ip_hdr_len + TCP_CSUM_OFFSET;
        packet[csum_at..csum_at + 2].copy_from_slice(&pseudo.to_be_bytes());
        // Header lengths are at most 40 + 60 and the segment size below
        // 65536, so these conversions are lossless.
        VirtioNetHdr {
            flags: FLAG_NEEDS_CSUM,
            gso_type: if head.is_v6 {
                GsoType::TcpV6
            } else {
                GsoType::TcpV4
            },
            hdr_len: (head.ip_hdr_len + head.tcp_hdr_len) as u16,
            gso_size: head.payload_len as u16,
            csum_start: head.ip_hdr_len as u16,
            csum_offset: TCP_CSUM_OFFSET as u16,
        }
    }
}

/// Parses `packet` as a coalescing candidate, or `None` if it is not one.
fn candidate(packet: &[u8]) -> Option<Candidate> {
    let len = packet.len();
    let (is_v6, ip_hdr_len) = match packet.first()? >> 4 {
        4 => {
            if len < IPV4_MIN_HDR_LEN
                || packet[0] & 0x0f != 5
                || packet[9] != IPPROTO_TCP
                || usize::from(u16::from_be_bytes([packet[2], packet[3]])) != len
                || u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0
            {
                return None;
            }
            (false, IPV4_MIN_HDR_LEN)
        }
        6 => {
            if len < IPV6_HDR_LEN
                || packet[6] != IPPROTO_TCP
                || usize::from(u16::from_be_bytes([packet[4], packet[5]])) != len - IPV6_HDR_LEN
            {
                return None;
            }
            (true, IPV6_HDR_LEN)
        }
        _ => return None,
    };
    let tcp = packet.get(ip_hdr_len..)?;
    if tcp.len() < TCP_MIN_HDR_LEN {
        return None;
    }
    let tcp_hdr_len = usize::from(tcp[12] >> 4) * 4;
    if !(TCP_MIN_HDR_LEN..=TCP_MAX_HDR_LEN).contains(&tcp_hdr_len) || tcp_hdr_len >= tcp.len() {
        return None;
    }
    let flags = tcp[TCP_FLAGS_OFFSET];
    if flags != TCP_FLAG_ACK && flags != TCP_FLAG_ACK | TCP_FLAG_PSH {
        return None;
    }
    Some(Candidate {
        is_v6,
        ip_hdr_len,
        tcp_hdr_len,
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        psh: flags & TCP_FLAG_PSH != 0,
        payload_len: tcp.len() - tcp_hdr_len,
    })
}

/// Whether the IP fields that must not change within a flow are equal.
fn ip_headers_match(a: &[u8], b: &[u8], is_v6: bool) -> bool {
    if is_v6 {
        a[..4] == b[..4] && a[7] == b[7]
    } else {
        a[1] == b[1] && a[6] >> 5 == b[6] >> 5 && a[8] == b[8]
    }
}

/// Whether acknowledgment number, window and options of two candidates
/// are equal.
fn tcp_headers_match(a: &[u8], b: &[u8], ca: &Candidate, cb: &Candidate) -> bool {
    let (ta, tb) = (&a[ca.ip_hdr_len..], &b[cb.ip_hdr_len..]);
    ca.tcp_hdr_len == cb.tcp_hdr_len
        && ta[8..12] == tb[8..12]
        && ta[14..16] == tb[14..16]
        && ta[TCP_MIN_HDR_LEN..ca.tcp_hdr_len] == tb[TCP_MIN_HDR_LEN..cb.tcp_hdr_len]
}

/// Whether the TCP checksum of a candidate is valid.
fn checksum_valid(packet: &[u8], c: &Candidate) -> bool {
    let (src, dst) = addresses(packet, c.is_v6);
    let tcp = &packet[c.ip_hdr_len..];
    let sum = checksum::pseudo_header(src, dst, IPPROTO_TCP, tcp.len());
    checksum::fold(checksum::add(sum, tcp)) == 0xffff
}
