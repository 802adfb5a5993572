//! Engines to fuzz, in the states the targets need, and the genuine
//! datagrams between them: all from [`Pair`]'s fixed seed, so every run
//! builds the same bytes.
//!
//! Each fixture is built once per thread (its X25519s cost far more than
//! what a target does with one input) and every call returns a copy: a
//! cloned [`Pair`] is an independent engine pair in the same state, keys,
//! sessions and RNGs included, so every input starts from the same state
//! as if the fixture were built afresh, and no input affects the next.

use sentrymesh_tunnel::sim::{ADDR_A, BUF_LEN, Pair, Side, ipv4_packet};

/// A copy of the fixture of type `$fixture` that `$build` makes, built
/// once per thread.
macro_rules! copy_of {
    ($fixture:ty, $build:expr) => {{
        thread_local! {
            static FIXTURE: $fixture = $build;
        }
        FIXTURE.with(Clone::clone)
    }};
}

/// An established pair, and data datagrams `b` sealed for `a` that `a` has
/// not received yet.
#[derive(Clone)]
pub struct Established {
    /// The pair, handshake done at time zero.
    pub pair: Pair,
    /// The datagrams, in the order `b` sealed them.
    pub genuine: Vec<Vec<u8>>,
    /// The inner packet of each datagram.
    pub inner: Vec<Vec<u8>>,
}

/// [`Established`]: three packets of different lengths from `b` to `a`.
pub fn established() -> Established {
    copy_of!(Established, build_established())
}

fn build_established() -> Established {
    let mut pair = Pair::established();
    let inner = vec![ipv4_packet(84, 1), ipv4_packet(1280, 2), ipv4_packet(20, 3)];
    let genuine = inner
        .iter()
        .map(|packet| pair.seal(Side::B, packet))
        .collect();
    Established {
        pair,
        genuine,
        inner,
    }
}

/// A pair in the middle of a handshake: `a` sent `initiation` (not
/// delivered) and waits for a response.
#[derive(Clone)]
pub struct Initiated {
    /// The pair; nothing is in flight.
    pub pair: Pair,
    /// `a`'s initiation to `b`.
    pub initiation: Vec<u8>,
}

/// [`Initiated`], at time zero.
///
/// # Panics
///
/// If the engine does not start a handshake: the fixture is broken.
pub fn initiated() -> Initiated {
    copy_of!(Initiated, build_initiated())
}

fn build_initiated() -> Initiated {
    let mut pair = Pair::new();
    let (peer, now) = (pair.a.peer, pair.now);
    pair.a.engine.connect(now, peer).expect("connect");
    let mut buf = [0u8; BUF_LEN];
    let transmit = pair
        .a
        .engine
        .poll_transmit(now, &mut buf)
        .expect("an initiation");
    let initiation = buf[..transmit.len].to_vec();
    assert!(pair.a.engine.poll_transmit(now, &mut buf).is_none());
    Initiated { pair, initiation }
}

/// [`initiated`], then `b` took the initiation and answered with
/// `response` (not delivered): `a` waits for it.
#[derive(Clone)]
pub struct Responded {
    /// The pair; nothing is in flight.
    pub pair: Pair,
    /// `a`'s initiation, as `b` took it.
    pub initiation: Vec<u8>,
    /// `b`'s response to `a`.
    pub response: Vec<u8>,
}

/// [`Responded`], at time zero.
///
/// # Panics
///
/// If `b` does not answer the initiation: the fixture is broken.
pub fn responded() -> Responded {
    copy_of!(Responded, build_responded())
}

fn build_responded() -> Responded {
    let Initiated {
        mut pair,
        initiation,
    } = initiated();
    let now = pair.now;
    let mut datagram = initiation.clone();
    pair.b
        .engine
        .handle_datagram(now, ADDR_A, &mut datagram)
        .expect("b takes the initiation");
    let mut buf = [0u8; BUF_LEN];
    let transmit = pair
        .b
        .engine
        .poll_transmit(now, &mut buf)
        .expect("a response");
    Responded {
        pair,
        initiation,
        response: buf[..transmit.len].to_vec(),
    }
}

/// [`initiated`], then `b`, under load, answered the initiation with
/// `cookie_reply` (not delivered): `a` still waits for a response, and
/// takes the cookie.
#[derive(Clone)]
pub struct CookieRequested {
    /// The pair; `b` is under load, nothing is in flight.
    pub pair: Pair,
    /// `b`'s cookie reply to `a`.
    pub cookie_reply: Vec<u8>,
}

/// [`CookieRequested`], at time zero.
///
/// # Panics
///
/// If `b` does not answer with a cookie reply: the fixture is broken.
pub fn cookie_requested() -> CookieRequested {
    copy_of!(CookieRequested, build_cookie_requested())
}

fn build_cookie_requested() -> CookieRequested {
    let Initiated {
        mut pair,
        initiation,
    } = initiated();
    let now = pair.now;
    pair.b.engine.set_under_load(true);
    let mut datagram = initiation;
    let refused = pair.b.engine.handle_datagram(now, ADDR_A, &mut datagram);
    assert_eq!(
        refused.err(),
        Some(sentrymesh_tunnel::Error::CookieRequired)
    );
    let mut buf = [0u8; BUF_LEN];
    let transmit = pair
        .b
        .engine
        .poll_transmit(now, &mut buf)
        .expect("a cookie reply");
    CookieRequested {
        pair,
        cookie_reply: buf[..transmit.len].to_vec(),
    }
}
