use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use proptest::prelude::*;

use super::*;

// The example key of wg(8) and its public key: the interface's own.
const PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const OWN_PUBLIC: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";
const PSK: &str = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=";

/// The public key of a peer, made from a fixed private key.
fn peer_key(seed: u8) -> String {
    PrivateKey::from_bytes([seed; 32]).public_key().to_string()
}

/// A valid config; tests edit single lines, so the numbers matter.
fn valid() -> String {
    let (a, b) = (peer_key(1), peer_key(2));
    format!(
        r#"# sm0: a validator's sentry
[interface]
name = "sm0"
private_key_file = "sm0.key"
listen_port = 51820
addresses = ["198.18.0.1/24", "2001:db8::1/64"]
mtu = 1400
fwmark = 0x51

[[peer]]
public_key = "{a}"
endpoint = "198.19.1.2:51820"
allowed_ips = ["198.18.0.2/32", "198.19.2.0/24"]
preshared_key_file = "/etc/sentrymesh/a.psk"
persistent_keepalive = 25

[[peer]]
public_key = "{b}"
endpoint = "[2001:db8:1::3]:51821"
allowed_ips = ["198.18.0.3/32", "2001:db8::3/128"]
"#
    )
}

/// `valid()` with the first `from` replaced by `to`.
fn edited(from: &str, to: &str) -> String {
    let text = valid();
    assert!(text.contains(from), "{from:?} is not in the config");
    text.replacen(from, to, 1)
}

/// Parses `text` as `sm0.toml` and resolves keys from memory: any private
/// key file holds `PRIVATE`, any preshared key file `PSK`.
fn parse_with_keys(text: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new("sm0.toml"))?.resolve_keys(
        |_| Ok(PRIVATE.parse().unwrap()),
        |_| Ok(PSK.parse().unwrap()),
    )
}

/// The message of the error `text` makes.
fn error_of(text: &str) -> String {
    match parse_with_keys(text) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(error) => error.to_string(),
    }
}

/// Asserts that `text` fails with one message that starts with `prefix`.
#[track_caller]
fn assert_error(text: &str, prefix: &str) {
    let message = error_of(text);
    assert!(
        message.starts_with(prefix),
        "{message}\ndoes not start with\n{prefix}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
}

#[test]
fn a_valid_config_parses_to_its_structure() {
    let config = parse_with_keys(&valid()).unwrap();
    let interface = &config.interface;
    assert_eq!(interface.name.as_str(), "sm0");
    assert_eq!(interface.private_key.public_key().to_string(), OWN_PUBLIC);
    assert_eq!(interface.listen_port, NonZeroU16::new(51820));
    let addresses: Vec<String> = interface.addresses.iter().map(|a| a.to_string()).collect();
    assert_eq!(addresses, ["198.18.0.1/24", "2001:db8::1/64"]);
    assert_eq!(
        interface.addresses[0].network(),
        "198.18.0.0/24".parse().unwrap()
    );
    assert_eq!(interface.mtu, 1400);
    assert_eq!(interface.fwmark, NonZeroU32::new(0x51));

    assert_eq!(config.peers.len(), 2);
    let a = &config.peers[0];
    assert_eq!(a.public_key.to_string(), peer_key(1));
    assert_eq!(a.endpoint, Some("198.19.1.2:51820".parse().unwrap()));
    let nets: Vec<String> = a.allowed_ips.iter().map(IpNet::to_string).collect();
    assert_eq!(nets, ["198.18.0.2/32", "198.19.2.0/24"]);
    assert_eq!(*a.preshared_key.as_ref().unwrap().to_base64(), PSK);
    assert_eq!(a.persistent_keepalive, Some(Duration::from_secs(25)));

    let b = &config.peers[1];
    assert_eq!(b.public_key.to_string(), peer_key(2));
    assert_eq!(b.endpoint, Some("[2001:db8:1::3]:51821".parse().unwrap()));
    assert!(b.preshared_key.is_none());
    assert_eq!(b.persistent_keepalive, None);

    let engine = b.engine_config();
    assert_eq!(engine.public_key, b.public_key);
    assert!(engine.preshared_key.is_none());
}

#[test]
fn optional_keys_have_defaults() {
    let text = format!(
        "[interface]\nname = \"sm0\"\nprivate_key_file = \"k\"\naddresses = [\"198.18.0.1/32\"]\n\
         [[peer]]\npublic_key = \"{}\"\nallowed_ips = [\"198.18.0.2\"]\n",
        peer_key(1)
    );
    let config = parse_with_keys(&text).unwrap();
    assert_eq!(config.interface.listen_port, None);
    assert_eq!(config.interface.mtu, DEFAULT_MTU);
    assert_eq!(config.interface.fwmark, None);
    let peer = &config.peers[0];
    assert_eq!(peer.endpoint, None);
    assert_eq!(peer.allowed_ips, ["198.18.0.2/32".parse().unwrap()]);
    assert!(peer.preshared_key.is_none());
    assert_eq!(peer.persistent_keepalive, None);

    let no_peers = text.split("[[peer]]").next().unwrap();
    assert!(parse_with_keys(no_peers).unwrap().peers.is_empty());
    let zeros = edited("listen_port = 51820", "listen_port = 0").replacen("0x51", "0", 1);
    let config = parse_with_keys(&zeros).unwrap();
    assert_eq!(config.interface.listen_port, None);
    assert_eq!(config.interface.fwmark, None);
}

#[test]
fn key_files_resolve_against_the_config_directory() {
    let mut private_paths = Vec::new();
    let mut psk_paths = Vec::new();
    parse(&valid(), Path::new("/etc/sentrymesh/sm0.toml"))
        .unwrap()
        .resolve_keys(
            |path| {
                private_paths.push(path.to_path_buf());
                Ok(PRIVATE.parse().unwrap())
            },
            |path| {
                psk_paths.push(path.to_path_buf());
                Ok(PSK.parse().unwrap())
            },
        )
        .unwrap();
    assert_eq!(private_paths, [PathBuf::from("/etc/sentrymesh/sm0.key")]);
    assert_eq!(psk_paths, [PathBuf::from("/etc/sentrymesh/a.psk")]);
}

#[test]
fn syntax_errors_are_located() {
    for (from, to, prefix) in [
        (
            "mtu = 1400",
            "mtu = = 1400",
            "sm0.toml:7:7: interface.mtu: extra `=`",
        ),
        (
            "name = \"sm0\"",
            "name = \"sm0",
            "sm0.toml:3:12: interface.name: invalid basic string",
        ),
        (
            "[[peer]]\npublic_key",
            "[[peer]\npublic_key",
            "sm0.toml:10:8: unclosed array table, expected `]`",
        ),
        (
            "name = \"sm0\"",
            "name = \"sm0\"\nname = \"sm1\"",
            "sm0.toml:4:1: interface.name: duplicate key",
        ),
        (
            "endpoint = \"[2001",
            "allowed_ips = []\nendpoint = \"[2001",
            "sm0.toml:21:1: peer[1].allowed_ips: duplicate key",
        ),
        (
            "[[peer]]",
            "[interface]\n[[peer]]",
            "sm0.toml:10:2: interface: duplicate key",
        ),
    ] {
        assert_error(&edited(from, to), prefix);
    }
}

#[test]
fn the_readiness_gate_waits_for_the_peers_named() {
    assert_eq!(parse_with_keys(&valid()).unwrap().min_trusted_peers, 0);
    let gated = format!("{}\n[ready]\nmin_trusted_peers = 2\n", valid());
    assert_eq!(parse_with_keys(&gated).unwrap().min_trusted_peers, 2);
    let lines = valid().lines().count();
    assert_error(
        &format!("{}\n[ready]\nmin_trusted_peers = -1\n", valid()),
        &format!(
            "sm0.toml:{}:21: ready.min_trusted_peers: -1 is not a number of peers: expected 0..=4096",
            lines + 3
        ),
    );
    assert_error(
        &format!("{}\n[ready]\nmin_peers = 2\n", valid()),
        &format!("sm0.toml:{}:1: ready.min_peers: unknown key", lines + 3),
    );
}

#[test]
fn metrics_listen_on_an_address_and_port() {
    assert_eq!(parse_with_keys(&valid()).unwrap().metrics, None);
    let served = format!("{}\n[metrics]\nlisten = \"[::1]:9586\"\n", valid());
    assert_eq!(
        parse_with_keys(&served).unwrap().metrics,
        Some("[::1]:9586".parse().unwrap())
    );
    let line = valid().lines().count() + 3;
    for (listen, message) in [
        (
            "localhost:9586",
            "\"localhost:9586\" is not an IP address and port to listen on",
        ),
        ("127.0.0.1:0", "127.0.0.1:0: give a port"),
        (
            "[ff02::1]:9586",
            "[ff02::1]:9586: ff02::1 is a multicast address",
        ),
        (
            "0.0.0.0:9586",
            "0.0.0.0:9586: 0.0.0.0 is not a loopback address, and the metrics name every peer",
        ),
        (
            "198.18.0.1:9586",
            "198.18.0.1:9586: 198.18.0.1 is not a loopback address",
        ),
        ("[::]:9586", "[::]:9586: :: is not a loopback address"),
    ] {
        assert_error(
            &format!("{}\n[metrics]\nlisten = \"{listen}\"\n", valid()),
            &format!("sm0.toml:{line}:10: metrics.listen: {message}"),
        );
    }
}

#[test]
fn metrics_off_loopback_only_when_allowed() {
    let line = valid().lines().count() + 3;
    for allow in ["allow_public = false\n", ""] {
        assert_error(
            &format!(
                "{}\n[metrics]\nlisten = \"198.18.0.1:9586\"\n{allow}",
                valid()
            ),
            &format!(
                "sm0.toml:{line}:10: metrics.listen: 198.18.0.1:9586: 198.18.0.1 is not a loopback address"
            ),
        );
    }
    let allowed = format!(
        "{}\n[metrics]\nlisten = \"198.18.0.1:9586\"\nallow_public = true\n",
        valid()
    );
    assert_eq!(
        parse_with_keys(&allowed).unwrap().metrics,
        Some("198.18.0.1:9586".parse().unwrap())
    );
}

#[test]
fn unknown_keys_are_refused() {
    assert_error(
        &edited("endpoint = \"198", "endpiont = \"198"),
        "sm0.toml:12:1: peer[0].endpiont: unknown key; expected one of `public_key`, `endpoint`",
    );
    assert_error(
        &edited("[[peer]]", "[peers]\nx = 1\n[[peer]]"),
        "sm0.toml:10:2: peers: unknown key; expected one of `interface`, `peer`, `ready`",
    );
    assert_error(
        &edited("mtu = 1400", "\"m t u\" = 1400"),
        "sm0.toml:7:1: interface.\"m t u\": unknown key",
    );
}

#[test]
fn a_key_written_into_the_config_is_refused_without_echo() {
    let text = edited(
        "private_key_file = \"sm0.key\"",
        &format!("private_key = \"{PRIVATE}\""),
    );
    let message = error_of(&text);
    assert!(
        message.starts_with("sm0.toml:4:1: interface.private_key: unknown key;"),
        "{message}"
    );
    assert!(
        message.contains("name it with `private_key_file`"),
        "{message}"
    );
    assert!(!message.contains(PRIVATE), "{message}");
    let error = parse_with_keys(&text).unwrap_err();
    assert!(!format!("{error:?}").contains(PRIVATE));
}

#[test]
fn missing_keys_are_named() {
    assert_error(
        &edited(&format!("public_key = \"{}\"\n", peer_key(1)), ""),
        "sm0.toml:10:1: peer[0].public_key: required, but missing",
    );
    assert_error(
        &edited("name = \"sm0\"\n", ""),
        "sm0.toml:2:1: interface.name: required, but missing",
    );
    let only_peers = valid().split_once("\n\n").unwrap().1.to_owned();
    assert_error(
        &only_peers,
        "sm0.toml:1:1: interface: required, but missing",
    );
    assert_error("", "sm0.toml:1:1: interface: required, but missing");
}

#[test]
fn mistyped_values_are_located() {
    assert_error(
        &edited("mtu = 1400", "mtu = \"1400\""),
        "sm0.toml:7:7: interface.mtu: invalid type: string \"1400\", expected an integer",
    );
    assert_error(
        &edited("\"198.18.0.3/32\", ", "\"198.18.0.3/32\", 7, "),
        "sm0.toml:20:33: peer[1].allowed_ips[1]: invalid type: integer `7`",
    );
    assert_error(
        &edited(
            "addresses = [\"198.18.0.1/24\", \"2001:db8::1/64\"]",
            "addresses = \"198.18.0.1/24\"",
        ),
        "sm0.toml:6:13: interface.addresses: invalid type: string",
    );
    assert_error(
        &edited("fwmark = 0x51", "fwmark = {}"),
        "sm0.toml:8:10: interface.fwmark: invalid type: table, expected an integer",
    );
}

#[test]
fn bad_values_are_located_at_the_value() {
    for (from, to, prefix) in [
        (
            "\"sm0\"",
            "\"sentrymesh-mainnet0\"",
            "sm0.toml:3:8: interface.name: \"sentrymesh-mainnet0\": an interface name has at most 15 bytes",
        ),
        (
            "\"sm0\"",
            "\"sm 0\"",
            "sm0.toml:3:8: interface.name: \"sm 0\": an interface name has only",
        ),
        (
            "\"sm0\"",
            "\"..\"",
            "sm0.toml:3:8: interface.name: \"..\": an interface name cannot be",
        ),
        (
            "\"sm0\"",
            "\"\"",
            "sm0.toml:3:8: interface.name: \"\": an interface name cannot be empty",
        ),
        (
            "\"sm0.key\"",
            "\"\"",
            "sm0.toml:4:20: interface.private_key_file: an empty path",
        ),
        (
            "51820\n",
            "65536\n",
            "sm0.toml:5:15: interface.listen_port: 65536 is not a UDP port: expected 0..=65535",
        ),
        (
            "\"198.18.0.1/24\"",
            "\"198.18.0.300/24\"",
            "sm0.toml:6:14: interface.addresses[0]: \"198.18.0.300/24\" is not an interface address",
        ),
        (
            "\"198.18.0.1/24\"",
            "\"198.18.0.0/24\"",
            "sm0.toml:6:14: interface.addresses[0]: 198.18.0.0/24 is the address of the network \
             198.18.0.0/24, not a host's; an interface address keeps its host bits, e.g. \
             198.18.0.1/24",
        ),
        (
            "\"198.18.0.1/24\"",
            "\"198.18.0.255/24\"",
            "sm0.toml:6:14: interface.addresses[0]: 198.18.0.255/24 is the broadcast address of \
             198.18.0.0/24",
        ),
        (
            "\"2001:db8::1/64\"",
            "\"198.18.0.1/16\"",
            "sm0.toml:6:31: interface.addresses[1]: 198.18.0.1/16 is listed twice (also on line 6)",
        ),
        (
            "\"198.18.0.1/24\", \"2001:db8::1/64\"",
            "",
            "sm0.toml:6:13: interface.addresses: lists no address",
        ),
        (
            "mtu = 1400",
            "mtu = 575",
            "sm0.toml:7:7: interface.mtu: 575 is not an MTU: expected 576..=9000",
        ),
        (
            "mtu = 1400",
            "mtu = 1200",
            "sm0.toml:7:7: interface.mtu: 1200 is too small for IPv6 (at least 1280), and \
             2001:db8::1/64 is an IPv6 address",
        ),
        (
            "0x51",
            "-1",
            "sm0.toml:8:10: interface.fwmark: -1 is not a firewall mark: expected 0..=4294967295",
        ),
        (
            "\"198.19.1.2:51820\"",
            "\"sentry1.example.com:51820\"",
            "sm0.toml:12:12: peer[0].endpoint: \"sentry1.example.com:51820\" is not an IP address \
             and port",
        ),
        (
            "\"198.19.1.2:51820\"",
            "\"198.19.1.2\"",
            "sm0.toml:12:12: peer[0].endpoint: \"198.19.1.2\" is not an IP address and port",
        ),
        (
            "\"198.19.1.2:51820\"",
            "\"198.19.1.2:0\"",
            "sm0.toml:12:12: peer[0].endpoint: 198.19.1.2:0: port 0",
        ),
        (
            "\"198.19.1.2:51820\"",
            "\"0.0.0.0:51820\"",
            "sm0.toml:12:12: peer[0].endpoint: 0.0.0.0:51820: 0.0.0.0 is no peer's address",
        ),
        (
            "\"198.18.0.2/32\"",
            "\"198.18.0.300/32\"",
            "sm0.toml:13:16: peer[0].allowed_ips[0]: \"198.18.0.300/32\" is not an IP network",
        ),
        (
            "\"198.19.2.0/24\"",
            "\"198.19.2.1/24\"",
            "sm0.toml:13:33: peer[0].allowed_ips[1]: \"198.19.2.1/24\" has host bits set: write \
             198.19.2.0/24 for the network, or 198.19.2.1/32 for the one host",
        ),
        (
            "[\"198.18.0.2/32\", \"198.19.2.0/24\"]",
            "[]",
            "sm0.toml:13:15: peer[0].allowed_ips: lists no network",
        ),
        (
            "\"/etc/sentrymesh/a.psk\"",
            "\"\"",
            "sm0.toml:14:22: peer[0].preshared_key_file: an empty path",
        ),
        (
            "= 25",
            "= 0",
            "sm0.toml:15:24: peer[0].persistent_keepalive: 0 is not an interval; leave the key out",
        ),
        (
            "= 25",
            "= 65536",
            "sm0.toml:15:24: peer[0].persistent_keepalive: 65536 is not a keepalive interval in \
             seconds: expected 1..=65535",
        ),
    ] {
        assert_error(&edited(from, to), prefix);
    }
}

#[test]
fn a_malformed_public_key_is_not_echoed() {
    // A private key pasted as a public key parses as one: caught with keys.
    let text = edited(&peer_key(2), PRIVATE);
    let message = error_of(&text);
    assert_eq!(
        message,
        "sm0.toml:18:14: peer[1].public_key: this is the interface's private key, not a \
         peer's public key: remove it, and make a new private key, since this one has been \
         exposed"
    );
    let text = edited(&peer_key(2), "my-secret-passphrase");
    let message = error_of(&text);
    assert!(
        message.starts_with("sm0.toml:18:14: peer[1].public_key: not a WireGuard public key"),
        "{message}"
    );
    assert!(!message.contains("passphrase"), "{message}");
}

#[test]
fn all_problems_with_values_are_reported_in_file_order() {
    let text = edited("= 25", "= 0")
        .replacen("mtu = 1400", "mtu = 100", 1)
        .replacen("\"198.18.0.3/32\"", "\"x\"", 1);
    let error = parse_with_keys(&text).unwrap_err();
    let lines: Vec<(usize, &str)> = error
        .diagnostics()
        .iter()
        .map(|d| (d.location.line, d.location.key.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (7, "interface.mtu"),
            (15, "peer[0].persistent_keepalive"),
            (20, "peer[1].allowed_ips[0]"),
        ]
    );
    assert_eq!(error.to_string().lines().count(), 3);
}

#[test]
fn a_peer_listed_twice_is_refused() {
    let text = edited(&peer_key(2), &peer_key(1));
    assert_error(
        &text,
        "sm0.toml:18:14: peer[1].public_key: the same key as peer[0] (line 10); each peer is \
         listed once",
    );
}

#[test]
fn the_interfaces_own_key_is_not_a_peer() {
    let text = edited(&peer_key(2), OWN_PUBLIC);
    parse(&text, Path::new("sm0.toml")).expect("needs the private key to tell");
    assert_error(
        &text,
        "sm0.toml:18:14: peer[1].public_key: the interface's own public key",
    );
}

#[test]
fn overlapping_allowed_ips_name_both_peers() {
    for (to, theirs) in [
        ("\"198.18.0.2/32\"", "198.18.0.2/32"),
        ("\"198.19.0.0/16\"", "198.19.2.0/24"),
        ("\"0.0.0.0/0\"", "198.18.0.2/32"),
    ] {
        let text = edited("\"198.18.0.3/32\"", to);
        let ours = to.trim_matches('"');
        assert_error(
            &text,
            &format!(
                "sm0.toml:20:16: peer[1].allowed_ips[0]: {ours} overlaps {theirs} of peer[0] \
                 (line 10); WireGuard would route"
            ),
        );
    }
    // Disjoint neighbours, and the other family, are fine.
    parse_with_keys(&edited("\"198.18.0.3/32\"", "\"198.19.3.0/24\"")).unwrap();
    parse_with_keys(&edited(
        "\"198.18.0.3/32\", \"2001:db8::3/128\"",
        "\"::/0\"",
    ))
    .unwrap();
}

/// Writes `content` to `name` in `dir` with `mode`.
fn write_file(dir: &Path, name: &str, content: &str, mode: u32) {
    let path = dir.join(name);
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A directory with the valid config as `sm0.toml`, its private key in
/// `sm0.key` with `key_mode`, and the preshared key next to them.
fn config_dir(key_mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let text = edited("/etc/sentrymesh/a.psk", "a.psk");
    write_file(dir.path(), "sm0.toml", &text, 0o644);
    write_file(dir.path(), "sm0.key", &format!("{PRIVATE}\n"), key_mode);
    write_file(dir.path(), "a.psk", &format!("{PSK}\n"), 0o600);
    let path = dir.path().join("sm0.toml");
    (dir, path)
}

#[test]
fn load_reads_the_key_files_next_to_the_config() {
    let (_dir, path) = config_dir(0o600);
    let config = load(&path).unwrap();
    assert_eq!(
        config.interface.private_key.public_key().to_string(),
        OWN_PUBLIC
    );
    assert_eq!(
        *config.peers[0].preshared_key.as_ref().unwrap().to_base64(),
        PSK
    );
}

#[test]
fn key_files_others_may_read_are_refused_at_their_key() {
    let (dir, path) = config_dir(0o644);
    fs::remove_file(dir.path().join("a.psk")).unwrap();
    let error = load(&path).unwrap_err();
    let message = error.to_string();
    let key = dir.path().join("sm0.key");
    let psk = dir.path().join("a.psk");
    assert_eq!(
        message,
        format!(
            "{file}:4:20: interface.private_key_file: permissions 0644 for key file '{key}' \
             are too open; chmod 600 it\n\
             {file}:14:22: peer[0].preshared_key_file: key file '{psk}' does not exist",
            file = path.display(),
            key = key.display(),
            psk = psk.display(),
        )
    );
    assert!(!message.contains(PRIVATE) && !format!("{error:?}").contains(PRIVATE));
}

#[test]
fn an_unreadable_config_is_named() {
    let path = Path::new("/nonexistent/sentrymesh/sm0.toml");
    let error = load(path).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("cannot read config file '/nonexistent/sentrymesh/sm0.toml': ")
    );
    assert!(error.diagnostics().is_empty());
}

#[test]
fn debug_output_shows_no_secret() {
    let config = parse_with_keys(&valid()).unwrap();
    let shown = format!("{config:?} {:?}", parse(&valid(), Path::new("x")).unwrap());
    let psk_key: PresharedKey = PSK.parse().unwrap();
    let private_key: PrivateKey = PRIVATE.parse().unwrap();
    for secret in [PRIVATE, PSK] {
        assert!(!shown.contains(secret), "{shown}");
    }
    for bytes in [&private_key.to_bytes()[..], psk_key.as_bytes()] {
        assert!(!shown.contains(&format!("{:?}", &bytes[..8])), "{shown}");
    }
    assert!(shown.contains("PrivateKey(..)") && shown.contains("PresharedKey(..)"));
}

#[test]
fn the_example_config_is_valid() {
    let text = include_str!("../../../configs/example.toml");
    let config = parse_with_keys(text).unwrap();
    assert_eq!(config.interface.name.as_str(), "sm0");
    assert_eq!(config.peers.len(), 2);
    let all = "198.18.0.0/15".parse::<IpNet>().unwrap();
    let addresses = config.interface.addresses.iter().map(|a| a.addr());
    let endpoints = config
        .peers
        .iter()
        .filter_map(|p| p.endpoint)
        .map(|e| e.ip());
    let allowed = config
        .peers
        .iter()
        .flat_map(|p| &p.allowed_ips)
        .map(|n| n.addr());
    for addr in addresses.chain(endpoints).chain(allowed) {
        assert!(all.contains(addr), "{addr} is outside 198.18.0.0/15");
    }
}

/// One edit of a config text.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Insert(usize, char),
    Replace(usize, char),
    /// Duplicates the line at this index.
    DuplicateLine(usize),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let interesting = prop::sample::select(vec![
        '"', '\'', '[', ']', '=', '.', '/', ':', '\n', '#', '0', '9', 'x', '{', '}', ',', ' ',
        '\\', 'é', '\0',
    ]);
    let any_char = prop_oneof![interesting, any::<char>()];
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), any_char.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        (any::<usize>(), any_char).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<usize>().prop_map(Edit::DuplicateLine),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    match *edit {
        Edit::Delete(i) if !chars.is_empty() => {
            chars.remove(i % chars.len());
        }
        Edit::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
        Edit::Replace(i, c) if !chars.is_empty() => {
            let len = chars.len();
            chars[i % len] = c;
        }
        Edit::DuplicateLine(i) => {
            let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
            if lines.is_empty() {
                return String::new();
            }
            let line = lines[i % lines.len()];
            lines.insert(i % lines.len(), line);
            return lines.concat();
        }
        _ => {}
    }
    chars.into_iter().collect()
}

proptest! {
    #[test]
    fn mutated_configs_never_panic(edits in prop::collection::vec(edit_strategy(), 1..8)) {
        let text = edits.iter().fold(valid(), |text, edit| apply(&text, edit));
        if let Err(error) = parse_with_keys(&text) {
            let lines = text.split('\n').count();
            prop_assert!(!error.diagnostics().is_empty());
            for diagnostic in error.diagnostics() {
                let location = &diagnostic.location;
                prop_assert!((1..=lines).contains(&location.line), "{diagnostic}");
                prop_assert!(location.column >= 1, "{diagnostic}");
                prop_assert!(!diagnostic.message.contains(PRIVATE));
                prop_assert!(!diagnostic.message.contains(PSK));
            }
        }
    }
}

mod conventions;
mod mesh;
