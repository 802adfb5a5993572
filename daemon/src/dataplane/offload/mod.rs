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
//! Malformed input gives a typed error and never panics.

#![forbid(unsafe_code)]

mod checksum;
mod coalesce;
mod segment;
mod virtio;

pub(crate) use coalesce::TcpCoalescer;
pub(crate) use segment::segment;
pub(crate) use virtio::{GsoType, VIRTIO_NET_HDR_LEN, VirtioNetHdr};

/// IP protocol number of TCP.
const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
const IPPROTO_UDP: u8 = 17;
/// Length of the UDP header.
const UDP_HDR_LEN: usize = 8;
/// Offset of the checksum in the UDP header (the virtio `csum_offset`).
const UDP_CSUM_OFFSET: usize = 6;
/// Length of an IPv4 header without options.
const IPV4_MIN_HDR_LEN: usize = 20;
/// Length of the fixed IPv6 header.
const IPV6_HDR_LEN: usize = 40;
/// Length of a TCP header without options.
const TCP_MIN_HDR_LEN: usize = 20;
/// Length of a TCP header with the most options.
const TCP_MAX_HDR_LEN: usize = 60;
/// Offset of the flags byte in the TCP header.
const TCP_FLAGS_OFFSET: usize = 13;
/// Offset of the checksum in the TCP header (the virtio `csum_offset`).
const TCP_CSUM_OFFSET: usize = 16;
const TCP_FLAG_FIN: u8 = 0x01;
const TCP_FLAG_PSH: u8 = 0x08;
const TCP_FLAG_ACK: u8 = 0x10;
const TCP_FLAG_CWR: u8 = 0x80;

/// The source and destination address bytes of an IP packet whose fixed
/// header length was checked.
fn addresses(packet: &[u8], is_v6: bool) -> (&[u8], &[u8]) {
    if is_v6 {
        (&packet[8..24], &packet[24..40])
    } else {
        (&packet[12..16], &packet[16..20])
    }
}

#[cfg(test)]
mod tests;
