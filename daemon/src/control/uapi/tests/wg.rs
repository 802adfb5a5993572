//! A model of wireguard-tools' `ipc-uapi.h`: what `wg` writes from a
//! `struct wgdevice` (`userspace_set_device`), and how it reads the replies
//! (`userspace_get_device`, and the `errno=` line after a set).

use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use sentrymesh_types::KEY_LEN;

use super::hex;

pub(super) const EPROTO: i32 = 71;
pub(super) const ENETUNREACH: i32 = 101;

/// What `wg` holds before writing a set request (`struct wgdevice`; a field
/// is `Some` when its `WGDEVICE_HAS_*` / `WGPEER_HAS_*` flag is set).
#[derive(Debug, Clone, Default)]
pub(super) struct WgDevice {
    pub(super) private_key: Option<[u8; KEY_LEN]>,
    pub(super) listen_port: Option<u16>,
    pub(super) fwmark: Option<u32>,
    pub(super) replace_peers: bool,
    pub(super) peers: Vec<WgPeer>,
}

#[derive(Debug, Clone)]
pub(super) struct WgPeer {
    pub(super) public_key: [u8; KEY_LEN],
    pub(super) remove: bool,
    pub(super) preshared_key: Option<[u8; KEY_LEN]>,
    pub(super) endpoint: Option<SocketAddr>,
    pub(super) persistent_keepalive: Option<u16>,
    pub(super) replace_allowed_ips: bool,
    /// (`WGALLOWEDIP_REMOVE_ME`, address, prefix length); `wg` does not
    /// clear host bits.
    pub(super) allowed_ips: Vec<(bool, IpAddr, u8)>,
}

impl WgPeer {
    pub(super) fn new(public_key: [u8; KEY_LEN]) -> Self {
        Self {
            public_key,
            remove: false,
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: None,
            replace_allowed_ips: false,
            allowed_ips: Vec::new(),
        }
    }
}

/// The bytes `userspace_set_device` writes for `device`.
pub(super) fn wg_set_request(device: &WgDevice) -> Vec<u8> {
    let mut out = String::from("set=1\n");
    if let Some(key) = device.private_key {
        out += &format!("private_key={}\n", hex(&key));
    }
    if let Some(port) = device.listen_port {
        out += &format!("listen_port={port}\n");
    }
    if let Some(mark) = device.fwmark {
        out += &format!("fwmark={mark}\n");
    }
    if device.replace_peers {
        out += "replace_peers=true\n";
    }
    for peer in &device.peers {
        out += &format!("public_key={}\n", hex(&peer.public_key));
        if peer.remove {
            out += "remove=true\n";
            continue;
        }
        if let Some(key) = peer.preshared_key {
            out += &format!("preshared_key={}\n", hex(&key));
        }
        // getnameinfo(NI_NUMERICHOST | NI_NUMERICSERV), brackets for IPv6.
        match peer.endpoint {
            Some(SocketAddr::V4(v4)) => out += &format!("endpoint={}:{}\n", v4.ip(), v4.port()),
            Some(SocketAddr::V6(v6)) if v6.scope_id() != 0 => {
                out += &format!("endpoint=[{}%{}]:{}\n", v6.ip(), v6.scope_id(), v6.port());
            }
            Some(SocketAddr::V6(v6)) => out += &format!("endpoint=[{}]:{}\n", v6.ip(), v6.port()),
            None => {}
        }
        if let Some(interval) = peer.persistent_keepalive {
            out += &format!("persistent_keepalive_interval={interval}\n");
        }
        if peer.replace_allowed_ips {
            out += "replace_allowed_ips=true\n";
        }
        for (remove, ip, cidr) in &peer.allowed_ips {
            out += &format!("allowed_ip={}{ip}/{cidr}\n", if *remove { "-" } else { "" });
        }
    }
    out += "\n";
    out.into_bytes()
}

/// What `wg` shows after reading a get reply.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct WgShown {
    pub(super) private_key: Option<[u8; KEY_LEN]>,
    pub(super) listen_port: Option<u16>,
    pub(super) fwmark: Option<u32>,
    pub(super) peers: Vec<WgShownPeer>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct WgShownPeer {
    pub(super) public_key: [u8; KEY_LEN],
    pub(super) preshared_key: Option<[u8; KEY_LEN]>,
    pub(super) endpoint: Option<SocketAddr>,
    pub(super) persistent_keepalive: Option<u16>,
    pub(super) allowed_ips: Vec<(IpAddr, u8)>,
    pub(super) last_handshake: (u64, u64),
    pub(super) rx_bytes: u64,
    pub(super) tx_bytes: u64,
}

/// `userspace_get_device`: reads lines up to the blank one; any line it
/// cannot take ends the read with `-EPROTO`, and the result is the `errno=`
/// line's (which must be a plain non-negative number).
pub(super) fn wg_get(reply: &[u8]) -> Result<WgShown, i32> {
    let mut shown = WgShown::default();
    let mut ret = -EPROTO;
    for line in reply.split_inclusive(|&b| b == b'\n') {
        if line == b"\n" {
            return if ret == 0 { Ok(shown) } else { Err(ret) };
        }
        let Some(line) = line.strip_suffix(b"\n") else {
            break;
        };
        let Some((key, value)) = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.split_once('='))
        else {
            break;
        };
        match wg_get_line(&mut shown, key, value) {
            Ok(Some(errno)) => ret = errno,
            Ok(None) => {}
            Err(WgStop::Break) => break,
            Err(WgStop::Return(errno)) => return Err(errno),
        }
    }
    Err(-EPROTO)
}

pub(super) enum WgStop {
    Break,
    Return(i32),
}

/// `NUM(max)`: a digit first, all digits, at most `max`.
pub(super) fn wg_num(value: &str, max: u64) -> Result<u64, WgStop> {
    if !value.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(WgStop::Break);
    }
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= max)
        .ok_or(WgStop::Break)
}

pub(super) fn wg_key(value: &str) -> Result<[u8; KEY_LEN], WgStop> {
    // key_from_hex: exactly 64 hex digits.
    let bytes: Option<Vec<u8>> = (value.len() == 64)
        .then(|| {
            (0..32)
                .map(|i| u8::from_str_radix(value.get(2 * i..2 * i + 2)?, 16).ok())
                .collect()
        })
        .flatten();
    bytes.and_then(|b| b.try_into().ok()).ok_or(WgStop::Break)
}

pub(super) fn wg_get_line(
    shown: &mut WgShown,
    key: &str,
    value: &str,
) -> Result<Option<i32>, WgStop> {
    let peer = shown.peers.last_mut();
    match (key, peer) {
        ("private_key", None) => shown.private_key = Some(wg_key(value)?),
        ("listen_port", None) => shown.listen_port = Some(wg_num(value, 0xffff)? as u16),
        ("fwmark", None) => shown.fwmark = Some(wg_num(value, 0xffff_ffff)? as u32),
        ("public_key", _) => {
            shown.peers.push(WgShownPeer::default());
            let key = wg_key(value)?;
            shown.peers.last_mut().ok_or(WgStop::Break)?.public_key = key;
        }
        ("preshared_key", Some(peer)) => {
            let key = wg_key(value)?;
            peer.preshared_key = (key != [0; KEY_LEN]).then_some(key);
        }
        ("endpoint", Some(peer)) => {
            let (host, port) = match value.strip_prefix('[') {
                Some(rest) => {
                    let (host, rest) = rest.split_once(']').ok_or(WgStop::Break)?;
                    let port = rest
                        .strip_prefix(':')
                        .filter(|p| !p.is_empty())
                        .ok_or(WgStop::Break)?;
                    (host, port)
                }
                None => value
                    .rsplit_once(':')
                    .filter(|(_, p)| !p.is_empty())
                    .ok_or(WgStop::Break)?,
            };
            // getaddrinfo with numeric strings; a failure returns +ENETUNREACH.
            let resolved = match host.split_once('%') {
                Some((ip, scope)) => ip
                    .parse()
                    .ok()
                    .zip(scope.parse().ok())
                    .map(|(ip, scope)| SocketAddr::V6(SocketAddrV6::new(ip, 0, 0, scope))),
                None => host.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0)),
            };
            let mut endpoint = resolved.ok_or(WgStop::Return(ENETUNREACH))?;
            endpoint.set_port(port.parse().map_err(|_| WgStop::Return(ENETUNREACH))?);
            peer.endpoint = Some(endpoint);
        }
        ("persistent_keepalive_interval", Some(peer)) => {
            peer.persistent_keepalive = Some(wg_num(value, 0xffff)? as u16);
        }
        ("allowed_ip", Some(peer)) => {
            let (ip, mask) = value.split_once('/').ok_or(WgStop::Break)?;
            if !mask.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(WgStop::Break);
            }
            let ip: IpAddr = if ip.contains(':') {
                IpAddr::V6(ip.parse().map_err(|_| WgStop::Break)?)
            } else {
                IpAddr::V4(ip.parse().map_err(|_| WgStop::Break)?)
            };
            let cidr: u8 = mask.parse().map_err(|_| WgStop::Break)?;
            if cidr > if ip.is_ipv4() { 32 } else { 128 } {
                return Err(WgStop::Break);
            }
            peer.allowed_ips.push((ip, cidr));
        }
        ("last_handshake_time_sec", Some(peer)) => {
            peer.last_handshake.0 = wg_num(value, i64::MAX as u64)?
        }
        ("last_handshake_time_nsec", Some(peer)) => {
            peer.last_handshake.1 = wg_num(value, i64::MAX as u64)?
        }
        ("rx_bytes", Some(peer)) => peer.rx_bytes = wg_num(value, u64::MAX)?,
        ("tx_bytes", Some(peer)) => peer.tx_bytes = wg_num(value, u64::MAX)?,
        ("errno", _) => return Ok(Some(-(wg_num(value, 0x7fff_ffff)? as i32))),
        _ => {}
    }
    Ok(None)
}

/// `userspace_set_device` reading the reply: wireguard-tools up to 1.0.2021
/// (`fscanf(f, "errno=%d\n\n", &ret)`).
pub(super) fn wg_set_reply_fscanf(reply: &[u8]) -> i32 {
    let text = String::from_utf8_lossy(reply);
    let Some(rest) = text.strip_prefix("errno=") else {
        return -EPROTO;
    };
    let digits = rest.strip_prefix('-').unwrap_or(rest);
    let len = digits.bytes().take_while(u8::is_ascii_digit).count();
    let sign_len = rest.len() - digits.len();
    rest[..sign_len + len].parse().unwrap_or(-EPROTO)
}

/// `userspace_set_device` reading the reply: newer wireguard-tools (line by
/// line, `errno=` with `strtoll`, up to the blank line).
pub(super) fn wg_set_reply_lines(reply: &[u8]) -> i32 {
    let mut set_errno = -EPROTO;
    for line in reply.split_inclusive(|&b| b == b'\n') {
        if line == b"\n" {
            return set_errno;
        }
        let text = String::from_utf8_lossy(line);
        let Some(value) = text
            .strip_suffix('\n')
            .and_then(|l| l.strip_prefix("errno="))
        else {
            break;
        };
        match value.parse() {
            Ok(errno) => set_errno = errno,
            Err(_) => break,
        }
    }
    -EPROTO
}
