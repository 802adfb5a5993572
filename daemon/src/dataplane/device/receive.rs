//! From the peers: datagrams are received many per system call; data is
//! opened in place, checked against its peer's allowed IPs and written to
//! the TUN device, coalesced where it takes offloads; handshake messages
//! wait in the handshake queue and are handled a budget at a time (see
//! [`handshakes`](super::handshakes)).

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use sentrymesh_tunnel::{COOKIE_REPLY_LEN, Error, INITIATION_LEN, RESPONSE_LEN, Received};

use super::Device;
use super::handshakes::{Admission, MAX_HANDSHAKE_LEN};
use super::shedding::Cookie;
use crate::dataplane::firewall::Direction;
use crate::dataplane::io::{DatagramIo, TunIo};
use crate::dataplane::offload::TcpCoalescer;

/// Batches read from the socket in one drain, at most: the rest waits for
/// the next turn, so the TUN device is read in between.
const RX_BATCHES_PER_DRAIN: usize = 8;

/// Handshake messages handled in one turn, at most. Under a flood each one
/// costs a cookie reply sent (its MAC, its encryption, its share of a
/// system call), and what the thread spends on them it does not spend
/// reading the socket, whose buffer then drops data: with one stream
/// through a tunnel and a flood at one core's speed, a budget of 8 kept
/// 36-49 % of the stream where 32 kept 2-22 % (`benches/handshake-flood`).
/// Turns come thousands of times a second, so real handshakes still find
/// room.
pub(super) const HANDSHAKE_BUDGET: usize = 8;

impl<T: TunIo, S: DatagramIo> Device<T, S> {
    /// Reads the datagrams waiting on the socket, many per system call, up
    /// to [`RX_BATCHES_PER_DRAIN`] batches (`socket_pending` says whether
    /// more may wait); opens the data at once and queues the handshake
    /// messages. With offloads, the packets of a TCP flow are written to the
    /// TUN device coalesced. Then handles up to [`HANDSHAKE_BUDGET`] queued
    /// handshake messages, and sends what the engine queued (handshake
    /// responses, cookie replies, keepalives, packets that waited for the
    /// session).
    pub(super) fn drain_socket(&mut self, now: Instant) {
        self.adjust_shedding(now);
        let mut buffers = std::mem::take(&mut self.rx_buffers);
        let mut meta = std::mem::take(&mut self.rx_meta);
        let mut gro_buf = std::mem::take(&mut self.gro_buf);
        let mut coalescer = self.tun_offloads.then(|| TcpCoalescer::new(&mut gro_buf));
        // The run loop is told of new datagrams only once, when the socket
        // becomes readable: until a read finds it empty, it comes back.
        self.socket_pending = true;
        let mut batches = 0;
        while batches < RX_BATCHES_PER_DRAIN {
            let count = match self.socket.recv_batch(&mut buffers, &mut meta) {
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.socket_pending = false;
                    break;
                }
                Err(error) => {
                    // An ICMP error for an earlier datagram; reading it cleared
                    // it, and datagrams may wait behind it.
                    tracing::trace!("receiving: {error}");
                    batches += 1;
                    continue;
                }
            };
            batches += 1;
            for (buffer, meta) in buffers.iter_mut().zip(&meta).take(count) {
                if meta.truncated {
                    self.drops.datagrams.truncated += 1;
                    continue;
                }
                if meta.segment_size == 0 {
                    // An empty datagram.
                    self.drops.datagrams.malformed += 1;
                    continue;
                }
                let len = meta.len.min(buffer.len());
                for datagram in buffer[..len].chunks_mut(meta.segment_size) {
                    self.receive_datagram(now, meta.source, datagram, coalescer.as_mut());
                }
            }
        }
        if let Some(coalescer) = coalescer.as_mut() {
            self.write_coalesced(coalescer);
        }
        self.rx_buffers = buffers;
        self.rx_meta = meta;
        self.gro_buf = gro_buf;
        self.handle_handshakes(now);
        self.send_queued(now);
    }

    /// Closes the shedding windows that ended by `now` (what a turn sees
    /// belongs to the window it falls in), and gives the
    /// socket's filter the new rates if they changed. A filter the kernel
    /// refuses leaves the old one in place (and the data path unfiltered
    /// or as filtered as it was): the flood is then read, as before.
    pub(super) fn adjust_shedding(&mut self, now: Instant) {
        let Some(rates) = self.shedding.turn(now) else {
            return;
        };
        match self.socket.shed_handshakes(rates) {
            Ok(()) if rates.sheds() => tracing::debug!(
                "handshake flood: the socket lets one in {} handshake messages without a \
                 cookie through, and one in {} of those that claim one",
                rates.no_cookie,
                rates.claimed_cookie
            ),
            Ok(()) => tracing::debug!("handshake flood over: the socket sheds nothing"),
            Err(error) => tracing::warn!("setting the socket's handshake filter: {error}"),
        }
    }

    /// Whether the socket or the handshake queue has work left for the next
    /// turn.
    pub(super) fn socket_has_work(&self) -> bool {
        self.socket_pending || !self.handshakes.is_empty()
    }

    /// Handles up to [`HANDSHAKE_BUDGET`] queued handshake messages, oldest
    /// first, under load or not as the backlog says.
    fn handle_handshakes(&mut self, now: Instant) {
        if self.handshakes.is_empty() {
            return;
        }
        if self.handshakes.is_backlogged() {
            self.shedding.loaded();
        }
        let under_load = self.handshakes.under_load(now) || self.shedding.is_shedding();
        let engine = self.interface.engine_mut();
        engine.set_under_load(under_load);
        let mut message = [0; MAX_HANDSHAKE_LEN];
        for _ in 0..HANDSHAKE_BUDGET {
            let Some((from, admission, len)) = self.handshakes.pop_into(&mut message) else {
                break;
            };
            let handled = match admission {
                Admission::Open => engine
                    .handle_datagram(now, from, &mut message[..len])
                    .map(drop),
                Admission::Proven => engine
                    .handle_proven_handshake(now, from, &message[..len])
                    .map(drop),
            };
            if let Err(error) = handled {
                self.drops.datagrams.count(error);
                // No source address: it may be a hidden host's, which no
                // log shows (the drop counters tell the rest).
                tracing::trace!("dropped a handshake message: {error}");
            }
        }
    }

    /// Queues a handshake message, or opens a datagram (data, or one the
    /// engine refuses at a glance) and hands the packet it carries to the
    /// TUN device, through `coalescer` when the device takes offloads.
    fn receive_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &mut [u8],
        coalescer: Option<&mut TcpCoalescer<'_>>,
    ) {
        if !self.interface.is_configured() {
            self.drops.datagrams.not_configured += 1;
            return;
        }
        if is_handshake_message(datagram) {
            if !self.handshakes.push(from, datagram) && !self.queue_proven(now, from, datagram) {
                self.shedding.overflowed(Cookie::of(datagram));
            }
            return;
        }
        let engine = self.interface.engine_mut();
        match engine.handle_datagram(now, from, datagram) {
            Ok(Received::Packet { peer, packet }) => {
                if !self.interface.accepts(peer, packet) {
                    self.drops.not_allowed_source += 1;
                    return;
                }
                if let Err(dropped) = self.interface.filter(now, Direction::Inbound, peer, packet) {
                    self.log_firewall_drop(dropped);
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
                if is_unknown_type(datagram) {
                    self.drops.datagrams.unknown_type += 1;
                } else {
                    self.drops.datagrams.count(error);
                }
                // No source address: it may be a hidden host's.
                tracing::trace!("dropped a datagram: {error}");
            }
        }
    }

    /// Queues, in the room a full handshake queue keeps, a message whose
    /// cookie proves its source and whose source's rate allows it (the rate
    /// is charged then, not again when it is handled); counts a refusal, as
    /// rate-limited or as finding the queue full. Whether it was queued.
    fn queue_proven(&mut self, now: Instant, from: SocketAddr, message: &[u8]) -> bool {
        if self.handshakes.reserve_is_full() {
            self.drops.datagrams.handshake_queue_full += 1;
            return false;
        }
        match self.interface.engine_mut().admit_proven(now, from, message) {
            Ok(()) => {
                let queued = self.handshakes.push_proven(from, message);
                debug_assert!(queued, "the reserve has room, the message fits");
                queued
            }
            Err(error @ Error::RateLimited) => {
                self.drops.datagrams.count(error);
                false
            }
            Err(_) => {
                self.drops.datagrams.handshake_queue_full += 1;
                false
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

    fn write_to_tun(&mut self, packet: &[u8]) {
        if let Err(error) = self.tun.write_packet(packet) {
            tracing::debug!("writing to the TUN device: {error}");
        }
    }
}

/// Whether `datagram` starts with a byte that is no message type (1 to 4):
/// the engine calls it malformed, the metrics tell it apart.
fn is_unknown_type(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|kind| !(1..=4).contains(kind))
}

/// Whether `datagram` has the type and the length of a handshake message
/// (an initiation, a response or a cookie reply): what waits in the
/// handshake queue. Anything else of those types is refused by the engine
/// at a glance, without taking a place in the queue.
fn is_handshake_message(datagram: &[u8]) -> bool {
    let expected = match datagram.first() {
        Some(1) => INITIATION_LEN,
        Some(2) => RESPONSE_LEN,
        Some(3) => COOKIE_REPLY_LEN,
        _ => return false,
    };
    datagram.len() == expected
}
