//! TCP segments (RFC 9293): the header, its options and the payload.
//!
//! ```text
//!  0     2     4     8     12          13      14       16     18      20
//! | src | dst | seq | ack | offset |  | flags | window | csum | urgent | options | payload
//! ```

use std::fmt;
use std::ops::BitOr;

use super::{HeaderError, TCP_CHECKSUM_OFFSET, TCP_HEADER_LEN, be16, set_be16};

/// Where each field of the fixed header starts.
const SOURCE_PORT: usize = 0;
const DESTINATION_PORT: usize = 2;
const SEQUENCE: usize = 4;
const ACKNOWLEDGMENT: usize = 8;
const DATA_OFFSET: usize = 12;
const FLAGS: usize = 13;
const WINDOW: usize = 14;
const CHECKSUM: usize = TCP_CHECKSUM_OFFSET;

/// The eight flag bits of a TCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: Self = Self(0x01);
    /// Synchronise sequence numbers.
    pub const SYN: Self = Self(0x02);
    /// Reset the connection.
    pub const RST: Self = Self(0x04);
    /// Push: hand the data to the application.
    pub const PSH: Self = Self(0x08);
    /// The acknowledgment number is significant.
    pub const ACK: Self = Self(0x10);
    /// The urgent pointer is significant.
    pub const URG: Self = Self(0x20);
    /// ECN echo.
    pub const ECE: Self = Self(0x40);
    /// Congestion window reduced.
    pub const CWR: Self = Self(0x80);

    /// Whether every flag of `other` is set.
    #[inline]
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags without those of `other`.
    #[inline]
    #[must_use]
    pub fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
}

impl BitOr for TcpFlags {
    type Output = Self;

    #[inline]
    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// The checked fixed header of `bytes` and its header length: the 20-byte
/// header inside `bytes`, a data offset of at least 5 words and the options
/// inside `bytes`.
#[inline]
fn check(bytes: &[u8]) -> Result<usize, HeaderError> {
    let truncated = HeaderError::Truncated { len: bytes.len() };
    let header: &[u8; TCP_HEADER_LEN] = bytes.first_chunk().ok_or(truncated)?;
    let header_len = usize::from(header[DATA_OFFSET] >> 4) * 4;
    if header_len < TCP_HEADER_LEN {
        return Err(HeaderError::HeaderLen(header_len));
    }
    if header_len > bytes.len() {
        return Err(truncated);
    }
    Ok(header_len)
}

/// A checked view of a TCP segment (an IP packet's payload): the fixed
/// header inside the buffer, and a data offset of at least 20 bytes (at
/// most 60, by its width) that ends inside it. The payload is the rest of
/// the buffer. The checksum is not checked.
#[derive(Clone, Copy)]
pub struct TcpSegment<'a> {
    header: &'a [u8; TCP_HEADER_LEN],
    options: &'a [u8],
    payload: &'a [u8],
}

impl<'a> TcpSegment<'a> {
    /// Checks `bytes` and makes the view.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`] if `bytes` ends within the header (fixed
    /// part or options), [`HeaderError::HeaderLen`] for a data offset under
    /// 20 bytes.
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, HeaderError> {
        let header_len = check(bytes)?;
        let truncated = HeaderError::Truncated { len: bytes.len() };
        let (header, rest) = bytes.split_first_chunk().ok_or(truncated)?;
        let (options, payload) = rest
            .split_at_checked(header_len - TCP_HEADER_LEN)
            .ok_or(truncated)?;
        Ok(Self {
            header,
            options,
            payload,
        })
    }

    /// The length of the header, options included (the data offset in
    /// bytes).
    #[inline]
    pub fn header_len(&self) -> usize {
        TCP_HEADER_LEN + self.options.len()
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

    /// The sequence number.
    #[inline]
    pub fn sequence(&self) -> u32 {
        let h = self.header;
        let at = SEQUENCE;
        u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]])
    }

    /// The acknowledgment number.
    #[inline]
    pub fn acknowledgment(&self) -> u32 {
        let h = self.header;
        let at = ACKNOWLEDGMENT;
        u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]])
    }

    /// The flags.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.header[FLAGS])
    }

    /// The receive window.
    #[inline]
    pub fn window(&self) -> u16 {
        be16(self.header, WINDOW)
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.header, CHECKSUM)
    }

    /// The options: the header after its fixed 20 bytes.
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        self.options
    }

    /// The payload: the bytes after the header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

impl fmt::Debug for TcpSegment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpSegment")
            .field("header_len", &self.header_len())
            .field("payload_len", &self.payload.len())
            .field("flags", &self.flags())
            .finish_non_exhaustive()
    }
}

/// A mutable view of a TCP header, for writing it in place; checked as
/// [`TcpSegment`].
pub struct TcpSegmentMut<'a> {
    header: &'a mut [u8; TCP_HEADER_LEN],
    rest: &'a mut [u8],
    header_len: usize,
}

impl<'a> TcpSegmentMut<'a> {
    /// Checks `bytes` and makes the view.
    ///
    /// # Errors
    ///
    /// As [`TcpSegment::new_checked`].
    #[inline]
    pub fn new_checked(bytes: &'a mut [u8]) -> Result<Self, HeaderError> {
        let header_len = check(bytes)?;
        let truncated = HeaderError::Truncated { len: bytes.len() };
        let (header, rest) = bytes.split_first_chunk_mut().ok_or(truncated)?;
        Ok(Self {
            header,
            rest,
            header_len,
        })
    }

    /// The segment in two pieces: the fixed 20 bytes of the header, and the
    /// options and payload; both of even length but the payload, as an
    /// Internet checksum sums them.
    #[inline]
    pub fn parts(&self) -> (&[u8; TCP_HEADER_LEN], &[u8]) {
        (self.header, self.rest)
    }

    /// The length of the header, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The sequence number.
    #[inline]
    pub fn sequence(&self) -> u32 {
        let h = &*self.header;
        let at = SEQUENCE;
        u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]])
    }

    /// The flags.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.header[FLAGS])
    }

    /// Sets the sequence number.
    #[inline]
    pub fn set_sequence(&mut self, sequence: u32) {
        let [a, b, c, d] = sequence.to_be_bytes();
        let at = SEQUENCE;
        self.header[at..at + 4].copy_from_slice(&[a, b, c, d]);
    }

    /// Sets the flags.
    #[inline]
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.header[FLAGS] = flags.0;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, checksum: u16) {
        set_be16(self.header, CHECKSUM, checksum);
    }
}

impl fmt::Debug for TcpSegmentMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpSegmentMut")
            .field("header_len", &self.header_len)
            .field("flags", &self.flags())
            .finish_non_exhaustive()
    }
}
