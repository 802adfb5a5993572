//! The syntax of values on the wire: keys in hex, decimal numbers, endpoints
//! and allowed IPs, each parsed as strictly as wireguard-go parses it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use sentrymesh_types::{IpNet, KEY_LEN};
use zeroize::Zeroizing;

/// Parses a key as 64 hex digits, in either case (Go's `hex.DecodeString`,
/// which wireguard-go uses, accepts both; `wg` sends lowercase).
pub(super) fn parse_hex_key(text: &[u8]) -> Option<Zeroizing<[u8; KEY_LEN]>> {
    if text.len() != 2 * KEY_LEN {
        return None;
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    for (byte, pair) in key.iter_mut().zip(text.chunks_exact(2)) {
        let &[high, low] = pair else { return None };
        *byte = (hex_digit(high)? << 4) | hex_digit(low)?;
    }
    Some(key)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Writes `key` as 64 lowercase hex digits, as wireguard-go does.
pub(super) fn write_hex_key(out: &mut impl fmt::Write, key: &[u8; KEY_LEN]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in key {
        out.write_char(char::from(DIGITS[usize::from(byte >> 4)]))?;
        out.write_char(char::from(DIGITS[usize::from(byte & 0xf)]))?;
    }
    Ok(())
}

/// Parses a decimal number as Go's `strconv.ParseUint(text, 10, bits)`: one
/// or more ASCII digits (leading zeros allowed, no sign, no spaces), at most
/// `max`.
pub(super) fn parse_decimal(text: &[u8], max: u64) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter()
        .try_fold(0u64, |number, &c| {
            let digit = c.checked_sub(b'0').filter(|digit| *digit <= 9)?;
            number.checked_mul(10)?.checked_add(u64::from(digit))
        })
        .filter(|number| *number <= max)
}

/// Parses an endpoint as Go's `netip.ParseAddrPort`: `A.B.C.D:PORT` or
/// `[IPV6]:PORT`, the port decimal; an IPv6 address may carry a zone
/// (`[fe80::1%2]:51820`).
///
/// A zone must be a number (an interface index), since `SocketAddrV6` holds
/// no names: `[fe80::1%eth0]:51820`, which wireguard-go accepts, is refused.
pub(super) fn parse_endpoint(text: &[u8]) -> Option<SocketAddr> {
    let text = std::str::from_utf8(text).ok()?;
    let (host, port) = text.rsplit_once(':')?;
    let port = u16::try_from(parse_decimal(port.as_bytes(), u16::MAX.into())?).ok()?;
    match host.strip_prefix('[') {
        Some(bracketed) => {
            let inner = bracketed.strip_suffix(']')?;
            let (addr, zone) = match inner.split_once('%') {
                Some((addr, zone)) => (addr, Some(zone)),
                None => (inner, None),
            };
            let addr: Ipv6Addr = addr.parse().ok()?;
            let scope_id = match zone {
                None => 0,
                Some(zone) => {
                    u32::try_from(parse_decimal(zone.as_bytes(), u32::MAX.into())?).ok()?
                }
            };
            Some(SocketAddr::V6(SocketAddrV6::new(addr, port, 0, scope_id)))
        }
        None => {
            let addr: Ipv4Addr = host.parse().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(addr, port)))
        }
    }
}

/// Parses an allowed IP as Go's `netip.ParsePrefix`: `ADDRESS/LENGTH` with
/// the length required, decimal without sign or leading zeros, at most the
/// address's width; no IPv6 zone. Host bits may be set: they are cleared, as
/// wireguard-go's table clears them.
pub(super) fn parse_prefix(text: &[u8]) -> Option<IpNet> {
    let text = std::str::from_utf8(text).ok()?;
    let (addr, length) = text.rsplit_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    if length.len() > 1 && length.starts_with('0') {
        return None;
    }
    let length = u8::try_from(parse_decimal(length.as_bytes(), 128)?).ok()?;
    IpNet::truncating(addr, length).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_take_either_case_and_exactly_64_digits() {
        let lower = "00ff10ab".repeat(8);
        let key = parse_hex_key(lower.as_bytes()).unwrap();
        assert_eq!(&key[..4], &[0x00, 0xff, 0x10, 0xab]);
        let upper = lower.to_uppercase();
        assert_eq!(*parse_hex_key(upper.as_bytes()).unwrap(), *key);
        let mut written = String::new();
        write_hex_key(&mut written, &key).unwrap();
        assert_eq!(written, lower);

        for bad in [
            &lower[..62],
            &format!("{lower}00"),
            &format!("{}g", &lower[..63]),
            &format!("{} ", &lower[..63]),
            &format!("+{}", &lower[..63]),
            "",
        ] {
            assert!(parse_hex_key(bad.as_bytes()).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn decimals_are_go_parseuint() {
        assert_eq!(parse_decimal(b"0", 10), Some(0));
        assert_eq!(parse_decimal(b"00080", 65535), Some(80));
        assert_eq!(parse_decimal(b"65535", 65535), Some(65535));
        assert_eq!(
            parse_decimal(b"18446744073709551615", u64::MAX),
            Some(u64::MAX)
        );
        for bad in [
            &b""[..],
            b"65536",
            b"+1",
            b"-1",
            b" 1",
            b"1 ",
            b"1_000",
            b"0x10",
            b"18446744073709551616",
        ] {
            assert_eq!(parse_decimal(bad, 65535), None, "{bad:?}");
        }
    }

    #[test]
    fn endpoints_are_go_parseaddrport() {
        let parse = |text: &str| parse_endpoint(text.as_bytes());
        assert_eq!(
            parse("198.51.100.7:51820"),
            Some("198.51.100.7:51820".parse().unwrap())
        );
        assert_eq!(
            parse("[2001:db8::1]:51820"),
            Some("[2001:db8::1]:51820".parse().unwrap())
        );
        assert_eq!(parse("[2001:DB8::1]:051820").map(|a| a.port()), Some(51820));
        assert_eq!(parse("[2001:DB8::1]:00080").map(|a| a.port()), Some(80));
        assert_eq!(
            parse("[::ffff:198.51.100.7]:1"),
            Some("[::ffff:198.51.100.7]:1".parse().unwrap())
        );
        let scoped = parse("[fe80::1%3]:51820").unwrap();
        assert!(matches!(scoped, SocketAddr::V6(v6) if v6.scope_id() == 3));
        for bad in [
            "2001:db8::1:51820",
            "[198.51.100.7]:51820",
            "198.51.100.7",
            "198.51.100.7:",
            ":51820",
            "[2001:db8::1]",
            "[2001:db8::1]:65536",
            "[2001:db8::1:51820",
            "[fe80::1%eth0]:51820",
            "[fe80::1%]:51820",
            "[fe80::1%-1]:51820",
            "example.com:51820",
            "198.51.100.7:+80",
            "198.51.100.7: 80",
            "[]:80",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn prefixes_are_go_parseprefix() {
        let parse = |text: &str| parse_prefix(text.as_bytes()).map(|net| net.to_string());
        assert_eq!(parse("10.0.0.2/32").as_deref(), Some("10.0.0.2/32"));
        assert_eq!(parse("10.1.2.3/8").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(parse("0.0.0.0/0").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(parse("FD00::1/64").as_deref(), Some("fd00::/64"));
        assert_eq!(
            parse("::ffff:10.0.0.1/128").as_deref(),
            Some("::ffff:10.0.0.1/128")
        );
        for bad in [
            "10.0.0.2",
            "10.0.0.2/",
            "10.0.0.2/33",
            "10.0.0.2/08",
            "10.0.0.2/+8",
            "10.0.0.2/-8",
            "10.0.0.2/ 8",
            "::/129",
            "fe80::1%3/64",
            "010.0.0.2/32",
            "/32",
            "10.0.0.2/32/32",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
