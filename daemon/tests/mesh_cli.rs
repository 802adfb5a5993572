//! The operator commands end to end: the built `sentrymesh` binary run in a
//! temporary directory, as operators run it.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");
/// The example private key of wg(8).
const WG_PRIVATE: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

/// A temporary directory to run `sentrymesh` in, remembering everything it
/// printed so a test can check that no secret ever showed.
struct Workdir {
    dir: tempfile::TempDir,
    printed: RefCell<String>,
}

impl Workdir {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            printed: RefCell::new(String::new()),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap()
    }

    /// Runs `sentrymesh ARGS` here, with `now` as the time if given.
    fn run_at(&self, now: Option<u64>, args: &[&str]) -> Output {
        let mut command = Command::new(SENTRYMESH);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("SENTRYMESH_NOW")
            .env_remove("RUST_LOG")
            .env_remove("LOG_LEVEL");
        if let Some(now) = now {
            command.env("SENTRYMESH_NOW", now.to_string());
        }
        let output = command.output().unwrap();
        let mut printed = self.printed.borrow_mut();
        printed.push_str(&String::from_utf8_lossy(&output.stdout));
        printed.push_str(&String::from_utf8_lossy(&output.stderr));
        output
    }

    /// Runs `sentrymesh ARGS`, asserts it succeeds quietly, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run_at(None, args);
        let (stdout, stderr) = texts(&output);
        assert!(
            output.status.success() && stderr.is_empty(),
            "sentrymesh {args:?}: {}\n{stderr}",
            output.status
        );
        stdout
    }

    /// Runs `sentrymesh ARGS` at `now`, asserts it fails, returns stderr.
    fn fails_at(&self, now: Option<u64>, args: &[&str]) -> String {
        let output = self.run_at(now, args);
        let (stdout, stderr) = texts(&output);
        assert!(
            !output.status.success(),
            "sentrymesh {args:?} succeeded:\n{stdout}"
        );
        assert!(stdout.is_empty(), "sentrymesh {args:?} printed:\n{stdout}");
        stderr
    }

    /// Runs a command the daemon itself refuses (not clap): exit status 1
    /// and one line, `sentrymesh: REASON`; returns the reason.
    fn refused_at(&self, now: Option<u64>, args: &[&str]) -> String {
        let stderr = self.fails_at(now, args);
        let reason = stderr
            .lines()
            .filter(|line| !line.contains("SENTRYMESH_NOW is set"))
            .collect::<Vec<_>>();
        assert_eq!(reason.len(), 1, "not one line: {stderr}");
        reason[0]
            .strip_prefix("sentrymesh: ")
            .unwrap_or_else(|| panic!("{stderr}"))
            .to_owned()
    }

    fn refused(&self, args: &[&str]) -> String {
        self.refused_at(None, args)
    }

    /// Makes operator `name`'s key in `NAME.key`; returns its id.
    fn operator(&self, name: &str) -> String {
        let key = format!("{name}.key");
        let id = self.ok(&["operator", "new", "--out", &key]);
        assert_eq!(id.len(), 45, "{id:?}");
        id.trim().to_owned()
    }

    /// Asserts that nothing printed so far shows a line of any key file.
    fn assert_no_secret_printed(&self, key_files: &[&str]) {
        let printed = self.printed.borrow();
        for name in key_files {
            let secret = self.read(name);
            assert!(!printed.contains(secret.trim()), "{name} was printed");
        }
    }
}

fn texts(output: &Output) -> (String, String) {
    (
        String::from_utf8(output.stdout.clone()).unwrap(),
        String::from_utf8(output.stderr.clone()).unwrap(),
    )
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn operator_key_files_are_private_and_never_replaced() {
    let dir = Workdir::new();
    let id = dir.operator("alice");
    let secret = dir.read("alice.key");
    assert_eq!(mode(&dir.path("alice.key")), 0o600);

    let reason = dir.refused(&["operator", "new", "--out", "alice.key"]);
    assert_eq!(
        reason,
        "'alice.key' exists already; an operator key is never overwritten (move the file away \
         or choose another name)"
    );
    assert_eq!(dir.read("alice.key"), secret);
    let entries = fs::read_dir(dir.dir.path()).unwrap().count();
    assert_eq!(entries, 1, "no temporary file is left behind");

    let reason = dir.refused(&["operator", "new", "--out", "no/such/dir/op.key"]);
    assert!(
        reason.starts_with("cannot write operator key file 'no/such/dir/op.key': "),
        "{reason}"
    );

    fs::set_permissions(dir.path("alice.key"), fs::Permissions::from_mode(0o644)).unwrap();
    let reason = dir.refused(&["operator", "show", "alice.key"]);
    assert_eq!(
        reason,
        "permissions 0644 for operator key file 'alice.key' are too open; chmod 600 it"
    );
    fs::set_permissions(dir.path("alice.key"), fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(dir.ok(&["operator", "show", "alice.key"]).trim(), id);

    let reason = dir.refused(&["operator", "show", "missing.key"]);
    assert!(
        reason.starts_with("operator key file 'missing.key' does not exist"),
        "{reason}"
    );
    for (name, content, expected) in [
        (
            "wg.key",
            format!("{WG_PRIVATE}\n"),
            "this looks like a WireGuard private key",
        ),
        (
            "garbage.key",
            "hunter2-my-password\n".to_owned(),
            "not an operator key",
        ),
    ] {
        let path = dir.path(name);
        fs::write(&path, &content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let output = dir.run_at(None, &["operator", "show", name]);
        let (stdout, stderr) = texts(&output);
        assert!(!output.status.success(), "{stdout}");
        assert!(
            stderr.starts_with(&format!(
                "sentrymesh: cannot use '{name}' as an operator key: "
            )),
            "{stderr}"
        );
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains(content.trim()), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    dir.assert_no_secret_printed(&["alice.key"]);
}
