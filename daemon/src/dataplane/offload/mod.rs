//! The packet work behind Linux TUN offloads: a TUN device opened with
//! `IFF_VNET_HDR` and `TUNSETOFFLOAD` (`TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`)
//! hands the daemon TCP "super packets" of up to 64 KiB and accepts them back,
//! each behind a [`VirtioNetHdr`], as wireguard-go's `tun/offload_linux.go`
//! and the `tun-rs` crate use it.
//!
//! This module does no I/O, opens no device and allocates nothing per packet:
//! it reads and writes buffers the caller owns. Setting the device up (the
//! `ioctl`s) is the TUN module's job.
//!
//! ```text
//!   TUN read:  [virtio hdr][super packet] --segment()--> packets --> encrypt
//!   TUN write: decrypted packets --TcpCoalescer--> [virtio hdr][super packet]
//! ```
//!
//! - [`VirtioNetHdr`]: the 10-byte header, parsed with
//!   [`VirtioNetHdr::new_checked`] and written with [`VirtioNetHdr::to_bytes`].
//! - [`segment()`]: a TSO (or USO) super packet, or a plain packet that still
//!   needs its checksum, into complete IP packets, one per caller-provided
//!   slot.
//! - [`TcpCoalescer`]: the reverse (GRO): in-order TCP segments of one flow
//!   appended into one super packet, with the rules of wireguard-go's
//!   `tcpGRO`; packets that cannot join go out on their own.
//!
//! IP, TCP and UDP headers are read and written through the checked views
//! of [`sentrymesh_tunnel::ip`]; the one wire format this module parses
//! itself is the virtio header.
//!
//! Malformed input gives a typed error and never panics.

#![forbid(unsafe_code)]

#[cfg(feature = "fuzzing")]
pub(crate) mod checksum;
#[cfg(not(feature = "fuzzing"))]
mod checksum;
mod coalesce;
mod segment;
mod virtio;

#[cfg(feature = "fuzzing")]
pub(crate) use coalesce::Appended;
pub(crate) use coalesce::TcpCoalescer;
#[cfg(feature = "fuzzing")]
pub(crate) use segment::complete_checksum;
pub(crate) use segment::segment;
pub(crate) use virtio::{GsoType, VIRTIO_NET_HDR_LEN, VirtioNetHdr};

#[cfg(test)]
mod tests;
