//! Sealed bundles: an operator's cards, readable only by the operators it
//! names, signed by the sender, fit to post anywhere.
//!
//! # Construction
//!
//! [`seal`] draws a random 32-byte content key `K` and one ephemeral X25519
//! key pair `(e, E)` per bundle. For each recipient `R` (an [`OperatorId`],
//! whose Ed25519 key maps to the X25519 key `R_x`):
//!
//! ```text
//! shared  = X25519(e, R_x)                      (all zeros: refused)
//! salt    = BLAKE2s("sentrymesh-bundle v1 key wrap" || E || R || S)
//! wrap    = KDF1(salt, shared)                  (HKDF with HMAC-BLAKE2s, as WireGuard)
//! wrapped = ChaCha20-Poly1305(wrap, nonce 0, aad "", K)        48 bytes
//! ```
//!
//! where `S` is the sender's id. The recipient computes the same `shared`
//! as `X25519(r_x, E)` with the X25519 form of its own Ed25519 key. The
//! payload — the encoded cards — is encrypted once:
//! `ChaCha20-Poly1305(K, nonce 0, aad = header, cards)`, the header being
//! every byte before the payload. A zero nonce is safe because every key is
//! used once: `K` is fresh per bundle, and each wrap key depends on a fresh
//! `E`.
//!
//! # Format
//!
//! ```text
//! u8    format version (1)
//! [32]  sender operator id
//! u64   created_at (Unix seconds)
//! [32]  ephemeral X25519 public key E
//! u16   recipient count n (1 to 64), then n times, ascending by id:
//!         [32] recipient operator id   [48] wrapped content key
//! u32   payload length, then the payload (ciphertext and 16-byte tag) of:
//!         u16 card count (1 to 256), then per card: u16 length, signed card
//! [64]  Ed25519 signature by the sender over all of the above
//! ```
//!
//! The signature is domain-separated (context `sentrymesh sealed bundle
//! v1`) and checked before anything is decrypted, so an altered bundle is
//! reported as altered. Opening then checks that every card verifies, was
//! signed by the bundle's sender, is valid now, and — for a hidden role —
//! that the bundle was sealed only to the sender itself.

use std::collections::BTreeSet;
use std::fmt;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use rand_core::CryptoRngCore;
use sentrymesh_types::{CLOCK_SKEW, UnixTime, blake2s};
use zeroize::Zeroizing;

use crate::armour::{self, ArmourError, ArmourKind};
use crate::card::{CardTimeError, MAX_CARD_LEN, ParseCardError, SignedCard};
use crate::codec::{self, DecodeError, Reader, Writer};
use crate::identity::{Domain, OperatorId, OperatorSecret, SIGNATURE_LEN, is_blank_signature};
use crate::role::Role;

/// The most recipients of one bundle.
pub const MAX_RECIPIENTS: usize = 64;
/// The most cards in one bundle.
pub const MAX_BUNDLE_CARDS: usize = 256;
/// Length of a Poly1305 tag.
const TAG_LEN: usize = 16;
/// Length of a wrapped content key: the key and its tag.
const WRAPPED_KEY_LEN: usize = 32 + TAG_LEN;
/// The longest payload: the largest card list, encrypted.
const MAX_PAYLOAD_LEN: usize = 2 + MAX_BUNDLE_CARDS * (2 + MAX_CARD_LEN) + TAG_LEN;
/// The longest encoded bundle.
pub const MAX_BUNDLE_LEN: usize = 1
    + 32
    + 8
    + 32
    + 2
    + MAX_RECIPIENTS * (32 + WRAPPED_KEY_LEN)
    + 4
    + MAX_PAYLOAD_LEN
    + SIGNATURE_LEN;
/// The label hashed into every wrap key's salt.
const KEY_WRAP_LABEL: &[u8] = b"sentrymesh-bundle v1 key wrap";

/// Why cards could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// No recipient was named.
    #[error("a bundle needs at least one recipient operator")]
    NoRecipients,
    /// More recipients than a bundle holds.
    #[error("{count} recipients are more than the {MAX_RECIPIENTS} a bundle holds")]
    TooManyRecipients {
        /// Distinct recipients named.
        count: usize,
    },
    /// No card was given.
    #[error("there are no cards to seal")]
    NoCards,
    /// More cards than a bundle holds.
    #[error("{count} cards are more than the {MAX_BUNDLE_CARDS} a bundle holds")]
    TooManyCards {
        /// Cards given.
        count: usize,
    },
    /// A card of another operator.
    #[error(
        "the card for host `{host}` is operator {card_operator}'s; only the sender's own \
         cards ({sender}) can be sealed"
    )]
    NotSendersCard {
        /// The host's name.
        host: String,
        /// The card's operator.
        card_operator: OperatorId,
        /// The sender.
        sender: OperatorId,
    },
    /// A hidden host's card addressed to other operators.
    #[error(
        "host `{host}` is a {role}, a hidden role: its card may be sealed only to its own \
         operator, not to {others} other operator(s)"
    )]
    HiddenCardToOthers {
        /// The host's name.
        host: String,
        /// Its role.
        role: Role,
        /// How many recipients are not the sender.
        others: usize,
    },
    /// Two cards for the same WireGuard key.
    #[error("two cards are for the same WireGuard key as host `{host}`")]
    DuplicateHost {
        /// The host's name, from the second card.
        host: String,
    },
    /// A card not valid at the time of sealing.
    #[error(transparent)]
    CardTime(#[from] CardTimeError),
}

/// Why a bundle could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The text is not an armoured bundle.
    #[error(transparent)]
    Armour(#[from] ArmourError),
    /// The bytes are not a bundle encoding.
    #[error("malformed bundle: {0}")]
    Malformed(#[from] DecodeError),
    /// The signature field is blank.
    #[error("the bundle is not signed (it names {sender} as its sender)")]
    Unsigned {
        /// The sender the bundle names.
        sender: OperatorId,
    },
    /// The signature does not verify under the sender named.
    #[error(
        "signature does not verify: the bundle was altered, or not signed by its sender {sender}"
    )]
    BadSignature {
        /// The sender the bundle names.
        sender: OperatorId,
    },
    /// Created further in the future than clocks drift.
    #[error("the bundle was created at {created_at}, in the future (it is now {now})")]
    CreatedInFuture {
        /// When the sender says it sealed the bundle.
        created_at: UnixTime,
        /// Now.
        now: UnixTime,
    },
    /// We are not among the recipients.
    #[error("bundle is not addressed to operator {operator}")]
    NotAddressed {
        /// Our operator id.
        operator: OperatorId,
    },
    /// The ephemeral key gives an all-zero shared secret.
    #[error("the bundle's ephemeral key is unusable (a low-order point)")]
    LowOrderKey,
    /// The content key or the payload does not decrypt.
    #[error("the bundle does not decrypt with the key of operator {operator}")]
    Decryption {
        /// Our operator id.
        operator: OperatorId,
    },
    /// A card inside is malformed, invalid or badly signed.
    #[error("card {index} of the bundle: {source}")]
    Card {
        /// The card's position, from 1.
        index: usize,
        /// What is wrong with it.
        source: ParseCardError,
    },
    /// A card inside was signed by an operator other than the sender.
    #[error(
        "the card for host `{host}` was signed by operator {card_operator}, not by the \
         bundle's sender {sender}"
    )]
    CardNotFromSender {
        /// The host's name.
        host: String,
        /// The card's operator.
        card_operator: OperatorId,
        /// The bundle's sender.
        sender: OperatorId,
    },
    /// A hidden host's card in a bundle addressed beyond its operator.
    #[error("the bundle shares hidden host `{host}` ({role}) with operators other than its own")]
    HiddenCardShared {
        /// The host's name.
        host: String,
        /// Its role.
        role: Role,
    },
    /// A card inside is not valid now.
    #[error(transparent)]
    CardTime(#[from] CardTimeError),
}

/// A bundle whose structure and sender signature have been checked, not yet
/// decrypted.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedBundle {
    encoded: Vec<u8>,
    sender: OperatorId,
    created_at: UnixTime,
    recipients: Vec<OperatorId>,
}

impl fmt::Debug for SealedBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedBundle")
            .field("sender", &self.sender)
            .field("created_at", &self.created_at)
            .field("recipients", &self.recipients)
            .field("len", &self.encoded.len())
            .finish()
    }
}

/// The contents of an opened bundle, every card checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedBundle {
    /// The operator who sealed and signed the bundle.
    pub sender: OperatorId,
    /// When it was sealed (Unix seconds).
    pub created_at: UnixTime,
    /// Every operator it is addressed to, in ascending order.
    pub recipients: Vec<OperatorId>,
    /// The cards, each signed by `sender` and valid at the time of opening.
    pub cards: Vec<SignedCard>,
}

/// Seals `cards` so that only `recipients` can read them, signed by
/// `sender`, created at `now`.
///
/// Recipients are deduplicated; the sender may be one of them. Every card
/// must be the sender's own and valid at `now`, and a hidden role's card may
/// be sealed only when the sender is the sole recipient.
///
/// # Errors
///
/// [`SealError`] for no or too many recipients or cards, another operator's
/// card, a hidden card addressed to others, two cards for one host key, or
/// a card not valid at `now`.
pub fn seal(
    sender: &OperatorSecret,
    recipients: &[OperatorId],
    cards: &[SignedCard],
    now: UnixTime,
    rng: &mut impl CryptoRngCore,
) -> Result<SealedBundle, SealError> {
    let sender_id = sender.operator_id();
    let recipients: BTreeSet<OperatorId> = recipients.iter().copied().collect();
    if recipients.is_empty() {
        return Err(SealError::NoRecipients);
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(SealError::TooManyRecipients {
            count: recipients.len(),
        });
    }
    check_cards_to_seal(sender_id, &recipients, cards, now)?;
    Ok(seal_unchecked(sender, &recipients, cards, now, rng))
}

/// The construction of [`seal`], without its checks on recipients and
/// cards (the tests use it to build what a misbehaving sender might send).
fn seal_unchecked(
    sender: &OperatorSecret,
    recipients: &BTreeSet<OperatorId>,
    cards: &[SignedCard],
    now: UnixTime,
    rng: &mut impl CryptoRngCore,
) -> SealedBundle {
    let sender_id = sender.operator_id();
    let mut content_key = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(content_key.as_mut_slice());
    let ephemeral = x25519_dalek::StaticSecret::random_from_rng(&mut *rng);
    let ephemeral_public = x25519_dalek::PublicKey::from(&ephemeral);

    let mut w = Writer::versioned();
    w.array(sender_id.as_bytes());
    w.time(now);
    w.array(ephemeral_public.as_bytes());
    w.count(recipients.len());
    for recipient in recipients {
        let shared = ephemeral.diffie_hellman(&recipient.x25519_public());
        // An operator id is a point of large order, so its X25519 form is
        // never of low order and the shared secret is never all zeros.
        debug_assert!(shared.was_contributory());
        let wrap_key = wrap_key(shared.as_bytes(), &ephemeral_public, recipient, &sender_id);
        w.array(recipient.as_bytes());
        w.array(&encrypt(&wrap_key, &content_key[..], b""));
    }

    let mut plain = Writer::new();
    plain.count(cards.len());
    cards.iter().for_each(|card| plain.bytes(card.as_bytes()));
    let plain = Zeroizing::new(plain.into_bytes());
    let payload = encrypt(&content_key, &plain, w.as_slice());
    w.long_bytes(&payload);
    let signature = sender.sign(Domain::Bundle, w.as_slice());
    w.array(&signature);

    SealedBundle {
        encoded: w.into_bytes(),
        sender: sender_id,
        created_at: now,
        recipients: recipients.iter().copied().collect(),
    }
}

fn check_cards_to_seal(
    sender: OperatorId,
    recipients: &BTreeSet<OperatorId>,
    cards: &[SignedCard],
    now: UnixTime,
) -> Result<(), SealError> {
    if cards.is_empty() {
        return Err(SealError::NoCards);
    }
    if cards.len() > MAX_BUNDLE_CARDS {
        return Err(SealError::TooManyCards { count: cards.len() });
    }
    let only_to_sender = recipients.len() == 1 && recipients.contains(&sender);
    let mut keys = BTreeSet::new();
    for signed in cards {
        let card = signed.card();
        if card.operator != sender {
            return Err(SealError::NotSendersCard {
                host: card.name.clone(),
                card_operator: card.operator,
                sender,
            });
        }
        if card.role.is_hidden() && !only_to_sender {
            return Err(SealError::HiddenCardToOthers {
                host: card.name.clone(),
                role: card.role,
                others: recipients.iter().filter(|&&r| r != sender).count(),
            });
        }
        if !keys.insert(card.wg_public_key) {
            return Err(SealError::DuplicateHost {
                host: card.name.clone(),
            });
        }
        signed.check_valid_at(now)?;
    }
    Ok(())
}

/// `KDF1(HASH(label || E || recipient || sender), shared)`.
fn wrap_key(
    shared: &[u8; 32],
    ephemeral_public: &x25519_dalek::PublicKey,
    recipient: &OperatorId,
    sender: &OperatorId,
) -> Zeroizing<[u8; 32]> {
    let salt = blake2s::hash(&[
        KEY_WRAP_LABEL,
        ephemeral_public.as_bytes(),
        recipient.as_bytes(),
        sender.as_bytes(),
    ]);
    Zeroizing::new(blake2s::kdf1(&salt, shared))
}

/// ChaCha20-Poly1305 under a key used once, so with the zero nonce.
fn encrypt(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    ChaCha20Poly1305::new(key.into())
        .encrypt(
            &Default::default(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        // Invariant: sealing fails only past 256 GiB; payloads are a few MiB.
        .expect("plaintext far below the AEAD length limit")
}

fn decrypt(key: &[u8; 32], ciphertext: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    ChaCha20Poly1305::new(key.into())
        .decrypt(
            &Default::default(),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// The fields of an encoded bundle, borrowed from it.
struct Parsed<'a> {
    sender: OperatorId,
    created_at: UnixTime,
    ephemeral: [u8; 32],
    recipients: Vec<(OperatorId, [u8; WRAPPED_KEY_LEN])>,
    /// Every byte before the payload: the payload's associated data.
    header: &'a [u8],
    payload: &'a [u8],
}

/// Parses a bundle and checks its sender's signature.
fn parse(bytes: &[u8]) -> Result<Parsed<'_>, OpenError> {
    if bytes.len() > MAX_BUNDLE_LEN {
        return Err(DecodeError::TooLong {
            field: "bundle",
            len: bytes.len(),
            max: MAX_BUNDLE_LEN,
        }
        .into());
    }
    let (body, signature) = codec::split_signature(bytes)?;
    let mut r = Reader::new(body);
    r.version()?;
    let sender = operator_id(&mut r, "sender operator id")?;
    let created_at = r.time("creation time")?;
    let ephemeral = r.array("ephemeral key")?;
    let count = r.count("recipient list", MAX_RECIPIENTS)?;
    if count == 0 {
        return Err(DecodeError::Invalid {
            field: "recipient list",
            reason: "no recipient",
        }
        .into());
    }
    let mut recipients: Vec<(OperatorId, [u8; WRAPPED_KEY_LEN])> = Vec::with_capacity(count);
    for _ in 0..count {
        let id = operator_id(&mut r, "recipient operator id")?;
        if recipients.last().is_some_and(|(last, _)| *last >= id) {
            return Err(DecodeError::Invalid {
                field: "recipient list",
                reason: "not in ascending order, or a recipient twice",
            }
            .into());
        }
        recipients.push((id, r.array("wrapped content key")?));
    }
    let header_len = body.len() - r.remaining();
    let payload = r.long_bytes("payload", MAX_PAYLOAD_LEN)?;
    r.finish()?;
    if is_blank_signature(&signature) {
        return Err(OpenError::Unsigned { sender });
    }
    if sender.verify(Domain::Bundle, body, &signature).is_err() {
        return Err(OpenError::BadSignature { sender });
    }
    let header = body.get(..header_len).ok_or(DecodeError::Truncated {
        field: "bundle header",
    })?;
    Ok(Parsed {
        sender,
        created_at,
        ephemeral,
        recipients,
        header,
        payload,
    })
}

fn operator_id(r: &mut Reader<'_>, field: &'static str) -> Result<OperatorId, DecodeError> {
    OperatorId::from_bytes(&r.array(field)?).map_err(|_| DecodeError::Invalid {
        field,
        reason: "not an Ed25519 public key",
    })
}

impl SealedBundle {
    /// A bundle in its binary encoding, its structure and its sender's
    /// signature checked (nothing is decrypted yet).
    ///
    /// # Errors
    ///
    /// [`OpenError::Malformed`], [`OpenError::Unsigned`] or
    /// [`OpenError::BadSignature`].
    pub fn decode(bytes: &[u8]) -> Result<Self, OpenError> {
        let parsed = parse(bytes)?;
        Ok(Self {
            encoded: bytes.to_vec(),
            sender: parsed.sender,
            created_at: parsed.created_at,
            recipients: parsed.recipients.iter().map(|(id, _)| *id).collect(),
        })
    }

    /// A bundle in its printable form, checked as [`SealedBundle::decode`]
    /// checks it.
    ///
    /// # Errors
    ///
    /// [`OpenError::Armour`] when the text is not an armoured bundle, and the
    /// errors of [`SealedBundle::decode`].
    pub fn from_text(text: &str) -> Result<Self, OpenError> {
        Self::decode(&armour::decode(ArmourKind::Bundle, text)?)
    }

    /// The binary encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// The printable form: `sentrymesh-bundle v1` and base64.
    pub fn to_text(&self) -> String {
        armour::encode(ArmourKind::Bundle, &self.encoded)
    }

    /// The operator who sealed and signed the bundle.
    pub fn sender(&self) -> OperatorId {
        self.sender
    }

    /// When the bundle was sealed (Unix seconds).
    pub fn created_at(&self) -> UnixTime {
        self.created_at
    }

    /// The operators the bundle is addressed to, in ascending order.
    pub fn recipients(&self) -> &[OperatorId] {
        &self.recipients
    }

    /// Decrypts the bundle with `recipient`'s key at `now` and checks every
    /// card in it.
    ///
    /// # Errors
    ///
    /// [`OpenError`]: created in the future, not addressed to `recipient`,
    /// not decrypting, or a card that is malformed, badly signed, not the
    /// sender's, a hidden card shared beyond its operator, or not valid at
    /// `now`.
    pub fn open(
        &self,
        recipient: &OperatorSecret,
        now: UnixTime,
    ) -> Result<OpenedBundle, OpenError> {
        let parsed = parse(&self.encoded)?;
        if parsed.created_at > now.saturating_add(CLOCK_SKEW) {
            return Err(OpenError::CreatedInFuture {
                created_at: parsed.created_at,
                now,
            });
        }
        let me = recipient.operator_id();
        let (_, wrapped) = parsed
            .recipients
            .iter()
            .find(|(id, _)| *id == me)
            .ok_or(OpenError::NotAddressed { operator: me })?;
        let ephemeral = x25519_dalek::PublicKey::from(parsed.ephemeral);
        let shared = recipient.x25519_secret().diffie_hellman(&ephemeral);
        if !shared.was_contributory() {
            return Err(OpenError::LowOrderKey);
        }
        let wrap_key = wrap_key(shared.as_bytes(), &ephemeral, &me, &parsed.sender);
        let failed = OpenError::Decryption { operator: me };
        let content_key = decrypt(&wrap_key, wrapped, b"").ok_or(failed.clone())?;
        let content_key: &[u8; 32] = content_key[..].try_into().map_err(|_| failed.clone())?;
        let plain = decrypt(content_key, parsed.payload, parsed.header).ok_or(failed)?;
        let cards = decode_cards(&plain)?;
        check_opened_cards(&parsed, &cards, now)?;
        Ok(OpenedBundle {
            sender: parsed.sender,
            created_at: parsed.created_at,
            recipients: parsed.recipients.iter().map(|(id, _)| *id).collect(),
            cards,
        })
    }
}

fn decode_cards(plain: &[u8]) -> Result<Vec<SignedCard>, OpenError> {
    let mut r = Reader::new(plain);
    let count = r.count("card list", MAX_BUNDLE_CARDS)?;
    if count == 0 {
        return Err(DecodeError::Invalid {
            field: "card list",
            reason: "no card",
        }
        .into());
    }
    let mut cards = Vec::with_capacity(count);
    for index in 1..=count {
        let bytes = r.bytes("card", MAX_CARD_LEN)?;
        cards.push(SignedCard::decode(bytes).map_err(|source| OpenError::Card { index, source })?);
    }
    r.finish()?;
    Ok(cards)
}

fn check_opened_cards(
    parsed: &Parsed<'_>,
    cards: &[SignedCard],
    now: UnixTime,
) -> Result<(), OpenError> {
    let only_to_sender = matches!(&parsed.recipients[..], [(id, _)] if *id == parsed.sender);
    for signed in cards {
        let card = signed.card();
        if card.operator != parsed.sender {
            return Err(OpenError::CardNotFromSender {
                host: card.name.clone(),
                card_operator: card.operator,
                sender: parsed.sender,
            });
        }
        if card.role.is_hidden() && !only_to_sender {
            return Err(OpenError::HiddenCardShared {
                host: card.name.clone(),
                role: card.role,
            });
        }
        signed.check_valid_at(now)?;
    }
    Ok(())
}

/// Opens a bundle in its binary encoding: [`SealedBundle::decode`], then
/// [`SealedBundle::open`].
///
/// # Errors
///
/// The errors of both.
pub fn open(
    recipient: &OperatorSecret,
    bytes: &[u8],
    now: UnixTime,
) -> Result<OpenedBundle, OpenError> {
    SealedBundle::decode(bytes)?.open(recipient, now)
}

/// Opens a bundle in its printable form: [`SealedBundle::from_text`], then
/// [`SealedBundle::open`].
///
/// # Errors
///
/// The errors of both.
pub fn open_text(
    recipient: &OperatorSecret,
    text: &str,
    now: UnixTime,
) -> Result<OpenedBundle, OpenError> {
    SealedBundle::from_text(text)?.open(recipient, now)
}

#[cfg(test)]
mod tests;
