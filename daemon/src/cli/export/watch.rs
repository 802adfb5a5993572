//! `--watch FILE`: keeps a file equal to an export while the mesh changes.
//!
//! Each `--interval` the files the export was made from (the config, the
//! card, the known directory and its files, the state) are looked at —
//! their size, time and inode, not their contents — and only when one
//! changed, or a minute went by (a card may have expired meanwhile), is
//! the export made again. The file is rewritten only when the text
//! differs, atomically (a temporary file in the same directory, synced,
//! renamed over it), so a reader such as a systemd path unit or a chain
//! node's `ExecStartPre` sees the old file or the new one, and its time
//! changes only when its contents do. SIGTERM and SIGINT end the watch
//! with success.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::files::{self, Existing, PUBLIC_MODE};

/// The longest the export goes unmade while nothing it reads changes.
const REFRESH: Duration = Duration::from_secs(60);

/// An export, and the files it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rendered {
    /// The export's text.
    pub(super) text: String,
    /// Every file and directory it read.
    pub(super) inputs: Vec<PathBuf>,
}

/// What the files an export was made from look like: each one's size,
/// modification time and inode (none for a missing one), and a
/// directory's entries' too.
type Fingerprint = Vec<Option<(u64, i64, i64, u64)>>;

/// Keeps the file at `path` equal to what `render` makes, looking every
/// `interval`, until SIGTERM or SIGINT.
///
/// # Errors
///
/// When the first export cannot be made (a later failure is logged and
/// the file kept), when the file cannot be written, or when the signals
/// cannot be watched.
pub(super) fn watch(
    path: &Path,
    interval: Duration,
    mut render: impl FnMut() -> Result<Rendered>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the watch")?;
    runtime.block_on(async {
        let mut terminate = signal(SignalKind::terminate()).context("watching SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("watching SIGINT")?;
        let mut inputs: Vec<PathBuf> = Vec::new();
        let mut last: Option<(Fingerprint, Instant)> = None;
        loop {
            let before = fingerprint(&inputs);
            let due = last
                .as_ref()
                .is_none_or(|(seen, at)| *seen != before || at.elapsed() >= REFRESH);
            if due {
                match render() {
                    Ok(rendered) => {
                        write_if_changed(path, &rendered.text)?;
                        // A file that changed while the export was made
                        // differs from `before`: the next look makes it again.
                        last = (rendered.inputs == inputs).then(|| (before, Instant::now()));
                        inputs = rendered.inputs;
                    }
                    Err(error) if last.is_none() && inputs.is_empty() => return Err(error),
                    Err(error) => {
                        tracing::warn!("{} is kept as it is: {error:#}", path.display());
                        last = Some((before, Instant::now()));
                    }
                }
            }
            tokio::select! {
                _ = terminate.recv() => return Ok(()),
                _ = interrupt.recv() => return Ok(()),
                () = tokio::time::sleep(interval) => {}
            }
        }
    })
}

/// Writes `text` to the file at `path`, atomically, unless it holds that
/// already.
///
/// # Errors
///
/// When the file cannot be written; the message names it.
pub(super) fn write_if_changed(path: &Path, text: &str) -> Result<bool> {
    if fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(false);
    }
    files::write_atomically(path, text.as_bytes(), PUBLIC_MODE, Existing::Replace)
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::info!("wrote {}", path.display());
    Ok(true)
}

/// What the files at `paths` look like now.
fn fingerprint(paths: &[PathBuf]) -> Fingerprint {
    let look = |path: &Path| {
        fs::metadata(path)
            .ok()
            .map(|meta| (meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino()))
    };
    let mut seen = Vec::new();
    for path in paths {
        seen.push(look(path));
        if let Ok(entries) = fs::read_dir(path) {
            let mut names: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect();
            names.sort();
            seen.extend(names.iter().map(|name| look(name)));
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_rewritten_only_when_its_text_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p2p.toml");
        assert!(write_if_changed(&path, "pex = true\n").unwrap());
        let inode = fs::metadata(&path).unwrap().ino();
        assert!(!write_if_changed(&path, "pex = true\n").unwrap());
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
        assert!(write_if_changed(&path, "pex = false\n").unwrap());
        // Replaced by a rename, not written in place.
        assert_ne!(fs::metadata(&path).unwrap().ino(), inode);
        assert_eq!(fs::read_to_string(&path).unwrap(), "pex = false\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_fingerprint_sees_a_file_added_to_a_directory_or_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.card");
        fs::write(&file, "1").unwrap();
        let inputs = vec![dir.path().to_path_buf(), dir.path().join("missing")];
        let first = fingerprint(&inputs);
        assert_eq!(fingerprint(&inputs), first);
        fs::write(dir.path().join("b.card"), "2").unwrap();
        let second = fingerprint(&inputs);
        assert_ne!(second, first);
        fs::write(&file, "10").unwrap();
        assert_ne!(fingerprint(&inputs), second);
    }
}
