//! A simulation harness for the mesh's tests, benches and large-scale
//! runs: N nodes on one simulated network with one virtual clock and
//! seeded loss and delay (connlib's `sim_net`). Compiled only with the
//! `testing` feature (or in this crate's own tests); the daemon never
//! builds it.
//!
//! ```text
//!   Net<N: Node>   hosts: [Host { key, node }]   now: UnixTime (+ milliseconds)
//!      │             conditions: loss per mille, delay in milliseconds
//!      ├─ deliver()          drain every node's poll_transmit; hand each message over
//!      │                     (or queue it until its seeded arrival time)
//!      ├─ run_until_quiet()  deliver, then let time run until nothing is in flight
//!      ├─ run_for(secs)      jump from timeout to arrival to timeout, delivering;
//!      │                     only the nodes a step wakes are drained
//!      ├─ advance(ms)        the same, in milliseconds, without draining every node
//!      │                     first (wake(i) a node changed by hand)
//!      └─ set_workers(n)     the nodes a step wakes run on n threads, the run unchanged
//!
//!   Node for Gossip   the gossip machine alone, peers wired by hand
//!   Node for Member   one host's Mesh: a message reaches it only when it admits the
//!                     sender as a peer, as a tunnel would carry it
//! ```
//!
//! Nothing here reads a clock or takes entropy from the operating system:
//! nodes are served in the order they joined (their results taken in that
//! order when workers run them), messages in flight ordered by
//! arrival time and then by sending order, and loss and delay come from the
//! RNG passed in, so a seed gives the same run every time. The cards,
//! operators and trust policies come from the [`testing`](crate::testing)
//! fixtures.
//!
//! ```
//! use rand_chacha::ChaCha8Rng;
//! use rand_core::SeedableRng;
//! use sentrymesh_mesh::sim::{Net, policy};
//!
//! // Two operators that trust each other, each a producer and two sentries.
//! let mut net = Net::launch(&[1, 2], |op| policy(op, &[3 - op], 1), ChaCha8Rng::seed_from_u64(0));
//! net.run_for(10);
//! assert_eq!(net.sessions(1, "producer").len(), 2, "its own sentries only");
//! net.assert_no_hidden_leaks();
//! ```

pub mod checks;
mod member;
mod net;
mod schedule;
mod workers;

pub use checks::{Check, Checker};
pub use member::{
    Member, THREE, contains, converged_three, everyone, host_card, host_card_with, hosts_of, names,
    policy, seed,
};
pub use net::{Arrival, Conditions, Delivery, Host, Net, Node};
