//! The protocol's timers under virtual time: handshake retries and giving up,
//! passive and persistent keepalives, rekeying by time on send and on
//! receive, rejection after `REJECT_AFTER_TIME`, erasing keys after
//! `3 × REJECT_AFTER_TIME`, and the responder's wait for confirmation.
//!
//! Every expectation is the Linux kernel's (`timers.c`, `send.c`,
//! `receive.c`, `noise.c`), which wireguard-go shares, and each test pins
//! exact message types and virtual send times.

use std::time::Duration;

use sentrymesh_tunnel::sim::{DATA, INITIATION, Pair, RESPONSE, Side, ipv4_packet};
use sentrymesh_tunnel::timers::{
    KEEPALIVE_TIMEOUT, REJECT_AFTER_TIME, REKEY_AFTER_TIME, REKEY_ATTEMPT_TIME,
    REKEY_ON_RECEIVE_AFTER_TIME, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX, ZERO_KEYS_AFTER_TIME,
};
use sentrymesh_tunnel::{Encapsulated, Error, INITIATION_LEN, KEEPALIVE_LEN, RESPONSE_LEN};

/// The kernel's `MAX_TIMER_HANDSHAKES`: a retry is sent while
/// `handshake_attempts <= 18` when the retransmit timer fires, so there are
/// 19 retries after the first initiation (the kernel logs "did not complete
/// after 20 attempts, giving up").
const RETRIES: usize = 18 + 1;

const ZERO: Duration = Duration::ZERO;
/// A millisecond: the smallest step the tests take before a deadline.
const MS: Duration = Duration::from_millis(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A range check with a readable failure.
fn assert_within(value: Duration, low: Duration, high_exclusive: Duration, what: &str) {
    assert!(
        low <= value && value < high_exclusive,
        "{what}: {value:?} not in [{low:?}, {high_exclusive:?})"
    );
}

// ----- handshake retries ---------------------------------------------------

#[test]
fn an_unanswered_initiation_is_retried_every_rekey_timeout_plus_jitter_then_abandoned() {
    for seed in 0..4 {
        let mut pair = Pair::with_seed(seed);
        // b never hears a.
        pair.a.drop_outgoing = true;
        let staged = ipv4_packet(60, 0x51);
        assert_eq!(pair.send(Side::A, &staged), Encapsulated::Queued);

        // Run every timer until none is armed (the last erases the keys).
        let mut steps = 0;
        while pair.advance_to_next_timeout() {
            steps += 1;
            assert!(steps < 1000, "seed {seed}: timers never settle");
        }

        // Nothing but initiations, and exactly the kernel's number of them.
        let sent = &pair.a.sent;
        assert!(
            sent.iter()
                .all(|s| s.kind == INITIATION && s.bytes.len() == INITIATION_LEN),
            "seed {seed}: {:?}",
            pair.a.summary_since(ZERO)
        );
        assert_eq!(
            sent.len(),
            1 + RETRIES,
            "seed {seed}: first initiation + retries"
        );
        assert_eq!(sent[0].at, ZERO);

        // Each retry REKEY_TIMEOUT after the previous, plus jitter in [0, 334 ms).
        let gaps: Vec<Duration> = sent.windows(2).map(|w| w[1].at - w[0].at).collect();
        for (n, &gap) in gaps.iter().enumerate() {
            assert_within(
                gap,
                REKEY_TIMEOUT,
                REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX,
                &format!("seed {seed}: gap before retry {}", n + 1),
            );
        }
        let mut distinct = gaps.clone();
        distinct.sort();
        distinct.dedup();
        assert!(
            distinct.len() > 1,
            "seed {seed}: the jitter is random: {gaps:?}"
        );

        // The last retry (the 19th) is past REKEY_ATTEMPT_TIME, about 95 s in;
        // no initiation follows it, and nothing at all is sent afterwards.
        let last = sent.last().expect("sent").at;
        assert!(
            last > REKEY_ATTEMPT_TIME,
            "seed {seed}: gave up early, at {last:?}"
        );
        assert_within(
            last,
            REKEY_TIMEOUT * RETRIES as u32,
            (REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX) * RETRIES as u32,
            &format!("seed {seed}: the last retry"),
        );
        assert!(pair.b.sent.is_empty(), "b heard nothing");
        assert!(
            pair.elapsed() > last + ZERO_KEYS_AFTER_TIME,
            "ran past the key erasure"
        );

        // The staged packet was dropped when the handshake was abandoned: a
        // later handshake that succeeds delivers only what was sent since.
        pair.a.drop_outgoing = false;
        let fresh = ipv4_packet(60, 0x52);
        assert_eq!(pair.send(Side::A, &fresh), Encapsulated::Queued);
        let delivered: Vec<&Vec<u8>> = pair.b.delivered.iter().map(|(_, p)| p).collect();
        assert_eq!(
            delivered,
            vec![&fresh],
            "seed {seed}: the staged packet was purged"
        );
    }
}

// ----- passive keepalive ---------------------------------------------------

#[test]
fn a_receiver_that_sends_nothing_back_sends_a_keepalive_after_keepalive_timeout() {
    let mut pair = Pair::established();
    let t0 = secs(20);
    pair.advance_to(t0);
    let packet = ipv4_packet(100, 7);
    let data_len = pair.b.engine.encapsulated_len(packet.len());
    assert!(matches!(
        pair.send(Side::B, &packet),
        Encapsulated::Sealed { .. }
    ));
    assert_eq!(pair.a.delivered, vec![(t0, packet)]);

    pair.advance_to(secs(100));
    assert_eq!(
        pair.a.summary_since(t0),
        vec![(t0 + KEEPALIVE_TIMEOUT, DATA, KEEPALIVE_LEN)],
        "exactly one keepalive, KEEPALIVE_TIMEOUT after the data"
    );
    assert_eq!(pair.b.summary_since(t0), vec![(t0, DATA, data_len)]);
    assert!(pair.a.rejected.is_empty() && pair.b.rejected.is_empty());
}

#[test]
fn a_receiver_that_sends_data_itself_sends_no_keepalive() {
    let mut pair = Pair::established();
    let t0 = secs(20);
    pair.advance_to(t0);
    let packet = ipv4_packet(100, 7);
    let data_len = pair.a.engine.encapsulated_len(packet.len());
    pair.send(Side::B, &packet);
    let t1 = t0 + secs(3);
    pair.advance_to(t1);
    assert!(matches!(
        pair.send(Side::A, &packet),
        Encapsulated::Sealed { .. }
    ));

    pair.advance_to(secs(100));
    assert_eq!(
        pair.a.summary_since(t0),
        vec![(t1, DATA, data_len)],
        "a's data did the keepalive's job"
    );
    // b, which received a's data and sent nothing after, keeps alive in turn.
    assert_eq!(
        pair.b.summary_since(t0),
        vec![
            (t0, DATA, data_len),
            (t1 + KEEPALIVE_TIMEOUT, DATA, KEEPALIVE_LEN)
        ]
    );
}

// ----- new handshake when the peer goes quiet ------------------------------

#[test]
fn data_unanswered_for_keepalive_plus_rekey_timeout_starts_a_handshake() {
    let mut jitters = Vec::new();
    for seed in 0..8 {
        let mut pair = Pair::with_seed(seed);
        pair.handshake();
        let t0 = secs(20);
        pair.advance_to(t0);
        // a's data reaches b, but nothing from b comes back.
        pair.b.drop_outgoing = true;
        let packet = ipv4_packet(100, 9);
        let data_len = pair.a.engine.encapsulated_len(packet.len());
        pair.send(Side::A, &packet);
        assert_eq!(pair.b.delivered.len(), 1);
        // Stop before the first retry could be due (35 s + 5 s + jitter).
        pair.advance_to(t0 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + REKEY_TIMEOUT - MS);

        let a = pair.a.sent_since(t0);
        assert_eq!(a.len(), 2, "seed {seed}: {:?}", pair.a.summary_since(t0));
        assert_eq!(a[0].summary(), (t0, DATA, data_len));
        assert_eq!(a[1].kind, INITIATION);
        let deadline = t0 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT;
        assert_within(
            a[1].at,
            deadline,
            deadline + REKEY_TIMEOUT_JITTER_MAX,
            &format!("seed {seed}: new handshake"),
        );
        jitters.push(a[1].at - deadline);
        // b did answer, with its keepalive and a response; the network lost them.
        assert_eq!(
            pair.b.summary_since(t0),
            vec![
                (t0 + KEEPALIVE_TIMEOUT, DATA, KEEPALIVE_LEN),
                (a[1].at, RESPONSE, RESPONSE_LEN)
            ]
        );
    }
    jitters.sort();
    jitters.dedup();
    assert!(jitters.len() > 1, "the jitter is random: {jitters:?}");
}

#[test]
fn data_answered_by_a_keepalive_starts_no_handshake() {
    let mut pair = Pair::established();
    let t0 = secs(20);
    pair.advance_to(t0);
    let packet = ipv4_packet(100, 9);
    let data_len = pair.a.engine.encapsulated_len(packet.len());
    pair.send(Side::A, &packet);
    pair.advance_to(secs(100));
    assert_eq!(pair.a.summary_since(t0), vec![(t0, DATA, data_len)]);
    assert_eq!(
        pair.b.summary_since(t0),
        vec![(t0 + KEEPALIVE_TIMEOUT, DATA, KEEPALIVE_LEN)]
    );
}

// ----- rekey by time -------------------------------------------------------

#[test]
fn the_initiator_rekeys_when_it_sends_after_rekey_after_time_and_the_responder_does_not() {
    let mut pair = Pair::established();
    let first_initiation = pair.a.initiations()[0].index_at_4();
    let first_response = pair.b.last_sent(RESPONSE).expect("response").index_at_4();
    let packet = ipv4_packet(80, 3);
    // Data both ways every 5 s; b sends first, so at 120 s b sends under a
    // session exactly REKEY_AFTER_TIME old before a does.
    for step in 1..=30u64 {
        pair.advance_to(secs(5 * step));
        assert!(matches!(
            pair.send(Side::B, &packet),
            Encapsulated::Sealed { .. }
        ));
        assert!(matches!(
            pair.send(Side::A, &packet),
            Encapsulated::Sealed { .. }
        ));
    }
    assert_eq!(pair.a.delivered.len(), 30);
    assert_eq!(pair.b.delivered.len(), 30);
    assert!(pair.a.rejected.is_empty() && pair.b.rejected.is_empty());

    // Exactly one new handshake, by the initiator, when it first sent at 120 s.
    let initiations: Vec<_> = pair.a.initiations().iter().map(|s| s.at).collect();
    assert_eq!(initiations, vec![ZERO, REKEY_AFTER_TIME]);
    assert!(
        pair.b.initiations().is_empty(),
        "the time rule is the initiator's alone"
    );

    // The new session is used both ways from then on.
    let second_initiation = pair.a.initiations()[1].index_at_4();
    let second_response = pair.b.last_sent(RESPONSE).expect("response").index_at_4();
    assert_ne!(second_response, first_response);
    assert_ne!(second_initiation, first_initiation);
    for sent in pair.a.sent.iter().filter(|s| s.kind == DATA) {
        let expected =
            if sent.at < REKEY_AFTER_TIME || (sent.at == REKEY_AFTER_TIME && sent.is_data()) {
                first_response
            } else {
                second_response
            };
        assert_eq!(sent.index_at_4(), expected, "a's data at {:?}", sent.at);
    }
    for sent in pair.b.sent.iter().filter(|s| s.kind == DATA) {
        let expected = if sent.at <= REKEY_AFTER_TIME {
            first_initiation
        } else {
            second_initiation
        };
        assert_eq!(sent.index_at_4(), expected, "b's data at {:?}", sent.at);
    }
}

#[test]
fn an_initiator_that_only_receives_rekeys_when_its_session_is_165_s_old() {
    assert_eq!(REKEY_ON_RECEIVE_AFTER_TIME, secs(165));
    let mut pair = Pair::established();
    let since = secs(1);
    let packet = ipv4_packet(80, 4);

    // At 164 s the session is young enough: a answers nothing at once.
    pair.advance_to(REKEY_ON_RECEIVE_AFTER_TIME - secs(1));
    pair.send(Side::B, &packet);
    assert!(pair.a.sent_since(since).is_empty());

    // At 165 s receiving is enough to renegotiate: one initiation, and the
    // keepalive that confirms the new session.
    let t = REKEY_ON_RECEIVE_AFTER_TIME;
    pair.advance_to(t);
    pair.send(Side::B, &packet);
    assert_eq!(
        pair.a.summary_since(since),
        vec![(t, INITIATION, INITIATION_LEN), (t, DATA, KEEPALIVE_LEN)]
    );
    assert_eq!(pair.a.delivered.len(), 2);
    assert!(pair.b.initiations().is_empty());

    // b moves to the new session; more data brings no more handshakes.
    let new_index = pair.a.initiations()[1].index_at_4();
    pair.advance_to(t + secs(1));
    pair.send(Side::B, &packet);
    let last = pair.b.sent.last().expect("sent");
    assert!(last.is_data());
    assert_eq!(last.index_at_4(), new_index, "b uses the new session");
    assert_eq!(pair.a.delivered.len(), 3);
    assert_eq!(pair.a.initiations().len(), 2);
}

// ----- rejection and erasure -----------------------------------------------

#[test]
fn after_reject_after_time_nothing_is_sealed_or_accepted_under_the_session() {
    let mut pair = Pair::established();
    let packet = ipv4_packet(80, 5);

    // At 100 s each side seals messages that stay in the test's hands; one
    // from each side is delivered, so both hear from each other.
    pair.advance_to(secs(100));
    let from_a: Vec<Vec<u8>> = (0..3).map(|_| pair.seal(Side::A, &packet)).collect();
    let from_b: Vec<Vec<u8>> = (0..2).map(|_| pair.seal(Side::B, &packet)).collect();
    assert_eq!(pair.deliver(Side::B, &from_a[2]), Ok(Some(packet.clone())));
    assert_eq!(pair.deliver(Side::A, &from_b[1]), Ok(Some(packet.clone())));
    pair.advance_to(secs(110));

    // From here no handshake can complete.
    pair.a.drop_outgoing = true;
    pair.b.drop_outgoing = true;
    let quiet = secs(111);
    pair.advance_to(REJECT_AFTER_TIME - MS);
    assert!(pair.a.sent_since(quiet).is_empty() && pair.b.sent_since(quiet).is_empty());
    // Just before, the session still opens messages.
    assert_eq!(pair.deliver(Side::B, &from_a[1]), Ok(Some(packet.clone())));

    pair.advance_to(REJECT_AFTER_TIME);
    assert_eq!(
        pair.deliver(Side::B, &from_a[0]),
        Err(Error::SessionExpired)
    );
    assert_eq!(
        pair.deliver(Side::A, &from_b[0]),
        Err(Error::SessionExpired)
    );
    // And a cannot seal any more: the packet waits for a handshake it starts.
    let sent_before = pair.a.sent.len();
    assert_eq!(pair.send(Side::A, &packet), Encapsulated::Queued);
    let new: Vec<_> = pair.a.sent[sent_before..]
        .iter()
        .map(|s| s.summary())
        .collect();
    assert_eq!(new, vec![(REJECT_AFTER_TIME, INITIATION, INITIATION_LEN)]);
}

#[test]
fn keys_are_erased_after_three_times_reject_after_time() {
    assert_eq!(ZERO_KEYS_AFTER_TIME, REJECT_AFTER_TIME * 3);
    let mut pair = Pair::established();
    let packet = ipv4_packet(80, 6);
    pair.advance_to(secs(50));
    let from_a = pair.seal(Side::A, &packet);
    let from_b = pair.seal(Side::B, &packet);
    // No handshake completes again; the handshakes the lost data starts are
    // abandoned.
    pair.a.drop_outgoing = true;
    pair.b.drop_outgoing = true;

    // Until 540 s the expired session's keys exist: its index is known.
    pair.advance_to(ZERO_KEYS_AFTER_TIME - MS);
    assert_eq!(pair.deliver(Side::B, &from_a), Err(Error::SessionExpired));
    assert_eq!(pair.deliver(Side::A, &from_b), Err(Error::SessionExpired));

    // At 540 s they are gone.
    pair.advance_to(ZERO_KEYS_AFTER_TIME);
    assert_eq!(pair.deliver(Side::B, &from_a), Err(Error::UnknownIndex));
    assert_eq!(pair.deliver(Side::A, &from_b), Err(Error::UnknownIndex));
}

// ----- persistent keepalive ------------------------------------------------

#[test]
fn persistent_keepalive_is_sent_at_its_interval_on_an_idle_tunnel() {
    let interval = secs(25);
    let mut pair = Pair::with_config(0, |a, _| a.persistent_keepalive = Some(interval));
    // Configuring it sent a keepalive at once: after a handshake, as there
    // was no session.
    assert_eq!(
        pair.a.summary_since(ZERO),
        vec![
            (ZERO, INITIATION, INITIATION_LEN),
            (ZERO, DATA, KEEPALIVE_LEN)
        ]
    );

    // Then one every interval, and nothing else, until the first rekey.
    pair.advance_to(REKEY_AFTER_TIME - MS);
    let expected: Vec<_> = (1..=4)
        .map(|n| (interval * n, DATA, KEEPALIVE_LEN))
        .collect();
    assert_eq!(pair.a.summary_since(secs(1)), expected);
    assert_eq!(
        pair.b.summary_since(ZERO).len(),
        1,
        "b sent only its response"
    );
    assert!(pair.b.rejected.is_empty());
}

// ----- the responder waits for confirmation --------------------------------

/// Has `a` initiate with its datagrams held, delivers the initiation to `b`
/// at 1 s, and returns `a`'s confirming keepalive, still undelivered.
fn handshake_awaiting_confirmation(pair: &mut Pair) -> Vec<u8> {
    pair.a.drop_outgoing = true;
    let (peer, now) = (pair.a.peer, pair.now);
    pair.a.engine.connect(now, peer).expect("connect");
    pair.drive();
    let initiation = pair
        .a
        .last_sent(INITIATION)
        .expect("initiation")
        .bytes
        .clone();

    // b answers; a completes and sends its confirming keepalive (held).
    pair.advance_to(secs(1));
    assert_eq!(pair.deliver(Side::B, &initiation), Ok(None));
    assert_eq!(
        pair.b.summary_since(ZERO),
        vec![(secs(1), RESPONSE, RESPONSE_LEN)]
    );
    let keepalive = pair.a.sent.last().expect("keepalive");
    assert!(keepalive.is_keepalive() && keepalive.at == secs(1));
    keepalive.bytes.clone()
}

#[test]
fn the_responder_cannot_send_until_the_initiator_confirms_the_session() {
    let mut pair = Pair::new();
    let keepalive = handshake_awaiting_confirmation(&mut pair);

    // b's session is unconfirmed: its packet waits.
    pair.advance_to(secs(2));
    let packet = ipv4_packet(90, 8);
    assert_eq!(pair.send(Side::B, &packet), Encapsulated::Queued);
    assert!(
        !pair.b.sent.iter().any(|s| s.kind == DATA),
        "b sealed nothing: {:?}",
        pair.b.summary_since(ZERO)
    );
    assert!(pair.a.delivered.is_empty());
    let stats = pair.b.engine.peer_stats(pair.b.peer).expect("peer");
    assert_eq!(stats.last_handshake, None);

    // a's keepalive confirms the session, and the waiting packet goes out
    // at once, under the session a made.
    pair.advance_to(secs(3));
    assert_eq!(pair.deliver(Side::B, &keepalive), Ok(None));
    let stats = pair.b.engine.peer_stats(pair.b.peer).expect("peer");
    assert_eq!(stats.last_handshake, Some(pair.now));
    assert_eq!(pair.a.delivered, vec![(secs(3), packet)]);
    let data = pair.b.sent.last().expect("data");
    assert_eq!(
        data.index_at_4(),
        pair.a.initiations()[0].index_at_4(),
        "sealed under the confirmed session"
    );
}

#[test]
fn a_responder_that_just_sent_a_response_does_not_initiate_within_rekey_timeout() {
    // The kernel (`wg_packet_send_handshake_response`) and wireguard-go
    // (`SendHandshakeResponse`) set `last_sent_handshake` when they send a
    // response, and an initiation is rate-limited by it: a responder whose
    // packet waits for confirmation does not start a crossing handshake.
    let mut pair = Pair::new();
    let _keepalive = handshake_awaiting_confirmation(&mut pair);
    pair.advance_to(secs(2));
    assert_eq!(
        pair.send(Side::B, &ipv4_packet(90, 8)),
        Encapsulated::Queued
    );
    assert_eq!(
        pair.b.summary_since(secs(2)),
        vec![],
        "b sent an initiation 1 s after its response"
    );

    // Once REKEY_TIMEOUT has passed since the response, it may.
    pair.advance_to(secs(1) + REKEY_TIMEOUT);
    assert_eq!(
        pair.send(Side::B, &ipv4_packet(90, 9)),
        Encapsulated::Queued
    );
    assert_eq!(
        pair.b.summary_since(secs(2)),
        vec![(secs(1) + REKEY_TIMEOUT, INITIATION, INITIATION_LEN)]
    );
}

/// Both sides initiate in the same instant (a mesh whose members learn of
/// each other together). Answering both would leave each waiting for a
/// response to an initiation the other has dropped, until a retry
/// REKEY_TIMEOUT later; the side with the greater static key keeps its own,
/// so a session forms in one round trip.
#[test]
fn simultaneous_initiations_form_a_session_without_waiting_for_a_retry() {
    for seed in 0..8 {
        let mut pair = Pair::with_seed(seed);
        let now = pair.now;
        for side in [Side::A, Side::B] {
            let host = pair.host(side);
            let peer = host.peer;
            host.engine.connect(now, peer).expect("connect");
        }
        pair.drive();
        for side in [Side::A, Side::B] {
            let host = pair.host(side);
            let stats = host.engine.peer_stats(host.peer).expect("peer");
            assert_eq!(
                stats.last_handshake,
                Some(now),
                "seed {seed}: {side:?} has no session at once"
            );
        }
        // And it carries data both ways at once.
        for side in [Side::A, Side::B] {
            pair.send(side, &ipv4_packet(100, 7));
        }
        pair.drive();
        for side in [Side::A, Side::B] {
            assert_eq!(pair.host(side).delivered.len(), 1, "seed {seed}: {side:?}");
        }
    }
}

#[test]
fn each_handshake_names_itself_by_a_fresh_random_index() {
    // The whitepaper's rule: session indices are random, so an observer
    // cannot tie one peer's handshakes together or count an interface's
    // peers by them. A slot-derived index kept its upper 24 bits across a
    // peer's handshakes.
    for seed in 0..4 {
        let mut pair = Pair::with_seed(seed);
        pair.a.drop_outgoing = true;
        pair.send(Side::A, &ipv4_packet(60, 0x52));
        while pair.advance_to_next_timeout() {}
        let indices: Vec<u32> = pair
            .a
            .initiations()
            .iter()
            .map(|s| s.index_at_4())
            .collect();
        assert_eq!(indices.len(), 1 + RETRIES, "seed {seed}");
        let mut upper: Vec<u32> = indices.iter().map(|index| index >> 8).collect();
        upper.sort_unstable();
        upper.dedup();
        assert_eq!(
            upper.len(),
            indices.len(),
            "seed {seed}: indices share their upper bits: {indices:x?}"
        );
    }
}
