//! `sentrymesh check -c FILE`: whether `sentrymesh up -c FILE` would take
//! the config, as `nginx -t` or `nebula -test` answer for theirs: the file
//! and everything it names (key files; for a mesh member its card, known
//! directory, state and trust) are read and checked by the daemon's own
//! loading path ([`config::load`], [`MeshInputs::read`],
//! [`MeshMember::check`]), so the two cannot drift apart.
//!
//! It does not touch the system: no TUN device, no socket bound, nothing
//! written (the state directory is read, not created or locked). What only
//! the start can tell — whether the interface name is free and the ports
//! can be bound — is left to `up`, which tries those before it changes
//! anything too.

use std::io::Write;
use std::path::Path;

use anyhow::{Result, anyhow};

use crate::config;
use crate::modes::mesh_member::{MeshInputs, MeshMember};

/// Checks the config at `path` and what it names, and writes one line
/// saying it is valid to `out`.
///
/// # Errors
///
/// The first problem found: the config's diagnostics
/// (`FILE:LINE:COLUMN: KEY: MESSAGE`, every bad value of the file at once),
/// or else the first file it names that is missing or refused, by name.
pub fn run(path: &Path, out: &mut impl Write) -> Result<()> {
    let config = config::load(path).map_err(|error| anyhow!("{error}"))?;
    let name = config.interface.name.as_str().to_owned();
    let what = match &config.mesh {
        Some(settings) => {
            let card = settings.card_file.clone();
            MeshMember::check(MeshInputs::read(&config)?)?;
            format!("a mesh member with card {}", card.display())
        }
        None => format!("{} peers", config.peers.len()),
    };
    writeln!(
        out,
        "{}: ok: interface {name}, {what}; nothing was changed",
        path.display()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const PEER: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

    /// Writes `text` as `sm0.toml` in a new directory holding the key file
    /// `sm0.key`, and checks it: the output or the error.
    fn check(text: &str) -> (tempfile::TempDir, Result<String, String>) {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("sm0.key");
        fs::write(&key, format!("{PRIVATE}\n")).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        let path = dir.path().join("sm0.toml");
        fs::write(&path, text).unwrap();
        let mut out = Vec::new();
        let result = run(&path, &mut out)
            .map(|()| String::from_utf8(out).unwrap())
            .map_err(|error| format!("{error:#}"));
        (dir, result)
    }

    fn config(private_key_file: &str, mtu: &str) -> String {
        format!(
            "[interface]\nname = \"sm0\"\nprivate_key_file = \"{private_key_file}\"\n\
             addresses = [\"198.18.0.1/24\"]\nmtu = {mtu}\n\n\
             [[peer]]\npublic_key = \"{PEER}\"\nallowed_ips = [\"198.18.0.2/32\"]\n"
        )
    }

    #[test]
    fn a_valid_config_is_ok() {
        let (dir, result) = check(&config("sm0.key", "1420"));
        let out = result.unwrap();
        let path = dir.path().join("sm0.toml");
        assert_eq!(
            out,
            format!(
                "{}: ok: interface sm0, 1 peers; nothing was changed\n",
                path.display()
            )
        );
    }

    #[test]
    fn errors_point_at_file_line_and_column() {
        // A syntax error: the unclosed string's line and column.
        let (dir, result) = check(&config("sm0.key", "1420").replace("\"sm0\"", "\"sm0"));
        let file = dir.path().join("sm0.toml").display().to_string();
        let error = result.unwrap_err();
        assert!(error.starts_with(&format!("{file}:2:")), "{error}");

        // A bad value: its own line and column, with its key.
        let (dir, result) = check(&config("sm0.key", "70000"));
        let file = dir.path().join("sm0.toml").display().to_string();
        let error = result.unwrap_err();
        assert!(
            error.starts_with(&format!("{file}:5:7: interface.mtu: ")),
            "{error}"
        );

        // A key file that is missing: the key naming it, and the file.
        let (dir, result) = check(&config("missing.key", "1420"));
        let file = dir.path().join("sm0.toml").display().to_string();
        let error = result.unwrap_err();
        assert!(
            error.starts_with(&format!("{file}:3:20: interface.private_key_file: "))
                && error.contains("missing.key"),
            "{error}"
        );
    }
}
