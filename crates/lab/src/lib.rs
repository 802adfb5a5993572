//! The network-namespace lab the daemon's integration tests build: each host
//! is a Linux network namespace of its own, hosts are joined by veth pairs,
//! and WireGuard implementations run inside them as child processes
//! configured with `wg`.
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
//! It does not build sentrymesh or find it: a test passes the path of the
//! program under test, `env!("CARGO_BIN_EXE_sentrymesh")` (which Cargo
//! defines only for the daemon package's own integration tests), in
//! [`Implementation::Sentrymesh`] and to [`mesh_lab::Lab::new`].
//!
//! The plumbing under it — namespaces, veths, processes, commands with
//! timeouts, waits — is the `sentrymesh-netns` crate's, which the testnet
//! is built on too; this crate adds what the tests need on top and turns
//! its errors into panics with the message, as a test wants: most functions
//! here panic when what they do fails. The pieces: the crate root (hosts,
//! links, addresses), the WireGuard implementations with their keys, `wg`
//! and wg-quick ([`Implementation`], [`Keys`], [`configure`],
//! [`wg_quick`]), ping and iperf3 ([`ping`], [`iperf3`]), [`mesh_lab`]
//! (operators and mesh members), [`capture`] and [`spoof`].

pub mod capture;
pub mod mesh_lab;
mod probes;
pub mod spoof;
mod wireguard;

pub use probes::{PingReport, iperf3, ping, try_ping};
pub use wireguard::{
    Daemon, DumpedPeer, Implementation, Keys, PeerSection, configure, peer_status, preshared_key,
    wg, wg_quick,
};

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sentrymesh_netns::{COMMAND_TIMEOUT, Namespace, add_veth, is_root, stop_processes_in};
pub use sentrymesh_netns::{Finished, Process, wait_until};

/// Where every userspace implementation puts its UAPI socket; shared by all
/// namespaces.
const SOCKET_DIR: &str = "/var/run/wireguard";

/// How long a daemon may take to create its interface and socket: well
/// under a second on a quiet machine; the ceiling is for a loaded one.
const START_TIMEOUT: Duration = EVENT_WITHIN;

/// The ceiling of a test's wait for an event that takes well under a few
/// seconds on a quiet machine (a daemon started or stopped, a handshake, a
/// reload applied, pings answered, a packet through a device): ten times
/// that and more, for a machine busy with other work.
pub const EVENT_WITHIN: Duration = Duration::from_secs(60);

/// How long an HTTP request to a daemon (its metrics) may take to connect
/// and to be answered: milliseconds on a quiet machine.
const HTTP_TIMEOUT: Duration = EVENT_WITHIN;

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
pub fn require_root() {
    assert!(
        is_root(),
        "the interop tests create network namespaces, veths and TUN devices: run them as root \
         (they fail rather than skip)"
    );
}

/// Runs `command` with `input` on its standard input, killing it after
/// `timeout` ([`sentrymesh_netns::run`]).
///
/// # Panics
///
/// When the command cannot be started.
pub fn run_command(command: &mut Command, input: &[u8], timeout: Duration) -> Finished {
    sentrymesh_netns::run(command, input, timeout).unwrap_or_else(|error| panic!("{error}"))
}

/// Runs `command` like [`run_command`] and returns its standard output.
///
/// # Panics
///
/// When the command fails or times out; the message has its standard error.
pub fn run_ok(command: &mut Command, input: &[u8]) -> String {
    sentrymesh_netns::run_ok(command, input).unwrap_or_else(|error| panic!("{error}"))
}

/// Starts `command` in the background with its output in a log.
///
/// # Panics
///
/// When it cannot be started.
pub fn spawn(description: &str, command: &mut Command) -> Process {
    Process::spawn(description, command)
        .unwrap_or_else(|error| panic!("cannot start {description}: {error}"))
}

/// A name for a new WireGuard interface, unique across concurrent test
/// processes (the UAPI socket directory is global) and at most 15 bytes.
pub fn unique_ifname() -> String {
    format!("smw{:x}-{}", std::process::id(), next_index())
}

/// The UAPI socket of interface `ifname`.
pub fn socket_path(ifname: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{ifname}.sock"))
}

/// A host: a network namespace with loopback up, and a temporary directory
/// for its files. Dropping it removes everything created in it.
pub struct Host {
    // Declared first, so the namespace goes before the directory.
    namespace: Namespace,
    dir: tempfile::TempDir,
    interfaces: Mutex<Vec<String>>,
}

impl Host {
    /// Creates the namespace `sm-LABEL-PID-N`.
    ///
    /// # Panics
    ///
    /// When not root, or when `ip netns add` fails.
    pub fn new(label: &str) -> Host {
        require_root();
        let name = format!("sm-{label}-{}-{}", std::process::id(), next_index());
        Host {
            namespace: Namespace::create(&name).unwrap_or_else(|error| panic!("{error}")),
            dir: tempfile::Builder::new()
                .prefix("sentrymesh-interop-")
                .tempdir()
                .expect("a temporary directory"),
            interfaces: Mutex::new(Vec::new()),
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        self.namespace.name()
    }

    /// The namespace.
    fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The host's temporary directory (removed with the host).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.namespace.command(program)
    }

    /// Runs `program args` inside the namespace and returns its output.
    ///
    /// # Panics
    ///
    /// When it fails or times out.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        run_ok(self.command(program).args(args), b"")
    }

    /// Runs `ip -n NS args`.
    ///
    /// # Panics
    ///
    /// When it fails or times out.
    pub fn ip(&self, args: &[&str]) -> String {
        self.namespace
            .ip(args)
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Writes `contents` to a new file `name` of mode 0600 in the host's
    /// directory and returns its path.
    ///
    /// # Panics
    ///
    /// When the file cannot be written.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
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
    ///
    /// # Panics
    ///
    /// When it cannot be started.
    pub fn spawn(&self, description: &str, program: &str, args: &[&str]) -> Process {
        let mut command = self.command(program);
        command.args(args);
        spawn(description, &mut command)
    }

    /// Runs `make` on a thread that has entered the namespace, so the
    /// sockets it creates live there (and stay there when used elsewhere).
    ///
    /// # Panics
    ///
    /// When the namespace cannot be entered, or `make` panics.
    pub fn in_namespace<T: Send + 'static>(&self, make: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn_in_namespace(make)
            .join()
            .expect("the namespace thread")
            .unwrap_or_else(|error| panic!("entering {}: {error}", self.name()))
    }

    /// Runs `make` on a new thread inside the namespace, and returns the
    /// thread to join; its result is an error when the namespace could not
    /// be entered.
    pub fn spawn_in_namespace<T: Send + 'static>(
        &self,
        make: impl FnOnce() -> T + Send + 'static,
    ) -> thread::JoinHandle<std::io::Result<T>> {
        self.namespace.spawn_thread(make)
    }

    /// Sends `GET path` to `address` from inside the namespace; returns the
    /// status line and the body.
    ///
    /// # Panics
    ///
    /// When the connection fails or the answer is not HTTP.
    pub fn http_get(&self, address: std::net::SocketAddr, path: &str) -> (String, String) {
        self.try_http_get(address, path)
            .unwrap_or_else(|error| panic!("GET {path} from {address}: {error}"))
    }

    /// Sends `GET path` to `address` from inside the namespace; returns the
    /// status line and the body, or why there is none: the connection
    /// failed, or the server closed it without an HTTP answer (a daemon
    /// gives each request a few seconds, which a loaded machine can
    /// exceed).
    ///
    /// # Errors
    ///
    /// Why no answer came, in words.
    pub fn try_http_get(
        &self,
        address: std::net::SocketAddr,
        path: &str,
    ) -> Result<(String, String), String> {
        let stream =
            self.in_namespace(move || std::net::TcpStream::connect_timeout(&address, HTTP_TIMEOUT));
        let mut stream = stream.map_err(|error| format!("connecting: {error}"))?;
        stream
            .set_read_timeout(Some(HTTP_TIMEOUT))
            .map_err(|error| format!("setting a read timeout: {error}"))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n")
            .map_err(|error| format!("sending: {error}"))?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .map_err(|error| format!("reading the answer: {error}"))?;
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("not HTTP: {answer:?}"))?;
        let status = head.lines().next().unwrap_or_default().to_owned();
        Ok((status, body.to_owned()))
    }

    /// Registers an interface whose daemon this host does not own (one that
    /// wg-quick starts), so that its socket is removed with the host.
    pub fn register_interface(&self, ifname: &str) {
        self.interfaces
            .lock()
            .expect("interfaces lock")
            .push(ifname.to_owned());
    }

    /// The processes now inside the namespace.
    pub fn pids(&self) -> Vec<u32> {
        self.namespace.pids()
    }

    /// The programs of the processes now inside the namespace.
    pub fn executables(&self) -> Vec<PathBuf> {
        self.namespace.executables()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // The processes first, so that the sockets of the interfaces they
        // served are stale; the namespace goes with the field.
        stop_processes_in([&self.namespace]);
        let interfaces = self
            .interfaces
            .lock()
            .map(|names| names.clone())
            .unwrap_or_default();
        for ifname in interfaces {
            let _ = fs::remove_file(socket_path(&ifname));
        }
    }
}

/// The two ends of a veth pair.
#[derive(Clone, Debug)]
pub struct Link {
    /// The first host's IPv4 address (in a /30).
    pub a4: Ipv4Addr,
    /// The second host's IPv4 address.
    pub b4: Ipv4Addr,
    /// The first host's IPv6 address (in a /64).
    pub a6: Ipv6Addr,
    /// The second host's IPv6 address.
    pub b6: Ipv6Addr,
}

/// Joins `a` and `b` with a veth pair created directly inside the two
/// namespaces (it never appears in the root namespace), with an IPv4 /30 in
/// 198.18.0.0/16 and an IPv6 /64 in 2001:2::/48, both up.
///
/// # Panics
///
/// When `ip` fails.
pub fn link(a: &Host, b: &Host) -> Link {
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
    add_veth(a.namespace(), &a_device, b.namespace(), &b_device)
        .unwrap_or_else(|error| panic!("{error}"));
    for (host, device, v4, v6) in [(a, &a_device, a4, a6), (b, &b_device, b4, b6)] {
        host.ip(&["addr", "add", &format!("{v4}/30"), "dev", device]);
        host.ip(&["addr", "add", &format!("{v6}/64"), "dev", device, "nodad"]);
        host.ip(&["link", "set", device, "up"]);
    }
    Link { a4, b4, a6, b6 }
}

/// The overlay (tunnel) addresses of two peers.
#[derive(Clone, Copy, Debug)]
pub struct Overlay {
    /// The first peer's IPv4 address, in a /24 of 198.19.0.0/16.
    pub a4: Ipv4Addr,
    /// The second peer's IPv4 address.
    pub b4: Ipv4Addr,
    /// The first peer's IPv6 address, in a /64 of 2001:2:0:8000::/49.
    pub a6: Ipv6Addr,
    /// The second peer's IPv6 address.
    pub b6: Ipv6Addr,
}

impl Overlay {
    /// The IPv4 prefix length of the overlay.
    pub const PREFIX4: u8 = 24;
    /// The IPv6 prefix length of the overlay.
    pub const PREFIX6: u8 = 64;

    /// New overlay addresses, distinct from every underlay.
    pub fn allocate() -> Overlay {
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
pub fn sample(metrics: &str, series: &str) -> Option<u64> {
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
pub fn add_address(host: &Host, ifname: &str, address: IpAddr, prefix: u8) {
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
pub fn set_up(host: &Host, ifname: &str) {
    host.ip(&["link", "set", ifname, "up"]);
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}
