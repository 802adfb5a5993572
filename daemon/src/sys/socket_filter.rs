//! A classic BPF socket filter that sheds, in the kernel, most handshake
//! messages that carry no cookie, before the data path reads them.
//!
//! Under a flood of initiations from spoofed sources, what costs the
//! responder most is no longer the cryptography (it answers with cookie
//! replies, a budget a turn) but reading the flood: every datagram is
//! copied out of the socket, looked at, and dropped when the handshake
//! queue is full. The filter drops all but one in `one_in` of the
//! initiations and responses whose `mac2` is zero, at random, when they
//! reach the socket, so the kernel frees them in its receive path and the
//! data-path thread never sees them. What gets through is what the queue
//! would have taken anyway, at random instead of first come, so a new
//! peer's chance of a cookie reply is the same.
//!
//! A message whose `mac2` is not zero always passes: it may carry a cookie
//! the engine gave, and the engine checks it (a peer's retry after a
//! cookie reply is never shed here). Everything that is not a handshake
//! message of the exact length passes too: data, cookie replies, and
//! datagrams the kernel coalesced (UDP GRO).
//!
//! The filter sees the datagram from its UDP header on (8 bytes), for IPv4
//! and IPv6 alike.

use std::io;
use std::os::fd::AsFd;

use sentrymesh_tunnel::{INITIATION_LEN, RESPONSE_LEN};

use super::sockopt;

/// The UDP header, which the filter's offsets count.
const UDP_HEADER_LEN: u32 = 8;

/// Returns the whole datagram to the socket.
const PASS: u32 = u32::MAX;
/// Drops the datagram.
const DROP: u32 = 0;

/// Where a conditional jump goes: to the next instruction, or to a label.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Next,
    Label(Label),
}

/// The places the filter jumps to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Label {
    Response,
    Sample,
    Pass,
    Drop,
}

/// A filter being written: instructions whose jumps name labels, resolved
/// to offsets at the end.
#[derive(Default)]
struct Program {
    ops: Vec<(u16, Target, Target, u32)>,
    labels: Vec<(Label, usize)>,
}

impl Program {
    fn label(&mut self, label: Label) {
        self.labels.push((label, self.ops.len()));
    }

    fn op(&mut self, code: u32, k: u32) {
        self.jump(code, Target::Next, Target::Next, k);
    }

    fn jump(&mut self, code: u32, jt: Target, jf: Target, k: u32) {
        // Opcodes are sums of 8-bit constants.
        let code = u16::try_from(code).expect("a classic BPF opcode fits 16 bits");
        self.ops.push((code, jt, jf, k));
    }

    /// The instructions, with each jump an offset from the next one.
    fn assemble(self) -> Vec<libc::sock_filter> {
        let offset = |from: usize, target: Target| match target {
            Target::Next => 0,
            Target::Label(label) => {
                let (_, to) = self
                    .labels
                    .iter()
                    .find(|(name, _)| *name == label)
                    .copied()
                    .unwrap_or_else(|| panic!("label {label:?} is placed"));
                assert!(to > from, "classic BPF jumps only forward");
                u8::try_from(to - from - 1).expect("a jump of at most 255 instructions")
            }
        };
        self.ops
            .iter()
            .enumerate()
            .map(|(at, &(code, jt, jf, k))| libc::sock_filter {
                code,
                jt: offset(at, jt),
                jf: offset(at, jf),
                k,
            })
            .collect()
    }
}

/// The filter: passes a handshake message (an initiation or a response, by
/// type and exact length) whose `mac2` is zero one time in `one_in`, at
/// random, and everything else always.
///
/// # Panics
///
/// When `one_in` is below 2: a filter that passes everything is no filter.
fn program(one_in: u32) -> Vec<libc::sock_filter> {
    assert!(one_in >= 2, "shedding passes one in at least two");
    let ld_len = libc::BPF_LD | libc::BPF_W | libc::BPF_LEN;
    let ld_word = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    // The ancillary offset is negative; cBPF reads `k` as its two's complement.
    let random = u32::from_ne_bytes((libc::SKF_AD_OFF + libc::SKF_AD_RANDOM).to_ne_bytes());
    let pass = Target::Label(Label::Pass);
    let mut p = Program::default();
    // One message kind: its exact length, its type word (read big-endian:
    // the type in the first byte, then three reserved zero bytes), and its
    // mac2, the last 16 bytes, all zero; else `otherwise` (with the length
    // still loaded).
    let message = |p: &mut Program, len: usize, kind: u32, otherwise: Target| {
        let len = u32::try_from(len).expect("a handshake message is short");
        p.op(ld_len, 0);
        p.jump(jeq, Target::Next, otherwise, UDP_HEADER_LEN + len);
        p.op(ld_word, UDP_HEADER_LEN);
        p.jump(jeq, Target::Next, pass, kind << 24);
        for word in 0..4 {
            p.op(ld_word, UDP_HEADER_LEN + len - 16 + 4 * word);
            let zero = if word == 3 {
                Target::Label(Label::Sample)
            } else {
                Target::Next
            };
            p.jump(jeq, zero, pass, 0);
        }
    };
    message(&mut p, INITIATION_LEN, 1, Target::Label(Label::Response));
    p.label(Label::Response);
    message(&mut p, RESPONSE_LEN, 2, pass);
    p.label(Label::Sample);
    p.op(ld_word, random);
    p.op(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, one_in);
    p.jump(jeq, pass, Target::Label(Label::Drop), 0);
    p.label(Label::Pass);
    p.op(ret, PASS);
    p.label(Label::Drop);
    p.op(ret, DROP);
    p.assemble()
}

/// Sheds all but one in `one_in` handshake messages without a cookie
/// arriving at `socket`, at random (see the module's documentation);
/// `one_in` of 1 (or 0) removes the filter, and every datagram passes.
///
/// # Errors
///
/// As `setsockopt(2)`.
pub(crate) fn shed_unproven_handshakes(socket: &impl AsFd, one_in: u32) -> io::Result<()> {
    if one_in <= 1 {
        return match sockopt::set_int(socket, libc::SOL_SOCKET, libc::SO_DETACH_FILTER, 0) {
            // No filter was attached.
            Err(error) if error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            result => result,
        };
    }
    let mut filter = program(one_in);
    let program = libc::sock_fprog {
        len: u16::try_from(filter.len()).expect("the filter is a few dozen instructions"),
        filter: filter.as_mut_ptr(),
    };
    sockopt::set_filter(socket, &program)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::UdpSocket;
    use std::time::Duration;

    use super::*;

    /// A datagram of `kind` and `len` bytes, its bytes 4..8 (a sender
    /// index, which the filter does not read) saying which it is, and its
    /// last 16 bytes (`mac2` in a handshake message) `mac2`.
    fn datagram(id: u32, kind: u8, len: usize, mac2: [u8; 16]) -> Vec<u8> {
        let mut bytes = vec![0; len];
        bytes[0] = kind;
        if len >= 8 {
            bytes[4..8].copy_from_slice(&id.to_le_bytes());
        }
        if len >= 16 {
            bytes[len - 16..].copy_from_slice(&mac2);
        }
        bytes
    }

    /// The ids of `datagrams` that reach a socket filtered with `one_in`,
    /// and how many shorter than an id reach it; sent a few at a time so
    /// the receive buffer never overflows.
    fn passed(one_in: u32, datagrams: &[Vec<u8>]) -> (BTreeSet<u32>, usize) {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        shed_unproven_handshakes(&receiver, one_in).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let end = datagram(u32::MAX, 4, 32, [0; 16]);
        let mut ids = BTreeSet::new();
        let mut short = 0;
        let mut buf = [0; 2048];
        for chunk in datagrams.chunks(32) {
            for datagram in chunk {
                sender.send_to(datagram, to).unwrap();
            }
            // A data message after each chunk: it always passes, and once
            // it is read, everything sent before it was read or dropped.
            sender.send_to(&end, to).unwrap();
            loop {
                let len = receiver.recv(&mut buf).unwrap();
                if len < 8 {
                    short += 1;
                    continue;
                }
                let id = u32::from_le_bytes(buf[4..8].try_into().unwrap());
                if id == u32::MAX {
                    break;
                }
                ids.insert(id);
            }
        }
        (ids, short)
    }

    #[test]
    fn only_handshake_messages_without_a_cookie_are_shed() {
        let mut mac2 = [[0; 16]; 5];
        for (word, mac2) in mac2.iter_mut().enumerate().skip(1) {
            mac2[4 * (word - 1) + 3] = 1;
        }
        let mut kept = Vec::new();
        let mut shed = Vec::new();
        for (len, kind) in [(INITIATION_LEN, 1), (RESPONSE_LEN, 2)] {
            let id = u32::try_from(len).unwrap() * 10;
            shed.push(datagram(id, kind, len, mac2[0]));
            // A non-zero byte in any of mac2's four words.
            for (word, mac2) in mac2.iter().enumerate().skip(1) {
                kept.push(datagram(
                    id + u32::try_from(word).unwrap(),
                    kind,
                    len,
                    *mac2,
                ));
            }
            // One byte short or long, or the other kind's type.
            kept.push(datagram(id + 5, kind, len - 1, mac2[0]));
            kept.push(datagram(id + 6, kind, len + 1, mac2[0]));
            kept.push(datagram(id + 7, 3 - kind, len, mac2[0]));
            // A reserved byte set.
            let mut reserved = datagram(id + 8, kind, len, mac2[0]);
            reserved[1] = 1;
            kept.push(reserved);
        }
        // Data and a cookie reply of an initiation's length, and the
        // shortest datagrams, which the filter must not read past.
        kept.push(datagram(9, 4, INITIATION_LEN, mac2[0]));
        kept.push(datagram(8, 3, 64, mac2[0]));
        let short = [vec![1], vec![], vec![2, 0, 0]];

        let ids = |datagrams: &[Vec<u8>]| -> BTreeSet<u32> {
            datagrams
                .iter()
                .map(|d| u32::from_le_bytes(d[4..8].try_into().unwrap()))
                .collect()
        };
        let mut all = kept.clone();
        all.extend(shed.iter().cloned());
        all.extend(short.iter().cloned());
        // Almost never a pass by chance: one in four billion.
        assert_eq!(passed(u32::MAX, &all), (ids(&kept), short.len()));
        // Without the filter, everything passes.
        let everything = ids(&kept).union(&ids(&shed)).copied().collect();
        assert_eq!(passed(1, &all), (everything, short.len()));
    }

    #[test]
    fn one_in_n_is_kept_at_random() {
        let flood: Vec<Vec<u8>> = (0..2000)
            .map(|id| datagram(id, 1, INITIATION_LEN, [0; 16]))
            .collect();
        let kept = passed(4, &flood).0.len();
        // 500 expected, with a standard deviation of about 19.
        assert!(
            (350..650).contains(&kept),
            "{kept} of 2000 kept, one in 4 expected"
        );
    }

    #[test]
    fn the_filter_is_replaced_and_removed() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        shed_unproven_handshakes(&socket, 1).unwrap();
        shed_unproven_handshakes(&socket, 8).unwrap();
        shed_unproven_handshakes(&socket, 1024).unwrap();
        shed_unproven_handshakes(&socket, 1).unwrap();
        shed_unproven_handshakes(&socket, 1).unwrap();
    }
}
