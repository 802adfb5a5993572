//! `sentrymesh reload` on two network-namespace hosts running `sentrymesh
//! up`: it waits for the daemon's answer and prints what changed; an MTU
//! change reaches the TUN device; a file the daemon refuses makes it exit
//! non-zero with the daemon's reason (the file's line and column), and the
//! interface runs on as it was.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sentrymesh_lab::{
    EVENT_WITHIN, Host, Keys, Process, link, run_command, socket_path, try_ping, unique_ifname,
    wait_until,
};

const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

/// A native config: interface `ifname` at `address` with MTU `mtu`, its
/// peer `peer` at `endpoint` and overlay `peer_address`.
fn config(
    ifname: &str,
    address: IpAddr,
    mtu: u16,
    peer: &str,
    endpoint: &str,
    peer_address: IpAddr,
) -> String {
    format!(
        "[interface]\nname = \"{ifname}\"\nprivate_key_file = \"private.key\"\n\
         listen_port = 51820\naddresses = [\"{address}/24\"]\nmtu = {mtu}\n\n\
         [[peer]]\npublic_key = \"{peer}\"\nendpoint = \"{endpoint}\"\n\
         allowed_ips = [\"{peer_address}/32\"]\n"
    )
}

/// Starts `sentrymesh up` in `host` with `text` as its config.
fn start(host: &Host, keys: &Keys, ifname: &str, text: &str) -> Process {
    host.write_file("private.key", &format!("{}\n", keys.private));
    let path = host.write_file("sm.toml", text);
    host.register_interface(ifname);
    let process = host.spawn(
        "sentrymesh up",
        SENTRYMESH,
        &["up", "-c", &path.to_string_lossy()],
    );
    assert!(
        wait_until(EVENT_WITHIN, || Path::new(&socket_path(ifname)).exists()),
        "sentrymesh up did not start:\n{}",
        process.log()
    );
    process
}

/// Runs `sentrymesh reload --interface IFNAME` and returns whether it
/// succeeded, its standard output and its standard error.
fn reload(ifname: &str) -> (bool, String, String) {
    let finished = run_command(
        Command::new(SENTRYMESH).args(["reload", "--interface", ifname]),
        b"",
        Duration::from_secs(30),
    );
    assert!(!finished.timed_out, "sentrymesh reload hung");
    (finished.success(), finished.stdout, finished.stderr)
}

/// The MTU `ip link` shows for `ifname` in `host`.
fn mtu_of(host: &Host, ifname: &str) -> u32 {
    let shown = host.ip(&["link", "show", "dev", ifname]);
    shown
        .split_whitespace()
        .skip_while(|word| *word != "mtu")
        .nth(1)
        .and_then(|mtu| mtu.parse().ok())
        .unwrap_or_else(|| panic!("no MTU in: {shown}"))
}

#[test]
fn reload_answers_what_changed_applies_the_mtu_and_fails_with_the_reason() {
    let (a, b) = (Host::new("reload-a"), Host::new("reload-b"));
    let underlay = link(&a, &b);
    let overlay = sentrymesh_lab::Overlay::allocate();
    let (keys_a, keys_b) = (Keys::generate(), Keys::generate());
    let (if_a, if_b) = (unique_ifname(), unique_ifname());
    let config_a = |mtu: u16| {
        config(
            &if_a,
            overlay.a4.into(),
            mtu,
            &keys_b.public,
            &format!("{}:51820", underlay.b4),
            overlay.b4.into(),
        )
    };
    let daemon_a = start(&a, &keys_a, &if_a, &config_a(1420));
    let _daemon_b = start(
        &b,
        &keys_b,
        &if_b,
        &config(
            &if_b,
            overlay.b4.into(),
            1420,
            &keys_a.public,
            &format!("{}:51820", underlay.a4),
            overlay.a4.into(),
        ),
    );
    let first = try_ping(&a, overlay.b4.into(), 3, 56, EVENT_WITHIN);
    assert!(
        first.success,
        "no tunnel:\n{}\n{}",
        first.output,
        daemon_a.log()
    );
    assert_eq!(mtu_of(&a, &if_a), 1420);

    // An MTU change is applied to the device, and the answer (and the log)
    // says what changed.
    a.write_file("sm.toml", &config_a(1380));
    let (ok, stdout, stderr) = reload(&if_a);
    assert!(
        ok,
        "the reload failed: {stdout}{stderr}\n{}",
        daemon_a.log()
    );
    assert!(stdout.contains("mtu 1420 -> 1380"), "{stdout}");
    assert_eq!(mtu_of(&a, &if_a), 1380, "the MTU change was not applied");
    assert!(
        daemon_a.log().contains("mtu 1420 -> 1380"),
        "the reload's log line does not say what changed:\n{}",
        daemon_a.log()
    );
    let after = try_ping(&a, overlay.b4.into(), 3, 1300, EVENT_WITHIN);
    assert!(
        after.success,
        "the tunnel broke on the MTU change:\n{}",
        after.output
    );

    // An MTU out of range: refused with the file's line and column, and
    // `sentrymesh reload` fails with that reason.
    a.write_file(
        "sm.toml",
        &config_a(1380).replace("mtu = 1380", "mtu = 70000"),
    );
    let (ok, stdout, stderr) = reload(&if_a);
    assert!(!ok, "a refused reload exited 0: {stdout}");
    assert!(
        stderr.contains("sm.toml:6:7: interface.mtu") && stderr.contains("refused the config"),
        "the daemon's reason is not in the error: {stderr}"
    );
    assert!(
        daemon_a.log().contains("reload refused"),
        "{}",
        daemon_a.log()
    );
    assert_eq!(mtu_of(&a, &if_a), 1380, "a refused reload changed the MTU");
    let still = try_ping(&a, overlay.b4.into(), 3, 56, EVENT_WITHIN);
    assert!(
        still.success,
        "the old config stopped working:\n{}",
        still.output
    );

    // Nothing changed: the answer says so.
    a.write_file("sm.toml", &config_a(1380));
    let (ok, stdout, _) = reload(&if_a);
    assert!(ok && stdout.contains("nothing changed"), "{stdout}");
}
