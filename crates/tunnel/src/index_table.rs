//! Session indices: drawn at random, as the whitepaper asks, and the peer
//! each one leads to.
//!
//! Every handshake a peer starts or answers names itself by a fresh 32-bit
//! index, which the other side puts in every message back. An index derived
//! from the peer's slot would tell anyone on the path which sessions belong
//! to one peer and how many peers the interface has; a random one tells
//! nothing. The price is a table lookup per received message instead of a
//! shift, which costs a few nanoseconds against a microsecond of decryption.
//!
//! Each peer holds at most a handful of indices at once (its handshake and
//! three sessions); it hands back the ones it no longer uses when it takes a
//! new one, and all of them when it is removed, so the table holds at most
//! a few entries per peer however long the interface runs.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rand_core::CryptoRngCore;

use crate::engine::PeerId;
use crate::messages::SessionIndex;

/// Which peer each index in use belongs to.
#[derive(Debug, Default)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(crate) struct IndexTable {
    owners: HashMap<SessionIndex, PeerId, BuildHasherDefault<RandomKeyHasher>>,
}

impl IndexTable {
    /// A random index that no peer uses, now recorded as `owner`'s.
    ///
    /// The loop ends: the table holds a few indices per peer, far fewer
    /// than the 2³² there are, so a draw is almost always free.
    pub(crate) fn allocate(&mut self, rng: &mut dyn CryptoRngCore, owner: PeerId) -> SessionIndex {
        loop {
            let index = SessionIndex(rng.next_u32());
            if let std::collections::hash_map::Entry::Vacant(entry) = self.owners.entry(index) {
                entry.insert(owner);
                return index;
            }
        }
    }

    /// Gives back the room of the indices freed.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.owners.shrink_to_fit();
    }

    /// Frees `index` for another draw.
    pub(crate) fn release(&mut self, index: SessionIndex) {
        self.owners.remove(&index);
    }

    /// The peer `index` was drawn for, if it is in use. The peer still
    /// decides whether the index names one of its live sessions.
    pub(crate) fn owner(&self, index: SessionIndex) -> Option<PeerId> {
        self.owners.get(&index).copied()
    }

    /// How many indices are in use.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.owners.len()
    }
}

/// Hashes a key that is already uniformly random (an index this table drew
/// from a cryptographic RNG) by spreading its bits over 64: an attacker
/// chooses the indices it looks up, never the ones stored, so it cannot
/// crowd a bucket.
#[derive(Default)]
pub(crate) struct RandomKeyHasher(u64);

impl Hasher for RandomKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.0 = (self.0 ^ u64::from(value)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn indices_are_unique_owned_and_released() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut table = IndexTable::default();
        let a: Vec<_> = (0..1000)
            .map(|_| {
                table.allocate(
                    &mut rng,
                    PeerId {
                        slot: 1,
                        generation: 0,
                    },
                )
            })
            .collect();
        let b = table.allocate(
            &mut rng,
            PeerId {
                slot: 2,
                generation: 0,
            },
        );
        assert_eq!(table.len(), 1001, "every draw is a new index");
        assert!(a.iter().all(|&i| table.owner(i)
            == Some(PeerId {
                slot: 1,
                generation: 0
            })));
        assert_eq!(
            table.owner(b),
            Some(PeerId {
                slot: 2,
                generation: 0
            })
        );
        for &index in &a {
            table.release(index);
        }
        assert_eq!(table.len(), 1);
        assert_eq!(table.owner(a[0]), None);
    }

    #[test]
    fn a_taken_index_is_drawn_again() {
        // Two generators with one seed draw the same first index: the second
        // table entry must skip it.
        let mut table = IndexTable::default();
        let first = table.allocate(
            &mut ChaCha20Rng::seed_from_u64(9),
            PeerId {
                slot: 1,
                generation: 0,
            },
        );
        let second = table.allocate(
            &mut ChaCha20Rng::seed_from_u64(9),
            PeerId {
                slot: 2,
                generation: 0,
            },
        );
        assert_ne!(first, second);
        assert_eq!(
            table.owner(first),
            Some(PeerId {
                slot: 1,
                generation: 0
            })
        );
        assert_eq!(
            table.owner(second),
            Some(PeerId {
                slot: 2,
                generation: 0
            })
        );
    }

    #[test]
    fn consecutive_indices_of_one_peer_share_no_structure() {
        // The slot-derived scheme kept the upper 24 bits of a peer's
        // indices equal; random ones differ there almost always.
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let mut table = IndexTable::default();
        let indices: Vec<_> = (0..64)
            .map(|_| {
                table
                    .allocate(
                        &mut rng,
                        PeerId {
                            slot: 3,
                            generation: 0,
                        },
                    )
                    .0
            })
            .collect();
        let same_upper = indices
            .windows(2)
            .filter(|pair| pair[0] >> 8 == pair[1] >> 8)
            .count();
        assert_eq!(same_upper, 0, "{indices:x?}");
    }
}
