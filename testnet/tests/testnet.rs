//! `sentrymesh-testnet` end to end: the built binary builds a mesh of
//! operators in network namespaces, which must form as the roles require —
//! each producer peering only with its own sentries — and leave nothing
//! behind, also when interrupted; and the library API the command is built
//! on, as other tests can use it.
//!
//! These tests create namespaces and TUN devices: run them as root. They
//! fail rather than skip without it.
//!
//! The hosts run the `sentrymesh` binary, which this package's tests cannot
//! name through Cargo (it is another package's): [`sentrymesh`] builds it
//! with the Cargo that runs the tests, once, unless `SENTRYMESH_BIN` names
//! one.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{OnceLock, PoisonError, RwLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use sentrymesh::dataplane::Offloads;
use sentrymesh_mesh::Role;
use sentrymesh_netns::{is_running, signal};
use sentrymesh_testnet::{Testnet, TestnetSpec};

const TESTNET: &str = env!("CARGO_BIN_EXE_sentrymesh-testnet");
/// Taken to read by every test that makes a testnet, to write by the one
/// that must know no other testnet starts while it runs.
static TESTNETS: RwLock<()> = RwLock::new(());
/// The longest a whole testnet run may take in a test.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// Fails unless root: these tests must never be skipped silently.
fn require_root() {
    sentrymesh_testnet::require_root()
        .expect("the testnet tests create network namespaces: run them as root (they fail rather than skip)");
}

/// The `sentrymesh` binary: `SENTRYMESH_BIN`, else the one `cargo build -p
/// sentrymesh` makes in the profile of these tests (built once a process;
/// Cargo rebuilds it only when its sources changed).
///
/// # Panics
///
/// When Cargo fails or names no binary.
fn sentrymesh() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("SENTRYMESH_BIN") {
            return PathBuf::from(path);
        }
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args([
            "build",
            "--package",
            "sentrymesh",
            "--bin",
            "sentrymesh",
            "--message-format=json",
        ]);
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        let output = cargo
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build");
        assert!(output.status.success(), "cargo build -p sentrymesh failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find_map(|message| {
                let executable = message["executable"].as_str()?;
                (message["target"]["name"] == "sentrymesh").then(|| PathBuf::from(executable))
            })
            .expect("cargo build names the sentrymesh executable")
    })
}

/// Runs `sentrymesh-testnet ARGS` with [`sentrymesh`], killing it after
/// [`RUN_TIMEOUT`]; returns its output and process id.
fn run(args: &[&str]) -> (Output, u32) {
    let child = Command::new(TESTNET)
        .args(args)
        .env("SENTRYMESH_BIN", sentrymesh())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sentrymesh-testnet");
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match finished.recv_timeout(RUN_TIMEOUT) {
        Ok(output) => output.expect("wait for sentrymesh-testnet"),
        Err(_) => {
            signal(pid, libc::SIGKILL);
            panic!("sentrymesh-testnet {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
    };
    (output, pid)
}

/// Panics if anything of the testnet run by process `pid` is left: a
/// namespace, a UAPI socket, its directory.
fn assert_nothing_left(pid: u32) {
    let left = testnet_namespaces(pid);
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let socket_prefix = format!("tn{pid:x}-");
    let sockets: Vec<String> = std::fs::read_dir("/var/run/wireguard")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(&socket_prefix))
                .collect()
        })
        .unwrap_or_default();
    assert!(sockets.is_empty(), "UAPI sockets left: {sockets:?}");
    let dir_prefix = format!("sentrymesh-testnet-{pid}-");
    let dirs: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .expect("the temporary directory")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&dir_prefix))
        .collect();
    assert!(dirs.is_empty(), "directories left: {dirs:?}");
}

/// The peers section of the printed mesh: each host and the names of its
/// peers, as printed.
fn printed_peers(stdout: &str) -> Vec<(String, Vec<String>)> {
    let section = stdout
        .split("\npeers (")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("a peers section");
    let mut lines = section.lines().skip(1);
    // The column headers: the hosts' columns, then their peers'.
    let headers = [lines.next(), lines.next()].map(|line| {
        line.unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
    });
    assert_eq!(
        headers,
        [
            vec!["host", "name", "role", "overlay", "daemon"],
            vec!["peer", "role", "handshake", "endpoint"]
        ],
        "the peers table's column headers"
    );
    let mut hosts: Vec<(String, Vec<String>)> = Vec::new();
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let indent = line.len() - line.trim_start().len();
        if indent == 2 {
            // "  1P    op1-producer  producer of op1   198.19.1.1  ready"
            hosts.push((words[1].to_owned(), Vec::new()));
        } else if let Some((_, peers)) = hosts.last_mut() {
            // "        op1-sentry-1  sentry of op1     1.2 s ago   198.18.1.2:51820"
            peers.push(words[0].to_owned());
        }
    }
    hosts
}

#[test]
fn three_operators_form_a_mesh_with_producers_behind_their_own_sentries() {
    require_root();
    let _shared = TESTNETS.read().unwrap_or_else(PoisonError::into_inner);
    let (output, pid) = run(&["--operators", "3", "--sentries", "2"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "sentrymesh-testnet failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains(
            "the mesh formed as the roles require: 9 hosts, 21 peerings, 72 pings as expected\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "\nevery hidden host stayed hidden: 3 hidden hosts, none a peer of, reached by or \
             shown at its underlay address to another operator's host\n"
        ),
        "{stdout}"
    );
    for header in [
        "\n  op   operator id ",
        "\n  host  name          role      underlay         endpoint          overlay          \
         namespace",
    ] {
        assert!(stdout.contains(header), "no {header:?} in:\n{stdout}");
    }

    // Off a terminal, the progress is plain lines on standard error: every
    // daemon started, then every pair the roles require to peer (21
    // peerings) with a live session at both ends and pings answered both
    // ways, and every host ready.
    for line in [
        "hosts started: 9 of 9\n",
        "sessions: 21 of 21; pings: 21 of 21; ready: 9 of 9\n",
    ] {
        assert!(stderr.contains(line), "no {line:?} in:\n{stderr}");
    }
    assert!(!stderr.contains('\r'), "{stderr}");

    let hosts = printed_peers(&stdout);
    assert_eq!(hosts.len(), 9, "{stdout}");
    for operator in 1..=3 {
        let producer = format!("op{operator}-producer");
        let (_, peers) = hosts
            .iter()
            .find(|(host, _)| *host == producer)
            .unwrap_or_else(|| panic!("{producer} is not in the peers section:\n{stdout}"));
        let peers: BTreeSet<&str> = peers.iter().map(String::as_str).collect();
        let own_sentries: Vec<String> = (1..=2)
            .map(|sentry| format!("op{operator}-sentry-{sentry}"))
            .collect();
        assert_eq!(
            peers,
            own_sentries.iter().map(String::as_str).collect(),
            "{producer} must peer with its own sentries only:\n{stdout}"
        );
    }
    // A sentry: its producer, its other sentry, the four other sentries.
    let (_, peers) = hosts
        .iter()
        .find(|(host, _)| host == "op2-sentry-1")
        .expect("op2-sentry-1");
    assert_eq!(peers.len(), 6, "{stdout}");
    assert!(
        !peers
            .iter()
            .any(|peer| peer.ends_with("producer") && peer != "op2-producer")
    );

    // Producers reach their own sentries only.
    assert!(
        stdout.contains("\n  1P   .    ok   ok   -    -    -    -    -    -\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("removed everything the testnet made"),
        "{stdout}"
    );
    assert_nothing_left(pid);
}

/// A `sentrymesh-testnet --seconds 120` whose mesh formed and stays up.
struct HeldMesh {
    child: Child,
    pid: u32,
    /// The lines it prints, as they come.
    lines: mpsc::Receiver<String>,
    /// What it printed up to the hold's hints.
    printed: String,
}

/// Starts a testnet of `operators` operators with `sentries` sentries each
/// that holds its mesh up, and waits until it does.
fn hold_mesh(operators: &str, sentries: &str) -> HeldMesh {
    let mut child: Child = Command::new(TESTNET)
        .args([
            "--operators",
            operators,
            "--sentries",
            sentries,
            "--seconds",
            "120",
        ])
        .env("SENTRYMESH_BIN", sentrymesh())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sentrymesh-testnet");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut printed = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                printed.push_str(&line);
                printed.push('\n');
                // The hold's hints follow its announcement.
                if printed.contains("the mesh stays up for 120 s") && line.contains(" wg show ") {
                    break;
                }
            }
            Err(_) => {
                signal(pid, libc::SIGKILL);
                panic!("the mesh did not stay up:\n{printed}");
            }
        }
    }
    HeldMesh {
        child,
        pid,
        lines,
        printed,
    }
}

#[test]
fn ctrl_c_while_the_mesh_stays_up_removes_everything() {
    require_root();
    let _shared = TESTNETS.read().unwrap_or_else(PoisonError::into_inner);
    let HeldMesh {
        mut child,
        pid,
        lines,
        mut printed,
    } = hold_mesh("2", "1");
    // What the hold suggests works meanwhile.
    let hint = printed
        .lines()
        .find(|line| line.contains(" wg show "))
        .expect("a wg show hint");
    let words: Vec<&str> = hint.split_whitespace().collect();
    assert_eq!(words[..3], ["sudo", "ip", "netns"], "{hint}");
    let shown = Command::new(words[1])
        .args(&words[2..])
        .output()
        .expect("run the hint");
    assert!(shown.status.success(), "{hint}: {shown:?}");
    assert!(String::from_utf8_lossy(&shown.stdout).contains("latest handshake"));

    let interrupted = Instant::now();
    signal(pid, libc::SIGINT);
    let status = wait_for(&mut child, Duration::from_secs(30));
    for line in lines.try_iter() {
        printed.push_str(&line);
        printed.push('\n');
    }
    assert!(
        interrupted.elapsed() < Duration::from_secs(20),
        "Ctrl-C took {:?}",
        interrupted.elapsed()
    );
    // The mesh had formed: the interrupted hold does not make it fail.
    assert!(status.success(), "{status}:\n{printed}");
    assert!(
        printed.contains("removed everything the testnet made"),
        "{printed}"
    );
    assert_nothing_left(pid);
}

#[test]
fn what_a_killed_testnet_left_is_removed_by_the_next() {
    require_root();
    // No other testnet starts meanwhile, so the next one below is the one
    // that finds what the killed one left.
    let _alone = TESTNETS.write().unwrap_or_else(PoisonError::into_inner);
    let HeldMesh { mut child, pid, .. } = hold_mesh("1", "1");
    let namespaces = testnet_namespaces(pid);
    assert_eq!(namespaces.len(), 3, "{namespaces:?}");
    signal(pid, libc::SIGKILL);
    wait_for(&mut child, Duration::from_secs(10));
    // Its daemons run on, each in its own process group.
    let daemons: Vec<u32> = namespaces
        .iter()
        .flat_map(|namespace| {
            let pids = Command::new("ip")
                .args(["netns", "pids", namespace])
                .output()
                .expect("ip netns pids");
            String::from_utf8_lossy(&pids.stdout)
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    assert_eq!(
        daemons.len(),
        2,
        "the killed testnet's daemons: {daemons:?}"
    );

    let (output, _) = run(&["--operators", "1", "--sentries", "1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}\n{stderr}", output.status);
    // Other testnets killed earlier on this machine may be named too.
    let swept: Vec<&str> = stderr
        .lines()
        .filter_map(|line| {
            line.split("removing what testnets no longer running (pids ")
                .nth(1)
        })
        .filter_map(|rest| rest.split(')').next())
        .flat_map(|pids| pids.split(", "))
        .collect();
    assert!(
        swept.contains(&pid.to_string().as_str()),
        "the next testnet did not say it removed {pid}'s leftovers:\n{stderr}"
    );
    assert_nothing_left(pid);
    for daemon in daemons {
        assert!(
            !is_running(daemon),
            "daemon {daemon} of the killed testnet still runs"
        );
    }
}

/// The namespaces of the testnet run by process `pid`.
fn testnet_namespaces(pid: u32) -> Vec<String> {
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let prefix = format!("smtn-{pid}-");
    String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn wait_for(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("sentrymesh-testnet did not stop within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_library_builds_a_testnet_other_tests_can_look_into() {
    require_root();
    let _shared = TESTNETS.read().unwrap_or_else(PoisonError::into_inner);
    let spec = TestnetSpec {
        operators: 2,
        sentries: 1,
        binary: sentrymesh().to_owned(),
        offloads: Offloads::Auto,
    };
    let mut testnet = Testnet::create(&spec).expect("create the testnet");
    let names: Vec<&str> = testnet.hosts().iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "op1-producer",
            "op1-sentry-1",
            "op2-producer",
            "op2-sentry-1"
        ]
    );
    let namespaces: Vec<String> = testnet
        .hosts()
        .iter()
        .map(|host| host.namespace.clone())
        .collect();
    let dir = testnet.dir().to_owned();
    assert!(
        testnet
            .wait_ready(Duration::from_secs(60))
            .expect("no daemon exits"),
        "the mesh did not form"
    );

    let producer = testnet.host("op1-producer").expect("a producer").clone();
    let sentry = testnet.host("op1-sentry-1").expect("a sentry").clone();
    assert_eq!(producer.role, Role::Producer);
    assert_eq!(producer.endpoint, None);
    assert_eq!(producer.expected_peers, ["op1-sentry-1"]);
    assert_eq!(sentry.endpoint, Some("198.18.1.2:51820".parse().unwrap()));

    // The producer's only peer is its sentry, and its only route into the
    // overlay is the one to that sentry.
    let peers = testnet.peers(&producer).expect("the producer answers");
    assert_eq!(
        peers.iter().map(|p| p.public_key).collect::<Vec<_>>(),
        [sentry.wg_public_key]
    );
    let routes = testnet
        .run_in(
            &producer,
            "ip",
            &["-4", "route", "show", "dev", &producer.ifname],
        )
        .expect("ip route");
    assert!(routes.success(), "{routes:?}");
    assert_eq!(
        routes.stdout.trim(),
        "198.19.1.2 proto static scope link",
        "{routes:?}"
    );
    let ping = testnet
        .run_in(
            &producer,
            "ping",
            &["-n", "-c", "1", "-W", "1", "198.19.2.2"],
        )
        .expect("ping");
    assert!(
        !ping.success(),
        "the producer reached another operator's sentry"
    );

    let report = testnet.report();
    assert_eq!(report.violations(), [], "{report}");
    if std::env::var_os("RUST_LOG").is_none() {
        assert!(testnet.log(&sentry).contains("mesh peer op1-producer"));
    }

    drop(testnet);
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let list = String::from_utf8_lossy(&list.stdout);
    for namespace in namespaces {
        assert!(!list.contains(&namespace), "{namespace} is left");
    }
    assert!(!Path::new(&dir).exists(), "{} is left", dir.display());
}

#[test]
fn a_testnet_needs_root_and_says_so() {
    require_root();
    // As nobody: refused before anything is made.
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", TESTNET])
        .output()
        .expect("setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("run it as root"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn a_daemon_that_exits_is_reported_and_everything_is_removed() {
    require_root();
    let _shared = TESTNETS.read().unwrap_or_else(PoisonError::into_inner);
    // Four sentries: no other test of this process makes an op1-sentry-4,
    // so its namespace names this testnet's alone.
    let spec = TestnetSpec {
        operators: 1,
        sentries: 4,
        binary: "/bin/false".into(),
        offloads: Offloads::Auto,
    };
    let error = Testnet::create(&spec).expect_err("a daemon that exits at once");
    let message = format!("{error:#}");
    assert!(
        message.starts_with("the daemon of op1-sentry-1 exited (exit status: 1)"),
        "{message}"
    );
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let prefix = format!("smtn-{}-", std::process::id());
    let left: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|line| line.starts_with(&prefix) && line.contains("-op1-sentry-4"))
        .map(str::to_owned)
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
}

#[test]
fn a_missing_sentrymesh_binary_is_named() {
    require_root();
    let output = Command::new(TESTNET)
        .args(["--sentrymesh", "/nonexistent/sentrymesh"])
        .output()
        .expect("run sentrymesh-testnet");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no sentrymesh binary at /nonexistent/sentrymesh"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}
