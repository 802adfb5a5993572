//! A gossip flood in virtual time (the crate's `sim` harness): an
//! admitted rival's sentry sends its peers 100,000 objects signed by fresh
//! keys and 50,000 signed by its own operator. The fresh keys' objects are
//! dropped before their signatures are checked, the rival's are held to its
//! quotas, every store stays within its stated bound, and a real
//! revocation afterwards still takes effect on every host at once.

use sentrymesh_mesh::sim::*;
use sentrymesh_mesh::testing::{NOW, operator};
use sentrymesh_mesh::{
    GossipError, GossipMessage, HOST_QUOTA, Object, OperatorId, OperatorSecret, Revocation,
    RevocationTarget, STATEMENT_QUOTA, Vouch,
};
use sentrymesh_types::PublicKey;

/// Objects signed by fresh keys.
const FRESH_OBJECTS: usize = 100_000;
/// Objects signed by the admitted rival.
const RIVAL_OBJECTS: usize = 50_000;
/// Each fresh key signs this many.
const PER_FRESH_KEY: usize = 4;
/// Objects per flood message: 200 statements fit in one.
const PER_MESSAGE: usize = 200;

/// Fresh operator `n`: a key no one admits.
fn fresh(n: usize) -> OperatorSecret {
    let mut seed = [0x66; 32];
    seed[..8].copy_from_slice(&(n as u64).to_le_bytes());
    OperatorSecret::from_seed(seed)
}

/// A key no card names.
fn stray_key(n: usize) -> PublicKey {
    let mut key = [0x99; 32];
    key[..8].copy_from_slice(&(n as u64).to_le_bytes());
    PublicKey::from_bytes(key)
}

fn revoke(by: &OperatorSecret, key: PublicKey) -> Object {
    Revocation {
        issuer: by.operator_id(),
        target: RevocationTarget::Host(key),
        issued_at: NOW,
    }
    .sign(by)
    .unwrap()
    .into()
}

/// The flood's messages, the fresh keys' and the rival's interleaved; and
/// the fresh keys' operator ids.
fn flood(rival: &OperatorSecret) -> (Vec<Vec<u8>>, Vec<OperatorId>) {
    let keys: Vec<OperatorSecret> = (0..FRESH_OBJECTS / PER_FRESH_KEY).map(fresh).collect();
    let fresh_objects: Vec<Object> = (0..FRESH_OBJECTS)
        .map(|n| revoke(&keys[n / PER_FRESH_KEY], stray_key(n)))
        .collect();
    // Half host revocations of keys it never had cards for, half vouches
    // for the fresh operators.
    let rival_objects: Vec<Object> = (0..RIVAL_OBJECTS)
        .map(|n| match n % 2 {
            0 => revoke(rival, stray_key(FRESH_OBJECTS + n)),
            _ => Vouch {
                voucher: rival.operator_id(),
                subject: keys[n % keys.len()].operator_id(),
                overlay: "198.19.200.0/24".parse().unwrap(),
                issued_at: NOW - (n / keys.len()) as u64,
            }
            .sign(rival)
            .unwrap()
            .into(),
        })
        .collect();
    let message = |chunk: &[Object]| {
        GossipMessage::Objects {
            objects: chunk.to_vec(),
        }
        .encode()
        .unwrap()
    };
    let mut messages = Vec::new();
    let mut rival_chunks = rival_objects.chunks(PER_MESSAGE);
    for chunk in fresh_objects.chunks(PER_MESSAGE) {
        messages.push(message(chunk));
        if let Some(chunk) = rival_chunks.next() {
            messages.push(message(chunk));
        }
    }
    messages.extend(rival_chunks.map(message));
    (
        messages,
        keys.iter().map(OperatorSecret::operator_id).collect(),
    )
}

#[test]
fn a_flood_of_gossip_leaves_stores_bounded_and_a_revocation_takes_effect_at_once() {
    // Every operator trusts the others directly, and admits others on two
    // vouches: the rival alone admits no one (with one, each of its vouches
    // would admit a fresh operator, with quotas of its own).
    let mut net = Net::launch(
        THREE,
        |op| {
            let others: Vec<u8> = THREE.iter().filter(|&&o| o != op).copied().collect();
            policy(op, &others, 2)
        },
        seed(),
    );
    net.run_for(10);
    let rival = operator(3);
    let (messages, fresh_ids) = flood(&rival);
    let flooder = net.at(3, "sentry-1").key();
    let targets = [(1, "sentry-1"), (2, "sentry-1")];
    let started = net.now;
    // The rival's sentry sends as fast as each target's receive budget for
    // it lets a message in; the mesh runs meanwhile.
    for (op, name) in targets {
        for bytes in &messages {
            loop {
                let now = net.now;
                match net.at(op, name).mesh.handle_message(flooder, bytes, now) {
                    Ok(()) => break,
                    Err(GossipError::OverBudget { .. }) => net.run_for(1),
                    Err(error) => panic!("{error}"),
                }
            }
        }
    }
    net.run_for(10);
    eprintln!(
        "the flood of {} messages took {} s of virtual time",
        2 * messages.len(),
        net.now.secs_since(started)
    );
    for (op, name) in targets {
        let stats = net.at(op, name).mesh.stats();
        assert_eq!(stats.objects_not_admitted, FRESH_OBJECTS as u64);
        assert!(stats.objects_over_quota > 0, "{stats:?}");
    }

    // A real revocation: operator 2 revokes its second sentry, at its
    // first. Every other host holds it and has dropped the host within a
    // second of virtual time (the deliveries take none).
    let doomed = hosts_of(2)[2].card().wg_public_key;
    let revocation = Revocation {
        issuer: operator(2).operator_id(),
        target: RevocationTarget::Host(doomed),
        issued_at: net.now,
    }
    .sign(&operator(2))
    .unwrap();
    let at = net.now;
    net.hand(2, "sentry-1", revocation.clone());
    net.run_for(1);
    assert!(net.now <= at + 1);
    assert!(net.everyone_holds(&revocation.into(), &[doomed]));
    for m in net.nodes().filter(|m| m.key() != doomed) {
        assert!(!m.mesh.is_admitted_peer(&doomed), "{}", m.name());
    }

    // Every store: nothing of the fresh keys, the rival within its quotas
    // (on others' hosts), and the whole within the stated bound of quota ×
    // admitted operators.
    let rival_id = rival.operator_id();
    for m in net.nodes() {
        let store = m.mesh.store();
        let signers = store
            .revocations()
            .map(|r| r.revocation().issuer)
            .chain(store.vouches().map(|v| v.vouch().voucher));
        for signer in signers {
            assert!(!fresh_ids.contains(&signer), "{}", m.name());
        }
        // The rival's own hosts never refuse its objects for room: they
        // hold what the two targets took and relayed, a quota from each.
        let quotas = if m.op == 3 { 2 } else { 1 };
        let (hosts, statements) = store.usage_of(&rival_id);
        assert!(
            hosts <= quotas * HOST_QUOTA && statements <= quotas * STATEMENT_QUOTA,
            "{}: {hosts} {statements}",
            m.name()
        );
        let admitted = m.mesh.admitted_operators().len();
        let bound = (HOST_QUOTA + 2 * STATEMENT_QUOTA) * (admitted + quotas - 1);
        assert!(store.len() <= bound, "{}: {}", m.name(), store.len());
        eprintln!("{}: {} objects (bound {bound})", m.name(), store.len());
    }
    net.assert_events_match();
}
