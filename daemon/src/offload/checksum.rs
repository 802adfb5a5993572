//! The Internet checksum (RFC 1071) pieces that segmentation and coalescing
//! share: a running ones'-complement sum, the pseudo-header and the fold.

/// Adds `data` to a running ones'-complement sum, as big-endian 16-bit words
/// (an odd last byte is padded with a zero).
///
/// The sum is kept unfolded in a `u64`: 2^48 bytes fit before it could
/// overflow, far beyond any IP packet.
pub(crate) fn add(mut sum: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    sum
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
