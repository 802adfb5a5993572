//! A simulation harness for the engine's tests and benches: a [`Pair`] of
//! engines joined by a virtual network, under virtual time —
//! quinn-proto's test harness, for WireGuard. Compiled only with the
//! `testing` feature (or in this crate's own tests); the daemon never
//! builds it.
//!
//! Nothing here takes the OS's entropy, and the clock is read once: the
//! virtual clock is an [`Instant`](std::time::Instant) (which has no other
//! constructor) that only moves when a test moves it, jumping from one
//! deadline of either engine to the next
//! ([`Pair::advance_to_next_timeout`]); everything is measured from it, and
//! every key, random draw, lost datagram and reordering comes from a seeded
//! `ChaCha8Rng`. A
//! three-minute rekey scenario runs in microseconds and the same seed gives
//! the same bytes.
//!
//! ```text
//!      Host a (198.18.0.1:51820)                 Host b (198.18.0.2:51820)
//!   ┌────────────────────────────┐            ┌────────────────────────────┐
//!   │ Engine ── poll_transmit ───┼─ drive() ─►│ inbound ─► handle_datagram │
//!   │ handle_datagram ◄─ inbound ◄┼─ drive() ──┼─ poll_transmit ──── Engine │
//!   └────────────────────────────┘            └────────────────────────────┘
//!   every datagram sent is recorded (`Host::sent`) with its virtual send
//!   time and type, and delivered unless the sender's `drop_outgoing` is
//!   set or the network's `Conditions` lose it.
//! ```
//!
//! ```
//! use sentrymesh_tunnel::sim::{Pair, Side, ipv4_packet};
//!
//! let mut pair = Pair::established();
//! let packet = ipv4_packet(84, 7);
//! pair.send(Side::A, &packet);
//! assert_eq!(pair.b.delivered.last().map(|(_, p)| p), Some(&packet));
//! ```

mod packet;
mod pair;

pub use packet::ipv4_packet;
pub use pair::{
    ADDR_A, ADDR_B, BUF_LEN, COOKIE_REPLY, Conditions, DATA, Host, INITIATION, Pair, RESPONSE,
    Sent, Side, UNIX_NOW,
};
