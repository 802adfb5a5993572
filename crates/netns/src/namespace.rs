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
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crate::command::{CommandError, run_ok};
use crate::process::{STOP_GRACE, signal, wait_until};

/// Where `ip netns` keeps its namespaces.
pub const NETNS_DIR: &str = "/var/run/netns";

/// How many `ip` commands [`Namespace::create_all`] and [`remove_all`] run
/// at once.
const PARALLEL: usize = 8;

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
    /// Set by [`remove_all`], which removed it already.
    removed: bool,
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
            removed: false,
        };
        namespace.ip(&["link", "set", "lo", "up"])?;
        Ok(namespace)
    }

    /// Creates the namespaces `names` with one `ip -batch`, then in each,
    /// side by side, brings its loopback up and runs the `ip` commands
    /// `setup` gives for it (its index in `names`), one `ip -n NAME -batch`
    /// each. The names are global to the machine: the caller makes them
    /// unique.
    ///
    /// # Errors
    ///
    /// When a name is taken (nothing is created then), or `ip` fails;
    /// every namespace made is removed.
    pub fn create_all(
        names: &[String],
        setup: impl Fn(usize) -> Vec<String> + Sync,
    ) -> Result<Vec<Namespace>, CommandError> {
        if let Some(taken) = names.iter().find(|name| listed(name)) {
            return Err(CommandError::Failed {
                command: format!("ip netns add {taken}"),
                status: ExitStatus::from_raw(1 << 8),
                output: format!(
                    "Cannot create namespace file \"{NETNS_DIR}/{taken}\": File exists"
                ),
            });
        }
        let added = ip_batch(&[], names.iter().map(|name| format!("netns add {name}")));
        // From here on, those that exist are removed whatever happens.
        let namespaces: Vec<Namespace> = names
            .iter()
            .filter(|name| listed(name))
            .map(|name| Namespace::adopt(name))
            .collect();
        added?;
        let set_up = side_by_side(&namespaces, |index, namespace| {
            let commands = std::iter::once("link set lo up".to_owned()).chain(setup(index));
            namespace.ip_batch(commands)
        });
        set_up.into_iter().collect::<Result<(), _>>()?;
        Ok(namespaces)
    }

    /// Takes charge of the namespace `name`, made by a process that no
    /// longer runs, to remove it (and stop what runs in it) when dropped.
    pub fn adopt(name: &str) -> Namespace {
        Namespace {
            name: name.to_owned(),
            removed: false,
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

    /// A command that runs `program` inside the namespace, entered by the
    /// child itself (`setns` between fork and exec) rather than through
    /// `ip netns exec`: one process start instead of two, and no mount
    /// namespace of its own, whose copy of every mount would cost each
    /// later `ip netns add` and `delete` — but no `/sys` of the namespace
    /// either, so only for programs that do not read it (the daemon).
    ///
    /// # Errors
    ///
    /// When the namespace's file cannot be opened.
    pub fn enter_command(&self, program: impl AsRef<OsStr>) -> io::Result<Command> {
        let namespace = File::open(PathBuf::from(NETNS_DIR).join(&self.name))?;
        let mut command = Command::new(program);
        // SAFETY: the closure runs in the child between fork and exec and
        // calls only setns(2), which is async-signal-safe, on a descriptor
        // the closure owns (open in the child too: close-on-exec closes it
        // only at the exec).
        unsafe {
            command.pre_exec(move || {
                if libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(command)
    }

    /// Runs `ip -n NAME args` and returns its output.
    ///
    /// # Errors
    ///
    /// When it fails or times out.
    pub fn ip(&self, args: &[&str]) -> Result<String, CommandError> {
        run_ok(Command::new("ip").args(["-n", &self.name]).args(args), b"")
    }

    /// Runs `commands` in the namespace with one `ip -n NAME -batch -`,
    /// in order, stopping at the first that fails.
    ///
    /// # Errors
    ///
    /// When one fails or the whole takes longer than
    /// [`COMMAND_TIMEOUT`](crate::COMMAND_TIMEOUT).
    pub fn ip_batch(&self, commands: impl IntoIterator<Item = String>) -> Result<(), CommandError> {
        ip_batch(&["-n", &self.name], commands)
    }

    /// The processes now inside the namespace (none when it cannot be
    /// asked), as `ip netns pids` finds them.
    pub fn pids(&self) -> Vec<u32> {
        pids_in(&[self]).pop().unwrap_or_default()
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
        self.delete_veths();
        self.delete_namespace();
    }

    /// Deletes the namespace's veths, with one `ip -batch`.
    fn delete_veths(&self) {
        let Ok(veths) = self.ip(&["-o", "link", "show", "type", "veth"]) else {
            return;
        };
        let deletes: Vec<String> = veths
            .lines()
            // "7: ve3a@if6: <…>": the name before any '@'.
            .filter_map(|line| line.split(": ").nth(1)?.split('@').next())
            .map(|device| format!("link delete {device}"))
            .collect();
        if !deletes.is_empty() {
            // `-force`: on past a failure, as when both ends of a pair are
            // here and the second went with the first.
            let _ = ip_batch(&["-force", "-n", &self.name], deletes);
        }
    }

    /// Deletes the namespace; says on standard error when it cannot.
    fn delete_namespace(&self) {
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
        if self.removed {
            return;
        }
        stop_processes_in([&*self]);
        self.delete();
    }
}

/// Removes `namespaces` as dropping each would, faster: one grace period
/// for every process left in any of them, their veths deleted side by
/// side, then one `ip -batch` deleting them all (and each on its own if
/// that fails); says on standard error what could not be deleted.
pub fn remove_all(mut namespaces: Vec<Namespace>) {
    stop_processes_in(&namespaces);
    side_by_side(&namespaces, |_, namespace| namespace.delete_veths());
    let deleted = ip_batch(
        &[],
        namespaces
            .iter()
            .map(|namespace| format!("netns delete {}", namespace.name)),
    );
    for namespace in &mut namespaces {
        if deleted.is_err() && listed(&namespace.name) {
            namespace.delete_namespace();
        }
        namespace.removed = true;
    }
}

/// Whether the namespace `name` exists.
fn listed(name: &str) -> bool {
    PathBuf::from(NETNS_DIR).join(name).exists()
}

/// Runs `ip OPTIONS -batch -` with `commands` on its standard input.
fn ip_batch(
    options: &[&str],
    commands: impl IntoIterator<Item = String>,
) -> Result<(), CommandError> {
    let mut input = String::new();
    for command in commands {
        input.push_str(&command);
        input.push('\n');
    }
    run_ok(
        Command::new("ip").args(options).args(["-batch", "-"]),
        input.as_bytes(),
    )?;
    Ok(())
}

/// `work` on each of `items` (with its index), [`PARALLEL`] at a time;
/// the results in the items' order.
fn side_by_side<T: Sync, R: Send>(items: &[T], work: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    thread::scope(|scope| {
        for _ in 0..PARALLEL.min(items.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { return };
                    let result = work(index, item);
                    if let Ok(mut slot) = results[index].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .filter_map(|slot| slot.into_inner().ok().flatten())
        .collect()
}

/// The processes inside each of `namespaces`: those whose network
/// namespace (`/proc/PID/ns/net`) is the namespace's file, as `ip netns
/// pids` finds them, in one pass over `/proc`. None for a namespace that
/// cannot be read.
fn pids_in(namespaces: &[&Namespace]) -> Vec<Vec<u32>> {
    let identity =
        |path: &std::path::Path| fs::metadata(path).ok().map(|meta| (meta.dev(), meta.ino()));
    let wanted: Vec<Option<(u64, u64)>> = namespaces
        .iter()
        .map(|namespace| identity(&PathBuf::from(NETNS_DIR).join(&namespace.name)))
        .collect();
    let mut found = vec![Vec::new(); namespaces.len()];
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(net) = identity(&entry.path().join("ns/net")) else {
            continue;
        };
        for (index, namespace) in wanted.iter().enumerate() {
            if *namespace == Some(net) {
                found[index].push(pid);
            }
        }
    }
    found
}

/// Stops every process inside `namespaces`: SIGTERM to all, then SIGKILL
/// to those still there after a grace period; one grace period for all.
pub fn stop_processes_in<'a>(namespaces: impl IntoIterator<Item = &'a Namespace>) {
    let namespaces: Vec<&Namespace> = namespaces.into_iter().collect();
    let pids = || -> Vec<u32> { pids_in(&namespaces).into_iter().flatten().collect() };
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
