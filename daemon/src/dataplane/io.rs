//! What the data path needs of its TUN device and its socket, as two
//! traits: the kernel's ([`Tun`], [`DataSocket`]) in the daemon, in-memory
//! fakes in tests, so the device runs without a kernel.
//!
//! The device is generic over both (static dispatch): a packet costs no
//! indirect call, and the compiler sees through to the system calls as it
//! did before the traits.

use std::io;

use crate::sys::batch_udp::{RecvMeta, Run, SendReport};
use crate::sys::socket_filter::ShedRates;
use crate::sys::tun::Tun;
use crate::sys::udp::DataSocket;

/// The TUN side: IP packets to and from the host's stack.
pub(crate) trait TunIo {
    /// Reads one packet into `buf` (after a `virtio_net_hdr` when
    /// [`TunIo::has_offloads`]); returns its length.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when no packet waits; `EBADFD` once the device is gone.
    fn read_packet(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes one packet (or coalesced super packet, after a
    /// `virtio_net_hdr`, when [`TunIo::has_offloads`]).
    ///
    /// # Errors
    ///
    /// When the device refuses it.
    fn write_packet(&mut self, packet: &[u8]) -> io::Result<()>;

    /// Whether packets carry a `virtio_net_hdr` with segmentation offloads.
    fn has_offloads(&self) -> bool;

    /// The device's MTU now.
    ///
    /// # Errors
    ///
    /// When it cannot be read (the device is gone).
    fn mtu(&self) -> io::Result<u32>;
}

/// The UDP side: WireGuard datagrams to and from peers, addresses in their
/// canonical form.
pub(crate) trait DatagramIo {
    /// Receives waiting messages into `bufs`, one [`RecvMeta`] each (a
    /// message may hold several datagrams of its `segment_size`); returns
    /// how many.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing waits; others are passing (an ICMP error
    /// for an earlier datagram) and more may wait behind them.
    fn recv_batch(&mut self, bufs: &mut [Vec<u8>], meta: &mut [RecvMeta]) -> io::Result<usize>;

    /// Sends the `runs` of datagrams laid out in `buf`, as one batch.
    fn send_batch(&mut self, buf: &[u8], runs: &[Run]) -> SendReport;

    /// The port the socket is bound to.
    ///
    /// # Errors
    ///
    /// When the socket cannot say.
    fn local_port(&self) -> io::Result<u16>;

    /// Moves to a socket bound to `port` (0: any) with mark `fwmark`.
    ///
    /// # Errors
    ///
    /// When the port is taken or the mark cannot be set; the old socket
    /// stays then.
    fn rebind(&mut self, port: u16, fwmark: Option<u32>) -> io::Result<()>;

    /// Sets the socket's firewall mark.
    ///
    /// # Errors
    ///
    /// When the kernel refuses it.
    fn set_mark(&mut self, mark: u32) -> io::Result<()>;

    /// Lets only one in so many handshake messages of each kind reach the
    /// socket, as `rates` says, here and on any socket a rebind makes (see
    /// [`socket_filter`](crate::sys::socket_filter)).
    ///
    /// # Errors
    ///
    /// When the kernel refuses the filter; the socket keeps the one it had.
    fn shed_handshakes(&mut self, rates: ShedRates) -> io::Result<()>;
}

impl TunIo for Tun {
    fn read_packet(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }

    fn write_packet(&mut self, packet: &[u8]) -> io::Result<()> {
        self.send(packet).map(drop)
    }

    fn has_offloads(&self) -> bool {
        Tun::has_offloads(self)
    }

    fn mtu(&self) -> io::Result<u32> {
        Tun::mtu(self)
    }
}

impl DatagramIo for DataSocket {
    fn recv_batch(&mut self, bufs: &mut [Vec<u8>], meta: &mut [RecvMeta]) -> io::Result<usize> {
        DataSocket::recv_batch(self, bufs, meta)
    }

    fn send_batch(&mut self, buf: &[u8], runs: &[Run]) -> SendReport {
        self.send_runs(buf, runs)
    }

    fn local_port(&self) -> io::Result<u16> {
        DataSocket::local_port(self)
    }

    fn rebind(&mut self, port: u16, fwmark: Option<u32>) -> io::Result<()> {
        DataSocket::rebind(self, port, fwmark)
    }

    fn set_mark(&mut self, mark: u32) -> io::Result<()> {
        DataSocket::set_mark(self, mark)
    }

    fn shed_handshakes(&mut self, rates: ShedRates) -> io::Result<()> {
        DataSocket::shed_handshakes(self, rates)
    }
}
