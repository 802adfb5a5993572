//! Traffic through a tunnel: ping and iperf3, run inside a host.

use std::net::IpAddr;
use std::time::Duration;

use crate::{COMMAND_TIMEOUT, Host, run_command, wait_until};

/// What a `ping` run counted.
#[derive(Clone, Debug)]
pub struct PingReport {
    /// Echo requests sent.
    pub transmitted: u64,
    /// Echo replies received.
    pub received: u64,
    /// Everything ping printed.
    pub output: String,
    /// Whether ping succeeded (every one of the `count` replies arrived).
    pub success: bool,
}

/// Pings `destination` from `host` until `count` replies of `size` payload
/// bytes arrived or `deadline` passed (`ping -c COUNT -w DEADLINE`), one
/// request every 0.1 s.
///
/// # Panics
///
/// When ping cannot be started.
pub fn try_ping(
    host: &Host,
    destination: IpAddr,
    count: u32,
    size: u32,
    deadline: Duration,
) -> PingReport {
    let deadline_secs = deadline.as_secs().max(1).to_string();
    let finished = run_command(
        host.command("ping").args([
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            "0.1",
            "-s",
            &size.to_string(),
            "-w",
            &deadline_secs,
            &destination.to_string(),
        ]),
        b"",
        deadline + Duration::from_secs(5),
    );
    // "20 packets transmitted, 19 received, +1 errors, 5% packet loss, …"
    let (mut transmitted, mut received) = (0, 0);
    if let Some(summary) = finished
        .stdout
        .lines()
        .find(|line| line.contains("packets transmitted"))
    {
        for part in summary.split(',') {
            let number = part.split_whitespace().next().and_then(|n| n.parse().ok());
            if part.ends_with("packets transmitted") {
                transmitted = number.unwrap_or(0);
            } else if part.ends_with(" received") {
                received = number.unwrap_or(0);
            }
        }
    }
    PingReport {
        transmitted,
        received,
        output: format!("{}{}", finished.stdout, finished.stderr),
        success: finished.success(),
    }
}

/// Pings `destination` from `host` until `count` replies arrived, within
/// 60 s (ping stops at the last reply: a quiet machine takes `count` tenths
/// of a second).
///
/// # Panics
///
/// When fewer replies arrive; the message has ping's output.
pub fn ping(host: &Host, destination: IpAddr, count: u32) -> PingReport {
    let report = try_ping(host, destination, count, 56, Duration::from_secs(60));
    assert!(
        report.success,
        "ping {destination} from {} failed:\n{}",
        host.name(),
        report.output
    );
    report
}

/// The TCP port the iperf3 server listens on (inside its own namespace).
const IPERF_PORT: u16 = 5201;

/// Runs an iperf3 TCP test of `seconds` from `client` to an iperf3 server
/// started in `server` on `server_address`, and returns the throughput the
/// receiver saw, in Gbit/s.
///
/// # Panics
///
/// When the server does not start listening within 60 s, or the client
/// fails or prints no result.
pub fn iperf3(server: &Host, client: &Host, server_address: IpAddr, seconds: u32) -> f64 {
    let port = IPERF_PORT.to_string();
    let address = server_address.to_string();
    let mut server_process = server.spawn(
        &format!("iperf3 server in {}", server.name()),
        "iperf3",
        &["--server", "--one-off", "--bind", &address, "--port", &port],
    );
    let listening = wait_until(Duration::from_secs(60), || {
        let finished = run_command(
            server
                .command("ss")
                .args(["-H", "-l", "-t", "-n", &format!("sport = :{port}")]),
            b"",
            COMMAND_TIMEOUT,
        );
        !finished.stdout.trim().is_empty()
    });
    assert!(
        listening,
        "the iperf3 server did not listen within 60 s:\n{}",
        server_process.log()
    );
    let finished = run_command(
        client.command("iperf3").args([
            "--client",
            &address,
            "--port",
            &port,
            "--time",
            &seconds.to_string(),
            "--connect-timeout",
            "3000",
            "--json",
        ]),
        b"",
        Duration::from_secs(u64::from(seconds) + 15),
    );
    assert!(
        finished.success(),
        "iperf3 client failed ({}): {}\n{}",
        finished.status,
        finished.stderr,
        finished.stdout
    );
    let report: serde_json::Value = serde_json::from_str(&finished.stdout)
        .unwrap_or_else(|error| panic!("iperf3 printed no JSON ({error}):\n{}", finished.stdout));
    let bits_per_second = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no end.sum_received.bits_per_second in:\n{report}"));
    server_process.stop();
    bits_per_second / 1e9
}
