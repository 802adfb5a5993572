//! The printable form of signed objects, for files, terminals and chat.
//!
//! ```text
//! sentrymesh-card v1
//! AQ3x0pQ2... (standard base64, 64 characters a line)
//! ```
//!
//! The first line names the kind of object and its format version; the rest
//! is the binary encoding in standard base64 with padding. Reading is lenient
//! about whitespace — blank lines before the header, indentation, `\r\n` line
//! ends, re-wrapped base64 — so text that went through a mail client or a
//! chat window still reads. It is strict about everything else.
//!
//! Errors never quote the text they were given: a key file handed over by
//! mistake must not end up in a terminal or a log.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Columns of base64 on each line of the armour.
const LINE_WIDTH: usize = 64;
/// The most text accepted, so a huge input is refused before it is decoded.
pub const MAX_ARMOUR_LEN: usize = 8 << 20;
/// The prefix every header shares.
const PREFIX: &str = "sentrymesh-";
/// The format version this build writes and reads.
const VERSION: u32 = 1;

/// The kinds of object that have a printable form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArmourKind {
    /// A signed host card.
    Card,
    /// A host card with its proof of possession, for its operator to sign.
    CardRequest,
    /// A sealed bundle of cards.
    Bundle,
    /// A signed vouch for an operator.
    Vouch,
    /// A signed revocation.
    Revocation,
}

impl ArmourKind {
    const ALL: [Self; 5] = [
        Self::Card,
        Self::CardRequest,
        Self::Bundle,
        Self::Vouch,
        Self::Revocation,
    ];

    /// The word in the header: `card`, `card-request`, `bundle`, `vouch`,
    /// `revocation`.
    pub const fn word(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::CardRequest => "card-request",
            Self::Bundle => "bundle",
            Self::Vouch => "vouch",
            Self::Revocation => "revocation",
        }
    }

    /// The whole header line of this build, e.g. `sentrymesh-card v1`.
    pub const fn header(self) -> &'static str {
        match self {
            Self::Card => "sentrymesh-card v1",
            Self::CardRequest => "sentrymesh-card-request v1",
            Self::Bundle => "sentrymesh-bundle v1",
            Self::Vouch => "sentrymesh-vouch v1",
            Self::Revocation => "sentrymesh-revocation v1",
        }
    }
}

impl fmt::Display for ArmourKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// Why text is not the printable form of the expected object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArmourError {
    /// Nothing but whitespace.
    #[error("the text is empty; expected a `{}` block", expected.header())]
    Empty {
        /// The kind expected.
        expected: ArmourKind,
    },
    /// The text has no sentrymesh header line.
    #[error("the text does not begin with `{}`", expected.header())]
    NotArmoured {
        /// The kind expected.
        expected: ArmourKind,
    },
    /// The header names another kind of object.
    #[error("this is a sentrymesh {found}, not a {expected}")]
    WrongKind {
        /// The kind expected.
        expected: ArmourKind,
        /// The kind the header names.
        found: ArmourKind,
    },
    /// A format version this build does not read.
    #[error("`sentrymesh-{kind} v{version}` is not supported: this build reads `{}`", kind.header())]
    UnsupportedVersion {
        /// The kind of object.
        kind: ArmourKind,
        /// The version in the header.
        version: u32,
    },
    /// The body is not standard base64.
    #[error("the {kind} is not valid base64: it may have been cut off or altered")]
    Base64 {
        /// The kind of object.
        kind: ArmourKind,
    },
    /// More text than any object of this crate needs.
    #[error("the text is {len} bytes long, more than the {MAX_ARMOUR_LEN} accepted")]
    TooLong {
        /// The length of the text.
        len: usize,
    },
}

/// The printable form of `bytes` as a `kind`: the header line, then base64
/// wrapped at 64 columns, each line ending in `\n`.
pub fn encode(kind: ArmourKind, bytes: &[u8]) -> String {
    let body = BASE64.encode(bytes);
    let mut out = String::with_capacity(kind.header().len() + body.len() + body.len() / 64 + 2);
    out.push_str(kind.header());
    out.push('\n');
    // Base64 is ASCII, so every 64-byte chunk is valid UTF-8 on its own.
    for line in body.as_bytes().chunks(LINE_WIDTH) {
        out.extend(line.iter().map(|&b| char::from(b)));
        out.push('\n');
    }
    out
}

/// The bytes of a printable `kind`.
///
/// # Errors
///
/// [`ArmourError`] when the text is empty, too long, has no header or another
/// kind's header or version, or its body is not base64.
pub fn decode(expected: ArmourKind, text: &str) -> Result<Vec<u8>, ArmourError> {
    if text.len() > MAX_ARMOUR_LEN {
        return Err(ArmourError::TooLong { len: text.len() });
    }
    let text = text.trim_start();
    if text.is_empty() {
        return Err(ArmourError::Empty { expected });
    }
    let (header, body) = text.split_once('\n').unwrap_or((text, ""));
    check_header(expected, header.trim())?;
    let body: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64
        .decode(body)
        .map_err(|_| ArmourError::Base64 { kind: expected })
}

fn check_header(expected: ArmourKind, header: &str) -> Result<(), ArmourError> {
    let not_armoured = ArmourError::NotArmoured { expected };
    let (name, version) = header
        .split_once(|c: char| c.is_ascii_whitespace())
        .ok_or(not_armoured.clone())?;
    let word = name.strip_prefix(PREFIX).ok_or(not_armoured.clone())?;
    let found = ArmourKind::ALL
        .into_iter()
        .find(|kind| kind.word() == word)
        .ok_or(not_armoured.clone())?;
    if found != expected {
        return Err(ArmourError::WrongKind { expected, found });
    }
    let version = version
        .trim()
        .strip_prefix('v')
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(not_armoured)?;
    match version.parse::<u32>() {
        Ok(VERSION) => Ok(()),
        Ok(version) => Err(ArmourError::UnsupportedVersion {
            kind: found,
            version,
        }),
        // More digits than a u32 holds: certainly not a version we know.
        Err(_) => Err(ArmourError::UnsupportedVersion {
            kind: found,
            version: u32::MAX,
        }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn wraps_at_64_columns_under_the_header() {
        let text = encode(ArmourKind::Card, &[0xab; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "sentrymesh-card v1");
        // 100 bytes are 136 characters of base64: 64 + 64 + 8.
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 64);
        assert_eq!(lines[3].len(), 8);
        assert_eq!(lines.len(), 4);
        assert!(text.ends_with('\n'));
        assert_eq!(decode(ArmourKind::Card, &text).unwrap(), vec![0xab; 100]);
    }

    #[test]
    fn lenient_about_whitespace() {
        let text = encode(ArmourKind::Vouch, b"hello, operators of the mesh");
        let messy = format!(
            "\n\n   {}",
            text.replace('\n', "\r\n   ").replacen("v1", "  v1 ", 1)
        );
        assert_eq!(
            decode(ArmourKind::Vouch, &messy).unwrap(),
            b"hello, operators of the mesh"
        );
        let one_line: String = text.lines().skip(1).collect();
        let rewrapped = format!("sentrymesh-vouch v1\n{}", one_line);
        assert_eq!(
            decode(ArmourKind::Vouch, &rewrapped).unwrap(),
            b"hello, operators of the mesh"
        );
    }

    #[test]
    fn header_errors_are_specific() {
        let bundle = encode(ArmourKind::Bundle, b"x");
        assert_eq!(
            decode(ArmourKind::Card, &bundle),
            Err(ArmourError::WrongKind {
                expected: ArmourKind::Card,
                found: ArmourKind::Bundle
            })
        );
        assert_eq!(
            decode(ArmourKind::Card, " \n\t"),
            Err(ArmourError::Empty {
                expected: ArmourKind::Card
            })
        );
        assert_eq!(
            decode(ArmourKind::Card, "sentrymesh-card v2\nAAAA"),
            Err(ArmourError::UnsupportedVersion {
                kind: ArmourKind::Card,
                version: 2
            })
        );
        for text in [
            "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=",
            "sentrymesh-card\nAAAA",
            "sentrymesh-cards v1\nAAAA",
            "sentrymesh-card version1\nAAAA",
        ] {
            assert_eq!(
                decode(ArmourKind::Card, text),
                Err(ArmourError::NotArmoured {
                    expected: ArmourKind::Card
                }),
                "{text:?}"
            );
        }
        assert_eq!(
            decode(ArmourKind::Card, "sentrymesh-card v1\nAA!A"),
            Err(ArmourError::Base64 {
                kind: ArmourKind::Card
            })
        );
    }

    #[test]
    fn errors_never_quote_the_input() {
        let secret = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
        for text in [
            secret.to_owned(),
            format!("sentrymesh-card v1\n{secret}!"),
            format!("sentrymesh-card v7\n{secret}"),
        ] {
            let message = decode(ArmourKind::Card, &text).unwrap_err().to_string();
            assert!(!message.contains(&secret[..8]), "{message}");
        }
    }

    #[test]
    fn oversized_text_is_refused_unread() {
        let text = "A".repeat(MAX_ARMOUR_LEN + 1);
        assert_eq!(
            decode(ArmourKind::Bundle, &text),
            Err(ArmourError::TooLong {
                len: MAX_ARMOUR_LEN + 1
            })
        );
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            for kind in ArmourKind::ALL {
                prop_assert_eq!(decode(kind, &encode(kind, &bytes)).unwrap(), bytes.clone());
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            let _ = decode(ArmourKind::Card, &text);
            let _ = decode(ArmourKind::Bundle, &format!("sentrymesh-bundle v1\n{text}"));
        }
    }
}
