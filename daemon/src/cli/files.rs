//! The files the operator commands read and write: armoured text in,
//! armoured text out, each output written whole or not at all.
//!
//! A file is written by creating a temporary file beside it (in the same
//! directory, so the final move stays on one filesystem) with its final
//! mode, writing and syncing it, and only then giving it its name; the
//! directory is synced after. A reader sees the old file or the new one,
//! never half of one, and a crash leaves at most a stray temporary file.
//!
//! A name that must not be replaced (an operator key) is given with a hard
//! link, which fails when the name exists, so even a file created between
//! the check and the link is never overwritten. On a filesystem without hard
//! links it falls back to a check and a rename.
//!
//! `-` names standard input or standard output.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rand_core::{OsRng, RngCore};

/// The path that stands for standard input or output.
pub(crate) const STDIO: &str = "-";

/// The mode of files only their owner may read: keys, and cards (which
/// carry endpoints meant for sealed bundles only).
pub(crate) const PRIVATE_MODE: u32 = 0o600;
/// The mode of files meant to be published (bundles, vouches, revocations),
/// before the umask.
pub(crate) const PUBLIC_MODE: u32 = 0o666;

/// What to do when the file to write exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Replace it (atomically).
    Replace,
    /// Leave it and fail with [`io::ErrorKind::AlreadyExists`].
    Refuse,
}

/// Writes `contents` to `path` with `mode` (less the umask), atomically.
///
/// # Errors
///
/// [`io::ErrorKind::AlreadyExists`] when `path` exists (even as a dangling
/// symbolic link) and `existing` is [`Existing::Refuse`]; any error creating,
/// writing, syncing or naming the file. On error the temporary file is
/// removed and `path` is as it was.
pub(crate) fn write_atomically(
    path: &Path,
    contents: &[u8],
    mode: u32,
    existing: Existing,
) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if existing == Existing::Refuse && exists(path) {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    let mut temp = TempFile::create(dir, name, mode)?;
    temp.file.write_all(contents)?;
    temp.file.sync_all()?;
    match existing {
        Existing::Replace => fs::rename(&temp.path, path)?,
        Existing::Refuse => match fs::hard_link(&temp.path, path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Err(error),
            // No hard links here (e.g. FAT, some FUSE filesystems): check
            // again and rename, leaving only a tiny window.
            Err(_) if !exists(path) => fs::rename(&temp.path, path)?,
            Err(_) => return Err(io::ErrorKind::AlreadyExists.into()),
        },
    }
    drop(temp);
    // Make the new name durable. Some filesystems cannot sync a directory;
    // the file itself is synced already, so that is not worth failing for.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Whether anything, even a dangling symbolic link, has this name.
fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// A temporary file, removed when dropped (after a rename there is nothing
/// left to remove, and the failed removal is ignored).
struct TempFile {
    path: PathBuf,
    file: File,
}

impl TempFile {
    /// Creates `.NAME.RANDOM.tmp` in `dir`, new, with `mode`.
    fn create(dir: &Path, name: &std::ffi::OsStr, mode: u32) -> io::Result<Self> {
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{:016x}.tmp", OsRng.next_u64()));
        let path = dir.join(temp_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)?;
        Ok(Self { path, file })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Writes `text` to standard output (`out`) when `path` is `None` or `-`,
/// otherwise to the file at `path` with `mode`, replacing it atomically.
///
/// # Errors
///
/// When `out` or the file cannot be written; the message names the file.
pub(crate) fn write_output(
    path: Option<&Path>,
    out: &mut impl Write,
    text: &str,
    mode: u32,
) -> Result<()> {
    match path {
        Some(path) if path != Path::new(STDIO) => {
            write_atomically(path, text.as_bytes(), mode, Existing::Replace)
                .with_context(|| format!("cannot write '{}'", path.display()))
        }
        _ => out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .context("cannot write to standard output"),
    }
}

/// Reads the text file at `path` (`-`: standard input), at most `max_len`
/// bytes.
///
/// # Errors
///
/// When the file cannot be read, is longer than `max_len` or is not UTF-8.
/// The message names the file as `what 'PATH'` and never quotes it.
pub(crate) fn read_text(path: &Path, what: &str, max_len: usize) -> Result<String> {
    let shown = describe(path, what);
    let mut bytes = Vec::new();
    let limit = u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1);
    let read = if path == Path::new(STDIO) {
        io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        File::open(path).and_then(|file| file.take(limit).read_to_end(&mut bytes))
    };
    read.with_context(|| format!("cannot read {shown}"))?;
    if bytes.len() > max_len {
        anyhow::bail!("{shown} is larger than the {max_len} bytes any {what} takes");
    }
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{shown} is not text"))
}

/// `what 'PATH'`, or `what on standard input` for `-`.
pub(crate) fn describe(path: &Path, what: &str) -> String {
    if path == Path::new(STDIO) {
        format!("{what} on standard input")
    } else {
        format!("{what} '{}'", path.display())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_atomically_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card");
        write_atomically(&path, b"one", PRIVATE_MODE, Existing::Replace).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(mode_of(&path), 0o600);
        write_atomically(&path, b"two", PRIVATE_MODE, Existing::Replace).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(entries(dir.path()), ["card"]);
    }

    #[test]
    fn refuses_an_existing_name_of_any_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_atomically(&path, b"first", PRIVATE_MODE, Existing::Refuse).unwrap();
        let error = write_atomically(&path, b"second", PRIVATE_MODE, Existing::Refuse).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");

        let dangling = dir.path().join("dangling");
        symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let error = write_atomically(&dangling, b"x", PRIVATE_MODE, Existing::Refuse).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert!(!dir.path().join("nowhere").exists());
        assert_eq!(entries(dir.path()), ["dangling", "key"]);
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let error = write_atomically(
            &dir.path().join("missing/key"),
            b"x",
            PRIVATE_MODE,
            Existing::Refuse,
        )
        .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        // Renaming a file over a directory fails after the temporary file
        // was written; it is removed again.
        fs::create_dir(dir.path().join("sub")).unwrap();
        write_atomically(
            &dir.path().join("sub"),
            b"x",
            PRIVATE_MODE,
            Existing::Replace,
        )
        .unwrap_err();
        assert_eq!(entries(dir.path()), ["sub"]);
        assert!(entries(&dir.path().join("sub")).is_empty());
    }

    #[test]
    fn public_files_follow_the_umask_and_private_ones_do_not_need_it() {
        let dir = tempfile::tempdir().unwrap();
        let public = dir.path().join("bundle");
        write_atomically(&public, b"x", PUBLIC_MODE, Existing::Replace).unwrap();
        assert_eq!(mode_of(&public) & 0o600, 0o600);
        assert_eq!(mode_of(&public) & 0o111, 0);
        let private = dir.path().join("card");
        write_atomically(&private, b"x", PRIVATE_MODE, Existing::Replace).unwrap();
        assert_eq!(mode_of(&private), 0o600);
    }

    #[test]
    fn output_goes_to_stdout_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        write_output(None, &mut out, "text\n", PUBLIC_MODE).unwrap();
        write_output(Some(Path::new("-")), &mut out, "more\n", PUBLIC_MODE).unwrap();
        assert_eq!(out, b"text\nmore\n");
        let path = dir.path().join("out");
        write_output(Some(&path), &mut out, "file\n", PUBLIC_MODE).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "file\n");
        assert_eq!(out, b"text\nmore\n");
        let error = write_output(
            Some(&dir.path().join("no/such/dir")),
            &mut out,
            "x",
            PUBLIC_MODE,
        )
        .unwrap_err();
        assert!(format!("{error:#}").contains("no/such/dir"), "{error:#}");
    }

    #[test]
    fn reading_names_the_file_and_never_quotes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card");
        fs::write(&path, "sentrymesh-card v1\nAAAA\n").unwrap();
        assert_eq!(
            read_text(&path, "card file", 100).unwrap(),
            "sentrymesh-card v1\nAAAA\n"
        );

        let error = read_text(&path, "card file", 10).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("card file '"), "{message}");
        assert!(message.contains("larger than the 10 bytes"), "{message}");
        assert!(!message.contains("AAAA"), "{message}");

        fs::write(&path, [0xff, 0xfe, b's', b'e', b'c']).unwrap();
        let message = format!("{:#}", read_text(&path, "card file", 100).unwrap_err());
        assert!(message.ends_with("is not text"), "{message}");

        let missing = dir.path().join("missing");
        let message = format!("{:#}", read_text(&missing, "bundle", 100).unwrap_err());
        assert!(
            message.starts_with(&format!("cannot read bundle '{}'", missing.display())),
            "{message}"
        );
        assert_eq!(
            describe(Path::new("-"), "bundle"),
            "bundle on standard input"
        );
    }
}
