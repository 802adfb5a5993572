//! The network of a testnet: a switch namespace holding a bridge, and a
//! namespace per host joined to it by a veth, with its underlay address.
//!
//! ```text
//!             switch namespace (smtn-<pid>-<n>-switch)
//!   +----------------------------------------------------------+
//!   |   br0  ---  port0  port1  port2  ...                     |
//!   +--------------|------|------|------------------------------+
//!                  |      |      |      veth pairs
//!   host namespaces:  eth0   eth0   eth0   198.18.<a>.<h>/16
//!                 op1-producer  op1-sentry-1  ...
//! ```
//!
//! Nothing is created in, or changed about, the machine's own namespace:
//! each veth is created inside its host's namespace with its other end put
//! straight into the switch. No link generates an IPv6 link-local address
//! (`addrgenmode none`), so nothing is sent but what the hosts address to
//! 198.18.0.0/15.
//!
//! [`Topology`] records each namespace as soon as it exists, and dropping
//! it — on success, on an error half-way, on Ctrl-C — stops any process
//! left inside and deletes them all, which takes their veths with them.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::interrupt;
use crate::plan::{Plan, PlannedHost, UNDERLAY_PREFIX};
use crate::process::{self, COMMAND_TIMEOUT, ip};

/// The bridge in the switch namespace.
const BRIDGE: &str = "br0";
/// Each host's link to the switch.
pub(super) const HOST_LINK: &str = "eth0";
/// How long processes left in a namespace get between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The namespaces of a testnet; dropping it removes them.
#[derive(Debug)]
pub(super) struct Topology {
    /// Every namespace created, the switch first.
    namespaces: Vec<String>,
}

impl Topology {
    /// Creates the switch and every host of `plan`, linked and addressed.
    ///
    /// # Errors
    ///
    /// When `ip` fails or a stop is requested; what was made is removed.
    pub(super) fn create(plan: &Plan) -> Result<Self> {
        let mut topology = Self {
            namespaces: Vec::new(),
        };
        let switch = plan.switch();
        topology.add_namespace(switch)?;
        ip(&["-n", switch, "link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["-n", switch, "link", "set", BRIDGE, "addrgenmode", "none"])?;
        ip(&["-n", switch, "link", "set", BRIDGE, "up"])?;
        for host in plan.hosts() {
            interrupt::check()?;
            topology
                .add_host(switch, host)
                .with_context(|| format!("creating host {}", host.name))?;
        }
        Ok(topology)
    }

    /// Takes charge of `namespaces`, made by a testnet no longer running, to
    /// remove them and stop what runs in them when dropped.
    pub(super) fn adopt(namespaces: Vec<String>) -> Self {
        Self { namespaces }
    }

    /// Creates namespace `name` with its loopback up, and records it.
    fn add_namespace(&mut self, name: &str) -> Result<()> {
        ip(&["netns", "add", name])?;
        self.namespaces.push(name.to_owned());
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Creates `host`'s namespace and its link to the switch.
    fn add_host(&mut self, switch: &str, host: &PlannedHost) -> Result<()> {
        let ns = host.namespace.as_str();
        let port = host.switch_port.as_str();
        self.add_namespace(ns)?;
        ip(&[
            "-n", ns, "link", "add", HOST_LINK, "type", "veth", "peer", "name", port, "netns",
            switch,
        ])?;
        ip(&["-n", ns, "link", "set", HOST_LINK, "addrgenmode", "none"])?;
        ip(&[
            "-n",
            switch,
            "link",
            "set",
            port,
            "addrgenmode",
            "none",
            "master",
            BRIDGE,
            "up",
        ])?;
        let address = format!("{}/{UNDERLAY_PREFIX}", host.underlay);
        ip(&["-n", ns, "addr", "add", &address, "dev", HOST_LINK])?;
        ip(&["-n", ns, "link", "set", HOST_LINK, "up"])?;
        Ok(())
    }

    /// The processes now inside the testnet's namespaces.
    fn pids(&self) -> Vec<u32> {
        self.namespaces
            .iter()
            .filter_map(|ns| {
                process::run(
                    Command::new("ip").args(["netns", "pids", ns]),
                    COMMAND_TIMEOUT,
                )
                .ok()
            })
            .flat_map(|finished| {
                finished
                    .stdout
                    .split_whitespace()
                    .filter_map(|pid| pid.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    }

    /// Stops every process left in the namespaces: SIGTERM, then SIGKILL
    /// for those still there after a grace period.
    fn stop_all_processes(&self) {
        let pids = self.pids();
        if pids.is_empty() {
            return;
        }
        for &pid in &pids {
            process::signal(pid, libc::SIGTERM);
        }
        if process::wait_until(STOP_GRACE, || self.pids().is_empty()) {
            return;
        }
        for pid in self.pids() {
            process::signal(pid, libc::SIGKILL);
        }
        if !process::wait_until(STOP_GRACE, || self.pids().is_empty()) {
            eprintln!("sentrymesh-testnet: processes survived SIGKILL in its namespaces");
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.stop_all_processes();
        for ns in self.namespaces.iter().rev() {
            let deleted = process::run(
                Command::new("ip").args(["netns", "delete", ns]),
                COMMAND_TIMEOUT,
            );
            match deleted {
                Ok(finished) if finished.success() => {}
                Ok(finished) => eprintln!(
                    "sentrymesh-testnet: ip netns delete {ns} failed: {}",
                    finished.stderr.trim()
                ),
                Err(error) => eprintln!("sentrymesh-testnet: {error:#}"),
            }
        }
    }
}
