//! The systemd notification protocol (`sd_notify`), spoken directly: one
//! datagram per state change to the socket named by `NOTIFY_SOCKET`. Without
//! that variable (not started by systemd) every call does nothing.
//!
//! A notification never waits: when the manager's queue is full, the call
//! fails at once. The daemon's runtime sends them, and a manager that stopped
//! reading must not stop the mesh with it.

use std::env;
use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The service manager's notification socket, if there is one.
#[derive(Debug)]
pub(crate) struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
}

impl Notifier {
    /// Connects to `$NOTIFY_SOCKET`; `None` when it is not set.
    ///
    /// # Errors
    ///
    /// When the variable names an address no socket can be opened for.
    pub(crate) fn from_env() -> io::Result<Option<Self>> {
        env::var_os("NOTIFY_SOCKET")
            .map(|path| Self::connect(&path))
            .transpose()
    }

    /// A notifier for the socket at `path` (a leading `@` names an abstract
    /// socket, as systemd writes it).
    ///
    /// # Errors
    ///
    /// When `path` is not a socket address.
    pub(crate) fn connect(path: &OsStr) -> io::Result<Self> {
        let address = match path.as_bytes().strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None => SocketAddr::from_pathname(path)?,
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Self { socket, address })
    }

    /// Sends `state` lines, e.g. `READY=1` or `STATUS=waiting for peers`.
    ///
    /// # Errors
    ///
    /// When the datagram cannot be sent: `WouldBlock` when the manager's
    /// queue is full.
    pub(crate) fn notify(&self, state: &str) -> io::Result<()> {
        self.socket.send_to_addr(state.as_bytes(), &self.address)?;
        Ok(())
    }
}

/// How often to ping the watchdog: half the interval systemd gives in
/// `WATCHDOG_USEC`, if it asked for pings for this process.
pub(crate) fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_reach_the_notification_socket() {
        let dir = std::env::temp_dir().join(format!("sentrymesh-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let manager = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::connect(path.as_os_str()).unwrap();
        notifier.notify("READY=1\nSTATUS=up").unwrap();
        let mut buf = [0u8; 64];
        let len = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=up");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_manager_that_stops_reading_does_not_stop_the_sender() {
        let dir = std::env::temp_dir().join(format!("sentrymesh-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _manager = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::connect(path.as_os_str()).unwrap();
        // A blocking socket would wait here for good once the queue is full.
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let refused = (0..100_000).find_map(|i| {
                notifier
                    .notify(&format!("STATUS=waiting for peers: {i} of 9"))
                    .err()
            });
            let _ = done.send(refused.map(|error| error.kind()));
        });
        let refused = result
            .recv_timeout(Duration::from_secs(10))
            .expect("a notification waited for the manager");
        assert_eq!(refused, Some(io::ErrorKind::WouldBlock));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn abstract_addresses_are_understood() {
        let name = format!("sentrymesh-notify-{}", std::process::id());
        let manager =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let notifier = Notifier::connect(OsStr::new(&format!("@{name}"))).unwrap();
        notifier.notify("WATCHDOG=1").unwrap();
        let mut buf = [0u8; 16];
        let len = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }
}
