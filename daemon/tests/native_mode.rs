//! `sentrymesh up -c FILE.toml` on two network-namespace hosts: the tunnel
//! forms from the native configuration alone, a reload under traffic loses
//! nothing, a packet from an address the sender may not use is dropped, and a
//! broken configuration is refused before anything changes.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use sentrymesh_lab::{
    EVENT_WITHIN, Host, Keys, Link, Overlay, Process, link, preshared_key, run_command, sample,
    socket_path, spawn, try_ping, unique_ifname, unix_now, wait_until,
};

const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

/// A native configuration of one side of the tunnel.
struct Side<'a> {
    ifname: &'a str,
    address: IpAddr,
    peer_public_key: &'a str,
    peer_endpoint: String,
    peer_address: IpAddr,
}

fn config(side: &Side<'_>) -> String {
    format!(
        r#"[interface]
name = "{ifname}"
private_key_file = "private.key"
listen_port = 51820
addresses = ["{address}/24"]

[[peer]]
public_key = "{peer}"
endpoint = "{endpoint}"
allowed_ips = ["{peer_address}/32"]
preshared_key_file = "shared.psk"
persistent_keepalive = 25
"#,
        ifname = side.ifname,
        address = side.address,
        peer = side.peer_public_key,
        endpoint = side.peer_endpoint,
        peer_address = side.peer_address,
    )
}

fn start(host: &Host, keys: &Keys, psk: &str, side: &Side<'_>) -> Process {
    start_with(host, keys, psk, side, &config(side))
}

/// Starts `sentrymesh up` in `host` with the config `text`, for `side`.
fn start_with(host: &Host, keys: &Keys, psk: &str, side: &Side<'_>, text: &str) -> Process {
    host.write_file("private.key", &format!("{}\n", keys.private));
    host.write_file("shared.psk", &format!("{psk}\n"));
    let path = host.write_file("sm.toml", text);
    host.register_interface(side.ifname);
    let process = host.spawn(
        "sentrymesh up",
        SENTRYMESH,
        &["up", "-c", &path.to_string_lossy()],
    );
    let socket = socket_path(side.ifname);
    assert!(
        wait_until(EVENT_WITHIN, || Path::new(&socket).exists()),
        "sentrymesh up did not start:\n{}",
        process.log()
    );
    process
}

/// Two hosts on a link, with their keys, a preshared key and interface
/// names, for a tunnel between their native configs.
struct Pair {
    a: Host,
    b: Host,
    underlay: Link,
    overlay: Overlay,
    keys_a: Keys,
    keys_b: Keys,
    psk: String,
    if_a: String,
    if_b: String,
}

impl Pair {
    fn new(label: &str) -> Pair {
        let (a, b) = (
            Host::new(&format!("{label}-a")),
            Host::new(&format!("{label}-b")),
        );
        let underlay = link(&a, &b);
        Pair {
            a,
            b,
            underlay,
            overlay: Overlay::allocate(),
            keys_a: Keys::generate(),
            keys_b: Keys::generate(),
            psk: preshared_key(),
            if_a: unique_ifname(),
            if_b: unique_ifname(),
        }
    }

    /// The configs of `a` and `b`, each with the other as its peer.
    fn sides(&self) -> (Side<'_>, Side<'_>) {
        let Pair {
            underlay, overlay, ..
        } = self;
        let a = Side {
            ifname: &self.if_a,
            address: overlay.a4.into(),
            peer_public_key: &self.keys_b.public,
            peer_endpoint: format!("{}:51820", underlay.b4),
            peer_address: overlay.b4.into(),
        };
        let b = Side {
            ifname: &self.if_b,
            address: overlay.b4.into(),
            peer_public_key: &self.keys_a.public,
            peer_endpoint: format!("{}:51820", underlay.a4),
            peer_address: overlay.a4.into(),
        };
        (a, b)
    }
}

/// Sends SIGHUP to `daemon`: reload the configuration.
fn hang_up(daemon: &Process) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &daemon.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -HUP {}", daemon.pid());
}

/// Address `host` of the /24 `step` places after the overlay's. The overlay's
/// /24 varies from run to run, so a fixed network could be the overlay itself.
fn beside(overlay: &Overlay, step: u8, host: u8) -> IpAddr {
    let [a, b, third, _] = overlay.a4.octets();
    IpAddr::from(std::net::Ipv4Addr::new(
        a,
        b,
        third.wrapping_add(step),
        host,
    ))
}

#[test]
fn a_tunnel_from_native_configs_reloads_without_loss_and_filters_sources() {
    let pair = Pair::new("native");
    let Pair {
        a,
        b,
        overlay,
        keys_a,
        keys_b,
        psk,
        if_a,
        if_b,
        ..
    } = &pair;
    let (side_a, side_b) = pair.sides();
    let daemon_a = start(a, keys_a, psk, &side_a);
    let _daemon_b = start(b, keys_b, psk, &side_b);

    // The device, its address and the peer's route came from the file.
    let first = try_ping(a, overlay.b4.into(), 3, 56, EVENT_WITHIN);
    assert!(
        first.success,
        "no tunnel:\n{}\n{}",
        first.output,
        daemon_a.log()
    );
    let routes = a.ip(&["route", "show", "dev", if_a]);
    assert!(routes.contains(&overlay.b4.to_string()), "{routes}");

    // A ping every 10 ms across a SIGHUP reload: none lost.
    let pinger = a.spawn(
        "ping across the reload",
        "ping",
        &[
            "-c",
            "150",
            "-i",
            "0.01",
            "-W",
            "1",
            &overlay.b4.to_string(),
        ],
    );
    std::thread::sleep(Duration::from_millis(400));
    // The edited file gives A another address and routes another network to B.
    let extra_address = format!("{}/24", beside(overlay, 1, 1));
    let extra_network = &format!("{}/24", beside(overlay, 2, 0));
    let edited = config(&side_a)
        .replace(
            &format!("addresses = [\"{}/24\"]", side_a.address),
            &format!(
                "addresses = [\"{}/24\", \"{extra_address}\"]",
                side_a.address
            ),
        )
        .replace(
            &format!("allowed_ips = [\"{}/32\"]", side_a.peer_address),
            &format!(
                "allowed_ips = [\"{}/32\", \"{extra_network}\"]",
                side_a.peer_address
            ),
        );
    assert_ne!(edited, config(&side_a), "the edit applies");
    a.write_file("sm.toml", &edited);
    hang_up(&daemon_a);
    let mut pinger = pinger;
    assert!(
        wait_until(EVENT_WITHIN, || pinger.exit_status().is_some()),
        "ping did not finish"
    );
    let log = pinger.log();
    assert!(
        log.contains("150 received"),
        "packets lost across the reload:\n{log}"
    );
    assert!(daemon_a.log().contains("reloaded"), "{}", daemon_a.log());
    let routes = a.ip(&["route", "show", "dev", if_a]);
    assert!(
        routes.contains(extra_network),
        "no route after the reload:\n{routes}"
    );
    let addresses = a.ip(&["addr", "show", "dev", if_a]);
    assert!(
        addresses.contains(&extra_address),
        "no address after the reload:\n{addresses}"
    );
    let allowed = a.run("wg", &["show", if_a, "allowed-ips"]);
    assert!(allowed.contains(extra_network), "{allowed}");

    // Back to the first file: the extra route and address go again.
    a.write_file("sm.toml", &config(&side_a));
    hang_up(&daemon_a);
    assert!(
        wait_until(EVENT_WITHIN, || {
            !a.ip(&["route", "show", "dev", if_a])
                .contains(extra_network)
                && !a
                    .ip(&["addr", "show", "dev", if_a])
                    .contains(&extra_address)
        }),
        "the route and address outlived the reload"
    );
    let ping = try_ping(a, overlay.b4.into(), 3, 56, EVENT_WITHIN);
    assert!(
        ping.success,
        "the tunnel broke on the second reload:\n{}",
        ping.output
    );

    // A reload the interface refuses halfway, as its new port is taken,
    // takes back the address and route it had added; the tunnel carries on.
    let holder = a.in_namespace(|| std::net::UdpSocket::bind("[::]:0").expect("bind"));
    let taken = holder.local_addr().expect("the port held").port();
    let refused = edited.replace("listen_port = 51820", &format!("listen_port = {taken}"));
    assert_ne!(refused, edited, "the edit applies");
    a.write_file("sm.toml", &refused);
    hang_up(&daemon_a);
    assert!(
        wait_until(EVENT_WITHIN, || daemon_a.log().contains("reload refused")),
        "the reload was not refused:\n{}",
        daemon_a.log()
    );
    let routes = a.ip(&["route", "show", "dev", if_a]);
    assert!(
        !routes.contains(extra_network),
        "a refused reload left its route:\n{routes}"
    );
    let addresses = a.ip(&["addr", "show", "dev", if_a]);
    assert!(
        !addresses.contains(&extra_address),
        "a refused reload left its address:\n{addresses}"
    );
    let port = a.run("wg", &["show", if_a, "listen-port"]);
    assert_eq!(port.trim(), "51820", "a refused reload moved the port");
    let ping = try_ping(a, overlay.b4.into(), 3, 56, EVENT_WITHIN);
    assert!(
        ping.success,
        "the tunnel broke on a refused reload:\n{}",
        ping.output
    );

    // From an address B may not use, nothing gets through A.
    let spoofed = IpAddr::from(std::net::Ipv4Addr::new(
        overlay.b4.octets()[0],
        overlay.b4.octets()[1],
        overlay.b4.octets()[2],
        50,
    ));
    b.ip(&["addr", "add", &format!("{spoofed}/24"), "dev", if_b]);
    let received = |host: &Host, ifname: &str| -> u64 {
        let transfer = host.run("wg", &["show", ifname, "transfer"]);
        transfer
            .split_whitespace()
            .nth(1)
            .and_then(|rx| rx.parse().ok())
            .expect("wg show transfer: PEER RX TX")
    };
    let before = received(a, if_a);
    let spoofed_ping = run_command(
        b.command("ping").args([
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "1",
            "-I",
            &spoofed.to_string(),
            &overlay.a4.to_string(),
        ]),
        b"",
        Duration::from_secs(10),
    );
    assert!(
        spoofed_ping.stdout.contains(" 0 received"),
        "a packet from a source B may not use got through:\n{}",
        spoofed_ping.stdout
    );
    // The packets did reach A, authenticated, and were dropped there:
    // 3 pings of 84 bytes, padded to 96, plus 32 bytes of header and tag.
    let grew = received(a, if_a) - before;
    assert!(
        grew >= 3 * 128,
        "A received only {grew} bytes: the pings never reached it"
    );
}

#[test]
fn a_broken_configuration_is_refused_before_anything_changes() {
    let host = Host::new("native-bad");
    let ifname = unique_ifname();
    host.write_file("private.key", &format!("{}\n", Keys::generate().private));
    let text = format!(
        "[interface]\nname = \"{ifname}\"\nprivate_key_file = \"private.key\"\naddresses = [\"198.19.0.1/24\"]\n\n[[peer]]\npublic_key = \"{}\"\nallowed_ips = [\"198.19.0.300/32\"]\n",
        Keys::generate().public
    );
    let path = host.write_file("bad.toml", &text);
    let finished = run_command(
        host.command(SENTRYMESH)
            .args(["up", "-c", &path.to_string_lossy()]),
        b"",
        EVENT_WITHIN,
    );
    assert!(!finished.success(), "a broken configuration was accepted");
    let stderr = &finished.stderr;
    assert!(
        stderr.contains("bad.toml:8:16: peer[0].allowed_ips[0]"),
        "the error does not name the file, line and key:\n{stderr}"
    );
    let links = host.ip(&["link", "show"]);
    assert!(!links.contains(&ifname), "the device was created:\n{links}");
}

#[test]
fn systemd_hears_ready_after_setup_then_watchdog_pings_and_reloads() {
    let host = Host::new("native-notify");
    let ifname = unique_ifname();
    let keys = Keys::generate();
    let side = Side {
        ifname: &ifname,
        address: Overlay::allocate().a4.into(),
        peer_public_key: &Keys::generate().public,
        peer_endpoint: "198.18.0.2:51820".to_owned(),
        peer_address: "198.19.255.2".parse().expect("an address"),
    };
    host.write_file("private.key", &format!("{}\n", keys.private));
    host.write_file("shared.psk", &format!("{}\n", preshared_key()));
    let path = host.write_file("sm.toml", &config(&side));
    host.register_interface(&ifname);
    // Stand in for systemd: its notification socket, and a 1 s watchdog.
    let manager_path = host.dir().join("notify");
    let manager = std::os::unix::net::UnixDatagram::bind(&manager_path).expect("bind");
    manager
        .set_read_timeout(Some(EVENT_WITHIN))
        .expect("timeout");
    let mut command = host.command(SENTRYMESH);
    command
        .args(["up", "-c", &path.to_string_lossy()])
        .env("NOTIFY_SOCKET", &manager_path)
        .env("WATCHDOG_USEC", "1000000");
    let daemon = spawn("sentrymesh up under a watchdog", &mut command);
    let next = || {
        let mut buf = [0u8; 512];
        let len = manager
            .recv(&mut buf)
            .unwrap_or_else(|error| panic!("no notification ({error}):\n{}", daemon.log()));
        String::from_utf8_lossy(&buf[..len]).into_owned()
    };
    let ready = next();
    assert!(ready.starts_with("READY=1\nSTATUS="), "{ready}");
    // READY came after the setup: the device exists with its address.
    let address = host.ip(&["addr", "show", "dev", &ifname]);
    assert!(
        address.contains(&format!("{}/24", side.address)),
        "{address}"
    );
    assert_eq!(next(), "WATCHDOG=1");
    hang_up(&daemon);
    let mut reload = Vec::new();
    while !reload
        .iter()
        .any(|state: &String| state.starts_with("READY=1"))
    {
        reload.push(next());
    }
    assert!(reload.contains(&"RELOADING=1".to_owned()), "{reload:?}");
}

#[test]
fn readiness_waits_for_a_live_session_and_reload_applies_edits() {
    let pair = Pair::new("native-ready");
    let Pair {
        a,
        b,
        overlay,
        keys_a,
        keys_b,
        psk,
        if_a,
        ..
    } = &pair;
    let (side_a, side_b) = pair.sides();
    a.write_file("private.key", &format!("{}\n", keys_a.private));
    a.write_file("shared.psk", &format!("{psk}\n"));
    let gated = format!("{}\n[ready]\nmin_trusted_peers = 1\n", config(&side_a));
    let path = a.write_file("sm.toml", &gated);
    a.register_interface(if_a);
    let manager_path = a.dir().join("notify");
    let manager = std::os::unix::net::UnixDatagram::bind(&manager_path).expect("bind");
    manager
        .set_read_timeout(Some(EVENT_WITHIN))
        .expect("timeout");
    let mut command = a.command(SENTRYMESH);
    command
        .args(["up", "-c", &path.to_string_lossy()])
        .env("NOTIFY_SOCKET", &manager_path);
    let daemon_a = spawn("sentrymesh up, gated", &mut command);
    let next = || {
        let mut buf = [0u8; 512];
        let len = manager
            .recv(&mut buf)
            .unwrap_or_else(|error| panic!("no notification ({error}):\n{}", daemon_a.log()));
        String::from_utf8_lossy(&buf[..len]).into_owned()
    };
    let wait_ready = |timeout: &str| {
        run_command(
            std::process::Command::new(SENTRYMESH).args([
                "wait-ready",
                "--interface",
                if_a,
                "--min-peers",
                "1",
                "--timeout",
                timeout,
            ]),
            b"",
            Duration::from_secs(30),
        )
    };

    // The peer is not up: the gate stays shut, and says why.
    let waiting = next();
    assert_eq!(
        waiting,
        "STATUS=waiting for peers: 0 of 1 with a live session",
        "{}",
        daemon_a.log()
    );
    let early = wait_ready("1s");
    assert_eq!(
        early.status.code(),
        Some(1),
        "{}{}",
        early.stdout,
        early.stderr
    );
    assert!(early.stdout.contains("0 of 1 peers"), "{}", early.stdout);

    // The peer comes up and the handshake completes: READY=1, and
    // wait-ready returns at once.
    let _daemon_b = start(b, keys_b, psk, &side_b);
    let ping = try_ping(b, overlay.a4.into(), 3, 56, EVENT_WITHIN);
    assert!(ping.success, "no tunnel:\n{}", ping.output);
    let ready = next();
    assert!(
        ready.starts_with("READY=1\nSTATUS=") && ready.contains("1 peers with a live session"),
        "{ready}"
    );
    let met = wait_ready("10s");
    assert_eq!(met.status.code(), Some(0), "{}{}", met.stdout, met.stderr);

    // `sentrymesh reload` applies an edit, as SIGHUP does.
    let extra_network = &format!("{}/24", beside(overlay, 1, 0));
    let edited = gated.replace(
        &format!("allowed_ips = [\"{}/32\"]", side_a.peer_address),
        &format!(
            "allowed_ips = [\"{}/32\", \"{extra_network}\"]",
            side_a.peer_address
        ),
    );
    assert_ne!(edited, gated, "the edit applies");
    a.write_file("sm.toml", &edited);
    let reload = run_command(
        std::process::Command::new(SENTRYMESH).args(["reload", "--interface", if_a]),
        b"",
        EVENT_WITHIN,
    );
    assert!(reload.success(), "{}{}", reload.stdout, reload.stderr);
    assert!(
        wait_until(EVENT_WITHIN, || a
            .run("wg", &["show", if_a, "allowed-ips"])
            .contains(extra_network)),
        "the reload did not apply:\n{}",
        daemon_a.log()
    );
}

#[test]
fn metrics_show_peers_sessions_and_drops_but_no_secret() {
    let pair = Pair::new("metrics");
    let Pair {
        a,
        b,
        overlay,
        keys_a,
        keys_b,
        psk,
        if_a,
        ..
    } = &pair;
    let (side_a, side_b) = pair.sides();
    let listen: std::net::SocketAddr = "127.0.0.1:9586".parse().expect("an address");
    let with_metrics = format!("{}\n[metrics]\nlisten = \"{listen}\"\n", config(&side_a));
    let daemon_a = start_with(a, keys_a, psk, &side_a, &with_metrics);
    let _daemon_b = start(b, keys_b, psk, &side_b);
    let ping = try_ping(a, overlay.b4.into(), 3, 56, EVENT_WITHIN);
    assert!(ping.success, "no tunnel:\n{}", ping.output);
    // A's /24 is routed to the device, but only B's address to a peer: a
    // ping to another address of it is dropped for want of a route.
    let nowhere = IpAddr::from(std::net::Ipv4Addr::new(
        overlay.b4.octets()[0],
        overlay.b4.octets()[1],
        overlay.b4.octets()[2],
        77,
    ));
    let lost = try_ping(a, nowhere, 2, 56, Duration::from_secs(5));
    assert!(!lost.success, "{}", lost.output);

    let (status, body) = a.http_get(listen, "/metrics");
    assert!(status.starts_with("HTTP/1.1 200 OK"), "{status}\n{body}");
    let value = |series: &str| -> u64 {
        sample(&body, series)
            .unwrap_or_else(|| panic!("no sample {series} in:\n{body}\n{}", daemon_a.log()))
    };
    let interface = format!("interface=\"{if_a}\"");
    let peer = format!("{interface},peer=\"{}\"", keys_b.public);
    assert_eq!(value(&format!("sentrymesh_peers{{{interface}}}")), 1);
    assert_eq!(
        value(&format!("sentrymesh_live_sessions{{{interface}}}")),
        1
    );
    // Three pings and their replies, with the handshake: well over 3 x 128.
    assert!(value(&format!("sentrymesh_peer_receive_bytes_total{{{peer}}}")) >= 3 * 128);
    assert!(value(&format!("sentrymesh_peer_transmit_bytes_total{{{peer}}}")) >= 3 * 128);
    let handshake = value(&format!("sentrymesh_peer_last_handshake_seconds{{{peer}}}"));
    assert!(handshake.abs_diff(unix_now()) < 60, "{handshake}");
    assert!(
        value(&format!(
            "sentrymesh_dropped_packets_total{{{interface},reason=\"no_route\"}}"
        )) >= 2
    );
    for secret in [&keys_a.private, &keys_b.private, psk] {
        assert!(!body.contains(secret.as_str()), "a secret in the metrics");
    }
    assert!(
        !body.contains("sentrymesh_mesh_"),
        "no mesh, no mesh metrics"
    );

    let (status, _) = a.http_get(listen, "/");
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
}
