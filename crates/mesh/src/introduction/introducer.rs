//! The sending side of introductions: this host's card sealed to each
//! recipient, with the second MAC keyed by the cookie that recipient sent,
//! while it is fresh.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use rand_core::CryptoRngCore;
use sentrymesh_types::{PublicKey, UnixTime};
use zeroize::Zeroizing;

use super::cookie::cookie_key;
use super::wire::{CookieReplyView, IntroductionView};
use super::{COOKIE_LIFETIME, MAC_LEN, SealIntroductionError, seal_card};
use crate::card::SignedCard;
use crate::codec::DecodeError;

/// Why a cookie reply was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieReplyError {
    /// Not the length, type or version of a cookie reply.
    #[error("malformed cookie reply: {0}")]
    Malformed(#[from] DecodeError),
    /// From an address no introduction awaiting an answer went to.
    #[error("a cookie reply that answers no introduction sent")]
    Unexpected,
    /// It does not decrypt as an answer to the last introduction sent to
    /// its address: forged, altered, replayed, or answering an older one.
    #[error("the cookie reply does not decrypt")]
    NotAuthentic,
}

/// What an [`Introducer`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntroducerStats {
    /// Introductions sealed.
    pub sealed: u64,
    /// Of them, those that carried a cookie MAC.
    pub with_cookie: u64,
    /// Cookie replies taken.
    pub cookies_taken: u64,
    /// Cookie replies refused.
    pub replies_refused: u64,
}

/// What the sender keeps for one recipient.
struct Recipient {
    /// Where its introductions go: its introduction port.
    destination: SocketAddr,
    /// The first MAC of the last introduction sent, until a cookie reply
    /// answers it.
    awaiting: Option<[u8; MAC_LEN]>,
    /// The last cookie it sent, and when it came.
    cookie: Option<(Zeroizing<[u8; MAC_LEN]>, UnixTime)>,
    /// When an introduction was last sealed to it.
    sealed_at: UnixTime,
}

/// The sender of this host's introductions: for each recipient, the
/// introduction awaiting an answer and the cookie it sent. See the
/// [module docs](super#cookies).
///
/// A recipient to which nothing was sealed for [`COOKIE_LIFETIME`] is
/// forgotten (its cookie would be stale): the table holds only the peers
/// this host introduces itself to.
#[derive(Default)]
pub struct Introducer {
    recipients: BTreeMap<PublicKey, Recipient>,
    stats: IntroducerStats,
}

impl fmt::Debug for Introducer {
    /// Shows the counters only: no key, no cookie.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introducer")
            .field("recipients", &self.recipients.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Introducer {
    /// An introducer that holds no cookie yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// What this introducer did so far.
    pub fn stats(&self) -> IntroducerStats {
        self.stats
    }

    /// Seals `card` at `now` to the host whose WireGuard key is `recipient`,
    /// to be sent to `destination`; with the second MAC keyed by the cookie
    /// that host sent, when it is less than [`COOKIE_LIFETIME`] old.
    ///
    /// # Errors
    ///
    /// [`SealIntroductionError`]: a hidden host's card, or a recipient key
    /// of low order.
    pub fn seal(
        &mut self,
        card: &SignedCard,
        recipient: &PublicKey,
        destination: SocketAddr,
        now: UnixTime,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, SealIntroductionError> {
        self.recipients
            .retain(|_, kept| now.secs_since(kept.sealed_at) < COOKIE_LIFETIME);
        let kept = self.recipients.entry(*recipient).or_insert(Recipient {
            destination,
            awaiting: None,
            cookie: None,
            sealed_at: now,
        });
        let cookie = kept
            .cookie
            .as_ref()
            .filter(|(_, received)| now.secs_since(*received) < COOKIE_LIFETIME)
            .map(|(cookie, _)| &**cookie);
        let sealed = seal_card(card, recipient, cookie, now, rng)?;
        let view = IntroductionView::new_checked(&sealed)
            // Invariant: `seal_card` makes introductions of a valid length,
            // type and version.
            .expect("an introduction just sealed");
        kept.awaiting = Some(view.mac1());
        kept.destination = destination;
        kept.sealed_at = now;
        self.stats.sealed += 1;
        if cookie.is_some() {
            self.stats.with_cookie += 1;
        }
        Ok(sealed)
    }

    /// Forgets `recipient` (no peer any more): the introduction awaiting
    /// its answer and the cookie it sent.
    pub fn forget(&mut self, recipient: &PublicKey) {
        self.recipients.remove(recipient);
    }

    /// Takes the cookie reply `bytes` received from `from` at `now`: the
    /// cookie of the recipient whose last introduction went to `from` and
    /// is answered by it. Returns that recipient's key: the caller seals
    /// the introduction again at once, now with the cookie's MAC.
    ///
    /// # Errors
    ///
    /// [`CookieReplyError`]: not a cookie reply, or not one answering the
    /// last introduction sent to `from`. Each is counted.
    pub fn handle_cookie_reply(
        &mut self,
        from: SocketAddr,
        bytes: &[u8],
        now: UnixTime,
    ) -> Result<PublicKey, CookieReplyError> {
        let result = self.take_cookie(from, bytes, now);
        match result {
            Ok(_) => self.stats.cookies_taken += 1,
            Err(_) => self.stats.replies_refused += 1,
        }
        result
    }

    fn take_cookie(
        &mut self,
        from: SocketAddr,
        bytes: &[u8],
        now: UnixTime,
    ) -> Result<PublicKey, CookieReplyError> {
        let reply = CookieReplyView::new_checked(bytes)?;
        let mut candidates = self
            .recipients
            .iter_mut()
            .filter(|(_, kept)| kept.destination == from)
            .filter_map(|(key, kept)| Some((key, kept.awaiting?, kept)))
            .peekable();
        if candidates.peek().is_none() {
            return Err(CookieReplyError::Unexpected);
        }
        for (key, mac1, kept) in candidates {
            let opened = XChaCha20Poly1305::new((&cookie_key(key)).into()).decrypt(
                reply.nonce().into(),
                Payload {
                    msg: reply.encrypted_cookie(),
                    aad: &mac1,
                },
            );
            let Ok(opened) = opened.map(Zeroizing::new) else {
                continue;
            };
            let mut cookie = Zeroizing::new([0u8; MAC_LEN]);
            // Invariant: the view checked the length, so the plaintext is
            // one cookie long.
            cookie.copy_from_slice(&opened);
            kept.cookie = Some((cookie, now));
            kept.awaiting = None;
            return Ok(*key);
        }
        Err(CookieReplyError::NotAuthentic)
    }
}
