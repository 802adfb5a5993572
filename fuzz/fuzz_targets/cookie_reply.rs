//! Cookie replies: `a` sent an initiation to `b`, which is under load and
//! answered with a cookie reply; `a` receives a cookie reply that is raw
//! input or the genuine one mutated (`sentrymesh_fuzz::shape`), so the
//! receiver index matches and the fuzzer reaches the decryption.
//!
//! Input: a flags byte (bit 0: from a stranger's address, else from `b`'s),
//! then the input of `shape`.
//!
//! What must hold: only the genuine reply is accepted; a refused one leaves
//! `a` as it was (the genuine reply is still accepted after it); and once
//! `a` holds the cookie, its next initiation carries a `mac2` that `b`,
//! still under load, accepts: the cookie round trip completes.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sentrymesh_fuzz::tunnel::{CookieRequested, cookie_requested};
use sentrymesh_fuzz::{STRANGER, shape};
use sentrymesh_tunnel::sim::{ADDR_B, Side};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let CookieRequested {
        mut pair,
        cookie_reply,
    } = cookie_requested();
    let from = if flags & 1 != 0 { STRANGER } else { ADDR_B };
    let reply = shape(input, &[&cookie_reply]);
    let now = pair.now;
    let peer = pair.a.peer;
    let stats = pair.a.engine.peer_stats(peer);
    let mut datagram = reply.clone();
    match pair.a.engine.handle_datagram(now, from, &mut datagram) {
        Ok(_) => assert_eq!(
            reply, cookie_reply,
            "accepted a cookie reply that is not genuine"
        ),
        Err(_) => {
            assert_eq!(
                pair.a.engine.peer_stats(peer),
                stats,
                "a refusal changed counters"
            );
            let mut datagram = cookie_reply.clone();
            let taken = pair.a.engine.handle_datagram(now, ADDR_B, &mut datagram);
            assert!(
                taken.is_ok(),
                "the genuine reply refused after a refusal: {taken:?}"
            );
        }
    }
    // `a` retries after REKEY_TIMEOUT with the cookie's mac2, which `b`
    // (still under load) takes: the handshake completes.
    pair.advance(Duration::from_secs(6));
    let stats = pair.b.engine.peer_stats(pair.b.peer).expect("b's peer");
    assert!(
        stats.last_handshake.is_some(),
        "the cookie round trip did not complete"
    );
    assert!(
        pair.host(Side::A).rejected.is_empty(),
        "{:?}",
        pair.a.rejected
    );
});
