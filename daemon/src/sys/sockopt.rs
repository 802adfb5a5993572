//! Socket options, through one `setsockopt(2)` and one `getsockopt(2)`:
//! every option the daemon sets or reads goes through `set` or a typed
//! function built on it, so the one `unsafe` call and its proof are here.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Sets option `name` at `level` on `socket` to the bytes of `value`.
fn set<T: ?Sized>(
    socket: &impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of_val(value))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the kernel reads at most `len` bytes from the pointer, which
    // points at `value` for exactly that many; the descriptor is borrowed
    // and open for the call.
    let result = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast(),
            len,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets an option whose value is a C `int` (buffer sizes, flags such as
/// `UDP_GRO`, `SO_MARK`).
///
/// # Errors
///
/// As `setsockopt(2)`.
pub(crate) fn set_int(
    socket: &impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    set(socket, level, name, &value)
}

/// Reads an option whose value is a C `int`.
///
/// # Errors
///
/// As `getsockopt(2)`: among others, an option this kernel does not know.
pub(crate) fn get_int(
    socket: &impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = libc::socklen_t::try_from(size_of::<libc::c_int>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the kernel writes at most `len` bytes to `value`, which has
    // that many, and the length back to `len`; both are live locals, and
    // the descriptor is borrowed and open for the call.
    let result = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            level,
            name,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if result == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Attaches the classic BPF `program` to `socket` (`SO_ATTACH_FILTER`),
/// replacing the filter it had. The kernel copies the instructions
/// `program` points at during the call.
///
/// # Errors
///
/// As `setsockopt(2)`: among others, a program the kernel's checker
/// refuses (`EINVAL`).
pub(crate) fn set_filter(socket: &impl AsFd, program: &libc::sock_fprog) -> io::Result<()> {
    set(socket, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, program)
}

/// Sets `SO_MARK`, the mark routing rules match (`fwmark`).
///
/// # Errors
///
/// As `setsockopt(2)`: without `CAP_NET_ADMIN`, refused.
pub(crate) fn set_mark(socket: &impl AsFd, mark: u32) -> io::Result<()> {
    set(socket, libc::SOL_SOCKET, libc::SO_MARK, &mark)
}

/// Binds `socket` to the network device `ifname` (`SO_BINDTODEVICE`): it
/// then hears only what arrives through that device.
///
/// # Errors
///
/// As `setsockopt(2)`: no such device, or no `CAP_NET_RAW`.
pub(crate) fn bind_to_device(socket: &impl AsFd, ifname: &str) -> io::Result<()> {
    set(
        socket,
        libc::SOL_SOCKET,
        libc::SO_BINDTODEVICE,
        ifname.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn an_int_option_set_reads_back() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        set_int(&socket, libc::IPPROTO_IP, libc::IP_TTL, 9).unwrap();
        assert_eq!(socket.ttl().unwrap(), 9);
        assert_eq!(get_int(&socket, libc::IPPROTO_IP, libc::IP_TTL).unwrap(), 9);
    }

    #[test]
    fn an_unknown_option_is_an_error_not_a_crash() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(set_int(&socket, libc::SOL_SOCKET, -1, 1).is_err());
    }
}
