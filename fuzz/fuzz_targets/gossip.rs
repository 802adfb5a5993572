//! Gossip messages: `GossipMessage::decode`, and a member (`Mesh`) of a
//! small converged mesh receiving the bytes from its admitted peer (or
//! from a stranger), as raw input or one of the peer's genuine objects,
//! digest and want messages mutated (`sentrymesh_fuzz::shape`).
//!
//! Input: a flags byte (bit 0: from a stranger), then the input of `shape`.
//!
//! What must hold: a decoded message encodes to bytes that decode to the
//! same message and encode again the same; a refused message is counted
//! and changes neither the store nor the peers; an accepted one adds to
//! the store only objects the genuine messages carried (nothing else is
//! signed by an admitted operator); whatever the member sends back
//! decodes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sentrymesh_fuzz::mesh::{GossipFixture, gossip};
use sentrymesh_fuzz::shape;
use sentrymesh_mesh::testing::{NOW, wg_key};
use sentrymesh_mesh::{GossipError, GossipMessage, Object, PeerSpec};

fn fixture() -> &'static GossipFixture {
    static FIXTURE: OnceLock<GossipFixture> = OnceLock::new();
    FIXTURE.get_or_init(gossip)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    let sources: Vec<&[u8]> = fixture.messages.iter().map(Vec::as_slice).collect();
    let bytes = shape(input, &sources);

    if let Ok(message) = GossipMessage::decode(&bytes) {
        let encoded = message.encode().expect("a decoded message encodes");
        let again = GossipMessage::decode(&encoded).expect("an encoded message decodes");
        assert_eq!(again, message, "encoding changed the message");
        assert_eq!(again.encode().ok(), Some(encoded), "encoding is not stable");
    }

    let mut mesh = fixture.member();
    let from = if flags & 1 != 0 {
        wg_key([9; 32])
    } else {
        fixture.peer.card().wg_public_key
    };
    let before = mesh.store().clone();
    let peers: Vec<PeerSpec> = mesh.peers().cloned().collect();
    let malformed = mesh.stats().messages_malformed;
    match mesh.handle_message(from, &bytes, NOW) {
        Err(error) => {
            if matches!(error, GossipError::Malformed { .. }) {
                assert_eq!(mesh.stats().messages_malformed, malformed + 1);
            }
            assert_eq!(mesh.store(), &before, "a refused message changed the store");
            assert_eq!(mesh.peers().cloned().collect::<Vec<_>>(), peers);
            assert!(
                mesh.poll_event().is_none(),
                "a refused message changed the peers"
            );
        }
        Ok(()) => {
            let known: Vec<_> = fixture.objects.iter().map(Object::id).collect();
            for (id, _) in mesh.store().objects() {
                assert!(
                    before.contains(&id) || known.contains(&id),
                    "stored an object no admitted operator signed"
                );
            }
        }
    }
    while let Some((_, out)) = mesh.poll_transmit() {
        assert!(
            GossipMessage::decode(&out).is_ok(),
            "sent a malformed message"
        );
    }
});
