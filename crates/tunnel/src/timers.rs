//! The protocol's timers, with the constants of the WireGuard whitepaper
//! (section 6) and the event hooks of the Linux kernel and wireguard-go.
//!
//! Each timer is a deadline, not a tick: each peer's timers report the
//! earliest one so the caller sleeps until exactly then.

use std::time::{Duration, Instant};

/// A session is renegotiated after this many messages were sent under it.
pub const REKEY_AFTER_MESSAGES: u64 = 1 << 60;
/// No message is sent or accepted under a session after this many.
pub const REJECT_AFTER_MESSAGES: u64 = crate::replay::REJECT_AFTER_MESSAGES;
/// The initiator renegotiates a session this old when it next sends.
pub const REKEY_AFTER_TIME: Duration = Duration::from_secs(120);
/// No message is sent or accepted under a session this old.
pub const REJECT_AFTER_TIME: Duration = Duration::from_secs(180);
/// How long to keep retrying a handshake before giving up.
pub const REKEY_ATTEMPT_TIME: Duration = Duration::from_secs(90);
/// How long to wait for a handshake response before retrying.
pub const REKEY_TIMEOUT: Duration = Duration::from_secs(5);
/// The upper bound (exclusive) of the random jitter added to `REKEY_TIMEOUT`.
pub const REKEY_TIMEOUT_JITTER_MAX: Duration = Duration::from_millis(334);
/// After receiving data and sending nothing for this long, send a keepalive.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// An initiator that receives under a session this old renegotiates at once,
/// so the session is replaced before `REJECT_AFTER_TIME`.
pub const REKEY_ON_RECEIVE_AFTER_TIME: Duration = Duration::from_secs(165);
/// Keys are erased after this long without a new handshake.
pub const ZERO_KEYS_AFTER_TIME: Duration = Duration::from_secs(540);
/// Retransmissions of one handshake before it is abandoned
/// (`REKEY_ATTEMPT_TIME / REKEY_TIMEOUT`).
pub(crate) const MAX_TIMER_HANDSHAKES: u32 = 18;

/// What [`Timers::handle_timeout`] found due.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Due {
    pub(crate) retransmit_handshake: bool,
    pub(crate) send_keepalive: bool,
    pub(crate) new_handshake: bool,
    pub(crate) zero_key_material: bool,
    pub(crate) persistent_keepalive: bool,
}

/// The deadlines of one peer.
#[derive(Debug, Default, Clone)]
pub(crate) struct Timers {
    retransmit_handshake: Option<Instant>,
    send_keepalive: Option<Instant>,
    need_another_keepalive: bool,
    new_handshake: Option<Instant>,
    zero_key_material: Option<Instant>,
    persistent_keepalive: Option<Instant>,
    /// Retransmissions of the current handshake so far.
    pub(crate) handshake_attempts: u32,
    /// Whether the last-minute rekey on receive has been tried for this session.
    pub(crate) sent_last_minute_handshake: bool,
}

impl Timers {
    /// The earliest deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [
            self.retransmit_handshake,
            self.send_keepalive,
            self.new_handshake,
            self.zero_key_material,
            self.persistent_keepalive,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Clears and reports every deadline at or before `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Due {
        fn take(deadline: &mut Option<Instant>, now: Instant) -> bool {
            let due = deadline.is_some_and(|at| at <= now);
            if due {
                *deadline = None;
            }
            due
        }
        let send_keepalive = take(&mut self.send_keepalive, now);
        if send_keepalive && self.need_another_keepalive {
            self.need_another_keepalive = false;
            self.send_keepalive = Some(now + KEEPALIVE_TIMEOUT);
        }
        Due {
            retransmit_handshake: take(&mut self.retransmit_handshake, now),
            send_keepalive,
            new_handshake: take(&mut self.new_handshake, now),
            zero_key_material: take(&mut self.zero_key_material, now),
            persistent_keepalive: take(&mut self.persistent_keepalive, now),
        }
    }

    /// Data (not a keepalive) was sent: expect to hear back within
    /// `KEEPALIVE_TIMEOUT + REKEY_TIMEOUT`, or start a new handshake.
    /// `jitter` is only drawn when the deadline is set.
    pub(crate) fn data_sent(&mut self, now: Instant, jitter: impl FnOnce() -> Duration) {
        if self.new_handshake.is_none() {
            self.new_handshake = Some(now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter());
        }
    }

    /// Data (not a keepalive) was received: answer with a keepalive if we
    /// send nothing within `KEEPALIVE_TIMEOUT`.
    pub(crate) fn data_received(&mut self, now: Instant) {
        if self.send_keepalive.is_none() {
            self.send_keepalive = Some(now + KEEPALIVE_TIMEOUT);
        } else {
            self.need_another_keepalive = true;
        }
    }

    /// Any authenticated message was sent: it serves as the keepalive.
    pub(crate) fn authenticated_packet_sent(&mut self) {
        self.send_keepalive = None;
    }

    /// Any authenticated message was received: the peer is alive.
    pub(crate) fn authenticated_packet_received(&mut self) {
        self.new_handshake = None;
    }

    /// Any authenticated message went either way: restart the persistent keepalive.
    pub(crate) fn authenticated_packet_traversal(
        &mut self,
        now: Instant,
        persistent_keepalive: Option<Duration>,
    ) {
        if let Some(interval) = persistent_keepalive {
            self.persistent_keepalive = Some(now + interval);
        }
    }

    /// An initiation was sent: retransmit it if no response comes.
    pub(crate) fn handshake_initiated(&mut self, now: Instant, jitter: Duration) {
        self.retransmit_handshake = Some(now + REKEY_TIMEOUT + jitter);
    }

    /// A handshake completed.
    pub(crate) fn handshake_complete(&mut self) {
        self.retransmit_handshake = None;
        self.handshake_attempts = 0;
        self.sent_last_minute_handshake = false;
    }

    /// New session keys exist: erase all keys if no newer ones come in time.
    pub(crate) fn session_derived(&mut self, now: Instant) {
        self.zero_key_material = Some(now + ZERO_KEYS_AFTER_TIME);
    }

    /// The handshake was abandoned: stop keepalives and make sure the keys
    /// are eventually erased.
    pub(crate) fn handshake_abandoned(&mut self, now: Instant) {
        self.send_keepalive = None;
        self.need_another_keepalive = false;
        if self.zero_key_material.is_none() {
            self.zero_key_material = Some(now + ZERO_KEYS_AFTER_TIME);
        }
    }

    /// The persistent keepalive interval changed.
    pub(crate) fn set_persistent_keepalive(&mut self, now: Instant, interval: Option<Duration>) {
        self.persistent_keepalive = interval.map(|interval| now + interval);
    }
}
