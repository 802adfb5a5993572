//! Replies: the device report that answers `get=1`, the status document
//! that answers `get_status=1`, and the `errno=` line that ends every
//! reply.

use std::fmt::{self, Write as _};

use sentrymesh_tunnel::PresharedKey;
use sentrymesh_types::KEY_LEN;

use super::errno::Errno;
use super::wire::write_hex_key;
use crate::control::status::Status;
use crate::dataplane::state::UapiState;

/// Appends the answer to `get=1` to `out`: the lines wireguard-go writes, in
/// its order, then `errno=0` and the blank line. Peers come in the order of
/// `state.state.peers`; unset values are left out (a listen port or mark of
/// 0, an all-zero private key), and a peer without a preshared key gets 64
/// zeros, as wireguard-go reports it.
///
/// The reply holds the private key: give a buffer that is zeroed after use
/// (`Zeroizing<Vec<u8>>`). The space is reserved before the first byte is
/// written, so the buffer does not move, leaving a copy behind, while it
/// fills.
pub(crate) fn write_get_response(state: &UapiState, out: &mut Vec<u8>) {
    let mut counter = Counter(0);
    let counted = write_get_lines(state, &mut counter);
    out.reserve(counter.0);
    let written = write_get_lines(state, &mut Append(out));
    debug_assert!(counted.is_ok() && written.is_ok(), "the sinks do not fail");
}

/// Appends `errno=N` and the blank line to `out`: the answer to `set=1`
/// (`Ok` for success, `errno=0`), and to any refused request
/// ([`RequestError::errno`](super::RequestError::errno)).
pub(crate) fn write_status(result: Result<(), Errno>, out: &mut Vec<u8>) {
    let code = result.err().map_or(0, Errno::wire_value);
    let written = write!(Append(out), "errno={code}\n\n");
    debug_assert!(written.is_ok(), "appending to a Vec does not fail");
}

/// Appends the answer to `get_status=1` to `out`: `status=` and the
/// document as one line of JSON (`docs/status.md`), then `errno=0` and
/// the blank line.
pub(crate) fn write_status_document(status: &Status, out: &mut Vec<u8>) {
    out.extend_from_slice(b"status=");
    // Serializing plain structs of strings and numbers into a Vec cannot
    // fail; should it, the line is left empty and the client says so.
    let _ = serde_json::to_writer(&mut *out, status);
    out.push(b'\n');
    write_status(Ok(()), out);
}

fn write_get_lines(uapi: &UapiState, w: &mut impl fmt::Write) -> fmt::Result {
    if let Some(private_key) = &uapi.private_key {
        let bytes = private_key.to_bytes();
        if bytes.iter().any(|&b| b != 0) {
            write_key_line(w, "private_key", &bytes)?;
        }
    }
    let state = &uapi.state;
    if state.listen_port != 0 {
        writeln!(w, "listen_port={}", state.listen_port)?;
    }
    if let Some(mark) = state.fwmark.filter(|mark| *mark != 0) {
        writeln!(w, "fwmark={mark}")?;
    }
    for peer in &state.peers {
        write_key_line(w, "public_key", peer.public_key.as_bytes())?;
        let preshared = uapi
            .preshared_keys
            .get(&peer.public_key)
            .map(PresharedKey::as_bytes);
        write_key_line(w, "preshared_key", preshared.unwrap_or(&[0; KEY_LEN]))?;
        w.write_str("protocol_version=1\n")?;
        if let Some(endpoint) = peer.endpoint {
            writeln!(w, "endpoint={endpoint}")?;
        }
        let handshake = peer.last_handshake.unwrap_or_default();
        writeln!(w, "last_handshake_time_sec={}", handshake.as_secs())?;
        writeln!(w, "last_handshake_time_nsec={}", handshake.subsec_nanos())?;
        writeln!(w, "tx_bytes={}", peer.tx_bytes)?;
        writeln!(w, "rx_bytes={}", peer.rx_bytes)?;
        let keepalive = peer.persistent_keepalive.unwrap_or(0);
        writeln!(w, "persistent_keepalive_interval={keepalive}")?;
        for net in &peer.allowed_ips {
            writeln!(w, "allowed_ip={net}")?;
        }
    }
    w.write_str("errno=0\n\n")
}

fn write_key_line(w: &mut impl fmt::Write, name: &str, key: &[u8; KEY_LEN]) -> fmt::Result {
    w.write_str(name)?;
    w.write_char('=')?;
    write_hex_key(w, key)?;
    w.write_char('\n')
}

/// Counts the bytes written to it.
struct Counter(usize);

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Appends what is written to it to a byte buffer.
struct Append<'a>(&'a mut Vec<u8>);

impl fmt::Write for Append<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sentrymesh_types::{PrivateKey, PublicKey};

    use super::super::tests::{PEER_A, PEER_B, PRIVATE, PSK, hex, net};
    use super::*;
    use crate::dataplane::state::{DeviceState, PeerState};

    fn reply(state: &UapiState) -> String {
        let mut out = Vec::new();
        write_get_response(state, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn get_response_is_wireguard_gos_lines_in_its_order() {
        let state = UapiState {
            private_key: Some(PrivateKey::from_bytes(PRIVATE)),
            preshared_keys: [(PublicKey::from_bytes(PEER_A), PresharedKey::from_bytes(PSK))].into(),
            state: DeviceState {
                listen_port: 51820,
                fwmark: Some(4660),
                peers: vec![
                    PeerState {
                        public_key: PublicKey::from_bytes(PEER_A),
                        endpoint: Some("[2001:db8::1]:51820".parse().unwrap()),
                        last_handshake: Some(Duration::new(1_700_000_000, 5)),
                        rx_bytes: 7,
                        tx_bytes: 9,
                        persistent_keepalive: Some(25),
                        allowed_ips: vec![net("10.0.0.2/32"), net("fd00::/64")],
                    },
                    PeerState {
                        public_key: PublicKey::from_bytes(PEER_B),
                        endpoint: Some("198.51.100.7:1".parse().unwrap()),
                        last_handshake: None,
                        rx_bytes: 0,
                        tx_bytes: 0,
                        persistent_keepalive: None,
                        allowed_ips: vec![],
                    },
                ],
            },
        };
        let expected = format!(
            "private_key={private}\n\
             listen_port=51820\n\
             fwmark=4660\n\
             public_key={a}\n\
             preshared_key={psk}\n\
             protocol_version=1\n\
             endpoint=[2001:db8::1]:51820\n\
             last_handshake_time_sec=1700000000\n\
             last_handshake_time_nsec=5\n\
             tx_bytes=9\n\
             rx_bytes=7\n\
             persistent_keepalive_interval=25\n\
             allowed_ip=10.0.0.2/32\n\
             allowed_ip=fd00::/64\n\
             public_key={b}\n\
             preshared_key={zero}\n\
             protocol_version=1\n\
             endpoint=198.51.100.7:1\n\
             last_handshake_time_sec=0\n\
             last_handshake_time_nsec=0\n\
             tx_bytes=0\n\
             rx_bytes=0\n\
             persistent_keepalive_interval=0\n\
             errno=0\n\
             \n",
            private = hex(&PRIVATE),
            a = hex(&PEER_A),
            psk = hex(&PSK),
            b = hex(&PEER_B),
            zero = "0".repeat(64),
        );
        assert_eq!(reply(&state), expected);
    }

    #[test]
    fn unset_device_values_are_left_out() {
        assert_eq!(reply(&UapiState::default()), "errno=0\n\n");
        let zeros = UapiState {
            private_key: Some(PrivateKey::from_bytes([0; KEY_LEN])),
            preshared_keys: Default::default(),
            state: DeviceState {
                listen_port: 0,
                fwmark: Some(0),
                peers: vec![],
            },
        };
        assert_eq!(reply(&zeros), "errno=0\n\n");
    }

    #[test]
    fn endpoints_print_as_go_prints_them() {
        let peer = |endpoint: &str| UapiState {
            state: DeviceState {
                peers: vec![PeerState {
                    public_key: PublicKey::from_bytes(PEER_A),
                    endpoint: Some(endpoint.parse().unwrap()),
                    last_handshake: None,
                    rx_bytes: 0,
                    tx_bytes: 0,
                    persistent_keepalive: None,
                    allowed_ips: vec![],
                }],
                ..DeviceState::default()
            },
            ..UapiState::default()
        };
        for (endpoint, line) in [
            (
                "[2001:0db8:0:0:1:0:0:1]:1",
                "endpoint=[2001:db8::1:0:0:1]:1\n",
            ),
            ("[::ffff:192.0.2.1]:2", "endpoint=[::ffff:192.0.2.1]:2\n"),
            ("[fe80::1%3]:4", "endpoint=[fe80::1%3]:4\n"),
            ("192.0.2.1:65535", "endpoint=192.0.2.1:65535\n"),
        ] {
            assert!(reply(&peer(endpoint)).contains(line), "{endpoint}");
        }
    }

    #[test]
    fn status_lines() {
        let status = |result| {
            let mut out = b"before:".to_vec();
            write_status(result, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(status(Ok(())), "before:errno=0\n\n");
        assert_eq!(status(Err(Errno::EINVAL)), "before:errno=-22\n\n");
        assert_eq!(status(Err(Errno::EPROTO)), "before:errno=-71\n\n");
        assert_eq!(status(Err(Errno::EIO)), "before:errno=-5\n\n");
    }

    #[test]
    fn get_response_appends_after_reserving_its_length() {
        let state = UapiState {
            private_key: Some(PrivateKey::from_bytes(PRIVATE)),
            ..UapiState::default()
        };
        let mut out = b"x".to_vec();
        write_get_response(&state, &mut out);
        assert!(out.starts_with(b"xprivate_key="));
        assert_eq!(
            out.len(),
            1 + "private_key=\n".len() + 64 + "errno=0\n\n".len()
        );
    }
}
