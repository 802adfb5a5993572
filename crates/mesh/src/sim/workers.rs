//! Running one call on each of many nodes at once, on a few threads: what
//! a [`Net`](super::Net) with workers does with the nodes a step wakes.
//! The nodes share nothing while they run (each call takes only its own
//! node), so the calls may run in any order on any thread; the net reads
//! their results in the order the nodes joined, which keeps a run the same
//! whatever the number of workers.
//!
//! ```text
//!   jobs [(node 3, job), (node 8, job), (node 9, job), ...]   (by index)
//!     ├─ few jobs, or one worker → each on this thread, in order
//!     └─ otherwise → one contiguous share per worker, on scoped threads,
//!                    each with this thread's checker installed
//!   → results, in the order of the jobs
//! ```

use std::thread;

use super::checks;
use super::net::Host;

/// Below this many jobs a step's calls run on the calling thread: starting
/// threads would cost more than they save.
const MIN_JOBS_TO_SHARE: usize = 16;

/// Runs `work` on the node of each job, on up to `workers` threads; returns
/// the results in the order of `jobs`.
///
/// # Panics
///
/// If `jobs` does not name nodes of `hosts` in increasing index order (a
/// bug of the net), or a call panics (its panic is resumed here).
pub(super) fn run<N, J, T>(
    workers: usize,
    hosts: &mut [Host<N>],
    jobs: Vec<(usize, J)>,
    work: impl Fn(&mut N, J) -> T + Sync,
) -> Vec<T>
where
    N: Send,
    J: Send,
    T: Send,
{
    let nodes = nodes_of(hosts, jobs);
    if workers <= 1 || nodes.len() < MIN_JOBS_TO_SHARE {
        return nodes
            .into_iter()
            .map(|(node, job)| work(node, job))
            .collect();
    }
    let share = nodes.len().div_ceil(workers);
    let mut shares: Vec<Vec<(&mut N, J)>> = Vec::with_capacity(workers);
    let mut nodes = nodes.into_iter();
    loop {
        let next: Vec<(&mut N, J)> = nodes.by_ref().take(share).collect();
        if next.is_empty() {
            break;
        }
        shares.push(next);
    }
    let checker = checks::installed();
    let work = &work;
    thread::scope(|scope| {
        let mut shares = shares.into_iter();
        let own = shares.next().unwrap_or_default();
        let others: Vec<_> = shares
            .map(|share| {
                let checker = checker.clone();
                scope.spawn(move || {
                    let _installed = checker.map(checks::install);
                    share
                        .into_iter()
                        .map(|(node, job)| work(node, job))
                        .collect::<Vec<T>>()
                })
            })
            .collect();
        let mut results: Vec<T> = own.into_iter().map(|(node, job)| work(node, job)).collect();
        for other in others {
            match other.join() {
                Ok(share) => results.extend(share),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

/// The node each job names, borrowed apart from the others.
fn nodes_of<N, J>(hosts: &mut [Host<N>], jobs: Vec<(usize, J)>) -> Vec<(&mut N, J)> {
    let mut nodes = Vec::with_capacity(jobs.len());
    let mut rest = hosts;
    let mut offset = 0;
    for (index, job) in jobs {
        let skip = index
            .checked_sub(offset)
            .expect("jobs name nodes in increasing index order");
        let (host, tail) = std::mem::take(&mut rest)[skip..]
            .split_first_mut()
            .expect("every job names a node");
        nodes.push((&mut host.node, job));
        rest = tail;
        offset = index + 1;
    }
    nodes
}

#[cfg(test)]
mod tests {
    use sentrymesh_types::PublicKey;

    use super::*;

    fn hosts(count: u8) -> Vec<Host<Vec<u8>>> {
        (0..count)
            .map(|i| Host {
                key: PublicKey::from_bytes([i; 32]),
                node: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn every_job_runs_on_its_node_and_results_keep_the_jobs_order() {
        for workers in [1, 2, 3] {
            let mut hosts = hosts(100);
            let jobs: Vec<(usize, u8)> = (0..100)
                .filter(|i| i % 3 != 1)
                .map(|i| (i, i as u8))
                .collect();
            let results = run(
                workers,
                &mut hosts,
                jobs.clone(),
                |node: &mut Vec<u8>, job| {
                    node.push(job);
                    u32::from(job) * 2
                },
            );
            let expected: Vec<u32> = jobs.iter().map(|&(_, job)| u32::from(job) * 2).collect();
            assert_eq!(results, expected, "{workers} workers");
            for (i, host) in hosts.iter().enumerate() {
                let ran: &[u8] = if i % 3 == 1 { &[] } else { &[i as u8] };
                assert_eq!(host.node, ran, "{workers} workers, node {i}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "increasing index order")]
    fn jobs_out_of_order_are_a_bug() {
        run(1, &mut hosts(3), vec![(2, ()), (1, ())], |_, ()| ());
    }
}
