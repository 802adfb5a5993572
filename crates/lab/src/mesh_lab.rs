//! A mesh laboratory for the trust-mesh tests: operators with their keys, a
//! switch (a namespace with a bridge) that every host's underlay plugs into,
//! and hosts running `sentrymesh up` as mesh members, each set up the way an
//! operator would, through the `operator`, `card` and `trust` commands.
//!
//! Underlay addresses are 198.18.0.H/24 on the switch; overlay addresses
//! 198.19.O.H/32 for host H of operator O, so a host has a route only to the
//! peers the mesh gives it. The mesh overlay is 198.19.0.0/16, and
//! operator O's range in it 198.19.O.0/24: what every config gives the
//! operators it trusts, and what a vouch for it names.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sentrymesh_netns::add_veth;

use crate::{Host, Process, run_ok, unique_ifname, wait_until};

/// How long a mesh may take to form: under a second on a quiet machine, but
/// a lost handshake is retried only after 5 s, and a loaded machine loses
/// some.
pub const FORMS_WITHIN: Duration = Duration::from_secs(60);
/// How long a revocation may take to reach every member: tens of
/// milliseconds on a quiet machine, a round of gossip (3 s) when a message
/// is lost (the tests print the figure); the ceiling is for a loaded one.
pub const REVOKED_WITHIN: Duration = Duration::from_secs(60);

/// How long a member may take to start (its UAPI socket answering) or to
/// stop (its socket gone): well under a second on a quiet machine.
pub const STARTS_WITHIN: Duration = Duration::from_secs(60);

/// How long a member's metrics may take to answer a scrape: milliseconds on
/// a quiet machine.
pub const SCRAPED_WITHIN: Duration = Duration::from_secs(120);

/// The WireGuard port of every host.
pub const WG_PORT: u16 = 51820;
/// The gossip port (the daemon's default).
pub const GOSSIP_PORT: u16 = 51900;
/// The introduction port (the daemon's default).
pub const INTRODUCTION_PORT: u16 = 51901;
/// Where each member serves its metrics, in its own namespace.
const METRICS: &str = "127.0.0.1:9586";
/// The mesh overlay of every lab.
const MESH_OVERLAY: &str = "198.19.0.0/16";

/// Runs `PROGRAM ARGS` (sentrymesh) outside any namespace and returns its
/// output.
fn sentrymesh(program: &str, args: &[&str]) -> String {
    run_ok(Command::new(program).args(args), b"")
}

/// An operator: its key file, id, number and overlay range.
pub struct Operator {
    /// Its secret key file, in the switch's directory.
    pub key_file: PathBuf,
    /// Its id, as `sentrymesh operator new` prints it.
    pub id: String,
    /// Its number O, from 1.
    pub number: u8,
    /// Its overlay range, 198.19.O.0/24.
    pub range: String,
}

/// The switch and the operators' files.
pub struct Lab {
    /// The sentrymesh program the lab runs.
    sentrymesh: &'static str,
    switch: Host,
    hosts: usize,
    operators: u8,
}

/// What a host is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A producer: it peers only with its own operator's sentries.
    Producer,
    /// A sentry: it has an endpoint on the underlay and peers across
    /// operators.
    Sentry,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Sentry => "sentry",
        }
    }
}

/// A mesh member: its namespace, keys, card and daemon.
pub struct Member {
    // Declared first, so the daemon stops before the namespace goes.
    daemon: Option<Process>,
    /// The sentrymesh program it runs.
    sentrymesh: &'static str,
    /// The host it runs in; its directory has the member's files.
    pub host: Host,
    /// Its host name, as its card gives it.
    pub name: String,
    /// Its WireGuard interface.
    pub ifname: String,
    /// Its WireGuard public key, base64.
    pub wg_public: String,
    /// Its overlay address, 198.19.O.H.
    pub overlay: Ipv4Addr,
    /// Its underlay address, 198.18.0.H on the switch.
    pub underlay: Ipv4Addr,
    /// Its operator's id.
    pub operator: String,
    /// The chain p2p node id its card publishes.
    pub chain_id: String,
    /// Its operator's overlay range.
    range: String,
}

impl Lab {
    /// A new lab whose switch is the namespace `sm-LABEL-sw-…`, running the
    /// sentrymesh program at `sentrymesh` (`env!("CARGO_BIN_EXE_sentrymesh")`
    /// in the daemon's tests) for every command and member.
    ///
    /// # Panics
    ///
    /// When not root, or when the switch cannot be made.
    pub fn new(sentrymesh: &'static str, label: &str) -> Lab {
        let switch = Host::new(&format!("{label}-sw"));
        switch.ip(&["link", "add", "br0", "type", "bridge"]);
        switch.ip(&["link", "set", "br0", "up"]);
        Lab {
            sentrymesh,
            switch,
            hosts: 0,
            operators: 0,
        }
    }

    /// Runs `sentrymesh ARGS` outside any namespace and returns its output.
    ///
    /// # Panics
    ///
    /// When it fails; the message has its standard error.
    pub fn sentrymesh(&self, args: &[&str]) -> String {
        sentrymesh(self.sentrymesh, args)
    }

    /// A path for a file in the lab's own directory.
    pub fn switch_file(&self, name: &str) -> PathBuf {
        self.switch.dir().join(name)
    }

    /// Writes `contents` to the file `name` (mode 0600) in the switch's
    /// directory; returns its path.
    ///
    /// # Panics
    ///
    /// When the file cannot be written.
    pub fn write_switch_file(&self, name: &str, contents: &str) -> PathBuf {
        self.switch.write_file(name, contents)
    }

    /// A new operator, its key file in the switch's directory.
    ///
    /// # Panics
    ///
    /// When `sentrymesh operator new` fails.
    pub fn operator(&mut self, name: &str) -> Operator {
        self.operators += 1;
        let key_file = self.switch.dir().join(format!("{name}.op"));
        let id = self
            .sentrymesh(&["operator", "new", "--out", &key_file.to_string_lossy()])
            .trim()
            .to_owned();
        Operator {
            key_file,
            id,
            number: self.operators,
            range: format!("198.19.{}.0/24", self.operators),
        }
    }

    /// A new host of `operator` plugged into the switch, with its keys and
    /// its card (in `host.card` of its directory); not started.
    ///
    /// # Panics
    ///
    /// When `ip` or a sentrymesh command fails, a file cannot be written, or
    /// the lab has 255 hosts already.
    pub fn member(&mut self, operator: &Operator, name: &str, role: Role) -> Member {
        self.hosts += 1;
        let index = u8::try_from(self.hosts).expect("fewer than 256 hosts");
        let host = Host::new(&format!("m{index}"));
        let underlay = Ipv4Addr::new(198, 18, 0, index);
        let overlay = Ipv4Addr::new(198, 19, operator.number, index);
        let (inside, outside) = (
            format!("u{index}"),
            format!("p{}-{index}", std::process::id() % 10_000),
        );
        add_veth(host.namespace(), &inside, self.switch.namespace(), &outside)
            .unwrap_or_else(|error| panic!("{error}"));
        self.switch
            .ip(&["link", "set", &outside, "master", "br0", "up"]);
        host.ip(&["addr", "add", &format!("{underlay}/24"), "dev", &inside]);
        host.ip(&["link", "set", &inside, "up"]);

        let wg_key = self.sentrymesh(&["genkey"]);
        host.write_file("wg.key", &wg_key);
        let wg_public = run_ok(
            Command::new(self.sentrymesh).arg("pubkey"),
            wg_key.as_bytes(),
        )
        .trim()
        .to_owned();
        let chain_id = chain_id(index, 0);
        let card = CardSpec {
            operator,
            name,
            role,
            wg_key: &host.dir().join("wg.key"),
            overlay,
            underlay,
            endpoint_name: None,
            chain_id: &chain_id,
            serial: None,
        };
        issue_card(self.sentrymesh, &card, &host.dir().join("host.card"));
        std::fs::create_dir(host.dir().join("known")).expect("the known directory");
        Member {
            daemon: None,
            sentrymesh: self.sentrymesh,
            ifname: unique_ifname(),
            host,
            name: name.to_owned(),
            wg_public,
            overlay,
            underlay,
            operator: operator.id.clone(),
            chain_id,
            range: operator.range.clone(),
        }
    }
}

/// What a member's card says.
struct CardSpec<'a> {
    operator: &'a Operator,
    name: &'a str,
    role: Role,
    /// The host's WireGuard private key file, which proves the card.
    wg_key: &'a Path,
    overlay: Ipv4Addr,
    /// A sentry's endpoint.
    underlay: Ipv4Addr,
    /// A DNS name the sentry's endpoint gives instead of `underlay`.
    endpoint_name: Option<&'a str>,
    chain_id: &'a str,
    /// The card's serial, or `card issue`'s default (the time).
    serial: Option<u64>,
}

/// Issues the card `card` into `out` with the sentrymesh program `program`.
fn issue_card(program: &str, card: &CardSpec<'_>, out: &Path) {
    let mut args = vec![
        "card".to_owned(),
        "issue".to_owned(),
        "--operator".to_owned(),
        card.operator.key_file.to_string_lossy().into_owned(),
        "--name".to_owned(),
        card.name.to_owned(),
        "--role".to_owned(),
        card.role.name().to_owned(),
        "--wg-key".to_owned(),
        card.wg_key.to_string_lossy().into_owned(),
        "--address".to_owned(),
        format!("{}/32", card.overlay),
        "--chain-p2p".to_owned(),
        format!("{}@26656", card.chain_id),
        "--out".to_owned(),
        out.to_string_lossy().into_owned(),
    ];
    if card.role == Role::Sentry {
        let host = card
            .endpoint_name
            .map_or_else(|| card.underlay.to_string(), str::to_owned);
        args.extend(["--endpoint".to_owned(), format!("{host}:{WG_PORT}")]);
    }
    if let Some(serial) = card.serial {
        args.extend(["--serial".to_owned(), serial.to_string()]);
    }
    sentrymesh(
        program,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

/// A chain p2p node id unique to host `index`, card version `version`,
/// and to this run: 40 hexadecimal digits, as a Tendermint node id.
fn chain_id(index: u8, version: u8) -> String {
    format!(
        "{:08x}{:030x}{version:02x}",
        std::process::id(),
        u128::from(index) * 0x1f3d_5b79
    )
}

impl Member {
    /// Writes a new WireGuard key over the member's key file and a new card
    /// for it (a later serial) over its card file, as a key rotation does;
    /// the running daemon is not told.
    ///
    /// # Panics
    ///
    /// When a sentrymesh command fails or a file cannot be written.
    pub fn rotate_key(&self, operator: &Operator, role: Role) -> String {
        let wg_key = sentrymesh(self.sentrymesh, &["genkey"]);
        self.host.write_file("wg.key", &wg_key);
        let wg_public = run_ok(
            Command::new(self.sentrymesh).arg("pubkey"),
            wg_key.as_bytes(),
        )
        .trim()
        .to_owned();
        self.reissue_card(operator, role, None);
        wg_public
    }

    /// Writes the member's card anew, for its key file and chain p2p id as
    /// they are now, with `serial` (the time of issue when `None`).
    fn reissue_card(&self, operator: &Operator, role: Role, serial: Option<u64>) {
        std::fs::remove_file(self.card()).expect("remove the old card");
        let card = CardSpec {
            operator,
            name: &self.name,
            role,
            wg_key: &self.host.dir().join("wg.key"),
            overlay: self.overlay,
            underlay: self.underlay,
            endpoint_name: None,
            chain_id: &self.chain_id,
            serial,
        };
        issue_card(self.sentrymesh, &card, &self.card());
    }

    /// Has `operator` revoke `revoked`'s host key, and puts the revocation
    /// in this member's known directory: published at its next reload.
    ///
    /// # Panics
    ///
    /// When `sentrymesh trust revoke` fails or the revocation cannot be copied.
    pub fn know_revocation(&self, lab: &Lab, operator: &Operator, revoked: &Member) {
        let name = format!("{}.revocation", revoked.name);
        let revocation = lab.switch_file(&name);
        sentrymesh(
            self.sentrymesh,
            &[
                "trust",
                "revoke",
                "--operator",
                &operator.key_file.to_string_lossy(),
                "--host",
                &revoked.wg_public,
                "--out",
                &revocation.to_string_lossy(),
            ],
        );
        self.know(&name, &revocation);
    }

    /// Issues the member's card again with a new chain p2p id and a later
    /// serial; the running daemon is not told.
    ///
    /// # Panics
    ///
    /// When `sentrymesh card issue` fails or the old card cannot be removed.
    pub fn change_card(&mut self, operator: &Operator, role: Role) {
        let index = self.underlay.octets()[3];
        let version = u8::from_str_radix(&self.chain_id[38..], 16).expect("hex") + 1;
        self.chain_id = chain_id(index, version);
        self.reissue_card(operator, role, Some(crate::unix_now() + u64::from(version)));
    }

    /// Issues the sentry's card again with the DNS name `endpoint_name` as
    /// its endpoint host and a later serial; the running daemon is not told.
    ///
    /// # Panics
    ///
    /// When `sentrymesh card issue` fails or the old card cannot be removed.
    pub fn name_endpoint(&mut self, operator: &Operator, endpoint_name: &str) {
        let index = self.underlay.octets()[3];
        let version = u8::from_str_radix(&self.chain_id[38..], 16).expect("hex") + 1;
        self.chain_id = chain_id(index, version);
        std::fs::remove_file(self.card()).expect("remove the old card");
        let card = CardSpec {
            operator,
            name: &self.name,
            role: Role::Sentry,
            wg_key: &self.host.dir().join("wg.key"),
            overlay: self.overlay,
            underlay: self.underlay,
            endpoint_name: Some(endpoint_name),
            chain_id: &self.chain_id,
            serial: Some(crate::unix_now() + u64::from(version)),
        };
        issue_card(self.sentrymesh, &card, &self.card());
    }

    /// The public key the interface runs with, as `wg show` prints it.
    ///
    /// # Panics
    ///
    /// When `wg` fails.
    pub fn interface_public_key(&self) -> String {
        self.host
            .run("wg", &["show", &self.ifname, "public-key"])
            .trim()
            .to_owned()
    }

    /// The member's card file.
    pub fn card(&self) -> PathBuf {
        self.host.dir().join("host.card")
    }

    /// Copies the file `path` into the known directory as `name`.
    ///
    /// # Panics
    ///
    /// When the file cannot be copied.
    pub fn know(&self, name: &str, path: &Path) {
        std::fs::copy(path, self.host.dir().join("known").join(name)).expect("copy a known file");
    }

    /// Puts `other`'s card into the known directory.
    ///
    /// # Panics
    ///
    /// When the card cannot be copied.
    pub fn know_card(&self, other: &Member) {
        self.know(&format!("{}.card", other.name), &other.card());
    }

    /// Writes the config: trusting `trusted` directly (each with its
    /// range) with `threshold`, ready after `ready` peers.
    ///
    /// # Panics
    ///
    /// When the config cannot be written.
    pub fn configure(&self, trusted: &[&Operator], threshold: usize, ready: usize) {
        let operators: Vec<String> = trusted
            .iter()
            .map(|op| format!("{{ id = {:?}, overlay = {:?} }}", op.id, op.range))
            .collect();
        let config = format!(
            "[interface]\nname = \"{}\"\nprivate_key_file = \"wg.key\"\nlisten_port = {WG_PORT}\n\
             addresses = [\"{}/32\"]\n\n[mesh]\ncard_file = \"host.card\"\nknown_dir = \"known\"\n\
             state_dir = \"state\"\n\n[trust]\noverlay = \"{MESH_OVERLAY}\"\nown_overlay = \"{}\"\n\
             operators = [{}]\nvouch_threshold = {threshold}\n\n\
             [ready]\nmin_trusted_peers = {ready}\n\n[metrics]\nlisten = \"{METRICS}\"\n",
            self.ifname,
            self.overlay,
            self.range,
            operators.join(", ")
        );
        self.host.write_file("sm.toml", &config);
    }

    /// The value of the sample `name{interface="…",labels}` its metrics show
    /// now; `labels` is empty or starts with a comma. A daemon too busy to
    /// answer a scrape within its own limit (a few seconds, on a loaded
    /// machine) is asked again, for up to [`SCRAPED_WITHIN`].
    ///
    /// # Panics
    ///
    /// When the metrics never answer, answer with another status than 200,
    /// or show no such sample; the message has what they showed.
    pub fn metric(&self, name: &str, labels: &str) -> u64 {
        let address = METRICS.parse().expect("an address");
        let mut answer = Err(String::new());
        wait_until(SCRAPED_WITHIN, || {
            answer = self.host.try_http_get(address, "/metrics");
            answer.is_ok()
        });
        let (status, body) = answer.unwrap_or_else(|error| {
            panic!(
                "{}'s metrics did not answer within {SCRAPED_WITHIN:?}: {error}\n{}",
                self.name,
                self.log()
            )
        });
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let series = format!("{name}{{interface=\"{}\"{labels}}}", self.ifname);
        crate::sample(&body, &series)
            .unwrap_or_else(|| panic!("{} shows no {series}:\n{body}", self.name))
    }

    /// Starts `sentrymesh up`, and waits for its UAPI socket to answer (a
    /// stale socket file a killed daemon left does not).
    ///
    /// # Panics
    ///
    /// When the daemon cannot be started or its socket does not answer
    /// within [`STARTS_WITHIN`]; the message has its log.
    pub fn start(&mut self) {
        self.start_logging("info", "human");
    }

    /// Starts `sentrymesh up` as [`start`](Self::start) does, logging with
    /// the filter `rust_log` (`RUST_LOG`) in the format `log_format`
    /// (`--log-format`).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_logging(&mut self, rust_log: &str, log_format: &str) {
        self.host.register_interface(&self.ifname);
        let config = self.host.dir().join("sm.toml");
        let filter = format!("RUST_LOG={rust_log}");
        let mut command = self.host.command("env");
        command.args([
            filter.as_str(),
            self.sentrymesh,
            "--log-format",
            log_format,
            "up",
            "-c",
            &config.to_string_lossy(),
        ]);
        let process = crate::spawn(&format!("sentrymesh up on {}", self.name), &mut command);
        let socket = crate::socket_path(&self.ifname);
        assert!(
            wait_until(STARTS_WITHIN, || {
                std::os::unix::net::UnixStream::connect(&socket).is_ok()
            }),
            "{} did not start:\n{}",
            self.name,
            process.log()
        );
        self.daemon = Some(process);
    }

    /// Stops the daemon (SIGTERM) and waits for its socket to go.
    ///
    /// # Panics
    ///
    /// When its socket is still there after [`STARTS_WITHIN`].
    pub fn stop(&mut self) {
        self.daemon = None;
        let socket = crate::socket_path(&self.ifname);
        assert!(
            wait_until(STARTS_WITHIN, || !socket.exists()),
            "{} did not stop",
            self.name
        );
    }

    /// Kills the daemon with SIGKILL, as a crash would, and waits for it
    /// to be gone: it cleans up nothing.
    pub fn kill(&mut self) {
        if let Some(daemon) = &mut self.daemon {
            daemon.kill();
        }
    }

    /// The daemon's resident memory, in KiB, from `/proc/PID/status`.
    ///
    /// # Panics
    ///
    /// When no daemon runs, or its status cannot be read or has no VmRSS.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }

    /// The daemon's resident anonymous memory (`RssAnon`), in KiB: its
    /// heaps and stacks, without the pages of its program and libraries,
    /// which a debug build faults in as it first runs each path (the
    /// handling of a revocation, say) and which hold nothing of any peer.
    ///
    /// # Panics
    ///
    /// As [`rss_kib`](Self::rss_kib).
    pub fn anon_kib(&self) -> u64 {
        self.status_kib("RssAnon")
    }

    /// The field `field` of `/proc/PID/status`, in KiB.
    fn status_kib(&self, field: &str) -> u64 {
        let pid = self.daemon.as_ref().expect("a running daemon").pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in the status of {}:\n{status}", self.name))
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        self.daemon.as_ref().map(Process::log).unwrap_or_default()
    }

    /// The WireGuard keys of the interface's peers.
    ///
    /// # Panics
    ///
    /// When `wg` fails.
    pub fn peers(&self) -> Vec<String> {
        let mut peers: Vec<String> = self
            .host
            .run("wg", &["show", &self.ifname, "peers"])
            .lines()
            .map(str::to_owned)
            .collect();
        peers.sort();
        peers
    }

    /// Whether the interface has a session with `other` (a handshake).
    ///
    /// # Panics
    ///
    /// When `wg` fails.
    pub fn has_session_with(&self, other: &Member) -> bool {
        self.host
            .run("wg", &["show", &self.ifname, "latest-handshakes"])
            .lines()
            .any(|line| line.starts_with(&other.wg_public) && !line.ends_with("\t0"))
    }

    /// Asks the daemon to reload its config, as `sentrymesh reload`, which
    /// waits for the daemon's answer.
    ///
    /// # Panics
    ///
    /// When `sentrymesh reload` fails: the daemon refused the config.
    pub fn reload(&self) {
        sentrymesh(self.sentrymesh, &["reload", "--interface", &self.ifname]);
    }

    /// Asks the daemon to reload its config, which it must refuse, and
    /// returns what `sentrymesh reload` printed on its standard error: the
    /// daemon's reason.
    ///
    /// # Panics
    ///
    /// When `sentrymesh reload` succeeds, or does not end in time.
    pub fn refused_reload(&self) -> String {
        let finished = crate::run_command(
            Command::new(self.sentrymesh).args(["reload", "--interface", &self.ifname]),
            b"",
            sentrymesh_netns::COMMAND_TIMEOUT,
        );
        assert!(
            !finished.success() && !finished.timed_out,
            "the reload of {} was not refused:\n{}{}",
            self.name,
            finished.stdout,
            finished.stderr
        );
        finished.stderr
    }

    /// Whether one ping to `other`'s overlay address is answered.
    ///
    /// # Panics
    ///
    /// When ping cannot be started.
    pub fn pings(&self, other: &Member) -> bool {
        crate::try_ping(
            &self.host,
            other.overlay.into(),
            1,
            56,
            Duration::from_secs(3),
        )
        .success
    }
}

/// The sorted keys of `members`.
fn keys(members: &[&Member]) -> Vec<String> {
    let mut keys: Vec<String> = members.iter().map(|m| m.wg_public.clone()).collect();
    keys.sort();
    keys
}

/// Waits until `member` has exactly the peers `expected`, with a session to
/// each.
///
/// # Panics
///
/// When the peers are not so within [`FORMS_WITHIN`]; the message has the
/// member's log.
#[track_caller]
pub fn assert_peers(member: &Member, expected: &[&Member]) {
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

/// The binary form of the armoured object in the file `path`.
///
/// # Panics
///
/// When the file cannot be read or its body is not base64.
pub fn armoured_bytes(path: &std::path::Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).expect("an armoured file");
    base64_decode(&text.lines().skip(1).collect::<String>())
}

/// Standard base64 decoding, for keys.
///
/// # Panics
///
/// When `text` is not base64.
pub fn base64_decode(text: &str) -> Vec<u8> {
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
