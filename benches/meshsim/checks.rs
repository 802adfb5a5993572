//! The signature checks of a run ([`Checks`]): every object a host decodes
//! is checked once for the whole net and the outcome remembered, as
//! identical bytes verify identically on every host, and a host answered
//! from the memo is charged the processor time a check of that kind takes
//! (the mean of the checks of that kind timed so far) — so a run costs
//! each check about once, and each host's CPU is what it would have spent
//! checking every object itself.
//!
//! ```text
//!   host i decodes (kind, bytes)
//!     ├─ first time on the net → check, time it (a sample of the kind), remember the outcome
//!     └─ again (any host)      → the outcome remembered; host i is charged the kind's mean;
//!                                one in RESAMPLE_EVERY is checked again, timed, as a sample
//! ```
//!
//! The first checks of a run come in a burst at boot: sampling through
//! the whole run keeps what the machine did during that burst (another
//! process, the other worker) from setting the cost of every check.
//!
//! Without the memo (`--no-memo`) every check is made where it is asked;
//! the hosts ask for the same checks either way, which a test checks.
//! What a host asked and is charged is counted on the thread that ran it
//! ([`on_this_thread`]), as a net with workers runs hosts on several.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use sentrymesh_mesh::sim::{Check, Checker};
use sentrymesh_mesh::{Object, ObjectKind, ParseObjectError};

use super::metered::thread_cpu;

/// One in this many checks answered from the memo (of each kind) is made
/// again and timed.
const RESAMPLE_EVERY: u64 = 64;

/// What a check gave.
type Outcome = Result<Object, ParseObjectError>;

/// The checks of one kind that were timed.
#[derive(Debug, Clone, Copy, Default)]
struct Samples {
    total: Duration,
    count: u32,
}

impl Samples {
    fn mean(self) -> Duration {
        self.total.checked_div(self.count).unwrap_or_default()
    }
}

/// Counts the checks the hosts ask for and, with the memo, makes each
/// distinct one once (and a sample of the others again).
#[derive(Default)]
pub(crate) struct Checks {
    memo: bool,
    /// What each encoding of each kind (by [`kind_index`]) checked as.
    outcomes: RwLock<[HashMap<Vec<u8>, Outcome>; 3]>,
    /// Each kind's timed checks.
    samples: Mutex<[Samples; 3]>,
    /// Each kind's checks answered from the memo.
    answered: [AtomicU64; 3],
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
    /// the distinct objects and one in [`RESAMPLE_EVERY`] of the others
    /// with it.
    pub(crate) fn made(&self) -> u64 {
        self.made.load(Ordering::Relaxed)
    }

    /// The outcome remembered for `bytes` of the kind at `slot`.
    fn remembered(&self, slot: usize, bytes: &[u8]) -> Option<Outcome> {
        let outcomes = self.outcomes.read().unwrap_or_else(|e| e.into_inner());
        outcomes[slot].get(bytes).cloned()
    }

    /// Makes the check on this thread, timed, adding its time to the
    /// kind's samples.
    fn make(&self, slot: usize, kind: ObjectKind, bytes: &[u8], check: Check) -> Outcome {
        let start = thread_cpu();
        let outcome = check(kind, bytes);
        if let (Some(start), Some(end)) = (start, thread_cpu()) {
            let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
            samples[slot].total += end.saturating_sub(start);
            samples[slot].count += 1;
        }
        self.made.fetch_add(1, Ordering::Relaxed);
        outcome
    }

    /// What a check of the kind at `slot` is charged when the memo answers
    /// it: the mean of those timed.
    fn charge(&self, slot: usize) -> Duration {
        self.samples.lock().unwrap_or_else(|e| e.into_inner())[slot].mean()
    }
}

impl Checker for Checks {
    /// # Panics
    ///
    /// If a check made again gives another outcome than the one
    /// remembered: the memo would be changing what the hosts do.
    fn check(&self, kind: ObjectKind, bytes: &[u8], check: Check) -> Outcome {
        self.asked.fetch_add(1, Ordering::Relaxed);
        let slot = kind_index(kind);
        let remembered = if self.memo {
            self.remembered(slot, bytes)
        } else {
            None
        };
        // A check made here is timed with the host's call already.
        let (outcome, charge) = match remembered {
            None => {
                let outcome = self.make(slot, kind, bytes, check);
                if self.memo {
                    let mut outcomes = self.outcomes.write().unwrap_or_else(|e| e.into_inner());
                    outcomes[slot].insert(bytes.to_vec(), outcome.clone());
                }
                (outcome, Duration::ZERO)
            }
            Some(outcome) => {
                let answered = self.answered[slot].fetch_add(1, Ordering::Relaxed) + 1;
                if answered % RESAMPLE_EVERY == 0 {
                    let again = self.make(slot, kind, bytes, check);
                    assert_eq!(again, outcome, "a {kind} checked twice gave two outcomes");
                    (outcome, Duration::ZERO)
                } else {
                    (outcome, self.charge(slot))
                }
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
        outcome
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
