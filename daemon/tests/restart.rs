//! Crash and restart of `sentrymesh up` (issue 11, point 5), on namespace
//! hosts: a mesh member killed with SIGKILL under traffic and started again
//! as systemd would gets its sessions back (the time to each first
//! handshake is printed) and its peers from its state file, even with
//! every peer down; and a start that cannot succeed (a missing key file, an
//! interface name taken, a port in use, a state directory it cannot write
//! or others can, a state file cut short with no previous copy) exits
//! non-zero with one clear message before anything on the system changed.
//!
//! The tests need root and fail (never skip) without it. Every address is in
//! 198.18.0.0/15; see [`sentrymesh_lab::mesh_lab`].

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sentrymesh_lab::mesh_lab::{
    FORMS_WITHIN, INTRODUCTION_PORT, Lab, Member, Role, assert_peers, base64_decode,
};
use sentrymesh_lab::{run_command, socket_path, wait_until};

/// The daemon under test, built with these tests.
const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

/// The WireGuard port the lab's members listen on.
const WG_PORT: u16 = 51820;

/// How long a refused start may take to exit (a quiet machine takes
/// milliseconds).
const REFUSED_WITHIN: Duration = Duration::from_secs(30);

/// A member killed with SIGKILL while a ping stream runs through it leaves
/// no device, address or route of its interface behind, only a stale UAPI
/// socket; started again with the same config and state directory, it
/// replaces the socket, takes the lock the dead process never released,
/// reads its state without complaint and has a session with each peer
/// again. Killed once more with every peer down, it still comes back with
/// the peer it learnt only by gossip: from its state file.
#[test]
fn a_member_killed_under_traffic_comes_back_with_its_sessions_and_peers() {
    let mut lab = Lab::new(SENTRYMESH, "crash");
    let (a, b) = (lab.operator("a"), lab.operator("b"));
    let mut victim = lab.member(&a, "a-sentry-1", Role::Sentry);
    let mut near = lab.member(&b, "b-sentry-1", Role::Sentry);
    let mut far = lab.member(&b, "b-sentry-2", Role::Sentry);
    // The victim is handed only near's card; far's reaches it by gossip.
    victim.know_card(&near);
    near.know_card(&victim);
    near.know_card(&far);
    far.know_card(&near);
    victim.configure(&[&b], 1, 1);
    near.configure(&[&a], 1, 1);
    far.configure(&[&a], 1, 1);
    for member in [&mut victim, &mut near, &mut far] {
        member.start();
    }
    assert_peers(&victim, &[&near, &far]);
    // Far's card is in the victim's state file (written at most a second
    // after it came).
    let state_file = state_dir(&victim).join("mesh.state");
    let far_key = base64_decode(&far.wg_public);
    assert!(
        wait_until(FORMS_WITHIN, || std::fs::read(&state_file)
            .is_ok_and(|state| contains(&state, &far_key))),
        "far's card never reached the victim's state file:\n{}",
        victim.log()
    );

    // Traffic through the victim when it dies: a bounded ping stream.
    let stream = near.host.spawn(
        "a ping stream to the victim",
        "ping",
        &["-n", "-i", "0.2", "-c", "150", &victim.overlay.to_string()],
    );
    assert!(
        wait_until(FORMS_WITHIN, || stream.log().contains("bytes from")),
        "no ping through the victim:\n{}",
        stream.log()
    );
    victim.kill();

    // What the crash left: the device went with the process, and its
    // addresses and routes with it; the socket file stays, stale.
    let links = victim.host.ip(&["-o", "link", "show"]);
    assert!(
        !links.contains(&victim.ifname),
        "the device outlived the crash:\n{links}"
    );
    let addresses = victim.host.ip(&["-o", "addr", "show"]);
    let overlay = victim.overlay.to_string();
    assert!(
        !addresses.contains(&overlay),
        "an address outlived the crash:\n{addresses}"
    );
    let routes = victim.host.ip(&["route", "show", "table", "all"]);
    assert!(
        !routes.contains(&victim.ifname),
        "a route outlived the crash:\n{routes}"
    );
    eprintln!("routes a crashed member leaves behind:\n{routes}");
    assert!(
        socket_path(&victim.ifname).exists(),
        "a killed daemon cannot remove its socket; where did it go?"
    );

    // Started again as systemd would: same config, same state directory.
    let restarted = Instant::now();
    victim.start();
    let (mut to_near, mut to_far) = (None, None);
    let back = wait_until(FORMS_WITHIN, || {
        if to_near.is_none() && victim.has_session_with(&near) {
            to_near = Some(restarted.elapsed());
        }
        if to_far.is_none() && victim.has_session_with(&far) {
            to_far = Some(restarted.elapsed());
        }
        to_near.is_some() && to_far.is_some()
    });
    assert!(
        back,
        "the sessions did not come back after the restart:\n{}",
        victim.log()
    );
    eprintln!(
        "from the restart to the first handshake: with near {:?}, with far {:?}",
        to_near.unwrap_or_default(),
        to_far.unwrap_or_default()
    );
    let log = victim.log();
    for complaint in ["does not verify", "in use by another", "is missing"] {
        assert!(!log.contains(complaint), "the restart complained:\n{log}");
    }
    assert!(!state_dir(&victim).join("mesh.state.damaged").exists());
    assert!(victim.pings(&near) && victim.pings(&far));
    drop(stream);

    // With every peer down, only the state file knows far.
    near.stop();
    far.stop();
    victim.kill();
    victim.start();
    let mut expected = vec![near.wg_public.clone(), far.wg_public.clone()];
    expected.sort();
    assert!(
        wait_until(FORMS_WITHIN, || victim.peers() == expected),
        "the peers learnt by gossip did not come back from the state file: {:?}\n{}",
        victim.peers(),
        victim.log()
    );
}

/// Each start that cannot succeed is refused with one clear message and a
/// non-zero exit, and leaves links, addresses, routes, the UAPI socket
/// directory and the state directory as they were.
#[test]
fn a_start_that_cannot_succeed_changes_nothing() {
    let mut lab = Lab::new(SENTRYMESH, "refuse");
    let (a, b) = (lab.operator("a"), lab.operator("b"));
    let mut member = lab.member(&a, "a-sentry-1", Role::Sentry);
    let other = lab.member(&b, "b-sentry-1", Role::Sentry);
    member.know_card(&other);
    member.configure(&[&b], 1, 1);
    // A state directory as a member that ran leaves it.
    member.start();
    let state = state_dir(&member);
    assert!(
        wait_until(FORMS_WITHIN, || state.join("mesh.state").exists()),
        "no state written:\n{}",
        member.log()
    );
    member.stop();
    let key = member.host.dir().join("wg.key");
    let ifname = member.ifname.clone();

    // A missing key file.
    let away = member.host.dir().join("wg.key.away");
    std::fs::rename(&key, &away).expect("move the key away");
    refused(&member, &[], "wg.key");
    std::fs::rename(&away, &key).expect("put the key back");

    // The interface name taken by another device, and by a TUN device.
    let bridge = ["link", "add", ifname.as_str(), "type", "bridge"];
    let tun = ["tuntap", "add", "dev", ifname.as_str(), "mode", "tun"];
    for add in [&bridge[..], &tun[..]] {
        member.host.ip(add);
        refused(&member, &[], "already exists");
        member.host.ip(&["link", "del", &ifname]);
    }
    // And by another daemon's TUN device.
    let socket = socket_path(&ifname);
    let holder = member
        .host
        .spawn("sentrymesh wg", SENTRYMESH, &["wg", "-f", &ifname]);
    assert!(
        wait_until(REFUSED_WITHIN, || UnixStream::connect(&socket).is_ok()),
        "sentrymesh wg did not start:\n{}",
        holder.log()
    );
    refused(&member, &[], "already exists");
    drop(holder);
    assert!(
        wait_until(REFUSED_WITHIN, || !socket.exists()),
        "sentrymesh wg did not stop"
    );

    // The WireGuard port and the introduction port in use.
    for (port, message) in [
        (WG_PORT, format!("UDP port {WG_PORT}")),
        (
            INTRODUCTION_PORT,
            format!("introduction port {INTRODUCTION_PORT}"),
        ),
    ] {
        let taken = member
            .host
            .in_namespace(move || std::net::UdpSocket::bind(("0.0.0.0", port)))
            .unwrap_or_else(|error| {
                let sockets = member.host.run("ss", &["-uanp"]);
                panic!("cannot take port {port} for the test: {error}\n{sockets}")
            });
        refused(&member, &[], &message);
        drop(taken);
    }

    // A state directory others can write to.
    set_mode(&state, 0o777);
    refused(&member, &[], "writable by group or others");
    set_mode(&state, 0o700);

    // A read-only state directory: mounted so in a mount namespace of the
    // daemon's own, which goes with it.
    let mount = [
        "unshare",
        "-m",
        "sh",
        "-c",
        "mount --bind -o ro \"$0\" \"$0\" && exec \"$@\"",
    ];
    let state_arg = state.to_string_lossy().into_owned();
    let mut wrapper: Vec<&str> = mount.to_vec();
    wrapper.push(&state_arg);
    refused(&member, &wrapper, "must be writable");

    // A state file cut short, with no previous copy to recover from.
    let state_file = state.join("mesh.state");
    let whole = std::fs::read(&state_file).expect("the state file");
    let previous = state.join("mesh.state.prev");
    let kept = std::fs::read(&previous).ok();
    let _ = std::fs::remove_file(&previous);
    std::fs::write(&state_file, &whole[..whole.len() / 2]).expect("cut the state");
    refused(&member, &[], "move it away to start over");
    std::fs::write(&state_file, &whole).expect("restore the state");
    if let Some(kept) = kept {
        std::fs::write(&previous, kept).expect("restore the previous state");
    }

    // And with everything put back it starts, here from the previous copy
    // of a state file cut short.
    std::fs::write(&previous, &whole).expect("a previous copy");
    std::fs::write(&state_file, &whole[..whole.len() - 1]).expect("cut the state");
    member.start();
    assert!(member.host.ip(&["-o", "link", "show"]).contains(&ifname));
    let log = member.log();
    assert!(
        log.contains("does not verify") && log.contains("is read instead"),
        "no warning of the recovery:\n{log}"
    );
    assert!(state.join("mesh.state.damaged").exists());
}

/// The member's state directory.
fn state_dir(member: &Member) -> PathBuf {
    member.host.dir().join("state")
}

/// Whether `haystack` holds `needle`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Runs `sentrymesh up` for `member` (behind the command `wrapper`, if
/// any) and asserts it exits non-zero with `message` in what it says, and
/// changed nothing on the system.
#[track_caller]
fn refused(member: &Member, wrapper: &[&str], message: &str) {
    let before = SystemState::of(member);
    let config = member.host.dir().join("sm.toml");
    let config = config.to_string_lossy();
    let mut args: Vec<&str> = wrapper.to_vec();
    args.extend([SENTRYMESH, "up", "-c", &config]);
    let finished = run_command(
        member.host.command(args[0]).args(&args[1..]),
        b"",
        REFUSED_WITHIN,
    );
    assert!(
        !finished.success(),
        "a start that should fail ({message}) ran:\n{}",
        finished.stderr
    );
    assert!(
        finished.stderr.contains(message),
        "the refusal does not say {message:?}:\n{}",
        finished.stderr
    );
    eprintln!("refused: {}", finished.stderr.trim());
    assert_eq!(
        SystemState::of(member),
        before,
        "a refused start ({message}) changed the system"
    );
}

/// What a start could change on a member's host.
#[derive(Debug, PartialEq, Eq)]
struct SystemState {
    links: Vec<String>,
    addresses: String,
    routes: String,
    socket: bool,
    /// Each file of the state directory: its name, length and a hash.
    state: Vec<(String, usize, u64)>,
}

impl SystemState {
    fn of(member: &Member) -> SystemState {
        let host = &member.host;
        // The kernel's duplicate address detection on a new link's IPv6
        // link-local address ends on its own, adding a local route: wait
        // for it, so the snapshot holds only what a start could change.
        assert!(
            wait_until(REFUSED_WITHIN, || !host
                .ip(&["-o", "addr", "show"])
                .contains("tentative")),
            "an address stayed tentative"
        );
        // Each link's name and flags (not its counters).
        let links = host
            .ip(&["-o", "link", "show"])
            .lines()
            .map(|line| line.split(" mtu ").next().unwrap_or(line).to_owned())
            .collect();
        let routes = [
            host.ip(&["route", "show", "table", "all"]),
            host.ip(&["-6", "route", "show", "table", "all"]),
        ]
        .concat();
        let mut state: Vec<(String, usize, u64)> = std::fs::read_dir(state_dir(member))
            .expect("the state directory")
            .map(|entry| {
                let entry = entry.expect("a state directory entry");
                let bytes = std::fs::read(entry.path()).expect("a state file");
                let mut hasher = DefaultHasher::new();
                bytes.hash(&mut hasher);
                (
                    entry.file_name().to_string_lossy().into_owned(),
                    bytes.len(),
                    hasher.finish(),
                )
            })
            .collect();
        state.sort();
        SystemState {
            links,
            addresses: host.ip(&["-o", "addr", "show"]),
            routes,
            socket: socket_path(&member.ifname).exists(),
            state,
        }
    }
}
