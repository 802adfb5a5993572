//! The wire forms of introductions and cookie replies: views over received
//! bytes whose length, type and version are checked once, then read
//! through accessors that cannot panic; and the plaintext an introduction
//! seals.

use sentrymesh_types::{PublicKey, UnixTime};

use super::{
    COOKIE_REPLY_LEN, COOKIE_REPLY_TYPE, HEADER_LEN, INTRODUCTION_TYPE, MAC_LEN,
    MAX_INTRODUCTION_LEN, MIN_INTRODUCTION_LEN, PAD_TO, TAG_LEN, VERSION, XNONCE_LEN,
};
use crate::card::MAX_CARD_LEN;
use crate::codec::{DecodeError, Reader};
use crate::identity::OperatorId;

/// Checks the type and version bytes that open every message.
fn check_type(bytes: &[u8], expected: u8, field: &'static str) -> Result<(), DecodeError> {
    match bytes {
        [kind, VERSION, ..] if *kind == expected => Ok(()),
        [kind, ..] if *kind != expected => Err(DecodeError::BadValue {
            field,
            value: (*kind).into(),
        }),
        [_, version, ..] => Err(DecodeError::BadValue {
            field: "version",
            value: (*version).into(),
        }),
        _ => Err(DecodeError::Truncated { field }),
    }
}

/// An introduction's bytes, their length, type and version checked: the
/// header, the sealed part and the two MACs read without further checks.
pub(super) struct IntroductionView<'a> {
    bytes: &'a [u8],
}

impl<'a> IntroductionView<'a> {
    /// Checks the length, the type and the version.
    pub(super) fn new_checked(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_INTRODUCTION_LEN {
            return Err(DecodeError::TooLong {
                field: "introduction",
                len: bytes.len(),
                max: MAX_INTRODUCTION_LEN,
            });
        }
        if bytes.len() < MIN_INTRODUCTION_LEN {
            return Err(DecodeError::Truncated {
                field: "introduction",
            });
        }
        if (bytes.len() - HEADER_LEN - TAG_LEN - 2 * MAC_LEN) % PAD_TO != 0 {
            return Err(DecodeError::Invalid {
                field: "introduction",
                reason: "not a whole number of blocks",
            });
        }
        check_type(bytes, INTRODUCTION_TYPE, "introduction type")?;
        Ok(Self { bytes })
    }

    /// The type and version bytes and the ephemeral key: the associated
    /// data.
    pub(super) fn header(&self) -> &'a [u8] {
        &self.bytes[..HEADER_LEN]
    }

    /// The ephemeral X25519 public key.
    pub(super) fn ephemeral(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.bytes[2..HEADER_LEN]);
        key
    }

    /// The ciphertext and its tag.
    pub(super) fn sealed(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..self.mac1_at()]
    }

    /// Everything the first MAC covers: all before it.
    pub(super) fn mac1_covers(&self) -> &'a [u8] {
        &self.bytes[..self.mac1_at()]
    }

    /// The first MAC, keyed by the recipient's public key.
    pub(super) fn mac1(&self) -> [u8; MAC_LEN] {
        let at = self.mac1_at();
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&self.bytes[at..at + MAC_LEN]);
        mac
    }

    /// Everything the second MAC covers: all before it, the first MAC
    /// included.
    pub(super) fn mac2_covers(&self) -> &'a [u8] {
        &self.bytes[..self.bytes.len() - MAC_LEN]
    }

    /// The second MAC, keyed by a cookie; zeros when the sender holds none.
    pub(super) fn mac2(&self) -> [u8; MAC_LEN] {
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&self.bytes[self.bytes.len() - MAC_LEN..]);
        mac
    }

    fn mac1_at(&self) -> usize {
        self.bytes.len() - 2 * MAC_LEN
    }
}

/// A cookie reply's bytes, their length, type and version checked.
pub(super) struct CookieReplyView<'a> {
    bytes: &'a [u8],
}

impl<'a> CookieReplyView<'a> {
    /// Checks the length, the type and the version.
    pub(super) fn new_checked(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() != COOKIE_REPLY_LEN {
            return Err(DecodeError::Invalid {
                field: "cookie reply",
                reason: "not the length of a cookie reply",
            });
        }
        check_type(bytes, COOKIE_REPLY_TYPE, "cookie reply type")?;
        Ok(Self { bytes })
    }

    /// The XChaCha20 nonce.
    pub(super) fn nonce(&self) -> &'a [u8] {
        &self.bytes[2..2 + XNONCE_LEN]
    }

    /// The encrypted cookie and its tag.
    pub(super) fn encrypted_cookie(&self) -> &'a [u8] {
        &self.bytes[2 + XNONCE_LEN..]
    }
}

/// The decrypted contents of an introduction, parsed but not verified.
pub(super) struct Plaintext<'a> {
    pub(super) timestamp: UnixTime,
    pub(super) operator: OperatorId,
    pub(super) wg_key: PublicKey,
    pub(super) card: &'a [u8],
}

impl<'a> Plaintext<'a> {
    /// Parses a decrypted plaintext, its padding included.
    pub(super) fn parse(plain: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(plain);
        let timestamp = r.time("introduction timestamp")?;
        let operator =
            OperatorId::from_bytes(&r.array("introduction operator")?).map_err(|_| {
                DecodeError::Invalid {
                    field: "introduction operator",
                    reason: "not an Ed25519 public key",
                }
            })?;
        let wg_key = PublicKey::from_bytes(r.array("introduction WireGuard key")?);
        let card = r.bytes("introduced card", MAX_CARD_LEN)?;
        let padding = r.take(r.remaining(), "padding")?;
        if padding.len() >= PAD_TO || padding.iter().any(|&b| b != 0) {
            return Err(DecodeError::Invalid {
                field: "padding",
                reason: "not the zeros up to the next block",
            });
        }
        r.finish()?;
        Ok(Self {
            timestamp,
            operator,
            wg_key,
            card,
        })
    }
}
