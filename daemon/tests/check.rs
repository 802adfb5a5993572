//! `sentrymesh check -c FILE`, run as root inside a mesh member's
//! namespace: it answers whether `sentrymesh up` would take the config and
//! everything it names, and changes nothing (no interface, no UAPI socket,
//! no state directory); a problem is reported with its file (and, in the
//! config, its line and column) and exit status 1.

use std::fs;
use std::time::Duration;

use sentrymesh_lab::Finished;
use sentrymesh_lab::mesh_lab::{Lab, Member, Role};
use sentrymesh_lab::{run_command, socket_path};

const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

/// Runs `sentrymesh check -c sm.toml` in `member`'s namespace.
fn check(member: &Member) -> Finished {
    let config = member.host.dir().join("sm.toml");
    let finished = run_command(
        member
            .host
            .command(SENTRYMESH)
            .args(["check", "-c"])
            .arg(&config),
        b"",
        Duration::from_secs(30),
    );
    assert!(!finished.timed_out, "sentrymesh check hung");
    finished
}

/// Asserts that the check left no trace: no interface, no socket, no state
/// directory.
#[track_caller]
fn assert_untouched(member: &Member) {
    let links = member.host.ip(&["-brief", "link", "show"]);
    assert!(
        !links.contains(&member.ifname),
        "check made interface {}:\n{links}",
        member.ifname
    );
    assert!(
        !socket_path(&member.ifname).exists(),
        "check bound the UAPI socket"
    );
    assert!(
        !member.host.dir().join("state").exists(),
        "check made the state directory"
    );
}

#[test]
fn check_validates_a_mesh_member_and_what_it_names_without_touching_the_system() {
    let mut lab = Lab::new(SENTRYMESH, "check");
    let (a, b) = (lab.operator("a"), lab.operator("b"));
    let member = lab.member(&a, "a-sentry-1", Role::Sentry);
    let other = lab.member(&b, "b-sentry-1", Role::Sentry);
    member.know_card(&other);
    member.configure(&[&b], 1, 1);

    let ok = check(&member);
    assert!(ok.success(), "a valid config was refused:\n{}", ok.stderr);
    assert!(ok.stdout.contains("ok"), "{}", ok.stdout);
    assert_untouched(&member);

    // A bad value in the config: its file, line and column.
    let path = member.host.dir().join("sm.toml");
    let valid = fs::read_to_string(&path).unwrap();
    let broken = valid.replacen("vouch_threshold = 1", "vouch_threshold = -1", 1);
    assert_ne!(broken, valid);
    member.host.write_file("sm.toml", &broken);
    let refused = check(&member);
    assert!(!refused.success());
    let line = 1 + broken[..broken.find("vouch_threshold").unwrap()]
        .matches('\n')
        .count();
    let at = format!("{}:{line}:19: trust.vouch_threshold", path.display());
    assert!(
        refused.stderr.contains(&at),
        "no {at} in: {}",
        refused.stderr
    );

    // Another host's card: named by its file.
    member.host.write_file("sm.toml", &valid);
    let card = member.card();
    let text = fs::read_to_string(&card).unwrap();
    fs::copy(other.card(), &card).unwrap();
    let refused = check(&member);
    assert!(!refused.success());
    assert!(
        refused.stderr.contains(&card.display().to_string()),
        "the card file is not named: {}",
        refused.stderr
    );
    fs::write(&card, &text).unwrap();

    // A known object that is no object: named by its file.
    fs::write(member.host.dir().join("known/junk.vouch"), "not a vouch\n").unwrap();
    let refused = check(&member);
    assert!(!refused.success());
    assert!(
        refused.stderr.contains("junk.vouch"),
        "the known file is not named: {}",
        refused.stderr
    );
    assert_untouched(&member);
}

#[test]
fn check_refuses_firewall_rules_that_cannot_match() {
    let mut lab = Lab::new(SENTRYMESH, "check-fw");
    let (a, b) = (lab.operator("a"), lab.operator("b"));
    let member = lab.member(&a, "a-sentry-1", Role::Sentry);
    let other = lab.member(&b, "b-sentry-1", Role::Sentry);
    member.know_card(&other);
    member.configure(&[&b], 1, 1);
    let path = member.host.dir().join("sm.toml");
    let valid = fs::read_to_string(&path).unwrap();
    let with_rule = |rule: &str| format!("{valid}\n[[firewall.inbound]]\n{rule}\n");

    // A rule that can match is taken.
    member.host.write_file(
        "sm.toml",
        &with_rule(
            "from = \"operators\"\nroles = [\"sentry\"]\nproto = \"tcp\"\nports = \"26660\"",
        ),
    );
    let ok = check(&member);
    assert!(ok.success(), "a valid rule was refused:\n{}", ok.stderr);

    // Ports on ICMP: at the rule's line.
    let config = with_rule("from = \"operators\"\nproto = \"icmp\"\nports = \"7\"");
    member.host.write_file("sm.toml", &config);
    let refused = check(&member);
    assert!(!refused.success());
    let line = 1 + config[..config.find("[[firewall.inbound]]").unwrap()]
        .matches('\n')
        .count();
    let at = format!(
        "{}:{line}:1: firewall.inbound[0]: ICMP has no ports",
        path.display()
    );
    assert!(
        refused.stderr.contains(&at),
        "no {at} in: {}",
        refused.stderr
    );

    // This host's own operator named by its id: known once the card is read.
    member
        .host
        .write_file("sm.toml", &with_rule(&format!("from = \"{}\"", a.id)));
    let refused = check(&member);
    assert!(!refused.success());
    assert!(
        refused.stderr.contains("names this host's own operator"),
        "{}",
        refused.stderr
    );
    assert_untouched(&member);
}
