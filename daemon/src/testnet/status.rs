//! What a running daemon says about its peers, read over its UAPI socket
//! (`/var/run/wireguard/IFNAME.sock`, shared by every namespace) as `wg
//! show` reads it: each peer's key, endpoint and last handshake.
//!
//! The `get` reply starts with the interface's private key; each line is
//! read into a buffer zeroed when dropped, and nothing but the peers' public
//! data is kept.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sentrymesh_mesh::WgPublicKey;
use zeroize::Zeroizing;

use crate::control_client;

/// How long a request to a daemon may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One peer as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's WireGuard public key.
    pub public_key: WgPublicKey,
    /// Where the daemon sends to it: its card's endpoint, or for a hidden
    /// host the address its handshakes came from.
    pub endpoint: Option<SocketAddr>,
    /// When its last handshake completed, since the Unix epoch.
    pub last_handshake: Option<Duration>,
}

/// The peers of the daemon serving interface `ifname`.
///
/// # Errors
///
/// When no daemon answers on the socket, or its reply is not a `get` reply.
pub(super) fn peers(ifname: &str) -> Result<Vec<PeerStatus>> {
    let path = control_client::socket_path(ifname);
    query(&path)
}

fn query(path: &Path) -> Result<Vec<PeerStatus>> {
    let mut stream =
        UnixStream::connect(path).with_context(|| format!("connecting to {}", path.display()))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.write_all(b"get=1\n\n")?;
    parse_get_reply(BufReader::new(stream))
        .with_context(|| format!("reading the reply on {}", path.display()))
}

/// Reads a `get` reply up to its `errno=` line, keeping each peer's key,
/// endpoint and handshake time.
fn parse_get_reply(mut reply: impl BufRead) -> Result<Vec<PeerStatus>> {
    let mut peers: Vec<PeerStatus> = Vec::new();
    let mut line = Zeroizing::new(String::new());
    loop {
        line.clear();
        if reply.read_line(&mut line)? == 0 {
            bail!("the reply ended before its errno line");
        }
        let Some((key, value)) = line.trim_end().split_once('=') else {
            bail!("a reply line is not KEY=VALUE");
        };
        let number = || {
            value
                .parse::<u64>()
                .with_context(|| format!("{key} is not a number"))
        };
        match key {
            "public_key" => peers.push(PeerStatus {
                public_key: parse_hex_key(value)?,
                endpoint: None,
                last_handshake: None,
            }),
            "errno" => {
                let errno = number()?;
                if errno != 0 {
                    bail!("the daemon answered errno {errno}");
                }
                return Ok(peers);
            }
            _ => {
                let Some(peer) = peers.last_mut() else {
                    // The interface's own lines, the private key among them.
                    continue;
                };
                match key {
                    "endpoint" => {
                        peer.endpoint = Some(
                            value
                                .parse()
                                .with_context(|| format!("endpoint {value:?}"))?,
                        );
                    }
                    "last_handshake_time_sec" => {
                        let seconds = number()?;
                        peer.last_handshake = (seconds > 0).then(|| Duration::from_secs(seconds));
                    }
                    "last_handshake_time_nsec" => {
                        let nanos = number()?;
                        if let Some(time) = &mut peer.last_handshake {
                            *time += Duration::from_nanos(nanos.min(999_999_999));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A key as UAPI writes it: 64 hex digits.
fn parse_hex_key(text: &str) -> Result<WgPublicKey> {
    if text.len() != 64 || !text.is_ascii() {
        bail!("a public key is not 64 hex digits");
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).unwrap_or_default();
        *byte = u8::from_str_radix(pair, 16).context("a public key is not 64 hex digits")?;
    }
    Ok(WgPublicKey::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_gives_each_peers_key_endpoint_and_handshake() {
        let a = "01".repeat(32);
        let b = "ff".repeat(32);
        let reply = format!(
            "private_key={}\nlisten_port=51820\npublic_key={a}\nendpoint=198.18.1.2:51820\n\
             last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=500000000\n\
             allowed_ip=198.19.1.2/32\npublic_key={b}\nlast_handshake_time_sec=0\n\
             last_handshake_time_nsec=0\nerrno=0\n\n",
            "aa".repeat(32)
        );
        let peers = parse_get_reply(reply.as_bytes()).unwrap();
        assert_eq!(
            peers,
            [
                PeerStatus {
                    public_key: WgPublicKey::from_bytes([1; 32]),
                    endpoint: Some("198.18.1.2:51820".parse().unwrap()),
                    last_handshake: Some(Duration::from_millis(1_700_000_000_500)),
                },
                PeerStatus {
                    public_key: WgPublicKey::from_bytes([0xff; 32]),
                    endpoint: None,
                    last_handshake: None,
                }
            ]
        );
    }

    #[test]
    fn errors_and_truncated_replies_are_refused() {
        assert!(parse_get_reply(&b"errno=-22\n\n"[..]).is_err());
        assert!(parse_get_reply(&b"public_key=00\n"[..]).is_err());
        let truncated = format!("public_key={}\n", "01".repeat(32));
        assert!(parse_get_reply(truncated.as_bytes()).is_err());
        assert_eq!(parse_get_reply(&b"errno=0\n\n"[..]).unwrap(), []);
    }
}
