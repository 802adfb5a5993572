//! The run loop of one interface: IP packets from the TUN device are routed
//! by the allowed-IPs table, sealed by the engine and sent over UDP;
//! datagrams are opened, checked against the sender's allowed IPs and written
//! to the TUN device; UAPI requests, timers and shutdown are served in
//! between. The loop owns all state, so nothing is locked.

use std::future::pending;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use sentrymesh_tunnel::{DATA_HEADER_LEN, DATA_OVERHEAD, Encapsulated, PeerId, Received};
use tokio::io::unix::AsyncFd;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::control::Control;
use crate::interface::Interface;
use crate::tun::Tun;
use crate::uapi::{Errno, SetRequest};
use crate::udp;

/// The largest IP packet the TUN device hands over (its MTU can be at most
/// 65535).
const MAX_PACKET: usize = 65_535;
/// A buffer for one packet with room for the WireGuard header, padding and tag.
const BUFFER_LEN: usize = MAX_PACKET + DATA_OVERHEAD + 16;

/// Why packets were dropped, for the logs.
#[derive(Debug, Default)]
struct Drops {
    no_route: u64,
    not_allowed_source: u64,
    rejected_datagrams: u64,
    send_errors: u64,
}

/// An interface running: its state and its two descriptors.
pub struct Device {
    interface: Interface,
    tun: AsyncFd<Tun>,
    socket: UdpSocket,
    drops: Drops,
}

/// Wall-clock time since the Unix epoch, read once at start.
fn unix_now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Device {
    /// Sets up an unconfigured interface on `tun`, with a socket on any port.
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound or the TUN device registered with the
    /// runtime.
    pub fn new(tun: Tun) -> Result<Self> {
        tun.set_nonblocking(true)
            .context("making the TUN device non-blocking")?;
        let mut interface = Interface::new(Instant::now(), unix_now());
        let socket = udp::bind(0, None).context("binding the UDP socket")?;
        let socket = UdpSocket::from_std(socket).context("registering the UDP socket")?;
        interface.set_bound_port(socket.local_addr()?.port());
        // SAFETY: `Tun` owns its descriptor and returns that same one from
        // `as_raw_fd` until it is dropped, which the `AsyncFd` does.
        let tun = unsafe { AsyncFd::register(tun) }
            .map_err(io::Error::from)
            .context("registering the TUN device")?;
        Ok(Self {
            interface,
            tun,
            socket,
            drops: Drops::default(),
        })
    }

    /// Runs until `shutdown` turns true, the TUN device goes away, or the
    /// request channel closes.
    ///
    /// # Errors
    ///
    /// When the TUN device or the socket fails for good.
    pub async fn run(
        mut self,
        mut requests: mpsc::Receiver<Control>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let mut buf = vec![0u8; BUFFER_LEN];
        loop {
            let deadline = self.interface.endpoint().poll_timeout();
            let timer = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => pending().await,
                }
            };
            tokio::select! {
                ready = self.tun.readable() => {
                    let mut guard = ready.context("waiting for the TUN device")?;
                    guard.clear_ready();
                    if !self.drain_tun(&mut buf)? {
                        tracing::info!("the TUN device is gone; stopping");
                        return Ok(());
                    }
                }
                ready = self.socket.readable() => {
                    ready.context("waiting for the UDP socket")?;
                    self.drain_socket(&mut buf);
                }
                () = timer => {
                    self.interface.endpoint_mut().handle_timeout(Instant::now());
                }
                request = requests.recv() => match request {
                    Some(request) => self.handle_control(request),
                    None => return Ok(()),
                },
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        tracing::debug!("dropped packets: {:?}", self.drops);
                        return Ok(());
                    }
                }
            }
            self.flush(&mut buf);
        }
    }

    /// Reads every packet waiting on the TUN device and sends it on; `false`
    /// when the device has been deleted.
    fn drain_tun(&mut self, buf: &mut [u8]) -> Result<bool> {
        loop {
            let read = self
                .tun
                .get_ref()
                .recv(&mut buf[DATA_HEADER_LEN..DATA_HEADER_LEN + MAX_PACKET]);
            let len = match read {
                Ok(len) => len,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                // The kernel detaches a deleted device's file: EBADFD.
                Err(error) if error.raw_os_error() == Some(libc::EBADFD) => return Ok(false),
                Err(error) => return Err(error).context("reading the TUN device"),
            };
            if self.interface.is_configured() {
                self.send_packet(buf, len);
            }
        }
    }

    /// Seals the packet of `len` bytes at `buf[DATA_HEADER_LEN..]` for the
    /// peer its destination routes to, and sends it.
    fn send_packet(&mut self, buf: &mut [u8], len: usize) {
        let packet = &buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len];
        let Some(peer) =
            destination(packet).and_then(|dst| self.interface.allowed_ips().lookup(dst))
        else {
            self.drops.no_route += 1;
            return;
        };
        let endpoint = self.interface.endpoint_mut();
        match endpoint.encapsulate_in_place(Instant::now(), peer, buf, len) {
            Ok(Encapsulated::Sealed { len }) => {
                if let Some(to) = endpoint.peer_endpoint(peer) {
                    self.send_datagram(&buf[..len], to);
                }
            }
            Ok(Encapsulated::Queued) => {}
            Err(error) => tracing::debug!("not sent to {peer:?}: {error}"),
        }
    }

    /// Reads every datagram waiting on the socket and processes it.
    fn drain_socket(&mut self, buf: &mut [u8]) {
        loop {
            let (len, from) = match self.socket.try_recv_from(buf) {
                Ok(received) => received,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    // ICMP errors for earlier datagrams surface here. The
                    // socket stays readable, so the loop comes back at once.
                    tracing::trace!("receiving: {error}");
                    return;
                }
            };
            if !self.interface.is_configured() {
                continue;
            }
            let from = udp::canonical(from);
            let endpoint = self.interface.endpoint_mut();
            match endpoint.handle_datagram(Instant::now(), from, &mut buf[..len]) {
                Ok(Received::Packet { peer, packet }) => {
                    if source_allowed(&self.interface, peer, packet) {
                        if let Err(error) = self.tun.get_ref().send(packet) {
                            tracing::debug!("writing to the TUN device: {error}");
                        }
                    } else {
                        self.drops.not_allowed_source += 1;
                    }
                }
                Ok(Received::Control(_)) => {}
                Err(error) => {
                    self.drops.rejected_datagrams += 1;
                    tracing::trace!("dropped a datagram from {from}: {error}");
                }
            }
        }
    }

    /// Sends everything the engine has queued: handshakes, keepalives,
    /// packets that waited for a session, cookie replies.
    fn flush(&mut self, buf: &mut [u8]) {
        let now = Instant::now();
        while let Some(transmit) = self.interface.endpoint_mut().poll_transmit(now, buf) {
            self.send_datagram(&buf[..transmit.len], transmit.destination);
        }
    }

    fn send_datagram(&mut self, datagram: &[u8], to: SocketAddr) {
        let to = udp::destination_for(self.socket_is_ipv6(), to);
        if let Err(error) = self.socket.try_send_to(datagram, to) {
            self.drops.send_errors += 1;
            tracing::trace!("sending to {to}: {error}");
        }
    }

    fn socket_is_ipv6(&self) -> bool {
        self.socket.local_addr().is_ok_and(|addr| addr.is_ipv6())
    }

    fn handle_control(&mut self, request: Control) {
        match request {
            Control::Get(answer) => {
                let _ = answer.send(self.interface.state());
            }
            Control::Set(set, answer) => {
                let _ = answer.send(self.apply(set));
            }
        }
    }

    /// Applies a `set` request completely or not at all.
    fn apply(&mut self, request: SetRequest) -> Result<(), Errno> {
        self.interface.check(&request)?;
        let fwmark = request.fwmark.unwrap_or(self.interface.fwmark());
        let port_changes = request
            .listen_port
            .is_some_and(|port| port != self.interface.listen_port() || port == 0);
        if port_changes {
            let port = request.listen_port.unwrap_or_default();
            let socket = udp::bind(port, fwmark)
                .and_then(UdpSocket::from_std)
                .map_err(|error| {
                    tracing::warn!("binding port {port}: {error}");
                    Errno::EADDRINUSE
                })?;
            self.interface
                .set_bound_port(socket.local_addr().map_or(port, |addr| addr.port()));
            self.socket = socket;
        } else if request.fwmark.is_some() && fwmark != self.interface.fwmark() {
            let socket = socket2_ref(&self.socket);
            udp::set_mark(&socket, fwmark.unwrap_or(0)).map_err(|error| {
                tracing::warn!("setting fwmark: {error}");
                Errno::EADDRINUSE
            })?;
        }
        self.interface.commit(Instant::now(), request);
        Ok(())
    }
}

/// A `std` view of a tokio socket, for `setsockopt`.
fn socket2_ref(socket: &UdpSocket) -> std::mem::ManuallyDrop<std::net::UdpSocket> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: the descriptor stays owned by `socket`, which outlives the
    // view; `ManuallyDrop` keeps the view from closing it.
    std::mem::ManuallyDrop::new(unsafe { std::net::UdpSocket::from_raw_fd(socket.as_raw_fd()) })
}

/// Whether the source address of `packet` is among `peer`'s allowed IPs.
fn source_allowed(interface: &Interface, peer: PeerId, packet: &[u8]) -> bool {
    source(packet).is_some_and(|src| interface.allowed_ips().lookup(src) == Some(peer))
}

/// The destination address of an IPv4 or IPv6 packet.
fn destination(packet: &[u8]) -> Option<IpAddr> {
    address_at(packet, 16, 24)
}

/// The source address of an IPv4 or IPv6 packet.
fn source(packet: &[u8]) -> Option<IpAddr> {
    address_at(packet, 12, 8)
}

/// The address at `v4_offset` of an IPv4 header, or at `v6_offset` of an
/// IPv6 header, by the packet's version.
fn address_at(packet: &[u8], v4_offset: usize, v6_offset: usize) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 => {
            let octets: [u8; 4] = packet.get(v4_offset..v4_offset + 4)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        6 => {
            let octets: [u8; 16] = packet.get(v6_offset..v6_offset + 16)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_from_the_ip_headers() {
        let mut v4 = [0u8; 20];
        v4[0] = 0x45;
        v4[12..16].copy_from_slice(&[198, 18, 0, 1]);
        v4[16..20].copy_from_slice(&[198, 18, 0, 2]);
        assert_eq!(source(&v4), Some("198.18.0.1".parse().unwrap()));
        assert_eq!(destination(&v4), Some("198.18.0.2".parse().unwrap()));
        let mut v6 = [0u8; 40];
        v6[0] = 0x60;
        v6[8..24].copy_from_slice(&"2001:2::1".parse::<Ipv6Addr>().unwrap().octets());
        v6[24..40].copy_from_slice(&"2001:2::2".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(source(&v6), Some("2001:2::1".parse().unwrap()));
        assert_eq!(destination(&v6), Some("2001:2::2".parse().unwrap()));
        assert_eq!(destination(&v4[..19]), None);
        assert_eq!(destination(&[0x10; 40]), None);
        assert_eq!(destination(&[]), None);
    }
}
