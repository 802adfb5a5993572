//! Least privilege: the systemd unit's hardening (its `systemd-analyze
//! security` score, a clean `systemd-analyze verify`), the daemon running as
//! the unit runs it (the service user, `CAP_NET_ADMIN` alone, the UAPI
//! socket directory and files the install makes) in a namespace, and the
//! watchdog fed while the data path turns.
//!
//! There is no systemd as PID 1 here: `setpriv` starts the daemon with the
//! unit's identity and capabilities, and a datagram socket the test binds
//! stands in for systemd's notification socket. The tools are required:
//! without `systemd-analyze`, `setpriv` or `nsenter` the tests fail.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sentrymesh_lab::{
    Host, Keys, Overlay, link, ping, run_command, run_ok, socket_path, spawn, unique_ifname,
    wait_until,
};

const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");
/// The unit, from the workspace root.
const UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../configs/sentrymesh@.service"
);
const SYSUSERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../configs/sentrymesh.sysusers"
);
const TMPFILES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../configs/sentrymesh.tmpfiles"
);
/// The highest exposure `systemd-analyze security` may give the unit.
const MAX_EXPOSURE: f64 = 2.0;
/// `CAP_NET_ADMIN` as a bit of a capability set in /proc.
const CAP_NET_ADMIN: u64 = 1 << 12;
/// The ceiling of every wait: generous, the waits end at the event.
const WAIT: Duration = Duration::from_secs(30);

/// Runs `command` (at most a minute) and returns its status, standard
/// output and standard error.
fn output(command: &mut Command) -> (bool, String, String) {
    let finished = run_command(command, b"", Duration::from_secs(60));
    (
        finished.success(),
        finished.stdout.clone(),
        finished.stderr.clone(),
    )
}

/// The overall exposure level in the output of `systemd-analyze security`:
/// the number after "Overall exposure level for NAME:".
fn overall_exposure(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|line| line.contains("Overall exposure level"))?;
    let (_, after) = line.split_once(": ")?;
    after.split_whitespace().next()?.parse().ok()
}

#[test]
fn the_unit_scores_at_most_two_in_systemd_analyze_security() {
    let (ok, stdout, stderr) = output(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(UNIT),
    );
    assert!(ok, "systemd-analyze security failed:\n{stdout}\n{stderr}");
    let exposure = overall_exposure(&stdout)
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{stdout}"));
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} > {MAX_EXPOSURE}:\n{stdout}"
    );
}

#[test]
fn the_exposure_level_is_read_from_the_report() {
    let report = "✗ PrivateNetwork=    Service has access to the host's network    0.5\n\
                  → Overall exposure level for sentrymesh@i.service: 1.7 OK 🙂\n";
    assert_eq!(overall_exposure(report), Some(1.7));
    assert_eq!(overall_exposure("no summary"), None);
}

/// `unit` with the `sentrymesh` its commands name (found by systemd in
/// /usr/local/bin or /usr/bin) replaced by the binary at `path`.
fn with_binary(unit: &str, path: &str) -> String {
    unit.replace("=sentrymesh ", &format!("={path} "))
}

#[test]
fn the_unit_verifies_without_a_warning() {
    // verify checks that ExecStart= names an executable: the unit as
    // installed, with the binary under test in its place.
    let dir = tempfile::tempdir().unwrap();
    let unit = fs::read_to_string(UNIT).unwrap();
    assert!(unit.contains("ExecStart=sentrymesh up"));
    let path = dir.path().join("sentrymesh@.service");
    fs::write(&path, with_binary(&unit, SENTRYMESH)).unwrap();
    for unit in [path.clone(), dir.path().join("sentrymesh@sm0.service")] {
        let (ok, stdout, stderr) = output(Command::new("systemd-analyze").arg("verify").arg(&unit));
        assert!(
            ok && stderr.trim().is_empty(),
            "systemd-analyze verify {}:\n{stdout}\n{stderr}",
            unit.display()
        );
    }
}

/// The unit that keeps a chain node's peer config (`sentrymesh export
/// --watch`), from the workspace root.
const EXPORT_UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../configs/sentrymesh-export@.service"
);

#[test]
fn the_export_unit_verifies_without_a_warning_and_is_confined() {
    let dir = tempfile::tempdir().unwrap();
    let unit = fs::read_to_string(EXPORT_UNIT).unwrap();
    assert!(unit.contains("ExecStart=sentrymesh export ${CHAIN} "));
    let path = dir.path().join("sentrymesh-export@.service");
    fs::write(&path, with_binary(&unit, SENTRYMESH)).unwrap();
    for unit in [
        path.clone(),
        dir.path().join("sentrymesh-export@sm0.service"),
    ] {
        let (ok, stdout, stderr) = output(Command::new("systemd-analyze").arg("verify").arg(&unit));
        assert!(
            ok && stderr.trim().is_empty(),
            "systemd-analyze verify {}:\n{stdout}\n{stderr}",
            unit.display()
        );
    }
    // It reads files and writes one: no network, no capability.
    let (ok, stdout, stderr) = output(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&path),
    );
    assert!(ok, "systemd-analyze security failed:\n{stdout}\n{stderr}");
    let exposure = overall_exposure(&stdout)
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{stdout}"));
    assert!(exposure <= 1.0, "exposure {exposure} > 1.0:\n{stdout}");
}

/// What the install steps of the README make, under a root directory of
/// its own: the user (sysusers.d), /run/wireguard (tmpfiles.d) and
/// /etc/sentrymesh with a config and its key.
struct Install {
    root: tempfile::TempDir,
    uid: u32,
    gid: u32,
}

impl Install {
    fn new() -> Install {
        let root = tempfile::tempdir().unwrap();
        // The service user reaches /etc/sentrymesh through it.
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        let root_arg = format!("--root={}", root.path().display());
        run_ok(
            Command::new("systemd-sysusers")
                .arg(&root_arg)
                .arg(SYSUSERS),
            b"",
        );
        run_ok(
            Command::new("systemd-tmpfiles")
                .arg(&root_arg)
                .arg("--create")
                .arg(TMPFILES),
            b"",
        );
        let passwd = fs::read_to_string(root.path().join("etc/passwd")).unwrap();
        let entry: Vec<&str> = passwd
            .lines()
            .find(|line| line.starts_with("sentrymesh:"))
            .expect("sysusers made the user sentrymesh")
            .split(':')
            .collect();
        let (uid, gid) = (entry[2].parse().unwrap(), entry[3].parse().unwrap());
        let install = Install { root, uid, gid };
        let run = install.runtime_dir();
        let mode = fs::metadata(&run).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o1775, "{} is sticky and the group's", run.display());
        install.make_dir("etc/sentrymesh", 0o750, 0, gid);
        install
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    /// Where the UAPI sockets go: the install's /run/wireguard.
    fn runtime_dir(&self) -> PathBuf {
        self.path("run/wireguard")
    }

    fn make_dir(&self, relative: &str, mode: u32, uid: u32, gid: u32) {
        let path = self.path(relative);
        fs::create_dir_all(&path).unwrap();
        chown(&path, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn write(&self, relative: &str, contents: &str, mode: u32, uid: u32, gid: u32) -> PathBuf {
        let path = self.path(relative);
        fs::write(&path, contents).unwrap();
        chown(&path, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

/// A `[interface]` and one `[[peer]]`, the key file beside the config.
fn config(ifname: &str, address: &str, peer: &str, endpoint: &str, allowed: &str) -> String {
    format!(
        r#"[interface]
name = "{ifname}"
private_key_file = "{ifname}.key"
listen_port = 51820
addresses = ["{address}/24"]

[[peer]]
public_key = "{peer}"
endpoint = "{endpoint}"
allowed_ips = ["{allowed}/32"]
"#
    )
}

/// A capability set of process `pid`, e.g. `CapEff`, and its user ids.
fn status_field(pid: u32, field: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_owned()
}

fn capabilities(pid: u32, set: &str) -> u64 {
    u64::from_str_radix(&status_field(pid, set), 16).unwrap()
}

/// `program args` as root in the mount and network namespaces of `pid`,
/// where the daemon's /run/wireguard is.
fn as_root_beside(pid: u32, program: &str, args: &[&str]) -> String {
    run_ok(
        Command::new("nsenter")
            .args(["--target", &pid.to_string(), "--mount", "--net", "--"])
            .arg(program)
            .args(args),
        b"",
    )
}

#[test]
fn the_daemon_runs_as_the_service_user_with_cap_net_admin_alone() {
    let install = Install::new();
    let (a, b) = (Host::new("priv-a"), Host::new("priv-b"));
    let underlay = link(&a, &b);
    let overlay = Overlay::allocate();
    let (keys_a, keys_b) = (Keys::generate(), Keys::generate());
    let (if_a, if_b) = (unique_ifname(), unique_ifname());

    // b: an ordinary daemon, as root.
    b.write_file(&format!("{if_b}.key"), &format!("{}\n", keys_b.private));
    let config_b = b.write_file(
        "sm.toml",
        &config(
            &if_b,
            &overlay.b4.to_string(),
            &keys_a.public,
            &format!("{}:51820", underlay.a4),
            &overlay.a4.to_string(),
        ),
    );
    b.register_interface(&if_b);
    let daemon_b = b.spawn(
        "sentrymesh up (root)",
        SENTRYMESH,
        &["up", "-c", &config_b.to_string_lossy()],
    );

    // a: as the unit runs it. The files as the README installs them.
    install.write(
        &format!("etc/sentrymesh/{if_a}.key"),
        &format!("{}\n", keys_a.private),
        0o600,
        install.uid,
        install.gid,
    );
    let config_a = install.write(
        &format!("etc/sentrymesh/{if_a}.toml"),
        &config(
            &if_a,
            &overlay.a4.to_string(),
            &keys_b.public,
            &format!("{}:51820", underlay.b4),
            &overlay.b4.to_string(),
        ),
        0o640,
        0,
        install.gid,
    );
    // udev's rule makes /dev/net/tun 0666; a container may leave it 0600.
    // Such a node, in the daemon's own mount namespace, as is the install's
    // /run/wireguard.
    let tun = install.path("tun");
    run_ok(
        Command::new("mknod")
            .args(["-m", "0666"])
            .arg(&tun)
            .args(["c", "10", "200"]),
        b"",
    );
    let script = r#"mount --bind "$1" /var/run/wireguard && mount --bind "$2" /dev/net/tun \
        && umask 077 && exec setpriv --reuid="$3" --regid="$4" --clear-groups --no-new-privs \
        --inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin \
        --bounding-set=-all,+net_admin "$5" up -c "$6""#;
    let mut command = a.command("unshare");
    command
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(install.runtime_dir())
        .arg(&tun)
        .arg(install.uid.to_string())
        .arg(install.gid.to_string())
        .arg(SENTRYMESH)
        .arg(&config_a);
    let daemon_a = spawn("sentrymesh up (service user)", &mut command);
    let socket = install.runtime_dir().join(format!("{if_a}.sock"));
    assert!(
        wait_until(WAIT, || socket.exists()),
        "the daemon did not start:\n{}",
        daemon_a.log()
    );
    let pid = daemon_a.pid();

    // Its identity: the service user, CAP_NET_ADMIN alone, no ambient set
    // left for a program it might run.
    let uid = install.uid.to_string();
    assert_eq!(
        status_field(pid, "Uid")
            .split_whitespace()
            .collect::<Vec<_>>(),
        [uid.as_str(); 4]
    );
    assert_eq!(capabilities(pid, "CapEff"), CAP_NET_ADMIN);
    assert_eq!(capabilities(pid, "CapPrm"), CAP_NET_ADMIN);
    assert_eq!(capabilities(pid, "CapBnd"), CAP_NET_ADMIN);
    assert_eq!(capabilities(pid, "CapAmb"), 0);
    let metadata = fs::metadata(&socket).unwrap();
    assert_eq!(metadata.uid(), install.uid);
    assert_eq!(
        metadata.mode() & 0o077,
        0,
        "the socket is its owner's alone"
    );

    // The interface is up with its address, and root's wg reads it.
    let addresses = a.ip(&["-brief", "address", "show", "dev", &if_a]);
    assert!(addresses.contains(&overlay.a4.to_string()), "{addresses}");
    let shown = as_root_beside(pid, "wg", &["show", &if_a]);
    assert!(
        shown.contains("listening port: 51820") && shown.contains(&keys_b.public),
        "wg show {if_a}:\n{shown}"
    );

    // A handshake with b, and packets through it.
    ping(&b, overlay.a4.into(), 3);
    let ready = as_root_beside(
        pid,
        SENTRYMESH,
        &[
            "wait-ready",
            "--interface",
            &if_a,
            "--min-peers",
            "1",
            "--timeout",
            "10s",
        ],
    );
    assert!(ready.contains("ready"), "wait-ready: {ready}");
    // Root's reload reaches it, and the service user may re-read its files.
    let reloaded = as_root_beside(pid, SENTRYMESH, &["reload", "--interface", &if_a]);
    assert!(reloaded.contains("nothing changed"), "reload: {reloaded}");
    assert!(
        wait_until(WAIT, || daemon_a.log().contains("reloaded")),
        "no reload:\n{}",
        daemon_a.log()
    );
    // The unit's ExecReload runs as the service user: its reload is
    // answered too.
    let reloaded = as_root_beside(
        pid,
        "setpriv",
        &[
            &format!("--reuid={}", install.uid),
            &format!("--regid={}", install.gid),
            "--clear-groups",
            SENTRYMESH,
            "reload",
            "--interface",
            &if_a,
        ],
    );
    assert!(
        reloaded.contains("nothing changed"),
        "reload as the service user: {reloaded}"
    );
    ping(&b, overlay.a4.into(), 1);
    let log = daemon_a.log();
    assert!(!log.contains("could not drop capabilities"), "{log}");
    assert!(daemon_b.log().contains("is up"), "{}", daemon_b.log());
}

#[test]
fn the_watchdog_is_pinged_while_the_data_path_turns() {
    let host = Host::new("watchdog");
    let ifname = unique_ifname();
    let keys = Keys::generate();
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify");
    let manager = UnixDatagram::bind(&notify_path).unwrap();
    manager.set_read_timeout(Some(WAIT)).unwrap();
    host.write_file(&format!("{ifname}.key"), &format!("{}\n", keys.private));
    let config = host.write_file(
        "sm.toml",
        &format!(
            "[interface]\nname = \"{ifname}\"\nprivate_key_file = \"{ifname}.key\"\n\
             addresses = [\"198.18.250.1/24\"]\n"
        ),
    );
    host.register_interface(&ifname);
    let mut command = host.command(SENTRYMESH);
    command
        .args(["up", "-c"])
        .arg(&config)
        // Pings every 5 s, each when the data path turned within 5 s; an
        // idle data path turns every second.
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "10000000");
    let daemon = spawn("sentrymesh up", &mut command);

    let started = Instant::now();
    let mut states = Vec::new();
    let mut pings = 0;
    while pings < 3 {
        let mut buf = [0u8; 512];
        let len = manager.recv(&mut buf).unwrap_or_else(|error| {
            panic!(
                "no notification ({error}); so far {states:?}\n{}",
                daemon.log()
            )
        });
        let state = String::from_utf8_lossy(&buf[..len]).into_owned();
        pings += usize::from(state == "WATCHDOG=1");
        states.push(state);
        assert!(started.elapsed() < 3 * WAIT, "too slow: {states:?}");
    }
    assert!(
        states[0].starts_with("READY=1"),
        "READY=1 comes first: {states:?}"
    );
    let log = daemon.log();
    assert!(!log.contains("withholding"), "{log}");
    assert!(Path::new(&socket_path(&ifname)).exists());
}
