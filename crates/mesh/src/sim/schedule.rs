//! What a [`Net`](super::Net) does next: the messages in flight, the
//! nodes' armed timers, and the nodes with work to drain — each kept so
//! that finding the next thing costs a map lookup, a heap pop or a bit
//! scan, not a pass over every node, in a net of a thousand.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// A message on its way, until its arrival time.
#[derive(Debug)]
pub(super) struct InFlight {
    /// The index of the sender.
    pub(super) from: usize,
    /// The index of the recipient.
    pub(super) to: usize,
    /// The message.
    pub(super) bytes: Vec<u8>,
}

/// The messages in flight, by arrival time (milliseconds), those arriving
/// at one time in the order they were sent.
#[derive(Debug, Default)]
pub(super) struct Queue {
    by_arrival: BTreeMap<u64, Vec<InFlight>>,
    len: usize,
}

impl Queue {
    /// Queues `bytes` from `from` to `to`, arriving at `at` (milliseconds).
    pub(super) fn push(&mut self, at: u64, from: usize, to: usize, bytes: Vec<u8>) {
        self.len += 1;
        self.by_arrival
            .entry(at)
            .or_default()
            .push(InFlight { from, to, bytes });
    }

    /// When the next message arrives.
    pub(super) fn next_arrival(&self) -> Option<u64> {
        self.by_arrival.keys().next().copied()
    }

    /// Every message that has arrived by `now` (milliseconds), by arrival
    /// time and then in the order they were sent.
    pub(super) fn take_due(&mut self, now: u64) -> Vec<InFlight> {
        let mut due = Vec::new();
        while let Some(arrivals) = self.by_arrival.first_entry() {
            if *arrivals.key() > now {
                break;
            }
            due.extend(arrivals.remove());
        }
        self.len -= due.len();
        due
    }

    /// How many messages are on their way.
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

/// Every node's armed timer: the time its `poll_timeout` last said, and a
/// heap of them in which an entry no longer armed is skipped when it
/// surfaces.
#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    armed: Vec<Option<u64>>,
}

impl Timers {
    /// Makes room for node `index`, with no timer armed.
    pub(super) fn add_node(&mut self, index: usize) {
        if self.armed.len() <= index {
            self.armed.resize(index + 1, None);
        }
    }

    /// Arms node `index`'s timer at `at` (milliseconds), or disarms it.
    pub(super) fn arm(&mut self, index: usize, at: Option<u64>) {
        if self.armed[index] == at {
            return;
        }
        self.armed[index] = at;
        if let Some(at) = at {
            self.heap.push(Reverse((at, index)));
        }
    }

    /// The earliest armed timer.
    pub(super) fn next(&mut self) -> Option<u64> {
        self.skip_stale();
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The next node whose timer is due by `now`, disarmed.
    pub(super) fn pop_due(&mut self, now: u64) -> Option<usize> {
        self.skip_stale();
        let &Reverse((at, index)) = self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.armed[index] = None;
        Some(index)
    }

    fn skip_stale(&mut self) {
        while let Some(&Reverse((at, index))) = self.heap.peek() {
            if self.armed[index] == Some(at) {
                return;
            }
            self.heap.pop();
        }
    }
}

/// The nodes that may have output to drain or events to settle: those
/// that took a message or ran a timer since they were last drained.
#[derive(Debug, Default)]
pub(super) struct Pending {
    words: Vec<u64>,
    count: usize,
}

impl Pending {
    /// Marks node `index`.
    pub(super) fn mark(&mut self, index: usize) {
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        if self.words[word] & bit == 0 {
            self.words[word] |= bit;
            self.count += 1;
        }
    }

    /// Marks nodes `0..len`.
    pub(super) fn mark_all(&mut self, len: usize) {
        (0..len).for_each(|index| self.mark(index));
    }

    /// Unmarks and returns every marked node, in index order.
    pub(super) fn take_all(&mut self) -> Vec<usize> {
        let mut nodes = Vec::with_capacity(self.count);
        while let Some(index) = self.take_from(nodes.last().map_or(0, |last| last + 1)) {
            nodes.push(index);
        }
        nodes
    }

    /// Unmarks and returns the first marked node at `from` or after.
    pub(super) fn take_from(&mut self, from: usize) -> Option<usize> {
        let mut word = from / 64;
        let mut mask = u64::MAX.checked_shl((from % 64) as u32).unwrap_or(0);
        while let Some(&bits) = self.words.get(word) {
            let bits = bits & mask;
            if bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                self.words[word] &= !(1u64 << bit);
                self.count -= 1;
                return Some(word * 64 + bit);
            }
            word += 1;
            mask = u64::MAX;
        }
        None
    }

    /// Whether no node is marked.
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_gives_what_is_due_by_arrival_then_by_sending_order() {
        let mut queue = Queue::default();
        queue.push(50, 0, 1, vec![1]);
        queue.push(20, 0, 1, vec![2]);
        queue.push(50, 0, 1, vec![3]);
        queue.push(70, 0, 1, vec![4]);
        assert_eq!(queue.next_arrival(), Some(20));
        assert!(queue.take_due(19).is_empty());
        let order: Vec<u8> = queue.take_due(50).iter().map(|m| m.bytes[0]).collect();
        assert_eq!(order, [2, 1, 3]);
        assert_eq!((queue.len(), queue.next_arrival()), (1, Some(70)));
        assert_eq!(queue.take_due(70).len(), 1);
        assert_eq!((queue.len(), queue.next_arrival()), (0, None));
    }

    #[test]
    fn a_rearmed_timer_fires_once_at_its_new_time() {
        let mut timers = Timers::default();
        (0..3).for_each(|i| timers.add_node(i));
        timers.arm(0, Some(3000));
        timers.arm(1, Some(1000));
        timers.arm(1, Some(5000));
        timers.arm(2, Some(2000));
        timers.arm(2, None);
        assert_eq!(timers.next(), Some(3000));
        assert_eq!(timers.pop_due(4000), Some(0));
        assert_eq!(timers.pop_due(4000), None);
        assert_eq!(timers.pop_due(5000), Some(1));
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn pending_nodes_come_out_in_index_order_from_a_cursor() {
        let mut pending = Pending::default();
        for index in [130, 3, 64, 3, 63] {
            pending.mark(index);
        }
        assert_eq!(pending.take_from(4), Some(63));
        assert_eq!(pending.take_from(64), Some(64));
        assert_eq!(pending.take_from(65), Some(130));
        assert_eq!(pending.take_from(131), None);
        assert!(!pending.is_empty());
        assert_eq!(pending.take_from(0), Some(3));
        assert!(pending.is_empty());
        pending.mark_all(2);
        assert_eq!(pending.take_from(0), Some(0));
        for index in [200, 1, 65] {
            pending.mark(index);
        }
        assert_eq!(pending.take_all(), [1, 65, 200]);
        assert!(pending.is_empty() && pending.take_all().is_empty());
    }
}
