//! Tests of sealing and opening introductions, including what a rival
//! operator, a flooder or someone on the path might send.

use std::cell::Cell;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore as _, SeedableRng};

use super::*;
use crate::identity::OperatorSecret;
use crate::role::Role;
use crate::testing::{NOW, SignCard, card, operator};

/// A new RNG at each call, the same sequence of them in every run of a
/// test: two introductions sealed with two of them have two ephemeral keys.
fn rng() -> ChaCha20Rng {
    thread_local!(static CALLS: Cell<u64> = const { Cell::new(0) });
    let call = CALLS.with(|calls| calls.replace(calls.get() + 1));
    ChaCha20Rng::seed_from_u64(17 + call)
}

fn signed(op: &OperatorSecret, name: &str, role: Role) -> SignedCard {
    card(op, name, role).sign(op).unwrap()
}

/// The WireGuard private key of test host `n`.
fn host_secret(n: u8) -> [u8; 32] {
    [n; 32]
}

/// The WireGuard public key of test host `n`.
fn host_key(n: u8) -> PublicKey {
    let secret = x25519_dalek::StaticSecret::from(host_secret(n));
    PublicKey::from_bytes(x25519_dalek::PublicKey::from(&secret).to_bytes())
}

fn admitted(ops: &[&OperatorSecret]) -> BTreeSet<OperatorId> {
    ops.iter().map(|op| op.operator_id()).collect()
}

/// Where the introductions of these tests come from.
const SOURCE: &str = "198.18.0.9:40000";

/// The card in `bytes`, handed to `receiver` at `now` from [`SOURCE`]
/// with no per-source limit; a cookie reply fails the test.
fn take(
    receiver: &mut IntroductionReceiver,
    bytes: &[u8],
    ops: &BTreeSet<OperatorId>,
    now: UnixTime,
) -> Result<SignedCard, IntroductionError> {
    let source = SOURCE.parse().unwrap();
    match receiver.handle_introduction(bytes, source, ops, now, &mut rng(), |_| true)? {
        Received::Card(card) => Ok(card),
        Received::CookieReply(_) => panic!("a cookie reply, under no load"),
    }
}

#[test]
fn the_recipient_opens_it_after_one_agreement_and_one_signature_check() {
    let alice = operator(1);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let sealed = seal_introduction(&sentry, &host_key(2), NOW, &mut rng()).unwrap();
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    let opened = take(&mut receiver, &sealed, &admitted(&[&alice]), NOW + 1).unwrap();
    assert_eq!(opened, sentry);
    let stats = receiver.stats();
    assert_eq!(
        (stats.accepted, stats.key_agreements, stats.signature_checks),
        (1, 1, 1)
    );
}

#[test]
fn nothing_that_names_the_host_is_in_the_clear() {
    let alice = operator(1);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let seeded = || ChaCha20Rng::seed_from_u64(17);
    let sealed = seal_introduction(&sentry, &host_key(2), NOW, &mut seeded()).unwrap();
    let c = sentry.card();
    let recipient = host_key(2);
    let needles: [&[u8]; 5] = [
        c.operator.as_bytes(),
        c.wg_public_key.as_bytes(),
        c.name.as_bytes(),
        &sentry.as_bytes()[..40],
        recipient.as_bytes(),
    ];
    for needle in needles {
        assert!(!sealed.windows(needle.len()).any(|w| w == needle));
    }
    // Not a WireGuard message, and a length that is a whole number of
    // blocks.
    assert_eq!((sealed[0], sealed[1]), (INTRODUCTION_TYPE, VERSION));
    assert_eq!(
        (sealed.len() - HEADER_LEN - TAG_LEN - 2 * MAC_LEN) % PAD_TO,
        0
    );
    let again = seal_introduction(&sentry, &host_key(2), NOW, &mut seeded()).unwrap();
    let other = seal_introduction(
        &sentry,
        &host_key(2),
        NOW,
        &mut ChaCha20Rng::seed_from_u64(18),
    )
    .unwrap();
    assert_eq!(sealed, again, "deterministic for one RNG");
    assert_ne!(
        sealed[2..34],
        other[2..34],
        "a fresh ephemeral key each time"
    );
}

#[test]
fn another_host_and_the_sender_itself_drop_it_for_the_cost_of_a_hash() {
    let alice = operator(1);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let sealed = seal_introduction(&sentry, &host_key(2), NOW, &mut rng()).unwrap();
    for other in [3, 1] {
        let mut receiver = IntroductionReceiver::new(&host_secret(other), NOW);
        assert_eq!(
            take(&mut receiver, &sealed, &admitted(&[&alice]), NOW),
            Err(IntroductionError::BadMac),
            "host {other}"
        );
        assert_eq!(receiver.stats().bad_mac, 1);
        assert_eq!(receiver.stats().key_agreements, 0);
    }
}

#[test]
fn a_mac_for_this_host_over_what_was_sealed_to_another_does_not_decrypt() {
    let alice = operator(1);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let mut sealed = seal_introduction(&sentry, &host_key(3), NOW, &mut rng()).unwrap();
    sealed.truncate(sealed.len() - 2 * MAC_LEN);
    let remac = mac(&mac_key(&host_key(2)), &[&sealed]);
    sealed.extend_from_slice(&remac);
    sealed.extend_from_slice(&[0; MAC_LEN]);
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    assert_eq!(
        take(&mut receiver, &sealed, &admitted(&[&alice]), NOW),
        Err(IntroductionError::NotForUs)
    );
    let stats = receiver.stats();
    assert_eq!((stats.not_for_us, stats.signature_checks), (1, 0));
}

#[test]
fn any_altered_byte_is_refused_before_the_key_agreement() {
    let alice = operator(1);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let sealed = seal_introduction(&sentry, &host_key(2), NOW, &mut rng()).unwrap();
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    // The second MAC is read only under load (see the cookie tests).
    for at in 0..sealed.len() - MAC_LEN {
        let mut altered = sealed.clone();
        altered[at] ^= 0x40;
        let result = take(&mut receiver, &altered, &admitted(&[&alice]), NOW);
        assert!(
            matches!(
                result,
                Err(IntroductionError::BadMac | IntroductionError::Malformed(_))
            ),
            "byte {at}: {result:?}"
        );
        assert_eq!(receiver.stats().key_agreements, 0, "byte {at}");
    }
    for len in [
        0,
        1,
        MIN_INTRODUCTION_LEN - 1,
        sealed.len() - 1,
        sealed.len() + 1,
    ] {
        let mut resized = sealed.clone();
        resized.resize(len, 0);
        assert!(matches!(
            take(&mut receiver, &resized, &admitted(&[&alice]), NOW),
            Err(IntroductionError::Malformed(_))
        ));
    }
    let huge = vec![INTRODUCTION_TYPE; MAX_INTRODUCTION_LEN + PAD_TO];
    assert!(matches!(
        take(&mut receiver, &huge, &admitted(&[&alice]), NOW),
        Err(IntroductionError::Malformed(DecodeError::TooLong { .. }))
    ));
    assert_eq!(
        receiver.stats().key_agreements,
        0,
        "length is checked first"
    );
}

#[test]
fn a_replay_or_an_older_introduction_is_refused_before_its_signature_check() {
    let alice = operator(1);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let ops = admitted(&[&alice]);
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    let mut rng = rng();
    let first = seal_introduction(&sentry, &host_key(2), NOW, &mut rng).unwrap();
    assert!(take(&mut receiver, &first, &ops, NOW).is_ok());
    assert_eq!(
        take(&mut receiver, &first, &ops, NOW + 5),
        Err(IntroductionError::Replayed)
    );
    let older = seal_introduction(&sentry, &host_key(2), NOW - 5, &mut rng).unwrap();
    assert_eq!(
        take(&mut receiver, &older, &ops, NOW + 5),
        Err(IntroductionError::Replayed)
    );
    let stats = receiver.stats();
    assert_eq!(stats.signature_checks, 1);
    assert_eq!(stats.replayed, 2);
    assert_eq!(
        stats.key_agreements, 2,
        "the exact replay cost no agreement, the older one did"
    );
    let newer = seal_introduction(&sentry, &host_key(2), NOW + 5, &mut rng).unwrap();
    assert!(take(&mut receiver, &newer, &ops, NOW + 5).is_ok());
    // A forgery naming the sentry with a later timestamp fails its
    // signature check, and does not move the sentry's timestamp on.
    let mut forged = sentry.as_bytes().to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let header = Header {
        operator: alice.operator_id(),
        wg_key: sentry.card().wg_public_key,
        timestamp: NOW + 100,
    };
    let forgery = seal_unchecked(&header, &forged, &host_key(2), &mut rng).unwrap();
    assert!(matches!(
        take(&mut receiver, &forgery, &ops, NOW + 10),
        Err(IntroductionError::BadCard(_))
    ));
    let later = seal_introduction(&sentry, &host_key(2), NOW + 10, &mut rng).unwrap();
    assert!(take(&mut receiver, &later, &ops, NOW + 10).is_ok());
}

#[test]
fn a_non_admitted_operator_is_dropped_without_a_signature_check() {
    let (alice, mallory) = (operator(1), operator(4));
    let rival = signed(&mallory, "sentry-9", Role::Sentry);
    let sealed = seal_introduction(&rival, &host_key(2), NOW, &mut rng()).unwrap();
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    assert_eq!(
        take(&mut receiver, &sealed, &admitted(&[&alice]), NOW),
        Err(IntroductionError::NotAdmitted {
            operator: mallory.operator_id()
        })
    );
    // Claiming an admitted operator does not help a card signed by another.
    let header = Header {
        operator: alice.operator_id(),
        wg_key: rival.card().wg_public_key,
        timestamp: NOW,
    };
    let claimed = seal_unchecked(&header, rival.as_bytes(), &host_key(2), &mut rng()).unwrap();
    assert_eq!(
        take(&mut receiver, &claimed, &admitted(&[&alice]), NOW),
        Err(IntroductionError::Mismatch)
    );
    let stats = receiver.stats();
    assert_eq!(
        (stats.not_admitted, stats.bad_card, stats.signature_checks),
        (1, 1, 1),
        "the first was dropped before its signature was checked"
    );
}

#[test]
fn timestamps_beyond_the_clock_skew_are_refused() {
    let alice = operator(1);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    for (sealed_at, accepted) in [
        (NOW - CLOCK_SKEW - 1, false),
        (NOW + CLOCK_SKEW + 1, false),
        (NOW - CLOCK_SKEW, true),
    ] {
        let sealed = seal_introduction(&sentry, &host_key(2), sealed_at, &mut rng()).unwrap();
        let result = take(&mut receiver, &sealed, &admitted(&[&alice]), NOW);
        assert_eq!(result.is_ok(), accepted, "{result:?}");
    }
    assert_eq!(receiver.stats().stale, 2);
}

#[test]
fn hidden_hosts_are_never_sealed_nor_taken() {
    let alice = operator(1);
    for role in [Role::Producer, Role::Bios] {
        let hidden = signed(&alice, "hidden", role);
        assert!(matches!(
            seal_introduction(&hidden, &host_key(2), NOW, &mut rng()),
            Err(SealIntroductionError::HiddenRole { .. })
        ));
        let header = Header {
            operator: alice.operator_id(),
            wg_key: hidden.card().wg_public_key,
            timestamp: NOW,
        };
        let sealed = seal_unchecked(&header, hidden.as_bytes(), &host_key(2), &mut rng()).unwrap();
        let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
        assert_eq!(
            take(&mut receiver, &sealed, &admitted(&[&alice]), NOW),
            Err(IntroductionError::HiddenRole)
        );
    }
}

#[test]
fn an_introduction_with_the_recipients_own_key_is_refused() {
    let alice = operator(1);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let header = Header {
        operator: alice.operator_id(),
        wg_key: host_key(2),
        timestamp: NOW,
    };
    let sealed = seal_unchecked(&header, sentry.as_bytes(), &host_key(2), &mut rng()).unwrap();
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    assert_eq!(
        take(&mut receiver, &sealed, &admitted(&[&alice]), NOW),
        Err(IntroductionError::OwnKey)
    );
    assert_eq!(receiver.stats().signature_checks, 0);
}

#[test]
fn a_low_order_recipient_key_is_refused() {
    let sentry = signed(&operator(1), "sentry-1", Role::Sentry);
    assert_eq!(
        seal_introduction(&sentry, &PublicKey::from_bytes([0; 32]), NOW, &mut rng()),
        Err(SealIntroductionError::LowOrderRecipient)
    );
}

/// 100 000 datagrams from a flooder who does not know this host's key (as
/// many spoofed sources as the daemon's per-source limiter lets through, one
/// each) cost a hash each and nothing from the budget: a real introduction
/// in the same second is taken.
#[test]
fn a_flood_without_the_key_costs_no_check_and_a_real_introduction_gets_through() {
    let alice = operator(1);
    let ops = admitted(&[&alice]);
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    let mut flood_rng = rng();
    let mut datagram = vec![0u8; MIN_INTRODUCTION_LEN + PAD_TO];
    for _ in 0..100_000 {
        flood_rng.fill_bytes(&mut datagram);
        datagram[..2].copy_from_slice(&[INTRODUCTION_TYPE, VERSION]);
        assert_eq!(
            take(&mut receiver, &datagram, &ops, NOW),
            Err(IntroductionError::BadMac)
        );
    }
    let stats = receiver.stats();
    assert_eq!((stats.bad_mac, stats.key_agreements), (100_000, 0));
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let real = seal_introduction(&sentry, &host_key(2), NOW, &mut rng()).unwrap();
    assert_eq!(take(&mut receiver, &real, &ops, NOW), Ok(sentry));
}

#[test]
fn the_tables_of_hosts_and_ephemeral_keys_are_bounded_and_forget_the_oldest() {
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    let key = |n: usize| {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
        PublicKey::from_bytes(bytes)
    };
    for n in 0..MAX_REMEMBERED_HOSTS + 10 {
        receiver.remember(key(n), NOW + n as u64);
    }
    assert_eq!(receiver.last_seen.len(), MAX_REMEMBERED_HOSTS);
    assert_eq!(receiver.by_time.len(), MAX_REMEMBERED_HOSTS);
    assert!(!receiver.last_seen.contains_key(&key(9)));
    assert!(receiver.last_seen.contains_key(&key(10)));
    receiver.remember(key(10), NOW + 1_000_000);
    assert_eq!(receiver.by_time.len(), MAX_REMEMBERED_HOSTS);
    let prefix = |n: usize| ephemeral_prefix(key(n).as_bytes());
    for n in 0..MAX_REMEMBERED_EPHEMERALS + 10 {
        receiver.remember_ephemeral(prefix(n));
    }
    receiver.remember_ephemeral(prefix(MAX_REMEMBERED_EPHEMERALS));
    assert_eq!(receiver.ephemerals.len(), MAX_REMEMBERED_EPHEMERALS);
    assert_eq!(receiver.ephemerals_by_age.len(), MAX_REMEMBERED_EPHEMERALS);
    assert!(!receiver.ephemerals.contains(&prefix(9)));
    assert!(receiver.ephemerals.contains(&prefix(10)));
}

#[test]
fn debug_shows_no_key() {
    let receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    let shown = format!("{receiver:?}");
    assert!(!shown.contains(&host_key(2).to_string()), "{shown}");
    assert!(!shown.contains("secret"), "{shown}");
}

mod cookies;
