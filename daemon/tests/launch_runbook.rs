//! The launch runbook, `docs/launch.md`, run as written: every ```sh block
//! whose first line is `# on: MACHINE` runs, in the order of the page, on
//! that machine, a network namespace of its own; `# on: MACHINE (service)`
//! starts its one command in the background, as systemd would (a second
//! one of the same command on a machine restarts it). Between the steps
//! the test checks what each step is for: the mesh forms as the roles
//! require, the validator's export names its sentries, a sentry added
//! during an attack reaches the validator's peers file with nothing run on
//! the validator, a revoked host is dropped by every member, a rotated key
//! peers, and no other operator's host ever shows a hidden host.
//!
//! Each machine has its own `/etc/sentrymesh`, `/var/lib/sentrymesh`,
//! `/run/wireguard` and `/run/sentrymesh-export`: directories of the test
//! bind-mounted over those paths in a private mount namespace for each
//! block, so the page's absolute paths and the interface name `sm0` serve
//! every machine at once. `scp` is a shim that copies between the
//! machines' directories (`MACHINE:PATH`, relative to the machine's working
//! directory unless absolute). The hosts' underlay is one switch,
//! 198.18.0.0/16, with the addresses of the page's table; the overlay is
//! the page's, 198.19.0.0/16.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sentrymesh_lab::mesh_lab::{FORMS_WITHIN, REVOKED_WITHIN};
use sentrymesh_lab::{Host, Process, require_root, run_command, spawn, wait_until};

const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");
/// The runbook.
const RUNBOOK: &str = include_str!("../../docs/launch.md");
/// The directories each machine has of its own, bind-mounted in its blocks.
const PRIVATE_DIRS: [&str; 4] = [
    "etc/sentrymesh",
    "var/lib/sentrymesh",
    "run/wireguard",
    "run/sentrymesh-export",
];
/// The machines on the underlay, with their addresses (the page's table);
/// the operators' workstations have no link.
const UNDERLAY: [(&str, &str); 6] = [
    ("a-bios", "198.18.1.1"),
    ("a-sentry-1", "198.18.1.2"),
    ("b-producer", "198.18.2.1"),
    ("b-sentry-1", "198.18.2.2"),
    ("b-sentry-2", "198.18.2.3"),
    ("c-sentry-1", "198.18.3.2"),
];
/// The longest a block may run: `wait-ready --timeout 120s` and a margin.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(180);

/// One fenced block of the page.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    /// The machine it runs on.
    machine: String,
    /// Whether it is a service: one command, kept running.
    service: bool,
    /// The shell text, without the marker line.
    script: String,
    /// Its line in the page, for messages.
    line: usize,
}

/// The page's ```sh blocks, in order.
///
/// # Panics
///
/// When a block has no `# on: MACHINE` line, or a service block has more
/// than one command.
fn blocks(page: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = page.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        if line.trim_end() != "```sh" {
            continue;
        }
        let (_, marker) = lines.next().expect("a block's first line");
        let on = marker
            .strip_prefix("# on: ")
            .unwrap_or_else(|| panic!("line {}: a ```sh block without `# on:`", number + 2));
        let (machine, service) = match on.strip_suffix(" (service)") {
            Some(machine) => (machine, true),
            None => (on, false),
        };
        let script: Vec<&str> = lines
            .by_ref()
            .map(|(_, line)| line)
            .take_while(|line| line.trim_end() != "```")
            .collect();
        assert!(
            !service || script.len() == 1,
            "line {}: a service block is one command",
            number + 1
        );
        blocks.push(Block {
            machine: machine.trim().to_owned(),
            service,
            script: script.join("\n") + "\n",
            line: number + 1,
        });
    }
    blocks
}

/// A machine: its namespace and its directory (`home` and the private
/// directories), and the services running on it by command.
struct Machine {
    // Declared first, so the services stop before the namespace goes.
    services: BTreeMap<String, Process>,
    host: Host,
    root: PathBuf,
}

/// Every machine of the page, the shim directory, and the run so far.
struct Runbook {
    machines: BTreeMap<String, Machine>,
    // Declared after the machines: the namespaces go before the links' switch.
    _switch: Host,
    blocks: Vec<Block>,
    next: usize,
    roots: tempfile::TempDir,
    _mount_points: MountPoints,
}

/// The private directories' mount points in the machine's own root, made
/// when missing and removed again (when still empty) at the end. Nothing is
/// ever mounted on them outside a block's own mount namespace. Two runbook
/// tests at once on one machine would share them, and the first to end
/// would remove them under the other, failing it.
struct MountPoints(Vec<PathBuf>);

impl MountPoints {
    fn make() -> MountPoints {
        let mut made = Vec::new();
        for dir in PRIVATE_DIRS {
            let path = Path::new("/").join(dir);
            if !path.exists() {
                fs::create_dir_all(&path).expect("a mount point");
                made.push(path);
            }
        }
        MountPoints(made)
    }
}

impl Drop for MountPoints {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_dir(path);
        }
    }
}

/// `scp` for the runbook: copies `SOURCE... DESTINATION`, each `MACHINE:PATH`
/// or a local path, between the machines' directories under `$ROOTS`.
const SCP_SHIM: &str = r#"#!/bin/sh
set -e
map() {
    case $1 in
    *:*)
        machine=${1%%:*}; path=${1#*:}
        [ -d "$ROOTS/$machine" ] || { echo "scp: no machine $machine" >&2; exit 1; }
        case $path in
        /*) printf '%s\n' "$ROOTS/$machine$path" ;;
        *) printf '%s\n' "$ROOTS/$machine/home/$path" ;;
        esac ;;
    *) printf '%s\n' "$1" ;;
    esac
}
for last; do :; done
destination=$(map "$last")
count=$#
while [ "$count" -gt 1 ]; do
    case $1 in -*) ;; *) cp "$(map "$1")" "$destination" ;; esac
    shift; count=$((count - 1))
done
"#;

/// How a block is entered: the machine's directories mounted over the
/// page's paths, then the script (or the service's command, exec'd so that
/// its process is the service's).
const ENTER: &str = r#"set -e
for dir in $PRIVATE_DIRS; do mount --bind "$ROOT/$dir" "/$dir"; done
cd "$ROOT/home"
exec sh -e "$1"
"#;

impl Runbook {
    fn new(page: &str) -> Runbook {
        require_root();
        let blocks = blocks(page);
        let mount_points = MountPoints::make();
        let roots = tempfile::Builder::new()
            .prefix("sentrymesh-runbook-")
            .tempdir()
            .expect("a directory for the machines");
        let shims = roots.path().join(".bin");
        fs::create_dir(&shims).expect("the shim directory");
        fs::write(shims.join("scp"), SCP_SHIM).expect("the scp shim");
        fs::set_permissions(shims.join("scp"), fs::Permissions::from_mode(0o755))
            .expect("the scp shim's mode");

        let switch = Host::new("rb-sw");
        switch.ip(&["link", "add", "br0", "type", "bridge"]);
        switch.ip(&["link", "set", "br0", "up"]);
        let names: BTreeSet<&str> = blocks.iter().map(|block| block.machine.as_str()).collect();
        let mut machines = BTreeMap::new();
        for (index, name) in names.into_iter().enumerate() {
            let host = Host::new(&format!("rb{index}"));
            let root = roots.path().join(name);
            for dir in PRIVATE_DIRS.iter().chain(&["home"]) {
                fs::create_dir_all(root.join(dir)).expect("a machine's directory");
            }
            if let Some((_, address)) = UNDERLAY.iter().find(|(machine, _)| *machine == name) {
                let port = format!("rb{}-{index}", std::process::id() % 100_000);
                switch.ip(&[
                    "link",
                    "add",
                    &port,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    host.name(),
                ]);
                switch.ip(&["link", "set", &port, "master", "br0", "up"]);
                host.ip(&["addr", "add", &format!("{address}/16"), "dev", "eth0"]);
                host.ip(&["link", "set", "eth0", "up"]);
            }
            let machine = Machine {
                services: BTreeMap::new(),
                host,
                root,
            };
            machines.insert(name.to_owned(), machine);
        }
        Runbook {
            machines,
            _switch: switch,
            blocks,
            next: 0,
            roots,
            _mount_points: mount_points,
        }
    }

    fn machine(&self, name: &str) -> &Machine {
        self.machines
            .get(name)
            .unwrap_or_else(|| panic!("no machine {name} in the runbook"))
    }

    /// The command that runs the script file `script` on `machine`.
    fn command(&self, machine: &str, script: &Path) -> std::process::Command {
        let path = format!(
            "{}:{}:/usr/sbin:/usr/bin:/sbin:/bin",
            self.roots.path().join(".bin").display(),
            Path::new(SENTRYMESH)
                .parent()
                .expect("a directory")
                .display()
        );
        let machine = self.machine(machine);
        let mut command = machine.host.command("unshare");
        command
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                ENTER,
                "enter",
            ])
            .arg(script)
            .env("PATH", path)
            .env("ROOTS", self.roots.path())
            .env("ROOT", &machine.root)
            .env("PRIVATE_DIRS", PRIVATE_DIRS.join(" "))
            .env("HOME", machine.root.join("home"));
        command
    }

    /// Writes `text` as a script for `machine` and returns its path.
    fn script(&self, machine: &str, text: &str) -> PathBuf {
        let path = self.roots.path().join(format!(".script-{machine}"));
        fs::write(&path, text).expect("a script");
        path
    }

    /// Runs `text` on `machine` as a block does; returns its output.
    ///
    /// # Panics
    ///
    /// When it fails; the message has its output and the machine's
    /// services' logs.
    fn sh(&self, machine: &str, text: &str) -> String {
        let script = self.script(machine, text);
        let finished = run_command(&mut self.command(machine, &script), b"", BLOCK_TIMEOUT);
        if !finished.success() {
            let logs: Vec<String> = self
                .machine(machine)
                .services
                .values()
                .map(|service| format!("-- {}\n{}", service.description(), service.log_tail(40)))
                .collect();
            panic!(
                "on {machine}, failed ({}{}):\n{text}\n-- stdout\n{}\n-- stderr\n{}\n{}",
                finished.status,
                if finished.timed_out {
                    ", timed out"
                } else {
                    ""
                },
                finished.stdout,
                finished.stderr,
                logs.join("\n")
            );
        }
        finished.stdout
    }

    /// Starts the one command `line` on `machine` in the background,
    /// stopping one of the same command first.
    fn start(&mut self, machine: &str, line: &str) {
        let key: String = line
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(mut old) = self
            .machines
            .get_mut(machine)
            .and_then(|machine| machine.services.remove(&key))
        {
            old.stop();
        }
        let script = self.script(
            &format!("{machine}-{}", key.replace(' ', "-")),
            &format!("exec {line}"),
        );
        let process = spawn(
            &format!("{machine}: {line}"),
            &mut self.command(machine, &script),
        );
        self.machines
            .get_mut(machine)
            .expect("the machine")
            .services
            .insert(key, process);
    }

    /// Runs the blocks up to and including the next one on `machine` that
    /// contains `text`; returns that block's output (none for a service).
    ///
    /// # Panics
    ///
    /// When a block fails, or there is no such block.
    fn run_through(&mut self, machine: &str, text: &str) -> String {
        loop {
            let block = self
                .blocks
                .get(self.next)
                .unwrap_or_else(|| panic!("no block on {machine} with {text:?} left"))
                .clone();
            self.next += 1;
            let started = Instant::now();
            let output = if block.service {
                self.start(&block.machine, block.script.trim());
                String::new()
            } else {
                self.sh(&block.machine, &block.script)
            };
            eprintln!(
                "line {}: {} ran on {} ({:.1} s)",
                block.line,
                if block.service { "service" } else { "block" },
                block.machine,
                started.elapsed().as_secs_f64()
            );
            if block.machine == machine && block.script.contains(text) {
                return output;
            }
        }
    }

    /// The machines the blocks from `from` to the next one to run ran on.
    fn ran_on_since(&self, from: usize) -> BTreeSet<String> {
        self.blocks[from..self.next]
            .iter()
            .map(|block| block.machine.clone())
            .collect()
    }

    /// The WireGuard public key `machine` runs with.
    fn public_key(&self, machine: &str) -> String {
        self.sh(machine, "wg show sm0 public-key").trim().to_owned()
    }

    /// The keys of `machine`'s peers, and which of them have a live
    /// session (a handshake in the last 180 s).
    fn peers(&self, machine: &str) -> (BTreeSet<String>, BTreeSet<String>) {
        let now = sentrymesh_lab::unix_now();
        let mut all = BTreeSet::new();
        let mut live = BTreeSet::new();
        for line in self.sh(machine, "wg show sm0 latest-handshakes").lines() {
            let mut fields = line.split_whitespace();
            let (Some(key), Some(time)) = (fields.next(), fields.next()) else {
                continue;
            };
            let time: u64 = time.parse().unwrap_or(0);
            if time != 0 && now.saturating_sub(time) < 180 {
                live.insert(key.to_owned());
            }
            all.insert(key.to_owned());
        }
        (all, live)
    }

    /// Waits until `machine` has a live session with exactly `expected`
    /// (machines, by the keys they run with); other peers may be configured
    /// without one (a hidden host not started yet).
    fn wait_for_peers(&self, machine: &str, expected: &[&str]) {
        let keys: BTreeSet<String> = expected.iter().map(|name| self.public_key(name)).collect();
        let formed = wait_until(FORMS_WITHIN, || {
            let (_, live) = self.peers(machine);
            live == keys
        });
        assert!(
            formed,
            "{machine} has no live sessions with exactly {expected:?} ({keys:?}): {:?}",
            self.peers(machine)
        );
    }

    /// The validator's peers file, as `export --watch` keeps it.
    fn peers_file(&self) -> String {
        fs::read_to_string(
            self.machine("b-producer")
                .root
                .join("run/sentrymesh-export/sm0/peers"),
        )
        .unwrap_or_default()
    }

    /// Asserts that no machine of another operator shows `hidden`: its
    /// name, WireGuard key or underlay address, in `status --json` or an
    /// export.
    fn assert_hidden(&self, hidden: &str, others: &[&str]) {
        let address = UNDERLAY
            .iter()
            .find(|(machine, _)| *machine == hidden)
            .map(|(_, address)| *address)
            .expect("a hidden host on the underlay");
        let key = self.public_key(hidden);
        for other in others {
            let shown = self.sh(
                other,
                "sentrymesh status --json sm0\nsentrymesh export tendermint -c /etc/sentrymesh/sm0.toml\n\
                 sentrymesh export nodeos -c /etc/sentrymesh/sm0.toml\n",
            );
            assert!(
                !shown.contains(hidden)
                    && !shown.contains(&key)
                    && !contains_address(&shown, address),
                "{other} shows the hidden host {hidden} ({key}, {address}):\n{shown}"
            );
        }
    }
}

/// Whether `text` has the IPv4 address `address` (not as a prefix of a
/// longer one).
fn contains_address(text: &str, address: &str) -> bool {
    text.match_indices(address).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + address.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit() || c == '.')
            && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[test]
fn the_runbooks_blocks_name_a_machine_each_and_services_are_one_command() {
    let page = blocks(RUNBOOK);
    assert!(page.len() > 30, "the runbook has {} blocks", page.len());
    for block in &page {
        let workstation = ["alice", "bob", "carol"].contains(&block.machine.as_str());
        let networked = UNDERLAY
            .iter()
            .any(|(machine, _)| *machine == block.machine);
        assert!(
            workstation || networked,
            "line {}: the machine {} is in neither the page's table nor the test's",
            block.line,
            block.machine
        );
    }
    let parsed = blocks("```sh\n# on: x (service)\nsentrymesh up -c a.toml\n```\n");
    assert_eq!(
        parsed,
        vec![Block {
            machine: "x".to_owned(),
            service: true,
            script: "sentrymesh up -c a.toml\n".to_owned(),
            line: 1
        }]
    );
}

#[test]
fn the_launch_runbook_runs_as_written() {
    let started = Instant::now();
    let mut runbook = Runbook::new(RUNBOOK);

    // Steps 1 to 6: keys, trust, bundles, files, the sentries up.
    let status = runbook.run_through("c-sentry-1", "sentrymesh status");
    for shown in ["a-sentry-1", "b-sentry-1"] {
        assert!(
            status.contains(shown),
            "c-sentry-1's status lacks {shown}:\n{status}"
        );
    }
    runbook.run_through("b-producer", "wait-ready");
    runbook.wait_for_peers("a-sentry-1", &["b-sentry-1", "c-sentry-1"]);
    runbook.wait_for_peers("b-sentry-1", &["a-sentry-1", "c-sentry-1", "b-producer"]);
    runbook.wait_for_peers("c-sentry-1", &["a-sentry-1", "b-sentry-1"]);
    runbook.wait_for_peers("b-producer", &["b-sentry-1"]);

    // Step 7: the validator's export names its sentry, at its overlay address.
    let export = runbook.run_through("b-producer", "export tendermint -c");
    assert!(
        export.contains("persistent_peers = \"")
            && export.contains("@198.19.2.2:26656")
            && export.contains("pex = false"),
        "the validator's export:\n{export}"
    );
    runbook.run_through("b-producer", "--watch");
    assert!(
        wait_until(FORMS_WITHIN, || runbook
            .peers_file()
            .contains("@198.19.2.2:26656")),
        "the validator's peers file: {:?}",
        runbook.peers_file()
    );

    // Step 8: the hidden BIOS node, behind its sentry only.
    let ready = runbook.run_through("a-bios", "wait-ready");
    assert!(ready.contains("boot the chain"), "a-bios: {ready}");
    runbook.wait_for_peers("a-bios", &["a-sentry-1"]);
    runbook.wait_for_peers("a-sentry-1", &["b-sentry-1", "c-sentry-1", "a-bios"]);

    // Step 9: a new sentry reaches the validator's peers file, with nothing
    // run on the validator.
    let before = runbook.next;
    runbook.run_through("b-sentry-2", "wait-ready");
    let ran_on = runbook.ran_on_since(before);
    assert!(
        !ran_on.contains("b-producer"),
        "step 9 ran on the validator: {ran_on:?}"
    );
    let joined = Instant::now();
    assert!(
        wait_until(FORMS_WITHIN, || runbook
            .peers_file()
            .contains("@198.19.2.3:26656")),
        "the new sentry never reached the validator's peers file: {:?}",
        runbook.peers_file()
    );
    eprintln!(
        "b-sentry-2 reached the validator's peers file {:.1} s after its wait-ready",
        joined.elapsed().as_secs_f64()
    );
    runbook.wait_for_peers("b-producer", &["b-sentry-1", "b-sentry-2"]);

    // Step 10: the revoked sentry is dropped by every member.
    let revoked = runbook.public_key("b-sentry-1");
    runbook.run_through("b-sentry-2", "sentrymesh reload");
    let members = ["a-sentry-1", "c-sentry-1", "b-producer", "b-sentry-2"];
    let dropped = wait_until(REVOKED_WITHIN, || {
        members
            .iter()
            .all(|member| !runbook.peers(member).0.contains(&revoked))
    });
    assert!(
        dropped,
        "a member still peers with the revoked b-sentry-1 ({revoked})"
    );
    assert!(
        wait_until(FORMS_WITHIN, || !runbook
            .peers_file()
            .contains("@198.19.2.2:26656")),
        "the validator's peers file still names b-sentry-1: {:?}",
        runbook.peers_file()
    );
    runbook.wait_for_peers("b-producer", &["b-sentry-2"]);

    // Step 11: the rotated key peers, the old one with no one.
    let old = runbook.public_key("c-sentry-1");
    runbook.run_through("c-sentry-1", "wait-ready");
    let new = runbook.public_key("c-sentry-1");
    assert_ne!(old, new, "c-sentry-1 runs with its old key");
    runbook.wait_for_peers("c-sentry-1", &["a-sentry-1", "b-sentry-2"]);
    let restarted = Instant::now();
    for member in ["a-sentry-1", "b-sentry-2"] {
        let rotated = wait_until(FORMS_WITHIN, || {
            let (all, live) = runbook.peers(member);
            live.contains(&new) && !all.contains(&old)
        });
        assert!(
            rotated,
            "{member} does not peer with c-sentry-1's new key {new} alone (old {old}): {:?}",
            runbook.peers(member)
        );
        eprintln!(
            "{member} peers with c-sentry-1's new key alone {:.1} s after its wait-ready",
            restarted.elapsed().as_secs_f64()
        );
    }
    assert_eq!(runbook.next, runbook.blocks.len(), "blocks left unrun");

    // The hidden hosts stayed hidden from every other operator's host.
    runbook.assert_hidden("a-bios", &["b-sentry-2", "c-sentry-1"]);
    runbook.assert_hidden("b-producer", &["a-sentry-1", "c-sentry-1"]);
    eprintln!(
        "the runbook ran in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
