//! The client side of the UAPI socket, for commands that talk to a running
//! daemon (`wait-ready`, `reload`): which interfaces are served here, which
//! process serves one, when its peers last completed a handshake, and asking
//! it to reload its config.
//!
//! The `get` reply carries the interface's private key: it is read into a
//! buffer that is zeroed when dropped, and only the handshake times are kept.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

use crate::control::SOCKET_DIR;

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
    let stream = UnixStream::connect(path)?;
    let mut credentials = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED writes one `ucred` to the pointer, whose size is
    // given in `len`; the descriptor is the open stream's.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut credentials).cast(),
            &mut len,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    u32::try_from(credentials.pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
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
    // SAFETY: kill has no memory preconditions.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) } != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("signalling process {pid}"));
    }
    Ok((name, pid))
}

/// The time of each peer's last completed handshake, since the Unix epoch
/// (`None`: never), as the daemon serving `path` reports them.
///
/// # Errors
///
/// When the daemon does not answer, answers with an error, or the reply is
/// not a UAPI `get` reply.
pub fn handshake_times(path: &Path) -> Result<Vec<Option<Duration>>> {
    let mut stream =
        UnixStream::connect(path).with_context(|| format!("connecting to {}", path.display()))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.write_all(b"get=1\n\n")?;
    parse_handshake_times(BufReader::new(stream))
        .with_context(|| format!("reading the reply on {}", path.display()))
}

/// Reads a `get` reply up to its `errno=` line, keeping each peer's handshake
/// time.
fn parse_handshake_times(mut reply: impl BufRead) -> Result<Vec<Option<Duration>>> {
    let mut peers: Vec<Option<Duration>> = Vec::new();
    let mut line = Zeroizing::new(String::new());
    loop {
        line.clear();
        if reply.read_line(&mut line)? == 0 {
            bail!("the reply ended before its errno line");
        }
        let Some((key, value)) = line.trim_end().split_once('=') else {
            bail!("a reply line is not KEY=VALUE");
        };
        let number = || {
            value
                .parse::<u64>()
                .with_context(|| format!("{key} is not a number"))
        };
        match key {
            "public_key" => peers.push(None),
            "last_handshake_time_sec" => {
                let seconds = number()?;
                if let Some(last) = peers.last_mut() {
                    *last = (seconds > 0).then(|| Duration::from_secs(seconds));
                }
            }
            "last_handshake_time_nsec" => {
                let nanos = number()?;
                if let Some(Some(time)) = peers.last_mut() {
                    *time += Duration::from_nanos(nanos.min(999_999_999));
                }
            }
            "errno" => {
                let errno = number()?;
                if errno != 0 {
                    bail!("the daemon answered errno {errno}");
                }
                return Ok(peers);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_gives_each_peers_handshake_time() {
        let reply = "private_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a\n\
                     listen_port=51820\n\
                     public_key=b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33\n\
                     last_handshake_time_sec=1795246265\n\
                     last_handshake_time_nsec=500000000\n\
                     allowed_ip=198.18.0.2/32\n\
                     public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376\n\
                     last_handshake_time_sec=0\n\
                     last_handshake_time_nsec=0\n\
                     errno=0\n\n";
        let times = parse_handshake_times(reply.as_bytes()).unwrap();
        assert_eq!(
            times,
            [Some(Duration::new(1_795_246_265, 500_000_000)), None]
        );
    }

    #[test]
    fn an_error_reply_or_a_cut_one_is_refused() {
        let error = parse_handshake_times(&b"errno=22\n\n"[..]).unwrap_err();
        assert!(error.to_string().contains("errno 22"), "{error}");
        let cut = parse_handshake_times(&b"listen_port=51820\n"[..]).unwrap_err();
        assert!(cut.to_string().contains("ended"), "{cut}");
        let garbage = parse_handshake_times(&b"hello\n"[..]).unwrap_err();
        assert!(garbage.to_string().contains("KEY=VALUE"), "{garbage}");
    }
}
