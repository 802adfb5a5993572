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
use sentrymesh_netns::{Namespace, interrupt, remove_all};

use crate::plan::{Plan, PlannedHost, UNDERLAY_PREFIX};

/// The bridge in the switch namespace.
const BRIDGE: &str = "br0";
/// Each host's link to the switch.
pub(super) const HOST_LINK: &str = "eth0";

/// The namespaces of a testnet; dropping it removes them.
#[derive(Debug)]
pub(super) struct Topology {
    /// Every namespace created: the switch first, then the hosts in the
    /// plan's order (when created, not adopted).
    namespaces: Vec<Namespace>,
}

impl Topology {
    /// Creates the switch and every host of `plan`, linked and addressed:
    /// the namespaces with one `ip -batch`, then each namespace's links
    /// with one `ip -n NAME -batch` of its own, several side by side, and
    /// last the switch's ports onto its bridge with one more.
    ///
    /// # Errors
    ///
    /// When `ip` fails or a stop is requested; what was made is removed.
    pub(super) fn create(plan: &Plan) -> Result<Self> {
        let names: Vec<String> = std::iter::once(plan.switch().to_owned())
            .chain(plan.hosts().iter().map(|host| host.namespace.clone()))
            .collect();
        let topology = Self {
            namespaces: Namespace::create_all(&names, |index| match index {
                0 => switch_setup(),
                _ => host_setup(&plan.hosts()[index - 1], plan.switch()),
            })
            .context("creating the namespaces and their links")?,
        };
        interrupt::check()?;
        topology.namespaces[0]
            .ip_batch(plan.hosts().iter().map(|host| {
                format!(
                    "link set {} addrgenmode none master {BRIDGE} up",
                    host.switch_port
                )
            }))
            .context("joining the hosts' links to the switch")?;
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

    /// The hosts' namespaces, in the plan's order.
    pub(super) fn hosts(&self) -> &[Namespace] {
        self.namespaces.get(1..).unwrap_or_default()
    }
}

/// The switch's own commands: its bridge, up, without IPv6.
fn switch_setup() -> Vec<String> {
    vec![
        format!("link add {BRIDGE} type bridge"),
        format!("link set {BRIDGE} addrgenmode none"),
        format!("link set {BRIDGE} up"),
    ]
}

/// `host`'s commands: its veth, the other end straight into the switch
/// `switch`, without IPv6, addressed and up.
fn host_setup(host: &PlannedHost, switch: &str) -> Vec<String> {
    vec![
        format!(
            "link add {HOST_LINK} type veth peer name {} netns {switch}",
            host.switch_port
        ),
        format!("link set {HOST_LINK} addrgenmode none"),
        format!(
            "addr add {}/{UNDERLAY_PREFIX} dev {HOST_LINK}",
            host.underlay
        ),
        format!("link set {HOST_LINK} up"),
    ]
}

impl Drop for Topology {
    fn drop(&mut self) {
        // One grace period for every process left, then the namespaces go.
        remove_all(std::mem::take(&mut self.namespaces));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::RunTag;

    #[test]
    fn each_host_gets_a_veth_into_the_switch_addressed_without_ipv6() {
        let plan = Plan::new(2, 1, RunTag { pid: 77, serial: 1 }).unwrap();
        let sentry = &plan.hosts()[3];
        assert_eq!(
            host_setup(sentry, plan.switch()),
            [
                "link add eth0 type veth peer name port3 netns smtn-77-1-switch",
                "link set eth0 addrgenmode none",
                "addr add 198.18.2.2/16 dev eth0",
                "link set eth0 up",
            ]
        );
        let bridge = switch_setup();
        assert_eq!(bridge[0], "link add br0 type bridge");
        // No IPv6 link-local address: addrgenmode before up.
        assert!(bridge[1].contains("addrgenmode none") && bridge[2].ends_with(" up"));
    }
}
