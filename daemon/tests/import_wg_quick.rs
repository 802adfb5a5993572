//! `sentrymesh import wg-quick`: an operator's existing WireGuard mesh of
//! two hosts, each configured by a wg-quick file. Host b keeps its file and
//! runs it with wg-quick and Debian's wireguard-go; host a's file is
//! imported, and `sentrymesh up` runs the native config it printed: the
//! tunnel forms, with the preshared key kept. The keys went to 0600 files,
//! never to the output, and what the native config has no place for was
//! named with its line. Addresses are from 198.18.0.0/15 only.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sentrymesh_lab::{
    EVENT_WITHIN, Host, Implementation, Keys, Overlay, link, preshared_key, run_command,
    socket_path, try_ping, unique_ifname, wait_until, wg_quick,
};

const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");
const PORT_A: u16 = 51820;
const PORT_B: u16 = 51821;

#[test]
fn an_imported_wg_quick_config_reaches_a_wireguard_go_peer_run_by_the_original_file() {
    let (a, b) = (Host::new("import-a"), Host::new("import-b"));
    let underlay = link(&a, &b);
    let overlay = Overlay::allocate();
    let (keys_a, keys_b) = (Keys::generate(), Keys::generate());
    let psk = preshared_key();
    let (if_a, if_b) = (unique_ifname(), unique_ifname());

    // b: its own wg-quick file, run by wg-quick with wireguard-go.
    let conf_b = b.write_file(
        &format!("{if_b}.conf"),
        &format!(
            "[Interface]\nPrivateKey = {}\nListenPort = {PORT_B}\nAddress = {}/24\n\n\
             [Peer]\nPublicKey = {}\nPresharedKey = {psk}\nAllowedIPs = {}/32\n\
             Endpoint = {}:{PORT_A}\n",
            keys_b.private, overlay.b4, keys_a.public, overlay.a4, underlay.a4
        ),
    );
    b.register_interface(&if_b);
    let bin = b.dir().join("bin");
    fs::create_dir(&bin).expect("create the bin directory");
    let userspace = Implementation::WireguardGo.install_for_wg_quick(&bin);
    let up = wg_quick(&b, &bin, &userspace, "up", &conf_b);
    assert!(
        up.success(),
        "wg-quick up failed:\n{}{}",
        up.stdout,
        up.stderr
    );
    let details = b.ip(&["-d", "link", "show", &if_b]);
    assert!(
        details.contains(" tun "),
        "wg-quick did not run wireguard-go (a kernel WireGuard module is loaded?):\n{details}"
    );

    // a: the file of the same mesh, with settings the native config has no
    // place for, imported.
    let conf_a = a.write_file(
        &format!("{if_a}.conf"),
        &format!(
            "[Interface]\nPrivateKey = {}\nListenPort = {PORT_A}\nAddress = {}/24\n\
             DNS = {}\nMTU = 1400\nPostUp = echo up\nSaveConfig = false\n\n\
             [Peer]\nPublicKey = {}\nPresharedKey = {psk}\nAllowedIPs = {}/32\n\
             Endpoint = {}:{PORT_B}\nPersistentKeepalive = 25\n",
            keys_a.private, overlay.a4, overlay.b4, keys_b.public, overlay.b4, underlay.b4
        ),
    );
    let imported = run_command(
        Command::new(SENTRYMESH)
            .args(["import", "wg-quick"])
            .arg(&conf_a),
        b"",
        Duration::from_secs(30),
    );
    assert!(imported.success(), "import failed:\n{}", imported.stderr);
    for secret in [&keys_a.private, &psk] {
        assert!(
            !imported.stdout.contains(secret.as_str())
                && !imported.stderr.contains(secret.as_str()),
            "a key was printed"
        );
    }
    let conf_name = conf_a.display().to_string();
    for warned in [
        format!("{conf_name}:5: DNS"),
        format!("{conf_name}:7: PostUp"),
    ] {
        assert!(
            imported.stderr.contains(&warned),
            "no warning {warned}: {}",
            imported.stderr
        );
    }
    assert!(
        !imported.stderr.contains("SaveConfig"),
        "{}",
        imported.stderr
    );
    for (name, key) in [
        (format!("{if_a}.key"), &keys_a.private),
        (format!("{if_a}.peer0.psk"), &psk),
    ] {
        let path = a.dir().join(&name);
        let mode = fs::metadata(&path)
            .expect("a key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} is readable by others");
        assert_eq!(fs::read_to_string(&path).unwrap().trim(), key.as_str());
    }

    // A second import refuses to replace the key files.
    let again = run_command(
        Command::new(SENTRYMESH)
            .args(["import", "wg-quick"])
            .arg(&conf_a),
        b"",
        Duration::from_secs(30),
    );
    assert!(
        !again.success() && again.stderr.contains("not overwritten"),
        "{}",
        again.stderr
    );

    // The native config it printed runs, and reaches b.
    let config = a.write_file("sm.toml", &imported.stdout);
    a.register_interface(&if_a);
    let daemon = a.spawn(
        "sentrymesh up",
        SENTRYMESH,
        &["up", "-c", &config.to_string_lossy()],
    );
    assert!(
        wait_until(EVENT_WITHIN, || Path::new(&socket_path(&if_a)).exists()),
        "sentrymesh up did not start:\n{}",
        daemon.log()
    );
    let ping = try_ping(&a, overlay.b4.into(), 3, 56, EVENT_WITHIN);
    assert!(
        ping.success,
        "no tunnel to wireguard-go:\n{}\n{}",
        ping.output,
        daemon.log()
    );
    let mtu = a.ip(&["link", "show", "dev", &if_a]);
    assert!(mtu.contains("mtu 1400"), "{mtu}");

    let down = wg_quick(&b, &bin, &userspace, "down", &conf_b);
    assert!(
        down.success(),
        "wg-quick down failed:\n{}{}",
        down.stdout,
        down.stderr
    );
}
