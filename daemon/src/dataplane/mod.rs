//! The data plane: IP packets from the TUN device to UDP datagrams and
//! back, on one thread per interface.
//!
//! [`device`] is the run loop; [`interface`] holds the engine of
//! `sentrymesh-tunnel` and the [`allowed_ips`] table that routes each packet
//! to its peer; [`offload`] splits and merges the large packets of Linux's
//! TUN offloads. The rest of the daemon talks to a running device through a
//! [`handle`]: typed [`change`]s in, typed [`state`] out.

pub mod allowed_ips;
pub mod change;
pub mod device;
pub mod handle;
pub mod interface;
pub mod offload;
pub mod state;
