//! Giving the memory the daemon freed back to the system.
//!
//! glibc's `malloc` keeps what a program frees for its next allocations:
//! when a thousand peers go (their operators revoked them, or a `set`
//! removed them), the daemon's resident memory stays where it was, though
//! nothing uses it. [`release_free_memory`] returns the free pages of every
//! heap (each thread's arena too) to the kernel, as `malloc_trim(0)` does;
//! the data path calls it, at most once a second, after peers went (see
//! `dataplane/device.rs`). It costs a walk of the heaps: milliseconds.

/// Returns the free pages of the allocator's heaps to the kernel. With an
/// allocator other than glibc's it does nothing.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and touches only memory the
    // allocator holds free; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads this process's resident memory (`VmRSS`), in KiB.
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse().ok())
            .unwrap()
    }

    #[test]
    fn freed_memory_goes_back_to_the_system() {
        // Many small allocations, as peers are, freed but for one at the
        // end of the heap, which keeps malloc from giving the rest back by
        // itself.
        let mut blocks: Vec<Vec<u8>> = (0..64 * 1024).map(|n| vec![n as u8; 1000]).collect();
        let last = blocks.pop();
        let pinned = vec![1u8; 1000];
        let full = rss_kib();
        drop(blocks);
        let freed = rss_kib();
        release_free_memory();
        let released = rss_kib();
        drop((last, pinned));
        // 64 MiB were in use; freeing alone keeps most of it resident.
        assert!(
            released + 32 * 1024 < full,
            "resident: {full} KiB in use, {freed} KiB freed, {released} KiB after the release"
        );
    }
}
