//! Under load, a responder tells a handshake message that proves its
//! source with a cookie (`mac2`) from one that does not, without any
//! Diffie-Hellman: what lets the daemon keep room for proven senders while
//! a flood from spoofed sources fills its handshake queue.

use std::net::SocketAddr;

use sentrymesh_tunnel::Error;
use sentrymesh_tunnel::sim::Pair;

const INITIATION: u8 = 1;

#[test]
fn only_an_initiation_with_a_fresh_cookie_for_its_source_has_one() {
    let mut pair = Pair::new();
    pair.b.engine.set_under_load(true);
    let (peer, now) = (pair.a.peer, pair.now);
    pair.a.engine.connect(now, peer).expect("connect");
    pair.drive();
    assert_eq!(pair.b.rejected.len(), 1);
    assert_eq!(pair.b.rejected[0].1, Error::CookieRequired);
    // The first initiation had no cookie; a's retry carries the cookie b
    // sent back, and completes the handshake.
    assert!(pair.advance_to_next_timeout());
    let initiations: Vec<Vec<u8>> = pair
        .a
        .initiations()
        .iter()
        .map(|sent| sent.bytes.clone())
        .collect();
    assert_eq!(initiations.len(), 2);
    assert!(initiations.iter().all(|bytes| bytes[0] == INITIATION));
    let (b, from, now) = (&pair.b.engine, pair.a.addr, pair.now);
    assert!(!b.has_cookie(now, from, &initiations[0]));
    assert!(b.has_cookie(now, from, &initiations[1]));
    // The cookie is for a's address alone, and for a whole message.
    let elsewhere = SocketAddr::new(from.ip(), from.port().wrapping_add(1));
    assert!(!b.has_cookie(now, elsewhere, &initiations[1]));
    let mut changed = initiations[1].clone();
    changed[8] ^= 1;
    assert!(!b.has_cookie(now, from, &changed));
    // Nothing that is not a handshake message has one, whatever its bytes.
    for datagram in [&[][..], &initiations[1][..40], &[4, 0, 0, 0, 1, 2, 3]] {
        assert!(!b.has_cookie(now, from, datagram));
    }
    let stats = b.peer_stats(pair.b.peer).expect("peer");
    assert!(stats.last_handshake.is_some(), "the retry completed it");
}
