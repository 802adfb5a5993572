//! What a testnet killed outright (SIGKILL, a crash) leaves behind, and its
//! removal by the next testnet: the namespaces, with their daemons still
//! running in them; the daemons' UAPI sockets; and the testnet's directory,
//! which holds the hosts' secret keys.
//!
//! Every name a testnet makes carries its process id (see [`crate::plan`]):
//! namespaces `smtn-<pid>-…`, interfaces (so UAPI sockets) `tn<pid in
//! hex>-…`, the directory `sentrymesh-testnet-<pid>-…`. What belongs to a
//! process that no longer runs is left over. A live process is never
//! touched, whoever it is, so two testnets can run side by side.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sentrymesh::control::socket::SOCKET_DIR;
use sentrymesh_netns::is_running;
use sentrymesh_netns::namespace::NETNS_DIR;

use crate::plan::{INTERFACE_PREFIX, NAMESPACE_PREFIX, WORKDIR_PREFIX};
use crate::topology::Topology;

/// What testnets no longer running left behind.
#[derive(Debug, Default, PartialEq, Eq)]
struct Leftovers {
    /// The process ids of the testnets that left them.
    owners: BTreeSet<u32>,
    namespaces: Vec<String>,
    sockets: Vec<PathBuf>,
    workdirs: Vec<PathBuf>,
}

impl Leftovers {
    /// Sorts out, from the entries of the namespace, socket and temporary
    /// directories, those made by a testnet whose process is not running.
    fn among(
        namespaces: impl IntoIterator<Item = String>,
        sockets: impl IntoIterator<Item = PathBuf>,
        workdirs: impl IntoIterator<Item = PathBuf>,
        is_running: impl Fn(u32) -> bool,
    ) -> Self {
        let mut found = Self::default();
        let mut left_by = |pid: Option<u32>| match pid {
            Some(pid) if !is_running(pid) => {
                found.owners.insert(pid);
                true
            }
            _ => false,
        };
        let namespaces: Vec<String> = namespaces
            .into_iter()
            .filter(|name| left_by(owner(name, NAMESPACE_PREFIX, 10)))
            .collect();
        let sockets: Vec<PathBuf> = sockets
            .into_iter()
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "sock")
                    && left_by(file_name(path).and_then(|name| owner(name, INTERFACE_PREFIX, 16)))
            })
            .collect();
        let workdirs: Vec<PathBuf> = workdirs
            .into_iter()
            .filter(|path| {
                left_by(file_name(path).and_then(|name| owner(name, WORKDIR_PREFIX, 10)))
            })
            .collect();
        Self {
            namespaces,
            sockets,
            workdirs,
            ..found
        }
    }

    fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Stops the processes in the namespaces and deletes them, then removes
    /// the sockets and directories; what cannot be removed is reported.
    fn remove(self) {
        drop(Topology::adopt(&self.namespaces));
        for socket in &self.sockets {
            match std::fs::remove_file(socket) {
                Ok(()) => {}
                // Its daemon removed it on SIGTERM.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => tracing::warn!("removing {}: {error}", socket.display()),
            }
        }
        for workdir in &self.workdirs {
            if let Err(error) = std::fs::remove_dir_all(workdir) {
                tracing::warn!("removing {}: {error}", workdir.display());
            }
        }
    }
}

/// Removes what testnets no longer running left behind, saying so in the
/// log; returns the process ids of those testnets.
pub(super) fn sweep() -> BTreeSet<u32> {
    let found = Leftovers::among(
        entries(Path::new(NETNS_DIR))
            .iter()
            .filter_map(|path| file_name(path).map(str::to_owned)),
        entries(Path::new(SOCKET_DIR)),
        entries(&std::env::temp_dir()),
        is_running,
    );
    if found.is_empty() {
        return BTreeSet::new();
    }
    let owners = found.owners.clone();
    tracing::warn!(
        "removing what testnets no longer running (pids {}) left behind: {} namespaces, \
         {} UAPI sockets, {} directories",
        owners
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        found.namespaces.len(),
        found.sockets.len(),
        found.workdirs.len(),
    );
    found.remove();
    owners
}

/// The pid in `name`, made as `<prefix><pid in radix>-…`.
fn owner(name: &str, prefix: &str, radix: u32) -> Option<u32> {
    let (pid, _) = name.strip_prefix(prefix)?.split_once('-')?;
    if pid.is_empty() || !pid.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(pid, radix).ok().filter(|&pid| pid > 0)
}

fn file_name(path: &Path) -> Option<&str> {
    path.file_name()?.to_str()
}

/// The entries of `dir`; none when it does not exist.
fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_processes_not_running_are_left_over() {
        // 4660 = 0x1234 ran a testnet and is gone; 77 = 0x4d still runs.
        let running = |pid| pid == 77;
        let found = Leftovers::among(
            [
                "smtn-4660-0-switch",
                "smtn-4660-0-op1-producer",
                "smtn-77-0-switch",
                "sm-native-4660-1",
                "smtn--0-switch",
                "smtn-x1-0-switch",
                "smtn-0-0-switch",
            ]
            .map(str::to_owned),
            [
                "/var/run/wireguard/tn1234-0-0.sock",
                "/var/run/wireguard/tn4d-0-0.sock",
                "/var/run/wireguard/tn1234-0-0.name",
                "/var/run/wireguard/wg0.sock",
            ]
            .map(PathBuf::from),
            [
                "/tmp/sentrymesh-testnet-4660-0-0a1b2c3d",
                "/tmp/sentrymesh-testnet-77-0-0a1b2c3d",
                "/tmp/sentrymesh-interop-4660",
            ]
            .map(PathBuf::from),
            running,
        );
        assert_eq!(
            found,
            Leftovers {
                owners: BTreeSet::from([4660]),
                namespaces: vec![
                    "smtn-4660-0-switch".to_owned(),
                    "smtn-4660-0-op1-producer".to_owned(),
                ],
                sockets: vec![PathBuf::from("/var/run/wireguard/tn1234-0-0.sock")],
                workdirs: vec![PathBuf::from("/tmp/sentrymesh-testnet-4660-0-0a1b2c3d")],
            }
        );
    }

    #[test]
    fn nothing_is_left_over_when_every_owner_runs() {
        let found = Leftovers::among(
            ["smtn-4660-0-switch".to_owned()],
            [PathBuf::from("/var/run/wireguard/tn1234-0-0.sock")],
            [PathBuf::from("/tmp/sentrymesh-testnet-4660-0-0a1b2c3d")],
            |_| true,
        );
        assert!(found.is_empty());
        assert_eq!(found, Leftovers::default());
    }
}
