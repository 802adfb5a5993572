//! What a reload changes: the difference between the config an interface
//! runs and the one it re-read, in one line for the log and for the answer
//! `sentrymesh reload` prints.
//!
//! It counts and names settings; it never shows an address, an endpoint or
//! a key, so the line may go to any log (a hidden host's address must not).
//! A mesh member's peers come from the mesh's cards, not from the file:
//! what a reload does to them is logged by the member as it happens; here
//! it is the trust that changed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sentrymesh_types::PublicKey;

use crate::config::{Config, MeshSettings, PeerSection};

/// The changes between two configs, each a short phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigChanges(Vec<String>);

impl ConfigChanges {
    /// What changes when an interface running `old` takes `new`.
    pub(crate) fn between(old: &Config, new: &Config) -> Self {
        let mut changes = Vec::new();
        let (was, is) = (&old.interface, &new.interface);
        if was.private_key.public_key() != is.private_key.public_key() {
            changes.push("a new private key".to_owned());
        }
        if was.listen_port != is.listen_port {
            changes.push(format!(
                "listen port {} -> {}",
                port_text(was.listen_port.map(|port| port.get())),
                port_text(is.listen_port.map(|port| port.get()))
            ));
        }
        if was.fwmark != is.fwmark {
            changes.push("a new fwmark".to_owned());
        }
        if was.mtu != is.mtu {
            changes.push(format!("mtu {} -> {}", was.mtu, is.mtu));
        }
        let addresses = |config: &Config| -> BTreeSet<String> {
            config
                .interface
                .addresses
                .iter()
                .map(|address| format!("{}/{}", address.addr(), address.prefix_len()))
                .collect()
        };
        push_counts(&mut changes, "addresses", &addresses(old), &addresses(new));
        peer_changes(&mut changes, &old.peers, &new.peers);
        if old.min_trusted_peers != new.min_trusted_peers {
            changes.push(format!(
                "min_trusted_peers {} -> {}",
                old.min_trusted_peers, new.min_trusted_peers
            ));
        }
        if let (Some(was), Some(is)) = (&old.mesh, &new.mesh) {
            trust_changes(&mut changes, was, is);
        }
        Self(changes)
    }
}

impl fmt::Display for ConfigChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing changed");
        }
        f.write_str(&self.0.join("; "))
    }
}

fn port_text(port: Option<u16>) -> String {
    port.map_or_else(|| "any".to_owned(), |port| port.to_string())
}

/// Pushes "WHAT +N -M" when items of `old` and `new` differ.
fn push_counts<T: Ord>(
    changes: &mut Vec<String>,
    what: &str,
    old: &BTreeSet<T>,
    new: &BTreeSet<T>,
) {
    let added = new.difference(old).count();
    let removed = old.difference(new).count();
    if added + removed > 0 {
        changes.push(format!("{what} +{added} -{removed}"));
    }
}

/// The `[[peer]]` sections added, removed and changed (by public key).
fn peer_changes(changes: &mut Vec<String>, old: &[PeerSection], new: &[PeerSection]) {
    let by_key = |peers: &[PeerSection]| -> BTreeMap<PublicKey, PeerSection> {
        peers
            .iter()
            .map(|peer| (peer.public_key, peer.clone()))
            .collect()
    };
    let (old, new) = (by_key(old), by_key(new));
    let added = new.keys().filter(|key| !old.contains_key(key)).count();
    let removed = old.keys().filter(|key| !new.contains_key(key)).count();
    let changed = new
        .iter()
        .filter(|(key, peer)| old.get(key).is_some_and(|was| !same_peer(was, peer)))
        .count();
    if added + removed + changed > 0 {
        changes.push(format!("peers +{added} -{removed} ~{changed}"));
    }
}

fn same_peer(a: &PeerSection, b: &PeerSection) -> bool {
    a.endpoint == b.endpoint
        && a.allowed_ips == b.allowed_ips
        && a.preshared_key == b.preshared_key
        && a.persistent_keepalive == b.persistent_keepalive
}

/// What changed in `[trust]` and `[mesh]`.
fn trust_changes(changes: &mut Vec<String>, was: &MeshSettings, is: &MeshSettings) {
    let operators = |settings: &MeshSettings| -> BTreeSet<_> {
        settings
            .trusted_operators
            .iter()
            .map(|(id, range)| (*id, *range))
            .collect()
    };
    push_counts(
        changes,
        "trusted operators",
        &operators(was),
        &operators(is),
    );
    if was.vouch_threshold != is.vouch_threshold {
        changes.push(format!(
            "vouch_threshold {} -> {}",
            was.vouch_threshold, is.vouch_threshold
        ));
    }
    if was.overlay != is.overlay {
        changes.push("a new overlay".to_owned());
    }
    if was.own_overlay != is.own_overlay {
        changes.push("a new own_overlay".to_owned());
    }
    if was.card_file != is.card_file {
        changes.push("another card_file".to_owned());
    }
    if was.known_dir != is.known_dir {
        changes.push("another known_dir".to_owned());
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sentrymesh_types::PrivateKey;

    use super::*;
    use crate::config;

    const PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const PSK: &str = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=";

    fn peer(seed: u8, allowed: &str) -> String {
        let key = PrivateKey::from_bytes([seed; 32]).public_key();
        format!("[[peer]]\npublic_key = \"{key}\"\nallowed_ips = [\"{allowed}\"]\n")
    }

    fn config(interface: &str, peers: &[String]) -> Config {
        let text = format!(
            "[interface]\nname = \"sm0\"\nprivate_key_file = \"k\"\n{interface}\n{}",
            peers.concat()
        );
        config::parse(&text, Path::new("sm0.toml"))
            .unwrap()
            .resolve_keys(
                |_| Ok(PRIVATE.parse().unwrap()),
                |_| Ok(PSK.parse().unwrap()),
            )
            .unwrap()
    }

    #[test]
    fn the_same_config_changes_nothing() {
        let a = config(
            "addresses = [\"198.18.0.1/24\"]",
            &[peer(1, "198.18.0.2/32")],
        );
        let changes = ConfigChanges::between(&a, &a.clone());
        assert_eq!(changes, ConfigChanges(Vec::new()));
        assert_eq!(changes.to_string(), "nothing changed");
    }

    #[test]
    fn peers_addresses_and_mtu_are_counted_without_showing_them() {
        let old = config(
            "addresses = [\"198.18.0.1/24\"]\nmtu = 1420",
            &[peer(1, "198.18.0.2/32"), peer(2, "198.18.0.3/32")],
        );
        let new = config(
            "addresses = [\"198.18.0.1/24\", \"198.18.9.1/24\"]\nmtu = 1380\nlisten_port = 51820",
            &[
                peer(1, "198.18.0.2/32"),
                peer(2, "198.18.0.4/32"),
                peer(3, "198.18.0.5/32"),
            ],
        );
        let text = ConfigChanges::between(&old, &new).to_string();
        assert_eq!(
            text,
            "listen port any -> 51820; mtu 1420 -> 1380; addresses +1 -0; peers +1 -0 ~1"
        );
        let removed = ConfigChanges::between(&new, &old).to_string();
        assert!(removed.contains("peers +0 -1 ~1"), "{removed}");
        assert!(removed.contains("addresses +0 -1"), "{removed}");
    }

    #[test]
    fn trust_changes_are_named() {
        let operator = |seed: u8| {
            sentrymesh_mesh::OperatorSecret::from_seed([seed; 32])
                .operator_id()
                .to_string()
        };
        let mesh = |operators: &[(u8, &str)], threshold: usize| {
            let operators: Vec<String> = operators
                .iter()
                .map(|(seed, range)| {
                    format!("{{ id = \"{}\", overlay = \"{range}\" }}", operator(*seed))
                })
                .collect();
            config(
                &format!(
                    "addresses = [\"198.18.0.1/32\"]\n\n[mesh]\ncard_file = \"host.card\"\n\
                     state_dir = \"state\"\n\n[trust]\noverlay = \"198.18.0.0/16\"\n\
                     own_overlay = \"198.18.0.0/24\"\noperators = [{}]\n\
                     vouch_threshold = {threshold}",
                    operators.join(", ")
                ),
                &[],
            )
        };
        let old = mesh(&[(1, "198.18.1.0/24")], 1);
        let new = mesh(&[(1, "198.18.1.0/24"), (2, "198.18.2.0/24")], 2);
        assert_eq!(
            ConfigChanges::between(&old, &new).to_string(),
            "trusted operators +1 -0; vouch_threshold 1 -> 2"
        );
        // A trusted operator's range moved: one out, one in.
        let moved = mesh(&[(1, "198.18.3.0/24")], 1);
        assert_eq!(
            ConfigChanges::between(&old, &moved).to_string(),
            "trusted operators +1 -1"
        );
    }
}
