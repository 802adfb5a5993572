//! Key files: one base64 key on one line, as `wg genkey > sm0.key` and
//! `wg genpsk > peer.psk` write them.
//!
//! A key file is refused, as ssh refuses a private key, when anyone but its
//! owner may read or write it (`mode & 0o077 != 0`). A symbolic link is
//! followed; the mode of the file it points to is what counts. The owner is
//! not checked: the daemon may run as root and read a key owned by an
//! operator's account.
//!
//! No error and no `Debug` output ever repeats what the file holds: a file
//! named by mistake may hold some other secret. The content is read into a
//! buffer that is zeroed when dropped.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sentrymesh_tunnel::PresharedKey;
use sentrymesh_types::PrivateKey;
use zeroize::Zeroizing;

/// The most bytes a key file may hold: a 44-character key, a line ending
/// and generous room for stray whitespace.
const MAX_LEN: usize = 256;

/// A key file that cannot be used; each names the file and none shows its
/// content.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Nothing exists at the path (or a symbolic link there is dangling).
    #[error("key file '{}' does not exist", .path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// The path names a directory, a device or something else that is not a
    /// regular file.
    #[error("key file '{}' is {kind}, not a regular file", .path.display())]
    NotAFile {
        /// The path as given.
        path: PathBuf,
        /// What the path names, e.g. "a directory".
        kind: &'static str,
    },
    /// Group or others may read or write the file.
    #[error(
        "permissions {:04o} for key file '{}' are too open; chmod 600 it",
        .mode & 0o7777,
        .path.display()
    )]
    TooOpen {
        /// The path as given.
        path: PathBuf,
        /// The file's mode bits.
        mode: u32,
    },
    /// The file is empty or holds only whitespace.
    #[error("key file '{}' is empty", .path.display())]
    Empty {
        /// The path as given.
        path: PathBuf,
    },
    /// The file holds more than one whitespace-separated word, e.g. two keys.
    #[error(
        "key file '{}' holds {words} words; a key file holds exactly one key",
        .path.display()
    )]
    MoreThanOneKey {
        /// The path as given.
        path: PathBuf,
        /// How many words the file holds.
        words: usize,
    },
    /// The file holds one word that is not a base64-encoded 32-byte key, or
    /// is too large or not text.
    #[error(
        "key file '{}' does not hold a WireGuard key (44 characters of base64 on one line)",
        .path.display()
    )]
    Malformed {
        /// The path as given.
        path: PathBuf,
    },
    /// Any other failure to read the file, e.g. permission denied.
    #[error("cannot read key file '{}': {source}", .path.display())]
    Io {
        /// The path as given.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

/// Reads the interface's private key from the file at `path`.
///
/// # Errors
///
/// When the file is missing, not a regular file, readable or writable by
/// group or others, empty, holds more than one key or something that is not
/// a key, or cannot be read; see [`KeyFileError`].
pub fn read_private_key(path: &Path) -> Result<PrivateKey, KeyFileError> {
    read_key(path)
}

/// Reads a peer's preshared key from the file at `path`.
///
/// # Errors
///
/// As [`read_private_key`].
pub fn read_preshared_key(path: &Path) -> Result<PresharedKey, KeyFileError> {
    read_key(path)
}

/// Reads and parses one key; the text form is the same for both key kinds.
fn read_key<K: FromStr>(path: &Path) -> Result<K, KeyFileError> {
    let content = read_secret_file(path)?;
    let text = std::str::from_utf8(content.as_bytes()).map_err(|_| malformed(path))?;
    let mut words = text.split_whitespace();
    let Some(word) = words.next() else {
        return Err(KeyFileError::Empty { path: path.into() });
    };
    let extra = words.count();
    if extra > 0 {
        return Err(KeyFileError::MoreThanOneKey {
            path: path.into(),
            words: extra + 1,
        });
    }
    word.parse().map_err(|_| malformed(path))
}

/// The bytes of a key file, in a buffer zeroed when dropped.
pub(crate) struct Secret {
    buffer: Zeroizing<[u8; MAX_LEN]>,
    len: usize,
}

impl Secret {
    /// The bytes read.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Checks the file's type and mode (a regular file only its owner may
/// access), then reads at most [`MAX_LEN`] bytes; more is
/// [`KeyFileError::Malformed`]. For every file that holds a secret.
///
/// The type is checked before opening (opening a FIFO would block) and the
/// mode again on the opened file, so a file swapped in between is caught.
pub(crate) fn read_secret_file(path: &Path) -> Result<Secret, KeyFileError> {
    let io_error = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound => KeyFileError::NotFound { path: path.into() },
        _ => KeyFileError::Io {
            path: path.into(),
            source,
        },
    };
    check_metadata(path, &fs::metadata(path).map_err(io_error)?)?;
    let mut file = File::open(path).map_err(io_error)?;
    check_metadata(path, &file.metadata().map_err(io_error)?)?;

    // A fixed buffer, not `read_to_end`: growing a `Vec` or probing into a
    // stack buffer would leave copies of the key that are never zeroed.
    let mut buffer = Zeroizing::new([0u8; MAX_LEN]);
    let mut len = 0;
    loop {
        if len == MAX_LEN {
            return Err(malformed(path));
        }
        match file.read(&mut buffer[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(io_error(error)),
        }
    }
    Ok(Secret { buffer, len })
}

/// Refuses anything but a regular file that only its owner may access.
fn check_metadata(path: &Path, metadata: &fs::Metadata) -> Result<(), KeyFileError> {
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        let kind = if file_type.is_dir() {
            "a directory"
        } else {
            "a special file"
        };
        return Err(KeyFileError::NotAFile {
            path: path.into(),
            kind,
        });
    }
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.into(),
            mode,
        });
    }
    Ok(())
}

fn malformed(path: &Path) -> KeyFileError {
    KeyFileError::Malformed { path: path.into() }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    // The example key of wg(8) and its public key.
    const PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const PUBLIC: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

    /// Writes `content` to `name` in `dir` with `mode`.
    fn write(dir: &Path, name: &str, content: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// Asserts that neither `Display` nor `Debug` of `error` shows `secret`.
    fn assert_hides(error: &KeyFileError, secret: &str) {
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(secret), "{shown}");
    }

    #[test]
    fn reads_a_key_as_wg_genkey_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("newline", format!("{PRIVATE}\n")),
            ("bare", PRIVATE.to_owned()),
            ("crlf", format!("{PRIVATE}\r\n")),
        ] {
            let path = write(dir.path(), name, &content, 0o600);
            let key = read_private_key(&path).unwrap();
            assert_eq!(key.public_key().to_string(), PUBLIC, "{name}");
        }
        let path = write(dir.path(), "ro", &format!("{PRIVATE}\n"), 0o400);
        let psk = read_preshared_key(&path).unwrap();
        assert_eq!(*psk.to_base64(), PRIVATE);
    }

    #[test]
    fn refuses_a_file_others_may_read_like_ssh() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o660] {
            let path = write(dir.path(), "key", &format!("{PRIVATE}\n"), mode);
            let error = read_private_key(&path).unwrap_err();
            assert!(
                matches!(error, KeyFileError::TooOpen { mode: m, .. } if m & 0o777 == mode),
                "{error:?}"
            );
            assert_hides(&error, PRIVATE);
        }
        let path = write(dir.path(), "key", &format!("{PRIVATE}\n"), 0o644);
        assert_eq!(
            read_private_key(&path).unwrap_err().to_string(),
            format!(
                "permissions 0644 for key file '{}' are too open; chmod 600 it",
                path.display()
            )
        );
    }

    #[test]
    fn follows_a_symlink_and_judges_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let private = write(dir.path(), "private", &format!("{PRIVATE}\n"), 0o600);
        let link = dir.path().join("link");
        symlink(&private, &link).unwrap();
        assert_eq!(
            read_private_key(&link).unwrap().public_key().to_string(),
            PUBLIC
        );

        fs::set_permissions(&private, fs::Permissions::from_mode(0o644)).unwrap();
        let error = read_private_key(&link).unwrap_err();
        assert!(matches!(error, KeyFileError::TooOpen { .. }), "{error:?}");
        assert!(error.to_string().contains("link"), "names the path given");

        let dangling = dir.path().join("dangling");
        symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let error = read_private_key(&dangling).unwrap_err();
        assert!(matches!(error, KeyFileError::NotFound { .. }), "{error:?}");
    }

    #[test]
    fn each_unusable_file_has_its_own_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error = read_private_key(&missing).unwrap_err();
        assert!(matches!(error, KeyFileError::NotFound { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("key file '{}' does not exist", missing.display())
        );

        let error = read_private_key(dir.path()).unwrap_err();
        assert!(
            matches!(
                error,
                KeyFileError::NotAFile {
                    kind: "a directory",
                    ..
                }
            ),
            "{error:?}"
        );

        let error = read_private_key(Path::new("/dev/null")).unwrap_err();
        assert!(matches!(error, KeyFileError::NotAFile { .. }), "{error:?}");

        for content in ["", "\n", "  \n\n"] {
            let path = write(dir.path(), "empty", content, 0o600);
            let error = read_private_key(&path).unwrap_err();
            assert!(matches!(error, KeyFileError::Empty { .. }), "{error:?}");
        }

        let two = format!("{PRIVATE}\n{PRIVATE}\n");
        let path = write(dir.path(), "two", &two, 0o600);
        let error = read_private_key(&path).unwrap_err();
        assert!(
            matches!(error, KeyFileError::MoreThanOneKey { words: 2, .. }),
            "{error:?}"
        );
        assert_hides(&error, PRIVATE);

        let huge = "A".repeat(MAX_LEN * 4);
        for garbage in [
            "PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=",
            "correct-horse-battery-staple",
            &PRIVATE[..43],
            &huge,
        ] {
            let path = write(dir.path(), "garbage", garbage, 0o600);
            let error = read_private_key(&path).unwrap_err();
            assert!(
                matches!(
                    error,
                    KeyFileError::Malformed { .. } | KeyFileError::MoreThanOneKey { .. }
                ),
                "{error:?}"
            );
            assert_hides(&error, garbage);
            assert_hides(&error, &PRIVATE[..20]);
        }
        let path = dir.path().join("binary");
        fs::write(&path, [0xff, 0xfe, 0x00, 0x41]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let error = read_private_key(&path).unwrap_err();
        assert!(matches!(error, KeyFileError::Malformed { .. }), "{error:?}");
    }

    #[test]
    fn a_malformed_key_is_not_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "hunter2-is-my-password-do-not-print-it-here";
        let path = write(dir.path(), "key", secret, 0o600);
        let error = read_preshared_key(&path).unwrap_err();
        assert!(matches!(error, KeyFileError::Malformed { .. }), "{error:?}");
        assert_hides(&error, secret);
        assert_hides(&error, "hunter2");
    }
}
