//! The signature checks of a run ([`Checks`]): every object a host decodes
//! is checked once for the whole net and the outcome remembered, as
//! identical bytes verify identically on every host, and the host that
//! asks is charged the processor time the first check took — so a run
//! costs each check once, and each host's CPU is what it would have spent
//! checking every object itself.
//!
//! ```text
//!   host i decodes (kind, bytes)
//!     ├─ first time on the net → check, time it, remember outcome and time
//!     └─ again (any host)      → the outcome remembered; host i is charged the time
//! ```
//!
//! Without the memo (`--no-memo`) every check is made where it is asked;
//! the hosts ask for the same checks either way, which a test checks.
//! What a host asked and is charged is counted on the thread that ran it
//! ([`on_this_thread`]), as a net with workers runs hosts on several.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sentrymesh_mesh::sim::{Check, Checker};
use sentrymesh_mesh::{Object, ObjectKind, ParseObjectError};

use super::metered::thread_cpu;

/// A check made once, and what it gave and cost.
struct Outcome {
    result: Result<Object, ParseObjectError>,
    cpu: Duration,
}

/// Counts the checks the hosts ask for and, with the memo, makes each
/// distinct one once.
#[derive(Default)]
pub(crate) struct Checks {
    memo: bool,
    /// What each encoding of each kind (by [`kind_index`]) checked as.
    outcomes: RwLock<[HashMap<Vec<u8>, Outcome>; 3]>,
    /// Checks asked for by the hosts.
    asked: AtomicU64,
    /// Checks made, on the processor.
    made: AtomicU64,
}

/// What the checks asked on one thread since [`on_this_thread`] last
/// took it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Asked {
    /// Checks asked for.
    pub(crate) checks: u64,
    /// Processor time of those answered from the memo: what the host that
    /// asked is charged on top of the time its call took.
    pub(crate) charge: Duration,
}

thread_local! {
    static ASKED: Cell<Asked> = const {
        Cell::new(Asked {
            checks: 0,
            charge: Duration::ZERO,
        })
    };
}

/// What was asked on this thread since the last call.
pub(crate) fn on_this_thread() -> Asked {
    ASKED.with(Cell::take)
}

impl Checks {
    /// Checks that remember outcomes when `memo`, and otherwise are made
    /// each time they are asked.
    pub(crate) fn new(memo: bool) -> Self {
        Self {
            memo,
            ..Self::default()
        }
    }

    /// Checks the hosts asked for.
    pub(crate) fn asked(&self) -> u64 {
        self.asked.load(Ordering::Relaxed)
    }

    /// Checks made on the processor: [`Checks::asked`] without the memo,
    /// the distinct objects with it.
    pub(crate) fn made(&self) -> u64 {
        self.made.load(Ordering::Relaxed)
    }

    /// The outcome remembered for `bytes` of `kind`, and its cost.
    fn remembered(
        &self,
        slot: usize,
        bytes: &[u8],
    ) -> Option<(Result<Object, ParseObjectError>, Duration)> {
        let outcomes = self.outcomes.read().unwrap_or_else(|e| e.into_inner());
        let outcome = outcomes[slot].get(bytes)?;
        Some((outcome.result.clone(), outcome.cpu))
    }
}

impl Checker for Checks {
    fn check(
        &self,
        kind: ObjectKind,
        bytes: &[u8],
        check: Check,
    ) -> Result<Object, ParseObjectError> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        let slot = kind_index(kind);
        let remembered = if self.memo {
            self.remembered(slot, bytes)
        } else {
            None
        };
        let (result, charge) = match remembered {
            Some((result, cpu)) => (result, cpu),
            None => {
                let start = thread_cpu();
                let result = check(kind, bytes);
                let cpu = match (start, thread_cpu()) {
                    (Some(start), Some(end)) => end.saturating_sub(start),
                    _ => Duration::ZERO,
                };
                self.made.fetch_add(1, Ordering::Relaxed);
                if self.memo {
                    let outcome = Outcome {
                        result: result.clone(),
                        cpu,
                    };
                    let mut outcomes = self.outcomes.write().unwrap_or_else(|e| e.into_inner());
                    outcomes[slot].entry(bytes.to_vec()).or_insert(outcome);
                }
                // Made in the host's call: timed with it already.
                (result, Duration::ZERO)
            }
        };
        ASKED.with(|asked| {
            let Asked {
                checks,
                charge: total,
            } = asked.get();
            asked.set(Asked {
                checks: checks + 1,
                charge: total + charge,
            });
        });
        result
    }
}

impl std::fmt::Debug for Checks {
    /// The counts, not the outcomes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checks")
            .field("memo", &self.memo)
            .field("asked", &self.asked())
            .field("made", &self.made())
            .finish_non_exhaustive()
    }
}

/// Where `kind`'s outcomes are kept in [`Checks`].
fn kind_index(kind: ObjectKind) -> usize {
    match kind {
        ObjectKind::Card => 0,
        ObjectKind::Vouch => 1,
        ObjectKind::Revocation => 2,
    }
}
