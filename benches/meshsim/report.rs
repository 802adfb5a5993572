//! What a run of the simulation bench found, as a table for people and as
//! JSON for tools.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::ROUND_MS;
use super::fixture::Trust;
use super::metered::Meter;

/// How long a change took to reach every host it should.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Convergence {
    /// Virtual milliseconds until every host had it, to [`super::STEP_MS`];
    /// `None` when the phase ran out of time or was skipped.
    pub millis: Option<u64>,
    /// The virtual milliseconds the phase ran.
    pub ran_millis: u64,
    /// Hosts that had it at the end.
    pub reached: usize,
    /// Hosts that should have it.
    pub hosts: usize,
    /// Not run, as boot did not converge.
    pub skipped: bool,
}

impl Convergence {
    pub(crate) fn reached(millis: u64, hosts: usize) -> Self {
        Self {
            millis: Some(millis),
            ran_millis: millis,
            reached: hosts,
            hosts,
            skipped: false,
        }
    }

    pub(crate) fn timed_out(ran_millis: u64, reached: usize, hosts: usize) -> Self {
        Self {
            millis: None,
            ran_millis,
            reached,
            hosts,
            skipped: false,
        }
    }

    pub(crate) fn skipped() -> Self {
        Self {
            millis: None,
            ran_millis: 0,
            reached: 0,
            hosts: 0,
            skipped: true,
        }
    }

    /// Whether every host got there.
    pub fn converged(&self) -> bool {
        self.millis.is_some()
    }

    /// The gossip rounds the phase ran into: its time over a round,
    /// rounded up, and at least one.
    pub fn rounds(&self) -> u64 {
        self.ran_millis.div_ceil(ROUND_MS).max(1)
    }

    fn cell(&self) -> String {
        match self.millis {
            _ if self.skipped => "skipped".into(),
            Some(ms) => format!("{:.2} s, {} r", ms as f64 / 1000.0, self.rounds()),
            None => format!(
                "no: {}/{} in {:.0} s",
                self.reached,
                self.hosts,
                self.ran_millis as f64 / 1000.0
            ),
        }
    }

    fn to_json(self) -> Value {
        json!({
            "converged": self.converged(),
            "skipped": self.skipped,
            "virtual_seconds": self.millis.map(|ms| ms as f64 / 1000.0),
            "rounds": (!self.skipped).then(|| self.rounds()),
            "ran_virtual_seconds": self.ran_millis as f64 / 1000.0,
            "hosts_reached": self.reached,
            "hosts": self.hosts,
        })
    }
}

/// The mean and the largest value over hosts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// The mean.
    pub mean: f64,
    /// The largest.
    pub max: f64,
}

impl Stat {
    pub(crate) fn of(values: &[f64]) -> Self {
        let max = values.iter().copied().fold(0.0, f64::max);
        let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
        Self { mean, max }
    }

    fn to_json(self) -> Value {
        json!({ "mean": self.mean, "max": self.max })
    }
}

/// What each host sent and spent per round of a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerRound {
    /// The rounds the figures are divided by.
    pub rounds: u64,
    /// Gossip messages sent.
    pub messages: Stat,
    /// Bytes of gossip sent.
    pub bytes: Stat,
    /// Processor time in the member's calls, milliseconds, the checks
    /// the memo answered for it charged at their cost.
    pub cpu_ms: Stat,
    /// Signature checks of objects asked for.
    pub checks: Stat,
}

impl PerRound {
    pub(crate) fn of(deltas: &[Meter], rounds: u64) -> Self {
        let per = |f: fn(&Meter) -> f64| -> Stat {
            let values: Vec<f64> = deltas.iter().map(|m| f(m) / rounds as f64).collect();
            Stat::of(&values)
        };
        Self {
            rounds,
            messages: per(|m| m.messages as f64),
            bytes: per(|m| m.bytes as f64),
            cpu_ms: per(|m| millis(m.cpu)),
            checks: per(|m| m.checks as f64),
        }
    }

    fn to_json(self) -> Value {
        json!({
            "rounds": self.rounds,
            "messages": self.messages.to_json(),
            "bytes": self.bytes.to_json(),
            "cpu_ms": self.cpu_ms.to_json(),
            "checks": self.checks.to_json(),
        })
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Everything one run measured. Per-host figures are over every host
/// (producers too), per round of [`ROUND_MS`].
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Hosts at boot.
    pub hosts: usize,
    /// Operators.
    pub operators: usize,
    /// How they trust each other.
    pub trust: Trust,
    /// The network's seed.
    pub seed: u64,
    /// Loss, per mille.
    pub loss_per_mille: u16,
    /// One-way delay, milliseconds.
    pub delay_ms: u64,
    /// Jitter either side of the delay, milliseconds.
    pub jitter_ms: u64,
    /// The fewest operators a host admitted once boot was over (its own
    /// counted).
    pub admitted_min: usize,
    /// The most.
    pub admitted_max: usize,
    /// From boot until every host has every peer it should.
    pub boot: Convergence,
    /// A new sentry's card, until every host that should peer with it does.
    pub new_card: Convergence,
    /// Two revocations, until no host has either host as a peer.
    pub revocation: Convergence,
    /// Per host per round from boot until the stores were quiet (or boot's
    /// timeout).
    pub converging: PerRound,
    /// Rounds run after boot converged until a round changed no store (at
    /// most [`super::SETTLE_ROUNDS`]); `None` when boot did not converge.
    pub settle_rounds: Option<u64>,
    /// Per host per round in the steady state; `None` when boot did not
    /// converge.
    pub steady: Option<PerRound>,
    /// Each host's largest store, in objects.
    pub store_objects: Stat,
    /// Each host's largest `Store::encode`, in bytes (sampled after each
    /// phase).
    pub store_bytes: Stat,
    /// Hidden hosts' objects in messages to, or stores of, other
    /// operators' hosts (and messages the check could not read).
    pub violations: u64,
    /// Messages the net dropped: lost, over a budget, or to a host that
    /// does not (yet) accept the sender.
    pub dropped: u64,
    /// Of those, messages members dropped over their sender's budget.
    pub over_budget: u64,
    /// Objects members refused for want of room (quotas and caps).
    pub over_quota: u64,
    /// Virtual seconds the whole run took.
    pub virtual_secs: u64,
    /// Wall seconds the whole run took.
    pub wall_secs: f64,
    /// Processor seconds the whole run took, on all the process's threads
    /// (setup, members, net and checks; and whatever else the process ran
    /// meanwhile, as other tests).
    pub cpu_secs: f64,
    /// Of those, the seconds charged to the members: their calls', and
    /// the checks the memo answered for them at their cost (so it can
    /// exceed [`Report::cpu_secs`]).
    pub member_cpu_secs: f64,
    /// Whether a distinct object's signatures were checked once for the
    /// whole net.
    pub memo: bool,
    /// Signature checks of objects the hosts asked for.
    pub checks_asked: u64,
    /// Of those, checks made on the processor: all without the memo, each
    /// distinct object once with it.
    pub checks_made: u64,
}

impl Report {
    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "hosts": self.hosts,
            "operators": self.operators,
            "trust": self.trust.name(),
            "seed": self.seed,
            "loss_per_mille": self.loss_per_mille,
            "delay_ms": self.delay_ms,
            "jitter_ms": self.jitter_ms,
            "round_ms": ROUND_MS,
            "admitted_operators": { "min": self.admitted_min, "max": self.admitted_max },
            "boot": self.boot.to_json(),
            "new_card": self.new_card.to_json(),
            "revocation": self.revocation.to_json(),
            "per_host_per_round": {
                "converging": self.converging.to_json(),
                "steady": self.steady.map(PerRound::to_json),
            },
            "settle_rounds": self.settle_rounds,
            "peak_store": {
                "objects": self.store_objects.to_json(),
                "bytes": self.store_bytes.to_json(),
            },
            "hidden_filter_violations": self.violations,
            "dropped_messages": self.dropped,
            "over_budget_messages": self.over_budget,
            "over_quota_objects": self.over_quota,
            "virtual_seconds": self.virtual_secs,
            "wall_seconds": self.wall_secs,
            "cpu_seconds": self.cpu_secs,
            "member_cpu_seconds": self.member_cpu_secs,
            "memo": self.memo,
            "checks_asked": self.checks_asked,
            "checks_made": self.checks_made,
        })
    }
}

/// All reports as one JSON array.
pub fn json(reports: &[Report]) -> Value {
    Value::Array(reports.iter().map(Report::to_json).collect())
}

/// The reports as three Markdown tables: convergence, traffic, store.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::new();
    out.push_str(
        "| hosts | trust | admitted (of ops) | boot | new card | revocation | violations | \
         wall | CPU (in members) |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let _ = writeln!(
            out,
            "| {} | {} | {}–{} of {} | {} | {} | {} | {} | {:.0} s | {:.0} s ({:.0} s) |",
            r.hosts,
            r.trust.name(),
            r.admitted_min,
            r.admitted_max,
            r.operators,
            r.boot.cell(),
            r.new_card.cell(),
            r.revocation.cell(),
            r.violations,
            r.wall_secs,
            r.cpu_secs,
            r.member_cpu_secs
        );
    }
    out.push_str(
        "\nper host per round, mean / max over hosts\n\n| hosts | trust | phase | messages | \
         bytes | CPU ms | checks |\n|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let phases = [
            ("steady", r.steady),
            ("boot until quiet", Some(r.converging)),
        ];
        for (phase, p) in phases {
            let Some(p) = p else {
                let _ = writeln!(
                    out,
                    "| {} | {} | {phase} | — | — | — | — |",
                    r.hosts,
                    r.trust.name()
                );
                continue;
            };
            let _ = writeln!(
                out,
                "| {} | {} | {phase} ({} r) | {:.0} / {:.0} | {} / {} | {:.2} / {:.2} | {:.0} / \
                 {:.0} |",
                r.hosts,
                r.trust.name(),
                p.rounds,
                p.messages.mean,
                p.messages.max,
                bytes(p.bytes.mean),
                bytes(p.bytes.max),
                p.cpu_ms.mean,
                p.cpu_ms.max,
                p.checks.mean,
                p.checks.max
            );
        }
    }
    out.push_str(
        "\n| hosts | trust | peak store objects (mean / max) | peak store bytes (mean / max) | \
         dropped | over budget | over quota | checks asked (made) |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} / {:.0} | {} / {} | {} | {} | {} | {} ({}{}) |",
            r.hosts,
            r.trust.name(),
            r.store_objects.mean,
            r.store_objects.max,
            bytes(r.store_bytes.mean),
            bytes(r.store_bytes.max),
            r.dropped,
            r.over_budget,
            r.over_quota,
            r.checks_asked,
            r.checks_made,
            if r.memo { ", memo" } else { "" }
        );
    }
    out
}

/// Bytes in B, kB or MB (powers of 1000, as the issue's table).
fn bytes(b: f64) -> String {
    if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}
