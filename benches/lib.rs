//! Setup shared by the criterion benches of sentrymesh; nothing here is timed
//! on its own.
//!
//! This crate is not part of the daemon and measures nothing by itself: the
//! bench targets do (`encapsulate`, `decapsulate`, `handshake`, `aead`,
//! and `card` for the mesh's cards; see
//! `benches/README.md`). They compare our [`Endpoint`] with boringtun's
//! [`Tunn`] and with the bare AEAD, and share:
//!
//! ```text
//!   OursPair       initiator Endpoint ◄──── handshake ────► responder Endpoint
//!                  (virtual time: `now` only moves when a bench moves it)
//!   BoringtunPair  initiator Tunn     ◄──── handshake ────► responder Tunn
//!                  (boringtun reads the real clock itself)
//!   ipv4_packet    an inner packet both accept
//! ```
//!
//! Data benches send from the initiator to the responder, as the responder's
//! session is only confirmed by the first data message.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sentrymesh_tunnel::timers::REJECT_AFTER_TIME;
use sentrymesh_tunnel::{
    DATA_OVERHEAD, Encapsulated, Endpoint, INITIATION_LEN, KEEPALIVE_LEN, PeerConfig, PeerId,
    PrivateKey, PublicKey, RESPONSE_LEN, Received,
};

/// The inner packet sizes of the data benches: a small packet, the IPv4
/// minimum MTU, and a full packet under WireGuard's default MTU.
pub const SIZES: [usize; 3] = [64, 576, 1420];

/// The MTU our endpoints pad to, as a daemon on a 1420-byte TUN device
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

/// The initiator's UDP address, as the responder sees it.
pub const INITIATOR_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 51820));

/// The responder's UDP address, as the initiator sees it.
pub const RESPONDER_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 51820));

/// An IPv4 packet of `len` bytes (version 4, header length 5, total length
/// `len`). Both implementations drop a payload that is not an IP packet.
///
/// # Panics
///
/// When `len` is below the 20 bytes of a header or above 65535.
pub fn ipv4_packet(len: usize) -> Vec<u8> {
    assert!(len >= 20, "an IPv4 packet has at least a 20-byte header");
    let total = u16::try_from(len).expect("an IPv4 packet has at most 65535 bytes");
    let mut packet: Vec<u8> = (0..len).map(|i| i as u8).collect();
    packet[0] = 0x45;
    packet[2..4].copy_from_slice(&total.to_be_bytes());
    packet
}

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

/// Two of our endpoints that are each other's peer, on virtual time.
pub struct OursPair {
    /// The side that initiates handshakes and sends data in the benches.
    pub initiator: Endpoint,
    /// The side that answers handshakes and receives data in the benches.
    pub responder: Endpoint,
    /// The responder, as a peer of the initiator.
    pub responder_id: PeerId,
    /// The initiator, as a peer of the responder.
    pub initiator_id: PeerId,
    /// The virtual time both endpoints are at.
    pub now: Instant,
    initiator_buf: Vec<u8>,
    responder_buf: Vec<u8>,
}

impl OursPair {
    /// Two endpoints with keys and RNGs from `seed`, each configured with
    /// the other's key and address, padding to [`MTU`]; no handshake yet.
    ///
    /// # Panics
    ///
    /// When an endpoint refuses its peer (which would be a bug).
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let now = Instant::now();
        let unix_now = Duration::from_secs(1_700_000_000);
        let initiator_key = PrivateKey::generate(&mut rng);
        let responder_key = PrivateKey::generate(&mut rng);
        let initiator_public = initiator_key.public_key();
        let responder_public = responder_key.public_key();
        let mut initiator = Endpoint::new(
            initiator_key,
            ChaCha20Rng::seed_from_u64(seed ^ 1),
            now,
            unix_now,
        );
        let mut responder = Endpoint::new(
            responder_key,
            ChaCha20Rng::seed_from_u64(seed ^ 2),
            now,
            unix_now,
        );
        initiator.set_mtu(Some(MTU));
        responder.set_mtu(Some(MTU));
        let responder_id = initiator
            .add_peer(now, peer_config(responder_public, RESPONDER_ADDR))
            .expect("a fresh endpoint accepts a new peer");
        let initiator_id = responder
            .add_peer(now, peer_config(initiator_public, INITIATOR_ADDR))
            .expect("a fresh endpoint accepts a new peer");
        Self {
            initiator,
            responder,
            responder_id,
            initiator_id,
            now,
            initiator_buf: vec![0; BUF_LEN],
            responder_buf: vec![0; BUF_LEN],
        }
    }

    /// A pair that has completed a handshake: the initiator can seal data
    /// for the responder, whose session is confirmed.
    ///
    /// # Panics
    ///
    /// When the handshake fails (which would be a bug).
    pub fn established(seed: u64) -> Self {
        let mut pair = Self::new(seed);
        pair.handshake();
        pair
    }

    /// Moves virtual time past the end of the current session, then runs a
    /// new handshake. Without a usable session the initiator may start one
    /// at once; with one, it would only send a keepalive.
    ///
    /// # Panics
    ///
    /// As [`OursPair::handshake`].
    pub fn next_handshake(&mut self) {
        self.now += REJECT_AFTER_TIME;
        self.handshake();
    }

    /// One complete handshake at [`OursPair::now`]: initiation, response, and
    /// the keepalive that confirms the session to the responder. After every
    /// input the outputs are drained, as the crate docs ask of a caller.
    ///
    /// # Panics
    ///
    /// When a message is not sent or not accepted.
    pub fn handshake(&mut self) {
        let now = self.now;
        self.initiator
            .connect(now, self.responder_id)
            .expect("the responder is a peer");
        let len = transmit_one(&mut self.initiator, now, &mut self.initiator_buf);
        assert_eq!(len, INITIATION_LEN, "an initiation");
        let received =
            self.responder
                .handle_datagram(now, INITIATOR_ADDR, &mut self.initiator_buf[..len]);
        assert!(matches!(received, Ok(Received::Control(_))), "{received:?}");

        let len = transmit_one(&mut self.responder, now, &mut self.responder_buf);
        assert_eq!(len, RESPONSE_LEN, "a response");
        let received =
            self.initiator
                .handle_datagram(now, RESPONDER_ADDR, &mut self.responder_buf[..len]);
        assert!(matches!(received, Ok(Received::Control(_))), "{received:?}");

        let len = transmit_one(&mut self.initiator, now, &mut self.initiator_buf);
        assert_eq!(len, KEEPALIVE_LEN, "the confirming keepalive");
        let received =
            self.responder
                .handle_datagram(now, INITIATOR_ADDR, &mut self.initiator_buf[..len]);
        assert!(matches!(received, Ok(Received::Control(_))), "{received:?}");
        assert!(
            self.responder
                .poll_transmit(now, &mut self.responder_buf)
                .is_none(),
            "nothing left to send"
        );
    }

    /// Seals `packet` from the initiator into `out` (which must hold
    /// `encapsulated_len(packet.len())` bytes); returns the datagram's length.
    ///
    /// # Panics
    ///
    /// When the packet is queued instead of sealed (no session).
    pub fn seal(&mut self, packet: &[u8], out: &mut [u8]) -> usize {
        match self
            .initiator
            .encapsulate(self.now, self.responder_id, packet, out)
        {
            Ok(Encapsulated::Sealed { len }) => len,
            other => panic!("not sealed: {other:?}"),
        }
    }
}

fn peer_config(public_key: PublicKey, endpoint: SocketAddr) -> PeerConfig {
    let mut config = PeerConfig::new(public_key);
    config.endpoint = Some(endpoint);
    config
}

/// The one datagram `endpoint` has to send; its length.
fn transmit_one(endpoint: &mut Endpoint, now: Instant, buf: &mut [u8]) -> usize {
    let transmit = endpoint
        .poll_transmit(now, buf)
        .expect("a datagram to send");
    // Drain, as the run loop does. There must be nothing else, and `None`
    // leaves `buf` as it is.
    assert!(endpoint.poll_transmit(now, buf).is_none(), "one datagram");
    transmit.len
}

/// Two boringtun tunnels that are each other's peer.
///
/// Each has a rate limiter that never reports load: boringtun's default one
/// demands cookies after ten handshake messages in a second (and is reset
/// only by its timer tick), which would turn back-to-back handshakes into
/// cookie exchanges. Our endpoints are not under load either.
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
    use sentrymesh_tunnel::DATA_HEADER_LEN;

    use super::*;

    fn ours_receives(pair: &mut OursPair, len: usize) {
        let packet = ipv4_packet(len);
        let mut datagram = vec![0; pair.initiator.encapsulated_len(len)];
        let sealed = pair.seal(&packet, &mut datagram);
        assert_eq!(sealed, len + DATA_OVERHEAD, "no padding up to the MTU");
        match pair
            .responder
            .handle_datagram(pair.now, INITIATOR_ADDR, &mut datagram)
        {
            Ok(Received::Packet { peer, packet: got }) => {
                assert_eq!(peer, pair.initiator_id);
                assert_eq!(got, &packet[..]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn our_pair_handshakes_back_to_back_and_carries_data() {
        let mut pair = OursPair::established(1);
        for len in SIZES {
            ours_receives(&mut pair, len);
        }
        for _ in 0..3 {
            pair.next_handshake();
            for len in SIZES {
                ours_receives(&mut pair, len);
            }
        }
    }

    #[test]
    fn our_in_place_seal_matches_the_copying_one() {
        let mut pair = OursPair::established(2);
        let len = 576;
        let mut buf = vec![0; BUF_LEN];
        buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len].copy_from_slice(&ipv4_packet(len));
        let sealed =
            pair.initiator
                .encapsulate_in_place(pair.now, pair.responder_id, &mut buf, len);
        let Ok(Encapsulated::Sealed { len: sealed_len }) = sealed else {
            panic!("{sealed:?}");
        };
        let received =
            pair.responder
                .handle_datagram(pair.now, INITIATOR_ADDR, &mut buf[..sealed_len]);
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
            let packet = ipv4_packet(len);
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
        let mut buf = ipv4_packet(64);
        let nonce = || ring::aead::Nonce::assume_unique_for_key(counter_nonce(9));
        let tag = key
            .seal_in_place_separate_tag(nonce(), ring::aead::Aad::empty(), &mut buf)
            .unwrap();
        buf.extend_from_slice(tag.as_ref());
        let opened = key
            .open_in_place(nonce(), ring::aead::Aad::empty(), &mut buf)
            .unwrap();
        assert_eq!(opened, &ipv4_packet(64)[..]);
    }
}
