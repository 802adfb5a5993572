//! The process-wide system calls: forking into the background, pipes,
//! standard descriptors, the umask, the effective user, signals and file
//! locks.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// Which side of a [`fork_detached`] this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forked {
    /// The original process.
    Parent,
    /// The new process, detached from the terminal's session.
    Child,
}

/// Forks; the child leaves the terminal's session (`setsid`).
///
/// Only a process of one thread may fork and go on running any code (after
/// a fork only the calling thread exists in the child, and a lock another
/// thread held stays locked forever), so this checks that first.
///
/// # Errors
///
/// When the process has more than one thread, or as `fork(2)`.
pub(crate) fn fork_detached() -> io::Result<Forked> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(io::Error::other(format!(
            "cannot fork a process of {threads} threads"
        )));
    }
    // SAFETY: the process has one thread (checked above, and no thread of
    // ours starts another concurrently: there is none), so the child may
    // run any code.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: setsid has no memory preconditions; in a new child it
            // cannot fail (the child is no process group leader).
            unsafe { libc::setsid() };
            Ok(Forked::Child)
        }
        _ => Ok(Forked::Parent),
    }
}

/// A pipe, both ends closed on exec: (read end, write end).
///
/// # Errors
///
/// As `pipe2(2)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, which has room for
    // two.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Points standard input, output and error at `file` (a daemon's at
/// `/dev/null`).
///
/// # Errors
///
/// As `dup2(2)`.
pub(crate) fn redirect_stdio(file: &File) -> io::Result<()> {
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which this process
        // owns; `file` stays open for the call.
        if unsafe { libc::dup2(file.as_raw_fd(), target) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The effective user id of this process.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Takes an exclusive lock on `file` without waiting (`flock(2)`); it is
/// released when the file is closed. `WouldBlock` when another holds it.
///
/// # Errors
///
/// As `flock(2)`.
pub(crate) fn try_lock_exclusive(file: &impl AsFd) -> io::Result<()> {
    // SAFETY: flock(2) on a borrowed open descriptor; it touches no memory
    // of ours.
    if unsafe { libc::flock(file.as_fd().as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the process's umask to `mask` and returns the one before.
pub(crate) fn swap_umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask(2) only swaps the process's file mode mask; it cannot
    // fail and touches no memory of ours.
    unsafe { libc::umask(mask) }
}

/// Umask 077 while it lives, then the umask before it.
///
/// The umask is the process's: a file another thread creates meanwhile is
/// made private too, which errs on the safe side.
#[derive(Debug)]
pub(crate) struct PrivateUmask(libc::mode_t);

impl PrivateUmask {
    /// Sets umask 077 until the value is dropped.
    pub(crate) fn set() -> Self {
        Self(swap_umask(0o077))
    }
}

impl Drop for PrivateUmask {
    fn drop(&mut self) {
        swap_umask(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_exclusive_lock_would_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = File::create(&path).unwrap();
        let second = File::open(&path).unwrap();
        try_lock_exclusive(&first).unwrap();
        let refused = try_lock_exclusive(&second).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::WouldBlock);
        drop(first);
        try_lock_exclusive(&second).unwrap();
    }

    #[test]
    fn a_pipe_carries_bytes_from_its_write_end() {
        use std::io::{Read, Write};
        let (read_end, write_end) = pipe().unwrap();
        File::from(write_end).write_all(b"ok").unwrap();
        let mut got = Vec::new();
        File::from(read_end).read_to_end(&mut got).unwrap();
        assert_eq!(got, b"ok");
    }

    #[test]
    fn a_process_of_many_threads_does_not_fork() {
        // The test harness runs tests on threads of their own.
        let worker =
            std::thread::spawn(|| std::thread::park_timeout(std::time::Duration::from_secs(5)));
        assert!(fork_detached().is_err());
        worker.thread().unpark();
        worker.join().unwrap();
    }
}
