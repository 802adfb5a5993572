//! What the mesh holds on the heap for idle peers and for revoked hosts
//! (issue 14, point 4), counted by the allocator, not read from the
//! process's resident memory: exact, and the same on a busy machine.
//!
//! A member trusting four more operators takes 1,000 cards of theirs
//! (250 each, within the store's quota per operator), as its daemon does:
//! every event and every message it queues is taken. Each card makes a
//! peer; its heap per peer is bounded by [`MAX_BYTES_PER_PEER`]. Then the
//! four operators revoke the 1,000 hosts: what the mesh still holds of
//! each is what it must keep, the revocation and what the store keeps of
//! the revoked public card (its operator, expiry and signed encoding)
//! until it expires (see the store's docs), bounded by
//! [`MAX_BYTES_KEPT_PER_REVOKED`]; once the cards have expired, that goes
//! too ([`MAX_BYTES_LEFT_AFTER_EXPIRY`]).
//!
//! The daemon's share (the engine's peer, the interface's tables) is
//! measured by `daemon/tests/idle_peers.rs`, in resident memory, with the
//! pages the allocator cannot give back.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sentrymesh_mesh::{
    HostCard, Mesh, Object, ObjectKind, OperatorSecret, Overlay, Revocation, RevocationTarget,
    Role, SignedCard, Store, TrustPolicy,
};
use sentrymesh_types::{IpNet, PrivateKey, PublicKey, UnixTime};

/// The extra hosts, and how many operators sign their cards.
const EXTRA_HOSTS: usize = 1_000;
const EXTRA_OPERATORS: u8 = 4;
/// The most heap the mesh may hold for an idle peer: measured at 2,492
/// bytes (its card in the store and the index of its id, the peer
/// manager's spec and indices of it, gossip's neighbour entry).
const MAX_BYTES_PER_PEER: usize = 2_700;
/// The most heap the mesh may keep of a revoked host: measured at 1,424
/// bytes (the revocation, parsed and encoded, its id and indices, its
/// tombstone; of the revoked card kept aside, only its operator, its
/// `not_after` and its signed encoding, for the state file; gossip's
/// record of the revocation). Keeping the parsed card aside too took
/// 1,823.
const MAX_BYTES_KEPT_PER_REVOKED: usize = 1_600;
/// The most heap the mesh may still hold of a revoked host once its card
/// expired, and with it the need to keep the revocation.
const MAX_BYTES_LEFT_AFTER_EXPIRY: usize = 64;
/// The time of the test, in Unix seconds.
const NOW: UnixTime = UnixTime(1_800_000_000);

/// The bytes allocated and not yet freed, counted by [`Counting`].
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The system's allocator, counting what is live.
struct Counting;

// SAFETY: every call goes to `System` with the caller's arguments, so
// `System`'s guarantees are this allocator's; the count is a side effect.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract:
        // `ptr` came from this allocator, that is from `System`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn operator(n: u8) -> OperatorSecret {
    OperatorSecret::from_seed([n; 32])
}

fn net(text: &str) -> IpNet {
    text.parse().expect("a network")
}

/// The card of host `index` of the operator `n`, with key seed `seed`: a
/// sentry in the operator's range 198.19.n.0/24.
fn card(operator: &OperatorSecret, n: u8, index: u8, seed: u8) -> (PublicKey, SignedCard) {
    let key = PrivateKey::from_bytes([seed, n, index, 0x3c].repeat(8).try_into().unwrap());
    let card = HostCard {
        operator: operator.operator_id(),
        name: format!("e{n}-sentry-{index}"),
        role: Role::Sentry,
        wg_public_key: key.public_key(),
        addresses: vec![format!("198.19.{n}.{index}/32").parse().unwrap()],
        endpoints: vec![format!("198.18.{}.{index}:51820", 127 + n).parse().unwrap()],
        allowed_ips: Vec::new(),
        not_before: UnixTime(NOW.0 - 60),
        not_after: UnixTime(NOW.0 + 86_400),
        serial: 1,
        chain_p2p: None,
    };
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let signed = card.issue(operator, &key, &mut rng).unwrap();
    (key.public_key(), signed)
}

/// An object as it crosses the network: its kind and its encoding.
fn encoded(object: Object) -> (ObjectKind, Vec<u8>) {
    (object.kind(), object.as_bytes().to_vec())
}

/// Takes everything the member queued, as the daemon's loop does.
fn drain(mesh: &mut Mesh) {
    while mesh.poll_event().is_some() {}
    while mesh.poll_transmit().is_some() {}
    while mesh.poll_refusal().is_some() {}
    while mesh.poll_card_refusal().is_some() {}
}

#[test]
fn the_mesh_keeps_little_of_idle_peers_and_of_revoked_hosts() {
    let local = operator(1);
    let extra: Vec<OperatorSecret> = (0..EXTRA_OPERATORS).map(|n| operator(10 + n)).collect();
    let ranges = std::iter::once((local.operator_id(), net("198.19.1.0/24"))).chain(
        extra
            .iter()
            .zip(10u8..)
            .map(|(op, n)| (op.operator_id(), net(&format!("198.19.{n}.0/24")))),
    );
    let overlay = Overlay::new(net("198.19.0.0/16"), ranges).unwrap();
    let policy = TrustPolicy::new(
        local.operator_id(),
        extra.iter().map(OperatorSecret::operator_id),
        1,
        overlay,
    )
    .unwrap();
    let (_, own) = card(&local, 1, 1, 1);
    let mut mesh = Mesh::new(own, policy, Store::new(), NOW).unwrap();

    // Made before the counting starts: the objects the peers bring, as
    // the bytes they arrive as (decoded in the count, as gossip does).
    let per_operator = EXTRA_HOSTS / usize::from(EXTRA_OPERATORS);
    let mut cards = Vec::new();
    let mut revocations = Vec::new();
    for (op, n) in extra.iter().zip(10u8..) {
        for index in 1..=per_operator {
            let index = u8::try_from(index).unwrap();
            let (key, card) = card(op, n, index, 2);
            cards.push(encoded(card.into()));
            let revocation = Revocation {
                issuer: op.operator_id(),
                target: RevocationTarget::Host(key),
                issued_at: NOW,
            }
            .sign(op)
            .unwrap();
            revocations.push(encoded(revocation.into()));
        }
    }
    drain(&mut mesh);

    let before = LIVE.load(Ordering::Relaxed);
    for (kind, bytes) in &cards {
        mesh.insert(Object::decode(*kind, bytes).unwrap(), NOW)
            .unwrap();
        drain(&mut mesh);
    }
    assert_eq!(mesh.peers().count(), EXTRA_HOSTS);
    let with_peers = LIVE.load(Ordering::Relaxed);
    let per_peer = with_peers.saturating_sub(before) / EXTRA_HOSTS;
    eprintln!("the mesh's heap: {per_peer} bytes per idle peer");
    assert!(
        per_peer <= MAX_BYTES_PER_PEER,
        "{per_peer} bytes per idle peer, more than {MAX_BYTES_PER_PEER}"
    );

    for (kind, bytes) in &revocations {
        mesh.insert(Object::decode(*kind, bytes).unwrap(), NOW)
            .unwrap();
        drain(&mut mesh);
    }
    assert_eq!(mesh.peers().count(), 0);
    assert_eq!(mesh.store().revocations().count(), EXTRA_HOSTS);
    let after = LIVE.load(Ordering::Relaxed);
    let kept = after.saturating_sub(before) / EXTRA_HOSTS;
    eprintln!("after their revocation: {kept} bytes per revoked host");
    assert!(
        kept <= MAX_BYTES_KEPT_PER_REVOKED,
        "{kept} bytes kept per revoked host, more than {MAX_BYTES_KEPT_PER_REVOKED}"
    );

    // Once the revoked cards have expired, the revocations need not stand
    // any more: the member's timers drop both, and the rest comes back.
    let expired = UnixTime(NOW.0 + 86_400 + 1);
    while mesh.poll_timeout().is_some_and(|at| at <= expired) {
        mesh.handle_timeout(expired);
        drain(&mut mesh);
    }
    assert_eq!(mesh.store().revocations().count(), 0);
    let pruned = LIVE.load(Ordering::Relaxed);
    let left = pruned.saturating_sub(before) / EXTRA_HOSTS;
    eprintln!("after their cards expired: {left} bytes per revoked host");
    assert!(
        left <= MAX_BYTES_LEFT_AFTER_EXPIRY,
        "{left} bytes left per revoked host once its card expired, more than \
         {MAX_BYTES_LEFT_AFTER_EXPIRY}"
    );
}
