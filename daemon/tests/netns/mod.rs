//! A harness for tests that cross a network: each host is a Linux network
//! namespace of its own, hosts are joined by veth pairs, and WireGuard
//! implementations run inside them as child processes configured with `wg`.
//!
//! ```text
//!   Host (netns sm-…-a-PID-N)                  Host (netns sm-…-b-PID-N)
//!  +---------------------------+   veth pair   +---------------------------+
//!  | daemon, TUN smw…  overlay |  198.18.x.y/30 | overlay  TUN smw…, daemon |
//!  | 198.19.k.1 2001:2:0:8…::1 |---------------| 198.19.k.2 2001:2:0:8…::2 |
//!  +---------------------------+  2001:2:0:…/64 +---------------------------+
//! ```
//!
//! What it does not do: touch any link, address or route of the machine's own
//! (root) namespace, or use an address outside the benchmarking ranges
//! 198.18.0.0/15 (RFC 2544) and 2001:2::/48 (RFC 5180). Underlay /30s come
//! from 198.18.0.0/16 and underlay /64s from 2001:2:0:0–7fff::, overlay /24s
//! from 198.19.0.0/16 and overlay /64s from 2001:2:0:8000–ffff::. They are
//! spread by process id and a counter, but nothing depends on them being
//! unique across tests: every host has its own namespace, so two tests never
//! share a route.
//!
//! Two things are global and so unique per process and test: the UAPI socket
//! `/var/run/wireguard/IFNAME.sock` (the directory is not per namespace) and
//! the namespace names. Everything a test creates goes away on drop, also
//! when the test panics: [`Daemon`] and [`Process`] stop their process
//! (SIGTERM, then SIGKILL) and remove a stale socket; [`Host`] stops every
//! process left in its namespace, deletes its veths, the sockets of the
//! interfaces registered with it, and the namespace. Every command runs with
//! a timeout, so a test cannot hang.
//!
//! The pieces: this module (hosts, processes, links, addresses), [`wireguard`]
//! (the implementations, keys, `wg` and wg-quick) and [`probes`] (ping and
//! iperf3).

// Shared by several test binaries, each of which uses a part of it.
#![allow(dead_code, unused_imports)]

pub(crate) mod capture;
pub(crate) mod mesh_lab;
mod probes;
pub(crate) mod spoof;
mod wireguard;

pub(crate) use probes::{iperf3, ping, try_ping};
pub(crate) use wireguard::{
    Daemon, Implementation, Keys, Peer, PeerStatus, configure, peer_status, preshared_key, wg,
    wg_quick,
};

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::{self, sleep};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where every userspace implementation puts its UAPI socket; shared by all
/// namespaces.
pub(crate) const SOCKET_DIR: &str = "/var/run/wireguard";

/// The longest any helper command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a daemon may take to create its interface and socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a process may take to exit after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The counter behind every name and address this process hands out.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A number not handed out before in this process.
fn next_index() -> u32 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Fails unless the effective user is root: these tests create namespaces,
/// veths and TUN devices, and must never be skipped silently.
///
/// # Panics
///
/// When the effective user id is not 0.
pub(crate) fn require_root() {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .expect("effective uid in /proc/self/status");
    assert_eq!(
        uid, "0",
        "the interop tests create network namespaces, veths and TUN devices: run them as root \
         (they fail rather than skip)"
    );
}

/// What a finished command printed, and how it ended.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The exit status (a signal if it was killed at its timeout).
    pub(crate) status: ExitStatus,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error, with a note appended when the command timed out.
    pub(crate) stderr: String,
}

impl Finished {
    /// Whether the command exited with status 0.
    pub(crate) fn success(&self) -> bool {
        self.status.success()
    }
}

/// Runs `command` with `input` on its standard input, killing it after
/// `timeout`. Output goes to anonymous files rather than pipes, so a daemon
/// the command leaves behind cannot hold the call open.
///
/// # Panics
///
/// When the command cannot be started.
pub(crate) fn run_command(command: &mut Command, input: &[u8], timeout: Duration) -> Finished {
    let mut stdout = tempfile::tempfile().expect("a temporary file");
    let mut stderr = tempfile::tempfile().expect("a temporary file");
    let mut stdin = tempfile::tempfile().expect("a temporary file");
    stdin.write_all(input).expect("write the input");
    stdin.seek(SeekFrom::Start(0)).expect("rewind the input");
    command
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout.try_clone().expect("dup")))
        .stderr(Stdio::from(stderr.try_clone().expect("dup")));
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait for a killed child");
        }
        sleep(Duration::from_millis(5));
    };
    let read = |file: &mut File| {
        let mut text = String::new();
        file.seek(SeekFrom::Start(0)).expect("rewind the output");
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).expect("read the output");
        text.push_str(&String::from_utf8_lossy(&bytes));
        text
    };
    let stdout = read(&mut stdout);
    let mut stderr = read(&mut stderr);
    if timed_out {
        stderr.push_str(&format!("\n[killed: no exit within {timeout:?}]"));
    }
    Finished {
        status,
        stdout,
        stderr,
    }
}

/// Runs `command` like [`run_command`] and returns its standard output.
///
/// # Panics
///
/// When the command fails or times out; the message has its standard error.
pub(crate) fn run_ok(command: &mut Command, input: &[u8]) -> String {
    let description = format!("{command:?}");
    let finished = run_command(command, input, COMMAND_TIMEOUT);
    assert!(
        finished.success(),
        "{description} failed ({}): {}{}",
        finished.status,
        finished.stderr.trim(),
        finished.stdout.trim(),
    );
    finished.stdout
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes, and
/// returns whether it held.
pub(crate) fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to process `pid`; a process already gone is fine.
fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; the
    // pid is one we started, or one listed in a namespace we created.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// A name for a new WireGuard interface, unique across concurrent test
/// processes (the UAPI socket directory is global) and at most 15 bytes.
pub(crate) fn unique_ifname() -> String {
    format!("smw{:x}-{}", std::process::id(), next_index())
}

/// The UAPI socket of interface `ifname`.
pub(crate) fn socket_path(ifname: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{ifname}.sock"))
}

/// A host: a network namespace with loopback up, and a temporary directory
/// for its files. Dropping it removes everything created in it.
pub(crate) struct Host {
    name: String,
    dir: tempfile::TempDir,
    interfaces: Mutex<Vec<String>>,
}

impl Host {
    /// Creates the namespace `sm-LABEL-PID-N`.
    ///
    /// # Panics
    ///
    /// When not root, or when `ip netns add` fails.
    pub(crate) fn new(label: &str) -> Host {
        require_root();
        let name = format!("sm-{label}-{}-{}", std::process::id(), next_index());
        run_ok(Command::new("ip").args(["netns", "add", &name]), b"");
        // From here on, Drop removes the namespace whatever happens.
        let host = Host {
            name,
            dir: tempfile::Builder::new()
                .prefix("sentrymesh-interop-")
                .tempdir()
                .expect("a temporary directory"),
            interfaces: Mutex::new(Vec::new()),
        };
        host.ip(&["link", "set", "lo", "up"]);
        host
    }

    /// The namespace's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The host's temporary directory (removed with the host).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A command that runs `program` inside the namespace.
    pub(crate) fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Runs `program args` inside the namespace and returns its output.
    ///
    /// # Panics
    ///
    /// When it fails or times out.
    pub(crate) fn run(&self, program: &str, args: &[&str]) -> String {
        run_ok(self.command(program).args(args), b"")
    }

    /// Runs `ip -n NS args`.
    ///
    /// # Panics
    ///
    /// When it fails or times out.
    pub(crate) fn ip(&self, args: &[&str]) -> String {
        run_ok(Command::new("ip").args(["-n", &self.name]).args(args), b"")
    }

    /// Writes `contents` to a new file `name` of mode 0600 in the host's
    /// directory and returns its path.
    ///
    /// # Panics
    ///
    /// When the file cannot be written.
    pub(crate) fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir().join(name);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap_or_else(|error| panic!("create {}: {error}", path.display()));
        file.write_all(contents.as_bytes()).expect("write the file");
        path
    }

    /// Starts `program args` in the background inside the namespace, with
    /// its output in a log.
    pub(crate) fn spawn(&self, description: &str, program: &str, args: &[&str]) -> Process {
        let mut command = self.command(program);
        command.args(args);
        Process::spawn(description, &mut command)
    }

    /// Runs `make` on a thread that has entered the namespace, so the
    /// sockets it creates live there (and stay there when used elsewhere).
    ///
    /// # Panics
    ///
    /// When the namespace cannot be entered, or `make` panics.
    pub(crate) fn in_namespace<T: Send + 'static>(
        &self,
        make: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        self.spawn_in_namespace(make)
            .join()
            .expect("the namespace thread")
    }

    /// Runs `make` on a new thread inside the namespace, and returns the
    /// thread to join.
    pub(crate) fn spawn_in_namespace<T: Send + 'static>(
        &self,
        make: impl FnOnce() -> T + Send + 'static,
    ) -> thread::JoinHandle<T> {
        let path = format!("/var/run/netns/{}", self.name);
        thread::spawn(move || {
            let namespace = File::open(&path).expect("open the namespace");
            // SAFETY: setns moves only the calling thread, which ends after
            // `make`; the descriptor is an open network namespace file.
            let entered = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
            make()
        })
    }

    /// Sends `GET path` to `address` from inside the namespace; returns the
    /// status line and the body.
    ///
    /// # Panics
    ///
    /// When the connection fails or the answer is not HTTP.
    pub(crate) fn http_get(&self, address: std::net::SocketAddr, path: &str) -> (String, String) {
        let mut stream = self.in_namespace(move || {
            std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))
                .unwrap_or_else(|error| panic!("connecting to {address}: {error}"))
        });
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a read timeout");
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read the answer");
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("not HTTP: {answer:?}"));
        let status = head.lines().next().unwrap_or_default().to_owned();
        (status, body.to_owned())
    }

    /// Registers an interface whose daemon this host does not own (one that
    /// wg-quick starts), so that its socket is removed with the host.
    pub(crate) fn register_interface(&self, ifname: &str) {
        self.interfaces
            .lock()
            .expect("interfaces lock")
            .push(ifname.to_owned());
    }

    /// The processes now inside the namespace.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let finished = run_command(
            Command::new("ip").args(["netns", "pids", &self.name]),
            b"",
            COMMAND_TIMEOUT,
        );
        finished
            .stdout
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect()
    }

    /// The programs of the processes now inside the namespace, from
    /// `/proc/PID/exe` (without the ` (deleted)` of a replaced binary).
    pub(crate) fn executables(&self) -> Vec<PathBuf> {
        self.pids()
            .into_iter()
            .filter_map(|pid| fs::read_link(format!("/proc/{pid}/exe")).ok())
            .map(|path| {
                let text = path.to_string_lossy();
                PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(&text))
            })
            .collect()
    }

    /// Stops every process inside the namespace: SIGTERM, then SIGKILL for
    /// those still there after a grace period.
    fn stop_all_processes(&self) {
        let pids = self.pids();
        if pids.is_empty() {
            return;
        }
        for &pid in &pids {
            signal(pid, libc::SIGTERM);
        }
        if wait_until(STOP_GRACE, || self.pids().is_empty()) {
            return;
        }
        for pid in self.pids() {
            signal(pid, libc::SIGKILL);
        }
        if !wait_until(STOP_GRACE, || self.pids().is_empty()) {
            eprintln!("netns {}: processes survived SIGKILL", self.name);
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop_all_processes();
        let interfaces = self
            .interfaces
            .lock()
            .map(|names| names.clone())
            .unwrap_or_default();
        for ifname in interfaces {
            let _ = fs::remove_file(socket_path(&ifname));
        }
        // Deleting the namespace destroys its veths too, but delete them
        // first so that nothing depends on that.
        let veths = run_command(
            Command::new("ip").args(["-n", &self.name, "-o", "link", "show", "type", "veth"]),
            b"",
            COMMAND_TIMEOUT,
        );
        for line in veths.stdout.lines() {
            if let Some(device) = line
                .split(": ")
                .nth(1)
                .and_then(|name| name.split('@').next())
            {
                run_command(
                    Command::new("ip").args(["-n", &self.name, "link", "delete", device]),
                    b"",
                    COMMAND_TIMEOUT,
                );
            }
        }
        let deleted = run_command(
            Command::new("ip").args(["netns", "delete", &self.name]),
            b"",
            COMMAND_TIMEOUT,
        );
        if !deleted.success() {
            eprintln!(
                "netns {}: ip netns delete failed: {}",
                self.name, deleted.stderr
            );
        }
    }
}

/// A background process with its output in a log file. Dropping it stops
/// it (SIGTERM, then SIGKILL) and, during a panic, prints the log's end.
pub(crate) struct Process {
    description: String,
    child: Child,
    log: tempfile::NamedTempFile,
    stopped: bool,
}

impl Process {
    /// Starts `command` with its output in a new log.
    ///
    /// # Panics
    ///
    /// When it cannot be started.
    pub(crate) fn spawn(description: &str, command: &mut Command) -> Process {
        let log = tempfile::Builder::new()
            .prefix("sentrymesh-interop-log-")
            .tempfile()
            .expect("a log file");
        let file = log.reopen().expect("reopen the log");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().expect("dup")))
            .stderr(Stdio::from(file));
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {description} ({command:?}): {error}"));
        Process {
            description: description.to_owned(),
            child,
            log,
            stopped: false,
        }
    }

    /// The process id (`ip netns exec` execs the program, so it is the
    /// program's).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited.
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for a child")
    }

    /// Everything the process has printed so far.
    pub(crate) fn log(&self) -> String {
        fs::read(self.log.path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Stops the process: SIGTERM, then SIGKILL after a grace period.
    pub(crate) fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if self.exit_status().is_some() {
            return;
        }
        signal(self.child.id(), libc::SIGTERM);
        if !wait_until(STOP_GRACE, || {
            matches!(self.child.try_wait(), Ok(Some(_)) | Err(_))
        }) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
        if thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of {} ---", self.description);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// The two ends of a veth pair.
#[derive(Clone, Debug)]
pub(crate) struct Link {
    /// The first host's IPv4 address (in a /30).
    pub(crate) a4: Ipv4Addr,
    /// The second host's IPv4 address.
    pub(crate) b4: Ipv4Addr,
    /// The first host's IPv6 address (in a /64).
    pub(crate) a6: Ipv6Addr,
    /// The second host's IPv6 address.
    pub(crate) b6: Ipv6Addr,
}

/// Joins `a` and `b` with a veth pair created directly inside the two
/// namespaces (it never appears in the root namespace), with an IPv4 /30 in
/// 198.18.0.0/16 and an IPv6 /64 in 2001:2::/48, both up.
///
/// # Panics
///
/// When `ip` fails.
pub(crate) fn link(a: &Host, b: &Host) -> Link {
    let n = next_index();
    let index = (std::process::id().wrapping_mul(64).wrapping_add(n)) % (1 << 14);
    let [_, _, high, low] = (index << 2).to_be_bytes();
    let a4 = Ipv4Addr::new(198, 18, high, low + 1);
    let b4 = Ipv4Addr::new(198, 18, high, low + 2);
    let subnet = u16::try_from(index & 0x7fff).expect("15 bits");
    let a6 = Ipv6Addr::new(0x2001, 2, 0, subnet, 0, 0, 0, 1);
    let b6 = Ipv6Addr::new(0x2001, 2, 0, subnet, 0, 0, 0, 2);
    let a_device = format!("ve{n}a");
    let b_device = format!("ve{n}b");
    run_ok(
        Command::new("ip").args([
            "link",
            "add",
            &a_device,
            "netns",
            a.name(),
            "type",
            "veth",
            "peer",
            "name",
            &b_device,
            "netns",
            b.name(),
        ]),
        b"",
    );
    for (host, device, v4, v6) in [(a, &a_device, a4, a6), (b, &b_device, b4, b6)] {
        host.ip(&["addr", "add", &format!("{v4}/30"), "dev", device]);
        host.ip(&["addr", "add", &format!("{v6}/64"), "dev", device, "nodad"]);
        host.ip(&["link", "set", device, "up"]);
    }
    Link { a4, b4, a6, b6 }
}

/// The overlay (tunnel) addresses of two peers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Overlay {
    /// The first peer's IPv4 address, in a /24 of 198.19.0.0/16.
    pub(crate) a4: Ipv4Addr,
    /// The second peer's IPv4 address.
    pub(crate) b4: Ipv4Addr,
    /// The first peer's IPv6 address, in a /64 of 2001:2:0:8000::/49.
    pub(crate) a6: Ipv6Addr,
    /// The second peer's IPv6 address.
    pub(crate) b6: Ipv6Addr,
}

impl Overlay {
    /// The IPv4 prefix length of the overlay.
    pub(crate) const PREFIX4: u8 = 24;
    /// The IPv6 prefix length of the overlay.
    pub(crate) const PREFIX6: u8 = 64;

    /// New overlay addresses, distinct from every underlay.
    pub(crate) fn allocate() -> Overlay {
        let index = std::process::id().wrapping_add(next_index());
        let third = u8::try_from(index % 256).expect("8 bits");
        let subnet = 0x8000 | u16::try_from(index % 0x8000).expect("15 bits");
        Overlay {
            a4: Ipv4Addr::new(198, 19, third, 1),
            b4: Ipv4Addr::new(198, 19, third, 2),
            a6: Ipv6Addr::new(0x2001, 2, 0, subnet, 0, 0, 0, 1),
            b6: Ipv6Addr::new(0x2001, 2, 0, subnet, 0, 0, 0, 2),
        }
    }
}

/// The value of the sample `series` (name and labels, as printed) in a
/// Prometheus exposition.
pub(crate) fn sample(metrics: &str, series: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Gives `ifname` in `host` the overlay address `address/prefix` (IPv6
/// without duplicate address detection, so it is usable at once).
///
/// # Panics
///
/// When `ip` fails.
pub(crate) fn add_address(host: &Host, ifname: &str, address: IpAddr, prefix: u8) {
    let cidr = format!("{address}/{prefix}");
    match address {
        IpAddr::V4(_) => host.ip(&["addr", "add", &cidr, "dev", ifname]),
        IpAddr::V6(_) => host.ip(&["-6", "addr", "add", &cidr, "dev", ifname, "nodad"]),
    };
}

/// Brings `ifname` in `host` up.
///
/// # Panics
///
/// When `ip` fails.
pub(crate) fn set_up(host: &Host, ifname: &str) {
    host.ip(&["link", "set", ifname, "up"]);
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}
