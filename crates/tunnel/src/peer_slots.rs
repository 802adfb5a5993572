//! The engine's peers, each in a slot named by a [`PeerId`]: the slot's
//! number and its generation.
//!
//! A removed peer's slot is reused by a later peer, so the table never
//! grows past the most peers held at once, however many come and go. Each
//! value lives in an allocation of its own, which goes with it: an empty
//! slot weighs 16 bytes, not a peer's state, so the memory of many peers
//! that went comes back. Each
//! reuse bumps the slot's generation, so an id of the removed peer (kept by
//! a caller, or left in a queue or a timer entry) names nothing any more
//! and is refused: it never reaches the new peer. A slot whose generation
//! is used up is retired rather than reused.
//!
//! ```text
//!   slot:        0          1          2
//!   generation:  3          0          1
//!   value:       peer A     -          peer C      free: [1]
//!   PeerId { slot: 0, generation: 2 } -> nothing (A's predecessor)
//! ```

use crate::engine::PeerId;

/// One slot: the generation of the id it gives out next or now, and the
/// value it holds.
#[derive(Debug)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
struct Slot<T> {
    generation: u32,
    value: Option<Box<T>>,
}

/// Values named by [`PeerId`]s, in reused slots.
#[derive(Debug)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(crate) struct PeerSlots<T> {
    slots: Vec<Slot<T>>,
    /// Empty slots that may be reused, the most recently emptied last.
    free: Vec<u32>,
    /// How many slots hold a value.
    len: usize,
    /// The most slots there may be.
    max_slots: usize,
}

impl<T> PeerSlots<T> {
    /// An empty table of at most `max_slots` slots (at most 2³²).
    pub(crate) fn new(max_slots: usize) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            max_slots: max_slots.min(1 << 32),
        }
    }

    /// The id the next [`PeerSlots::insert`] gives, or `None` when every
    /// slot is taken and no more may be made.
    pub(crate) fn next_id(&self) -> Option<PeerId> {
        if let Some(&slot) = self.free.last() {
            let generation = self.slots[slot as usize].generation;
            return Some(PeerId { slot, generation });
        }
        if self.slots.len() >= self.max_slots {
            return None;
        }
        // `max_slots` is at most 2³², so every slot number fits.
        let slot = u32::try_from(self.slots.len()).ok()?;
        Some(PeerId {
            slot,
            generation: 0,
        })
    }

    /// Stores the value `make` builds for its id; `None` (and `make` is not
    /// called) when the table is full.
    pub(crate) fn insert(&mut self, make: impl FnOnce(PeerId) -> T) -> Option<PeerId> {
        let id = self.next_id()?;
        let value = Some(Box::new(make(id)));
        if self.free.last() == Some(&id.slot) {
            self.free.pop();
            self.slots[id.slot as usize].value = value;
        } else {
            self.slots.push(Slot {
                generation: id.generation,
                value,
            });
        }
        self.len += 1;
        Some(id)
    }

    /// Takes the value out; its id is refused from now on.
    pub(crate) fn remove(&mut self, id: PeerId) -> Option<T> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let value = slot.value.take()?;
        self.len -= 1;
        if let Some(next) = slot.generation.checked_add(1) {
            slot.generation = next;
            self.free.push(id.slot);
        }
        Some(*value)
    }

    /// The value of `id`, unless it was removed.
    pub(crate) fn get(&self, id: PeerId) -> Option<&T> {
        self.slots
            .get(id.slot as usize)
            .filter(|slot| slot.generation == id.generation)?
            .value
            .as_deref()
    }

    /// The value of `id`, unless it was removed.
    pub(crate) fn get_mut(&mut self, id: PeerId) -> Option<&mut T> {
        self.slots
            .get_mut(id.slot as usize)
            .filter(|slot| slot.generation == id.generation)?
            .value
            .as_deref_mut()
    }

    /// How many values the table holds.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// How many more values fit.
    pub(crate) fn room(&self) -> usize {
        self.free.len() + self.max_slots.saturating_sub(self.slots.len())
    }

    /// Every value with its id, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (PeerId, &T)> + '_ {
        self.slots.iter().zip(0u32..).filter_map(|(slot, number)| {
            let id = PeerId {
                slot: number,
                generation: slot.generation,
            };
            slot.value.as_deref().map(|value| (id, value))
        })
    }

    /// Every value, in slot order.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.slots
            .iter_mut()
            .filter_map(|slot| slot.value.as_deref_mut())
    }

    /// How many slots exist, taken or free.
    #[cfg(test)]
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_old_ids_refused() {
        let mut table = PeerSlots::new(16);
        let a = table.insert(|_| "a").unwrap();
        let b = table.insert(|_| "b").unwrap();
        assert_eq!(table.remove(a), Some("a"));
        assert_eq!(table.remove(a), None, "removed once");
        let c = table.insert(|id| {
            assert_eq!(id.slot, a.slot, "the free slot is reused");
            "c"
        });
        let c = c.unwrap();
        assert_ne!(c, a);
        assert_eq!(table.get(a), None);
        assert_eq!(table.get_mut(a), None);
        assert_eq!(table.remove(a), None, "an old id removes nothing");
        assert_eq!(table.get(c), Some(&"c"));
        assert_eq!(table.get(b), Some(&"b"));
        assert_eq!(table.len(), 2);
        assert_eq!(table.slot_count(), 2);
        assert_eq!(
            table.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            ["c", "b"]
        );
    }

    #[test]
    fn the_slot_count_stays_at_the_peak() {
        let mut table = PeerSlots::new(1 << 10);
        let mut held = Vec::new();
        for round in 0..100u32 {
            while held.len() < 1 + (round as usize % 7) {
                held.push(table.insert(|_| round).unwrap());
            }
            let removed = (round as usize % 5).min(held.len());
            for id in held.drain(..removed) {
                assert!(table.remove(id).is_some());
            }
        }
        assert_eq!(table.slot_count(), 7, "at most 7 values were held at once");
    }

    #[test]
    fn a_full_table_refuses_and_a_used_up_generation_retires_its_slot() {
        let mut table = PeerSlots::new(2);
        let a = table.insert(|_| 1).unwrap();
        table.insert(|_| 2).unwrap();
        assert_eq!(table.room(), 0);
        assert_eq!(table.next_id(), None);
        assert_eq!(table.insert(|_| unreachable!("full")), None);
        table.remove(a);
        assert_eq!(table.room(), 1);
        // A slot at its last generation is not reused once emptied.
        table.slots[0].generation = u32::MAX;
        let last = table.insert(|_| 3).unwrap();
        assert_eq!(last.generation, u32::MAX);
        table.remove(last);
        assert_eq!(table.room(), 0);
        assert_eq!(table.insert(|_| 4), None);
    }
}
