//! `sentrymesh export` from an operator's files alone, before any daemon
//! ran: cards issued with `card issue --chain-p2p --nodeos-peer-key`, a
//! producer's and a sentry's config and known directory, no state yet.
//! The live mesh (state written by running daemons, `--watch`) is tested
//! in `mesh.rs`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");
/// WireGuard private keys (`wg genkey`) of the producer and the sentry.
const PRODUCER_WG: &str = "0MO14ftj98v1kveDxVPzgiwNqAVfnQd/EOX14bsiYlQ=";
const SENTRY_WG: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
/// nodeos keys, in the legacy and the K1 form.
const PRODUCER_NODEOS: &str = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV";
const SENTRY_NODEOS: &str = "PUB_K1_6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5BoDq63";

/// Runs `sentrymesh ARGS` in `dir` and returns what it printed.
fn sentrymesh(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(SENTRYMESH)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sentrymesh {args:?}: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// A host's directory: its WireGuard key, its card (issued by the
/// operator key `operator`), its config and a known directory.
fn host(root: &Path, operator: &Path, name: &str, key: &str, card: &[&str]) -> std::path::PathBuf {
    let dir = root.join(name);
    fs::create_dir_all(dir.join("known")).unwrap();
    let wg = dir.join("wg.key");
    fs::write(&wg, format!("{key}\n")).unwrap();
    fs::set_permissions(&wg, fs::Permissions::from_mode(0o600)).unwrap();
    let mut args = vec![
        "card",
        "issue",
        "--operator",
        operator.to_str().unwrap(),
        "--wg-key",
        "wg.key",
        "--name",
        name,
        "--out",
        "host.card",
    ];
    args.extend(card);
    sentrymesh(&dir, &args);
    let address = card[card.iter().position(|a| *a == "--address").unwrap() + 1];
    fs::write(
        dir.join("sm.toml"),
        format!(
            "[interface]\nname = \"sm0\"\nprivate_key_file = \"wg.key\"\nlisten_port = 51820\n\
             addresses = [\"{address}\"]\n\n[mesh]\ncard_file = \"host.card\"\n\
             known_dir = \"known\"\nstate_dir = \"state\"\n\n[trust]\n\
             overlay = \"198.19.0.0/16\"\nown_overlay = \"198.19.1.0/24\"\noperators = []\n\
             vouch_threshold = 1\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn both_exports_come_from_the_cards_before_any_daemon_ran() {
    let root = tempfile::tempdir().unwrap();
    let operator = root.path().join("op.key");
    sentrymesh(
        root.path(),
        &["operator", "new", "--out", operator.to_str().unwrap()],
    );
    let producer = host(
        root.path(),
        &operator,
        "a-producer",
        PRODUCER_WG,
        &[
            "--role",
            "producer",
            "--address",
            "198.19.1.1/32",
            "--chain-p2p",
            "c04e1d@26656",
            "--nodeos-peer-key",
            PRODUCER_NODEOS,
        ],
    );
    let sentry = host(
        root.path(),
        &operator,
        "a-sentry-1",
        SENTRY_WG,
        &[
            "--role",
            "sentry",
            "--address",
            "198.19.1.2/32",
            "--endpoint",
            "203.0.113.7:51820",
            "--chain-p2p",
            "3f1c2b@26656",
            "--nodeos-peer-key",
            SENTRY_NODEOS,
        ],
    );
    fs::copy(
        sentry.join("host.card"),
        producer.join("known/a-sentry-1.card"),
    )
    .unwrap();
    fs::copy(
        producer.join("host.card"),
        sentry.join("known/a-producer.card"),
    )
    .unwrap();

    let export = |dir: &Path, kind: &str| sentrymesh(dir, &["export", kind, "-c", "sm.toml"]);
    let validator: toml::Table = toml::from_str(&export(&producer, "tendermint")).unwrap();
    assert_eq!(
        validator.get("persistent_peers").and_then(|v| v.as_str()),
        Some("3f1c2b@198.19.1.2:26656")
    );
    assert_eq!(validator.get("pex").and_then(|v| v.as_bool()), Some(false));
    let own: toml::Table = toml::from_str(&export(&sentry, "tendermint")).unwrap();
    assert_eq!(
        own.get("external_address").and_then(|v| v.as_str()),
        Some("203.0.113.7:26656")
    );
    assert_eq!(
        own.get("private_peer_ids").and_then(|v| v.as_str()),
        Some("c04e1d")
    );

    // The nodeos keys issued on the cards reach each other's config.
    let lines = |text: String| -> Vec<String> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        lines(export(&producer, "nodeos")),
        [
            "p2p-peer-address = 198.19.1.2:26656".to_owned(),
            "allowed-connection = specified".to_owned(),
            format!("peer-key = \"{SENTRY_NODEOS}\""),
        ]
    );
    assert_eq!(
        lines(export(&sentry, "nodeos")),
        [
            "p2p-peer-address = 198.19.1.1:26656".to_owned(),
            "allowed-connection = specified".to_owned(),
            format!("peer-key = \"{PRODUCER_NODEOS}\""),
        ]
    );
    // Reading is all it did: no state directory was made.
    assert!(!producer.join("state").exists() && !sentry.join("state").exists());
}
