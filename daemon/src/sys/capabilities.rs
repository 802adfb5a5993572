//! Dropping privileges after setup: the process keeps only
//! `CAP_NET_ADMIN` (routes, addresses, socket marks on reload) and
//! `CAP_NET_BIND_SERVICE` (a listen port under 1024, when started as root),
//! in its effective and permitted sets and in its bounding set.

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

/// Keeps only the network capabilities, dropping only what the process
/// holds: under the systemd unit (a service user with ambient
/// `CAP_NET_ADMIN`, its bounding set that alone, and a system call filter
/// that refuses `capset`) there is nothing left to drop and nothing is
/// asked of the kernel but the ambient set's clearing.
///
/// The ambient set is cleared, so no program the process might run
/// inherits a capability. The inheritable set keeps at most the network
/// capabilities (the unit puts `CAP_NET_ADMIN` there for the ambient set);
/// with the ambient set clear they reach only a program whose file grants
/// them, and the daemon runs none.
///
/// # Errors
///
/// When the kernel refuses (dropping never needs privileges, but removing
/// from the bounding set needs `CAP_SETPCAP`; without it the bounding set is
/// left as it is and only the effective and permitted sets shrink).
pub(crate) fn keep_only_network() -> io::Result<()> {
    for capability in 0..=last_capability() {
        let is_kept = capability == CAP_NET_ADMIN || capability == CAP_NET_BIND_SERVICE;
        if !is_kept && in_bounding_set(capability) {
            drop_from_bounding_set(capability)?;
        }
    }
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointers.
    let cleared = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::c_ulong::from(libc::PR_CAP_AMBIENT_CLEAR_ALL.unsigned_abs()),
            0,
            0,
            0,
        )
    };
    if cleared < 0 {
        return Err(io::Error::last_os_error());
    }
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
    let kept: u32 = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_BIND_SERVICE);
    let held = |word: &CapData| word.effective | word.permitted | word.inheritable;
    if held(&data[0]) & !kept == 0 && held(&data[1]) == 0 {
        return Ok(());
    }
    data[0].effective &= kept;
    data[0].permitted &= kept;
    data[0].inheritable &= kept;
    data[1] = CapData::default();
    // SAFETY: capset reads the header and two data words.
    if unsafe { libc::syscall(libc::SYS_capset, &raw const header, data.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `capability` is in the bounding set; `false` for one this kernel
/// does not know.
fn in_bounding_set(capability: u32) -> bool {
    // SAFETY: PR_CAPBSET_READ takes a capability number; no pointers.
    unsafe {
        libc::prctl(
            libc::PR_CAPBSET_READ,
            libc::c_ulong::from(capability),
            0,
            0,
            0,
        ) == 1
    }
}

/// Removes `capability` from the bounding set, if the process may.
fn drop_from_bounding_set(capability: u32) -> io::Result<()> {
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
        // EPERM: no CAP_SETPCAP, so the bounding set stays.
        if error.raw_os_error() != Some(libc::EPERM) {
            return Err(error);
        }
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
            assert_eq!(thread_capabilities("CapInh") & !network, 0);
            assert_eq!(thread_capabilities("CapAmb"), 0);
            // As root (CI runs the tests as root) the bounding set shrinks too.
            assert_eq!(thread_capabilities("CapBnd") & !network, 0);
        })
        .join()
        .unwrap();
    }
}
