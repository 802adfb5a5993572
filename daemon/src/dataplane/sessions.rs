//! Each peer's session as the log tells it: one `info` line when a
//! session comes up, is rekeyed, roams to a new endpoint or goes down,
//! and nothing for the packets in between.
//!
//! The data-path thread looks once a second (with the MTU check): a
//! session is live while its last handshake is less than
//! `REJECT_AFTER_TIME` (180 s) old, the rule of `wait-ready` and the
//! metrics. Between two looks:
//!
//! ```text
//!   was live   is live   handshake   endpoint     line
//!   no         yes       any         any          session up
//!   yes        yes       newer       same         session rekeyed
//!   yes        yes       any         another      session roamed (and rekeyed, if newer)
//!   yes        no        -           -            session down
//!   yes        (removed) -           -            session down
//! ```
//!
//! A roam names no address: the peer may be a hidden host, whose address no
//! log may show.
//!
//! The same rule answers, for the rest of the daemon, whether a peer has a
//! session now, had one, or never had one since it was added
//! ([`PeerSession`],
//! [`DeviceHandle::sessions`](crate::dataplane::handle::DeviceHandle::sessions)).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use sentrymesh_tunnel::timers::REJECT_AFTER_TIME;
use sentrymesh_types::PublicKey;

/// What the watch needs of one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionView {
    /// The peer.
    pub(crate) public_key: PublicKey,
    /// When its last handshake completed, on the engine's clock.
    pub(crate) last_handshake: Option<Instant>,
    /// Where its datagrams go.
    pub(crate) endpoint: Option<SocketAddr>,
}

/// Whether a peer has a session, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerSession {
    /// No handshake has completed since the peer was added.
    Never,
    /// A handshake completed less than `REJECT_AFTER_TIME` (180 s) ago.
    Live,
    /// The last handshake is older than that: the session expired.
    Expired,
}

impl PeerSession {
    /// Whether the peer has had a session since it was added.
    pub fn ever(self) -> bool {
        self != PeerSession::Never
    }
}

impl SessionView {
    /// The peer's session at `now`.
    pub(crate) fn session_at(&self, now: Instant) -> PeerSession {
        match self.last_handshake {
            None => PeerSession::Never,
            Some(at) if now.saturating_duration_since(at) < REJECT_AFTER_TIME => PeerSession::Live,
            Some(_) => PeerSession::Expired,
        }
    }
}

/// A change of a peer's session, to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionChange {
    /// A session came up: the first handshake, or the first since it went
    /// down.
    Up,
    /// A live session was replaced by a newer handshake.
    Rekeyed,
    /// A live session's peer moved to another endpoint.
    Roamed,
    /// The session expired, or its peer was removed.
    Down,
}

impl fmt::Display for SessionChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionChange::Up => "session up",
            SessionChange::Rekeyed => "session rekeyed",
            SessionChange::Roamed => "session roamed to a new endpoint",
            SessionChange::Down => "session down",
        })
    }
}

/// What the last look saw of a peer whose session was live.
#[derive(Debug, Clone, Copy)]
struct Seen {
    last_handshake: Option<Instant>,
    endpoint: Option<SocketAddr>,
}

/// The peers' sessions as last seen; see the [module](self).
#[derive(Debug, Default)]
pub(crate) struct SessionWatch {
    seen: BTreeMap<PublicKey, Seen>,
}

impl SessionWatch {
    /// Compares `peers` (every peer there is) at `now` with the last look,
    /// and returns what changed, peer by peer in the order given, then the
    /// removed peers by key.
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        peers: impl IntoIterator<Item = SessionView>,
    ) -> Vec<(PublicKey, SessionChange)> {
        let mut changes = Vec::new();
        let mut seen = BTreeMap::new();
        for peer in peers {
            let live = peer.session_at(now) == PeerSession::Live;
            let before = self.seen.remove(&peer.public_key);
            let was_live = before.is_some();
            match before {
                Some(before) if live => {
                    if peer.last_handshake != before.last_handshake {
                        changes.push((peer.public_key, SessionChange::Rekeyed));
                    }
                    if before.endpoint.is_some() && peer.endpoint != before.endpoint {
                        changes.push((peer.public_key, SessionChange::Roamed));
                    }
                }
                _ if live && !was_live => changes.push((peer.public_key, SessionChange::Up)),
                _ if was_live && !live => changes.push((peer.public_key, SessionChange::Down)),
                _ => {}
            }
            // A peer without a live session is left out: nothing it did
            // before is compared (a session up is told by its being live
            // now), and most of a large interface's peers are idle.
            if live {
                seen.insert(
                    peer.public_key,
                    Seen {
                        last_handshake: peer.last_handshake,
                        endpoint: peer.endpoint,
                    },
                );
            }
        }
        for public_key in std::mem::replace(&mut self.seen, seen).into_keys() {
            changes.push((public_key, SessionChange::Down));
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(byte: u8) -> PublicKey {
        PublicKey::from_bytes([byte; 32])
    }

    fn view(byte: u8, last_handshake: Option<Instant>, port: u16) -> SessionView {
        SessionView {
            public_key: key(byte),
            last_handshake,
            endpoint: (port != 0).then(|| SocketAddr::from(([198, 18, 0, byte], port))),
        }
    }

    #[test]
    fn each_change_of_a_session_is_told_once() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut watch = SessionWatch::default();
        // Configured, no handshake yet: nothing.
        assert_eq!(watch.observe(at(0), [view(1, None, 51820)]), []);
        // The handshake: up, once, however often the watch looks.
        assert_eq!(
            watch.observe(at(1), [view(1, Some(at(1)), 51820)]),
            [(key(1), SessionChange::Up)]
        );
        for second in 2..120 {
            assert_eq!(watch.observe(at(second), [view(1, Some(at(1)), 51820)]), []);
        }
        // A rekey, then a roam, then both at once.
        assert_eq!(
            watch.observe(at(121), [view(1, Some(at(121)), 51820)]),
            [(key(1), SessionChange::Rekeyed)]
        );
        assert_eq!(
            watch.observe(at(122), [view(1, Some(at(121)), 40000)]),
            [(key(1), SessionChange::Roamed)]
        );
        assert_eq!(
            watch.observe(at(123), [view(1, Some(at(123)), 40001)]),
            [
                (key(1), SessionChange::Rekeyed),
                (key(1), SessionChange::Roamed)
            ]
        );
        // 180 s without a handshake: down, once.
        assert_eq!(watch.observe(at(302), [view(1, Some(at(123)), 40001)]), []);
        assert_eq!(
            watch.observe(at(303), [view(1, Some(at(123)), 40001)]),
            [(key(1), SessionChange::Down)]
        );
        assert_eq!(watch.observe(at(304), [view(1, Some(at(123)), 40001)]), []);
        // Back: up again, even from another endpoint (no roam).
        assert_eq!(
            watch.observe(at(400), [view(1, Some(at(400)), 51820)]),
            [(key(1), SessionChange::Up)]
        );
    }

    #[test]
    fn a_removed_peer_with_a_live_session_goes_down() {
        let start = Instant::now();
        let mut watch = SessionWatch::default();
        let peers = [view(1, Some(start), 51820), view(2, None, 51820)];
        assert_eq!(watch.observe(start, peers), [(key(1), SessionChange::Up)]);
        assert_eq!(
            watch.observe(start, [view(3, Some(start), 51820)]),
            [(key(3), SessionChange::Up), (key(1), SessionChange::Down)]
        );
        assert_eq!(watch.observe(start, []), [(key(3), SessionChange::Down)]);
        assert_eq!(watch.observe(start, []), []);
    }

    /// The watch keeps nothing of the peers without a live session: a
    /// thousand idle peers cost it nothing between looks.
    #[test]
    fn idle_peers_are_not_kept() {
        let start = Instant::now();
        let mut watch = SessionWatch::default();
        let idle = (1..=200).map(|byte| view(byte, None, 51820));
        assert_eq!(watch.observe(start, idle), []);
        assert!(watch.seen.is_empty());
        let expired = view(1, Some(start), 51820);
        assert_eq!(watch.observe(start + REJECT_AFTER_TIME, [expired]), []);
        assert!(watch.seen.is_empty());
        let live = view(2, Some(start), 51820);
        assert_eq!(watch.observe(start, [live]), [(key(2), SessionChange::Up)]);
        assert_eq!(watch.seen.len(), 1);
    }

    #[test]
    fn a_handshake_the_first_look_finds_expired_is_no_session() {
        let start = Instant::now();
        let mut watch = SessionWatch::default();
        let expired = [view(1, Some(start), 51820)];
        assert_eq!(watch.observe(start + REJECT_AFTER_TIME, expired), []);
    }
}
