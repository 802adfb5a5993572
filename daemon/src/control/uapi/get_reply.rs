//! Reading the answer to `get=1`, for the daemon's own commands that ask a
//! running interface (`wait-ready`, `testnet`): the peers' keys, endpoints
//! and handshake times. The interface's own lines, its private key among
//! them, are read into a buffer zeroed when dropped and never kept.

use std::io::BufRead;
use std::net::SocketAddr;
use std::time::Duration;

use sentrymesh_types::PublicKey;
use zeroize::Zeroizing;

use super::wire::{parse_decimal, parse_endpoint, parse_hex_key};

/// One peer as a `get` reply reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// The peer's public key.
    pub public_key: PublicKey,
    /// Where the interface sends to it, if it knows.
    pub endpoint: Option<SocketAddr>,
    /// When its last handshake completed, since the Unix epoch.
    pub last_handshake: Option<Duration>,
}

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
pub(crate) fn read_get_reply(mut reply: impl BufRead) -> Result<Vec<PeerReport>, GetReplyError> {
    let mut peers: Vec<PeerReport> = Vec::new();
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
                peers.push(PeerReport {
                    public_key: PublicKey::from_bytes(*key),
                    endpoint: None,
                    last_handshake: None,
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
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::uapi::write_get_response;
    use crate::dataplane::state::{DeviceState, PeerState, UapiState};

    #[test]
    fn reads_what_the_daemon_writes() {
        let peer = |seed: u8, endpoint: Option<&str>, handshake: Option<Duration>| PeerState {
            public_key: PublicKey::from_bytes([seed; 32]),
            endpoint: endpoint.map(|text| text.parse().unwrap()),
            last_handshake: handshake,
            rx_bytes: 1,
            tx_bytes: 2,
            persistent_keepalive: None,
            allowed_ips: vec!["198.19.1.2/32".parse().unwrap()],
        };
        let state = UapiState {
            private_key: Some(sentrymesh_types::PrivateKey::from_bytes([0xaa; 32])),
            preshared_keys: Default::default(),
            state: DeviceState {
                listen_port: 51820,
                fwmark: None,
                peers: vec![
                    peer(
                        1,
                        Some("198.18.1.2:51820"),
                        Some(Duration::new(1_700_000_000, 500)),
                    ),
                    peer(0xff, None, None),
                ],
            },
        };
        let mut reply = Zeroizing::new(Vec::new());
        write_get_response(&state, &mut reply);
        let reports = read_get_reply(&reply[..]).unwrap();
        assert_eq!(
            reports,
            [
                PeerReport {
                    public_key: PublicKey::from_bytes([1; 32]),
                    endpoint: Some("198.18.1.2:51820".parse().unwrap()),
                    last_handshake: Some(Duration::new(1_700_000_000, 500)),
                },
                PeerReport {
                    public_key: PublicKey::from_bytes([0xff; 32]),
                    endpoint: None,
                    last_handshake: None,
                },
            ]
        );
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
