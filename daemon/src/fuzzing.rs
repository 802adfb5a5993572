//! Entry points for the coverage-guided fuzz targets in `fuzz/` (outside the
//! workspace): each `pub fn` takes the fuzzer's bytes and drives the
//! daemon's internal code the way the daemon does, checking what must hold
//! with `assert!`, so a broken invariant is a crash the fuzzer reports.
//!
//! Compiled only with the `fuzzing` feature of the `sentrymesh` package,
//! which no normal build turns on: the daemon's internals stay `pub(crate)`,
//! and this module is their one narrow door for the fuzzer.
//!
//! - [`uapi_request`]: the UAPI socket's framing and parser
//!   ([`RequestDecoder`]), fed in pieces the input chooses.
//! - [`offload`]: a TUN read with its virtio header, segmented into slots
//!   as the send path does, and the segments coalesced back as the receive
//!   path does.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::control::uapi::{Limits, Request, RequestDecoder, RequestError, write_status};
use crate::dataplane::device::segment_layout;
use crate::dataplane::offload::checksum;
use crate::dataplane::offload::{
    Appended, GsoType, TcpCoalescer, VIRTIO_NET_HDR_LEN, VirtioNetHdr, complete_checksum, segment,
};

/// The most bytes of slots [`offload`] lays out for one packet. The daemon
/// drops a packet whose segments do not fit its send batch; a bound keeps
/// every run of the fuzzer fast.
const MAX_SLOT_BYTES: usize = 1 << 20;

/// Limits small enough that short inputs reach them.
const SMALL_LIMITS: Limits = Limits {
    max_line_len: 64,
    max_request_len: 512,
};

/// The UAPI request decoder on one connection's bytes.
///
/// The first byte of `data` chooses the sizes of the pieces the rest is
/// delivered in (as `read` on the socket may cut it anywhere); every
/// complete request becomes a `ConfigChange` or an error, answered as the
/// socket answers it (without a device: a set is taken to succeed). The
/// same bytes delivered whole must give the same answers, with the
/// default limits and with small ones.
///
/// # Panics
///
/// When delivering in pieces changes the outcome, or the decoder uses more
/// bytes than it was given: each is a bug.
pub fn uapi_request(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    for limits in [Limits::default(), SMALL_LIMITS] {
        let whole = decode_connection(limits, stream, usize::MAX, 0);
        let pieces = decode_connection(limits, stream, usize::from(cut & 0x0f) + 1, cut >> 4);
        assert_eq!(whole, pieces, "the answers depend on how the input was cut");
    }
}

/// Feeds `stream` to a decoder in pieces of `size` bytes, growing by `step`
/// each time, as `serve_connection` does, and writes out what each request
/// became and the answer the socket would send.
fn decode_connection(limits: Limits, stream: &[u8], size: usize, step: u8) -> String {
    let mut decoder = RequestDecoder::new(limits);
    let mut out = String::new();
    let mut rest = stream;
    let mut size = size;
    loop {
        let (piece, after) = rest.split_at(size.min(rest.len()));
        rest = after;
        if piece.is_empty() {
            decoder.handle_eof();
        }
        let mut pending = piece;
        loop {
            let used = decoder.handle_input(pending);
            assert!(used <= pending.len(), "used more than it was given");
            pending = &pending[used..];
            let Some(request) = decoder.poll_request() else {
                break;
            };
            answer(request, &mut out);
        }
        if decoder.is_closed() {
            return out;
        }
        assert!(
            !piece.is_empty(),
            "the decoder is open after the end of input"
        );
        assert!(pending.is_empty(), "input left over with nothing to poll");
        size = size.saturating_add(usize::from(step));
    }
}

/// Writes what a request became and the reply the socket sends for it.
fn answer(request: Result<Request, RequestError>, out: &mut String) {
    let mut reply = Vec::new();
    match &request {
        Ok(Request::Get | Request::Reload | Request::Status) => {}
        Ok(Request::Set(_)) => write_status(Ok(()), &mut reply),
        Err(error) => {
            let _ = write!(out, "{error}");
            if let Some(errno) = error.errno() {
                write_status(Err(errno), &mut reply);
            }
        }
    }
    let _ = writeln!(out, "{request:?} -> {}", String::from_utf8_lossy(&reply));
}

/// The TUN offload paths on one read from the device: `data` is a virtio
/// header and a packet.
///
/// The header is parsed; the packet is laid out and segmented into slots as
/// the send path does, and every segment of a TCP super packet is handed to
/// a [`TcpCoalescer`] as the receive path does. It checks that the header
/// writes back as read, that every segment fits its slot and says its own
/// length, that checksums the segmenter wrote verify, that a coalesced
/// packet is as long as its first segment plus the payloads of the others,
/// and that its checksum verifies once completed as the kernel would.
///
/// # Panics
///
/// When one of those checks fails: each is a bug.
pub fn offload(data: &[u8]) {
    let Ok(hdr) = VirtioNetHdr::new_checked(data) else {
        return;
    };
    assert_eq!(VirtioNetHdr::new_checked(&hdr.to_bytes()), Ok(hdr));
    let packet = &data[VIRTIO_NET_HDR_LEN..];
    let Some((segment_len, count)) = segment_layout(&hdr, packet) else {
        return;
    };
    let Some(total) = segment_len
        .checked_mul(count)
        .filter(|&total| total <= MAX_SLOT_BYTES)
    else {
        return;
    };
    // At least one byte a slot, as `chunks_mut` needs.
    let stride = segment_len.max(1);
    let mut slots = vec![0u8; total.max(stride)];
    let Ok(segments) = segment(&hdr, packet, slots.chunks_mut(stride)) else {
        return;
    };
    assert!(segments.count() <= count, "more segments than laid out");
    let produced: Vec<&[u8]> = (0..segments.count())
        .map(|index| {
            let len = segments.len_of(index);
            assert!(len <= stride, "segment {index} overflows its slot");
            &slots[index * stride..index * stride + len]
        })
        .collect();
    if !matches!(
        hdr.gso_type,
        GsoType::TcpV4 | GsoType::TcpV6 | GsoType::UdpL4
    ) {
        return;
    }
    for segment in &produced {
        check_segment(segment, hdr.gso_type);
    }
    if hdr.gso_type != GsoType::UdpL4 {
        coalesce(&produced);
    }
}

/// The header lengths of a segment the segmenter wrote (IP, transport).
fn header_lens(packet: &[u8], gso_type: GsoType) -> (usize, usize) {
    let ip = if packet[0] >> 4 == 4 {
        usize::from(packet[0] & 0x0f) * 4
    } else {
        40
    };
    let transport = match gso_type {
        GsoType::UdpL4 => 8,
        _ => usize::from(packet[ip + 12] >> 4) * 4,
    };
    (ip, transport)
}

/// A segment says its own length, and its IPv4 header checksum and its
/// transport checksum verify.
fn check_segment(packet: &[u8], gso_type: GsoType) {
    let (ip, _) = header_lens(packet, gso_type);
    let is_v6 = packet[0] >> 4 == 6;
    if is_v6 {
        let payload = u16::from_be_bytes([packet[4], packet[5]]);
        assert_eq!(
            usize::from(payload) + 40,
            packet.len(),
            "IPv6 payload length"
        );
    } else {
        let total = u16::from_be_bytes([packet[2], packet[3]]);
        assert_eq!(usize::from(total), packet.len(), "IPv4 total length");
        assert_eq!(
            checksum::fold(checksum::add(0, &packet[..ip])),
            0xffff,
            "IPv4 header checksum"
        );
    }
    let protocol = if gso_type == GsoType::UdpL4 { 17 } else { 6 };
    assert!(verifies(packet, ip, protocol), "transport checksum");
}

/// Whether the TCP or UDP checksum of `packet` (IP header of `ip` bytes)
/// verifies.
fn verifies(packet: &[u8], ip: usize, protocol: u8) -> bool {
    // Read from the bytes, not through the views the code under test uses.
    let (src, dst): (IpAddr, IpAddr) = if packet[0] >> 4 == 6 {
        let address = |at: usize| {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&packet[at..at + 16]);
            IpAddr::from(octets)
        };
        (address(8), address(24))
    } else {
        let address = |at: usize| {
            let mut octets = [0u8; 4];
            octets.copy_from_slice(&packet[at..at + 4]);
            IpAddr::from(octets)
        };
        (address(12), address(16))
    };
    let transport = &packet[ip..];
    let sum = checksum::pseudo_header(src, dst, protocol, transport.len());
    checksum::fold(checksum::add(sum, transport)) == 0xffff
}

/// Coalesces `segments` as the receive path does (a refused packet flushes
/// what is pending and starts the next), checking every packet written out.
fn coalesce(segments: &[&[u8]]) {
    let mut buf = vec![0u8; VIRTIO_NET_HDR_LEN + usize::from(u16::MAX)];
    let mut coalescer = TcpCoalescer::new(&mut buf);
    let mut group: Vec<&[u8]> = Vec::new();
    for &segment in segments {
        let appended = match coalescer.handle_packet(segment) {
            Ok(appended) => appended,
            Err(_) => {
                check_coalesced(coalescer.finish(), &group);
                group.clear();
                match coalescer.handle_packet(segment) {
                    Ok(appended) => appended,
                    // Too big for the buffer: the daemon drops it.
                    Err(_) => continue,
                }
            }
        };
        match appended {
            Appended::Started => {
                assert!(group.is_empty(), "started with a packet pending");
                group.push(segment);
            }
            Appended::Coalesced => {
                assert!(!group.is_empty(), "coalesced with nothing pending");
                group.push(segment);
            }
        }
    }
    check_coalesced(coalescer.finish(), &group);
    assert!(coalescer.is_empty(), "pending after finish");
}

/// `written` (a virtio header and a packet) is `group` coalesced: the first
/// segment alone, as it was, or a super packet as long as the first segment
/// plus the payloads of the others, whose checksum verifies once completed.
fn check_coalesced(written: &[u8], group: &[&[u8]]) {
    let Some((&first, rest)) = group.split_first() else {
        assert!(written.is_empty(), "wrote a packet with nothing pending");
        return;
    };
    let hdr = VirtioNetHdr::new_checked(written).expect("the coalescer writes a valid header");
    let mut packet = written[VIRTIO_NET_HDR_LEN..].to_vec();
    if rest.is_empty() {
        assert_eq!(hdr, VirtioNetHdr::NONE, "a lone packet goes out as it is");
        assert_eq!(packet, first, "a lone packet goes out unchanged");
        return;
    }
    let gso_type = if first[0] >> 4 == 4 {
        GsoType::TcpV4
    } else {
        GsoType::TcpV6
    };
    assert_eq!(hdr.gso_type, gso_type, "the GSO type of a super packet");
    let payloads: usize = rest
        .iter()
        .map(|segment| {
            let (ip, tcp) = header_lens(segment, gso_type);
            segment.len() - ip - tcp
        })
        .sum();
    assert_eq!(packet.len(), first.len() + payloads, "coalesced length");
    complete_checksum(&hdr, &mut packet).expect("the checksum field is inside the packet");
    check_segment(&packet, gso_type);
}
