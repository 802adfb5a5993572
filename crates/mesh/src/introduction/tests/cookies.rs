//! Cookies in virtual time: a flood from spoofed sources by someone who
//! knows the recipient's key, a real introducer beside it, and what a
//! cookie does not prove.

use std::net::{Ipv4Addr, SocketAddr};

use super::*;

/// The real introducer's address and port.
const REAL: &str = "198.18.0.5:40000";
/// The recipient's introduction port.
const DESTINATION: &str = "198.18.0.2:51901";

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The `n`th spoofed source, in 198.18.0.0/15.
fn spoofed(n: u32) -> SocketAddr {
    assert!(n < 130_000);
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 4, 0)) + n);
    SocketAddr::new(ip.into(), 1024 + (n % 60_000) as u16)
}

/// A datagram of the shortest introduction's length whose first MAC is
/// right for `recipient` and everything else random: what someone who
/// knows the recipient's key can send for the price of a hash, each with
/// an ephemeral key never seen. Its second MAC is a guess.
fn keyed_junk(recipient: &PublicKey, rng: &mut impl rand_core::RngCore) -> Vec<u8> {
    let mut datagram = vec![0u8; MIN_INTRODUCTION_LEN];
    rng.fill_bytes(&mut datagram);
    datagram[..2].copy_from_slice(&[INTRODUCTION_TYPE, VERSION]);
    let at = datagram.len() - 2 * MAC_LEN;
    let mac1 = mac(&mac_key(recipient), &[&datagram[..at]]);
    datagram[at..at + MAC_LEN].copy_from_slice(&mac1);
    datagram
}

/// Puts `receiver` under load at `now`: keyed junk from spoofed sources
/// until it answers with a cookie reply.
fn load(receiver: &mut IntroductionReceiver, now: UnixTime) {
    let ops = BTreeSet::new();
    let mut junk_rng = rng();
    for n in 0..=CHECKS_PER_SECOND as u32 {
        let junk = keyed_junk(&host_key(2), &mut junk_rng);
        let received =
            receiver.handle_introduction(&junk, spoofed(n), &ops, now, &mut rng(), |_| true);
        if matches!(received, Ok(Received::CookieReply(_))) {
            return;
        }
    }
    panic!("not under load after the open share");
}

/// What handing `bytes` from `source` to `receiver` at `now` gives, with
/// `ops` admitted and no per-source limit.
fn hand(
    receiver: &mut IntroductionReceiver,
    bytes: &[u8],
    source: SocketAddr,
    ops: &BTreeSet<OperatorId>,
    now: UnixTime,
) -> Result<Received, IntroductionError> {
    receiver.handle_introduction(bytes, source, ops, now, &mut rng(), |_| true)
}

/// 100 000 introductions from spoofed sources over ten seconds, by a
/// flooder who knows the recipient's key (every first MAC checks, every
/// ephemeral key is new), and a real introducer in the middle of it: the
/// real one gets a cookie reply, resends at once and is taken in the same
/// second; the flood costs the recipient the open half of the budget a
/// second in key agreements and otherwise only cookie replies, each
/// smaller than what it answers. Before cookies, the flood spent the whole
/// budget in each second's first 256 datagrams and the real introducer
/// found none left, every time.
#[test]
fn a_spoofed_flood_that_knows_the_key_never_locks_a_real_introducer_out() {
    const FLOOD: u32 = 100_000;
    const SECONDS: u32 = 10;
    const PER_SECOND: u32 = FLOOD / SECONDS;
    let alice = operator(1);
    let ops = admitted(&[&alice]);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let recipient = host_key(2);
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    let mut introducer = Introducer::new();
    let mut flood_rng = rng();
    let mut reply_rng = rng();
    let mut accepted_at = None;
    let mut largest_reply = 0;
    for n in 0..FLOOD {
        let now = NOW + u64::from(n / PER_SECOND);
        let junk = keyed_junk(&recipient, &mut flood_rng);
        match receiver.handle_introduction(&junk, spoofed(n), &ops, now, &mut reply_rng, |_| true) {
            Ok(Received::CookieReply(reply)) => largest_reply = largest_reply.max(reply.len()),
            Ok(Received::Card(_)) => panic!("junk taken"),
            Err(_) => {}
        }
        // Halfway through the second second, the real introducer sends;
        // it would try again five seconds later.
        let attempt_due = n % PER_SECOND == PER_SECOND / 2 && (n / PER_SECOND) % 5 == 1;
        if accepted_at.is_some() || !attempt_due {
            continue;
        }
        let mut message = introducer
            .seal(&sentry, &recipient, addr(DESTINATION), now, &mut rng())
            .unwrap();
        while let Ok(received) = hand(&mut receiver, &message, addr(REAL), &ops, now) {
            match received {
                Received::Card(card) => {
                    assert_eq!(card, sentry);
                    accepted_at = Some(now);
                    break;
                }
                Received::CookieReply(reply) => {
                    assert!(reply.len() < message.len());
                    let from = introducer.handle_cookie_reply(addr(DESTINATION), &reply, now);
                    assert_eq!(from, Ok(recipient));
                    assert!(introducer.stats().sealed < 10, "a loop of cookie replies");
                    message = introducer
                        .seal(&sentry, &recipient, addr(DESTINATION), now, &mut rng())
                        .unwrap();
                }
            }
        }
    }
    let stats = receiver.stats();
    let sent = introducer.stats();
    eprintln!(
        "{FLOOD} spoofed introductions in {SECONDS} s: {} key agreements, {} cookie replies \
         (at most {largest_reply} bytes, answering {MIN_INTRODUCTION_LEN}); the real \
         introducer sealed {} introductions, {} with a cookie",
        stats.key_agreements, stats.cookie_replies, sent.sealed, sent.with_cookie
    );
    assert_eq!(
        accepted_at,
        Some(NOW + 1),
        "taken in the second it first sent"
    );
    assert_eq!(
        (sent.sealed, sent.with_cookie, sent.cookies_taken),
        (2, 1, 1)
    );
    let open_share = CHECKS_PER_SECOND - RESERVED_FOR_PROVEN;
    assert!(
        stats.key_agreements <= u64::from(SECONDS) * open_share + 1,
        "{stats:?}"
    );
    // Each datagram of the flood cost an agreement from the open share,
    // or a cookie reply; the real introducer one of each.
    assert_eq!(
        stats.key_agreements + stats.cookie_replies,
        u64::from(FLOOD) + 2
    );
    assert_eq!(stats.not_for_us, stats.key_agreements - 1);
    assert!(largest_reply > 0 && largest_reply < MIN_INTRODUCTION_LEN);
    assert_eq!((stats.accepted, stats.proven), (1, 1));
}

/// Under load, an introduction from the real introducer's address gets a
/// cookie reply; the cookie's MAC proves nothing from another port or
/// address, where it is answered with a cookie reply again and not
/// opened.
#[test]
fn a_cookie_for_one_source_does_not_work_from_another() {
    let alice = operator(1);
    let ops = admitted(&[&alice]);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    let mut introducer = Introducer::new();
    load(&mut receiver, NOW);
    let first = introducer
        .seal(&sentry, &host_key(2), addr(DESTINATION), NOW, &mut rng())
        .unwrap();
    let Ok(Received::CookieReply(reply)) = hand(&mut receiver, &first, addr(REAL), &ops, NOW)
    else {
        panic!("no cookie reply under load");
    };
    introducer
        .handle_cookie_reply(addr(DESTINATION), &reply, NOW)
        .unwrap();
    let agreements = receiver.stats().key_agreements;
    for elsewhere in [
        "198.18.0.5:40001",
        "198.18.0.6:40000",
        "[2001:db8::5]:40000",
    ] {
        let with_cookie = introducer
            .seal(&sentry, &host_key(2), addr(DESTINATION), NOW, &mut rng())
            .unwrap();
        assert!(
            matches!(
                hand(&mut receiver, &with_cookie, addr(elsewhere), &ops, NOW),
                Ok(Received::CookieReply(_))
            ),
            "from {elsewhere}"
        );
    }
    assert_eq!(receiver.stats().key_agreements, agreements);
    assert_eq!(receiver.stats().proven, 0);
    let with_cookie = introducer
        .seal(&sentry, &host_key(2), addr(DESTINATION), NOW, &mut rng())
        .unwrap();
    assert_eq!(
        hand(&mut receiver, &with_cookie, addr(REAL), &ops, NOW),
        Ok(Received::Card(sentry))
    );
}

/// A cookie is refused once the secret it was made with is
/// [`COOKIE_LIFETIME`] old, even by a sender that still holds it; the
/// sender gets a fresh one and gets in. The sender itself stops using a
/// cookie that old.
#[test]
fn an_expired_cookie_is_refused() {
    let alice = operator(1);
    let ops = admitted(&[&alice]);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    let mut introducer = Introducer::new();
    load(&mut receiver, NOW);
    let first = introducer
        .seal(&sentry, &host_key(2), addr(DESTINATION), NOW, &mut rng())
        .unwrap();
    let Ok(Received::CookieReply(reply)) = hand(&mut receiver, &first, addr(REAL), &ops, NOW)
    else {
        panic!("no cookie reply under load");
    };
    introducer
        .handle_cookie_reply(addr(DESTINATION), &reply, NOW)
        .unwrap();

    let later = NOW + COOKIE_LIFETIME;
    load(&mut receiver, later);
    // Sealed a second before the sender's copy expires, received when the
    // receiver's secret has.
    let stale = introducer
        .seal(
            &sentry,
            &host_key(2),
            addr(DESTINATION),
            later - 1,
            &mut rng(),
        )
        .unwrap();
    assert_eq!(introducer.stats().with_cookie, 1);
    let Ok(Received::CookieReply(fresh)) = hand(&mut receiver, &stale, addr(REAL), &ops, later)
    else {
        panic!("an expired cookie was taken");
    };
    assert_eq!(receiver.stats().proven, 0);
    introducer
        .handle_cookie_reply(addr(DESTINATION), &fresh, later)
        .unwrap();
    let renewed = introducer
        .seal(&sentry, &host_key(2), addr(DESTINATION), later, &mut rng())
        .unwrap();
    assert_eq!(
        hand(&mut receiver, &renewed, addr(REAL), &ops, later),
        Ok(Received::Card(sentry.clone()))
    );
    // The sender's own copy expires too: sealed COOKIE_LIFETIME after it
    // came, an introduction carries no cookie MAC.
    let with_cookie = introducer.stats().with_cookie;
    introducer
        .seal(
            &sentry,
            &host_key(2),
            addr(DESTINATION),
            later + COOKIE_LIFETIME - 1,
            &mut rng(),
        )
        .unwrap();
    introducer
        .seal(
            &sentry,
            &host_key(2),
            addr(DESTINATION),
            later + COOKIE_LIFETIME,
            &mut rng(),
        )
        .unwrap();
    assert_eq!(introducer.stats().with_cookie, with_cookie + 1);
}

/// A proved source that floods is held by the caller's per-source limiter
/// (here one that allows five), and only introductions that proved their
/// source are put to it.
#[test]
fn a_flood_from_one_proved_source_is_held_by_the_per_source_limiter() {
    let alice = operator(1);
    let ops = admitted(&[&alice]);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    let mut introducer = Introducer::new();
    let mut asked = 0u32;
    load(&mut receiver, NOW);
    let first = introducer
        .seal(&sentry, &host_key(2), addr(DESTINATION), NOW, &mut rng())
        .unwrap();
    let Ok(Received::CookieReply(reply)) =
        receiver.handle_introduction(&first, addr(REAL), &ops, NOW, &mut rng(), |_| {
            asked += 1;
            true
        })
    else {
        panic!("no cookie reply under load");
    };
    assert_eq!(asked, 0, "an unproved source is not put to the limiter");
    introducer
        .handle_cookie_reply(addr(DESTINATION), &reply, NOW)
        .unwrap();
    let agreements = receiver.stats().key_agreements;
    for _ in 0..50 {
        let message = introducer
            .seal(&sentry, &host_key(2), addr(DESTINATION), NOW, &mut rng())
            .unwrap();
        let _ =
            receiver.handle_introduction(&message, addr(REAL), &ops, NOW, &mut rng(), |source| {
                assert_eq!(source, addr(REAL).ip());
                asked += 1;
                asked <= 5
            });
    }
    let stats = receiver.stats();
    assert_eq!((stats.proven, stats.rate_limited), (50, 45));
    assert_eq!(stats.key_agreements - agreements, 5);
    assert_eq!(stats.accepted, 1, "the others are replays of its timestamp");
}

/// The sender takes a cookie only from the address its last introduction
/// went to, answering that introduction, once.
#[test]
fn the_introducer_takes_only_a_reply_to_its_last_introduction() {
    let alice = operator(1);
    let ops = admitted(&[&alice]);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    let mut introducer = Introducer::new();
    load(&mut receiver, NOW);
    let older = introducer
        .seal(&sentry, &host_key(2), addr(DESTINATION), NOW, &mut rng())
        .unwrap();
    let Ok(Received::CookieReply(to_older)) = hand(&mut receiver, &older, addr(REAL), &ops, NOW)
    else {
        panic!("no cookie reply under load");
    };
    assert_eq!(
        introducer.handle_cookie_reply(addr("198.18.0.3:51901"), &to_older, NOW),
        Err(CookieReplyError::Unexpected)
    );
    let last = introducer
        .seal(&sentry, &host_key(2), addr(DESTINATION), NOW, &mut rng())
        .unwrap();
    assert_eq!(
        introducer.handle_cookie_reply(addr(DESTINATION), &to_older, NOW),
        Err(CookieReplyError::NotAuthentic),
        "it answers an older introduction"
    );
    load(&mut receiver, NOW + 1);
    let Ok(Received::CookieReply(reply)) = hand(&mut receiver, &last, addr(REAL), &ops, NOW + 1)
    else {
        panic!("no cookie reply under load");
    };
    for at in 0..reply.len() {
        let mut altered = reply.clone();
        altered[at] ^= 0x40;
        assert!(
            introducer
                .handle_cookie_reply(addr(DESTINATION), &altered, NOW)
                .is_err(),
            "byte {at}"
        );
    }
    assert!(matches!(
        introducer.handle_cookie_reply(addr(DESTINATION), &reply[1..], NOW),
        Err(CookieReplyError::Malformed(_))
    ));
    assert_eq!(
        introducer.handle_cookie_reply(addr(DESTINATION), &reply, NOW),
        Ok(host_key(2))
    );
    assert_eq!(
        introducer.handle_cookie_reply(addr(DESTINATION), &reply, NOW),
        Err(CookieReplyError::Unexpected),
        "taken once"
    );
    let shown = format!("{introducer:?}");
    assert!(!shown.contains(&host_key(2).to_string()), "{shown}");
}

/// A recipient forgotten (no peer any more) is held no more: a reply to
/// the introduction sealed to it is unexpected.
#[test]
fn a_forgotten_recipient_is_answered_by_nothing() {
    let alice = operator(1);
    let ops = admitted(&[&alice]);
    let sentry = signed(&alice, "sentry-1", Role::Sentry);
    let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
    let mut introducer = Introducer::new();
    load(&mut receiver, NOW);
    let sealed = introducer
        .seal(&sentry, &host_key(2), addr(DESTINATION), NOW, &mut rng())
        .unwrap();
    let Ok(Received::CookieReply(reply)) = hand(&mut receiver, &sealed, addr(REAL), &ops, NOW)
    else {
        panic!("no cookie reply under load");
    };
    introducer.forget(&host_key(3));
    introducer.forget(&host_key(2));
    assert_eq!(
        format!("{introducer:?}").matches("recipients: 0").count(),
        1
    );
    assert_eq!(
        introducer.handle_cookie_reply(addr(DESTINATION), &reply, NOW),
        Err(CookieReplyError::Unexpected)
    );
}

proptest::proptest! {
    /// Whatever arrives at the introduction port, under load or not, or
    /// where the introducer's cookie replies arrive, is dropped or answered,
    /// never a panic; a cookie reply is never longer than what it answers.
    #[test]
    fn arbitrary_datagrams_never_panic(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        shape in 0..3u8,
        under_load: bool,
    ) {
        let mut bytes = body;
        match shape {
            // An introduction's type and version, then anything.
            1 if bytes.len() >= 2 => bytes[..2].copy_from_slice(&[INTRODUCTION_TYPE, VERSION]),
            // A cookie reply's type and version, at its length.
            2 => {
                bytes.resize(COOKIE_REPLY_LEN, 0);
                bytes[..2].copy_from_slice(&[COOKIE_REPLY_TYPE, VERSION]);
            }
            _ => {}
        }
        let ops = admitted(&[&operator(1)]);
        let mut receiver = IntroductionReceiver::new(&host_secret(2), NOW);
        if under_load {
            load(&mut receiver, NOW);
        }
        if let Ok(Received::CookieReply(reply)) =
            hand(&mut receiver, &bytes, addr(REAL), &ops, NOW)
        {
            proptest::prop_assert!(reply.len() < bytes.len());
        }
        let mut introducer = Introducer::new();
        let sentry = signed(&operator(1), "sentry-1", Role::Sentry);
        introducer
            .seal(&sentry, &host_key(2), addr(DESTINATION), NOW, &mut rng())
            .unwrap();
        proptest::prop_assert!(introducer
            .handle_cookie_reply(addr(DESTINATION), &bytes, NOW)
            .is_err());
    }
}
