//! One address convention in every example: the configs, the README and
//! the launch runbook use the overlay 198.19.0.0/16 (operator N's range
//! 198.19.N.0/24, a /32 per host) and put endpoints on the underlay
//! 198.18.0.0/16, as `sentrymesh-testnet` does.

use super::*;

/// Every example config.
const CONFIGS: [(&str, &str); 5] = [
    (
        "example.toml",
        include_str!("../../../../configs/example.toml"),
    ),
    (
        "sentry.toml",
        include_str!("../../../../configs/sentry.toml"),
    ),
    ("full.toml", include_str!("../../../../configs/full.toml")),
    (
        "producer.toml",
        include_str!("../../../../configs/producer.toml"),
    ),
    ("bios.toml", include_str!("../../../../configs/bios.toml")),
];
/// The documents whose commands and configs follow the convention.
const DOCUMENTS: [(&str, &str); 2] = [
    ("README.md", include_str!("../../../../README.md")),
    ("docs/launch.md", include_str!("../../../../docs/launch.md")),
];

fn overlay() -> IpNet {
    "198.19.0.0/16".parse().unwrap()
}

fn underlay() -> IpNet {
    "198.18.0.0/16".parse().unwrap()
}

/// Whether `range` is some operator's range, 198.19.N.0/24.
fn is_operator_range(range: &IpNet) -> bool {
    range.prefix_len() == 24 && overlay().contains_net(range)
}

/// The words that follow `flag` in `text` (`--address 198.19.1.2/32`), up
/// to a space, quote, comma or backquote.
fn values_after<'a>(text: &'a str, flag: &str) -> Vec<&'a str> {
    text.match_indices(flag)
        .map(|(at, _)| {
            let rest = &text[at + flag.len()..];
            let end = rest
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | ',' | '`' | ')'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// Checks every `--address` (a /32 in the overlay) and `--endpoint` (on
/// the underlay, when an IPv4 address) in `text`.
fn assert_card_commands_follow(name: &str, text: &str) {
    for address in values_after(text, "--address ") {
        let Ok(address) = address.parse::<InterfaceAddress>() else {
            continue; // a placeholder such as ADDRESS
        };
        assert!(
            overlay().contains(address.addr()) && address.prefix_len() == 32,
            "{name}: --address {address} is not a /32 in 198.19.0.0/16"
        );
    }
    for endpoint in values_after(text, "--endpoint ") {
        let Ok(endpoint) = endpoint.parse::<std::net::SocketAddr>() else {
            continue;
        };
        assert!(
            underlay().contains(endpoint.ip()),
            "{name}: --endpoint {endpoint} is not on the underlay 198.18.0.0/16"
        );
    }
}

#[test]
fn every_example_config_follows_one_convention() {
    for (name, text) in CONFIGS {
        let config = parse_with_keys(text).unwrap_or_else(|error| panic!("{name}: {error}"));
        for address in &config.interface.addresses {
            assert!(
                overlay().contains(address.addr()) && address.prefix_len() == 32,
                "{name}: the address {address} is not a /32 in 198.19.0.0/16"
            );
        }
        for peer in &config.peers {
            if let Some(endpoint) = peer.endpoint {
                assert!(
                    underlay().contains(endpoint.ip()),
                    "{name}: endpoint {endpoint}"
                );
            }
            for allowed in &peer.allowed_ips {
                assert!(
                    overlay().contains_net(allowed),
                    "{name}: allowed IP {allowed}"
                );
            }
        }
        if let Some(mesh) = &config.mesh {
            assert_eq!(mesh.overlay, overlay(), "{name}");
            assert_eq!(mesh.own_overlay, "198.19.1.0/24".parse().unwrap(), "{name}");
            for address in &config.interface.addresses {
                assert!(
                    mesh.own_overlay.contains(address.addr()),
                    "{name}: {address}"
                );
            }
            for range in mesh.trusted_operators.values() {
                assert!(is_operator_range(range), "{name}: operator range {range}");
            }
        }
        assert_card_commands_follow(name, text);
    }
}

#[test]
fn the_readme_and_the_runbook_follow_the_convention() {
    for (name, text) in DOCUMENTS {
        assert_card_commands_follow(name, text);
        for range in values_after(text, "--overlay ") {
            let range: IpNet = range.parse().unwrap_or_else(|_| panic!("{name}: {range}"));
            assert!(is_operator_range(&range), "{name}: --overlay {range}");
        }
    }
}

#[test]
fn a_value_that_breaks_the_convention_is_found() {
    let result = std::panic::catch_unwind(|| {
        assert_card_commands_follow("x", "card issue --address 198.18.1.2/24 --out x");
    });
    assert!(result.is_err());
    let result = std::panic::catch_unwind(|| {
        assert_card_commands_follow("x", "card issue --endpoint 198.19.1.2:51820 --out x");
    });
    assert!(result.is_err());
    assert_eq!(
        values_after("a `--address 198.19.1.2/32` b", "--address "),
        ["198.19.1.2/32"]
    );
}
