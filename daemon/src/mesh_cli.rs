//! The operator commands of the trust mesh: `sentrymesh operator`, for
//! now.
//!
//! ```text
//!  operator new --out op.key ──► op.key (0600) ──► operator id (share it)
//! ```
//!
//! The cryptography is `sentrymesh-mesh`'s; these commands supply what
//! that crate leaves to its caller — the secret key file, the operating
//! system's RNG and the files — and turn errors into one-line messages that
//! name the file at fault. No message, `Debug` output or log line shows an
//! operator's secret key.

pub mod files;
pub mod operator;
pub mod operator_key;

pub use operator::OperatorCommand;
