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

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The kernel's soft and hard caps on IPv4 neighbour entries, shared by
/// every namespace: past the soft one it collects entries more eagerly,
/// past the hard one it refuses new ones.
const GC_THRESH2: &str = "/proc/sys/net/ipv4/neigh/default/gc_thresh2";
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

/// The kernel's neighbour caps raised for one run, and put back as they
/// were when this is dropped; see [`raise_to_fit`].
#[derive(Debug)]
pub struct Raised {
    /// Each file: its value before, and the value written.
    files: Vec<(PathBuf, usize, usize)>,
}

impl fmt::Display for Raised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (path, before, after) in &self.files {
            let name = path
                .strip_prefix("/proc/sys")
                .unwrap_or(path)
                .to_string_lossy()
                .replace('/', ".");
            if !first {
                write!(f, ", ")?;
            }
            first = false;
            write!(f, "{name} from {before} to {after}")?;
        }
        Ok(())
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        // Back as they were, the hard cap first so that the soft one never
        // stands above it; a value someone changed since is theirs, and
        // left alone.
        for (path, before, after) in self.files.iter().rev() {
            if read_limit(path) != Some(*after) {
                eprintln!(
                    "{} changed during the run; left as it is, not put back to {before}",
                    path.display()
                );
                continue;
            }
            if let Err(error) = std::fs::write(path, before.to_string()) {
                eprintln!("putting {} back to {before}: {error}", path.display());
            }
        }
    }
}

/// Raises the kernel's neighbour caps so that `needed` entries fit, for as
/// long as the returned [`Raised`] lives: the hard cap to the next power of
/// two at or above `needed`, the soft cap to half of it (never lowered).
/// `None` when they fit already.
///
/// # Errors
///
/// When a cap cannot be read or written (not root); what was written is
/// put back.
pub fn raise_to_fit(needed: usize) -> io::Result<Option<Raised>> {
    raise_files(Path::new(GC_THRESH2), Path::new(GC_THRESH3), needed)
}

fn raise_files(soft: &Path, hard: &Path, needed: usize) -> io::Result<Option<Raised>> {
    let read = |path: &Path| {
        read_limit(path).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} holds no number", path.display()),
            )
        })
    };
    let (soft_before, hard_before) = (read(soft)?, read(hard)?);
    if needed <= hard_before {
        return Ok(None);
    }
    let hard_after = needed.next_power_of_two();
    let soft_after = (hard_after / 2).max(soft_before);
    let mut raised = Raised { files: Vec::new() };
    // The hard cap first, so that the soft one never stands above it.
    for (path, before, after) in [
        (hard, hard_before, hard_after),
        (soft, soft_before, soft_after),
    ] {
        if after == before {
            continue;
        }
        std::fs::write(path, after.to_string())?;
        raised.files.push((path.to_owned(), before, after));
    }
    Ok(Some(raised))
}

/// What to tell the user when `needed` entries may not fit under `limit`
/// and the caps could not be raised.
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

    #[test]
    fn caps_are_raised_to_fit_and_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let (soft, hard) = (dir.path().join("gc_thresh2"), dir.path().join("gc_thresh3"));
        std::fs::write(&soft, "512\n").unwrap();
        std::fs::write(&hard, "1024\n").unwrap();
        assert!(raise_files(&soft, &hard, 1024).unwrap().is_none());
        let raised = raise_files(&soft, &hard, 1500).unwrap().unwrap();
        assert_eq!(read_limit(&hard), Some(2048));
        assert_eq!(read_limit(&soft), Some(1024));
        let told = raised.to_string();
        assert!(told.contains("gc_thresh3 from 1024 to 2048"), "{told}");
        assert!(told.contains("gc_thresh2 from 512 to 1024"), "{told}");
        drop(raised);
        assert_eq!(read_limit(&hard), Some(1024));
        assert_eq!(read_limit(&soft), Some(512));
        // A cap someone else changed during the run stays as they set it.
        let raised = raise_files(&soft, &hard, 1500).unwrap().unwrap();
        std::fs::write(&hard, "65536\n").unwrap();
        drop(raised);
        assert_eq!(read_limit(&hard), Some(65536));
        assert_eq!(read_limit(&soft), Some(512));
    }
}
