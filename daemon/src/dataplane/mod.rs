//! The data plane: IP packets from the TUN device to UDP datagrams and
//! back, on one thread per interface.
//!
//! [`device`] is the interface running, with its run loop; [`interface`]
//! holds the engine of `sentrymesh-tunnel` and the [`allowed_ips`] table that
//! routes each packet to its peer; [`batch`] gathers the datagrams of a turn
//! for one batched send; [`io`] is what the device needs of its TUN device
//! and socket (the kernel's, or fakes in tests); [`offload`] splits and
//! merges the large packets of Linux's TUN offloads. The rest of the daemon
//! talks to a running device through a [`handle`]: typed [`change`]s in,
//! typed [`state`] out; the run loop's [`heartbeat`] tells the watchdog it
//! still turns, and its [`sessions`] watch logs each peer's session coming
//! up, rekeyed, roaming and going down.

pub(crate) mod allowed_ips;
pub(crate) mod batch;
pub(crate) mod change;
pub(crate) mod device;
pub mod firewall;
pub(crate) mod handle;
pub(crate) mod heartbeat;
pub(crate) mod interface;
pub(crate) mod io;
pub(crate) mod offload;
pub(crate) mod sessions;
pub(crate) mod state;

pub use device::Offloads;
pub use state::PeerState;
