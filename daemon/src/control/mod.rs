//! The control room: how people and programs talk to a running interface.
//!
//! The UAPI socket that `wg` speaks to ([`socket`], its text protocol in
//! [`uapi`]), the client side other `sentrymesh` commands use ([`client`]),
//! the status document `sentrymesh status` asks that socket for
//! ([`status`]), and the Prometheus endpoint ([`metrics`]).

pub mod client;
pub(crate) mod metrics;
pub mod socket;
pub mod status;
pub(crate) mod uapi;
