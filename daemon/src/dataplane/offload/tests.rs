use proptest::prelude::*;

use super::coalesce::{Appended, Refusal};
use super::segment::{SegmentError, Segments};
use super::virtio::{FLAG_DATA_VALID, FLAG_NEEDS_CSUM, VirtioHdrError};
use super::*;

/// An independent Internet checksum: the plain RFC 1071 loop over the
/// concatenation of `parts`, folded and complemented.
fn rfc1071(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        let hi = u32::from(pair[0]) << 8;
        let lo = pair.get(1).copied().map_or(0, u32::from);
        sum += hi | lo;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn pseudo(packet: &[u8], v6: bool, tcp_len: usize) -> Vec<u8> {
    pseudo_for(packet, v6, 6, tcp_len)
}

fn pseudo_for(packet: &[u8], v6: bool, protocol: u8, l4_len: usize) -> Vec<u8> {
    let (src, dst) = if v6 {
        (&packet[8..24], &packet[24..40])
    } else {
        (&packet[12..16], &packet[16..20])
    };
    let mut p = Vec::new();
    p.extend_from_slice(src);
    p.extend_from_slice(dst);
    p.extend_from_slice(&[0, protocol]);
    p.extend_from_slice(&(l4_len as u32).to_be_bytes());
    p
}

/// Whether the TCP checksum of a complete packet verifies.
fn tcp_checksum_ok(packet: &[u8], v6: bool, ip_hdr_len: usize) -> bool {
    let tcp = &packet[ip_hdr_len..];
    rfc1071(&[&pseudo(packet, v6, tcp.len()), tcp]) == 0
}

/// A super packet as the kernel hands it over with TSO: full lengths,
/// valid IPv4 header checksum, the pseudo-header sum (complement of the
/// pseudo-header checksum) in the TCP checksum field.
struct Spec {
    v6: bool,
    ip_options: &'static [u8],
    tcp_options: &'static [u8],
    payload_len: usize,
    mss: u16,
    flags: u8,
}

const FIN: u8 = 0x01;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const CWR: u8 = 0x80;
const FIRST_SEQ: u32 = 0xffff_f000; // wraps within the larger tests
const FIRST_ID: u16 = 0xfffe; // wraps too

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn build(spec: &Spec) -> (VirtioNetHdr, Vec<u8>) {
    let mut p = Vec::new();
    let ip_hdr_len = if spec.v6 {
        p.extend_from_slice(&[0x60, 0x0a, 0xbc, 0xde, 0, 0, 6, 63]);
        p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        40
    } else {
        let ihl = 20 + spec.ip_options.len();
        assert_eq!(ihl % 4, 0);
        p.extend_from_slice(&[0x40 | (ihl / 4) as u8, 0x10, 0, 0]);
        p.extend_from_slice(&FIRST_ID.to_be_bytes());
        p.extend_from_slice(&[0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend_from_slice(spec.ip_options);
        ihl
    };
    let tcp_hdr_len = 20 + spec.tcp_options.len();
    assert_eq!(tcp_hdr_len % 4, 0);
    p.extend_from_slice(&[0xc3, 0x50, 0x01, 0xbb]);
    p.extend_from_slice(&FIRST_SEQ.to_be_bytes());
    p.extend_from_slice(&0x1122_3344u32.to_be_bytes());
    p.extend_from_slice(&[
        ((tcp_hdr_len / 4) as u8) << 4,
        spec.flags,
        0x20,
        0x00,
        0,
        0,
        0,
        0,
    ]);
    p.extend_from_slice(spec.tcp_options);
    p.extend_from_slice(&payload(spec.payload_len));
    let len = p.len();
    if spec.v6 {
        p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    } else {
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        let c = rfc1071(&[&p[..ip_hdr_len]]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let partial = !rfc1071(&[&pseudo(&p, spec.v6, len - ip_hdr_len)]);
    p[ip_hdr_len + 16..ip_hdr_len + 18].copy_from_slice(&partial.to_be_bytes());
    let hdr = VirtioNetHdr {
        flags: FLAG_NEEDS_CSUM,
        gso_type: if spec.v6 {
            GsoType::TcpV6
        } else {
            GsoType::TcpV4
        },
        hdr_len: (ip_hdr_len + tcp_hdr_len) as u16,
        gso_size: spec.mss,
        csum_start: ip_hdr_len as u16,
        csum_offset: 16,
    };
    (hdr, p)
}

const TCP_OPTS: &[u8] = &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]; // NOP NOP timestamps
const IP_OPTS: &[u8] = &[1, 1, 1, 0]; // NOP NOP NOP EOL

fn specs() -> Vec<Spec> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        for tcp_options in [&[][..], TCP_OPTS] {
            for ip_options in if v6 {
                vec![&[][..]]
            } else {
                vec![&[][..], IP_OPTS]
            } {
                for (payload_len, mss) in [
                    (1, 1448),
                    (1448, 1448),
                    (4000, 1448),
                    (65000 - 200, 1400),
                    (10, 3),
                ] {
                    for flags in [ACK, ACK | PSH, ACK | PSH | FIN | CWR] {
                        out.push(Spec {
                            v6,
                            ip_options,
                            tcp_options,
                            payload_len,
                            mss,
                            flags,
                        });
                    }
                }
            }
        }
    }
    out
}

/// Segments `packet` into 1600-byte-stride slots of one buffer.
fn split(hdr: &VirtioNetHdr, packet: &[u8]) -> Vec<Vec<u8>> {
    let stride = 1600;
    let slots = packet.len() / usize::from(hdr.gso_size.max(1)) + 2;
    let mut out = vec![0u8; stride * slots];
    let segs = segment(hdr, packet, out.chunks_mut(stride)).expect("segments");
    out.chunks(stride)
        .zip(segs.lengths())
        .map(|(slot, len)| slot[..len].to_vec())
        .collect()
}

#[test]
fn segments_have_correct_headers_checksums_and_payload() {
    for spec in specs() {
        let (hdr, packet) = build(&spec);
        let ip_hdr_len = usize::from(hdr.csum_start);
        let hdr_len = usize::from(hdr.hdr_len);
        let mss = usize::from(spec.mss);
        let segs = split(&hdr, &packet);
        assert_eq!(segs.len(), spec.payload_len.div_ceil(mss));
        let mut joined = Vec::new();
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            let data = &seg[hdr_len..];
            assert_eq!(
                data.len(),
                if last {
                    spec.payload_len - i * mss
                } else {
                    mss
                }
            );
            if spec.v6 {
                assert_eq!(usize::from(be16(seg, 4)), seg.len() - 40);
                assert_eq!(seg[..4], packet[..4]);
                assert_eq!(seg[6..40], packet[6..40]);
            } else {
                assert_eq!(usize::from(be16(seg, 2)), seg.len());
                assert_eq!(be16(seg, 4), FIRST_ID.wrapping_add(i as u16));
                assert_eq!(rfc1071(&[&seg[..ip_hdr_len]]), 0, "IPv4 header checksum");
                assert_eq!(
                    seg[12..ip_hdr_len],
                    packet[12..ip_hdr_len],
                    "addresses, options"
                );
                assert_eq!(seg[6..10], packet[6..10]);
            }
            let tcp = &seg[ip_hdr_len..];
            assert_eq!(be32(tcp, 4), FIRST_SEQ.wrapping_add((i * mss) as u32));
            let mut flags = spec.flags;
            if i > 0 {
                flags &= !CWR;
            }
            if !last {
                flags &= !(FIN | PSH);
            }
            assert_eq!(tcp[13], flags);
            assert_eq!(tcp[..4], packet[ip_hdr_len..ip_hdr_len + 4]);
            assert_eq!(tcp[8..13], packet[ip_hdr_len + 8..ip_hdr_len + 13]);
            assert_eq!(tcp[14..16], packet[ip_hdr_len + 14..ip_hdr_len + 16]);
            assert_eq!(
                tcp[18..hdr_len - ip_hdr_len],
                packet[ip_hdr_len + 18..hdr_len],
                "urgent pointer, options"
            );
            assert!(
                tcp_checksum_ok(seg, spec.v6, ip_hdr_len),
                "TCP checksum of segment {i}"
            );
            joined.extend_from_slice(data);
        }
        assert_eq!(joined, packet[hdr_len..]);
    }
}

/// Coalesces `packets` with a full-size buffer; returns every write.
fn coalesce_all(packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; VIRTIO_NET_HDR_LEN + 65535];
    let mut c = TcpCoalescer::new(&mut buf);
    let mut writes = Vec::new();
    for p in packets {
        if c.handle_packet(p).is_err() {
            writes.push(c.finish().to_vec());
            c.handle_packet(p)
                .expect("an empty coalescer takes a packet");
        }
    }
    writes.push(c.finish().to_vec());
    assert!(c.is_empty());
    writes
}

#[test]
fn coalescing_segments_gives_back_the_super_packet() {
    for spec in specs() {
        // GRO takes only ACK and ACK|PSH, IPv4 without options, and more
        // than one segment.
        if spec.flags & !(ACK | PSH) != 0
            || !spec.ip_options.is_empty()
            || spec.payload_len <= usize::from(spec.mss)
        {
            continue;
        }
        let (hdr, packet) = build(&spec);
        let writes = coalesce_all(&split(&hdr, &packet));
        assert_eq!(writes.len(), 1, "one super packet");
        let w = &writes[0];
        assert_eq!(VirtioNetHdr::new_checked(w).unwrap(), hdr);
        assert_eq!(w[..VIRTIO_NET_HDR_LEN], hdr.to_bytes());
        assert_eq!(w[VIRTIO_NET_HDR_LEN..], packet[..]);
    }
}

#[test]
fn segments_that_cannot_coalesce_go_out_alone() {
    let spec = Spec {
        v6: false,
        ip_options: IP_OPTS,
        tcp_options: &[],
        payload_len: 3000,
        mss: 1000,
        flags: ACK,
    };
    let (hdr, packet) = build(&spec);
    let segs = split(&hdr, &packet);
    let writes = coalesce_all(&segs);
    assert_eq!(writes.len(), 3);
    for (w, s) in writes.iter().zip(&segs) {
        assert_eq!(w[..VIRTIO_NET_HDR_LEN], VirtioNetHdr::NONE.to_bytes());
        assert_eq!(w[VIRTIO_NET_HDR_LEN..], s[..]);
    }
}

fn ack_segments(v6: bool) -> Vec<Vec<u8>> {
    let spec = Spec {
        v6,
        ip_options: &[],
        tcp_options: TCP_OPTS,
        payload_len: 4000,
        mss: 1000,
        flags: ACK,
    };
    let (hdr, packet) = build(&spec);
    split(&hdr, &packet)
}

fn fix_tcp_checksum(seg: &mut [u8], v6: bool) {
    let ip = if v6 { 40 } else { 20 };
    seg[ip + 16..ip + 18].fill(0);
    let c = rfc1071(&[&pseudo(seg, v6, seg.len() - ip), &seg[ip..]]);
    seg[ip + 16..ip + 18].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn coalescer_refusals() {
    for v6 in [false, true] {
        let ip = if v6 { 40 } else { 20 };
        let segs = ack_segments(v6);
        let mut buf = vec![0u8; 70_000];

        // Out of order.
        let mut c = TcpCoalescer::new(&mut buf);
        assert_eq!(c.handle_packet(&segs[0]), Ok(Appended::Started));
        assert_eq!(c.handle_packet(&segs[2]), Err(Refusal::NotNext));
        assert_eq!(c.handle_packet(&segs[1]), Ok(Appended::Coalesced));
        c.finish();

        // Another flow: other port.
        let mut other = segs[1].clone();
        other[ip] ^= 1;
        fix_tcp_checksum(&mut other, v6);
        c.handle_packet(&segs[0]).unwrap();
        assert_eq!(c.handle_packet(&other), Err(Refusal::OtherFlow));
        // Another ack number.
        let mut other = segs[1].clone();
        other[ip + 11] ^= 1;
        fix_tcp_checksum(&mut other, v6);
        assert_eq!(c.handle_packet(&other), Err(Refusal::HeadersDiffer));
        // Another hop limit / TTL.
        let mut other = segs[1].clone();
        other[if v6 { 7 } else { 8 }] -= 1;
        if !v6 {
            other[10..12].fill(0);
            let s = rfc1071(&[&other[..20]]);
            other[10..12].copy_from_slice(&s.to_be_bytes());
        }
        assert_eq!(c.handle_packet(&other), Err(Refusal::HeadersDiffer));
        // A bad checksum on the new packet.
        let mut bad = segs[1].clone();
        *bad.last_mut().unwrap() ^= 0x40;
        assert_eq!(c.handle_packet(&bad), Err(Refusal::BadChecksum));
        assert_eq!(c.handle_packet(&segs[1]), Ok(Appended::Coalesced));
        c.finish();

        // A bad checksum on the pending packet seals it.
        c.handle_packet(&bad).unwrap();
        assert_eq!(c.handle_packet(&segs[2]), Err(Refusal::Sealed));
        let w = c.finish().to_vec();
        assert_eq!(w[VIRTIO_NET_HDR_LEN..], bad[..], "written as it is");

        // FIN is no candidate; a short segment ends the super packet.
        let mut fin = segs[1].clone();
        fin[ip + 13] |= FIN;
        fix_tcp_checksum(&mut fin, v6);
        c.handle_packet(&segs[0]).unwrap();
        assert_eq!(c.handle_packet(&fin), Err(Refusal::NotCandidate));
        c.finish();
        c.handle_packet(&fin).unwrap();
        assert_eq!(c.handle_packet(&segs[2]), Err(Refusal::Sealed));
        c.finish();

        // A larger segment may not follow.
        let big_spec = Spec {
            v6,
            ip_options: &[],
            tcp_options: TCP_OPTS,
            payload_len: 4000,
            mss: 500,
            flags: ACK,
        };
        let (h, p) = build(&big_spec);
        let small = split(&h, &p);
        c.handle_packet(&small[0]).unwrap();
        let mut larger = segs[0].clone();
        larger[ip + 4..ip + 8].copy_from_slice(&FIRST_SEQ.wrapping_add(500).to_be_bytes());
        fix_tcp_checksum(&mut larger, v6);
        assert_eq!(c.handle_packet(&larger), Err(Refusal::LargerSegment));
        c.finish();

        // PSH ends it.
        let mut psh = segs[1].clone();
        psh[ip + 13] |= PSH;
        fix_tcp_checksum(&mut psh, v6);
        c.handle_packet(&segs[0]).unwrap();
        assert_eq!(c.handle_packet(&psh), Ok(Appended::Coalesced));
        assert_eq!(c.handle_packet(&segs[2]), Err(Refusal::Sealed));
        c.finish();
    }
}

#[test]
fn coalescer_respects_buffer_size() {
    let segs = ack_segments(false);
    let mut buf = vec![0u8; VIRTIO_NET_HDR_LEN + segs[0].len() + 1000];
    let mut c = TcpCoalescer::new(&mut buf);
    c.handle_packet(&segs[0]).unwrap();
    c.handle_packet(&segs[1]).unwrap();
    assert_eq!(c.handle_packet(&segs[2]), Err(Refusal::NoRoom));
    c.finish();
    let mut tiny = [0u8; 40];
    let mut c = TcpCoalescer::new(&mut tiny);
    assert!(matches!(
        c.handle_packet(&segs[0]),
        Err(Refusal::TooBig { .. })
    ));
    assert!(c.finish().is_empty());
}

#[test]
fn gso_none_needs_csum_completes_the_checksum() {
    for v6 in [false, true] {
        let spec = Spec {
            v6,
            ip_options: &[],
            tcp_options: TCP_OPTS,
            payload_len: 333,
            mss: 1448,
            flags: ACK | PSH,
        };
        let (mut hdr, packet) = build(&spec);
        hdr.gso_type = GsoType::None;
        hdr.gso_size = 0;
        let mut out = [0u8; 1500];
        let segs = segment(&hdr, &packet, [&mut out[..]]).unwrap();
        assert_eq!(segs.count(), 1);
        let seg = &out[..segs.len_of(0)];
        assert!(tcp_checksum_ok(seg, v6, if v6 { 40 } else { 20 }));
        let ip = usize::from(hdr.csum_start);
        assert_eq!(seg[..ip + 16], packet[..ip + 16]);
        assert_eq!(seg[ip + 18..], packet[ip + 18..]);

        // Without NEEDS_CSUM the packet is copied as it is.
        hdr.flags = 0;
        let segs = segment(&hdr, &packet, [&mut out[..]]).unwrap();
        assert_eq!(out[..segs.len_of(0)], packet[..]);
    }
}

#[test]
fn virtio_header_round_trips_little_endian() {
    let bytes = [1, 4, 0x56, 0, 0xa8, 0x05, 40, 0, 16, 0];
    let hdr = VirtioNetHdr::new_checked(&bytes).unwrap();
    assert_eq!(hdr.gso_type, GsoType::TcpV6);
    assert_eq!(
        (hdr.hdr_len, hdr.gso_size, hdr.csum_start, hdr.csum_offset),
        (86, 1448, 40, 16)
    );
    assert_eq!(hdr.to_bytes(), bytes);
    let mut out = [0u8; 12];
    hdr.write(&mut out).unwrap();
    assert_eq!(out[..10], bytes);
    assert_eq!(hdr.write(&mut out[..9]), Err(VirtioHdrError::Truncated(9)));

    assert_eq!(
        VirtioNetHdr::new_checked(&bytes[..9]),
        Err(VirtioHdrError::Truncated(9))
    );
    let with = |i: usize, v: u8| {
        let mut b = bytes;
        b[i] = v;
        VirtioNetHdr::new_checked(&b)
    };
    assert_eq!(with(0, 4), Err(VirtioHdrError::UnsupportedFlags(4)));
    assert_eq!(with(1, 0x81), Err(VirtioHdrError::UnsupportedGsoType(0x81)));
    assert_eq!(with(1, 3), Err(VirtioHdrError::UnsupportedGsoType(3)));
    assert_eq!(with(0, 0), Err(VirtioHdrError::GsoWithoutCsum));
    let mut b = bytes;
    b[4..6].fill(0);
    assert_eq!(
        VirtioNetHdr::new_checked(&b),
        Err(VirtioHdrError::ZeroGsoSize)
    );
    assert!(with(0, FLAG_DATA_VALID | FLAG_NEEDS_CSUM).is_ok());
}

#[test]
fn malformed_super_packets_are_typed_errors() {
    let spec = Spec {
        v6: false,
        ip_options: &[],
        tcp_options: &[],
        payload_len: 3000,
        mss: 1000,
        flags: ACK,
    };
    let (hdr, packet) = build(&spec);
    let mut out = vec![0u8; 1100 * 4];
    let mut run = |hdr: &VirtioNetHdr, packet: &[u8]| segment(hdr, packet, out.chunks_mut(1100));

    assert!(run(&hdr, &packet).is_ok());
    assert_eq!(
        run(&hdr, &packet[..packet.len() - 1]),
        Err(SegmentError::LengthMismatch {
            field: packet.len(),
            actual: packet.len() - 1
        })
    );
    assert_eq!(run(&hdr, &[]), Err(SegmentError::Truncated(0)));
    assert_eq!(run(&hdr, &packet[..10]), Err(SegmentError::Truncated(10)));
    let v6 = VirtioNetHdr {
        gso_type: GsoType::TcpV6,
        ..hdr
    };
    assert_eq!(
        run(&v6, &packet),
        Err(SegmentError::VersionMismatch {
            version: 4,
            gso_type: GsoType::TcpV6
        })
    );
    let udp = VirtioNetHdr {
        gso_type: GsoType::UdpL4,
        ..hdr
    };
    assert_eq!(run(&udp, &packet), Err(SegmentError::WrongProtocol(6)));
    let far = VirtioNetHdr {
        hdr_len: 4000,
        ..hdr
    };
    assert_eq!(
        run(&far, &packet),
        Err(SegmentError::HdrLenBeyondPacket {
            hdr_len: 4000,
            len: packet.len()
        })
    );
    let start = VirtioNetHdr {
        csum_start: 24,
        ..hdr
    };
    assert_eq!(
        run(&start, &packet),
        Err(SegmentError::BadCsumStart {
            csum_start: 24,
            expected: 20
        })
    );
    let offset = VirtioNetHdr {
        csum_offset: 6,
        ..hdr
    };
    assert_eq!(run(&offset, &packet), Err(SegmentError::BadCsumOffset(6)));
    let mut udp_packet = packet.clone();
    udp_packet[9] = 17;
    assert_eq!(run(&hdr, &udp_packet), Err(SegmentError::WrongProtocol(17)));
    let mut frag = packet.clone();
    frag[6] |= 0x20;
    assert_eq!(run(&hdr, &frag), Err(SegmentError::Fragment));
    let mut doff = packet.clone();
    doff[32] = 0x40;
    assert_eq!(
        run(&hdr, &doff),
        Err(SegmentError::BadTransportHeaderLen(16))
    );
    let mut ihl = packet.clone();
    ihl[0] = 0x44;
    assert_eq!(run(&hdr, &ihl), Err(SegmentError::BadIpHeaderLen(16)));
    let header_only = build(&Spec {
        payload_len: 0,
        ..spec
    })
    .1;
    assert_eq!(run(&hdr, &header_only), Err(SegmentError::EmptyPayload));
    let none = VirtioNetHdr {
        gso_type: GsoType::None,
        csum_offset: 4000,
        ..hdr
    };
    assert_eq!(
        run(&none, &packet),
        Err(SegmentError::SlotTooSmall {
            index: 0,
            capacity: 1100,
            needed: packet.len()
        })
    );
    assert_eq!(
        segment(&none, &packet[..100], [&mut out[..]]),
        Err(SegmentError::CsumOutOfRange {
            csum_start: 20,
            csum_offset: 4000
        })
    );

    let mut two = vec![0u8; 2200];
    assert_eq!(
        segment(&hdr, &packet, two.chunks_mut(1100)),
        Err(SegmentError::TooFewSlots { needed: 3 })
    );
    assert_eq!(
        segment(&hdr, &packet, out.chunks_mut(1000)),
        Err(SegmentError::SlotTooSmall {
            index: 0,
            capacity: 1000,
            needed: 1040
        })
    );
}

/// Checks that every packet `segment` split off a super packet is internally
/// consistent: IP length fields, IPv4 header checksum, transport checksum.
/// (A `GSO_NONE` packet is passed on as it came.)
fn assert_segments_valid(hdr: &VirtioNetHdr, out: &[u8], stride: usize, segs: &Segments) {
    if hdr.gso_type == GsoType::None {
        return;
    }
    for (slot, len) in out.chunks(stride).zip(segs.lengths()) {
        let seg = &slot[..len];
        let v6 = seg[0] >> 4 == 6;
        let ip = if v6 {
            40
        } else {
            usize::from(seg[0] & 0x0f) * 4
        };
        if v6 {
            assert_eq!(usize::from(be16(seg, 4)), len - 40);
        } else {
            assert_eq!(usize::from(be16(seg, 2)), len);
            assert_eq!(rfc1071(&[&seg[..ip]]), 0);
        }
        let protocol = if hdr.gso_type == GsoType::UdpL4 {
            17
        } else {
            6
        };
        let l4 = &seg[ip..];
        assert_eq!(rfc1071(&[&pseudo_for(seg, v6, protocol, l4.len()), l4]), 0);
    }
}

proptest! {
    #[test]
    fn random_headers_over_random_packets_never_panic(
        flags in 0u8..4,
        gso in prop::sample::select(vec![0u8, 1, 4, 5]),
        fields in any::<[u16; 4]>(),
        first in prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x60, 0x00]),
        mut bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut raw = [0u8; VIRTIO_NET_HDR_LEN];
        raw[0] = flags;
        raw[1] = gso;
        for (i, f) in fields.iter().enumerate() {
            // Small values hit the interesting cases more often.
            let f = if f & 0x8000 != 0 { f & 0x3f } else { *f };
            raw[2 + 2 * i..4 + 2 * i].copy_from_slice(&f.to_le_bytes());
        }
        if let Some(b) = bytes.first_mut() {
            *b = first;
        }
        let mut out = vec![0u8; 64 * 700];
        if let Ok(hdr) = VirtioNetHdr::new_checked(&raw) {
            if let Ok(segs) = segment(&hdr, &bytes, out.chunks_mut(700)) {
                assert_segments_valid(&hdr, &out, 700, &segs);
            }
        }
    }

    #[test]
    fn segment_then_coalesce_round_trips(
        v6 in any::<bool>(),
        options in any::<bool>(),
        psh in any::<bool>(),
        mss in 1u16..1500,
        extra in 1usize..4000,
    ) {
        let spec = Spec {
            v6,
            ip_options: &[],
            tcp_options: if options { TCP_OPTS } else { &[] },
            payload_len: usize::from(mss) + extra,
            mss,
            flags: if psh { ACK | PSH } else { ACK },
        };
        let (hdr, packet) = build(&spec);
        let writes = coalesce_all(&split(&hdr, &packet));
        prop_assert_eq!(writes.len(), 1);
        prop_assert_eq!(&writes[0][..VIRTIO_NET_HDR_LEN], &hdr.to_bytes()[..]);
        prop_assert_eq!(&writes[0][VIRTIO_NET_HDR_LEN..], &packet[..]);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut out = vec![0u8; 4096];
        if let Ok(hdr) = VirtioNetHdr::new_checked(&bytes) {
            let _ = segment(&hdr, &bytes[VIRTIO_NET_HDR_LEN..], out.chunks_mut(64));
        }
        let mut c = TcpCoalescer::new(&mut out);
        let _ = c.handle_packet(&bytes);
        let _ = c.handle_packet(&bytes);
        let _ = c.finish();
    }

    #[test]
    fn mutated_super_packets_never_panic(
        v6 in any::<bool>(),
        payload_len in 1usize..3000,
        mss in 1u16..1500,
        mutations in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
        cut in any::<u16>(),
    ) {
        let spec = Spec { v6, ip_options: &[], tcp_options: TCP_OPTS, payload_len, mss, flags: ACK };
        let (hdr, mut packet) = build(&spec);
        let mut raw = hdr.to_bytes();
        for &(at, value) in &mutations {
            let at = usize::from(at) % (packet.len() + raw.len());
            match at.checked_sub(raw.len()) {
                Some(i) => packet[i] = value,
                None => raw[at] = value,
            }
        }
        packet.truncate(usize::from(cut) % (packet.len() + 1));
        let mut out = vec![0u8; 64 * 1024];
        if let Ok(hdr) = VirtioNetHdr::new_checked(&raw) {
            if let Ok(segs) = segment(&hdr, &packet, out.chunks_mut(1600)) {
                prop_assert!(segs.count() >= 1);
                assert_segments_valid(&hdr, &out, 1600, &segs);
            }
        }
        let segs = split(&build(&spec).0, &build(&spec).1);
        let mut mutated = segs.clone();
        for (k, &(at, value)) in mutations.iter().enumerate() {
            let seg = &mut mutated[k % segs.len()];
            let at = usize::from(at) % seg.len();
            seg[at] = value;
        }
        let mut buf = vec![0u8; 70_000];
        let mut c = TcpCoalescer::new(&mut buf);
        for p in mutated.iter().chain(&segs) {
            if c.handle_packet(p).is_err() {
                let _ = c.finish();
                let _ = c.handle_packet(p);
            }
        }
        let _ = c.finish();
    }
}

/// A USO super packet as the kernel hands it over: UDP length of the whole,
/// pseudo-header sum in the checksum field.
fn build_udp(v6: bool, payload_len: usize, gso_size: u16) -> (VirtioNetHdr, Vec<u8>) {
    let spec = Spec {
        v6,
        ip_options: &[],
        tcp_options: &[],
        payload_len: 0,
        mss: gso_size,
        flags: ACK,
    };
    // Reuse the IP header of a TCP packet.
    let (_, tcp) = build(&spec);
    let ip = if v6 { 40 } else { 20 };
    let mut p = tcp[..ip].to_vec();
    p[if v6 { 6 } else { 9 }] = 17;
    p.extend_from_slice(&[0x30, 0x39, 0xca, 0x6c, 0, 0, 0, 0]);
    p.extend_from_slice(&payload(payload_len));
    let len = p.len();
    if v6 {
        p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    } else {
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[10..12].fill(0);
        let c = rfc1071(&[&p[..20]]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    p[ip + 4..ip + 6].copy_from_slice(&((len - ip) as u16).to_be_bytes());
    let partial = !rfc1071(&[&pseudo_for(&p, v6, 17, len - ip)]);
    p[ip + 6..ip + 8].copy_from_slice(&partial.to_be_bytes());
    let hdr = VirtioNetHdr {
        flags: FLAG_NEEDS_CSUM,
        gso_type: GsoType::UdpL4,
        hdr_len: (ip + 8) as u16,
        gso_size,
        csum_start: ip as u16,
        csum_offset: 6,
    };
    (hdr, p)
}

#[test]
fn udp_l4_super_packets_split_into_datagrams() {
    for v6 in [false, true] {
        for (payload_len, gso_size) in [(1, 1200), (3000, 1200), (2400, 1200), (9000, 1472)] {
            let (hdr, packet) = build_udp(v6, payload_len, gso_size);
            let ip = usize::from(hdr.csum_start);
            let segs = split(&hdr, &packet);
            assert_eq!(segs.len(), payload_len.div_ceil(usize::from(gso_size)));
            let mut joined = Vec::new();
            for (i, seg) in segs.iter().enumerate() {
                if v6 {
                    assert_eq!(usize::from(be16(seg, 4)), seg.len() - 40);
                } else {
                    assert_eq!(usize::from(be16(seg, 2)), seg.len());
                    assert_eq!(be16(seg, 4), FIRST_ID.wrapping_add(i as u16));
                    assert_eq!(rfc1071(&[&seg[..20]]), 0);
                }
                let udp = &seg[ip..];
                assert_eq!(udp[..4], packet[ip..ip + 4]);
                assert_eq!(usize::from(be16(udp, 4)), udp.len());
                assert_ne!(be16(udp, 6), 0);
                assert_eq!(rfc1071(&[&pseudo_for(seg, v6, 17, udp.len()), udp]), 0);
                joined.extend_from_slice(&udp[8..]);
            }
            assert_eq!(joined, packet[ip + 8..]);
        }
    }
}
