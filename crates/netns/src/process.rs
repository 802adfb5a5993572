//! Programs that run in the background (a daemon, a ping, an iperf3
//! server) with their output in a log, and the signals and waits that stop
//! them.
//!
//! A [`Process`] stops its program when dropped — SIGTERM, then SIGKILL
//! after a grace period — also when a test panics, and then prints the end
//! of its log, which is usually what explains the failure. [`stop_all`]
//! stops many at once: one grace period for all of them, not one each.

use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::command::{CommandError, describe};

/// How long a program gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// How often [`wait_until`] looks.
const POLL: Duration = Duration::from_millis(20);

/// Log lines printed when a [`Process`] is dropped during a panic.
const TAIL_ON_PANIC: usize = 40;

/// Polls `condition` every 20 ms until it holds or `timeout` passes, and
/// returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Sends `signal` to process `pid`; a process already gone is fine. A pid
/// that is not positive (which `kill` would take for a process group, or
/// every process) is ignored.
pub fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 0 {
        return;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // the pid is positive, so one process, never a group.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Whether process `pid` exists and has not exited: a zombie, not yet
/// reaped by its parent, has.
pub fn is_running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Where a [`Process`] writes its output.
#[derive(Debug)]
enum Log {
    /// A temporary file, removed with the process.
    Temporary(tempfile::NamedTempFile),
    /// A file of the caller's, kept.
    Kept(PathBuf),
}

impl Log {
    fn path(&self) -> &Path {
        match self {
            Log::Temporary(file) => file.path(),
            Log::Kept(path) => path,
        }
    }
}

/// A program running in the background, in a process group of its own,
/// with its standard output and error in a log. Dropping it stops it.
#[derive(Debug)]
pub struct Process {
    description: String,
    child: Child,
    log: Log,
    exit: Option<ExitStatus>,
}

impl Process {
    /// Starts `command` with its output in a new temporary log.
    ///
    /// # Errors
    ///
    /// When the log cannot be made or the program cannot be started.
    pub fn spawn(description: &str, command: &mut Command) -> Result<Process, CommandError> {
        let log = tempfile::Builder::new()
            .prefix("sentrymesh-netns-log-")
            .tempfile()
            .map_err(|source| CommandError::Output {
                command: describe(command),
                source,
            })?;
        let file = log.reopen().map_err(|source| CommandError::Output {
            command: describe(command),
            source,
        })?;
        Self::start(description, command, file, Log::Temporary(log))
    }

    /// Starts `command` with its output appended to the file `log`, which
    /// stays when the process goes.
    ///
    /// # Errors
    ///
    /// When the log cannot be opened or the program cannot be started.
    pub fn spawn_logging_to(
        description: &str,
        command: &mut Command,
        log: &Path,
    ) -> Result<Process, CommandError> {
        let file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
            .map_err(|source| CommandError::Output {
                command: describe(command),
                source,
            })?;
        Self::start(description, command, file, Log::Kept(log.to_owned()))
    }

    fn start(
        description: &str,
        command: &mut Command,
        file: File,
        log: Log,
    ) -> Result<Process, CommandError> {
        let line = describe(command);
        let output_error = |source| CommandError::Output {
            command: line.clone(),
            source,
        };
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().map_err(output_error)?))
            .stderr(Stdio::from(file));
        let child = command.spawn().map_err(|source| CommandError::Start {
            command: line.clone(),
            source,
        })?;
        Ok(Process {
            description: description.to_owned(),
            child,
            log,
            exit: None,
        })
    }

    /// The process id (`ip netns exec` execs the program, so it is the
    /// program's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process is, as given to `spawn`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The exit status, once the process has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Everything the process has printed so far.
    pub fn log(&self) -> String {
        fs::read(self.log.path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops the process: SIGTERM, then SIGKILL after [`STOP_GRACE`].
    pub fn stop(&mut self) {
        stop_all([self]);
    }

    /// Kills the process at once (SIGKILL, as `kill -9`: no cleanup of its
    /// own runs) and waits for it to be gone.
    pub fn kill(&mut self) {
        if self.has_exited() {
            return;
        }
        let _ = self.child.kill();
        if let Ok(status) = self.child.wait() {
            self.exit = Some(status);
        }
    }

    /// Whether the process is gone (or cannot be waited for).
    fn has_exited(&mut self) -> bool {
        if self.exit.is_some() {
            return true;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.exit = Some(status);
                true
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }
}

/// Stops every one of `processes`: SIGTERM to all, then SIGKILL to those
/// still running after [`STOP_GRACE`].
pub fn stop_all<'a>(processes: impl IntoIterator<Item = &'a mut Process>) {
    let mut running: Vec<&mut Process> = processes
        .into_iter()
        .filter_map(|process| (!process.has_exited()).then_some(process))
        .collect();
    for process in &running {
        signal(process.pid(), libc::SIGTERM);
    }
    let stopped = wait_until(STOP_GRACE, || {
        running.iter_mut().all(|process| process.has_exited())
    });
    if !stopped {
        for process in &mut running {
            if process.has_exited() {
                continue;
            }
            let _ = process.child.kill();
            if let Ok(status) = process.child.wait() {
                process.exit = Some(status);
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
        if thread::panicking() {
            let mut stderr = io::stderr().lock();
            let _ = io::Write::write_fmt(
                &mut stderr,
                format_args!(
                    "--- last lines of {} ---\n{}\n",
                    self.description,
                    self.log_tail(TAIL_ON_PANIC)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_stops_the_program_and_sigkill_follows_a_refused_sigterm() {
        let mut polite = Process::spawn("sleep", Command::new("sleep").arg("60")).unwrap();
        let mut stubborn = Process::spawn(
            "a shell ignoring SIGTERM",
            Command::new("sh").args(["-c", "trap '' TERM; echo up; exec sleep 60"]),
        )
        .unwrap();
        assert!(wait_until(Duration::from_secs(10), || stubborn.log() == "up\n"));
        let pids = [polite.pid(), stubborn.pid()];
        stop_all([&mut polite, &mut stubborn]);
        assert!(polite.exit_status().is_some());
        assert!(stubborn.exit_status().is_some());
        for pid in pids {
            assert!(!is_running(pid), "{pid} runs on");
        }
    }

    #[test]
    fn a_kept_log_stays_and_the_tail_is_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let mut process =
            Process::spawn_logging_to("seq", Command::new("seq").args(["1", "50"]), &path).unwrap();
        assert!(wait_until(Duration::from_secs(10), || process
            .exit_status()
            .is_some()));
        assert_eq!(process.log_tail(2), "49\n50");
        drop(process);
        assert!(fs::read_to_string(&path).unwrap().starts_with("1\n2\n"));
    }

    #[test]
    fn a_process_that_exited_is_not_running_even_unreaped() {
        assert!(is_running(std::process::id()));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not waited for: a zombie until reaped below.
        let gone = wait_until(Duration::from_secs(10), || !is_running(pid));
        assert!(gone, "{pid} still runs");
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "reaped too early"
        );
        child.wait().unwrap();
        assert!(!is_running(pid));
    }
}
