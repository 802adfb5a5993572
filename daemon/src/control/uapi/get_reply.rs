//! Reading the answer to `get=1`, for the daemon's own commands that ask a
//! running interface (`wait-ready`, `testnet`): each peer as a [`PeerState`],
//! the same snapshot without secrets that the device gives the rest of the
//! daemon. The interface's own lines, its private key among them, and the
//! peers' preshared keys are read into a buffer zeroed when dropped and never
//! kept.

use std::io::BufRead;
use std::time::Duration;

use sentrymesh_types::PublicKey;
use zeroize::Zeroizing;

use super::wire::{parse_decimal, parse_endpoint, parse_hex_key, parse_prefix};
use crate::dataplane::state::PeerState;

/// Why a reply could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GetReplyError {
    /// Reading failed.
    #[error("reading the reply: {0}")]
    Io(#[from] std::io::Error),
    /// The reply ended before its `errno=` line.
    #[error("the reply ended before its errno line")]
    Truncated,
    /// A line is not `KEY=VALUE`, or a value of a known key is malformed
    /// (the key is named, never the value).
    #[error("a malformed reply line ({0})")]
    Malformed(&'static str),
    /// The interface answered with an error.
    #[error("the interface answered errno {0}")]
    Errno(i64),
}

/// Reads a `get` reply up to its `errno=` line.
///
/// # Errors
///
/// As [`GetReplyError`] says.
pub(crate) fn read_get_reply(mut reply: impl BufRead) -> Result<Vec<PeerState>, GetReplyError> {
    let mut peers: Vec<PeerState> = Vec::new();
    let mut line = Zeroizing::new(Vec::new());
    loop {
        line.clear();
        if reply.read_until(b'\n', &mut line)? == 0 {
            return Err(GetReplyError::Truncated);
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let Some(equals) = text.iter().position(|&byte| byte == b'=') else {
            return Err(GetReplyError::Malformed("not KEY=VALUE"));
        };
        let (key, value) = (&text[..equals], &text[equals + 1..]);
        match key {
            b"public_key" => {
                let key = parse_hex_key(value).ok_or(GetReplyError::Malformed("public_key"))?;
                peers.push(PeerState {
                    public_key: PublicKey::from_bytes(*key),
                    endpoint: None,
                    last_handshake: None,
                    rx_bytes: 0,
                    tx_bytes: 0,
                    persistent_keepalive: None,
                    allowed_ips: Vec::new(),
                });
            }
            b"errno" => {
                let (negative, digits) = match value.strip_prefix(b"-") {
                    Some(digits) => (true, digits),
                    None => (false, value),
                };
                let errno = parse_decimal(digits, i64::MAX as u64)
                    .ok_or(GetReplyError::Malformed("errno"))? as i64;
                return match errno {
                    0 => Ok(peers),
                    errno => Err(GetReplyError::Errno(if negative { -errno } else { errno })),
                };
            }
            _ => {
                // Lines before the first peer are the interface's own.
                let Some(peer) = peers.last_mut() else {
                    continue;
                };
                match key {
                    b"endpoint" => {
                        peer.endpoint = Some(
                            parse_endpoint(value).ok_or(GetReplyError::Malformed("endpoint"))?,
                        );
                    }
                    b"last_handshake_time_sec" => {
                        let seconds = parse_decimal(value, u64::MAX)
                            .ok_or(GetReplyError::Malformed("last_handshake_time_sec"))?;
                        peer.last_handshake = (seconds > 0).then(|| Duration::from_secs(seconds));
                    }
                    b"last_handshake_time_nsec" => {
                        let nanos = parse_decimal(value, 999_999_999)
                            .ok_or(GetReplyError::Malformed("last_handshake_time_nsec"))?;
                        if let Some(time) = &mut peer.last_handshake {
                            *time += Duration::from_nanos(nanos);
                        }
                    }
                    b"rx_bytes" => {
                        peer.rx_bytes = parse_decimal(value, u64::MAX)
                            .ok_or(GetReplyError::Malformed("rx_bytes"))?;
                    }
                    b"tx_bytes" => {
                        peer.tx_bytes = parse_decimal(value, u64::MAX)
                            .ok_or(GetReplyError::Malformed("tx_bytes"))?;
                    }
                    b"persistent_keepalive_interval" => {
                        let seconds = parse_decimal(value, u16::MAX.into())
                            .and_then(|seconds| u16::try_from(seconds).ok())
                            .ok_or(GetReplyError::Malformed("persistent_keepalive_interval"))?;
                        peer.persistent_keepalive = (seconds > 0).then_some(seconds);
                    }
                    b"allowed_ip" => {
                        let net =
                            parse_prefix(value).ok_or(GetReplyError::Malformed("allowed_ip"))?;
                        peer.allowed_ips.push(net);
                    }
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sentrymesh_tunnel::PresharedKey;

    use super::*;
    use crate::control::uapi::write_get_response;
    use crate::dataplane::state::{DeviceState, UapiState};

    #[test]
    fn reads_back_every_peer_field_the_daemon_writes() {
        let peers = vec![
            PeerState {
                public_key: PublicKey::from_bytes([1; 32]),
                endpoint: Some("198.18.1.2:51820".parse().unwrap()),
                last_handshake: Some(Duration::new(1_700_000_000, 500)),
                rx_bytes: 1,
                tx_bytes: u64::MAX,
                persistent_keepalive: Some(25),
                allowed_ips: vec![
                    "198.19.1.2/32".parse().unwrap(),
                    "198.19.2.0/24".parse().unwrap(),
                    "2001:db8::/64".parse().unwrap(),
                ],
            },
            PeerState {
                public_key: PublicKey::from_bytes([0xff; 32]),
                endpoint: Some("[2001:db8::1]:51821".parse().unwrap()),
                last_handshake: None,
                rx_bytes: 0,
                tx_bytes: 0,
                persistent_keepalive: None,
                allowed_ips: Vec::new(),
            },
            PeerState {
                public_key: PublicKey::from_bytes([0x42; 32]),
                endpoint: None,
                last_handshake: Some(Duration::from_secs(1)),
                rx_bytes: 3,
                tx_bytes: 4,
                persistent_keepalive: Some(u16::MAX),
                allowed_ips: vec!["0.0.0.0/0".parse().unwrap()],
            },
        ];
        let mut preshared_keys = std::collections::BTreeMap::new();
        preshared_keys.insert(peers[0].public_key, PresharedKey::from_bytes([0xbb; 32]));
        let state = UapiState {
            private_key: Some(sentrymesh_types::PrivateKey::from_bytes([0xaa; 32])),
            preshared_keys,
            state: DeviceState {
                listen_port: 51820,
                fwmark: Some(7),
                peers: peers.clone(),
            },
        };
        let mut reply = Zeroizing::new(Vec::new());
        write_get_response(&state, &mut reply);
        assert_eq!(read_get_reply(&reply[..]).unwrap(), peers);
    }

    #[test]
    fn a_malformed_peer_value_is_refused_by_its_key() {
        let key = "01".repeat(32);
        for (line, name) in [
            ("rx_bytes=-1", "rx_bytes"),
            ("tx_bytes=18446744073709551616", "tx_bytes"),
            (
                "persistent_keepalive_interval=65536",
                "persistent_keepalive_interval",
            ),
            ("allowed_ip=198.19.1.2", "allowed_ip"),
        ] {
            let reply = format!("public_key={key}\n{line}\nerrno=0\n\n");
            assert!(
                matches!(
                    read_get_reply(reply.as_bytes()),
                    Err(GetReplyError::Malformed(refused)) if refused == name
                ),
                "{line}"
            );
        }
    }

    #[test]
    fn errors_cut_and_malformed_replies_are_refused_without_echoing_values() {
        assert!(matches!(
            read_get_reply(&b"errno=-22\n\n"[..]),
            Err(GetReplyError::Errno(-22))
        ));
        assert!(matches!(
            read_get_reply(&b"listen_port=51820\n"[..]),
            Err(GetReplyError::Truncated)
        ));
        assert!(matches!(
            read_get_reply(&b"hello\n"[..]),
            Err(GetReplyError::Malformed("not KEY=VALUE"))
        ));
        let secret = "secretsecret";
        let error = read_get_reply(format!("public_key={secret}\n").as_bytes()).unwrap_err();
        assert!(!error.to_string().contains(secret), "{error}");
        assert_eq!(read_get_reply(&b"errno=0\n\n"[..]).unwrap(), []);
    }
}
