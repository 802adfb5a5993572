//! The WireGuard implementations under test and the `wg` and wg-quick
//! tools that drive them, with the quirks of each implementation that the
//! tests have to know about.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{
    COMMAND_TIMEOUT, Finished, Host, Process, START_TIMEOUT, next_index, run_command, run_ok,
    socket_path,
};

/// A WireGuard implementation the tests can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Implementation {
    /// `sentrymesh wg -f IFNAME`, the daemon under test: the path of its
    /// program (`env!("CARGO_BIN_EXE_sentrymesh")` in the daemon's tests).
    Sentrymesh(&'static str),
    /// `sentrymesh --offloads off wg -f IFNAME`: the daemon under test
    /// without TUN segmentation offloads or UDP GSO/GRO, the path of its
    /// program as for [`Implementation::Sentrymesh`].
    SentrymeshOffloadsOff(&'static str),
    /// Debian's `wireguard-go -f IFNAME`.
    WireguardGo,
    /// `boringtun-cli --foreground IFNAME` 0.7.1 from crates.io.
    Boringtun,
}

impl Implementation {
    /// A short name for logs and labels.
    pub fn name(self) -> &'static str {
        match self {
            Implementation::Sentrymesh(_) => "sentrymesh",
            Implementation::SentrymeshOffloadsOff(_) => "sentrymesh (offloads off)",
            Implementation::WireguardGo => "wireguard-go",
            Implementation::Boringtun => "boringtun",
        }
    }

    /// The implementation's program: the path sentrymesh was given; for
    /// the others `$SENTRYMESH_WIREGUARD_GO` / `$SENTRYMESH_BORINGTUN_CLI` if
    /// set, else the program on `PATH` (boringtun-cli also in
    /// `$CARGO_HOME/bin`, where `cargo install` puts it).
    ///
    /// # Panics
    ///
    /// When the program is not installed; the message says how to install it.
    pub fn program(self) -> PathBuf {
        match self {
            Implementation::Sentrymesh(program)
            | Implementation::SentrymeshOffloadsOff(program) => PathBuf::from(program),
            Implementation::WireguardGo => {
                find_program("SENTRYMESH_WIREGUARD_GO", "wireguard-go", &[]).unwrap_or_else(|| {
                    panic!("wireguard-go is not installed: apt-get install wireguard-go")
                })
            }
            Implementation::Boringtun => {
                let cargo_home = std::env::var_os("CARGO_HOME")
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo"))
                    });
                let extra: Vec<PathBuf> = cargo_home
                    .into_iter()
                    .map(|home| home.join("bin"))
                    .collect();
                find_program("SENTRYMESH_BORINGTUN_CLI", "boringtun-cli", &extra).unwrap_or_else(
                    || panic!("boringtun-cli is not installed: cargo install --locked boringtun-cli@0.7.1"),
                )
            }
        }
    }

    /// Starts the implementation in the foreground inside `host` with a new
    /// interface `ifname`, and waits until its UAPI socket answers.
    ///
    /// # Panics
    ///
    /// When the daemon exits or its socket does not answer within 10 s (the
    /// message has the daemon's log), or when a socket for `ifname` exists
    /// already.
    pub fn start(self, host: &Host, ifname: &str) -> Daemon {
        let socket = socket_path(ifname);
        assert!(
            !socket.exists(),
            "{} exists already: interface names must be unique",
            socket.display()
        );
        let program = self.program();
        let program = program.to_str().expect("a UTF-8 path");
        let mut command = host.command("env");
        command.arg("WG_PROCESS_FOREGROUND=1");
        match self {
            Implementation::Sentrymesh(_) => {
                command.args(["RUST_LOG=info", program, "wg", "-f", ifname]);
            }
            Implementation::SentrymeshOffloadsOff(_) => {
                command.args([
                    "RUST_LOG=info",
                    program,
                    "--offloads",
                    "off",
                    "wg",
                    "-f",
                    ifname,
                ]);
            }
            Implementation::WireguardGo => {
                command.args(["LOG_LEVEL=verbose", program, "-f", ifname]);
            }
            Implementation::Boringtun => {
                command.args([
                    "NO_COLOR=1",
                    program,
                    "--foreground",
                    "--disable-drop-privileges",
                    "--verbosity",
                    "info",
                    ifname,
                ]);
            }
        }
        let description = format!("{} {ifname} in {}", self.name(), host.name());
        let mut daemon = Daemon {
            process: crate::spawn(&description, &mut command),
            ifname: ifname.to_owned(),
            implementation: self,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = daemon.process.exit_status() {
                panic!(
                    "{description} exited ({status}) before its UAPI socket answered; it printed:\n{}",
                    daemon.process.log()
                );
            }
            if socket.exists()
                && run_command(
                    host.command("wg").args(["show", ifname]),
                    b"",
                    COMMAND_TIMEOUT,
                )
                .success()
            {
                self.check_tun_offloads(host, ifname);
                return daemon;
            }
            assert!(
                Instant::now() < deadline,
                "{description}: no answer on {} within {START_TIMEOUT:?}; it printed:\n{}",
                socket.display(),
                daemon.process.log()
            );
            sleep(Duration::from_millis(20));
        }
    }

    /// Checks that sentrymesh made `ifname` with TUN offloads (a
    /// `virtio_net_hdr` on every packet, `IFF_VNET_HDR` in the device's
    /// `tun_flags`) exactly when they are not turned off, so each test runs
    /// the data path it names.
    ///
    /// # Panics
    ///
    /// When the flags are not as expected or cannot be read.
    pub fn check_tun_offloads(self, host: &Host, ifname: &str) {
        let expected = match self {
            Implementation::Sentrymesh(_) => true,
            Implementation::SentrymeshOffloadsOff(_) => false,
            Implementation::WireguardGo | Implementation::Boringtun => return,
        };
        let flags = host.run("cat", &[&format!("/sys/class/net/{ifname}/tun_flags")]);
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)
            .unwrap_or_else(|_| panic!("tun_flags of {ifname} is not hexadecimal: {flags:?}"));
        assert_eq!(
            flags & IFF_VNET_HDR != 0,
            expected,
            "{} made {ifname} with tun_flags {flags:#x}",
            self.name()
        );
    }

    /// Bytes a transfer counter adds for each data packet beyond the IP
    /// packet inside, at least and at most (padding). sentrymesh, like the
    /// kernel and wireguard-go, counts whole UDP payloads (16-byte header,
    /// padding to 16, 16-byte tag) and handshake messages too; boringtun
    /// counts only the IP packets it encrypts or decrypts.
    pub fn counted_overhead(self) -> (u64, u64) {
        match self {
            Implementation::Sentrymesh(_)
            | Implementation::SentrymeshOffloadsOff(_)
            | Implementation::WireguardGo => (32, 32 + 15),
            Implementation::Boringtun => (0, 0),
        }
    }

    /// Whether `last_handshake_time_sec` is a Unix time as the UAPI says;
    /// boringtun 0.7.1 reports the seconds elapsed since the handshake.
    pub fn reports_handshake_as_unix_time(self) -> bool {
        !matches!(self, Implementation::Boringtun)
    }

    /// Whether a UAPI `set` can change a peer that exists. boringtun 0.7.1
    /// panics instead ("Modifying existing peers is not yet supported.
    /// Remove and add again instead.") and the whole daemon dies.
    pub fn updates_existing_peers(self) -> bool {
        !matches!(self, Implementation::Boringtun)
    }

    /// Whether each peer's settings in one UAPI `set` stay in its own
    /// section. boringtun 0.7.1 carries `remove`, `endpoint`,
    /// `preshared_key` and `persistent_keepalive_interval` over into the
    /// following peers, so `wg set IF peer OLD remove peer NEW …` removes
    /// NEW too.
    pub fn isolates_peer_sections(self) -> bool {
        !matches!(self, Implementation::Boringtun)
    }

    /// Whether a UAPI `get` returns `private_key`, from which `wg` derives
    /// the public key it shows. boringtun 0.7.1 returns a nonstandard
    /// `own_public_key` instead, so `wg show IF public-key` prints `(none)`
    /// and `wg showconf` has no PrivateKey.
    pub fn reports_private_key(self) -> bool {
        !matches!(self, Implementation::Boringtun)
    }

    /// Puts a command into `bin` that wg-quick can run as
    /// `WG_QUICK_USERSPACE_IMPLEMENTATION`, and returns its name: a symlink
    /// to the daemon when it daemonizes as `NAME IFNAME` (sentrymesh as
    /// `sentrymesh-wg`; wireguard-go), else a wrapper script. wg-quick puts
    /// its own directory (/usr/bin) first on PATH, so a command of the same
    /// name there wins: check which program runs with [`Host::executables`].
    ///
    /// # Panics
    ///
    /// When the command cannot be written.
    pub fn install_for_wg_quick(self, bin: &Path) -> String {
        let program = self.program();
        let (name, path) = match self {
            Implementation::Sentrymesh(_) => {
                let path = bin.join("sentrymesh-wg");
                symlink(&program, &path).expect("symlink sentrymesh-wg");
                ("sentrymesh-wg", path)
            }
            Implementation::SentrymeshOffloadsOff(_) => {
                let path = bin.join("sentrymesh-wg-offloads-off");
                write_wrapper(
                    &path,
                    &format!(
                        "#!/bin/sh\nSENTRYMESH_OFFLOADS=off exec '{}' wg \"$@\"\n",
                        program.display()
                    ),
                );
                ("sentrymesh-wg-offloads-off", path)
            }
            Implementation::WireguardGo => {
                // Not `wireguard-go`: wg-quick puts its own directory first
                // on PATH, so /usr/bin/wireguard-go would win.
                let path = bin.join("interop-wireguard-go");
                symlink(&program, &path).expect("symlink interop-wireguard-go");
                ("interop-wireguard-go", path)
            }
            Implementation::Boringtun => {
                // Daemonized boringtun-cli logs to /tmp/boringtun.out unless
                // told otherwise, and drops privileges to the login user.
                let path = bin.join("boringtun-wg");
                let log = bin.join("boringtun.log");
                let script = format!(
                    "#!/bin/sh\nexec '{}' --disable-drop-privileges --log '{}' \"$@\"\n",
                    program.display(),
                    log.display()
                );
                write_wrapper(&path, &script);
                ("boringtun-wg", path)
            }
        };
        assert!(path.exists(), "{} is missing", path.display());
        name.to_owned()
    }
}

/// The TUN flag of a device whose packets carry a `virtio_net_hdr`.
const IFF_VNET_HDR: u32 = 0x4000;

/// Writes the executable shell script `script` to `path`.
fn write_wrapper(path: &Path, script: &str) {
    fs::write(path, script).expect("write a wrapper script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .expect("make the wrapper executable");
}

/// Finds `name` through the environment variable `variable`, then on
/// `PATH`, then in `extra` directories.
fn find_program(variable: &str, name: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .or_else(|| sentrymesh_netns::find_program(name, extra))
}

/// A running WireGuard daemon. Dropping it stops the daemon and removes its
/// socket if the daemon left it behind.
pub struct Daemon {
    process: Process,
    ifname: String,
    implementation: Implementation,
}

impl Daemon {
    /// The interface the daemon serves.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Which implementation runs.
    pub fn implementation(&self) -> Implementation {
        self.implementation
    }

    /// The daemon's process id, for what `/proc` tells of it (`env`, like
    /// `ip netns exec`, execs the program, so it is the program's).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything the daemon has printed so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.process.stop();
        let _ = fs::remove_file(socket_path(&self.ifname));
    }
}

/// A WireGuard key pair, base64 as `wg` prints it.
#[derive(Clone, Debug)]
pub struct Keys {
    /// The private key.
    pub private: String,
    /// The public key.
    pub public: String,
}

impl Keys {
    /// A new key pair from `wg genkey` and `wg pubkey`.
    ///
    /// # Panics
    ///
    /// When `wg` fails.
    pub fn generate() -> Keys {
        let private = run_ok(Command::new("wg").arg("genkey"), b"")
            .trim()
            .to_owned();
        let public = run_ok(Command::new("wg").arg("pubkey"), private.as_bytes())
            .trim()
            .to_owned();
        Keys { private, public }
    }
}

/// A new preshared key from `wg genpsk`.
///
/// # Panics
///
/// When `wg` fails.
pub fn preshared_key() -> String {
    run_ok(Command::new("wg").arg("genpsk"), b"")
        .trim()
        .to_owned()
}

/// Runs `wg args` inside `host` and returns its standard output.
///
/// # Panics
///
/// When `wg` fails; the message has its standard error.
pub fn wg(host: &Host, args: &[&str]) -> String {
    host.run("wg", args)
}

/// A `[Peer]` section of a `wg setconf` or wg-quick file.
#[derive(Clone, Debug, Default)]
pub struct PeerSection {
    /// The peer's public key.
    pub public_key: String,
    /// A preshared key, if any.
    pub preshared_key: Option<String>,
    /// Where the peer is reached, if known.
    pub endpoint: Option<SocketAddr>,
    /// The peer's allowed IPs, e.g. `198.19.1.2/32`.
    pub allowed_ips: Vec<String>,
    /// A persistent keepalive interval in seconds, if any.
    pub persistent_keepalive: Option<u16>,
}

impl PeerSection {
    /// The section as `wg setconf` and wg-quick read it.
    pub fn to_config(&self) -> String {
        let mut section = format!("[Peer]\nPublicKey = {}\n", self.public_key);
        if let Some(key) = &self.preshared_key {
            section.push_str(&format!("PresharedKey = {key}\n"));
        }
        if let Some(endpoint) = self.endpoint {
            section.push_str(&format!("Endpoint = {endpoint}\n"));
        }
        if !self.allowed_ips.is_empty() {
            section.push_str(&format!("AllowedIPs = {}\n", self.allowed_ips.join(", ")));
        }
        if let Some(interval) = self.persistent_keepalive {
            section.push_str(&format!("PersistentKeepalive = {interval}\n"));
        }
        section
    }
}

/// Replaces the configuration of `ifname` in `host` with `wg setconf`: the
/// private key, the listen port (random when `None`) and `peers`.
///
/// # Panics
///
/// When `wg setconf` fails.
pub fn configure(
    host: &Host,
    ifname: &str,
    private_key: &str,
    listen_port: Option<u16>,
    peers: &[PeerSection],
) {
    let mut config = format!("[Interface]\nPrivateKey = {private_key}\n");
    if let Some(port) = listen_port {
        config.push_str(&format!("ListenPort = {port}\n"));
    }
    for peer in peers {
        config.push('\n');
        config.push_str(&peer.to_config());
    }
    let path = host.write_file(&format!("{ifname}-{}.conf", next_index()), &config);
    wg(
        host,
        &["setconf", ifname, path.to_str().expect("a UTF-8 path")],
    );
}

/// One peer's line of `wg show IFNAME dump`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpedPeer {
    /// The preshared key, if any.
    pub preshared_key: Option<String>,
    /// The endpoint, if known.
    pub endpoint: Option<SocketAddr>,
    /// The allowed IPs, as printed.
    pub allowed_ips: Vec<String>,
    /// `last_handshake_time_sec`, 0 for never.
    pub latest_handshake: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// The status of the peer `public_key` of `ifname` in `host`, from
/// `wg show IFNAME dump`.
///
/// # Panics
///
/// When `wg` fails, prints something unexpected, or has no such peer.
pub fn peer_status(host: &Host, ifname: &str, public_key: &str) -> DumpedPeer {
    let dump = wg(host, &["show", ifname, "dump"]);
    let none = |field: &str| (field != "(none)" && field != "off").then(|| field.to_owned());
    dump.lines()
        .skip(1) // the interface's own line
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&public_key))
        .map(|fields| {
            assert_eq!(fields.len(), 8, "unexpected dump line: {fields:?}");
            let number = |field: &str| -> u64 {
                field
                    .parse()
                    .unwrap_or_else(|_| panic!("not a number in wg show dump: {field}"))
            };
            DumpedPeer {
                preshared_key: none(fields[1]),
                endpoint: none(fields[2]).map(|endpoint| {
                    endpoint
                        .parse()
                        .unwrap_or_else(|_| panic!("not an endpoint: {endpoint}"))
                }),
                allowed_ips: fields[3]
                    .split(',')
                    .filter(|ip| *ip != "(none)")
                    .map(str::to_owned)
                    .collect(),
                latest_handshake: number(fields[4]),
                rx_bytes: number(fields[5]),
                tx_bytes: number(fields[6]),
            }
        })
        .unwrap_or_else(|| panic!("no peer {public_key} on {ifname}:\n{dump}"))
}

/// Runs `wg-quick ACTION CONFIG` inside `host` with
/// `WG_QUICK_USERSPACE_IMPLEMENTATION=userspace` and `bin` first on `PATH`.
/// The interface is named after the config file (`IFNAME.conf`).
///
/// # Panics
///
/// When wg-quick cannot be started.
pub fn wg_quick(host: &Host, bin: &Path, userspace: &str, action: &str, config: &Path) -> Finished {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        std::iter::once(bin.to_path_buf()).chain(std::env::split_paths(&path)),
    )
    .expect("a PATH");
    let mut command = host.command("env");
    command
        .arg(format!("PATH={}", path.to_str().expect("a UTF-8 PATH")))
        .arg(format!("WG_QUICK_USERSPACE_IMPLEMENTATION={userspace}"))
        .args(["wg-quick", action])
        .arg(config);
    run_command(&mut command, b"", COMMAND_TIMEOUT)
}
