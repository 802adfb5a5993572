//! Tests across the module: the exact bytes `wg` sends, replies read back the
//! way `wg` reads them, secrets kept out of errors, and random input.
//!
//! `wg` models wireguard-tools' `ipc-uapi.h`: what `wg` writes, and how it
//! reads the replies.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use proptest::prelude::*;
use sentrymesh_tunnel::PresharedKey;
use sentrymesh_types::{IpNet, KEY_LEN, PrivateKey, PublicKey};

use self::wg::{
    EPROTO, WgDevice, WgPeer, WgShown, WgShownPeer, wg_get, wg_set_reply_fscanf,
    wg_set_reply_lines, wg_set_request,
};
use super::*;
use crate::dataplane::change::{AllowedIpChange, PeerChange, PeerUpdate};
use crate::dataplane::state::{DeviceState, PeerState, UapiState};

mod wg;

/// A key whose bytes are `seed`, `seed + 7`, `seed + 14`, …
const fn pattern(seed: u8) -> [u8; KEY_LEN] {
    let mut key = [0; KEY_LEN];
    let mut i = 0;
    while i < KEY_LEN {
        key[i] = seed.wrapping_add(7 * i as u8);
        i += 1;
    }
    key
}

pub(super) const PRIVATE: [u8; KEY_LEN] = pattern(0x31);
pub(super) const PSK: [u8; KEY_LEN] = pattern(0x97);
pub(super) const PEER_A: [u8; KEY_LEN] = pattern(0x05);
pub(super) const PEER_B: [u8; KEY_LEN] = pattern(0xc2);

pub(super) fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

/// What parsing `wg_set_request(device)` must give, as field values.
fn expected_peers(device: &WgDevice) -> Vec<PeerChange> {
    device
        .peers
        .iter()
        .map(|peer| {
            let public_key = PublicKey::from_bytes(peer.public_key);
            if peer.remove {
                return PeerChange::Remove(public_key);
            }
            let allowed_ips = peer.allowed_ips.iter().map(|&(remove, ip, cidr)| {
                let net = IpNet::truncating(ip, cidr).unwrap();
                if remove {
                    AllowedIpChange::Remove(net)
                } else {
                    AllowedIpChange::Add(net)
                }
            });
            PeerChange::Set(PeerUpdate {
                preshared_key: peer.preshared_key.map(PresharedKey::from_bytes),
                endpoint: peer.endpoint,
                persistent_keepalive: peer.persistent_keepalive,
                replace_allowed_ips: peer.replace_allowed_ips,
                allowed_ips: allowed_ips.collect(),
                ..PeerUpdate::new(public_key)
            })
        })
        .collect()
}

fn assert_parses_as_sent(device: &WgDevice) {
    let bytes = wg_set_request(device);
    let Ok(Request::Set(request)) = Request::parse(&bytes) else {
        panic!("not a set request: {:?}", String::from_utf8_lossy(&bytes));
    };
    let private_key = request
        .private_key
        .as_ref()
        .map(|key| key.as_ref().map(|key| *key.to_bytes()));
    let expected_key = device
        .private_key
        .map(|key| Some(key).filter(|key| *key != [0; KEY_LEN]));
    assert_eq!(private_key, expected_key);
    assert_eq!(request.listen_port, device.listen_port);
    assert_eq!(
        request.fwmark,
        device
            .fwmark
            .map(|mark| Some(mark).filter(|mark| *mark != 0))
    );
    assert_eq!(request.replace_peers, device.replace_peers);
    assert_eq!(request.peers, expected_peers(device));
}

/// The request `wg setconf` sends for an interface with two peers, a
/// preshared key, an IPv6 endpoint and three allowed IPs.
fn setconf_device() -> WgDevice {
    WgDevice {
        private_key: Some(PRIVATE),
        listen_port: Some(51820),
        fwmark: Some(0),
        replace_peers: true,
        peers: vec![
            WgPeer {
                preshared_key: Some(PSK),
                endpoint: Some("[2001:db8::1]:51820".parse().unwrap()),
                persistent_keepalive: Some(25),
                replace_allowed_ips: true,
                allowed_ips: vec![
                    (false, "10.0.0.2".parse().unwrap(), 32),
                    (false, "fd00::2".parse().unwrap(), 128),
                    (false, "192.168.0.0".parse().unwrap(), 16),
                ],
                ..WgPeer::new(PEER_A)
            },
            WgPeer {
                endpoint: Some("198.51.100.7:51821".parse().unwrap()),
                replace_allowed_ips: true,
                allowed_ips: vec![(false, "10.0.0.3".parse().unwrap(), 32)],
                ..WgPeer::new(PEER_B)
            },
        ],
    }
}

#[test]
fn the_bytes_of_wg_setconf_parse_to_its_configuration() {
    let expected = format!(
        "set=1\n\
         private_key={private}\n\
         listen_port=51820\n\
         fwmark=0\n\
         replace_peers=true\n\
         public_key={a}\n\
         preshared_key={psk}\n\
         endpoint=[2001:db8::1]:51820\n\
         persistent_keepalive_interval=25\n\
         replace_allowed_ips=true\n\
         allowed_ip=10.0.0.2/32\n\
         allowed_ip=fd00::2/128\n\
         allowed_ip=192.168.0.0/16\n\
         public_key={b}\n\
         endpoint=198.51.100.7:51821\n\
         replace_allowed_ips=true\n\
         allowed_ip=10.0.0.3/32\n\
         \n",
        private = hex(&PRIVATE),
        psk = hex(&PSK),
        a = hex(&PEER_A),
        b = hex(&PEER_B),
    );
    let device = setconf_device();
    assert_eq!(
        String::from_utf8(wg_set_request(&device)).unwrap(),
        expected
    );

    let Ok(Request::Set(request)) = Request::parse(expected.as_bytes()) else {
        panic!()
    };
    assert_eq!(*request.private_key.unwrap().unwrap().to_bytes(), PRIVATE);
    assert_eq!(request.listen_port, Some(51820));
    assert_eq!(request.fwmark, Some(None));
    assert!(request.replace_peers);
    assert_eq!(
        request.peers,
        [
            PeerChange::Set(PeerUpdate {
                preshared_key: Some(PresharedKey::from_bytes(PSK)),
                endpoint: Some("[2001:db8::1]:51820".parse().unwrap()),
                persistent_keepalive: Some(25),
                replace_allowed_ips: true,
                allowed_ips: vec![
                    AllowedIpChange::Add(net("10.0.0.2/32")),
                    AllowedIpChange::Add(net("fd00::2/128")),
                    AllowedIpChange::Add(net("192.168.0.0/16")),
                ],
                ..PeerUpdate::new(PublicKey::from_bytes(PEER_A))
            }),
            PeerChange::Set(PeerUpdate {
                endpoint: Some("198.51.100.7:51821".parse().unwrap()),
                replace_allowed_ips: true,
                allowed_ips: vec![AllowedIpChange::Add(net("10.0.0.3/32"))],
                ..PeerUpdate::new(PublicKey::from_bytes(PEER_B))
            }),
        ]
    );
}

#[test]
fn the_bytes_of_wg_set_parse_to_its_changes() {
    // wg set wg0 peer B allowed-ips -10.0.0.3/32 (wireguard-tools 2025+)
    let removal = WgDevice {
        peers: vec![WgPeer {
            allowed_ips: vec![(true, "10.0.0.3".parse().unwrap(), 32)],
            ..WgPeer::new(PEER_B)
        }],
        ..WgDevice::default()
    };
    let bytes = wg_set_request(&removal);
    assert_eq!(
        bytes,
        format!(
            "set=1\npublic_key={}\nallowed_ip=-10.0.0.3/32\n\n",
            hex(&PEER_B)
        )
        .as_bytes()
    );
    assert_parses_as_sent(&removal);

    // wg set wg0 peer A remove
    let remove = WgDevice {
        peers: vec![WgPeer {
            remove: true,
            ..WgPeer::new(PEER_A)
        }],
        ..WgDevice::default()
    };
    assert_eq!(
        wg_set_request(&remove),
        format!("set=1\npublic_key={}\nremove=true\n\n", hex(&PEER_A)).as_bytes()
    );
    assert_parses_as_sent(&remove);

    // wg set wg0 private-key /dev/null listen-port 0 peer A endpoint [fe80::1%2]:1
    // preshared-key /dev/null persistent-keepalive off allowed-ips ""
    let clearing = WgDevice {
        private_key: Some([0; KEY_LEN]),
        listen_port: Some(0),
        peers: vec![WgPeer {
            preshared_key: Some([0; KEY_LEN]),
            endpoint: Some(SocketAddr::V6(SocketAddrV6::new(
                "fe80::1".parse().unwrap(),
                1,
                0,
                2,
            ))),
            persistent_keepalive: Some(0),
            replace_allowed_ips: true,
            ..WgPeer::new(PEER_A)
        }],
        ..WgDevice::default()
    };
    assert_parses_as_sent(&clearing);
    assert_parses_as_sent(&setconf_device());
}

fn full_state() -> UapiState {
    UapiState {
        private_key: Some(PrivateKey::from_bytes(PRIVATE)),
        preshared_keys: [(PublicKey::from_bytes(PEER_A), PresharedKey::from_bytes(PSK))].into(),
        state: DeviceState {
            listen_port: 51820,
            fwmark: Some(0x1234),
            peers: vec![
                PeerState {
                    public_key: PublicKey::from_bytes(PEER_A),
                    endpoint: Some("[2001:db8::1]:51820".parse().unwrap()),
                    last_handshake: Some(Duration::new(1_700_000_000, 123_456_789)),
                    rx_bytes: 1_000_000,
                    tx_bytes: 2_000,
                    persistent_keepalive: Some(25),
                    allowed_ips: vec![net("10.0.0.2/32"), net("fd00::/64")],
                },
                PeerState {
                    public_key: PublicKey::from_bytes(PEER_B),
                    endpoint: None,
                    last_handshake: None,
                    rx_bytes: 0,
                    tx_bytes: 0,
                    persistent_keepalive: None,
                    allowed_ips: vec![],
                },
            ],
        },
    }
}

#[test]
fn wg_reads_the_get_response() {
    let mut reply = Vec::new();
    write_get_response(&full_state(), &mut reply);
    let shown = wg_get(&reply).unwrap();
    assert_eq!(
        shown,
        WgShown {
            private_key: Some(PRIVATE),
            listen_port: Some(51820),
            fwmark: Some(0x1234),
            peers: vec![
                WgShownPeer {
                    public_key: PEER_A,
                    preshared_key: Some(PSK),
                    endpoint: Some("[2001:db8::1]:51820".parse().unwrap()),
                    persistent_keepalive: Some(25),
                    allowed_ips: vec![
                        ("10.0.0.2".parse().unwrap(), 32),
                        ("fd00::".parse().unwrap(), 64)
                    ],
                    last_handshake: (1_700_000_000, 123_456_789),
                    rx_bytes: 1_000_000,
                    tx_bytes: 2_000,
                },
                WgShownPeer {
                    public_key: PEER_B,
                    persistent_keepalive: Some(0),
                    ..WgShownPeer::default()
                },
            ],
        }
    );
    // An empty device is a valid reply too.
    let mut reply = Vec::new();
    write_get_response(&UapiState::default(), &mut reply);
    assert_eq!(wg_get(&reply), Ok(WgShown::default()));
}

#[test]
fn wg_reads_the_status_line() {
    for (result, expected) in [
        (Ok(()), 0),
        (Err(Errno::EINVAL), -22),
        (Err(Errno::EPROTO), -71),
        (Err(Errno::EIO), -5),
        (Err(Errno::EADDRINUSE), -98),
    ] {
        let mut reply = Vec::new();
        write_status(result, &mut reply);
        assert_eq!(wg_set_reply_fscanf(&reply), expected);
        assert_eq!(wg_set_reply_lines(&reply), expected);
    }
    // A refused get: `wg` takes only a non-negative errno there, so it
    // reports EPROTO, as it does with wireguard-go.
    let mut reply = Vec::new();
    write_status(Err(Errno::EINVAL), &mut reply);
    assert_eq!(wg_get(&reply), Err(-EPROTO));
}

#[test]
fn errors_never_contain_key_material() {
    let private = hex(&PRIVATE);
    let psk = hex(&PSK);
    let base64 = PrivateKey::from_bytes(PRIVATE).to_base64().to_string();
    let peer = format!("public_key={}", hex(&PEER_A));
    let bodies = [
        format!("private_key={}", &private[..63]),
        format!("private_key={private}0"),
        format!("private_key= {private}"),
        format!("private_key={base64}"),
        private.clone(),
        base64.clone(),
        format!("{base64}=1"),
        format!("{private}={private}"),
        format!("listen_port={private}"),
        format!("{peer}\npreshared_key={}", &psk[..60]),
        format!("{peer}\npreshared_key={psk}\n{psk}"),
        format!("{peer}\n{psk}={psk}"),
        format!("{peer}\nendpoint={psk}"),
        format!("{peer}\nallowed_ip=-{psk}"),
        format!("{peer}\npublic_key={psk}0"),
    ];
    for body in bodies {
        let error = Request::parse(format!("set=1\n{body}\n\n").as_bytes()).unwrap_err();
        let shown = format!("{error} {error:?}");
        for secret in [&private, &psk, &base64] {
            for window in secret.as_bytes().windows(10) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(!shown.contains(window), "{shown:?} shows part of a key");
            }
        }
    }
}

#[test]
fn debug_output_hides_secrets() {
    let device = setconf_device();
    let request = Request::parse(&wg_set_request(&device)).unwrap();
    let base64 = PrivateKey::from_bytes(PRIVATE).to_base64().to_string();
    let psk_base64 = PresharedKey::from_bytes(PSK).to_base64().to_string();
    let state = full_state();
    for shown in [format!("{request:?}"), format!("{state:?}")] {
        for secret in [hex(&PRIVATE), hex(&PSK), base64.clone(), psk_base64.clone()] {
            assert!(!shown.contains(&secret[..12]), "{shown}");
        }
        assert!(shown.contains("PrivateKey(..)") && shown.contains("PresharedKey(..)"));
    }
}

fn ip_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|bits| IpAddr::V4(bits.into())),
        any::<u128>().prop_map(|bits| IpAddr::V6(bits.into())),
        // IPv4-mapped IPv6, which prints in dotted form.
        any::<u32>().prop_map(|bits| IpAddr::V6(std::net::Ipv4Addr::from(bits).to_ipv6_mapped())),
    ]
}

fn endpoint() -> impl Strategy<Value = SocketAddr> {
    (ip_addr(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

fn ip_and_len() -> impl Strategy<Value = (IpAddr, u8)> {
    (ip_addr(), any::<u8>()).prop_map(|(ip, len)| (ip, len % if ip.is_ipv4() { 33 } else { 129 }))
}

fn key() -> impl Strategy<Value = [u8; KEY_LEN]> {
    prop_oneof![1 => Just([0; KEY_LEN]), 9 => any::<[u8; KEY_LEN]>()]
}

fn wg_device() -> impl Strategy<Value = WgDevice> {
    let peer = (
        any::<[u8; KEY_LEN]>(),
        prop::bool::weighted(0.2),
        prop::option::of(key()),
        prop::option::of(endpoint()),
        prop::option::of(any::<u16>()),
        any::<bool>(),
        prop::collection::vec((any::<bool>(), ip_and_len()), 0..5),
    )
        .prop_map(
            |(public_key, remove, preshared_key, endpoint, keepalive, replace, ips)| WgPeer {
                public_key,
                remove,
                preshared_key,
                endpoint,
                persistent_keepalive: keepalive,
                replace_allowed_ips: replace,
                allowed_ips: ips
                    .into_iter()
                    .map(|(remove, (ip, len))| (remove, ip, len))
                    .collect(),
            },
        );
    (
        prop::option::of(key()),
        prop::option::of(any::<u16>()),
        prop::option::of(prop_oneof![Just(0u32), any::<u32>()]),
        any::<bool>(),
        prop::collection::vec(peer, 0..4),
    )
        .prop_map(
            |(private_key, listen_port, fwmark, replace_peers, peers)| WgDevice {
                private_key,
                listen_port,
                fwmark,
                replace_peers,
                peers,
            },
        )
}

fn device_state() -> impl Strategy<Value = (UapiState, WgShown)> {
    let peer = (
        any::<[u8; KEY_LEN]>(),
        prop::option::of(key()),
        prop::option::of(endpoint()),
        prop::option::of((0..=i64::MAX as u64, 0..1_000_000_000u32)),
        any::<(u64, u64)>(),
        prop::option::of(any::<u16>()),
        prop::collection::vec(ip_and_len(), 0..5),
    )
        .prop_map(
            |(public_key, psk, endpoint, handshake, (rx, tx), keepalive, ips)| {
                let allowed_ips: Vec<IpNet> = ips
                    .iter()
                    .map(|&(ip, len)| IpNet::truncating(ip, len).unwrap())
                    .collect();
                let psk = psk.map(|psk| (PublicKey::from_bytes(public_key), psk));
                let state = PeerState {
                    public_key: PublicKey::from_bytes(public_key),
                    endpoint,
                    last_handshake: handshake.map(|(secs, nanos)| Duration::new(secs, nanos)),
                    rx_bytes: rx,
                    tx_bytes: tx,
                    persistent_keepalive: keepalive,
                    allowed_ips: allowed_ips.clone(),
                };
                let shown = WgShownPeer {
                    public_key,
                    preshared_key: psk.map(|(_, psk)| psk).filter(|psk| *psk != [0; KEY_LEN]),
                    endpoint,
                    persistent_keepalive: Some(keepalive.unwrap_or(0)),
                    allowed_ips: allowed_ips
                        .iter()
                        .map(|net| (net.addr(), net.prefix_len()))
                        .collect(),
                    last_handshake: handshake
                        .map_or((0, 0), |(secs, nanos)| (secs, u64::from(nanos))),
                    rx_bytes: rx,
                    tx_bytes: tx,
                };
                (state, psk, shown)
            },
        );
    (
        prop::option::of(key()),
        any::<u16>(),
        prop::option::of(any::<u32>()),
        prop::collection::vec(peer, 0..4),
    )
        .prop_map(|(private_key, listen_port, fwmark, peers)| {
            let mut peer_states = Vec::new();
            let mut preshared_keys = std::collections::BTreeMap::new();
            let mut shown_peers = Vec::new();
            for (state, psk, shown) in peers {
                peer_states.push(state);
                if let Some((public_key, psk)) = psk {
                    preshared_keys.insert(public_key, PresharedKey::from_bytes(psk));
                }
                shown_peers.push(shown);
            }
            let state = UapiState {
                private_key: private_key.map(PrivateKey::from_bytes),
                preshared_keys,
                state: DeviceState {
                    listen_port,
                    fwmark,
                    peers: peer_states,
                },
            };
            let shown = WgShown {
                private_key: private_key.filter(|key| *key != [0; KEY_LEN]),
                listen_port: (listen_port != 0).then_some(listen_port),
                fwmark: fwmark.filter(|mark| *mark != 0),
                peers: shown_peers,
            };
            (state, shown)
        })
}

/// A line that is sometimes valid, often nearly so.
fn plausible_line() -> impl Strategy<Value = Vec<u8>> {
    let name = prop::sample::select(vec![
        "private_key",
        "listen_port",
        "fwmark",
        "replace_peers",
        "public_key",
        "remove",
        "update_only",
        "preshared_key",
        "endpoint",
        "persistent_keepalive_interval",
        "replace_allowed_ips",
        "allowed_ip",
        "protocol_version",
        "set",
        "get",
        "errno",
        "",
    ]);
    let value = prop_oneof![
        Just(hex(&PEER_A)),
        Just("0".repeat(64)),
        Just("true".to_owned()),
        "[0-9a-fA-F]{60,68}",
        "[0-9]{0,12}",
        "-?[0-9a-f.:/%\\[\\]]{0,44}",
        ".{0,20}",
    ];
    prop_oneof![
        4 => (name, value).prop_map(|(name, value)| format!("{name}={value}").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

/// Everything a result says, key bytes included, for comparing two.
fn fingerprint(result: &Result<Request, RequestError>) -> String {
    match result {
        Ok(Request::Set(request)) => {
            let private_key = request
                .private_key
                .as_ref()
                .map(|key| key.as_ref().map(|key| hex(&*key.to_bytes())));
            let psks: Vec<_> = request
                .peers
                .iter()
                .map(|peer| match peer {
                    PeerChange::Set(update) => update.preshared_key.as_ref(),
                    PeerChange::Remove(_) => None,
                })
                .map(|psk| psk.map(|psk| hex(psk.as_bytes())))
                .collect();
            format!("{request:?} {private_key:?} {psks:?}")
        }
        other => format!("{other:?}"),
    }
}

fn decode_in_pieces(input: &[u8], cuts: &[usize]) -> (Vec<String>, bool) {
    let mut decoder = RequestDecoder::new(Limits {
        max_line_len: 64,
        max_request_len: 512,
    });
    let mut results = Vec::new();
    let mut start = 0;
    let mut ends: Vec<usize> = cuts.iter().map(|cut| cut % (input.len() + 1)).collect();
    ends.push(input.len());
    ends.sort_unstable();
    for end in ends {
        let mut piece = &input[start..end];
        start = end;
        loop {
            let used = decoder.handle_input(piece);
            piece = &piece[used..];
            match decoder.poll_request() {
                Some(result) => results.push(fingerprint(&result)),
                None => break,
            }
        }
    }
    decoder.handle_eof();
    results.extend(decoder.poll_request().as_ref().map(fingerprint));
    (results, decoder.is_closed())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Request::parse(&input);
        let (results, closed) = decode_in_pieces(&input, &[7, 50]);
        prop_assert!(closed);
        prop_assert!(results.len() <= input.len() + 1);
    }

    #[test]
    fn random_lines_give_a_request_or_an_error(lines in prop::collection::vec(plausible_line(), 0..12)) {
        let mut input = b"set=1\n".to_vec();
        for line in &lines {
            input.extend_from_slice(line);
            input.push(b'\n');
        }
        input.push(b'\n');
        match Request::parse(&input) {
            Ok(request) => prop_assert!(matches!(request, Request::Set(_))),
            Err(error) => {
                let shown = error.to_string();
                prop_assert!(!shown.contains(&hex(&PEER_A)[..10]));
            }
        }
    }

    #[test]
    fn how_the_input_is_cut_does_not_matter(
        lines in prop::collection::vec(plausible_line(), 0..8),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut input = b"set=1\n".to_vec();
        for line in &lines {
            input.extend_from_slice(line);
            input.push(b'\n');
        }
        input.extend_from_slice(b"\nget=1\n\n");
        prop_assert_eq!(decode_in_pieces(&input, &cuts), decode_in_pieces(&input, &[]));
    }

    #[test]
    fn what_wg_sends_parses_to_what_it_meant(device in wg_device()) {
        assert_parses_as_sent(&device);
    }

    #[test]
    fn what_we_report_wg_reads_back(case in device_state()) {
        let (state, expected) = case;
        let mut reply = Vec::new();
        write_get_response(&state, &mut reply);
        prop_assert_eq!(wg_get(&reply), Ok(expected));
        prop_assert!(reply.ends_with(b"\nerrno=0\n\n") || reply == b"errno=0\n\n");
    }
}
