//! Tests of the resolver: a name that never resolves holds nothing up, a
//! resolved address is checked in its canonical form, and a hidden host
//! resolves nothing.

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;

use super::*;

/// Far more than any step here needs on a quiet machine.
const CEILING: Duration = Duration::from_secs(10);

fn overlay() -> IpNet {
    "198.19.0.0/16".parse().unwrap()
}

fn endpoint(text: &str) -> Endpoint {
    text.parse().unwrap()
}

/// A name server that never answers: each lookup blocks until the test
/// drops `release` (or 15 s pass, so a broken test still ends).
struct Stalled {
    calls: AtomicUsize,
    release: Mutex<std_mpsc::Receiver<()>>,
}

impl Lookup for Stalled {
    fn lookup(&self, _name: &str) -> io::Result<Vec<IpAddr>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Ok(release) = self.release.lock() {
            let _ = release.recv_timeout(Duration::from_secs(15));
        }
        Err(io::Error::other("no answer"))
    }
}

/// A resolver that answers from a table, counting lookups.
struct Table {
    calls: AtomicUsize,
    names: BTreeMap<&'static str, Vec<IpAddr>>,
}

impl Lookup for Table {
    fn lookup(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.names
            .get(name)
            .cloned()
            .ok_or_else(|| io::Error::other("no such name"))
    }
}

async fn next(resolver: &mut Resolver) -> Resolved {
    tokio::time::timeout(CEILING, resolver.next())
        .await
        .expect("a lookup's outcome within the ceiling")
}

async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < CEILING, "waited for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_name_that_never_resolves_holds_nothing_up() {
    let (release, released) = std_mpsc::channel();
    let stalled = Arc::new(Stalled {
        calls: AtomicUsize::new(0),
        release: Mutex::new(released),
    });
    let mut resolver = Resolver::new(stalled.clone(), Duration::from_millis(200));
    let names: Vec<String> = (0..20).map(|i| format!("stalled-{i}.example")).collect();

    // A rival's twenty names and an honest peer's address: each answered
    // at once, the names without an endpoint for now.
    let start = Instant::now();
    for name in &names {
        let named = endpoint(&format!("{name}:51820"));
        assert_eq!(
            resolver.endpoint(&named, "rival", overlay(), false, Instant::now()),
            None
        );
    }
    let honest = endpoint("198.18.0.2:51820");
    assert_eq!(
        resolver.endpoint(&honest, "sentry-2", overlay(), false, Instant::now()),
        Some("198.18.0.2:51820".parse().unwrap())
    );
    let answered_in = start.elapsed();
    eprintln!("21 endpoints chosen in {answered_in:?} while every name hangs");
    assert!(answered_in < CEILING, "{answered_in:?}");

    // At most MAX_IN_FLIGHT lookups run, however many names wait.
    wait_for("the first lookups", || {
        stalled.calls.load(Ordering::SeqCst) == MAX_IN_FLIGHT
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stalled.calls.load(Ordering::SeqCst), MAX_IN_FLIGHT);

    // A hung lookup is given up, and its failure kept: the same card
    // again (a higher serial) brings no new lookup.
    let first = next(&mut resolver).await;
    assert!(first.addresses.is_err(), "{first:?}");
    let name = first.name().to_owned();
    resolver.complete(first, Instant::now());
    let again = endpoint(&format!("{name}:51820"));
    for _ in 0..10 {
        assert_eq!(
            resolver.endpoint(&again, "rival", overlay(), false, Instant::now()),
            None
        );
    }

    // When the name server lets go, the slots free up and each other name
    // is looked up once.
    drop(release);
    let mut outcomes = 1;
    while outcomes < names.len() {
        let resolved = next(&mut resolver).await;
        assert!(resolved.addresses.is_err(), "{resolved:?}");
        resolver.complete(resolved, Instant::now());
        outcomes += 1;
    }
    assert_eq!(stalled.calls.load(Ordering::SeqCst), names.len());
}

#[tokio::test]
async fn a_resolved_address_is_used_in_its_canonical_form_outside_the_overlay() {
    let ip = |text: &str| text.parse::<IpAddr>().unwrap();
    let table = Arc::new(Table {
        calls: AtomicUsize::new(0),
        names: BTreeMap::from([
            (
                "mapped.example",
                vec![ip("::ffff:198.19.1.7"), ip("::ffff:198.18.0.9")],
            ),
            (
                "inside.example",
                vec![ip("::ffff:198.19.1.7"), ip("198.19.1.8"), ip("127.0.0.1")],
            ),
        ]),
    });
    let mut resolver = Resolver::new(table.clone(), LOOKUP_TIMEOUT);
    let (mapped, inside) = (
        endpoint("mapped.example:51820"),
        endpoint("inside.example:51820"),
    );
    for named in [&mapped, &inside] {
        assert_eq!(
            resolver.endpoint(named, "sentry-1", overlay(), false, Instant::now()),
            None
        );
    }
    for _ in 0..2 {
        let resolved = next(&mut resolver).await;
        resolver.complete(resolved, Instant::now());
    }
    assert_eq!(
        resolver.endpoint(&mapped, "sentry-1", overlay(), false, Instant::now()),
        Some("198.18.0.9:51820".parse().unwrap())
    );
    assert_eq!(
        resolver.endpoint(&inside, "sentry-1", overlay(), false, Instant::now()),
        None
    );
    // A mapped address endpoint (the mesh refuses such a card) is checked
    // and used as the IPv4 address it is.
    assert_eq!(
        resolver.endpoint(
            &endpoint("[::ffff:198.19.1.7]:51820"),
            "sentry-1",
            overlay(),
            false,
            Instant::now()
        ),
        None
    );
    assert_eq!(
        resolver.endpoint(
            &endpoint("[::ffff:198.18.0.9]:51820"),
            "sentry-1",
            overlay(),
            false,
            Instant::now()
        ),
        Some("198.18.0.9:51820".parse().unwrap())
    );
    assert_eq!(table.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_hidden_host_resolves_no_name() {
    let table = Arc::new(Table {
        calls: AtomicUsize::new(0),
        names: BTreeMap::from([("sentry-1.example", vec!["198.18.0.1".parse().unwrap()])]),
    });
    let mut resolver = Resolver::new(table.clone(), LOOKUP_TIMEOUT);
    let named = endpoint("sentry-1.example:51820");
    for _ in 0..3 {
        assert_eq!(
            resolver.endpoint(&named, "sentry-1", overlay(), true, Instant::now()),
            None
        );
    }
    // Nothing was started, nothing is pending.
    assert!(resolver.names.is_empty(), "{:?}", resolver.names);
    assert_eq!(resolver.skipped.len(), 1);
    assert_eq!(
        resolver.endpoint(
            &endpoint("198.18.0.1:51820"),
            "sentry-1",
            overlay(),
            true,
            Instant::now()
        ),
        Some("198.18.0.1:51820".parse().unwrap())
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(table.calls.load(Ordering::SeqCst), 0);
    // A public host resolves the same name.
    assert_eq!(
        resolver.endpoint(&named, "sentry-1", overlay(), false, Instant::now()),
        None
    );
    let resolved = next(&mut resolver).await;
    resolver.complete(resolved, Instant::now());
    assert_eq!(
        resolver.endpoint(&named, "sentry-1", overlay(), false, Instant::now()),
        Some("198.18.0.1:51820".parse().unwrap())
    );
}
