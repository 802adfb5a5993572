//! What the fuzz targets of `fuzz_targets/` share: the genuine messages they
//! mutate (built the same way every run, from fixed seeds), and how an
//! input becomes a message ([`shape`]).
//!
//! The seed corpus is made from the same fixtures by
//! `cargo run --example corpus` (see `README.md`), so the corpus and the
//! targets agree on the input format.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use sentrymesh_types::PublicKey;
use sentrymesh_types::blake2s::{MacKey, hash};

pub mod mesh;
pub mod tunnel;

/// How many shaping modes [`shape`] has; the mode is the first byte modulo
/// this.
pub const MODES: u8 = 4;

/// Turns a fuzz input into a message, from one of `genuine` (a list of real
/// messages) or from nothing, so the fuzzer reaches past the checks of a
/// type and a length into the code behind them.
///
/// The first byte chooses: its value modulo [`MODES`] the mode, the rest of
/// it (divided by `MODES`) which genuine message. The modes:
///
/// 0. raw: the rest of the input as it is;
/// 1. flips: the genuine message, with each 3 bytes `lo hi x` of the rest
///    XOR-ing `x` into the byte at `u16(lo, hi)` (modulo its length);
/// 2. splice: the genuine message's first `u16(rest[0], rest[1])` bytes
///    (modulo its length plus one), then the rest after those two bytes;
/// 3. overwrite: the genuine message with the rest after two offset bytes
///    written over it from that offset, growing it if needed.
///
/// An input that is only a mode byte with no genuine message left to
/// choose is the empty message.
pub fn shape(input: &[u8], genuine: &[&[u8]]) -> Vec<u8> {
    let Some((&first, rest)) = input.split_first() else {
        return Vec::new();
    };
    let mode = first % MODES;
    if mode == 0 || genuine.is_empty() {
        return rest.to_vec();
    }
    let base = genuine[usize::from(first / MODES) % genuine.len()];
    match mode {
        1 => {
            let mut out = base.to_vec();
            if !out.is_empty() {
                for flip in rest.chunks_exact(3) {
                    let at = usize::from(u16::from_le_bytes([flip[0], flip[1]])) % out.len();
                    out[at] ^= flip[2];
                }
            }
            out
        }
        _ => {
            let (offset, tail) = match rest {
                [lo, hi, tail @ ..] => (usize::from(u16::from_le_bytes([*lo, *hi])), tail),
                _ => (0, &[][..]),
            };
            let offset = offset % (base.len() + 1);
            let mut out = base.to_vec();
            if mode == 2 {
                out.truncate(offset);
                out.extend_from_slice(tail);
            } else {
                let end = offset + tail.len();
                if out.len() < end {
                    out.resize(end, 0);
                }
                out[offset..end].copy_from_slice(tail);
            }
            out
        }
    }
}

/// The input for [`shape`] that yields `genuine[index]` unchanged (mode 1,
/// no flips).
pub fn unchanged(index: u8) -> Vec<u8> {
    vec![index * MODES + 1]
}

/// Writes a valid `mac1` into a handshake message meant for the owner of
/// `receiver` (the last 32 bytes are `mac1` and `mac2`), over whatever the
/// body holds, so a mutated body is not stopped by its `mac1`. A message
/// shorter than the two MACs is left as it is.
pub fn write_mac1(message: &mut [u8], receiver: &PublicKey) {
    let Some(covered_len) = message.len().checked_sub(32) else {
        return;
    };
    let key = MacKey::new(&hash(&[&b"mac1----"[..], receiver.as_bytes()]));
    let (covered, macs) = message.split_at_mut(covered_len);
    macs[..16].copy_from_slice(&key.mac(&[covered]));
}

/// A source address that is neither host of a [`sentrymesh_tunnel::sim::Pair`].
pub const STRANGER: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 9), 40_000));
