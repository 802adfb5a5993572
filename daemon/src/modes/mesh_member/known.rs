//! The objects an operator hands a host to start from: the files of its
//! known directory, `*.card`, `*.vouch` and `*.revocation`, each in the
//! text form the `card`, `trust` commands print; and how they are offered
//! to the mesh.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use sentrymesh_mesh::{InsertError, Mesh, Object, SignedCard, SignedRevocation, SignedVouch};
use sentrymesh_types::UnixTime;

/// The largest file read from the known directory.
const MAX_FILE_LEN: u64 = 1 << 20;

/// Reads every object in `dir`, in file-name order.
///
/// # Errors
///
/// When the directory cannot be read, or a file with one of the three
/// extensions is not a valid object of its kind (its name is given; its
/// contents are not).
pub(super) fn read(dir: &Path) -> Result<Vec<Object>> {
    let mut paths: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("reading the known directory {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    paths.sort();
    let mut objects = Vec::new();
    for path in paths {
        let Some(extension) = path.extension().and_then(|extension| extension.to_str()) else {
            continue;
        };
        let parse: fn(&str) -> Result<Object> = match extension {
            "card" => |text| Ok(SignedCard::from_text(text)?.into()),
            "vouch" => |text| Ok(SignedVouch::from_text(text)?.into()),
            "revocation" => |text| Ok(SignedRevocation::from_text(text)?.into()),
            _ => continue,
        };
        let len = fs::metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        if len > MAX_FILE_LEN {
            return Err(anyhow!("{} is larger than 1 MiB", path.display()));
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        objects.push(parse(&text).with_context(|| format!("{} is refused", path.display()))?);
    }
    Ok(objects)
}

/// The known objects in the order they can be taken: vouches and
/// revocations first, since the vouches admit the operators whose cards
/// follow.
pub(super) fn sort(mut known: Vec<Object>) -> Vec<Object> {
    known.sort_by_key(|object| matches!(object, Object::Card(_)));
    known
}

/// Adds the operator's known objects to `mesh`; one it refuses (expired,
/// superseded) is logged and skipped, one of an operator not admitted yet
/// waits for [`super::MeshMember`] to offer them again.
pub(super) fn insert(mesh: &mut Mesh, known: &[Object], now: UnixTime) {
    for object in known {
        match mesh.insert(object.clone(), now) {
            Ok(_) => {}
            Err(error @ InsertError::NotAdmitted { .. }) => {
                tracing::debug!("a known object waits: {error}");
            }
            Err(error) => tracing::warn!("a known object is not used: {error}"),
        }
    }
}
