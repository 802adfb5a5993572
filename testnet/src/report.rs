//! What a testnet found, and whether it is what the roles require: each
//! host's peers with their handshake ages, the ping matrix, and the
//! violations of the expectations. This module only judges and prints; the
//! testnet gathers the facts.
//!
//! Printed, a report reads:
//!
//! ```text
//! peers (who peers with whom; handshake: how long ago the last one completed)
//!   host  name          role              overlay     daemon
//!         peer          role              handshake   endpoint
//!   1P    op1-producer  producer of op1   198.19.1.1  ready
//!         op1-sentry-1  sentry of op1     1.2 s ago   198.18.1.2:51820
//!         op1-sentry-2  sentry of op1     1.0 s ago   198.18.1.3:51820
//!   1S1   op1-sentry-1  sentry of op1     198.19.1.2  ready
//!         op1-producer  producer of op1   1.2 s ago   198.18.1.1:51820
//!         ...
//!
//! pings over the overlay, from each row to each column
//! (ok: a reply, as required; -: none, as required; FAIL: no reply; LEAK: a forbidden reply)
//!        1P  1S1 1S2 2P  2S1 2S2
//!   1P   .   ok  ok  -   -   -
//!   1S1  ok  .   ok  -   ok  ok
//!   ...
//!
//! every hidden host stayed hidden: 2 hidden hosts, none a peer of, reached by or shown at its underlay address to another operator's host
//! the mesh formed as the roles require: 6 hosts, 10 peerings, 30 pings as expected
//! ```
//!
//! A peer the roles forbid is flagged `NOT REQUIRED`, one they require but
//! the daemon lacks `MISSING`; the hidden hosts' line says whether any
//! other operator's host has one as a peer, exchanged a ping with one, or
//! has a peer at a hidden host's underlay address; and the report ends
//! with every violation.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sentrymesh_mesh::Role;
use sentrymesh_tunnel::timers::REJECT_AFTER_TIME;
use sentrymesh_types::PublicKey;

/// One host as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    /// The host's name.
    pub name: String,
    /// Its short label: `1P`, `2S1`.
    pub label: String,
    /// Its role.
    pub role: Role,
    /// Its operator, from 1.
    pub operator: usize,
    /// Its overlay address.
    pub overlay: Ipv4Addr,
    /// Its underlay address.
    pub underlay: Ipv4Addr,
    /// Whether its daemon reported `READY=1`.
    pub ready: bool,
    /// Its daemon's last `STATUS=`, or how it ended.
    pub status: String,
    /// The hosts the roles require it to peer with.
    pub expected_peers: BTreeSet<String>,
    /// Its peers as its daemon reports them, or why it did not answer.
    pub peers: Result<Vec<PeerRow>, String>,
}

/// One peer of a host as the report shows it: named by the testnet host
/// that holds its key, with its last handshake as an age (made from the
/// daemon's [`PeerState`](crate::PeerState)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRow {
    /// The peer's key.
    pub public_key: PublicKey,
    /// The testnet host with that key; `None`: a key of no host.
    pub host: Option<String>,
    /// Where the daemon sends to it.
    pub endpoint: Option<SocketAddr>,
    /// How long ago its last handshake completed; `None`: never.
    pub handshake_age: Option<Duration>,
}

impl PeerRow {
    /// Whether the session is live: a handshake less than 180 s ago.
    pub fn is_live(&self) -> bool {
        self.handshake_age
            .is_some_and(|age| age < REJECT_AFTER_TIME)
    }

    /// The peer's name, or its key.
    fn name(&self) -> String {
        self.host
            .clone()
            .unwrap_or_else(|| format!("key {}", self.public_key))
    }
}

/// One ping of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// The host it was sent from.
    pub from: String,
    /// The host whose overlay address it was sent to.
    pub to: String,
    /// Whether the roles require a reply.
    pub expected: bool,
    /// Whether one came.
    pub replied: bool,
}

/// One way the mesh is not what the roles require.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The daemon never reported `READY=1`.
    NotReady {
        /// The host.
        host: String,
        /// Its daemon's last status.
        status: String,
    },
    /// The daemon did not answer on its UAPI socket.
    NoAnswer {
        /// The host.
        host: String,
        /// Why.
        error: String,
    },
    /// A peer the roles require is not configured.
    MissingPeer {
        /// The host.
        host: String,
        /// The peer it lacks.
        peer: String,
    },
    /// A peer the roles forbid is configured.
    UnexpectedPeer {
        /// The host.
        host: String,
        /// The peer, or its key.
        peer: String,
    },
    /// A required peer has no live session.
    NoSession {
        /// The host.
        host: String,
        /// The peer.
        peer: String,
    },
    /// A required ping got no reply.
    NoReply {
        /// The host pinging.
        from: String,
        /// The host pinged.
        to: String,
    },
    /// A forbidden ping got a reply.
    UnexpectedReply {
        /// The host pinging.
        from: String,
        /// The host pinged.
        to: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotReady { host, status } => {
                write!(f, "{host}: its daemon never reported ready ({status})")
            }
            Self::NoAnswer { host, error } => {
                write!(f, "{host}: its daemon did not answer: {error}")
            }
            Self::MissingPeer { host, peer } => {
                write!(f, "{host} does not peer with {peer}, as its role requires")
            }
            Self::UnexpectedPeer { host, peer } => {
                write!(f, "{host} peers with {peer}, which its role forbids")
            }
            Self::NoSession { host, peer } => {
                write!(f, "{host} has no live session with its peer {peer}")
            }
            Self::NoReply { from, to } => write!(f, "{from} got no reply from {to}"),
            Self::UnexpectedReply { from, to } => {
                write!(f, "{from} got a reply from {to}, which it must not reach")
            }
        }
    }
}

/// A hidden host that a host of another operator saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiddenSeen {
    /// The hidden host.
    pub hidden: String,
    /// The other operator's host that saw it.
    pub by: String,
    /// How.
    pub how: String,
}

/// Everything a testnet found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshReport {
    /// Every host, in the plan's order.
    pub hosts: Vec<HostReport>,
    /// The ping matrix, by source then destination.
    pub pings: Vec<Ping>,
}

impl MeshReport {
    /// Every way the mesh differs from what the roles require: hosts not
    /// ready or not answering, peer sets not exactly the required ones,
    /// required peers without a live session, pings not as required.
    pub fn violations(&self) -> Vec<Violation> {
        let mut violations = Vec::new();
        for host in &self.hosts {
            let name = || host.name.clone();
            if !host.ready {
                violations.push(Violation::NotReady {
                    host: name(),
                    status: host.status.clone(),
                });
            }
            let peers = match &host.peers {
                Ok(peers) => peers,
                Err(error) => {
                    violations.push(Violation::NoAnswer {
                        host: name(),
                        error: error.clone(),
                    });
                    continue;
                }
            };
            for expected in &host.expected_peers {
                match peers
                    .iter()
                    .find(|peer| peer.host.as_ref() == Some(expected))
                {
                    None => violations.push(Violation::MissingPeer {
                        host: name(),
                        peer: expected.clone(),
                    }),
                    Some(peer) if !peer.is_live() => violations.push(Violation::NoSession {
                        host: name(),
                        peer: expected.clone(),
                    }),
                    Some(_) => {}
                }
            }
            for peer in peers {
                if !peer
                    .host
                    .as_ref()
                    .is_some_and(|peer| host.expected_peers.contains(peer))
                {
                    violations.push(Violation::UnexpectedPeer {
                        host: name(),
                        peer: peer.name(),
                    });
                }
            }
        }
        for ping in &self.pings {
            let (from, to) = (ping.from.clone(), ping.to.clone());
            match (ping.expected, ping.replied) {
                (true, false) => violations.push(Violation::NoReply { from, to }),
                (false, true) => violations.push(Violation::UnexpectedReply { from, to }),
                _ => {}
            }
        }
        violations
    }

    /// Whether the mesh is exactly what the roles require.
    pub fn is_ok(&self) -> bool {
        self.violations().is_empty()
    }

    /// The host named `name`.
    fn host(&self, name: &str) -> Option<&HostReport> {
        self.hosts.iter().find(|host| host.name == name)
    }

    /// "role of opN" for the host named `name`.
    fn describe(&self, name: &str) -> String {
        self.host(name).map_or_else(
            || "not a testnet host".to_owned(),
            |host| format!("{} of op{}", host.role, host.operator),
        )
    }

    fn write_peers(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label_width = self.label_width().max("host".len());
        let name_width = self
            .hosts
            .iter()
            .map(|h| h.name.len())
            .chain(["name".len()])
            .max()
            .unwrap_or(0);
        let indent = " ".repeat(label_width + 4);
        writeln!(
            f,
            "peers (who peers with whom; handshake: how long ago the last one completed)"
        )?;
        writeln!(
            f,
            "  {:<label_width$}  {:<name_width$}  {:<16}  {:<11} daemon",
            "host", "name", "role", "overlay"
        )?;
        writeln!(
            f,
            "{indent}{:<name_width$}  {:<16}  {:<11} endpoint",
            "peer", "role", "handshake"
        )?;
        for host in &self.hosts {
            let ready = if host.ready { "ready" } else { "NOT READY" };
            let role = format!("{} of op{}", host.role, host.operator);
            writeln!(
                f,
                "  {:<label_width$}  {:<name_width$}  {role:<16}  {:<11} {ready}",
                host.label,
                host.name,
                host.overlay.to_string()
            )?;
            let peers = match &host.peers {
                Ok(peers) => peers,
                Err(error) => {
                    writeln!(f, "{indent}no answer: {error}")?;
                    continue;
                }
            };
            for peer in peers {
                let name = peer.name();
                let role = match &peer.host {
                    Some(name) => self.describe(name),
                    None => "not a testnet host".to_owned(),
                };
                let handshake = match peer.handshake_age {
                    Some(age) => format!("{:.1} s ago", age.as_secs_f64()),
                    None => "none".to_owned(),
                };
                let endpoint = peer
                    .endpoint
                    .map_or_else(|| "-".to_owned(), |endpoint| endpoint.to_string());
                let flag = match &peer.host {
                    Some(name) if host.expected_peers.contains(name) => "",
                    _ => "  NOT REQUIRED",
                };
                writeln!(
                    f,
                    "{indent}{name:<name_width$}  {role:<16}  {handshake:<11} {endpoint}{flag}"
                )?;
            }
            for missing in host.expected_peers.iter().filter(|expected| {
                !peers
                    .iter()
                    .any(|peer| peer.host.as_ref() == Some(*expected))
            }) {
                let role = self.describe(missing);
                writeln!(f, "{indent}{missing:<name_width$}  {role:<16}  MISSING")?;
            }
        }
        Ok(())
    }

    /// How each hidden host was seen by a host of another operator: as a
    /// peer (by the testnet host holding the key), as a peer's endpoint
    /// (its underlay address), or by a ping either way that got a reply.
    /// Empty: every hidden host stayed hidden.
    pub fn hidden_hosts_seen(&self) -> Vec<HiddenSeen> {
        let mut seen = Vec::new();
        for hidden in self.hosts.iter().filter(|host| host.role.is_hidden()) {
            for other in self
                .hosts
                .iter()
                .filter(|other| other.operator != hidden.operator)
            {
                let mut how = Vec::new();
                if let Ok(peers) = &other.peers {
                    if peers
                        .iter()
                        .any(|peer| peer.host.as_deref() == Some(hidden.name.as_str()))
                    {
                        how.push("has it as a peer");
                    }
                    if peers
                        .iter()
                        .any(|peer| peer.endpoint.map(|e| e.ip()) == Some(hidden.underlay.into()))
                    {
                        how.push("has a peer at its underlay address");
                    }
                }
                if self.pings.iter().any(|ping| {
                    ping.replied
                        && ((ping.from == other.name && ping.to == hidden.name)
                            || (ping.from == hidden.name && ping.to == other.name))
                }) {
                    how.push("exchanged a ping with it");
                }
                if !how.is_empty() {
                    seen.push(HiddenSeen {
                        hidden: hidden.name.clone(),
                        by: other.name.clone(),
                        how: how.join(", "),
                    });
                }
            }
        }
        seen
    }

    fn write_hidden(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = self
            .hosts
            .iter()
            .filter(|host| host.role.is_hidden())
            .count();
        let seen = self.hidden_hosts_seen();
        if seen.is_empty() {
            writeln!(
                f,
                "every hidden host stayed hidden: {hidden} hidden hosts, none a peer of, reached \
                 by or shown at its underlay address to another operator's host"
            )
        } else {
            writeln!(
                f,
                "hidden hosts NOT hidden from other operators ({} times):",
                seen.len()
            )?;
            for seen in seen {
                writeln!(f, "  {}: {} {}", seen.hidden, seen.by, seen.how)?;
            }
            Ok(())
        }
    }

    fn label_width(&self) -> usize {
        self.hosts
            .iter()
            .map(|host| host.label.len())
            .max()
            .unwrap_or(0)
            .max(2)
    }

    fn write_pings(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.label_width() + 1;
        writeln!(f, "pings over the overlay, from each row to each column")?;
        writeln!(
            f,
            "(ok: a reply, as required; -: none, as required; FAIL: no reply; LEAK: a forbidden \
             reply)"
        )?;
        let mut header = format!("  {:width$}", "");
        for host in &self.hosts {
            header.push_str(&format!(" {:<width$}", host.label));
        }
        writeln!(f, "{}", header.trim_end())?;
        for from in &self.hosts {
            let mut row = format!("  {:<width$}", from.label);
            for to in &self.hosts {
                let cell = if from.name == to.name {
                    "."
                } else {
                    match self
                        .pings
                        .iter()
                        .find(|ping| ping.from == from.name && ping.to == to.name)
                    {
                        None => "?",
                        Some(ping) => match (ping.expected, ping.replied) {
                            (true, true) => "ok",
                            (false, false) => "-",
                            (true, false) => "FAIL",
                            (false, true) => "LEAK",
                        },
                    }
                };
                row.push_str(&format!(" {cell:<width$}"));
            }
            writeln!(f, "{}", row.trim_end())?;
        }
        Ok(())
    }
}

impl fmt::Display for MeshReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_peers(f)?;
        writeln!(f)?;
        self.write_pings(f)?;
        writeln!(f)?;
        self.write_hidden(f)?;
        let violations = self.violations();
        if violations.is_empty() {
            let peerings: usize = self
                .hosts
                .iter()
                .map(|host| host.expected_peers.len())
                .sum::<usize>()
                / 2;
            writeln!(
                f,
                "the mesh formed as the roles require: {} hosts, {peerings} peerings, {} pings \
                 as expected",
                self.hosts.len(),
                self.pings.len()
            )
        } else {
            writeln!(
                f,
                "the mesh is NOT as the roles require ({} problems):",
                violations.len()
            )?;
            for violation in violations {
                writeln!(f, "  {violation}")?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Plan, RunTag, must_peer};

    /// The report of a mesh that formed exactly as `plan` requires.
    fn perfect(plan: &Plan) -> MeshReport {
        let hosts = plan.hosts();
        let key = |index: usize| PublicKey::from_bytes([index as u8 + 1; 32]);
        let reports = hosts
            .iter()
            .enumerate()
            .map(|(index, host)| {
                let expected = plan.expected_peers(index);
                HostReport {
                    name: host.name.clone(),
                    label: host.label.clone(),
                    role: host.role,
                    operator: host.operator,
                    overlay: host.overlay,
                    underlay: host.underlay,
                    ready: true,
                    status: "up".into(),
                    expected_peers: expected.iter().map(|&i| hosts[i].name.clone()).collect(),
                    peers: Ok(expected
                        .iter()
                        .map(|&i| PeerRow {
                            public_key: key(i),
                            host: Some(hosts[i].name.clone()),
                            endpoint: None,
                            handshake_age: Some(Duration::from_secs(1)),
                        })
                        .collect()),
                }
            })
            .collect();
        let mut pings = Vec::new();
        for a in hosts {
            for b in hosts.iter().filter(|b| b.name != a.name) {
                let expected = must_peer(a, b);
                pings.push(Ping {
                    from: a.name.clone(),
                    to: b.name.clone(),
                    expected,
                    replied: expected,
                });
            }
        }
        MeshReport {
            hosts: reports,
            pings,
        }
    }

    fn plan() -> Plan {
        Plan::new(2, 2, RunTag { pid: 1, serial: 0 }).unwrap()
    }

    #[test]
    fn a_mesh_as_required_has_no_violations_and_says_so() {
        let report = perfect(&plan());
        assert_eq!(report.violations(), []);
        let text = report.to_string();
        assert!(
            text.contains(
                "the mesh formed as the roles require: 6 hosts, 10 peerings, 30 pings as expected"
            ),
            "{text}"
        );
        assert!(
            text.contains("  1P    op1-producer  producer of op1   198.19.1.1  ready\n"),
            "{text}"
        );
        assert!(
            text.contains("\n        op1-sentry-1  sentry of op1     1.0 s ago   -\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  1P   .    ok   ok   -    -    -\n"),
            "{text}"
        );
        assert!(!text.contains("MISSING") && !text.contains("NOT REQUIRED"));
        assert!(
            text.contains("\n  host  name          role              overlay     daemon\n"),
            "{text}"
        );
        assert!(
            text.contains("\n        peer          role              handshake   endpoint\n"),
            "{text}"
        );
        assert_eq!(report.hidden_hosts_seen(), []);
        assert!(
            text.contains("\nevery hidden host stayed hidden: 2 hidden hosts, none a peer of"),
            "{text}"
        );
    }

    #[test]
    fn a_producer_peering_beyond_its_operator_is_a_violation() {
        let mut report = perfect(&plan());
        let foreign = PeerRow {
            public_key: PublicKey::from_bytes([5; 32]),
            host: Some("op2-sentry-1".into()),
            endpoint: Some("198.18.2.2:51820".parse().unwrap()),
            handshake_age: Some(Duration::from_secs(2)),
        };
        let stranger = PeerRow {
            public_key: PublicKey::from_bytes([99; 32]),
            host: None,
            endpoint: None,
            handshake_age: None,
        };
        let Ok(peers) = &mut report.hosts[0].peers else {
            unreachable!()
        };
        peers.push(foreign);
        peers.push(stranger);
        let violations = report.violations();
        assert_eq!(
            violations,
            [
                Violation::UnexpectedPeer {
                    host: "op1-producer".into(),
                    peer: "op2-sentry-1".into()
                },
                Violation::UnexpectedPeer {
                    host: "op1-producer".into(),
                    peer: format!("key {}", PublicKey::from_bytes([99; 32]))
                },
            ]
        );
        let text = report.to_string();
        assert!(text.contains(" 198.18.2.2:51820  NOT REQUIRED\n"), "{text}");
        assert!(
            text.contains("the mesh is NOT as the roles require (2 problems):\n"),
            "{text}"
        );
        assert!(
            text.contains("  op1-producer peers with op2-sentry-1, which its role forbids\n"),
            "{text}"
        );
    }

    #[test]
    fn missing_peers_stale_sessions_and_silent_daemons_are_violations() {
        let mut report = perfect(&plan());
        let Ok(peers) = &mut report.hosts[1].peers else {
            unreachable!()
        };
        let removed = peers.remove(0);
        peers[0].handshake_age = Some(REJECT_AFTER_TIME);
        peers[1].handshake_age = None;
        report.hosts[2].ready = false;
        report.hosts[2].status = "waiting for peers: 3 of 4 with a live session".into();
        report.hosts[3].peers = Err("connecting: no such file".into());
        let host = "op1-sentry-1".to_owned();
        assert_eq!(
            report.violations(),
            [
                Violation::MissingPeer {
                    host: host.clone(),
                    peer: removed.host.unwrap(),
                },
                Violation::NoSession {
                    host: host.clone(),
                    peer: "op1-sentry-2".into(),
                },
                Violation::NoSession {
                    host,
                    peer: "op2-sentry-1".into(),
                },
                Violation::NotReady {
                    host: "op1-sentry-2".into(),
                    status: "waiting for peers: 3 of 4 with a live session".into(),
                },
                Violation::NoAnswer {
                    host: "op2-producer".into(),
                    error: "connecting: no such file".into(),
                },
            ]
        );
        let text = report.to_string();
        assert!(
            text.contains("op1-producer  producer of op1   MISSING\n"),
            "{text}"
        );
        assert!(text.contains("  none        -\n"), "{text}");
        assert!(
            text.contains("1S2   op1-sentry-2  sentry of op1     198.19.1.3  NOT READY\n"),
            "{text}"
        );
    }

    #[test]
    fn pings_against_the_roles_are_violations() {
        let mut report = perfect(&plan());
        let leak = report
            .pings
            .iter_mut()
            .find(|ping| ping.from == "op1-producer" && ping.to == "op2-sentry-1")
            .unwrap();
        leak.replied = true;
        let lost = report
            .pings
            .iter_mut()
            .find(|ping| ping.from == "op2-sentry-2" && ping.to == "op1-sentry-1")
            .unwrap();
        lost.replied = false;
        assert_eq!(
            report.violations(),
            [
                Violation::UnexpectedReply {
                    from: "op1-producer".into(),
                    to: "op2-sentry-1".into()
                },
                Violation::NoReply {
                    from: "op2-sentry-2".into(),
                    to: "op1-sentry-1".into()
                },
            ]
        );
        let text = report.to_string();
        assert!(
            text.contains("\n  1P   .    ok   ok   -    LEAK -\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  2S2  -    FAIL ok   ok   ok   .\n"),
            "{text}"
        );
        assert_eq!(
            report.hidden_hosts_seen(),
            [HiddenSeen {
                hidden: "op1-producer".into(),
                by: "op2-sentry-1".into(),
                how: "exchanged a ping with it".into(),
            }]
        );
        assert!(
            text.contains(
                "hidden hosts NOT hidden from other operators (1 times):\n  op1-producer: \
                 op2-sentry-1 exchanged a ping with it\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_hidden_host_a_rival_peers_with_or_points_at_is_not_hidden() {
        let mut report = perfect(&plan());
        let producer = report.hosts[0].clone();
        let Ok(peers) = &mut report.hosts[4].peers else {
            unreachable!()
        };
        peers.push(PeerRow {
            public_key: PublicKey::from_bytes([1; 32]),
            host: Some(producer.name.clone()),
            endpoint: Some((producer.underlay, 51820).into()),
            handshake_age: None,
        });
        assert_eq!(
            report.hidden_hosts_seen(),
            [HiddenSeen {
                hidden: "op1-producer".into(),
                by: report.hosts[4].name.clone(),
                how: "has it as a peer, has a peer at its underlay address".into(),
            }]
        );
    }
}
