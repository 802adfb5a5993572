//! Each simulated host as the bench sees it: the [`Member`] wrapped in a
//! [`Metered`] node that counts what it sends, the processor time it
//! takes (with the signature checks the run's
//! [`Checks`](super::checks::Checks) answered for it charged at their
//! cost), the checks it asks for, its largest store, and
//! every message it sends to another operator's host that carries a hidden
//! host's object.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sentrymesh_mesh::sim::{Arrival, Member, Node};
use sentrymesh_mesh::{GossipError, GossipMessage, ObjectId};
use sentrymesh_types::{PublicKey, UnixTime};

use super::checks;

/// What one host did, counted from its start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meter {
    /// Gossip messages it sent.
    pub(crate) messages: u64,
    /// Their bytes.
    pub(crate) bytes: u64,
    /// The processor time of this thread spent in the member's calls, and
    /// that of the checks answered for it from the memo.
    pub(crate) cpu: Duration,
    /// Signature checks of objects it asked for.
    pub(crate) checks: u64,
    /// The most objects its store held after any input.
    pub(crate) peak_objects: usize,
    /// Messages it sent to another operator's host that named a hidden
    /// host's object, or that the check could not read.
    pub(crate) violations: u64,
}

impl Meter {
    /// What was counted since `earlier`; the peak is this meter's.
    pub(crate) fn since(&self, earlier: &Meter) -> Meter {
        Meter {
            messages: self.messages - earlier.messages,
            bytes: self.bytes - earlier.bytes,
            cpu: self.cpu.saturating_sub(earlier.cpu),
            checks: self.checks - earlier.checks,
            peak_objects: self.peak_objects,
            violations: self.violations - earlier.violations,
        }
    }
}

/// What the hidden-filter check knows: every host's operator, and the id
/// of every object that names a hidden host (its cards, its revocations)
/// with that host's operator — the only operator whose hosts may see it.
#[derive(Debug, Default)]
pub(crate) struct Census {
    operator_of: HashMap<PublicKey, u8>,
    hidden: HashMap<ObjectId, u8>,
}

impl Census {
    /// Notes that the host with `key` is operator `op`'s.
    pub(crate) fn add_host(&mut self, key: PublicKey, op: u8) {
        self.operator_of.insert(key, op);
    }

    /// Notes that the object `id` names a hidden host of operator `op`.
    pub(crate) fn add_hidden(&mut self, id: ObjectId, op: u8) {
        self.hidden.insert(id, op);
    }

    /// The hidden objects, with their operators.
    pub(crate) fn hidden(&self) -> impl Iterator<Item = (&ObjectId, &u8)> {
        self.hidden.iter()
    }

    /// How many of the ids in a message from a host of `from` to the host
    /// `to` are hidden objects of an operator that is not `to`'s; a message
    /// that does not decode counts as one. Objects are read unverified
    /// (their ids only), so checking costs no signature.
    fn violations_in(&self, from: u8, to: &PublicKey, bytes: &[u8]) -> u64 {
        let recipient = self.operator_of.get(to).copied();
        if recipient == Some(from) {
            return 0;
        }
        let Ok((message, skipped)) = GossipMessage::decode_admitting(bytes, |_| false) else {
            return 1;
        };
        let listed: Vec<ObjectId>;
        let ids = match &message {
            GossipMessage::Digest { ids } | GossipMessage::Want { ids } => &ids[..],
            GossipMessage::Objects { .. } => &skipped[..],
            GossipMessage::Ranges { ranges, .. } => {
                listed = ranges.iter().flat_map(|r| r.ids.iter().copied()).collect();
                &listed[..]
            }
            // Hashes only: no id, key or address.
            GossipMessage::Summary { .. }
            | GossipMessage::Buckets { .. }
            | GossipMessage::Statements { .. } => &[][..],
        };
        let named = ids
            .iter()
            .filter(|id| self.hidden.get(id).is_some_and(|&op| Some(op) != recipient))
            .count();
        // Every object was skipped, unverified: none is left in the message.
        let unread = match message {
            GossipMessage::Objects { objects } => objects.len(),
            _ => 0,
        };
        (named + unread) as u64
    }
}

/// A [`Member`] with its [`Meter`].
#[derive(Debug)]
pub(crate) struct Metered {
    pub(crate) member: Member,
    pub(crate) meter: Meter,
    census: Arc<Census>,
}

impl Metered {
    pub(crate) fn new(member: Member, census: Arc<Census>) -> Self {
        Self {
            member,
            meter: Meter::default(),
            census,
        }
    }

    /// Runs `call` on the member, charging its processor time and that of
    /// the checks the memo answered during it, and counting the checks it
    /// asked for.
    fn timed<T>(&mut self, call: impl FnOnce(&mut Member) -> T) -> T {
        // Only members' calls ask for checks: nothing is left to take.
        checks::on_this_thread();
        let start = thread_cpu();
        let result = call(&mut self.member);
        if let (Some(start), Some(end)) = (start, thread_cpu()) {
            self.meter.cpu += end.saturating_sub(start);
        }
        let asked = checks::on_this_thread();
        self.meter.cpu += asked.charge;
        self.meter.checks += asked.checks;
        result
    }
}

impl Node for Metered {
    fn handle_message(
        &mut self,
        from: PublicKey,
        bytes: &[u8],
        now: UnixTime,
    ) -> Result<(), GossipError> {
        let result = self.timed(|m| m.handle_message(from, bytes, now));
        let objects = self.member.mesh.store().len();
        self.meter.peak_objects = self.meter.peak_objects.max(objects);
        result
    }

    fn poll_transmit(&mut self) -> Option<(PublicKey, Vec<u8>)> {
        let (to, bytes) = self.timed(Member::poll_transmit)?;
        self.meter.messages += 1;
        self.meter.bytes += bytes.len() as u64;
        self.meter.violations += self.census.violations_in(self.member.op, &to, &bytes);
        Some((to, bytes))
    }

    fn poll_timeout(&self) -> Option<UnixTime> {
        self.member.poll_timeout()
    }

    fn handle_timeout(&mut self, now: UnixTime) {
        self.timed(|m| m.handle_timeout(now));
    }

    fn accepts(&self, from: &PublicKey) -> bool {
        self.member.accepts(from)
    }

    fn settle(&mut self) {
        self.timed(Member::settle);
    }

    /// The batch timed once (a read of the thread's clock costs about as
    /// much as a small message), the tunnel's check of each sender with it.
    fn handle_messages(&mut self, messages: &[(PublicKey, &[u8])], now: UnixTime) -> Vec<Arrival> {
        let mut peak = self.meter.peak_objects;
        let arrivals = self.timed(|member| {
            let mut arrivals = Vec::with_capacity(messages.len());
            for &(from, bytes) in messages {
                arrivals.push(if member.accepts(&from) {
                    Arrival::Handled(member.handle_message(from, bytes, now))
                } else {
                    Arrival::Refused
                });
                peak = peak.max(member.mesh.store().len());
            }
            arrivals
        });
        self.meter.peak_objects = peak;
        arrivals
    }

    /// The member's output timed once, then counted and read for hidden
    /// objects.
    fn poll_output(&mut self, out: &mut Vec<(PublicKey, Vec<u8>)>) {
        let first = out.len();
        self.timed(|member| member.poll_output(out));
        for (to, bytes) in &out[first..] {
            self.meter.messages += 1;
            self.meter.bytes += bytes.len() as u64;
            self.meter.violations += self.census.violations_in(self.member.op, to, bytes);
        }
    }
}

/// The processor time this thread has used: what the members cost, without
/// the time other processes on the machine took from it. `None` if the
/// clock cannot be read (Linux always has it): nothing is charged then.
pub(crate) fn thread_cpu() -> Option<Duration> {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The processor time this process has used, on all its threads.
pub(crate) fn process_cpu() -> Option<Duration> {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a pointer to a
    // live, writable local; it reads nothing else.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}
