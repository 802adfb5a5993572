//! Under load, a responder tells a handshake message that proves its
//! source with a cookie (`mac2`) from one that does not, without any
//! Diffie-Hellman: what lets the daemon keep room for proven senders while
//! a flood from spoofed sources fills its handshake queue. Admitting one
//! charges its source's rate, once: a host with a cookie gets its burst
//! and no more.

use std::net::SocketAddr;

use sentrymesh_tunnel::Error;
use sentrymesh_tunnel::rate_limit::PACKETS_BURSTABLE;
use sentrymesh_tunnel::sim::{Pair, Side};

const INITIATION: u8 = 1;
const RESPONSE: u8 = 2;

#[test]
fn only_an_initiation_with_a_fresh_cookie_for_its_source_is_admitted_within_its_rate() {
    let mut pair = Pair::new();
    pair.b.engine.set_under_load(true);
    let (peer, now) = (pair.a.peer, pair.now);
    pair.a.engine.connect(now, peer).expect("connect");
    pair.drive();
    assert_eq!(pair.b.rejected.len(), 1);
    assert_eq!(pair.b.rejected[0].1, Error::CookieRequired);
    // The first initiation had no cookie; a's retry carries the cookie b
    // sent back. It is kept off the wire, to be handed to b by hand.
    pair.a.drop_outgoing = true;
    assert!(pair.advance_to_next_timeout());
    let initiations: Vec<Vec<u8>> = pair
        .a
        .initiations()
        .iter()
        .map(|sent| sent.bytes.clone())
        .collect();
    assert_eq!(initiations.len(), 2);
    assert!(initiations.iter().all(|bytes| bytes[0] == INITIATION));
    let (from, now) = (pair.a.addr, pair.now);
    let b = &mut pair.b.engine;
    assert_eq!(
        b.admit_proven(now, from, &initiations[0]),
        Err(Error::CookieRequired)
    );
    // The cookie is for a's address alone, and for a whole message.
    let elsewhere = SocketAddr::new(from.ip(), from.port().wrapping_add(1));
    assert_eq!(
        b.admit_proven(now, elsewhere, &initiations[1]),
        Err(Error::CookieRequired)
    );
    let mut changed = initiations[1].clone();
    changed[8] ^= 1;
    assert_eq!(
        b.admit_proven(now, from, &changed),
        Err(Error::CookieRequired)
    );
    // Nothing that is not a handshake message is admitted, whatever its bytes.
    for datagram in [&[][..], &initiations[1][..40], &[4, 0, 0, 0, 1, 2, 3]] {
        assert_eq!(b.admit_proven(now, from, datagram), Err(Error::Malformed));
    }
    // The proven retry, sent again and again from a's address: its burst
    // is admitted, and no more at this instant.
    let admitted: Vec<Result<(), Error>> = (0..100)
        .map(|_| b.admit_proven(now, from, &initiations[1]))
        .collect();
    let burst = PACKETS_BURSTABLE as usize;
    assert!(admitted[..burst].iter().all(Result::is_ok));
    assert!(
        admitted[burst..]
            .iter()
            .all(|a| *a == Err(Error::RateLimited))
    );
    // An admitted message is not charged again: with a's bucket empty, it
    // is handled, and answered with a response.
    assert_eq!(
        b.handle_proven_handshake(now, from, &initiations[1]),
        Ok(pair.b.peer)
    );
    let mut buf = [0; 256];
    let transmit = b.poll_transmit(now, &mut buf).expect("a response");
    assert_eq!((transmit.destination, buf[0]), (from, RESPONSE));
    let response = buf[..transmit.len].to_vec();
    // Where a message was not admitted, its rate is charged as ever.
    let mut copy = initiations[1].clone();
    assert_eq!(
        b.handle_datagram(now, from, &mut copy),
        Err(Error::RateLimited)
    );
    // And only handshake messages are handled so.
    assert_eq!(
        b.handle_proven_handshake(now, from, &[4, 0, 0, 0, 1, 2, 3]),
        Err(Error::Malformed)
    );
    // The response completes the handshake, and a's first message b's.
    pair.a.drop_outgoing = false;
    assert_eq!(pair.deliver(Side::A, &response), Ok(None));
    for host in [&pair.a, &pair.b] {
        let stats = host.engine.peer_stats(host.peer).expect("peer");
        assert!(stats.last_handshake.is_some(), "the retry completed it");
    }
}
