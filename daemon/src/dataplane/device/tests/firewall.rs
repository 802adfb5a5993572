//! The firewall in the device's two paths: a mesh peer's packets are
//! judged after its allowed IPs (UDP to TUN) and after routing (TUN to
//! UDP), and the replies to what this host opened come back.

use std::time::Instant;

use sentrymesh_mesh::{OperatorSecret, Role};

use super::*;
use crate::dataplane::firewall::testing::{tcp_packet, udp_packet};
use crate::dataplane::firewall::{FirewallDrops, Local, PeerClass, Rules};

/// Host 2's packet to host 1, sealed by host 2's engine as its device
/// would, and handed to host 1's socket.
fn send_to_one(one: &mut FakeDevice, two: &mut FakeDevice, now: Instant, packet: &[u8]) {
    let peer = two
        .interface
        .engine()
        .peer_id(&key(1).public_key())
        .unwrap();
    let mut out = vec![0; 1600];
    let Ok(Encapsulated::Sealed { len }) = two
        .interface
        .engine_mut()
        .encapsulate(now, peer, packet, &mut out)
    else {
        panic!("not sealed");
    };
    out.truncate(len);
    one.socket.inbox.push_back((underlay(2), out));
}

#[test]
fn a_rival_peer_reaches_only_what_its_policy_allows_and_replies_come_back() {
    let now = Instant::now();
    let (mut one, mut two) = connected_pair(now);
    // Host 2 becomes a sentry of another operator, under the defaults.
    let operator = |seed| OperatorSecret::from_seed([seed; 32]).operator_id();
    let local = Local {
        operator: operator(1),
        chain_p2p_port: Some(26656),
        gossip_port: 51900,
    };
    let class = PeerClass {
        operator: operator(2),
        role: Role::Sentry,
        chain_p2p_port: Some(26656),
    };
    let mut update = PeerUpdate::new(key(2).public_key());
    update.update_only = true;
    update.policy = Some(Rules::default().policy(&local, &class));
    let change = ConfigChange {
        peers: vec![PeerChange::Set(update)],
        ..ConfigChange::default()
    };
    one.apply(change, now).unwrap();

    let chain = tcp_packet("198.18.2.5", 40000, "198.18.1.1", 26656);
    let ssh = tcp_packet("198.18.2.5", 40000, "198.18.1.1", 22);
    let gossip = udp_packet("198.18.2.5", 51900, "198.18.1.1", 51900);
    for packet in [&chain, &ssh, &gossip] {
        send_to_one(&mut one, &mut two, now, packet);
    }
    one.drain_socket(now);
    assert_eq!(one.tun.written, [chain, gossip]);
    let dropped = one.interface.firewall().drops();
    assert_eq!(
        dropped,
        FirewallDrops {
            inbound: 1,
            ..FirewallDrops::default()
        }
    );
    one.tun.written.clear();

    // Host 1 opens a connection to host 2: sealed and sent, and the reply,
    // to a port no rule opens, comes back.
    let reply = tcp_packet("198.18.2.5", 443, "198.18.1.1", 41000);
    send_to_one(&mut one, &mut two, now, &reply);
    one.drain_socket(now);
    assert!(one.tun.written.is_empty(), "a reply before the request");
    one.tun
        .to_read
        .push_back(tcp_packet("198.18.1.1", 41000, "198.18.2.5", 443));
    one.drain_tun(now).unwrap();
    assert_eq!(one.socket.batches.iter().flatten().count(), 1);
    send_to_one(&mut one, &mut two, now, &reply);
    one.drain_socket(now);
    assert_eq!(one.tun.written, [reply]);
    // The reply that came before the request was dropped and counted.
    assert_eq!(one.interface.firewall().drops().inbound, 2);
}
