//! A classic BPF socket filter that sheds, in the kernel, most handshake
//! messages of a flood before the data path reads them.
//!
//! Under a flood of initiations from spoofed sources, what costs the
//! responder most is no longer the cryptography (it answers with cookie
//! replies, a budget a turn) but reading the flood: every datagram is
//! copied out of the socket, looked at, and dropped when the handshake
//! queue is full. The filter drops all but one in N of the initiations and
//! responses, at random, when they reach the socket, so the kernel frees
//! them in its receive path and the data-path thread never sees them. What
//! gets through is what the queue would have taken anyway, at random
//! instead of first come, so a new peer's chance of a cookie reply is the
//! same.
//!
//! A filter cannot check a cookie (a MAC keyed with a secret of the
//! engine's), but it can tell a message whose `mac2` is zero (its sender
//! has no cookie) from one whose `mac2` is set (a cookie, or a forgery of
//! one): each kind has its own N ([`ShedRates`]), so a flood without
//! cookies never sheds a peer's retry with the cookie it was given.
//! Everything that is not a handshake message of the exact length passes
//! always: data, cookie replies, and datagrams the kernel coalesced (UDP
//! GRO).
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

/// One in how many handshake messages of each kind reach the socket; 1:
/// all of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShedRates {
    /// Of initiations and responses whose `mac2` is zero.
    pub(crate) no_cookie: u32,
    /// Of initiations and responses whose `mac2` is set.
    pub(crate) claimed_cookie: u32,
}

impl ShedRates {
    /// Nothing shed.
    pub(crate) const NONE: Self = Self {
        no_cookie: 1,
        claimed_cookie: 1,
    };

    /// Whether any message is shed.
    pub(crate) fn sheds(self) -> bool {
        self.no_cookie > 1 || self.claimed_cookie > 1
    }
}

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
    SampleNoCookie,
    SampleClaimedCookie,
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
/// type and exact length) one time in `rates.no_cookie` at random if its
/// `mac2` is zero, one time in `rates.claimed_cookie` if not, and
/// everything else always.
///
/// # Panics
///
/// When `rates` shed nothing: a filter that passes everything is no filter.
fn program(rates: ShedRates) -> Vec<libc::sock_filter> {
    assert!(rates.sheds(), "a filter sheds something");
    let ld_len = libc::BPF_LD | libc::BPF_W | libc::BPF_LEN;
    let ld_word = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    // The ancillary offset is negative; cBPF reads `k` as its two's complement.
    let random = u32::from_ne_bytes((libc::SKF_AD_OFF + libc::SKF_AD_RANDOM).to_ne_bytes());
    let pass = Target::Label(Label::Pass);
    // Where a message of each kind goes: straight through when its kind
    // is not shed.
    let sample = |one_in: u32, label: Label| {
        if one_in > 1 {
            Target::Label(label)
        } else {
            pass
        }
    };
    let no_cookie = sample(rates.no_cookie, Label::SampleNoCookie);
    let claimed_cookie = sample(rates.claimed_cookie, Label::SampleClaimedCookie);
    let mut p = Program::default();
    // One message kind: its exact length, its type word (read big-endian:
    // the type in the first byte, then three reserved zero bytes), and its
    // mac2, the last 16 bytes, zero or not; else `otherwise` (with the
    // length still loaded).
    let message = |p: &mut Program, len: usize, kind: u32, otherwise: Target| {
        let len = u32::try_from(len).expect("a handshake message is short");
        p.op(ld_len, 0);
        p.jump(jeq, Target::Next, otherwise, UDP_HEADER_LEN + len);
        p.op(ld_word, UDP_HEADER_LEN);
        p.jump(jeq, Target::Next, pass, kind << 24);
        for word in 0..4 {
            p.op(ld_word, UDP_HEADER_LEN + len - 16 + 4 * word);
            let zero = if word == 3 { no_cookie } else { Target::Next };
            p.jump(jeq, zero, claimed_cookie, 0);
        }
    };
    message(&mut p, INITIATION_LEN, 1, Target::Label(Label::Response));
    p.label(Label::Response);
    message(&mut p, RESPONSE_LEN, 2, pass);
    // Passes one in `one_in`: a random word modulo `one_in` is zero.
    for (one_in, label) in [
        (rates.no_cookie, Label::SampleNoCookie),
        (rates.claimed_cookie, Label::SampleClaimedCookie),
    ] {
        if one_in > 1 {
            p.label(label);
            p.op(ld_word, random);
            p.op(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, one_in);
            p.jump(jeq, pass, Target::Label(Label::Drop), 0);
        }
    }
    p.label(Label::Pass);
    p.op(ret, PASS);
    p.label(Label::Drop);
    p.op(ret, DROP);
    p.assemble()
}

/// Sheds handshake messages arriving at `socket` as `rates` says, at
/// random (see the module's documentation); rates that shed nothing
/// remove the filter, and every datagram passes.
///
/// # Errors
///
/// As `setsockopt(2)`.
pub(crate) fn shed_handshakes(socket: &impl AsFd, rates: ShedRates) -> io::Result<()> {
    if !rates.sheds() {
        return match sockopt::set_int(socket, libc::SOL_SOCKET, libc::SO_DETACH_FILTER, 0) {
            // No filter was attached.
            Err(error) if error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            result => result,
        };
    }
    let mut filter = program(rates);
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

    /// Rates of `no_cookie` and `claimed_cookie`.
    fn rates(no_cookie: u32, claimed_cookie: u32) -> ShedRates {
        ShedRates {
            no_cookie,
            claimed_cookie,
        }
    }

    /// The ids of `datagrams` that reach a socket filtered with `rates`,
    /// and how many shorter than an id reach it; sent a few at a time so
    /// the receive buffer never overflows.
    fn passed(rates: ShedRates, datagrams: &[Vec<u8>]) -> (BTreeSet<u32>, usize) {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        shed_handshakes(&receiver, rates).unwrap();
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

    /// Handshake messages whose `mac2` is zero, those whose `mac2` is set
    /// (a non-zero byte in each of its four words in turn), and datagrams
    /// no rate applies to: near misses of each kind (a byte short or long,
    /// the other kind's type, a reserved byte set), data and a cookie
    /// reply.
    fn kinds() -> [Vec<Vec<u8>>; 3] {
        let mut mac2 = [[0; 16]; 5];
        for (word, mac2) in mac2.iter_mut().enumerate().skip(1) {
            mac2[4 * (word - 1) + 3] = 1;
        }
        let (mut no_cookie, mut claimed, mut others) = (Vec::new(), Vec::new(), Vec::new());
        for (len, kind) in [(INITIATION_LEN, 1), (RESPONSE_LEN, 2)] {
            let id = u32::try_from(len).unwrap() * 10;
            no_cookie.push(datagram(id, kind, len, mac2[0]));
            for (word, mac2) in mac2.iter().enumerate().skip(1) {
                let id = id + u32::try_from(word).unwrap();
                claimed.push(datagram(id, kind, len, *mac2));
            }
            others.push(datagram(id + 5, kind, len - 1, mac2[0]));
            others.push(datagram(id + 6, kind, len + 1, mac2[0]));
            others.push(datagram(id + 7, 3 - kind, len, mac2[0]));
            let mut reserved = datagram(id + 8, kind, len, mac2[0]);
            reserved[1] = 1;
            others.push(reserved);
        }
        others.push(datagram(9, 4, INITIATION_LEN, mac2[0]));
        others.push(datagram(8, 3, 64, mac2[0]));
        [no_cookie, claimed, others]
    }

    fn ids(datagrams: &[Vec<u8>]) -> BTreeSet<u32> {
        datagrams
            .iter()
            .map(|d| u32::from_le_bytes(d[4..8].try_into().unwrap()))
            .collect()
    }

    #[test]
    fn each_rate_sheds_only_its_kind_of_handshake_message() {
        let [no_cookie, claimed, others] = kinds();
        // The shortest datagrams, which the filter must not read past.
        let short = [vec![1], vec![], vec![2, 0, 0]];
        let all: Vec<Vec<u8>> = [&no_cookie, &claimed, &others, &short.to_vec()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let union = |a: &[Vec<u8>], b: &[Vec<u8>]| -> BTreeSet<u32> {
            ids(a).union(&ids(b)).copied().collect()
        };
        // Almost never a pass by chance: one in four billion.
        let never = u32::MAX;
        assert_eq!(
            passed(rates(never, 1), &all),
            (union(&claimed, &others), short.len())
        );
        assert_eq!(
            passed(rates(1, never), &all),
            (union(&no_cookie, &others), short.len())
        );
        assert_eq!(
            passed(rates(never, never), &all),
            (ids(&others), short.len())
        );
        // Without the filter, everything passes.
        let everything = union(&no_cookie, &claimed)
            .union(&ids(&others))
            .copied()
            .collect();
        assert_eq!(passed(ShedRates::NONE, &all), (everything, short.len()));
    }

    #[test]
    fn one_in_n_is_kept_at_random() {
        for (mac2, rates) in [([0; 16], rates(4, 1)), ([7; 16], rates(1, 4))] {
            let flood: Vec<Vec<u8>> = (0..2000)
                .map(|id| datagram(id, 1, INITIATION_LEN, mac2))
                .collect();
            let kept = passed(rates, &flood).0.len();
            // 500 expected, with a standard deviation of about 19.
            assert!(
                (350..650).contains(&kept),
                "{kept} of 2000 kept, one in 4 expected ({rates:?})"
            );
        }
    }

    #[test]
    fn the_filter_is_replaced_and_removed() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        for rates in [
            ShedRates::NONE,
            rates(8, 1),
            rates(1024, 2),
            rates(1, 4096),
            ShedRates::NONE,
            ShedRates::NONE,
        ] {
            shed_handshakes(&socket, rates).unwrap();
        }
    }
}
