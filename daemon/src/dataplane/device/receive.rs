//! From the peers: datagrams are received many per system call, opened in
//! place, checked against their peer's allowed IPs and written to the TUN
//! device, coalesced where it takes offloads.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use sentrymesh_tunnel::Received;

use super::Device;
use crate::dataplane::io::{DatagramIo, TunIo};
use crate::dataplane::offload::TcpCoalescer;

impl<T: TunIo, S: DatagramIo> Device<T, S> {
    /// Reads every datagram waiting on the socket, many per system call, and
    /// processes each; with offloads, the packets of a TCP flow are written to
    /// the TUN device coalesced. Then sends what the engine queued (handshake
    /// responses, keepalives, packets that waited for the session).
    pub(super) fn drain_socket(&mut self, now: Instant) {
        let mut buffers = std::mem::take(&mut self.rx_buffers);
        let mut meta = std::mem::take(&mut self.rx_meta);
        let mut gro_buf = std::mem::take(&mut self.gro_buf);
        let mut coalescer = self.tun_offloads.then(|| TcpCoalescer::new(&mut gro_buf));
        // The run loop is told of new datagrams only once, when the socket
        // becomes readable: read until it is empty.
        loop {
            let count = match self.socket.recv_batch(&mut buffers, &mut meta) {
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
                    self.drops.datagrams.truncated += 1;
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
        self.send_queued(now);
    }

    /// Opens one datagram and hands the packet it carries to the TUN device,
    /// through `coalescer` when the device takes offloads.
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
        let engine = self.interface.engine_mut();
        match engine.handle_datagram(now, from, datagram) {
            Ok(Received::Packet { peer, packet }) => {
                if !self.interface.accepts(peer, packet) {
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
                if is_unknown_type(datagram) {
                    self.drops.datagrams.unknown_type += 1;
                } else {
                    self.drops.datagrams.count(error);
                }
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
