//! A Linux TUN device: the IP packets the kernel routes to the interface come
//! out of it, and the packets written to it go into the kernel's stack.
//!
//! This is one of the few places that touch the OS directly, through
//! `ioctl`s on `/dev/net/tun` and on a socket; each `unsafe` block states why
//! it is sound.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

/// The longest interface name Linux accepts (`IFNAMSIZ` less the NUL).
pub const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// A TUN device, removed by the kernel when this handle (its last open file)
/// is dropped.
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
    /// Whether packets carry a `virtio_net_hdr` with segmentation offloads.
    offloads: bool,
}

impl Tun {
    /// Creates the TUN device `name` (packets without the 4-byte packet
    /// information header), or attaches to it if a persistent one exists.
    ///
    /// # Errors
    ///
    /// When `name` is not a valid interface name (`InvalidInput`), when the
    /// process lacks `CAP_NET_ADMIN`, or when a device of another kind has
    /// that name.
    pub fn create(name: &str) -> io::Result<Self> {
        Self::open(name, libc::IFF_TUN | libc::IFF_NO_PI)
    }

    /// Creates the TUN device `name` with segmentation offloads: every packet
    /// read or written is preceded by a `virtio_net_hdr`, reads may be TCP
    /// super packets of up to 64 KiB (TSO) with their checksums left to us,
    /// and writes may be coalesced super packets (GRO). `None` when the
    /// kernel does not offer the offloads; [`Tun::create`] then gives a plain
    /// device.
    ///
    /// # Errors
    ///
    /// As [`Tun::create`].
    pub fn create_with_offloads(name: &str) -> io::Result<Option<Self>> {
        let tun = Self::open(name, libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_VNET_HDR)?;
        let offloads = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
        // SAFETY: TUNSETOFFLOAD takes the flags as its integer argument.
        let result = unsafe {
            libc::ioctl(
                tun.file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(offloads),
            )
        };
        Ok((result == 0).then_some(Self {
            offloads: true,
            ..tun
        }))
    }

    fn open(name: &str, flags: libc::c_int) -> io::Result<Self> {
        let mut request = interface_request(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        request.ifr_ifru.ifru_flags = flags as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one `ifreq`, which `request` is,
        // on a descriptor we own.
        let result = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut request) };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        // The kernel writes back the name it used (the same, as no `%d` pattern
        // was given).
        let name = name_of(&request)?;
        Ok(Self {
            file,
            name,
            offloads: false,
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the device was made with segmentation offloads (see
    /// [`Tun::create_with_offloads`]): every packet read or written then
    /// starts with a `virtio_net_hdr`.
    pub fn has_offloads(&self) -> bool {
        self.offloads
    }

    /// Sets the device's MTU.
    ///
    /// # Errors
    ///
    /// When the kernel refuses it (a value out of its range, or no
    /// `CAP_NET_ADMIN`).
    pub fn set_mtu(&self, mtu: u32) -> io::Result<()> {
        set_mtu(&self.name, mtu)
    }

    /// The device's MTU, as the kernel has it now (wg-quick and operators
    /// change it while the daemon runs).
    ///
    /// # Errors
    ///
    /// When the kernel does not answer (the device is gone).
    pub fn mtu(&self) -> io::Result<u32> {
        let socket = control_socket()?;
        let mut request = interface_request(&self.name)?;
        // SAFETY: SIOCGIFMTU writes the MTU into one `ifreq`.
        check(unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFMTU, &mut request) })?;
        // SAFETY: the kernel has just filled in `ifru_mtu`.
        let mtu = unsafe { request.ifr_ifru.ifru_mtu };
        u32::try_from(mtu).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
    }

    /// Brings the device up.
    ///
    /// # Errors
    ///
    /// When the kernel refuses it.
    pub fn set_up(&self) -> io::Result<()> {
        let socket = control_socket()?;
        let mut request = interface_request(&self.name)?;
        // SAFETY: SIOCGIFFLAGS writes the flags into one `ifreq`.
        check(unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) })?;
        // SAFETY: the kernel has just filled in `ifru_flags`.
        let flags = unsafe { request.ifr_ifru.ifru_flags };
        request.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        // SAFETY: SIOCSIFFLAGS reads one `ifreq`.
        check(unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) })
    }

    /// Makes [`Tun::recv`] and [`Tun::send`] return `WouldBlock` instead of
    /// waiting.
    ///
    /// # Errors
    ///
    /// As `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        // SAFETY: F_GETFL reads the flags of a descriptor we own.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        check(flags)?;
        let flags = if nonblocking {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        // SAFETY: F_SETFL sets the flags of a descriptor we own.
        check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) })
    }

    /// Reads one packet into `buf`; returns its length.
    ///
    /// # Errors
    ///
    /// As `read(2)`; `WouldBlock` when non-blocking and no packet waits.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Writes one packet.
    ///
    /// # Errors
    ///
    /// As `write(2)`: e.g. `InvalidInput` for a packet that is not IP.
    pub fn send(&self, packet: &[u8]) -> io::Result<usize> {
        (&self.file).write(packet)
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for Tun {
    /// The device's descriptor: the same one for the whole life of the
    /// `Tun`, which owns it.
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

/// Whether `name` is one Linux accepts for a network interface.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Sets the MTU of interface `name`: of a TUN device the data path holds,
/// to change it while the device runs (the data path reads it again from
/// the kernel).
///
/// # Errors
///
/// When there is no such interface, or the kernel refuses the value (out of
/// its range, or no `CAP_NET_ADMIN`).
pub fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
    let mut request = interface_request(name)?;
    request.ifr_ifru.ifru_mtu = libc::c_int::try_from(mtu)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "MTU out of range"))?;
    let socket = control_socket()?;
    // SAFETY: SIOCSIFMTU reads one `ifreq`.
    check(unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFMTU, &request) })
}

/// An `ifreq` naming `name`, zeroed otherwise.
fn interface_request(name: &str) -> io::Result<libc::ifreq> {
    if !is_valid_name(name) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a valid interface name"),
        ));
    }
    // SAFETY: `ifreq` is plain old data (a name and a union of integers and
    // addresses), for which all zeros is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    Ok(request)
}

/// The interface name in `request`.
fn name_of(request: &libc::ifreq) -> io::Result<String> {
    let bytes: Vec<u8> = request
        .ifr_name
        .iter()
        .map(|&c| c as u8)
        .chain(std::iter::once(0))
        .collect();
    CStr::from_bytes_until_nul(&bytes)
        .ok()
        .and_then(|name| name.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "interface name is not UTF-8"))
}

/// A datagram socket to address interface `ioctl`s to.
fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(fd)?;
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_the_kernel_rules() {
        for good in ["sm0", "wg-validator.1", "a", "abcdefghijklmno"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", ".", "..", "abcdefghijklmnop", "sm 0", "sm/0", "smé"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert_eq!(
            Tun::create("bad name").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
