//! What a request asks for: `get=1`, or `set=1` with its changes, parsed and
//! validated whole into a [`ConfigChange`] before anything is applied (this
//! module applies nothing).
//!
//! The text's quirks end here: a peer section with `remove=true` keeps none
//! of its other lines, and `replace_allowed_ips=true` drops the allowed IP
//! lines before it, as wireguard-go's replace removes them too.

use std::fmt;

use sentrymesh_tunnel::PresharedKey;
use sentrymesh_types::{PrivateKey, PublicKey};

use super::error::RequestError;
use super::wire::{parse_decimal, parse_endpoint, parse_hex_key, parse_prefix};
use crate::dataplane::change::{AllowedIpChange, ConfigChange, PeerChange, PeerUpdate};

/// One request from a UAPI client such as `wg`.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    /// `get=1`: report the device; answer with
    /// [`write_get_response`](super::write_get_response).
    Get,
    /// `set=1`: change the device; answer with
    /// [`write_status`](super::write_status).
    Set(ConfigChange),
    /// `reload=1`, sentrymesh's own (wireguard-go closes the connection
    /// on it): re-read the config file of `sentrymesh up`; answer with
    /// [`write_reload_answer`](super::write_reload_answer).
    Reload,
    /// `get_status=1`, sentrymesh's own: report the interface as
    /// `sentrymesh status` shows it; answer with
    /// [`write_status_document`](super::write_status_document).
    Status,
}

/// The operations: the protocol's two, and sentrymesh's `get_status` and `reload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Operation {
    /// `get=1`.
    Get,
    /// `set=1`.
    Set,
    /// `reload=1`.
    Reload,
    /// `get_status=1`.
    Status,
}

/// The section a line is in: before the first `public_key=` line, or after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Section {
    /// The interface's own settings.
    Device,
    /// The settings of the peer named by the last `public_key=` line.
    Peer,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Device => "device",
            Self::Peer => "peer",
        })
    }
}

/// A key that a set request may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(
    clippy::enum_variant_names,
    reason = "the variants are the protocol's key names: private_key, public_key, preshared_key"
)]
pub(crate) enum Key {
    /// `private_key`, device.
    PrivateKey,
    /// `listen_port`, device.
    ListenPort,
    /// `fwmark`, device.
    Fwmark,
    /// `replace_peers`, device.
    ReplacePeers,
    /// `public_key`: begins a peer section.
    PublicKey,
    /// `remove`, peer.
    Remove,
    /// `update_only`, peer.
    UpdateOnly,
    /// `preshared_key`, peer.
    PresharedKey,
    /// `endpoint`, peer.
    Endpoint,
    /// `persistent_keepalive_interval`, peer.
    PersistentKeepaliveInterval,
    /// `replace_allowed_ips`, peer.
    ReplaceAllowedIps,
    /// `allowed_ip`, peer.
    AllowedIp,
    /// `protocol_version`, peer; only `1` is valid.
    ProtocolVersion,
}

impl Key {
    const ALL: [Self; 13] = [
        Self::PrivateKey,
        Self::ListenPort,
        Self::Fwmark,
        Self::ReplacePeers,
        Self::PublicKey,
        Self::Remove,
        Self::UpdateOnly,
        Self::PresharedKey,
        Self::Endpoint,
        Self::PersistentKeepaliveInterval,
        Self::ReplaceAllowedIps,
        Self::AllowedIp,
        Self::ProtocolVersion,
    ];

    /// The key as it appears on the wire.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::PrivateKey => "private_key",
            Self::ListenPort => "listen_port",
            Self::Fwmark => "fwmark",
            Self::ReplacePeers => "replace_peers",
            Self::PublicKey => "public_key",
            Self::Remove => "remove",
            Self::UpdateOnly => "update_only",
            Self::PresharedKey => "preshared_key",
            Self::Endpoint => "endpoint",
            Self::PersistentKeepaliveInterval => "persistent_keepalive_interval",
            Self::ReplaceAllowedIps => "replace_allowed_ips",
            Self::AllowedIp => "allowed_ip",
            Self::ProtocolVersion => "protocol_version",
        }
    }

    /// The section the key belongs to (`public_key` begins a peer section).
    pub(crate) const fn section(self) -> Section {
        match self {
            Self::PrivateKey | Self::ListenPort | Self::Fwmark | Self::ReplacePeers => {
                Section::Device
            }
            _ => Section::Peer,
        }
    }

    fn from_wire(name: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|key| key.as_str().as_bytes() == name)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds a [`ConfigChange`] from the lines after `set=1`, one at a time.
///
/// After the first bad line it only counts lines, so the framing can read on
/// to the blank line and the first error is the one reported, as wireguard-go
/// (which stops at its first error) reports it.
#[derive(Debug)]
pub(super) struct SetParser {
    request: ConfigChange,
    peer: Option<PeerChange>,
    /// The number of the last line handled; `set=1` is line 1.
    line: usize,
    error: Option<RequestError>,
}

impl SetParser {
    pub(super) fn new() -> Self {
        Self {
            request: ConfigChange::default(),
            peer: None,
            line: 1,
            error: None,
        }
    }

    /// The number the next line will have.
    pub(super) fn next_line(&self) -> usize {
        self.line + 1
    }

    /// Handles one line: without its newline (and the `\r` before it, which
    /// Go's `bufio.ScanLines` drops), not blank.
    pub(super) fn handle_line(&mut self, text: &[u8]) {
        self.line += 1;
        if self.error.is_none() {
            if let Err(error) = self.apply(text) {
                self.error = Some(error);
            }
        }
    }

    /// The request, after the blank line; or the first error.
    pub(super) fn finish(mut self) -> Result<ConfigChange, RequestError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.request.peers.extend(self.peer.take());
        Ok(self.request)
    }

    /// The first error, if a line had one.
    pub(super) fn into_error(self) -> Option<RequestError> {
        self.error
    }

    fn apply(&mut self, text: &[u8]) -> Result<(), RequestError> {
        let line = self.line;
        let equals = text.iter().position(|&b| b == b'=');
        let Some((name, value)) = equals.map(|at| (&text[..at], &text[at + 1..])) else {
            return Err(RequestError::MissingEquals { line });
        };
        let invalid = |key| RequestError::InvalidValue { line, key };
        let key = Key::from_wire(name);
        match (key, &mut self.peer) {
            (Some(Key::PublicKey), _) => {
                let bytes = parse_hex_key(value).ok_or(invalid(Key::PublicKey))?;
                let next = PeerChange::Set(PeerUpdate::new(PublicKey::from_bytes(*bytes)));
                self.request.peers.extend(self.peer.replace(next));
                Ok(())
            }
            (Some(key), None) if key.section() == Section::Device => {
                apply_device_line(&mut self.request, key, value).ok_or(invalid(key))
            }
            (Some(key), Some(peer)) if key.section() == Section::Peer => {
                apply_peer_line(peer, key, value).ok_or(invalid(key))
            }
            (misplaced, peer) => Err(RequestError::UnknownKey {
                line,
                section: if peer.is_some() {
                    Section::Peer
                } else {
                    Section::Device
                },
                misplaced,
            }),
        }
    }
}

/// Records a device line; `None` if the value is not valid for `key`.
fn apply_device_line(request: &mut ConfigChange, key: Key, value: &[u8]) -> Option<()> {
    match key {
        Key::PrivateKey => {
            let bytes = parse_hex_key(value)?;
            let is_zero = bytes.iter().all(|&b| b == 0);
            request.private_key = Some((!is_zero).then(|| PrivateKey::from_bytes(*bytes)));
        }
        Key::ListenPort => {
            request.listen_port = Some(u16::try_from(parse_decimal(value, u16::MAX.into())?).ok()?);
        }
        Key::Fwmark => {
            let mark = u32::try_from(parse_decimal(value, u32::MAX.into())?).ok()?;
            request.fwmark = Some((mark != 0).then_some(mark));
        }
        Key::ReplacePeers => {
            expect_true(value)?;
            request.replace_peers = true;
        }
        _ => return None,
    }
    Some(())
}

/// Records a peer line; `None` if the value is not valid for `key`. Once the
/// peer is removed, values are checked and dropped.
fn apply_peer_line(peer: &mut PeerChange, key: Key, value: &[u8]) -> Option<()> {
    if key == Key::Remove {
        expect_true(value)?;
        *peer = PeerChange::Remove(*peer.public_key());
        return Some(());
    }
    let update = match peer {
        PeerChange::Set(update) => Some(update),
        PeerChange::Remove(_) => None,
    };
    match key {
        Key::UpdateOnly => {
            expect_true(value)?;
            if let Some(update) = update {
                update.update_only = true;
            }
        }
        Key::PresharedKey => {
            let key = PresharedKey::from_bytes(*parse_hex_key(value)?);
            if let Some(update) = update {
                update.preshared_key = Some(key);
            }
        }
        Key::Endpoint => {
            let endpoint = parse_endpoint(value)?;
            if let Some(update) = update {
                update.endpoint = Some(endpoint);
            }
        }
        Key::PersistentKeepaliveInterval => {
            let seconds = u16::try_from(parse_decimal(value, u16::MAX.into())?).ok()?;
            if let Some(update) = update {
                update.persistent_keepalive = Some(seconds);
            }
        }
        Key::ReplaceAllowedIps => {
            expect_true(value)?;
            if let Some(update) = update {
                update.replace_allowed_ips = true;
                update.allowed_ips.clear();
            }
        }
        Key::AllowedIp => {
            let change = match value.split_first() {
                Some((b'-', net)) => AllowedIpChange::Remove(parse_prefix(net)?),
                _ => AllowedIpChange::Add(parse_prefix(value)?),
            };
            if let Some(update) = update {
                update.allowed_ips.push(change);
            }
        }
        Key::ProtocolVersion => {
            if value != b"1" {
                return None;
            }
        }
        _ => return None,
    }
    Some(())
}

/// wireguard-go takes exactly `true` for its flags (`false` is an error).
fn expect_true(value: &[u8]) -> Option<()> {
    (value == b"true").then_some(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{PEER_A, PEER_B, PRIVATE, PSK, hex, net};
    use super::*;
    use crate::control::uapi::Errno;

    fn set(body: &str) -> Result<ConfigChange, RequestError> {
        match Request::parse(format!("set=1\n{body}\n").as_bytes())? {
            Request::Set(request) => Ok(request),
            Request::Get | Request::Reload | Request::Status => {
                panic!("a set request parsed as another")
            }
        }
    }

    fn update(change: &PeerChange) -> &PeerUpdate {
        match change {
            PeerChange::Set(update) => update,
            PeerChange::Remove(_) => panic!("a peer section parsed as a removal"),
        }
    }

    fn peer_section(lines: &str) -> String {
        format!("public_key={}\n{lines}", hex(&PEER_A))
    }

    #[test]
    fn empty_set_changes_nothing() {
        let request = set("").unwrap();
        assert!(request.private_key.is_none());
        assert_eq!(request.listen_port, None);
        assert_eq!(request.fwmark, None);
        assert!(!request.replace_peers);
        assert!(request.peers.is_empty());
    }

    #[test]
    fn device_keys_are_parsed() {
        let request = set(&format!(
            "private_key={}\nlisten_port=51820\nfwmark=4660\nreplace_peers=true\n",
            hex(&PRIVATE)
        ))
        .unwrap();
        let key = request.private_key.unwrap().unwrap();
        assert_eq!(*key.to_bytes(), PRIVATE);
        assert_eq!(request.listen_port, Some(51820));
        assert_eq!(request.fwmark, Some(Some(4660)));
        assert!(request.replace_peers);
    }

    #[test]
    fn zero_values_clear() {
        let request = set(&format!(
            "private_key={}\nlisten_port=0\nfwmark=0\n{}",
            "0".repeat(64),
            peer_section(&format!(
                "preshared_key={}\npersistent_keepalive_interval=0\n",
                "0".repeat(64)
            ))
        ))
        .unwrap();
        assert!(matches!(request.private_key, Some(None)));
        assert_eq!(request.listen_port, Some(0));
        assert_eq!(request.fwmark, Some(None));
        let peer = update(&request.peers[0]);
        assert_eq!(peer.preshared_key, Some(PresharedKey::none()));
        assert_eq!(peer.persistent_keepalive, Some(0));
    }

    #[test]
    fn peer_keys_are_parsed() {
        let request = set(&peer_section(&format!(
            "update_only=true\npreshared_key={}\nendpoint=[2001:db8::7]:51820\n\
             persistent_keepalive_interval=25\nprotocol_version=1\nreplace_allowed_ips=true\n\
             allowed_ip=10.0.0.2/32\nallowed_ip=-10.0.0.9/32\nallowed_ip=fd00::/64\n",
            hex(&PSK)
        )))
        .unwrap();
        let expected = PeerChange::Set(PeerUpdate {
            update_only: true,
            preshared_key: Some(PresharedKey::from_bytes(PSK)),
            endpoint: Some("[2001:db8::7]:51820".parse().unwrap()),
            persistent_keepalive: Some(25),
            replace_allowed_ips: true,
            allowed_ips: vec![
                AllowedIpChange::Add(net("10.0.0.2/32")),
                AllowedIpChange::Remove(net("10.0.0.9/32")),
                AllowedIpChange::Add(net("fd00::/64")),
            ],
            ..PeerUpdate::new(PublicKey::from_bytes(PEER_A))
        });
        assert_eq!(request.peers, vec![expected]);
    }

    #[test]
    fn later_lines_win_and_peers_keep_their_order() {
        let request = set(&format!(
            "listen_port=1\nlisten_port=2\npublic_key={a}\nendpoint=192.0.2.1:1\n\
             endpoint=192.0.2.1:2\npublic_key={b}\npublic_key={a}\nremove=true\n",
            a = hex(&PEER_A),
            b = hex(&PEER_B)
        ))
        .unwrap();
        assert_eq!(request.listen_port, Some(2));
        let keys: Vec<_> = request
            .peers
            .iter()
            .map(|p| p.public_key().as_bytes()[0])
            .collect();
        assert_eq!(keys, [PEER_A[0], PEER_B[0], PEER_A[0]]);
        assert_eq!(
            update(&request.peers[0]).endpoint,
            Some("192.0.2.1:2".parse().unwrap())
        );
        assert!(matches!(request.peers[2], PeerChange::Remove(_)));
    }

    #[test]
    fn replace_allowed_ips_drops_the_lines_before_it() {
        let request = set(&peer_section(
            "allowed_ip=10.0.0.1/32\nreplace_allowed_ips=true\nallowed_ip=10.0.0.2/32\n",
        ))
        .unwrap();
        assert!(update(&request.peers[0]).replace_allowed_ips);
        assert_eq!(
            update(&request.peers[0]).allowed_ips,
            [AllowedIpChange::Add(net("10.0.0.2/32"))]
        );
    }

    #[test]
    fn remove_ignores_the_section_but_still_checks_it() {
        let request = set(&peer_section(
            "endpoint=192.0.2.1:1\nremove=true\nallowed_ip=10.0.0.1/32\nupdate_only=true\n\
             persistent_keepalive_interval=25\nreplace_allowed_ips=true\n",
        ))
        .unwrap();
        let expected = PeerChange::Remove(PublicKey::from_bytes(PEER_A));
        assert_eq!(request.peers, vec![expected]);

        let error = set(&peer_section("remove=true\nallowed_ip=10.0.0.1\n")).unwrap_err();
        assert_eq!(
            error,
            RequestError::InvalidValue {
                line: 4,
                key: Key::AllowedIp
            }
        );
    }

    #[test]
    fn windows_line_endings_are_taken_as_go_scanner_does() {
        let request = Request::parse(b"set=1\nlisten_port=7\r\n\r\n").unwrap();
        assert!(matches!(
            request,
            Request::Set(ConfigChange {
                listen_port: Some(7),
                ..
            })
        ));
        // The first line must be exact, as in wireguard-go.
        assert_eq!(
            Request::parse(b"set=1\r\n\n").unwrap_err(),
            RequestError::UnknownOperation
        );
    }

    #[test]
    fn structural_errors_name_the_line_and_map_to_wireguard_go_errnos() {
        let pk = format!("public_key={}", hex(&PEER_A));
        let cases: &[(String, RequestError, Errno)] = &[
            (
                "listen_port".into(),
                RequestError::MissingEquals { line: 2 },
                Errno::EPROTO,
            ),
            (
                "bogus=1".into(),
                RequestError::UnknownKey {
                    line: 2,
                    section: Section::Device,
                    misplaced: None,
                },
                Errno::EINVAL,
            ),
            (
                "=".into(),
                RequestError::UnknownKey {
                    line: 2,
                    section: Section::Device,
                    misplaced: None,
                },
                Errno::EINVAL,
            ),
            (
                "set=1".into(),
                RequestError::UnknownKey {
                    line: 2,
                    section: Section::Device,
                    misplaced: None,
                },
                Errno::EINVAL,
            ),
            (
                "get=1".into(),
                RequestError::UnknownKey {
                    line: 2,
                    section: Section::Device,
                    misplaced: None,
                },
                Errno::EINVAL,
            ),
            (
                "endpoint=192.0.2.1:1".into(),
                RequestError::UnknownKey {
                    line: 2,
                    section: Section::Device,
                    misplaced: Some(Key::Endpoint),
                },
                Errno::EINVAL,
            ),
            (
                "protocol_version=1".into(),
                RequestError::UnknownKey {
                    line: 2,
                    section: Section::Device,
                    misplaced: Some(Key::ProtocolVersion),
                },
                Errno::EINVAL,
            ),
            (
                format!("{pk}\nlisten_port=1"),
                RequestError::UnknownKey {
                    line: 3,
                    section: Section::Peer,
                    misplaced: Some(Key::ListenPort),
                },
                Errno::EINVAL,
            ),
            (
                format!("{pk}\nset=1"),
                RequestError::UnknownKey {
                    line: 3,
                    section: Section::Peer,
                    misplaced: None,
                },
                Errno::EINVAL,
            ),
            (
                format!("{pk}\nrx_bytes=1"),
                RequestError::UnknownKey {
                    line: 3,
                    section: Section::Peer,
                    misplaced: None,
                },
                Errno::EINVAL,
            ),
            (
                format!("{pk}\nremove"),
                RequestError::MissingEquals { line: 3 },
                Errno::EPROTO,
            ),
        ];
        for (body, expected, errno) in cases {
            let error = set(&format!("{body}\n")).unwrap_err();
            assert_eq!(&error, expected, "{body:?}");
            assert_eq!(error.errno(), Some(*errno), "{body:?}");
        }
    }

    #[test]
    fn every_bad_value_is_einval() {
        let short_hex = "ab".repeat(31);
        let device: &[(Key, &str)] = &[
            (Key::PrivateKey, &short_hex),
            (Key::PrivateKey, ""),
            (Key::ListenPort, "65536"),
            (Key::ListenPort, "-1"),
            (Key::ListenPort, ""),
            (Key::Fwmark, "4294967296"),
            (Key::Fwmark, "0x10"),
            (Key::ReplacePeers, "false"),
            (Key::ReplacePeers, "TRUE"),
            (
                Key::PublicKey,
                "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=",
            ),
        ];
        for (key, value) in device {
            let error = set(&format!("{key}={value}\n")).unwrap_err();
            assert_eq!(
                error,
                RequestError::InvalidValue { line: 2, key: *key },
                "{key}={value}"
            );
            assert_eq!(error.errno(), Some(Errno::EINVAL));
        }
        let peer: &[(Key, &str)] = &[
            (Key::PublicKey, &short_hex),
            (Key::Remove, "yes"),
            (Key::UpdateOnly, "1"),
            (Key::PresharedKey, &short_hex),
            (Key::Endpoint, "2001:db8::1:51820"),
            (Key::Endpoint, "example.com:51820"),
            (Key::PersistentKeepaliveInterval, "65536"),
            (Key::ReplaceAllowedIps, "false"),
            (Key::AllowedIp, "10.0.0.1"),
            (Key::AllowedIp, "-"),
            (Key::AllowedIp, "--10.0.0.1/32"),
            (Key::AllowedIp, "+10.0.0.1/32"),
            (Key::ProtocolVersion, "2"),
        ];
        for (key, value) in peer {
            let error = set(&peer_section(&format!("{key}={value}\n"))).unwrap_err();
            assert_eq!(
                error,
                RequestError::InvalidValue { line: 3, key: *key },
                "{key}={value}"
            );
            assert_eq!(error.errno(), Some(Errno::EINVAL));
        }
        // A value may not carry a second '='.
        let error = set("listen_port=1=2\n").unwrap_err();
        assert_eq!(
            error,
            RequestError::InvalidValue {
                line: 2,
                key: Key::ListenPort
            }
        );
    }

    #[test]
    fn the_first_bad_line_is_reported() {
        let error = set("bogus=1\nlisten_port=x\nno equals\n").unwrap_err();
        assert!(matches!(error, RequestError::UnknownKey { line: 2, .. }));
    }

    #[test]
    fn keys_round_trip_through_their_names() {
        for key in Key::ALL {
            assert_eq!(Key::from_wire(key.as_str().as_bytes()), Some(key));
        }
        assert_eq!(Key::from_wire(b"Public_Key"), None);
    }
}
