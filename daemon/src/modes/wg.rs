//! `sentrymesh wg [-f] IFNAME`: a drop-in for `wireguard-go IFNAME`, driven by
//! the stock `wg` tool through the UAPI socket and usable by wg-quick as its
//! `WG_QUICK_USERSPACE_IMPLEMENTATION`.
//!
//! Unless told to stay in the foreground (`-f`, or `WG_PROCESS_FOREGROUND=1`)
//! the process forks, and the parent exits once the child has created the
//! device and the socket, with the child's verdict. After setup the process
//! keeps only its network capabilities. It runs until SIGINT or
//! SIGTERM, until the device is deleted, or until its socket file is removed.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::control::socket::ControlSocket;
use crate::control::status::StatusSource;
use crate::dataplane::device::{Device, Offloads, bind_socket, create_tun};
use crate::dataplane::handle;
use crate::sys::capabilities;
use crate::sys::process::{self, Forked};
use crate::sys::tun;

/// How often the device and the socket file are checked for removal.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Runs the interface `name`, in the foreground or as a daemon, with the
/// kernel offloads `offloads` allows.
///
/// # Errors
///
/// When the device or the socket cannot be set up, or the run loop fails.
pub fn run(name: &str, foreground: bool, offloads: Offloads) -> Result<()> {
    if !tun::is_valid_name(name) {
        bail!("{name:?} is not a valid interface name");
    }
    if foreground {
        return serve(name, None, offloads);
    }
    let (read_end, write_end) = process::pipe().context("creating a pipe")?;
    // No other thread exists yet: the runtime starts after this.
    match process::fork_detached().context("forking into the background")? {
        Forked::Child => {
            drop(read_end);
            serve(name, Some(write_end), offloads)
        }
        Forked::Parent => {
            drop(write_end);
            let mut verdict = [1u8];
            let mut read_end = std::fs::File::from(read_end);
            // The child writes 0 once it is ready; if it dies first, the read
            // sees the end of the pipe and we report failure.
            let ready = read_end.read(&mut verdict).is_ok_and(|n| n == 1) && verdict[0] == 0;
            if ready {
                Ok(())
            } else {
                bail!("the background process failed to start interface {name}")
            }
        }
    }
}

/// Sets up and runs the interface; tells `ready` (the parent) how setup went.
fn serve(name: &str, ready: Option<OwnedFd>, offloads: Offloads) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let setup = async {
            let tun = create_tun(name, offloads)
                .with_context(|| format!("creating TUN device {name}"))?;
            let device = Device::new(tun, bind_socket(0, None, offloads)?)?;
            let control = ControlSocket::bind(name)?;
            anyhow::Ok((device, control))
        };
        let (device, control) = match setup.await {
            Ok(parts) => parts,
            Err(error) => {
                report(ready, false);
                return Err(error);
            }
        };
        if let Err(error) = capabilities::keep_only_network() {
            tracing::warn!("could not drop capabilities: {error}");
        }
        tracing::info!(
            "interface {name} is up; UAPI at {}",
            control.path().display()
        );
        if ready.is_some() {
            report(ready, true);
            detach_stdio();
        }
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        // The UAPI socket is the device's only client here.
        let (_, uapi, commands) = handle::channel();
        let watcher = tokio::spawn(watch_for_exit(
            name.to_owned(),
            control.path().to_owned(),
            shutdown_tx,
        ));
        let result = tokio::select! {
            result = device.run(commands, shutdown_rx) => result,
            () = control.serve(uapi, StatusSource::Wg, None) => Ok(()),
        };
        watcher.abort();
        tracing::info!("interface {name} stopped");
        result
    })
}

/// Turns `shutdown` on at SIGINT or SIGTERM, or when the device or the socket
/// file disappears.
async fn watch_for_exit(name: String, socket: std::path::PathBuf, shutdown: watch::Sender<bool>) {
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot watch for signals; stopping");
        let _ = shutdown.send(true);
        return;
    };
    let device = Path::new("/sys/class/net").join(&name);
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = tick.tick() => {
                if !socket.exists() {
                    tracing::info!("{} was removed", socket.display());
                    break;
                }
                if !device.exists() {
                    tracing::info!("device {name} was deleted");
                    break;
                }
            }
        }
    }
    let _ = shutdown.send(true);
}

/// Writes the child's verdict to the parent, if there is one.
fn report(ready: Option<OwnedFd>, ok: bool) {
    if let Some(fd) = ready {
        let _ = std::fs::File::from(fd).write_all(&[u8::from(!ok)]);
    }
}

/// Points standard input, output and error at `/dev/null`, as a daemon's are.
fn detach_stdio() {
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    let _ = process::redirect_stdio(&null);
}
