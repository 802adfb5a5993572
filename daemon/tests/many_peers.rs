//! Bounds with many peers (issue 11, point 7), on a namespace host:
//! `sentrymesh wg` takes 1,000 peers with 10 allowed IPs each (10,000 in
//! all) through its UAPI socket, in one `set` and in several; holds exactly
//! them; lets half go and takes them back; routes a removed peer's
//! addresses nowhere; keeps its memory level over cycles of removing and
//! re-adding every peer (the engine reuses their slots); and with 1,000
//! idle peers costs under 1 % of a core. The test prints the figures
//! `benches/README.md` quotes ("Many peers"): the time of one `set`, the
//! resident memory before the peers, with them and per peer, and the
//! processor time idle, with and without persistent keepalives.
//!
//! ```text
//!   host (netns sm-many-…)
//!  +-------------------------------------------------------------+
//!  | sentrymesh wg, TUN smw…  198.19.255.254/16                   |
//!  |   1,000 peers: allowed IPs 198.19.0.0–198.19.39.15 (/32s),   |
//!  |   endpoints 198.18.1.1–198.18.4.250:51820                    |
//!  | sinkA 198.18.0.1/30 -- veth -- sinkB (no address)            |
//!  |   198.18.0.0/16 via 198.18.0.2, a permanent neighbour whose  |
//!  |   MAC nobody has: what the daemon sends there is dropped     |
//!  +-------------------------------------------------------------+
//! ```
//!
//! The peers never answer: nothing leaves the namespace. The processor
//! time is the daemon's own (`utime + stime` in `/proc/PID/stat`), which a
//! busy machine does not inflate; the window it is divided by is the wall
//! time that passed, at least [`CPU_WINDOW`]. The tests need root and fail
//! (never skip) without it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use sentrymesh_lab::{
    Daemon, Host, Implementation, socket_path, try_ping, unique_ifname, wait_until, wg,
};
use sentrymesh_types::PrivateKey;

/// The daemon under test, built with these tests.
const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

/// How many peers the daemon is given.
const PEERS: usize = 1_000;

/// How many allowed IPs each peer has.
const IPS_PER_PEER: usize = 10;

/// How many peers one request of the runs in several requests carries.
const PEERS_PER_REQUEST: usize = 100;

/// The port every peer's endpoint names.
const PEER_PORT: u16 = 51820;

/// How long one UAPI request may take (a quiet machine answers a `set` of
/// all the peers in well under a second, even with a debug build).
const UAPI_TIMEOUT: Duration = Duration::from_secs(60);

/// The wall time over which the daemon's processor time is measured.
const CPU_WINDOW: Duration = Duration::from_secs(10);

/// The most of one core 1,000 idle peers may cost, in per cent.
const MAX_IDLE_CPU_PERCENT: f64 = 1.0;

/// The most resident memory one idle peer with its ten allowed IPs may add
/// (issue 14, point 4).
const MAX_RSS_PER_PEER_KIB: f64 = 8.0;

/// How often every peer is removed and added again, to see that memory
/// stays level.
const CYCLES: usize = 5;

/// How much the resident memory may grow from the first of those cycles to
/// the last: what allocator noise gives, far less than slots never reused
/// or allowed-IP nodes never freed would take.
const MAX_RSS_GROWTH_KIB: u64 = 2 * 1024;

/// How long a handshake initiation may take to show in a peer's counter.
const SENT_WITHIN: Duration = Duration::from_secs(30);

/// The persistent keepalive interval of the run with keepalives, seconds.
const KEEPALIVE: u16 = 25;

/// The bytes of a handshake initiation, as a peer's `tx_bytes` counts them.
const INITIATION_LEN: u64 = 148;

/// The peers: their public keys in hex, as the UAPI writes them.
struct Fleet {
    keys: Vec<String>,
}

impl Fleet {
    /// [`PEERS`] peers with fixed keys (their private keys are thrown
    /// away: no peer ever answers).
    fn new() -> Fleet {
        let keys = (0..PEERS)
            .map(|index| {
                // Not in the first byte, whose low three bits clamping
                // clears.
                let mut seed = [0x6d; 32];
                seed[1..9].copy_from_slice(&(index as u64).to_le_bytes());
                hex(PrivateKey::from_bytes(seed).public_key().as_bytes())
            })
            .collect::<Vec<String>>();
        let distinct: BTreeSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), PEERS, "two peers have the same key");
        Fleet { keys }
    }

    /// Peer `index`'s `n`th allowed IP: a /32 of 198.19.0.0–198.19.39.15.
    fn allowed_ip(index: usize, n: usize) -> Ipv4Addr {
        let [high, low] = u16::try_from(index * IPS_PER_PEER + n)
            .expect("10,000 addresses fit 16 bits")
            .to_be_bytes();
        Ipv4Addr::new(198, 19, high, low)
    }

    /// Where peer `index` is said to be: 198.18.1.1–198.18.4.250.
    fn endpoint(index: usize) -> SocketAddrV4 {
        let third = u8::try_from(1 + index / 250).expect("1,000 peers");
        let fourth = u8::try_from(1 + index % 250).expect("below 251");
        SocketAddrV4::new(Ipv4Addr::new(198, 18, third, fourth), PEER_PORT)
    }

    /// The `set` lines that add (or update) `peers` with their endpoints
    /// and allowed IPs, and `keepalive` if given.
    fn set_lines(&self, peers: &[usize], keepalive: Option<u16>) -> String {
        let mut lines = String::new();
        for &index in peers {
            lines.push_str(&format!(
                "public_key={}\nendpoint={}\nreplace_allowed_ips=true\n",
                self.keys[index],
                Self::endpoint(index)
            ));
            if let Some(interval) = keepalive {
                lines.push_str(&format!("persistent_keepalive_interval={interval}\n"));
            }
            for n in 0..IPS_PER_PEER {
                lines.push_str(&format!("allowed_ip={}/32\n", Self::allowed_ip(index, n)));
            }
        }
        lines
    }

    /// The `set` lines that remove `peers`.
    fn remove_lines(&self, peers: &[usize]) -> String {
        peers
            .iter()
            .map(|&index| format!("public_key={}\nremove=true\n", self.keys[index]))
            .collect()
    }

    /// What a `get` must report of `peers`: each key with its allowed IPs.
    fn expected(&self, peers: &[usize]) -> BTreeMap<String, BTreeSet<String>> {
        peers
            .iter()
            .map(|&index| {
                let nets = (0..IPS_PER_PEER)
                    .map(|n| format!("{}/32", Self::allowed_ip(index, n)))
                    .collect();
                (self.keys[index].clone(), nets)
            })
            .collect()
    }
}

/// Lowercase hex, as the UAPI writes keys.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// One peer as a UAPI `get` reports it.
#[derive(Debug, Default)]
struct ReportedPeer {
    allowed_ips: BTreeSet<String>,
    tx_bytes: u64,
    persistent_keepalive: u64,
}

/// A namespace host running `sentrymesh wg`, with a private key and a
/// listen port, its TUN device up with the route to every allowed IP, and
/// a sink for what it sends to the peers' endpoints.
struct ManyPeersHost {
    // Declared before the host, so the daemon stops before the namespace
    // goes.
    daemon: Daemon,
    host: Host,
}

impl ManyPeersHost {
    fn new(label: &str) -> ManyPeersHost {
        let host = Host::new(label);
        host.ip(&[
            "link", "add", "sinkA", "type", "veth", "peer", "name", "sinkB",
        ]);
        host.ip(&["addr", "add", "198.18.0.1/30", "dev", "sinkA"]);
        host.ip(&["link", "set", "sinkA", "up"]);
        host.ip(&["link", "set", "sinkB", "up"]);
        host.ip(&[
            "neigh",
            "add",
            "198.18.0.2",
            "lladdr",
            "02:00:00:00:00:02",
            "dev",
            "sinkA",
            "nud",
            "permanent",
        ]);
        host.ip(&[
            "route",
            "add",
            "198.18.0.0/16",
            "via",
            "198.18.0.2",
            "dev",
            "sinkA",
        ]);
        let daemon = Implementation::Sentrymesh(SENTRYMESH).start(&host, &unique_ifname());
        let this = ManyPeersHost { daemon, host };
        let private_key = hex(&*PrivateKey::from_bytes([0x42; 32]).to_bytes());
        this.set(&format!("private_key={private_key}\nlisten_port=51820\n"));
        let ifname = this.daemon.ifname();
        this.host
            .ip(&["addr", "add", "198.19.255.254/16", "dev", ifname]);
        this.host.ip(&["link", "set", ifname, "up"]);
        let exe = std::fs::read_link(format!("/proc/{}/exe", this.daemon.pid()))
            .expect("the daemon's program");
        assert_eq!(
            exe,
            Path::new(SENTRYMESH)
                .canonicalize()
                .expect("the program under test"),
            "the measured process is not the daemon"
        );
        this
    }

    /// Sends one UAPI request and returns the lines of its answer, up to
    /// the blank line that ends it.
    fn request(&self, request: &str) -> Vec<String> {
        let path = socket_path(self.daemon.ifname());
        let mut stream = UnixStream::connect(&path)
            .unwrap_or_else(|error| panic!("connecting to {}: {error}", path.display()));
        stream
            .set_read_timeout(Some(UAPI_TIMEOUT))
            .expect("a read timeout");
        stream
            .write_all(request.as_bytes())
            .expect("send the request");
        let mut answer = Vec::new();
        for line in BufReader::new(stream).lines() {
            let line = line.unwrap_or_else(|error| {
                panic!("reading the answer: {error}\n{}", self.daemon.log())
            });
            if line.is_empty() {
                return answer;
            }
            answer.push(line);
        }
        panic!("the answer ended without a blank line: {answer:?}");
    }

    /// A `set=1` request of `lines`, which must succeed.
    fn set(&self, lines: &str) {
        let answer = self.request(&format!("set=1\n{lines}\n"));
        assert_eq!(
            answer,
            ["errno=0"],
            "a set was refused\n{}",
            self.daemon.log()
        );
    }

    /// The peers a `get=1` reports, by public key.
    fn peers(&self) -> BTreeMap<String, ReportedPeer> {
        let answer = self.request("get=1\n\n");
        assert_eq!(answer.last().map(String::as_str), Some("errno=0"));
        let mut peers = BTreeMap::new();
        let mut current: Option<&mut ReportedPeer> = None;
        for line in &answer {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not key=value: {line}"));
            let number = || -> u64 {
                value
                    .parse()
                    .unwrap_or_else(|_| panic!("not a number: {line}"))
            };
            match key {
                "public_key" => {
                    let peer: &mut ReportedPeer = peers.entry(value.to_owned()).or_default();
                    assert!(peer.allowed_ips.is_empty(), "{value} reported twice");
                    current = Some(peer);
                }
                "allowed_ip" => {
                    let peer = current.as_mut().expect("an allowed IP after a peer");
                    assert!(peer.allowed_ips.insert(value.to_owned()), "{line} twice");
                }
                "tx_bytes" => current.as_mut().expect("a peer").tx_bytes = number(),
                "persistent_keepalive_interval" => {
                    current.as_mut().expect("a peer").persistent_keepalive = number();
                }
                _ => {}
            }
        }
        peers
    }

    /// Checks that the daemon holds exactly `peers`, each with exactly its
    /// allowed IPs, by a UAPI `get`; and that `wg show dump` agrees.
    fn assert_holds(&self, fleet: &Fleet, peers: &[usize]) {
        let reported: BTreeMap<String, BTreeSet<String>> = self
            .peers()
            .into_iter()
            .map(|(key, peer)| (key, peer.allowed_ips))
            .collect();
        let expected = fleet.expected(peers);
        if reported != expected {
            let missing = expected.keys().filter(|key| !reported.contains_key(*key));
            let extra = reported.keys().filter(|key| !expected.contains_key(*key));
            panic!(
                "the daemon holds {} peers with {} allowed IPs, not {} with {}; missing {:?}, \
                 extra {:?}",
                reported.len(),
                reported.values().map(BTreeSet::len).sum::<usize>(),
                expected.len(),
                expected.values().map(BTreeSet::len).sum::<usize>(),
                missing.take(3).collect::<Vec<_>>(),
                extra.take(3).collect::<Vec<_>>(),
            );
        }
        // wg's own reading of the same: one line per peer, its allowed IPs
        // comma-separated in the fourth field.
        let dump = wg(&self.host, &["show", self.daemon.ifname(), "dump"]);
        let lines: Vec<&str> = dump.lines().skip(1).collect();
        let allowed: usize = lines
            .iter()
            .filter_map(|line| line.split('\t').nth(3))
            .map(|ips| ips.split(',').filter(|ip| *ip != "(none)").count())
            .sum();
        assert_eq!(
            (lines.len(), allowed),
            (peers.len(), peers.len() * IPS_PER_PEER),
            "wg show dump disagrees"
        );
    }

    /// The daemon's resident memory (`VmRSS`), in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.daemon.pid()))
            .expect("the daemon's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {status}"))
    }

    /// The processor time the daemon (every thread) has used, in clock
    /// ticks: `utime + stime` of `/proc/PID/stat`.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.daemon.pid()))
            .expect("the daemon's /proc stat");
        // "PID (COMM) STATE ...": COMM may hold spaces and parentheses;
        // after it, utime and stime are the 12th and 13th fields.
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .map(|(_, rest)| rest.split(' ').collect())
            .unwrap_or_default();
        let tick = |n: usize| -> u64 {
            fields
                .get(n)
                .and_then(|field| field.parse().ok())
                .unwrap_or_else(|| panic!("no field {n} in {stat}"))
        };
        tick(11) + tick(12)
    }

    /// The share of one core the daemon used over at least [`CPU_WINDOW`],
    /// in per cent, and the ticks it used.
    fn cpu_percent(&self) -> (f64, u64) {
        let (before, started) = (self.cpu_ticks(), Instant::now());
        sleep(CPU_WINDOW);
        let ticks = self.cpu_ticks() - before;
        let elapsed = started.elapsed().as_secs_f64();
        (
            100.0 * ticks as f64 / (clock_ticks_per_second() * elapsed),
            ticks,
        )
    }
}

/// The clock ticks of `/proc/PID/stat` per second (`getconf CLK_TCK`).
fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system; it takes no pointer.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(ticks > 0, "sysconf(_SC_CLK_TCK) failed");
    ticks as f64
}

/// 1,000 peers with 10,000 allowed IPs in one `set`: all there, exactly.
/// Half removed in one request: the others there, exactly, and a removed
/// peer's address routes nowhere (a ping to it reaches no peer, while one
/// to a remaining peer starts a handshake with that peer only). The half
/// added back in requests of 100: all there. Then every peer removed and
/// added back, [`CYCLES`] times: all there each time, and the daemon's
/// memory level.
#[test]
fn a_thousand_peers_with_ten_thousand_allowed_ips_come_and_go_through_uapi() {
    let fleet = Fleet::new();
    let lab = ManyPeersHost::new("many");
    let all: Vec<usize> = (0..PEERS).collect();

    let started = Instant::now();
    lab.set(&fleet.set_lines(&all, None));
    let took = started.elapsed();
    eprintln!(
        "one set of {PEERS} peers with {} allowed IPs: {took:?}",
        PEERS * IPS_PER_PEER
    );
    let started = Instant::now();
    let reported = lab.peers().len();
    eprintln!("one get of {reported} peers: {:?}", started.elapsed());
    lab.assert_holds(&fleet, &all);

    let (removed, kept): (Vec<usize>, Vec<usize>) = all.iter().partition(|&&index| index % 2 == 0);
    let started = Instant::now();
    lab.set(&fleet.remove_lines(&removed));
    eprintln!(
        "one set removing {} peers: {:?}",
        removed.len(),
        started.elapsed()
    );
    lab.assert_holds(&fleet, &kept);

    // Nothing was sent yet: no peer has a session or a keepalive.
    let peers = lab.peers();
    assert!(peers.values().all(|peer| peer.tx_bytes == 0));
    // A ping to a removed peer's address, then one to a kept peer's: the
    // daemon reads them in that order, so once the kept peer's handshake
    // shows, the first packet has been dealt with, and it went to no peer.
    let (gone, there) = (removed[7], kept[7]);
    let ping = |index: usize| {
        let to = IpAddr::V4(Fleet::allowed_ip(index, 3));
        try_ping(&lab.host, to, 1, 56, Duration::from_secs(1))
    };
    let report = ping(gone);
    assert_eq!(report.received, 0, "{}", report.output);
    ping(there);
    let there_key = &fleet.keys[there];
    assert!(
        wait_until(SENT_WITHIN, || lab.peers()[there_key].tx_bytes > 0),
        "no handshake with the peer a ping went to\n{}",
        lab.daemon.log()
    );
    let sent_to: Vec<String> = lab
        .peers()
        .into_iter()
        .filter(|(_, peer)| peer.tx_bytes > 0)
        .map(|(key, _)| key)
        .collect();
    assert_eq!(
        sent_to,
        std::slice::from_ref(there_key),
        "the ping to a removed peer's address went to a peer"
    );

    for chunk in removed.chunks(PEERS_PER_REQUEST) {
        lab.set(&fleet.set_lines(chunk, None));
    }
    lab.assert_holds(&fleet, &all);

    let mut rss = Vec::new();
    for _ in 0..CYCLES {
        lab.set(&fleet.remove_lines(&all));
        lab.assert_holds(&fleet, &[]);
        for chunk in all.chunks(PEERS_PER_REQUEST) {
            lab.set(&fleet.set_lines(chunk, None));
        }
        lab.assert_holds(&fleet, &all);
        rss.push(lab.rss_kib());
    }
    eprintln!(
        "resident memory after each of {CYCLES} cycles of removing and adding {PEERS} peers: {rss:?} KiB"
    );
    let (first, last) = (rss[0], rss[CYCLES - 1]);
    assert!(
        last <= first + MAX_RSS_GROWTH_KIB,
        "the daemon's memory grew from {first} KiB to {last} KiB over {CYCLES} cycles of the same \
         peers: {rss:?}"
    );
}

/// The daemon's resident memory before any peer and with 1,000 peers
/// (printed, with the share of each peer: at most 8 KiB), and its
/// processor time with 1,000 idle peers: under 1 % of a core without
/// keepalives; with a persistent keepalive on every peer (so each keeps
/// trying a handshake with an endpoint that never answers) it is printed.
#[test]
fn a_thousand_idle_peers_cost_under_one_percent_of_a_core() {
    let fleet = Fleet::new();
    let lab = ManyPeersHost::new("idle");
    let all: Vec<usize> = (0..PEERS).collect();
    // A get first, so the memory of serving one is counted before the peers.
    lab.assert_holds(&fleet, &[]);
    let before = lab.rss_kib();
    lab.set(&fleet.set_lines(&all, None));
    lab.assert_holds(&fleet, &all);
    let with_peers = lab.rss_kib();
    let per_peer = with_peers.saturating_sub(before) as f64 / PEERS as f64;
    eprintln!(
        "resident memory: {before} KiB before the peers, {with_peers} KiB with {PEERS} peers and \
         {} allowed IPs: {per_peer:.1} KiB per peer",
        PEERS * IPS_PER_PEER
    );
    assert!(
        per_peer <= MAX_RSS_PER_PEER_KIB,
        "{per_peer:.1} KiB per peer, more than {MAX_RSS_PER_PEER_KIB} KiB"
    );

    let (idle, ticks) = lab.cpu_percent();
    eprintln!("{PEERS} idle peers: {idle:.2} % of a core ({ticks} ticks in about {CPU_WINDOW:?})");
    assert!(
        idle < MAX_IDLE_CPU_PERCENT,
        "{PEERS} idle peers cost {idle:.2} % of a core"
    );
    assert!(
        lab.peers().values().all(|peer| peer.tx_bytes == 0),
        "idle peers without keepalives sent something"
    );

    lab.set(&fleet.set_lines(&all, Some(KEEPALIVE)));
    let peers = lab.peers();
    assert!(
        peers
            .values()
            .all(|peer| peer.persistent_keepalive == u64::from(KEEPALIVE))
    );
    let (keepalive, ticks) = lab.cpu_percent();
    let peers = lab.peers();
    let trying = peers.values().filter(|peer| peer.tx_bytes > 0).count();
    let initiations = peers.values().map(|peer| peer.tx_bytes).sum::<u64>() / INITIATION_LEN;
    eprintln!(
        "{PEERS} peers with a persistent keepalive of {KEEPALIVE} s, none answering: \
         {keepalive:.2} % of a core ({ticks} ticks in about {CPU_WINDOW:?}); {trying} peers sent \
         {initiations} handshake initiations, {} KiB resident",
        lab.rss_kib()
    );
    assert_eq!(
        trying, PEERS,
        "every peer with a keepalive tries a handshake"
    );
    assert!(
        keepalive < 100.0,
        "{keepalive:.2} % of a core: the daemon is busy with nothing to do"
    );
}
