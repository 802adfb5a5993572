//! The rtnetlink requests the native mode needs: add or remove an address of
//! an interface, add or remove a route through it, and add or remove an
//! unreachable route. Just enough of the
//! protocol, written out, rather than a netlink library.

use std::ffi::CString;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use sentrymesh_types::IpNet;

const NLMSG_ERROR: u16 = 2;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
const RTN_UNREACHABLE: u8 = 7;

/// The index of interface `name`.
///
/// # Errors
///
/// When there is no such interface.
pub(crate) fn interface_index(name: &str) -> io::Result<u32> {
    let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(index)
    }
}

/// Adds `address` (a host address with its prefix length, such as
/// 198.19.1.2/32) to interface `index`.
///
/// # Errors
///
/// As the kernel answers, e.g. `AlreadyExists`.
pub(crate) fn add_address(index: u32, address: IpAddr, prefix_len: u8) -> io::Result<()> {
    address_request(
        RTM_NEWADDR,
        NLM_F_CREATE | NLM_F_EXCL,
        index,
        address,
        prefix_len,
    )
    .send()
}

/// Removes `address` with its prefix length from interface `index`.
///
/// # Errors
///
/// As the kernel answers, e.g. `AddrNotAvailable` when it has no such address.
pub(crate) fn delete_address(index: u32, address: IpAddr, prefix_len: u8) -> io::Result<()> {
    address_request(RTM_DELADDR, 0, index, address, prefix_len).send()
}

/// Routes `net` through interface `index` (in the main table).
///
/// # Errors
///
/// As the kernel answers, e.g. `AlreadyExists`.
pub(crate) fn add_route(index: u32, net: IpNet) -> io::Result<()> {
    route_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, Some(index), net).send()
}

/// Makes `net` unreachable (in the main table): a packet for it that no
/// more specific route takes is refused at once with "no route to host",
/// rather than sent by a wider route such as the default one.
///
/// # Errors
///
/// As the kernel answers, e.g. `AlreadyExists` when `net` has a route.
pub(crate) fn add_unreachable_route(net: IpNet) -> io::Result<()> {
    route_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, None, net).send()
}

/// Removes the unreachable route to `net`.
///
/// # Errors
///
/// As the kernel answers, e.g. `NotFound` when there is no such route.
pub(crate) fn delete_unreachable_route(net: IpNet) -> io::Result<()> {
    route_request(RTM_DELROUTE, 0, None, net).send()
}

/// Removes the route to `net` through interface `index`.
///
/// # Errors
///
/// As the kernel answers, e.g. `NotFound` when there is no such route.
pub(crate) fn delete_route(index: u32, net: IpNet) -> io::Result<()> {
    route_request(RTM_DELROUTE, 0, Some(index), net).send()
}

fn address_request(kind: u16, flags: u16, index: u32, address: IpAddr, prefix_len: u8) -> Message {
    let mut message = Message::new(kind, flags);
    // struct ifaddrmsg
    message.push(&[family(address), prefix_len, 0, RT_SCOPE_UNIVERSE]);
    message.push(&index.to_ne_bytes());
    message.attribute(IFA_LOCAL, &octets(address));
    message.attribute(IFA_ADDRESS, &octets(address));
    message
}

/// A route to `net` through interface `index`, or an unreachable one when
/// there is no interface.
fn route_request(kind: u16, flags: u16, index: Option<u32>, net: IpNet) -> Message {
    let mut message = Message::new(kind, flags);
    let (scope, route_type) = match index {
        Some(_) => (RT_SCOPE_LINK, RTN_UNICAST),
        None => (RT_SCOPE_UNIVERSE, RTN_UNREACHABLE),
    };
    // struct rtmsg
    message.push(&[
        family(net.addr()),
        net.prefix_len(),
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_STATIC,
        scope,
        route_type,
    ]);
    message.push(&0u32.to_ne_bytes());
    message.attribute(RTA_DST, &octets(net.addr()));
    if let Some(index) = index {
        message.attribute(RTA_OIF, &index.to_ne_bytes());
    }
    message
}

fn family(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

fn octets(address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// One rtnetlink request being built: the header, then the payload.
struct Message(Vec<u8>);

impl Message {
    fn new(kind: u16, flags: u16) -> Self {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // length, set in `send`
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        bytes.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        Self(bytes)
    }

    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// Appends an attribute, padded to 4 bytes.
    fn attribute(&mut self, kind: u16, payload: &[u8]) {
        let len = u16::try_from(4 + payload.len()).expect("small attribute");
        self.push(&len.to_ne_bytes());
        self.push(&kind.to_ne_bytes());
        self.push(payload);
        while self.0.len() % 4 != 0 {
            self.0.push(0);
        }
    }

    /// Sends the request and waits for the kernel's acknowledgement.
    fn send(mut self) -> io::Result<()> {
        let len = u32::try_from(self.0.len()).expect("small message");
        self.0[..4].copy_from_slice(&len.to_ne_bytes());
        let socket = route_socket()?;
        // SAFETY: sends `self.0`, valid for its length, on our socket; the
        // kernel is the default destination of a netlink socket.
        let sent =
            unsafe { libc::send(socket.as_raw_fd(), self.0.as_ptr().cast(), self.0.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut reply = [0u8; 1024];
        // SAFETY: receives into `reply`, valid for its length.
        let received = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                reply.as_mut_ptr().cast(),
                reply.len(),
                0,
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        acknowledgement(&reply[..received as usize])
    }
}

/// The verdict of an `NLMSG_ERROR` acknowledgement.
fn acknowledgement(reply: &[u8]) -> io::Result<()> {
    let kind = reply.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let error = reply
        .get(16..20)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    match (kind, error) {
        (Some(NLMSG_ERROR), Some(0)) => Ok(()),
        (Some(NLMSG_ERROR), Some(code)) => Err(io::Error::from_raw_os_error(-code)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected netlink reply",
        )),
    }
}

/// A `NETLINK_ROUTE` socket.
fn route_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_acknowledgements_read() {
        let mut message = Message::new(RTM_NEWADDR, 0);
        message.attribute(IFA_LOCAL, &[198, 18, 0, 1]);
        message.attribute(7, &[1]);
        assert_eq!(message.0.len(), 16 + 8 + 8);
        assert_eq!(&message.0[16..20], &[8, 0, 2, 0]);

        let mut ack = [0u8; 36];
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert!(acknowledgement(&ack).is_ok());
        ack[16..20].copy_from_slice(&(-libc::EEXIST).to_ne_bytes());
        assert_eq!(
            acknowledgement(&ack).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert!(acknowledgement(&[0; 8]).is_err());
    }
}
