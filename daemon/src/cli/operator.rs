//! `sentrymesh operator new | show`: an operator's identity key.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use rand_core::OsRng;
use sentrymesh_mesh::OperatorSecret;

use super::operator_key;

/// `sentrymesh operator ...`.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Make a new operator key: write the secret key file (mode 0600; an
    /// existing file is never replaced) and print the operator id to share.
    New {
        /// Where to write the secret key.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the operator id of a secret key file.
    Show {
        /// The operator's secret key file.
        #[arg(value_name = "FILE")]
        key: PathBuf,
    },
}

/// Runs an `operator` command, printing the operator id to `out`.
///
/// # Errors
///
/// When the key file cannot be created or read (see
/// [`operator_key::OperatorKeyError`]), or `out` cannot be written.
pub fn run(command: OperatorCommand, out: &mut impl Write) -> Result<()> {
    let secret = match command {
        OperatorCommand::New { out: path } => {
            let secret = OperatorSecret::generate(&mut OsRng);
            operator_key::create(&path, &secret)?;
            secret
        }
        OperatorCommand::Show { key } => operator_key::read(&key)?,
    };
    writeln!(out, "{}", secret.operator_id()).context("cannot write to standard output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_then_show_print_the_same_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("op.key");
        let mut printed = Vec::new();
        run(OperatorCommand::New { out: path.clone() }, &mut printed).unwrap();
        let mut shown = Vec::new();
        run(OperatorCommand::Show { key: path.clone() }, &mut shown).unwrap();
        assert_eq!(printed, shown);
        let id = String::from_utf8(printed).unwrap();
        assert_eq!(
            id.trim().parse::<sentrymesh_mesh::OperatorId>().unwrap(),
            operator_key::read(&path).unwrap().operator_id()
        );

        let error = run(OperatorCommand::New { out: path }, &mut Vec::new()).unwrap_err();
        assert!(
            format!("{error:#}").contains("never overwritten"),
            "{error:#}"
        );
    }
}
