//! The error numbers a UAPI reply carries, as wireguard-go sends them.

use std::fmt;

use crate::dataplane::change::ChangeError;

/// An error number for a reply: the line `errno=-N` with `N` from Linux's
/// `errno.h` (wireguard-go sends the negated number; `wg` negates it back).
///
/// The values are Linux's, as wireguard-go sends them on Linux (its
/// `ipc/uapi_unix.go` takes them from `golang.org/x/sys/unix`). `EPROTO` and
/// `EADDRINUSE` have other numbers on the BSDs and macOS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Errno(i32);

impl Errno {
    /// `EIO` (5), wireguard-go's `IpcErrorIO`: the request could not be read
    /// (a line over its 64 KiB limit) or the reply not written.
    pub(crate) const EIO: Self = Self(5);
    /// `EINVAL` (22), wireguard-go's `IpcErrorInvalid`: an unknown key, a
    /// value it cannot parse, a key in the wrong section, or a peer it cannot
    /// create.
    pub(crate) const EINVAL: Self = Self(22);
    /// 55 (`ENOANO` on Linux), wireguard-go's `IpcErrorUnknown`: an error it
    /// cannot classify.
    pub(crate) const UNKNOWN: Self = Self(55);
    /// `EPROTO` (71), wireguard-go's `IpcErrorProtocol`: a line without `=`.
    pub(crate) const EPROTO: Self = Self(71);
    /// `EADDRINUSE` (98), wireguard-go's `IpcErrorPortInUse`: the new listen
    /// port or fwmark could not be applied to the sockets.
    pub(crate) const EADDRINUSE: Self = Self(98);

    /// The errno `wg` expects for a change the device refused, as
    /// wireguard-go answers the same refusal: `EINVAL` for a peer it cannot
    /// create, `EADDRINUSE` for a port or mark the socket cannot take, and
    /// `EIO` when the device stopped before it answered. This is the one
    /// place a [`ChangeError`] becomes an error number.
    pub(crate) fn of_change(error: &ChangeError) -> Self {
        match error {
            ChangeError::InvalidPeerKey | ChangeError::TooManyPeers => Self::EINVAL,
            ChangeError::PortInUse { .. } | ChangeError::Fwmark(_) => Self::EADDRINUSE,
            ChangeError::DeviceGone(_) => Self::EIO,
        }
    }

    /// The number on the wire: negative, as in `errno=-22`.
    pub(crate) const fn wire_value(self) -> i32 {
        -self.0
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::EIO => "EIO",
            Self::EINVAL => "EINVAL",
            Self::UNKNOWN => "ENOANO",
            Self::EPROTO => "EPROTO",
            Self::EADDRINUSE => "EADDRINUSE",
            _ => return write!(f, "errno {}", self.0),
        };
        write!(f, "{name} ({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_are_wireguard_gos() {
        assert_eq!(Errno::EIO.wire_value(), -5);
        assert_eq!(Errno::EINVAL.wire_value(), -22);
        assert_eq!(Errno::UNKNOWN.wire_value(), -55);
        assert_eq!(Errno::EPROTO.wire_value(), -71);
        assert_eq!(Errno::EADDRINUSE.wire_value(), -98);
    }

    #[test]
    fn refused_changes_get_wireguard_gos_numbers() {
        let io = || std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let cases = [
            (ChangeError::InvalidPeerKey, Errno::EINVAL),
            (ChangeError::TooManyPeers, Errno::EINVAL),
            (
                ChangeError::PortInUse {
                    port: 51820,
                    source: io(),
                },
                Errno::EADDRINUSE,
            ),
            (ChangeError::Fwmark(io()), Errno::EADDRINUSE),
            (
                ChangeError::DeviceGone(crate::dataplane::handle::DeviceGone),
                Errno::EIO,
            ),
        ];
        for (error, errno) in cases {
            assert_eq!(Errno::of_change(&error), errno, "{error}");
        }
    }

    #[test]
    fn display_names_the_known_numbers() {
        assert_eq!(Errno::EINVAL.to_string(), "EINVAL (22)");
        assert_eq!(Errno(13).to_string(), "errno 13");
    }
}
