//! The address plan of a testnet, worked out before anything is created:
//! every host's name, role, namespace, interface, underlay and overlay
//! address, and which hosts the roles require it to peer with.
//!
//! Operators are numbered from 1, and within an operator host 1 is the
//! producer and hosts 2 to M+1 are its sentries 1 to M:
//!
//! ```text
//!   host            underlay (veth to the switch)   overlay (TUN, /32)   endpoint
//!   op<a>-producer  198.18.<a>.1/16                 198.19.<a>.1/32      none: hidden
//!   op<a>-sentry-<s> 198.18.<a>.<s+1>/16             198.19.<a>.<s+1>/32  198.18.<a>.<s+1>:51820
//! ```
//!
//! The overlay addresses are host addresses (/32), so a host has no kernel
//! route to another host's overlay address until its mesh member adds one
//! for a peer: a producer cannot even address a host it does not peer with.
//!
//! The mesh overlay is [`MESH_OVERLAY`], 198.19.0.0/16, and operator `a`'s
//! range in it 198.19.`a`.0/24 ([`operator_range`]): what its hosts' configs
//! give the operators they trust, and what its vouchers name.
//!
//! Names that are global on the machine carry the run's tag (the process
//! id and a counter), so that two runs, or two tests of one process, never
//! collide: the namespaces `smtn-<pid>-<n>-<host>` (and `…-switch`), and the
//! interfaces `tn<pid in hex>-<n>-<i>`, whose UAPI sockets share
//! `/var/run/wireguard`. Link names are per namespace and need no tag.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

use sentrymesh::config::MAX_INTERFACE_NAME_LEN;
use sentrymesh_mesh::Role;

/// The prefix of a testnet's namespaces, before its pid in decimal.
pub(super) const NAMESPACE_PREFIX: &str = "smtn-";
/// The prefix of a testnet's interfaces, before its pid in hexadecimal.
pub(super) const INTERFACE_PREFIX: &str = "tn";
/// The prefix of a testnet's directory, before its pid in decimal.
pub(super) const WORKDIR_PREFIX: &str = "sentrymesh-testnet-";

/// The most operators a testnet has (an underlay /24 each, and a namespace
/// and a daemon per host).
pub const MAX_OPERATORS: usize = 64;
/// The most sentries of one operator.
pub const MAX_SENTRIES: usize = 16;
/// The most hosts of a testnet.
pub const MAX_HOSTS: usize = 256;
/// The WireGuard port of every host (each in a namespace of its own).
pub const LISTEN_PORT: u16 = 51820;
/// The prefix length of the underlay: one segment behind the switch.
pub const UNDERLAY_PREFIX: u8 = 16;
/// The prefix length of an overlay address: a host address.
pub const OVERLAY_PREFIX: u8 = 32;
/// The mesh overlay of every testnet: each operator's range lies in it.
pub const MESH_OVERLAY: &str = "198.19.0.0/16";

/// Operator `operator`'s overlay range: 198.19.`operator`.0/24.
pub fn operator_range(operator: usize) -> String {
    format!("198.19.{operator}.0/24")
}

/// Why a testnet's size is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// No operators, or more than [`MAX_OPERATORS`].
    #[error("--operators must be between 1 and {MAX_OPERATORS}, not {0}")]
    Operators(usize),
    /// No sentries, or more than [`MAX_SENTRIES`].
    #[error("--sentries must be between 1 and {MAX_SENTRIES}, not {0}")]
    Sentries(usize),
    /// More hosts than [`MAX_HOSTS`].
    #[error(
        "{operators} operators with {sentries} sentries each make {hosts} hosts; at most \
         {MAX_HOSTS}"
    )]
    TooManyHosts {
        /// Operators asked for.
        operators: usize,
        /// Sentries per operator asked for.
        sentries: usize,
        /// The hosts that makes.
        hosts: usize,
    },
}

/// What makes a run's global names unique: the process id and a counter of
/// the testnets this process created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunTag {
    /// The process id.
    pub pid: u32,
    /// The testnet's number within the process (only its low 8 bits are
    /// used in interface names).
    pub serial: u32,
}

/// One host of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedHost {
    /// The host's name, also its card's: `op<a>-producer`, `op<a>-sentry-<s>`.
    pub name: String,
    /// A short label for table columns: `1P`, `1S2`.
    pub label: String,
    /// Its role.
    pub role: Role,
    /// Its operator, from 1.
    pub operator: usize,
    /// Its number within the operator: 1 for the producer, `s + 1` for
    /// sentry `s`.
    pub number: u8,
    /// Its network namespace.
    pub namespace: String,
    /// Its WireGuard interface (TUN device and UAPI socket name).
    pub ifname: String,
    /// Its veth's name in the switch namespace.
    pub switch_port: String,
    /// Its underlay address, on the veth to the switch.
    pub underlay: Ipv4Addr,
    /// Its overlay address, on the interface.
    pub overlay: Ipv4Addr,
}

impl PlannedHost {
    /// Where other hosts reach it: sentries only, producers are hidden.
    pub fn endpoint(&self) -> Option<(Ipv4Addr, u16)> {
        (!self.role.is_hidden()).then_some((self.underlay, LISTEN_PORT))
    }
}

/// The plan of a whole testnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    operators: usize,
    sentries: usize,
    prefix: String,
    switch: String,
    hosts: Vec<PlannedHost>,
}

impl Plan {
    /// The plan of `operators` operators with one producer and `sentries`
    /// sentries each, its global names tagged with `tag`.
    ///
    /// # Errors
    ///
    /// When a count is 0 or beyond its limit, or there are too many hosts.
    pub fn new(operators: usize, sentries: usize, tag: RunTag) -> Result<Self, PlanError> {
        let hosts = check_size(operators, sentries)?;
        let prefix = format!("{NAMESPACE_PREFIX}{}-{}", tag.pid, tag.serial);
        let mut plan = Self {
            operators,
            sentries,
            switch: format!("{prefix}-switch"),
            prefix,
            hosts: Vec::with_capacity(hosts),
        };
        for operator in 1..=operators {
            for number in 1..=1 + sentries {
                let (name, label, role) = if number == 1 {
                    (
                        format!("op{operator}-producer"),
                        format!("{operator}P"),
                        Role::Producer,
                    )
                } else {
                    let sentry = number - 1;
                    (
                        format!("op{operator}-sentry-{sentry}"),
                        format!("{operator}S{sentry}"),
                        Role::Sentry,
                    )
                };
                let index = plan.hosts.len();
                // Bounded by MAX_OPERATORS and MAX_SENTRIES, checked above.
                let (a, h) = (operator as u8, number as u8);
                let ifname = format!(
                    "{INTERFACE_PREFIX}{:x}-{:x}-{index}",
                    tag.pid,
                    tag.serial & 0xff
                );
                debug_assert!(ifname.len() <= MAX_INTERFACE_NAME_LEN);
                plan.hosts.push(PlannedHost {
                    namespace: format!("{}-{name}", plan.prefix),
                    name,
                    label,
                    role,
                    operator,
                    number: h,
                    ifname,
                    switch_port: format!("port{index}"),
                    underlay: Ipv4Addr::new(198, 18, a, h),
                    overlay: Ipv4Addr::new(198, 19, a, h),
                });
            }
        }
        Ok(plan)
    }

    /// How many operators.
    pub fn operators(&self) -> usize {
        self.operators
    }

    /// How many sentries each operator has.
    pub fn sentries(&self) -> usize {
        self.sentries
    }

    /// The prefix of every namespace name: `smtn-<pid>-<n>`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The switch's namespace, which holds the bridge.
    pub fn switch(&self) -> &str {
        &self.switch
    }

    /// Every host, operator by operator, producer first.
    pub fn hosts(&self) -> &[PlannedHost] {
        &self.hosts
    }

    /// The operator directly trusted by `operator`'s hosts: the next one
    /// round the ring; `None` with a single operator.
    pub fn trusted_by(&self, operator: usize) -> Option<usize> {
        (self.operators > 1).then(|| operator % self.operators + 1)
    }

    /// The operators `operator`'s hosts admit on a vouch of the operator
    /// they trust directly: all but themselves and that one.
    pub fn admitted_by_vouch(&self, operator: usize) -> Vec<usize> {
        let direct = self.trusted_by(operator);
        (1..=self.operators)
            .filter(|&other| other != operator && Some(other) != direct)
            .collect()
    }

    /// The indices of the hosts that host `index` must peer with.
    pub fn expected_peers(&self, index: usize) -> BTreeSet<usize> {
        let host = &self.hosts[index];
        self.hosts
            .iter()
            .enumerate()
            .filter(|&(other, peer)| other != index && must_peer(host, peer))
            .map(|(other, _)| other)
            .collect()
    }

    /// How many pairs of hosts must peer.
    pub fn peerings(&self) -> usize {
        self.peering_pairs().len()
    }

    /// The pairs of hosts that must peer, each once: (lower index, higher).
    pub fn peering_pairs(&self) -> Vec<(usize, usize)> {
        let hosts = &self.hosts;
        (0..hosts.len())
            .flat_map(|a| (a + 1..hosts.len()).map(move |b| (a, b)))
            .filter(|&(a, b)| must_peer(&hosts[a], &hosts[b]))
            .collect()
    }

    /// How many peers host `index` must have: its readiness threshold.
    pub fn expected_peer_count(&self, index: usize) -> usize {
        self.expected_peers(index).len()
    }
}

/// The number of hosts of `operators` operators with `sentries` sentries
/// each.
///
/// # Errors
///
/// When a count is 0 or beyond its limit, or there are too many hosts.
pub fn check_size(operators: usize, sentries: usize) -> Result<usize, PlanError> {
    if !(1..=MAX_OPERATORS).contains(&operators) {
        return Err(PlanError::Operators(operators));
    }
    if !(1..=MAX_SENTRIES).contains(&sentries) {
        return Err(PlanError::Sentries(sentries));
    }
    let hosts = operators * (1 + sentries);
    if hosts > MAX_HOSTS {
        return Err(PlanError::TooManyHosts {
            operators,
            sentries,
            hosts,
        });
    }
    Ok(hosts)
}

/// Whether the roles require `a` and `b` to peer, every operator admitting
/// every other: a producer with its own sentries, a sentry with its own
/// producer and with every sentry. (Stated here on its own, not through
/// the mesh crate's rules, so the testnet checks them rather than repeats
/// them.)
pub fn must_peer(a: &PlannedHost, b: &PlannedHost) -> bool {
    if a.name == b.name {
        return false;
    }
    match (a.role, b.role) {
        (Role::Sentry, Role::Sentry) => true,
        (Role::Producer, Role::Sentry) | (Role::Sentry, Role::Producer) => a.operator == b.operator,
        _ => false,
    }
}

impl fmt::Display for PlannedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} of op{})", self.name, self.role, self.operator)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use sentrymesh_mesh::{HostCard, OperatorSecret, may_peer};

    use super::*;

    const TAG: RunTag = RunTag {
        pid: 4_194_303,
        serial: 300,
    };

    fn names(plan: &Plan, indices: &BTreeSet<usize>) -> Vec<String> {
        indices
            .iter()
            .map(|&i| plan.hosts()[i].name.clone())
            .collect()
    }

    #[test]
    fn addresses_follow_operator_and_host_number() {
        let plan = Plan::new(3, 2, RunTag { pid: 77, serial: 1 }).unwrap();
        let rows: Vec<(&str, &str, Ipv4Addr, Ipv4Addr)> = plan
            .hosts()
            .iter()
            .map(|h| (h.name.as_str(), h.label.as_str(), h.underlay, h.overlay))
            .collect();
        assert_eq!(rows.len(), 9);
        assert_eq!(
            rows[..3],
            [
                (
                    "op1-producer",
                    "1P",
                    Ipv4Addr::new(198, 18, 1, 1),
                    Ipv4Addr::new(198, 19, 1, 1)
                ),
                (
                    "op1-sentry-1",
                    "1S1",
                    Ipv4Addr::new(198, 18, 1, 2),
                    Ipv4Addr::new(198, 19, 1, 2)
                ),
                (
                    "op1-sentry-2",
                    "1S2",
                    Ipv4Addr::new(198, 18, 1, 3),
                    Ipv4Addr::new(198, 19, 1, 3)
                ),
            ]
        );
        assert_eq!(rows[8].0, "op3-sentry-2");
        assert_eq!(rows[8].3, Ipv4Addr::new(198, 19, 3, 3));
        assert_eq!(plan.hosts()[0].endpoint(), None);
        assert_eq!(
            plan.hosts()[1].endpoint(),
            Some((Ipv4Addr::new(198, 18, 1, 2), LISTEN_PORT))
        );
        assert_eq!(plan.hosts()[4].namespace, "smtn-77-1-op2-sentry-1");
        assert_eq!(plan.switch(), "smtn-77-1-switch");
        assert_eq!(plan.hosts()[4].ifname, "tn4d-1-4");
    }

    /// The example configs, the README and the runbook use the testnet's
    /// convention (the daemon's config tests check them in full).
    #[test]
    fn the_examples_use_the_testnets_overlay_and_operator_ranges() {
        for (name, text) in [
            ("sentry.toml", include_str!("../../configs/sentry.toml")),
            ("full.toml", include_str!("../../configs/full.toml")),
            ("producer.toml", include_str!("../../configs/producer.toml")),
            ("bios.toml", include_str!("../../configs/bios.toml")),
        ] {
            assert!(
                text.contains(&format!("overlay = \"{MESH_OVERLAY}\"\n"))
                    && text.contains(&format!("own_overlay = \"{}\"\n", operator_range(1)))
                    && text.contains(&format!("overlay = \"{}\" }}", operator_range(2))),
                "configs/{name} does not use the testnet's ranges"
            );
        }
        let runbook = include_str!("../../docs/launch.md");
        assert!(runbook.contains(&format!("overlay = \"{MESH_OVERLAY}\"")));
        for operator in 1..=3 {
            assert!(runbook.contains(&format!("own_overlay = \"{}\"", operator_range(operator))));
        }
    }

    #[test]
    fn every_address_is_in_the_benchmarking_range_and_unique() {
        let plan = Plan::new(MAX_OPERATORS, 3, TAG).unwrap();
        let mut seen = BTreeSet::new();
        for host in plan.hosts() {
            for address in [host.underlay, host.overlay] {
                let [a, b, _, last] = address.octets();
                assert_eq!(a, 198);
                assert!(b == 18 || b == 19, "{address}");
                assert!(last != 0 && last != 255, "{address}");
                assert!(seen.insert(address), "{address} twice");
            }
        }
    }

    #[test]
    fn global_names_are_unique_and_fit() {
        let plan = Plan::new(MAX_OPERATORS, 3, TAG).unwrap();
        let ifnames: BTreeSet<&str> = plan.hosts().iter().map(|h| h.ifname.as_str()).collect();
        let namespaces: BTreeSet<&str> =
            plan.hosts().iter().map(|h| h.namespace.as_str()).collect();
        assert_eq!(ifnames.len(), plan.hosts().len());
        assert_eq!(namespaces.len(), plan.hosts().len());
        assert!(!namespaces.contains(plan.switch()));
        for ifname in ifnames {
            assert!(ifname.len() <= MAX_INTERFACE_NAME_LEN, "{ifname}");
            ifname.parse::<sentrymesh::config::InterfaceName>().unwrap();
        }
        // Another run of the same process gets other names.
        let other = Plan::new(1, 1, RunTag { serial: 301, ..TAG }).unwrap();
        assert_ne!(other.hosts()[0].ifname, plan.hosts()[0].ifname);
        assert_ne!(other.hosts()[0].namespace, plan.hosts()[0].namespace);
    }

    #[test]
    fn sizes_beyond_the_limits_are_refused() {
        assert_eq!(Plan::new(0, 2, TAG), Err(PlanError::Operators(0)));
        assert_eq!(Plan::new(65, 2, TAG), Err(PlanError::Operators(65)));
        assert_eq!(Plan::new(2, 0, TAG), Err(PlanError::Sentries(0)));
        assert_eq!(Plan::new(2, 17, TAG), Err(PlanError::Sentries(17)));
        assert_eq!(
            Plan::new(64, 4, TAG),
            Err(PlanError::TooManyHosts {
                operators: 64,
                sentries: 4,
                hosts: 320
            })
        );
        Plan::new(1, 1, TAG).unwrap();
    }

    #[test]
    fn producers_peer_with_their_own_sentries_only() {
        let plan = Plan::new(3, 2, TAG).unwrap();
        assert_eq!(
            names(&plan, &plan.expected_peers(3)),
            ["op2-sentry-1", "op2-sentry-2"]
        );
        assert_eq!(
            names(&plan, &plan.expected_peers(1)),
            [
                "op1-producer",
                "op1-sentry-2",
                "op2-sentry-1",
                "op2-sentry-2",
                "op3-sentry-1",
                "op3-sentry-2"
            ]
        );
        // A producer: M; a sentry: its producer, the other M-1 of its own,
        // and the (N-1)*M of the others.
        for (index, host) in plan.hosts().iter().enumerate() {
            let expected = if host.role == Role::Producer { 2 } else { 6 };
            assert_eq!(plan.expected_peer_count(index), expected, "{host}");
        }
    }

    #[test]
    fn the_expectation_is_symmetric_and_agrees_with_the_mesh_rules() {
        let plan = Plan::new(3, 2, TAG).unwrap();
        let secrets: Vec<OperatorSecret> = (1..=3u8)
            .map(|n| OperatorSecret::from_seed([n; 32]))
            .collect();
        let admitted = secrets.iter().map(OperatorSecret::operator_id).collect();
        let card = |host: &PlannedHost| HostCard {
            operator: secrets[host.operator - 1].operator_id(),
            name: host.name.clone(),
            role: host.role,
            wg_public_key: sentrymesh_types::PublicKey::from_bytes(
                [host.number + 16 * host.operator as u8; 32],
            ),
            addresses: vec![],
            endpoints: vec![],
            allowed_ips: vec![],
            not_before: sentrymesh_types::UnixTime(0),
            not_after: sentrymesh_types::UnixTime(1),
            serial: 1,
            chain_p2p: None,
        };
        for a in plan.hosts() {
            for b in plan.hosts() {
                assert_eq!(must_peer(a, b), must_peer(b, a), "{a} {b}");
                assert_eq!(
                    must_peer(a, b),
                    may_peer(&card(a), &card(b), &admitted),
                    "{a} {b}"
                );
            }
        }
    }

    #[test]
    fn trust_runs_round_a_ring_and_vouches_admit_the_rest() {
        let plan = Plan::new(4, 1, TAG).unwrap();
        assert_eq!(plan.trusted_by(1), Some(2));
        assert_eq!(plan.trusted_by(4), Some(1));
        assert_eq!(plan.admitted_by_vouch(1), [3, 4]);
        assert_eq!(plan.admitted_by_vouch(4), [2, 3]);
        let two = Plan::new(2, 1, TAG).unwrap();
        assert_eq!(two.admitted_by_vouch(1), Vec::<usize>::new());
        let one = Plan::new(1, 1, TAG).unwrap();
        assert_eq!(one.trusted_by(1), None);
        assert!(one.admitted_by_vouch(1).is_empty());
    }
}
