//! The peers' next deadlines in a min-heap, so finding the earliest costs
//! O(1) and running the due ones touches only them, however many peers
//! there are or ever were.
//!
//! Entries are never searched for and removed: when a peer's deadline
//! changes, a new entry is pushed and the old one goes *stale*. An entry is
//! current only while its peer exists and its deadline is the one the
//! engine last scheduled for that peer (the engine decides, through the
//! `is_current` check it passes in). Stale entries are dropped when they
//! reach the top, and the heap is rebuilt from the peers when stale ones
//! outnumber the peers, so it holds at most a few entries per peer.
//!
//! ```text
//!   push(at, id) ──► [ (t1, p3) (t2, p0) (t2', p3: stale) ... ]
//!                        top: always current once pruned ──► peek()
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::engine::PeerId;

/// Stale entries tolerated beyond the live peers before a rebuild (so a
/// handful of peers does not rebuild on every change).
const SLACK: usize = 64;

/// A deadline of a peer.
pub(crate) type Entry = (Instant, PeerId);

/// Deadlines of peers, earliest first.
#[derive(Debug, Default)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl TimerQueue {
    /// Adds a deadline of `id`.
    pub(crate) fn push(&mut self, at: Instant, id: PeerId) {
        self.heap.push(Reverse((at, id)));
    }

    /// The earliest entry. After [`TimerQueue::prune`] it is current.
    pub(crate) fn peek(&self) -> Option<Entry> {
        self.heap.peek().map(|&Reverse(entry)| entry)
    }

    /// Gives back the room of the entries dropped.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.heap.shrink_to_fit();
    }

    /// Takes the earliest entry if it is due at `now`, current or not.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        match self.heap.peek() {
            Some(&Reverse((at, _))) if at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }

    /// Drops stale entries from the top, so the earliest entry is current;
    /// rebuilds the heap from `current` (every current entry, each once)
    /// when it holds more than twice `live` stale entries.
    pub(crate) fn prune<I>(
        &mut self,
        live: usize,
        is_current: impl Fn(Entry) -> bool,
        current: impl FnOnce() -> I,
    ) where
        I: Iterator<Item = Entry>,
    {
        if self.heap.len() > 3 * live + SLACK {
            self.heap.clear();
            self.heap.extend(current().map(Reverse));
            return;
        }
        while let Some(&Reverse(entry)) = self.heap.peek() {
            if is_current(entry) {
                break;
            }
            self.heap.pop();
        }
    }

    /// How many entries the heap holds, current and stale.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(slot: u32) -> PeerId {
        PeerId {
            slot,
            generation: 0,
        }
    }

    #[test]
    fn stale_entries_never_show_at_the_top() {
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut queue = TimerQueue::default();
        // Peer 0's deadline moved from 1 s to 5 s; peer 1's is 3 s.
        let scheduled = [at(5), at(3)];
        queue.push(at(1), id(0));
        queue.push(at(3), id(1));
        queue.push(at(5), id(0));
        let is_current = |(at, id): Entry| scheduled[id.slot as usize] == at;
        let current = || [(at(5), id(0)), (at(3), id(1))].into_iter();
        queue.prune(2, is_current, current);
        assert_eq!(queue.peek(), Some((at(3), id(1))));
        assert_eq!(queue.pop_due(at(2)), None, "not due yet");
        assert_eq!(queue.pop_due(at(4)), Some((at(3), id(1))));
        assert_eq!(queue.pop_due(at(4)), None);
        assert_eq!(queue.peek(), Some((at(5), id(0))));
    }

    #[test]
    fn many_stale_entries_are_rebuilt_away() {
        let start = Instant::now();
        let mut queue = TimerQueue::default();
        // One peer whose deadline moved a thousand times.
        for ms in 0..1000 {
            queue.push(start + Duration::from_millis(ms), id(0));
        }
        let last = start + Duration::from_millis(999);
        queue.prune(1, |(at, _)| at == last, || [(last, id(0))].into_iter());
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.peek(), Some((last, id(0))));
    }
}
