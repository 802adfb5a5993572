//! `sentrymesh card seal | open`: an operator's cards sealed into one
//! bundle for chosen operators, and a bundle opened by one of them.
//!
//! Both directions are checked by `sentrymesh-mesh`: sealing re-verifies
//! every card and refuses another operator's card, a hidden role's card
//! addressed beyond its own operator, and a card not valid now; opening
//! checks the sender's signature before decrypting, then every card. These
//! commands add the files and one-line reasons.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use rand_core::OsRng;
use sentrymesh_mesh::{OpenedBundle, OperatorId, SealedBundle, armour::MAX_ARMOUR_LEN};

use super::files::{self, Existing, PRIVATE_MODE, PUBLIC_MODE};
use super::show::BundleView;
use super::{card, clock, operator_key, refused};

/// `sentrymesh card seal`.
#[derive(Debug, Args)]
pub struct SealArgs {
    /// The sender's secret key file; every card must be this operator's.
    #[arg(long, value_name = "FILE")]
    operator: PathBuf,
    /// An operator who may open the bundle, by operator id (repeat for
    /// each; name yourself to be able to open it too).
    #[arg(long = "to", value_name = "OPERATOR_ID", required = true)]
    to: Vec<OperatorId>,
    /// Write the bundle to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The card files to seal, as `card issue` writes them.
    #[arg(value_name = "CARD", required = true)]
    cards: Vec<PathBuf>,
}

/// `sentrymesh card open`.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The recipient's secret key file.
    #[arg(long, value_name = "FILE")]
    operator: PathBuf,
    /// Also write each card to this directory as `NAME.card` (mode 0600),
    /// replacing a file of that name; the directory is made if missing.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// The bundle file (`-`: standard input).
    #[arg(value_name = "BUNDLE")]
    bundle: PathBuf,
}

/// Seals the card files of `args` and writes the bundle.
///
/// # Errors
///
/// When the key or a card file is unusable, or the crate refuses to seal
/// (see [`sentrymesh_mesh::SealError`]).
pub(crate) fn seal(args: &SealArgs, out: &mut impl Write) -> Result<()> {
    let secret = operator_key::read(&args.operator)?;
    let cards = args
        .cards
        .iter()
        .map(|path| card::read_card(path))
        .collect::<Result<Vec<_>>>()?;
    let now = clock::now()?;
    let sealed = sentrymesh_mesh::bundle::seal(&secret, &args.to, &cards, now, &mut OsRng)
        .map_err(|error| refused("cannot seal the bundle", error))?;
    files::write_output(args.out.as_deref(), out, &sealed.to_text(), PUBLIC_MODE)
}

/// Opens the bundle file of `args`, prints what it holds and writes the
/// cards to `--out-dir`.
///
/// # Errors
///
/// When the key or bundle file is unusable, the bundle is refused (see
/// [`sentrymesh_mesh::OpenError`]), or a card cannot be written.
pub(crate) fn open(args: &OpenArgs, out: &mut impl Write) -> Result<()> {
    let secret = operator_key::read(&args.operator)?;
    let what = files::describe(&args.bundle, "bundle");
    let text = files::read_text(&args.bundle, "bundle", MAX_ARMOUR_LEN)?;
    let now = clock::now()?;
    let opened = SealedBundle::from_text(&text)
        .and_then(|sealed| sealed.open(&secret, now))
        .map_err(|error| refused(format_args!("{what} refused"), error))?;
    if let Some(dir) = &args.out_dir {
        write_cards(&opened, dir)?;
    }
    write!(out, "{}", BundleView(&opened)).context("cannot write to standard output")
}

/// Writes each card of `opened` to `dir` as `NAME.card`. A host name is a
/// DNS label, so it is always one plain file name.
fn write_cards(opened: &OpenedBundle, dir: &PathBuf) -> Result<()> {
    let mut names = BTreeSet::new();
    if let Some(card) = opened
        .cards
        .iter()
        .find(|card| !names.insert(card.card().name.as_str()))
    {
        bail!(
            "the bundle holds two cards named `{}`; they cannot both be written to '{}'",
            card.card().name,
            dir.display()
        );
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot make directory '{}'", dir.display()))?;
    for card in &opened.cards {
        let path = dir.join(format!("{}.card", card.card().name));
        files::write_atomically(
            &path,
            card.to_text().as_bytes(),
            PRIVATE_MODE,
            Existing::Replace,
        )
        .with_context(|| format!("cannot write '{}'", path.display()))?;
    }
    Ok(())
}
