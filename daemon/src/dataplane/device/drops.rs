//! Why received datagrams were dropped: one counter per reason, so an
//! operator under attack sees what the attack is made of (garbage, replays,
//! handshakes answered with a cookie, a handshake queue overflowing).

use sentrymesh_tunnel::Error;

/// Datagrams from the socket that the device dropped, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DatagramDrops {
    /// Cut short by the kernel on receive: larger than the buffer.
    pub truncated: u64,
    /// Received before the interface had a private key.
    pub not_configured: u64,
    /// Empty or shorter than any message, or a known type with a wrong
    /// length or non-zero reserved bytes.
    pub malformed: u64,
    /// A first byte that is no WireGuard message type.
    pub unknown_type: u64,
    /// A handshake message whose `mac1` is not for our key.
    pub invalid_mac1: u64,
    /// Under load, a handshake message without a valid cookie: a cookie
    /// reply was sent instead (unless too many were waiting).
    pub cookie_required: u64,
    /// Under load, a handshake message over its source's rate, or
    /// initiations from one peer faster than 50 a second.
    pub rate_limited: u64,
    /// Handshake messages that found the handshake queue full.
    pub handshake_queue_full: u64,
    /// Addressed to a session index that is not ours.
    pub unknown_index: u64,
    /// An initiation from a public key that is not a peer.
    pub unknown_peer: u64,
    /// A data counter or a handshake timestamp seen before, or too old.
    pub replayed: u64,
    /// Data under a session that has expired.
    pub expired_session: u64,
    /// An encrypted field or a data message that failed authentication, or
    /// a low-order public key.
    pub failed_authentication: u64,
    /// Authenticated data whose payload is not an IP packet.
    pub invalid_inner_packet: u64,
    /// Any other reason the engine gave.
    pub other: u64,
}

impl DatagramDrops {
    /// Counts a datagram the engine refused with `error`.
    pub(crate) fn count(&mut self, error: Error) {
        let counter = match error {
            Error::Malformed => &mut self.malformed,
            Error::InvalidMac1 => &mut self.invalid_mac1,
            Error::CookieRequired => &mut self.cookie_required,
            Error::RateLimited | Error::InitiationFlood => &mut self.rate_limited,
            Error::UnknownIndex => &mut self.unknown_index,
            Error::UnknownPeer => &mut self.unknown_peer,
            Error::ReplayedCounter | Error::ReplayedInitiation => &mut self.replayed,
            Error::SessionExpired => &mut self.expired_session,
            Error::Decryption | Error::LowOrderKey => &mut self.failed_authentication,
            Error::InvalidInnerPacket => &mut self.invalid_inner_packet,
            _ => &mut self.other,
        };
        *counter += 1;
    }

    /// Each reason with its count, named as the metrics name them.
    pub(crate) fn by_reason(&self) -> [(&'static str, u64); 15] {
        [
            ("truncated", self.truncated),
            ("not_configured", self.not_configured),
            ("malformed", self.malformed),
            ("unknown_type", self.unknown_type),
            ("invalid_mac1", self.invalid_mac1),
            ("cookie_required", self.cookie_required),
            ("rate_limited", self.rate_limited),
            ("handshake_queue_full", self.handshake_queue_full),
            ("unknown_index", self.unknown_index),
            ("unknown_peer", self.unknown_peer),
            ("replayed", self.replayed),
            ("expired_session", self.expired_session),
            ("failed_authentication", self.failed_authentication),
            ("invalid_inner_packet", self.invalid_inner_packet),
            ("other", self.other),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_error_lands_in_its_reason() {
        let mut drops = DatagramDrops::default();
        for error in [
            Error::Malformed,
            Error::InvalidMac1,
            Error::CookieRequired,
            Error::RateLimited,
            Error::InitiationFlood,
            Error::ReplayedCounter,
            Error::ReplayedInitiation,
            Error::Decryption,
            Error::BufferTooSmall,
        ] {
            drops.count(error);
        }
        assert_eq!(
            drops,
            DatagramDrops {
                malformed: 1,
                invalid_mac1: 1,
                cookie_required: 1,
                rate_limited: 2,
                replayed: 2,
                failed_authentication: 1,
                other: 1,
                ..DatagramDrops::default()
            }
        );
        let mut names: Vec<&str> = drops.by_reason().iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 15, "every reason has a name of its own");
    }
}
