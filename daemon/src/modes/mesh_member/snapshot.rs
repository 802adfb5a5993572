//! The mesh as the daemon of a config sees it, read beside that daemon
//! without touching it: for `sentrymesh export`.
//!
//! It is the daemon's own computation on the daemon's own inputs: this
//! host's card and trust from the config, the known directory, and what
//! gossip taught the daemon, from its state directory (written at most a
//! second after each change, replaced by a rename: a reader sees a whole
//! state). So the peers are those the daemon configures, at most a
//! second behind it, and they are there whether or not the daemon runs.
//! Nothing is written and no lock is taken.

use anyhow::Result;
use sentrymesh_mesh::Mesh;
use sentrymesh_types::UnixTime;

use super::{MeshInputs, known, state_file};
use crate::config::Config;

/// The mesh member `config` describes, as of `now`: its store read from
/// the state directory, the known directory's objects added (those of an
/// operator admitted only by others among them too, as the daemon offers
/// them again).
///
/// # Errors
///
/// When `config` has no mesh, a file it names cannot be read or does not
/// verify, the state does not verify, or the mesh refuses this host's card
/// (another operator's policy, another operator's key).
pub fn read_mesh(config: &Config, now: UnixTime) -> Result<Mesh> {
    let inputs = MeshInputs::read(config)?;
    let store = state_file::inspect(&inputs.settings.state_dir)?;
    let mut mesh = Mesh::new(inputs.card, inputs.policy, store, now)?;
    let known = known::sort(inputs.known);
    loop {
        let admitted = mesh.admitted_operators().clone();
        known::insert(&mut mesh, &known, now);
        if *mesh.admitted_operators() == admitted {
            return Ok(mesh);
        }
    }
}
