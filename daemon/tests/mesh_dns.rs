//! Endpoint names on namespace hosts running `sentrymesh up`, whose system
//! resolver asks a name server that never answers: a sentry whose peers'
//! cards give such names keeps forming sessions and applies a revocation
//! while its lookups hang (and while re-issued cards bring new names), and
//! a producer asks the name server nothing, since a hidden host resolves no
//! name. The latencies are printed, not asserted against the wall clock.
//!
//! The tests need root and fail (never skip) without it. Every address is in
//! 198.18.0.0/15; see [`sentrymesh_lab::mesh_lab`]. The resolver
//! configuration is `/etc/netns/NAMESPACE/resolv.conf`, which `ip netns exec`
//! mounts over `/etc/resolv.conf` for the namespace's daemon, removed when
//! the test ends however it ends.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sentrymesh_lab::mesh_lab::{FORMS_WITHIN, Lab, Member, REVOKED_WITHIN, Role};
use sentrymesh_lab::wait_until;

/// The daemon under test, built with these tests.
const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");

/// The namespace's `/etc/netns/NAMESPACE` directory with a `resolv.conf`
/// naming `nameserver` (asked for 90 s a name: three tries of 30 s);
/// removed when dropped.
struct ResolvConf(PathBuf);

impl ResolvConf {
    fn new(member: &Member, nameserver: Ipv4Addr) -> ResolvConf {
        let dir = PathBuf::from("/etc/netns").join(member.host.name());
        std::fs::create_dir_all(&dir).expect("create the namespace's /etc/netns directory");
        let conf = ResolvConf(dir);
        std::fs::write(
            conf.0.join("resolv.conf"),
            format!("nameserver {nameserver}\noptions timeout:30 attempts:3\n"),
        )
        .expect("write resolv.conf");
        conf
    }
}

impl Drop for ResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        // Only when no other namespace's is left.
        let _ = std::fs::remove_dir("/etc/netns");
    }
}

/// A name server on `member`'s underlay address that never answers: it
/// keeps the source of each query it swallows.
struct SilentNameServer {
    stop: Arc<AtomicBool>,
    sources: Arc<Mutex<Vec<IpAddr>>>,
    thread: Option<JoinHandle<()>>,
}

impl SilentNameServer {
    fn start(member: &Member) -> SilentNameServer {
        let stop = Arc::new(AtomicBool::new(false));
        let sources = Arc::new(Mutex::new(Vec::new()));
        let address = member.underlay;
        let socket = member
            .host
            .in_namespace(move || UdpSocket::bind((address, 53)).expect("bind the name server"));
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("a read timeout");
        let (stopped, heard) = (stop.clone(), sources.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok((_, from)) = socket.recv_from(&mut buf) {
                    heard.lock().expect("the sources").push(from.ip());
                }
            }
        });
        SilentNameServer {
            stop,
            sources,
            thread: Some(thread),
        }
    }

    /// How many queries came from `address`.
    fn queries_from(&self, address: Ipv4Addr) -> usize {
        let sources = self.sources.lock().expect("the sources");
        sources
            .iter()
            .filter(|source| **source == IpAddr::V4(address))
            .count()
    }
}

impl Drop for SilentNameServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_name_server_that_never_answers_holds_up_no_member_and_hears_nothing_from_a_producer() {
    let mut lab = Lab::new(SENTRYMESH, "dns");
    let (a, b) = (lab.operator("a"), lab.operator("b"));
    let mut producer = lab.member(&a, "a-producer", Role::Producer);
    let mut sentry = lab.member(&a, "a-sentry-1", Role::Sentry);
    let mut rival = lab.member(&b, "b-sentry-1", Role::Sentry);
    // A second sentry of a, never started, whose card gives a name: the
    // producer must skip it, the sentry looks it up.
    let mut named = lab.member(&a, "a-sentry-2", Role::Sentry);
    named.name_endpoint(&a, "a-sentry-2.never.example");
    rival.name_endpoint(&b, "b-sentry-1.never.example");
    let server = SilentNameServer::start(&named);
    let _resolv = [
        ResolvConf::new(&producer, named.underlay),
        ResolvConf::new(&sentry, named.underlay),
    ];

    producer.know_card(&sentry);
    producer.know_card(&named);
    sentry.know_card(&producer);
    sentry.know_card(&rival);
    sentry.know_card(&named);
    rival.know_card(&sentry);
    producer.configure(&[&b], 1, 1);
    sentry.configure(&[&b], 1, 1);
    rival.configure(&[&a], 1, 1);
    let started = Instant::now();
    for member in [&mut producer, &mut sentry, &mut rival] {
        member.start();
    }

    // The sentry adds the rival (which initiates: it knows the sentry's
    // address) and its producer while both names hang.
    let formed = wait_until(FORMS_WITHIN, || {
        sentry.has_session_with(&producer) && sentry.has_session_with(&rival)
    });
    eprintln!(
        "the sentry had sessions with its producer and the named rival {:?} after the start, \
         while the name server answered nothing",
        started.elapsed()
    );
    assert!(formed, "the sentry formed no sessions:\n{}", sentry.log());
    assert!(sentry.peers().contains(&named.wg_public));
    assert!(producer.pings(&sentry) && rival.pings(&sentry));

    // The rival re-issues its card with a new name; meanwhile operator a
    // revokes its second sentry at the first, which applies it at once.
    rival.name_endpoint(&b, "b-sentry-1-again.never.example");
    rival.reload();
    std::thread::sleep(Duration::from_secs(2));
    sentry.know_revocation(&lab, &a, &named);
    let published = Instant::now();
    sentry.reload();
    let cut_off = wait_until(REVOKED_WITHIN, || {
        !sentry.peers().contains(&named.wg_public)
    });
    eprintln!(
        "the sentry applied the revocation {:?} after it was published, its lookups hanging",
        published.elapsed()
    );
    assert!(cut_off, "the revocation waited:\n{}", sentry.log());
    assert!(producer.pings(&sentry) && rival.pings(&sentry));

    // The sentry asked (so the name server works), the producer never did.
    let (asked, hidden_asked) = (
        server.queries_from(sentry.underlay),
        server.queries_from(producer.underlay),
    );
    eprintln!("queries heard: {asked} from the sentry, {hidden_asked} from the producer");
    assert!(asked > 0, "the sentry asked the name server nothing");
    assert_eq!(
        hidden_asked,
        0,
        "the producer sent DNS queries on the underlay:\n{}",
        producer.log()
    );
    assert!(
        producer.log().contains("a-sentry-2.never.example"),
        "the producer did not say it skipped the name:\n{}",
        producer.log()
    );
}
