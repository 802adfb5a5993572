//! The client side of the UAPI socket, for commands that talk to a running
//! daemon (`wait-ready`, `reload`): which interfaces are served here, what
//! one says of its peers, and asking it to reload its config (and waiting
//! for its answer).
//!
//! The `get` reply carries the interface's private key: it is read into a
//! buffer that is zeroed when dropped, and only the peers' public data is
//! kept ([`read_get_reply`]).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::control::socket::SOCKET_DIR;
use crate::control::status::{STATUS_VERSION, Status};
use crate::control::uapi::{ReloadAnswer, ReloadAnswerError, read_get_reply, read_reload_answer};
use crate::dataplane::PeerState;

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

/// How long `sentrymesh reload` waits for the daemon's answer: it reads the
/// config and the files it names, and applies the change, before it answers.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// `sentrymesh reload`: asks the `sentrymesh up` daemon serving `interface`
/// (or the only interface running) to re-read its config and apply what
/// changed, and waits for its answer. Returns the interface and what
/// changed.
///
/// # Errors
///
/// When no daemon answers, the one that does is not `sentrymesh up` (a
/// `sentrymesh wg` or another WireGuard is configured with `wg` instead),
/// or the daemon refused the config: then the error is its reason, and the
/// daemon runs on with the config it had.
pub fn request_reload(interface: Option<&str>) -> Result<(String, String)> {
    let name = choose_interface(interface)?;
    let path = socket_path(&name);
    let mut stream = UnixStream::connect(&path)
        .with_context(|| format!("no daemon answers on {}", path.display()))?;
    stream.set_read_timeout(Some(RELOAD_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.write_all(b"reload=1\n\n")?;
    match read_reload_answer(BufReader::new(stream)) {
        Ok(ReloadAnswer::Reloaded(summary)) => Ok((name, summary)),
        Ok(ReloadAnswer::Refused(reason)) => {
            bail!("{name} refused the config; it runs on unchanged:\n{reason}")
        }
        Err(ReloadAnswerError::Truncated) => bail!(
            "{name} gave no answer to the reload: it is not served by `sentrymesh up` \
             (configure it with `wg` instead), or its daemon stopped"
        ),
        Err(error) => Err(error).with_context(|| format!("the answer on {}", path.display())),
    }
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

/// The status of the interface served at `path` (`docs/status.md`): the
/// answer to `get_status=1`.
///
/// # Errors
///
/// When the daemon does not answer, closes the connection (a WireGuard
/// implementation other than sentrymesh's does not know the request), or
/// answers with something other than a status of this version.
pub fn status(path: &Path) -> Result<Status> {
    let mut stream =
        UnixStream::connect(path).with_context(|| format!("connecting to {}", path.display()))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.write_all(b"get_status=1\n\n")?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .with_context(|| format!("reading the reply on {}", path.display()))?;
    let Some(document) = line
        .strip_suffix('\n')
        .and_then(|l| l.strip_prefix("status="))
    else {
        bail!(
            "{} gave no status: not a sentrymesh daemon (`wg show` reads any WireGuard), or one \
             that stopped",
            path.display()
        );
    };
    let status: Status = serde_json::from_str(document)
        .with_context(|| format!("the status on {}", path.display()))?;
    if status.version != STATUS_VERSION {
        bail!(
            "the daemon on {} speaks status version {}; this sentrymesh reads {STATUS_VERSION}",
            path.display(),
            status.version
        );
    }
    let mut errno = String::new();
    reader.read_line(&mut errno)?;
    if errno.trim_end() != "errno=0" {
        bail!(
            "the daemon on {} answered {}",
            path.display(),
            errno.trim_end()
        );
    }
    Ok(status)
}
