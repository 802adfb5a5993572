//! IPv4, IPv6, TCP and UDP headers as checked, zero-copy views over a byte
//! slice.
//!
//! As in smoltcp (and as the crate's own views of WireGuard's messages do),
//! a view is made once by a checked constructor, which proves that every
//! field its accessors read lies inside the buffer; the accessors then read
//! fixed offsets of a fixed-size array and can neither fail nor panic. The
//! views allocate nothing and copy nothing.
//!
//! ```text
//!   bytes ──IpPacket::new_checked──► IpPacket::V4(Ipv4Packet) ─┬─ source, destination, protocol
//!                                    IpPacket::V6(Ipv6Packet) ─┘  payload ──TcpSegment::new_checked──► flags, seq, ...
//!                                                                         ──UdpDatagram::new_checked─► ports, length
//! ```
//!
//! Two kinds of view:
//!
//! - **Read views** ([`IpPacket`], [`Ipv4Packet`], [`Ipv6Packet`],
//!   [`TcpSegment`], [`UdpDatagram`]) check the whole header: the version,
//!   the IPv4 header length (20 bytes at least, inside the buffer), and that
//!   the length field names a packet that fits the buffer. Bytes after the
//!   packet (a WireGuard payload's padding) are not part of it.
//! - **The fixed header** ([`IpHeader`]) checks only the version and that
//!   the fixed header (20 or 40 bytes) lies inside the buffer: what
//!   routing reads, the addresses, without trusting the length fields.
//! - **Mutable views** ([`IpPacketMut`], [`Ipv4PacketMut`],
//!   [`Ipv6PacketMut`], [`TcpSegmentMut`], [`UdpDatagramMut`]) are for
//!   writing headers in place, as segmentation and coalescing do. They check
//!   the version and that the header lies inside the buffer, not the length
//!   field: writing it is what they are for. Their payload is the rest of the
//!   buffer.
//!
//! IPv6 extension headers are not parsed: an IPv6 packet's payload starts
//! after the fixed 40-byte header, whatever its next header is. The views do
//! not check checksums; their owners do, where it matters.
//!
//! `Debug` shows lengths and the protocol, never an address or a port: a
//! packet's addresses may name a hidden host.

#![forbid(unsafe_code)]

mod ipv4;
mod ipv6;
mod packet;
mod tcp;
mod udp;

pub use ipv4::{Ipv4Packet, Ipv4PacketMut};
pub use ipv6::{Ipv6Packet, Ipv6PacketMut};
pub use packet::{IpHeader, IpPacket, IpPacketMut};
pub use tcp::{TcpFlags, TcpSegment, TcpSegmentMut};
pub use udp::{UdpDatagram, UdpDatagramMut};

/// Length of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of the longest IPv4 header (IHL 15).
pub const IPV4_MAX_HEADER_LEN: usize = 60;
/// Length of the fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;
/// Length of a TCP header without options.
pub const TCP_HEADER_LEN: usize = 20;
/// Length of the longest TCP header (data offset 15).
pub const TCP_MAX_HEADER_LEN: usize = 60;
/// Length of the UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// Where the checksum field starts in a TCP header (the `csum_offset` of a
/// virtio-net header for TCP).
pub const TCP_CHECKSUM_OFFSET: usize = 16;
/// Where the checksum field starts in a UDP header (the `csum_offset` of a
/// virtio-net header for UDP).
pub const UDP_CHECKSUM_OFFSET: usize = 6;
/// IP protocol number (IPv4) or next header (IPv6) of TCP.
pub const PROTOCOL_TCP: u8 = 6;
/// IP protocol number (IPv4) or next header (IPv6) of UDP.
pub const PROTOCOL_UDP: u8 = 17;

/// Why bytes are not the header a view was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The bytes end before the header does: before its fixed part, or
    /// before the length its header-length field gives.
    #[error("truncated: {len} bytes")]
    Truncated {
        /// The length of the bytes.
        len: usize,
    },
    /// The version nibble is not the one asked for (4 or 6; either for
    /// [`IpPacket`]).
    #[error("IP version {0}")]
    Version(u8),
    /// A header-length field below the fixed header: an IPv4 IHL under 5
    /// or a TCP data offset under 5 (in bytes, under 20).
    #[error("header length {0} bytes")]
    HeaderLen(usize),
    /// The IP length field names a packet longer than the bytes, or (IPv4)
    /// shorter than its own header.
    #[error("length field says {field} bytes, {actual} present")]
    Length {
        /// The packet length the field gives (IPv4 total length, or 40 plus
        /// the IPv6 payload length).
        field: usize,
        /// The length of the bytes.
        actual: usize,
    },
}

/// The version nibble of the first byte of `bytes`: what an IP packet is
/// before any view of it is checked.
///
/// # Errors
///
/// [`HeaderError::Truncated`] for empty `bytes`.
#[inline]
pub fn version(bytes: &[u8]) -> Result<u8, HeaderError> {
    match bytes.first() {
        Some(first) => Ok(first >> 4),
        None => Err(HeaderError::Truncated { len: 0 }),
    }
}

/// Reads a big-endian `u16` at `at` of a fixed-size header; `at + 1 < N`
/// at every call, so the compiler proves the indexing in bounds.
#[inline]
fn be16<const N: usize>(header: &[u8; N], at: usize) -> u16 {
    u16::from_be_bytes([header[at], header[at + 1]])
}

/// Writes a big-endian `u16` at `at` of a fixed-size header.
#[inline]
fn set_be16<const N: usize>(header: &mut [u8; N], at: usize, value: u16) {
    let [high, low] = value.to_be_bytes();
    header[at] = high;
    header[at + 1] = low;
}

#[cfg(test)]
mod tests;
