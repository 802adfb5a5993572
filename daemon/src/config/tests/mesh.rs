//! `[mesh]` and `[trust]`: a mesh member's settings, and the example config
//! of each role.

use std::path::Path;

use super::*;

/// An operator id for the mesh tests.
fn operator(seed: u8) -> String {
    sentrymesh_mesh::OperatorSecret::from_seed([seed; 32])
        .operator_id()
        .to_string()
}

/// `valid()`'s interface as a mesh member: no `[[peer]]`, with `extra`
/// appended.
fn mesh_member(extra: &str) -> String {
    let text = valid();
    let interface = &text[..text.find("[[peer]]").expect("a peer")];
    format!("{interface}{extra}")
}

fn mesh_sections() -> String {
    format!(
        "[mesh]\ncard_file = \"host.card\"\nstate_dir = \"/var/lib/sentrymesh/sm0\"\n\n\
         [trust]\noperators = [\"{}\", \"{}\"]\nvouch_threshold = 2\n",
        operator(1),
        operator(2)
    )
}

#[test]
fn a_mesh_member_names_its_card_state_and_trust() {
    let config = parse_with_keys(&mesh_member(&mesh_sections())).unwrap();
    assert!(config.peers.is_empty());
    let mesh = config.mesh.expect("a mesh");
    assert_eq!(mesh.card_file, Path::new("host.card"));
    assert_eq!(mesh.known_dir, None);
    assert_eq!(mesh.state_dir, Path::new("/var/lib/sentrymesh/sm0"));
    assert_eq!((mesh.gossip_port, mesh.introduction_port), (51900, 51901));
    assert_eq!(mesh.trusted_operators.len(), 2);
    assert_eq!(mesh.vouch_threshold, 2);
    assert!(parse_with_keys(&valid()).unwrap().mesh.is_none());
}

#[test]
fn a_mesh_without_trust_or_with_static_peers_is_refused() {
    let mesh_only = mesh_sections().replace("[trust]", "[elsewhere]");
    let mesh_only = &mesh_only[..mesh_only.find("[elsewhere]").unwrap()];
    assert!(
        error_of(&mesh_member(mesh_only)).contains("mesh: a mesh member needs a [trust] section"),
        "{}",
        error_of(&mesh_member(mesh_only))
    );
    let trust_only = format!(
        "[trust]\noperators = [\"{}\"]\nvouch_threshold = 1\n",
        operator(1)
    );
    assert!(
        error_of(&mesh_member(&trust_only)).contains("trust: [trust] applies to a mesh member")
    );
    let with_peers = format!("{}\n{}", valid(), mesh_sections());
    let message = error_of(&with_peers);
    assert!(
        message.contains("peer[0]: a mesh member takes its peers from cards")
            && message.contains("peer[1]: a mesh member takes its peers from cards"),
        "{message}"
    );
}

#[test]
fn bad_trust_settings_are_pointed_at() {
    let sections = mesh_sections();
    for (from, to, expected) in [
        (
            operator(2),
            "not-an-operator".to_owned(),
            "trust.operators[1]: \"not-an-operator\" is not an operator id",
        ),
        (operator(2), operator(1), "trust.operators[1]: "),
        (
            "vouch_threshold = 2".to_owned(),
            "vouch_threshold = 0".to_owned(),
            "trust.vouch_threshold: 0 is not a number of vouches: expected 1..=64",
        ),
        (
            "card_file = \"host.card\"".to_owned(),
            "card_file = \"\"".to_owned(),
            "mesh.card_file: an empty path names nothing",
        ),
        (
            "[trust]".to_owned(),
            "gossip_port = 51901\n[trust]".to_owned(),
            "",
        ),
    ] {
        let text = mesh_member(&sections.replacen(&from, &to, 1));
        if expected.is_empty() {
            // A gossip port of 51901 collides with the default introduction
            // port only when that one is written out.
            parse_with_keys(&text).unwrap();
            continue;
        }
        let message = error_of(&text);
        assert!(message.contains(expected), "{message}\nlacks\n{expected}");
    }
    let clash = mesh_member(&sections.replacen(
        "[trust]",
        "gossip_port = 52000\nintroduction_port = 52000\n[trust]",
        1,
    ));
    assert!(error_of(&clash).contains("mesh.introduction_port: 52000 is the gossip port too"));
}

#[test]
fn the_mesh_examples_are_valid_and_hide_what_the_roles_hide() {
    for (text, ready) in [
        (include_str!("../../../../configs/sentry.toml"), 3),
        (include_str!("../../../../configs/full.toml"), 2),
        (include_str!("../../../../configs/producer.toml"), 2),
        (include_str!("../../../../configs/bios.toml"), 2),
    ] {
        let config = parse_with_keys(text).unwrap();
        let mesh = config.mesh.expect("a mesh member");
        assert!(config.peers.is_empty());
        assert_eq!(mesh.trusted_operators.len(), 2);
        assert_eq!(config.min_trusted_peers, ready);
        let all = "198.18.0.0/15".parse::<IpNet>().unwrap();
        for address in &config.interface.addresses {
            assert!(all.contains(address.addr()) && address.prefix_len() == 32);
        }
    }
    // The hidden roles listen on no fixed port and publish no endpoint.
    for text in [
        include_str!("../../../../configs/producer.toml"),
        include_str!("../../../../configs/bios.toml"),
    ] {
        assert!(
            parse_with_keys(text)
                .unwrap()
                .interface
                .listen_port
                .is_none()
        );
        assert!(
            !text.contains("--endpoint 198"),
            "a hidden card with an endpoint"
        );
    }
}
