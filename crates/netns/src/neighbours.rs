//! The kernel's neighbour table, which every network namespace shares.
//!
//! A host keeps a neighbour entry for each address it sends to: one per peer
//! on the overlay (routes through the TUN device name no gateway) and one per
//! peer on the underlay. IPv4's table is one for the whole kernel, its size
//! capped by `net.ipv4.neigh.default.gc_thresh3` (1024 unless raised) across
//! all namespaces. A large testnet overflows it: the kernel logs `neighbor
//! table overflow`, sends fail with `ENOBUFS`, and handshakes never start.
//! A 60-host testnet did not form within 120 s with the default limits, and
//! formed in 7 s with them raised; the 40-host one formed in 2 s without.

use std::path::Path;

/// The kernel's cap on IPv4 neighbour entries, shared by every namespace.
const GC_THRESH3: &str = "/proc/sys/net/ipv4/neigh/default/gc_thresh3";

/// Neighbour entries a mesh of `peerings` peerings may hold at once: an
/// overlay and an underlay entry at each end of each.
pub fn needed(peerings: usize) -> usize {
    peerings.saturating_mul(4)
}

/// The kernel's cap on IPv4 neighbour entries, if it can be read.
pub fn limit() -> Option<usize> {
    read_limit(Path::new(GC_THRESH3))
}

fn read_limit(path: &Path) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// What to tell the user when `needed` entries may not fit under `limit`.
pub fn advice(needed: usize, limit: usize) -> Option<String> {
    if needed <= limit {
        return None;
    }
    let raised = needed.next_power_of_two();
    Some(format!(
        "this mesh may need up to {needed} neighbour entries, and the kernel keeps at most \
         {limit} across all namespaces (net.ipv4.neigh.default.gc_thresh3). If it does not \
         form and the kernel log says \"neighbor table overflow\", raise the limits:\n  \
         sudo sysctl -w net.ipv4.neigh.default.gc_thresh2={} net.ipv4.neigh.default.gc_thresh3={raised}",
        raised / 2
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_only_past_the_limit_with_limits_that_fit() {
        assert_eq!(advice(needed(21), 1024), None);
        let advice = advice(needed(1035), 1024).unwrap();
        assert!(advice.contains("up to 4140 neighbour entries"), "{advice}");
        assert!(advice.contains("at most 1024"), "{advice}");
        assert!(
            advice.ends_with("gc_thresh2=4096 net.ipv4.neigh.default.gc_thresh3=8192"),
            "{advice}"
        );
    }

    #[test]
    fn the_limit_is_read_from_proc() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gc_thresh3");
        std::fs::write(&path, "1024\n").unwrap();
        assert_eq!(read_limit(&path), Some(1024));
        std::fs::write(&path, "lots\n").unwrap();
        assert_eq!(read_limit(&path), None);
        assert_eq!(read_limit(&dir.path().join("missing")), None);
    }
}
