//! What the member knows of its peers' sessions: the device's own view
//! ([`DeviceHandle::sessions`]), looked at again at most once a second, as
//! often as the device's session watch looks itself.
//!
//! Gossip to a peer that has never had a session is not sent: through the
//! tunnel it would wait in the interface's staging for a handshake that,
//! with a host that never answers (a card of a host that is down, or a
//! rival's that never was), does not come. The member starts the
//! handshake instead ([`DeviceHandle::connect`]) and lets the next round
//! of gossip go once there is a session.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sentrymesh_types::PublicKey;

use crate::dataplane::handle::{DeviceGone, DeviceHandle};
use crate::dataplane::sessions::PeerSession;

/// How long a look at the device's sessions serves.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The peers' sessions as last seen; see the [module](self).
#[derive(Debug, Default)]
pub(super) struct SessionBook {
    sessions: BTreeMap<PublicKey, PeerSession>,
    looked_at: Option<Instant>,
}

impl SessionBook {
    /// Asks `device` for its peers' sessions, unless the last answer is
    /// less than a second old at `now`.
    ///
    /// # Errors
    ///
    /// When the device's run loop has stopped.
    pub(super) async fn look(
        &mut self,
        device: &DeviceHandle,
        now: Instant,
    ) -> Result<(), DeviceGone> {
        if self
            .looked_at
            .is_some_and(|at| now.saturating_duration_since(at) < LOOK_EVERY)
        {
            return Ok(());
        }
        self.record(device.sessions().await?, now);
        Ok(())
    }

    /// Keeps `sessions`, the device's answer at `now`.
    fn record(&mut self, sessions: Vec<(PublicKey, PeerSession)>, now: Instant) {
        self.sessions = sessions.into_iter().collect();
        self.looked_at = Some(now);
    }

    /// Whether `peer` had a live session at the last look.
    pub(super) fn is_live(&self, peer: &PublicKey) -> bool {
        self.sessions.get(peer) == Some(&PeerSession::Live)
    }

    /// Whether `peer` had a session at the last look: one that is live or
    /// expired. A peer the device did not have then has had none.
    pub(super) fn has_had_session(&self, peer: &PublicKey) -> bool {
        self.sessions
            .get(peer)
            .is_some_and(|session| session.ever())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PublicKey {
        PublicKey::from_bytes([byte; 32])
    }

    #[test]
    fn a_peer_that_never_had_a_session_or_is_unknown_has_had_none() {
        let mut book = SessionBook::default();
        let now = Instant::now();
        assert!(!book.has_had_session(&key(1)));
        book.record(
            vec![
                (key(1), PeerSession::Live),
                (key(2), PeerSession::Expired),
                (key(3), PeerSession::Never),
            ],
            now,
        );
        assert!(book.has_had_session(&key(1)));
        assert!(book.has_had_session(&key(2)));
        assert!(!book.has_had_session(&key(3)));
        assert!(!book.has_had_session(&key(4)));
        // A new answer replaces the old: a removed peer is forgotten.
        book.record(vec![(key(2), PeerSession::Live)], now);
        assert!(!book.has_had_session(&key(1)));
    }
}
