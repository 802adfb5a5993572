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

/// `valid()`'s interface as a mesh member: no `[[peer]]`, only its IPv4
/// address (inside the overlay of [`mesh_sections`]), with `extra`
/// appended.
fn mesh_member(extra: &str) -> String {
    let text = valid().replacen(", \"2001:db8::1/64\"", "", 1);
    let interface = &text[..text.find("[[peer]]").expect("a peer")];
    format!("{interface}{extra}")
}

fn mesh_sections() -> String {
    format!(
        "[mesh]\ncard_file = \"host.card\"\nstate_dir = \"/var/lib/sentrymesh/sm0\"\n\n\
         [trust]\noverlay = \"198.18.0.0/16\"\nown_overlay = \"198.18.0.0/24\"\n\
         operators = [{{ id = \"{}\", overlay = \"198.18.1.0/24\" }}, \
         {{ id = \"{}\", overlay = \"198.18.2.0/24\" }}]\nvouch_threshold = 2\n",
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
    assert_eq!(mesh.overlay.to_string(), "198.18.0.0/16");
    assert_eq!(mesh.own_overlay.to_string(), "198.18.0.0/24");
    let id: sentrymesh_mesh::OperatorId = operator(2).parse().unwrap();
    assert_eq!(mesh.trusted_operators[&id].to_string(), "198.18.2.0/24");
    assert!(parse_with_keys(&valid()).unwrap().mesh.is_none());
}

#[test]
fn overlay_ranges_are_required_and_checked() {
    let sections = mesh_sections();
    for (from, to, expected) in [
        (
            "overlay = \"198.18.0.0/16\"\n",
            "",
            "trust: has no overlay: add overlay = \"ADDRESS/PREFIX\"",
        ),
        (
            "own_overlay = \"198.18.0.0/24\"\n",
            "",
            "trust: has no own_overlay: add own_overlay = \"ADDRESS/PREFIX\"",
        ),
        (
            "198.18.0.0/16",
            "198.18.0.1/16",
            "trust.overlay: 198.18.0.1/16 has host bits set; write its network, 198.18.0.0/16",
        ),
        (
            "198.18.0.0/24",
            "198.19.0.0/24",
            "trust.own_overlay: 198.19.0.0/24 is not inside the overlay 198.18.0.0/16",
        ),
        (
            "198.18.2.0/24",
            "198.18.1.128/25",
            "trust.operators[1]: 198.18.1.128/25 overlaps the range of trust.operators[0]",
        ),
        (
            "198.18.1.0/24",
            "198.18.0.0/23",
            "trust.operators[0]: 198.18.0.0/23 overlaps the range of own_overlay",
        ),
        (
            "198.18.1.0/24",
            "0.0.0.0/1",
            "trust.operators[0]: 0.0.0.0/1 is not inside the overlay 198.18.0.0/16",
        ),
        (
            "198.18.2.0/24",
            "198.18.2.1/24",
            "trust.operators[1]: overlay 198.18.2.1/24 has host bits set",
        ),
        (
            ", overlay = \"198.18.1.0/24\"",
            "",
            "trust.operators[0]: has no overlay",
        ),
        (
            ", overlay = \"198.18.1.0/24\"",
            ", range = \"198.18.1.0/24\"",
            "trust.operators[0]: unknown key \"range\"",
        ),
    ] {
        assert!(sections.contains(from), "{from}");
        let text = mesh_member(&sections.replacen(from, to, 1));
        let message = error_of(&text);
        assert!(message.contains(expected), "{message}\nlacks\n{expected}");
    }
    // A config written before ranges: each bare id is told what to write.
    let old = mesh_member(&format!(
        "[mesh]\ncard_file = \"c\"\nstate_dir = \"s\"\n[trust]\noverlay = \"198.18.0.0/16\"\n\
         own_overlay = \"198.18.0.0/24\"\noperators = [\"{}\"]\nvouch_threshold = 1\n",
        operator(1)
    ));
    let message = error_of(&old);
    assert!(
        message.contains(&format!(
            "trust.operators[0]: each trusted operator now comes with its overlay range: write \
             {{ id = \"{}\", overlay = \"ADDRESS/PREFIX\" }}",
            operator(1)
        )),
        "{message}"
    );
}

#[test]
fn a_mesh_members_interface_addresses_stay_inside_the_overlay() {
    // valid()'s interface address is 198.18.0.1/24, inside 198.18.0.0/16.
    let outside = mesh_sections().replace("198.18.0.0/16", "198.18.128.0/17");
    let outside = outside.replace("198.18.0.0/24", "198.18.128.0/24");
    let outside = outside.replace("198.18.1.0/24", "198.18.129.0/24");
    let outside = outside.replace("198.18.2.0/24", "198.18.130.0/24");
    let message = error_of(&mesh_member(&outside));
    assert!(
        message.contains(
            "interface.addresses[0]: 198.18.0.0/24 is not inside [trust] overlay 198.18.128.0/17"
        ),
        "{message}"
    );
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
            format!("\"{}\"", operator(2)),
            "[]".to_owned(),
            "trust.operators[1]: id: [] is not a string",
        ),
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
        for range in mesh.trusted_operators.values().chain([&mesh.own_overlay]) {
            assert!(mesh.overlay.contains_net(range));
        }
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

#[test]
fn operators_may_have_aliases() {
    let aliased = format!(
        "{}\n[operators]\n\"{}\" = \"alice\"\n\"{}\" = \"bob-2.eu\"\n",
        mesh_sections(),
        operator(1),
        operator(2)
    );
    let mesh = parse_with_keys(&mesh_member(&aliased))
        .unwrap()
        .mesh
        .unwrap();
    let id: sentrymesh_mesh::OperatorId = operator(2).parse().unwrap();
    assert_eq!(mesh.aliases.len(), 2);
    assert_eq!(mesh.aliases[&id], "bob-2.eu");
    for (operators, expected) in [
        (
            format!("\"{}\" = \"a b\"", operator(1)),
            "an alias is letters, digits",
        ),
        (format!("\"{}\" = \"\"", operator(1)), "is not 1 to 32"),
        ("\"not-an-id\" = \"x\"".to_owned(), "is not an operator id"),
        (
            format!("\"{}\" = \"x\"\n\"{}\" = \"x\"", operator(1), operator(2)),
            "is already the alias of",
        ),
    ] {
        let text = mesh_member(&format!("{}\n[operators]\n{operators}\n", mesh_sections()));
        let error = parse_with_keys(&text).unwrap_err().to_string();
        assert!(error.contains(expected), "{operators}: {error}");
    }
    // Only a mesh member has operators to name.
    let error = parse_with_keys(&format!(
        "{}\n[operators]\n\"{}\" = \"alice\"\n",
        valid(),
        operator(1)
    ))
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("[operators] names the operators of a mesh"),
        "{error}"
    );
}

#[test]
fn firewall_rules_parse_by_operator_role_and_port() {
    let text = mesh_member(&format!(
        "{}\n[firewall]\nopen_to_own = false\nconntrack_max = 4096\n\n\
         [[firewall.inbound]]\nfrom = \"operators\"\nroles = [\"sentry\"]\nproto = \"tcp\"\nports = \"26660-26670\"\n\n\
         [[firewall.inbound]]\nfrom = \"{}\"\nproto = \"udp\"\nports = 53\n\n\
         [[firewall.inbound]]\nfrom = \"own\"\n\n\
         [[firewall.outbound]]\nfrom = \"operators\"\nproto = \"icmp\"\n",
        mesh_sections(),
        operator(2)
    ));
    let rules = parse_with_keys(&text).unwrap().mesh.unwrap().firewall;
    assert!(!rules.open_to_own);
    assert_eq!(rules.conntrack_max, 4096);
    assert_eq!(rules.inbound.len(), 3);
    assert_eq!(
        rules.inbound[2].from(),
        crate::dataplane::firewall::From::Own
    );
    assert_eq!(rules.outbound.map(|rules| rules.len()), Some(1));
    // Without the section, the defaults.
    let mesh = parse_with_keys(&mesh_member(&mesh_sections()))
        .unwrap()
        .mesh
        .unwrap();
    assert_eq!(mesh.firewall, crate::dataplane::firewall::Rules::default());
}

#[test]
fn firewall_rules_that_cannot_match_are_refused_at_their_value() {
    let rule = |body: &str| {
        mesh_member(&format!(
            "{}\n[[firewall.inbound]]\n{body}\n",
            mesh_sections()
        ))
    };
    for (body, expected) in [
        (
            "from = \"everyone\"",
            "firewall.inbound[0].from: \"everyone\" is not \"operators\"",
        ),
        (
            "from = \"own\"",
            "firewall.inbound[0].from: the own operator's hosts reach everything",
        ),
        (
            "from = \"operators\"\nroles = []",
            "firewall.inbound[0]: an empty list of roles",
        ),
        (
            "from = \"operators\"\nroles = [\"validator\"]",
            "firewall.inbound[0].roles[0]: \"validator\" is not a role",
        ),
        (
            "from = \"operators\"\nroles = [\"producer\"]",
            "firewall.inbound[0]: another operator's producer hosts are hidden",
        ),
        (
            "from = \"operators\"\nproto = \"sctp\"",
            "firewall.inbound[0].proto: \"sctp\" is not",
        ),
        (
            "from = \"operators\"\nproto = \"icmp\"\nports = \"1\"",
            "firewall.inbound[0]: ICMP has no ports",
        ),
        (
            "from = \"operators\"\nports = \"90-80\"",
            "firewall.inbound[0].ports: 90-80 holds no port",
        ),
        (
            "from = \"operators\"\nports = 0",
            "firewall.inbound[0].ports: port 0",
        ),
        (
            "from = \"operators\"\nports = 70000",
            "firewall.inbound[0].ports: \"70000\" is not a port",
        ),
        (
            "from = \"operators\"\nport = 22",
            "firewall.inbound[0].port: unknown key",
        ),
    ] {
        let error = error_of(&rule(body));
        assert!(error.contains(expected), "{body:?}: {error}");
    }
    let error = error_of(&mesh_member(&format!(
        "{}\n[firewall]\nconntrack_max = 10\n",
        mesh_sections()
    )));
    assert!(
        error.contains("firewall.conntrack_max: 10 is not a number of flows"),
        "{error}"
    );
    // Not for [[peer]] sections, which have no operator.
    let error = error_of(&format!("{}\n[firewall]\nopen_to_own = true\n", valid()));
    assert!(
        error.contains("[firewall] sorts a mesh member's peers"),
        "{error}"
    );
}
