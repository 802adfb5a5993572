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
//! [`Topology`] records each namespace as soon as it exists (a
//! `sentrymesh_netns::Namespace`), and dropping it — on success, on an
//! error half-way, on Ctrl-C — stops any process left inside and deletes
//! them all with their veths.

use anyhow::{Context, Result};
use sentrymesh_netns::{Namespace, add_veth, interrupt, stop_processes_in};

use crate::plan::{Plan, PlannedHost, UNDERLAY_PREFIX};

/// The bridge in the switch namespace.
const BRIDGE: &str = "br0";
/// Each host's link to the switch.
pub(super) const HOST_LINK: &str = "eth0";

/// The namespaces of a testnet; dropping it removes them.
#[derive(Debug)]
pub(super) struct Topology {
    /// Every namespace created, the switch first.
    namespaces: Vec<Namespace>,
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
        let switch = Namespace::create(plan.switch())?;
        switch.ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        switch.ip(&["link", "set", BRIDGE, "addrgenmode", "none"])?;
        switch.ip(&["link", "set", BRIDGE, "up"])?;
        topology.namespaces.push(switch);
        for host in plan.hosts() {
            interrupt::check()?;
            topology
                .add_host(host)
                .with_context(|| format!("creating host {}", host.name))?;
        }
        Ok(topology)
    }

    /// Takes charge of `namespaces`, made by a testnet no longer running, to
    /// remove them and stop what runs in them when dropped.
    pub(super) fn adopt(namespaces: &[String]) -> Self {
        Self {
            namespaces: namespaces
                .iter()
                .map(|name| Namespace::adopt(name))
                .collect(),
        }
    }

    /// Creates `host`'s namespace and its link to the switch.
    fn add_host(&mut self, host: &PlannedHost) -> Result<()> {
        let namespace = Namespace::create(&host.namespace)?;
        let switch = &self.namespaces[0];
        let port = host.switch_port.as_str();
        add_veth(&namespace, HOST_LINK, switch, port)?;
        namespace.ip(&["link", "set", HOST_LINK, "addrgenmode", "none"])?;
        switch.ip(&[
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
        namespace.ip(&["addr", "add", &address, "dev", HOST_LINK])?;
        namespace.ip(&["link", "set", HOST_LINK, "up"])?;
        self.namespaces.push(namespace);
        Ok(())
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // One grace period for every process left, then the namespaces go,
        // hosts before the switch.
        stop_processes_in(&self.namespaces);
        while let Some(namespace) = self.namespaces.pop() {
            drop(namespace);
        }
    }
}
