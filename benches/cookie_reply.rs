//! What one datagram of a handshake flood costs a responder under load: an
//! initiation with a valid `mac1` from a spoofed source, checked (`mac1`,
//! then `mac2`, which it lacks) and answered with a cookie reply, which is
//! then taken from `poll_transmit`. No Diffie-Hellman.
//!
//! The same with the engine's randomness (the reply's 24-byte nonce) drawn
//! from the OS, a `getrandom` system call each, as the daemon does, and
//! from a ChaCha20 generator in memory: the difference is what a userspace
//! generator would save a reply (about a tenth here; see the "Handshake
//! flood" section of `benches/README.md`).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::Criterion;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRngCore, OsRng, RngCore, SeedableRng};
use sentrymesh_tunnel::{COOKIE_REPLY_LEN, Engine, Error, INITIATION_LEN};
use sentrymesh_types::{PrivateKey, PublicKey, blake2s};

/// Where `mac1` starts in an initiation.
const MAC1_OFFSET: usize = INITIATION_LEN - 32;

fn cookie_reply(c: &mut Criterion) {
    let mut group = c.benchmark_group("cookie_reply");
    group.bench_function("os_rng", |b| {
        let (mut engine, initiation) = under_load(OsRng);
        b.iter(|| answer(black_box(&mut engine), &initiation));
    });
    group.bench_function("chacha20", |b| {
        let (mut engine, initiation) = under_load(ChaCha20Rng::seed_from_u64(1));
        b.iter(|| answer(black_box(&mut engine), &initiation));
    });
    group.finish();
}

/// An engine under load with randomness from `rng`, and an initiation to it
/// as a flood makes them: a valid `mac1`, random everything else, no `mac2`.
fn under_load(rng: impl CryptoRngCore + Clone + Send + 'static) -> (Engine, Vec<u8>) {
    let key = PrivateKey::from_bytes([2; 32]);
    let public = key.public_key();
    let mut engine = Engine::new(key, rng, Instant::now(), Duration::from_secs(1_700_000_000));
    engine.set_under_load(true);
    (engine, flood_initiation(&public))
}

fn flood_initiation(to: &PublicKey) -> Vec<u8> {
    let mut message = vec![0; INITIATION_LEN];
    message[0] = 1;
    ChaCha20Rng::seed_from_u64(2).fill_bytes(&mut message[4..MAC1_OFFSET]);
    let key = blake2s::hash(&[b"mac1----", to.as_bytes()]);
    let mac1 = blake2s::mac(&key, &[&message[..MAC1_OFFSET]]);
    message[MAC1_OFFSET..MAC1_OFFSET + 16].copy_from_slice(&mac1);
    message
}

/// Hands `initiation` to `engine` from a spoofed source and takes the
/// cookie reply.
fn answer(engine: &mut Engine, initiation: &[u8]) {
    let now = Instant::now();
    let from = SocketAddr::from(([198, 19, 0, 1], 40_000));
    let mut datagram = [0; INITIATION_LEN];
    datagram.copy_from_slice(initiation);
    let refused = engine.handle_datagram(now, from, &mut datagram);
    assert_eq!(refused.err(), Some(Error::CookieRequired));
    let mut reply = [0; 256];
    let transmit = engine.poll_transmit(now, &mut reply);
    assert_eq!(transmit.map(|t| t.len), Some(COOKIE_REPLY_LEN));
}

criterion::criterion_group! {
    name = benches;
    config = sentrymesh_benches::criterion();
    targets = cookie_reply
}
criterion::criterion_main!(benches);
