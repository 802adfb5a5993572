//! Random mutations of byte strings, as proptest strategies: what the
//! malformed-input tests apply to valid encodings.

use proptest::prelude::*;

/// A change to a byte string.
#[derive(Debug, Clone)]
#[allow(missing_docs, reason = "the fields are named by the variants' docs")]
pub enum Mutation {
    /// Flip bit `bit` of the byte at `at`.
    FlipBit { at: usize, bit: u8 },
    /// Set the byte at `at` to `value`.
    SetByte { at: usize, value: u8 },
    /// Keep the first `to` bytes.
    Truncate { to: usize },
    /// Append `with`.
    Extend { with: Vec<u8> },
    /// Insert `value` before the byte at `at`.
    Insert { at: usize, value: u8 },
    /// Remove the byte at `at`.
    Remove { at: usize },
}

/// A random [`Mutation`].
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::SetByte { at, value }),
        any::<usize>().prop_map(|to| Mutation::Truncate { to }),
        proptest::collection::vec(any::<u8>(), 1..40).prop_map(|with| Mutation::Extend { with }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Insert { at, value }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
    ]
}

/// `original` with `mutations` applied in order (positions wrap around its
/// length; a mutation that cannot apply to an empty string is skipped).
pub fn apply(original: &[u8], mutations: &[Mutation]) -> Vec<u8> {
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
