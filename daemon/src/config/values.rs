//! The value types of the config that the rest of the daemon also uses: a
//! TUN device name and an interface address.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::ipnet::{IpNet, IpNetError};

/// The longest device name Linux accepts (`IFNAMSIZ` less the NUL).
pub const MAX_INTERFACE_NAME_LEN: usize = 15;

/// A network device name: 1 to 15 bytes of `[A-Za-z0-9_.-]`, neither `.`
/// nor `..` (which would name directories under `/sys/class/net`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceName(String);

/// Text that is not a usable device name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceNameError {
    /// The name is empty.
    #[error("an interface name cannot be empty")]
    Empty,
    /// The name is longer than [`MAX_INTERFACE_NAME_LEN`] bytes.
    #[error("an interface name has at most {MAX_INTERFACE_NAME_LEN} bytes, not {0}")]
    TooLong(usize),
    /// The name has a character outside `[A-Za-z0-9_.-]`.
    #[error("an interface name has only letters, digits, '_', '.' and '-', not {0:?}")]
    Character(char),
    /// The name is `.` or `..`.
    #[error("an interface name cannot be \".\" or \"..\"")]
    Dots,
}

impl InterfaceName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for InterfaceName {
    type Err = InterfaceNameError;

    fn from_str(text: &str) -> Result<Self, InterfaceNameError> {
        if text.is_empty() {
            return Err(InterfaceNameError::Empty);
        }
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(InterfaceNameError::Character(c));
        }
        if text.len() > MAX_INTERFACE_NAME_LEN {
            return Err(InterfaceNameError::TooLong(text.len()));
        }
        if text == "." || text == ".." {
            return Err(InterfaceNameError::Dots);
        }
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An address of the interface with the prefix length of its subnet:
/// `198.18.0.1/24` is the host `198.18.0.1` on the network `198.18.0.0/24`.
/// Unlike [`IpNet`] it keeps the host bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceAddress {
    addr: IpAddr,
    prefix_len: u8,
}

impl InterfaceAddress {
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
        IpNet::new(self.addr, self.prefix_len).unwrap_or_else(|| {
            unreachable!("the prefix length was checked against the address width")
        })
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

impl FromStr for InterfaceAddress {
    type Err = IpNetError;

    /// Parses `ADDRESS/LENGTH`; an address alone has the full length (a /32
    /// or /128, a subnet of one).
    fn from_str(text: &str) -> Result<Self, IpNetError> {
        let network: IpNet = text.parse()?;
        let text = text.trim();
        let addr = text.split_once('/').map_or(text, |(addr, _)| addr);
        let addr = addr
            .parse()
            .map_err(|_| IpNetError::Address(addr.to_owned()))?;
        Ok(Self {
            addr,
            prefix_len: network.prefix_len(),
        })
    }
}

impl fmt::Display for InterfaceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_linux_rules() {
        for name in ["sm0", "a", "wg-mainnet_1.2", "123456789012345"] {
            assert_eq!(name.parse::<InterfaceName>().unwrap().as_str(), name);
        }
        for (name, error) in [
            ("", InterfaceNameError::Empty),
            ("1234567890123456", InterfaceNameError::TooLong(16)),
            ("sm/0", InterfaceNameError::Character('/')),
            ("sm:0", InterfaceNameError::Character(':')),
            ("smé", InterfaceNameError::Character('é')),
            (".", InterfaceNameError::Dots),
            ("..", InterfaceNameError::Dots),
        ] {
            assert_eq!(name.parse::<InterfaceName>(), Err(error), "{name:?}");
        }
    }

    #[test]
    fn an_interface_address_keeps_its_host_bits() {
        let address: InterfaceAddress = "198.18.0.1/24".parse().unwrap();
        assert_eq!(address.to_string(), "198.18.0.1/24");
        assert_eq!(address.addr(), "198.18.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(address.network().to_string(), "198.18.0.0/24");
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
                .network()
                .to_string(),
            "2001:db8::/64"
        );
        for text in ["198.18.0.1/33", "198.18.0/24", "x/24", ""] {
            assert!(text.parse::<InterfaceAddress>().is_err(), "{text:?}");
        }
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
}
