//! One peer's compiled verdict table: what it may open to this host
//! (inbound) and this host to it (outbound), as the data path reads it for
//! every packet: a flag, or a short list scanned without allocating.

use super::rules::{PortRange, Proto};

/// What a packet that may open a flow asks for: the service it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// TCP to this port.
    Tcp(u16),
    /// UDP to this port.
    Udp(u16),
    /// An ICMP or ICMPv6 echo request.
    IcmpEcho,
    /// Any other protocol (by its number), or an ICMP message that is
    /// neither an echo nor an error.
    Other(u8),
}

/// What one rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Allow {
    proto: Proto,
    /// `None`: every port.
    ports: Option<PortRange>,
}

impl Allow {
    /// Allows `proto` to `ports` (`None`: every port).
    pub(crate) fn new(proto: Proto, ports: Option<PortRange>) -> Self {
        Self { proto, ports }
    }

    /// Whether this allows `service`.
    #[inline]
    fn admits(self, service: Service) -> bool {
        let port_in = |port| self.ports.is_none_or(|ports| ports.contains(port));
        match (self.proto, service) {
            (Proto::Any, _) if self.ports.is_none() => true,
            (Proto::Any | Proto::Tcp, Service::Tcp(port))
            | (Proto::Any | Proto::Udp, Service::Udp(port)) => port_in(port),
            (Proto::Icmp, Service::IcmpEcho) => true,
            _ => false,
        }
    }

    /// Whether this allows every packet, whatever its protocol or port.
    fn admits_everything(self) -> bool {
        self.proto == Proto::Any && self.ports.is_none()
    }
}

/// What one direction of a peer's traffic may open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Allows {
    /// Everything.
    All,
    /// What one of these allows (allocated when compiled, not per packet).
    Only(Box<[Allow]>),
}

impl Allows {
    /// What one of `allows` allows; `All` when one allows everything.
    pub(crate) fn only(allows: impl IntoIterator<Item = Allow>) -> Self {
        let allows: Box<[Allow]> = allows.into_iter().collect();
        if allows.iter().any(|allow| allow.admits_everything()) {
            Self::All
        } else {
            Self::Only(allows)
        }
    }

    /// Whether a packet asking for `service` may open a flow.
    #[inline]
    pub(crate) fn admits(&self, service: Service) -> bool {
        match self {
            Self::All => true,
            Self::Only(allows) => allows.iter().any(|allow| allow.admits(service)),
        }
    }

    /// Whether everything passes: what only answers a flow, and a fragment
    /// after the first (which carries no port), pass without their flow
    /// tracked only then.
    #[inline]
    pub(crate) fn is_all(&self) -> bool {
        matches!(self, Self::All)
    }
}

/// A peer's verdict table, both ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPolicy {
    inbound: Allows,
    outbound: Allows,
}

impl PeerPolicy {
    /// Everything both ways: a peer the firewall leaves alone.
    pub(crate) fn open() -> Self {
        Self::new(Allows::All, Allows::All)
    }

    /// `inbound` from the peer, `outbound` to it.
    pub(crate) fn new(inbound: Allows, outbound: Allows) -> Self {
        Self { inbound, outbound }
    }

    /// What the peer may open to this host.
    pub(crate) fn inbound(&self) -> &Allows {
        &self.inbound
    }

    /// What this host may open to the peer.
    pub(crate) fn outbound(&self) -> &Allows {
        &self.outbound
    }

    /// Whether everything passes both ways, so the data path need not even
    /// read the packet.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        matches!((&self.inbound, &self.outbound), (Allows::All, Allows::All))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn service() -> impl Strategy<Value = Service> {
        prop_oneof![
            any::<u16>().prop_map(Service::Tcp),
            any::<u16>().prop_map(Service::Udp),
            Just(Service::IcmpEcho),
            any::<u8>().prop_map(Service::Other),
        ]
    }

    fn allow() -> impl Strategy<Value = Allow> {
        let proto = prop_oneof![
            Just(Proto::Any),
            Just(Proto::Tcp),
            Just(Proto::Udp),
            Just(Proto::Icmp)
        ];
        let ports = prop::option::of(
            (1u16.., 1u16..).prop_map(|(a, b)| PortRange::new(a.min(b), a.max(b)).unwrap()),
        );
        (proto, ports).prop_map(|(proto, ports)| {
            Allow::new(proto, if proto == Proto::Icmp { None } else { ports })
        })
    }

    /// The reference: what an allow admits, said the long way.
    fn reference(allow: Allow, service: Service) -> bool {
        let ports_ok = |port: u16| allow.ports.is_none_or(|ports| ports.contains(port));
        match service {
            Service::Tcp(port) => matches!(allow.proto, Proto::Any | Proto::Tcp) && ports_ok(port),
            Service::Udp(port) => matches!(allow.proto, Proto::Any | Proto::Udp) && ports_ok(port),
            Service::IcmpEcho => {
                allow.proto == Proto::Icmp || (allow.proto == Proto::Any && allow.ports.is_none())
            }
            Service::Other(_) => allow.proto == Proto::Any && allow.ports.is_none(),
        }
    }

    proptest! {
        #[test]
        fn a_list_admits_what_one_of_its_allows_admits(
            allows in prop::collection::vec(allow(), 0..24),
            services in prop::collection::vec(service(), 1..32),
        ) {
            let compiled = Allows::only(allows.iter().copied());
            for service in services {
                let expected = allows.iter().any(|&allow| reference(allow, service));
                prop_assert_eq!(compiled.admits(service), expected);
            }
            prop_assert_eq!(
                compiled.is_all(),
                allows.iter().any(|allow| allow.proto == Proto::Any && allow.ports.is_none())
            );
        }
    }

    #[test]
    fn an_empty_list_admits_nothing() {
        let none = Allows::only([]);
        assert!(!none.admits(Service::Tcp(1)));
        assert!(!none.admits(Service::IcmpEcho));
        assert!(!none.is_all());
        assert!(!PeerPolicy::new(none, Allows::All).is_open());
        assert!(PeerPolicy::open().is_open());
    }
}
