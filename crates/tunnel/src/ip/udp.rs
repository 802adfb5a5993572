//! UDP datagrams (RFC 768).
//!
//! ```text
//!  0     2     4        6      8
//! | src | dst | length | csum | payload
//! ```

use std::fmt;

use super::{HeaderError, UDP_CHECKSUM_OFFSET, UDP_HEADER_LEN, be16, set_be16};

/// Where each field of the header starts.
const SOURCE_PORT: usize = 0;
const DESTINATION_PORT: usize = 2;
const LENGTH: usize = 4;
const CHECKSUM: usize = UDP_CHECKSUM_OFFSET;

/// A checked view of a UDP datagram (an IP packet's payload): the 8-byte
/// header inside the buffer; the payload is the rest of it.
///
/// The length field is not checked against the buffer: a super packet
/// handed over for UDP segmentation (USO) carries one that describes no
/// datagram. Its owner compares it where it matters.
#[derive(Clone, Copy)]
pub struct UdpDatagram<'a> {
    header: &'a [u8; UDP_HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> UdpDatagram<'a> {
    /// Checks `bytes` and makes the view.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`] if `bytes` is shorter than the header.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, HeaderError> {
        let (header, payload) = bytes
            .split_first_chunk()
            .ok_or(HeaderError::Truncated { len: bytes.len() })?;
        Ok(Self { header, payload })
    }

    /// The source port.
    #[inline]
    pub fn source_port(&self) -> u16 {
        be16(self.header, SOURCE_PORT)
    }

    /// The destination port.
    #[inline]
    pub fn destination_port(&self) -> u16 {
        be16(self.header, DESTINATION_PORT)
    }

    /// The length field: header and payload, as the sender gave it.
    #[inline]
    pub fn length(&self) -> u16 {
        be16(self.header, LENGTH)
    }

    /// The checksum field (0: none, over IPv4).
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.header, CHECKSUM)
    }

    /// The payload: the bytes after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

impl fmt::Debug for UdpDatagram<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpDatagram")
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

/// A mutable view of a UDP header, for writing it in place: the 8-byte
/// header inside the buffer.
pub struct UdpDatagramMut<'a> {
    header: &'a mut [u8; UDP_HEADER_LEN],
    payload: &'a mut [u8],
}

impl<'a> UdpDatagramMut<'a> {
    /// Checks `bytes` and makes the view.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`] if `bytes` is shorter than the header.
    #[inline]
    pub fn new_checked(bytes: &'a mut [u8]) -> Result<Self, HeaderError> {
        let len = bytes.len();
        let (header, payload) = bytes
            .split_first_chunk_mut()
            .ok_or(HeaderError::Truncated { len })?;
        Ok(Self { header, payload })
    }

    /// The datagram in two pieces, the header and the payload, as an
    /// Internet checksum sums them.
    #[inline]
    pub fn parts(&self) -> (&[u8; UDP_HEADER_LEN], &[u8]) {
        (self.header, self.payload)
    }

    /// The length field.
    #[inline]
    pub fn length(&self) -> u16 {
        be16(self.header, LENGTH)
    }

    /// Sets the length field.
    #[inline]
    pub fn set_length(&mut self, length: u16) {
        set_be16(self.header, LENGTH, length);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, checksum: u16) {
        set_be16(self.header, CHECKSUM, checksum);
    }
}

impl fmt::Debug for UdpDatagramMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpDatagramMut").finish_non_exhaustive()
    }
}
