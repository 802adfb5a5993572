//! The Internet checksum (RFC 1071) pieces that segmentation and coalescing
//! share: a running ones'-complement sum, the pseudo-header and the fold.

use std::net::IpAddr;

use sentrymesh_tunnel::ip::Ipv4PacketMut;

/// Adds `data` to a running ones'-complement sum, as big-endian 16-bit words
/// (an odd last byte is padded with a zero).
///
/// The sum is kept unfolded in a `u64`: 2^48 bytes fit before it could
/// overflow, far beyond any IP packet.
///
/// Ones'-complement sums do not depend on byte order (RFC 1071, 2.B), so
/// `data` is summed eight bytes at a time in the machine's order, as two
/// 32-bit halves, folded, and swapped into big-endian order once.
pub(crate) fn add(sum: u64, data: &[u8]) -> u64 {
    let mut native: u64 = 0;
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        // `chunks_exact(8)` yields 8-byte slices.
        let word = u64::from_ne_bytes(word.try_into().unwrap_or_default());
        native += (word & 0xffff_ffff) + (word >> 32);
    }
    let mut tail = [0u8; 8];
    let remainder = words.remainder();
    tail[..remainder.len()].copy_from_slice(remainder);
    let word = u64::from_ne_bytes(tail);
    native += (word & 0xffff_ffff) + (word >> 32);
    let folded = fold(native);
    sum + u64::from(u16::from_be_bytes(folded.to_ne_bytes()))
}

/// Folds a running sum to 16 bits (not complemented).
pub(crate) fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves `sum <= 0xffff`.
    sum as u16
}

/// The running sum of the TCP/UDP pseudo-header: source and destination
/// address, protocol and the transport length.
pub(crate) fn pseudo_header(
    source: IpAddr,
    destination: IpAddr,
    protocol: u8,
    transport_len: usize,
) -> u64 {
    let sum = add_address(add_address(0, source), destination) + u64::from(protocol);
    sum + transport_len as u64
}

/// Adds the 4 or 16 bytes of `address` to a running sum.
fn add_address(sum: u64, address: IpAddr) -> u64 {
    match address {
        IpAddr::V4(address) => add(sum, &address.octets()),
        IpAddr::V6(address) => add(sum, &address.octets()),
    }
}

/// Fills in the header checksum of an IPv4 header (options included).
pub(crate) fn fill_ipv4_header(packet: &mut Ipv4PacketMut<'_>) {
    packet.set_checksum(0);
    // The fixed header is 20 bytes, an even length, so summing the options
    // after it sums the header as one piece.
    let sum = add(add(0, packet.fixed_header()), packet.options());
    packet.set_checksum(!fold(sum));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// RFC 1071 as written: big-endian 16-bit words, an odd byte padded.
    fn reference(data: &[u8]) -> u64 {
        data.chunks(2)
            .map(|word| u64::from(u16::from_be_bytes([word[0], *word.get(1).unwrap_or(&0)])))
            .sum()
    }

    #[test]
    fn rfc_1071_example() {
        // RFC 1071, 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add(0, &data)), 0xddf2);
    }

    #[test]
    fn pseudo_header_sums_typed_addresses() {
        // The RFC 1071 words of the pseudo-header, written out.
        let v4 = pseudo_header(
            IpAddr::from([198, 18, 0, 1]),
            IpAddr::from([198, 18, 0, 2]),
            6,
            40,
        );
        assert_eq!(
            fold(v4),
            fold(reference(&[198, 18, 0, 1, 198, 18, 0, 2, 0, 6, 0, 40]))
        );
        let source: IpAddr = "2001:2::1".parse().unwrap();
        let destination: IpAddr = "2001:2::2".parse().unwrap();
        let mut words = Vec::new();
        for address in [source, destination] {
            if let IpAddr::V6(address) = address {
                words.extend_from_slice(&address.octets());
            }
        }
        words.extend_from_slice(&[0, 0, 0x05, 0xdc, 0, 0, 0, 17]);
        assert_eq!(
            fold(pseudo_header(source, destination, 17, 1500)),
            fold(reference(&words))
        );
    }

    #[test]
    fn an_ipv4_header_with_its_checksum_sums_to_all_ones() {
        let mut header = [0u8; 24];
        header[0] = 0x46;
        header[2..4].copy_from_slice(&24u16.to_be_bytes());
        header[8] = 64;
        header[9] = 6;
        header[10..12].copy_from_slice(&[0xde, 0xad]);
        header[12..20].copy_from_slice(&[198, 18, 0, 1, 198, 18, 0, 2]);
        header[20..24].copy_from_slice(&[1, 1, 1, 0]);
        let mut packet = Ipv4PacketMut::new_checked(&mut header).unwrap();
        fill_ipv4_header(&mut packet);
        assert_ne!(header[10..12], [0xde, 0xad]);
        assert_eq!(fold(reference(&header)), 0xffff);
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            start in any::<u32>(),
        ) {
            let start = u64::from(start);
            prop_assert_eq!(fold(add(start, &data)), fold(start + reference(&data)));
        }
    }
}
