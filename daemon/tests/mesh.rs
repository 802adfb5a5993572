//! The trust mesh on namespace hosts, each running `sentrymesh up` as a mesh
//! member set up through the operator commands: the mesh forms as the roles
//! allow, nothing that names a host crosses the underlay outside WireGuard
//! messages, admission takes k vouches, a new sentry joins without a
//! restart (and reaches its producer's chain config, which `sentrymesh
//! export` keeps up to date), a revocation cuts a host off everywhere (in
//! tens of milliseconds, printed) and outlives a restart, a reload keeps the
//! sessions of unchanged peers, no card routes anything outside its
//! operator's overlay range, and `sentrymesh status` shows a member's peers,
//! readiness and the vouches a refused operator lacks, with a hidden host's
//! endpoint as "hidden".
//!
//! The tests need root and fail (never skip) without it. Every address is in
//! 198.18.0.0/15; see [`sentrymesh_lab::mesh_lab`].

use std::process::Command;
use std::time::{Duration, Instant};

use sentrymesh::control::status::Status;
use sentrymesh_lab::capture::{Capture, Datagram};
use sentrymesh_lab::mesh_lab::{
    FORMS_WITHIN, GOSSIP_PORT, INTRODUCTION_PORT, Lab, Member, REVOKED_WITHIN, Role,
    armoured_bytes, assert_peers, base64_decode,
};
use sentrymesh_lab::{EVENT_WITHIN, run_command, run_ok, wait_until};

/// The daemon under test, built with these tests.
const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

/// Three operators' meshes form, a card changes and a host is revoked:
/// no producer's card reaches another operator, and no packet on any host's
/// underlay that is not a WireGuard message carries a card, an operator id,
/// a WireGuard key, an overlay address, a chain p2p id or a host name.
#[test]
fn three_operators_form_the_mesh_and_no_producer_leaks() {
    let mut lab = Lab::new(SENTRYMESH, "form");
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
    // Every host records everything it says and hears on the underlay.
    let underlay: Vec<Capture> = members
        .iter()
        .flatten()
        .map(|member| Capture::underlay(&member.host, member.underlay))
        .collect();
    // What names each host, as it will be and as it was before its card
    // changes below.
    let mut names_a_host: Vec<(String, Vec<u8>)> =
        members.iter().flatten().flat_map(what_names).collect();
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

    // A card changes: operator a's second sentry publishes a new chain p2p
    // id, and the other operators' sentries take the card in by gossip.
    let learned =
        |member: &Member| member.metric("sentrymesh_gossip_objects_total", ",outcome=\"new\"");
    let before = learned(&members[1][1]);
    members[0][2].change_card(&operators[0], Role::Sentry);
    members[0][2].reload();
    names_a_host.extend(what_names(&members[0][2]));
    assert!(
        wait_until(FORMS_WITHIN, || learned(&members[1][1]) > before),
        "the changed card did not reach {}",
        members[1][1].name
    );
    // Operator c revokes its second sentry, published at its first one.
    let revoked = &members[2][2];
    members[2][1].know_revocation(&lab, &operators[2], revoked);
    members[2][1].reload();
    let others: Vec<&Member> = members
        .iter()
        .flatten()
        .filter(|member| member.name != revoked.name)
        .collect();
    assert!(
        wait_until(FORMS_WITHIN, || others
            .iter()
            .all(|member| !member.peers().contains(&revoked.wg_public))),
        "the revoked host is still a peer somewhere"
    );

    // The positive control: a card sent in the clear on the underlay, as
    // introductions once were, is seen by the check below.
    let control = armoured_bytes(&members[1][1].card());
    let to = std::net::SocketAddr::from((members[2][1].underlay, INTRODUCTION_PORT));
    let plaintext = control.clone();
    members[0][1].host.in_namespace(move || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("a socket");
        socket.send_to(&plaintext, to).expect("send the control");
    });

    // Nothing a sentry received from anyone, through the tunnel or on the
    // underlay, carries another operator's producer: not its card, key,
    // name, or either of its addresses. (Once the control is on the wire.)
    assert!(
        wait_until(EVENT_WITHIN, || underlay
            .iter()
            .any(|capture| capture.saw(|packet| contains(packet, &control)))),
        "the plaintext control card never crossed the underlay"
    );
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

    // Nothing on any host's underlay but WireGuard messages and sealed
    // bytes: every leak found is the control's plaintext card, which the
    // check does find, at its sender and at its receiver.
    let mut leaks = 0;
    let mut sealed_introductions = 0;
    for (capture, member) in underlay.into_iter().zip(members.iter().flatten()) {
        for datagram in capture.stop_datagrams() {
            if datagram.udp_payload().is_some_and(is_wireguard) {
                continue;
            }
            if datagram.udp_payload().and_then(<[u8]>::first) == Some(&0x49) {
                sealed_introductions += 1;
            }
            for (what, needle) in &names_a_host {
                if contains(&datagram.payload, needle) {
                    assert!(
                        datagram.udp_payload() == Some(&control[..]),
                        "{}'s underlay carries {what} outside WireGuard: {}",
                        member.name,
                        describe(&datagram)
                    );
                    leaks += 1;
                }
            }
        }
    }
    assert!(
        leaks > 0,
        "the check did not see the plaintext control card"
    );
    assert!(
        sealed_introductions > 0,
        "no sealed introduction crossed the underlay: the check saw none"
    );
}

/// What names `member`, each with what it is: its card (the bytes of its
/// card file), operator id, WireGuard key, overlay address, chain p2p id and
/// name.
fn what_names(member: &Member) -> Vec<(String, Vec<u8>)> {
    let name = &member.name;
    vec![
        (format!("{name}'s card"), armoured_bytes(&member.card())),
        (
            format!("{name}'s operator id"),
            base64_decode(&member.operator),
        ),
        (
            format!("{name}'s WireGuard key"),
            base64_decode(&member.wg_public),
        ),
        (
            format!("{name}'s overlay address"),
            member.overlay.octets().to_vec(),
        ),
        (
            format!("{name}'s chain p2p id"),
            member.chain_id.as_bytes().to_vec(),
        ),
        (format!("{name}'s name"), name.as_bytes().to_vec()),
    ]
}

/// Whether a UDP payload is a WireGuard message: its type (1 to 4), three
/// zero bytes, and the length of its type.
fn is_wireguard(payload: &[u8]) -> bool {
    let len = payload.len();
    len >= 4
        && payload[1..4] == [0, 0, 0]
        && match payload[0] {
            1 => len == 148,
            2 => len == 92,
            3 => len == 64,
            4 => len >= 32 && len % 16 == 0,
            _ => false,
        }
}

/// A datagram's protocol, ports and length, for a failure message.
fn describe(datagram: &Datagram) -> String {
    let ports = datagram
        .udp_payload()
        .map(|_| {
            let port =
                |at: usize| u16::from_be_bytes([datagram.payload[at], datagram.payload[at + 1]]);
            format!(" from port {} to port {}", port(0), port(2))
        })
        .unwrap_or_default();
    format!(
        "protocol {}{ports}, {} bytes",
        datagram.protocol,
        datagram.payload.len()
    )
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn a_new_sentry_joins_a_revocation_cuts_it_off_and_reloads_keep_sessions() {
    let mut lab = Lab::new(SENTRYMESH, "join");
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

    // The producer's chain config is kept up to date from the mesh.
    let p2p_file = producer.host.dir().join("p2p.toml");
    let mut watch = sentrymesh_lab::spawn(
        "export tendermint --watch",
        Command::new(SENTRYMESH)
            .args(["export", "tendermint", "--interval", "100ms", "--watch"])
            .arg(&p2p_file)
            .arg("-c")
            .arg(producer.host.dir().join("sm.toml")),
    );
    let sentry_peer = format!("{}@{}:26656", sentry.chain_id, sentry.overlay);
    let watched = || std::fs::read_to_string(&p2p_file).unwrap_or_default();
    assert!(
        wait_until(EVENT_WITHIN, || watched().contains(&sentry_peer)),
        "the watched export never named the sentry:\n{}\n{}",
        watched(),
        watch.log()
    );
    let written = std::fs::metadata(&p2p_file).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        std::fs::metadata(&p2p_file).unwrap().modified().unwrap(),
        written,
        "the export was rewritten though the mesh did not change"
    );

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

    // The new sentry reached the producer's chain config by itself, and
    // every host's export follows the sentry-node layout.
    let newcomer_peer = format!("{}@{}:26656", newcomer.chain_id, newcomer.overlay);
    assert!(
        wait_until(EVENT_WITHIN, || watched().contains(&newcomer_peer)),
        "the new sentry never reached the watched export:\n{}\n{}",
        watched(),
        watch.log()
    );
    run_ok(
        Command::new("kill").args(["-TERM", &watch.pid().to_string()]),
        b"",
    );
    assert!(
        wait_until(EVENT_WITHIN, || watch.exit_status().is_some()),
        "the watch did not stop on SIGTERM"
    );
    assert!(watch.exit_status().unwrap().success(), "{}", watch.log());
    check_exports(&producer, &sentry, &newcomer, &foreign);

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
        wait_until(EVENT_WITHIN, || pinger.exit_status().is_some()),
        "ping did not finish"
    );
    assert!(
        pinger.log().contains("150 received"),
        "packets lost across the reloads:\n{}",
        pinger.log()
    );

    // Operator a revokes the newcomer; published at one sentry, the
    // revocation removes it from every member within a second.
    sentry.know_revocation(&lab, &a, &newcomer);
    let published = Instant::now();
    sentry.reload();
    let cut_off = wait_until(REVOKED_WITHIN, || {
        [&producer, &sentry, &foreign]
            .iter()
            .all(|member| !member.peers().contains(&newcomer.wg_public))
    });
    eprintln!(
        "the revoked host was dropped everywhere {:?} after the revocation was published",
        published.elapsed()
    );
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

/// What `sentrymesh export KIND ARGS` prints for `member`, from its
/// config and state.
fn export(member: &Member, kind: &str, args: &[&str]) -> String {
    run_ok(
        Command::new(SENTRYMESH)
            .args(["export", kind, "-c"])
            .arg(member.host.dir().join("sm.toml"))
            .args(args),
        b"",
    )
}

/// Each host's Tendermint and nodeos export, parsed, against the
/// sentry-node layout: operator a's producer with its two sentries, and
/// operator b's sentry, which never learns of a's producer.
fn check_exports(producer: &Member, sentry: &Member, newcomer: &Member, foreign: &Member) {
    let peer = |member: &Member| format!("{}@{}:26656", member.chain_id, member.overlay);
    let toml = |text: &str| -> toml::Table {
        toml::from_str(text).unwrap_or_else(|error| panic!("{error}\n{text}"))
    };
    let string = |value: String| toml::Value::String(value);
    let no = toml::Value::Boolean(false);
    let yes = toml::Value::Boolean(true);

    let validator = toml(&export(producer, "tendermint", &[]));
    let mut sentries = [peer(sentry), peer(newcomer)];
    sentries.sort_by_key(|peer| {
        if peer.starts_with(&sentry.chain_id) {
            &sentry.name
        } else {
            &newcomer.name
        }
        .clone()
    });
    let expected = toml::Table::from_iter([
        ("persistent_peers".to_owned(), string(sentries.join(","))),
        ("pex".to_owned(), no.clone()),
        ("addr_book_strict".to_owned(), no.clone()),
    ]);
    assert_eq!(validator, expected);

    let exported = export(sentry, "tendermint", &["--own-sentries"]);
    let own = toml(&exported);
    let expected = toml::Table::from_iter([
        (
            "external_address".to_owned(),
            string(format!("{}:26656", sentry.underlay)),
        ),
        (
            "persistent_peers".to_owned(),
            string(format!("{},{}", peer(producer), peer(newcomer))),
        ),
        (
            "private_peer_ids".to_owned(),
            string(producer.chain_id.clone()),
        ),
        ("pex".to_owned(), yes.clone()),
        ("addr_book_strict".to_owned(), no.clone()),
    ]);
    assert_eq!(own, expected);
    // Merged into a config.toml as `init` writes it, by the README's awk.
    let merged = toml(&merge_p2p(&exported));
    let p2p = merged["p2p"].as_table().unwrap();
    for (key, value) in &expected {
        assert_eq!(&p2p[key], value, "{key}");
    }
    assert_eq!(p2p["laddr"], string("tcp://0.0.0.0:26656".to_owned()));
    assert_eq!(merged["mempool"]["size"], toml::Value::Integer(5000));

    // Operator b's sentry has no validator in the mesh, and a's producer is
    // nowhere in what it exports.
    let rival = export(foreign, "tendermint", &[]);
    let rival_nodeos = export(foreign, "nodeos", &[]);
    for secret in [
        &producer.chain_id,
        &producer.overlay.to_string(),
        &producer.name,
    ] {
        assert!(!rival.contains(secret.as_str()), "{secret} in\n{rival}");
        assert!(
            !rival_nodeos.contains(secret.as_str()),
            "{secret} in\n{rival_nodeos}"
        );
    }
    assert_eq!(toml(&rival)["persistent_peers"], string(String::new()));
    let dialled: Vec<&str> = rival_nodeos
        .lines()
        .filter(|line| !line.starts_with('#'))
        .collect();
    assert_eq!(
        dialled,
        [
            format!("p2p-peer-address = {}:26656", sentry.overlay),
            format!("p2p-peer-address = {}:26656", newcomer.overlay),
        ]
    );
    let producer_nodeos = export(producer, "nodeos", &[]);
    for member in [sentry, newcomer] {
        assert!(
            producer_nodeos.contains(&format!("p2p-peer-address = {}:26656\n", member.overlay)),
            "{producer_nodeos}"
        );
    }
}

/// `configs/tendermint-p2p.awk` run on `export` and a CometBFT
/// config.toml's sections around `[p2p]`, each key of it as `init` writes
/// it.
fn merge_p2p(export: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let peers = dir.path().join("peers");
    let config = dir.path().join("config.toml");
    std::fs::write(&peers, export).unwrap();
    std::fs::write(
        &config,
        "moniker = \"validator\"\n\n[rpc]\nladdr = \"tcp://127.0.0.1:26657\"\n\n\
         [p2p]\nladdr = \"tcp://0.0.0.0:26656\"\n# Address to advertise to peers\n\
         external_address = \"\"\nseeds = \"\"\npersistent_peers = \"\"\n\
         addr_book_strict = true\npex = true\nprivate_peer_ids = \"\"\n\n\
         [mempool]\nsize = 5000\n",
    )
    .unwrap();
    run_ok(
        Command::new("awk")
            .arg("-f")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../configs/tendermint-p2p.awk"
            ))
            .arg(&peers)
            .arg(&config),
        b"",
    )
}

#[test]
fn admission_takes_k_vouches_and_others_get_no_session() {
    let mut lab = Lab::new(SENTRYMESH, "admit");
    let (local, b, c) = (lab.operator("a"), lab.operator("b"), lab.operator("c"));
    let (vouched, half_vouched) = (lab.operator("d"), lab.operator("e"));
    let unvouched = lab.operator("f");
    let mut sentry = lab.member(&local, "a-sentry", Role::Sentry);
    let mut producer = lab.member(&local, "a-producer", Role::Producer);
    let mut admitted = lab.member(&vouched, "d-sentry", Role::Sentry);
    let mut refused = lab.member(&half_vouched, "e-sentry", Role::Sentry);
    // f has no vouch, and its sentry's introductions go to a port where
    // nothing listens: a's sentry hears only its handshakes.
    let mut silent = lab.member(&unvouched, "f-sentry", Role::Sentry);
    // b and c, trusted directly, vouch for d; only b vouches for e.
    for (voucher, subject, file) in [
        (&b, &vouched, "b-for-d.vouch"),
        (&c, &vouched, "c-for-d.vouch"),
        (&b, &half_vouched, "b-for-e.vouch"),
    ] {
        let path = lab.switch_file(file);
        lab.sentrymesh(&[
            "trust",
            "vouch",
            "--operator",
            &voucher.key_file.to_string_lossy(),
            "--for",
            &subject.id,
            "--overlay",
            &subject.range,
            "--out",
            &path.to_string_lossy(),
        ]);
        sentry.know(file, &path);
    }
    sentry.know_card(&admitted);
    sentry.know_card(&refused);
    sentry.know_card(&silent);
    sentry.know_card(&producer);
    producer.know_card(&sentry);
    admitted.know_card(&sentry);
    refused.know_card(&sentry);
    silent.know_card(&sentry);
    sentry.configure(&[&b, &c], 2, 1);
    admitted.configure(&[&local], 1, 1);
    refused.configure(&[&local], 1, 1);
    silent.configure(&[&local], 1, 1);
    let config = silent.host.dir().join("sm.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace("[mesh]\n", "[mesh]\nintroduction_port = 51999\n");
    std::fs::write(&config, text).unwrap();
    producer.configure(&[&b, &c], 2, 1);
    for member in [
        &mut sentry,
        &mut admitted,
        &mut refused,
        &mut silent,
        &mut producer,
    ] {
        member.start();
    }
    assert_peers(&sentry, &[&admitted, &producer]);
    assert!(producer.pings(&sentry));
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
    check_status(
        &sentry,
        &[&admitted, &producer],
        &refused,
        &producer,
        [&b, &c, &local],
    );
    assert!(!sentry.peers().contains(&silent.wg_public));
    // e's sentry introduces itself and initiates handshakes every five
    // seconds: its operator is logged once, with the vouch e lacks. f's
    // sentry only initiates: its card in a's known directory names it.
    let claim = |member: &Member| {
        format!(
            "operator {}, which this host does not admit",
            member.operator
        )
    };
    let (claim_e, claim_f) = (claim(&refused), claim(&silent));
    let f_handshake = format!("a handshake initiation claims to be host \"f-sentry\" of {claim_f}");
    assert!(
        wait_until(Duration::from_secs(60), || {
            let log = sentry.log();
            log.contains(&claim_e) && log.contains(&f_handshake)
        }),
        "not logged:\n{}",
        sentry.log()
    );
    std::thread::sleep(Duration::from_secs(11));
    let log = sentry.log();
    for (claim, vouches) in [(&claim_e, "1 of the 2 vouches"), (&claim_f, "0 of the 2")] {
        let lines: Vec<&str> = log.lines().filter(|line| line.contains(claim)).collect();
        assert_eq!(lines.len(), 1, "{log}");
        assert!(lines[0].contains(vouches), "{}", lines[0]);
    }
    assert!(!log.contains(&silent.wg_public), "a key in the log: {log}");
}

/// `sentrymesh status` and `status --json` on `sentry`: `live` peers with
/// their roles and sessions, readiness, `refused`'s card with the vouch it
/// lacks and whose it could be, and `hidden`'s endpoint as "hidden" only.
fn check_status(
    sentry: &Member,
    live: &[&Member],
    refused: &Member,
    hidden: &Member,
    [voucher, other_voucher, own]: [&sentrymesh_lab::mesh_lab::Operator; 3],
) {
    let json = sentry
        .host
        .run(SENTRYMESH, &["status", "--json", &sentry.ifname]);
    let status: Status = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!((status.version, status.mode.as_str()), (1, "mesh"));
    let readiness = status.readiness.expect("a readiness gate");
    assert!(readiness.ready && readiness.live >= live.len(), "{json}");
    for member in live {
        let peer = status
            .peers
            .iter()
            .find(|p| p.public_key == member.wg_public)
            .unwrap_or_else(|| panic!("{} is not a peer: {json}", member.name));
        assert_eq!(peer.session, "live", "{json}");
        let mesh = peer.mesh.as_ref().expect("mesh columns");
        assert_eq!(mesh.host, member.name);
        assert_eq!(mesh.operator.id, member.operator);
        let role = if member.name == hidden.name {
            "producer"
        } else {
            "sentry"
        };
        assert_eq!(mesh.role, role);
        if member.name == hidden.name {
            assert_eq!(peer.endpoint.as_deref(), Some("hidden"), "{json}");
            assert_eq!(mesh.trust.path, "local");
        } else {
            assert_eq!(mesh.trust.path, "vouched", "{json}");
        }
    }
    let mesh = status.mesh.as_ref().expect("the mesh part");
    assert_eq!(mesh.host, sentry.name);
    assert_eq!(mesh.admitted_operators[0].trust.path, "local");
    let not_connected = mesh
        .not_connected
        .iter()
        .find(|n| n.host == refused.name)
        .unwrap_or_else(|| panic!("{} is not listed as not connected: {json}", refused.name));
    assert_eq!(not_connected.reason.kind, "not_admitted");
    let vouches = not_connected.reason.vouches.as_ref().expect("the vouches");
    assert_eq!((vouches.needed, vouches.missing), (2, 1), "{json}");
    let by: Vec<&str> = vouches.vouched_by.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(by, [voucher.id.as_str()]);
    let could: Vec<&str> = vouches.could_vouch.iter().map(|o| o.id.as_str()).collect();
    assert!(could.contains(&other_voucher.id.as_str()) && could.contains(&own.id.as_str()));

    let text = sentry.host.run(SENTRYMESH, &["status", &sentry.ifname]);
    for expected in [
        "HOST",
        "OPERATOR",
        "ROLE",
        "TRUST",
        "ENDPOINT",
        "SESSION",
        "hidden",
        "live",
        "ready: yes",
        &refused.name,
        "1 of the 2 vouches",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    let underlay = format!("{}:", hidden.underlay);
    assert!(
        !json.contains(&underlay) && !text.contains(&underlay),
        "the hidden host's address shows:\n{text}\n{json}"
    );
}

#[test]
fn a_reload_with_a_new_key_and_card_is_refused_whole() {
    // A member's new private key and a new card for it, given by reload,
    // are refused together: applying the key alone would leave the mesh
    // holding a card for a key the interface no longer has.
    let mut lab = Lab::new(SENTRYMESH, "rotate");
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
    // The log names a peer by its card's host name and its operator.
    let named = format!(
        "mesh peer {} of operator {}",
        theirs.name,
        &theirs.operator[..8]
    );
    assert!(
        ours.log().contains(&named),
        "no {named:?} in:\n{}",
        ours.log()
    );
    let running = ours.interface_public_key();
    assert_eq!(running, ours.wg_public);

    let rotated = ours.rotate_key(&a, Role::Sentry);
    // `sentrymesh reload` waits for the answer, and fails with the reason.
    let reason = ours.refused_reload();
    assert!(
        reason.contains("refused the config") && reason.contains("the private key changed"),
        "sentrymesh reload did not give the daemon's reason: {reason}"
    );
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

/// What `ip route get ADDRESS` answers in `member`'s namespace, error or not.
fn route_to(member: &Member, address: &str) -> String {
    let finished = run_command(
        Command::new("ip").args(["-n", member.host.name(), "route", "get", address]),
        b"",
        EVENT_WITHIN,
    );
    format!("{}{}", finished.stdout, finished.stderr)
}

#[test]
fn cards_claiming_outside_their_operators_range_route_nothing() {
    let mut lab = Lab::new(SENTRYMESH, "range");
    let (a, b, c) = (lab.operator("a"), lab.operator("b"), lab.operator("c"));
    let mut producer = lab.member(&a, "a-producer", Role::Producer);
    let mut a_sentry = lab.member(&a, "a-sentry", Role::Sentry);
    let mut b_sentry = lab.member(&b, "b-sentry", Role::Sentry);
    // Operator c is admitted, and turns rival.
    let mut c_sentry = lab.member(&c, "c-sentry", Role::Sentry);
    producer.know_card(&a_sentry);
    a_sentry.know_card(&producer);
    for (member, others) in [
        (&a_sentry, [&b_sentry, &c_sentry]),
        (&b_sentry, [&a_sentry, &c_sentry]),
        (&c_sentry, [&a_sentry, &b_sentry]),
    ] {
        for other in others {
            member.know_card(other);
        }
    }
    producer.configure(&[&b, &c], 1, 1);
    a_sentry.configure(&[&b, &c], 1, 3);
    b_sentry.configure(&[&a, &c], 1, 2);
    c_sentry.configure(&[&a, &b], 1, 2);
    for member in [&mut producer, &mut a_sentry, &mut b_sentry, &mut c_sentry] {
        member.start();
    }
    assert_peers(&producer, &[&a_sentry]);
    assert_peers(&a_sentry, &[&producer, &b_sentry, &c_sentry]);
    assert_peers(&b_sentry, &[&a_sentry, &c_sentry]);
    assert_peers(&c_sentry, &[&a_sentry, &b_sentry]);

    // c's cards, each claiming one thing outside c's range (198.19.3.0/24),
    // and for each an address whose route must not change.
    let a_prefix = format!("198.19.{}", a.number);
    let claims: [(&str, String, String); 7] = [
        ("--allowed-ip", "0.0.0.0/1".into(), "100.64.0.1".into()),
        ("--allowed-ip", "128.0.0.0/1".into(), "203.0.113.1".into()),
        ("--allowed-ip", "::/1".into(), "2001:db8::1".into()),
        (
            "--allowed-ip",
            format!("{}/32", a_sentry.underlay),
            a_sentry.underlay.to_string(),
        ),
        (
            "--allowed-ip",
            format!("{}/32", producer.underlay),
            producer.underlay.to_string(),
        ),
        (
            "--allowed-ip",
            format!("{a_prefix}.128/25"),
            format!("{a_prefix}.200"),
        ),
        (
            "--address",
            format!("{a_prefix}.77/32"),
            format!("{a_prefix}.77"),
        ),
    ];
    let observers = [&producer, &a_sentry, &b_sentry, &c_sentry];
    let routes_before: Vec<Vec<String>> = observers
        .iter()
        .map(|member| {
            claims
                .iter()
                .map(|(_, _, probe)| route_to(member, probe))
                .collect()
        })
        .collect();
    let sentries = [&a_sentry, &b_sentry, &c_sentry];
    let cards_before: Vec<u64> = sentries
        .iter()
        .map(|member| member.metric("sentrymesh_mesh_objects", ",kind=\"card\""))
        .collect();

    let mut greedy_keys = Vec::new();
    for (i, (flag, claim, _)) in claims.iter().enumerate() {
        let name = format!("c-greedy-{i}");
        let key = lab.sentrymesh(&["genkey"]);
        let public = run_ok(Command::new(SENTRYMESH).arg("pubkey"), key.as_bytes())
            .trim()
            .to_owned();
        let key_file = lab.write_switch_file(&format!("{name}.key"), &key);
        let card = lab.switch_file(&format!("{name}.card"));
        let own_address = format!("198.19.{}.{}/32", c.number, 100 + i);
        let endpoint = format!("{}:{}", c_sentry.underlay, 52000 + i);
        let mut args = vec![
            "card",
            "issue",
            "--operator",
            c.key_file.to_str().unwrap(),
            "--name",
            &name,
            "--role",
            "sentry",
            "--wg-key",
            key_file.to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "--out",
            card.to_str().unwrap(),
        ];
        if *flag == "--address" {
            args.extend(["--address", claim.as_str()]);
        } else {
            args.extend(["--address", own_address.as_str(), flag, claim.as_str()]);
        }
        lab.sentrymesh(&args);
        c_sentry.know(&format!("{name}.card"), &card);
        greedy_keys.push((name, public));
    }
    // Published at c's sentry, they reach every other sentry by gossip (or,
    // were they taken, would change a route first: some of the claims would
    // pull the gossip itself into c's tunnel).
    c_sentry.reload();
    let routes_now = || -> Vec<Vec<String>> {
        observers
            .iter()
            .map(|member| {
                claims
                    .iter()
                    .map(|(_, _, probe)| route_to(member, probe))
                    .collect()
            })
            .collect()
    };
    let spread = wait_until(FORMS_WITHIN, || {
        let all_hold = sentries.iter().zip(&cards_before).all(|(member, before)| {
            member.metric("sentrymesh_mesh_objects", ",kind=\"card\"") == before + 7
        });
        all_hold || routes_now() != routes_before
    });

    for (member, before) in observers.iter().zip(&routes_before) {
        for ((_, claim, probe), was) in claims.iter().zip(before) {
            assert_eq!(
                &route_to(member, probe),
                was,
                "{}: the route to {probe} changed after a card claimed {claim}",
                member.name
            );
        }
        let listed = member
            .host
            .run("wg", &["show", &member.ifname, "allowed-ips"]);
        for (name, key) in &greedy_keys {
            assert!(
                !listed.contains(key.as_str()),
                "{} peers with {name}:\n{listed}",
                member.name
            );
        }
        for allowed in listed
            .lines()
            .flat_map(|line| line.split_whitespace().skip(1))
        {
            assert!(
                allowed.starts_with("198.19.") && allowed.ends_with("/32"),
                "{} routes {allowed} into the tunnel:\n{listed}",
                member.name
            );
        }
    }
    assert!(spread, "c's cards did not spread:\n{}", a_sentry.log());
    // Each refusal counted once and logged once, by host name and operator,
    // without the prefix at fault.
    for member in sentries {
        assert_eq!(
            member.metric("sentrymesh_mesh_cards_out_of_range_total", ""),
            7,
            "{}",
            member.name
        );
        let log = member.log();
        for ((name, _), (_, claim, _)) in greedy_keys.iter().zip(&claims) {
            let lines: Vec<&str> = log
                .lines()
                .filter(|line| line.contains(&format!("the card of host {name} ")))
                .collect();
            assert_eq!(lines.len(), 1, "{}: {name} logged {lines:?}", member.name);
            assert!(
                lines[0].contains(&c.id) && lines[0].contains("is refused"),
                "{}",
                lines[0]
            );
            assert!(!lines[0].contains(claim.as_str()), "{}", lines[0]);
        }
    }
    // The mesh still works.
    assert!(producer.pings(&a_sentry) && b_sentry.pings(&c_sentry));
    // The rest of the overlay is unreachable, not sent to the underlay: with
    // a default route on the underlay (none is used: only looked up), the
    // producer's packets for another operator's sentry are refused at once.
    let gateway = a_sentry.underlay.to_string();
    producer
        .host
        .ip(&["route", "add", "default", "via", &gateway]);
    let refused = route_to(&producer, &b_sentry.overlay.to_string());
    assert!(refused.contains("No route to host"), "{refused}");
    // Until the member stops: then the default route takes them again.
    producer.stop();
    let after = route_to(&producer, &b_sentry.overlay.to_string());
    assert!(after.contains(&format!("via {gateway}")), "{after}");
}
