//! What the crate's integration tests share: the crate's fixtures (a fixed
//! clock, operators made from a number, host keys made from a seed, cards
//! signed with them), random mutations of byte strings, and what the tests
//! of meshes in virtual time share ([`net`]).
// Each test crate uses a different part.
#![allow(dead_code)]

pub(crate) mod net;

use proptest::prelude::*;
// Each test crate uses a different part.
#[allow(unused_imports)]
pub(crate) use sentrymesh_mesh::testing::{NOW, SignCard, operator, wg_key};

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
