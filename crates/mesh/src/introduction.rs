//! Introductions: how a public host that has no session yet tells a peer its
//! card over the underlay, sealed so that only that peer can read it.
//!
//! A new sentry or full node knows some peers' cards (from a bundle or its
//! operator's known directory) but those peers may not know its own, and
//! WireGuard drops handshakes from keys it does not know. So until it has a
//! session with a peer, the host sends its card to the peer's underlay
//! endpoint. Anyone on the path sees that datagram, and a rival operator may
//! send anything to the port, so:
//!
//! * the card is **sealed to the recipient's WireGuard static key** (which the
//!   sender read in the recipient's card): on the wire there are type and
//!   version bytes, an ephemeral X25519 key, ciphertext and MACs, never a card, a key, an operator
//!   id or an address;
//! * a **MAC keyed by the recipient's public key**, checked first, drops
//!   for the cost of a hash everything sent by someone who does not know
//!   that key (a flooder at the port, who never saw the recipient's card) or
//!   sent to another host (a reflection);
//! * the recipient reads the sender's operator id after decrypting and drops
//!   a non-admitted sender **before any signature check**;
//! * a replayed introduction is dropped before its signature is checked, and
//!   a datagram whose ephemeral key already cost a key agreement, before
//!   anything but the MAC;
//! * every expensive step (the X25519 agreement, the Ed25519 check) is paid
//!   from one **budget** shared by all senders, so a flood costs at most the
//!   budget's work per second however many sources it comes from;
//! * under load, an introduction is opened only when it proves its **source
//!   address**: its second MAC is keyed by a **cookie** the recipient sent
//!   to that address ([Cookies](#cookies)), so a flood from spoofed
//!   sources gets small cookie replies and never a key agreement, whatever
//!   key it knows;
//! * a hidden host's card (producer, BIOS) is never sealed: hidden hosts say
//!   nothing on the underlay but WireGuard, and a hidden card received here is
//!   refused.
//!
//! # Construction
//!
//! ```text
//! (e, E)  = fresh X25519 key pair, one per introduction
//! shared  = X25519(e, R)                      R: the recipient's WireGuard key (all zeros: refused)
//! salt    = BLAKE2s("sentrymesh-introduction v2" || E || R)
//! key     = KDF1(salt, shared)                (HKDF with HMAC-BLAKE2s, as WireGuard)
//! sealed  = ChaCha20-Poly1305(key, nonce 0, aad = type || version || E, plaintext)
//! mac1    = HMAC-BLAKE2s(HASH("sentrymesh-introduction v2 mac" || R), type || version || E || sealed)[..16]
//! mac2    = HMAC-BLAKE2s(cookie, type || version || E || sealed || mac1)[..16], or zeros without a cookie
//!
//! cookie  = HMAC-BLAKE2s(secret, source IP || source port)[..16]       secret: random, renewed every 120 s
//! reply   = XChaCha20-Poly1305(HASH("sentrymesh-introduction v2 cookie" || R), random nonce,
//!                              aad = mac1 of the introduction answered, cookie)
//! ```
//!
//! The recipient computes `shared` as `X25519(r, E)` with its WireGuard
//! private key. The key is used once (`E` is fresh), so the zero nonce is
//! safe. Binding `R` into the salt makes a datagram sealed to one host
//! useless to every other, the sender included: a reflected introduction
//! fails to decrypt. The first MAC, like WireGuard's `mac1`, proves only
//! that the sender knows `R`: which the operators the recipient's card was
//! shared with do (by a sealed bundle, or by gossip through the tunnel), but
//! no one on the path, since `R` never crosses the underlay in the clear.
//! The second MAC, like WireGuard's `mac2`, proves that the sender receives
//! what is sent to its source address and port. A cookie reply is
//! encrypted under a key that only those who know `R` can derive, with the
//! first MAC of the introduction it answers as associated data: someone on
//! the path who sees it does not know `R`, and someone who knows `R` but is
//! not on the path never sees it.
//!
//! # Format
//!
//! ```text
//! introduction:
//! u8    message type: 0x49 ('I') — never a WireGuard type (1 to 4)
//! u8    version: 2
//! [32]  ephemeral X25519 public key E
//! ...   ciphertext of the plaintext below, then the 16-byte tag
//! [16]  mac1
//! [16]  mac2
//!
//! plaintext:
//! u64   timestamp, Unix seconds, when it was sealed
//! [32]  the sender's operator id
//! [32]  the sender's WireGuard public key
//! u16   card length, then the signed card
//! 0..   zero bytes, to a multiple of 128 bytes, so the length says little
//!       about the card
//!
//! cookie reply, sent from the introduction port to the introduction's
//! source address and port (58 bytes; the shortest introduction is 210):
//! u8    message type: 0x43 ('C')
//! u8    version: 2
//! [24]  XChaCha20 nonce
//! [32]  the encrypted cookie and its tag
//! ```
//!
//! Version 1 had no `mac2` and a version in its type byte; a version 1
//! datagram is dropped as malformed or for its MAC.
//!
//! # Replay
//!
//! The recipient remembers the ephemeral key of every datagram it paid a
//! key agreement for, whatever became of it (at most
//! [`MAX_REMEMBERED_EPHEMERALS`], forgetting the oldest first), and drops a
//! datagram that repeats one before the agreement: a replay costs a hash and
//! a lookup. So each agreement a flooder makes the recipient compute costs
//! the flooder one too (a fresh ephemeral key and seal), unless it replays
//! one forgotten: at the full budget, a key is remembered for
//! [`MAX_REMEMBERED_EPHEMERALS`] / [`CHECKS_PER_SECOND`] = 256 s, nearly
//! the whole window of timestamps. A replay it no longer remembers goes on
//! to the checks below.
//!
//! A timestamp outside [`CLOCK_SKEW`] of `now`, either way, is refused. Within
//! that window, the recipient remembers for each host key the timestamp of
//! the last introduction it accepted and refuses one that is not later: each
//! introduction of a host to a recipient must be newer than the last, as
//! WireGuard's TAI64N timestamps are. The check runs before the signature
//! check, so a replay costs one X25519 agreement and one decryption. The
//! table is updated only after the signature verified, so a forger cannot
//! advance a host's timestamp; it holds at most [`MAX_REMEMBERED_HOSTS`]
//! hosts, forgetting the oldest timestamp first. A host forgotten that way
//! could have an introduction replayed within the window, which costs a
//! signature check from the budget and inserts a card the store already
//! holds: nothing worse. A host whose clock was ahead and steps back is
//! refused until its clock passes its last accepted timestamp, at most
//! [`CLOCK_SKEW`].
//!
//! # Budget
//!
//! The recipient pays one token for the X25519 agreement and one for the
//! signature check, from a bucket of [`CHECKS_PER_SECOND`] tokens refilled at
//! that rate a second. A flooder who does not know the recipient's key
//! spends none of it (the first MAC fails first). One who does (a host of
//! an admitted operator, or anyone its card leaked to) could spend it all
//! from spoofed sources, paying one X25519 for each the recipient computes,
//! and lock real introductions out; cookies end that.
//!
//! # Cookies
//!
//! The recipient is **under load** while no more than
//! [`RESERVED_FOR_PROVEN`] tokens (half the bucket) are left. Until then an
//! introduction is opened as it comes, so a few new hosts joining cost no
//! round trip; the half above the reserve is all that an introduction
//! without a cookie may spend. Under load, an introduction whose first MAC
//! checks but whose second does not is not opened: its source gets a cookie
//! reply, smaller than the introduction (no amplification), at most
//! [`COOKIE_REPLIES_PER_SOURCE`] a second to each source address and port.
//! There is no cap on all replies together, by design: a flood from spoofed
//! sources would spend it and leave a real introducer without its reply,
//! the lock-out cookies end. The replies stay bounded by the flood itself:
//! at most one for each datagram whose first MAC checked, each smaller than
//! it, each costing about what checking that MAC did. The sender ([`Introducer`]) keeps the cookie for
//! [`COOKIE_LIFETIME`], adds the second MAC to its introductions to that
//! recipient, and sends the introduction again at once.
//!
//! An introduction with a valid second MAC comes from a proved source: it
//! may spend the reserve as well, and the caller's per-source limiter
//! (consulted only for proved sources, so a flood spoofing a real
//! introducer's address cannot spend that introducer's allowance) holds a
//! flood from one real address. So a flood from spoofed sources, whatever
//! key it knows, costs at most the open half of the budget a second and a
//! cookie reply a datagram, and a real introducer gets in through the
//! reserve after one round trip.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use rand_core::CryptoRngCore;
use sentrymesh_types::{CLOCK_SKEW, PublicKey, UnixTime, blake2s};
use zeroize::Zeroizing;

use crate::card::{MAX_CARD_LEN, SignedCard};
use crate::codec::{DecodeError, Writer};
use crate::identity::OperatorId;

mod budget;
mod cookie;
mod introducer;
mod wire;

use budget::CheckBudget;
use cookie::CookieChecker;
pub use introducer::{CookieReplyError, Introducer, IntroducerStats};
use wire::{IntroductionView, Plaintext};

/// The first byte of an introduction: its type.
pub const INTRODUCTION_TYPE: u8 = 0x49;
/// The first byte of a cookie reply: its type.
pub const COOKIE_REPLY_TYPE: u8 = 0x43;
/// The second byte of an introduction and of a cookie reply: the version
/// of the format.
pub const VERSION: u8 = 2;
/// The signature and agreement checks paid for each second, and the most
/// that can be saved up.
pub const CHECKS_PER_SECOND: u64 = 256;
/// The checks of each second that only introductions with a valid cookie
/// MAC may pay for; while no more are left, the receiver is under load.
pub const RESERVED_FOR_PROVEN: u64 = CHECKS_PER_SECOND / 2;
/// How long, in seconds, a cookie secret lives, and a sender keeps a
/// cookie.
pub const COOKIE_LIFETIME: u64 = 120;
/// The most cookie replies sent to one source address and port in a second.
pub const COOKIE_REPLIES_PER_SOURCE: u32 = 1;
/// The most sources whose cookie replies are counted; a new one evicts the
/// one used least recently.
pub const MAX_REPLY_SOURCES: usize = 16_384;
/// The most hosts whose last introduction a receiver remembers.
pub const MAX_REMEMBERED_HOSTS: usize = 4096;
/// The most ephemeral keys a receiver remembers, as 16-byte prefixes (a
/// megabyte or two).
pub const MAX_REMEMBERED_EPHEMERALS: usize = 65_536;
/// How much of an ephemeral key is remembered: finding another key with the
/// same prefix takes 2^64 tries.
const EPHEMERAL_PREFIX_LEN: usize = 16;
/// The plaintext is padded with zeros to a multiple of this many bytes.
const PAD_TO: usize = 128;
/// Length of a Poly1305 tag.
const TAG_LEN: usize = 16;
/// Length of each MAC that ends an introduction, and of a cookie.
const MAC_LEN: usize = 16;
/// Length of an XChaCha20 nonce.
const XNONCE_LEN: usize = 24;
/// Type and version bytes and ephemeral key: the associated data.
const HEADER_LEN: usize = 2 + 32;
/// Timestamp, operator id, WireGuard key, card length.
const PLAIN_FIXED_LEN: usize = 8 + 32 + 32 + 2;
/// The longest plaintext: the largest card, padded.
const MAX_PLAIN_LEN: usize = (PLAIN_FIXED_LEN + MAX_CARD_LEN).div_ceil(PAD_TO) * PAD_TO;
/// The shortest introduction: one block of plaintext.
pub const MIN_INTRODUCTION_LEN: usize = HEADER_LEN + PAD_TO + TAG_LEN + 2 * MAC_LEN;
/// The longest introduction.
pub const MAX_INTRODUCTION_LEN: usize = HEADER_LEN + MAX_PLAIN_LEN + TAG_LEN + 2 * MAC_LEN;
/// The length of a cookie reply, shorter than any introduction.
pub const COOKIE_REPLY_LEN: usize = 2 + XNONCE_LEN + MAC_LEN + TAG_LEN;
// A cookie reply never amplifies what it answers.
const _: () = assert!(COOKIE_REPLY_LEN < MIN_INTRODUCTION_LEN);
/// The label hashed into every key's salt.
const LABEL: &[u8] = b"sentrymesh-introduction v2";
/// The label hashed into the key of the first MAC.
const MAC_LABEL: &[u8] = b"sentrymesh-introduction v2 mac";
/// The label hashed into the key of cookie replies.
const COOKIE_LABEL: &[u8] = b"sentrymesh-introduction v2 cookie";

/// Why a card could not be sealed as an introduction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealIntroductionError {
    /// The card is a hidden host's, which never goes on the underlay.
    #[error("host `{host}` has a hidden role: it introduces itself to no one on the underlay")]
    HiddenRole {
        /// The host's name.
        host: String,
    },
    /// The recipient's key gives an all-zero shared secret.
    #[error("the recipient's WireGuard key is unusable (a low-order point)")]
    LowOrderRecipient,
}

/// Why a received introduction was dropped. Each reason is counted in
/// [`IntroductionStats`]; none names the sender, whose identity is the secret
/// the sealing keeps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntroductionError {
    /// Not the length, type or version of an introduction, or a plaintext
    /// that does not parse.
    #[error("malformed introduction: {0}")]
    Malformed(#[from] DecodeError),
    /// The first MAC is not this host's: the sender does not know this
    /// host's key, or sent it to another host.
    #[error("the introduction's MAC is not keyed by this host's key")]
    BadMac,
    /// Under load, without a valid cookie MAC, from a source that had its
    /// cookie replies for this second.
    #[error("under load, and the cookie replies to this source are spent for now")]
    ReplyLimited,
    /// From a proved source that sent more than its share.
    #[error("the introduction's source sent more than its share")]
    RateLimited,
    /// The budget of checks for this second is spent.
    #[error("the budget of introduction checks is spent")]
    OverBudget,
    /// It does not decrypt with this host's key: sealed to another host,
    /// altered, or reflected.
    #[error("the introduction does not decrypt with this host's key")]
    NotForUs,
    /// Its timestamp is outside the clock skew allowed.
    #[error("the introduction's timestamp is {age} s from now, beyond the {CLOCK_SKEW} s allowed")]
    Stale {
        /// How far its timestamp is from now, either way.
        age: u64,
    },
    /// The sender's operator is not admitted. The operator is the one
    /// the sender claims, unverified: no signature has been checked.
    #[error("the introduction's operator {operator} is not admitted")]
    NotAdmitted {
        /// The operator it claims.
        operator: OperatorId,
    },
    /// A repeat of an introduction accepted before, or not newer than the
    /// last one accepted from that host.
    #[error("the introduction is a replay, or older than one accepted before")]
    Replayed,
    /// It claims to come from this host itself.
    #[error("the introduction carries this host's own key")]
    OwnKey,
    /// The card does not decode or its signature does not verify.
    #[error("the introduced card is refused: {0}")]
    BadCard(#[from] crate::card::ParseCardError),
    /// The card's operator or key is not the one the introduction names.
    #[error("the introduced card is not the sender's the introduction names")]
    Mismatch,
    /// A hidden host's card, which never travels on the underlay.
    #[error("the introduced card is a hidden host's")]
    HiddenRole,
}

/// What a receiver did with the introductions it was handed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntroductionStats {
    /// Introductions accepted: decrypted, admitted, new and verified.
    pub accepted: u64,
    /// Introductions whose cookie MAC was valid: from a proved source.
    pub proven: u64,
    /// Cookie replies made, each answering an introduction not opened.
    pub cookie_replies: u64,
    /// Dropped as [`IntroductionError::Malformed`].
    pub malformed: u64,
    /// Dropped as [`IntroductionError::BadMac`], for the cost of a hash.
    pub bad_mac: u64,
    /// Dropped as [`IntroductionError::ReplyLimited`].
    pub reply_limited: u64,
    /// Dropped as [`IntroductionError::RateLimited`].
    pub rate_limited: u64,
    /// Dropped as [`IntroductionError::OverBudget`].
    pub over_budget: u64,
    /// Dropped as [`IntroductionError::NotForUs`].
    pub not_for_us: u64,
    /// Dropped as [`IntroductionError::Stale`].
    pub stale: u64,
    /// Dropped as [`IntroductionError::NotAdmitted`].
    pub not_admitted: u64,
    /// Dropped as [`IntroductionError::Replayed`] or
    /// [`IntroductionError::OwnKey`].
    pub replayed: u64,
    /// Dropped as [`IntroductionError::BadCard`],
    /// [`IntroductionError::Mismatch`] or [`IntroductionError::HiddenRole`].
    pub bad_card: u64,
    /// X25519 agreements computed.
    pub key_agreements: u64,
    /// Card signatures checked.
    pub signature_checks: u64,
}

/// What a receiver made of an introduction it did not drop.
#[derive(Debug, Clone, PartialEq, Eq)]
// One is made per datagram and moved out at once: boxing the card would add
// an allocation for the size of a value that never sits in a collection.
#[allow(clippy::large_enum_variant)]
pub enum Received {
    /// The card it carried: sealed to this host, fresh, an admitted
    /// operator's, verified.
    Card(SignedCard),
    /// Under load, it had no valid cookie MAC and was not opened: send
    /// these bytes, a cookie reply, back to the address and port it came
    /// from.
    CookieReply(Vec<u8>),
}

/// Seals `card` as an introduction to the host whose WireGuard public key is
/// `recipient`, at `now`, with no cookie. A sender that takes cookies uses
/// an [`Introducer`].
///
/// # Errors
///
/// [`SealIntroductionError`]: a hidden host's card, or a recipient key of low
/// order.
pub fn seal_introduction(
    card: &SignedCard,
    recipient: &PublicKey,
    now: UnixTime,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, SealIntroductionError> {
    seal_card(card, recipient, None, now, rng)
}

/// [`seal_introduction`], its second MAC keyed by `cookie` when there is
/// one.
fn seal_card(
    card: &SignedCard,
    recipient: &PublicKey,
    cookie: Option<&[u8; MAC_LEN]>,
    now: UnixTime,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, SealIntroductionError> {
    if card.card().role.is_hidden() {
        return Err(SealIntroductionError::HiddenRole {
            host: card.card().name.clone(),
        });
    }
    let header = Header {
        operator: card.card().operator,
        wg_key: card.card().wg_public_key,
        timestamp: now,
    };
    let mut message = seal_unchecked(&header, card.as_bytes(), recipient, rng)?;
    if let Some(cookie) = cookie {
        let mac2_at = message.len() - MAC_LEN;
        let mac2 = mac(cookie, &[&message[..mac2_at]]);
        message[mac2_at..].copy_from_slice(&mac2);
    }
    Ok(message)
}

/// What the plaintext says of its sender, ahead of the card.
struct Header {
    operator: OperatorId,
    wg_key: PublicKey,
    timestamp: UnixTime,
}

/// The construction of [`seal_introduction`], without its check of the role
/// and with a header that may not match the card (the tests use it to build
/// what a misbehaving sender might send); its second MAC is zeros.
fn seal_unchecked(
    header: &Header,
    card: &[u8],
    recipient: &PublicKey,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, SealIntroductionError> {
    let ephemeral = x25519_dalek::StaticSecret::random_from_rng(&mut *rng);
    let ephemeral_public = x25519_dalek::PublicKey::from(&ephemeral);
    let shared = ephemeral.diffie_hellman(&x25519_dalek::PublicKey::from(*recipient.as_bytes()));
    if !shared.was_contributory() {
        return Err(SealIntroductionError::LowOrderRecipient);
    }
    let key = derive_key(shared.as_bytes(), ephemeral_public.as_bytes(), recipient);

    let mut plain = Writer::new();
    plain.time(header.timestamp);
    plain.array(header.operator.as_bytes());
    plain.array(header.wg_key.as_bytes());
    plain.bytes(card);
    let mut plain = Zeroizing::new(plain.into_bytes());
    let padded_len = plain.len().div_ceil(PAD_TO) * PAD_TO;
    plain.resize(padded_len, 0);

    let mut message = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN + 2 * MAC_LEN);
    message.extend_from_slice(&[INTRODUCTION_TYPE, VERSION]);
    message.extend_from_slice(ephemeral_public.as_bytes());
    let sealed = ChaCha20Poly1305::new((&*key).into())
        .encrypt(
            &Default::default(),
            Payload {
                msg: &plain,
                aad: &message,
            },
        )
        // Invariant: sealing fails only past 256 GiB; this is under 17 KiB.
        .expect("plaintext far below the AEAD length limit");
    message.extend_from_slice(&sealed);
    let mac1 = mac(&mac_key(recipient), &[&message]);
    message.extend_from_slice(&mac1);
    message.extend_from_slice(&[0; MAC_LEN]);
    Ok(message)
}

/// The key of the first MACs to `recipient`: `HASH(mac label || R)`.
fn mac_key(recipient: &PublicKey) -> [u8; 32] {
    blake2s::hash(&[MAC_LABEL, recipient.as_bytes()])
}

/// The MAC of the concatenated `parts` under `key`: the first [`MAC_LEN`]
/// bytes of `HMAC(key, parts...)`.
fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    let full = blake2s::hmac(key, parts);
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(&full[..MAC_LEN]);
    mac
}

/// Whether two MACs are equal, in time that does not depend on where they
/// differ.
fn macs_equal(a: &[u8; MAC_LEN], b: &[u8; MAC_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `KDF1(HASH(label || E || R), shared)`.
fn derive_key(
    shared: &[u8; 32],
    ephemeral_public: &[u8; 32],
    recipient: &PublicKey,
) -> Zeroizing<[u8; 32]> {
    let salt = blake2s::hash(&[LABEL, ephemeral_public, recipient.as_bytes()]);
    Zeroizing::new(blake2s::kdf1(&salt, shared))
}

/// A receiver of introductions: this host's WireGuard private key, the
/// budget of checks, the cookie secret, and the last introduction accepted
/// from each host. See the [module docs](self).
pub struct IntroductionReceiver {
    secret: x25519_dalek::StaticSecret,
    public: PublicKey,
    /// The key of the first MACs to this host.
    mac_key: [u8; 32],
    budget: CheckBudget,
    cookies: CookieChecker,
    /// The timestamp of the last introduction accepted from each host.
    last_seen: BTreeMap<PublicKey, UnixTime>,
    /// The same entries by timestamp, to find the oldest.
    by_time: BTreeSet<(UnixTime, PublicKey)>,
    /// The ephemeral keys that cost a key agreement.
    ephemerals: BTreeSet<[u8; EPHEMERAL_PREFIX_LEN]>,
    /// The same keys, oldest first.
    ephemerals_by_age: VecDeque<[u8; EPHEMERAL_PREFIX_LEN]>,
    stats: IntroductionStats,
}

impl fmt::Debug for IntroductionReceiver {
    /// Shows the counters only: no key, no host.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntroductionReceiver")
            .field("remembered_hosts", &self.last_seen.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl IntroductionReceiver {
    /// A receiver for the host whose WireGuard private key is `secret`, its
    /// budget full at `now`.
    pub fn new(secret: &[u8; 32], now: UnixTime) -> Self {
        // The copy handed to `StaticSecret` (which zeroes itself on drop)
        // is zeroed here when dropped, not left on the stack.
        let copy = Zeroizing::new(*secret);
        let secret = x25519_dalek::StaticSecret::from(*copy);
        let public = PublicKey::from_bytes(x25519_dalek::PublicKey::from(&secret).to_bytes());
        Self {
            secret,
            mac_key: mac_key(&public),
            cookies: CookieChecker::new(&public),
            public,
            budget: CheckBudget::new(now),
            last_seen: BTreeMap::new(),
            by_time: BTreeSet::new(),
            ephemerals: BTreeSet::new(),
            ephemerals_by_age: VecDeque::new(),
            stats: IntroductionStats::default(),
        }
    }

    /// What this receiver did so far.
    pub fn stats(&self) -> IntroductionStats {
        self.stats
    }

    /// Handles the introduction `bytes` received from `source` at `now`:
    /// returns the card in it when it was sealed to this host, is fresh,
    /// comes from an operator in `admitted`, and its card verifies; or,
    /// under load and without a valid cookie MAC, a cookie reply for
    /// `source`, drawing the cookie secret and the reply's nonce from `rng`.
    ///
    /// The cheap checks come first. An introduction with a valid cookie MAC
    /// is then put to `allow_source`, the caller's per-source limiter, with
    /// its (proved) source address. The X25519 agreement and the signature
    /// check are each paid from the budget, and the signature is checked
    /// only for an admitted operator's fresh introduction.
    ///
    /// # Errors
    ///
    /// [`IntroductionError`] saying why it was dropped; each is counted.
    pub fn handle_introduction(
        &mut self,
        bytes: &[u8],
        source: SocketAddr,
        admitted: &BTreeSet<OperatorId>,
        now: UnixTime,
        rng: &mut impl CryptoRngCore,
        allow_source: impl FnOnce(IpAddr) -> bool,
    ) -> Result<Received, IntroductionError> {
        let result = self.receive(bytes, source, admitted, now, rng, allow_source);
        let stats = &mut self.stats;
        let counter = match &result {
            Ok(Received::Card(_)) => &mut stats.accepted,
            Ok(Received::CookieReply(_)) => &mut stats.cookie_replies,
            Err(IntroductionError::Malformed(_)) => &mut stats.malformed,
            Err(IntroductionError::BadMac) => &mut stats.bad_mac,
            Err(IntroductionError::ReplyLimited) => &mut stats.reply_limited,
            Err(IntroductionError::RateLimited) => &mut stats.rate_limited,
            Err(IntroductionError::OverBudget) => &mut stats.over_budget,
            Err(IntroductionError::NotForUs) => &mut stats.not_for_us,
            Err(IntroductionError::Stale { .. }) => &mut stats.stale,
            Err(IntroductionError::NotAdmitted { .. }) => &mut stats.not_admitted,
            Err(IntroductionError::Replayed | IntroductionError::OwnKey) => &mut stats.replayed,
            Err(
                IntroductionError::BadCard(_)
                | IntroductionError::Mismatch
                | IntroductionError::HiddenRole,
            ) => &mut stats.bad_card,
        };
        *counter += 1;
        result
    }

    /// The checks of [`Self::handle_introduction`] up to the key
    /// agreement: the MACs, replay, load and the source's share.
    fn receive(
        &mut self,
        bytes: &[u8],
        source: SocketAddr,
        admitted: &BTreeSet<OperatorId>,
        now: UnixTime,
        rng: &mut impl CryptoRngCore,
        allow_source: impl FnOnce(IpAddr) -> bool,
    ) -> Result<Received, IntroductionError> {
        let view = IntroductionView::new_checked(bytes)?;
        if !macs_equal(&view.mac1(), &mac(&self.mac_key, &[view.mac1_covers()])) {
            return Err(IntroductionError::BadMac);
        }
        let prefix = ephemeral_prefix(&view.ephemeral());
        if self.ephemerals.contains(&prefix) {
            return Err(IntroductionError::Replayed);
        }
        let cookie = self.cookies.cookie(source, now);
        let proven = CookieChecker::check_mac2(&view, cookie.as_ref());
        if proven {
            self.stats.proven += 1;
            if !allow_source(source.ip()) {
                return Err(IntroductionError::RateLimited);
            }
        } else if self.budget.under_load(now) {
            return match self.cookies.reply(&view.mac1(), source, cookie, now, rng) {
                Some(reply) => Ok(Received::CookieReply(reply)),
                None => Err(IntroductionError::ReplyLimited),
            };
        }
        if !self.budget.take(now, proven) {
            return Err(IntroductionError::OverBudget);
        }
        self.remember_ephemeral(prefix);
        self.open(&view, admitted, now, proven).map(Received::Card)
    }

    /// Opens `view`, whose agreement is paid for: decrypts it, checks its
    /// freshness and operator, then pays for and checks its card's
    /// signature.
    fn open(
        &mut self,
        view: &IntroductionView<'_>,
        admitted: &BTreeSet<OperatorId>,
        now: UnixTime,
        proven: bool,
    ) -> Result<SignedCard, IntroductionError> {
        self.stats.key_agreements += 1;
        let ephemeral = x25519_dalek::PublicKey::from(view.ephemeral());
        let shared = self.secret.diffie_hellman(&ephemeral);
        if !shared.was_contributory() {
            return Err(IntroductionError::NotForUs);
        }
        let key = derive_key(shared.as_bytes(), ephemeral.as_bytes(), &self.public);
        let plain = ChaCha20Poly1305::new((&*key).into())
            .decrypt(
                &Default::default(),
                Payload {
                    msg: view.sealed(),
                    aad: view.header(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| IntroductionError::NotForUs)?;
        let sealed = Plaintext::parse(&plain)?;

        let age = now.0.abs_diff(sealed.timestamp.0);
        if age > CLOCK_SKEW {
            return Err(IntroductionError::Stale { age });
        }
        // No signature has been checked yet: the operator id is only what
        // the sender claims, enough to drop every operator not admitted.
        if !admitted.contains(&sealed.operator) {
            return Err(IntroductionError::NotAdmitted {
                operator: sealed.operator,
            });
        }
        if sealed.wg_key == self.public {
            return Err(IntroductionError::OwnKey);
        }
        if self
            .last_seen
            .get(&sealed.wg_key)
            .is_some_and(|&last| sealed.timestamp <= last)
        {
            return Err(IntroductionError::Replayed);
        }
        if !self.budget.take(now, proven) {
            return Err(IntroductionError::OverBudget);
        }
        self.stats.signature_checks += 1;
        let card = SignedCard::decode(sealed.card)?;
        if card.card().operator != sealed.operator || card.card().wg_public_key != sealed.wg_key {
            return Err(IntroductionError::Mismatch);
        }
        if card.card().role.is_hidden() {
            return Err(IntroductionError::HiddenRole);
        }
        self.remember(sealed.wg_key, sealed.timestamp);
        Ok(card)
    }

    /// Records an ephemeral key (its prefix) that cost a key agreement,
    /// forgetting the oldest when the table is full.
    fn remember_ephemeral(&mut self, prefix: [u8; EPHEMERAL_PREFIX_LEN]) {
        if !self.ephemerals.insert(prefix) {
            return;
        }
        self.ephemerals_by_age.push_back(prefix);
        if self.ephemerals_by_age.len() > MAX_REMEMBERED_EPHEMERALS {
            if let Some(oldest) = self.ephemerals_by_age.pop_front() {
                self.ephemerals.remove(&oldest);
            }
        }
    }

    /// Records `timestamp` as the last accepted from `host`, forgetting the
    /// oldest entry when the table is full.
    fn remember(&mut self, host: PublicKey, timestamp: UnixTime) {
        if let Some(old) = self.last_seen.insert(host, timestamp) {
            self.by_time.remove(&(old, host));
        } else if self.last_seen.len() > MAX_REMEMBERED_HOSTS {
            if let Some((_, oldest)) = self.by_time.pop_first() {
                self.last_seen.remove(&oldest);
            }
        }
        self.by_time.insert((timestamp, host));
    }
}

/// The part of an ephemeral key that is remembered.
fn ephemeral_prefix(ephemeral: &[u8; 32]) -> [u8; EPHEMERAL_PREFIX_LEN] {
    let mut prefix = [0u8; EPHEMERAL_PREFIX_LEN];
    prefix.copy_from_slice(&ephemeral[..EPHEMERAL_PREFIX_LEN]);
    prefix
}

#[cfg(test)]
mod tests;
