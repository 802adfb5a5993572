//! Why a request was refused, and the errno wireguard-go would answer.

use super::errno::Errno;
use super::request::{Key, Operation, Section};

/// A request that cannot be carried out: it could not be read, or a line of
/// it is not valid. Nothing of a refused request is applied.
///
/// No variant holds text from the request: a key or value may be secret (a
/// private key in hex, or a base64 key pasted where a key name belongs), so
/// errors name lines by number and keys only when they are known names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RequestError {
    /// The first line is neither `get=1`, `set=1` nor `reload=1`.
    /// wireguard-go closes the connection without a reply.
    #[error("the first line of the request is neither get=1, set=1 nor reload=1")]
    UnknownOperation,
    /// `get=1` or `reload=1` is followed by something other than the blank
    /// line.
    #[error("{}=1 is not followed by a blank line", operation_name(Some(*.operation)))]
    NotTerminated {
        /// The operation, `Get` or `Reload`.
        operation: Operation,
    },
    /// The input ended before the blank line that ends the request (or, for
    /// `operation: None`, inside its first line).
    #[error("the input ended inside a {} request", operation_name(*.operation))]
    Truncated {
        /// The operation that was cut short, if its first line was whole.
        operation: Option<Operation>,
    },
    /// A line of a set request, its newline included, is longer than
    /// [`Limits::max_line_len`](super::Limits::max_line_len).
    #[error("line {line} of the request is longer than {limit} bytes")]
    LineTooLong {
        /// The line's number in the request (`set=1` is line 1).
        line: usize,
        /// The limit it exceeds.
        limit: usize,
    },
    /// The request is longer than
    /// [`Limits::max_request_len`](super::Limits::max_request_len).
    #[error("the request is longer than {limit} bytes")]
    RequestTooLong {
        /// The limit it exceeds.
        limit: usize,
    },
    /// A line has no `=` between a key and a value.
    #[error("line {line} has no '=' between a key and a value")]
    MissingEquals {
        /// The line's number in the request (`set=1` is line 1).
        line: usize,
    },
    /// A key that does not belong where it is: unknown, or a known key in the
    /// other section (device keys come before the first `public_key`, peer
    /// keys after it).
    #[error("line {line}: {}", unknown_key(*.section, *.misplaced))]
    UnknownKey {
        /// The line's number in the request (`set=1` is line 1).
        line: usize,
        /// The section the line is in.
        section: Section,
        /// The key, when it is a known key of the other section.
        misplaced: Option<Key>,
    },
    /// A known key with a value it does not take.
    #[error("line {line}: not a valid value for {key}")]
    InvalidValue {
        /// The line's number in the request (`set=1` is line 1).
        line: usize,
        /// The key whose value is not valid.
        key: Key,
    },
}

impl RequestError {
    /// The errno to answer with (`errno=-N` and a blank line), or `None` when
    /// wireguard-go answers nothing and closes the connection.
    ///
    /// The mapping follows wireguard-go's `device/uapi.go` (`IpcHandle`,
    /// `IpcSetOperation`, `handleDeviceLine`, `handlePeerLine`), except where
    /// wireguard-go has no such error:
    ///
    /// | error | errno | wireguard-go |
    /// | --- | --- | --- |
    /// | `UnknownOperation` | none, close | logs "invalid UAPI operation", closes |
    /// | `NotTerminated` | `EINVAL` | "trailing character in UAPI get" |
    /// | `Truncated` in a get, or in the first line | none, close | read error: closes |
    /// | `Truncated` in a set | `EPROTO` | *applies what it read, answers 0* |
    /// | `LineTooLong` | `EIO` | `bufio.Scanner`'s 64 KiB limit, `IpcErrorIO` |
    /// | `RequestTooLong` | `EIO` | *no limit* |
    /// | `MissingEquals` | `EPROTO` | "failed to parse line", `IpcErrorProtocol` |
    /// | `UnknownKey` | `EINVAL` | "invalid UAPI device/peer key" |
    /// | `InvalidValue` | `EINVAL` | each key's parse failure, `IpcErrorInvalid` |
    pub(crate) fn errno(&self) -> Option<Errno> {
        match self {
            Self::UnknownOperation => None,
            Self::Truncated { operation } => match operation {
                Some(Operation::Set) => Some(Errno::EPROTO),
                Some(Operation::Get | Operation::Status | Operation::Reload) | None => None,
            },
            Self::NotTerminated { .. } | Self::UnknownKey { .. } | Self::InvalidValue { .. } => {
                Some(Errno::EINVAL)
            }
            Self::LineTooLong { .. } | Self::RequestTooLong { .. } => Some(Errno::EIO),
            Self::MissingEquals { .. } => Some(Errno::EPROTO),
        }
    }
}

fn operation_name(operation: Option<Operation>) -> &'static str {
    match operation {
        Some(Operation::Get) => "get",
        Some(Operation::Set) => "set",
        Some(Operation::Reload) => "reload",
        Some(Operation::Status) => "get_status",
        None => "UAPI",
    }
}

fn unknown_key(section: Section, misplaced: Option<Key>) -> String {
    match misplaced {
        Some(key) => format!(
            "{key} is a {} key, not allowed in the {section} section \
             (device keys come before the first public_key)",
            key.section()
        ),
        None => format!("unknown {section} key"),
    }
}
