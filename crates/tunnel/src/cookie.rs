//! MAC1, MAC2 and cookie replies: WireGuard's defence against handshake floods.
//!
//! Every handshake message carries `mac1`, keyed by the receiver's public key,
//! which the receiver checks before any Diffie-Hellman. When the receiver is
//! under load it also demands `mac2`, keyed by a *cookie*: a MAC of the
//! sender's IP address and port under a secret that rotates every two minutes.
//! A sender without a valid cookie gets a cookie reply instead of a response,
//! which proves it owns its source address before it can cost the receiver a
//! Diffie-Hellman.
//!
//! [`CookieChecker`] is the receiving side (one per interface);
//! [`CookieJar`] is the sending side (one per peer).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::CryptoRngCore;
use sentrymesh_types::PublicKey;
use sentrymesh_types::blake2s::{HASH_LEN, MAC_LEN, MacKey, hash, mac};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::aead::{self, AuthenticationFailed, XNONCE_LEN};
use crate::messages::{COOKIE_REPLY_LEN, CookieReply, SessionIndex, mac1_offset, mac2_offset};

/// How long a cookie secret, and a cookie received from a peer, stay valid.
pub const COOKIE_REFRESH_TIME: Duration = Duration::from_secs(120);

const LABEL_MAC1: &[u8] = b"mac1----";
const LABEL_COOKIE: &[u8] = b"cookie--";

/// The key of `mac1` for messages sent to the owner of `public`. It is
/// derived from a public key, so it is no secret and is not zeroized.
fn mac1_key(public: &PublicKey) -> MacKey {
    MacKey::new(&hash(&[LABEL_MAC1, public.as_bytes()]))
}

/// The key that encrypts cookies sent by the owner of `public`.
fn cookie_key(public: &PublicKey) -> [u8; HASH_LEN] {
    hash(&[LABEL_COOKIE, public.as_bytes()])
}

fn verify(expected: &[u8; MAC_LEN], received: &[u8]) -> bool {
    expected.ct_eq(received).into()
}

/// The receiving side: checks the MACs of incoming handshake messages and
/// makes cookie replies.
#[derive(Zeroize, ZeroizeOnDrop)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(crate) struct CookieChecker {
    #[zeroize(skip)]
    mac1_key: MacKey,
    cookie_key: [u8; HASH_LEN],
    secret: [u8; HASH_LEN],
    #[zeroize(skip)]
    secret_born: Option<Instant>,
}

impl CookieChecker {
    /// A checker for messages sent to the owner of `local`.
    pub(crate) fn new(local: &PublicKey) -> Self {
        Self {
            mac1_key: mac1_key(local),
            cookie_key: cookie_key(local),
            secret: [0; HASH_LEN],
            secret_born: None,
        }
    }

    /// Whether `message` (a whole handshake message) carries a valid `mac1`.
    pub(crate) fn check_mac1(&self, message: &[u8]) -> bool {
        let covered = &message[..mac1_offset(message.len())];
        let received = &message[mac1_offset(message.len())..mac2_offset(message.len())];
        verify(&self.mac1_key.mac(&[covered]), received)
    }

    /// Whether `message` carries a valid `mac2` for a cookie of `source`.
    ///
    /// A sender without a cookie leaves `mac2` zero, and so does every
    /// message of a flood from spoofed sources, which never receive
    /// cookies: such a message is refused without the two MACs (the cookie,
    /// then `mac2` over the message) a check costs, which were about a
    /// quarter of answering it with a cookie reply under load
    /// (`benches/cookie_reply.rs`). A computed `mac2` is zero with a chance
    /// of 2^-128, so no valid message is refused; `mac2` is read off the
    /// wire, so the shortcut tells an observer nothing.
    pub(crate) fn check_mac2(&self, now: Instant, message: &[u8], source: SocketAddr) -> bool {
        let received = &message[mac2_offset(message.len())..];
        if received.iter().all(|&byte| byte == 0) {
            return false;
        }
        let Some(cookie) = self.cookie(now, source) else {
            return false;
        };
        let covered = &message[..mac2_offset(message.len())];
        verify(&mac(&cookie, &[covered]), received)
    }

    /// Writes into `out` a cookie reply to `message`, a handshake message
    /// whose sender index is `sender`, received from `source`.
    pub(crate) fn write_reply(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        message: &[u8],
        sender: SessionIndex,
        source: SocketAddr,
        out: &mut [u8; COOKIE_REPLY_LEN],
    ) {
        let cookie = match self.cookie(now, source) {
            Some(cookie) => cookie,
            None => {
                rng.fill_bytes(&mut self.secret);
                self.secret_born = Some(now);
                self.cookie(now, source)
                    .expect("a secret born now is fresh")
            }
        };
        let sent_mac1 = &message[mac1_offset(message.len())..mac2_offset(message.len())];
        let mut reply = CookieReply::start(out, sender);
        let mut nonce = [0u8; XNONCE_LEN];
        rng.fill_bytes(&mut nonce);
        *reply.nonce_mut() = nonce;
        aead::xseal(
            &self.cookie_key,
            &nonce,
            &cookie,
            sent_mac1,
            reply.encrypted_cookie_mut(),
        );
    }

    /// The cookie of `source` under the current secret, unless it has expired.
    fn cookie(&self, now: Instant, source: SocketAddr) -> Option<[u8; MAC_LEN]> {
        let born = self.secret_born?;
        if now.saturating_duration_since(born) >= COOKIE_REFRESH_TIME {
            return None;
        }
        let port = source.port().to_be_bytes();
        Some(match source.ip() {
            IpAddr::V4(ip) => mac(&self.secret, &[&ip.octets(), &port]),
            IpAddr::V6(ip) => mac(&self.secret, &[&ip.octets(), &port]),
        })
    }
}

/// The sending side, for one peer: stamps outgoing handshake messages with
/// `mac1` and, while it holds a fresh cookie from that peer, `mac2`.
#[derive(Zeroize, ZeroizeOnDrop)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(crate) struct CookieJar {
    #[zeroize(skip)]
    mac1_key: MacKey,
    cookie_key: [u8; HASH_LEN],
    last_mac1: Option<[u8; MAC_LEN]>,
    cookie: [u8; MAC_LEN],
    #[zeroize(skip)]
    cookie_received: Option<Instant>,
}

impl CookieJar {
    /// A jar for messages sent to the owner of `remote`.
    pub(crate) fn new(remote: &PublicKey) -> Self {
        Self {
            mac1_key: mac1_key(remote),
            cookie_key: cookie_key(remote),
            last_mac1: None,
            cookie: [0; MAC_LEN],
            cookie_received: None,
        }
    }

    /// Fills in `mac1` and `mac2` of `message`, a handshake message about to be sent.
    pub(crate) fn stamp(&mut self, now: Instant, message: &mut [u8]) {
        let len = message.len();
        let mac1 = self.mac1_key.mac(&[&message[..mac1_offset(len)]]);
        message[mac1_offset(len)..mac2_offset(len)].copy_from_slice(&mac1);
        self.last_mac1 = Some(mac1);
        let fresh_cookie = self
            .cookie_received
            .is_some_and(|at| now.saturating_duration_since(at) < COOKIE_REFRESH_TIME);
        let mac2 = if fresh_cookie {
            mac(&self.cookie, &[&message[..mac2_offset(len)]])
        } else {
            [0; MAC_LEN]
        };
        message[mac2_offset(len)..].copy_from_slice(&mac2);
    }

    /// Takes the cookie from a reply to the last message stamped.
    ///
    /// # Errors
    ///
    /// When no message was stamped since the last cookie, or the reply does
    /// not decrypt under that message's `mac1`; the jar is then unchanged.
    pub(crate) fn handle_reply(
        &mut self,
        now: Instant,
        reply: &CookieReply<&[u8]>,
    ) -> Result<(), AuthenticationFailed> {
        let last_mac1 = self.last_mac1.ok_or(AuthenticationFailed)?;
        let mut cookie = [0u8; MAC_LEN];
        aead::xopen(
            &self.cookie_key,
            reply.nonce(),
            reply.encrypted_cookie(),
            &last_mac1,
            &mut cookie,
        )?;
        self.cookie = cookie;
        self.cookie_received = Some(now);
        self.last_mac1 = None;
        cookie.zeroize();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::INITIATION_LEN;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;
    use sentrymesh_types::PrivateKey;

    fn setup() -> (CookieChecker, CookieJar, ChaCha8Rng) {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let receiver = PrivateKey::generate(&mut rng).public_key();
        (
            CookieChecker::new(&receiver),
            CookieJar::new(&receiver),
            rng,
        )
    }

    fn message() -> [u8; INITIATION_LEN] {
        let mut message = [0u8; INITIATION_LEN];
        message[0] = 1;
        message[4..8].copy_from_slice(&42u32.to_le_bytes());
        message
    }

    #[test]
    fn mac1_is_checked_and_mac2_needs_a_cookie() {
        let (mut checker, mut jar, mut rng) = setup();
        let now = Instant::now();
        let source: SocketAddr = "198.18.0.2:51820".parse().unwrap();
        let mut msg = message();
        jar.stamp(now, &mut msg);
        assert!(checker.check_mac1(&msg));
        assert!(!checker.check_mac2(now, &msg, source));

        let mut reply = [0u8; COOKIE_REPLY_LEN];
        checker.write_reply(now, &mut rng, &msg, SessionIndex(42), source, &mut reply);
        let reply = CookieReply::new_checked(&reply[..]).unwrap();
        assert_eq!(reply.receiver(), SessionIndex(42));
        jar.handle_reply(now, &reply).unwrap();
        // A reply is good once: the jar forgets the mac1 it answered.
        assert!(jar.handle_reply(now, &reply).is_err());

        let mut msg = message();
        jar.stamp(now + Duration::from_secs(1), &mut msg);
        assert!(checker.check_mac1(&msg));
        assert!(checker.check_mac2(now + Duration::from_secs(1), &msg, source));
        // The cookie is bound to the source address and port.
        let other_port: SocketAddr = "198.18.0.2:51821".parse().unwrap();
        assert!(!checker.check_mac2(now, &msg, other_port));
        // And expires with the secret.
        assert!(!checker.check_mac2(now + COOKIE_REFRESH_TIME, &msg, source));

        msg[20] ^= 1;
        assert!(!checker.check_mac1(&msg));
    }

    #[test]
    fn cookie_reply_for_another_message_is_refused() {
        let (mut checker, mut jar, mut rng) = setup();
        let now = Instant::now();
        let source: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        let mut first = message();
        jar.stamp(now, &mut first);
        let mut second = message();
        second[8] = 9;
        jar.stamp(now, &mut second);
        let mut reply = [0u8; COOKIE_REPLY_LEN];
        checker.write_reply(now, &mut rng, &first, SessionIndex(42), source, &mut reply);
        let reply = CookieReply::new_checked(&reply[..]).unwrap();
        assert!(jar.handle_reply(now, &reply).is_err());
    }
}
