//! Datagrams from spoofed sources: a raw socket inside a host writes the
//! IPv4 header itself, so each UDP datagram can claim any source address.
//! Tests spoof only addresses of 198.18.0.0/15, and only at hosts they made.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::Host;

/// A raw IPv4 socket that lives in a host's namespace.
pub struct Spoofer {
    socket: OwnedFd,
}

impl Spoofer {
    /// A raw socket made inside `host`.
    ///
    /// # Panics
    ///
    /// When the namespace cannot be entered or the socket opened.
    pub fn new(host: &Host) -> Spoofer {
        let socket = host.in_namespace(|| {
            // SAFETY: socket has no memory preconditions.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
            assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            unsafe { OwnedFd::from_raw_fd(fd) }
        });
        Spoofer { socket }
    }

    /// Sends `payload` in a UDP datagram from `source` to `destination`.
    ///
    /// # Errors
    ///
    /// When the kernel refuses the datagram (a full queue, say).
    ///
    /// # Panics
    ///
    /// When `payload` does not fit in one UDP datagram.
    pub fn send(
        &self,
        source: SocketAddrV4,
        destination: SocketAddrV4,
        payload: &[u8],
    ) -> std::io::Result<()> {
        let packet = udp_packet(source, destination, payload);
        let to = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(*destination.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: sendto reads `packet.len()` bytes of `packet` and one
        // `sockaddr_in` from `to`.
        let sent = unsafe {
            libc::sendto(
                self.socket.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&raw const to).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// An IPv4 packet carrying `payload` in UDP; the kernel fills in the
/// header checksum and the total length, and the UDP checksum is left out
/// (zero), as IPv4 allows.
fn udp_packet(source: SocketAddrV4, destination: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let udp_len = u16::try_from(8 + payload.len()).expect("a small datagram");
    let mut packet = Vec::with_capacity(20 + usize::from(udp_len));
    packet.extend_from_slice(&[0x45, 0]);
    packet.extend_from_slice(&(20 + udp_len).to_be_bytes());
    packet.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    packet.extend_from_slice(&source.ip().octets());
    packet.extend_from_slice(&destination.ip().octets());
    packet.extend_from_slice(&source.port().to_be_bytes());
    packet.extend_from_slice(&destination.port().to_be_bytes());
    packet.extend_from_slice(&udp_len.to_be_bytes());
    packet.extend_from_slice(&[0, 0]);
    packet.extend_from_slice(payload);
    packet
}

/// The `n`th address counted from 198.18.16.0 and below 198.19.0.0: clear
/// of the lab hosts' own 198.18.0.0/24 and of the overlay, for up to 61 440
/// sources.
///
/// # Panics
///
/// When `n` is 61 440 or more.
pub fn spoofed_source(n: u32) -> Ipv4Addr {
    assert!(n < 61_440, "only 198.18.16.0 to 198.18.255.255");
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 16, 0)) + n)
}
