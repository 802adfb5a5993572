//! `export nodeos`: the lines of a nodeos `config.ini` (EOSIO, Leap,
//! Spring) that name this host's chain peers.
//!
//! * `p2p-peer-address = ADDRESS:PORT` for each mesh peer with a chain
//!   p2p address, at its overlay address: the mesh's roles already say
//!   whom a host peers with (a producer its own sentries and full nodes, a
//!   sentry its own producers and admitted operators' public hosts).
//! * `peer-key = "KEY"` for each of them whose card carries a nodeos peer
//!   key, and `allowed-connection = specified` when every one does: then
//!   the node accepts exactly its mesh peers. When some have none, the
//!   line is left out (with a comment saying whose key is missing), since
//!   `specified` would refuse them.

use std::fmt::Write as _;

use super::view::ChainView;

/// The `config.ini` lines for the host of `view`, under a comment naming
/// the host.
pub fn nodeos(view: &ChainView) -> String {
    let mut text = view.heading("nodeos");
    text.push_str("\n# Lines for nodeos's config.ini: the peers to dial, through the mesh.\n");
    let peers: Vec<_> = view.chain_peers().collect();
    for peer in &peers {
        let _ = writeln!(text, "p2p-peer-address = {}", peer.overlay_address());
    }
    let keyless: Vec<&str> = peers
        .iter()
        .filter(|peer| peer.p2p.nodeos_peer_key.is_none())
        .map(|peer| peer.card.name.as_str())
        .collect();
    if !peers.is_empty() && keyless.is_empty() {
        text.push_str("allowed-connection = specified\n");
    }
    for key in peers
        .iter()
        .filter_map(|peer| peer.p2p.nodeos_peer_key.as_ref())
    {
        let _ = writeln!(text, "peer-key = \"{key}\"");
    }
    if !keyless.is_empty() && keyless.len() < peers.len() {
        let _ = writeln!(
            text,
            "# allowed-connection left as it is: no nodeos peer key on the cards of {}",
            keyless.join(", ")
        );
    }
    let unnamed: Vec<&str> = view
        .peers_without_p2p()
        .map(|card| card.name.as_str())
        .collect();
    if !unnamed.is_empty() {
        let _ = writeln!(
            text,
            "# Not listed, their cards have no chain p2p address: {}",
            unnamed.join(", ")
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use sentrymesh_mesh::{NodeosPeerKey, Role};

    use super::*;
    use crate::cli::export::tests::{OTHER, OWN, view};

    /// A host of the fixtures, with nodeos's customary p2p port.
    fn host(operator: u8, name: &str, role: Role, n: u8) -> sentrymesh_mesh::HostCard {
        let mut card = crate::cli::export::tests::host(operator, name, role, n);
        if let Some(p2p) = card.chain_p2p.as_mut() {
            p2p.port = 9876;
        }
        card
    }

    const KEY: &str = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV";
    const K1_KEY: &str = "PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63";

    fn with_key(mut card: sentrymesh_mesh::HostCard, key: &str) -> sentrymesh_mesh::HostCard {
        let key: NodeosPeerKey = key.parse().unwrap();
        if let Some(p2p) = card.chain_p2p.as_mut() {
            p2p.nodeos_peer_key = Some(key);
        }
        card
    }

    /// The lines that are not comments.
    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|line| !line.starts_with('#')).collect()
    }

    #[test]
    fn a_producer_dials_its_sentries_and_admits_only_their_keys() {
        let view = view(
            host(OWN, "producer", Role::Producer, 1),
            vec![
                with_key(host(OWN, "sentry-b", Role::Sentry, 3), K1_KEY),
                with_key(host(OWN, "sentry-a", Role::Sentry, 2), KEY),
                with_key(host(OTHER, "rival-producer", Role::Producer, 6), KEY),
            ],
        );
        let text = nodeos(&view);
        assert_eq!(
            lines(&text),
            [
                "p2p-peer-address = 198.19.0.2:9876",
                "p2p-peer-address = 198.19.0.3:9876",
                "allowed-connection = specified",
                &format!("peer-key = \"{KEY}\""),
                &format!("peer-key = \"{K1_KEY}\""),
            ],
            "{text}"
        );
        assert!(!text.contains("rival-producer") && !text.contains("198.19.0.6"));
    }

    #[test]
    fn a_peer_without_a_key_keeps_allowed_connection_open() {
        let view = view(
            host(OWN, "sentry-a", Role::Sentry, 2),
            vec![
                with_key(host(OWN, "producer", Role::Producer, 1), KEY),
                host(OTHER, "rival-sentry", Role::Sentry, 5),
            ],
        );
        let text = nodeos(&view);
        assert_eq!(
            lines(&text),
            [
                "p2p-peer-address = 198.19.0.1:9876",
                "p2p-peer-address = 198.19.0.5:9876",
                &format!("peer-key = \"{KEY}\""),
            ],
            "{text}"
        );
        assert!(
            text.contains(
                "# allowed-connection left as it is: no nodeos peer key on the cards of \
                 rival-sentry\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn without_keys_or_chain_addresses_only_what_is_known_is_written() {
        let mut bare = host(OWN, "sentry-b", Role::Sentry, 3);
        bare.chain_p2p = None;
        let mesh = view(
            host(OWN, "producer", Role::Producer, 1),
            vec![host(OWN, "sentry-a", Role::Sentry, 2), bare],
        );
        let text = nodeos(&mesh);
        assert_eq!(
            lines(&text),
            ["p2p-peer-address = 198.19.0.2:9876"],
            "{text}"
        );
        assert!(text.contains("# Not listed, their cards have no chain p2p address: sentry-b\n"));
        let alone = nodeos(&view(host(OWN, "producer", Role::Producer, 1), vec![]));
        assert!(lines(&alone).is_empty(), "{alone}");
    }
}
