//! Where a host is reached: its UDP endpoints (`HOST:PORT`) and its chain's
//! peer-to-peer address (`ID@PORT`), as written on a card.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use sentrymesh_types::IpNet;

use crate::codec::{DecodeError, Reader, Writer};
use crate::nodeos::NodeosPeerKey;

/// The longest DNS name, in bytes.
pub const MAX_DNS_NAME_LEN: usize = 253;
/// The longest chain p2p node id, in bytes.
pub const MAX_CHAIN_ID_LEN: usize = 128;

/// The host part of an endpoint: an IP address or a DNS name to resolve.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EndpointHost {
    /// A literal address.
    Ip(IpAddr),
    /// A DNS name (letters, digits, hyphens and dots), resolved by the daemon.
    Name(String),
}

/// A UDP endpoint of a host: `198.18.0.1:51820`, `[2001:db8::1]:51820` or
/// `sentry-1.example.net:51820`.
///
/// The same thing as a peer's endpoint in the engine and in UAPI
/// (`endpoint=`), where its WireGuard UDP port is reached, as a card writes
/// it: the host may be a DNS name, which the daemon resolves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// The address or name.
    pub host: EndpointHost,
    /// The UDP port, never 0.
    pub port: u16,
}

/// Why text is not an endpoint or a chain p2p address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// No `:PORT` (or no `@PORT` for chain p2p).
    #[error("`{0}` has no port: write HOST:PORT, or [IPv6]:PORT")]
    MissingPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("`{0}` is not a port (1 to 65535)")]
    Port(String),
    /// An IPv6 address written without brackets.
    #[error("`{0}`: write an IPv6 endpoint in brackets, as [ADDR]:PORT")]
    UnbracketedIpv6(String),
    /// The host is neither an IP address nor a DNS name.
    #[error("`{0}` is neither an IP address nor a DNS name")]
    Host(String),
    /// The chain node id is empty, too long or has characters other than
    /// letters, digits, `-`, `_` and `.`.
    #[error(
        "`{0}` is not a chain node id (1 to {MAX_CHAIN_ID_LEN} letters, digits, `-`, `_` or `.`)"
    )]
    ChainId(String),
}

impl Endpoint {
    pub(crate) fn encode(&self, w: &mut Writer) {
        match &self.host {
            EndpointHost::Ip(IpAddr::V4(a)) => {
                w.u8(4);
                w.array(&a.octets());
            }
            EndpointHost::Ip(IpAddr::V6(a)) => {
                w.u8(6);
                w.array(&a.octets());
            }
            EndpointHost::Name(name) => {
                w.u8(0);
                w.str(name);
            }
        }
        w.u16(self.port);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        const FIELD: &str = "endpoint";
        let host = match r.u8(FIELD)? {
            4 => EndpointHost::Ip(IpAddr::V4(Ipv4Addr::from(r.array::<4>(FIELD)?))),
            6 => EndpointHost::Ip(IpAddr::V6(Ipv6Addr::from(r.array::<16>(FIELD)?))),
            0 => {
                let name = r.str(FIELD, MAX_DNS_NAME_LEN)?;
                if !is_dns_name(name) {
                    return Err(DecodeError::Invalid {
                        field: FIELD,
                        reason: "not a DNS name",
                    });
                }
                EndpointHost::Name(name.to_owned())
            }
            kind => {
                return Err(DecodeError::BadValue {
                    field: FIELD,
                    value: kind.into(),
                });
            }
        };
        let port = r.u16("endpoint port")?;
        if port == 0 {
            return Err(DecodeError::BadValue {
                field: "endpoint port",
                value: 0,
            });
        }
        Ok(Self { host, port })
    }

    /// Whether the host is a valid DNS name or an address a peer may be
    /// reached at (see [`unreachable_reason`]) and the port is not 0.
    pub(crate) fn is_valid(&self) -> bool {
        self.port != 0
            && match &self.host {
                EndpointHost::Ip(ip) => unreachable_reason(*ip).is_none(),
                EndpointHost::Name(name) => is_dns_name(name),
            }
    }
}

/// Why `ip` is no address to reach a peer at, or `None` when it may be one.
///
/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is refused rather than
/// read as its IPv4 address: a dual-stack socket sends to it as IPv4, so a
/// check made on the IPv6 form (such as "not inside an IPv4 overlay") would
/// be made on another address than the one used. A loopback, unspecified,
/// multicast or broadcast address names no other host: handshakes to it
/// would reach this host's own services, or every host on a link.
pub fn unreachable_reason(ip: IpAddr) -> Option<&'static str> {
    if ip.to_canonical() != ip {
        Some("an IPv4-mapped IPv6 address (write the IPv4 address)")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
        Some("the broadcast address")
    } else {
        None
    }
}

/// The address to send to a peer whose endpoint is or resolves to `ip`:
/// `ip` in its canonical form (an IPv4-mapped address as IPv4), or `None`
/// when it is loopback, unspecified, multicast or broadcast, or lies inside
/// the mesh `overlay`, where handshakes would be routed into the tunnel.
/// Every check on an endpoint address is made on what this returns.
pub fn underlay_address(ip: IpAddr, overlay: IpNet) -> Option<IpAddr> {
    let ip = ip.to_canonical();
    (unreachable_reason(ip).is_none() && !overlay.contains(ip)).then_some(ip)
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(text: &str) -> Result<Self, EndpointError> {
        let text = text.trim();
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| EndpointError::MissingPort(text.to_owned()))?;
        let port = parse_port(port)?;
        let host = if let Some(inner) = host.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| EndpointError::Host(host.to_owned()))?;
            let addr: Ipv6Addr = inner
                .parse()
                .map_err(|_| EndpointError::Host(host.to_owned()))?;
            EndpointHost::Ip(IpAddr::V6(addr))
        } else if host.contains(':') {
            return Err(EndpointError::UnbracketedIpv6(text.to_owned()));
        } else if let Ok(addr) = host.parse::<Ipv4Addr>() {
            EndpointHost::Ip(IpAddr::V4(addr))
        } else {
            let name = host.to_ascii_lowercase();
            if !is_dns_name(&name) {
                return Err(EndpointError::Host(host.to_owned()));
            }
            EndpointHost::Name(name)
        };
        Ok(Self { host, port })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            EndpointHost::Ip(IpAddr::V6(a)) => write!(f, "[{a}]:{}", self.port),
            EndpointHost::Ip(IpAddr::V4(a)) => write!(f, "{a}:{}", self.port),
            EndpointHost::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

/// A chain's peer-to-peer address of a host, such as a Tendermint node id
/// and its p2p port: `ID@PORT`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainP2p {
    /// The node id: 1 to 128 letters, digits, `-`, `_` or `.`.
    pub id: String,
    /// The p2p port, never 0.
    pub port: u16,
    /// The key a nodeos node signs its p2p handshakes with, for the
    /// `peer-key` lines of the nodes it connects to.
    pub nodeos_peer_key: Option<NodeosPeerKey>,
}

impl ChainP2p {
    /// Writes `p2p`, absent or present, as a card carries it: a tag, `0`
    /// for none, `1` for an id and a port, `2` for an id, a port and a
    /// nodeos peer key; then the fields. A card without a nodeos key so
    /// encodes as it did before cards could carry one.
    pub(crate) fn encode_optional(p2p: Option<&Self>, w: &mut Writer) {
        let Some(p2p) = p2p else {
            w.u8(0);
            return;
        };
        w.u8(if p2p.nodeos_peer_key.is_some() { 2 } else { 1 });
        w.str(&p2p.id);
        w.u16(p2p.port);
        if let Some(key) = &p2p.nodeos_peer_key {
            key.encode(w);
        }
    }

    /// Reads what [`ChainP2p::encode_optional`] writes.
    pub(crate) fn decode_optional(r: &mut Reader<'_>) -> Result<Option<Self>, DecodeError> {
        let with_key = match r.u8("chain p2p tag")? {
            0 => return Ok(None),
            1 => false,
            2 => true,
            tag => {
                return Err(DecodeError::BadValue {
                    field: "chain p2p tag",
                    value: tag.into(),
                });
            }
        };
        let mut p2p = Self::decode(r)?;
        if with_key {
            p2p.nodeos_peer_key = Some(NodeosPeerKey::decode(r)?);
        }
        Ok(Some(p2p))
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = r.str("chain node id", MAX_CHAIN_ID_LEN)?;
        if !is_chain_id(id) {
            return Err(DecodeError::Invalid {
                field: "chain node id",
                reason: "characters other than letters, digits, `-`, `_` or `.`",
            });
        }
        let port = r.u16("chain p2p port")?;
        if port == 0 {
            return Err(DecodeError::BadValue {
                field: "chain p2p port",
                value: 0,
            });
        }
        Ok(Self {
            id: id.to_owned(),
            port,
            nodeos_peer_key: None,
        })
    }

    /// Whether the id is well-formed and the port is not 0.
    pub(crate) fn is_valid(&self) -> bool {
        self.port != 0 && is_chain_id(&self.id)
    }
}

impl FromStr for ChainP2p {
    type Err = EndpointError;

    fn from_str(text: &str) -> Result<Self, EndpointError> {
        let text = text.trim();
        let (id, port) = text
            .rsplit_once('@')
            .ok_or_else(|| EndpointError::MissingPort(text.to_owned()))?;
        if !is_chain_id(id) {
            return Err(EndpointError::ChainId(id.to_owned()));
        }
        Ok(Self {
            id: id.to_owned(),
            port: parse_port(port)?,
            nodeos_peer_key: None,
        })
    }
}

impl fmt::Display for ChainP2p {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.port)
    }
}

fn parse_port(text: &str) -> Result<u16, EndpointError> {
    let bad = || EndpointError::Port(text.to_owned());
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(port) => Ok(port),
    }
}

/// A DNS label: 1 to 63 letters, digits or hyphens, not starting or ending
/// with a hyphen.
pub(crate) fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// A DNS name: dot-separated labels, at most 253 bytes, in lower case (so
/// one name has one encoding), not all digits and dots.
pub(crate) fn is_dns_name(name: &str) -> bool {
    name.len() <= MAX_DNS_NAME_LEN
        && !name.bytes().any(|b| b.is_ascii_uppercase())
        && name.split('.').all(is_dns_label)
        && !looks_like_ipv4(name)
}

/// Digits and dots only: a mistyped IPv4 address rather than a name.
fn looks_like_ipv4(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

fn is_chain_id(id: &str) -> bool {
    (1..=MAX_CHAIN_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_print() {
        for (text, shown) in [
            ("198.18.0.1:51820", "198.18.0.1:51820"),
            ("[2001:db8::1]:51820", "[2001:db8::1]:51820"),
            ("Sentry-1.Example.NET:443", "sentry-1.example.net:443"),
            ("localhost:1", "localhost:1"),
        ] {
            let endpoint: Endpoint = text.parse().unwrap();
            assert_eq!(endpoint.to_string(), shown);
            assert!(endpoint.is_valid());
            let mut w = Writer::new();
            endpoint.encode(&mut w);
            let bytes = w.into_bytes();
            let mut r = Reader::new(&bytes);
            assert_eq!(Endpoint::decode(&mut r).unwrap(), endpoint);
            r.finish().unwrap();
        }
    }

    #[test]
    fn bad_endpoints_are_refused_with_a_reason() {
        assert!(matches!(
            "198.18.0.1".parse::<Endpoint>(),
            Err(EndpointError::MissingPort(_))
        ));
        for port in ["0", "65536", "", "+1", "x"] {
            assert!(matches!(
                format!("198.18.0.1:{port}").parse::<Endpoint>(),
                Err(EndpointError::Port(_))
            ));
        }
        assert!(matches!(
            "2001:db8::1:51820".parse::<Endpoint>(),
            Err(EndpointError::UnbracketedIpv6(_))
        ));
        for host in [
            "[198.18.0.1]",
            "[::1",
            "-bad.example",
            "a..b",
            "198.18.0",
            "a_b",
            "",
        ] {
            assert!(
                matches!(
                    format!("{host}:1").parse::<Endpoint>(),
                    Err(EndpointError::Host(_))
                ),
                "{host}"
            );
        }
        let long = format!("{}.net:1", vec!["a".repeat(63); 4].join("."));
        assert!(matches!(
            long.parse::<Endpoint>(),
            Err(EndpointError::Host(_))
        ));
    }

    #[test]
    fn chain_p2p_parses_and_prints() {
        let p2p: ChainP2p = "f2a1b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4@26656"
            .parse()
            .unwrap();
        assert_eq!(p2p.port, 26656);
        assert_eq!(
            p2p.to_string(),
            "f2a1b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4@26656"
        );
        assert!(p2p.is_valid());
        assert!(matches!(
            "abc".parse::<ChainP2p>(),
            Err(EndpointError::MissingPort(_))
        ));
        assert!(matches!(
            "a b@1".parse::<ChainP2p>(),
            Err(EndpointError::ChainId(_))
        ));
        assert!(matches!(
            "@1".parse::<ChainP2p>(),
            Err(EndpointError::ChainId(_))
        ));
        assert!(matches!(
            "abc@0".parse::<ChainP2p>(),
            Err(EndpointError::Port(_))
        ));
    }

    #[test]
    fn only_an_address_of_another_host_is_an_endpoint() {
        let overlay: IpNet = "198.19.0.0/16".parse().unwrap();
        for (text, reason) in [
            ("[::ffff:198.19.1.7]:51820", "an IPv4-mapped IPv6 address"),
            ("[::ffff:198.18.0.1]:51820", "an IPv4-mapped IPv6 address"),
            ("127.0.0.1:51820", "a loopback address"),
            ("[::1]:51820", "a loopback address"),
            ("0.0.0.0:51820", "the unspecified address"),
            ("[::]:51820", "the unspecified address"),
            ("224.0.0.1:51820", "a multicast address"),
            ("[ff02::1]:51820", "a multicast address"),
            ("255.255.255.255:51820", "the broadcast address"),
        ] {
            let endpoint: Endpoint = text.parse().unwrap();
            assert!(!endpoint.is_valid(), "{text}");
            let EndpointHost::Ip(ip) = endpoint.host else {
                panic!("{text} is an address");
            };
            assert!(
                unreachable_reason(ip).is_some_and(|r| r.starts_with(reason)),
                "{text}"
            );
        }
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        // A resolved address is used in its canonical form, and checked so.
        assert_eq!(
            underlay_address(ip("::ffff:198.18.0.1"), overlay),
            Some(ip("198.18.0.1"))
        );
        assert_eq!(underlay_address(ip("::ffff:198.19.1.7"), overlay), None);
        assert_eq!(underlay_address(ip("198.19.1.7"), overlay), None);
        assert_eq!(underlay_address(ip("127.0.0.1"), overlay), None);
        assert_eq!(underlay_address(ip("::ffff:127.0.0.1"), overlay), None);
        assert_eq!(
            underlay_address(ip("2001:db8::1"), overlay),
            Some(ip("2001:db8::1"))
        );
    }

    #[test]
    fn decoding_refuses_what_parsing_refuses() {
        // A name with an upper-case letter, port 0, an unknown kind.
        for bytes in [
            &[0u8, 0, 1, b'A', 0, 1][..],
            &[4, 198, 18, 0, 1, 0, 0][..],
            &[5, 0, 0][..],
        ] {
            let mut r = Reader::new(bytes);
            assert!(Endpoint::decode(&mut r).is_err(), "{bytes:?}");
        }
    }
}
