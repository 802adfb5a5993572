//! The UDP socket that carries WireGuard datagrams: one dual-stack socket
//! (IPv6 with IPv4-mapped addresses) where the host has IPv6, an IPv4 one
//! where it has not, optionally with a firewall mark, receiving coalesced
//! datagrams where the kernel offers it (UDP GRO).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use super::socket_filter::{self, ShedRates};
use super::sockopt;
use crate::sys::batch_udp::{self, BatchIo, GsoMode, RecvMeta, Run, SendReport};

/// The data path's socket: bound as [`bind`] binds, sending batches of runs
/// and receiving many datagrams per system call ([`batch_udp`]), with
/// addresses in their canonical form on both sides (IPv4 peers of a
/// dual-stack socket are mapped and unmapped here).
#[derive(Debug)]
pub(crate) struct DataSocket {
    socket: UdpSocket,
    io: BatchIo,
    /// Whether the socket receives coalesced datagrams where the kernel can.
    gro: bool,
    /// The socket filter's shedding rates (see [`socket_filter`]), kept
    /// over a rebind.
    shed_rates: ShedRates,
}

impl DataSocket {
    /// Binds as [`bind`] does, sending with GSO unless `gso` is
    /// [`GsoMode::Disabled`], receiving coalesced datagrams when `gro`.
    ///
    /// # Errors
    ///
    /// As [`bind`].
    pub(crate) fn bind(
        port: u16,
        fwmark: Option<u32>,
        gso: GsoMode,
        gro: bool,
    ) -> io::Result<Self> {
        let socket = bind(port, fwmark, gro)?;
        let io = BatchIo::new(&socket, gso);
        Ok(Self {
            socket,
            io,
            gro,
            shed_rates: ShedRates::NONE,
        })
    }

    /// Replaces the socket with one bound to `port` (0: any) and marked with
    /// `fwmark`, keeping the offloads; GSO stays off if it was turned off.
    ///
    /// # Errors
    ///
    /// As [`bind`]; the old socket stays then.
    pub(crate) fn rebind(&mut self, port: u16, fwmark: Option<u32>) -> io::Result<()> {
        let gso = if self.io.capabilities().gso {
            GsoMode::Probe
        } else {
            GsoMode::Disabled
        };
        let mut socket = Self::bind(port, fwmark, gso, self.gro)?;
        socket.shed_handshakes(self.shed_rates)?;
        *self = socket;
        Ok(())
    }

    /// Sheds handshake messages as `rates` says, as
    /// [`socket_filter::shed_handshakes`] does.
    ///
    /// # Errors
    ///
    /// As [`socket_filter::shed_handshakes`]; the socket keeps its filter
    /// then.
    pub(crate) fn shed_handshakes(&mut self, rates: ShedRates) -> io::Result<()> {
        socket_filter::shed_handshakes(&self.socket, rates)?;
        self.shed_rates = rates;
        Ok(())
    }

    /// The port the socket is bound to.
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    pub(crate) fn local_port(&self) -> io::Result<u16> {
        Ok(self.socket.local_addr()?.port())
    }

    /// Sets the socket's firewall mark.
    ///
    /// # Errors
    ///
    /// As [`set_mark`].
    pub(crate) fn set_mark(&self, mark: u32) -> io::Result<()> {
        set_mark(&self.socket, mark)
    }

    /// Receives as [`batch_udp::recv_batch`] does, with sources canonical.
    ///
    /// # Errors
    ///
    /// As [`batch_udp::recv_batch`].
    pub(crate) fn recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        meta: &mut [RecvMeta],
    ) -> io::Result<usize> {
        let count = batch_udp::recv_batch(&self.socket, bufs, meta)?;
        for meta in &mut meta[..count] {
            meta.source = canonical(meta.source);
        }
        Ok(count)
    }

    /// Sends `runs` of datagrams laid out in `buf`, as
    /// [`BatchIo::send_runs`] does.
    pub(crate) fn send_runs(&self, buf: &[u8], runs: &[Run]) -> SendReport {
        self.io.send_runs(&self.socket, buf, runs)
    }
}

impl AsRawFd for DataSocket {
    /// The socket's descriptor, until [`DataSocket::rebind`] replaces it.
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// Binds the WireGuard socket to `port` (0: any) on all addresses, marked
/// with `fwmark` when given, receiving coalesced datagrams when `gro` and the
/// kernel offers it.
///
/// # Errors
///
/// When the port is taken (`AddrInUse`) or the mark cannot be set (setting
/// one needs `CAP_NET_ADMIN`).
pub(crate) fn bind(port: u16, fwmark: Option<u32>, gro: bool) -> io::Result<UdpSocket> {
    let socket = match UdpSocket::bind((Ipv6Addr::UNSPECIFIED, port)) {
        Ok(socket) => socket,
        // No IPv6 on this host: IPv4 only.
        Err(error) if error.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?
        }
        Err(error) => return Err(error),
    };
    if let Some(mark) = fwmark {
        set_mark(&socket, mark)?;
    }
    // Many datagrams per receive where the kernel coalesces them (UDP GRO);
    // without it each comes alone, which works too.
    if gro {
        crate::sys::batch_udp::enable_gro(&socket);
    }
    // While the run loop is busy, datagrams wait in the socket: the default
    // buffer (about 200 KiB) overflows within milliseconds at full speed, and
    // a datagram lost there is lost to the tunnel.
    set_buffer_size(&socket, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF);
    set_buffer_size(&socket, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF);
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// The socket buffer size asked for in each direction.
const BUFFER_SIZE: libc::c_int = 7 << 20;

/// Sets a buffer size with `forced` (past the system's limit, which needs
/// `CAP_NET_ADMIN`), or else with `plain` (up to the limit). Failing both
/// leaves the default, which works, only with less room.
fn set_buffer_size(socket: &UdpSocket, forced: libc::c_int, plain: libc::c_int) {
    for option in [forced, plain] {
        if sockopt::set_int(socket, libc::SOL_SOCKET, option, BUFFER_SIZE).is_ok() {
            return;
        }
    }
}

/// Sets `SO_MARK` on `socket`.
///
/// # Errors
///
/// As `setsockopt(2)`.
pub(crate) fn set_mark(socket: &UdpSocket, mark: u32) -> io::Result<()> {
    sockopt::set_mark(socket, mark)
}

/// The address a datagram came from, as the engine should know it: an
/// IPv4-mapped IPv6 address becomes the IPv4 address it maps.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The address to send to from `socket`: an IPv4 destination is mapped into
/// IPv6 when the socket is IPv6.
pub(crate) fn destination_for(socket_is_ipv6: bool, addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(v4) if socket_is_ipv6 => {
            SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port())
        }
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_map_between_families() {
        let v4: SocketAddr = "198.18.0.1:51820".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:198.18.0.1]:51820".parse().unwrap();
        assert_eq!(destination_for(true, v4), mapped);
        assert_eq!(destination_for(false, v4), v4);
        assert_eq!(canonical(mapped), v4);
        let v6: SocketAddr = "[2001:2::1]:7".parse().unwrap();
        assert_eq!(canonical(v6), v6);
        assert_eq!(destination_for(true, v6), v6);
    }

    #[test]
    fn a_taken_port_is_refused() {
        let first = bind(0, None, true).unwrap();
        let port = first.local_addr().unwrap().port();
        let error = bind(port, None, true).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }
}
