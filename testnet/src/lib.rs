//! A whole mesh on one machine: `sentrymesh-testnet` builds N operators'
//! hosts — one hidden producer and M sentries each — out of network
//! namespaces, gives them keys, cards, sealed bundles and vouches as
//! operators would, runs `sentrymesh up` on every host, waits until the
//! mesh has formed, checks it against what the roles require, and removes
//! everything it made.
//!
//! ```text
//!   Testnet::create ─► plan ─► topology ─► identities ─► daemons
//!                     (names,  (switch +    (operator keys,  (config per host,
//!                      addresses) namespaces, WG keys, cards,  sentrymesh up in
//!                                 veths)      bundles, vouches, its namespace)
//!                                             known dirs)
//!   wait_ready ─► every pair that must peer: a live session at both ends (UAPI)
//!                 and pings answered both ways; every daemon READY=1
//!   report     ─► peers and handshake ages (UAPI), ping matrix ─► violations()
//!   drop       ─► daemons stopped, namespaces deleted, UAPI sockets and files removed
//! ```
//!
//! The pieces: [`plan`] (names and the address plan, what the roles
//! require), `topology` (namespaces, the switch, links), `identities`
//! (operators, keys, cards, bundles, known directories), `daemons` (configs,
//! starting, readiness, stopping), `status` (peers over UAPI), `formation`
//! (whether the mesh formed), `probes` (the ping matrix), [`report`] (the
//! judgement and its printout), [`progress`]
//! (what the command shows while the testnet builds), `leftovers`
//! (what a testnet killed outright left), and `command` (the
//! `sentrymesh-testnet` command). The namespace plumbing under them —
//! namespaces, veths, processes, commands with timeouts, Ctrl-C, the
//! neighbour table — is `sentrymesh_netns`, which the daemon's namespace
//! tests build on too (through their lab, `sentrymesh-lab`).
//!
//! What it does not do: touch any link, address or route of the machine's
//! own namespace, or send to any address outside 198.18.0.0/15 (the
//! underlay is 198.18.0.0/16, the overlay 198.19.0.0/16) but loopback.
//!
//! Everything is removed when the [`Testnet`] is dropped — after a
//! successful run, on an error half-way through, and (in the command) on
//! Ctrl-C: the daemons are stopped (SIGTERM, then SIGKILL), any other
//! process left in a namespace too, the namespaces deleted with their
//! veths, the UAPI sockets in `/var/run/wireguard` and the testnet's
//! directory removed. Only a SIGKILL of the testnet itself leaves them,
//! and the next testnet removes them (`leftovers.rs`).

#![forbid(unsafe_code)]

mod command;
mod daemons;
mod formation;
mod identities;
mod leftovers;
pub mod plan;
mod probes;
pub mod progress;
pub mod report;
mod status;
mod topology;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use rand_core::{OsRng, RngCore as _};
use sentrymesh::dataplane::Offloads;
pub use sentrymesh::dataplane::PeerState;
use sentrymesh::modes::ready;
use sentrymesh_mesh::{OperatorId, Role};
pub use sentrymesh_netns::Finished;
use sentrymesh_netns::echo::{self, Pinger};
use sentrymesh_netns::neighbours::{self, Raised};
use sentrymesh_netns::{self as netns, COMMAND_TIMEOUT, find_program, interrupt, is_root};
use sentrymesh_types::{PublicKey, UnixTime};

pub use self::command::{TestnetArgs, run};
use self::daemons::Daemons;
use self::formation::Formation;
pub use self::identities::TestnetOperator;
use self::plan::{Plan, RunTag, WORKDIR_PREFIX};
pub use self::progress::Stage;
pub use self::report::{HiddenSeen, HostReport, MeshReport, PeerRow, Ping, Violation};
use self::topology::Topology;

/// The testnets this process created, for unique names.
static SERIAL: AtomicU32 = AtomicU32::new(0);

/// How long `wait_ready` waits between looks when it has nothing to ping.
const READY_POLL: Duration = Duration::from_millis(200);
/// How long `wait_ready` waits for the replies to one round of pings.
const PING_WAIT: Duration = Duration::from_secs(1);
/// How long daemons may take to bring their interfaces up: a ceiling far
/// above what they take, for a daemon that hangs. (Each reads and checks
/// its known directory first: 2,601 signed objects each in a 200-host
/// testnet, all 150 sentries at once on two cores.)
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(300);

/// What testnet to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestnetSpec {
    /// How many operators (1 to [`plan::MAX_OPERATORS`]).
    pub operators: usize,
    /// How many sentries each operator has besides its producer (1 to
    /// [`plan::MAX_SENTRIES`]).
    pub sentries: usize,
    /// The `sentrymesh` binary the hosts run (`sentrymesh-testnet` passes
    /// the one beside itself, or the one it was given).
    pub binary: PathBuf,
    /// The kernel offloads the daemons use (`--offloads`).
    pub offloads: Offloads,
}

/// One host of a running testnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestnetHost {
    /// Its name, also its card's: `op<a>-producer`, `op<a>-sentry-<s>`.
    pub name: String,
    /// Its short label in tables: `1P`, `1S2`.
    pub label: String,
    /// Its role.
    pub role: Role,
    /// Its operator's number, from 1.
    pub operator: usize,
    /// Its operator's id.
    pub operator_id: OperatorId,
    /// Its network namespace.
    pub namespace: String,
    /// Its WireGuard interface (the UAPI socket
    /// `/var/run/wireguard/IFNAME.sock`).
    pub ifname: String,
    /// Its underlay address (prefix /16).
    pub underlay: Ipv4Addr,
    /// Its overlay address (prefix /32).
    pub overlay: Ipv4Addr,
    /// Where its peers reach it; `None` for a hidden host.
    pub endpoint: Option<SocketAddr>,
    /// Its WireGuard public key.
    pub wg_public_key: PublicKey,
    /// Its directory: `config.toml`, `wg.key`, `host.card`, `state/`,
    /// `daemon.log` (its config names its operator's known directory).
    pub dir: PathBuf,
    /// The hosts the roles require it to peer with, by name.
    pub expected_peers: Vec<String>,
}

/// How long each part of building a testnet took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreationTimes {
    /// The namespaces, their links and addresses.
    pub network: Duration,
    /// The operators' keys, cards, bundles and vouches, the hosts' files
    /// and configs.
    pub identities: Duration,
    /// From the first daemon's start until every daemon served its
    /// interface.
    pub daemons: Duration,
}

/// A running testnet. Dropping it removes everything it made.
#[derive(Debug)]
pub struct Testnet {
    // Dropped in this order: daemons, then the sockets in the namespaces,
    // then the namespaces, then files, then the neighbour caps put back.
    daemons: Daemons,
    /// An ICMP socket in each host's namespace, in the plan's order.
    pingers: Vec<Pinger>,
    #[expect(dead_code, reason = "held for its Drop, which deletes the namespaces")]
    topology: Topology,
    plan: Plan,
    hosts: Vec<TestnetHost>,
    operators: Vec<TestnetOperator>,
    by_key: BTreeMap<PublicKey, usize>,
    /// The pairs of hosts that must peer, each once (lower index first).
    peerings: Vec<(usize, usize)>,
    started: Instant,
    times: CreationTimes,
    workdir: Workdir,
    /// The kernel's neighbour caps, if this testnet raised them: put back
    /// last, once everything else is gone.
    neighbour_caps: Option<Raised>,
}

impl Testnet {
    /// Builds the testnet `spec` describes and starts its daemons; the
    /// mesh forms from here on ([`Testnet::wait_ready`]).
    ///
    /// # Errors
    ///
    /// When not root, `ip` is missing, the size is refused, or creating
    /// anything fails; what was made is removed.
    pub fn create(spec: &TestnetSpec) -> Result<Self> {
        Self::create_with_progress(spec, &mut |_| {})
    }

    /// Builds the testnet as [`create`](Self::create) does, telling
    /// `progress` each time a daemon started ([`Stage::Starting`]).
    ///
    /// The namespaces and links are made with a few `ip -batch` runs, the
    /// operators' known directories filled side by side, every config
    /// written and checked, and only then the daemons started, several at
    /// once: the public hosts, and once they serve, the hidden ones.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create).
    pub fn create_with_progress(
        spec: &TestnetSpec,
        progress: &mut dyn FnMut(Stage),
    ) -> Result<Self> {
        require_root()?;
        if find_program("ip", &[]).is_none() {
            bail!("`ip` is not installed (it is in Debian's iproute2 package)");
        }
        leftovers::sweep();
        let tag = RunTag {
            pid: std::process::id(),
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
        };
        let plan = Plan::new(spec.operators, spec.sentries, tag)?;
        let needed = neighbours::needed(plan.peerings());
        let neighbour_caps = neighbours::raise_to_fit(needed).with_context(|| {
            let advice = neighbours::limit()
                .and_then(|limit| neighbours::advice(needed, limit))
                .unwrap_or_default();
            format!("raising the kernel's neighbour table caps for {needed} entries. {advice}")
        })?;
        let workdir = Workdir::create(tag)?;
        let at = Instant::now();
        let topology = Topology::create(&plan)?;
        let host_namespaces: Vec<&netns::Namespace> = topology.hosts().iter().collect();
        // Unique among this machine's testnets, as the namespaces are.
        let identifier = (tag.pid as u16) ^ (tag.serial as u16).rotate_left(8);
        let pingers = Pinger::open_all(&host_namespaces, identifier)
            .context("opening an ICMP socket in each host's namespace")?;
        let network = at.elapsed();
        let at = Instant::now();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_secs();
        let (operators, files) = identities::issue(&plan, workdir.path(), UnixTime(now))?;
        let mut hosts = Vec::new();
        let mut by_key = BTreeMap::new();
        for (index, (planned, files)) in plan.hosts().iter().zip(&files).enumerate() {
            by_key.insert(files.wg_public_key, index);
            hosts.push(TestnetHost {
                name: planned.name.clone(),
                label: planned.label.clone(),
                role: planned.role,
                operator: planned.operator,
                operator_id: operators[planned.operator - 1].id,
                namespace: planned.namespace.clone(),
                ifname: planned.ifname.clone(),
                underlay: planned.underlay,
                overlay: planned.overlay,
                endpoint: planned
                    .endpoint()
                    .map(|(ip, port)| SocketAddr::new(ip.into(), port)),
                wg_public_key: files.wg_public_key,
                dir: files.dir.clone(),
                expected_peers: plan
                    .expected_peers(index)
                    .into_iter()
                    .map(|peer| plan.hosts()[peer].name.clone())
                    .collect(),
            });
        }
        // Every config written and checked before any daemon starts, so
        // that they start back to back.
        let mut configs = Vec::new();
        for (index, (planned, files)) in plan.hosts().iter().zip(&files).enumerate() {
            let operator = &operators[planned.operator - 1];
            let text = daemons::config_text(
                planned,
                operator,
                &operators,
                &files.known_dir,
                plan.expected_peer_count(index),
            );
            configs.push(
                daemons::write_config(files, &text)
                    .with_context(|| format!("the config of {}", planned.name))?,
            );
        }
        let identities = at.elapsed();
        // Public hosts first, and up before the hidden ones start: a
        // producer cannot be reached until it has sent a handshake, and a
        // first one lost to a sentry not yet listening is retried only after
        // WireGuard's 5 s.
        let mut daemons = Daemons::default();
        let started = Instant::now();
        let mut started_daemons = 0;
        let hosts_count = plan.hosts().len();
        for hidden in [false, true] {
            let starts: Vec<daemons::Start<'_>> = plan
                .hosts()
                .iter()
                .zip(&files)
                .enumerate()
                .filter(|(_, (planned, _))| planned.role.is_hidden() == hidden)
                .map(|(index, (host, files))| daemons::Start {
                    index,
                    host,
                    namespace: &topology.hosts()[index],
                    files,
                    config: &configs[index],
                })
                .collect();
            daemons.start_all(spec, &starts, &mut || {
                started_daemons += 1;
                progress(Stage::Starting {
                    started: started_daemons,
                    hosts: hosts_count,
                });
            })?;
            daemons.wait_serving(DAEMON_START_TIMEOUT)?;
        }
        let peerings = plan.peering_pairs();
        Ok(Self {
            daemons,
            topology,
            pingers,
            plan,
            hosts,
            operators,
            by_key,
            peerings,
            started,
            times: CreationTimes {
                network,
                identities,
                daemons: started.elapsed(),
            },
            workdir,
            neighbour_caps,
        })
    }

    /// How long each part of [`create`](Self::create) took.
    pub fn creation_times(&self) -> CreationTimes {
        self.times
    }

    /// The kernel's neighbour table caps, if this testnet raised them for
    /// its run (they are put back when it is dropped).
    pub fn neighbour_caps_raised(&self) -> Option<&Raised> {
        self.neighbour_caps.as_ref()
    }

    /// When the first daemon started: the mesh forms from then on.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The hosts, operator by operator, producer first.
    pub fn hosts(&self) -> &[TestnetHost] {
        &self.hosts
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&TestnetHost> {
        self.hosts.iter().find(|host| host.name == name)
    }

    /// The operators.
    pub fn operators(&self) -> &[TestnetOperator] {
        &self.operators
    }

    /// The address plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The testnet's directory: `operators/` and `hosts/` (see the
    /// `identities` module).
    pub fn dir(&self) -> &Path {
        self.workdir.path()
    }

    /// A command that runs `program` inside `host`'s namespace.
    pub fn command_in(&self, host: &TestnetHost, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &host.namespace])
            .arg(program);
        command
    }

    /// Runs `program args` inside `host`'s namespace, killed after 20 s.
    ///
    /// # Errors
    ///
    /// When it cannot be started.
    pub fn run_in(&self, host: &TestnetHost, program: &str, args: &[&str]) -> Result<Finished> {
        let mut command = self.command_in(host, program);
        command.args(args);
        Ok(netns::run(&mut command, b"", COMMAND_TIMEOUT)?)
    }

    /// The log of `host`'s daemon so far.
    pub fn log(&self, host: &TestnetHost) -> String {
        self.index_of(host)
            .and_then(|index| self.daemons.get(index))
            .map(daemons::Daemon::log)
            .unwrap_or_default()
    }

    /// The last `lines` lines of `host`'s daemon log.
    pub fn log_tail(&self, host: &TestnetHost, lines: usize) -> String {
        self.index_of(host)
            .and_then(|index| self.daemons.get(index))
            .map(|daemon| daemon.log_tail(lines))
            .unwrap_or_default()
    }

    fn index_of(&self, host: &TestnetHost) -> Option<usize> {
        self.hosts.iter().position(|other| other.name == host.name)
    }

    /// The peers `host`'s daemon reports now.
    ///
    /// # Errors
    ///
    /// When it does not answer on its UAPI socket.
    pub fn peers(&self, host: &TestnetHost) -> Result<Vec<PeerState>> {
        status::peers(&host.ifname)
    }

    /// Waits until the mesh has formed: every pair of hosts the roles
    /// require to peer has a live session at both ends and answers pings
    /// over the overlay both ways, and every daemon has reported
    /// `READY=1`. Returns `false` when `timeout` passed first.
    ///
    /// # Errors
    ///
    /// When a daemon exited (the message ends with its log), or a stop was
    /// requested ([`interrupt`]).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<bool> {
        self.wait_ready_with_progress(timeout, &mut |_| {})
    }

    /// Waits as [`wait_ready`](Self::wait_ready) does, telling `progress`
    /// how far the mesh formed ([`Stage::Forming`]) each time it looks.
    ///
    /// Each look asks only the daemons that still lack a session over
    /// their UAPI sockets, and pings (in this process, see
    /// `sentrymesh_netns::echo`) only the pairs that have not answered
    /// yet: a ping is also what makes a session where none is.
    ///
    /// # Errors
    ///
    /// As [`wait_ready`](Self::wait_ready).
    pub fn wait_ready_with_progress(
        &mut self,
        timeout: Duration,
        progress: &mut dyn FnMut(Stage),
    ) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let names: Vec<String> = self.hosts.iter().map(|host| host.name.clone()).collect();
        let mut formation = Formation::new(&names, &self.peerings);
        loop {
            interrupt::check()?;
            self.daemons.poll();
            if let Some(daemon) = self
                .daemons
                .first_exited()
                .and_then(|i| self.daemons.get(i))
            {
                bail!("{}", daemon.exit_message());
            }
            let asked: Vec<usize> = (0..self.hosts.len())
                .filter(|&index| !formation.has_all_sessions(index))
                .collect();
            let ifnames: Vec<&str> = asked
                .iter()
                .map(|&index| self.hosts[index].ifname.as_str())
                .collect();
            for (&index, answer) in asked.iter().zip(status::peers_of(&ifnames)) {
                if let Ok(peers) = answer {
                    let live = self
                        .peer_rows(&peers)
                        .into_iter()
                        .filter(PeerRow::is_live)
                        .filter_map(|row| row.host)
                        .collect();
                    formation.handle_sessions(index, &live);
                }
            }
            let unanswered = formation.unanswered_pings();
            if !unanswered.is_empty() {
                let overlays: Vec<Ipv4Addr> = self.hosts.iter().map(|host| host.overlay).collect();
                let answered =
                    echo::ping_pairs(&self.pingers, &overlays, &unanswered, 1, PING_WAIT);
                formation.handle_pings(&unanswered, &answered);
            }
            let ready: Vec<bool> = (0..self.hosts.len())
                .map(|index| self.daemons.get(index).is_some_and(daemons::Daemon::ready))
                .collect();
            let stage = formation.stage(&ready);
            progress(stage);
            if stage.is_complete() {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            if unanswered.is_empty() {
                std::thread::sleep(READY_POLL);
            }
        }
    }

    /// `peers` as report rows: named, with handshake ages, in the plan's
    /// order (keys of no host last).
    fn peer_rows(&self, peers: &[PeerState]) -> Vec<PeerRow> {
        let now = ready::unix_now();
        let mut peers: Vec<&PeerState> = peers.iter().collect();
        peers.sort_by_key(|peer| {
            (
                self.by_key
                    .get(&peer.public_key)
                    .copied()
                    .unwrap_or(usize::MAX),
                peer.public_key,
            )
        });
        peers
            .into_iter()
            .map(|peer| PeerRow {
                public_key: peer.public_key,
                host: self
                    .by_key
                    .get(&peer.public_key)
                    .map(|&index| self.hosts[index].name.clone()),
                endpoint: peer.endpoint,
                handshake_age: peer.last_handshake.map(|at| now.saturating_sub(at)),
            })
            .collect()
    }

    /// Looks at the mesh as it is now: every host's peers and their
    /// handshakes, then a ping from every host to every other one.
    pub fn report(&mut self) -> MeshReport {
        self.daemons.poll();
        let ifnames: Vec<&str> = self.hosts.iter().map(|host| host.ifname.as_str()).collect();
        let answers = status::peers_of(&ifnames);
        let hosts = self
            .hosts
            .iter()
            .zip(answers)
            .enumerate()
            .map(|(index, (host, answer))| {
                let daemon = self.daemons.get(index);
                HostReport {
                    name: host.name.clone(),
                    label: host.label.clone(),
                    role: host.role,
                    operator: host.operator,
                    overlay: host.overlay,
                    underlay: host.underlay,
                    ready: daemon.is_some_and(daemons::Daemon::ready),
                    status: daemon.map(daemons::Daemon::status).unwrap_or_default(),
                    expected_peers: host.expected_peers.iter().cloned().collect(),
                    peers: answer
                        .map(|peers| self.peer_rows(&peers))
                        .map_err(|error| format!("{error:#}")),
                }
            })
            .collect();
        let pings = probes::ping_matrix(&self.pingers, self.plan.hosts());
        MeshReport { hosts, pings }
    }
}

/// Fails unless the effective user is root.
///
/// # Errors
///
/// When it is not, saying why root is needed.
pub fn require_root() -> Result<()> {
    if !is_root() {
        bail!(
            "a testnet creates network namespaces, veths and TUN devices: run it as root \
             (sudo sentrymesh-testnet)"
        );
    }
    Ok(())
}

/// The testnet's directory in the system's temporary directory; removed
/// with everything in it on drop.
#[derive(Debug)]
struct Workdir {
    path: PathBuf,
}

impl Workdir {
    fn create(tag: RunTag) -> Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "{WORKDIR_PREFIX}{}-{}-{:08x}",
            tag.pid,
            tag.serial,
            OsRng.next_u32()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("making directory {}", path.display()))?;
        Ok(Self { path })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.path) {
            eprintln!(
                "sentrymesh-testnet: removing {}: {error}",
                self.path.display()
            );
        }
    }
}
