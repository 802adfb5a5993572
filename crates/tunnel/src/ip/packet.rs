//! An IPv4 or IPv6 packet, by the version nibble.

use std::fmt;
use std::net::IpAddr;

use super::{
    HeaderError, IPV4_HEADER_LEN, IPV6_HEADER_LEN, Ipv4Packet, Ipv4PacketMut, Ipv6Packet,
    Ipv6PacketMut, ipv4, ipv6, version,
};

/// A checked view of the fixed header of an IPv4 or IPv6 packet: version 4
/// or 6, and the fixed header (20 or 40 bytes) inside the buffer. Nothing
/// else is checked: not the IPv4 header length, not the length fields.
///
/// It is for what reads only the addresses of a packet and must not drop
/// one for its length fields, as cryptokey routing does; what reads more
/// checks the whole packet with [`IpPacket`].
#[derive(Clone, Copy)]
pub struct IpHeader<'a>(Fixed<'a>);

/// The fixed header by version.
#[derive(Clone, Copy)]
enum Fixed<'a> {
    V4(&'a [u8; IPV4_HEADER_LEN]),
    V6(&'a [u8; IPV6_HEADER_LEN]),
}

impl<'a> IpHeader<'a> {
    /// Checks `bytes` and makes the view.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`] if `bytes` is empty or shorter than the
    /// fixed header of its version, [`HeaderError::Version`] for a version
    /// other than 4 and 6.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, HeaderError> {
        let truncated = HeaderError::Truncated { len: bytes.len() };
        let fixed = match version(bytes)? {
            4 => Fixed::V4(bytes.first_chunk().ok_or(truncated)?),
            6 => Fixed::V6(bytes.first_chunk().ok_or(truncated)?),
            other => return Err(HeaderError::Version(other)),
        };
        Ok(Self(fixed))
    }

    /// The source address.
    #[inline]
    pub fn source(&self) -> IpAddr {
        match self.0 {
            Fixed::V4(header) => IpAddr::V4(ipv4::source(header)),
            Fixed::V6(header) => IpAddr::V6(ipv6::source(header)),
        }
    }

    /// The destination address.
    #[inline]
    pub fn destination(&self) -> IpAddr {
        match self.0 {
            Fixed::V4(header) => IpAddr::V4(ipv4::destination(header)),
            Fixed::V6(header) => IpAddr::V6(ipv6::destination(header)),
        }
    }
}

impl fmt::Debug for IpHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = match self.0 {
            Fixed::V4(_) => 4,
            Fixed::V6(_) => 6,
        };
        f.debug_struct("IpHeader")
            .field("version", &version)
            .finish_non_exhaustive()
    }
}

/// A checked view of an IPv4 or IPv6 packet, chosen by the version nibble;
/// see [`Ipv4Packet`] and [`Ipv6Packet`] for what is checked.
#[derive(Debug, Clone, Copy)]
pub enum IpPacket<'a> {
    /// Version 4.
    V4(Ipv4Packet<'a>),
    /// Version 6.
    V6(Ipv6Packet<'a>),
}

impl<'a> IpPacket<'a> {
    /// Checks `bytes` as the packet its version nibble says and makes the
    /// view.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`] for empty `bytes`,
    /// [`HeaderError::Version`] for a version other than 4 and 6, and the
    /// errors of [`Ipv4Packet::new_checked`] and [`Ipv6Packet::new_checked`].
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, HeaderError> {
        match version(bytes)? {
            4 => Ipv4Packet::new_checked(bytes).map(Self::V4),
            6 => Ipv6Packet::new_checked(bytes).map(Self::V6),
            other => Err(HeaderError::Version(other)),
        }
    }

    /// The packet, without what followed it in the buffer.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Self::V4(packet) => packet.as_bytes(),
            Self::V6(packet) => packet.as_bytes(),
        }
    }

    /// The length of the packet as its header gives it (IPv4 total length,
    /// or 40 plus the IPv6 payload length).
    #[inline]
    pub fn packet_len(&self) -> usize {
        match self {
            Self::V4(packet) => packet.packet_len(),
            Self::V6(packet) => packet.packet_len(),
        }
    }

    /// The length of the IP header: IHL × 4, or the 40 bytes of the fixed
    /// IPv6 header.
    #[inline]
    pub fn header_len(&self) -> usize {
        match self {
            Self::V4(packet) => packet.header_len(),
            Self::V6(_) => IPV6_HEADER_LEN,
        }
    }

    /// The protocol (IPv4) or next header (IPv6).
    #[inline]
    pub fn protocol(&self) -> u8 {
        match self {
            Self::V4(packet) => packet.protocol(),
            Self::V6(packet) => packet.next_header(),
        }
    }

    /// The source address.
    #[inline]
    pub fn source(&self) -> IpAddr {
        match self {
            Self::V4(packet) => IpAddr::V4(packet.source()),
            Self::V6(packet) => IpAddr::V6(packet.source()),
        }
    }

    /// The destination address.
    #[inline]
    pub fn destination(&self) -> IpAddr {
        match self {
            Self::V4(packet) => IpAddr::V4(packet.destination()),
            Self::V6(packet) => IpAddr::V6(packet.destination()),
        }
    }

    /// The payload, from the end of the IP header to the end of the packet.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        match self {
            Self::V4(packet) => packet.payload(),
            Self::V6(packet) => packet.payload(),
        }
    }
}

/// A mutable view of an IPv4 or IPv6 header, chosen by the version nibble;
/// see [`Ipv4PacketMut`] and [`Ipv6PacketMut`] for what is checked.
#[derive(Debug)]
pub enum IpPacketMut<'a> {
    /// Version 4.
    V4(Ipv4PacketMut<'a>),
    /// Version 6.
    V6(Ipv6PacketMut<'a>),
}

impl<'a> IpPacketMut<'a> {
    /// Checks `bytes` as the header its version nibble says and makes the
    /// view.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`] for empty `bytes`,
    /// [`HeaderError::Version`] for a version other than 4 and 6, and the
    /// errors of [`Ipv4PacketMut::new_checked`] and
    /// [`Ipv6PacketMut::new_checked`].
    #[inline]
    pub fn new_checked(bytes: &'a mut [u8]) -> Result<Self, HeaderError> {
        match version(bytes)? {
            4 => Ipv4PacketMut::new_checked(bytes).map(Self::V4),
            6 => Ipv6PacketMut::new_checked(bytes).map(Self::V6),
            other => Err(HeaderError::Version(other)),
        }
    }

    /// The length of the IP header.
    #[inline]
    pub fn header_len(&self) -> usize {
        match self {
            Self::V4(packet) => packet.header_len(),
            Self::V6(_) => IPV6_HEADER_LEN,
        }
    }

    /// The source address.
    #[inline]
    pub fn source(&self) -> IpAddr {
        match self {
            Self::V4(packet) => IpAddr::V4(packet.source()),
            Self::V6(packet) => IpAddr::V6(packet.source()),
        }
    }

    /// The destination address.
    #[inline]
    pub fn destination(&self) -> IpAddr {
        match self {
            Self::V4(packet) => IpAddr::V4(packet.destination()),
            Self::V6(packet) => IpAddr::V6(packet.destination()),
        }
    }
}
