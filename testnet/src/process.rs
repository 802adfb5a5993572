//! The helper programs a testnet runs (`ip`, `ping`): each with a timeout,
//! so a testnet cannot hang, and in a process group of its own, so that a
//! Ctrl-C at the terminal reaches only the testnet, which then removes
//! everything in order rather than having its helpers die half-way.

use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The longest a helper command may take.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// What a finished command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The exit status; `None` when it was killed at its timeout.
    pub status: Option<ExitStatus>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Finished {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }
}

/// Prepares `command` for [`run`] and [`spawn_detached`]: a process group
/// of its own.
fn own_group(command: &mut Command) -> &mut Command {
    command.process_group(0)
}

/// Runs `command`, killing it after `timeout`.
///
/// # Errors
///
/// When it cannot be started.
pub(super) fn run(command: &mut Command, timeout: Duration) -> Result<Finished> {
    let mut child = own_group(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let status = wait_or_kill(&mut child, timeout);
    let text = |reader: thread::JoinHandle<String>| reader.join().unwrap_or_default();
    Ok(Finished {
        status,
        stdout: text(stdout),
        stderr: text(stderr),
    })
}

/// Runs `command` and returns its standard output.
///
/// # Errors
///
/// When it cannot be started, fails or times out; the message has its
/// standard error.
pub(super) fn run_ok(command: &mut Command) -> Result<String> {
    let description = describe(command);
    let finished = run(command, COMMAND_TIMEOUT)?;
    match finished.status {
        Some(status) if status.success() => Ok(finished.stdout),
        Some(status) => bail!(
            "`{description}` failed ({status}): {}",
            finished.stderr.trim()
        ),
        None => bail!("`{description}` did not finish within {COMMAND_TIMEOUT:?}"),
    }
}

/// Runs `ip ARGS`.
///
/// # Errors
///
/// As [`run_ok`].
pub(super) fn ip(args: &[&str]) -> Result<String> {
    run_ok(Command::new("ip").args(args))
}

/// Starts `command` in a process group of its own, for a process that
/// outlives the call (a daemon).
///
/// # Errors
///
/// When it cannot be started.
pub(super) fn spawn_detached(command: &mut Command) -> Result<Child> {
    own_group(command)
        .spawn()
        .with_context(|| format!("cannot start `{}`", describe(command)))
}

/// The command line of `command`, for messages.
fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|arg| arg.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Waits for `child` up to `timeout`, then kills it; `None` when killed.
fn wait_or_kill(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Sends `signal` to process `pid`; a process already gone is fine.
pub(super) fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 0 {
        return;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // the pid is positive (never a process group) and one this testnet
    // started or found inside a namespace it created.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes;
/// returns whether it held.
pub(super) fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_status_and_timeout() {
        let finished = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(finished.stdout, "out\n");
        assert_eq!(finished.stderr, "err\n");
        assert_eq!(finished.status.and_then(|status| status.code()), Some(3));
        assert!(!finished.success());

        let slow = run(Command::new("sleep").arg("10"), Duration::from_millis(100)).unwrap();
        assert!(slow.status.is_none());

        let message = run_ok(Command::new("sh").args(["-c", "echo nope >&2; exit 1"]))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("`sh -c echo nope >&2; exit 1` failed"),
            "{message}"
        );
        assert!(message.ends_with(": nope"), "{message}");
    }
}
