//! The trust mesh of sentrymesh as a sans-IO core.
//!
//! This crate does no I/O. It reads no clock, opens no file or socket and
//! takes no entropy from the operating system: every time is a `now` of
//! wall-clock [`UnixTime`](sentrymesh_types::UnixTime) from the caller
//! (what is signed expires by the wall clock, which other operators share),
//! randomness comes from the RNG the caller passes, and every output is a
//! value or bytes the caller stores or sends. It
//! gossips as a state machine only: [`Mesh`] hands out the bytes to send to
//! each peer and takes back what arrives; carrying them is the daemon's job.
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
//!  TrustPolicy { local, direct, k, ranges } ──► admitted operators ──► roles: may_peer, may_share
//!                                                (each with the one overlay range its cards may use)
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
//!   [`Revocation`]s withdraw vouches and retire host keys for good. Each
//!   admitted operator has one overlay range ([`overlay`]): from the local
//!   config, or named alike by `k` vouches; a card that claims anything
//!   outside its operator's range is refused.
//! * The **roles** ([`peering`]) decide who may peer with whom and which cards
//!   may be shown to which operator: producer and BIOS hosts stay hidden.
//! * An **introduction** ([`introduction`]) is how a public host with no
//!   session yet hands a peer its card over the underlay: sealed to the
//!   peer's WireGuard key, the sender's operator checked before its
//!   signature, under a budget of checks; hidden hosts never send one.
//!
//! Each member keeps what it learned and shares it over the mesh itself:
//!
//! ```text
//!                  ┌──────────────────────────── Mesh (one member) ──────────────────────────┐
//!  from a peer ───►│ Gossip ──verify, insert──► Store ──────────► PeerManager ──────────────►│──► PeerEvent::{Added,
//!  (handle_message)│   │                        (cards, vouches,   (own card, TrustPolicy:     │      Changed, Removed}
//!                  │   │ digest, want, objects   revocations;      may_peer, admission,      │──► is_admitted_peer
//!  to a peer  ◄────│◄──┘ filtered per recipient  grows only)       revocation, expiry)       │
//!  (poll_transmit) └──────────────────────────────────│──────────────────────────────────────┘
//!                                                     └──► state file (encode / decode, re-verified)
//! ```
//!
//! * The **store** ([`Store`], [`store`]) holds every signed object a member
//!   knows, under rules that make the set grow only — cards superseded by
//!   higher serials, revocations as permanent tombstones — and writes itself
//!   as a state file that is verified again when read.
//! * **Gossip** ([`gossip`]) converges members by anti-entropy — digests of
//!   object ids, wants, objects — and pushes what is new to every peer at
//!   once. Each peer is shown only what it may see: a hidden host's card,
//!   or even its id, never goes to another operator.
//! * The **peer manager** ([`PeerManager`], [`peers`]) turns this host's card,
//!   its trust policy and the store into its WireGuard peers.
//! * A [`Mesh`] keeps the three in step: it is what the daemon drives.
//!
//! A whole round, as the CLI and the daemon drive it:
//!
//! ```
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//! use sentrymesh_mesh::{
//!     bundle, may_peer, HostCard, OperatorSecret, Overlay, Role, TrustPolicy, Vouch,
//! };
//! use sentrymesh_types::{PrivateKey, UnixTime};
//!
//! let mut rng = ChaCha20Rng::seed_from_u64(1); // the daemon passes OsRng
//! let now = UnixTime(1_777_593_600); // the daemon passes the system time
//! let (alice, bob, carol) = (
//!     OperatorSecret::generate(&mut rng),
//!     OperatorSecret::generate(&mut rng),
//!     OperatorSecret::generate(&mut rng),
//! );
//!
//! // Alice issues a card for her sentry, with the sentry's WireGuard key
//! // (`wg genkey`; the CLI reads its key file) to prove the key is the
//! // sentry's, and seals it to Bob.
//! let sentry_key = PrivateKey::from_bytes([7; 32]);
//! let card = HostCard {
//!     operator: alice.operator_id(),
//!     name: "sentry-1".into(),
//!     role: Role::Sentry,
//!     wg_public_key: sentry_key.public_key(),
//!     addresses: vec!["198.19.1.1/24".parse()?],
//!     endpoints: vec!["198.18.0.1:51820".parse()?],
//!     allowed_ips: vec![],
//!     not_before: now,
//!     not_after: now + 90 * 86_400,
//!     serial: 1,
//!     chain_p2p: None,
//! };
//! let signed = card.issue(&alice, &sentry_key, &mut rng)?;
//! let sealed = bundle::seal(&alice, &[bob.operator_id()], &[signed], now, &mut rng)?;
//! let text = sealed.to_text(); // `sentrymesh-bundle v1` ..., posted anywhere
//!
//! // Bob opens it, and admits Alice because Carol, whom he trusts, vouched
//! // for her with the overlay range 198.19.1.0/24, inside which Alice's
//! // cards must keep. Bob's own config gives his and Carol's ranges.
//! let opened = bundle::open_text(&bob, &text, now + 60)?;
//! let vouch = Vouch {
//!     voucher: carol.operator_id(),
//!     subject: alice.operator_id(),
//!     overlay: "198.19.1.0/24".parse()?,
//!     issued_at: now,
//! }
//! .sign(&carol)?;
//! let overlay = Overlay::new(
//!     "198.19.0.0/16".parse()?,
//!     [
//!         (bob.operator_id(), "198.19.2.0/24".parse()?),
//!         (carol.operator_id(), "198.19.3.0/24".parse()?),
//!     ],
//! )?;
//! let policy = TrustPolicy::new(bob.operator_id(), [carol.operator_id()], 1, overlay)?;
//! let admitted = policy.admitted_operators([&vouch], []);
//!
//! let mut bobs_sentry = card.clone();
//! bobs_sentry.operator = bob.operator_id();
//! bobs_sentry.wg_public_key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=".parse()?;
//! assert!(may_peer(&bobs_sentry, opened.cards[0].card(), &admitted));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A member as the daemon runs it — here two sentries of two operators, the
//! bytes carried by hand — and how the mesh grows by itself:
//!
//! ```
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//! use sentrymesh_mesh::{
//!     HostCard, Mesh, OperatorSecret, Overlay, PeerEvent, Role, Store, TrustPolicy,
//! };
//! use sentrymesh_types::{PrivateKey, UnixTime};
//!
//! let now = UnixTime(1_777_593_600);
//! let (alice, bob) = (OperatorSecret::from_seed([1; 32]), OperatorSecret::from_seed([3; 32]));
//! // Alice's hosts are 198.19.1.0/24, Bob's 198.19.3.0/24: both agree.
//! let overlay = Overlay::new(
//!     "198.19.0.0/16".parse()?,
//!     [
//!         (alice.operator_id(), "198.19.1.0/24".parse()?),
//!         (bob.operator_id(), "198.19.3.0/24".parse()?),
//!     ],
//! )?;
//! let sentry = |op: &OperatorSecret, n: u8| {
//!     let range = if op.operator_id() == alice.operator_id() { 1 } else { 3 };
//!     let host_key = PrivateKey::from_bytes([n; 32]);
//!     HostCard {
//!         operator: op.operator_id(),
//!         name: format!("sentry-{n}"),
//!         role: Role::Sentry,
//!         wg_public_key: host_key.public_key(),
//!         addresses: vec![format!("198.19.{range}.{n}/24").parse().unwrap()],
//!         endpoints: vec![format!("198.18.0.{n}:51820").parse().unwrap()],
//!         allowed_ips: vec![],
//!         not_before: now,
//!         not_after: now + 90 * 86_400,
//!         serial: 1,
//!         chain_p2p: None,
//!     }
//!     .issue(op, &host_key, &mut ChaCha20Rng::seed_from_u64(n.into()))
//!     .unwrap()
//! };
//! let (a1, a2, b1) = (sentry(&alice, 1), sentry(&alice, 2), sentry(&bob, 3));
//!
//! // Each side starts with what the other published (a sealed bundle), and
//! // Alice's first sentry knows her second one; Bob knows nothing of it yet.
//! let mut store = Store::new();
//! store.insert_card(b1.clone(), now)?;
//! store.insert_card(a2.clone(), now)?;
//! let policy = TrustPolicy::new(alice.operator_id(), [bob.operator_id()], 1, overlay.clone())?;
//! let mut a = Mesh::new(a1.clone(), policy, store, now)?;
//! let mut store = Store::new();
//! store.insert_card(a1.clone(), now)?;
//! let policy = TrustPolicy::new(bob.operator_id(), [alice.operator_id()], 1, overlay)?;
//! let mut b = Mesh::new(b1.clone(), policy, store, now)?;
//!
//! // The run loop, twice over: after every input, drain the outputs.
//! let (a_key, b_key) = (a1.card().wg_public_key, b1.card().wg_public_key);
//! loop {
//!     let mut quiet = true;
//!     while let Some((to, bytes)) = a.poll_transmit() {
//!         // Through the tunnel to that peer (Alice's second sentry is not
//!         // running in this example).
//!         if to == b_key {
//!             b.handle_message(a_key, &bytes, now)?;
//!             quiet = false;
//!         }
//!     }
//!     while let Some((to, bytes)) = b.poll_transmit() {
//!         if to == a_key {
//!             a.handle_message(b_key, &bytes, now)?;
//!             quiet = false;
//!         }
//!     }
//!     if quiet {
//!         break;
//!     }
//! }
//!
//! // Bob learned Alice's second sentry from the gossip and peers with it.
//! let added: Vec<_> = std::iter::from_fn(|| b.poll_event())
//!     .filter_map(|event| match event {
//!         PeerEvent::Added(peer) => Some(peer.name),
//!         _ => None,
//!     })
//!     .collect();
//! assert_eq!(added, ["sentry-1", "sentry-2"]);
//! assert!(b.is_admitted_peer(&a2.card().wg_public_key));
//! let state = b.store().encode(); // written atomically to the state directory
//! assert_eq!(Store::decode(&state)?, *b.store());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Proof of possession
//!
//! An admitted operator is a rival, not a friend: without more, it could
//! sign a card naming another operator's WireGuard key, and the hosts that
//! saw that card first would keep it and refuse the real one. So a card
//! carries a proof, made with the host's WireGuard private key, that its
//! issuer holds the key the card names: an XEdDSA signature (Signal's
//! construction, which signs with an X25519 key as it is) over a context
//! string, the operator id and the card's body. [`HostCard::issue`] makes
//! it (`sentrymesh card issue --wg-key FILE` reads the host's key file;
//! [`HostCard::request`] and [`CardRequest::sign`] split it in two, so the
//! host key never leaves the host nor the operator key its machine),
//! and [`SignedCard::decode`] — the one way a card enters a store, a
//! gossip exchange, an opened bundle or a state file — refuses a card
//! without a valid one. The operator's signature covers the proof, so the
//! signed card stays one object. The proof binds the operator id and the
//! whole body, so it cannot be moved to another operator's card, or to
//! another card of the same operator.
//!
//! A card whose key no tunnel can use is refused at decoding too: a key of
//! low order (X25519 with it is zero, so every host that tried to peer
//! with it would be refused by its interface) or a non-canonical encoding
//! (u ≥ 2^255 − 19). A key on the twist has no Edwards point and so can
//! carry no valid proof.
//!
//! Everything signed is encoded canonically ([`DecodeError`] says what is
//! wrong with bytes that are not) and has a printable form ([`armour`]).
//! Parsing never panics, whatever the input.
#![forbid(unsafe_code)]

pub mod armour;
pub mod bundle;
mod card;
mod codec;
mod endpoint;
pub mod gossip;
mod identity;
pub mod introduction;
mod member;
mod nodeos;
mod object;
pub mod overlay;
pub mod peering;
pub mod peers;
mod possession;
mod revocation;
mod role;
#[cfg(any(test, feature = "testing"))]
pub mod sim;
pub mod standing;
mod statement;
pub mod store;
mod trust;
mod vouch;
mod xeddsa;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use bundle::{OpenError, OpenedBundle, SealError, SealedBundle};
pub use card::{
    CardRequest, CardTimeError, HostCard, InvalidCard, MAX_ADDRESSES, MAX_ALLOWED_IPS,
    MAX_CARD_LEN, MAX_ENDPOINTS, MAX_NAME_LEN, ParseCardError, SignCardError, SignedCard,
};
pub use codec::DecodeError;
pub use endpoint::{
    ChainP2p, Endpoint, EndpointError, EndpointHost, MAX_CHAIN_ID_LEN, MAX_DNS_NAME_LEN,
    underlay_address, unreachable_reason,
};
pub use gossip::{Gossip, GossipError, GossipMessage, GossipStats, MessageError, Refusal};
pub use identity::{KeyFileError, OPERATOR_KEY_LEN, OperatorId, OperatorIdError, OperatorSecret};
pub use introduction::{
    CookieReplyError, Introducer, IntroducerStats, IntroductionError, IntroductionReceiver,
    IntroductionStats, Received, SealIntroductionError, seal_introduction,
};
pub use member::{Mesh, MeshError};
pub use nodeos::{MAX_NODEOS_KEY_LEN, NodeosKeyError, NodeosPeerKey};
pub use object::{OBJECT_ID_LEN, Object, ObjectId, ObjectKind, ObjectRef, ParseObjectError};
pub use overlay::{OutOfRange, Overlay, OverlayError};
pub use peering::{may_peer, may_share};
pub use peers::{
    CardRefusal, LocalCardError, LocalConfigError, PERSISTENT_KEEPALIVE, PeerEvent, PeerManager,
    PeerSpec,
};
pub use revocation::{Revocation, RevocationTarget, SignedRevocation, is_host_revoked};
pub use role::{Role, RoleError};
pub use standing::{CardStanding, NoPeer, NoSession};
pub use statement::{ParseStatementError, SignStatementError};
pub use store::{
    HOST_QUOTA, InsertError, Inserted, KeyConflict, MAX_CARDS, MAX_LISTED, STATEMENT_QUOTA,
    StateError, Store, VOUCH_ROOM,
};
pub use trust::{Admission, Admissions, NotAdmitted, PolicyError, TrustPath, TrustPolicy};
pub use vouch::{SignedVouch, Vouch};
