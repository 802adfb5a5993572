//! The four WireGuard messages as zero-copy views over a datagram.
//!
//! As in smoltcp, a view is checked once by `new_checked` (type byte, reserved
//! bytes and exact length); its accessors then read fixed offsets and cannot
//! fail. Writers fill a caller-owned buffer in place.
//!
//! ```text
//! initiation  (148) | 1 |0 0 0| sender | ephemeral 32 | static 32+16 | timestamp 12+16 | mac1 16 | mac2 16 |
//! response     (92) | 2 |0 0 0| sender | receiver | ephemeral 32 | empty 0+16 | mac1 16 | mac2 16 |
//! cookie reply (64) | 3 |0 0 0| receiver | nonce 24 | cookie 16+16 |
//! data       (32..) | 4 |0 0 0| receiver | counter 8 | payload | tag 16 |
//! ```

use std::fmt;

use sentrymesh_types::blake2s::MAC_LEN;

use crate::crypto::aead::TAG_LEN;

/// Length of a handshake initiation.
pub const INITIATION_LEN: usize = 148;
/// Length of a handshake response.
pub const RESPONSE_LEN: usize = 92;
/// Length of a cookie reply.
pub const COOKIE_REPLY_LEN: usize = 64;
/// Length of the header of a data message, before the encrypted payload.
pub const DATA_HEADER_LEN: usize = 16;
/// Bytes a data message adds to its (padded) payload: header and tag.
pub const DATA_OVERHEAD: usize = DATA_HEADER_LEN + TAG_LEN;
/// Length of a keepalive: a data message with an empty payload.
pub const KEEPALIVE_LEN: usize = DATA_OVERHEAD;

const TYPE_INITIATION: u8 = 1;
const TYPE_RESPONSE: u8 = 2;
const TYPE_COOKIE_REPLY: u8 = 3;
const TYPE_DATA: u8 = 4;

/// The 32-bit index by which each side names a session (or a handshake in
/// progress) so the other can address it without revealing its identity.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionIndex(pub u32);

impl fmt::Debug for SessionIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionIndex({:#010x})", self.0)
    }
}

/// A datagram that is not a well-formed WireGuard message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// The kind of a datagram, from its first byte and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageKind {
    Initiation,
    Response,
    CookieReply,
    Data,
}

impl MessageKind {
    /// Classifies `datagram`, checking the reserved bytes and the exact length
    /// of its type (at least a keepalive's length for data).
    pub(crate) fn of(datagram: &[u8]) -> Result<Self, Malformed> {
        let [kind, 0, 0, 0, ..] = *datagram else {
            return Err(Malformed);
        };
        let (kind, length_ok) = match kind {
            TYPE_INITIATION => (Self::Initiation, datagram.len() == INITIATION_LEN),
            TYPE_RESPONSE => (Self::Response, datagram.len() == RESPONSE_LEN),
            TYPE_COOKIE_REPLY => (Self::CookieReply, datagram.len() == COOKIE_REPLY_LEN),
            TYPE_DATA => (Self::Data, datagram.len() >= KEEPALIVE_LEN),
            _ => return Err(Malformed),
        };
        if length_ok { Ok(kind) } else { Err(Malformed) }
    }
}

/// `N` bytes of `buf` at `offset`; the caller has checked the length.
fn field<const N: usize>(buf: &[u8], offset: usize) -> &[u8; N] {
    // Every view checks its length in `new_checked`, and offsets are constants
    // within that length.
    buf[offset..offset + N]
        .try_into()
        .expect("field within checked length")
}

fn field_mut<const N: usize>(buf: &mut [u8], offset: usize) -> &mut [u8; N] {
    (&mut buf[offset..offset + N])
        .try_into()
        .expect("field within checked length")
}

fn index_at(buf: &[u8], offset: usize) -> SessionIndex {
    SessionIndex(u32::from_le_bytes(*field(buf, offset)))
}

fn write_header(buf: &mut [u8], kind: u8) {
    buf[..4].copy_from_slice(&[kind, 0, 0, 0]);
}

/// The bytes covered by `mac1` and `mac2` in a handshake message of length `len`.
pub(crate) const fn mac1_offset(len: usize) -> usize {
    len - 2 * MAC_LEN
}

/// The offset of `mac2` in a handshake message of length `len`.
pub(crate) const fn mac2_offset(len: usize) -> usize {
    len - MAC_LEN
}

/// A handshake initiation (message type 1).
pub(crate) struct Initiation<T>(T);

impl<T: AsRef<[u8]>> Initiation<T> {
    pub(crate) const EPHEMERAL: usize = 8;
    pub(crate) const STATIC: usize = 40;
    pub(crate) const TIMESTAMP: usize = 88;

    pub(crate) fn new_checked(buf: T) -> Result<Self, Malformed> {
        match MessageKind::of(buf.as_ref())? {
            MessageKind::Initiation => Ok(Self(buf)),
            _ => Err(Malformed),
        }
    }

    pub(crate) fn sender(&self) -> SessionIndex {
        index_at(self.0.as_ref(), 4)
    }

    pub(crate) fn ephemeral(&self) -> &[u8; 32] {
        field(self.0.as_ref(), Self::EPHEMERAL)
    }

    pub(crate) fn encrypted_static(&self) -> &[u8; 32 + TAG_LEN] {
        field(self.0.as_ref(), Self::STATIC)
    }

    pub(crate) fn encrypted_timestamp(&self) -> &[u8; 12 + TAG_LEN] {
        field(self.0.as_ref(), Self::TIMESTAMP)
    }
}

impl<'a> Initiation<&'a mut [u8; INITIATION_LEN]> {
    /// Starts an initiation in `buf`: header and sender index.
    pub(crate) fn start(buf: &'a mut [u8; INITIATION_LEN], sender: SessionIndex) -> Self {
        write_header(buf, TYPE_INITIATION);
        buf[4..8].copy_from_slice(&sender.0.to_le_bytes());
        Self(buf)
    }

    pub(crate) fn ephemeral_mut(&mut self) -> &mut [u8; 32] {
        field_mut(self.0, Self::EPHEMERAL)
    }

    pub(crate) fn encrypted_static_mut(&mut self) -> &mut [u8; 32 + TAG_LEN] {
        field_mut(self.0, Self::STATIC)
    }

    pub(crate) fn encrypted_timestamp_mut(&mut self) -> &mut [u8; 12 + TAG_LEN] {
        field_mut(self.0, Self::TIMESTAMP)
    }
}

/// A handshake response (message type 2).
pub(crate) struct Response<T>(T);

impl<T: AsRef<[u8]>> Response<T> {
    pub(crate) const EPHEMERAL: usize = 12;
    pub(crate) const EMPTY: usize = 44;

    pub(crate) fn new_checked(buf: T) -> Result<Self, Malformed> {
        match MessageKind::of(buf.as_ref())? {
            MessageKind::Response => Ok(Self(buf)),
            _ => Err(Malformed),
        }
    }

    pub(crate) fn sender(&self) -> SessionIndex {
        index_at(self.0.as_ref(), 4)
    }

    pub(crate) fn receiver(&self) -> SessionIndex {
        index_at(self.0.as_ref(), 8)
    }

    pub(crate) fn ephemeral(&self) -> &[u8; 32] {
        field(self.0.as_ref(), Self::EPHEMERAL)
    }

    pub(crate) fn encrypted_nothing(&self) -> &[u8; TAG_LEN] {
        field(self.0.as_ref(), Self::EMPTY)
    }
}

impl<'a> Response<&'a mut [u8; RESPONSE_LEN]> {
    /// Starts a response in `buf`: header, sender and receiver indices.
    pub(crate) fn start(
        buf: &'a mut [u8; RESPONSE_LEN],
        sender: SessionIndex,
        receiver: SessionIndex,
    ) -> Self {
        write_header(buf, TYPE_RESPONSE);
        buf[4..8].copy_from_slice(&sender.0.to_le_bytes());
        buf[8..12].copy_from_slice(&receiver.0.to_le_bytes());
        Self(buf)
    }

    pub(crate) fn ephemeral_mut(&mut self) -> &mut [u8; 32] {
        field_mut(self.0, Self::EPHEMERAL)
    }

    pub(crate) fn encrypted_nothing_mut(&mut self) -> &mut [u8; TAG_LEN] {
        field_mut(self.0, Self::EMPTY)
    }
}

/// A cookie reply (message type 3).
pub(crate) struct CookieReply<T>(T);

impl<T: AsRef<[u8]>> CookieReply<T> {
    pub(crate) fn new_checked(buf: T) -> Result<Self, Malformed> {
        match MessageKind::of(buf.as_ref())? {
            MessageKind::CookieReply => Ok(Self(buf)),
            _ => Err(Malformed),
        }
    }

    pub(crate) fn receiver(&self) -> SessionIndex {
        index_at(self.0.as_ref(), 4)
    }

    pub(crate) fn nonce(&self) -> &[u8; 24] {
        field(self.0.as_ref(), 8)
    }

    pub(crate) fn encrypted_cookie(&self) -> &[u8; MAC_LEN + TAG_LEN] {
        field(self.0.as_ref(), 32)
    }
}

impl<'a> CookieReply<&'a mut [u8; COOKIE_REPLY_LEN]> {
    /// Starts a cookie reply in `buf`: header and receiver index.
    pub(crate) fn start(buf: &'a mut [u8; COOKIE_REPLY_LEN], receiver: SessionIndex) -> Self {
        write_header(buf, TYPE_COOKIE_REPLY);
        buf[4..8].copy_from_slice(&receiver.0.to_le_bytes());
        Self(buf)
    }

    pub(crate) fn nonce_mut(&mut self) -> &mut [u8; 24] {
        field_mut(self.0, 8)
    }

    pub(crate) fn encrypted_cookie_mut(&mut self) -> &mut [u8; MAC_LEN + TAG_LEN] {
        field_mut(self.0, 32)
    }
}

/// The header of a data message (type 4): receiver index and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataHeader {
    pub(crate) receiver: SessionIndex,
    pub(crate) counter: u64,
}

impl DataHeader {
    /// Reads the header of a datagram already classified as data.
    pub(crate) fn read(datagram: &[u8]) -> Self {
        Self {
            receiver: index_at(datagram, 4),
            counter: u64::from_le_bytes(*field(datagram, 8)),
        }
    }

    /// Writes the header into the first [`DATA_HEADER_LEN`] bytes of `buf`.
    pub(crate) fn write(self, buf: &mut [u8; DATA_HEADER_LEN]) {
        write_header(buf, TYPE_DATA);
        buf[4..8].copy_from_slice(&self.receiver.0.to_le_bytes());
        buf[8..16].copy_from_slice(&self.counter.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_checks_type_reserved_bytes_and_length() {
        let mut initiation = [0u8; INITIATION_LEN];
        initiation[0] = 1;
        assert_eq!(MessageKind::of(&initiation), Ok(MessageKind::Initiation));
        assert_eq!(MessageKind::of(&initiation[..147]), Err(Malformed));
        initiation[2] = 1;
        assert_eq!(MessageKind::of(&initiation), Err(Malformed));

        let mut data = [0u8; KEEPALIVE_LEN];
        data[0] = 4;
        assert_eq!(MessageKind::of(&data), Ok(MessageKind::Data));
        assert_eq!(MessageKind::of(&data[..31]), Err(Malformed));

        for kind in [0u8, 5, 255] {
            let mut buf = [0u8; 64];
            buf[0] = kind;
            assert_eq!(MessageKind::of(&buf), Err(Malformed));
        }
        assert_eq!(MessageKind::of(&[]), Err(Malformed));
        assert_eq!(MessageKind::of(&[1, 0, 0]), Err(Malformed));
    }

    #[test]
    fn views_refuse_other_types() {
        let mut response = [0u8; RESPONSE_LEN];
        Response::start(&mut response, SessionIndex(7), SessionIndex(9));
        assert!(Initiation::new_checked(&response[..]).is_err());
        let view = Response::new_checked(&response[..]).unwrap();
        assert_eq!(
            (view.sender(), view.receiver()),
            (SessionIndex(7), SessionIndex(9))
        );
    }

    #[test]
    fn data_header_round_trips() {
        let header = DataHeader {
            receiver: SessionIndex(0xdead_beef),
            counter: u64::MAX - 3,
        };
        let mut buf = [0u8; DATA_HEADER_LEN];
        header.write(&mut buf);
        assert_eq!(DataHeader::read(&buf), header);
        assert_eq!(buf[..4], [4, 0, 0, 0]);
    }
}
