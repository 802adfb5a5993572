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
//!   sender read in the recipient's card): on the wire there is a type byte,
//!   an ephemeral X25519 key and ciphertext, never a card, a key, an operator
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
//! * a hidden host's card (producer, BIOS) is never sealed: hidden hosts say
//!   nothing on the underlay but WireGuard, and a hidden card received here is
//!   refused.
//!
//! # Construction
//!
//! ```text
//! (e, E)  = fresh X25519 key pair, one per introduction
//! shared  = X25519(e, R)                      R: the recipient's WireGuard key (all zeros: refused)
//! salt    = BLAKE2s("sentrymesh-introduction v1" || E || R)
//! key     = KDF1(salt, shared)                (HKDF with HMAC-BLAKE2s, as WireGuard)
//! sealed  = ChaCha20-Poly1305(key, nonce 0, aad = type || E, plaintext)
//! mac     = HMAC-BLAKE2s(HASH("sentrymesh-introduction v1 mac" || R), type || E || sealed)[..16]
//! ```
//!
//! The recipient computes `shared` as `X25519(r, E)` with its WireGuard
//! private key. The key is used once (`E` is fresh), so the zero nonce is
//! safe. Binding `R` into the salt makes a datagram sealed to one host
//! useless to every other, the sender included: a reflected introduction
//! fails to decrypt. The MAC, like WireGuard's `mac1`, proves only that the
//! sender knows `R`: which the operators the recipient's card was shared
//! with do (by a sealed bundle, or by gossip through the tunnel), but no
//! one on the path, since `R` never crosses the underlay in the clear.
//!
//! # Format
//!
//! ```text
//! u8    message type: 0x49 ('I'), version 1 — never a WireGuard type (1 to 4)
//! [32]  ephemeral X25519 public key E
//! ...   ciphertext of the plaintext below, then the 16-byte tag
//! [16]  mac
//!
//! plaintext:
//! u64   timestamp, Unix seconds, when it was sealed
//! [32]  the sender's operator id
//! [32]  the sender's WireGuard public key
//! u16   card length, then the signed card
//! 0..   zero bytes, to a multiple of 128 bytes, so the length says little
//!       about the card
//! ```
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
//! that rate a second. A datagram that finds the bucket empty is dropped and
//! counted. In front of this budget the daemon limits each source address;
//! but a flood of spoofed sources passes any per-source limit, and only the
//! shared budget caps the work it causes. A flooder who does not know the
//! recipient's key spends none of it (the MAC fails first); one who does (a
//! host of an admitted operator, or anyone its card leaked to) can spend it
//! all, and then a real introduction waits for a second in which it finds a
//! token: it is sent again every five seconds. Proving the source address
//! first, as WireGuard's cookies do, would close that too, at the cost of a
//! round trip; it is not done.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::card::{MAX_CARD_LEN, SignedCard};
use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::OperatorId;
use crate::kdf;
use crate::time::CLOCK_SKEW;
use crate::wg_key::WgPublicKey;

/// The first byte of an introduction: its type and version.
pub const INTRODUCTION_TYPE: u8 = 0x49;
/// The signature and agreement checks paid for each second, and the most
/// that can be saved up.
pub const CHECKS_PER_SECOND: u64 = 256;
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
/// Length of the MAC that ends an introduction.
const MAC_LEN: usize = 16;
/// Type byte and ephemeral key: the associated data.
const HEADER_LEN: usize = 1 + 32;
/// Timestamp, operator id, WireGuard key, card length.
const PLAIN_FIXED_LEN: usize = 8 + 32 + 32 + 2;
/// The longest plaintext: the largest card, padded.
const MAX_PLAIN_LEN: usize = (PLAIN_FIXED_LEN + MAX_CARD_LEN).div_ceil(PAD_TO) * PAD_TO;
/// The shortest introduction: one block of plaintext.
pub const MIN_INTRODUCTION_LEN: usize = HEADER_LEN + PAD_TO + TAG_LEN + MAC_LEN;
/// The longest introduction.
pub const MAX_INTRODUCTION_LEN: usize = HEADER_LEN + MAX_PLAIN_LEN + TAG_LEN + MAC_LEN;
/// The label hashed into every key's salt.
const LABEL: &[u8] = b"sentrymesh-introduction v1";
/// The label hashed into the MAC key.
const MAC_LABEL: &[u8] = b"sentrymesh-introduction v1 mac";

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
    /// Not the length or type of an introduction, or a plaintext that does
    /// not parse.
    #[error("malformed introduction: {0}")]
    Malformed(#[from] DecodeError),
    /// The MAC is not this host's: the sender does not know this host's key,
    /// or sent it to another host.
    #[error("the introduction's MAC is not keyed by this host's key")]
    BadMac,
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
    /// The sender's operator is not admitted.
    #[error("the introduction's operator is not admitted")]
    NotAdmitted,
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
    /// Dropped as [`IntroductionError::Malformed`].
    pub malformed: u64,
    /// Dropped as [`IntroductionError::BadMac`], for the cost of a hash.
    pub bad_mac: u64,
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

/// Seals `card` as an introduction to the host whose WireGuard public key is
/// `recipient`, at `now`.
///
/// # Errors
///
/// [`SealIntroductionError`]: a hidden host's card, or a recipient key of low
/// order.
pub fn seal_introduction(
    card: &SignedCard,
    recipient: &WgPublicKey,
    now: u64,
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
    seal_unchecked(&header, card.as_bytes(), recipient, rng)
}

/// What the plaintext says of its sender, ahead of the card.
struct Header {
    operator: OperatorId,
    wg_key: WgPublicKey,
    timestamp: u64,
}

/// The construction of [`seal_introduction`], without its check of the role
/// and with a header that may not match the card (the tests use it to build
/// what a misbehaving sender might send).
fn seal_unchecked(
    header: &Header,
    card: &[u8],
    recipient: &WgPublicKey,
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
    plain.u64(header.timestamp);
    plain.array(header.operator.as_bytes());
    plain.array(header.wg_key.as_bytes());
    plain.bytes(card);
    let mut plain = Zeroizing::new(plain.into_bytes());
    let padded_len = plain.len().div_ceil(PAD_TO) * PAD_TO;
    plain.resize(padded_len, 0);

    let mut message = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN + MAC_LEN);
    message.push(INTRODUCTION_TYPE);
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
    let mac = mac(&mac_key(recipient), &message);
    message.extend_from_slice(&mac);
    Ok(message)
}

/// The key of the MACs to `recipient`: `HASH(mac label || R)`.
fn mac_key(recipient: &WgPublicKey) -> [u8; 32] {
    kdf::hash(&[MAC_LABEL, recipient.as_bytes()])
}

/// The MAC of `message` under `key`: the first [`MAC_LEN`] bytes of
/// `HMAC(key, message)`.
fn mac(key: &[u8; 32], message: &[u8]) -> [u8; MAC_LEN] {
    let full = kdf::hmac(key, &[message]);
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
    recipient: &WgPublicKey,
) -> Zeroizing<[u8; 32]> {
    let salt = kdf::hash(&[LABEL, ephemeral_public, recipient.as_bytes()]);
    kdf::kdf1(&salt, shared)
}

/// A receiver of introductions: this host's WireGuard private key, the
/// budget of checks, and the last introduction accepted from each host. See
/// the [module docs](self).
pub struct IntroductionReceiver {
    secret: x25519_dalek::StaticSecret,
    public: WgPublicKey,
    /// The key of the MACs to this host.
    mac_key: [u8; 32],
    budget: CheckBudget,
    /// The timestamp of the last introduction accepted from each host.
    last_seen: BTreeMap<WgPublicKey, u64>,
    /// The same entries by timestamp, to find the oldest.
    by_time: BTreeSet<(u64, WgPublicKey)>,
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
    pub fn new(secret: &[u8; 32], now: u64) -> Self {
        let secret = x25519_dalek::StaticSecret::from(*secret);
        let public = WgPublicKey::from_bytes(x25519_dalek::PublicKey::from(&secret).to_bytes());
        Self {
            secret,
            mac_key: mac_key(&public),
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

    /// Opens the introduction `bytes` received at `now` and returns the card
    /// in it, when it was sealed to this host, is fresh, comes from an
    /// operator in `admitted`, and its card verifies.
    ///
    /// The cheap checks come first; the X25519 agreement and the signature
    /// check are each paid from the budget, and the signature is checked
    /// only for an admitted operator's fresh introduction.
    ///
    /// # Errors
    ///
    /// [`IntroductionError`] saying why it was dropped; each is counted.
    pub fn handle_introduction(
        &mut self,
        bytes: &[u8],
        admitted: &BTreeSet<OperatorId>,
        now: u64,
    ) -> Result<SignedCard, IntroductionError> {
        let result = self.open(bytes, admitted, now);
        let stats = &mut self.stats;
        let counter = match &result {
            Ok(_) => &mut stats.accepted,
            Err(IntroductionError::Malformed(_)) => &mut stats.malformed,
            Err(IntroductionError::BadMac) => &mut stats.bad_mac,
            Err(IntroductionError::OverBudget) => &mut stats.over_budget,
            Err(IntroductionError::NotForUs) => &mut stats.not_for_us,
            Err(IntroductionError::Stale { .. }) => &mut stats.stale,
            Err(IntroductionError::NotAdmitted) => &mut stats.not_admitted,
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

    fn open(
        &mut self,
        bytes: &[u8],
        admitted: &BTreeSet<OperatorId>,
        now: u64,
    ) -> Result<SignedCard, IntroductionError> {
        let view = IntroductionView::new_checked(bytes)?;
        if !macs_equal(&view.mac(), &mac(&self.mac_key, view.maced())) {
            return Err(IntroductionError::BadMac);
        }
        let prefix = ephemeral_prefix(&view.ephemeral());
        if self.ephemerals.contains(&prefix) {
            return Err(IntroductionError::Replayed);
        }
        if !self.budget.take(now) {
            return Err(IntroductionError::OverBudget);
        }
        self.remember_ephemeral(prefix);
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

        let age = now.abs_diff(sealed.timestamp);
        if age > CLOCK_SKEW {
            return Err(IntroductionError::Stale { age });
        }
        // No signature has been checked yet: the operator id is only what
        // the sender claims, enough to drop every operator not admitted.
        if !admitted.contains(&sealed.operator) {
            return Err(IntroductionError::NotAdmitted);
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
        if !self.budget.take(now) {
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
    fn remember(&mut self, host: WgPublicKey, timestamp: u64) {
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

/// An introduction's bytes, their length and type checked: the header and
/// the sealed part read without further checks.
struct IntroductionView<'a> {
    bytes: &'a [u8],
}

impl<'a> IntroductionView<'a> {
    /// Checks the length and the type byte.
    fn new_checked(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_INTRODUCTION_LEN {
            return Err(DecodeError::TooLong {
                field: "introduction",
                len: bytes.len(),
                max: MAX_INTRODUCTION_LEN,
            });
        }
        if bytes.len() < MIN_INTRODUCTION_LEN {
            return Err(DecodeError::Truncated {
                field: "introduction",
            });
        }
        if (bytes.len() - HEADER_LEN - TAG_LEN - MAC_LEN) % PAD_TO != 0 {
            return Err(DecodeError::Invalid {
                field: "introduction",
                reason: "not a whole number of blocks",
            });
        }
        match bytes[0] {
            INTRODUCTION_TYPE => Ok(Self { bytes }),
            value => Err(DecodeError::BadValue {
                field: "introduction type",
                value: value.into(),
            }),
        }
    }

    /// The type byte and the ephemeral key: the associated data.
    fn header(&self) -> &'a [u8] {
        &self.bytes[..HEADER_LEN]
    }

    /// The ephemeral X25519 public key.
    fn ephemeral(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.bytes[1..HEADER_LEN]);
        key
    }

    /// The ciphertext and its tag.
    fn sealed(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..self.bytes.len() - MAC_LEN]
    }

    /// Everything the MAC covers: all but the MAC.
    fn maced(&self) -> &'a [u8] {
        &self.bytes[..self.bytes.len() - MAC_LEN]
    }

    /// The MAC.
    fn mac(&self) -> [u8; MAC_LEN] {
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&self.bytes[self.bytes.len() - MAC_LEN..]);
        mac
    }
}

/// The decrypted contents, parsed but not verified.
struct Plaintext<'a> {
    timestamp: u64,
    operator: OperatorId,
    wg_key: WgPublicKey,
    card: &'a [u8],
}

impl<'a> Plaintext<'a> {
    fn parse(plain: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(plain);
        let timestamp = r.u64("introduction timestamp")?;
        let operator =
            OperatorId::from_bytes(&r.array("introduction operator")?).map_err(|_| {
                DecodeError::Invalid {
                    field: "introduction operator",
                    reason: "not an Ed25519 public key",
                }
            })?;
        let wg_key = WgPublicKey::from_bytes(r.array("introduction WireGuard key")?);
        let card = r.bytes("introduced card", MAX_CARD_LEN)?;
        let padding = r.take(r.remaining(), "padding")?;
        if padding.len() >= PAD_TO || padding.iter().any(|&b| b != 0) {
            return Err(DecodeError::Invalid {
                field: "padding",
                reason: "not the zeros up to the next block",
            });
        }
        r.finish()?;
        Ok(Self {
            timestamp,
            operator,
            wg_key,
            card,
        })
    }
}

/// The checks a receiver may still pay for: a token bucket of
/// [`CHECKS_PER_SECOND`], refilled at that rate a second.
#[derive(Debug)]
struct CheckBudget {
    tokens: u64,
    refilled_at: u64,
}

impl CheckBudget {
    fn new(now: u64) -> Self {
        Self {
            tokens: CHECKS_PER_SECOND,
            refilled_at: now,
        }
    }

    /// Takes one check at `now`; `false` when none is left.
    fn take(&mut self, now: u64) -> bool {
        // A clock stepped back refills from the new time on.
        if now != self.refilled_at {
            let elapsed = now.saturating_sub(self.refilled_at);
            self.tokens = elapsed
                .saturating_mul(CHECKS_PER_SECOND)
                .saturating_add(self.tokens)
                .min(CHECKS_PER_SECOND);
            self.refilled_at = now;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

#[cfg(test)]
mod tests;
