//! Running a helper program (`ip`, `wg`, `ping`, …) to its end: with a
//! timeout, so nothing can hang a test or a testnet, and in a process group
//! of its own, so a Ctrl-C at the terminal reaches only the caller, which
//! then cleans up in order rather than having its helpers die half-way.
//!
//! Input and output go through anonymous files, not pipes: a program that
//! leaves a daemon behind (wg-quick starting a userspace WireGuard) would
//! otherwise hold the pipes, and the call, open for as long as the daemon
//! runs.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The longest a helper command may take in [`run_ok`].
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// How often a running command is looked at.
const POLL: Duration = Duration::from_millis(5);

/// What a finished command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The exit status (a signal when it was killed at its timeout).
    pub status: ExitStatus,
    /// Whether it was killed at its timeout.
    pub timed_out: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Finished {
    /// Whether the command exited with status 0 in time.
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }
}

/// Why a command could not be run, or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program could not be started (not installed, say).
    #[error("cannot start `{command}`: {source}")]
    Start {
        /// The command line.
        command: String,
        /// Why.
        source: io::Error,
    },
    /// The files for its input and output could not be made or read.
    #[error("`{command}`: its input or output: {source}")]
    Output {
        /// The command line.
        command: String,
        /// Why.
        source: io::Error,
    },
    /// It exited with another status than 0.
    #[error("`{command}` failed ({status}): {output}")]
    Failed {
        /// The command line.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// Its standard error, then its standard output, trimmed.
        output: String,
    },
    /// It did not exit within its timeout, and was killed.
    #[error("`{command}` did not finish within {timeout:?}")]
    TimedOut {
        /// The command line.
        command: String,
        /// How long it had.
        timeout: Duration,
    },
}

/// Runs `command` with `input` on its standard input, killing it after
/// `timeout`.
///
/// # Errors
///
/// When it cannot be started, or its output files cannot be made or read;
/// a command that fails or times out is a [`Finished`] that says so.
pub fn run(
    command: &mut Command,
    input: &[u8],
    timeout: Duration,
) -> Result<Finished, CommandError> {
    let line = describe(command);
    let output_error = |source| CommandError::Output {
        command: line.clone(),
        source,
    };
    let stdin = input_file(input).map_err(output_error)?;
    let stdout = tempfile::tempfile().map_err(output_error)?;
    let stderr = tempfile::tempfile().map_err(output_error)?;
    command
        .process_group(0)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout.try_clone().map_err(output_error)?))
        .stderr(Stdio::from(stderr.try_clone().map_err(output_error)?));
    let mut child = command.spawn().map_err(|source| CommandError::Start {
        command: line.clone(),
        source,
    })?;
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
            Ok(None) | Err(_) => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().map_err(output_error)?;
            }
        }
    };
    Ok(Finished {
        status,
        timed_out,
        stdout: read_back(stdout).map_err(output_error)?,
        stderr: read_back(stderr).map_err(output_error)?,
    })
}

/// Runs `command` with `input` like [`run`], within [`COMMAND_TIMEOUT`], and
/// returns its standard output.
///
/// # Errors
///
/// When it cannot be started, fails or times out; the message has its
/// standard error.
pub fn run_ok(command: &mut Command, input: &[u8]) -> Result<String, CommandError> {
    let finished = run(command, input, COMMAND_TIMEOUT)?;
    if finished.timed_out {
        return Err(CommandError::TimedOut {
            command: describe(command),
            timeout: COMMAND_TIMEOUT,
        });
    }
    if !finished.status.success() {
        let mut output = finished.stderr.trim().to_owned();
        let stdout = finished.stdout.trim();
        if !stdout.is_empty() {
            if !output.is_empty() {
                output.push('\n');
            }
            output.push_str(stdout);
        }
        return Err(CommandError::Failed {
            command: describe(command),
            status: finished.status,
            output,
        });
    }
    Ok(finished.stdout)
}

/// Where `program` is: on `PATH`, else in one of `extra` directories.
pub fn find_program(program: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The command line of `command`, for messages.
pub(crate) fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|arg| arg.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An anonymous file holding `input`, read from its start.
fn input_file(input: &[u8]) -> io::Result<File> {
    let mut file = tempfile::tempfile()?;
    file.write_all(input)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// Everything written to `file`, as text.
fn read_back(mut file: File) -> io::Result<String> {
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_status_input_and_timeout() {
        let finished = run(
            Command::new("sh").args(["-c", "cat; echo err >&2; exit 3"]),
            b"out\n",
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(finished.stdout, "out\n");
        assert_eq!(finished.stderr, "err\n");
        assert_eq!(finished.status.code(), Some(3));
        assert!(!finished.timed_out);
        assert!(!finished.success());

        let slow = run(
            Command::new("sleep").arg("10"),
            b"",
            Duration::from_millis(100),
        )
        .unwrap();
        assert!(slow.timed_out);
        assert!(!slow.success());

        let message = run_ok(
            Command::new("sh").args(["-c", "echo nope >&2; exit 1"]),
            b"",
        )
        .unwrap_err()
        .to_string();
        assert!(
            message.starts_with("`sh -c echo nope >&2; exit 1` failed"),
            "{message}"
        );
        assert!(message.ends_with(": nope"), "{message}");

        let missing = run_ok(&mut Command::new("/nonexistent/program"), b"").unwrap_err();
        assert!(matches!(missing, CommandError::Start { .. }), "{missing}");
    }

    #[test]
    fn a_daemon_left_behind_does_not_hold_the_call() {
        let started = Instant::now();
        let finished = run(
            Command::new("sh").args(["-c", "sleep 60 & echo $!"]),
            b"",
            Duration::from_secs(50),
        )
        .unwrap();
        let daemon: u32 = finished.stdout.trim().parse().unwrap();
        crate::signal(daemon, libc::SIGKILL);
        assert!(finished.success(), "{finished:?}");
        assert!(started.elapsed() < Duration::from_secs(50));
    }
}
