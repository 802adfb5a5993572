//! The WireGuard protocol as a state machine.
#![forbid(unsafe_code)]

mod crypto;
mod noise;
pub mod rate_limit;
mod replay;

#[cfg(test)]
mod known_answers;
