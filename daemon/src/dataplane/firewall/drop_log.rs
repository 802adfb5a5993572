//! Which drops are logged: the first of each peer, direction and service
//! in a minute, and at most [`LINES_PER_MINUTE`] lines a minute in all, so
//! a peer that knocks on every port costs the log a few lines, not one a
//! packet. The rest is only counted.

use std::fmt;
use std::time::{Duration, Instant};

use sentrymesh_tunnel::PeerId;

use super::Refusal;
use super::packet::Direction;
use super::policy::Service;

/// How long a drop of the same kind is not logged again.
const QUIET: Duration = Duration::from_secs(60);
/// The drops remembered as logged.
const REMEMBERED: usize = 64;
/// The most lines in a minute.
const LINES_PER_MINUTE: u32 = 20;

/// A drop to log: the peer, the way, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// The peer the packet came from or went to.
    pub(crate) peer: PeerId,
    /// Which way it went.
    pub(crate) direction: Direction,
    /// Why it was dropped.
    pub(crate) reason: Refusal,
}

impl fmt::Display for Dropped {
    /// The drop without the peer, e.g. `tcp to port 22 from the peer: no
    /// rule allows it`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let way = match self.direction {
            Direction::Inbound => "from",
            Direction::Outbound => "to",
        };
        match self.reason {
            Refusal::NoRule(Service::Tcp(port)) => {
                write!(f, "tcp to port {port} {way} the peer: no rule allows it")
            }
            Refusal::NoRule(Service::Udp(port)) => {
                write!(f, "udp to port {port} {way} the peer: no rule allows it")
            }
            Refusal::NoRule(Service::IcmpEcho) => {
                write!(f, "an echo request {way} the peer: no rule allows it")
            }
            Refusal::NoRule(Service::Other(proto)) => {
                write!(f, "protocol {proto} {way} the peer: no rule allows it")
            }
            Refusal::NoFlow => write!(f, "an answer {way} the peer to no tracked flow"),
            Refusal::Fragment => write!(f, "a fragment {way} the peer of no packet let through"),
            Refusal::IcmpError => write!(
                f,
                "an ICMP error {way} the peer about a packet it was never sent"
            ),
            Refusal::Malformed => write!(f, "a malformed packet {way} the peer"),
        }
    }
}

/// The drops logged lately.
#[derive(Debug)]
pub(super) struct DropLog {
    logged: [Option<(Dropped, Instant)>; REMEMBERED],
    /// Where the next drop logged is remembered when none has expired.
    next: usize,
    /// When the minute of `lines` began, and the lines logged in it.
    minute: Option<Instant>,
    lines: u32,
}

impl Default for DropLog {
    fn default() -> Self {
        Self {
            logged: [None; REMEMBERED],
            next: 0,
            minute: None,
            lines: 0,
        }
    }
}

impl DropLog {
    /// The drop to log, when `reason` for `peer` going `direction` was
    /// not logged in the last minute and the minute's lines allow one.
    pub(super) fn first_in_a_minute(
        &mut self,
        now: Instant,
        peer: PeerId,
        direction: Direction,
        reason: Refusal,
    ) -> Option<Dropped> {
        let dropped = Dropped {
            peer,
            direction,
            reason,
        };
        let recent = |at: Instant| now.saturating_duration_since(at) < QUIET;
        if self
            .logged
            .iter()
            .flatten()
            .any(|&(logged, at)| logged == dropped && recent(at))
        {
            return None;
        }
        if self.minute.is_none_or(|start| !recent(start)) {
            self.minute = Some(now);
            self.lines = 0;
        }
        if self.lines >= LINES_PER_MINUTE {
            return None;
        }
        self.lines += 1;
        let index = self
            .logged
            .iter()
            .position(|slot| slot.is_none_or(|(_, at)| !recent(at)))
            .unwrap_or_else(|| {
                let index = self.next;
                self.next = (self.next + 1) % REMEMBERED;
                index
            });
        self.logged[index] = Some((dropped, now));
        Some(dropped)
    }
}
