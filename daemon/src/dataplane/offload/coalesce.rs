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

use std::fmt;
use std::net::IpAddr;

use sentrymesh_tunnel::ip::{
    HeaderError, IpPacket, IpPacketMut, PROTOCOL_TCP, TCP_CHECKSUM_OFFSET, TCP_HEADER_LEN,
    TCP_MAX_HEADER_LEN, TcpFlags, TcpSegment, TcpSegmentMut,
};

use super::checksum;
use super::virtio::{FLAG_NEEDS_CSUM, GsoType, VIRTIO_NET_HDR_LEN, VirtioNetHdr};

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
    flow: FlowId,
    fixed: FixedFields,
    ip_hdr_len: usize,
    tcp_hdr_len: usize,
    seq: u32,
    psh: bool,
    payload_len: usize,
}

/// What tells flows apart: the addresses (and so the family) and ports.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FlowId {
    source: IpAddr,
    destination: IpAddr,
    source_port: u16,
    destination_port: u16,
}

impl fmt::Debug for FlowId {
    /// Shows the family only: addresses and ports may name a hidden host.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowId")
            .field("is_v6", &self.source.is_ipv6())
            .finish_non_exhaustive()
    }
}

/// The IP and TCP fields that must be equal for segments to coalesce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FixedFields {
    ip: IpFixedFields,
    acknowledgment: u32,
    window: u16,
    options: TcpOptions,
}

/// The IP fields of [`FixedFields`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpFixedFields {
    /// Type of service, the flags (DF) and the time to live.
    V4 { tos: u8, flags: u8, ttl: u8 },
    /// Traffic class, flow label and hop limit (the version is 6).
    V6 {
        traffic_class: u8,
        flow_label: u32,
        hop_limit: u8,
    },
}

/// The options of a TCP header, copied: equal options have equal lengths
/// and equal bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TcpOptions {
    bytes: [u8; TCP_MAX_HEADER_LEN - TCP_HEADER_LEN],
    len: usize,
}

impl TcpOptions {
    /// A copy of `options`, at most 40 bytes by the width of the data
    /// offset (`None` beyond).
    fn new(options: &[u8]) -> Option<Self> {
        let mut bytes = [0; TCP_MAX_HEADER_LEN - TCP_HEADER_LEN];
        bytes.get_mut(..options.len())?.copy_from_slice(options);
        Some(Self {
            bytes,
            len: options.len(),
        })
    }
}

/// A coalescing candidate and the parts of the packet it is in.
struct Parsed<'p> {
    candidate: Candidate,
    /// The TCP header and payload.
    transport: &'p [u8],
    /// The TCP payload.
    payload: &'p [u8],
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
            Some(Parsed {
                candidate: head, ..
            }) if !head.psh => Pending::Open(Flow {
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
        let Parsed {
            candidate: new,
            transport,
            payload,
        } = candidate(packet).ok_or(Refusal::NotCandidate)?;
        let head = flow.head;
        if new.flow != head.flow {
            return Err(Refusal::OtherFlow);
        }
        if new.fixed != head.fixed {
            return Err(Refusal::HeadersDiffer);
        }
        if new.seq != flow.next_seq {
            return Err(Refusal::NotNext);
        }
        if new.payload_len > head.payload_len {
            return Err(Refusal::LargerSegment);
        }
        let new_len = self.len + new.payload_len;
        let ip_len = if head.flow.source.is_ipv6() {
            new_len - head.ip_hdr_len
        } else {
            new_len
        };
        if VIRTIO_NET_HDR_LEN + new_len > self.buf.len() || ip_len > usize::from(u16::MAX) {
            return Err(Refusal::NoRoom);
        }
        if !flow.head_checksum_checked {
            // Nothing was appended yet: the pending bytes are the head.
            let pending = &self.buf[VIRTIO_NET_HDR_LEN..VIRTIO_NET_HDR_LEN + self.len];
            let valid = pending
                .get(head.ip_hdr_len..)
                .is_some_and(|transport| checksum_valid(&head.flow, transport));
            if !valid {
                self.pending = Pending::Sealed;
                return Err(Refusal::Sealed);
            }
            flow.head_checksum_checked = true;
        }
        if !checksum_valid(&new.flow, transport) {
            self.pending = Pending::Open(flow);
            return Err(Refusal::BadChecksum);
        }

        let at = VIRTIO_NET_HDR_LEN + self.len;
        self.buf[at..at + payload.len()].copy_from_slice(payload);
        self.len = new_len;
        flow.next_seq = flow.next_seq.wrapping_add(new.payload_len as u32);
        flow.merged += 1;
        flow.ended_short = new.payload_len < head.payload_len;
        flow.psh = new.psh;
        self.pending = Pending::Open(flow);
        Ok(Appended::Coalesced)
    }

    /// Fixes the headers of a super packet of `len` bytes and returns its
    /// virtio header.
    fn seal_super_packet(&mut self, flow: &Flow, len: usize) -> VirtioNetHdr {
        let head = &flow.head;
        let packet = &mut self.buf[VIRTIO_NET_HDR_LEN..VIRTIO_NET_HDR_LEN + len];
        // The super packet starts with the headers of its head, which
        // `start` checked: their views check again. Were they not there,
        // the bytes would go out as they are.
        if fix_headers(packet, flow.psh).is_err() {
            return VirtioNetHdr::NONE;
        }
        // Header lengths are at most 40 + 60 and the segment size below
        // 65536, so these conversions are lossless.
        VirtioNetHdr {
            flags: FLAG_NEEDS_CSUM,
            gso_type: if head.flow.source.is_ipv6() {
                GsoType::TcpV6
            } else {
                GsoType::TcpV4
            },
            hdr_len: (head.ip_hdr_len + head.tcp_hdr_len) as u16,
            gso_size: head.payload_len as u16,
            csum_start: head.ip_hdr_len as u16,
            csum_offset: TCP_CHECKSUM_OFFSET as u16,
        }
    }
}

/// Fixes the headers of a super packet for the kernel: the IP length field
/// for its whole length, the IPv4 header checksum, PSH if `psh` (the last
/// segment had it), and in the TCP checksum field the pseudo-header sum, as
/// `CHECKSUM_PARTIAL` expects.
fn fix_headers(packet: &mut [u8], psh: bool) -> Result<(), HeaderError> {
    let len = packet.len();
    let ip = IpPacketMut::new_checked(packet)?;
    let (source, destination) = (ip.source(), ip.destination());
    // `append` kept the IP length fields within `u16`.
    let transport = match ip {
        IpPacketMut::V4(mut packet) => {
            packet.set_total_len(len as u16);
            checksum::fill_ipv4_header(&mut packet);
            packet.into_payload_mut()
        }
        IpPacketMut::V6(mut packet) => {
            let payload_len = packet.payload_mut().len();
            packet.set_payload_len(payload_len as u16);
            packet.into_payload_mut()
        }
    };
    let transport_len = transport.len();
    let mut tcp = TcpSegmentMut::new_checked(transport)?;
    if psh {
        tcp.set_flags(tcp.flags() | TcpFlags::PSH);
    }
    let pseudo = checksum::pseudo_header(source, destination, PROTOCOL_TCP, transport_len);
    tcp.set_checksum(checksum::fold(pseudo));
    Ok(())
}

/// Parses `packet` as a coalescing candidate, or `None` if it is not one.
fn candidate(packet: &[u8]) -> Option<Parsed<'_>> {
    let ip = IpPacket::new_checked(packet).ok()?;
    if ip.packet_len() != packet.len() || ip.protocol() != PROTOCOL_TCP {
        return None;
    }
    let ip_fixed = match ip {
        IpPacket::V4(v4) => {
            if !v4.options().is_empty() || v4.is_fragment() {
                return None;
            }
            IpFixedFields::V4 {
                tos: v4.tos(),
                flags: v4.flags(),
                ttl: v4.ttl(),
            }
        }
        IpPacket::V6(v6) => IpFixedFields::V6 {
            traffic_class: v6.traffic_class(),
            flow_label: v6.flow_label(),
            hop_limit: v6.hop_limit(),
        },
    };
    let tcp = TcpSegment::new_checked(ip.payload()).ok()?;
    let flags = tcp.flags();
    if tcp.payload().is_empty()
        || (flags != TcpFlags::ACK && flags != TcpFlags::ACK | TcpFlags::PSH)
    {
        return None;
    }
    let candidate = Candidate {
        flow: FlowId {
            source: ip.source(),
            destination: ip.destination(),
            source_port: tcp.source_port(),
            destination_port: tcp.destination_port(),
        },
        fixed: FixedFields {
            ip: ip_fixed,
            acknowledgment: tcp.acknowledgment(),
            window: tcp.window(),
            options: TcpOptions::new(tcp.options())?,
        },
        ip_hdr_len: ip.header_len(),
        tcp_hdr_len: tcp.header_len(),
        seq: tcp.sequence(),
        psh: flags.contains(TcpFlags::PSH),
        payload_len: tcp.payload().len(),
    };
    Some(Parsed {
        candidate,
        transport: ip.payload(),
        payload: tcp.payload(),
    })
}

/// Whether the TCP checksum of `transport` (header and payload) of `flow`
/// is valid.
fn checksum_valid(flow: &FlowId, transport: &[u8]) -> bool {
    let sum = checksum::pseudo_header(flow.source, flow.destination, PROTOCOL_TCP, transport.len());
    checksum::fold(checksum::add(sum, transport)) == 0xffff
}
