//! The Prometheus text exposition format (version 0.0.4) of what the
//! daemon counts: each metric family once, with its `# HELP` and `# TYPE`,
//! then its samples.

use std::fmt::Write as _;
use std::time::Duration;

use crate::dataplane::device::DeviceCounters;
use crate::dataplane::state::PeerState;
use crate::modes::mesh_member::MeshCounters;
use crate::modes::ready;

/// The content type of [`render`]'s output.
pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What one scrape reports of an interface.
#[derive(Debug, Clone)]
pub(super) struct Snapshot {
    /// The interface's name.
    pub(super) interface: String,
    /// The device's counters.
    pub(super) device: DeviceCounters,
    /// The mesh member's counters, when the interface is a mesh member.
    pub(super) mesh: Option<MeshCounters>,
    /// The time of the scrape, since the Unix epoch.
    pub(super) now: Duration,
}

/// The exposition of `snapshot`.
pub(super) fn render(snapshot: &Snapshot) -> String {
    let mut out = Exposition {
        text: String::new(),
        interface: escape(&snapshot.interface),
    };
    let device = &snapshot.device;
    let handshakes: Vec<Option<Duration>> = device
        .peers
        .iter()
        .map(|peer| peer.last_handshake)
        .collect();
    out.single(
        "sentrymesh_peers",
        "gauge",
        "Peers of the interface.",
        device.peers.len(),
    );
    out.single(
        "sentrymesh_live_sessions",
        "gauge",
        "Peers with a handshake in the last 180 seconds.",
        ready::live_sessions(&handshakes, snapshot.now),
    );
    out.per_peer(
        device,
        "sentrymesh_peer_receive_bytes_total",
        "counter",
        "Bytes received from the peer.",
        |peer| peer.rx_bytes,
    );
    out.per_peer(
        device,
        "sentrymesh_peer_transmit_bytes_total",
        "counter",
        "Bytes sent to the peer.",
        |peer| peer.tx_bytes,
    );
    out.per_peer(
        device,
        "sentrymesh_peer_last_handshake_seconds",
        "gauge",
        "When the last handshake with the peer completed, in Unix seconds; 0: never.",
        |peer| peer.last_handshake.map_or(0, |at| at.as_secs()),
    );
    let drops = &device.drops;
    let staging = &device.staging;
    out.by_label(
        "sentrymesh_dropped_packets_total",
        "counter",
        "Packets the device dropped, by reason (firewall_*: the overlay firewall's; staging_full: \
         waiting for a session, dropped for room; no_session: waiting for a handshake that gave \
         up, or a peer removed).",
        "reason",
        [
            ("no_route", drops.no_route),
            ("malformed_from_tun", drops.malformed_from_tun),
            ("not_allowed_source", drops.not_allowed_source),
            ("send_error", drops.send_errors),
            ("staging_full", staging.dropped_for_room),
            ("no_session", staging.dropped_no_session),
        ]
        .into_iter()
        .chain(drops.firewall.by_reason()),
    );
    out.single(
        "sentrymesh_staged_packets",
        "gauge",
        "Packets waiting for a peer's session, all peers together.",
        staging.packets,
    );
    out.single(
        "sentrymesh_staged_bytes",
        "gauge",
        &format!(
            "What the packets waiting for a session are charged against the interface's \
             budget ({} MiB).",
            sentrymesh_tunnel::staging::BUDGET_BYTES >> 20
        ),
        staging.bytes,
    );
    out.single(
        "sentrymesh_conntrack_entries",
        "gauge",
        "Flows the firewall's connection tracker holds.",
        device.conntrack.entries,
    );
    out.single(
        "sentrymesh_conntrack_capacity",
        "gauge",
        "The most flows the firewall's connection tracker holds.",
        device.conntrack.capacity,
    );
    out.single(
        "sentrymesh_conntrack_evictions_total",
        "counter",
        "Live flows the connection tracker evicted to make room for new ones.",
        device.conntrack.evictions,
    );
    out.by_label(
        "sentrymesh_dropped_datagrams_total",
        "counter",
        "Datagrams from the socket the device dropped, by reason.",
        "reason",
        drops.datagrams.by_reason(),
    );
    out.single(
        "sentrymesh_cookie_replies_sent_total",
        "counter",
        "Cookie replies sent: handshake messages answered under load with a cookie instead of \
         a handshake.",
        device.cookie_replies_sent,
    );
    out.by_label(
        "sentrymesh_handshake_shedding_one_in",
        "gauge",
        "Under a handshake flood, one in this many handshake messages reaches the daemon, by \
         their mac2 (zero: no cookie; set: a cookie claimed); the socket's filter drops the \
         rest on arrival. 1: nothing is shed.",
        "mac2",
        [
            ("zero", u64::from(device.shedding_no_cookie)),
            ("set", u64::from(device.shedding_claimed_cookie)),
        ],
    );
    if let Some(mesh) = &snapshot.mesh {
        render_mesh(&mut out, mesh);
    }
    out.text
}

/// The mesh member's families.
fn render_mesh(out: &mut Exposition, mesh: &MeshCounters) {
    out.single(
        "sentrymesh_mesh_peers",
        "gauge",
        "Peers the mesh's cards, roles and trust give this host.",
        mesh.peers,
    );
    out.single(
        "sentrymesh_mesh_admitted_operators",
        "gauge",
        "Operators this host admits, its own included.",
        mesh.admitted_operators,
    );
    out.single(
        "sentrymesh_mesh_cards_out_of_range_total",
        "counter",
        "Cards refused for an address, allowed IP or endpoint outside what their operator's \
         overlay range allows, each card counted once.",
        mesh.cards_out_of_range,
    );
    out.single(
        "sentrymesh_mesh_peers_refused_total",
        "counter",
        "Peer changes the interface refused (a key it cannot peer with, a full peer table), \
         skipped while the member goes on.",
        mesh.peers_refused,
    );
    out.by_label(
        "sentrymesh_mesh_objects",
        "gauge",
        "Signed objects this host holds, by kind.",
        "kind",
        [
            ("card", mesh.cards),
            ("vouch", mesh.vouches),
            ("revocation", mesh.revocations),
        ],
    );
    let gossip = &mesh.gossip;
    out.by_label(
        "sentrymesh_gossip_messages_total",
        "counter",
        "Gossip messages queued for a peer (sent); of those, the ones not sent because the peer \
         has never had a session (no_session: a handshake is started instead); and those \
         received, by what became of them.",
        "outcome",
        [
            ("sent", gossip.messages_sent),
            ("no_session", mesh.gossip_no_session),
            ("received", gossip.messages_received),
            ("malformed", gossip.messages_malformed),
            ("from_stranger", gossip.messages_from_strangers),
            ("over_budget", gossip.messages_over_budget),
        ],
    );
    out.by_label(
        "sentrymesh_gossip_objects_total",
        "counter",
        "Objects received by gossip, by what became of them.",
        "outcome",
        [
            ("new", gossip.objects_new),
            ("known", gossip.objects_known),
            ("refused", gossip.objects_refused),
            ("not_for_us", gossip.objects_not_for_us),
        ],
    );
    out.by_label(
        "sentrymesh_gossip_objects_refused_total",
        "counter",
        "Of the objects refused, those signed by an operator not admitted (dropped before their \
         signature was checked) and those their signer's quota or the store had no room for.",
        "reason",
        [
            ("not_admitted", gossip.objects_not_admitted),
            ("over_quota", gossip.objects_over_quota),
        ],
    );
    out.single(
        "sentrymesh_gossip_key_conflicts_total",
        "counter",
        "Cards refused for a WireGuard key another operator's card holds: with proofs of \
         possession, a key's holder that signed for two operators (a host handed over, a key \
         copied), not a rival's claim.",
        gossip.key_conflicts,
    );
    let introductions = &mesh.introductions;
    let received = &introductions.received;
    let sent = &introductions.sent;
    out.by_label(
        "sentrymesh_introductions_total",
        "counter",
        "Introductions this host sealed, and those it heard by what became of them.",
        "outcome",
        [
            ("sealed", sent.sealed),
            ("accepted", received.accepted),
            ("rate_limited", received.rate_limited),
            ("over_budget", received.over_budget),
            ("malformed", received.malformed),
            ("bad_mac", received.bad_mac),
            ("not_for_us", received.not_for_us),
            ("stale", received.stale),
            ("not_admitted", received.not_admitted),
            ("replayed", received.replayed),
            ("bad_card", received.bad_card),
        ],
    );
    out.by_label(
        "sentrymesh_introduction_checks_total",
        "counter",
        "Expensive checks of introductions, paid from a budget shared by all senders.",
        "check",
        [
            ("key_agreement", received.key_agreements),
            ("signature", received.signature_checks),
        ],
    );
    out.by_label(
        "sentrymesh_introduction_cookies_total",
        "counter",
        "Cookies: replies this host sent under load instead of opening an introduction (and \
         those its per-source limit held back), introductions it heard that proved their source \
         with one; replies it took for its own introductions (and refused), and its \
         introductions sealed with one.",
        "outcome",
        [
            ("replied", received.cookie_replies),
            ("reply_limited", received.reply_limited),
            ("proven", received.proven),
            ("taken", sent.cookies_taken),
            ("refused", sent.replies_refused),
            ("sealed_with", sent.with_cookie),
        ],
    );
}

/// The text being written, and the interface label every sample carries.
struct Exposition {
    text: String,
    interface: String,
}

impl Exposition {
    /// A family of one sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl Into<Value>) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A family with a sample for each value of `label`.
    fn by_label<V: Into<Value>>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        label: &str,
        samples: impl IntoIterator<Item = (&'static str, V)>,
    ) {
        self.family(name, kind, help);
        for (text, value) in samples {
            self.sample(name, &[(label, text)], value);
        }
    }

    /// A family with a sample for each peer, labelled with its public key.
    fn per_peer(
        &mut self,
        device: &DeviceCounters,
        name: &str,
        kind: &str,
        help: &str,
        value: impl Fn(&PeerState) -> u64,
    ) {
        self.family(name, kind, help);
        for peer in &device.peers {
            let key = peer.public_key.to_string();
            self.sample(name, &[("peer", &key)], value(peer));
        }
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        let _ = write!(self.text, "{name}{{interface=\"{}\"", self.interface);
        for (label, text) in labels {
            let _ = write!(self.text, ",{label}=\"{}\"", escape(text));
        }
        let _ = writeln!(self.text, "}} {}", value.into().0);
    }
}

/// A sample's value: every one is a count.
struct Value(u64);

impl From<u64> for Value {
    fn from(value: u64) -> Self {
        Self(value)
    }
}

impl From<usize> for Value {
    fn from(value: usize) -> Self {
        Self(u64::try_from(value).unwrap_or(u64::MAX))
    }
}

/// A label value as the format wants it: backslash, double quote and line
/// feed escaped.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use sentrymesh_tunnel::StagingStats;
    use sentrymesh_types::PrivateKey;

    use super::*;
    use crate::dataplane::device::{DatagramDrops, DropCounters};
    use crate::dataplane::firewall::{ConntrackCounters, FirewallDrops};

    const NOW: Duration = Duration::from_secs(1_790_000_000);

    fn snapshot() -> Snapshot {
        let key = |seed: u8| PrivateKey::from_bytes([seed; 32]).public_key();
        Snapshot {
            interface: "sm0".to_owned(),
            device: DeviceCounters {
                peers: vec![
                    PeerState {
                        public_key: key(1),
                        endpoint: Some("198.18.0.2:51820".parse().unwrap()),
                        last_handshake: Some(NOW - Duration::from_secs(30)),
                        rx_bytes: 1_000,
                        tx_bytes: 2_000,
                        persistent_keepalive: None,
                        allowed_ips: vec!["198.19.1.2/32".parse().unwrap()],
                    },
                    PeerState {
                        public_key: key(2),
                        endpoint: None,
                        last_handshake: None,
                        rx_bytes: 0,
                        tx_bytes: 148,
                        persistent_keepalive: Some(25),
                        allowed_ips: Vec::new(),
                    },
                ],
                drops: DropCounters {
                    no_route: 3,
                    datagrams: DatagramDrops {
                        cookie_required: 7,
                        ..DatagramDrops::default()
                    },
                    firewall: FirewallDrops {
                        inbound: 4,
                        ..FirewallDrops::default()
                    },
                    ..DropCounters::default()
                },
                cookie_replies_sent: 5,
                shedding_no_cookie: 16,
                shedding_claimed_cookie: 1,
                conntrack: ConntrackCounters {
                    entries: 12,
                    capacity: 32_768,
                    evictions: 1,
                },
                staging: StagingStats {
                    packets: 2,
                    bytes: 3_000,
                    dropped_for_room: 9,
                    dropped_no_session: 6,
                },
            },
            mesh: None,
            now: NOW,
        }
    }

    #[test]
    fn every_family_has_help_and_type_then_its_samples() {
        let text = render(&snapshot());
        let key = PrivateKey::from_bytes([1; 32]).public_key().to_string();
        for line in [
            "# TYPE sentrymesh_peers gauge",
            "sentrymesh_peers{interface=\"sm0\"} 2",
            "sentrymesh_live_sessions{interface=\"sm0\"} 1",
            &format!(
                "sentrymesh_peer_receive_bytes_total{{interface=\"sm0\",peer=\"{key}\"}} 1000"
            ),
            &format!(
                "sentrymesh_peer_transmit_bytes_total{{interface=\"sm0\",peer=\"{key}\"}} 2000"
            ),
            &format!(
                "sentrymesh_peer_last_handshake_seconds{{interface=\"sm0\",peer=\"{key}\"}} {}",
                NOW.as_secs() - 30
            ),
            "sentrymesh_dropped_packets_total{interface=\"sm0\",reason=\"no_route\"} 3",
            "sentrymesh_dropped_packets_total{interface=\"sm0\",reason=\"send_error\"} 0",
            "sentrymesh_dropped_packets_total{interface=\"sm0\",reason=\"firewall_inbound\"} 4",
            "sentrymesh_dropped_packets_total{interface=\"sm0\",reason=\"firewall_fragment\"} 0",
            "sentrymesh_dropped_packets_total{interface=\"sm0\",reason=\"staging_full\"} 9",
            "sentrymesh_dropped_packets_total{interface=\"sm0\",reason=\"no_session\"} 6",
            "sentrymesh_staged_packets{interface=\"sm0\"} 2",
            "sentrymesh_staged_bytes{interface=\"sm0\"} 3000",
            "sentrymesh_conntrack_entries{interface=\"sm0\"} 12",
            "sentrymesh_conntrack_capacity{interface=\"sm0\"} 32768",
            "sentrymesh_conntrack_evictions_total{interface=\"sm0\"} 1",
            "sentrymesh_dropped_datagrams_total{interface=\"sm0\",reason=\"cookie_required\"} 7",
            "sentrymesh_dropped_datagrams_total{interface=\"sm0\",reason=\"truncated\"} 0",
            "sentrymesh_cookie_replies_sent_total{interface=\"sm0\"} 5",
            "sentrymesh_handshake_shedding_one_in{interface=\"sm0\",mac2=\"zero\"} 16",
            "sentrymesh_handshake_shedding_one_in{interface=\"sm0\",mac2=\"set\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in:\n{text}"
            );
        }
        // Each family is declared once, before its samples.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!declared.contains(&name.to_owned()), "{name} twice");
                declared.push(name.to_owned());
            } else if !line.starts_with("# HELP ") {
                let name = line.split('{').next().unwrap();
                assert_eq!(declared.last().map(String::as_str), Some(name), "{line}");
            }
        }
        assert!(!text.contains("gossip"), "no mesh, no mesh families");
    }

    #[test]
    fn a_mesh_member_reports_its_store_and_gossip() {
        let mut snapshot = snapshot();
        let mut counters = MeshCounters {
            peers: 4,
            admitted_operators: 3,
            cards: 9,
            vouches: 2,
            revocations: 1,
            cards_out_of_range: 6,
            peers_refused: 8,
            gossip_no_session: 12,
            ..MeshCounters::default()
        };
        counters.gossip.messages_over_budget = 5;
        counters.gossip.objects_new = 11;
        counters.introductions.received.rate_limited = 7;
        counters.introductions.received.cookie_replies = 4;
        counters.introductions.received.not_admitted = 3;
        counters.introductions.received.signature_checks = 2;
        counters.gossip.objects_not_admitted = 7;
        snapshot.mesh = Some(counters);
        let text = render(&snapshot);
        for line in [
            "sentrymesh_mesh_peers{interface=\"sm0\"} 4",
            "sentrymesh_mesh_admitted_operators{interface=\"sm0\"} 3",
            "sentrymesh_mesh_cards_out_of_range_total{interface=\"sm0\"} 6",
            "sentrymesh_mesh_peers_refused_total{interface=\"sm0\"} 8",
            "sentrymesh_mesh_objects{interface=\"sm0\",kind=\"card\"} 9",
            "sentrymesh_mesh_objects{interface=\"sm0\",kind=\"revocation\"} 1",
            "sentrymesh_gossip_messages_total{interface=\"sm0\",outcome=\"over_budget\"} 5",
            "sentrymesh_gossip_messages_total{interface=\"sm0\",outcome=\"no_session\"} 12",
            "sentrymesh_gossip_objects_total{interface=\"sm0\",outcome=\"new\"} 11",
            "sentrymesh_gossip_objects_refused_total{interface=\"sm0\",reason=\"not_admitted\"} 7",
            "sentrymesh_gossip_key_conflicts_total{interface=\"sm0\"} 0",
            "sentrymesh_introductions_total{interface=\"sm0\",outcome=\"rate_limited\"} 7",
            "sentrymesh_introductions_total{interface=\"sm0\",outcome=\"not_admitted\"} 3",
            "sentrymesh_introduction_checks_total{interface=\"sm0\",check=\"signature\"} 2",
            "sentrymesh_introduction_cookies_total{interface=\"sm0\",outcome=\"replied\"} 4",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in:\n{text}"
            );
        }
    }

    #[test]
    fn no_peer_address_or_allowed_ip_is_exposed() {
        let text = render(&snapshot());
        for address in ["198.18.0.2", "51820", "198.19.1.2"] {
            assert!(!text.contains(address), "{address} in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape("sm0"), "sm0");
    }
}
