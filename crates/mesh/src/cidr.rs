//! IP networks and interface addresses in CIDR notation.
//!
//! A [`Cidr`] is an address with a prefix length. Host bits may be set, so
//! the same type holds an interface address with its subnet
//! (`198.18.1.1/24`, as wg-quick's `Address` takes it) and a network
//! (`198.18.0.0/15`). Where only a network makes sense — a card's allowed
//! IPs — the card checks [`Cidr::is_network`], so a typo such as
//! `198.18.1.1/24` for `198.18.1.0/24` is caught rather than silently masked.
//! A bare address reads as a single host (`/32` or `/128`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::codec::{DecodeError, Reader, Writer};

/// An IP address with a prefix length no longer than the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why text is not an address in CIDR notation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidrError {
    /// The part before `/` is not an IP address.
    #[error("`{0}` is not an IP address")]
    Address(String),
    /// The prefix is not a number in range for the address family.
    #[error("`{prefix}` is not a prefix length for {family} (0 to {max})")]
    Prefix {
        /// The prefix text.
        prefix: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The longest prefix of the family.
        max: u8,
    },
}

impl Cidr {
    /// The address with this prefix length.
    ///
    /// # Errors
    ///
    /// [`CidrError::Prefix`] when the prefix exceeds 32 (IPv4) or 128 (IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, CidrError> {
        let max = max_prefix(addr);
        if prefix > max {
            return Err(CidrError::Prefix {
                prefix: prefix.to_string(),
                family: family(addr),
                max,
            });
        }
        Ok(Self { addr, prefix })
    }

    /// The single address, as `/32` or `/128`.
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix: max_prefix(addr),
        }
    }

    /// The address as written, host bits included.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The network: the address with its host bits cleared.
    pub fn network(&self) -> Self {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Self {
            addr,
            prefix: self.prefix,
        }
    }

    /// Whether no host bits are set, so this names a network exactly.
    pub fn is_network(&self) -> bool {
        self.network() == *self
    }

    /// Whether every address of `other`'s network is in this network
    /// (host bits of either are ignored; another family is never inside).
    pub fn contains(&self, other: &Cidr) -> bool {
        let same_family = self.addr.is_ipv4() == other.addr.is_ipv4();
        same_family
            && other.prefix >= self.prefix
            && Self {
                addr: other.addr,
                prefix: self.prefix,
            }
            .network()
                == self.network()
    }

    /// Whether the two networks share an address: one contains the other.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        match self.addr {
            IpAddr::V4(a) => {
                w.u8(4);
                w.array(&a.octets());
            }
            IpAddr::V6(a) => {
                w.u8(6);
                w.array(&a.octets());
            }
        }
        w.u8(self.prefix);
    }

    pub(crate) fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let addr = match r.u8(field)? {
            4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>(field)?)),
            6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>(field)?)),
            family => {
                return Err(DecodeError::BadValue {
                    field,
                    value: family.into(),
                });
            }
        };
        let prefix = r.u8(field)?;
        Self::new(addr, prefix).map_err(|_| DecodeError::Invalid {
            field,
            reason: "prefix longer than the address",
        })
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
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

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let text = text.trim();
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| CidrError::Address(addr_text.to_owned()))?;
        let Some(prefix_text) = prefix_text else {
            return Ok(Self::host(addr));
        };
        let bad_prefix = || CidrError::Prefix {
            prefix: prefix_text.to_owned(),
            family: family(addr),
            max: max_prefix(addr),
        };
        // Digits only: no sign, no spaces, no leading `+`.
        if prefix_text.is_empty() || !prefix_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_prefix());
        }
        let prefix: u8 = prefix_text.parse().map_err(|_| bad_prefix())?;
        Self::new(addr, prefix).map_err(|_| bad_prefix())
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_and_prints() {
        for (text, shown) in [
            ("198.18.1.1/24", "198.18.1.1/24"),
            ("198.18.1.1", "198.18.1.1/32"),
            ("198.18.0.0/15", "198.18.0.0/15"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::1/64", "2001:db8::1/64"),
            ("2001:db8::1", "2001:db8::1/128"),
            (" ::/0 ", "::/0"),
        ] {
            let cidr: Cidr = text.parse().unwrap();
            assert_eq!(cidr.to_string(), shown);
            assert_eq!(shown.parse::<Cidr>().unwrap(), cidr);
        }
    }

    #[test]
    fn refuses_bad_text() {
        assert_eq!(
            "198.18.1/24".parse::<Cidr>(),
            Err(CidrError::Address("198.18.1".into()))
        );
        for (text, family, max) in [
            ("198.18.1.1/33", "IPv4", 32),
            ("198.18.1.1/", "IPv4", 32),
            ("198.18.1.1/+8", "IPv4", 32),
            ("198.18.1.1/-1", "IPv4", 32),
            ("::1/129", "IPv6", 128),
            ("::1/99999999999", "IPv6", 128),
        ] {
            let err = text.parse::<Cidr>().unwrap_err();
            assert!(
                matches!(&err, CidrError::Prefix { family: f, max: m, .. } if *f == family && *m == max),
                "{text}: {err:?}"
            );
        }
    }

    #[test]
    fn networks_and_host_bits() {
        let cidr: Cidr = "198.18.1.1/24".parse().unwrap();
        assert!(!cidr.is_network());
        assert_eq!(cidr.network().to_string(), "198.18.1.0/24");
        assert!(cidr.network().is_network());
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().is_network());
        assert!(!"1.0.0.0/0".parse::<Cidr>().unwrap().is_network());
        assert!("198.18.1.1/32".parse::<Cidr>().unwrap().is_network());
        assert_eq!(
            "2001:db8::1/32"
                .parse::<Cidr>()
                .unwrap()
                .network()
                .to_string(),
            "2001:db8::/32"
        );
    }

    #[test]
    fn containment_and_overlap() {
        let cidr = |text: &str| text.parse::<Cidr>().unwrap();
        let overlay = cidr("198.19.0.0/16");
        assert!(overlay.contains(&cidr("198.19.3.0/24")));
        assert!(overlay.contains(&cidr("198.19.3.7")));
        assert!(overlay.contains(&overlay));
        assert!(cidr("198.19.1.1/16").contains(&cidr("198.19.200.0/24")));
        assert!(!overlay.contains(&cidr("198.18.0.0/15")));
        assert!(!overlay.contains(&cidr("0.0.0.0/1")));
        assert!(!overlay.contains(&cidr("128.0.0.0/1")));
        assert!(!overlay.contains(&cidr("198.20.0.1")));
        assert!(!overlay.contains(&cidr("::/1")));
        assert!(!cidr("::/0").contains(&cidr("198.19.0.1")));
        assert!(cidr("0.0.0.0/0").contains(&cidr("198.19.0.1")));
        assert!(overlay.overlaps(&cidr("198.18.0.0/15")));
        assert!(overlay.overlaps(&cidr("198.19.255.255")));
        assert!(!cidr("198.19.3.0/24").overlaps(&cidr("198.19.4.0/24")));
    }

    #[test]
    fn decoding_refuses_impossible_values() {
        let mut r = Reader::new(&[4, 198, 18, 0, 1, 33]);
        assert!(matches!(
            Cidr::decode(&mut r, "address"),
            Err(DecodeError::Invalid { .. })
        ));
        let mut r = Reader::new(&[5, 198, 18, 0, 1, 32]);
        assert_eq!(
            Cidr::decode(&mut r, "address"),
            Err(DecodeError::BadValue {
                field: "address",
                value: 5
            })
        );
    }

    fn any_cidr() -> impl Strategy<Value = Cidr> {
        prop_oneof![
            (any::<u32>(), 0u8..=32)
                .prop_map(|(a, p)| Cidr::new(Ipv4Addr::from(a).into(), p).unwrap()),
            (any::<u128>(), 0u8..=128)
                .prop_map(|(a, p)| Cidr::new(Ipv6Addr::from(a).into(), p).unwrap()),
        ]
    }

    proptest! {
        #[test]
        fn text_and_binary_round_trips(cidr in any_cidr()) {
            prop_assert_eq!(cidr.to_string().parse::<Cidr>().unwrap(), cidr);
            let mut w = Writer::new();
            cidr.encode(&mut w);
            let bytes = w.into_bytes();
            let mut r = Reader::new(&bytes);
            prop_assert_eq!(Cidr::decode(&mut r, "cidr").unwrap(), cidr);
            prop_assert!(r.finish().is_ok());
        }

        /// Containment agrees with a plain comparison of the addresses'
        /// leading bits.
        #[test]
        fn containment_matches_the_leading_bits(a in any::<u32>(), p in 0u8..=32, b in any::<u32>(), q in 0u8..=32) {
            let outer = Cidr::new(Ipv4Addr::from(a).into(), p).unwrap();
            let inner = Cidr::new(Ipv4Addr::from(b).into(), q).unwrap();
            let mask = u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0);
            prop_assert_eq!(outer.contains(&inner), q >= p && a & mask == b & mask);
            prop_assert_eq!(outer.overlaps(&inner), inner.overlaps(&outer));
        }
    }
}
