//! `struct virtio_net_hdr`, the 10-byte header in front of every packet read
//! from or written to a TUN device opened with `IFF_VNET_HDR`.
//!
//! ```text
//!  0        1          2        4         6           8            10
//!  +--------+----------+--------+---------+-----------+------------+
//!  | flags  | gso_type | hdr_len| gso_size| csum_start| csum_offset|
//!  +--------+----------+--------+---------+-----------+------------+
//! ```
//!
//! # Byte order
//!
//! The 16-bit fields are `__virtio16`. A TUN device uses little-endian when
//! `TUNSETVNETLE` was set, and otherwise the legacy virtio order, which is the
//! host's native order (`tun_is_little_endian` in `drivers/net/tun.c`). This
//! module always reads and writes little-endian: on little-endian hosts
//! (x86-64, aarch64, riscv64) that is the default and needs no ioctl; on a
//! big-endian host the device must be switched with `TUNSETVNETLE` (kernel
//! option `CONFIG_TUN_VNET_CROSS_LE`) before offloads are enabled.
//!
//! The header is the 10-byte one, the TUN default (`TUNSETVNETHDRSZ` left
//! at `sizeof(struct virtio_net_hdr)`), not the 12-byte mergeable-buffers
//! variant.

/// Length of `struct virtio_net_hdr` on the wire.
pub(crate) const VIRTIO_NET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum from `csum_start` to the end
/// is still to be computed and stored at `csum_start + csum_offset`; the
/// field already holds the folded pseudo-header sum (`CHECKSUM_PARTIAL`).
pub(crate) const FLAG_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was already verified
/// (`CHECKSUM_UNNECESSARY`). Informational only.
pub(crate) const FLAG_DATA_VALID: u8 = 2;

/// The flag bits this module accepts; `VIRTIO_NET_HDR_F_RSC_INFO` and unknown
/// bits are never produced by TUN and are rejected.
const KNOWN_FLAGS: u8 = FLAG_NEEDS_CSUM | FLAG_DATA_VALID;

/// `gso_type`: what kind of segmentation a packet needs (or came from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GsoType {
    /// `VIRTIO_NET_HDR_GSO_NONE`: a single packet.
    None,
    /// `VIRTIO_NET_HDR_GSO_TCPV4`: a TCP/IPv4 super packet.
    TcpV4,
    /// `VIRTIO_NET_HDR_GSO_TCPV6`: a TCP/IPv6 super packet.
    TcpV6,
    /// `VIRTIO_NET_HDR_GSO_UDP_L4`: a UDP super packet (USO), either family.
    UdpL4,
}

impl GsoType {
    /// The wire value of the `gso_type` byte.
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Self::None => 0,
            Self::TcpV4 => 1,
            Self::TcpV6 => 4,
            Self::UdpL4 => 5,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::None),
            1 => Some(Self::TcpV4),
            4 => Some(Self::TcpV6),
            5 => Some(Self::UdpL4),
            _ => None,
        }
    }
}

/// Why bytes are not a valid `virtio_net_hdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum VirtioHdrError {
    /// Fewer than [`VIRTIO_NET_HDR_LEN`] bytes.
    #[error("virtio_net_hdr truncated: {0} bytes")]
    Truncated(usize),
    /// A flag bit other than `NEEDS_CSUM` and `DATA_VALID`.
    #[error("unsupported virtio_net_hdr flags {0:#04x}")]
    UnsupportedFlags(u8),
    /// A `gso_type` other than NONE, TCPV4, TCPV6 and UDP_L4 (this includes
    /// the ECN bit and UDP fragmentation offload).
    #[error("unsupported virtio_net_hdr gso_type {0:#04x}")]
    UnsupportedGsoType(u8),
    /// A GSO type with `gso_size == 0`.
    #[error("virtio_net_hdr gso_size is zero for a GSO packet")]
    ZeroGsoSize,
    /// A GSO type without `NEEDS_CSUM`: segments need their checksums.
    #[error("virtio_net_hdr GSO packet without NEEDS_CSUM")]
    GsoWithoutCsum,
}

/// A parsed and validated `struct virtio_net_hdr` (see the module docs for
/// the byte order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VirtioNetHdr {
    /// `flags`: [`FLAG_NEEDS_CSUM`] and/or [`FLAG_DATA_VALID`].
    pub flags: u8,
    /// `gso_type`.
    pub gso_type: GsoType,
    /// `hdr_len`: length of the IP and transport headers of each segment.
    pub hdr_len: u16,
    /// `gso_size`: payload bytes per segment (the MSS for TCP).
    pub gso_size: u16,
    /// `csum_start`: offset of the transport header in the packet.
    pub csum_start: u16,
    /// `csum_offset`: offset of the checksum field from `csum_start`.
    pub csum_offset: u16,
}

impl VirtioNetHdr {
    /// The header of a plain packet: no GSO, checksum complete.
    pub(crate) const NONE: Self = Self {
        flags: 0,
        gso_type: GsoType::None,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    /// Parses the first [`VIRTIO_NET_HDR_LEN`] bytes of `bytes`.
    ///
    /// This checks the header on its own; whether it fits the packet behind
    /// it is checked by [`segment()`](super::segment()).
    ///
    /// # Errors
    ///
    /// [`VirtioHdrError`] if `bytes` is short, or a flag, the GSO type or the
    /// combination of GSO fields is not one TUN produces.
    pub(crate) fn new_checked(bytes: &[u8]) -> Result<Self, VirtioHdrError> {
        let Some(bytes) = bytes.first_chunk::<VIRTIO_NET_HDR_LEN>() else {
            return Err(VirtioHdrError::Truncated(bytes.len()));
        };
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let flags = bytes[0];
        if flags & !KNOWN_FLAGS != 0 {
            return Err(VirtioHdrError::UnsupportedFlags(flags));
        }
        let gso_type =
            GsoType::from_byte(bytes[1]).ok_or(VirtioHdrError::UnsupportedGsoType(bytes[1]))?;
        let hdr = Self {
            flags,
            gso_type,
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        };
        if gso_type != GsoType::None {
            if hdr.gso_size == 0 {
                return Err(VirtioHdrError::ZeroGsoSize);
            }
            if !hdr.needs_csum() {
                return Err(VirtioHdrError::GsoWithoutCsum);
            }
        }
        Ok(hdr)
    }

    /// Whether [`FLAG_NEEDS_CSUM`] is set.
    pub(crate) fn needs_csum(&self) -> bool {
        self.flags & FLAG_NEEDS_CSUM != 0
    }

    /// The header as it goes on the wire.
    pub(crate) fn to_bytes(self) -> [u8; VIRTIO_NET_HDR_LEN] {
        let mut out = [0; VIRTIO_NET_HDR_LEN];
        out[0] = self.flags;
        out[1] = self.gso_type.to_byte();
        out[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        out[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        out[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        out[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        out
    }

    /// Writes the header into the first [`VIRTIO_NET_HDR_LEN`] bytes of `out`.
    ///
    /// # Errors
    ///
    /// [`VirtioHdrError::Truncated`] if `out` is shorter than the header.
    #[cfg(test)]
    pub(crate) fn write(&self, out: &mut [u8]) -> Result<(), VirtioHdrError> {
        let len = out.len();
        let out = out
            .first_chunk_mut::<VIRTIO_NET_HDR_LEN>()
            .ok_or(VirtioHdrError::Truncated(len))?;
        *out = self.to_bytes();
        Ok(())
    }
}
