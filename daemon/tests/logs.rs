//! The daemon's logs, from daemons on namespace hosts: a mesh of two
//! operators with a hidden producer each, every member logging at `trace`,
//! shows in no log a private key, a preshared key or an operator's secret
//! key, nor a hidden host's underlay address or card, and in no log of
//! another operator anything that names a hidden host; at `info` each
//! session change is one line and a burst of packets none; the JSON format
//! writes one object a line; a `wg`-mode pair with a preshared key logs
//! neither key, and under systemd's journal writes priorities and no
//! timestamps.
//!
//! The tests need root and fail (never skip) without it. Every address is in
//! 198.18.0.0/15; see [`sentrymesh_lab::mesh_lab`].

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::Duration;

use sentrymesh_lab::mesh_lab::{
    Lab, Member, REVOKED_WITHIN, Role, WG_PORT, assert_peers, base64_decode,
};
use sentrymesh_lab::{
    EVENT_WITHIN, Host, Keys, Overlay, PeerSection, Process, add_address, configure, link,
    preshared_key, set_up, socket_path, unique_ifname, wait_until,
};

/// The daemon under test, built with these tests.
const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

/// How long a session change may take to be logged: the data path looks
/// once a second; the ceiling is for a loaded machine.
const LOGGED_WITHIN: Duration = EVENT_WITHIN;

/// Two operators, each with a hidden producer behind one sentry, every
/// member at `trace` (one of them in JSON): the mesh forms, packets flow,
/// a producer's underlay sends its sentry datagrams it drops, a host is
/// revoked. Then no log holds a secret or anything of a hidden host
/// it may not, each session change was one `info` line, and the packets
/// none.
#[test]
fn a_mesh_logged_at_trace_shows_no_secret_and_nothing_of_its_hidden_hosts() {
    let mut lab = Lab::new(SENTRYMESH, "logs");
    let operators = [lab.operator("a"), lab.operator("b")];
    let mut a_producer = lab.member(&operators[0], "a-producer", Role::Producer);
    let mut a_sentry = lab.member(&operators[0], "a-sentry", Role::Sentry);
    let mut b_producer = lab.member(&operators[1], "b-producer", Role::Producer);
    let mut b_sentry = lab.member(&operators[1], "b-sentry", Role::Sentry);
    a_producer.know_card(&a_sentry);
    a_sentry.know_card(&a_producer);
    a_sentry.know_card(&b_sentry);
    b_producer.know_card(&b_sentry);
    b_sentry.know_card(&b_producer);
    b_sentry.know_card(&a_sentry);
    a_producer.configure(&[&operators[1]], 1, 1);
    a_sentry.configure(&[&operators[1]], 1, 2);
    b_producer.configure(&[&operators[0]], 1, 1);
    b_sentry.configure(&[&operators[0]], 1, 2);
    a_sentry.start_logging("trace", "json");
    for member in [&mut a_producer, &mut b_producer, &mut b_sentry] {
        member.start_logging("trace", "human");
    }
    assert_peers(&a_producer, &[&a_sentry]);
    assert_peers(&a_sentry, &[&a_producer, &b_sentry]);
    assert_peers(&b_sentry, &[&a_sentry, &b_producer]);
    assert_peers(&b_producer, &[&b_sentry]);
    let sessions = [
        (&a_producer, vec![&a_sentry]),
        (&a_sentry, vec![&a_producer, &b_sentry]),
        (&b_sentry, vec![&a_sentry, &b_producer]),
        (&b_producer, vec![&b_sentry]),
    ];
    for (member, peers) in &sessions {
        for peer in peers {
            wait_for_line(member, &["session up", &peer.wg_public]);
        }
        // The readiness gate looks at the sessions on its own timer: on a
        // busy machine it opens, and says so, after the sessions are up.
        wait_for_line(member, &["is ready"]);
    }

    // A burst of packets through every session adds no line at info.
    let members = [&a_producer, &a_sentry, &b_sentry, &b_producer];
    let before: Vec<usize> = members.iter().map(|m| info_lines(&m.log()).len()).collect();
    for (from, to) in [
        (&a_producer, &a_sentry),
        (&a_sentry, &b_sentry),
        (&b_producer, &b_sentry),
    ] {
        let to = to.overlay.to_string();
        from.host.run(
            "ping",
            &["-n", "-q", "-c", "100", "-i", "0.01", "-W", "1", &to],
        );
    }
    // The producer's underlay sends its sentry datagrams the sentry drops:
    // data for no session, a cut initiation, an unknown type.
    let (from, to) = (a_producer.underlay, a_sentry.underlay);
    a_producer.host.in_namespace(move || {
        let socket = std::net::UdpSocket::bind((from, 0)).expect("a socket");
        let mut data = vec![4, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
        data.resize(48, 0);
        for datagram in [&data[..], &[1, 0, 0, 0, 9][..], &[9; 40][..]] {
            socket.send_to(datagram, (to, WG_PORT)).expect("sent");
        }
    });
    // Past the data path's next look at its sessions.
    std::thread::sleep(Duration::from_secs(2));
    for (member, before) in members.iter().zip(before) {
        let log = member.log();
        let info = info_lines(&log);
        assert_eq!(
            info.len(),
            before,
            "{} logged at info while packets flowed:\n{}",
            member.name,
            info[before.min(info.len())..].join("\n")
        );
    }

    // Operator b revokes its sentry; published at a-sentry, which drops it.
    a_sentry.know_revocation(&lab, &operators[1], &b_sentry);
    a_sentry.reload();
    let revoked = format!("revoked host key {}", b_sentry.wg_public);
    wait_for_line(&a_sentry, &[&revoked]);
    wait_for_line(&a_sentry, &["session down", &b_sentry.wg_public]);
    assert!(
        wait_until(REVOKED_WITHIN, || !a_sentry
            .peers()
            .contains(&b_sentry.wg_public)),
        "the revoked sentry is still a peer"
    );

    // Each change of a session, of trust, one line at info.
    for (member, peers) in &sessions {
        let log = member.log();
        for peer in peers {
            assert_eq!(
                count_info(&log, &["session up", &peer.wg_public]),
                1,
                "{}: not one line for the session with {}:\n{log}",
                member.name,
                peer.name
            );
        }
    }
    let log = a_sentry.log();
    for change in [
        vec![revoked.as_str()],
        vec!["session down", &b_sentry.wg_public],
        vec!["operator", &operators[1].id, "admitted"],
    ] {
        assert_eq!(count_info(&log, &change), 1, "{change:?}:\n{log}");
    }

    // Every line of the JSON log is one object with the four keys.
    for line in log.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
        for key in ["timestamp", "level", "target", "message"] {
            assert!(value.get(key).is_some(), "no {key}: {line}");
        }
    }

    // What no log may show.
    let mut everywhere = Vec::new();
    for member in members {
        everywhere.extend(private_key(&member.name, &member.host.dir().join("wg.key")));
    }
    for operator in &operators {
        everywhere.extend(private_key("an operator", &operator.key_file));
    }
    for producer in [&a_producer, &b_producer] {
        everywhere.extend(hidden_host(producer));
    }
    for member in members {
        let log = member.log();
        let mut forbidden = everywhere.clone();
        for producer in [&a_producer, &b_producer] {
            if producer.operator != member.operator {
                forbidden.extend(names_of(producer));
            }
        }
        let found = leaks(&log, &forbidden);
        assert!(
            found.is_empty(),
            "the log of {} shows what it must not:\n{}",
            member.name,
            found.join("\n")
        );
    }
}

/// Two `sentrymesh wg` daemons with a preshared key, at `trace`, one of them
/// under systemd's journal: neither logs a private or the preshared key;
/// the journal gets each line with its priority and without a timestamp,
/// and the session's coming up at priority 6.
#[test]
fn wg_mode_at_trace_logs_no_key_and_the_journal_gets_priorities() {
    let (host_a, host_b) = (Host::new("logs-wg-a"), Host::new("logs-wg-b"));
    let link = link(&host_a, &host_b);
    let overlay = Overlay::allocate();
    let (keys_a, keys_b) = (Keys::generate(), Keys::generate());
    let psk = preshared_key();
    let (ifname_a, ifname_b) = (unique_ifname(), unique_ifname());

    // a's standard error is the journal's stream: JOURNAL_STREAM names it.
    let journal = host_a.write_file("journal", "");
    let stream = std::fs::metadata(&journal).expect("the journal file");
    let mut command = host_a.command("env");
    command.args([
        "WG_PROCESS_FOREGROUND=1",
        "RUST_LOG=trace",
        &format!("JOURNAL_STREAM={}:{}", stream.dev(), stream.ino()),
        SENTRYMESH,
        "wg",
        "-f",
        &ifname_a,
    ]);
    host_a.register_interface(&ifname_a);
    let daemon_a =
        Process::spawn_logging_to("sentrymesh wg under the journal", &mut command, &journal)
            .unwrap_or_else(|error| panic!("{error}"));
    host_b.register_interface(&ifname_b);
    let daemon_b = host_b.spawn(
        "sentrymesh wg",
        "env",
        &[
            "WG_PROCESS_FOREGROUND=1",
            "RUST_LOG=trace",
            SENTRYMESH,
            "wg",
            "-f",
            &ifname_b,
        ],
    );
    for ifname in [&ifname_a, &ifname_b] {
        assert!(
            wait_until(EVENT_WITHIN, || socket_path(ifname).exists()),
            "no UAPI socket for {ifname}:\n{}\n{}",
            daemon_a.log(),
            daemon_b.log()
        );
    }
    let port = 51820;
    let peer = |keys: &Keys, address: std::net::Ipv4Addr, inside: std::net::Ipv4Addr| PeerSection {
        public_key: keys.public.clone(),
        preshared_key: Some(psk.clone()),
        endpoint: Some((address, port).into()),
        allowed_ips: vec![format!("{inside}/32")],
        persistent_keepalive: None,
    };
    configure(
        &host_a,
        &ifname_a,
        &keys_a.private,
        Some(port),
        &[peer(&keys_b, link.b4, overlay.b4)],
    );
    configure(
        &host_b,
        &ifname_b,
        &keys_b.private,
        Some(port),
        &[peer(&keys_a, link.a4, overlay.a4)],
    );
    add_address(&host_a, &ifname_a, overlay.a4.into(), Overlay::PREFIX4);
    add_address(&host_b, &ifname_b, overlay.b4.into(), Overlay::PREFIX4);
    set_up(&host_a, &ifname_a);
    set_up(&host_b, &ifname_b);
    host_a.run(
        "ping",
        &[
            "-n",
            "-q",
            "-c",
            "20",
            "-i",
            "0.01",
            "-W",
            "5",
            &overlay.b4.to_string(),
        ],
    );
    assert!(
        wait_until(LOGGED_WITHIN, || daemon_a.log().contains("session up")
            && daemon_b.log().contains("session up")),
        "no session up:\n{}\n{}",
        daemon_a.log(),
        daemon_b.log()
    );

    let mut forbidden = Vec::new();
    for (name, keys) in [("a", &keys_a), ("b", &keys_b)] {
        forbidden.extend(key_forms(&format!("{name}'s private key"), &keys.private));
    }
    forbidden.extend(key_forms("the preshared key", &psk));
    for (name, log) in [("a", daemon_a.log()), ("b", daemon_b.log())] {
        let found = leaks(&log, &forbidden);
        assert!(found.is_empty(), "{name} logged:\n{}", found.join("\n"));
    }

    let journal = daemon_a.log();
    for line in journal.lines() {
        let priority = line
            .strip_prefix('<')
            .and_then(|rest| rest.split_once('>'))
            .map(|(priority, _)| priority);
        assert!(
            matches!(priority, Some("3" | "4" | "6" | "7")),
            "a journal line without its priority: {line}"
        );
        assert!(
            !line.contains(" INFO ") && !line[3..].starts_with("20"),
            "a journal line with a timestamp or a level: {line}"
        );
    }
    assert!(
        journal
            .lines()
            .any(|line| line.starts_with("<6>") && line.contains("session up")),
        "no session up at priority 6:\n{journal}"
    );
}

/// The leak check finds a leak: a log line with a private key (in any of
/// its forms), or with a hidden host's address, is caught; an address that
/// merely starts alike is not.
#[test]
fn the_check_catches_a_leaking_line() {
    let key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    let forbidden: Vec<Forbidden> = key_forms("a key", key)
        .into_iter()
        .chain([Forbidden::address("an address", "198.18.0.1")])
        .collect();
    let hex: String = base64_decode(key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for leaking in [
        format!("INFO a line with {key} in it"),
        format!("TRACE {}", &key[..43]),
        format!("DEBUG secret={hex}"),
        format!("DEBUG secret={:?}", base64_decode(key)),
        "TRACE dropped a datagram from 198.18.0.1:51820".to_owned(),
        "TRACE from 198.18.0.1".to_owned(),
    ] {
        assert!(!leaks(&leaking, &forbidden).is_empty(), "{leaking}");
    }
    assert!(leaks("TRACE from 198.18.0.10:51820, 198.18.0.100", &forbidden).is_empty());
}

/// Something no log may show, with what it is.
#[derive(Clone, Debug)]
struct Forbidden {
    what: String,
    needle: String,
    /// An address: found only as a whole (198.18.0.1 is not in 198.18.0.10).
    whole: bool,
}

impl Forbidden {
    fn text(what: &str, needle: &str) -> Forbidden {
        Forbidden {
            what: what.to_owned(),
            needle: needle.to_owned(),
            whole: false,
        }
    }

    fn address(what: &str, address: &str) -> Forbidden {
        Forbidden {
            what: what.to_owned(),
            needle: address.to_owned(),
            whole: true,
        }
    }

    /// Whether `line` shows it.
    fn is_in(&self, line: &str) -> bool {
        if !self.whole {
            return line.contains(&self.needle);
        }
        line.match_indices(&self.needle).any(|(at, _)| {
            let before = line[..at].chars().next_back();
            let after = line[at + self.needle.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit() || c == '.')
                && !after.is_some_and(|c| c.is_ascii_digit())
        })
    }
}

/// Each line of `log` that shows something of `forbidden`, with what.
fn leaks(log: &str, forbidden: &[Forbidden]) -> Vec<String> {
    log.lines()
        .flat_map(|line| {
            forbidden
                .iter()
                .filter(|f| f.is_in(line))
                .map(move |f| format!("{}: {line}", f.what))
        })
        .collect()
}

/// The forms a 32-byte key given in base64 could take in a log: base64
/// with or without its padding, hex in either case, and the decimal bytes
/// of a `Debug` of the array.
fn key_forms(what: &str, base64: &str) -> Vec<Forbidden> {
    let base64 = base64.trim();
    let bytes = base64_decode(base64);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let decimal: Vec<String> = bytes.iter().take(8).map(u8::to_string).collect();
    vec![
        Forbidden::text(&format!("{what} (base64)"), &base64[..40]),
        Forbidden::text(&format!("{what} (hex)"), &hex),
        Forbidden::text(&format!("{what} (HEX)"), &hex.to_uppercase()),
        Forbidden::text(&format!("{what} (bytes)"), &decimal.join(", ")),
    ]
}

/// The forms of the key in the key file `path`.
fn private_key(owner: &str, path: &Path) -> Vec<Forbidden> {
    let text = std::fs::read_to_string(path).expect("a key file");
    key_forms(&format!("the secret key of {owner}"), &text)
}

/// What of a hidden host no log may show: its underlay address and its
/// card (each line of its armoured text).
fn hidden_host(member: &Member) -> Vec<Forbidden> {
    let mut forbidden = vec![Forbidden::address(
        &format!("the underlay address of {}", member.name),
        &member.underlay.to_string(),
    )];
    let card = std::fs::read_to_string(member.card()).expect("a card");
    for line in card.lines().skip(1).filter(|line| line.len() >= 24) {
        forbidden.push(Forbidden::text(
            &format!("the card of {}", member.name),
            line,
        ));
    }
    forbidden
}

/// What names a hidden host, which no other operator's host may show.
fn names_of(member: &Member) -> Vec<Forbidden> {
    let what = |thing: &str| format!("the {thing} of {}", member.name);
    vec![
        Forbidden::text(&what("name"), &member.name),
        Forbidden::address(&what("overlay address"), &member.overlay.to_string()),
        Forbidden::text(&what("WireGuard key"), &member.wg_public[..40]),
        Forbidden::text(&what("chain id"), &member.chain_id),
    ]
}

/// The lines of `log` at level info, human or JSON.
fn info_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains(" INFO ") || line.contains("\"level\":\"INFO\""))
        .collect()
}

/// How many lines at info contain every one of `parts`.
fn count_info(log: &str, parts: &[&str]) -> usize {
    info_lines(log)
        .into_iter()
        .filter(|line| parts.iter().all(|part| line.contains(part)))
        .count()
}

/// Waits until `member` logged a line at info with every one of `parts`.
///
/// # Panics
///
/// When it did not within [`LOGGED_WITHIN`]; the message has its log.
#[track_caller]
fn wait_for_line(member: &Member, parts: &[&str]) {
    assert!(
        wait_until(LOGGED_WITHIN, || count_info(&member.log(), parts) > 0),
        "{} logged no {parts:?}:\n{}",
        member.name,
        member.log()
    );
}
