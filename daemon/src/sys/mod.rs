//! The system room: every system call the daemon makes and every `unsafe`
//! block it needs, behind safe functions the other rooms call.
//!
//! Nothing outside this room talks to the kernel directly: the TUN device,
//! the UDP sockets and their batched I/O, the rtnetlink requests, dropping
//! capabilities and the systemd notification socket all live here.

pub mod batch_udp;
pub mod capabilities;
pub mod netlink;
pub mod process;
pub mod sockopt;
pub mod systemd;
pub mod tun;
pub mod udp;
