//! The trust mesh on namespace hosts, each running `sentrymesh up` as a mesh
//! member set up through the operator commands: the mesh forms as the roles
//! allow, admission takes k vouches, a new sentry joins without a restart, a
//! revocation cuts a host off everywhere within a second and outlives a
//! restart, and a reload keeps the sessions of unchanged peers.
//!
//! The tests need root and fail (never skip) without it. Every address is in
//! 198.18.0.0/15; see [`netns::mesh_lab`].

mod netns;

use std::time::{Duration, Instant};

use netns::capture::Capture;
use netns::mesh_lab::{GOSSIP_PORT, INTRODUCTION_PORT, Lab, Member, Role, keys, sentrymesh};
use netns::wait_until;

/// How long a mesh may take to form: handshakes retry every 5 s.
const FORMS_WITHIN: Duration = Duration::from_secs(30);
/// How long a daemon may take to log its answer to a reload (a quiet
/// machine takes milliseconds).
const RELOAD_ANSWERED_WITHIN: Duration = Duration::from_secs(30);

/// Waits until `member` has exactly the peers `expected`, with a session to
/// each; panics with its log otherwise.
#[track_caller]
fn assert_peers(member: &Member, expected: &[&Member]) {
    let formed = wait_until(FORMS_WITHIN, || {
        member.peers() == keys(expected)
            && expected.iter().all(|peer| member.has_session_with(peer))
    });
    let names: Vec<&str> = expected.iter().map(|peer| peer.name.as_str()).collect();
    assert!(
        formed,
        "{} does not have exactly the peers {names:?} with sessions: {:?}\n{}",
        member.name,
        member.peers(),
        member.log()
    );
}

#[test]
fn three_operators_form_the_mesh_and_no_producer_leaks() {
    let mut lab = Lab::new("form");
    let operators = [lab.operator("a"), lab.operator("b"), lab.operator("c")];
    // Per operator: a producer, then two sentries.
    let mut members: Vec<Vec<Member>> = operators
        .iter()
        .zip(["a", "b", "c"])
        .map(|(operator, name)| {
            vec![
                lab.member(operator, &format!("{name}-producer"), Role::Producer),
                lab.member(operator, &format!("{name}-sentry-1"), Role::Sentry),
                lab.member(operator, &format!("{name}-sentry-2"), Role::Sentry),
            ]
        })
        .collect();
    // What operators handed their hosts: the producer knows its sentries;
    // the first sentry knows its producer, its sibling and the other
    // operators' first sentries; the second only its sibling. The rest —
    // the producer's card within its operator, the second sentries' cards
    // everywhere — travels by gossip, which must never carry a producer's
    // card to another operator.
    for (i, own) in members.iter().enumerate() {
        own[0].know_card(&own[1]);
        own[0].know_card(&own[2]);
        own[1].know_card(&own[0]);
        own[1].know_card(&own[2]);
        own[2].know_card(&own[1]);
        for (j, theirs) in members.iter().enumerate() {
            if i != j {
                own[1].know_card(&theirs[1]);
            }
        }
    }
    for (i, own) in members.iter().enumerate() {
        let trusted: Vec<_> = (0..3).filter(|&j| j != i).map(|j| &operators[j]).collect();
        own[0].configure(&trusted, 1, 2);
        own[1].configure(&trusted, 1, 1 + 1 + 4);
        own[2].configure(&trusted, 1, 1 + 1 + 4);
    }
    // Every sentry records, from the first moment, the gossip it receives
    // through the tunnel and the introductions it hears on the underlay.
    let captures: Vec<(usize, Capture, Capture)> = members
        .iter()
        .enumerate()
        .flat_map(|(i, own)| own[1..].iter().map(move |sentry| (i, sentry)))
        .map(|(i, sentry)| {
            (
                i,
                Capture::start(&sentry.host, sentry.overlay, GOSSIP_PORT),
                Capture::start(&sentry.host, sentry.underlay, INTRODUCTION_PORT),
            )
        })
        .collect();
    for member in members.iter_mut().flatten() {
        member.start();
    }

    let sentries: Vec<&Member> = members.iter().flat_map(|own| &own[1..]).collect();
    for own in &members {
        let (producer, own_sentries) = (&own[0], [&own[1], &own[2]]);
        assert_peers(producer, &own_sentries);
        for sentry in own_sentries {
            let mut expected: Vec<&Member> = sentries
                .iter()
                .copied()
                .filter(|s| s.name != sentry.name)
                .collect();
            expected.push(producer);
            assert_peers(sentry, &expected);
            assert!(
                producer.pings(sentry),
                "{} cannot reach {}",
                producer.name,
                sentry.name
            );
        }
    }
    assert!(members[0][1].pings(&members[1][2]) && members[2][2].pings(&members[0][1]));
    for (i, own) in members.iter().enumerate() {
        let producer = &own[0];
        // Routes only to its own sentries: nothing of another operator.
        let routes = producer
            .host
            .ip(&["route", "show", "dev", &producer.ifname]);
        let mut routed: Vec<&str> = routes
            .lines()
            .filter_map(|line| line.split(' ').next())
            .collect();
        routed.sort_unstable();
        let mut expected = vec![own[1].overlay.to_string(), own[2].overlay.to_string()];
        expected.sort();
        assert_eq!(routed, expected, "{} routes:\n{routes}", producer.name);
        for (j, theirs) in members.iter().enumerate() {
            if i != j {
                assert!(
                    !producer.pings(&theirs[1]),
                    "{} reaches {}",
                    producer.name,
                    theirs[1].name
                );
            }
        }
    }

    // Nothing a sentry received from anyone, through the tunnel or on the
    // underlay, carries another operator's producer: not its card, key,
    // name, or either of its addresses.
    std::thread::sleep(Duration::from_secs(2));
    for (i, gossip, introductions) in captures {
        let received = gossip.stop();
        let introduced = introductions.stop();
        assert!(
            !received.is_empty(),
            "a sentry of operator {i} heard no gossip"
        );
        // The check can see a card: the other operators' second sentries'
        // cards reached this one only by gossip.
        let foreign_sentry = &members[(i + 1) % 3][2];
        assert!(
            received
                .iter()
                .any(|payload| contains(payload, &base64_decode(&foreign_sentry.wg_public))),
            "no gossip a sentry of operator {i} received carries {}'s card",
            foreign_sentry.name
        );
        for (j, own) in members.iter().enumerate() {
            if i == j {
                continue;
            }
            let producer = &own[0];
            let card = std::fs::read_to_string(producer.card()).expect("the card");
            let secrets: [(&str, Vec<u8>); 4] = [
                ("WireGuard key", base64_decode(&producer.wg_public)),
                ("name", producer.name.as_bytes().to_vec()),
                ("overlay address", producer.overlay.octets().to_vec()),
                ("underlay address", producer.underlay.octets().to_vec()),
            ];
            for payload in received.iter().chain(&introduced) {
                for (what, needle) in &secrets {
                    assert!(
                        !contains(payload, needle),
                        "a sentry of operator {i} received {}'s {what}",
                        producer.name
                    );
                }
                assert!(!contains(payload, card.as_bytes()));
            }
        }
    }
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Standard base64 decoding, for keys.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes().take_while(|&byte| byte != b'=') {
        let value = ALPHABET.iter().position(|&c| c == byte).expect("base64") as u32;
        bits = bits << 6 | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

#[test]
fn a_new_sentry_joins_a_revocation_cuts_it_off_and_reloads_keep_sessions() {
    let mut lab = Lab::new("join");
    let (a, b) = (lab.operator("a"), lab.operator("b"));
    let mut producer = lab.member(&a, "a-producer", Role::Producer);
    let mut sentry = lab.member(&a, "a-sentry-1", Role::Sentry);
    let mut foreign = lab.member(&b, "b-sentry-1", Role::Sentry);
    producer.know_card(&sentry);
    sentry.know_card(&producer);
    sentry.know_card(&foreign);
    foreign.know_card(&sentry);
    producer.configure(&[&b], 1, 1);
    sentry.configure(&[&b], 1, 2);
    foreign.configure(&[&a], 1, 1);
    for member in [&mut producer, &mut sentry, &mut foreign] {
        member.start();
    }
    assert_peers(&producer, &[&sentry]);
    assert_peers(&sentry, &[&producer, &foreign]);
    assert_peers(&foreign, &[&sentry]);

    // A second sentry of operator a, knowing only the first: it introduces
    // itself, and the mesh — its own producer too — takes it in.
    let mut newcomer = lab.member(&a, "a-sentry-2", Role::Sentry);
    newcomer.know_card(&sentry);
    newcomer.configure(&[&b], 1, 1);
    newcomer.start();
    assert_peers(&newcomer, &[&producer, &sentry, &foreign]);
    assert_peers(&producer, &[&sentry, &newcomer]);
    assert_peers(&foreign, &[&sentry, &newcomer]);
    assert!(producer.pings(&newcomer) && foreign.pings(&newcomer));

    // A ping every 10 ms from the producer across reloads of both ends (one
    // with a changed trust list) loses none: unchanged peers keep sessions.
    let pinger = producer.host.spawn(
        "ping across reloads",
        "ping",
        &[
            "-c",
            "150",
            "-i",
            "0.01",
            "-W",
            "1",
            &sentry.overlay.to_string(),
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let c = lab.operator("c");
    sentry.configure(&[&b, &c], 1, 2);
    sentry.reload();
    producer.reload();
    let mut pinger = pinger;
    assert!(
        wait_until(Duration::from_secs(10), || pinger.exit_status().is_some()),
        "ping did not finish"
    );
    assert!(
        pinger.log().contains("150 received"),
        "packets lost across the reloads:\n{}",
        pinger.log()
    );

    // Operator a revokes the newcomer; published at one sentry, the
    // revocation removes it from every member within a second.
    let revocation = lab.switch_file("newcomer.revocation");
    sentrymesh(&[
        "trust",
        "revoke",
        "--operator",
        &a.key_file.to_string_lossy(),
        "--host",
        &newcomer.wg_public,
        "--out",
        &revocation.to_string_lossy(),
    ]);
    sentry.know("newcomer.revocation", &revocation);
    let published = Instant::now();
    sentry.reload();
    let cut_off = wait_until(Duration::from_secs(1), || {
        [&producer, &sentry, &foreign]
            .iter()
            .all(|member| !member.peers().contains(&newcomer.wg_public))
    });
    assert!(
        cut_off,
        "the revoked host is still a peer {:?} after the revocation was published:\n{}\n{}",
        published.elapsed(),
        producer.log(),
        foreign.log()
    );
    assert!(!foreign.pings(&newcomer), "the revoked host still answers");
    // Its metrics tell the story: one peer left, the revocation held, and
    // what gossip brought.
    assert_eq!(foreign.metric("sentrymesh_mesh_peers", ""), 1);
    assert_eq!(foreign.metric("sentrymesh_mesh_admitted_operators", ""), 2);
    assert_eq!(
        foreign.metric("sentrymesh_mesh_objects", ",kind=\"revocation\""),
        1
    );
    assert!(foreign.metric("sentrymesh_gossip_objects_total", ",outcome=\"new\"") >= 2);
    assert_eq!(
        foreign.metric("sentrymesh_gossip_messages_total", ",outcome=\"malformed\""),
        0
    );

    // A restart forgets nothing: the revoked host, which never heard of its
    // revocation and keeps introducing itself, is not taken back.
    assert!(newcomer.peers().contains(&foreign.wg_public));
    foreign.stop();
    foreign.start();
    assert_peers(&foreign, &[&sentry]);
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        !foreign.peers().contains(&newcomer.wg_public),
        "a restart forgot the revocation:\n{}",
        foreign.log()
    );
}

#[test]
fn admission_takes_k_vouches_and_others_get_no_session() {
    let mut lab = Lab::new("admit");
    let (local, b, c) = (lab.operator("a"), lab.operator("b"), lab.operator("c"));
    let (vouched, half_vouched) = (lab.operator("d"), lab.operator("e"));
    let mut sentry = lab.member(&local, "a-sentry", Role::Sentry);
    let mut admitted = lab.member(&vouched, "d-sentry", Role::Sentry);
    let mut refused = lab.member(&half_vouched, "e-sentry", Role::Sentry);
    // b and c, trusted directly, vouch for d; only b vouches for e.
    for (voucher, subject, file) in [
        (&b, &vouched, "b-for-d.vouch"),
        (&c, &vouched, "c-for-d.vouch"),
        (&b, &half_vouched, "b-for-e.vouch"),
    ] {
        let path = lab.switch_file(file);
        sentrymesh(&[
            "trust",
            "vouch",
            "--operator",
            &voucher.key_file.to_string_lossy(),
            "--for",
            &subject.id,
            "--out",
            &path.to_string_lossy(),
        ]);
        sentry.know(file, &path);
    }
    sentry.know_card(&admitted);
    sentry.know_card(&refused);
    admitted.know_card(&sentry);
    refused.know_card(&sentry);
    sentry.configure(&[&b, &c], 2, 1);
    admitted.configure(&[&local], 1, 1);
    refused.configure(&[&local], 1, 1);
    for member in [&mut sentry, &mut admitted, &mut refused] {
        member.start();
    }
    assert_peers(&sentry, &[&admitted]);
    assert_peers(&admitted, &[&sentry]);
    assert!(admitted.pings(&sentry));
    // e's sentry trusts a and keeps trying, but a has no peer with its key:
    // its handshakes are ignored, and nothing gets through.
    assert!(
        !refused.pings(&sentry),
        "a host of an operator with k-1 vouches got through"
    );
    assert!(!refused.has_session_with(&sentry));
    assert!(!sentry.peers().contains(&refused.wg_public));
}

#[test]
fn a_reload_with_a_new_key_and_card_is_refused_whole() {
    // A member's new private key and a new card for it, given by reload,
    // are refused together: applying the key alone would leave the mesh
    // holding a card for a key the interface no longer has.
    let mut lab = Lab::new("rotate");
    let (a, b) = (lab.operator("a"), lab.operator("b"));
    let mut ours = lab.member(&a, "a-sentry-1", Role::Sentry);
    let mut theirs = lab.member(&b, "b-sentry-1", Role::Sentry);
    ours.know_card(&theirs);
    theirs.know_card(&ours);
    ours.configure(&[&b], 1, 1);
    theirs.configure(&[&a], 1, 1);
    ours.start();
    theirs.start();
    assert_peers(&ours, &[&theirs]);
    let running = ours.interface_public_key();
    assert_eq!(running, ours.wg_public);

    let rotated = ours.rotate_key(&a, Role::Sentry);
    ours.reload();
    let answered = wait_until(RELOAD_ANSWERED_WITHIN, || {
        let log = ours.log();
        log.contains("reload refused") || log.contains("reloaded")
    });
    assert!(answered, "the reload was not answered:\n{}", ours.log());
    let log = ours.log();
    assert!(
        log.contains("reload refused") && log.contains("the private key changed"),
        "a new key and card were not refused:\n{log}"
    );
    assert_eq!(
        ours.interface_public_key(),
        running,
        "the interface runs with the new key {rotated} though the reload was refused"
    );
    assert!(ours.has_session_with(&theirs) && ours.pings(&theirs));
}
