//! Captures what a host receives: a packet socket inside its namespace
//! records every IPv4 packet addressed to the host, so a test can inspect
//! the UDP datagrams others sent it through the tunnel (after decryption, as
//! the TUN device delivers them), fragments put back together. On the
//! underlay, [`Capture::underlay`] records every packet from or to an
//! address: everything the host says and hears there.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::Host;

/// A running capture; [`Capture::stop`] returns the payloads.
pub struct Capture {
    stop: Arc<AtomicBool>,
    packets: Arc<Mutex<Vec<Vec<u8>>>>,
    port: u16,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

/// An IPv4 datagram captured, fragments joined.
pub struct Datagram {
    /// The IP protocol: 17 for UDP.
    pub protocol: u8,
    /// The IP payload: for UDP, the UDP header and then its payload.
    pub payload: Vec<u8>,
}

impl Datagram {
    /// The payload of a UDP datagram.
    pub fn udp_payload(&self) -> Option<&[u8]> {
        (self.protocol == 17)
            .then(|| self.payload.get(8..))
            .flatten()
    }
}

impl Capture {
    /// Starts recording the UDP datagrams to `address:port` that `host`
    /// receives on any interface.
    ///
    /// # Panics
    ///
    /// When the namespace cannot be entered or the socket opened.
    pub fn start(host: &Host, address: Ipv4Addr, port: u16) -> Capture {
        Self::recording(host, port, move |packet| packet[16..20] == address.octets())
    }

    /// Starts recording every IPv4 packet `host` sends from or receives at
    /// `address`, of any protocol; [`Capture::stop_datagrams`] returns them.
    ///
    /// # Panics
    ///
    /// When the namespace cannot be entered or the socket opened.
    pub fn underlay(host: &Host, address: Ipv4Addr) -> Capture {
        Self::recording(host, 0, move |packet| {
            packet[12..16] == address.octets() || packet[16..20] == address.octets()
        })
    }

    /// Records the IPv4 packets of `host` for which `wanted` holds (given a
    /// packet of at least 20 bytes).
    fn recording(
        host: &Host,
        port: u16,
        wanted: impl Fn(&[u8]) -> bool + Send + 'static,
    ) -> Capture {
        let stop = Arc::new(AtomicBool::new(false));
        let packets = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (stop, packets) = (Arc::clone(&stop), Arc::clone(&packets));
            host.spawn_in_namespace(move || {
                let socket = packet_socket();
                ready_tx.send(()).expect("report readiness");
                let mut buf = vec![0u8; 65_536];
                // After the stop, what the socket still holds is read (up
                // to a bound), so a packet sent just before is not lost.
                let mut after_stop = 0;
                while after_stop < 10_000 {
                    if stop.load(Ordering::Relaxed) {
                        after_stop += 1;
                    }
                    // SAFETY: recv writes at most `buf.len()` bytes to `buf`.
                    let len = unsafe {
                        libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                    };
                    let Ok(len) = usize::try_from(len) else {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        continue;
                    };
                    let packet = &buf[..len];
                    if packet.len() >= 20 && packet[0] >> 4 == 4 && wanted(packet) {
                        packets.lock().expect("packets").push(packet.to_vec());
                    }
                }
            })
        };
        ready_rx.recv().expect("the capture started");
        Capture {
            stop,
            packets,
            port,
            thread: Some(thread),
        }
    }

    /// Whether a packet recorded so far (an IPv4 packet as it came, a
    /// fragment on its own) satisfies `check`: what a test waits for
    /// before it stops the capture.
    ///
    /// # Panics
    ///
    /// When the capture thread panicked holding the packets.
    pub fn saw(&self, check: impl Fn(&[u8]) -> bool) -> bool {
        self.packets
            .lock()
            .expect("packets")
            .iter()
            .any(|packet| check(packet))
    }

    /// Stops and returns the payload of every datagram recorded.
    ///
    /// # Panics
    ///
    /// When the capture thread failed.
    pub fn stop(self) -> Vec<Vec<u8>> {
        let port = self.port;
        self.stop_datagrams()
            .into_iter()
            .filter_map(|datagram| udp_payload(datagram.protocol, &datagram.payload, port))
            .collect()
    }

    /// Stops and returns every datagram recorded, of any protocol.
    ///
    /// # Panics
    ///
    /// When the capture thread failed.
    pub fn stop_datagrams(mut self) -> Vec<Datagram> {
        self.halt();
        let packets = std::mem::take(&mut *self.packets.lock().expect("packets"));
        reassemble(&packets)
            .into_iter()
            .map(|(protocol, payload)| Datagram { protocol, payload })
            .collect()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .expect("the capture thread")
                .expect("the capture thread entered the namespace");
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A packet socket for IP packets of every interface, with a 100 ms
/// receive timeout.
fn packet_socket() -> OwnedFd {
    let protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: socket has no memory preconditions.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(protocol)) };
    assert!(
        fd >= 0,
        "packet socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: SO_RCVTIMEO reads one `timeval` from the pointer.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    assert_eq!(
        result,
        0,
        "SO_RCVTIMEO: {}",
        std::io::Error::last_os_error()
    );
    socket
}

/// The source address and identification that mark the fragments of one
/// datagram.
type FragmentKey = ([u8; 4], u16);
/// A fragment's offset, payload and protocol.
type Fragment<'a> = (usize, &'a [u8], u8);

/// The payloads of IPv4 `packets` with their protocol, fragments of one
/// datagram (same source and identification) joined in offset order.
fn reassemble(packets: &[Vec<u8>]) -> Vec<(u8, Vec<u8>)> {
    let mut datagrams: BTreeMap<FragmentKey, Vec<Fragment<'_>>> = BTreeMap::new();
    let mut whole = Vec::new();
    for packet in packets {
        let header = usize::from(packet[0] & 0x0f) * 4;
        // Up to the IP total length: a short frame may carry padding.
        let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
        let end = if (header..=packet.len()).contains(&total) {
            total
        } else {
            packet.len()
        };
        let Some(payload) = packet.get(header..end) else {
            continue;
        };
        let protocol = packet[9];
        let flags_offset = u16::from_be_bytes([packet[6], packet[7]]);
        let more = flags_offset & 0x2000 != 0;
        let offset = usize::from(flags_offset & 0x1fff) * 8;
        if !more && offset == 0 {
            whole.push((protocol, payload.to_vec()));
            continue;
        }
        let source = [packet[12], packet[13], packet[14], packet[15]];
        let id = u16::from_be_bytes([packet[4], packet[5]]);
        datagrams
            .entry((source, id))
            .or_default()
            .push((offset, payload, protocol));
    }
    for mut fragments in datagrams.into_values() {
        fragments.sort_by_key(|&(offset, _, _)| offset);
        let protocol = fragments[0].2;
        let joined = fragments
            .iter()
            .flat_map(|&(_, payload, _)| payload.to_vec())
            .collect();
        whole.push((protocol, joined));
    }
    whole
}

/// The payload of a datagram of `protocol` when it is UDP to `port`.
fn udp_payload(protocol: u8, datagram: &[u8], port: u16) -> Option<Vec<u8>> {
    if protocol != 17 {
        return None;
    }
    let destination_port = u16::from_be_bytes([*datagram.get(2)?, *datagram.get(3)?]);
    (destination_port == port)
        .then(|| datagram.get(8..).map(<[u8]>::to_vec))
        .flatten()
}
