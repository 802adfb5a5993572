//! One interface running: IP packets from the TUN device are routed by the
//! interface ([`Interface::route`]), sealed by the engine and sent over UDP;
//! datagrams are opened, checked against the sender's allowed IPs
//! ([`Interface::accepts`]) and written to the TUN device; the commands of
//! [`DeviceHandle`]s, timers and shutdown are served in between. The device
//! owns all state, so nothing is locked.
//!
//! The device reads no clock: every input takes `now`, read once per turn
//! by the run loop ([`Device::run`]). Its TUN device and socket are type
//! parameters ([`TunIo`], [`DatagramIo`]): the kernel's in the daemon,
//! in-memory fakes in the tests, so the whole data path runs without a
//! kernel.
//!
//! Every datagram leaves through one send batch ([`TxBatch`]): sealed data,
//! and after each drain of the TUN device or the socket, and after the
//! timers, what the engine queued (handshakes, keepalives, cookie replies,
//! packets that waited for a session), so a turn that answers fifty
//! initiations makes one batched send.
//!
//! [`DeviceHandle`]: crate::dataplane::handle::DeviceHandle

use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use sentrymesh_tunnel::StagingStats;
use sentrymesh_tunnel::ip::{IpPacket, TcpSegment, UDP_HEADER_LEN};

use crate::dataplane::batch::{MAX_PACKET, TxBatch};
use crate::dataplane::change::{ChangeError, ConfigChange};
use crate::dataplane::firewall::{ConntrackCounters, Dropped, FirewallDrops};
use crate::dataplane::handle::Command;
use crate::dataplane::heartbeat::Heartbeat;
use crate::dataplane::interface::Interface;
use crate::dataplane::io::{DatagramIo, TunIo};
use crate::dataplane::offload::{GsoType, VIRTIO_NET_HDR_LEN, VirtioNetHdr};
use crate::dataplane::sessions::SessionWatch;
use crate::dataplane::state::PeerState;
use crate::sys::batch_udp::{GsoMode, RecvMeta};
use crate::sys::memory;
use crate::sys::tun::Tun;
use crate::sys::udp::DataSocket;
use handshakes::HandshakeQueue;
use shedding::Shedding;

pub(crate) use drops::DatagramDrops;

mod drops;
mod handshakes;
mod receive;
mod run_loop;
mod send;
mod shedding;
#[cfg(test)]
mod tests;

/// How often the TUN device's MTU is read again.
const MTU_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Datagrams, or coalesced runs of them, taken from the socket in one call.
const RX_MESSAGES: usize = 16;
/// Room for one coalesced run of datagrams (UDP receive offload).
const RX_BUFFER_LEN: usize = 65_536;

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

/// Packets the device dropped, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DropCounters {
    /// Packets from the TUN device to an address no peer is allowed.
    pub no_route: u64,
    /// Packets from the TUN device that are not IP, or cut short.
    pub malformed_from_tun: u64,
    /// Packets from a peer with a source address the peer may not use.
    pub not_allowed_source: u64,
    /// Packets to or from a mesh peer that its firewall policy refuses.
    pub firewall: FirewallDrops,
    /// Datagrams from the socket refused, by reason.
    pub datagrams: DatagramDrops,
    /// Datagrams not sent: the socket refused them, or their peer has no
    /// endpoint to send to.
    pub send_errors: u64,
}

/// What the device counts, for metrics. It holds no secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Each peer as the interface reports it: its traffic and last
    /// handshake among the rest, no secret.
    pub peers: Vec<PeerState>,
    /// The packets dropped.
    pub drops: DropCounters,
    /// Cookie replies sent: handshake messages answered under load with a
    /// cookie instead of a handshake.
    pub cookie_replies_sent: u64,
    /// One in how many handshake messages without a cookie (`mac2` zero)
    /// the socket's filter lets through (1: it sheds none).
    pub shedding_no_cookie: u32,
    /// One in how many handshake messages that claim a cookie (`mac2`
    /// set) the socket's filter lets through.
    pub shedding_claimed_cookie: u32,
    /// The firewall's connection tracker.
    pub conntrack: ConntrackCounters,
    /// The packets waiting for a session, and those dropped from the wait.
    pub staging: StagingStats,
}

/// An interface running: its state, its TUN device `T` and its socket `S`.
pub(crate) struct Device<T = Tun, S = DataSocket> {
    interface: Interface,
    tun: T,
    /// Whether the TUN device speaks `virtio_net_hdr` with segmentation
    /// offloads (see [`create_tun`]).
    tun_offloads: bool,
    /// A super packet read from the TUN device, with its virtio header.
    tun_buf: Vec<u8>,
    /// Where received packets are coalesced before the TUN device gets them.
    gro_buf: Vec<u8>,
    socket: S,
    /// Whether `socket` was replaced (a new listen port) since the run loop
    /// last looked, so it waits on the new one.
    socket_replaced: bool,
    tx: TxBatch,
    rx_buffers: Vec<Vec<u8>>,
    rx_meta: Vec<RecvMeta>,
    drops: DropCounters,
    /// Beaten by the run loop each turn, for the watchdog.
    heartbeat: Heartbeat,
    /// Cookie replies sent (see [`DeviceCounters::cookie_replies_sent`]).
    cookie_replies_sent: u64,
    /// Handshake messages waiting for their turn.
    handshakes: HandshakeQueue,
    /// How much of a handshake flood the socket's filter sheds.
    shedding: Shedding,
    /// The peers' sessions as last logged.
    sessions: SessionWatch,
    /// Whether the last drain of the socket stopped before finding it
    /// empty: the run loop drains it again without waiting, as the poller
    /// (edge-triggered) will not say it is readable.
    socket_pending: bool,
    /// The same for the TUN device.
    tun_pending: bool,
    /// Whether peers were removed since the free memory was last given
    /// back to the system.
    peers_removed: bool,
}

impl Device {
    /// Sets up an unconfigured interface on `tun` (see [`create_tun`]) and
    /// `socket` (see [`bind_socket`]).
    ///
    /// # Errors
    ///
    /// When a descriptor cannot be made non-blocking or the socket cannot
    /// say its port.
    pub(crate) fn new(tun: Tun, socket: DataSocket) -> Result<Self> {
        tun.set_nonblocking(true)
            .context("making the TUN device non-blocking")?;
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Device::with_io(tun, socket, Instant::now(), unix_now)
    }
}

/// Binds the interface's UDP socket to `port` (0: any) with the firewall
/// mark `fwmark`, using the UDP offloads `offloads` allows. Bound before
/// the TUN device is created, a port in use refuses the start before
/// anything on the system changed; configuring the interface with the
/// same port keeps this socket.
///
/// # Errors
///
/// When the port is in use, or the socket cannot be bound or marked.
pub(crate) fn bind_socket(
    port: u16,
    fwmark: Option<u32>,
    offloads: Offloads,
) -> Result<DataSocket> {
    let gso = match offloads {
        Offloads::Auto => GsoMode::Probe,
        Offloads::Off => GsoMode::Disabled,
    };
    DataSocket::bind(port, fwmark, gso, offloads == Offloads::Auto).map_err(|error| {
        let hint = if error.kind() == io::ErrorKind::AddrInUse {
            "; another process (another interface?) listens there: stop it or choose another \
             listen_port"
        } else {
            ""
        };
        anyhow::Error::new(error).context(format!("binding UDP port {port}{hint}"))
    })
}

impl<T: TunIo, S: DatagramIo> Device<T, S> {
    /// An unconfigured interface on `tun` and `socket`; `now` and
    /// `unix_now` are one reading of the monotonic and the wall clock.
    ///
    /// # Errors
    ///
    /// When the socket cannot say its port.
    pub(crate) fn with_io(tun: T, socket: S, now: Instant, unix_now: Duration) -> Result<Self> {
        let mut interface = Interface::new(now, unix_now);
        interface.set_bound_port(socket.local_port().context("reading the bound port")?);
        Ok(Self {
            interface,
            tun_offloads: tun.has_offloads(),
            tun,
            tun_buf: vec![0; VIRTIO_NET_HDR_LEN + MAX_PACKET],
            gro_buf: vec![0; VIRTIO_NET_HDR_LEN + MAX_PACKET],
            socket,
            socket_replaced: false,
            tx: TxBatch::new(),
            rx_buffers: vec![vec![0; RX_BUFFER_LEN]; RX_MESSAGES],
            rx_meta: vec![RecvMeta::default(); RX_MESSAGES],
            drops: DropCounters::default(),
            heartbeat: Heartbeat::new(now),
            cookie_replies_sent: 0,
            handshakes: HandshakeQueue::new(),
            shedding: Shedding::new(now),
            sessions: SessionWatch::default(),
            socket_pending: false,
            tun_pending: false,
            peers_removed: false,
        })
    }

    /// The heartbeat the run loop beats each turn: a watchdog checks it to
    /// tell a data path that turns from one stuck in a turn.
    pub(crate) fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// Reads the TUN device's MTU again: padding stops there, as in the
    /// kernel, since a datagram any larger would not fit the path a
    /// segmentation offload send assumes.
    fn check_mtu(&mut self) {
        let mtu = self.tun.mtu().ok().and_then(|mtu| u16::try_from(mtu).ok());
        self.interface.engine_mut().set_mtu(mtu);
    }

    /// Logs each peer's session that came up, was rekeyed, roamed or went
    /// down since the last look (see [`SessionWatch`]): one `info` line a
    /// change.
    fn log_session_changes(&mut self, now: Instant) {
        for (peer, change) in self.sessions.observe(now, self.interface.session_views()) {
            tracing::info!(peer = %peer, "{change}");
        }
    }

    /// Logs a packet the firewall dropped, when it is the first of its kind
    /// in a minute: by the peer's public key, never its addresses.
    fn log_firewall_drop(&self, dropped: Option<Dropped>) {
        let Some(dropped) = dropped else {
            return;
        };
        let Some((key, _)) = self
            .interface
            .engine()
            .peers()
            .find(|&(_, id)| id == dropped.peer)
        else {
            return;
        };
        tracing::info!(
            peer = %key,
            "firewall: dropped {dropped}; more like it in the next minute are only counted \
             (sentrymesh_dropped_packets_total)"
        );
    }

    /// Serves one command of a [`DeviceHandle`](crate::dataplane::handle::DeviceHandle).
    fn serve_command(&mut self, command: Command, now: Instant) {
        // A handle that stopped waiting dropped its receiver: nothing to do.
        match command {
            Command::State(answer) => {
                let _ = answer.send(self.interface.state());
            }
            Command::UapiState(answer) => {
                let _ = answer.send(self.interface.uapi_state());
            }
            Command::Apply(change, answer) => {
                let _ = answer.send(self.apply(change, now));
            }
            Command::LivePeers(answer) => {
                let _ = answer.send(self.interface.live_peers(now));
            }
            Command::Sessions(answer) => {
                let _ = answer.send(self.interface.sessions(now));
            }
            Command::Connect(keys, answer) => {
                self.interface.connect(now, &keys);
                let _ = answer.send(());
            }
            Command::Counters(answer) => {
                let firewall = self.interface.firewall();
                let _ = answer.send(DeviceCounters {
                    peers: self.interface.state().peers,
                    drops: DropCounters {
                        firewall: firewall.drops(),
                        ..self.drops
                    },
                    cookie_replies_sent: self.cookie_replies_sent,
                    shedding_no_cookie: self.shedding.rates().no_cookie,
                    shedding_claimed_cookie: self.shedding.rates().claimed_cookie,
                    conntrack: firewall.conntrack(now),
                    staging: self.interface.engine().staging_stats(),
                });
            }
            Command::UnknownInitiators(answer) => {
                let engine = self.interface.engine_mut();
                let keys = std::iter::from_fn(|| engine.poll_unknown_initiator()).collect();
                let _ = answer.send(keys);
            }
        }
    }

    /// Applies `change` completely or not at all: the interface checks it,
    /// then the socket takes a new port or mark (the one step that can fail
    /// for reasons outside the change), then the interface commits it.
    fn apply(&mut self, change: ConfigChange, now: Instant) -> Result<(), ChangeError> {
        self.interface.check(&change)?;
        let fwmark = change.fwmark.unwrap_or(self.interface.fwmark());
        let port_changes = change
            .listen_port
            .is_some_and(|port| port != self.interface.listen_port() || port == 0);
        if port_changes {
            let port = change.listen_port.unwrap_or_default();
            self.socket
                .rebind(port, fwmark)
                .map_err(|source| ChangeError::PortInUse { port, source })?;
            let bound = self
                .socket
                .local_port()
                .map_err(|source| ChangeError::PortInUse { port, source })?;
            self.interface.set_bound_port(bound);
            self.socket_replaced = true;
        } else if change.fwmark.is_some() && fwmark != self.interface.fwmark() {
            self.socket
                .set_mark(fwmark.unwrap_or(0))
                .map_err(ChangeError::Fwmark)?;
        }
        self.peers_removed |= self.interface.commit(now, change) > 0;
        Ok(())
    }

    /// Gives the memory freed back to the system when peers were removed
    /// since the last look, once the interface's tables gave back the room
    /// they kept for them: what they held, and the rest of the daemon's
    /// state of them (the mesh member frees its own before it asks for
    /// their removal). Called once a second, so a burst of removals (a
    /// thousand revocations arrive in many messages) pays one release.
    fn release_memory_of_removed_peers(&mut self) {
        if std::mem::take(&mut self.peers_removed) {
            self.interface.shrink_to_fit();
            memory::release_free_memory();
        }
    }
}

/// Whether a TUN read failed because the device was deleted: the kernel
/// detaches a deleted device's file (`EBADFD`).
fn is_gone(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::EBADFD)
}

/// Creates the TUN device `name`, with segmentation offloads when `offloads`
/// allows them and the kernel has them; says so once in the log when not.
///
/// # Errors
///
/// As [`Tun::create`].
pub(crate) fn create_tun(name: &str, offloads: Offloads) -> io::Result<Tun> {
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
/// and how many segments there are: the packet's own length and one without
/// GSO; for a super packet, read through the views of its IP and TCP or UDP
/// headers. `None` for headers that do not check, which [`segment`] then
/// refuses too.
///
/// [`segment`]: crate::dataplane::offload::segment
pub(crate) fn segment_layout(hdr: &VirtioNetHdr, packet: &[u8]) -> Option<(usize, usize)> {
    if hdr.gso_type == GsoType::None {
        return Some((packet.len(), 1));
    }
    let ip = IpPacket::new_checked(packet).ok()?;
    let transport_header = if hdr.gso_type == GsoType::UdpL4 {
        UDP_HEADER_LEN
    } else {
        TcpSegment::new_checked(ip.payload()).ok()?.header_len()
    };
    let headers = ip.header_len() + transport_header;
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
