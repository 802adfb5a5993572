//! What both sentrymesh cores and the daemon share, one type per concept.
//!
//! This crate does no I/O: it reads no clock, opens nothing and takes no
//! entropy from the operating system (a key is generated from the RNG the
//! caller passes). It depends on no other sentrymesh crate; the tunnel
//! engine, the mesh and the daemon all depend on it.
//!
//! ```text
//!                 sentrymesh-types
//!   PublicKey, PrivateKey   IpNet, InterfaceAddress   blake2s   UnixTime
//!        ▲                       ▲                       ▲          ▲
//!        └──── sentrymesh-tunnel ┴── sentrymesh-mesh ────┴── daemon ┘
//! ```
//!
//! * [`keys`]: a host's WireGuard (X25519) keys — the public key a tunnel
//!   peer is known by and a card names, and the private key that runs the
//!   handshake and proves possession of the public one.
//! * [`net`]: an IP network ([`IpNet`], host bits zero) and an interface
//!   address ([`InterfaceAddress`], an address with the prefix of its
//!   subnet), parsed by one parser.
//! * [`blake2s`]: BLAKE2s as WireGuard uses it — `HASH`, `MAC`, `HMAC` and
//!   `KDF1..3` — for the handshake and for the mesh's sealed messages.
//! * [`time`]: the time model — monotonic `Instant`s for protocol timers,
//!   wall-clock [`UnixTime`] for what is signed and expires.
#![forbid(unsafe_code)]

pub mod blake2s;
pub mod keys;
pub mod net;
pub mod time;

pub use keys::{KEY_LEN, KeyDefect, KeyParseError, PrivateKey, PublicKey};
pub use net::{InterfaceAddress, IpNet, IpNetError};
pub use time::{CLOCK_SKEW, UnixTime};
