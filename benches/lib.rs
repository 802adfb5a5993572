//! Setup shared by the criterion benches of sentrymesh; nothing here is timed
//! on its own.
//!
//! This crate is not part of the daemon and measures nothing by itself: the
//! bench targets do (`encapsulate`, `decapsulate`, `handshake`, `aead`,
//! and `card` for the mesh's cards; see
//! `benches/README.md`). They compare our [`Engine`](sentrymesh_tunnel::Engine) with boringtun's
//! [`Tunn`] and with the bare AEAD, and share:
//!
//! ```text
//!   sim::Pair      a: Engine          ◄──── handshake ────► b: Engine
//!                  (the engine's harness; virtual time: `now` only moves
//!                  when a bench moves it)
//!   BoringtunPair  initiator Tunn     ◄──── handshake ────► responder Tunn
//!                  (boringtun reads the real clock itself)
//! ```
//!
//! The mesh simulation bench (`mesh-sim`) is [`meshsim`]: N mesh members
//! on the mesh's simulated network and virtual clock.
//!
//! Data benches send from the initiator (`a` of our pair) to the responder
//! (`b`), as the responder's session is only confirmed by the first data
//! message.

pub mod meshsim;

use std::sync::Arc;
use std::time::Duration;

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sentrymesh_tunnel::sim::Pair;
use sentrymesh_tunnel::timers::REJECT_AFTER_TIME;
use sentrymesh_tunnel::{DATA_OVERHEAD, INITIATION_LEN, KEEPALIVE_LEN, RESPONSE_LEN};

/// The inner packet sizes of the data benches: a small packet, the IPv4
/// minimum MTU, and a full packet under WireGuard's default MTU.
pub const SIZES: [usize; 3] = [64, 576, 1420];

/// The MTU our engines pad to, as a daemon on a 1420-byte TUN device
/// does. Every size in [`SIZES`] then seals without padding, the same bytes
/// boringtun (which never pads) and the raw AEAD benches seal.
pub const MTU: u16 = 1420;

/// Large enough for every datagram of the benches (the largest is
/// `1420 + 32` bytes; handshake messages are at most 148).
pub const BUF_LEN: usize = 2048;

/// How many data messages the decapsulate benches seal ahead of each timed
/// run. Each counter is accepted only once, so every iteration needs its own
/// message; 256 of the largest fit in a core's L2 cache, as a batch of
/// datagrams fresh from the socket would be.
pub const BATCH: usize = 256;

/// The criterion settings of every bench: 1 s of warm-up and 3 s of
/// measurement each, so the whole suite runs in a few minutes on two cores.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// The tag of every inner packet the benches send ([`sim::ipv4_packet`](sentrymesh_tunnel::sim::ipv4_packet)).
pub const TAG: u8 = 0x5a;

/// The 96-bit nonce of a WireGuard data message: 32 zero bits, then the
/// counter little-endian. For the raw AEAD benches.
pub fn counter_nonce(counter: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    nonce
}

/// A `ring` ChaCha20-Poly1305 key, as a session holds one.
pub fn ring_key(bytes: &[u8; 32]) -> ring::aead::LessSafeKey {
    ring::aead::LessSafeKey::new(
        // Any 32 bytes are a valid ChaCha20-Poly1305 key.
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, bytes)
            .expect("32-byte ChaCha20-Poly1305 key"),
    )
}

/// Two of our engines from `seed` that have completed a handshake, on
/// the engine's simulation harness: `a` (at [`ADDR_A`](sentrymesh_tunnel::sim::ADDR_A)) seals data for `b`,
/// whose session is confirmed; both pad to [`MTU`].
///
/// # Panics
///
/// When the handshake fails (which would be a bug).
pub fn ours_established(seed: u64) -> Pair {
    let mut pair = Pair::with_seed(seed);
    pair.a.engine.set_mtu(Some(MTU));
    pair.b.engine.set_mtu(Some(MTU));
    pair.handshake();
    pair
}

/// Moves `pair`'s virtual time past the end of its current session, then
/// runs a new handshake. Without a usable session `a` may start one at
/// once; with one, it would only send a keepalive.
///
/// # Panics
///
/// As [`Pair::handshake`].
pub fn next_handshake(pair: &mut Pair) {
    pair.now += REJECT_AFTER_TIME;
    pair.handshake();
}

/// Two boringtun tunnels that are each other's peer.
///
/// Each has a rate limiter that never reports load: boringtun's default one
/// demands cookies after ten handshake messages in a second (and is reset
/// only by its timer tick), which would turn back-to-back handshakes into
/// cookie exchanges. Our engines are not under load either.
pub struct BoringtunPair {
    /// The side that initiates handshakes and sends data in the benches.
    pub initiator: Tunn,
    /// The side that answers handshakes and receives data in the benches.
    pub responder: Tunn,
    initiator_buf: Vec<u8>,
    responder_buf: Vec<u8>,
    flush_buf: Vec<u8>,
}

impl BoringtunPair {
    /// Two tunnels with keys from `seed`; no handshake yet.
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let initiator_key = x25519_dalek::StaticSecret::random_from_rng(&mut rng);
        let responder_key = x25519_dalek::StaticSecret::random_from_rng(&mut rng);
        let initiator_public = x25519_dalek::PublicKey::from(&initiator_key);
        let responder_public = x25519_dalek::PublicKey::from(&responder_key);
        let unlimited = |public| Some(Arc::new(RateLimiter::new(public, u64::MAX)));
        Self {
            initiator: Tunn::new(
                initiator_key,
                responder_public,
                None,
                None,
                1,
                unlimited(&initiator_public),
            ),
            responder: Tunn::new(
                responder_key,
                initiator_public,
                None,
                None,
                2,
                unlimited(&responder_public),
            ),
            initiator_buf: vec![0; BUF_LEN],
            responder_buf: vec![0; BUF_LEN],
            flush_buf: vec![0; BUF_LEN],
        }
    }

    /// A pair that has completed a handshake: the initiator can seal data
    /// for the responder, which has taken the session as current.
    ///
    /// # Panics
    ///
    /// When the handshake fails (which would be a bug).
    pub fn established(seed: u64) -> Self {
        let mut pair = Self::new(seed);
        pair.handshake();
        pair
    }

    /// One complete handshake: initiation, response, and the keepalive that
    /// confirms the session to the responder. After every message that
    /// produced output, queued packets are flushed as boringtun's docs ask.
    ///
    /// # Panics
    ///
    /// When a message is not sent or not accepted.
    pub fn handshake(&mut self) {
        let initiation = match self
            .initiator
            .format_handshake_initiation(&mut self.initiator_buf, false)
        {
            TunnResult::WriteToNetwork(initiation) => initiation,
            other => panic!("no initiation: {other:?}"),
        };
        assert_eq!(initiation.len(), INITIATION_LEN);
        let response = match self
            .responder
            .decapsulate(None, initiation, &mut self.responder_buf)
        {
            TunnResult::WriteToNetwork(response) => response,
            other => panic!("no response: {other:?}"),
        };
        assert_eq!(response.len(), RESPONSE_LEN);
        let keepalive = match self
            .initiator
            .decapsulate(None, response, &mut self.initiator_buf)
        {
            TunnResult::WriteToNetwork(keepalive) => keepalive,
            other => panic!("no keepalive: {other:?}"),
        };
        assert_eq!(keepalive.len(), KEEPALIVE_LEN);
        flush(&mut self.responder, &mut self.flush_buf);
        let confirmed = self
            .responder
            .decapsulate(None, keepalive, &mut self.responder_buf);
        assert!(matches!(confirmed, TunnResult::Done), "{confirmed:?}");
        flush(&mut self.initiator, &mut self.flush_buf);
    }

    /// Seals `packet` from the initiator into `out` (which must hold
    /// `packet.len() + 32` bytes); returns the datagram's length.
    ///
    /// # Panics
    ///
    /// When the tunnel writes something other than a data message.
    pub fn seal(&mut self, packet: &[u8], out: &mut [u8]) -> usize {
        match self.initiator.encapsulate(packet, out) {
            TunnResult::WriteToNetwork(datagram)
                if datagram.len() == packet.len() + DATA_OVERHEAD =>
            {
                datagram.len()
            }
            other => panic!("not sealed: {other:?}"),
        }
    }
}

/// Sends nothing: checks that `tunn` has no queued packet to flush.
fn flush(tunn: &mut Tunn, buf: &mut [u8]) {
    let flushed = tunn.decapsulate(None, &[], buf);
    assert!(matches!(flushed, TunnResult::Done), "{flushed:?}");
}

#[cfg(test)]
mod tests {
    use sentrymesh_tunnel::sim::{ADDR_A, ipv4_packet};
    use sentrymesh_tunnel::{DATA_HEADER_LEN, Encapsulated, Received};

    use super::*;

    fn ours_receives(pair: &mut Pair, len: usize) {
        let packet = ipv4_packet(len, TAG);
        let mut datagram = vec![0; pair.a.engine.encapsulated_len(len)];
        let sealed = match pair
            .a
            .engine
            .encapsulate(pair.now, pair.a.peer, &packet, &mut datagram)
        {
            Ok(Encapsulated::Sealed { len }) => len,
            other => panic!("not sealed: {other:?}"),
        };
        assert_eq!(sealed, len + DATA_OVERHEAD, "no padding up to the MTU");
        match pair
            .b
            .engine
            .handle_datagram(pair.now, ADDR_A, &mut datagram)
        {
            Ok(Received::Packet { peer, packet: got }) => {
                assert_eq!(peer, pair.b.peer);
                assert_eq!(got, &packet[..]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn our_pair_handshakes_back_to_back_and_carries_data() {
        let mut pair = ours_established(1);
        for len in SIZES {
            ours_receives(&mut pair, len);
        }
        for _ in 0..3 {
            next_handshake(&mut pair);
            for len in SIZES {
                ours_receives(&mut pair, len);
            }
        }
    }

    #[test]
    fn our_in_place_seal_matches_the_copying_one() {
        let mut pair = ours_established(2);
        let len = 576;
        let mut buf = vec![0; BUF_LEN];
        buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len].copy_from_slice(&ipv4_packet(len, TAG));
        let sealed = pair
            .a
            .engine
            .encapsulate_in_place(pair.now, pair.a.peer, &mut buf, len);
        let Ok(Encapsulated::Sealed { len: sealed_len }) = sealed else {
            panic!("{sealed:?}");
        };
        let received = pair
            .b
            .engine
            .handle_datagram(pair.now, ADDR_A, &mut buf[..sealed_len]);
        assert!(
            matches!(received, Ok(Received::Packet { .. })),
            "{received:?}"
        );
    }

    // One handshake only: when a workspace-wide build unifies boringtun's
    // `mock-instant` feature (the tunnel crate's tests enable it), its clock
    // stands still and a second initiation would carry the same timestamp.
    #[test]
    fn boringtun_pair_carries_data() {
        let mut pair = BoringtunPair::established(3);
        let mut dst = vec![0; BUF_LEN];
        for len in SIZES {
            let packet = ipv4_packet(len, TAG);
            let mut datagram = vec![0; len + DATA_OVERHEAD];
            pair.seal(&packet, &mut datagram);
            match pair.responder.decapsulate(None, &datagram, &mut dst) {
                TunnResult::WriteToTunnelV4(got, _) => assert_eq!(got, &packet[..]),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn raw_seal_opens_with_the_counter_nonce() {
        let key = ring_key(&[7; 32]);
        let mut buf = ipv4_packet(64, TAG);
        let nonce = || ring::aead::Nonce::assume_unique_for_key(counter_nonce(9));
        let tag = key
            .seal_in_place_separate_tag(nonce(), ring::aead::Aad::empty(), &mut buf)
            .unwrap();
        buf.extend_from_slice(tag.as_ref());
        let opened = key
            .open_in_place(nonce(), ring::aead::Aad::empty(), &mut buf)
            .unwrap();
        assert_eq!(opened, &ipv4_packet(64, TAG)[..]);
    }
}
