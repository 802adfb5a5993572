//! The operator key file: the operator's secret Ed25519 key, one line of
//! base64 as [`OperatorSecret::to_text`] writes it.
//!
//! It is created new with mode 0600 and never replaces a file (see
//! [`files::write_atomically`]): losing an operator key means re-issuing
//! every card and asking every other operator for new vouches. It is
//! refused on reading, as ssh refuses a private key and as the daemon's
//! WireGuard key files are refused, when group or others may read or write
//! it. A symbolic link is followed; the mode of its target counts.
//!
//! Each error says everything in its one message (none has a `source`, so
//! `{:#}` prints it once). No error and no `Debug` output repeats what the
//! file holds — a file named
//! by mistake may hold some other secret — and the content is read into a
//! buffer zeroed when dropped.

use std::io;
use std::path::{Path, PathBuf};

use sentrymesh_mesh::{KeyFileError, OperatorSecret};

use super::files::{self, Existing, PRIVATE_MODE};
use crate::config::keyfile::{self, KeyFileError as SecretFileError};

/// An operator key file that cannot be read or written; each names the
/// file and none shows its content.
#[derive(Debug, thiserror::Error)]
pub enum OperatorKeyError {
    /// Nothing exists at the path (or a symbolic link there is dangling).
    #[error(
        "operator key file '{}' does not exist (make one with `sentrymesh operator new --out FILE`)",
        .path.display()
    )]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// A directory, a device or anything else that is not a regular file.
    #[error("operator key file '{}' is {kind}, not a regular file", .path.display())]
    NotAFile {
        /// The path as given.
        path: PathBuf,
        /// What the path names, e.g. "a directory".
        kind: &'static str,
    },
    /// Group or others may read or write the file.
    #[error(
        "permissions {:04o} for operator key file '{}' are too open; chmod 600 it",
        .mode & 0o7777,
        .path.display()
    )]
    TooOpen {
        /// The path as given.
        path: PathBuf,
        /// The file's mode bits.
        mode: u32,
    },
    /// The file holds something other than an operator key.
    #[error("cannot use '{}' as an operator key: {reason}", .path.display())]
    NotAKey {
        /// The path as given.
        path: PathBuf,
        /// What it holds instead, in words.
        reason: KeyFileError,
    },
    /// `operator new` found the name taken.
    #[error(
        "'{}' exists already; an operator key is never overwritten (move the file away or \
         choose another name)",
        .path.display()
    )]
    Exists {
        /// The path as given.
        path: PathBuf,
    },
    /// Any other failure to read the file, e.g. permission denied.
    #[error("cannot read operator key file '{}': {error}", .path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The operating system's error.
        error: io::Error,
    },
    /// Any other failure to create the file.
    #[error("cannot write operator key file '{}': {error}", .path.display())]
    Write {
        /// The path as given.
        path: PathBuf,
        /// The operating system's error.
        error: io::Error,
    },
}

/// Writes `secret` to a new key file at `path`, mode 0600, atomically.
///
/// # Errors
///
/// [`OperatorKeyError::Exists`] when anything has that name already (it is
/// left alone), [`OperatorKeyError::Write`] when the file cannot be
/// created, written or synced.
pub fn create(path: &Path, secret: &OperatorSecret) -> Result<(), OperatorKeyError> {
    let text = secret.to_text();
    files::write_atomically(path, text.as_bytes(), PRIVATE_MODE, Existing::Refuse).map_err(
        |error| match error.kind() {
            io::ErrorKind::AlreadyExists => OperatorKeyError::Exists { path: path.into() },
            _ => OperatorKeyError::Write {
                path: path.into(),
                error,
            },
        },
    )
}

/// Reads the operator key from the file at `path`.
///
/// # Errors
///
/// [`OperatorKeyError`] when the file is missing, not a regular file,
/// readable or writable by group or others, unreadable, or holds anything
/// but an operator key (a WireGuard key, a card, garbage).
pub fn read(path: &Path) -> Result<OperatorSecret, OperatorKeyError> {
    let not_a_key = |reason| OperatorKeyError::NotAKey {
        path: path.into(),
        reason,
    };
    let secret = keyfile::read_secret_file(path).map_err(|error| match error {
        SecretFileError::NotFound { .. } => OperatorKeyError::NotFound { path: path.into() },
        SecretFileError::NotAFile { kind, .. } => OperatorKeyError::NotAFile {
            path: path.into(),
            kind,
        },
        SecretFileError::TooOpen { mode, .. } => OperatorKeyError::TooOpen {
            path: path.into(),
            mode,
        },
        SecretFileError::Io { source, .. } => OperatorKeyError::Read {
            path: path.into(),
            error: source,
        },
        // Longer than any key file: not a key.
        _ => not_a_key(KeyFileError::NotBase64),
    })?;
    let text =
        std::str::from_utf8(secret.as_bytes()).map_err(|_| not_a_key(KeyFileError::NotBase64))?;
    OperatorSecret::from_text(text).map_err(not_a_key)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    /// Writes `content` to `name` in `dir` with `mode`.
    fn write(dir: &Path, name: &str, content: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn secret() -> OperatorSecret {
        OperatorSecret::generate(&mut ChaCha20Rng::seed_from_u64(5))
    }

    /// Asserts that neither `Display` nor `Debug` of `error` shows `secret`.
    fn assert_hides(error: &OperatorKeyError, secret: &str) {
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(secret), "{shown}");
    }

    #[test]
    fn creates_a_0600_file_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.key");
        let secret = secret();
        create(&path, &secret).unwrap();
        let metadata = fs::metadata(&path).unwrap();
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_to_string(&path).unwrap(), *secret.to_text());
        assert_eq!(read(&path).unwrap().operator_id(), secret.operator_id());
    }

    #[test]
    fn never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "operator.key", "precious\n", 0o600);
        let error = create(&path, &secret()).unwrap_err();
        assert!(
            matches!(error, OperatorKeyError::Exists { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("never overwritten"), "{error}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious\n");
    }

    #[test]
    fn refuses_a_file_others_may_read() {
        let dir = tempfile::tempdir().unwrap();
        let text = secret().to_text();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            let path = write(dir.path(), "key", &text, mode);
            let error = read(&path).unwrap_err();
            assert!(
                matches!(error, OperatorKeyError::TooOpen { mode: m, .. } if m & 0o777 == mode),
                "{error:?}"
            );
            assert_hides(&error, text.trim());
        }
        let path = write(dir.path(), "key", &text, 0o644);
        assert_eq!(
            read(&path).unwrap_err().to_string(),
            format!(
                "permissions 0644 for operator key file '{}' are too open; chmod 600 it",
                path.display()
            )
        );
        let path = write(dir.path(), "read-only", &text, 0o400);
        read(&path).unwrap();
    }

    #[test]
    fn follows_a_symlink_and_judges_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = write(dir.path(), "target", &secret().to_text(), 0o600);
        let link = dir.path().join("link");
        symlink(&target, &link).unwrap();
        assert_eq!(read(&link).unwrap().operator_id(), secret().operator_id());
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
        let error = read(&link).unwrap_err();
        assert!(
            matches!(error, OperatorKeyError::TooOpen { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("link"), "names the path given");
    }

    #[test]
    fn each_wrong_file_is_named_and_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error = read(&missing).unwrap_err();
        assert!(
            matches!(error, OperatorKeyError::NotFound { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(&*missing.to_string_lossy()));

        let error = read(dir.path()).unwrap_err();
        assert!(
            matches!(
                error,
                OperatorKeyError::NotAFile {
                    kind: "a directory",
                    ..
                }
            ),
            "{error:?}"
        );
        let error = read(Path::new("/dev/null")).unwrap_err();
        assert!(
            matches!(error, OperatorKeyError::NotAFile { .. }),
            "{error:?}"
        );

        // The example private key of wg(8).
        let wireguard = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
        let huge = "A".repeat(4096);
        for (content, expected) in [
            ("", KeyFileError::Empty),
            (wireguard, KeyFileError::WireGuardKey),
            ("hunter2-is-my-password", KeyFileError::NotBase64),
            ("sentrymesh-card v1\nAAAA", KeyFileError::NotAKeyFile),
            (&huge, KeyFileError::NotBase64),
        ] {
            let path = write(dir.path(), "wrong", content, 0o600);
            let error = read(&path).unwrap_err();
            match &error {
                OperatorKeyError::NotAKey { reason, .. } => assert_eq!(reason, &expected),
                other => panic!("{other:?}"),
            }
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("cannot use '{}'", path.display())),
                "{message}"
            );
            if !content.is_empty() {
                assert_hides(&error, &content[..content.len().min(20)]);
            }
        }
        let path = dir.path().join("binary");
        fs::write(&path, [0xff, 0xfe, 0x00, 0x41]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let error = read(&path).unwrap_err();
        assert!(
            matches!(error, OperatorKeyError::NotAKey { .. }),
            "{error:?}"
        );
    }
}
