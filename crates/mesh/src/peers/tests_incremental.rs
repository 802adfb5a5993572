//! The peer manager brought up to date change by change
//! ([`PeerManager::apply`]) ends where a whole recomputation
//! ([`PeerManager::update`]) does, and its events describe the way there.

use super::tests::revoke;
use super::*;
use crate::object::Object;
use crate::testing::{NOW, SignCard, card, operator, overlay_of};

fn policy() -> TrustPolicy {
    TrustPolicy::new(
        operator(1).operator_id(),
        [operator(2).operator_id(), operator(3).operator_id()],
        1,
        overlay_of([1, 2, 3]),
    )
    .unwrap()
}

/// Host `n` of operator `op`, serial `serial`, at 198.19.`op`.`n`, also
/// routing `extra` (inside its operator's range), valid from `from`.
fn host(op: u8, n: u8, serial: u64, extra: &[&str], from: UnixTime) -> SignedCard {
    host_with_key(op, n, "", serial, extra, from)
}

/// [`host`] with a key of its own for each `generation` (a rotation).
fn host_with_key(
    op: u8,
    n: u8,
    generation: &str,
    serial: u64,
    extra: &[&str],
    from: UnixTime,
) -> SignedCard {
    let secret = operator(op);
    let mut c = card(&secret, &format!("host-{n}{generation}"), Role::Sentry);
    c.name = format!("host-{n}");
    c.addresses = vec![format!("198.19.{op}.{n}/16").parse().unwrap()];
    c.allowed_ips = extra.iter().map(|e| e.parse().unwrap()).collect();
    c.serial = serial;
    c.not_before = from;
    c.sign(&secret).unwrap()
}

/// The peers a fresh manager computes from the store at `now`.
fn recomputed(local: &SignedCard, store: &Store, now: UnixTime) -> Vec<PeerSpec> {
    let mut fresh = PeerManager::new(local.clone(), policy()).unwrap();
    fresh.update(store, now);
    fresh.peers().cloned().collect()
}

#[test]
fn applying_changes_ends_where_recomputing_does() {
    let local = host(1, 1, 1, &[], NOW - 60);
    let mut store = Store::new();
    store.insert_card(local.clone(), NOW).unwrap();
    let mut manager = PeerManager::new(local.clone(), policy()).unwrap();
    manager.update(&store, NOW);
    store.take_changes();
    let mut configured: BTreeMap<PublicKey, PeerSpec> = BTreeMap::new();
    let mut now = NOW;
    // Cards that claim the same networks (who holds them moves as cards
    // come and go), renewals, revocations, a card valid only later, one
    // outside its range.
    let a = host(1, 2, 1, &["198.19.1.128/25"], NOW - 60);
    let b = host(1, 3, 1, &["198.19.1.128/25"], NOW - 60);
    let c = host(2, 2, 1, &["198.19.2.0/28"], NOW - 60);
    let d = host(2, 3, 1, &["198.19.2.0/28"], NOW - 60);
    let later = host(3, 4, 1, &[], NOW + 30);
    let outside = host(3, 5, 1, &["198.19.1.0/24"], NOW - 60);
    let renewed_a = host(1, 2, 2, &[], NOW - 60);
    let renewed_d = host(2, 3, 2, &["198.19.2.64/26"], NOW - 60);
    let rotated = host_with_key(1, 3, "-new", 1, &[], NOW + 50);
    let steps: Vec<(u64, Object)> = vec![
        (0, a.clone().into()),
        (0, b.clone().into()),
        (1, c.clone().into()),
        (0, d.clone().into()),
        (0, later.clone().into()),
        (0, outside.into()),
        (2, renewed_a.into()),
        (0, revoke(2, &c).into()),
        (10, renewed_d.into()),
        (30, revoke(1, &b).into()),
        (5, host(3, 6, 1, &[], NOW - 60).into()),
        // Operator 2 gives host 2 a new key: the old card stays in the
        // store, unrevoked, but the new one is the host.
        (0, host_with_key(2, 2, "-new", 1, &[], NOW + 60).into()),
        (1, host(2, 7, 1, &[], NOW - 60).into()),
        (0, rotated.clone().into()),
    ];
    for (i, (wait, object)) in steps.into_iter().enumerate() {
        now += wait;
        store.insert(object, now).unwrap();
        let changes = store.take_changes();
        manager.apply(&store, &changes, now);
        while let Some(event) = manager.poll_event() {
            match event {
                PeerEvent::Added(spec) => {
                    assert!(configured.insert(spec.public_key, spec).is_none())
                }
                PeerEvent::Changed(spec) => {
                    assert!(configured.insert(spec.public_key, spec).is_some());
                }
                PeerEvent::Removed(key) => assert!(configured.remove(&key).is_some()),
            }
        }
        let peers: Vec<PeerSpec> = manager.peers().cloned().collect();
        assert_eq!(peers, recomputed(&local, &store, now), "step {i}");
        assert_eq!(
            peers,
            configured.values().cloned().collect::<Vec<_>>(),
            "step {i}: the events"
        );
    }
    // Operator 1's host 3 (revoked above) came back under a new key, and
    // its address goes to the new key.
    let address: IpNet = "198.19.1.3/32".parse().unwrap();
    let new_key = rotated.card().wg_public_key;
    assert!(manager.peer(&b.card().wg_public_key).is_none());
    assert!(
        manager
            .peer(&new_key)
            .unwrap()
            .allowed_ips
            .contains(&address)
    );
    // The card valid a little later (within the clock skew allowed) is a
    // peer, and one outside its range never was.
    assert!(manager.peer(&later.card().wg_public_key).is_some());
    assert_eq!(manager.cards_refused(), 1);
    assert!(manager.next_due().is_none());
}

#[test]
fn a_new_key_for_a_host_takes_its_place_and_its_address() {
    let local = host(1, 1, 1, &[], NOW - 60);
    let old = host(2, 2, 1, &[], NOW - 3600);
    let new = host_with_key(2, 2, "-new", 1, &[], NOW - 60);
    let mut store = Store::new();
    for c in [&local, &old] {
        store.insert_card(c.clone(), NOW).unwrap();
    }
    let mut manager = PeerManager::new(local.clone(), policy()).unwrap();
    manager.update(&store, NOW);
    store.take_changes();
    assert!(manager.peer(&old.card().wg_public_key).is_some());
    while manager.poll_event().is_some() {}
    store.insert_card(new.clone(), NOW).unwrap();
    let changes = store.take_changes();
    manager.apply(&store, &changes, NOW);
    let events: Vec<PeerEvent> = std::iter::from_fn(|| manager.poll_event()).collect();
    let address: IpNet = "198.19.2.2/32".parse().unwrap();
    assert!(
        matches!(&events[..], [
        PeerEvent::Added(_), PeerEvent::Removed(key)
    ] | [PeerEvent::Removed(key), PeerEvent::Added(_)] if *key == old.card().wg_public_key),
        "{events:?}"
    );
    let peer = manager.peer(&new.card().wg_public_key).unwrap();
    assert_eq!(peer.allowed_ips, vec![address]);
    assert_eq!(manager.peers().count(), 1);
    assert_eq!(
        manager.peers().cloned().collect::<Vec<_>>(),
        recomputed(&local, &store, NOW)
    );
}

/// Host `n` of operator `op` valid until `until`, for `key` when given
/// (the key's holder signing for `op`).
fn until(op: u8, n: u8, until: UnixTime, key: Option<PublicKey>) -> SignedCard {
    use crate::testing::{rng, secret_of};
    let secret = operator(op);
    let mut c = card(&secret, &format!("host-{n}"), Role::Sentry);
    c.addresses = vec![format!("198.19.{op}.{n}/16").parse().unwrap()];
    c.allowed_ips = Vec::new();
    c.not_before = NOW - 60;
    c.not_after = until;
    match key {
        Some(key) => {
            c.wg_public_key = key;
            c.forge(&secret, &secret_of(&key), &mut rng())
        }
        None => c.sign(&secret).unwrap(),
    }
}

/// The other ways the store changes: cards expiring and pruned, a key
/// conflict resolved by the held card's expiry, operators dropped by
/// `retain_signers`, and this host's own card expiring.
#[test]
fn pruning_retaining_and_expiring_end_where_recomputing_does() {
    let local = until(1, 1, NOW + 1000, None);
    let mut store = Store::new();
    store.insert_card(local.clone(), NOW).unwrap();
    let mut manager = PeerManager::new(local.clone(), policy()).unwrap();
    manager.update(&store, NOW);
    store.take_changes();
    let mut configured: BTreeMap<PublicKey, PeerSpec> = BTreeMap::new();
    let mut check = |store: &mut Store, now: UnixTime, step: &str| {
        let changes = store.take_changes();
        manager.apply(store, &changes, now);
        while let Some(event) = manager.poll_event() {
            match event {
                PeerEvent::Added(spec) | PeerEvent::Changed(spec) => {
                    configured.insert(spec.public_key, spec);
                }
                PeerEvent::Removed(key) => assert!(configured.remove(&key).is_some()),
            }
        }
        let peers: Vec<PeerSpec> = manager.peers().cloned().collect();
        assert_eq!(peers, recomputed(&local, store, now), "{step}");
        assert_eq!(
            peers,
            configured.values().cloned().collect::<Vec<_>>(),
            "{step}"
        );
    };
    let x = until(2, 2, NOW + 100, None);
    let key = x.card().wg_public_key;
    let y = until(3, 7, NOW + 2000, Some(key));
    let z = until(3, 3, NOW + 2000, None);
    store.insert_card(x, NOW).unwrap();
    check(&mut store, NOW, "x");
    assert!(store.insert_card(y.clone(), NOW).is_err());
    check(&mut store, NOW, "y conflicts");
    store.insert_card(z, NOW).unwrap();
    check(&mut store, NOW, "z");
    let now = NOW + 100;
    store.prune(now);
    check(&mut store, now, "x expired");
    store.insert_card(y, now).unwrap();
    check(&mut store, now, "y takes the key");
    store.retain_signers(&BTreeSet::from([
        operator(1).operator_id(),
        operator(2).operator_id(),
    ]));
    check(&mut store, now, "operator 3 dropped");
    let now = NOW + 1000;
    store.prune(now);
    check(&mut store, now, "this host's card expired");
    assert!(manager.local_error().is_some());
}
