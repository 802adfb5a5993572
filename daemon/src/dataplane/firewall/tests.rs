use std::time::{Duration, Instant};

use sentrymesh_mesh::{OperatorId, OperatorSecret, Role};

use super::testing::{echo, fragment_v4, icmp, ip, peer_ids, tcp_packet, udp_packet};
use super::*;

const US: &str = "198.19.1.1";
const RIVAL: &str = "198.19.2.1";

fn operator(seed: u8) -> OperatorId {
    OperatorSecret::from_seed([seed; 32]).operator_id()
}

fn local() -> Local {
    Local {
        operator: operator(1),
        chain_p2p_port: Some(26656),
        gossip_port: 51900,
    }
}

fn class(seed: u8, role: Role) -> PeerClass {
    PeerClass {
        operator: operator(seed),
        role,
        chain_p2p_port: Some(26656),
    }
}

/// A firewall with a rival sentry (operator 2) and an own sentry as peers,
/// under `rules`.
fn firewall(rules: &Rules) -> (Firewall, PeerId, PeerId) {
    let [rival, own] = peer_ids();
    let mut firewall = Firewall::new(1024);
    firewall.set_policy(rival, rules.policy(&local(), &class(2, Role::Sentry)));
    firewall.set_policy(own, rules.policy(&local(), &class(1, Role::Producer)));
    (firewall, rival, own)
}

fn inbound(firewall: &mut Firewall, now: Instant, peer: PeerId, packet: &[u8]) -> bool {
    firewall
        .check(now, Direction::Inbound, peer, packet)
        .is_ok()
}

fn outbound(firewall: &mut Firewall, now: Instant, peer: PeerId, packet: &[u8]) -> bool {
    firewall
        .check(now, Direction::Outbound, peer, packet)
        .is_ok()
}

#[test]
fn a_rival_reaches_the_chain_port_gossip_and_echo_only() {
    let (mut firewall, rival, own) = firewall(&Rules::default());
    let now = Instant::now();
    assert!(inbound(
        &mut firewall,
        now,
        rival,
        &tcp_packet(RIVAL, 40000, US, 26656)
    ));
    assert!(inbound(
        &mut firewall,
        now,
        rival,
        &udp_packet(RIVAL, 51900, US, 51900)
    ));
    assert!(inbound(
        &mut firewall,
        now,
        rival,
        &echo(RIVAL, US, false, 1)
    ));
    for port in [22, 9586, 26657] {
        assert!(!inbound(
            &mut firewall,
            now,
            rival,
            &tcp_packet(RIVAL, 40000, US, port)
        ));
    }
    assert!(!inbound(
        &mut firewall,
        now,
        rival,
        &udp_packet(RIVAL, 53, US, 53)
    ));
    assert!(!inbound(
        &mut firewall,
        now,
        rival,
        &ip(RIVAL, US, 47, &[0; 4])
    ));
    assert_eq!(
        firewall.drops(),
        FirewallDrops {
            inbound: 5,
            ..FirewallDrops::default()
        }
    );
    // The own operator's host reaches everything, without being read.
    for port in [22, 9586] {
        assert!(inbound(
            &mut firewall,
            now,
            own,
            &tcp_packet("198.19.1.2", 40000, US, port)
        ));
    }
    assert!(inbound(&mut firewall, now, own, &[0xff; 3]));
    // What a rival opens where the rules allow it is not tracked, whatever
    // the answers: it fills no table.
    assert_eq!(firewall.conntrack(now).entries, 0);
    assert!(outbound(
        &mut firewall,
        now,
        rival,
        &tcp_packet(US, 26656, RIVAL, 40000)
    ));
    assert_eq!(firewall.conntrack(now).entries, 0);
    // This host answers the rival's echo: outbound is open.
    assert!(outbound(
        &mut firewall,
        now,
        rival,
        &echo(US, RIVAL, true, 1)
    ));
    // A peer without a policy (not a mesh peer) is left alone.
    let [_, _, stranger] = peer_ids();
    assert!(inbound(
        &mut firewall,
        now,
        stranger,
        &tcp_packet(RIVAL, 1, US, 22)
    ));
}

#[test]
fn replies_to_what_this_host_opened_pass_until_the_flow_expires() {
    let (mut firewall, rival, _) = firewall(&Rules::default());
    let start = Instant::now();
    // Not before we open it.
    assert!(!inbound(
        &mut firewall,
        start,
        rival,
        &tcp_packet(RIVAL, 443, US, 40000)
    ));
    assert!(outbound(
        &mut firewall,
        start,
        rival,
        &tcp_packet(US, 40000, RIVAL, 443)
    ));
    assert!(inbound(
        &mut firewall,
        start,
        rival,
        &tcp_packet(RIVAL, 443, US, 40000)
    ));
    // Another port of ours is still closed.
    assert!(!inbound(
        &mut firewall,
        start,
        rival,
        &tcp_packet(RIVAL, 443, US, 40001)
    ));
    // Each packet keeps the flow alive; twelve idle minutes end it.
    let later = start + Duration::from_secs(11 * 60);
    assert!(inbound(
        &mut firewall,
        later,
        rival,
        &tcp_packet(RIVAL, 443, US, 40000)
    ));
    let idle = later + Duration::from_secs(12 * 60);
    assert!(!inbound(
        &mut firewall,
        idle,
        rival,
        &tcp_packet(RIVAL, 443, US, 40000)
    ));
    // Echo: the reply passes once we asked.
    assert!(!inbound(
        &mut firewall,
        start,
        rival,
        &echo(RIVAL, US, true, 9)
    ));
    assert!(outbound(
        &mut firewall,
        start,
        rival,
        &echo(US, RIVAL, false, 9)
    ));
    assert!(inbound(
        &mut firewall,
        start,
        rival,
        &echo(RIVAL, US, true, 9)
    ));
    // A flow of one peer is not another's.
    let [_, _, other] = peer_ids();
    firewall.set_policy(
        other,
        Rules::default().policy(&local(), &class(3, Role::Sentry)),
    );
    assert!(!inbound(
        &mut firewall,
        later,
        other,
        &tcp_packet(RIVAL, 443, US, 40000)
    ));
}

#[test]
fn inbound_flows_are_tracked_when_outbound_is_closed() {
    let rules = Rules {
        outbound: Some(Vec::new()),
        ..Rules::default()
    };
    let (mut firewall, rival, _) = firewall(&rules);
    let now = Instant::now();
    // What this host opens is limited to the defaults...
    assert!(!outbound(
        &mut firewall,
        now,
        rival,
        &tcp_packet(US, 40000, RIVAL, 22)
    ));
    assert!(outbound(
        &mut firewall,
        now,
        rival,
        &tcp_packet(US, 40000, RIVAL, 26656)
    ));
    // ...but it answers what the rival may open.
    assert!(!outbound(
        &mut firewall,
        now,
        rival,
        &tcp_packet(US, 26656, RIVAL, 41000)
    ));
    assert!(inbound(
        &mut firewall,
        now,
        rival,
        &tcp_packet(RIVAL, 41000, US, 26656)
    ));
    assert!(outbound(
        &mut firewall,
        now,
        rival,
        &tcp_packet(US, 26656, RIVAL, 41000)
    ));
    assert!(!outbound(
        &mut firewall,
        now,
        rival,
        &echo(US, RIVAL, true, 3)
    ));
    assert!(inbound(
        &mut firewall,
        now,
        rival,
        &echo(RIVAL, US, false, 3)
    ));
    assert!(outbound(
        &mut firewall,
        now,
        rival,
        &echo(US, RIVAL, true, 3)
    ));
    assert_eq!(firewall.drops().outbound, 3);
}

#[test]
fn later_fragments_pass_only_behind_a_first_one_let_through() {
    let (mut firewall, rival, _) = firewall(&Rules::default());
    let now = Instant::now();
    let allowed = tcp_packet(RIVAL, 40000, US, 26656);
    let denied = {
        let mut packet = tcp_packet(RIVAL, 40000, US, 22);
        packet[4..6].copy_from_slice(&0x5678u16.to_be_bytes());
        packet
    };
    assert!(!inbound(
        &mut firewall,
        now,
        rival,
        &fragment_v4(allowed.clone(), 4, false)
    ));
    assert_eq!(firewall.drops().fragment, 1);
    assert!(inbound(
        &mut firewall,
        now,
        rival,
        &fragment_v4(allowed.clone(), 0, true)
    ));
    assert!(inbound(
        &mut firewall,
        now,
        rival,
        &fragment_v4(allowed.clone(), 4, false)
    ));
    assert!(!inbound(
        &mut firewall,
        now,
        rival,
        &fragment_v4(denied.clone(), 0, true)
    ));
    assert!(!inbound(
        &mut firewall,
        now,
        rival,
        &fragment_v4(denied, 4, false)
    ));
    let late = now + Duration::from_secs(11);
    assert!(!inbound(
        &mut firewall,
        late,
        rival,
        &fragment_v4(allowed, 8, false)
    ));
}

#[test]
fn icmp_errors_pass_only_about_our_own_packets_to_their_sender() {
    let (mut firewall, rival, _) = firewall(&Rules::default());
    let now = Instant::now();
    let ours = tcp_packet(US, 40000, RIVAL, 443);
    assert!(inbound(
        &mut firewall,
        now,
        rival,
        &ip(RIVAL, US, 1, &icmp(3, 0, &ours))
    ));
    let someone_elses = tcp_packet(US, 40000, "198.19.3.1", 443);
    assert!(!inbound(
        &mut firewall,
        now,
        rival,
        &ip(RIVAL, US, 1, &icmp(3, 0, &someone_elses))
    ));
    assert!(!inbound(&mut firewall, now, rival, &[0x45, 0, 0]));
    assert_eq!(
        firewall.drops(),
        FirewallDrops {
            icmp_error: 1,
            malformed: 1,
            ..FirewallDrops::default()
        }
    );
}

#[test]
fn a_new_policy_keeps_the_flows_it_still_allows() {
    let (mut firewall, rival, _) = firewall(&Rules::default());
    let now = Instant::now();
    let port_8080 = Rules {
        inbound: vec![
            Rule::new(
                From::Operators,
                None,
                Proto::Tcp,
                Some("8080".parse().unwrap()),
            )
            .unwrap(),
        ],
        outbound: Some(Vec::new()),
        ..Rules::default()
    };
    assert!(!inbound(
        &mut firewall,
        now,
        rival,
        &tcp_packet(RIVAL, 40000, US, 8080)
    ));
    firewall.set_policy(rival, port_8080.policy(&local(), &class(2, Role::Sentry)));
    assert!(inbound(
        &mut firewall,
        now,
        rival,
        &tcp_packet(RIVAL, 40000, US, 8080)
    ));
    assert!(outbound(
        &mut firewall,
        now,
        rival,
        &tcp_packet(US, 8080, RIVAL, 40000)
    ));
    // Back to the defaults with outbound closed: the flow to 8080 goes,
    // its answers with it.
    let closed = Rules {
        outbound: Some(Vec::new()),
        ..Rules::default()
    };
    firewall.set_policy(rival, closed.policy(&local(), &class(2, Role::Sentry)));
    assert!(!outbound(
        &mut firewall,
        now,
        rival,
        &tcp_packet(US, 8080, RIVAL, 40000)
    ));
    // A removed peer's flows go with it.
    assert!(inbound(
        &mut firewall,
        now,
        rival,
        &tcp_packet(RIVAL, 40001, US, 26656)
    ));
    firewall.remove_peer(rival);
    assert_eq!(firewall.conntrack(now).entries, 0);
}

#[test]
fn the_tracker_keeps_its_flows_when_resized_and_stays_in_its_bound() {
    let (mut firewall, rival, _) = firewall(&Rules::default());
    let now = Instant::now();
    for port in 1000..1010 {
        assert!(outbound(
            &mut firewall,
            now,
            rival,
            &tcp_packet(US, port, RIVAL, 443)
        ));
    }
    firewall.resize(4096, now);
    assert_eq!(firewall.conntrack(now).capacity, 4096);
    assert_eq!(firewall.conntrack(now).entries, 10);
    assert!(inbound(
        &mut firewall,
        now,
        rival,
        &tcp_packet(RIVAL, 443, US, 1005)
    ));
    for port in 10_000..30_000 {
        outbound(&mut firewall, now, rival, &tcp_packet(US, port, RIVAL, 443));
    }
    let counters = firewall.conntrack(now);
    assert!(counters.entries <= 4096);
    assert!(counters.evictions >= 20_000 - 4096);
}

#[test]
fn a_drop_is_logged_once_a_minute_per_peer_and_service() {
    let (mut firewall, rival, _) = firewall(&Rules::default());
    let start = Instant::now();
    let ssh = tcp_packet(RIVAL, 40000, US, 22);
    let logged = firewall.check(start, Direction::Inbound, rival, &ssh);
    let dropped = logged.unwrap_err().unwrap();
    assert_eq!(dropped.reason, Refusal::NoRule(Service::Tcp(22)));
    assert_eq!(
        dropped.to_string(),
        "tcp to port 22 from the peer: no rule allows it"
    );
    assert_eq!(
        firewall.check(start, Direction::Inbound, rival, &ssh),
        Err(None)
    );
    let later = start + Duration::from_secs(61);
    assert!(
        firewall
            .check(later, Direction::Inbound, rival, &ssh)
            .unwrap_err()
            .is_some()
    );
    // Knocking on every port costs 20 lines a minute, no more.
    let mut lines = 0;
    for port in 1..2000 {
        let knock = tcp_packet(RIVAL, 40000, US, port);
        if let Err(Some(_)) = firewall.check(later, Direction::Inbound, rival, &knock) {
            lines += 1;
        }
    }
    assert_eq!(lines, 19);
}
