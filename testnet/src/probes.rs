//! The ping matrix: from each host's namespace, `ping` to every other
//! host's overlay address, several at a time.
//!
//! A ping the roles require gets three tries of one echo request each
//! (waiting a second for each reply); one they forbid gets one try. Most
//! forbidden ones fail at once: the host has no route to the address. A stop
//! request (Ctrl-C) ends the matrix early, with the pings done so far.

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use sentrymesh_netns::{interrupt, run};

use crate::plan::PlannedHost;
use crate::report::Ping;

/// How many pings run at once.
const PARALLEL: usize = 16;
/// Tries of a ping the roles require.
const TRIES: usize = 3;

/// Pings between every two hosts; `expected(from, to)` says which the
/// roles require to reply. In row order: by source, then destination.
pub(super) fn ping_matrix(
    hosts: &[PlannedHost],
    expected: impl Fn(usize, usize) -> bool + Sync,
) -> Vec<Ping> {
    let jobs: Vec<(usize, usize)> = (0..hosts.len())
        .flat_map(|from| (0..hosts.len()).map(move |to| (from, to)))
        .filter(|(from, to)| from != to)
        .collect();
    let next = Mutex::new(0usize);
    let results = Mutex::new(Vec::with_capacity(jobs.len()));
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL.min(jobs.len()) {
            scope.spawn(|| {
                while !interrupt::requested() {
                    let job = {
                        let Ok(mut next) = next.lock() else { return };
                        let Some(&job) = jobs.get(*next) else { return };
                        *next += 1;
                        job
                    };
                    let (from, to) = job;
                    let expected = expected(from, to);
                    let tries = if expected { TRIES } else { 1 };
                    let replied = (0..tries).any(|_| ping(&hosts[from], &hosts[to]));
                    let ping = Ping {
                        from: hosts[from].name.clone(),
                        to: hosts[to].name.clone(),
                        expected,
                        replied,
                    };
                    if let Ok(mut results) = results.lock() {
                        results.push((job, ping));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(job, _)| *job);
    results.into_iter().map(|(_, ping)| ping).collect()
}

/// Whether one echo request from `from`'s namespace to `to`'s overlay
/// address got a reply within a second.
fn ping(from: &PlannedHost, to: &PlannedHost) -> bool {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &from.namespace, "ping", "-n", "-q"])
        .args(["-c", "1", "-W", "1"])
        .arg(to.overlay.to_string());
    run(&mut command, b"", Duration::from_secs(5)).is_ok_and(|finished| finished.success())
}
