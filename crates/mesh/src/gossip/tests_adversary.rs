//! What an admitted rival's hosts can make a member do with the
//! reconciliation messages (summary, buckets, ranges): nothing that panics,
//! and nothing it does not pay for from its operator's budget.

use super::tests::signed;
use super::*;
use crate::card::SignedCard;
use crate::role::Role;
use crate::testing::{NOW, operator};

/// Alice's host with `cards` more public cards of hers in its store
/// (besides its own card and bob's), and bob's host as its only peer.
fn alice_holding(cards: usize) -> (Gossip, PublicKey) {
    let (alice, bob) = (operator(1), operator(2));
    let (a1, b1) = (
        signed(&alice, "sentry-1", Role::Sentry),
        signed(&bob, "sentry-1", Role::Sentry),
    );
    let mut store = Store::new();
    store.insert_card(a1.clone(), NOW).unwrap();
    store.insert_card(b1.clone(), NOW).unwrap();
    let mut gossip = Gossip::new(store, alice.operator_id());
    let admitted = BTreeSet::from([alice.operator_id(), bob.operator_id()]);
    let bob_key = b1.card().wg_public_key;
    gossip.set_peers([(bob_key, bob.operator_id())], admitted, NOW);
    for n in 0..cards {
        let card = signed(&alice, &format!("full-node-{n}"), Role::Sentry);
        gossip.insert(card.into(), NOW).unwrap();
    }
    while gossip.poll_transmit().is_some() {}
    (gossip, bob_key)
}

fn empty_buckets() -> Vec<u8> {
    GossipMessage::Buckets {
        root: ViewRoot {
            count: 0,
            hash: [0; ROOT_HASH_LEN],
        },
        buckets: vec![],
    }
    .encode()
    .unwrap()
}

/// A host sends its ids in a bucket too long for one ranges message in
/// parts, from a cursor; a buckets message that comes before the last part
/// adds buckets below the one in progress. The cursor, an id in the later
/// bucket, must not be taken as the start of an earlier one (a range
/// reversed: `BTreeMap::range` panics).
#[test]
fn buckets_again_before_the_last_ranges_part_do_not_panic() {
    let (mut base, bob) = alice_holding(MAX_IDS + 50);
    // One more card at a time until the first part stops inside a bucket.
    let alice = operator(1);
    let mut more = 0;
    let (mut gossip, first) = loop {
        let mut gossip = base.clone();
        gossip.handle_message(bob, &empty_buckets(), NOW).unwrap();
        let (to, first) = gossip.poll_transmit().expect("a first ranges part");
        assert_eq!((to, first[1]), (bob, 6));
        if gossip.neighbours.get(&bob).unwrap().ranges_after.is_some() {
            break (gossip, first);
        }
        more += 1;
        let card = signed(&alice, &format!("archive-{more}"), Role::Sentry);
        base.insert(card.into(), NOW).unwrap();
        while base.poll_transmit().is_some() {}
    };
    // Bob's next reconciliation (or a rival's bytes) arrive before the
    // rest was sent.
    gossip.handle_message(bob, &empty_buckets(), NOW).unwrap();
    let mut listed = BTreeSet::new();
    let decoded = GossipMessage::decode(&first).unwrap();
    let mut parts = vec![decoded];
    while let Some((_, bytes)) = gossip.poll_transmit() {
        parts.push(GossipMessage::decode(&bytes).unwrap());
    }
    for part in parts {
        if let GossipMessage::Ranges { ranges, .. } = part {
            for range in ranges {
                assert!(range.first <= range.last);
                listed.extend(range.ids);
            }
        }
    }
    // Every id of alice's public view was listed to bob.
    let all: BTreeSet<ObjectId> = gossip.store().objects().map(|(id, _)| id).collect();
    assert_eq!(listed, all);
}

/// A buckets message of 24 bytes saying "I hold nothing" makes a host list
/// every id of its view to the sender. Unpaid, a rival sends it again as
/// soon as the answer is out, and the host sends its whole id list for
/// each: the bytes sent grow with the messages, not with the budget.
#[test]
fn what_a_buckets_message_makes_this_host_send_is_paid_from_its_senders_budget() {
    let (mut gossip, bob) = alice_holding(300);
    let ask = empty_buckets();
    let mut sent = 0usize;
    for _ in 0..2_000 {
        let _ = gossip.handle_message(bob, &ask, NOW);
        while let Some((to, bytes)) = gossip.poll_transmit() {
            assert_eq!(to, bob);
            sent += bytes.len();
        }
    }
    let asked = 2_000 * ask.len();
    let budget = usize::try_from(RECEIVE_BURST).unwrap();
    assert!(
        sent <= 2 * budget,
        "{sent} bytes of ranges sent for {asked} bytes of buckets, budget {budget}"
    );
}

/// A summary that does not match makes a host send its buckets (up to 3 kB
/// for 22 bytes): paid by the asker too.
#[test]
fn what_a_summary_makes_this_host_send_is_paid_from_its_senders_budget() {
    let (mut gossip, bob) = alice_holding(300);
    let mut sent = 0usize;
    for i in 0..20_000u32 {
        // A root that never matches, never the same twice.
        let ask = GossipMessage::Summary {
            root: ViewRoot {
                count: i,
                hash: [7; ROOT_HASH_LEN],
            },
        }
        .encode()
        .unwrap();
        let _ = gossip.handle_message(bob, &ask, NOW);
        while let Some((to, bytes)) = gossip.poll_transmit() {
            assert_eq!(to, bob);
            sent += bytes.len();
        }
    }
    let budget = usize::try_from(RECEIVE_BURST).unwrap();
    assert!(
        sent <= 2 * budget,
        "{sent} bytes of buckets sent, budget {budget}"
    );
}

/// A ranges message of 90 bytes covering every id makes a host walk its
/// whole view (O(n)) to find what its sender lacks. When the sender's
/// budget cannot pay for the answer, the message must be dropped before
/// that walk, not walked and then found unpaid (a rival would send a few
/// thousand a second, each walking the store). Here, a range that lists
/// one id the host lacks must not make it ask for that id, which it does
/// only after the walk.
#[test]
fn a_ranges_message_its_sender_cannot_pay_for_is_not_walked() {
    let (mut gossip, bob) = alice_holding(300);
    // Spend bob's budget down to less than the answer costs (an id per
    // object alice holds) but more than the message: digests of ids alice
    // holds, which cost nothing else.
    let held: Vec<ObjectId> = gossip.store().objects().map(|(id, _)| id).collect();
    let digest = GossipMessage::Digest { ids: held.clone() }
        .encode()
        .unwrap();
    for _ in 0..RECEIVE_BURST / digest.len() as u64 {
        gossip.handle_message(bob, &digest, NOW).unwrap();
    }
    let left = RECEIVE_BURST % digest.len() as u64;
    let unknown = ObjectId::from_bytes([0x42; 32]);
    let ranges = GossipMessage::Ranges {
        root: ViewRoot {
            count: 0,
            hash: [0; ROOT_HASH_LEN],
        },
        ranges: vec![IdRange {
            first: ObjectId::from_bytes([0; 32]),
            last: ObjectId::from_bytes([0xff; 32]),
            ids: vec![unknown],
        }],
    }
    .encode()
    .unwrap();
    let answer = (held.len() * OBJECT_ID_LEN) as u64;
    assert!(ranges.len() as u64 <= left && left < ranges.len() as u64 + answer);
    let _ = gossip.handle_message(bob, &ranges, NOW);
    let mut asked = false;
    while let Some((_, bytes)) = gossip.poll_transmit() {
        if let Ok(GossipMessage::Want { ids }) = GossipMessage::decode(&bytes) {
            asked |= ids.contains(&unknown);
        }
    }
    assert!(gossip.stats().messages_over_budget > 0);
    assert!(!asked, "an unpaid ranges message was walked");
}

/// An admitted rival whose many hosts (up to `HOST_QUOTA` cards) each send
/// one message is linked many times over; were choices made among hosts,
/// it would take every reconciliation round of this host, and an honest
/// host of a third operator without a session would hear from this host
/// only through the rival. Choices are made among operators first.
#[test]
fn a_rival_with_many_hosts_does_not_take_every_round() {
    let (alice, bob, carol) = (operator(1), operator(2), operator(3));
    let a1 = signed(&alice, "sentry-1", Role::Sentry);
    let b1 = signed(&bob, "sentry-1", Role::Sentry);
    let rivals: Vec<SignedCard> = (0..16)
        .map(|i| signed(&carol, &format!("sentry-{i}"), Role::Sentry))
        .collect();
    let mut store = Store::new();
    store.insert_card(a1, NOW).unwrap();
    let mut gossip = Gossip::new(store, alice.operator_id());
    let admitted = BTreeSet::from([alice.operator_id(), bob.operator_id(), carol.operator_id()]);
    let bob_key = b1.card().wg_public_key;
    let peers = std::iter::once((bob_key, bob.operator_id())).chain(
        rivals
            .iter()
            .map(|c| (c.card().wg_public_key, carol.operator_id())),
    );
    gossip.set_peers(peers, admitted, NOW);
    let hello = GossipMessage::Summary {
        root: ViewRoot {
            count: 0,
            hash: [0; ROOT_HASH_LEN],
        },
    }
    .encode()
    .unwrap();
    for c in &rivals {
        gossip
            .handle_message(c.card().wg_public_key, &hello, NOW)
            .unwrap();
    }
    while gossip.poll_transmit().is_some() {}
    let mut summaries_to_bob = 0;
    for round in 1..=120 {
        gossip.handle_timeout(NOW + round);
        while let Some((to, bytes)) = gossip.poll_transmit() {
            if to == bob_key && bytes[1] == 4 {
                summaries_to_bob += 1;
            }
        }
    }
    // Chosen by operator, bob's host has about half the rounds (and more
    // summaries, as gossip reaches out to operators it has no session
    // with).
    assert!(summaries_to_bob >= 40, "{summaries_to_bob} of 120 rounds");
}

/// Whether a host revocation is in the public view depends on the card the
/// store knows for its key (held, or kept aside). When a card kept aside
/// is replaced by another operator's (one that revoked the key too, and
/// whose card lasts longer: a key handed from one operator to another),
/// the first operator's revocation leaves the view, so its bucket must be
/// recomputed: the summaries must equal those computed afresh.
#[test]
fn a_card_kept_aside_replaced_by_another_operators_restales_the_revocation() {
    use super::tests::revoke;
    use crate::testing::{card, rng, secret_of};
    let (alice, xavier, yvonne) = (operator(1), operator(2), operator(3));
    let a1 = signed(&alice, "sentry-1", Role::Sentry);
    let x1 = signed(&xavier, "sentry-1", Role::Sentry);
    let key = x1.card().wg_public_key;
    let mut store = Store::new();
    store.insert_card(a1, NOW).unwrap();
    let mut gossip = Gossip::new(store, alice.operator_id());
    let admitted = BTreeSet::from([
        alice.operator_id(),
        xavier.operator_id(),
        yvonne.operator_id(),
    ]);
    gossip.set_peers([], admitted.clone(), NOW);
    gossip.insert(x1.clone().into(), NOW).unwrap();
    // Xavier revokes the key: his card is kept aside, his revocation public.
    gossip.insert(revoke(&xavier, &x1).into(), NOW).unwrap();
    gossip.insert(revoke(&yvonne, &x1).into(), NOW).unwrap();
    gossip.refresh_views();
    // The key's holder signs for yvonne too, a card lasting longer.
    let mut y1 = card(&yvonne, "sentry-9", Role::Sentry);
    y1.wg_public_key = key;
    y1.not_after += 86_400;
    let y1 = y1.forge(&yvonne, &secret_of(&key), &mut rng());
    assert!(gossip.insert(y1.into(), NOW).is_err());
    assert_eq!(
        gossip.store().public_host_operator(&key),
        Some(yvonne.operator_id())
    );
    gossip.refresh_views();
    let mut fresh = Views::new();
    fresh.refresh(gossip.store(), alice.operator_id(), &gossip.admitted);
    assert_eq!(gossip.views.root(View::Public), fresh.root(View::Public));
    assert_eq!(gossip.views.root(View::Own), fresh.root(View::Own));
}
