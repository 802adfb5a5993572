//! The binary encoding of everything this crate signs.
//!
//! Signatures cover bytes, so the encoding is canonical: one value has exactly
//! one encoding, and [`Reader`] accepts nothing else. Integers are big-endian
//! and fixed-width; a byte string or text is a `u16` length then the bytes (a
//! "long" byte string has a `u32` length); a list is a `u16` count then its
//! items. Every length is checked against a
//! maximum before anything is read or allocated, and a value followed by
//! unread bytes is refused.
//!
//! The reader names the field it was reading in every error, so an operator
//! learns *what* is wrong with a file ("ends in the middle of the host name"),
//! and it never panics, whatever the input.

mod net;

use sentrymesh_types::UnixTime;

/// The format version that leads every encoded object of this build.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// Why bytes are not a well-formed encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("the data ends in the middle of the {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A length or count over the maximum allowed for its field.
    #[error("the {field} has length {len}, more than the {max} allowed")]
    TooLong {
        /// The field being read.
        field: &'static str,
        /// The length or count found.
        len: usize,
        /// The maximum for the field.
        max: usize,
    },
    /// Bytes left over after a complete value.
    #[error("{count} unexpected bytes after the end of the data")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// A format version this build does not read.
    #[error("format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        found: u8,
    },
    /// A field whose value is outside its allowed set (an unknown tag, a
    /// flag that is neither 0 nor 1).
    #[error("the {field} has the invalid value {value}")]
    BadValue {
        /// The field being read.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// A text field that is not UTF-8.
    #[error("the {field} is not UTF-8 text")]
    NotUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// A field that is well-formed bytes but not a valid value of its type.
    #[error("the {field} is invalid: {reason}")]
    Invalid {
        /// The field being read.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Builds an encoding. Writing cannot fail: callers encode only values they
/// have validated against the limits the [`Reader`] enforces.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A writer that starts with the format version byte.
    pub(crate) fn versioned() -> Self {
        let mut writer = Self::new();
        writer.u8(FORMAT_VERSION);
        writer
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    /// Writes a wall-clock time as its `u64` of Unix seconds.
    pub(crate) fn time(&mut self, value: UnixTime) {
        self.u64(value.0);
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    /// Fixed-size bytes, no length prefix.
    pub(crate) fn array(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A list count, as a `u16`.
    pub(crate) fn count(&mut self, count: usize) {
        // Invariant: every list is validated to far fewer than 65536 items
        // (the largest limit in this crate is 256) before it is encoded.
        let count = u16::try_from(count).expect("list validated below 65536 items");
        self.u16(count);
    }

    /// Bytes with a `u16` length prefix.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        // Invariant: short byte strings (names, keys, encoded cards) are
        // validated below 65536 bytes before they are encoded.
        let len = u16::try_from(bytes.len()).expect("field validated below 65536 bytes");
        self.u16(len);
        self.array(bytes);
    }

    /// Bytes with a `u32` length prefix.
    pub(crate) fn long_bytes(&mut self, bytes: &[u8]) {
        // Invariant: long byte strings (bundle payloads) are validated to a
        // few MiB before they are encoded.
        let len = u32::try_from(bytes.len()).expect("payload validated below 4 GiB");
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.array(bytes);
    }

    /// UTF-8 text with a `u16` length prefix.
    pub(crate) fn str(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    /// Everything written so far.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// The finished encoding.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads an encoding, checking every length against the input and its
/// field's maximum. No method panics.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Reads the leading format version and refuses any but this build's.
    pub(crate) fn version(&mut self) -> Result<(), DecodeError> {
        match self.u8("format version")? {
            FORMAT_VERSION => Ok(()),
            found => Err(DecodeError::UnsupportedVersion { found }),
        }
    }

    /// The next `len` bytes.
    pub(crate) fn take(
        &mut self,
        len: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        if len > self.rest.len() {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.array::<1>(field).map(|[b]| b)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    /// Reads a wall-clock time: a `u64` of Unix seconds.
    pub(crate) fn time(&mut self, field: &'static str) -> Result<UnixTime, DecodeError> {
        self.u64(field).map(UnixTime)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }

    /// A list count of at most `max`.
    pub(crate) fn count(&mut self, field: &'static str, max: usize) -> Result<usize, DecodeError> {
        let len = usize::from(self.u16(field)?);
        check_len(field, len, max)?;
        Ok(len)
    }

    /// Bytes with a `u16` length prefix of at most `max`.
    pub(crate) fn bytes(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16(field)?);
        check_len(field, len, max)?;
        self.take(len, field)
    }

    /// Bytes with a `u32` length prefix of at most `max`.
    pub(crate) fn long_bytes(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)?;
        // A length that does not fit a usize is certainly over any maximum.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        check_len(field, len, max)?;
        self.take(len, field)
    }

    /// UTF-8 text with a `u16` length prefix of at most `max` bytes.
    pub(crate) fn str(&mut self, field: &'static str, max: usize) -> Result<&'a str, DecodeError> {
        let bytes = self.bytes(field, max)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8 { field })
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Succeeds only when every byte was read.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        return Err(DecodeError::TooLong { field, len, max });
    }
    Ok(())
}

/// Splits a signed object into its body and the 64-byte Ed25519 signature
/// that ends it.
pub(crate) fn split_signature(bytes: &[u8]) -> Result<(&[u8], [u8; 64]), DecodeError> {
    let body_len = bytes
        .len()
        .checked_sub(64)
        .ok_or(DecodeError::Truncated { field: "signature" })?;
    let (body, signature) = bytes.split_at(body_len);
    let mut out = [0u8; 64];
    out.copy_from_slice(signature);
    Ok((body, out))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn round_trip_of_every_kind_of_field() {
        let mut w = Writer::versioned();
        w.u8(7);
        w.u16(0x1234);
        w.u64(u64::MAX - 1);
        w.array(&[1, 2, 3]);
        w.count(2);
        w.bytes(b"abc");
        w.long_bytes(&[9; 300]);
        w.str("sentry-1");
        let bytes = w.into_bytes();

        let mut r = Reader::new(&bytes);
        r.version().unwrap();
        assert_eq!(r.u8("a").unwrap(), 7);
        assert_eq!(r.u16("b").unwrap(), 0x1234);
        assert_eq!(r.u64("c").unwrap(), u64::MAX - 1);
        assert_eq!(r.array::<3>("e").unwrap(), [1, 2, 3]);
        assert_eq!(r.count("f", 2).unwrap(), 2);
        assert_eq!(r.bytes("g", 3).unwrap(), b"abc");
        assert_eq!(r.long_bytes("h", 300).unwrap(), &[9; 300][..]);
        assert_eq!(r.str("i", 8).unwrap(), "sentry-1");
        r.finish().unwrap();
    }

    #[test]
    fn encoding_is_big_endian_with_length_prefixes() {
        let mut w = Writer::new();
        w.u16(0x0102);
        w.bytes(b"xy");
        w.long_bytes(b"z");
        assert_eq!(w.as_slice(), &[1, 2, 0, 2, b'x', b'y', 0, 0, 0, 1, b'z']);
    }

    #[test]
    fn each_malformation_names_its_field() {
        let mut r = Reader::new(&[0, 5, b'a']);
        assert_eq!(
            r.bytes("host name", 63),
            Err(DecodeError::Truncated { field: "host name" })
        );

        let mut r = Reader::new(&[0, 64]);
        assert_eq!(
            r.bytes("host name", 63),
            Err(DecodeError::TooLong {
                field: "host name",
                len: 64,
                max: 63
            })
        );

        let mut r = Reader::new(&[0, 1, 0xff]);
        assert_eq!(
            r.str("host name", 63),
            Err(DecodeError::NotUtf8 { field: "host name" })
        );

        let mut r = Reader::new(&[2]);
        assert_eq!(
            r.version(),
            Err(DecodeError::UnsupportedVersion { found: 2 })
        );

        let mut r = Reader::new(&[1, 2, 3]);
        r.u8("x").unwrap();
        assert_eq!(r.remaining(), 2);
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes { count: 2 }));
    }

    #[test]
    fn a_huge_long_length_is_refused_before_reading() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            r.long_bytes("payload", 1 << 20),
            Err(DecodeError::TooLong {
                field: "payload",
                len: 0xffff_ffff,
                max: 1 << 20
            })
        );
    }

    #[test]
    fn signature_split() {
        assert_eq!(
            split_signature(&[0; 63]),
            Err(DecodeError::Truncated { field: "signature" })
        );
        let mut bytes = vec![1, 2, 3];
        bytes.extend_from_slice(&[7; 64]);
        let (body, signature) = split_signature(&bytes).unwrap();
        assert_eq!(body, &[1, 2, 3]);
        assert_eq!(signature, [7; 64]);
    }

    proptest! {
        #[test]
        fn the_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            let _ = r.version();
            let _ = r.str("a", 16);
            let _ = r.long_bytes("b", 16);
            let _ = r.count("c", 3);
            let _ = r.u64("e");
            let _ = r.finish();
        }
    }
}
