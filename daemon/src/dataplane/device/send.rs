//! Towards the peers: packets read from the TUN device are routed, sealed in
//! place in the send batch and sent with everything the engine queued.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, Result};
use sentrymesh_tunnel::{DATA_HEADER_LEN, Encapsulated};

use super::{Device, is_gone, segment_layout};
use crate::dataplane::batch::{MAX_PACKET, SLOT_LEN};
use crate::dataplane::firewall::Direction;
use crate::dataplane::io::{DatagramIo, TunIo};
use crate::dataplane::offload::{VIRTIO_NET_HDR_LEN, VirtioNetHdr, segment};

/// Reads from the TUN device in one drain, at most: the rest waits for the
/// next turn, so the socket is read in between.
const TUN_READS_PER_DRAIN: usize = 128;

impl<T: TunIo, S: DatagramIo> Device<T, S> {
    /// Reads the packets waiting on the TUN device, up to
    /// [`TUN_READS_PER_DRAIN`] (`tun_pending` says whether more may wait),
    /// seals each into the batch, and sends the batch with what the engine
    /// queued meanwhile; `false` when the device has been deleted.
    ///
    /// # Errors
    ///
    /// When the TUN device fails for good.
    pub(super) fn drain_tun(&mut self, now: Instant) -> Result<bool> {
        // Until a read finds the device empty, the run loop comes back.
        self.tun_pending = true;
        let result = if self.tun_offloads {
            self.drain_tun_offloaded(now)
        } else {
            self.drain_tun_plain(now)
        };
        self.send_queued(now);
        result
    }

    /// [`Device::drain_tun`] for a device without offloads: each packet is
    /// read straight into the batch, where it is sealed.
    fn drain_tun_plain(&mut self, now: Instant) -> Result<bool> {
        for _ in 0..TUN_READS_PER_DRAIN {
            if !self.tx.has_slot() {
                self.flush();
            }
            let start = self.tx.len();
            let slot = &mut self.tx.buf_mut()[start..start + SLOT_LEN];
            let len = match self
                .tun
                .read_packet(&mut slot[DATA_HEADER_LEN..DATA_HEADER_LEN + MAX_PACKET])
            {
                Ok(len) => len,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.tun_pending = false;
                    return Ok(true);
                }
                Err(error) if is_gone(&error) => return Ok(false),
                Err(error) => return Err(error).context("reading the TUN device"),
            };
            if self.interface.is_configured() {
                self.seal_into_batch(now, len);
            }
        }
        Ok(true)
    }

    /// [`Device::drain_tun`] for a device with offloads: each read is a
    /// virtio header and a packet or a TCP super packet, cut into segments
    /// straight into the batch.
    fn drain_tun_offloaded(&mut self, now: Instant) -> Result<bool> {
        let mut tun_buf = std::mem::take(&mut self.tun_buf);
        let mut result = Ok(true);
        for _ in 0..TUN_READS_PER_DRAIN {
            let len = match self.tun.read_packet(&mut tun_buf) {
                Ok(len) => len,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.tun_pending = false;
                    break;
                }
                Err(error) if is_gone(&error) => {
                    result = Ok(false);
                    break;
                }
                Err(error) => {
                    result = Err(error).context("reading the TUN device");
                    break;
                }
            };
            if self.interface.is_configured() {
                self.seal_super_packet(now, &tun_buf[..len]);
            }
        }
        self.tun_buf = tun_buf;
        result
    }

    /// Cuts a virtio header and (super) packet into segments, laid out in the
    /// batch at the stride their sealed datagrams take, and seals them there.
    fn seal_super_packet(&mut self, now: Instant, read: &[u8]) {
        let Ok(hdr) = VirtioNetHdr::new_checked(read) else {
            self.drops.malformed_from_tun += 1;
            return;
        };
        let packet = &read[VIRTIO_NET_HDR_LEN..];
        let Some(peer) = self.interface.route(packet) else {
            self.drops.no_route += 1;
            return;
        };
        // A super packet is one flow: its headers are every segment's.
        if let Err(dropped) = self
            .interface
            .filter(now, Direction::Outbound, peer, packet)
        {
            self.log_firewall_drop(dropped);
            return;
        }
        let Some((segment_len, count)) = segment_layout(&hdr, packet) else {
            self.drops.malformed_from_tun += 1;
            return;
        };
        let stride = self.interface.engine().encapsulated_len(segment_len);
        if !self.tx.fits(stride, count) {
            self.flush();
            if !self.tx.fits(stride, count) {
                self.drops.malformed_from_tun += 1;
                return;
            }
        }
        let base = self.tx.len();
        let slots = self.tx.buf_mut()[base..base + count * stride]
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
        let destination = self.interface.engine().peer_endpoint(peer);
        for index in 0..segments.count() {
            let start = base + index * stride;
            let slot = &mut self.tx.buf_mut()[start..start + stride];
            let engine = self.interface.engine_mut();
            match engine.encapsulate_in_place(now, peer, slot, segments.len_of(index)) {
                Ok(Encapsulated::Sealed { len }) => self.push_sealed(destination, start, len),
                Ok(Encapsulated::Queued) => {}
                Err(error) => tracing::debug!("not sent to {peer:?}: {error}"),
            }
        }
    }

    /// Seals the packet of `len` bytes read at the batch's end (after room
    /// for the WireGuard header) for the peer its destination routes to, and
    /// adds it to the batch.
    fn seal_into_batch(&mut self, now: Instant, len: usize) {
        let start = self.tx.len();
        let slot = &mut self.tx.buf_mut()[start..start + SLOT_LEN];
        let packet = &slot[DATA_HEADER_LEN..DATA_HEADER_LEN + len];
        let Some(peer) = self.interface.route(packet) else {
            self.drops.no_route += 1;
            return;
        };
        if let Err(dropped) = self
            .interface
            .filter(now, Direction::Outbound, peer, packet)
        {
            self.log_firewall_drop(dropped);
            return;
        }
        let engine = self.interface.engine_mut();
        match engine.encapsulate_in_place(now, peer, slot, len) {
            Ok(Encapsulated::Sealed { len }) => {
                let destination = self.interface.engine().peer_endpoint(peer);
                self.push_sealed(destination, start, len);
            }
            Ok(Encapsulated::Queued) => {}
            Err(error) => tracing::debug!("not sent to {peer:?}: {error}"),
        }
    }

    /// Adds the datagram of `len` bytes sealed at `start` (at or after the
    /// batch's end) to the batch, for `destination`: sent first when it does
    /// not fit, and counted as not sent when there is no destination.
    fn push_sealed(&mut self, destination: Option<SocketAddr>, start: usize, len: usize) {
        let Some(destination) = destination else {
            self.drops.send_errors += 1;
            return;
        };
        if start != self.tx.len() || !self.tx.fits(len, 1) {
            // Only a shorter segment not last, or a full batch: the datagram
            // starts the next batch.
            self.flush();
            self.tx.clear_keeping(start, len);
        }
        self.tx.push(destination, len);
    }

    /// Takes everything the engine has queued (handshakes, keepalives,
    /// cookie replies, packets that waited for a session) into the batch,
    /// and sends the batch.
    pub(super) fn send_queued(&mut self, now: Instant) {
        loop {
            if !self.tx.has_slot() {
                self.flush();
            }
            let start = self.tx.len();
            let out = &mut self.tx.buf_mut()[start..];
            let Some(transmit) = self.interface.engine_mut().poll_transmit(now, out) else {
                break;
            };
            if transmit.peer.is_none() {
                // Only cookie replies go to a sender that is not a peer.
                self.cookie_replies_sent += 1;
            }
            self.push_sealed(Some(transmit.destination), start, transmit.len);
        }
        self.flush();
    }

    /// Sends the batch: one batched send, runs with segmentation offload
    /// where the kernel has it.
    fn flush(&mut self) {
        if self.tx.is_empty() {
            return;
        }
        let report = self.socket.send_batch(self.tx.bytes(), self.tx.runs());
        self.drops.send_errors += report.failed as u64;
        if let Some(error) = report.error {
            tracing::trace!(
                "sending a batch: {} datagrams not sent: {error}",
                report.failed
            );
        }
        self.tx.clear();
    }
}
