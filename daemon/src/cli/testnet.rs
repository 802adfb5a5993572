//! `sentrymesh testnet ARGS`: runs `sentrymesh-testnet ARGS`, the program
//! beside this one that builds a whole mesh in network namespaces on this
//! machine (the `sentrymesh-testnet` package).
//!
//! The testnet is a program of its own so that the daemon operators
//! install does not carry it; this command only finds it where `cargo
//! build` puts both programs and replaces this process with it, so Ctrl-C,
//! its output and its exit status are the testnet's own. The hosts then run
//! the `sentrymesh` beside it: this program.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::dataplane::Offloads;

/// The testnet's program, looked for beside this one.
pub const TESTNET_PROGRAM: &str = "sentrymesh-testnet";

/// Replaces this process with `sentrymesh-testnet --offloads OFFLOADS
/// ARGS` from this program's directory (`--offloads`, global to
/// `sentrymesh`, is this program's wherever it stands, and the testnet's
/// daemons take it); returns only when that fails.
///
/// # Errors
///
/// When there is no `sentrymesh-testnet` beside this program (saying how
/// to build it), or it cannot be started.
pub fn exec(offloads: Offloads, args: Vec<OsString>) -> Result<()> {
    let program = beside(&std::env::current_exe().context("finding this program")?)?;
    let offloads = match offloads {
        Offloads::Auto => "auto",
        Offloads::Off => "off",
    };
    let error = Command::new(&program)
        .args(["--offloads", offloads])
        .args(args)
        .exec();
    Err(error).with_context(|| format!("starting {}", program.display()))
}

/// The testnet's program when this program is `this`.
///
/// # Errors
///
/// When it is not there, saying how to build it.
fn beside(this: &Path) -> Result<PathBuf> {
    let program = this.with_file_name(TESTNET_PROGRAM);
    if !program.is_file() {
        bail!(
            "`sentrymesh testnet` runs {}, which is not there: build it beside this program \
             (`cargo build --release -p sentrymesh -p sentrymesh-testnet`)",
            program.display()
        );
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_testnet_is_the_program_beside_this_one_or_how_to_build_it() {
        let dir = tempfile::tempdir().expect("a directory");
        let this = dir.path().join("sentrymesh");
        let message = format!("{:#}", beside(&this).expect_err("no testnet yet"));
        assert!(
            message.contains(&format!("{}/sentrymesh-testnet", dir.path().display()))
                && message.contains("cargo build --release -p sentrymesh -p sentrymesh-testnet"),
            "{message}"
        );
        std::fs::write(dir.path().join(TESTNET_PROGRAM), "").expect("written");
        assert_eq!(
            beside(&this).expect("found"),
            dir.path().join(TESTNET_PROGRAM)
        );
    }
}
