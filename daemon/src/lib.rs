//! The sentrymesh daemon: everything that touches the operating system
//! around the sans-IO engines of `sentrymesh-tunnel` and `sentrymesh-mesh`.
//!
//! The library is in rooms, one job each; the binary (`main.rs`) parses
//! arguments and runs them:
//!
//! * [`sys`]: every system call and every `unsafe` block (TUN, UDP and its
//!   batched I/O, rtnetlink, capabilities, systemd notifications).
//! * [`dataplane`]: the run loop that moves packets between the TUN device
//!   and UDP through the engine, and the allowed-IPs table.
//! * [`control`]: the UAPI socket `wg` talks to, its client, and metrics.
//! * [`modes`]: the ways an interface runs: `wg` (a drop-in for
//!   wireguard-go), `up` (the native TOML mode) and its mesh member.
//! * [`cli`]: the operator's commands (keys, operators, cards, trust).
//! * [`config`]: the native TOML configuration and key files.
//! * [`logging`]: the log formats (human, journal, JSON).
//! * `fuzzing` (only with the `fuzzing` feature, for the fuzz targets in
//!   `fuzz/`): entry points that drive the internals above from bytes.
//!
//! A whole mesh in network namespaces on one machine is the
//! `sentrymesh-testnet` crate's, which uses this library; the binary does
//! not link it.

#![warn(unreachable_pub)]
#![allow(
    rustdoc::private_intra_doc_links,
    reason = "the daemon's documentation is for its developers: CI builds it with --document-private-items, where these links resolve"
)]

pub mod cli;
pub mod config;
pub mod control;
pub mod dataplane;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod logging;
pub mod modes;
pub mod sys;
