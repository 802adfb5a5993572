//! The UAPI socket, `/var/run/wireguard/IFNAME.sock`, through which the `wg`
//! tool (and wg-quick) reads and changes the interface.
//!
//! Each connection is served by its own task: it frames requests with
//! [`RequestDecoder`], turns each into a call on the [`UapiHandle`] (a
//! `set=1` is parsed into a typed change, a refusal's [`ChangeError`]
//! becomes the errno `wg` expects), and writes the answer back. A
//! `reload=1` (from `sentrymesh reload`) goes to the daemon's supervisor,
//! when it has one, and its answer back to the client.
//!
//! [`ChangeError`]: crate::dataplane::change::ChangeError

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use crate::control::status::StatusSource;
use crate::control::uapi::{
    Errno, Limits, Request, RequestDecoder, RequestError, write_get_response, write_reload_answer,
    write_status, write_status_document,
};
use crate::dataplane::change::ChangeError;
use crate::dataplane::handle::UapiHandle;
use crate::sys::process::PrivateUmask;

/// The directory of UAPI sockets that `wg` looks in.
pub const SOCKET_DIR: &str = "/var/run/wireguard";

/// A reload asked for on the socket: where the daemon answers with what
/// changed, or with why it refused the config (nothing changed then).
pub type ReloadRequest = oneshot::Sender<Result<String, String>>;

/// The listening UAPI socket; its file is removed when this is dropped.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    interface: String,
}

impl ControlSocket {
    /// Binds `/var/run/wireguard/IFNAME.sock`: the directory is created with
    /// mode 0755, and the socket is bound under umask 077, so it is its
    /// owner's alone from the moment it exists (as wireguard-go does; a
    /// `chmod` after `bind` would leave a moment in which anyone could
    /// connect and configure the interface). A socket another process still
    /// answers on is left alone (the interface is taken); a stale one, left by
    /// a process that died, is replaced.
    ///
    /// # Errors
    ///
    /// When a live daemon serves the interface, or the file system refuses.
    pub fn bind(interface: &str) -> Result<Self> {
        Self::bind_in(Path::new(SOCKET_DIR), interface)
    }

    fn bind_in(dir: &Path, interface: &str) -> Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{interface}.sock"));
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                bail!(
                    "{} is in use: another daemon serves interface {interface}",
                    path.display()
                );
            }
            fs::remove_file(&path)
                .with_context(|| format!("removing the stale socket {}", path.display()))?;
        }
        let listener = {
            let _private = PrivateUmask::set();
            UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?
        };
        Ok(Self {
            listener,
            path,
            interface: interface.to_owned(),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves connections until the device's run loop goes away: a
    /// `get_status=1` is answered from the device and `status`; reload
    /// requests go to `reloads`, and without it (an interface configured
    /// with `wg`) they are refused.
    pub async fn serve(
        &self,
        device: UapiHandle,
        status: StatusSource,
        reloads: Option<mpsc::Sender<ReloadRequest>>,
    ) {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    let server = Server {
                        device: device.clone(),
                        status: status.clone(),
                        interface: self.interface.clone(),
                        reloads: reloads.clone(),
                    };
                    tokio::spawn(async move {
                        if let Err(error) = serve_connection(stream, server).await {
                            tracing::debug!("UAPI connection ended: {error}");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!("accepting a UAPI connection: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
            if device.device().is_closed() {
                return;
            }
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What a connection is answered from.
struct Server {
    device: UapiHandle,
    status: StatusSource,
    interface: String,
    reloads: Option<mpsc::Sender<ReloadRequest>>,
}

/// Answers the requests of one connection, in order, until it closes.
async fn serve_connection(mut stream: UnixStream, server: Server) -> io::Result<()> {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut input = vec![0u8; 4096];
    // A `get` reply holds the private key: zeroed when the connection ends.
    let mut reply = Zeroizing::new(Vec::new());
    loop {
        let read = stream.read(&mut input).await?;
        if read == 0 {
            decoder.handle_eof();
        }
        let mut pending = &input[..read];
        loop {
            let used = decoder.handle_input(pending);
            pending = &pending[used..];
            let Some(request) = decoder.poll_request() else {
                break;
            };
            reply.clear();
            if !answer(request, &server, &mut reply).await {
                return Ok(());
            }
            stream.write_all(&reply).await?;
        }
        if decoder.is_closed() {
            return Ok(());
        }
    }
}

/// Writes the answer to one request into `reply`; `false` when the run loop
/// has gone away.
async fn answer(
    request: Result<Request, RequestError>,
    server: &Server,
    reply: &mut Vec<u8>,
) -> bool {
    let device = &server.device;
    match request {
        Ok(Request::Status) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            match server
                .status
                .status(&server.interface, device.device(), now)
                .await
            {
                Some(status) => write_status_document(&status, reply),
                None => return false,
            }
        }
        Ok(Request::Get) => match device.uapi_state().await {
            Ok(state) => write_get_response(&state, reply),
            Err(_) => return false,
        },
        Ok(Request::Set(change)) => match device.device().apply(change).await {
            Ok(()) => write_status(Ok(()), reply),
            Err(ChangeError::DeviceGone(_)) => return false,
            Err(error) => {
                write_status(Err(Errno::of_change(&error)), reply);
                tracing::info!("refused a UAPI set: {:#}", anyhow::Error::new(error));
            }
        },
        Ok(Request::Reload) => {
            let Some(reloads) = &server.reloads else {
                write_reload_answer(
                    Err(
                        "this interface is configured with `wg` (sentrymesh wg), not from a \
                         config file: there is nothing to reload",
                    ),
                    reply,
                );
                return true;
            };
            let (answer, answered) = oneshot::channel();
            if reloads.send(answer).await.is_err() {
                return false;
            }
            match answered.await {
                Ok(result) => write_reload_answer(result.as_deref().map_err(String::as_str), reply),
                Err(_) => return false,
            }
        }
        Err(error) => {
            tracing::debug!("refused a UAPI request: {error}");
            if let Some(errno) = error.errno() {
                write_status(Err(errno), reply);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_live_socket_is_kept_and_a_stale_one_replaced() {
        let dir = std::env::temp_dir().join(format!("sentrymesh-control-{}", std::process::id()));
        let live = ControlSocket::bind_in(&dir, "smtest0").unwrap();
        let mode = fs::metadata(live.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "the socket is its owner's alone");
        let error = ControlSocket::bind_in(&dir, "smtest0").unwrap_err();
        assert!(format!("{error:#}").contains("in use"), "{error:#}");
        drop(live);
        assert!(!dir.join("smtest0.sock").exists(), "removed on drop");

        // A socket file nobody listens on any more is stale.
        drop(std::os::unix::net::UnixListener::bind(dir.join("smtest1.sock")).unwrap());
        assert!(dir.join("smtest1.sock").exists());
        let replaced = ControlSocket::bind_in(&dir, "smtest1").unwrap();
        drop(replaced);
        let _ = fs::remove_dir(&dir);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_socket_is_private_from_its_bind() {
        // Under the most open umask, the socket's mode is what `bind` gave
        // it: 0777 less umask 077. A socket bound openly and restricted by a
        // `chmod` afterwards (reachable by anyone in between) would show
        // the chmod's 0600 instead.
        let dir = std::env::temp_dir().join(format!("sentrymesh-umask-{}", std::process::id()));
        let before = crate::sys::process::swap_umask(0);
        let bound = ControlSocket::bind_in(&dir, "smtest2");
        let during = crate::sys::process::swap_umask(before);
        let bound = bound.unwrap();
        let mode = fs::metadata(bound.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "bound under umask 077, not chmodded after");
        assert_eq!(during, 0, "the umask before the bind is restored");
        drop(bound);
        let _ = fs::remove_dir(&dir);
    }
}
