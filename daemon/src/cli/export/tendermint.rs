//! `export tendermint`: the `[p2p]` keys of a CometBFT (Tendermint)
//! `config.toml` that the sentry-node architecture prescribes.
//!
//! | key                | validator (producer)      | sentry                                   |
//! |--------------------|---------------------------|------------------------------------------|
//! | `persistent_peers` | its operator's sentries   | its validators (and, asked, its operator's other sentries) |
//! | `private_peer_ids` | —                         | its validators                           |
//! | `pex`              | `false`                   | `true`                                   |
//! | `addr_book_strict` | `false`                   | `false`                                  |
//! | `external_address` | —                         | its public endpoint's host, chain p2p port |
//!
//! Peers are written `ID@ADDRESS:PORT` with their overlay address, so the
//! chain's traffic between an operator's hosts goes through the tunnel;
//! `addr_book_strict = false` lets the nodes keep those (non-routable)
//! addresses. Only the operator's own hosts are named: a validator's
//! sentries and a sentry's validator are its operator's, and another
//! operator's hidden host is never in the view to begin with.

use std::fmt::Write as _;

use sentrymesh_mesh::{EndpointHost, Role};

use super::ExportError;
use super::view::{ChainPeer, ChainView, HostPort};

/// What `export tendermint` adds to the layout on request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TendermintOptions {
    /// On a sentry: its operator's other sentries in `persistent_peers`
    /// too.
    pub own_sentries: bool,
}

/// The `[p2p]` keys of `config.toml` for the host of `view`, as TOML lines
/// under a comment naming the host.
///
/// # Errors
///
/// [`ExportError::Role`] for a host neither producer nor sentry; for a
/// sentry, [`ExportError::NoChainP2p`] or [`ExportError::NoEndpoint`] when
/// its card lacks what its `external_address` is made of.
pub fn tendermint(view: &ChainView, options: TendermintOptions) -> Result<String, ExportError> {
    let local = &view.local;
    let mut text = view.heading("tendermint");
    text.push_str(
        "\n# The [p2p] keys of config.toml (CometBFT, Tendermint): replace them there.\n",
    );
    let (wanted, pex): (Vec<ChainPeer<'_>>, bool) = match local.role {
        Role::Producer => (
            view.chain_peers()
                .filter(|peer| peer.is_own(local, Role::Sentry))
                .collect(),
            false,
        ),
        Role::Sentry => {
            let p2p = local
                .chain_p2p
                .as_ref()
                .ok_or_else(|| ExportError::NoChainP2p {
                    host: local.name.clone(),
                })?;
            let endpoint = local
                .endpoints
                .first()
                .ok_or_else(|| ExportError::NoEndpoint {
                    host: local.name.clone(),
                })?;
            let external = match &endpoint.host {
                EndpointHost::Ip(ip) => HostPort(ip.to_string(), p2p.port),
                EndpointHost::Name(name) => HostPort(name.clone(), p2p.port),
            };
            let _ = writeln!(text, "external_address = \"{external}\"");
            // Its validators first, then (asked) its operator's other sentries.
            let validators = view
                .chain_peers()
                .filter(|peer| peer.is_own(local, Role::Producer));
            let sentries = view
                .chain_peers()
                .filter(|peer| options.own_sentries && peer.is_own(local, Role::Sentry));
            (validators.chain(sentries).collect(), true)
        }
        role => return Err(ExportError::Role { role }),
    };
    let peers: Vec<String> = wanted
        .iter()
        .map(|peer| format!("{}@{}", peer.p2p.id, peer.overlay_address()))
        .collect();
    let _ = writeln!(text, "persistent_peers = \"{}\"", peers.join(","));
    if local.role == Role::Sentry {
        let private: Vec<&str> = wanted
            .iter()
            .filter(|peer| peer.card.role == Role::Producer)
            .map(|peer| peer.p2p.id.as_str())
            .collect();
        let _ = writeln!(text, "private_peer_ids = \"{}\"", private.join(","));
    }
    let _ = writeln!(text, "pex = {pex}");
    text.push_str("addr_book_strict = false\n");
    let unnamed: Vec<&str> = view
        .peers_without_p2p()
        .filter(|card| {
            card.operator == local.operator
                && match local.role {
                    Role::Producer => card.role == Role::Sentry,
                    _ => {
                        card.role == Role::Producer
                            || (options.own_sentries && card.role == Role::Sentry)
                    }
                }
        })
        .map(|card| card.name.as_str())
        .collect();
    if !unnamed.is_empty() {
        let _ = writeln!(
            text,
            "# Not listed, their cards have no chain p2p address: {}",
            unnamed.join(", ")
        );
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use toml::{Table, Value};

    use super::*;
    use crate::cli::export::tests::{OTHER, OWN, host, view};

    fn parsed(text: &str) -> Table {
        toml::from_str(text).unwrap_or_else(|error| panic!("{error}\n{text}"))
    }

    fn string(value: &str) -> Value {
        Value::String(value.to_owned())
    }

    /// Every key of `table`, and nothing else, with its value.
    fn assert_keys(table: &Table, expected: &[(&str, Value)], text: &str) {
        let keys: Vec<&String> = table.keys().collect();
        let mut expected_keys: Vec<&str> = expected.iter().map(|(key, _)| *key).collect();
        expected_keys.sort_unstable();
        assert_eq!(keys, expected_keys, "{text}");
        for (key, value) in expected {
            assert_eq!(&table[*key], value, "{key} in\n{text}");
        }
    }

    #[test]
    fn a_validator_gets_its_own_sentries_without_pex() {
        let view = view(
            host(OWN, "validator", Role::Producer, 1),
            vec![
                host(OWN, "sentry-b", Role::Sentry, 3),
                host(OWN, "sentry-a", Role::Sentry, 2),
                host(OWN, "full-a", Role::Full, 4),
                host(OTHER, "rival-sentry", Role::Sentry, 5),
            ],
        );
        let text = tendermint(&view, TendermintOptions::default()).unwrap();
        assert_keys(
            &parsed(&text),
            &[
                (
                    "persistent_peers",
                    string("node2@198.19.0.2:26656,node3@198.19.0.3:26656"),
                ),
                ("pex", Value::Boolean(false)),
                ("addr_book_strict", Value::Boolean(false)),
            ],
            &text,
        );
        assert!(
            text.starts_with(
                "# sentrymesh export tendermint: host validator (producer) of operator "
            ),
            "{text}"
        );
    }

    #[test]
    fn a_sentry_gets_its_validator_privately_and_its_public_address() {
        let mut local = host(OWN, "sentry-a", Role::Sentry, 2);
        local.endpoints = vec!["203.0.113.7:51820".parse().unwrap()];
        let peers = vec![
            host(OWN, "validator", Role::Producer, 1),
            host(OWN, "sentry-b", Role::Sentry, 3),
            host(OTHER, "rival-sentry", Role::Sentry, 5),
            host(OTHER, "rival-validator", Role::Producer, 6),
        ];
        let view = view(local, peers);
        let text = tendermint(&view, TendermintOptions::default()).unwrap();
        let base = [
            ("external_address", string("203.0.113.7:26656")),
            ("private_peer_ids", string("node1")),
            ("pex", Value::Boolean(true)),
            ("addr_book_strict", Value::Boolean(false)),
        ];
        let mut expected = base.to_vec();
        expected.push(("persistent_peers", string("node1@198.19.0.1:26656")));
        assert_keys(&parsed(&text), &expected, &text);

        let text = tendermint(&view, TendermintOptions { own_sentries: true }).unwrap();
        let mut expected = base.to_vec();
        expected.push((
            "persistent_peers",
            string("node1@198.19.0.1:26656,node3@198.19.0.3:26656"),
        ));
        assert_keys(&parsed(&text), &expected, &text);
        // Another operator's hidden host, even one handed in, is not named.
        for secret in ["rival-validator", "node6", "198.19.0.6"] {
            assert!(!text.contains(secret), "{secret} in\n{text}");
        }
    }

    #[test]
    fn a_named_endpoint_and_an_ipv6_overlay_are_written_as_nodes_read_them() {
        let mut local = host(OWN, "sentry-a", Role::Sentry, 2);
        local.endpoints = vec!["sentry-a.example.net:51820".parse().unwrap()];
        let mut validator = host(OWN, "validator", Role::Producer, 1);
        validator.addresses = vec!["2001:db8::1/128".parse().unwrap()];
        let text = tendermint(&view(local, vec![validator]), TendermintOptions::default()).unwrap();
        let table = parsed(&text);
        assert_eq!(
            table["external_address"],
            string("sentry-a.example.net:26656")
        );
        assert_eq!(
            table["persistent_peers"],
            string("node1@[2001:db8::1]:26656")
        );
    }

    #[test]
    fn a_peer_without_a_chain_address_is_said_not_listed() {
        let mut sentry = host(OWN, "sentry-a", Role::Sentry, 2);
        sentry.chain_p2p = None;
        let view = view(host(OWN, "validator", Role::Producer, 1), vec![sentry]);
        let text = tendermint(&view, TendermintOptions::default()).unwrap();
        assert_eq!(parsed(&text)["persistent_peers"], string(""));
        assert!(
            text.contains("# Not listed, their cards have no chain p2p address: sentry-a\n"),
            "{text}"
        );
    }

    #[test]
    fn what_has_no_layout_is_refused_with_the_reason() {
        let full = view(host(OWN, "full-a", Role::Full, 4), vec![]);
        assert_eq!(
            tendermint(&full, TendermintOptions::default()),
            Err(ExportError::Role { role: Role::Full })
        );
        let mut sentry = host(OWN, "sentry-a", Role::Sentry, 2);
        sentry.chain_p2p = None;
        assert!(matches!(
            tendermint(&view(sentry.clone(), vec![]), TendermintOptions::default()),
            Err(ExportError::NoChainP2p { .. })
        ));
        let mut sentry = host(OWN, "sentry-a", Role::Sentry, 2);
        sentry.endpoints.clear();
        assert!(matches!(
            tendermint(&view(sentry, vec![]), TendermintOptions::default()),
            Err(ExportError::NoEndpoint { .. })
        ));
    }
}
