//! The WireGuard protocol as a state machine.
//!
//! This crate does no I/O. It reads no clock, opens no socket and takes no
//! entropy from the operating system: every input carries `now`, randomness
//! comes from the RNG the caller supplies, and every output is written into a
//! buffer the caller owns. That makes each behaviour of the protocol — the
//! handshake, cookie replies under load, rekeying after two minutes, giving up
//! after ninety seconds — testable in microseconds with virtual time.
//!
//! ```text
//!            datagram from UDP                 IP packet from TUN
//!                   │                                  │
//!                   ▼                                  ▼
//!       Engine::handle_datagram             Engine::encapsulate(_in_place)
//!           │            │                             │
//!   Received::Packet   handshakes, timers ──────► Encapsulated::Sealed
//!      (to TUN)        Engine::poll_transmit ────► datagrams to UDP
//!                      Engine::poll_timeout  ────► when to call handle_timeout
//! ```
//!
//! The run loop of a caller: after every input — a datagram, a packet, a
//! timeout, a configuration change — drain [`Engine::poll_transmit`] until it
//! returns `None`, then sleep until [`Engine::poll_timeout`] or the next input.
//!
//! The protocol is WireGuard exactly (Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s,
//! MAC1/MAC2 and XChaCha20-Poly1305 cookies, TAI64N replay protection, an
//! 8192-bit counter window, the timers of the whitepaper) and interoperates
//! with the Linux kernel, wireguard-go and boringtun.
#![forbid(unsafe_code)]

mod cookie;
mod crypto;
mod engine;
mod error;
mod handshake;
mod index_table;
pub mod ip;
mod keys;
mod messages;
mod noise;
mod peer;
mod peer_slots;
pub mod rate_limit;
mod replay;
mod session;
#[cfg(any(test, feature = "testing"))]
pub mod sim;
pub mod staging;
mod tai64n;
mod timer_queue;
pub mod timers;

pub use cookie::COOKIE_REFRESH_TIME;
pub use engine::{Encapsulated, Engine, PeerConfig, PeerId, Received, Transmit};
pub use error::Error;
pub use keys::PresharedKey;
pub use messages::{
    COOKIE_REPLY_LEN, DATA_HEADER_LEN, DATA_OVERHEAD, INITIATION_LEN, KEEPALIVE_LEN, RESPONSE_LEN,
    SessionIndex,
};
pub use peer::PeerStats;
pub use rate_limit::RateLimiter;
pub use staging::StagingStats;

#[cfg(test)]
mod known_answers;
