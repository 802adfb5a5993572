//! Ctrl-C (and SIGTERM, SIGHUP) while namespaces are being built or used
//! (a testnet): the signal only sets a flag; the program notices it at its
//! next wait ([`check`], [`sleep`]), stops, and removes everything it made
//! on the way out, as on any other error.
//!
//! Without [`install`] (a test) the flag is never set and the signals keep
//! their default actions.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Set by the signal handler.
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// How often a wait looks at the flag.
const POLL: Duration = Duration::from_millis(50);

/// Makes SIGINT, SIGTERM and SIGHUP request a stop instead of ending the
/// process at once.
///
/// # Errors
///
/// When a handler cannot be installed.
pub fn install() -> io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is a valid value of the plain C struct
        // (no handler, empty mask, no flags) before the fields are set.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = handle as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; `action` is initialised and outlives the call;
        // the old action is not asked for.
        if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn handle(_signal: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// A stop was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Fails when a stop was requested.
///
/// # Errors
///
/// [`Interrupted`] when it was.
pub fn check() -> Result<(), Interrupted> {
    if requested() {
        return Err(Interrupted);
    }
    Ok(())
}

/// Sleeps for `duration`, or less when a stop is requested meanwhile;
/// returns whether the whole time passed.
pub fn sleep(duration: Duration) -> bool {
    let deadline = Instant::now() + duration;
    loop {
        if requested() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        thread::sleep(POLL.min(deadline - now));
    }
}
