//! IP networks in CIDR notation (`198.18.0.0/15`, `2001:db8::/32`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 network: an address and a prefix length, with the host
/// bits cleared (as `wg` shows allowed IPs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix_len: u8,
}

/// Text that is not a network in CIDR notation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    /// The part before the `/` is not an IP address.
    #[error("{0:?} is not an IP address")]
    Address(String),
    /// The prefix length is not a number up to 32 (IPv4) or 128 (IPv6).
    #[error("{0:?} is not a prefix length for this address family")]
    PrefixLength(String),
}

impl IpNet {
    /// The network of `addr` with `prefix_len` leading bits; host bits are
    /// cleared. `None` when the length exceeds the address's width.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Option<Self> {
        let width = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (prefix_len <= width).then(|| Self {
            addr: mask(addr, prefix_len),
            prefix_len,
        })
    }

    /// The network's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The number of leading bits that name the network.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `addr` lies in this network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(addr, self.prefix_len) == self.addr
            }
            _ => false,
        }
    }
}

/// `addr` with all but its first `prefix_len` bits cleared.
fn mask(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    /// Parses `ADDRESS/LENGTH`; an address alone is a host route (/32 or /128).
    fn from_str(text: &str) -> Result<Self, IpNetError> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| IpNetError::Address(addr.to_owned()))?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => width,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|len| *len <= width && !prefix.starts_with('+'))
                .ok_or_else(|| IpNetError::PrefixLength(prefix.to_owned()))?,
        };
        Ok(Self::new(addr, prefix_len).expect("prefix length checked against the width"))
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_canonicalizes() {
        let net: IpNet = "198.18.7.9/15".parse().unwrap();
        assert_eq!(net.to_string(), "198.18.0.0/15");
        assert_eq!(
            "198.18.0.1".parse::<IpNet>().unwrap().to_string(),
            "198.18.0.1/32"
        );
        assert_eq!(
            "2001:db8::1/32".parse::<IpNet>().unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!("0.0.0.0/0".parse::<IpNet>().unwrap().prefix_len(), 0);
        assert_eq!("::/0".parse::<IpNet>().unwrap().to_string(), "::/0");
    }

    #[test]
    fn refuses_bad_text() {
        for text in [
            "",
            "198.18.0.0/33",
            "::/129",
            "198.18.0/24",
            "198.18.0.0/",
            "198.18.0.0/+8",
            "x/8",
            "198.18.0.0/-1",
        ] {
            assert!(text.parse::<IpNet>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn containment_respects_family_and_prefix() {
        let net: IpNet = "198.18.0.0/15".parse().unwrap();
        assert!(net.contains("198.19.255.255".parse().unwrap()));
        assert!(!net.contains("198.20.0.0".parse().unwrap()));
        assert!(!net.contains("::ffff:198.18.0.1".parse().unwrap()));
        let all: IpNet = "::/0".parse().unwrap();
        assert!(all.contains("2001:db8::1".parse().unwrap()));
        assert!(!all.contains("198.18.0.1".parse().unwrap()));
    }
}
