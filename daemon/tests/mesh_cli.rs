//! The operator commands end to end: the built `sentrymesh` binary run in a
//! temporary directory, as operators run it — operator keys, cards, bundles
//! sealed to some operators and opened by them, refusals with a one-line
//! reason, vouches and revocations the mesh crate reads back.
//!
//! Card expiry is tested through the hidden `SENTRYMESH_NOW` override,
//! which replaces the clock of one run.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use sentrymesh_mesh::armour::{self, ArmourKind};
use sentrymesh_mesh::{
    OperatorId, RevocationTarget, Role, SignedCard, SignedRevocation, SignedVouch,
};
use sentrymesh_types::PublicKey;

const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");
const DAY: u64 = 86_400;
/// The example private key of wg(8): the sentry's.
const WG_PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
/// Hosts' WireGuard key pairs, as `wg genkey` and `wg pubkey` print them;
/// each private key is in `NAME.wg` in every work directory.
const WG_SENTRY: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";
const WG_PRODUCER_PRIVATE: &str = "0MO14ftj98v1kveDxVPzgiwNqAVfnQd/EOX14bsiYlQ=";
const WG_PRODUCER: &str = "vWK86bFPgRElpev8USsL8ZlwHC7eeG7WHRd91z5YHAc=";
const WG_FULL_PRIVATE: &str = "cCuGMhwoixHkHfRzK1P7x/psicrgItwD2Zu8gR+htXM=";
const WG_FULL: &str = "am5A3f6yQogr07aW5H22uNCZhiQQsfREHCN7GbD38zU=";
/// The hosts' private key files.
const HOST_KEY_FILES: [&str; 3] = ["sentry.wg", "producer.wg", "full.wg"];

/// A temporary directory to run `sentrymesh` in, remembering everything it
/// printed so a test can check that no secret ever showed.
struct Workdir {
    dir: tempfile::TempDir,
    printed: RefCell<String>,
}

impl Workdir {
    /// A new directory holding the hosts' private key files.
    fn new() -> Self {
        let dir = Self {
            dir: tempfile::tempdir().unwrap(),
            printed: RefCell::new(String::new()),
        };
        for (name, key) in
            HOST_KEY_FILES
                .iter()
                .zip([WG_PRIVATE, WG_PRODUCER_PRIVATE, WG_FULL_PRIVATE])
        {
            let path = dir.path(name);
            fs::write(&path, format!("{key}\n")).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap()
    }

    /// Runs `sentrymesh ARGS` here, with `now` as the time if given.
    fn run_at(&self, now: Option<u64>, args: &[&str]) -> Output {
        let mut command = Command::new(SENTRYMESH);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("SENTRYMESH_NOW")
            .env_remove("RUST_LOG")
            .env_remove("LOG_LEVEL");
        if let Some(now) = now {
            command.env("SENTRYMESH_NOW", now.to_string());
        }
        let output = command.output().unwrap();
        let mut printed = self.printed.borrow_mut();
        printed.push_str(&String::from_utf8_lossy(&output.stdout));
        printed.push_str(&String::from_utf8_lossy(&output.stderr));
        output
    }

    /// Runs `sentrymesh ARGS`, asserts it succeeds quietly, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run_at(None, args);
        let (stdout, stderr) = texts(&output);
        assert!(
            output.status.success() && stderr.is_empty(),
            "sentrymesh {args:?}: {}\n{stderr}",
            output.status
        );
        stdout
    }

    /// Runs `sentrymesh ARGS` at `now`, asserts it fails, returns stderr.
    fn fails_at(&self, now: Option<u64>, args: &[&str]) -> String {
        let output = self.run_at(now, args);
        let (stdout, stderr) = texts(&output);
        assert!(
            !output.status.success(),
            "sentrymesh {args:?} succeeded:\n{stdout}"
        );
        assert!(stdout.is_empty(), "sentrymesh {args:?} printed:\n{stdout}");
        stderr
    }

    fn fails(&self, args: &[&str]) -> String {
        self.fails_at(None, args)
    }

    /// Runs a command the daemon itself refuses (not clap): exit status 1
    /// and one line, `sentrymesh: REASON`; returns the reason.
    fn refused_at(&self, now: Option<u64>, args: &[&str]) -> String {
        let stderr = self.fails_at(now, args);
        let reason = stderr
            .lines()
            .filter(|line| !line.contains("SENTRYMESH_NOW is set"))
            .collect::<Vec<_>>();
        assert_eq!(reason.len(), 1, "not one line: {stderr}");
        reason[0]
            .strip_prefix("sentrymesh: ")
            .unwrap_or_else(|| panic!("{stderr}"))
            .to_owned()
    }

    fn refused(&self, args: &[&str]) -> String {
        self.refused_at(None, args)
    }

    /// Makes operator `name`'s key in `NAME.key`; returns its id.
    fn operator(&self, name: &str) -> String {
        let key = format!("{name}.key");
        let id = self.ok(&["operator", "new", "--out", &key]);
        assert_eq!(id.len(), 45, "{id:?}");
        id.trim().to_owned()
    }

    /// Asserts that nothing printed so far shows a line of any key file.
    fn assert_no_secret_printed(&self, key_files: &[&str]) {
        let printed = self.printed.borrow();
        for name in key_files {
            let secret = self.read(name);
            assert!(!printed.contains(secret.trim()), "{name} was printed");
        }
    }
}

fn texts(output: &Output) -> (String, String) {
    (
        String::from_utf8(output.stdout.clone()).unwrap(),
        String::from_utf8(output.stderr.clone()).unwrap(),
    )
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn operator_key_files_are_private_and_never_replaced() {
    let dir = Workdir::new();
    let id = dir.operator("alice");
    let secret = dir.read("alice.key");
    assert_eq!(mode(&dir.path("alice.key")), 0o600);

    let reason = dir.refused(&["operator", "new", "--out", "alice.key"]);
    assert_eq!(
        reason,
        "'alice.key' exists already; an operator key is never overwritten (move the file away \
         or choose another name)"
    );
    assert_eq!(dir.read("alice.key"), secret);
    let entries = fs::read_dir(dir.dir.path()).unwrap().count();
    assert_eq!(
        entries,
        1 + HOST_KEY_FILES.len(),
        "no temporary file is left behind"
    );

    let reason = dir.refused(&["operator", "new", "--out", "no/such/dir/op.key"]);
    assert!(
        reason.starts_with("cannot write operator key file 'no/such/dir/op.key': "),
        "{reason}"
    );

    fs::set_permissions(dir.path("alice.key"), fs::Permissions::from_mode(0o644)).unwrap();
    let reason = dir.refused(&["operator", "show", "alice.key"]);
    assert_eq!(
        reason,
        "permissions 0644 for operator key file 'alice.key' are too open; chmod 600 it"
    );
    fs::set_permissions(dir.path("alice.key"), fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(dir.ok(&["operator", "show", "alice.key"]).trim(), id);

    let reason = dir.refused(&["operator", "show", "missing.key"]);
    assert!(
        reason.starts_with("operator key file 'missing.key' does not exist"),
        "{reason}"
    );
    for (name, content, expected) in [
        (
            "wg.key",
            format!("{WG_PRIVATE}\n"),
            "this looks like a WireGuard private key",
        ),
        (
            "garbage.key",
            "hunter2-my-password\n".to_owned(),
            "not an operator key",
        ),
    ] {
        let path = dir.path(name);
        fs::write(&path, &content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let output = dir.run_at(None, &["operator", "show", name]);
        let (stdout, stderr) = texts(&output);
        assert!(!output.status.success(), "{stdout}");
        assert!(
            stderr.starts_with(&format!(
                "sentrymesh: cannot use '{name}' as an operator key: "
            )),
            "{stderr}"
        );
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains(content.trim()), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    dir.assert_no_secret_printed(&["alice.key"]);
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Issues the sentry card of `operator` into `NAME.card`.
fn issue_sentry(dir: &Workdir, operator: &str, name: &str, extra: &[&str]) {
    let key = format!("{operator}.key");
    let card = format!("{name}.card");
    let mut args = vec![
        "card",
        "issue",
        "--operator",
        &key,
        "--name",
        name,
        "--role",
        "sentry",
        "--wg-key",
        "sentry.wg",
        "--address",
        "198.18.1.1/24",
        "--endpoint",
        "198.18.0.1:51820",
        "--out",
        &card,
    ];
    args.extend_from_slice(extra);
    assert_eq!(dir.ok(&args), "");
}

#[test]
fn a_card_requested_on_the_host_is_signed_by_the_operator() {
    let dir = Workdir::new();
    let alice = dir.operator("alice");
    let bob = dir.operator("bob");
    // On the host: its key and Alice's id, no operator key.
    let request = dir.ok(&[
        "card",
        "request",
        "--operator-id",
        &alice,
        "--wg-key",
        "sentry.wg",
        "--name",
        "sentry-1",
        "--role",
        "sentry",
        "--address",
        "198.19.1.1/32",
        "--endpoint",
        "198.18.1.1:51820",
        "--out",
        "sentry-1.request",
    ]);
    assert_eq!(request, "");
    assert_eq!(mode(&dir.path("sentry-1.request")), 0o600);
    assert!(
        dir.read("sentry-1.request")
            .starts_with("sentrymesh-card-request v1\n")
    );
    // On Alice's machine: her key, no host key.
    let card = dir.ok(&[
        "card",
        "sign",
        "--operator",
        "alice.key",
        "sentry-1.request",
    ]);
    let card = SignedCard::from_text(&card).unwrap().into_card();
    assert_eq!(card.operator.to_string(), alice);
    assert_eq!(card.wg_public_key.to_string(), WG_SENTRY);
    assert_eq!(card.name, "sentry-1");

    // Bob cannot sign what was asked of Alice.
    let reason = dir.refused(&["card", "sign", "--operator", "bob.key", "sentry-1.request"]);
    assert_eq!(
        reason,
        format!(
            "cannot sign the card request: the card for host `sentry-1` names operator {alice}, \
             but the key given is operator {bob}'s"
        )
    );
    // An altered request, or a card where a request should be, is refused.
    let mut altered = dir.read("sentry-1.request").into_bytes();
    let at = altered.len() / 2;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    fs::write(dir.path("altered.request"), altered).unwrap();
    let reason = dir.refused(&["card", "sign", "--operator", "alice.key", "altered.request"]);
    assert!(
        reason.starts_with("card request file 'altered.request': "),
        "{reason}"
    );
    fs::write(
        dir.path("sentry-1.card"),
        SignedCard::from_text(&dir.ok(&[
            "card",
            "sign",
            "--operator",
            "alice.key",
            "sentry-1.request",
        ]))
        .unwrap()
        .to_text(),
    )
    .unwrap();
    let reason = dir.refused(&["card", "sign", "--operator", "alice.key", "sentry-1.card"]);
    assert!(
        reason.ends_with("this is a sentrymesh card, not a card-request"),
        "{reason}"
    );
    // An endpoint that is an IPv4-mapped address (checked as IPv6, sent to
    // as IPv4) or reaches no other host is refused, saying why.
    for (endpoint, why) in [
        ("[::ffff:198.19.1.7]:51820", "an IPv4-mapped IPv6 address"),
        ("127.0.0.1:51820", "a loopback address"),
    ] {
        let reason = dir.refused(&[
            "card",
            "request",
            "--operator-id",
            &alice,
            "--wg-key",
            "sentry.wg",
            "--name",
            "sentry-9",
            "--role",
            "sentry",
            "--address",
            "198.19.1.9/32",
            "--endpoint",
            endpoint,
            "--out",
            "sentry-9.request",
        ]);
        assert!(
            reason.contains(&format!("has the endpoint {endpoint}, {why}")),
            "{reason}"
        );
    }
    dir.assert_no_secret_printed(&["alice.key", "bob.key"]);
    dir.assert_no_secret_printed(&HOST_KEY_FILES);
}

#[test]
fn three_operators_issue_seal_and_open() {
    let dir = Workdir::new();
    let alice = dir.operator("alice");
    let bob = dir.operator("bob");
    let carol = dir.operator("carol");
    for name in ["alice.key", "bob.key", "carol.key"] {
        assert_eq!(mode(&dir.path(name)), 0o600, "{name}");
    }
    assert_eq!(
        dir.ok(&["operator", "show", "alice.key"]),
        format!("{alice}\n")
    );
    assert_eq!(dir.ok(&["operator", "show", "bob.key"]), format!("{bob}\n"));

    // Alice issues a sentry card (to a file), a full node card (to stdout)
    // and a producer card.
    let before = unix_now();
    issue_sentry(
        &dir,
        "alice",
        "sentry-1",
        &[
            "--endpoint",
            "sentry-1.example.net:51820",
            "--allowed-ip",
            "198.18.64.0/24",
            "--chain-p2p",
            "f3a1c0de@26656",
            "--valid-days",
            "30",
        ],
    );
    assert_eq!(mode(&dir.path("sentry-1.card")), 0o600);
    let sentry = SignedCard::from_text(&dir.read("sentry-1.card")).unwrap();
    let card = sentry.card();
    assert_eq!(card.operator.to_string(), alice);
    assert_eq!((card.name.as_str(), card.role), ("sentry-1", Role::Sentry));
    assert_eq!(card.wg_public_key.to_string(), WG_SENTRY);
    assert_eq!(card.endpoints.len(), 2);
    assert!((before..=unix_now()).contains(&card.not_before.0));
    assert_eq!(card.not_after, card.not_before + 30 * DAY);
    assert_eq!(
        card.serial, card.not_before.0,
        "the serial is the time of issue"
    );

    let full = dir.ok(&[
        "card",
        "issue",
        "--operator",
        "alice.key",
        "--name",
        "full-1",
        "--role",
        "full",
        "--wg-key",
        "full.wg",
        "--address",
        "198.18.1.3/24",
        "--address",
        "2001:db8::3/64",
        "--endpoint",
        "[2001:db8::3]:51820",
        "--serial",
        "7",
    ]);
    assert!(full.starts_with("sentrymesh-card v1\n"), "{full}");
    let full_card = SignedCard::from_text(&full).unwrap().into_card();
    assert_eq!(full_card.serial, 7);
    assert_eq!(full_card.wg_public_key.to_string(), WG_FULL);
    fs::write(dir.path("full-1.card"), &full).unwrap();

    dir.ok(&[
        "card",
        "issue",
        "--operator",
        "alice.key",
        "--name",
        "producer-1",
        "--role",
        "producer",
        "--wg-key",
        "producer.wg",
        "--address",
        "198.18.1.2/24",
        "--out",
        "producer-1.card",
    ]);

    // `card show` checks and prints a card.
    let shown = dir.ok(&["card", "show", "producer-1.card"]);
    assert!(
        shown.contains("role          producer (hidden)\n"),
        "{shown}"
    );
    assert!(shown.contains("status        valid now\n"), "{shown}");
    assert!(
        shown.contains(&format!("wireguard key {WG_PRODUCER}\n")),
        "{shown}"
    );

    // Sealed to Bob and Carol, to a file.
    dir.ok(&[
        "card",
        "seal",
        "--operator",
        "alice.key",
        "--to",
        &bob,
        "--to",
        &carol,
        "--out",
        "alice.bundle",
        "sentry-1.card",
        "full-1.card",
    ]);
    assert!(
        dir.read("alice.bundle")
            .starts_with("sentrymesh-bundle v1\n")
    );

    // Each recipient opens it and reads the cards.
    for recipient in ["bob", "carol"] {
        let key = format!("{recipient}.key");
        let shown = dir.ok(&["card", "open", "--operator", &key, "alice.bundle"]);
        assert!(
            shown.starts_with(&format!("sender        {alice}\n")),
            "{shown}"
        );
        assert!(shown.contains("sealed at     "), "{shown}");
        assert!(shown.contains("cards         2\n"), "{shown}");
        for line in [
            "card 1 of 2\n  host          sentry-1\n  role          sentry\n",
            &format!("  operator      {alice}\n"),
            &format!("  wireguard key {WG_SENTRY}\n"),
            "  addresses     198.18.1.1/24\n",
            "  endpoints     198.18.0.1:51820\n                sentry-1.example.net:51820\n",
            "  allowed ips   198.18.64.0/24\n",
            "  valid from    ",
            "  valid until   ",
            &format!("  serial        {}\n", card.serial),
            "  chain p2p     f3a1c0de@26656\n",
            "card 2 of 2\n  host          full-1\n",
            "  addresses     198.18.1.3/24\n                2001:db8::3/64\n",
            "  serial        7\n",
            "  chain p2p     none\n",
        ] {
            assert!(shown.contains(line), "{recipient} lacks {line:?}:\n{shown}");
        }
        let recipients: Vec<&str> = shown
            .lines()
            .skip_while(|line| !line.starts_with("recipients"))
            .take(2)
            .map(|line| line.rsplit(' ').next().unwrap())
            .collect();
        let mut expected = [bob.as_str(), carol.as_str()];
        expected.sort_by_key(|id| *id.parse::<OperatorId>().unwrap().as_bytes());
        assert_eq!(recipients, expected);
    }

    // `--out-dir` writes each card as it was signed.
    dir.ok(&[
        "card",
        "open",
        "--operator",
        "bob.key",
        "--out-dir",
        "from-alice",
        "alice.bundle",
    ]);
    assert_eq!(
        dir.read("from-alice/sentry-1.card"),
        dir.read("sentry-1.card")
    );
    assert_eq!(dir.read("from-alice/full-1.card"), full);
    assert_eq!(mode(&dir.path("from-alice/full-1.card")), 0o600);

    // The sender did not address the bundle to itself: it cannot open it.
    let reason = dir.refused(&["card", "open", "--operator", "alice.key", "alice.bundle"]);
    assert_eq!(
        reason,
        format!("bundle 'alice.bundle' refused: bundle is not addressed to operator {alice}")
    );

    // A hidden card goes to its own operator only.
    let reason = dir.refused(&[
        "card",
        "seal",
        "--operator",
        "alice.key",
        "--to",
        &bob,
        "producer-1.card",
    ]);
    assert!(
        reason.starts_with(
            "cannot seal the bundle: host `producer-1` is a producer, a hidden role: its card \
             may be sealed only to its own operator"
        ),
        "{reason}"
    );
    let reason = dir.refused(&[
        "card",
        "seal",
        "--operator",
        "alice.key",
        "--to",
        &alice,
        "--to",
        &bob,
        "sentry-1.card",
        "producer-1.card",
    ]);
    assert!(reason.contains("hidden role"), "{reason}");
    let own = dir.ok(&[
        "card",
        "seal",
        "--operator",
        "alice.key",
        "--to",
        &alice,
        "producer-1.card",
    ]);
    fs::write(dir.path("own.bundle"), own).unwrap();
    let shown = dir.ok(&["card", "open", "--operator", "alice.key", "own.bundle"]);
    assert!(shown.contains("  host          producer-1\n"), "{shown}");
    assert!(
        shown.contains("  endpoints     none (hidden role)\n"),
        "{shown}"
    );

    // Only the sender's own cards can be sealed.
    let reason = dir.refused(&[
        "card",
        "seal",
        "--operator",
        "bob.key",
        "--to",
        &carol,
        "sentry-1.card",
    ]);
    assert!(reason.contains("only the sender's own cards"), "{reason}");

    dir.assert_no_secret_printed(&["alice.key", "bob.key", "carol.key"]);
    dir.assert_no_secret_printed(&HOST_KEY_FILES);
}

/// Alice's sentry card sealed to Bob, as the armoured text.
fn alice_to_bob(dir: &Workdir, extra: &[&str]) -> (String, String) {
    dir.operator("alice");
    let bob = dir.operator("bob");
    issue_sentry(dir, "alice", "sentry-1", extra);
    let bundle = dir.ok(&[
        "card",
        "seal",
        "--operator",
        "alice.key",
        "--to",
        &bob,
        "sentry-1.card",
    ]);
    (bob, bundle)
}

#[test]
fn an_altered_or_unsigned_bundle_is_refused() {
    let dir = Workdir::new();
    let (_, bundle) = alice_to_bob(&dir, &[]);
    fs::write(dir.path("good.bundle"), &bundle).unwrap();
    dir.ok(&["card", "open", "--operator", "bob.key", "good.bundle"]);
    let bytes = armour::decode(ArmourKind::Bundle, &bundle).unwrap();

    // One bit of the encrypted payload flipped.
    let mut altered = bytes.clone();
    let middle = altered.len() - 64 - 20;
    altered[middle] ^= 0x01;
    fs::write(
        dir.path("altered.bundle"),
        armour::encode(ArmourKind::Bundle, &altered),
    )
    .unwrap();
    let reason = dir.refused(&["card", "open", "--operator", "bob.key", "altered.bundle"]);
    assert!(
        reason.starts_with(
            "bundle 'altered.bundle' refused: signature does not verify: the bundle was altered"
        ),
        "{reason}"
    );

    // The signature blanked.
    let mut unsigned = bytes.clone();
    let len = unsigned.len();
    unsigned[len - 64..].fill(0);
    fs::write(
        dir.path("unsigned.bundle"),
        armour::encode(ArmourKind::Bundle, &unsigned),
    )
    .unwrap();
    let reason = dir.refused(&["card", "open", "--operator", "bob.key", "unsigned.bundle"]);
    assert!(
        reason.starts_with("bundle 'unsigned.bundle' refused: the bundle is not signed"),
        "{reason}"
    );

    // Cut short, and not a bundle at all.
    fs::write(dir.path("cut.bundle"), &bundle[..bundle.len() / 2]).unwrap();
    let reason = dir.refused(&["card", "open", "--operator", "bob.key", "cut.bundle"]);
    assert!(
        reason.starts_with("bundle 'cut.bundle' refused: "),
        "{reason}"
    );
    let reason = dir.refused(&["card", "open", "--operator", "bob.key", "sentry-1.card"]);
    assert_eq!(
        reason,
        "bundle 'sentry-1.card' refused: this is a sentrymesh card, not a bundle"
    );
    let reason = dir.refused(&["card", "open", "--operator", "bob.key", "missing.bundle"]);
    assert!(
        reason.starts_with("cannot read bundle 'missing.bundle': "),
        "{reason}"
    );
}

#[test]
fn an_expired_card_or_a_bundle_from_the_future_is_refused() {
    let dir = Workdir::new();
    let (bob, bundle) = alice_to_bob(&dir, &["--valid-days", "1"]);
    fs::write(dir.path("alice.bundle"), bundle).unwrap();
    let open = ["card", "open", "--operator", "bob.key", "alice.bundle"];
    dir.ok(&open);

    let reason = dir.refused_at(Some(unix_now() + 2 * DAY), &open);
    assert!(
        reason
            .starts_with("bundle 'alice.bundle' refused: the card for host `sentry-1` expired at"),
        "{reason}"
    );
    let reason = dir.refused_at(Some(unix_now() - DAY), &open);
    assert!(
        reason.contains("refused: the bundle was created at") && reason.contains("in the future"),
        "{reason}"
    );
    // An expired card is not sealed either.
    let reason = dir.refused_at(
        Some(unix_now() + 2 * DAY),
        &[
            "card",
            "seal",
            "--operator",
            "alice.key",
            "--to",
            &bob,
            "sentry-1.card",
        ],
    );
    assert!(reason.contains("expired at"), "{reason}");
    // The override announces itself.
    let output = dir.run_at(Some(unix_now()), &open);
    let (_, stderr) = texts(&output);
    assert!(output.status.success());
    assert!(stderr.contains("SENTRYMESH_NOW is set"), "{stderr}");
}

#[test]
fn bad_flags_are_named_with_their_values() {
    let dir = Workdir::new();
    dir.operator("alice");
    let issue = |extra: &[&str]| {
        let mut args = vec![
            "card",
            "issue",
            "--operator",
            "alice.key",
            "--name",
            "host-1",
            "--wg-key",
            "sentry.wg",
            "--address",
            "198.18.1.1/24",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let fails = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        dir.fails(&args)
    };
    for (extra, expected) in [
        (
            &["--role", "validator"][..],
            "invalid value 'validator' for '--role <ROLE>'",
        ),
        (
            &["--role", "sentry", "--endpoint", "198.18.0.1"],
            "invalid value '198.18.0.1' for '--endpoint <HOST:PORT>'",
        ),
        (
            &["--role", "sentry", "--address", "198.18.1.300/24"],
            "invalid value '198.18.1.300/24' for '--address <CIDR>'",
        ),
        (
            &["--role", "sentry", "--valid-days", "0"],
            "invalid value '0' for '--valid-days <N>'",
        ),
        (
            &["--role", "sentry", "--chain-p2p", "abc"],
            "invalid value 'abc' for '--chain-p2p <ID@PORT>'",
        ),
        (
            &["--role", "producer", "--endpoint", "198.18.0.1:51820"],
            "sentrymesh: --endpoint 198.18.0.1:51820: host `host-1` is a producer, a hidden \
             role: it may publish no endpoint\n",
        ),
        (
            &["--role", "sentry", "--allowed-ip", "198.18.64.1/24"],
            "invalid value '198.18.64.1/24' for '--allowed-ip <CIDR>': 198.18.64.1/24 has host \
             bits set; write its network, 198.18.64.0/24\n",
        ),
    ] {
        let stderr = fails(issue(extra));
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
    }
    let mut bad_name = issue(&["--role", "sentry"]);
    bad_name[5] = "Host_1".into();
    let stderr = fails(bad_name);
    assert!(
        stderr.starts_with("sentrymesh: --name: \"Host_1\""),
        "{stderr}"
    );
    // The host's key file, not a public key, and only a usable one.
    let mut public_key = issue(&["--role", "sentry"]);
    public_key[7] = WG_SENTRY.into();
    let stderr = fails(public_key);
    assert_eq!(
        stderr,
        format!("sentrymesh: --wg-key: key file '{WG_SENTRY}' does not exist\n")
    );
    fs::write(dir.path("open.wg"), format!("{WG_PRIVATE}\n")).unwrap();
    fs::set_permissions(dir.path("open.wg"), fs::Permissions::from_mode(0o644)).unwrap();
    let mut open = issue(&["--role", "sentry"]);
    open[7] = "open.wg".into();
    let stderr = fails(open);
    assert_eq!(
        stderr,
        "sentrymesh: --wg-key: permissions 0644 for key file 'open.wg' are too open; chmod 600 \
         it\n"
    );
    let mut missing = issue(&["--role", "sentry"]);
    missing.drain(6..8);
    let stderr = fails(missing);
    assert!(stderr.contains("--wg-key <FILE>"), "{stderr}");
    dir.assert_no_secret_printed(&HOST_KEY_FILES);
    let stderr = fails(issue(&[]));
    assert!(stderr.contains("--role <ROLE>"), "{stderr}");

    let stderr = dir.fails(&[
        "card",
        "seal",
        "--operator",
        "alice.key",
        "--to",
        "bob",
        "x.card",
    ]);
    assert!(
        stderr.contains("invalid value 'bob' for '--to <OPERATOR_ID>'"),
        "{stderr}"
    );
    let stderr = dir.fails(&["card", "seal", "--operator", "alice.key", "x.card"]);
    assert!(stderr.contains("--to <OPERATOR_ID>"), "{stderr}");
}

#[test]
fn vouches_and_revocations_are_signed_statements() {
    let dir = Workdir::new();
    let alice: OperatorId = dir.operator("alice").parse().unwrap();
    let bob: OperatorId = dir.operator("bob").parse().unwrap();
    let before = unix_now();

    let text = dir.ok(&[
        "trust",
        "vouch",
        "--operator",
        "alice.key",
        "--for",
        &bob.to_string(),
        "--overlay",
        "198.19.7.0/24",
    ]);
    let vouch = SignedVouch::from_text(&text).unwrap();
    assert_eq!((vouch.vouch().voucher, vouch.vouch().subject), (alice, bob));
    assert_eq!(vouch.vouch().overlay.to_string(), "198.19.7.0/24");
    assert!((before..=unix_now()).contains(&vouch.vouch().issued_at.0));

    dir.ok(&[
        "trust",
        "revoke",
        "--operator",
        "alice.key",
        "--host",
        WG_SENTRY,
        "--out",
        "sentry.revocation",
    ]);
    let revocation = SignedRevocation::from_text(&dir.read("sentry.revocation")).unwrap();
    let key: PublicKey = WG_SENTRY.parse().unwrap();
    assert_eq!(revocation.revocation().issuer, alice);
    assert_eq!(revocation.revocation().target, RevocationTarget::Host(key));

    let text = dir.ok(&[
        "trust",
        "revoke",
        "--operator",
        "alice.key",
        "--vouch",
        &bob.to_string(),
    ]);
    let revocation = SignedRevocation::from_text(&text).unwrap();
    assert_eq!(revocation.revocation().target, RevocationTarget::Vouch(bob));

    let reason = dir.refused(&[
        "trust",
        "vouch",
        "--operator",
        "alice.key",
        "--for",
        &alice.to_string(),
        "--overlay",
        "198.19.7.0/24",
    ]);
    assert_eq!(
        reason,
        format!("--for: operator {alice} cannot vouch for itself")
    );
    let stderr = dir.fails(&[
        "trust",
        "vouch",
        "--operator",
        "alice.key",
        "--for",
        &bob.to_string(),
        "--overlay",
        "198.19.7.1/24",
    ]);
    assert!(
        stderr.contains(
            "invalid value '198.19.7.1/24' for '--overlay <ADDRESS/PREFIX>': 198.19.7.1/24 has \
             host bits set; write its network, 198.19.7.0/24"
        ),
        "{stderr}"
    );
    let bob_text = bob.to_string();
    let stderr = dir.fails(&[
        "trust",
        "vouch",
        "--operator",
        "alice.key",
        "--for",
        &bob_text,
    ]);
    assert!(
        stderr.contains("--overlay <ADDRESS/PREFIX>"),
        "a vouch without a range: {stderr}"
    );
    let stderr = dir.fails(&[
        "trust",
        "vouch",
        "--operator",
        "alice.key",
        "--for",
        "x",
        "--overlay",
        "198.19.7.0/24",
    ]);
    assert!(
        stderr.contains("invalid value 'x' for '--for <OPERATOR_ID>'"),
        "{stderr}"
    );
    let stderr = dir.fails(&["trust", "revoke", "--operator", "alice.key"]);
    assert!(
        stderr.contains("--host <WG_PUBKEY>|--vouch <OPERATOR_ID>"),
        "{stderr}"
    );
    let stderr = dir.fails(&[
        "trust",
        "revoke",
        "--operator",
        "alice.key",
        "--host",
        WG_SENTRY,
        "--vouch",
        &bob.to_string(),
    ]);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    dir.assert_no_secret_printed(&["alice.key", "bob.key"]);
}
