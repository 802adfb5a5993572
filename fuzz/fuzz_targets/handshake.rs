//! Handshake messages: an initiation to `b`, or a response to `a` (which
//! waits for it), raw or a genuine one mutated (`sentrymesh_fuzz::shape`),
//! with a valid `mac1` written over the mutated body so the fuzzer reaches
//! the Diffie-Hellman and decryption behind it; optionally under load, so
//! `mac2`, the cookie reply and the rate limit run.
//!
//! Input: a flags byte (bit 0: a response to `a`, else an initiation to
//! `b`; bit 1: the receiver is under load; bit 2: leave `mac1` as shaped;
//! bit 3: from a stranger's address), then the input of `shape`.
//!
//! What must hold: only a message whose body (all before `mac1`, but for
//! the sender index, which only `mac1` covers) is the genuine one is
//! accepted; under load, a message of the right length with
//! a valid `mac1` and no cookie is answered with a cookie reply to its
//! source and nothing else; a refused message leaves the receiver as it
//! was (the genuine message is still accepted after it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentrymesh_fuzz::tunnel::{Responded, initiated, responded};
use sentrymesh_fuzz::{STRANGER, shape, write_mac1};
use sentrymesh_tunnel::sim::{ADDR_A, ADDR_B, BUF_LEN, Pair, Side};
use sentrymesh_tunnel::{COOKIE_REPLY_LEN, Error, INITIATION_LEN, RESPONSE_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let to_initiator = flags & 1 != 0;
    let under_load = flags & 2 != 0;
    let keep_mac1 = flags & 4 != 0;
    let (mut pair, genuine, receiver, genuine_from) = if to_initiator {
        let Responded { pair, response, .. } = responded();
        (pair, response, Side::A, ADDR_B)
    } else {
        let fixture = initiated();
        (fixture.pair, fixture.initiation, Side::B, ADDR_A)
    };
    let from = if flags & 8 != 0 {
        STRANGER
    } else {
        genuine_from
    };
    let mut message = shape(input, &[&genuine]);
    let receiver_key = *pair.host(receiver).engine.public_key();
    if !keep_mac1 {
        write_mac1(&mut message, &receiver_key);
    }
    let body_len = genuine.len() - 32;
    let now = pair.now;
    let host = pair.host(receiver);
    host.engine.set_under_load(under_load);
    let peer = host.peer;
    let stats = host.engine.peer_stats(peer);
    let mut datagram = message.clone();
    let result = host
        .engine
        .handle_datagram(now, from, &mut datagram)
        .map(|_| ());
    if result.is_ok() {
        // The sender index (bytes 4..8) is outside the Noise transcript, in
        // WireGuard as in the whitepaper: only `mac1` covers it.
        assert_eq!(
            [message.get(..4), message.get(8..body_len)],
            [genuine.get(..4), genuine.get(8..body_len)],
            "accepted a handshake message that is not genuine"
        );
    }
    let expected_len = if to_initiator {
        RESPONSE_LEN
    } else {
        INITIATION_LEN
    };
    let well_formed =
        message.len() == expected_len && message[0] == genuine[0] && message[1..4] == [0, 0, 0];
    if under_load && !keep_mac1 && well_formed {
        assert_eq!(result, Err(Error::CookieRequired));
        let mut buf = [0u8; BUF_LEN];
        let transmit = host
            .engine
            .poll_transmit(now, &mut buf)
            .expect("a cookie reply");
        assert_eq!(transmit.destination, from);
        assert_eq!(transmit.len, COOKIE_REPLY_LEN);
        assert_eq!(buf[0], 3);
        assert!(host.engine.poll_transmit(now, &mut buf).is_none());
        return;
    }
    if result.is_err() {
        assert_eq!(
            host.engine.peer_stats(peer),
            stats,
            "a refusal changed counters"
        );
        if !under_load {
            still_takes(&mut pair, receiver, &genuine, genuine_from);
        }
    }
    drain(&mut pair);
});

/// The refused message changed nothing: the genuine one is still taken.
fn still_takes(pair: &mut Pair, receiver: Side, genuine: &[u8], from: std::net::SocketAddr) {
    let now = pair.now;
    let mut datagram = genuine.to_vec();
    let result = pair
        .host(receiver)
        .engine
        .handle_datagram(now, from, &mut datagram);
    assert!(
        result.is_ok(),
        "the genuine message refused after a refusal: {result:?}"
    );
}

/// Whatever either engine sends is a WireGuard message of a known type.
fn drain(pair: &mut Pair) {
    let now = pair.now;
    let mut buf = [0u8; BUF_LEN];
    for side in [Side::A, Side::B] {
        while let Some(transmit) = pair.host(side).engine.poll_transmit(now, &mut buf) {
            assert!((1..=4).contains(&buf[0]), "sent a datagram of unknown type");
            assert!(transmit.len <= BUF_LEN);
        }
    }
}
