//! Cookies: how a receiver under load makes a sender prove its source
//! address before an introduction may cost a key agreement, as WireGuard's
//! cookie replies do for handshakes.
//!
//! The receiver's [`CookieChecker`] holds a random secret that is renewed
//! when it is [`COOKIE_LIFETIME`] old. The cookie of a source is
//! `MAC(secret, source IP || source port)`; it leaves only in a cookie reply
//! sent to that source, encrypted under a key derived from the receiver's
//! public key with the MAC of the introduction it answers as associated
//! data, so only the sender of that introduction, at that address, can read
//! it. The sender's next introductions to the receiver end with
//! `MAC(cookie, all before)`, which proves it receives at its source
//! address: a flood from spoofed sources cannot compute it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use rand_core::CryptoRngCore;
use sentrymesh_types::{PublicKey, UnixTime, blake2s};
use zeroize::Zeroizing;

use super::wire::IntroductionView;
use super::{
    COOKIE_LABEL, COOKIE_LIFETIME, COOKIE_REPLIES_PER_SOURCE, COOKIE_REPLY_LEN, COOKIE_REPLY_TYPE,
    MAC_LEN, MAX_REPLY_SOURCES, VERSION, XNONCE_LEN, mac, macs_equal,
};

/// The key that encrypts the cookies sent by the owner of `public`:
/// `HASH(cookie label || public)`. It is derived from a public key, so
/// whoever knows that key can read a cookie reply it sees: only the sender
/// at the source address sees it.
pub(super) fn cookie_key(public: &PublicKey) -> [u8; 32] {
    blake2s::hash(&[COOKIE_LABEL, public.as_bytes()])
}

/// The receiving side: the secret cookies are made with, and the limiter of
/// cookie replies.
pub(super) struct CookieChecker {
    /// The key cookie replies are encrypted with.
    cookie_key: [u8; 32],
    secret: Zeroizing<[u8; 32]>,
    /// When the secret was drawn; `None` before the first cookie.
    born: Option<UnixTime>,
    limiter: ReplyLimiter,
}

impl CookieChecker {
    /// A checker for introductions to the owner of `public`.
    pub(super) fn new(public: &PublicKey) -> Self {
        Self {
            cookie_key: cookie_key(public),
            secret: Zeroizing::new([0; 32]),
            born: None,
            limiter: ReplyLimiter::default(),
        }
    }

    /// Whether the introduction `view` ends with the MAC of `cookie`, the
    /// cookie of its source ([`Self::cookie`]).
    pub(super) fn check_mac2(view: &IntroductionView<'_>, cookie: Option<&[u8; MAC_LEN]>) -> bool {
        cookie.is_some_and(|cookie| macs_equal(&mac(cookie, &[view.mac2_covers()]), &view.mac2()))
    }

    /// A cookie reply to the introduction whose first MAC is `mac1`, from
    /// `source` at `now`, whose cookie is `cookie` ([`Self::cookie`]);
    /// `None` when `source` had its replies this second.
    pub(super) fn reply(
        &mut self,
        mac1: &[u8; MAC_LEN],
        source: SocketAddr,
        cookie: Option<[u8; MAC_LEN]>,
        now: UnixTime,
        rng: &mut impl CryptoRngCore,
    ) -> Option<Vec<u8>> {
        if !self.limiter.allow(source, now) {
            return None;
        }
        let cookie = match cookie {
            Some(cookie) => cookie,
            None => {
                rng.fill_bytes(&mut *self.secret);
                self.born = Some(now);
                self.cookie(source, now)?
            }
        };
        let mut nonce = [0u8; XNONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let encrypted = XChaCha20Poly1305::new((&self.cookie_key).into())
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: &cookie,
                    aad: mac1,
                },
            )
            // Invariant: sealing fails only past 256 GiB; this is 16 bytes.
            .expect("a cookie far below the AEAD length limit");
        let mut reply = Vec::with_capacity(COOKIE_REPLY_LEN);
        reply.extend_from_slice(&[COOKIE_REPLY_TYPE, VERSION]);
        reply.extend_from_slice(&nonce);
        reply.extend_from_slice(&encrypted);
        Some(reply)
    }

    /// The cookie of `source` under the current secret, unless the secret
    /// is [`COOKIE_LIFETIME`] old (or none was drawn yet).
    pub(super) fn cookie(&self, source: SocketAddr, now: UnixTime) -> Option<[u8; MAC_LEN]> {
        let born = self.born?;
        if now.secs_since(born) >= COOKIE_LIFETIME {
            return None;
        }
        let port = source.port().to_be_bytes();
        Some(match source.ip() {
            IpAddr::V4(ip) => mac(&self.secret[..], &[&ip.octets(), &port]),
            IpAddr::V6(ip) => mac(&self.secret[..], &[&ip.octets(), &port]),
        })
    }
}

/// Cookie replies per source address and port: at most
/// [`COOKIE_REPLIES_PER_SOURCE`] a second to each, for at most
/// [`MAX_REPLY_SOURCES`] sources, a new one evicting the one used least
/// recently.
///
/// There is no cap on all replies together, by design: a flood from
/// spoofed sources would spend it, and a real introducer's reply would wait
/// for a second in which the flood left one, the very lock-out cookies are
/// here to end. Unbounded, the replies stay bounded by the flood itself:
/// one at most for each datagram that carried a valid first MAC, each
/// smaller than that datagram (no amplification), each costing a MAC and a
/// 16-byte encryption, about what checking the datagram's MAC cost. The key
/// is the address and port, not the address alone: a flood spoofing a real
/// introducer's address cannot spend its replies without also guessing its
/// port.
#[derive(Default)]
struct ReplyLimiter {
    /// Each source's second, the replies sent to it in that second, and
    /// when it was last used.
    sources: BTreeMap<SocketAddr, Slot>,
    /// The sources by last use, the least recent first.
    by_use: BTreeMap<u64, SocketAddr>,
    next_use: u64,
}

/// One source's replies.
struct Slot {
    second: UnixTime,
    replies: u32,
    used: u64,
}

impl ReplyLimiter {
    /// Whether a reply may go to `source` at `now`; counts it if so.
    fn allow(&mut self, source: SocketAddr, now: UnixTime) -> bool {
        if !self.sources.contains_key(&source) && self.sources.len() >= MAX_REPLY_SOURCES {
            if let Some((_, oldest)) = self.by_use.pop_first() {
                self.sources.remove(&oldest);
            }
        }
        let used = self.next_use;
        self.next_use += 1;
        let slot = self.sources.entry(source).or_insert(Slot {
            second: now,
            replies: 0,
            used,
        });
        self.by_use.remove(&slot.used);
        self.by_use.insert(used, source);
        slot.used = used;
        if slot.second != now {
            slot.second = now;
            slot.replies = 0;
        }
        if slot.replies >= COOKIE_REPLIES_PER_SOURCE {
            return false;
        }
        slot.replies += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::NOW;

    fn source(n: u32) -> SocketAddr {
        SocketAddr::new(IpAddr::V4((0xc612_0000 + n).into()), 40_000)
    }

    #[test]
    fn replies_are_limited_per_source_and_new_sources_evict_the_oldest() {
        let mut limiter = ReplyLimiter::default();
        let per_source = COOKIE_REPLIES_PER_SOURCE as usize;
        assert_eq!(
            (0..per_source + 3)
                .filter(|_| limiter.allow(source(0), NOW))
                .count(),
            per_source
        );
        assert!(limiter.allow(source(0), NOW + 1), "a second later");
        let other_port = SocketAddr::new(source(0).ip(), 40_001);
        assert!(limiter.allow(other_port, NOW + 1), "another port");
        for n in 1..=MAX_REPLY_SOURCES as u32 + 10 {
            assert!(limiter.allow(source(n), NOW + 1), "source {n}");
        }
        assert_eq!(limiter.sources.len(), MAX_REPLY_SOURCES);
        assert_eq!(limiter.by_use.len(), MAX_REPLY_SOURCES);
    }
}
