//! The firewall's rules as the config states them, and how they compile
//! into one peer's [`PeerPolicy`].
//!
//! A rule only ever allows: what no rule (and no default) allows from
//! another operator's host is dropped. The defaults, always in force:
//!
//! - **Inbound**, from every peer: TCP to the chain p2p port this host's
//!   card publishes, UDP to the mesh's gossip port, ICMP echo requests.
//! - **Own operator**: with `open_to_own` (the default), everything both
//!   ways; otherwise the defaults above and the rules `from = "own"`.
//! - **Outbound**: with no outbound rule, everything; with some, to another
//!   operator's host only what they allow, beside TCP to the chain p2p port
//!   its card publishes, UDP to the gossip port and ICMP echo requests.
//!
//! Replies are not the rules' business: the connection tracker lets the
//! packets of a flow that was allowed one way through the other way.

use std::collections::BTreeSet;
use std::fmt;

use sentrymesh_mesh::{OperatorId, Role};

use super::policy::{Allow, Allows, PeerPolicy};

/// The entries of the connection tracker when the config sets none.
pub(crate) const DEFAULT_CONNTRACK_MAX: usize = 32_768;

/// Whose hosts a rule is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// Every other operator's hosts.
    Operators,
    /// This host's own operator's hosts.
    Own,
    /// One other operator's hosts.
    Operator(OperatorId),
}

/// The protocol a rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// Every protocol (with ports: TCP and UDP to those ports).
    Any,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP and ICMPv6 echo requests (replies come back by the tracker).
    Icmp,
}

/// A range of ports, `first..=last`, none of them 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// The ports `first..=last`.
    ///
    /// # Errors
    ///
    /// [`RuleError::PortZero`] when `first` is 0, [`RuleError::EmptyPorts`]
    /// when `last` is below `first`: no packet could match.
    pub(crate) fn new(first: u16, last: u16) -> Result<Self, RuleError> {
        if first == 0 {
            return Err(RuleError::PortZero);
        }
        if last < first {
            return Err(RuleError::EmptyPorts { first, last });
        }
        Ok(Self { first, last })
    }

    /// One port.
    ///
    /// # Errors
    ///
    /// [`RuleError::PortZero`] for port 0.
    pub(crate) fn single(port: u16) -> Result<Self, RuleError> {
        Self::new(port, port)
    }

    /// Whether `port` is in the range.
    #[inline]
    pub(crate) fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl std::str::FromStr for PortRange {
    type Err = RuleError;

    /// `"26656"` or `"26656-26660"`.
    fn from_str(text: &str) -> Result<Self, RuleError> {
        let port = |part: &str| {
            part.trim()
                .parse::<u16>()
                .map_err(|_| RuleError::NotPorts(text.to_owned()))
        };
        match text.split_once('-') {
            None => Self::single(port(text)?),
            Some((first, last)) => Self::new(port(first)?, port(last)?),
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// Why a rule is refused: no packet could ever match it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Port 0 is no service's.
    #[error("port 0 is no service's port: ports are 1 to 65535")]
    PortZero,
    /// A range that ends before it starts.
    #[error("{first}-{last} holds no port: write the lower port first")]
    EmptyPorts {
        /// The first port written.
        first: u16,
        /// The last port written.
        last: u16,
    },
    /// Not a port or a range of ports.
    #[error("{0:?} is not a port or a range of ports (e.g. \"26656\" or \"26656-26660\")")]
    NotPorts(String),
    /// ICMP has no ports.
    #[error("ICMP has no ports: remove `ports`, or use proto \"tcp\" or \"udp\"")]
    IcmpPorts,
    /// An empty list of roles matches no host.
    #[error("an empty list of roles matches no host: remove `roles` to match every role")]
    NoRoles,
    /// Another operator's hidden hosts never peer with this host.
    #[error(
        "another operator's {0} hosts are hidden and never peer with this host: this rule \
         could match only from = \"own\""
    )]
    HiddenRole(&'static str),
    /// `from = "own"` while the own operator's hosts are open anyway.
    #[error(
        "the own operator's hosts reach everything already (open_to_own = true): set \
         [firewall] open_to_own = false for rules from \"own\" to mean something"
    )]
    OwnIsOpen,
}

/// One `[[firewall.inbound]]` or `[[firewall.outbound]]`: the hosts it is
/// for, and what it allows them (inbound) or this host towards them
/// (outbound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    from: From,
    /// `None`: every role.
    roles: Option<BTreeSet<Role>>,
    allow: Allow,
}

impl Rule {
    /// A rule for the hosts of `from` with one of `roles` (`None`: any),
    /// allowing `proto` to `ports` (`None`: every port).
    ///
    /// # Errors
    ///
    /// [`RuleError::IcmpPorts`], [`RuleError::NoRoles`] and
    /// [`RuleError::HiddenRole`]: rules that no packet could match.
    pub(crate) fn new(
        from: From,
        roles: Option<BTreeSet<Role>>,
        proto: Proto,
        ports: Option<PortRange>,
    ) -> Result<Self, RuleError> {
        if proto == Proto::Icmp && ports.is_some() {
            return Err(RuleError::IcmpPorts);
        }
        if let Some(roles) = &roles {
            if roles.is_empty() {
                return Err(RuleError::NoRoles);
            }
            if from != From::Own {
                // Every role named must be one another operator's host can
                // have towards us; one hidden role alone is a typo waiting
                // to open nothing.
                if let Some(hidden) = roles.iter().find(|role| role.is_hidden()) {
                    return Err(RuleError::HiddenRole(hidden.name()));
                }
            }
        }
        Ok(Self {
            from,
            roles,
            allow: Allow::new(proto, ports),
        })
    }

    /// Whose hosts the rule is for.
    pub(crate) fn from(&self) -> From {
        self.from
    }

    /// Whether the rule is for `peer`, a host of `own`'s operator or not.
    fn applies_to(&self, own: &OperatorId, peer: &PeerClass) -> bool {
        let operator = match self.from {
            From::Operators => peer.operator != *own,
            From::Own => peer.operator == *own,
            From::Operator(id) => peer.operator == id && id != *own,
        };
        operator
            && self
                .roles
                .as_ref()
                .is_none_or(|roles| roles.contains(&peer.role))
    }
}

/// `[firewall]`: the rules of a mesh member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Whether the own operator's hosts reach everything both ways.
    pub(crate) open_to_own: bool,
    /// What peers may open to this host, beside the defaults.
    pub(crate) inbound: Vec<Rule>,
    /// What this host may open to other operators' hosts, beside the
    /// defaults; `None`: everything.
    pub(crate) outbound: Option<Vec<Rule>>,
    /// The entries of the connection tracker.
    pub(crate) conntrack_max: usize,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            open_to_own: true,
            inbound: Vec::new(),
            outbound: None,
            conntrack_max: DEFAULT_CONNTRACK_MAX,
        }
    }
}

/// What the defaults need to know of this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Local {
    /// This host's operator.
    pub(crate) operator: OperatorId,
    /// The chain p2p port this host's card publishes.
    pub(crate) chain_p2p_port: Option<u16>,
    /// The mesh's gossip port (UDP).
    pub(crate) gossip_port: u16,
}

/// What the rules know of a peer: its card's operator, role and chain p2p
/// port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerClass {
    /// The operator that signed the peer's card.
    pub(crate) operator: OperatorId,
    /// The peer's role.
    pub(crate) role: Role,
    /// The chain p2p port the peer's card publishes.
    pub(crate) chain_p2p_port: Option<u16>,
}

impl Rules {
    /// What `peer` may open to this host and this host to it.
    pub(crate) fn policy(&self, local: &Local, peer: &PeerClass) -> PeerPolicy {
        if self.open_to_own && peer.operator == local.operator {
            return PeerPolicy::open();
        }
        let inbound = Allows::only(
            defaults(local.chain_p2p_port, local.gossip_port)
                .into_iter()
                .flatten()
                .chain(allows_for(&self.inbound, local, peer)),
        );
        let outbound = match &self.outbound {
            None => Allows::All,
            Some(rules) => Allows::only(
                defaults(peer.chain_p2p_port, local.gossip_port)
                    .into_iter()
                    .flatten()
                    .chain(allows_for(rules, local, peer)),
            ),
        };
        PeerPolicy::new(inbound, outbound)
    }
}

/// The default allows towards a host publishing `chain_p2p_port`.
fn defaults(chain_p2p_port: Option<u16>, gossip_port: u16) -> [Option<Allow>; 3] {
    let tcp = |port| {
        PortRange::single(port)
            .ok()
            .map(|ports| Allow::new(Proto::Tcp, Some(ports)))
    };
    [
        chain_p2p_port.and_then(tcp),
        PortRange::single(gossip_port)
            .ok()
            .map(|ports| Allow::new(Proto::Udp, Some(ports))),
        Some(Allow::new(Proto::Icmp, None)),
    ]
}

/// What the rules among `rules` that apply to `peer` allow.
fn allows_for<'a>(
    rules: &'a [Rule],
    local: &'a Local,
    peer: &'a PeerClass,
) -> impl Iterator<Item = Allow> + 'a {
    rules
        .iter()
        .filter(|rule| rule.applies_to(&local.operator, peer))
        .map(|rule| rule.allow)
}

#[cfg(test)]
mod tests {
    use sentrymesh_mesh::OperatorSecret;

    use super::*;
    use crate::dataplane::firewall::policy::Service;

    fn operator(seed: u8) -> OperatorId {
        OperatorSecret::from_seed([seed; 32]).operator_id()
    }

    fn local() -> Local {
        Local {
            operator: operator(1),
            chain_p2p_port: Some(26656),
            gossip_port: 51900,
        }
    }

    fn peer(seed: u8, role: Role) -> PeerClass {
        PeerClass {
            operator: operator(seed),
            role,
            chain_p2p_port: Some(26656),
        }
    }

    #[test]
    fn other_operators_reach_the_defaults_only() {
        let policy = Rules::default().policy(&local(), &peer(2, Role::Sentry));
        let inbound = policy.inbound();
        assert!(inbound.admits(Service::Tcp(26656)));
        assert!(inbound.admits(Service::Udp(51900)));
        assert!(inbound.admits(Service::IcmpEcho));
        for refused in [
            Service::Tcp(22),
            Service::Tcp(9586),
            Service::Udp(26656),
            Service::Tcp(51900),
            Service::Other(47),
        ] {
            assert!(!inbound.admits(refused), "{refused:?}");
        }
        assert!(policy.outbound().admits(Service::Tcp(22)));
    }

    #[test]
    fn the_own_operator_reaches_everything_unless_told_otherwise() {
        let open = Rules::default().policy(&local(), &peer(1, Role::Producer));
        assert!(open.is_open());
        let rules = Rules {
            open_to_own: false,
            inbound: vec![
                Rule::new(From::Own, None, Proto::Tcp, Some("22".parse().unwrap())).unwrap(),
            ],
            ..Rules::default()
        };
        let closed = rules.policy(&local(), &peer(1, Role::Producer));
        assert!(closed.inbound().admits(Service::Tcp(22)));
        assert!(closed.inbound().admits(Service::Tcp(26656)));
        assert!(!closed.inbound().admits(Service::Tcp(23)));
        // A rule from "own" is not for other operators.
        let other = rules.policy(&local(), &peer(2, Role::Sentry));
        assert!(!other.inbound().admits(Service::Tcp(22)));
    }

    #[test]
    fn rules_apply_by_operator_and_role() {
        let rules = Rules {
            inbound: vec![
                Rule::new(
                    From::Operators,
                    Some([Role::Sentry].into()),
                    Proto::Tcp,
                    Some("8000-8010".parse().unwrap()),
                )
                .unwrap(),
                Rule::new(From::Operator(operator(3)), None, Proto::Udp, None).unwrap(),
                Rule::new(From::Operator(operator(4)), None, Proto::Any, None).unwrap(),
            ],
            ..Rules::default()
        };
        let sentry = rules.policy(&local(), &peer(2, Role::Sentry));
        let full = rules.policy(&local(), &peer(2, Role::Full));
        let third = rules.policy(&local(), &peer(3, Role::Full));
        let fourth = rules.policy(&local(), &peer(4, Role::Full));
        assert!(sentry.inbound().admits(Service::Tcp(8005)));
        assert!(!sentry.inbound().admits(Service::Tcp(8011)));
        assert!(!full.inbound().admits(Service::Tcp(8005)));
        assert!(third.inbound().admits(Service::Udp(53)));
        assert!(!third.inbound().admits(Service::Tcp(53)));
        assert!(fourth.inbound().admits(Service::Other(132)));
        assert!(fourth.inbound().is_all());
        assert!(!third.inbound().is_all());
    }

    #[test]
    fn outbound_rules_close_what_they_do_not_open() {
        let rules = Rules {
            outbound: Some(vec![
                Rule::new(
                    From::Operators,
                    None,
                    Proto::Tcp,
                    Some("443".parse().unwrap()),
                )
                .unwrap(),
            ]),
            ..Rules::default()
        };
        let mut class = peer(2, Role::Sentry);
        class.chain_p2p_port = Some(30303);
        let policy = rules.policy(&local(), &class);
        let outbound = policy.outbound();
        assert!(outbound.admits(Service::Tcp(443)));
        assert!(
            outbound.admits(Service::Tcp(30303)),
            "the peer's chain p2p port"
        );
        assert!(outbound.admits(Service::Udp(51900)));
        assert!(outbound.admits(Service::IcmpEcho));
        assert!(
            !outbound.admits(Service::Tcp(26656)),
            "ours, not the peer's"
        );
        // The own operator's hosts stay open.
        assert!(rules.policy(&local(), &peer(1, Role::Sentry)).is_open());
    }

    #[test]
    fn rules_that_cannot_match_are_refused() {
        assert_eq!(
            Rule::new(
                From::Operators,
                None,
                Proto::Icmp,
                Some(PortRange::single(1).unwrap())
            ),
            Err(RuleError::IcmpPorts)
        );
        assert_eq!(
            Rule::new(From::Operators, Some(BTreeSet::new()), Proto::Tcp, None),
            Err(RuleError::NoRoles)
        );
        assert_eq!(
            Rule::new(
                From::Operator(operator(2)),
                Some([Role::Sentry, Role::Producer].into()),
                Proto::Tcp,
                None
            ),
            Err(RuleError::HiddenRole("producer"))
        );
        assert!(Rule::new(From::Own, Some([Role::Producer].into()), Proto::Tcp, None).is_ok());
        assert_eq!("0".parse::<PortRange>(), Err(RuleError::PortZero));
        assert_eq!(
            "90-80".parse::<PortRange>(),
            Err(RuleError::EmptyPorts {
                first: 90,
                last: 80
            })
        );
        assert!(matches!(
            "http".parse::<PortRange>(),
            Err(RuleError::NotPorts(_))
        ));
        assert!(matches!(
            "1-2-3".parse::<PortRange>(),
            Err(RuleError::NotPorts(_))
        ));
        assert!(matches!(
            "65536".parse::<PortRange>(),
            Err(RuleError::NotPorts(_))
        ));
        let range: PortRange = " 80 - 90 ".parse().unwrap();
        assert_eq!(range.to_string(), "80-90");
        assert!(range.contains(80) && range.contains(90) && !range.contains(91));
    }

    #[test]
    fn a_rule_naming_the_own_operator_by_id_is_for_no_other() {
        let rules = Rules {
            open_to_own: false,
            inbound: vec![Rule::new(From::Operator(operator(1)), None, Proto::Any, None).unwrap()],
            ..Rules::default()
        };
        assert!(
            !rules
                .policy(&local(), &peer(1, Role::Sentry))
                .inbound()
                .admits(Service::Tcp(22))
        );
    }
}
