//! IP networks and interface addresses in CIDR notation, read by one parser.
//!
//! * An [`IpNet`] is a network: an address whose host bits are all zero and
//!   a prefix length (`198.18.0.0/15`). Allowed IPs, routes and overlay
//!   ranges are networks. Text or values with host bits set are refused,
//!   not silently masked: `198.18.1.1/24` written for an allowed IP is more
//!   likely a typo for `/32`, or for `198.18.1.0/24`, than a wish for the
//!   whole `/24`, and a range a rival signs must mean exactly what it says.
//!   [`IpNet::truncating`] clears host bits for the one caller that must
//!   (the UAPI, where `wg` and wireguard-go clear them).
//! * An [`InterfaceAddress`] is an address of an interface with the prefix
//!   length of its subnet (`198.18.1.1/24`, as wg-quick's `Address` takes
//!   it): its host bits are the point. [`InterfaceAddress::network`] is its
//!   subnet.
//!
//! A bare address reads as a single host (`/32` or `/128`) in both.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 network: an address with its host bits all zero, and a
/// prefix length no longer than the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix_len: u8,
}

/// An address of an interface with the prefix length of its subnet:
/// `198.18.0.1/24` is the host `198.18.0.1` on the network `198.18.0.0/24`.
/// Unlike an [`IpNet`] it keeps its host bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceAddress {
    addr: IpAddr,
    prefix_len: u8,
}

/// Why text or values are not a network or an interface address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpNetError {
    /// The part before `/` is not an IP address.
    #[error("`{0}` is not an IP address")]
    Address(String),
    /// The prefix length is not a number in range for the address family.
    #[error("`{prefix}` is not a prefix length for {family} (0 to {max})")]
    Prefix {
        /// The prefix length as written.
        prefix: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The longest prefix of the family.
        max: u8,
    },
    /// A network with host bits set.
    #[error("{address} has host bits set; write its network, {}", address.network())]
    HostBits {
        /// The address and prefix length as given.
        address: InterfaceAddress,
    },
}

impl IpNet {
    /// The network `addr/prefix_len`.
    ///
    /// # Errors
    ///
    /// [`IpNetError::Prefix`] when the length exceeds 32 (IPv4) or 128
    /// (IPv6); [`IpNetError::HostBits`] when `addr` has bits set past it.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, IpNetError> {
        let address = InterfaceAddress::new(addr, prefix_len)?;
        let network = address.network();
        if network.addr != addr {
            return Err(IpNetError::HostBits { address });
        }
        Ok(network)
    }

    /// The network of the first `prefix_len` bits of `addr`, its host bits
    /// cleared (as `wg` and wireguard-go clear an allowed IP's).
    ///
    /// # Errors
    ///
    /// [`IpNetError::Prefix`] when the length exceeds 32 (IPv4) or 128
    /// (IPv6).
    pub fn truncating(addr: IpAddr, prefix_len: u8) -> Result<Self, IpNetError> {
        InterfaceAddress::new(addr, prefix_len).map(|address| address.network())
    }

    /// The network of the single address `addr`, a `/32` or `/128`.
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix_len: max_prefix_len(addr),
        }
    }

    /// The network's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The number of leading bits that name the network.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `addr` lies in this network (an address of the other family
    /// never does; an IPv4-mapped IPv6 address is IPv6).
    pub fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.addr.is_ipv4() && mask(addr, self.prefix_len) == self.addr
    }

    /// Whether every address of `other` is in this network.
    pub fn contains_net(&self, other: &IpNet) -> bool {
        other.prefix_len >= self.prefix_len && self.contains(other.addr)
    }

    /// Whether the two networks share an address: one contains the other.
    pub fn overlaps(&self, other: &IpNet) -> bool {
        self.contains_net(other) || other.contains_net(self)
    }
}

impl InterfaceAddress {
    /// The address `addr` on a subnet of `prefix_len` bits.
    ///
    /// # Errors
    ///
    /// [`IpNetError::Prefix`] when the length exceeds 32 (IPv4) or 128
    /// (IPv6).
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, IpNetError> {
        let max = max_prefix_len(addr);
        if prefix_len > max {
            return Err(IpNetError::Prefix {
                prefix: prefix_len.to_string(),
                family: family(addr),
                max,
            });
        }
        Ok(Self { addr, prefix_len })
    }

    /// The single address `addr` on a subnet of its own, a `/32` or
    /// `/128`.
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix_len: max_prefix_len(addr),
        }
    }

    /// The host address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length of the subnet.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The subnet the address lies in (host bits cleared).
    pub fn network(&self) -> IpNet {
        IpNet {
            addr: mask(self.addr, self.prefix_len),
            prefix_len: self.prefix_len,
        }
    }

    /// Whether the host bits are all zeros or, in IPv4, all ones: the
    /// network's own address or its broadcast address, which are no host's
    /// address in subnets with room for hosts.
    pub fn is_network_or_broadcast(&self) -> bool {
        let (bits, width) = match self.addr {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let host_len = width - u32::from(self.prefix_len);
        if host_len < 2 {
            return false; // /31, /32, /127, /128: every address is a host.
        }
        let host_mask = u128::MAX >> (128 - host_len);
        let host = bits & host_mask;
        host == 0 || (self.addr.is_ipv4() && host == host_mask)
    }
}

fn max_prefix_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn family(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// `addr` with all but its first `prefix_len` bits cleared.
fn mask(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

impl FromStr for InterfaceAddress {
    type Err = IpNetError;

    /// Parses `ADDRESS/LENGTH` (surrounding white space ignored): the length
    /// in decimal digits only, no sign; an address alone has the full
    /// length (a /32 or /128, a subnet of one).
    fn from_str(text: &str) -> Result<Self, IpNetError> {
        let text = text.trim();
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| IpNetError::Address(addr_text.to_owned()))?;
        let Some(prefix_text) = prefix_text else {
            return Self::new(addr, max_prefix_len(addr));
        };
        let bad_prefix = || IpNetError::Prefix {
            prefix: prefix_text.to_owned(),
            family: family(addr),
            max: max_prefix_len(addr),
        };
        // Digits only: no sign, no spaces, no leading `+`.
        if prefix_text.is_empty() || !prefix_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_prefix());
        }
        let prefix_len: u8 = prefix_text.parse().map_err(|_| bad_prefix())?;
        Self::new(addr, prefix_len).map_err(|_| bad_prefix())
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    /// Parses `ADDRESS/LENGTH` as [`InterfaceAddress`] does, and refuses it
    /// with host bits set.
    fn from_str(text: &str) -> Result<Self, IpNetError> {
        let address: InterfaceAddress = text.parse()?;
        IpNet::new(address.addr, address.prefix_len)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl fmt::Display for InterfaceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_print() {
        for (text, shown) in [
            ("198.18.1.0/24", "198.18.1.0/24"),
            ("198.18.1.1", "198.18.1.1/32"),
            ("198.18.0.0/15", "198.18.0.0/15"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("2001:db8::1", "2001:db8::1/128"),
            (" ::/0 ", "::/0"),
        ] {
            assert_eq!(net(text).to_string(), shown);
            assert_eq!(net(shown), net(text));
        }
    }

    #[test]
    fn a_network_with_host_bits_is_refused_naming_its_network() {
        let error = "198.18.1.1/24".parse::<IpNet>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "198.18.1.1/24 has host bits set; write its network, 198.18.1.0/24"
        );
        assert!("1.0.0.0/0".parse::<IpNet>().is_err());
        assert!("2001:db8::1/64".parse::<IpNet>().is_err());
        assert_eq!(
            IpNet::truncating("198.18.7.9".parse().unwrap(), 15)
                .unwrap()
                .to_string(),
            "198.18.0.0/15"
        );
    }

    #[test]
    fn bad_text_is_refused() {
        assert_eq!(
            "198.18.1/24".parse::<IpNet>(),
            Err(IpNetError::Address("198.18.1".into()))
        );
        assert_eq!(
            "".parse::<InterfaceAddress>(),
            Err(IpNetError::Address("".into()))
        );
        for (text, family, max) in [
            ("198.18.1.1/33", "IPv4", 32),
            ("198.18.1.1/", "IPv4", 32),
            ("198.18.1.1/+8", "IPv4", 32),
            ("198.18.1.1/-1", "IPv4", 32),
            ("::1/129", "IPv6", 128),
            ("::1/99999999999", "IPv6", 128),
        ] {
            for error in [
                text.parse::<IpNet>().unwrap_err(),
                text.parse::<InterfaceAddress>().unwrap_err(),
            ] {
                assert!(
                    matches!(&error, IpNetError::Prefix { family: f, max: m, .. } if *f == family && *m == max),
                    "{text}: {error:?}"
                );
            }
        }
    }

    #[test]
    fn containment_and_overlap() {
        let overlay = net("198.19.0.0/16");
        assert!(overlay.contains_net(&net("198.19.3.0/24")));
        assert!(overlay.contains_net(&net("198.19.3.7")));
        assert!(overlay.contains_net(&overlay));
        assert!(!overlay.contains_net(&net("198.18.0.0/15")));
        assert!(!overlay.contains_net(&net("0.0.0.0/1")));
        assert!(!overlay.contains_net(&net("128.0.0.0/1")));
        assert!(!overlay.contains_net(&net("::/1")));
        assert!(!net("::/0").contains_net(&net("198.19.0.1")));
        assert!(net("0.0.0.0/0").contains_net(&net("198.19.0.1")));
        assert!(overlay.overlaps(&net("198.18.0.0/15")));
        assert!(overlay.overlaps(&net("198.19.255.255")));
        assert!(!net("198.19.3.0/24").overlaps(&net("198.19.4.0/24")));
        assert!(overlay.contains("198.19.255.255".parse().unwrap()));
        assert!(!overlay.contains("198.20.0.0".parse().unwrap()));
        assert!(!overlay.contains("::ffff:198.19.0.1".parse().unwrap()));
        assert!(net("::/0").contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn an_interface_address_keeps_its_host_bits() {
        let address: InterfaceAddress = "198.18.0.1/24".parse().unwrap();
        assert_eq!(address.to_string(), "198.18.0.1/24");
        assert_eq!(address.addr(), "198.18.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(address.network(), net("198.18.0.0/24"));
        assert_eq!(
            "198.18.0.1"
                .parse::<InterfaceAddress>()
                .unwrap()
                .to_string(),
            "198.18.0.1/32"
        );
        assert_eq!(
            "2001:db8::1/64"
                .parse::<InterfaceAddress>()
                .unwrap()
                .network(),
            net("2001:db8::/64")
        );
    }

    #[test]
    fn network_and_broadcast_addresses_are_no_hosts() {
        for (text, expected) in [
            ("198.18.0.0/24", true),
            ("198.18.0.255/24", true),
            ("198.18.0.1/24", false),
            ("198.18.0.0/31", false),
            ("198.18.0.1/31", false),
            ("198.18.0.0/32", false),
            ("0.0.0.0/0", true),
            ("2001:db8::/64", true),
            ("2001:db8::ffff:ffff:ffff:ffff/64", false),
            ("::/0", true),
            ("2001:db8::/127", false),
        ] {
            let address: InterfaceAddress = text.parse().unwrap();
            assert_eq!(address.is_network_or_broadcast(), expected, "{text}");
        }
    }

    fn any_address() -> impl Strategy<Value = InterfaceAddress> {
        prop_oneof![
            (any::<u32>(), 0u8..=32).prop_map(|(a, p)| InterfaceAddress::new(
                Ipv4Addr::from(a).into(),
                p
            )
            .unwrap()),
            (any::<u128>(), 0u8..=128).prop_map(|(a, p)| InterfaceAddress::new(
                Ipv6Addr::from(a).into(),
                p
            )
            .unwrap()),
        ]
    }

    proptest! {
        #[test]
        fn text_round_trips(address in any_address()) {
            prop_assert_eq!(address.to_string().parse::<InterfaceAddress>().unwrap(), address);
            let network = address.network();
            prop_assert_eq!(network.to_string().parse::<IpNet>().unwrap(), network);
            prop_assert!(network.contains(address.addr()));
            prop_assert_eq!(
                IpNet::new(address.addr(), address.prefix_len()).is_ok(),
                network.addr() == address.addr()
            );
        }

        /// Containment agrees with a plain comparison of the addresses'
        /// leading bits.
        #[test]
        fn containment_matches_the_leading_bits(a in any::<u32>(), p in 0u8..=32, b in any::<u32>(), q in 0u8..=32) {
            let outer = IpNet::truncating(Ipv4Addr::from(a).into(), p).unwrap();
            let inner = IpNet::truncating(Ipv4Addr::from(b).into(), q).unwrap();
            let mask = u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0);
            prop_assert_eq!(outer.contains_net(&inner), q >= p && a & mask == b & mask);
            prop_assert_eq!(outer.overlaps(&inner), inner.overlaps(&outer));
        }
    }
}
