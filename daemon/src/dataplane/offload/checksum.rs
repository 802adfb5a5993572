//! The Internet checksum (RFC 1071) pieces that segmentation and coalescing
//! share: a running ones'-complement sum, the pseudo-header and the fold.

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
/// address (4 or 16 bytes each), protocol and the transport length.
pub(crate) fn pseudo_header(src: &[u8], dst: &[u8], protocol: u8, transport_len: usize) -> u64 {
    let sum = add(add(0, src), dst) + u64::from(protocol);
    sum + transport_len as u64
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
