//! The run loop of one interface: IP packets from the TUN device are routed
//! by the allowed-IPs table, sealed by the engine and sent over UDP;
//! datagrams are opened, checked against the sender's allowed IPs and written
//! to the TUN device; the commands of [`DeviceHandle`]s, timers and
//! shutdown are served in between. The loop owns all state, so nothing is
//! locked.
//!
//! [`DeviceHandle`]: crate::dataplane::handle::DeviceHandle

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use sentrymesh_tunnel::{DATA_HEADER_LEN, DATA_OVERHEAD, Encapsulated, PeerId, Received};
use sentrymesh_types::PublicKey;

use crate::dataplane::change::{ChangeError, ConfigChange};
use crate::dataplane::handle::Command;
use crate::dataplane::interface::Interface;
use crate::dataplane::offload::{GsoType, TcpCoalescer, VIRTIO_NET_HDR_LEN, VirtioNetHdr, segment};
use crate::sys::batch_udp::{self, BatchIo, GsoMode, RecvMeta};
use crate::sys::tun::Tun;
use crate::sys::udp;

mod run_loop;

/// The largest IP packet the TUN device hands over (its MTU can be at most
/// 65535).
const MAX_PACKET: usize = 65_535;
/// A buffer for one packet with room for the WireGuard header, padding and tag.
const BUFFER_LEN: usize = MAX_PACKET + DATA_OVERHEAD + 16;
/// At most this many datagrams go out in one batch (the kernel's limit for
/// one UDP segmentation offload send).
const MAX_BATCH: usize = 64;
/// Room for a batch of full-size datagrams and one more packet of any size.
const TX_BUFFER_LEN: usize = MAX_BATCH * 1600 + BUFFER_LEN;
/// How often the TUN device's MTU is read again.
const MTU_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Which kernel offloads the data path may use: TUN segmentation offloads
/// (TSO in, coalesced writes out) and UDP segmentation and receive offloads
/// (GSO, GRO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Offloads {
    /// Every offload the kernel offers; each one it lacks is logged once.
    #[default]
    Auto,
    /// None: one packet per TUN read and write, one datagram per UDP message
    /// (still many messages per system call). For kernels or devices where an
    /// offload misbehaves, and to compare.
    Off,
}

impl std::str::FromStr for Offloads {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "auto" => Ok(Offloads::Auto),
            "off" => Ok(Offloads::Off),
            other => Err(format!(
                "`{other}` is not an offload setting: use auto or off"
            )),
        }
    }
}
/// Datagrams, or coalesced runs of them, taken from the socket in one call.
const RX_MESSAGES: usize = 16;
/// Room for one coalesced run of datagrams (UDP receive offload).
const RX_BUFFER_LEN: usize = 65_536;

/// Packets the device dropped, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DropCounters {
    /// Packets from the TUN device to an address no peer is allowed.
    pub no_route: u64,
    /// Packets from the TUN device that are not IP, or cut short.
    pub malformed_from_tun: u64,
    /// Packets from a peer with a source address the peer may not use.
    pub not_allowed_source: u64,
    /// Datagrams the engine refused: malformed, unauthenticated, replayed,
    /// or from a peer this interface does not have.
    pub rejected_datagrams: u64,
    /// Datagrams the socket did not send.
    pub send_errors: u64,
}

/// One peer's traffic and last handshake, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCounters {
    /// The peer's public key.
    pub public_key: PublicKey,
    /// When the last handshake completed, since the Unix epoch.
    pub last_handshake: Option<Duration>,
    /// Bytes received from the peer.
    pub rx_bytes: u64,
    /// Bytes sent to the peer.
    pub tx_bytes: u64,
}

/// What the device counts, for metrics. It holds no secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Each peer's traffic and last handshake.
    pub peers: Vec<PeerCounters>,
    /// The packets dropped.
    pub drops: DropCounters,
}

/// An interface running: its state and its two descriptors.
pub struct Device {
    interface: Interface,
    tun: Tun,
    /// Whether the TUN device speaks `virtio_net_hdr` with segmentation
    /// offloads (see [`create_tun`]).
    tun_offloads: bool,
    /// Whether sockets are bound with UDP receive offload.
    udp_gro: bool,
    /// A super packet read from the TUN device, with its virtio header.
    tun_buf: Vec<u8>,
    /// Where received packets are coalesced before the TUN device gets them.
    gro_buf: Vec<u8>,
    socket: UdpSocket,
    /// Whether `socket` was replaced (a new listen port) since the run loop
    /// last looked, so it waits on the new one.
    socket_replaced: bool,
    /// Whether `socket` is IPv6 (dual-stack), so IPv4 destinations are mapped.
    socket_is_ipv6: bool,
    batch_io: BatchIo,
    tx: TxBatch,
    rx_buffers: Vec<Vec<u8>>,
    rx_meta: Vec<RecvMeta>,
    drops: DropCounters,
}

/// Sealed datagrams for one peer, all of one size but perhaps the last,
/// side by side in one buffer: what one segmentation offload send carries.
struct TxBatch {
    buf: Vec<u8>,
    /// Bytes of sealed datagrams at the start of `buf`.
    len: usize,
    /// The size of every datagram but perhaps the last.
    segment: usize,
    count: usize,
    peer: Option<PeerId>,
}

impl TxBatch {
    fn new() -> Self {
        Self {
            buf: vec![0; TX_BUFFER_LEN],
            len: 0,
            segment: 0,
            count: 0,
            peer: None,
        }
    }

    /// Whether a datagram of `len` bytes for `peer`, sealed right after the
    /// batch, belongs to it: the same peer, the same size (or a last, shorter
    /// one), room left.
    fn takes(&self, peer: PeerId, len: usize) -> bool {
        self.peer == Some(peer)
            && len <= self.segment
            && self.len == self.count * self.segment
            && self.count < MAX_BATCH
            && TX_BUFFER_LEN - self.len - len >= BUFFER_LEN
    }

    fn push(&mut self, peer: PeerId, len: usize) {
        if self.count == 0 {
            self.peer = Some(peer);
            self.segment = len;
        }
        self.len += len;
        self.count += 1;
    }

    fn clear(&mut self) {
        self.len = 0;
        self.count = 0;
        self.peer = None;
    }
}

/// Wall-clock time since the Unix epoch, read once at start.
fn unix_now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Device {
    /// Sets up an unconfigured interface on `tun` (see [`create_tun`]), with
    /// a socket on any port, using the UDP offloads `offloads` allows.
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound or a descriptor made non-blocking.
    pub fn new(tun: Tun, offloads: Offloads) -> Result<Self> {
        tun.set_nonblocking(true)
            .context("making the TUN device non-blocking")?;
        let tun_offloads = tun.has_offloads();
        let udp_gro = offloads == Offloads::Auto;
        let gso = match offloads {
            Offloads::Auto => GsoMode::Probe,
            Offloads::Off => GsoMode::Disabled,
        };
        let mut interface = Interface::new(Instant::now(), unix_now());
        let socket = udp::bind(0, None, udp_gro).context("binding the UDP socket")?;
        let batch_io = BatchIo::new(&socket, gso);
        let local = socket.local_addr()?;
        interface.set_bound_port(local.port());
        Ok(Self {
            interface,
            tun,
            tun_offloads,
            udp_gro,
            tun_buf: vec![0; VIRTIO_NET_HDR_LEN + MAX_PACKET],
            gro_buf: vec![0; VIRTIO_NET_HDR_LEN + MAX_PACKET],
            socket,
            socket_replaced: false,
            socket_is_ipv6: local.is_ipv6(),
            batch_io,
            tx: TxBatch::new(),
            rx_buffers: vec![vec![0; RX_BUFFER_LEN]; RX_MESSAGES],
            rx_meta: vec![RecvMeta::default(); RX_MESSAGES],
            drops: DropCounters::default(),
        })
    }

    /// Reads every packet waiting on the TUN device, seals each into the
    /// batch and sends the batches on; `false` when the device has been
    /// deleted.
    fn drain_tun(&mut self) -> Result<bool> {
        if self.tun_offloads {
            return self.drain_tun_offloaded();
        }
        let result = loop {
            let start = self.tx.len;
            let slot = &mut self.tx.buf[start..start + BUFFER_LEN];
            let len = match self
                .tun
                .recv(&mut slot[DATA_HEADER_LEN..DATA_HEADER_LEN + MAX_PACKET])
            {
                Ok(len) => len,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break Ok(true),
                // The kernel detaches a deleted device's file: EBADFD.
                Err(error) if error.raw_os_error() == Some(libc::EBADFD) => break Ok(false),
                Err(error) => break Err(error).context("reading the TUN device"),
            };
            if self.interface.is_configured() {
                self.seal_into_batch(start, len);
            }
        };
        self.flush_batch();
        result
    }

    /// [`Device::drain_tun`] for a device with offloads: each read is a
    /// virtio header and a packet or a TCP super packet, cut into segments
    /// straight into the batch.
    fn drain_tun_offloaded(&mut self) -> Result<bool> {
        let mut tun_buf = std::mem::take(&mut self.tun_buf);
        let result = loop {
            let len = match self.tun.recv(&mut tun_buf) {
                Ok(len) => len,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break Ok(true),
                Err(error) if error.raw_os_error() == Some(libc::EBADFD) => break Ok(false),
                Err(error) => break Err(error).context("reading the TUN device"),
            };
            if self.interface.is_configured() {
                self.seal_super_packet(&tun_buf[..len]);
            }
        };
        self.flush_batch();
        self.tun_buf = tun_buf;
        result
    }

    /// Cuts a virtio header and (super) packet into segments, laid out in the
    /// batch at the stride their sealed datagrams take, and seals them there.
    fn seal_super_packet(&mut self, read: &[u8]) {
        let Ok(hdr) = VirtioNetHdr::new_checked(read) else {
            self.drops.malformed_from_tun += 1;
            return;
        };
        let packet = &read[VIRTIO_NET_HDR_LEN..];
        let Some(peer) =
            destination(packet).and_then(|dst| self.interface.allowed_ips().lookup(dst))
        else {
            self.drops.no_route += 1;
            return;
        };
        let Some((segment_len, count)) = segment_layout(&hdr, packet) else {
            self.drops.malformed_from_tun += 1;
            return;
        };
        let stride = self.interface.endpoint().encapsulated_len(segment_len);
        let tx = &self.tx;
        let fits = tx.peer == Some(peer)
            && tx.segment == stride
            && tx.len == tx.count * stride
            && tx.count + count <= MAX_BATCH
            && TX_BUFFER_LEN - tx.len >= count * stride;
        if tx.count > 0 && !fits {
            self.flush_batch();
        }
        if count * stride > TX_BUFFER_LEN {
            self.drops.malformed_from_tun += 1;
            return;
        }
        let base = self.tx.len;
        let slots = self.tx.buf[base..base + count * stride]
            .chunks_mut(stride)
            .map(|slot| &mut slot[DATA_HEADER_LEN..]);
        let segments = match segment(&hdr, packet, slots) {
            Ok(segments) => segments,
            Err(error) => {
                tracing::trace!("dropped a packet from the TUN device: {error}");
                self.drops.malformed_from_tun += 1;
                return;
            }
        };
        let now = Instant::now();
        for index in 0..segments.count() {
            let start = base + index * stride;
            let slot = &mut self.tx.buf[start..start + stride];
            let endpoint = self.interface.endpoint_mut();
            match endpoint.encapsulate_in_place(now, peer, slot, segments.len_of(index)) {
                Ok(Encapsulated::Sealed { len }) if start == self.tx.len => self.tx.push(peer, len),
                // Only the last segment may be shorter, so this does not happen;
                // should it, the datagram goes on its own.
                Ok(Encapsulated::Sealed { len }) => {
                    self.flush_batch();
                    self.tx.buf.copy_within(start..start + len, 0);
                    self.tx.push(peer, len);
                }
                Ok(Encapsulated::Queued) => {}
                Err(error) => tracing::debug!("not sent to {peer:?}: {error}"),
            }
        }
    }

    /// Seals the packet of `len` bytes read at `tx.buf[start + DATA_HEADER_LEN..]`
    /// for the peer its destination routes to, and adds it to the batch (sending
    /// the batch first when the datagram does not fit it).
    fn seal_into_batch(&mut self, start: usize, len: usize) {
        let slot = &mut self.tx.buf[start..start + BUFFER_LEN];
        let packet = &slot[DATA_HEADER_LEN..DATA_HEADER_LEN + len];
        let Some(peer) =
            destination(packet).and_then(|dst| self.interface.allowed_ips().lookup(dst))
        else {
            self.drops.no_route += 1;
            return;
        };
        let sealed = match self.interface.endpoint_mut().encapsulate_in_place(
            Instant::now(),
            peer,
            slot,
            len,
        ) {
            Ok(Encapsulated::Sealed { len }) => len,
            Ok(Encapsulated::Queued) => return,
            Err(error) => {
                tracing::debug!("not sent to {peer:?}: {error}");
                return;
            }
        };
        if self.tx.count > 0 && !self.tx.takes(peer, sealed) {
            self.flush_batch();
            self.tx.buf.copy_within(start..start + sealed, 0);
        }
        self.tx.push(peer, sealed);
    }

    /// Sends the batch to its peer's endpoint: one send with segmentation
    /// offload where the kernel has it.
    fn flush_batch(&mut self) {
        let batch = &mut self.tx;
        let destination = batch
            .peer
            .and_then(|peer| self.interface.endpoint().peer_endpoint(peer));
        if let (Some(to), true) = (destination, batch.count > 0) {
            let to = udp::destination_for(self.socket_is_ipv6, to);
            let sent = self.batch_io.send_segments(
                &self.socket,
                to,
                &batch.buf[..batch.len],
                batch.segment,
            );
            if let Err(error) = sent {
                self.drops.send_errors += batch.count as u64;
                tracing::trace!("sending a batch to {to}: {error}");
            }
        }
        self.tx.clear();
    }

    /// Reads every datagram waiting on the socket, many per system call, and
    /// processes each; with offloads, the packets of a TCP flow are written to
    /// the TUN device coalesced.
    fn drain_socket(&mut self) {
        let mut buffers = std::mem::take(&mut self.rx_buffers);
        let mut meta = std::mem::take(&mut self.rx_meta);
        let mut gro_buf = std::mem::take(&mut self.gro_buf);
        let mut coalescer = self.tun_offloads.then(|| TcpCoalescer::new(&mut gro_buf));
        // The run loop is told of new datagrams only once, when the socket
        // becomes readable: read until it is empty.
        loop {
            let count = match batch_udp::recv_batch(&self.socket, &mut buffers, &mut meta) {
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => {
                    // An ICMP error for an earlier datagram; reading it cleared
                    // it, and datagrams may wait behind it.
                    tracing::trace!("receiving: {error}");
                    continue;
                }
            };
            for (buffer, meta) in buffers.iter_mut().zip(&meta).take(count) {
                if meta.truncated || meta.segment_size == 0 {
                    self.drops.rejected_datagrams += 1;
                    continue;
                }
                let from = udp::canonical(meta.source);
                for datagram in buffer[..meta.len].chunks_mut(meta.segment_size) {
                    self.receive_datagram(from, datagram, coalescer.as_mut());
                }
            }
        }
        if let Some(coalescer) = coalescer.as_mut() {
            self.write_coalesced(coalescer);
        }
        self.rx_buffers = buffers;
        self.rx_meta = meta;
        self.gro_buf = gro_buf;
    }

    /// Opens one datagram and hands the packet it carries to the TUN device,
    /// through `coalescer` when the device takes offloads.
    fn receive_datagram(
        &mut self,
        from: SocketAddr,
        datagram: &mut [u8],
        coalescer: Option<&mut TcpCoalescer<'_>>,
    ) {
        if !self.interface.is_configured() {
            return;
        }
        let endpoint = self.interface.endpoint_mut();
        match endpoint.handle_datagram(Instant::now(), from, datagram) {
            Ok(Received::Packet { peer, packet }) => {
                if !source_allowed(&self.interface, peer, packet) {
                    self.drops.not_allowed_source += 1;
                    return;
                }
                match coalescer {
                    None => self.write_to_tun(packet),
                    Some(coalescer) => {
                        if coalescer.handle_packet(packet).is_err() {
                            self.write_coalesced(coalescer);
                            // An empty coalescer starts with any packet.
                            let _ = coalescer.handle_packet(packet);
                        }
                    }
                }
            }
            Ok(Received::Control(_)) => {}
            Err(error) => {
                self.drops.rejected_datagrams += 1;
                tracing::trace!("dropped a datagram from {from}: {error}");
            }
        }
    }

    /// Writes what `coalescer` holds (a virtio header and a packet or super
    /// packet) to the TUN device.
    fn write_coalesced(&mut self, coalescer: &mut TcpCoalescer<'_>) {
        if !coalescer.is_empty() {
            self.write_to_tun(coalescer.finish());
        }
    }

    fn write_to_tun(&self, packet: &[u8]) {
        if let Err(error) = self.tun.send(packet) {
            tracing::debug!("writing to the TUN device: {error}");
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
        let to = udp::destination_for(self.socket_is_ipv6, to);
        if let Err(error) = self.socket.send_to(datagram, to) {
            self.drops.send_errors += 1;
            tracing::trace!("sending to {to}: {error}");
        }
    }

    /// Serves one command of a [`DeviceHandle`](crate::dataplane::handle::DeviceHandle).
    fn serve_command(&mut self, command: Command) {
        // A handle that stopped waiting dropped its receiver: nothing to do.
        match command {
            Command::State(answer) => {
                let _ = answer.send(self.interface.state());
            }
            Command::UapiState(answer) => {
                let _ = answer.send(self.interface.uapi_state());
            }
            Command::Apply(change, answer) => {
                let _ = answer.send(self.apply(change));
            }
            Command::LivePeers(answer) => {
                let _ = answer.send(self.interface.live_peers(Instant::now()));
            }
            Command::Counters(answer) => {
                let _ = answer.send(DeviceCounters {
                    peers: self.interface.peer_counters(),
                    drops: self.drops,
                });
            }
        }
    }

    /// Applies `change` completely or not at all: the interface checks it,
    /// then the socket takes a new port or mark (the one step that can fail
    /// for reasons outside the change), then the interface commits it.
    fn apply(&mut self, change: ConfigChange) -> Result<(), ChangeError> {
        self.interface.check(&change)?;
        let fwmark = change.fwmark.unwrap_or(self.interface.fwmark());
        let port_changes = change
            .listen_port
            .is_some_and(|port| port != self.interface.listen_port() || port == 0);
        if port_changes {
            let port = change.listen_port.unwrap_or_default();
            let socket = udp::bind(port, fwmark, self.udp_gro)
                .map_err(|source| ChangeError::PortInUse { port, source })?;
            let local = socket
                .local_addr()
                .map_err(|source| ChangeError::PortInUse { port, source })?;
            self.interface.set_bound_port(local.port());
            self.socket_is_ipv6 = local.is_ipv6();
            self.socket = socket;
            self.socket_replaced = true;
        } else if change.fwmark.is_some() && fwmark != self.interface.fwmark() {
            udp::set_mark(&self.socket, fwmark.unwrap_or(0)).map_err(ChangeError::Fwmark)?;
        }
        self.interface.commit(Instant::now(), change);
        Ok(())
    }
}

/// Creates the TUN device `name`, with segmentation offloads when `offloads`
/// allows them and the kernel has them; says so once in the log when not.
///
/// # Errors
///
/// As [`Tun::create`].
pub fn create_tun(name: &str, offloads: Offloads) -> io::Result<Tun> {
    if offloads == Offloads::Off {
        tracing::info!("offloads are off: packets go through one at a time");
        return Tun::create(name);
    }
    match Tun::create_with_offloads(name)? {
        Some(tun) => Ok(tun),
        None => {
            tracing::info!("the kernel offers no TUN offloads; packets go through one at a time");
            Tun::create(name)
        }
    }
}

/// The length of every segment but the last of a packet read with `hdr`,
/// and how many segments there are.
fn segment_layout(hdr: &VirtioNetHdr, packet: &[u8]) -> Option<(usize, usize)> {
    let network_header = match packet.first()? >> 4 {
        4 => usize::from(packet.first()? & 0x0f) * 4,
        6 => 40,
        _ => return None,
    };
    let transport_header = match hdr.gso_type {
        GsoType::None => return Some((packet.len(), 1)),
        GsoType::TcpV4 | GsoType::TcpV6 => usize::from(packet.get(network_header + 12)? >> 4) * 4,
        GsoType::UdpL4 => 8,
    };
    let headers = network_header + transport_header;
    let payload = packet.len().checked_sub(headers)?;
    let segment = usize::from(hdr.gso_size);
    if segment == 0 {
        return None;
    }
    Some((
        headers + segment.min(payload),
        payload.div_ceil(segment).max(1),
    ))
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
