//! Network namespaces and the veth pairs between them.
//!
//! A [`Namespace`] exists from [`Namespace::create`] until it is dropped,
//! and dropping it — after a test passes, when it panics, on a testnet's
//! error half-way or its Ctrl-C — stops every process left inside
//! (SIGTERM, then SIGKILL), deletes its veths, then the namespace. Deleting
//! the namespace would take its veths with it, but only once nothing holds
//! it, so they are deleted first and nothing depends on that.
//!
//! Veths are made straight inside the two namespaces ([`add_veth`]): they
//! never appear in the machine's own namespace, even for a moment.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;
use std::process::Command;
use std::thread;

use crate::command::{COMMAND_TIMEOUT, CommandError, run, run_ok};
use crate::process::{STOP_GRACE, signal, wait_until};

/// Where `ip netns` keeps its namespaces.
pub const NETNS_DIR: &str = "/var/run/netns";

/// Whether the effective user is root, which creating namespaces, veths and
/// TUN devices needs.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A network namespace this process created (or took charge of); dropping
/// it removes it.
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Creates the namespace `name` (`ip netns add`) with its loopback up.
    /// The name is global to the machine: the caller makes it unique.
    ///
    /// # Errors
    ///
    /// When `ip` fails (not root, or the name is taken); a namespace made
    /// before the failure is removed.
    pub fn create(name: &str) -> Result<Namespace, CommandError> {
        run_ok(Command::new("ip").args(["netns", "add", name]), b"")?;
        // From here on, Drop removes the namespace whatever happens.
        let namespace = Namespace {
            name: name.to_owned(),
        };
        namespace.ip(&["link", "set", "lo", "up"])?;
        Ok(namespace)
    }

    /// Takes charge of the namespace `name`, made by a process that no
    /// longer runs, to remove it (and stop what runs in it) when dropped.
    pub fn adopt(name: &str) -> Namespace {
        Namespace {
            name: name.to_owned(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`,
    /// which execs the program: its pid is the program's).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Runs `ip -n NAME args` and returns its output.
    ///
    /// # Errors
    ///
    /// When it fails or times out.
    pub fn ip(&self, args: &[&str]) -> Result<String, CommandError> {
        run_ok(Command::new("ip").args(["-n", &self.name]).args(args), b"")
    }

    /// The processes now inside the namespace (none when it cannot be
    /// asked).
    pub fn pids(&self) -> Vec<u32> {
        run(
            Command::new("ip").args(["netns", "pids", &self.name]),
            b"",
            COMMAND_TIMEOUT,
        )
        .map(|finished| {
            finished
                .stdout
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect()
        })
        .unwrap_or_default()
    }

    /// The programs of the processes now inside the namespace, from
    /// `/proc/PID/exe` (without the ` (deleted)` of a replaced binary).
    pub fn executables(&self) -> Vec<PathBuf> {
        self.pids()
            .into_iter()
            .filter_map(|pid| fs::read_link(format!("/proc/{pid}/exe")).ok())
            .map(|path| {
                let text = path.to_string_lossy();
                PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(&text))
            })
            .collect()
    }

    /// Runs `make` on a new thread that has entered the namespace, so the
    /// sockets it creates live there (and stay there when used from other
    /// threads), and returns the thread to join.
    ///
    /// The thread's result is an error when the namespace cannot be
    /// entered; `make` then does not run.
    pub fn spawn_thread<T: Send + 'static>(
        &self,
        make: impl FnOnce() -> T + Send + 'static,
    ) -> thread::JoinHandle<io::Result<T>> {
        let path = PathBuf::from(NETNS_DIR).join(&self.name);
        thread::spawn(move || {
            let namespace = File::open(&path)?;
            // SAFETY: setns moves only the calling thread, which ends after
            // `make`; the descriptor is an open network namespace file.
            let entered = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
            if entered != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(make())
        })
    }

    /// Deletes the namespace's veths, then the namespace; says on standard
    /// error what could not be deleted.
    fn delete(&self) {
        if let Ok(veths) = self.ip(&["-o", "link", "show", "type", "veth"]) {
            for line in veths.lines() {
                // "7: ve3a@if6: <…>": the name before any '@'.
                if let Some(device) = line
                    .split(": ")
                    .nth(1)
                    .and_then(|name| name.split('@').next())
                {
                    let _ = self.ip(&["link", "delete", device]);
                }
            }
        }
        if let Err(error) = run_ok(
            Command::new("ip").args(["netns", "delete", &self.name]),
            b"",
        ) {
            eprintln!("netns {}: {error}", self.name);
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        stop_processes_in([&*self]);
        self.delete();
    }
}

/// Stops every process inside `namespaces`: SIGTERM to all, then SIGKILL
/// to those still there after a grace period; one grace period for all.
pub fn stop_processes_in<'a>(namespaces: impl IntoIterator<Item = &'a Namespace>) {
    let namespaces: Vec<&Namespace> = namespaces.into_iter().collect();
    let pids = || -> Vec<u32> { namespaces.iter().flat_map(|ns| ns.pids()).collect() };
    let running = pids();
    if running.is_empty() {
        return;
    }
    for pid in running {
        signal(pid, libc::SIGTERM);
    }
    if wait_until(STOP_GRACE, || pids().is_empty()) {
        return;
    }
    for pid in pids() {
        signal(pid, libc::SIGKILL);
    }
    if !wait_until(STOP_GRACE, || pids().is_empty()) {
        let names: Vec<&str> = namespaces.iter().map(|ns| ns.name()).collect();
        eprintln!("netns {}: processes survived SIGKILL", names.join(", "));
    }
}

/// Joins `a` and `b` with a veth pair, `a_device` in `a` and `b_device` in
/// `b`, both down and without addresses. Device names are per namespace,
/// so they need be unique only there.
///
/// # Errors
///
/// When `ip` fails.
pub fn add_veth(
    a: &Namespace,
    a_device: &str,
    b: &Namespace,
    b_device: &str,
) -> Result<(), CommandError> {
    a.ip(&[
        "link",
        "add",
        a_device,
        "type",
        "veth",
        "peer",
        "name",
        b_device,
        "netns",
        b.name(),
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name no other test process uses.
    fn unique(label: &str) -> String {
        format!("smnl-{label}-{}", std::process::id())
    }

    fn listed(name: &str) -> bool {
        PathBuf::from(NETNS_DIR).join(name).exists()
    }

    #[test]
    fn a_namespace_with_a_veth_and_a_process_is_removed_on_drop() {
        assert!(is_root(), "run as root: these tests create namespaces");
        let (a_name, b_name) = (unique("a"), unique("b"));
        let a = Namespace::create(&a_name).unwrap();
        let b = Namespace::create(&b_name).unwrap();
        assert!(a.ip(&["link", "show", "lo"]).unwrap().contains("UP"));
        add_veth(&a, "va", &b, "vb").unwrap();
        a.ip(&["addr", "add", "198.18.250.1/30", "dev", "va"])
            .unwrap();
        b.ip(&["addr", "add", "198.18.250.2/30", "dev", "vb"])
            .unwrap();
        a.ip(&["link", "set", "va", "up"]).unwrap();
        b.ip(&["link", "set", "vb", "up"]).unwrap();
        // The veth is not in this (the machine's) namespace.
        let here = run_ok(Command::new("ip").args(["-o", "link", "show"]), b"").unwrap();
        assert!(!here.contains(" va@") && !here.contains(" vb@"), "{here}");

        let mut sleeper = crate::Process::spawn("sleep", a.command("sleep").arg("60")).unwrap();
        let pid = sleeper.pid();
        assert!(wait_until(std::time::Duration::from_secs(10), || a.pids() == [pid]));
        assert!(sleeper.exit_status().is_none());
        let socket = a
            .spawn_thread(|| std::net::UdpSocket::bind("198.18.250.1:0"))
            .join()
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            socket.local_addr().unwrap().ip().to_string(),
            "198.18.250.1"
        );

        drop(a);
        assert!(!listed(&a_name));
        assert!(!crate::is_running(pid), "the sleep outlived its namespace");
        // Deleting one end took the pair.
        assert!(!b.ip(&["link", "show"]).unwrap().contains("vb"));
        drop(b);
        assert!(!listed(&b_name));
        drop(sleeper);
    }

    #[test]
    fn a_name_taken_is_an_error_and_leaves_the_first() {
        assert!(is_root(), "run as root: these tests create namespaces");
        let name = unique("taken");
        let first = Namespace::create(&name).unwrap();
        let error = Namespace::create(&name).unwrap_err();
        assert!(matches!(error, CommandError::Failed { .. }), "{error}");
        assert!(listed(&name));
        drop(first);
        assert!(!listed(&name));
    }
}
