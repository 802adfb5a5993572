//! The system room: every system call the daemon makes and every `unsafe`
//! block it needs, behind safe functions the other rooms call.
//!
//! Nothing outside this room talks to the kernel directly: the TUN device,
//! the UDP sockets and their batched I/O, the rtnetlink requests, dropping
//! capabilities and the systemd notification socket all live here.

pub(crate) mod batch_udp;
pub(crate) mod capabilities;
pub(crate) mod memory;
pub(crate) mod netlink;
pub(crate) mod process;
pub(crate) mod socket_filter;
pub(crate) mod sockopt;
pub(crate) mod systemd;
pub mod tun;
pub(crate) mod udp;
