//! The overlay firewall: what a mesh peer of another operator may open to
//! this host, decided by this host, in the data path, before a packet
//! reaches the TUN device (and, for what this host opens, before it is
//! sealed).
//!
//! ```text
//!   [firewall] rules ──Rules::policy(local, peer class)──► PeerPolicy per peer
//!                         (in the mesh member, on each change)      │ pushed with the peer
//!   packet ─► policy open? ─yes─► pass                              ▼
//!               │ no                                  Firewall (in the data path)
//!               ▼
//!            parse ─► opens a service the policy allows? ─yes─► pass (tracked when
//!               │                                                the way back is not open)
//!               └───► a tracked flow (reply, echo answer, later fragment)? ─► pass
//!                     an ICMP error about our own packet to its sender?   ─► pass
//!                     else dropped, counted by reason, logged once a minute
//! ```
//!
//! A peer with no policy is left alone: the peers of `sentrymesh wg` and
//! the `[[peer]]` sections of the native mode are chosen by this host's
//! own administrator, key by key, and have no operator or role a rule
//! could name. Every mesh peer gets its policy in the same change that
//! adds it, so no packet of it is ever judged without one.
//!
//! Nothing here allocates per packet: a policy is a flag or a short list
//! compiled when the rules or the peer change, the tracker a table made
//! once. No `Debug` here shows an address or a port.

mod conntrack;
mod drop_log;
mod packet;
mod policy;
mod rules;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::HashMap;
use std::time::Instant;

use sentrymesh_tunnel::PeerId;

use self::conntrack::{Conntrack, Entry, FRAGMENT_TIMEOUT, timeout};
pub(crate) use self::conntrack::{MAX_CAPACITY as MAX_CONNTRACK, MIN_CAPACITY as MIN_CONNTRACK};
use self::drop_log::DropLog;
pub(crate) use self::drop_log::Dropped;
pub(crate) use self::packet::Direction;
use self::packet::{Kind, parse};
pub use self::policy::PeerPolicy;
pub(crate) use self::policy::Service;
pub(crate) use self::rules::{DEFAULT_CONNTRACK_MAX, Local, PeerClass};
pub use self::rules::{From, PortRange, Proto, Rule, RuleError, Rules};

/// Packets the firewall dropped, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FirewallDrops {
    /// From a peer: it opens what no rule allows, and answers no flow
    /// this host let through.
    pub inbound: u64,
    /// To a peer: the same, for what this host opens.
    pub outbound: u64,
    /// A later fragment of no packet let through.
    pub fragment: u64,
    /// An ICMP error about a packet its sender was never sent.
    pub icmp_error: u64,
    /// Headers that do not check, from or to a peer the firewall reads.
    pub malformed: u64,
}

impl FirewallDrops {
    /// Each reason with its count, named as the metrics name them.
    pub(crate) fn by_reason(&self) -> [(&'static str, u64); 5] {
        [
            ("firewall_inbound", self.inbound),
            ("firewall_outbound", self.outbound),
            ("firewall_fragment", self.fragment),
            ("firewall_icmp_error", self.icmp_error),
            ("firewall_malformed", self.malformed),
        ]
    }
}

/// What the connection tracker holds, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConntrackCounters {
    /// Flows tracked now.
    pub entries: usize,
    /// The table's slots: the most flows it holds.
    pub capacity: usize,
    /// Live flows evicted to make room for new ones.
    pub evictions: u64,
}

/// The firewall of one interface: each peer's policy, the tracked flows,
/// what was dropped.
#[derive(Debug)]
pub(crate) struct Firewall {
    policies: HashMap<PeerId, PeerPolicy>,
    conntrack: Conntrack,
    drops: FirewallDrops,
    log: DropLog,
}

impl Default for Firewall {
    fn default() -> Self {
        Self::new(conntrack::MIN_CAPACITY)
    }
}

impl Firewall {
    /// A firewall with no policy (everything passes) whose tracker holds
    /// about `conntrack_max` flows.
    pub(crate) fn new(conntrack_max: usize) -> Self {
        Self {
            policies: HashMap::new(),
            conntrack: Conntrack::new(conntrack_max),
            drops: FirewallDrops::default(),
            log: DropLog::default(),
        }
    }

    /// Sets `peer`'s policy. The flows it opened that the new policy would
    /// not let it open are forgotten; the rest, and the sessions, stay.
    pub(crate) fn set_policy(&mut self, peer: PeerId, policy: PeerPolicy) {
        self.conntrack.retain(|entry| {
            entry.peer != peer
                || entry.service.is_none_or(|service| {
                    let allows = match entry.opened {
                        Direction::Inbound => policy.inbound(),
                        Direction::Outbound => policy.outbound(),
                    };
                    allows.admits(service)
                })
        });
        self.policies.insert(peer, policy);
    }

    /// Forgets `peer`: its policy and its flows.
    pub(crate) fn remove_peer(&mut self, peer: PeerId) {
        self.policies.remove(&peer);
        self.conntrack.retain(|entry| entry.peer != peer);
    }

    /// Gives back the room of the policies of the peers that went.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.policies.shrink_to_fit();
    }

    /// Sizes the tracker for about `conntrack_max` flows, keeping the
    /// flows it tracks (as many as fit).
    pub(crate) fn resize(&mut self, conntrack_max: usize, now: Instant) {
        let mut table = Conntrack::new(conntrack_max);
        if table.capacity() == self.conntrack.capacity() {
            return;
        }
        self.conntrack.drain_into(&mut table, now);
        self.conntrack = table;
    }

    /// What was dropped.
    pub(crate) fn drops(&self) -> FirewallDrops {
        self.drops
    }

    /// What the tracker holds at `now`.
    pub(crate) fn conntrack(&self, now: Instant) -> ConntrackCounters {
        ConntrackCounters {
            entries: self.conntrack.len(now),
            capacity: self.conntrack.capacity(),
            evictions: self.conntrack.evictions(),
        }
    }

    /// Whether `packet`, going `direction` between this host and `peer`,
    /// passes. A packet dropped is counted; the first drop of a peer and
    /// service in a minute is returned, to be logged.
    #[inline]
    pub(crate) fn check(
        &mut self,
        now: Instant,
        direction: Direction,
        peer: PeerId,
        packet: &[u8],
    ) -> Result<(), Option<Dropped>> {
        if self.policies.is_empty() {
            return Ok(());
        }
        let Self {
            policies,
            conntrack,
            drops,
            log,
        } = self;
        let Some(policy) = policies.get(&peer) else {
            return Ok(());
        };
        if policy.is_open() {
            return Ok(());
        }
        judge(conntrack, drops, policy, now, direction, peer, packet)
            .map_err(|reason| log.first_in_a_minute(now, peer, direction, reason))
    }
}

/// [`Firewall::check`] for a peer whose policy is not open: the packet
/// read, matched against `policy`, tracked in `conntrack` or found there;
/// a drop counted in `drops`.
fn judge(
    conntrack: &mut Conntrack,
    drops: &mut FirewallDrops,
    policy: &PeerPolicy,
    now: Instant,
    direction: Direction,
    peer: PeerId,
    bytes: &[u8],
) -> Result<(), Refusal> {
    let (this_way, other_way) = match direction {
        Direction::Inbound => (policy.inbound(), policy.outbound()),
        Direction::Outbound => (policy.outbound(), policy.inbound()),
    };
    let Ok(packet) = parse(bytes, direction) else {
        drops.malformed += 1;
        return Err(Refusal::Malformed);
    };
    let flow_timeout = timeout(packet.flow.proto());
    let passes = match packet.kind {
        Kind::Opens(service) if this_way.admits(service) => {
            // Tracked only when the way back needs it: not for the answers
            // of what a peer may open anyway, so no peer fills the table
            // by opening what the rules allow it.
            let back_passes = match packet.way_back {
                Some(back) => other_way.admits(back),
                None => other_way.is_all(),
            };
            if !back_passes {
                let entry = Entry {
                    peer,
                    opened: direction,
                    service: Some(service),
                };
                conntrack.insert(packet.flow, entry, now, flow_timeout);
            }
            true
        }
        // Answers pass where everything does; elsewhere only those of a
        // tracked flow.
        Kind::Answers if this_way.is_all() => true,
        Kind::Opens(_) | Kind::Answers => conntrack.renew(&packet.flow, peer, now, flow_timeout),
        Kind::Error { about_own_packet } => {
            if !about_own_packet {
                drops.icmp_error += 1;
                return Err(Refusal::IcmpError);
            }
            true
        }
        Kind::LaterFragment => {
            if this_way.is_all() || conntrack.renew(&packet.flow, peer, now, FRAGMENT_TIMEOUT) {
                return Ok(());
            }
            drops.fragment += 1;
            return Err(Refusal::Fragment);
        }
    };
    if !passes {
        match direction {
            Direction::Inbound => drops.inbound += 1,
            Direction::Outbound => drops.outbound += 1,
        }
        return Err(match packet.kind {
            Kind::Opens(service) => Refusal::NoRule(service),
            _ => Refusal::NoFlow,
        });
    }
    if let Some(fragments) = packet.fragments {
        if !this_way.is_all() {
            let entry = Entry {
                peer,
                opened: direction,
                service: None,
            };
            conntrack.insert(fragments, entry, now, FRAGMENT_TIMEOUT);
        }
    }
    Ok(())
}

/// Why the firewall dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// It opens this service, which no rule allows.
    NoRule(Service),
    /// It only answers a flow, which is not tracked.
    NoFlow,
    /// A later fragment of no packet let through.
    Fragment,
    /// An ICMP error about a packet its sender was never sent.
    IcmpError,
    /// Its headers do not check.
    Malformed,
}

#[cfg(test)]
mod tests;
