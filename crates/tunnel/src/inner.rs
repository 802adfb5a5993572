//! The length of the IP packet inside a decrypted payload, which tells the
//! packet from its padding.

/// The length of the IPv4 or IPv6 packet at the start of `payload`, or `None`
/// when `payload` does not start with a complete one.
pub(crate) fn inner_packet_len(payload: &[u8]) -> Option<usize> {
    let len = match payload.first()? >> 4 {
        4 => {
            let header_len = usize::from(payload.first()? & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*payload.get(2)?, *payload.get(3)?]));
            (header_len >= 20 && total >= header_len).then_some(total)?
        }
        6 => 40 + usize::from(u16::from_be_bytes([*payload.get(4)?, *payload.get(5)?])),
        _ => return None,
    };
    (len <= payload.len()).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_come_from_the_ip_header() {
        let mut v4 = [0u8; 48];
        v4[0] = 0x45;
        v4[2..4].copy_from_slice(&28u16.to_be_bytes());
        assert_eq!(inner_packet_len(&v4), Some(28));
        v4[2..4].copy_from_slice(&49u16.to_be_bytes());
        assert_eq!(inner_packet_len(&v4), None, "longer than the payload");
        v4[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(inner_packet_len(&v4), None, "shorter than its header");
        v4[0] = 0x44;
        assert_eq!(inner_packet_len(&v4), None, "header length under 20");

        let mut v6 = [0u8; 64];
        v6[0] = 0x60;
        v6[4..6].copy_from_slice(&8u16.to_be_bytes());
        assert_eq!(inner_packet_len(&v6), Some(48));
        assert_eq!(inner_packet_len(&v6[..47]), None);

        for payload in [&[][..], &[0x45], &[0x60, 0, 0, 0, 0], &[0x10; 40]] {
            assert_eq!(inner_packet_len(payload), None, "{payload:?}");
        }
    }
}
