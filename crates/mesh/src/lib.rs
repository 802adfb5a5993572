//! The trust mesh of sentrymesh as a sans-IO core.
//!
//! This crate does no I/O. It reads no clock, opens no file or socket and
//! takes no entropy from the operating system: every time is a `now` in Unix
//! seconds from the caller, randomness comes from the RNG the caller passes,
//! and every output is a value or bytes the caller stores or sends. Nor does
//! it gossip: it defines the signed objects members exchange and the rules
//! that judge them; moving them is the daemon's job.
//!
//! The model:
//!
//! ```text
//!  operator key (Ed25519) ──signs──► host cards ──seal to operators──► sealed bundle
//!        │                            (role, WG key,                   (X25519 + ChaCha20-
//!        │                             addresses, endpoints)            Poly1305, signed)
//!        ├──signs──► vouch for another operator ──┐
//!        └──signs──► revocation (host / vouch) ───┤
//!                                                 ▼
//!  TrustPolicy { local, direct, k } ──► admitted operators ──► roles: may_peer, may_share
//! ```
//!
//! * An **operator** is the unit of trust: an Ed25519 key ([`OperatorSecret`])
//!   whose public half ([`OperatorId`]) names it.
//! * A **host card** ([`HostCard`], signed as a [`SignedCard`]) says what
//!   one host of an operator is: name, [`Role`], WireGuard key, overlay
//!   addresses, endpoints, allowed IPs, validity window, serial.
//! * A **sealed bundle** ([`bundle::seal`], [`SealedBundle`]) carries an
//!   operator's cards encrypted to chosen operators only, signed by the
//!   sender.
//! * The **web of trust** ([`TrustPolicy`]) admits the operators trusted
//!   directly and those vouched for ([`Vouch`]) by at least `k` of them;
//!   [`Revocation`]s withdraw vouches and retire host keys for good.
//! * The **roles** ([`roles`]) decide who may peer with whom and which cards
//!   may be shown to which operator: producer and BIOS hosts stay hidden.
//!
//! A whole round, as the CLI and the daemon drive it:
//!
//! ```
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//! use sentrymesh_mesh::{bundle, may_peer, HostCard, OperatorSecret, Role, TrustPolicy, Vouch};
//!
//! let mut rng = ChaCha20Rng::seed_from_u64(1); // the daemon passes OsRng
//! let now = 1_777_593_600; // the daemon passes the system time
//! let (alice, bob, carol) = (
//!     OperatorSecret::generate(&mut rng),
//!     OperatorSecret::generate(&mut rng),
//!     OperatorSecret::generate(&mut rng),
//! );
//!
//! // Alice issues a card for her sentry and seals it to Bob.
//! let card = HostCard {
//!     operator: alice.operator_id(),
//!     name: "sentry-1".into(),
//!     role: Role::Sentry,
//!     wg_public_key: "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=".parse()?,
//!     addresses: vec!["198.18.1.1/24".parse()?],
//!     endpoints: vec!["198.18.0.1:51820".parse()?],
//!     allowed_ips: vec![],
//!     not_before: now,
//!     not_after: now + 90 * 86_400,
//!     serial: 1,
//!     chain_p2p: None,
//! };
//! let signed = card.sign(&alice)?;
//! let sealed = bundle::seal(&alice, &[bob.operator_id()], &[signed], now, &mut rng)?;
//! let text = sealed.to_text(); // `sentrymesh-bundle v1` ..., posted anywhere
//!
//! // Bob opens it, and admits Alice because Carol, whom he trusts, vouched.
//! let opened = bundle::open_text(&bob, &text, now + 60)?;
//! let vouch = Vouch { voucher: carol.operator_id(), subject: alice.operator_id(), issued_at: now }
//!     .sign(&carol)?;
//! let policy = TrustPolicy::new(bob.operator_id(), [carol.operator_id()], 1)?;
//! let admitted = policy.admitted_operators([&vouch], []);
//!
//! let mut bobs_sentry = card.clone();
//! bobs_sentry.operator = bob.operator_id();
//! bobs_sentry.wg_public_key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=".parse()?;
//! assert!(may_peer(&bobs_sentry, opened.cards[0].card(), &admitted));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Everything signed is encoded canonically ([`DecodeError`] says what is
//! wrong with bytes that are not) and has a printable form ([`armour`]).
//! Parsing never panics, whatever the input.
#![forbid(unsafe_code)]

pub mod armour;
pub mod bundle;
mod card;
mod cidr;
mod codec;
mod endpoint;
pub mod gossip;
mod identity;
mod kdf;
mod mesh;
mod object;
mod peers;
mod revocation;
mod role;
pub mod roles;
mod statement;
mod store;
mod time;
mod trust;
mod vouch;
mod wg_key;

#[cfg(test)]
mod testing;

pub use bundle::{OpenError, OpenedBundle, SealError, SealedBundle};
pub use card::{
    CardTimeError, HostCard, InvalidCard, MAX_ADDRESSES, MAX_ALLOWED_IPS, MAX_CARD_LEN,
    MAX_ENDPOINTS, MAX_NAME_LEN, ParseCardError, SignCardError, SignedCard,
};
pub use cidr::{Cidr, CidrError};
pub use codec::DecodeError;
pub use endpoint::{
    ChainP2p, Endpoint, EndpointError, EndpointHost, MAX_CHAIN_ID_LEN, MAX_DNS_NAME_LEN,
};
pub use gossip::{Gossip, GossipError, GossipMessage, GossipStats, MessageError, Refusal};
pub use identity::{KeyFileError, OPERATOR_KEY_LEN, OperatorId, OperatorIdError, OperatorSecret};
pub use mesh::{Mesh, MeshError};
pub use object::{OBJECT_ID_LEN, Object, ObjectId, ObjectKind, ObjectRef, ParseObjectError};
pub use peers::{
    LocalCardError, LocalConfigError, PERSISTENT_KEEPALIVE, PeerEvent, PeerManager, PeerSpec,
};
pub use revocation::{Revocation, RevocationTarget, SignedRevocation, is_host_revoked};
pub use role::{Role, RoleError};
pub use roles::{may_peer, may_share};
pub use statement::{ParseStatementError, SignStatementError};
pub use store::{
    InsertError, Inserted, KeyConflict, MAX_CARDS, MAX_REVOCATIONS, MAX_VOUCHES, StateError, Store,
};
pub use time::{CLOCK_SKEW, UnixTime};
pub use trust::{PolicyError, TrustPolicy};
pub use vouch::{SignedVouch, Vouch};
pub use wg_key::{WgKeyError, WgPublicKey};
