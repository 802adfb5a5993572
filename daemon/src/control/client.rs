//! The client side of the UAPI socket, for commands that talk to a running
//! daemon (`wait-ready`, `reload`): which interfaces are served here, which
//! process serves one, what it says of its peers, and asking it to reload
//! its config.
//!
//! The `get` reply carries the interface's private key: it is read into a
//! buffer that is zeroed when dropped, and only the peers' public data is
//! kept ([`read_get_reply`]).

use std::ffi::OsStr;
use std::io::{self, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::control::socket::SOCKET_DIR;
use crate::control::uapi::read_get_reply;
use crate::dataplane::PeerState;
use crate::sys::{process, sockopt};

/// How long a request to a daemon may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The UAPI socket of `interface`.
pub fn socket_path(interface: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{interface}.sock"))
}

/// The interface to talk to: `interface` if given, else the only one with a
/// socket in the UAPI directory.
///
/// # Errors
///
/// When none is given and there is not exactly one socket.
pub fn choose_interface(interface: Option<&str>) -> Result<String> {
    if let Some(interface) = interface {
        return Ok(interface.to_owned());
    }
    let mut names: Vec<String> = std::fs::read_dir(SOCKET_DIR)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| {
                    let name = entry.file_name().into_string().ok()?;
                    name.strip_suffix(".sock").map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    match names.as_slice() {
        [only] => Ok(only.clone()),
        [] => {
            bail!("no interface is running (no socket in {SOCKET_DIR}); name one with --interface")
        }
        several => bail!(
            "several interfaces are running ({}); name one with --interface",
            several.join(", ")
        ),
    }
}

/// The process that serves the socket at `path`, from the kernel's record of
/// the listening peer (`SO_PEERCRED`).
///
/// # Errors
///
/// When nothing answers on the socket.
pub fn server_pid(path: &Path) -> io::Result<u32> {
    sockopt::peer_pid(&UnixStream::connect(path)?)
}

/// `sentrymesh reload`: sends SIGHUP to the `sentrymesh up` daemon serving
/// `interface` (or the only interface running), which re-reads its config
/// and applies what changed. Returns the interface and the daemon's pid.
///
/// # Errors
///
/// When no daemon answers, or the one that does is not `sentrymesh up` (a
/// `sentrymesh wg` or another WireGuard is configured with `wg` instead, and
/// SIGHUP would stop it).
pub fn request_reload(interface: Option<&str>) -> Result<(String, u32)> {
    let name = choose_interface(interface)?;
    let path = socket_path(&name);
    let pid =
        server_pid(&path).with_context(|| format!("no daemon answers on {}", path.display()))?;
    let arguments = std::fs::read(format!("/proc/{pid}/cmdline"))
        .with_context(|| format!("reading the command line of process {pid}"))?;
    let program = arguments
        .split(|&byte| byte == 0)
        .next()
        .unwrap_or_default();
    let is_sentrymesh = Path::new(OsStr::from_bytes(program))
        .file_name()
        .is_some_and(|name| name == "sentrymesh");
    let is_native = arguments
        .split(|&byte| byte == 0)
        .any(|argument| argument == b"up");
    if !(is_sentrymesh && is_native) {
        bail!(
            "{name} is not served by `sentrymesh up` (process {pid}); configure it with `wg` instead"
        );
    }
    process::send_hangup(pid).with_context(|| format!("signalling process {pid}"))?;
    Ok((name, pid))
}

/// The peers of the interface served at `path`, as its `get` reply gives
/// them.
///
/// # Errors
///
/// When the daemon does not answer, answers with an error, or the reply is
/// not a UAPI `get` reply.
pub fn peers(path: &Path) -> Result<Vec<PeerState>> {
    let mut stream =
        UnixStream::connect(path).with_context(|| format!("connecting to {}", path.display()))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.write_all(b"get=1\n\n")?;
    read_get_reply(BufReader::new(stream))
        .with_context(|| format!("the reply on {}", path.display()))
}
