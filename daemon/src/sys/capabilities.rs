//! Dropping privileges after setup: the process keeps only
//! `CAP_NET_ADMIN` (routes, addresses, socket marks on reload) and
//! `CAP_NET_BIND_SERVICE` (a listen port under 1024), in its effective and
//! permitted sets and in its bounding set.

use std::io;

/// `CAP_NET_BIND_SERVICE`.
const CAP_NET_BIND_SERVICE: u32 = 10;
/// `CAP_NET_ADMIN`.
const CAP_NET_ADMIN: u32 = 12;
/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit capability sets in two words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Keeps only the network capabilities.
///
/// # Errors
///
/// When the kernel refuses (dropping never needs privileges, but removing
/// from the bounding set needs `CAP_SETPCAP`; without it the bounding set is
/// left as it is and only the effective and permitted sets shrink).
pub(crate) fn keep_only_network() -> io::Result<()> {
    let last = last_capability();
    for capability in 0..=last {
        if capability == CAP_NET_ADMIN || capability == CAP_NET_BIND_SERVICE {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes a capability number; no pointers.
        let result = unsafe {
            libc::prctl(
                libc::PR_CAPBSET_DROP,
                libc::c_ulong::from(capability),
                0,
                0,
                0,
            )
        };
        if result < 0 {
            let error = io::Error::last_os_error();
            // EPERM: no CAP_SETPCAP, so the bounding set stays; EINVAL: a
            // capability this kernel does not know.
            if !matches!(error.raw_os_error(), Some(libc::EPERM | libc::EINVAL)) {
                return Err(error);
            }
        }
    }
    let kept = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_BIND_SERVICE);
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget fills the header's version and two data words, which
    // `header` and `data` are.
    if unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    data[0].effective &= kept;
    data[0].permitted &= kept;
    data[0].inheritable = 0;
    data[1] = CapData::default();
    // SAFETY: capset reads the header and two data words.
    if unsafe { libc::syscall(libc::SYS_capset, &raw const header, data.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The highest capability number this kernel knows.
fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(40)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A capability set of this thread from /proc, e.g. `CapEff`.
    fn thread_capabilities(set: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let line = status
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{set}:")))
            .unwrap();
        u64::from_str_radix(line.trim(), 16).unwrap()
    }

    #[test]
    fn only_the_network_capabilities_remain() {
        // Capabilities belong to threads: do it on one of its own, so the
        // other tests keep theirs.
        std::thread::spawn(|| {
            keep_only_network().unwrap();
            let network = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_BIND_SERVICE);
            assert_eq!(thread_capabilities("CapEff") & !network, 0);
            assert_eq!(thread_capabilities("CapPrm") & !network, 0);
            assert_eq!(thread_capabilities("CapInh"), 0);
            // As root (CI runs the tests as root) the bounding set shrinks too.
            assert_eq!(thread_capabilities("CapBnd") & !network, 0);
        })
        .join()
        .unwrap();
    }
}
