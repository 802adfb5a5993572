//! What the mesh tests share on top of the crate's harness
//! ([`sentrymesh_mesh::sim`]): the usual operators and policies.

use std::collections::BTreeSet;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use sentrymesh_mesh::TrustPolicy;
pub(crate) use sentrymesh_mesh::sim::*;

/// Every operator trusts every other directly.
pub(crate) fn everyone(ops: &'static [u8]) -> impl Fn(u8) -> TrustPolicy {
    move |op| {
        let others: Vec<u8> = ops.iter().filter(|&&o| o != op).copied().collect();
        policy(op, &others, 1)
    }
}

pub(crate) const THREE: &[u8] = &[1, 2, 3];

pub(crate) fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The seed of every test net's network.
pub(crate) fn seed() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(7)
}

pub(crate) fn converged_three() -> Net<Member> {
    let mut net = Net::launch(THREE, everyone(THREE), seed());
    net.run_for(10);
    net
}
