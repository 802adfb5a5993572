//! Batched UDP I/O for the fast data path (Linux only): many datagrams per
//! system call.
//!
//! This module does not own a socket, spawn tasks or wait: it takes a
//! non-blocking [`UdpSocket`] the caller owns and turns one call into one (or
//! a few) system calls.
//!
//! ```text
//!   send_runs(buf = [A A A a|B|C C c], runs)          recv_batch(bufs, meta)
//!        |                                                  |
//!        | one sendmmsg: a message a run, with a            | one recvmmsg, a control
//!        | UDP_SEGMENT cmsg (GSO); without GSO a            | buffer per message; with
//!        v message a datagram                               v GRO a buffer holds many
//!   kernel splits into datagrams  ---- wire ---->      datagrams: split by segment_size
//! ```
//!
//! - Sending: [`BatchIo::send_runs`] sends runs of consecutive datagrams,
//!   each run to one destination and of one `segment_size` (its last
//!   datagram may be shorter), with UDP generic segmentation offload
//!   (`UDP_SEGMENT`) per run, all runs in one `sendmmsg` where they fit;
//!   without GSO each datagram is a message of its own. Whether GSO works is
//!   probed once when the [`BatchIo`] is made, and learnt from the first
//!   `EIO` / `EINVAL` of a GSO send (a device without checksum offload); the
//!   fall-back is logged once.
//! - Receiving: [`enable_gro`] asks the kernel to coalesce datagrams of a flow
//!   (`UDP_GRO`); [`recv_batch`] receives many messages with `recvmmsg` and
//!   reports for each its source, length and the `segment_size` to split it
//!   by.
//!
//! # Dual-stack sockets
//!
//! On an IPv6 socket, [`BatchIo::send_runs`] maps IPv4 destinations
//! (`::ffff:a.b.c.d`, as [`crate::sys::udp::destination_for`] does), and
//! sources come back IPv4-mapped (see [`crate::sys::udp::canonical`]): this
//! module keeps the IPv6 flow information and scope id the way the standard
//! library does.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use super::sockopt;

mod send;

pub(crate) use send::{Run, SendReport};

/// The most datagrams the kernel accepts in one GSO send (`UDP_MAX_SEGMENTS`).
pub(crate) const MAX_GSO_SEGMENTS: usize = 64;

/// The most payload bytes one GSO send may carry: a UDP datagram over IPv4
/// (the smaller of the two families) before segmentation, 65535 less the IPv4
/// and UDP headers.
pub(crate) const MAX_GSO_PAYLOAD: usize = 65_535 - 20 - 8;

/// The most messages one `sendmmsg` or `recvmmsg` call handles here.
pub(crate) const BATCH_SIZE: usize = 64;

/// Room for the control messages of one received message: the `UDP_GRO`
/// segment size, with space to spare for others the caller may enable.
const RECV_CONTROL_LEN: usize = 128;

/// A control buffer aligned for `cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct ControlBuffer<const N: usize>([u8; N]);

/// Whether [`BatchIo`] may use UDP GSO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GsoMode {
    /// Use GSO when the kernel supports it (probed once).
    Probe,
    /// Never use GSO: send with `sendmmsg` (for hosts where it misbehaves,
    /// and to test the fall-back).
    Disabled,
}

/// What the kernel offers this socket, as probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capabilities {
    /// Sends use UDP generic segmentation offload (`UDP_SEGMENT`).
    pub gso: bool,
    /// The kernel accepts `UDP_GRO` (see [`enable_gro`]).
    pub gro: bool,
    /// The most datagrams one send hands the kernel as one unit: 64 with GSO,
    /// 1 without.
    pub max_segments: usize,
}

/// Batched sending on UDP sockets, remembering whether GSO works.
///
/// Shared by reference between the tasks that send; the GSO flag only ever
/// goes from on to off.
#[derive(Debug)]
pub(crate) struct BatchIo {
    gso: AtomicBool,
    gro: bool,
    /// Whether the socket is IPv6, so IPv4 destinations are mapped.
    ipv6: bool,
}

/// What [`recv_batch`] learnt about one received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecvMeta {
    /// Where the message came from, as the kernel gave it (IPv4-mapped on a
    /// dual-stack socket).
    pub source: SocketAddr,
    /// The bytes written to the buffer.
    pub len: usize,
    /// The size of each datagram in the buffer: the GRO segment size when the
    /// kernel coalesced datagrams, else `len`. The last may be shorter.
    pub segment_size: usize,
    /// The message did not fit in its buffer and was cut (`MSG_TRUNC`): the
    /// caller should drop it.
    pub truncated: bool,
}

impl Default for RecvMeta {
    fn default() -> Self {
        Self {
            source: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            len: 0,
            segment_size: 0,
            truncated: false,
        }
    }
}

impl RecvMeta {
    /// The datagrams of this message in `buf` (the buffer it was received
    /// into), in the order they were sent.
    #[cfg(test)]
    pub(crate) fn datagrams<'a>(&self, buf: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let len = self.len.min(buf.len());
        // `chunks` needs a non-zero size; an empty message has no datagrams
        // of any size but one empty one.
        let size = self.segment_size.max(1);
        let empty = (len == 0).then_some(&buf[..0]);
        buf[..len].chunks(size).chain(empty)
    }
}

impl BatchIo {
    /// Probes what the kernel offers `socket` and, with [`GsoMode::Disabled`],
    /// turns GSO off whatever it offers. Logs once when GSO is unavailable.
    pub(crate) fn new(socket: &UdpSocket, mode: GsoMode) -> Self {
        let gso = match mode {
            GsoMode::Probe => {
                let supported = probe_gso(socket);
                if !supported {
                    tracing::info!("UDP GSO unavailable: sending one datagram a message");
                }
                supported
            }
            GsoMode::Disabled => false,
        };
        let gro = probe_gro(socket);
        Self {
            gso: AtomicBool::new(gso),
            gro,
            ipv6: socket.local_addr().is_ok_and(|local| local.is_ipv6()),
        }
    }

    /// What this socket may use now.
    pub(crate) fn capabilities(&self) -> Capabilities {
        let gso = self.gso.load(Ordering::Relaxed);
        Capabilities {
            gso,
            gro: self.gro,
            max_segments: if gso { MAX_GSO_SEGMENTS } else { 1 },
        }
    }

    fn disable_gso(&self, error: &io::Error) {
        if self.gso.swap(false, Ordering::Relaxed) {
            tracing::info!(%error, "UDP GSO refused by the kernel: sending one datagram a message");
        }
    }
}

/// Asks the kernel to coalesce datagrams of a flow arriving on `socket`
/// (`UDP_GRO`, Linux 5.0). Buffers given to [`recv_batch`] should then hold
/// 64 KiB, or coalesced messages arrive truncated.
///
/// Returns whether the kernel accepted.
pub(crate) fn enable_gro(socket: &UdpSocket) -> bool {
    sockopt::set_int(socket, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok()
}

/// Receives up to `min(bufs.len(), meta.len(), BATCH_SIZE)` waiting messages
/// with one `recvmmsg`, filling `bufs[i]` and `meta[i]` for each.
///
/// Returns how many messages were received, at least one.
///
/// # Errors
///
/// `WouldBlock` when nothing is waiting; otherwise as `recvmmsg(2)`.
pub(crate) fn recv_batch<B: AsMut<[u8]>>(
    socket: &UdpSocket,
    bufs: &mut [B],
    meta: &mut [RecvMeta],
) -> io::Result<usize> {
    let count = bufs.len().min(meta.len()).min(BATCH_SIZE);
    if count == 0 {
        return Ok(0);
    }
    // SAFETY: all-zero bytes are valid for these plain C structs (null
    // pointers, zero lengths, family AF_UNSPEC).
    let mut names: [libc::sockaddr_storage; BATCH_SIZE] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut iovecs: [libc::iovec; BATCH_SIZE] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut headers: [libc::mmsghdr; BATCH_SIZE] = unsafe { mem::zeroed() };
    let mut controls = [ControlBuffer([0u8; RECV_CONTROL_LEN]); BATCH_SIZE];
    for i in 0..count {
        let buf = bufs[i].as_mut();
        iovecs[i] = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let header = &mut headers[i].msg_hdr;
        header.msg_name = (&raw mut names[i]).cast();
        header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        header.msg_iov = &raw mut iovecs[i];
        header.msg_iovlen = 1;
        header.msg_control = controls[i].0.as_mut_ptr().cast();
        header.msg_controllen = RECV_CONTROL_LEN as _;
    }
    // SAFETY: the first `count` headers point at live, writable name,
    // iovec and control buffers of the lengths they state, each iovec at a
    // buffer borrowed mutably from `bufs`; all outlive the call. The null
    // timeout means none.
    let received = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    let received = received as usize;
    for i in 0..received {
        let header = &headers[i].msg_hdr;
        let len = headers[i].msg_len as usize;
        let source = socket_addr_from(&names[i], header.msg_namelen).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected source address family",
            )
        })?;
        let segment_size = gro_segment_size(header).unwrap_or(len);
        meta[i] = RecvMeta {
            source,
            len,
            segment_size,
            truncated: header.msg_flags & libc::MSG_TRUNC != 0,
        };
    }
    Ok(received)
}

/// Whether the kernel knows `UDP_SEGMENT` for this socket.
fn probe_gso(socket: &UdpSocket) -> bool {
    sockopt::get_int(socket, libc::SOL_UDP, libc::UDP_SEGMENT).is_ok()
}

/// Whether the kernel knows `UDP_GRO`, tried on a fresh socket of the same
/// family so that `socket` itself is left as it is.
fn probe_gro(socket: &UdpSocket) -> bool {
    let family = match socket.local_addr() {
        Ok(SocketAddr::V6(_)) => libc::AF_INET6,
        _ => libc::AF_INET,
    };
    // SAFETY: plain system call; the descriptor it returns is owned below.
    let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    let probe = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    sockopt::set_int(&probe, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok()
}

/// The errors with which a kernel or device refuses GSO.
fn is_gso_refusal(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EIO | libc::EINVAL))
}

/// The `UDP_GRO` segment size among the control messages of `header`.
fn gro_segment_size(header: &libc::msghdr) -> Option<usize> {
    if header.msg_control.is_null() || header.msg_controllen == 0 {
        return None;
    }
    // SAFETY: `header` was filled by recvmmsg: its control buffer is live
    // and `msg_controllen` bytes of it are control messages, which
    // CMSG_FIRSTHDR / CMSG_NXTHDR walk within bounds.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(header) };
    // SAFETY: CMSG_LEN is arithmetic on its argument.
    let int_len = unsafe { libc::CMSG_LEN(size_of::<libc::c_int>() as libc::c_uint) };
    while !cmsg.is_null() {
        // SAFETY: non-null `cmsg` from CMSG_FIRSTHDR / CMSG_NXTHDR points at
        // a whole `cmsghdr` inside the control buffer.
        let (level, kind, len) =
            unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len) };
        if level == libc::SOL_UDP && kind == libc::UDP_GRO && len >= int_len as _ {
            // SAFETY: the message is `len` bytes, enough for its `c_int`
            // payload at CMSG_DATA, which may be unaligned.
            let size = unsafe { libc::CMSG_DATA(cmsg).cast::<libc::c_int>().read_unaligned() };
            return usize::try_from(size).ok().filter(|&size| size > 0);
        }
        // SAFETY: as for CMSG_FIRSTHDR above.
        cmsg = unsafe { libc::CMSG_NXTHDR(header, cmsg) };
    }
    None
}

/// `addr` as a C socket address and its length. The IPv6 flow information
/// and scope id are copied as the standard library does (flow information
/// as given, not byte-swapped).
fn sockaddr_from(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid `sockaddr_storage`.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger than and aligned for every
            // socket address, `sockaddr_in` among them.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in>().write(sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above, for `sockaddr_in6`.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in6>().write(sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The socket address in `storage` of `len` bytes, if IPv4 or IPv6.
fn socket_addr_from(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a `sockaddr_in`, and
            // `sockaddr_storage` is aligned for it.
            let sin = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for `sockaddr_in6`.
            let sin6 = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
