//! What gossip taught this host, kept in its state directory: one file,
//! replaced atomically (written beside, synced, renamed, the directory
//! synced), so a crash leaves the old state or the new, never a mix, and a
//! revocation once written is never lost.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sentrymesh_mesh::Store;

/// The state file's name in the state directory.
const STATE_FILE: &str = "mesh.state";

/// The state file of the directory `dir`.
pub(super) fn path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

/// Reads the store kept in `dir`; an empty one when there is none yet. The
/// directory is created (mode 0700) if missing.
///
/// # Errors
///
/// When the directory cannot be made, or the file cannot be read or does
/// not verify: a damaged state is not replaced silently, since it may hold
/// revocations.
pub(super) fn load(dir: &Path) -> Result<Store> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the state directory {}", dir.display()))?;
    let path = path(dir);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Store::new()),
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", path.display()));
        }
    };
    Store::decode(&bytes).with_context(|| {
        format!(
            "the mesh state {} does not verify; it may hold revocations, so it is not \
             replaced: move it away to start over",
            path.display()
        )
    })
}

/// Replaces the state kept in `dir` with `store`.
///
/// # Errors
///
/// When a write, sync or rename fails; the old state then stays.
pub(super) fn save(dir: &Path, store: &Store) -> Result<()> {
    let path = path(dir);
    let temporary = dir.join(format!("{STATE_FILE}.new"));
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(&store.encode())?;
        file.sync_all()?;
        fs::rename(&temporary, &path)?;
        File::open(dir)?.sync_all()
    };
    write().with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_state_is_empty_and_a_saved_one_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let store = load(&state).unwrap();
        assert_eq!(store.objects().count(), 0);
        save(&state, &store).unwrap();
        assert_eq!(load(&state).unwrap().encode(), store.encode());
        assert!(!state.join("mesh.state.new").exists());
    }

    #[test]
    fn a_damaged_state_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(path(dir.path()), b"not a state").unwrap();
        let error = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(error.contains("does not verify"), "{error}");
        assert_eq!(fs::read(path(dir.path())).unwrap(), b"not a state");
    }
}
