//! `sentrymesh up -c FILE.toml`: the native mode. The configuration is read
//! and checked completely before anything on the system changes; then the
//! TUN device is created with its MTU, addresses and routes, the interface is
//! configured with one typed change through its [`DeviceHandle`] (the
//! call a UAPI `set` ends in too), systemd is told the
//! service is ready (once `[ready] min_trusted_peers` peers have a live
//! session), and the UAPI socket serves `wg show`.
//!
//! SIGHUP, or `reload=1` on the UAPI socket (`sentrymesh reload`, which
//! waits for the answer), re-reads the file and applies the difference:
//! peers that stayed keep their sessions, removed peers go, new ones come,
//! addresses, routes and the MTU follow the file. The log line, and the
//! answer, say what changed; a refused file changes nothing, and the answer
//! says why.
//!
//! With `[metrics] listen`, the counters are served to Prometheus (see
//! [`crate::control::metrics`]).

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use sentrymesh_tunnel::PresharedKey;
use sentrymesh_types::{IpNet, PublicKey};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{self, Config};
use crate::control::metrics;
use crate::control::socket::{ControlSocket, ReloadRequest};
use crate::control::status::StatusSource;
use crate::dataplane::change::{AllowedIpChange, ConfigChange, PeerChange, PeerUpdate};
use crate::dataplane::device::{Device, Offloads, bind_socket, create_tun};
use crate::dataplane::handle::{self, DeviceHandle};
use crate::modes::config_changes::ConfigChanges;
use crate::modes::mesh_member::{MeshInputs, MeshMember, MeshReload, Requests};
use crate::modes::routes::Routes;
use crate::modes::watchdog::{Check, Watchdog};
use crate::sys::capabilities;
use crate::sys::netlink;
use crate::sys::systemd::Notifier;
use crate::sys::tun::{self, Tun};
use crate::sys::udp::DataSocket;

/// Runs the interface the configuration at `path` describes, with the
/// kernel offloads `offloads` allows.
///
/// # Errors
///
/// When the configuration is invalid (before anything is changed), when
/// setting up the device fails, or when the run loop fails.
pub fn run(path: &Path, offloads: Offloads) -> Result<()> {
    // Everything that can refuse the start is tried before anything on the
    // system changes, so a refusal leaves it as it was: the config and its
    // key files, the interface name, the ports (bound and held), the mesh
    // member's card, known objects and state directory (locked, tried for
    // writing), the metrics listener. Then the TUN device is made; what is
    // added to it goes with it, should a later step fail.
    let config = config::load(path).map_err(|error| anyhow!("{error}"))?;
    let name = config.interface.name.as_str();
    check_name_free(name)?;
    let socket = bind_socket(
        config.interface.listen_port.map_or(0, |port| port.get()),
        config.interface.fwmark.map(|mark| mark.get()),
        offloads,
    )?;
    let member = match config.mesh {
        Some(_) => Some(MeshMember::start(MeshInputs::read(&config)?)?),
        None => None,
    };
    let metrics = config.metrics.map(metrics::bind).transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let parts = Parts {
        socket,
        member,
        metrics,
    };
    runtime.block_on(serve(path.to_owned(), config, parts, offloads))
}

/// What `run` made ready before the TUN device: the interface's socket,
/// the mesh member and the metrics listener.
struct Parts {
    socket: DataSocket,
    member: Option<MeshMember>,
    metrics: Option<std::net::TcpListener>,
}

/// Refuses an interface name already in use: creating a TUN device of that
/// name would take over a persistent one, or fail only after the steps
/// before it.
fn check_name_free(name: &str) -> Result<()> {
    match netlink::interface_index(name) {
        Ok(_) => bail!(
            "an interface named {name} already exists (another sentrymesh or WireGuard \
             interface, or another device); stop the one that holds it, or choose another \
             [interface] name"
        ),
        Err(error) if error.raw_os_error() == Some(libc::ENODEV) => Ok(()),
        Err(error) => Err(error).with_context(|| format!("looking for an interface named {name}")),
    }
}

async fn serve(path: PathBuf, config: Config, parts: Parts, offloads: Offloads) -> Result<()> {
    let Parts {
        socket,
        member,
        metrics,
    } = parts;
    let name = config.interface.name.as_str().to_owned();
    let tun = set_up_device(&config, offloads)?;
    let device = Device::new(tun, socket)?;
    // Last, as its file tells `wg` and the tests the interface is there. A
    // stale socket (a crashed daemon's) is replaced; a live one cannot be
    // there, as its daemon's interface would have refused the name. Should
    // this fail, the device goes with the process, and with it its
    // addresses.
    let control = ControlSocket::bind(&name)?;
    if let Err(error) = capabilities::keep_only_network() {
        tracing::warn!("could not drop capabilities: {error}");
    }
    let notifier = Notifier::from_env().context("connecting to systemd")?;
    let watchdog = Watchdog::from_env(vec![(name.clone(), device.heartbeat())]);
    let (handle, uapi, commands) = handle::channel();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (mesh_reloads, mesh_reloads_rx) = mpsc::channel(1);
    let (reload_requests, reload_requests_rx) = mpsc::channel(1);
    let (configured, is_configured) = oneshot::channel();
    let (mesh_counters, mesh_counters_rx) = mpsc::channel(4);
    let (mesh_views, mesh_views_rx) = mpsc::channel(4);
    let min_peers = Arc::new(AtomicUsize::new(config.min_trusted_peers));
    let status = match member {
        Some(_) => StatusSource::Mesh {
            min_peers: min_peers.clone(),
            member: mesh_views,
        },
        None => StatusSource::Native {
            min_peers: min_peers.clone(),
        },
    };
    let sources = metrics::Sources {
        interface: name.clone(),
        device: handle.clone(),
        mesh: member.is_some().then_some(mesh_counters),
    };
    let metrics = async {
        match metrics {
            Some(listener) => metrics::serve(listener, sources).await,
            None => std::future::pending().await,
        }
    };
    let mesh = async {
        // The member's first gossip starts handshakes: not before the
        // interface has its private key and port.
        if is_configured.await.is_err() {
            return std::future::pending().await;
        }
        match member {
            Some(member) => {
                member
                    .run(
                        &name,
                        handle.clone(),
                        mesh_reloads_rx,
                        Requests {
                            counters: mesh_counters_rx,
                            views: mesh_views_rx,
                        },
                    )
                    .await
            }
            None => std::future::pending().await,
        }
    };
    let supervisor = supervise(
        path,
        config,
        handle.clone(),
        Reloads {
            requests: reload_requests_rx,
            mesh: mesh_reloads,
        },
        configured,
        Systemd {
            notifier,
            watchdog,
            min_peers,
        },
        shutdown_tx,
    );
    tokio::select! {
        result = device.run(commands, shutdown_rx) => result,
        () = control.serve(uapi, status, Some(reload_requests)) => Ok(()),
        result = supervisor => result,
        result = mesh => result.context("the mesh member stopped"),
        result = metrics => result.context("serving metrics"),
    }
}

/// Creates the TUN device with its MTU and addresses, and brings it up.
fn set_up_device(config: &Config, offloads: Offloads) -> Result<Tun> {
    let interface = &config.interface;
    let name = interface.name.as_str();
    let tun = create_tun(name, offloads).with_context(|| format!("creating TUN device {name}"))?;
    tun.set_mtu(u32::from(interface.mtu))
        .with_context(|| format!("setting the MTU of {name}"))?;
    let index = netlink::interface_index(name)?;
    for address in &interface.addresses {
        ignore_existing(netlink::add_address(
            index,
            address.addr(),
            address.prefix_len(),
        ))
        .with_context(|| {
            format!(
                "adding {}/{} to {name}",
                address.addr(),
                address.prefix_len()
            )
        })?;
    }
    tun.set_up()
        .with_context(|| format!("bringing {name} up"))?;
    Ok(tun)
}

fn ignore_existing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Configures the interface, reports readiness, pings the watchdog while the
/// data path turns, reloads on SIGHUP or a reload request and stops on
/// SIGINT or SIGTERM. The routes of the configured peers' allowed IPs
/// follow each reload, and go when this returns.
async fn supervise(
    path: PathBuf,
    mut config: Config,
    device: DeviceHandle,
    reloads: Reloads,
    configured: oneshot::Sender<()>,
    systemd: Systemd,
    shutdown: watch::Sender<bool>,
) -> Result<()> {
    let Systemd {
        notifier,
        watchdog,
        min_peers,
    } = systemd;
    let Reloads {
        requests: mut reload_requests,
        mesh: mesh_reloads,
    } = reloads;
    let name = config.interface.name.as_str().to_owned();
    let mut routes =
        Routes::of_interface(&name).with_context(|| format!("finding interface {name}"))?;
    routes
        .add_missing(&routes_of(&config))
        .context("routing the peers' allowed IPs")?;
    apply(&device, &config)
        .await
        .context("configuring the interface")?;
    let _ = configured.send(());
    // Whether systemd heard `state` (or there is no systemd to hear it).
    let notify = |state: &str| match &notifier {
        Some(notifier) => match notifier.notify(state) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!("telling systemd {state:?}: {error}");
                false
            }
        },
        None => true,
    };
    tracing::info!("interface {name} is up {}", peers_of(&config));

    let mut hangup = signal(SignalKind::hangup())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut watchdog_tick = tokio::time::interval(
        watchdog
            .as_ref()
            .map_or(Duration::from_secs(3600), Watchdog::interval),
    );
    let mut readiness_check = tokio::time::interval(READINESS_CHECK_INTERVAL);
    let mut readiness = Readiness::Waiting { reported: None };
    // The first report comes before anything else: READY=1 at once when no
    // peers are waited for.
    readiness_check.tick().await;
    let live = device.live_peers().await?.len();
    readiness.update(live, config.min_trusted_peers, &name, &notify);
    loop {
        tokio::select! {
            _ = readiness_check.tick(), if !matches!(readiness, Readiness::Ready) => {
                let live = device.live_peers().await?.len();
                readiness.update(live, config.min_trusted_peers, &name, &notify);
            }
            reload_asked = async {
                tokio::select! {
                    _ = hangup.recv() => None,
                    Some(answer) = reload_requests.recv() => Some(answer),
                }
            } => {
                let _ = notify("RELOADING=1");
                let reloaded = reload(&path, &mut config, &device, &mut routes, &mesh_reloads);
                let (status, answer) = match reloaded.await {
                    Ok(changes) => {
                        min_peers.store(config.min_trusted_peers, Ordering::Relaxed);
                        tracing::info!(
                            "reloaded {}: {changes} ({})",
                            path.display(),
                            peers_of(&config)
                        );
                        (
                            format!("interface {name} is up {}", peers_of(&config)),
                            Ok(changes.to_string()),
                        )
                    }
                    Err(error) => {
                        tracing::error!("reload refused, nothing changed: {error:#}");
                        (
                            format!("last reload refused: {error}"),
                            Err(format!("{error:#}")),
                        )
                    }
                };
                // The client may have given up waiting: nobody to tell.
                if let Some(reply) = reload_asked {
                    let _ = reply.send(answer);
                }
                // systemd waits for READY=1 after RELOADING=1; while the
                // gate is shut it gets it with the next readiness report.
                match readiness {
                    Readiness::Ready => {
                        let _ = notify(&format!("READY=1\nSTATUS={status}"));
                    }
                    Readiness::Waiting { ref mut reported } => *reported = None,
                }
            }
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = watchdog_tick.tick(), if watchdog.is_some() => {
                match watchdog.as_ref().map(|watchdog| watchdog.check(Instant::now())) {
                    Some(Check::Ping) => {
                        let _ = notify("WATCHDOG=1");
                    }
                    Some(Check::Withhold { interface, age }) => tracing::error!(
                        "the data path of {interface} has not turned for {age:?}; \
                         withholding the watchdog ping, so systemd restarts the service"
                    ),
                    None => {}
                }
            }
        }
    }
    let _ = notify("STOPPING=1");
    let _ = shutdown.send(true);
    Ok(())
}

/// Where reloads are asked for and passed on: the requests of the UAPI
/// socket (SIGHUP asks too), and the mesh member's channel.
struct Reloads {
    requests: mpsc::Receiver<ReloadRequest>,
    mesh: mpsc::Sender<MeshReload>,
}

/// The service manager, if one started the daemon: where notifications go,
/// and the watchdog it asked for.
struct Systemd {
    notifier: Option<Notifier>,
    watchdog: Option<Watchdog>,
    /// The readiness gate's `min_trusted_peers` as last loaded, which
    /// `sentrymesh status` reads too.
    min_peers: Arc<AtomicUsize>,
}

/// How often the readiness gate counts the live sessions while it is shut.
const READINESS_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Whether systemd has been told the service is ready: not before
/// `[ready] min_trusted_peers` peers have a live session.
enum Readiness {
    /// Not yet; `reported` is the number of live sessions last put in
    /// `STATUS=`.
    Waiting { reported: Option<usize> },
    /// `READY=1` was sent.
    Ready,
}

impl Readiness {
    /// Takes the number of `live` sessions: opens the gate when there are
    /// `min` of them, or else reports the count when it changed. `notify`
    /// says whether systemd heard; `READY=1` is sent again until it did.
    fn update(&mut self, live: usize, min: usize, name: &str, notify: &impl Fn(&str) -> bool) {
        let Readiness::Waiting { reported } = self else {
            return;
        };
        if live >= min {
            let ready =
                format!("READY=1\nSTATUS=interface {name} is up; {live} peers with a live session");
            if notify(&ready) {
                tracing::info!("interface {name} is ready: {live} peers with a live session");
                *self = Readiness::Ready;
            }
        } else if *reported != Some(live) {
            tracing::info!("interface {name}: {live} of {min} peers with a live session");
            let _ = notify(&format!(
                "STATUS=waiting for peers: {live} of {min} with a live session"
            ));
            *reported = Some(live);
        }
    }
}

/// Re-reads the configuration and applies it: the peers (or the mesh's
/// inputs), and the addresses, routes and MTU that changed. Returns what
/// changed.
async fn reload(
    path: &Path,
    current: &mut Config,
    device: &DeviceHandle,
    routes: &mut Routes,
    mesh_reloads: &mpsc::Sender<MeshReload>,
) -> Result<ConfigChanges> {
    let config = config::load(path).map_err(|error| anyhow!("{error}"))?;
    let name = current.interface.name.as_str();
    if config.interface.name.as_str() != name {
        bail!("the interface name changed; restart the service to rename it");
    }
    if config.metrics != current.metrics {
        bail!("[metrics] listen changed; restart the service to move the metrics listener");
    }
    if config.mesh.is_some() != current.mesh.is_some() {
        bail!("[mesh] came or went; restart the service to join or leave a mesh");
    }
    if config.mesh.is_some()
        && config.interface.private_key.public_key() != current.interface.private_key.public_key()
    {
        // A member's WireGuard key is its identity in the mesh: its peers
        // hold its card for the old key, and would be left with a host
        // they can no longer reach, and the mesh with a card it cannot use.
        bail!(
            "the private key changed; a mesh member's key is named by its card, so rotate it \
             with a restart (new key and new card together), not a reload"
        );
    }
    let mesh_inputs = match config.mesh {
        Some(_) => Some(MeshInputs::read(&config)?),
        None => None,
    };
    let index = netlink::interface_index(name)?;
    let (old_addresses, new_addresses) = (addresses(current), addresses(&config));
    let new_routes = routes_of(&config);
    // What can fail comes first; a refusal takes back what it had added, so
    // the interface, its routes and its peers stay as they were.
    let changes = ConfigChanges::between(current, &config);
    let mut added = Additions::new(index, name);
    let mut added_routes = Vec::new();
    let additions = async {
        for &(address, prefix_len) in new_addresses.difference(&old_addresses) {
            added.address(address, prefix_len)?;
        }
        if config.interface.mtu != current.interface.mtu {
            added.mtu(current.interface.mtu, config.interface.mtu)?;
        }
        added_routes = routes.add_missing(&new_routes)?;
        apply(device, &config).await
    };
    let mesh_applied = async {
        additions.await?;
        match mesh_inputs {
            Some(inputs) => {
                let (answer, applied) = oneshot::channel();
                mesh_reloads
                    .send((inputs, answer))
                    .await
                    .context("the mesh member stopped")?;
                applied.await.context("the mesh member stopped")?
            }
            None => Ok(()),
        }
    };
    let applied = mesh_applied.await;
    if let Err(error) = applied {
        routes.take_back(added_routes);
        added.take_back();
        if let Err(restoring) = apply(device, current).await {
            tracing::error!("restoring the interface after a refused reload: {restoring:#}");
        }
        return Err(error);
    }
    routes.remove_stale(&new_routes);
    for &(address, prefix_len) in old_addresses.difference(&new_addresses) {
        if let Err(error) = netlink::delete_address(index, address, prefix_len) {
            tracing::warn!("removing {address}/{prefix_len}: {error}");
        }
    }
    *current = config;
    Ok(changes)
}

/// The addresses a reload gave the interface, and the MTU it had before the
/// reload set another, so that a reload refused halfway can take them back.
struct Additions<'a> {
    index: u32,
    name: &'a str,
    addresses: Vec<(IpAddr, u8)>,
    old_mtu: Option<u16>,
}

impl<'a> Additions<'a> {
    fn new(index: u32, name: &'a str) -> Self {
        Self {
            index,
            name,
            addresses: Vec::new(),
            old_mtu: None,
        }
    }

    /// Sets the device's MTU from `old` to `new` (the data path reads it
    /// again from the kernel).
    fn mtu(&mut self, old: u16, new: u16) -> Result<()> {
        tun::set_mtu(self.name, u32::from(new))
            .with_context(|| format!("setting the MTU of {} to {new}", self.name))?;
        self.old_mtu = Some(old);
        Ok(())
    }

    /// Adds `address/prefix_len`, unless the interface has it already.
    fn address(&mut self, address: IpAddr, prefix_len: u8) -> Result<()> {
        match netlink::add_address(self.index, address, prefix_len) {
            Ok(()) => self.addresses.push((address, prefix_len)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error).context(format!("adding {address}/{prefix_len}")),
        }
        Ok(())
    }

    /// Removes every address added, and sets the MTU back.
    fn take_back(self) {
        if let Some(mtu) = self.old_mtu {
            if let Err(error) = tun::set_mtu(self.name, u32::from(mtu)) {
                tracing::warn!("setting the MTU of {} back to {mtu}: {error}", self.name);
            }
        }
        for (address, prefix_len) in self.addresses {
            if let Err(error) = netlink::delete_address(self.index, address, prefix_len) {
                tracing::warn!("taking back {address}/{prefix_len}: {error}");
            }
        }
    }
}

/// Where the peers of `config` come from, for the log and systemd's status.
fn peers_of(config: &Config) -> String {
    match config.mesh {
        Some(_) => "as a mesh member".to_owned(),
        None => format!("with {} peers", config.peers.len()),
    }
}

/// The interface addresses a configuration gives the device.
fn addresses(config: &Config) -> BTreeSet<(IpAddr, u8)> {
    config
        .interface
        .addresses
        .iter()
        .map(|address| (address.addr(), address.prefix_len()))
        .collect()
}

/// The routes a configuration sends through the device: every allowed IP.
fn routes_of(config: &Config) -> BTreeSet<IpNet> {
    config
        .peers
        .iter()
        .flat_map(|peer| peer.allowed_ips.iter().copied())
        .collect()
}

/// Brings the interface to the configuration: one change with every
/// configured peer, removing the peers that are no longer configured.
async fn apply(device: &DeviceHandle, config: &Config) -> Result<()> {
    let current: BTreeSet<PublicKey> = device
        .state()
        .await?
        .peers
        .iter()
        .map(|peer| peer.public_key)
        .collect();
    device
        .apply(config_change(config, &current))
        .await
        .context("the interface refused the configuration")
}

/// The change that turns an interface with the peers `current` into the one
/// `config` describes.
fn config_change(config: &Config, current: &BTreeSet<PublicKey>) -> ConfigChange {
    let configured: BTreeSet<PublicKey> = config.peers.iter().map(|peer| peer.public_key).collect();
    // A mesh member's peers are the mesh's to add and remove.
    let unmanaged = match config.mesh {
        Some(_) => &BTreeSet::new(),
        None => current,
    };
    let removals = unmanaged
        .difference(&configured)
        .map(|public_key| PeerChange::Remove(*public_key));
    let updates = config.peers.iter().map(|peer| {
        PeerChange::Set(PeerUpdate {
            preshared_key: Some(
                peer.preshared_key
                    .clone()
                    .unwrap_or_else(PresharedKey::none),
            ),
            endpoint: peer.endpoint,
            persistent_keepalive: Some(peer.persistent_keepalive.map_or(0, |interval| {
                u16::try_from(interval.as_secs()).unwrap_or(u16::MAX)
            })),
            replace_allowed_ips: true,
            allowed_ips: peer
                .allowed_ips
                .iter()
                .copied()
                .map(AllowedIpChange::Add)
                .collect(),
            ..PeerUpdate::new(peer.public_key)
        })
    });
    ConfigChange {
        private_key: Some(Some(config.interface.private_key.clone())),
        listen_port: config.interface.listen_port.map(|port| port.get()),
        fwmark: Some(config.interface.fwmark.map(|mark| mark.get())),
        conntrack_max: config.mesh.as_ref().map(|mesh| mesh.firewall.conntrack_max),
        replace_peers: false,
        peers: removals.chain(updates).collect(),
    }
}
