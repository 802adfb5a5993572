//! Property tests of gossip input: random bytes, and random mutations of
//! real digest, want and objects messages, sent by a peer, never panic and
//! never change the receiving member's store or peers (unless what is left
//! still carries some of the original signed objects, unaltered); every one
//! that does not decode is counted, and whatever the member sends in reply
//! is well-formed.

use std::sync::OnceLock;

use proptest::prelude::*;
use sentrymesh_mesh::{
    GossipMessage, Mesh, Object, PeerEvent, PeerSpec, Revocation, RevocationTarget, Role,
    SignedCard, Store, Vouch,
};

use sentrymesh_mesh::sim::{host_card, policy};
use sentrymesh_mesh::testing::mutation::{apply, mutation};
use sentrymesh_mesh::testing::{NOW, operator};

/// The receiving member's card, its peer's, and valid messages from that
/// peer carrying objects the member does not hold.
struct Fixture {
    own: SignedCard,
    peer: SignedCard,
    objects: Vec<Object>,
    messages: Vec<Vec<u8>>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let own = host_card(1, "sentry-1", Role::Sentry, 1);
        let peer = host_card(1, "sentry-2", Role::Sentry, 2);
        let new_objects: Vec<Object> = vec![
            host_card(2, "sentry-1", Role::Sentry, 3).into(),
            host_card(1, "producer", Role::Producer, 4).into(),
            Vouch {
                voucher: operator(2).operator_id(),
                subject: operator(3).operator_id(),
                overlay: "198.19.9.0/24".parse().unwrap(),
                issued_at: NOW,
            }
            .sign(&operator(2))
            .unwrap()
            .into(),
            Revocation {
                issuer: operator(1).operator_id(),
                target: RevocationTarget::Host(peer.card().wg_public_key),
                issued_at: NOW,
            }
            .sign(&operator(1))
            .unwrap()
            .into(),
        ];
        let ids: Vec<_> = new_objects.iter().map(Object::id).collect();
        let messages = vec![
            GossipMessage::Objects {
                objects: new_objects.clone(),
            }
            .encode()
            .unwrap(),
            GossipMessage::Digest { ids: ids.clone() }.encode().unwrap(),
            GossipMessage::Want { ids }.encode().unwrap(),
        ];
        Fixture {
            own,
            peer,
            objects: new_objects,
            messages,
        }
    })
}

/// A fresh member that has the fixture's peer.
fn member() -> Mesh {
    let f = fixture();
    let mut store = Store::new();
    store.insert_card(f.peer.clone(), NOW).unwrap();
    let mut mesh = Mesh::new(f.own.clone(), policy(1, &[2], 1), store, NOW).unwrap();
    assert!(mesh.is_admitted_peer(&f.peer.card().wg_public_key));
    assert!(matches!(mesh.poll_event(), Some(PeerEvent::Added(_))));
    assert!(mesh.poll_event().is_none());
    mesh
}

/// Sends `bytes` from the peer; checks the store and peers did not change
/// unless `may_change`, and that a refused message was counted.
fn receive(bytes: &[u8], may_change: bool) -> Result<(), TestCaseError> {
    let mut mesh = member();
    let before = mesh.store().clone();
    let peers: Vec<PeerSpec> = mesh.peers().cloned().collect();
    let malformed = mesh.stats().messages_malformed;
    let from = fixture().peer.card().wg_public_key;
    let result = mesh.handle_message(from, bytes, NOW);
    if result.is_err() {
        prop_assert_eq!(mesh.stats().messages_malformed, malformed + 1);
    }
    if !may_change {
        prop_assert_eq!(mesh.store(), &before);
        prop_assert_eq!(mesh.store().generation(), before.generation());
        prop_assert_eq!(mesh.peers().cloned().collect::<Vec<_>>(), peers);
        prop_assert!(mesh.poll_event().is_none());
    }
    // Whatever came in, whatever goes out is well-formed.
    while let Some((_, out)) = mesh.poll_transmit() {
        prop_assert!(GossipMessage::decode(&out).is_ok());
    }
    Ok(())
}

#[test]
fn the_unmutated_objects_message_does_change_the_store() {
    // The control for the properties below: the same bytes, unaltered, are
    // taken — the producer card, the vouch, the revocation (which removes
    // the peer) and the other operator's sentry.
    let mut mesh = member();
    let from = fixture().peer.card().wg_public_key;
    mesh.handle_message(from, &fixture().messages[0], NOW)
        .unwrap();
    assert_eq!(mesh.stats().objects_new, 4);
    assert!(!mesh.is_admitted_peer(&from));
}

proptest! {
    #[test]
    fn random_bytes_change_nothing(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        receive(&bytes, false)?;
    }

    #[test]
    fn random_headers_change_nothing(
        head in (0u8..3, 0u8..5),
        rest in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut bytes = vec![head.0, head.1];
        bytes.extend(rest);
        receive(&bytes, false)?;
    }

    #[test]
    fn mutated_messages_change_nothing(
        which in 0usize..3,
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let original = &fixture().messages[which];
        let bytes = apply(original, &mutations);
        // Only objects their signers made can get in: a mutation that still
        // decodes as objects — once the objects the member skips unverified
        // (their signer, maybe altered, is not admitted) are left out —
        // carries some of the original ones, unaltered.
        let admitted = [operator(1).operator_id(), operator(2).operator_id()];
        let admits = |signer: &[u8; 32]| admitted.iter().any(|op| op.as_bytes() == signer);
        let may_change = match GossipMessage::decode_admitting(&bytes, admits) {
            Ok((GossipMessage::Objects { objects }, _)) => {
                prop_assert!(objects.iter().all(|o| fixture().objects.contains(o)));
                true
            }
            Ok(_) | Err(_) => false,
        };
        receive(&bytes, may_change)?;
    }
}
