//! IPv6 packets (RFC 8200), the fixed header only: extension headers are
//! not parsed.
//!
//! ```text
//!  0                    4             6        7           8     24     40
//! |ver| class | flow label | payload len | next hdr | hop limit | src | dst | payload
//! ```

use std::fmt;
use std::net::Ipv6Addr;

use super::{HeaderError, IPV6_HEADER_LEN, be16, set_be16, version};

/// Where each field of the fixed header starts.
const PAYLOAD_LEN: usize = 4;
const NEXT_HEADER: usize = 6;
const HOP_LIMIT: usize = 7;
const SOURCE: usize = 8;
const DESTINATION: usize = 24;

/// The source address of a fixed IPv6 header.
#[inline]
pub(super) fn source(header: &[u8; IPV6_HEADER_LEN]) -> Ipv6Addr {
    Ipv6Addr::from(octets(header, SOURCE))
}

/// The destination address of a fixed IPv6 header.
#[inline]
pub(super) fn destination(header: &[u8; IPV6_HEADER_LEN]) -> Ipv6Addr {
    Ipv6Addr::from(octets(header, DESTINATION))
}

/// The checked fixed header of `bytes` and the rest: version 6 and the
/// 40-byte header inside `bytes`.
#[inline]
fn split(bytes: &[u8]) -> Result<(&[u8; IPV6_HEADER_LEN], &[u8]), HeaderError> {
    let version = version(bytes)?;
    if version != 6 {
        return Err(HeaderError::Version(version));
    }
    bytes
        .split_first_chunk()
        .ok_or(HeaderError::Truncated { len: bytes.len() })
}

/// 16 bytes of a fixed-size header from `at`, which the callers keep below
/// `N - 15`.
#[inline]
fn octets<const N: usize>(header: &[u8; N], at: usize) -> [u8; 16] {
    let mut octets = [0; 16];
    for (i, octet) in octets.iter_mut().enumerate() {
        *octet = header[at + i];
    }
    octets
}

/// A checked view of an IPv6 packet: version 6, the fixed header inside the
/// buffer, and a payload length that ends inside the buffer. Bytes of the
/// buffer past the payload length are not part of the packet.
#[derive(Clone, Copy)]
pub struct Ipv6Packet<'a> {
    packet: &'a [u8],
    header: &'a [u8; IPV6_HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> Ipv6Packet<'a> {
    /// Checks `bytes` and makes the view.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Version`] if the version is not 6,
    /// [`HeaderError::Truncated`] if `bytes` is shorter than the fixed
    /// header, and [`HeaderError::Length`] for a payload length past the end
    /// of `bytes`.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, HeaderError> {
        let (header, rest) = split(bytes)?;
        let payload_len = usize::from(be16(header, PAYLOAD_LEN));
        let length = HeaderError::Length {
            field: IPV6_HEADER_LEN + payload_len,
            actual: bytes.len(),
        };
        let payload = rest.get(..payload_len).ok_or(length)?;
        let packet = bytes.get(..IPV6_HEADER_LEN + payload_len).ok_or(length)?;
        Ok(Self {
            packet,
            header,
            payload,
        })
    }

    /// The packet: header and payload, without what followed it in the
    /// buffer.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.packet
    }

    /// The length of the packet: 40 plus its payload length field.
    #[inline]
    pub fn packet_len(&self) -> usize {
        self.packet.len()
    }

    /// The fixed 40 bytes of the header.
    #[inline]
    pub fn fixed_header(&self) -> &'a [u8; IPV6_HEADER_LEN] {
        self.header
    }

    /// The payload: the bytes the payload length field counts (extension
    /// headers, if any, included).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.header[0] << 4) | (self.header[1] >> 4)
    }

    /// The flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        let h = self.header;
        u32::from_be_bytes([0, h[1] & 0x0f, h[2], h[3]])
    }

    /// The next header: the payload's protocol when there are no extension
    /// headers.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.header[NEXT_HEADER]
    }

    /// The hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.header[HOP_LIMIT]
    }

    /// The source address.
    #[inline]
    pub fn source(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.source_octets())
    }

    /// The destination address.
    #[inline]
    pub fn destination(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.destination_octets())
    }

    /// The source address as it is on the wire.
    #[inline]
    pub fn source_octets(&self) -> [u8; 16] {
        octets(self.header, SOURCE)
    }

    /// The destination address as it is on the wire.
    #[inline]
    pub fn destination_octets(&self) -> [u8; 16] {
        octets(self.header, DESTINATION)
    }
}

impl fmt::Debug for Ipv6Packet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv6Packet")
            .field("packet_len", &self.packet_len())
            .field("next_header", &self.next_header())
            .finish_non_exhaustive()
    }
}

/// A mutable view of an IPv6 header, for writing it in place: version 6 and
/// the fixed header inside the buffer. The payload length is not checked;
/// the payload is the rest of the buffer.
pub struct Ipv6PacketMut<'a> {
    header: &'a mut [u8; IPV6_HEADER_LEN],
    payload: &'a mut [u8],
}

impl<'a> Ipv6PacketMut<'a> {
    /// Checks `bytes` and makes the view.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Version`] if the version is not 6, and
    /// [`HeaderError::Truncated`] if `bytes` is shorter than the fixed
    /// header.
    #[inline]
    pub fn new_checked(bytes: &'a mut [u8]) -> Result<Self, HeaderError> {
        split(bytes)?;
        let truncated = HeaderError::Truncated { len: bytes.len() };
        let (header, payload) = bytes.split_first_chunk_mut().ok_or(truncated)?;
        Ok(Self { header, payload })
    }

    /// The fixed 40 bytes of the header.
    #[inline]
    pub fn fixed_header(&self) -> &[u8; IPV6_HEADER_LEN] {
        self.header
    }

    /// The payload length field.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.header, PAYLOAD_LEN)
    }

    /// The source address.
    #[inline]
    pub fn source(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.source_octets())
    }

    /// The destination address.
    #[inline]
    pub fn destination(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.destination_octets())
    }

    /// The source address as it is on the wire.
    #[inline]
    pub fn source_octets(&self) -> [u8; 16] {
        octets(self.header, SOURCE)
    }

    /// The destination address as it is on the wire.
    #[inline]
    pub fn destination_octets(&self) -> [u8; 16] {
        octets(self.header, DESTINATION)
    }

    /// Sets the payload length field.
    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        set_be16(self.header, PAYLOAD_LEN, len);
    }

    /// The bytes after the fixed header, to the end of the buffer.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.payload
    }

    /// The bytes after the fixed header, to the end of the buffer, for as
    /// long as the buffer is borrowed.
    #[inline]
    pub fn into_payload_mut(self) -> &'a mut [u8] {
        self.payload
    }
}

impl fmt::Debug for Ipv6PacketMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv6PacketMut")
            .field("buffer_len", &(IPV6_HEADER_LEN + self.payload.len()))
            .finish_non_exhaustive()
    }
}
