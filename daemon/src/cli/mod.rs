//! The operator commands of the trust mesh: `sentrymesh operator`, `card`
//! and `trust`; `check`, which tells whether `up` would take a config;
//! `import wg-quick`, which turns a wg-quick config into a native one; and
//! `export`, the chain node's peer config from the mesh; and `testnet`,
//! which runs the `sentrymesh-testnet` program beside this one.
//!
//! ```text
//!  operator new --out op.key ──► op.key (0600) ──► operator id (share it)
//!  card issue --operator op.key ... ──► card (signed by the operator)
//!  card seal --operator op.key --to ID... CARD... ──► bundle (post it anywhere)
//!  card open --operator op.key BUNDLE ──► the cards, checked, in plain words
//!  trust vouch | revoke --operator op.key ... ──► signed statement
//! ```
//!
//! The cryptography and every rule (signatures, validity windows, hidden
//! roles, who may open a bundle) are `sentrymesh-mesh`'s; these commands
//! supply what that crate leaves to its caller — the secret key file, the
//! system clock ([`clock`]), the operating system's RNG and the files — and
//! turn its errors into one-line messages that name the flag or the file at
//! fault. No message, `Debug` output or log line shows an operator's secret
//! key.

pub(crate) mod bundle;
pub mod card;
pub mod check;
pub(crate) mod clock;
pub mod export;
pub(crate) mod files;
pub mod keygen;
pub mod operator;
pub mod operator_key;
pub(crate) mod show;
pub mod status;
pub mod testnet;
pub mod trust;
pub mod wg_quick;

pub use card::CardCommand;
pub use export::ExportCommand;
pub use operator::OperatorCommand;
pub use trust::TrustCommand;
pub use wg_quick::ImportCommand;

use std::fmt::Display;

/// `context: error` as one message.
///
/// The errors of `sentrymesh-mesh` include their cause in their own
/// message and also return it as their `source`; chained with `context`,
/// `{:#}` would print the cause twice. This keeps the message only.
fn refused(context: impl Display, error: impl Display) -> anyhow::Error {
    anyhow::anyhow!("{context}: {error}")
}
