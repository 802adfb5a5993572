//! IPv4 packets (RFC 791).
//!
//! ```text
//!  0      1      2      3      4      6        8     9        10      12     16     20
//! |ver|ihl| tos | total len  |   id   |flg|frag| ttl | proto | csum | src  | dst  | options | payload
//! ```

use std::fmt;
use std::net::Ipv4Addr;

use super::{HeaderError, IPV4_HEADER_LEN, be16, set_be16, version};

/// Where each field of the fixed header starts.
const TOS: usize = 1;
const TOTAL_LEN: usize = 2;
const IDENT: usize = 4;
const FLAGS_FRAGMENT: usize = 6;
const TTL: usize = 8;
const PROTOCOL: usize = 9;
const CHECKSUM: usize = 10;
const SOURCE: usize = 12;
const DESTINATION: usize = 16;

/// The More Fragments flag and the fragment offset, in the 16 bits at
/// [`FLAGS_FRAGMENT`].
const FRAGMENT_MASK: u16 = 0x3fff;

/// The source address of a fixed IPv4 header.
#[inline]
pub(super) fn source(header: &[u8; IPV4_HEADER_LEN]) -> Ipv4Addr {
    Ipv4Addr::from(octets(header, SOURCE))
}

/// The destination address of a fixed IPv4 header.
#[inline]
pub(super) fn destination(header: &[u8; IPV4_HEADER_LEN]) -> Ipv4Addr {
    Ipv4Addr::from(octets(header, DESTINATION))
}

/// The four bytes of a fixed header from `at`, which the callers keep at
/// most 16.
#[inline]
fn octets(header: &[u8; IPV4_HEADER_LEN], at: usize) -> [u8; 4] {
    [header[at], header[at + 1], header[at + 2], header[at + 3]]
}

/// `bytes` split after a checked header: version 4, the 20-byte fixed
/// header inside `bytes`, an IHL of at least 5, and the options inside
/// `bytes`.
struct Parts<'a> {
    header: &'a [u8; IPV4_HEADER_LEN],
    options: &'a [u8],
    rest: &'a [u8],
}

impl<'a> Parts<'a> {
    #[inline]
    fn split(bytes: &'a [u8]) -> Result<Self, HeaderError> {
        let version = version(bytes)?;
        if version != 4 {
            return Err(HeaderError::Version(version));
        }
        let truncated = HeaderError::Truncated { len: bytes.len() };
        let (header, rest) = bytes.split_first_chunk().ok_or(truncated)?;
        let header_len = usize::from(header[0] & 0x0f) * 4;
        let options_len = header_len
            .checked_sub(IPV4_HEADER_LEN)
            .ok_or(HeaderError::HeaderLen(header_len))?;
        let (options, rest) = rest.split_at_checked(options_len).ok_or(truncated)?;
        Ok(Self {
            header,
            options,
            rest,
        })
    }
}

/// A checked view of an IPv4 packet: version 4, an IHL of at least 5 with
/// the header inside the buffer, and a total length from the header's end
/// to the buffer's. Bytes of the buffer past the total length are not part
/// of the packet.
#[derive(Clone, Copy)]
pub struct Ipv4Packet<'a> {
    packet: &'a [u8],
    header: &'a [u8; IPV4_HEADER_LEN],
    options: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Ipv4Packet<'a> {
    /// Checks `bytes` and makes the view.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Version`] if the version is not 4,
    /// [`HeaderError::Truncated`] if `bytes` ends within the header (fixed
    /// part or options), [`HeaderError::HeaderLen`] for an IHL under 5, and
    /// [`HeaderError::Length`] for a total length past the end of `bytes` or
    /// shorter than the header.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, HeaderError> {
        let Parts {
            header,
            options,
            rest,
        } = Parts::split(bytes)?;
        let total = usize::from(be16(header, TOTAL_LEN));
        let length = HeaderError::Length {
            field: total,
            actual: bytes.len(),
        };
        let header_len = IPV4_HEADER_LEN + options.len();
        let payload_len = total.checked_sub(header_len).ok_or(length)?;
        let payload = rest.get(..payload_len).ok_or(length)?;
        let packet = bytes.get(..total).ok_or(length)?;
        Ok(Self {
            packet,
            header,
            options,
            payload,
        })
    }

    /// The packet: header and payload, without what followed it in the
    /// buffer.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.packet
    }

    /// The length of the packet: its total length field.
    #[inline]
    pub fn packet_len(&self) -> usize {
        self.packet.len()
    }

    /// The length of the header, options included (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        IPV4_HEADER_LEN + self.options.len()
    }

    /// The fixed 20 bytes of the header.
    #[inline]
    pub fn fixed_header(&self) -> &'a [u8; IPV4_HEADER_LEN] {
        self.header
    }

    /// The options: the header after its fixed 20 bytes.
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        self.options
    }

    /// The payload: from the end of the header to the total length.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The type-of-service byte (DSCP and ECN).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.header[TOS]
    }

    /// The identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.header, IDENT)
    }

    /// The three flag bits (reserved, Don't Fragment, More Fragments), in
    /// the low bits.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.header[FLAGS_FRAGMENT] >> 5
    }

    /// Whether the packet is a fragment: More Fragments set or a fragment
    /// offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        be16(self.header, FLAGS_FRAGMENT) & FRAGMENT_MASK != 0
    }

    /// The time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.header[TTL]
    }

    /// The protocol of the payload ([`PROTOCOL_TCP`](super::PROTOCOL_TCP),
    /// [`PROTOCOL_UDP`](super::PROTOCOL_UDP), ...).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.header[PROTOCOL]
    }

    /// The header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.header, CHECKSUM)
    }

    /// The source address.
    #[inline]
    pub fn source(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.source_octets())
    }

    /// The destination address.
    #[inline]
    pub fn destination(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.destination_octets())
    }

    /// The source address as it is on the wire.
    #[inline]
    pub fn source_octets(&self) -> [u8; 4] {
        octets(self.header, SOURCE)
    }

    /// The destination address as it is on the wire.
    #[inline]
    pub fn destination_octets(&self) -> [u8; 4] {
        octets(self.header, DESTINATION)
    }
}

impl fmt::Debug for Ipv4Packet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv4Packet")
            .field("header_len", &self.header_len())
            .field("packet_len", &self.packet_len())
            .field("protocol", &self.protocol())
            .finish_non_exhaustive()
    }
}

/// A mutable view of an IPv4 header, for writing it in place: version 4 and
/// the header (options included, IHL at least 5) inside the buffer. The
/// total length is not checked; the payload is the rest of the buffer.
pub struct Ipv4PacketMut<'a> {
    header: &'a mut [u8; IPV4_HEADER_LEN],
    options: &'a mut [u8],
    payload: &'a mut [u8],
}

impl<'a> Ipv4PacketMut<'a> {
    /// Checks `bytes` and makes the view.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Version`] if the version is not 4,
    /// [`HeaderError::Truncated`] if `bytes` ends within the header, and
    /// [`HeaderError::HeaderLen`] for an IHL under 5.
    #[inline]
    pub fn new_checked(bytes: &'a mut [u8]) -> Result<Self, HeaderError> {
        let options_len = Parts::split(bytes)?.options.len();
        let truncated = HeaderError::Truncated { len: bytes.len() };
        let (header, rest) = bytes.split_first_chunk_mut().ok_or(truncated)?;
        let (options, payload) = rest.split_at_mut_checked(options_len).ok_or(truncated)?;
        Ok(Self {
            header,
            options,
            payload,
        })
    }

    /// The length of the header, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        IPV4_HEADER_LEN + self.options.len()
    }

    /// The fixed 20 bytes of the header.
    #[inline]
    pub fn fixed_header(&self) -> &[u8; IPV4_HEADER_LEN] {
        self.header
    }

    /// The options.
    #[inline]
    pub fn options(&self) -> &[u8] {
        self.options
    }

    /// The total length field.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.header, TOTAL_LEN)
    }

    /// The identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.header, IDENT)
    }

    /// The source address.
    #[inline]
    pub fn source(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.source_octets())
    }

    /// The destination address.
    #[inline]
    pub fn destination(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.destination_octets())
    }

    /// The source address as it is on the wire.
    #[inline]
    pub fn source_octets(&self) -> [u8; 4] {
        octets(self.header, SOURCE)
    }

    /// The destination address as it is on the wire.
    #[inline]
    pub fn destination_octets(&self) -> [u8; 4] {
        octets(self.header, DESTINATION)
    }

    /// Sets the total length field.
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        set_be16(self.header, TOTAL_LEN, len);
    }

    /// Sets the identification field.
    #[inline]
    pub fn set_ident(&mut self, ident: u16) {
        set_be16(self.header, IDENT, ident);
    }

    /// Sets the header checksum field.
    #[inline]
    pub fn set_checksum(&mut self, checksum: u16) {
        set_be16(self.header, CHECKSUM, checksum);
    }

    /// The bytes after the header, to the end of the buffer.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.payload
    }

    /// The bytes after the header, to the end of the buffer, for as long as
    /// the buffer is borrowed.
    #[inline]
    pub fn into_payload_mut(self) -> &'a mut [u8] {
        self.payload
    }
}

impl fmt::Debug for Ipv4PacketMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv4PacketMut")
            .field("header_len", &self.header_len())
            .field("buffer_len", &(self.header_len() + self.payload.len()))
            .finish_non_exhaustive()
    }
}
