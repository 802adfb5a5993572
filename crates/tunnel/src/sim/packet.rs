//! The inner packets the tests and benches send.

/// An IPv4 packet of `len` bytes: a valid 20-byte header (version 4, header
/// length 5, total length `len`, TTL 64, UDP, from 198.18.0.1 to
/// 198.18.0.2, its checksum right) and a body of `tag` bytes, so packets of
/// one length with different tags differ. Every WireGuard implementation
/// takes it as an IP packet.
///
/// # Panics
///
/// When `len` is below the 20 bytes of a header or above 65535.
pub fn ipv4_packet(len: usize, tag: u8) -> Vec<u8> {
    assert!(len >= 20, "an IPv4 packet has at least a 20-byte header");
    let total = u16::try_from(len).expect("an IPv4 packet has at most 65535 bytes");
    let mut packet = vec![tag; len];
    packet[..20].fill(0);
    packet[0] = 0x45;
    packet[2..4].copy_from_slice(&total.to_be_bytes());
    packet[8] = 64; // TTL
    packet[9] = 17; // UDP
    packet[12..16].copy_from_slice(&[198, 18, 0, 1]);
    packet[16..20].copy_from_slice(&[198, 18, 0, 2]);
    let sum = packet[..20]
        .chunks_exact(2)
        .map(|word| u32::from(u16::from_be_bytes([word[0], word[1]])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    let folded = (folded & 0xffff) + (folded >> 16);
    // Folded twice, a sum of ten 16-bit words fits in 16 bits.
    let checksum = !u16::try_from(folded).expect("folded into 16 bits");
    packet[10..12].copy_from_slice(&checksum.to_be_bytes());
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_checksums_to_zero_and_the_body_is_the_tag() {
        for (len, tag) in [(20, 0), (84, 7), (1420, 0xff)] {
            let packet = ipv4_packet(len, tag);
            let sum: u32 = packet[..20]
                .chunks_exact(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum();
            assert_eq!((sum & 0xffff) + (sum >> 16), 0xffff, "len {len}");
            assert_eq!(usize::from(u16::from_be_bytes([packet[2], packet[3]])), len);
            assert!(packet[20..].iter().all(|&b| b == tag));
        }
    }
}
