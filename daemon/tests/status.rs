//! `sentrymesh status` on a `sentrymesh wg` interface: the WireGuard
//! columns only, and the JSON document without its mesh parts, with the
//! same version. (A mesh member's status is checked on a live mesh in
//! `mesh.rs`.) Needs root; every address is in 198.18.0.0/15.

use std::path::Path;

use sentrymesh::control::status::Status;
use sentrymesh_lab::{EVENT_WITHIN, Host, socket_path, unique_ifname, wait_until};

const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

#[test]
fn a_wg_interface_shows_its_wireguard_columns_only() {
    let host = Host::new("status-wg");
    let ifname = unique_ifname();
    host.register_interface(&ifname);
    let daemon = host.spawn("sentrymesh wg", SENTRYMESH, &["wg", "-f", &ifname]);
    assert!(
        wait_until(EVENT_WITHIN, || Path::new(&socket_path(&ifname)).exists()),
        "sentrymesh wg did not start:\n{}",
        daemon.log()
    );
    let key = host.run(SENTRYMESH, &["genkey"]);
    let key_file = host.dir().join("wg.key");
    std::fs::write(&key_file, key).unwrap();
    let peer = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    host.run(
        "wg",
        &[
            "set",
            &ifname,
            "private-key",
            &key_file.to_string_lossy(),
            "listen-port",
            "51820",
            "peer",
            peer,
            "endpoint",
            "198.18.7.7:51820",
            "allowed-ips",
            "198.19.7.0/24",
        ],
    );

    let json = host.run(SENTRYMESH, &["status", "--json", &ifname]);
    let status: Status = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!((status.version, status.mode.as_str()), (1, "wg"));
    assert_eq!(status.listen_port, 51820);
    assert_eq!((status.readiness, status.mesh), (None, None));
    let [only] = status.peers.as_slice() else {
        panic!("one peer expected: {json}");
    };
    assert_eq!(only.public_key, peer);
    assert_eq!(only.endpoint.as_deref(), Some("198.18.7.7:51820"));
    assert_eq!(
        (only.session.as_str(), only.latest_handshake_secs_ago),
        ("none", None)
    );
    assert_eq!(only.allowed_ips, ["198.19.7.0/24"]);
    assert!(only.mesh.is_none());
    // Stable keys: absent parts are null, not missing.
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(value["mesh"].is_null() && value["readiness"].is_null());
    assert!(value.get("mesh").is_some() && value["peers"][0].get("mesh").is_some());

    let text = host.run(SENTRYMESH, &["status", &ifname]);
    let header = text
        .lines()
        .find(|line| line.starts_with("PUBLIC KEY"))
        .unwrap_or_else(|| panic!("{text}"));
    for column in ["ENDPOINT", "HANDSHAKE", "RECEIVED", "SENT", "SESSION"] {
        assert!(header.contains(column), "{text}");
    }
    for mesh_column in ["HOST", "OPERATOR", "ROLE", "TRUST"] {
        assert!(!header.contains(mesh_column), "{text}");
    }
    assert!(text.contains(peer) && text.contains("never") && !text.contains("admitted operators"));
    // The private key is in neither.
    let secret = std::fs::read_to_string(&key_file).unwrap();
    assert!(!json.contains(secret.trim()) && !text.contains(secret.trim()));
    drop(daemon);
}
