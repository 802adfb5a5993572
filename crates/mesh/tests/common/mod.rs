//! What the crate's integration tests share: a fixed clock, operators made
//! from a number, and random mutations of byte strings.
// Each test crate uses a different part.
#![allow(dead_code)]

use proptest::prelude::*;
use sentrymesh_mesh::OperatorSecret;

/// 2026-05-01 00:00:00 UTC.
pub(crate) const NOW: u64 = 1_777_593_600;

/// Operator `n`, always the same key.
pub(crate) fn operator(n: u8) -> OperatorSecret {
    let mut seed = [n; 32];
    seed[0] |= 1;
    OperatorSecret::from_seed(seed)
}

/// A change to a byte string.
#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    FlipBit { at: usize, bit: u8 },
    SetByte { at: usize, value: u8 },
    Truncate { to: usize },
    Extend { with: Vec<u8> },
    Insert { at: usize, value: u8 },
    Remove { at: usize },
}

pub(crate) fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::SetByte { at, value }),
        any::<usize>().prop_map(|to| Mutation::Truncate { to }),
        proptest::collection::vec(any::<u8>(), 1..40).prop_map(|with| Mutation::Extend { with }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Insert { at, value }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
    ]
}

pub(crate) fn apply(original: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for m in mutations {
        let len = bytes.len();
        match m {
            Mutation::FlipBit { at, bit } if len > 0 => bytes[at % len] ^= 1 << bit,
            Mutation::SetByte { at, value } if len > 0 => bytes[at % len] = *value,
            Mutation::Truncate { to } => bytes.truncate(to % (len + 1)),
            Mutation::Extend { with } => bytes.extend_from_slice(with),
            Mutation::Insert { at, value } => bytes.insert(at % (len + 1), *value),
            Mutation::Remove { at } if len > 0 => {
                bytes.remove(at % len);
            }
            _ => {}
        }
    }
    bytes
}
