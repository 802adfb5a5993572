//! How `sentrymesh wg` starts and stops, as wireguard-go does: it refuses an
//! interface a live daemon serves, replaces a stale socket, and exits cleanly
//! (device and socket gone) on SIGTERM, when its socket file is removed, and
//! when its device is deleted.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sentrymesh_lab::{
    EVENT_WITHIN, Host, Process, run_command, socket_path, unique_ifname, wait_until,
};

const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");
const STOP_TIMEOUT: Duration = EVENT_WITHIN;

fn start(host: &Host, ifname: &str) -> Process {
    host.register_interface(ifname);
    let process = host.spawn("sentrymesh wg", SENTRYMESH, &["wg", "-f", ifname]);
    assert!(
        wait_until(EVENT_WITHIN, || Path::new(&socket_path(ifname)).exists()),
        "sentrymesh wg did not start:\n{}",
        process.log()
    );
    process
}

fn device_exists(host: &Host, ifname: &str) -> bool {
    run_command(
        Command::new("ip").args(["-n", host.name(), "link", "show", ifname]),
        b"",
        EVENT_WITHIN,
    )
    .success()
}

fn assert_stopped(host: &Host, ifname: &str, process: &mut Process) {
    assert!(
        wait_until(STOP_TIMEOUT, || process.exit_status().is_some()),
        "the daemon did not stop:\n{}",
        process.log()
    );
    assert!(
        process.exit_status().is_some_and(|status| status.success()),
        "{}",
        process.log()
    );
    assert!(
        !Path::new(&socket_path(ifname)).exists(),
        "the socket outlived the daemon"
    );
    assert!(
        !device_exists(host, ifname),
        "the device outlived the daemon"
    );
}

#[test]
fn a_second_daemon_is_refused_and_sigterm_stops_the_first_cleanly() {
    let host = Host::new("life-term");
    let ifname = unique_ifname();
    let mut first = start(&host, &ifname);
    let second = run_command(
        host.command(SENTRYMESH).args(["wg", "-f", &ifname]),
        b"",
        EVENT_WITHIN,
    );
    assert!(!second.success(), "a second daemon took a live interface");
    assert!(
        device_exists(&host, &ifname),
        "the first daemon's device went away"
    );
    let status = Command::new("kill")
        .args(["-TERM", &first.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert_stopped(&host, &ifname, &mut first);
}

#[test]
fn removing_the_socket_file_stops_the_daemon() {
    let host = Host::new("life-sock");
    let ifname = unique_ifname();
    let mut daemon = start(&host, &ifname);
    std::fs::remove_file(socket_path(&ifname)).expect("remove the socket");
    assert_stopped(&host, &ifname, &mut daemon);
}

#[test]
fn deleting_the_device_stops_the_daemon() {
    let host = Host::new("life-dev");
    let ifname = unique_ifname();
    let mut daemon = start(&host, &ifname);
    host.ip(&["link", "del", &ifname]);
    assert_stopped(&host, &ifname, &mut daemon);
}

#[test]
fn a_stale_socket_is_replaced_and_the_daemon_detaches() {
    let host = Host::new("life-stale");
    let ifname = unique_ifname();
    host.register_interface(&ifname);
    // A socket file left by a daemon that died.
    let stale = socket_path(&ifname);
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("a stale socket"));
    // Without -f the command returns once the background daemon is ready.
    let started = run_command(
        host.command(SENTRYMESH).args(["wg", &ifname]),
        b"",
        EVENT_WITHIN,
    );
    assert!(started.success(), "{}", started.stderr);
    let answer = run_command(
        host.command("wg").args(["show", &ifname]),
        b"",
        EVENT_WITHIN,
    );
    assert!(
        answer.success(),
        "the background daemon does not answer: {}",
        answer.stderr
    );
    host.ip(&["link", "del", &ifname]);
    assert!(
        wait_until(STOP_TIMEOUT, || !Path::new(&stale).exists()),
        "the background daemon did not stop with its device"
    );
}
