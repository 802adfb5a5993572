//! ICMP echo — what `ping` sends — from inside network namespaces, in this
//! process: a raw ICMP socket per namespace, opened by a thread that
//! entered it (a socket stays in the namespace it was made in, whichever
//! thread uses it later). A matrix of thousands of pings then costs a few
//! system calls each, not a `ping` process each.
//!
//! ```text
//!   Pinger::open(namespace) ──► raw ICMP socket inside it (its identifier on every request)
//!   ping_pairs(pingers, addresses, pairs, tries, wait)
//!       try 1: every pair's request, a wave of WAVE destinations per source at a time,
//!              replies read between waves; then read until `wait` passes or all answered
//!       try 2…: only the pairs not answered yet
//! ```
//!
//! A raw socket sees every ICMP message its namespace receives: a reply
//! counts only with this pinger's identifier, the sequence of a pair whose
//! source is this pinger, and the source address of that pair's
//! destination. A request that cannot leave (no route: the kernel refuses
//! it at once) is a try without a reply.

use std::io::{self, Read as _};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::Namespace;
use crate::interrupt;

/// ICMP's echo request and echo reply types.
const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;
/// The bytes after the 8-byte ICMP header of each request.
const PAYLOAD: &[u8; 16] = b"sentrymesh-echo\0";
/// The length of a request.
const REQUEST_LEN: usize = 8 + PAYLOAD.len();
/// Destinations each source sends to before replies are read: few enough
/// that a socket's receive buffer holds what comes back meanwhile.
const WAVE: usize = 16;
/// The pairs one run of requests can tell apart: a sequence number each.
const SEQUENCES: usize = 1 << 16;
/// How often replies are read while waiting.
const READ_EVERY: Duration = Duration::from_millis(10);

/// One echo reply read from a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    /// Who answered.
    pub from: Ipv4Addr,
    /// The sequence number of the request it answers.
    pub sequence: u16,
}

/// A raw ICMP socket inside a namespace that sends echo requests with its
/// identifier and reads the replies to them.
#[derive(Debug)]
pub struct Pinger {
    socket: Socket,
    identifier: u16,
}

impl Pinger {
    /// Opens a pinger inside `namespace` whose requests carry
    /// `identifier` (make it differ from other pingers' in the same
    /// namespace).
    ///
    /// # Errors
    ///
    /// When the namespace cannot be entered or the socket made (not root).
    pub fn open(namespace: &Namespace, identifier: u16) -> io::Result<Pinger> {
        let socket = namespace
            .spawn_thread(|| Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)))
            .join()
            .map_err(|_| io::Error::other("the thread opening the socket panicked"))???;
        socket.set_nonblocking(true)?;
        Ok(Pinger { socket, identifier })
    }

    /// Opens a pinger inside each of `namespaces`, side by side, each with
    /// `identifier`.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), for the first that fails.
    pub fn open_all(namespaces: &[&Namespace], identifier: u16) -> io::Result<Vec<Pinger>> {
        thread::scope(|scope| {
            let opening: Vec<_> = namespaces
                .iter()
                .map(|namespace| scope.spawn(move || Pinger::open(namespace, identifier)))
                .collect();
            opening
                .into_iter()
                .map(|opened| {
                    opened
                        .join()
                        .map_err(|_| io::Error::other("the thread opening a pinger panicked"))?
                })
                .collect()
        })
    }

    /// Sends one echo request to `to` with `sequence`.
    ///
    /// # Errors
    ///
    /// When it cannot leave: no route to `to`, say.
    pub fn send(&self, to: Ipv4Addr, sequence: u16) -> io::Result<()> {
        let request = echo_request(self.identifier, sequence);
        self.socket
            .send_to(&request, &SockAddr::from(SocketAddrV4::new(to, 0)))?;
        Ok(())
    }

    /// Reads every message waiting on the socket and passes on the echo
    /// replies to this pinger's requests.
    pub fn drain(&self, mut reply: impl FnMut(EchoReply)) {
        let mut buf = [0u8; 1500];
        loop {
            match (&self.socket).read(&mut buf) {
                Ok(len) => {
                    if let Some(echo) = parse_reply(&buf[..len], self.identifier) {
                        reply(echo);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

/// Pings each of `pairs` — (source, destination) indices: from
/// `pingers[source]` to `addresses[destination]` — up to `tries` times,
/// waiting up to `wait` for the replies of each try, and returns whether
/// each was answered (a pair naming a pinger or an address that is not
/// there never is). Stops early, with what it has, on a stop request
/// ([`interrupt`]).
pub fn ping_pairs(
    pingers: &[Pinger],
    addresses: &[Ipv4Addr],
    pairs: &[(usize, usize)],
    tries: usize,
    wait: Duration,
) -> Vec<bool> {
    // A request's sequence number names its pair within a chunk.
    pairs
        .chunks(SEQUENCES)
        .flat_map(|chunk| ping_chunk(pingers, addresses, chunk, tries, wait))
        .collect()
}

/// [`ping_pairs`] for at most [`SEQUENCES`] pairs.
fn ping_chunk(
    pingers: &[Pinger],
    addresses: &[Ipv4Addr],
    pairs: &[(usize, usize)],
    tries: usize,
    wait: Duration,
) -> Vec<bool> {
    let mut answered = vec![false; pairs.len()];
    let read = |answered: &mut [bool]| {
        for (source, pinger) in pingers.iter().enumerate() {
            pinger.drain(|reply| {
                let index = usize::from(reply.sequence);
                if let Some(&(from, to)) = pairs.get(index) {
                    if from == source && addresses.get(to) == Some(&reply.from) {
                        answered[index] = true;
                    }
                }
            });
        }
    };
    for _ in 0..tries {
        // Each source's pending pairs, in order, with their sequence.
        let mut pending: Vec<Vec<(u16, Ipv4Addr)>> = vec![Vec::new(); pingers.len()];
        for ((&(from, to), &done), sequence) in pairs.iter().zip(&answered).zip(0..=u16::MAX) {
            if let (false, Some(list), Some(&to)) = (done, pending.get_mut(from), addresses.get(to))
            {
                list.push((sequence, to));
            }
        }
        if pending.iter().all(Vec::is_empty) {
            break;
        }
        let waves = pending
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .div_ceil(WAVE);
        for wave in 0..waves {
            if interrupt::requested() {
                return answered;
            }
            for (pinger, list) in pingers.iter().zip(&pending) {
                for &(sequence, to) in list.iter().skip(wave * WAVE).take(WAVE) {
                    // A request that cannot leave is a try without a reply.
                    let _ = pinger.send(to, sequence);
                }
            }
            read(&mut answered);
        }
        let deadline = Instant::now() + wait;
        loop {
            thread::sleep(READ_EVERY);
            read(&mut answered);
            let done = pending
                .iter()
                .flatten()
                .all(|&(sequence, _)| answered[usize::from(sequence)]);
            if done || Instant::now() >= deadline || interrupt::requested() {
                break;
            }
        }
    }
    answered
}

/// An echo request: type, code, checksum, identifier, sequence, payload.
fn echo_request(identifier: u16, sequence: u16) -> [u8; REQUEST_LEN] {
    let mut request = [0u8; REQUEST_LEN];
    request[0] = ECHO_REQUEST;
    request[4..6].copy_from_slice(&identifier.to_be_bytes());
    request[6..8].copy_from_slice(&sequence.to_be_bytes());
    request[8..].copy_from_slice(PAYLOAD);
    let checksum = checksum(&request);
    request[2..4].copy_from_slice(&checksum.to_be_bytes());
    request
}

/// The echo reply with `identifier` in `packet`, an IPv4 packet as a raw
/// socket reads it (its header, then the ICMP message); `None` for
/// anything else.
fn parse_reply(packet: &[u8], identifier: u16) -> Option<EchoReply> {
    let first = *packet.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let header_len = usize::from(first & 0x0f) * 4;
    let source: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
    let icmp = packet.get(header_len..)?;
    if icmp.len() < 8 || icmp[0] != ECHO_REPLY || icmp[1] != 0 || checksum(icmp) != 0 {
        return None;
    }
    if u16::from_be_bytes([icmp[4], icmp[5]]) != identifier {
        return None;
    }
    Some(EchoReply {
        from: Ipv4Addr::from(source),
        sequence: u16::from_be_bytes([icmp[6], icmp[7]]),
    })
}

/// The Internet checksum (RFC 1071) of `bytes`: 0 over a message that
/// carries its own.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| {
            u32::from(u16::from_be_bytes([
                pair[0],
                pair.get(1).copied().unwrap_or(0),
            ]))
        })
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 packet that carries the reply to `request` from `from`.
    fn reply_packet(request: &[u8], from: Ipv4Addr) -> Vec<u8> {
        let mut icmp = request.to_vec();
        icmp[0] = ECHO_REPLY;
        icmp[2..4].copy_from_slice(&[0, 0]);
        let sum = checksum(&icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
        packet.extend_from_slice(&from.octets());
        packet.extend_from_slice(&[198, 19, 1, 1]);
        packet.extend_from_slice(&icmp);
        packet
    }

    #[test]
    fn a_request_carries_its_checksum_identifier_and_sequence() {
        let request = echo_request(0xbeef, 513);
        assert_eq!(request[0], ECHO_REQUEST);
        assert_eq!(checksum(&request), 0);
        assert_eq!(request[4..8], [0xbe, 0xef, 2, 1]);
        // RFC 1071's example: 0001 f203 f4f5 f6f7 sums to ddf2.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        // An odd length is padded with a zero byte.
        assert_eq!(checksum(&[0x01]), !0x0100);
    }

    #[test]
    fn only_a_reply_to_this_pinger_is_read_as_one() {
        let from = Ipv4Addr::new(198, 19, 2, 3);
        let request = echo_request(7, 42);
        let packet = reply_packet(&request, from);
        assert_eq!(
            parse_reply(&packet, 7),
            Some(EchoReply { from, sequence: 42 })
        );
        // Another pinger's identifier.
        assert_eq!(parse_reply(&packet, 8), None);
        // A request, not a reply (another host pinging this one).
        let mut incoming = packet.clone();
        incoming[20] = ECHO_REQUEST;
        assert_eq!(parse_reply(&incoming, 7), None);
        // A damaged reply, a cut one, and something not IPv4.
        let mut damaged = packet.clone();
        damaged[30] ^= 1;
        assert_eq!(parse_reply(&damaged, 7), None);
        assert_eq!(parse_reply(&packet[..25], 7), None);
        assert_eq!(parse_reply(&[0x60; 40], 7), None);
        assert_eq!(parse_reply(&[], 7), None);
    }
}
