//! The Debian package: `cargo deb` builds it from `[package.metadata.deb]`
//! in daemon/Cargo.toml, and the test reads its control data and every
//! file, verifies its units with the packaged binary, and installs and
//! purges it in a scratch root with dpkg, maintainer scripts included.
//!
//! Cost: no build of its own. `cargo deb --no-build` packages the
//! `sentrymesh` this test was built with (the test profile's, not a
//! release build's four minutes), copied to where a release build puts
//! it in a scratch target directory, and stripped (`--strip`: its full
//! debug information, 100 MB, would only slow the compression; a release
//! package keeps the line tables `[profile.release]` asks for). Everything
//! else in the package is what a release package has. `cargo-deb` must be installed (`.ci/run` does):
//! without it, or without root (dpkg installs as root), the test fails.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sentrymesh_lab::{require_root, run_command, run_ok};

const SENTRYMESH: &str = env!("CARGO_BIN_EXE_sentrymesh");
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// The ceiling of each command; cargo-deb takes seconds on a quiet box.
const CEILING: Duration = Duration::from_secs(300);

/// What the package holds, each file with its mode and where it comes
/// from in the workspace (`None`: the binary, stripped, and the generated
/// copyright file).
type Files = BTreeMap<String, (u32, Option<String>)>;

/// The files [`Files`] describes.
fn expected_files() -> Files {
    let mut files: Files = [
        ("usr/bin/sentrymesh", 0o755, None),
        (
            "usr/lib/systemd/system/sentrymesh@.service",
            0o644,
            Some("configs/sentrymesh@.service"),
        ),
        (
            "usr/lib/systemd/system/sentrymesh-export@.service",
            0o644,
            Some("configs/sentrymesh-export@.service"),
        ),
        (
            "usr/lib/sysusers.d/sentrymesh.conf",
            0o644,
            Some("configs/sentrymesh.sysusers"),
        ),
        (
            "usr/lib/tmpfiles.d/sentrymesh.conf",
            0o644,
            Some("configs/sentrymesh.tmpfiles"),
        ),
        (
            "usr/share/sentrymesh/tendermint-p2p.awk",
            0o644,
            Some("configs/tendermint-p2p.awk"),
        ),
        (
            "usr/share/doc/sentrymesh/README.md",
            0o644,
            Some("README.md"),
        ),
        ("usr/share/doc/sentrymesh/copyright", 0o644, None),
    ]
    .into_iter()
    .map(|(path, mode, source)| (path.to_owned(), (mode, source.map(str::to_owned))))
    .collect();
    for example in ["example", "sentry", "full", "producer", "bios"] {
        files.insert(
            format!("usr/share/doc/sentrymesh/examples/{example}.toml"),
            (0o644, Some(format!("configs/{example}.toml"))),
        );
    }
    files
}

/// Builds the package into `dir` and returns its path.
fn build_package(dir: &Path) -> PathBuf {
    let target = dir.join("target");
    fs::create_dir_all(target.join("release")).unwrap();
    fs::copy(SENTRYMESH, target.join("release/sentrymesh")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let finished = run_command(
        Command::new(&cargo)
            .args([
                "deb",
                "-p",
                "sentrymesh",
                "--no-build",
                "--strip",
                "--fast",
                "-o",
            ])
            .arg(dir)
            .arg("--manifest-path")
            .arg(format!("{WORKSPACE}/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target),
        b"",
        CEILING,
    );
    assert!(
        finished.success(),
        "cargo deb failed (is cargo-deb installed? `cargo install --locked cargo-deb`, \
         as .ci/run does):\n{}\n{}",
        finished.stdout,
        finished.stderr
    );
    let deb = PathBuf::from(finished.stdout.trim().lines().last().unwrap_or_default());
    assert!(
        deb.extension().is_some_and(|e| e == "deb") && deb.starts_with(dir),
        "no package path in:\n{}\n{}",
        finished.stdout,
        finished.stderr
    );
    deb
}

/// Every file and symlink under `root`, relative to it.
fn walk(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            walk(root, &path, found);
        } else {
            found.push(path.strip_prefix(root).unwrap().to_owned());
        }
    }
}

/// The field `name` of the control data `control`.
fn field<'a>(control: &'a str, name: &str) -> &'a str {
    control
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {name} in:\n{control}"))
}

/// The packaged unit `name` verifies with the packaged binary in place
/// of the `sentrymesh` its commands name.
fn verify_unit(root: &Path, name: &str, instance: &str) {
    let unit = fs::read_to_string(root.join("usr/lib/systemd/system").join(name)).unwrap();
    let binary = root.join("usr/bin/sentrymesh");
    let unit = unit.replace("=sentrymesh ", &format!("={} ", binary.display()));
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(name), unit).unwrap();
    let finished = run_command(
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.path().join(instance)),
        b"",
        CEILING,
    );
    assert!(
        finished.success() && finished.stderr.trim().is_empty(),
        "systemd-analyze verify {instance}:\n{}\n{}",
        finished.stdout,
        finished.stderr
    );
}

#[test]
fn the_package_holds_the_daemon_its_units_and_examples_and_installs_in_a_scratch_root() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let deb = build_package(dir.path());

    let control = run_ok(Command::new("dpkg-deb").arg("-f").arg(&deb), b"");
    assert_eq!(field(&control, "Package"), "sentrymesh");
    assert_eq!(field(&control, "Section"), "net");
    let depends = field(&control, "Depends");
    assert!(depends.contains("libc6"), "{depends}");
    assert!(
        depends.contains("systemd | systemd-standalone-sysusers"),
        "postinst runs systemd-sysusers: {depends}"
    );
    let info = run_ok(Command::new("dpkg-deb").arg("-I").arg(&deb), b"");
    for script in ["postinst", "prerm", "postrm"] {
        assert!(info.contains(script), "no {script}:\n{info}");
    }
    assert!(!info.contains("conffiles"), "nothing in /etc:\n{info}");
    // Owned by root, whoever built it.
    let contents = run_ok(Command::new("dpkg-deb").arg("--contents").arg(&deb), b"");
    for line in contents.lines() {
        assert!(line.contains(" 0/0 "), "not root's: {line}");
    }

    // Every file, and nothing else, with its mode and its source's bytes.
    let extracted = dir.path().join("extracted");
    run_ok(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&extracted),
        b"",
    );
    let expected = expected_files();
    let mut found = Vec::new();
    walk(&extracted, &extracted, &mut found);
    let link = Path::new("usr/bin/sentrymesh-wg");
    let mut listed: Vec<&Path> = expected.keys().map(Path::new).collect();
    listed.push(link);
    listed.sort();
    found.sort();
    assert_eq!(found, listed);
    for (path, (mode, source)) in &expected {
        let installed = extracted.join(path);
        let meta = fs::metadata(&installed).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, *mode, "{path}");
        if let Some(source) = source {
            let want = fs::read(Path::new(WORKSPACE).join(source)).unwrap();
            assert!(
                fs::read(&installed).unwrap() == want,
                "{path} is not {source}"
            );
        }
    }
    assert_eq!(
        fs::read_link(extracted.join(link)).unwrap(),
        Path::new("sentrymesh"),
        "sentrymesh-wg links to sentrymesh beside it"
    );
    // The packaged binary runs, under either name.
    let binary = extracted.join("usr/bin/sentrymesh");
    let key = run_ok(Command::new(&binary).arg("genkey"), b"");
    run_ok(Command::new(&binary).arg("pubkey"), key.as_bytes());
    let help = run_command(
        Command::new(extracted.join(link)).arg("--help"),
        b"",
        CEILING,
    );
    assert!(
        help.stdout.contains("IFNAME") || help.stderr.contains("IFNAME"),
        "sentrymesh-wg is the wg mode:\n{}\n{}",
        help.stdout,
        help.stderr
    );
    verify_unit(&extracted, "sentrymesh@.service", "sentrymesh@sm0.service");
    verify_unit(
        &extracted,
        "sentrymesh-export@.service",
        "sentrymesh-export@sm0.service",
    );

    install_and_purge(dir.path(), &deb, &expected);
}

/// Installs `deb` with dpkg into a scratch root (its maintainer scripts
/// run outside a chroot, with `DPKG_ROOT` set), checks what postinst
/// made, then purges it.
fn install_and_purge(dir: &Path, deb: &Path, expected: &Files) {
    let root = dir.join("root");
    for sub in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let dpkg = |args: &[&str]| {
        let mut command = Command::new("dpkg");
        command
            .arg(format!("--root={}", root.display()))
            .args(["--force-script-chrootless", "--force-depends"])
            .args(args);
        run_ok(&mut command, b"")
    };
    dpkg(&["--install", &deb.to_string_lossy()]);
    let status = run_ok(
        Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args(["--status", "sentrymesh"]),
        b"",
    );
    assert!(status.contains("Status: install ok installed"), "{status}");
    for path in expected.keys() {
        assert!(root.join(path).exists(), "{path} not installed");
    }

    // postinst: the user and group, /run/wireguard, /etc/sentrymesh.
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    let user: Vec<&str> = passwd
        .lines()
        .find(|line| line.starts_with("sentrymesh:"))
        .unwrap_or_else(|| panic!("no user sentrymesh:\n{passwd}"))
        .split(':')
        .collect();
    assert_eq!(user[5], "/var/lib/sentrymesh");
    assert_eq!(user[6], "/usr/sbin/nologin");
    let gid: u32 = user[3].parse().unwrap();
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(
        group.contains(&format!("sentrymesh:x:{gid}:")),
        "no group sentrymesh {gid}:\n{group}"
    );
    let run = fs::metadata(root.join("run/wireguard")).unwrap();
    assert_eq!(
        (run.permissions().mode() & 0o7777, run.uid(), run.gid()),
        (0o1775, 0, gid),
        "/run/wireguard"
    );
    let etc = fs::metadata(root.join("etc/sentrymesh")).unwrap();
    assert_eq!(
        (etc.permissions().mode() & 0o7777, etc.uid(), etc.gid()),
        (0o750, 0, gid),
        "/etc/sentrymesh"
    );

    // Installed again (an upgrade), an operator's /etc/sentrymesh is left
    // as it is.
    fs::set_permissions(
        root.join("etc/sentrymesh"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    fs::write(root.join("etc/sentrymesh/sm0.toml"), "# the operator's\n").unwrap();
    dpkg(&["--install", &deb.to_string_lossy()]);
    let etc = fs::metadata(root.join("etc/sentrymesh")).unwrap();
    assert_eq!(etc.permissions().mode() & 0o7777, 0o700);

    // A purge removes every packaged file and the state, keeps the
    // operator's config (and so its directory) and the user.
    fs::create_dir_all(root.join("var/lib/sentrymesh/sm0")).unwrap();
    dpkg(&["--purge", "sentrymesh"]);
    for path in expected.keys() {
        assert!(!root.join(path).exists(), "{path} left after the purge");
    }
    assert!(!root.join("usr/bin/sentrymesh-wg").exists());
    assert!(!root.join("var/lib/sentrymesh").exists());
    assert!(root.join("etc/sentrymesh/sm0.toml").exists());
    assert!(
        fs::read_to_string(root.join("etc/passwd"))
            .unwrap()
            .contains("sentrymesh:")
    );
    // Empty, /etc/sentrymesh goes with a purge.
    dpkg(&["--install", &deb.to_string_lossy()]);
    fs::remove_file(root.join("etc/sentrymesh/sm0.toml")).unwrap();
    dpkg(&["--purge", "sentrymesh"]);
    assert!(!root.join("etc/sentrymesh").exists());
}
