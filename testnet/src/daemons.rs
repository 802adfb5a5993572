//! The daemons of a testnet: a native config per host, `sentrymesh up -c`
//! started inside the host's namespace, and its readiness heard as systemd
//! would hear it.
//!
//! Each daemon gets `NOTIFY_SOCKET` naming a datagram socket of its own in
//! its host's directory, so the testnet hears its `READY=1` — sent once its
//! readiness gate (`[ready] min_trusted_peers`, set to the number of peers
//! its role requires) opens — and its `STATUS=` lines meanwhile. Its log
//! (standard error, `RUST_LOG=info` unless set) goes to `daemon.log` there.
//!
//! [`Daemons`] stops every daemon when dropped (SIGTERM, then SIGKILL after
//! a grace period) and removes any UAPI socket they left in
//! `/var/run/wireguard`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use sentrymesh::config;
use sentrymesh::control::client;
use sentrymesh::dataplane::Offloads;
use sentrymesh_netns::{Namespace, Process, interrupt, stop_all};

use crate::TestnetSpec;
use crate::identities::{HostFiles, TestnetOperator, write_file};
use crate::plan::{LISTEN_PORT, MESH_OVERLAY, OVERLAY_PREFIX, PlannedHost, operator_range};

/// The longest path a Unix socket address holds (with its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// How many daemons `start_all` starts at once.
const PARALLEL_STARTS: usize = 8;
/// How often `wait_serving` looks.
const SERVING_POLL: Duration = Duration::from_millis(50);

/// The native config of `host`: its interface, its mesh files (its
/// operator's `known_dir`), whom it trusts, and as its readiness threshold
/// the `peers` its role requires.
pub(super) fn config_text(
    host: &PlannedHost,
    operator: &TestnetOperator,
    operators: &[TestnetOperator],
    known_dir: &Path,
    peers: usize,
) -> String {
    let trusted: Vec<String> = operator
        .trusts
        .iter()
        .map(|&number| {
            format!(
                "{{ id = \"{}\", overlay = \"{}\" }}",
                operators[number - 1].id,
                operator_range(number)
            )
        })
        .collect();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# {}: {} of {}, written by sentrymesh-testnet",
        host.name, host.role, operator.label
    );
    let _ = writeln!(text, "[interface]");
    let _ = writeln!(text, "name = \"{}\"", host.ifname);
    let _ = writeln!(text, "private_key_file = \"wg.key\"");
    let _ = writeln!(text, "listen_port = {LISTEN_PORT}");
    let _ = writeln!(text, "addresses = [\"{}/{OVERLAY_PREFIX}\"]", host.overlay);
    let _ = writeln!(text);
    let _ = writeln!(text, "[mesh]");
    let _ = writeln!(text, "card_file = \"host.card\"");
    let _ = writeln!(text, "known_dir = \"{}\"", known_dir.display());
    let _ = writeln!(text, "state_dir = \"state\"");
    let _ = writeln!(text);
    let _ = writeln!(text, "[trust]");
    let _ = writeln!(text, "overlay = \"{MESH_OVERLAY}\"");
    let _ = writeln!(
        text,
        "own_overlay = \"{}\"",
        operator_range(operator.number)
    );
    let _ = writeln!(text, "operators = [{}]", trusted.join(", "));
    let _ = writeln!(text, "vouch_threshold = 1");
    let _ = writeln!(text);
    let _ = writeln!(text, "[ready]");
    let _ = writeln!(text, "min_trusted_peers = {peers}");
    text
}

/// Writes `host`'s config `text` (`config_text`) into its directory and
/// checks it as `sentrymesh up` will read it; returns its path. (The files
/// it names — the card, the known directory — the daemon checks as it
/// starts, and one it refuses makes it exit, which the testnet reports
/// with the end of its log.)
///
/// # Errors
///
/// When the file cannot be written or the config is refused.
pub(super) fn write_config(files: &HostFiles, text: &str) -> Result<PathBuf> {
    let path = files.dir.join("config.toml");
    write_file(&path, text)?;
    config::load(&path).map_err(|error| anyhow!("{error}"))?;
    Ok(path)
}

/// A daemon of one host.
#[derive(Debug)]
pub(super) struct Daemon {
    host: String,
    ifname: String,
    process: Process,
    notify: UnixDatagram,
    ready: bool,
    status: String,
    exit: Option<ExitStatus>,
}

impl Daemon {
    /// Whether it sent `READY=1`.
    pub(super) fn ready(&self) -> bool {
        self.ready
    }

    /// Its last `STATUS=`, or how it ended.
    pub(super) fn status(&self) -> String {
        match self.exit {
            Some(status) => format!("exited ({status})"),
            None => self.status.clone(),
        }
    }

    /// Its log.
    pub(super) fn log(&self) -> String {
        self.process.log()
    }

    /// How it ended and the end of its log, once it exited.
    pub(super) fn exit_message(&self) -> String {
        format!(
            "the daemon of {} {}; its log ends:\n{}",
            self.host,
            self.status(),
            self.log_tail(20)
        )
    }

    /// The last `lines` lines of its log.
    pub(super) fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// Reads the notifications that arrived; records an exit.
    fn poll(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.notify.recv(&mut buf) {
                Ok(len) => {
                    for line in String::from_utf8_lossy(&buf[..len]).lines() {
                        if line == "READY=1" {
                            self.ready = true;
                        } else if let Some(status) = line.strip_prefix("STATUS=") {
                            status.clone_into(&mut self.status);
                        }
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if self.exit.is_none() {
            self.exit = self.process.exit_status();
        }
    }
}

/// The running daemons by host index; dropping them stops them.
#[derive(Debug, Default)]
pub(super) struct Daemons {
    daemons: BTreeMap<usize, Daemon>,
}

/// What [`Daemons::start_all`] needs to start one host's daemon.
#[derive(Debug, Clone, Copy)]
pub(super) struct Start<'a> {
    /// The host's index in the plan.
    pub(super) index: usize,
    /// The host.
    pub(super) host: &'a PlannedHost,
    /// Its namespace.
    pub(super) namespace: &'a Namespace,
    /// Its files.
    pub(super) files: &'a HostFiles,
    /// Its config, as [`write_config`] wrote it.
    pub(super) config: &'a Path,
}

impl Daemons {
    /// Starts the daemon of each of `starts`, [`PARALLEL_STARTS`] at a
    /// time (a start waits until the program runs, which on a busy
    /// machine is a wait for the scheduler more than work), calling
    /// `started` after each.
    ///
    /// # Errors
    ///
    /// When one cannot be started (the others started meanwhile run on,
    /// and are stopped with the rest), or a stop is requested.
    pub(super) fn start_all(
        &mut self,
        spec: &TestnetSpec,
        starts: &[Start<'_>],
        started: &mut dyn FnMut(),
    ) -> Result<()> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let mut first_error = None;
        std::thread::scope(|scope| {
            let (results, received) = mpsc::channel();
            for _ in 0..PARALLEL_STARTS.min(starts.len()) {
                let results = results.clone();
                let (next, failed) = (&next, &failed);
                scope.spawn(move || {
                    while !failed.load(Ordering::Relaxed) && !interrupt::requested() {
                        let Some(start) = starts.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            return;
                        };
                        let result = Daemon::start(spec, start)
                            .with_context(|| format!("starting the daemon of {}", start.host.name));
                        failed.fetch_or(result.is_err(), Ordering::Relaxed);
                        if results.send((start.index, result)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(results);
            for (index, result) in received {
                match result {
                    Ok(daemon) => {
                        self.daemons.insert(index, daemon);
                        started();
                    }
                    Err(error) => {
                        first_error.get_or_insert(error);
                    }
                }
            }
        });
        interrupt::check()?;
        first_error.map_or(Ok(()), Err)
    }

    /// Reads every daemon's notifications and notes which exited.
    pub(super) fn poll(&mut self) {
        for daemon in self.daemons.values_mut() {
            daemon.poll();
        }
    }
}

impl Daemon {
    /// Starts `sentrymesh up -c CONFIG` (the binary and offloads of
    /// `spec`) inside the host's namespace (entered directly: the daemon
    /// reads nothing of `/sys`), with a notification socket of its own.
    fn start(spec: &TestnetSpec, start: &Start<'_>) -> Result<Daemon> {
        let Start {
            host,
            namespace,
            files,
            config,
            ..
        } = *start;
        let notify_path = files.dir.join("notify.sock");
        if notify_path.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "{} is too long for a socket address: set TMPDIR to a shorter directory",
                notify_path.display()
            );
        }
        let notify = UnixDatagram::bind(&notify_path)
            .with_context(|| format!("binding {}", notify_path.display()))?;
        notify.set_nonblocking(true)?;

        let mut command = namespace
            .enter_command(&spec.binary)
            .with_context(|| format!("entering {}", namespace.name()))?;
        command
            .arg("--offloads")
            .arg(match spec.offloads {
                Offloads::Auto => "auto",
                Offloads::Off => "off",
            })
            .args(["up", "-c"])
            .arg(config)
            .env("NOTIFY_SOCKET", &notify_path)
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID");
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let process = Process::spawn_logging_to(
            &format!("the daemon of {}", host.name),
            &mut command,
            &files.dir.join("daemon.log"),
        )?;
        Ok(Daemon {
            host: host.name.clone(),
            ifname: host.ifname.clone(),
            process,
            notify,
            ready: false,
            status: "starting".to_owned(),
            exit: None,
        })
    }
}

impl Daemons {
    /// The daemon of host `index`.
    pub(super) fn get(&self, index: usize) -> Option<&Daemon> {
        self.daemons.get(&index)
    }

    /// The index of the first daemon that exited.
    pub(super) fn first_exited(&self) -> Option<usize> {
        self.daemons
            .iter()
            .find(|(_, daemon)| daemon.exit.is_some())
            .map(|(&index, _)| index)
    }

    /// Waits until every daemon started so far serves its UAPI socket,
    /// which it binds once its interface and UDP socket are up. Each
    /// daemon is asked (connected to) until it answers, and then no more:
    /// every connection is one more the daemon must accept, and a daemon
    /// still starting that is asked too often fills its backlog, and then
    /// each further connection waits.
    ///
    /// # Errors
    ///
    /// When one exits or does not come up within `timeout`, or a stop is
    /// requested.
    pub(super) fn wait_serving(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut serving = BTreeSet::new();
        loop {
            interrupt::check()?;
            self.poll();
            if let Some(index) = self.first_exited() {
                bail!("{}", self.daemons[&index].exit_message());
            }
            for (&index, daemon) in &self.daemons {
                if !serving.contains(&index)
                    && UnixStream::connect(client::socket_path(&daemon.ifname)).is_ok()
                {
                    serving.insert(index);
                }
            }
            if serving.len() == self.daemons.len() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} of {} daemons did not bring their interfaces up within {timeout:?}",
                    self.daemons.len() - serving.len(),
                    self.daemons.len()
                );
            }
            std::thread::sleep(SERVING_POLL);
        }
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        // All at once: one grace period for every daemon, not one each.
        stop_all(self.daemons.values_mut().map(|daemon| &mut daemon.process));
        for daemon in self.daemons.values() {
            let socket = client::socket_path(&daemon.ifname);
            match fs::remove_file(&socket) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    eprintln!("sentrymesh-testnet: removing {}: {error}", socket.display())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Plan, RunTag};

    #[test]
    fn a_config_names_the_host_its_trust_and_its_readiness() {
        let plan = Plan::new(3, 2, RunTag { pid: 9, serial: 0 }).unwrap();
        let operators: Vec<TestnetOperator> = (1..=3u8)
            .map(|n| TestnetOperator {
                number: usize::from(n),
                label: format!("op{n}"),
                id: sentrymesh_mesh::OperatorSecret::from_seed([n; 32]).operator_id(),
                key_file: std::path::PathBuf::new(),
                trusts: plan.trusted_by(usize::from(n)),
                admits_by_vouch: plan.admitted_by_vouch(usize::from(n)),
            })
            .collect();
        let host = &plan.hosts()[8];
        let known = std::path::Path::new("/tmp/sentrymesh-testnet-9-0-1/operators/op3/known");
        let text = config_text(host, &operators[2], &operators, known, 6);
        assert!(text.starts_with("# op3-sentry-2: sentry of op3,"), "{text}");
        assert!(text.contains("name = \"tn9-0-8\"\n"), "{text}");
        assert!(text.contains("addresses = [\"198.19.3.3/32\"]\n"), "{text}");
        assert!(
            text.contains(&format!(
                "operators = [{{ id = \"{}\", overlay = \"198.19.1.0/24\" }}]\n",
                operators[0].id
            )),
            "{text}"
        );
        assert!(text.contains("overlay = \"198.19.0.0/16\"\n"), "{text}");
        assert!(text.contains("own_overlay = \"198.19.3.0/24\"\n"), "{text}");
        assert!(text.contains("min_trusted_peers = 6\n"), "{text}");
        assert!(
            text.contains("known_dir = \"/tmp/sentrymesh-testnet-9-0-1/operators/op3/known\"\n"),
            "{text}"
        );
        // The text is a valid native config (its files aside).
        config::parse(&text, std::path::Path::new("config.toml")).unwrap();
    }
}
