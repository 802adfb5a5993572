//! Sending a batch: runs of datagrams, each run to one destination, all in
//! one buffer, handed to the kernel with as few `sendmmsg` calls as it
//! allows.
//!
//! ```text
//!   buf  = [ run 0: A A A a | run 1: B | run 2: C C c | ... ]
//!   runs = [ (A, 0.., 1452) , (B, .., 148) , (C, .., 1452) ]
//!            |                 |              |
//!            v                 v              v
//!   one sendmmsg: [ msg A + UDP_SEGMENT ] [ msg B ] [ msg C + UDP_SEGMENT ]
//! ```
//!
//! A run becomes one message with a `UDP_SEGMENT` control message (GSO), cut
//! into several when it exceeds what one GSO send may carry; a run of one
//! datagram, or any run once GSO is off, becomes one message a datagram. So
//! data for many peers, handshakes and keepalives leave together in one
//! system call when there are at most [`BATCH_SIZE`] messages.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;

use super::{
    BATCH_SIZE, BatchIo, ControlBuffer, MAX_GSO_PAYLOAD, MAX_GSO_SEGMENTS, is_gso_refusal,
};

/// Consecutive datagrams to one destination in a send buffer, all of
/// `segment_size` bytes but perhaps the last, which may be shorter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// Where the datagrams go (an IPv4 address also on an IPv6 socket: it is
    /// mapped when sent).
    pub destination: SocketAddr,
    /// Where the first datagram starts in the buffer.
    pub start: usize,
    /// The bytes of all the datagrams together.
    pub len: usize,
    /// The size of every datagram but perhaps the last.
    pub segment_size: usize,
}

impl Run {
    /// How many datagrams the run holds.
    pub(crate) fn datagrams(&self) -> usize {
        self.len.div_ceil(self.segment_size.max(1))
    }
}

/// What became of a batch.
#[derive(Debug, Default)]
pub(crate) struct SendReport {
    /// Datagrams the kernel took.
    pub sent: usize,
    /// Datagrams not sent: their destination was refused, the socket's
    /// buffer was full, or their run was malformed.
    pub failed: usize,
    /// The last error met, if any.
    pub error: Option<io::Error>,
}

/// One message of a `sendmmsg`: a slice of a run's bytes.
#[derive(Debug, Clone, Copy)]
struct Message {
    destination: SocketAddr,
    start: usize,
    len: usize,
    /// `Some(size)` for a GSO message of several datagrams.
    gso_size: Option<u16>,
    datagrams: usize,
}

/// Where sending stands: a run, and the offset in the buffer reached in it.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    run: usize,
    offset: usize,
}

impl BatchIo {
    /// Sends the datagrams of `runs`, laid out in `buf`, in order: with UDP
    /// GSO one message a run (cut at [`MAX_GSO_SEGMENTS`] datagrams and
    /// [`MAX_GSO_PAYLOAD`] bytes), without it one message a datagram, up to
    /// [`BATCH_SIZE`] messages a `sendmmsg`. IPv4 destinations are mapped
    /// into IPv6 when the socket is IPv6.
    ///
    /// Never stops at one destination's error: a message the kernel refuses
    /// (an unreachable network, say) is counted as failed and the rest go
    /// on. A full socket buffer (`WouldBlock`) fails what is left. A GSO send
    /// refused with `EIO` or `EINVAL` turns GSO off for good and is retried
    /// without it; as the kernel also answers `EINVAL` to a segment larger
    /// than the device MTU allows, segments should fit the path MTU. A run
    /// with a zero segment size or outside `buf` fails as one datagram.
    pub(crate) fn send_runs(&self, socket: &UdpSocket, buf: &[u8], runs: &[Run]) -> SendReport {
        let fd = socket.as_raw_fd();
        let mut report = SendReport {
            failed: runs.iter().filter(|run| !run.is_within(buf)).count(),
            ..SendReport::default()
        };
        let mut cursor = Cursor::default();
        let mut messages = [Message::EMPTY; BATCH_SIZE];
        // The cursor after each planned message.
        let mut after = [Cursor::default(); BATCH_SIZE];
        loop {
            let gso = self.gso.load(Ordering::Relaxed);
            let mut planned = 0;
            let mut next = cursor;
            while planned < BATCH_SIZE {
                let Some(message) = next.next_message(buf, runs, gso) else {
                    break;
                };
                messages[planned] = message;
                after[planned] = next;
                planned += 1;
            }
            if planned == 0 {
                return report;
            }
            match send_messages(fd, self.ipv6, buf, &messages[..planned]) {
                Ok(sent) => {
                    let sent = sent.clamp(1, planned);
                    report.sent += messages[..sent].iter().map(|m| m.datagrams).sum::<usize>();
                    cursor = after[sent - 1];
                }
                Err(error) if messages[0].gso_size.is_some() && is_gso_refusal(&error) => {
                    self.disable_gso(&error);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    while let Some(message) = cursor.next_message(buf, runs, false) {
                        report.failed += message.datagrams;
                    }
                    report.error = Some(error);
                    return report;
                }
                Err(error) => {
                    report.failed += messages[0].datagrams;
                    cursor = after[0];
                    report.error = Some(error);
                }
            }
        }
    }
}

impl Run {
    /// Whether the run can be sent: a segment size, and its bytes in `buf`.
    fn is_within(&self, buf: &[u8]) -> bool {
        self.segment_size > 0
            && self
                .start
                .checked_add(self.len)
                .is_some_and(|end| end <= buf.len())
    }
}

impl Cursor {
    /// The next message from here, moving past it: the rest of the run, or
    /// as much of it as one GSO message carries, or (`gso` false, or a run
    /// of one datagram) its next datagram. Runs that are not
    /// [`Run::is_within`] the buffer are skipped.
    fn next_message(&mut self, buf: &[u8], runs: &[Run], gso: bool) -> Option<Message> {
        loop {
            let run = runs.get(self.run)?;
            let end = run.start + run.len;
            let offset = self.offset.max(run.start);
            if !run.is_within(buf) || offset >= end {
                *self = Cursor {
                    run: self.run + 1,
                    offset: 0,
                };
                continue;
            }
            let per_message = if gso {
                (MAX_GSO_PAYLOAD / run.segment_size).clamp(1, MAX_GSO_SEGMENTS)
            } else {
                1
            };
            let len = (end - offset).min(per_message * run.segment_size);
            // A GSO message carries more than one datagram, each of a size
            // the control message can state.
            let gso_size = u16::try_from(run.segment_size)
                .ok()
                .filter(|_| len > run.segment_size);
            let len = if gso_size.is_some() {
                len
            } else {
                len.min(run.segment_size)
            };
            self.offset = offset + len;
            return Some(Message {
                destination: run.destination,
                start: offset,
                len,
                gso_size,
                datagrams: len.div_ceil(run.segment_size),
            });
        }
    }
}

impl Message {
    const EMPTY: Self = Self {
        destination: SocketAddr::V4(std::net::SocketAddrV4::new(
            std::net::Ipv4Addr::UNSPECIFIED,
            0,
        )),
        start: 0,
        len: 0,
        gso_size: None,
        datagrams: 0,
    };
}

/// One `sendmmsg` of `messages`; returns how many the kernel took.
fn send_messages(fd: RawFd, ipv6: bool, buf: &[u8], messages: &[Message]) -> io::Result<usize> {
    let count = messages.len().min(BATCH_SIZE);
    // SAFETY: all-zero bytes are valid for these plain C structs (null
    // pointers, zero lengths, family AF_UNSPEC).
    let mut names: [libc::sockaddr_storage; BATCH_SIZE] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut iovecs: [libc::iovec; BATCH_SIZE] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut headers: [libc::mmsghdr; BATCH_SIZE] = unsafe { std::mem::zeroed() };
    let mut controls = [ControlBuffer([0u8; 32]); BATCH_SIZE];
    // SAFETY: CMSG_SPACE and CMSG_LEN are arithmetic on their argument.
    let (space, cmsg_len) = unsafe {
        (
            libc::CMSG_SPACE(size_of::<u16>() as libc::c_uint) as usize,
            libc::CMSG_LEN(size_of::<u16>() as libc::c_uint) as usize,
        )
    };
    debug_assert!(space <= controls[0].0.len());
    for (i, message) in messages.iter().take(count).enumerate() {
        let (name, name_len) = super::sockaddr_from(mapped(ipv6, message.destination));
        names[i] = name;
        // `plan` keeps every message inside `buf`.
        let bytes = &buf[message.start..message.start + message.len];
        iovecs[i] = libc::iovec {
            iov_base: bytes.as_ptr().cast_mut().cast(),
            iov_len: bytes.len(),
        };
        let header = &mut headers[i].msg_hdr;
        header.msg_name = (&raw mut names[i]).cast();
        header.msg_namelen = name_len;
        header.msg_iov = &raw mut iovecs[i];
        header.msg_iovlen = 1;
        if let Some(gso_size) = message.gso_size {
            header.msg_control = controls[i].0.as_mut_ptr().cast();
            header.msg_controllen = space as _;
            // SAFETY: `header` describes a control buffer of `space` bytes,
            // enough for one `cmsghdr` and a `u16`, aligned for `cmsghdr`;
            // CMSG_FIRSTHDR is therefore not null and CMSG_DATA points inside
            // the buffer.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(header);
                (*cmsg).cmsg_level = libc::SOL_UDP;
                (*cmsg).cmsg_type = libc::UDP_SEGMENT;
                (*cmsg).cmsg_len = cmsg_len as _;
                libc::CMSG_DATA(cmsg)
                    .cast::<u16>()
                    .write_unaligned(gso_size);
            }
        }
    }
    // SAFETY: the first `count` headers point at live names, iovecs (over
    // `buf`, which the kernel only reads) and control buffers of the lengths
    // they state; all outlive the call.
    let sent = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), count as libc::c_uint, 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// `destination` as an IPv6 socket must be given it: IPv4 mapped.
fn mapped(ipv6: bool, destination: SocketAddr) -> SocketAddr {
    match destination.ip() {
        IpAddr::V4(v4) if ipv6 => {
            SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), destination.port())
        }
        _ => destination,
    }
}
