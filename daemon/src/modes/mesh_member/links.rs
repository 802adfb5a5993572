//! Which mesh peers have a WireGuard session, told to the mesh: its gossip
//! prefers those peers for its random choices and keeps only a few sessions
//! up on purpose (`sentrymesh_mesh::gossip`), instead of one with every
//! peer.

use rand_core::{OsRng, RngCore};
use sentrymesh_mesh::Mesh;
use sentrymesh_types::PublicKey;

use super::sessions::SessionBook;

/// Seeds the mesh's random choices of peers from the operating system, so
/// no one can predict which peers this host pushes to.
pub(super) fn seed(mesh: &mut Mesh) {
    mesh.reseed(OsRng.next_u64());
}

/// Marks each mesh peer linked or not by whether it had a live session at
/// the session book's last look. O(peers log peers).
pub(super) fn note_sessions(mesh: &mut Mesh, sessions: &SessionBook) {
    let peers: Vec<PublicKey> = mesh.peers().map(|peer| peer.public_key).collect();
    for key in peers {
        mesh.set_linked(&key, sessions.is_live(&key));
    }
}
