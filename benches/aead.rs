//! ChaCha20-Poly1305 sealing of a 1420-byte payload in place, with an
//! incrementing counter nonce and no associated data, as a data message is
//! sealed: `ring` (assembly; our default data path, and boringtun's) against
//! the portable RustCrypto `chacha20poly1305` crate (our `portable-aead`
//! feature, and what the handshake uses for its few bytes).

use std::hint::black_box;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use criterion::{BenchmarkId, Criterion, Throughput};
use sentrymesh_benches::{TAG, counter_nonce, ring_key};
use sentrymesh_tunnel::sim::ipv4_packet;

const LEN: usize = 1420;
const KEY: [u8; 32] = [0x5a; 32];

fn aead(c: &mut Criterion) {
    let mut group = c.benchmark_group("aead");
    group.throughput(Throughput::Bytes(LEN as u64));

    let key = ring_key(&KEY);
    let mut buf = ipv4_packet(LEN, TAG);
    let mut counter = 0u64;
    group.bench_function(BenchmarkId::new("ring_seal", LEN), |b| {
        b.iter(|| {
            let nonce = ring::aead::Nonce::assume_unique_for_key(counter_nonce(counter));
            counter += 1;
            black_box(key.seal_in_place_separate_tag(
                nonce,
                ring::aead::Aad::empty(),
                black_box(&mut buf),
            ))
        });
    });

    let cipher = ChaCha20Poly1305::new(&KEY.into());
    let mut buf = ipv4_packet(LEN, TAG);
    let mut counter = 0u64;
    group.bench_function(BenchmarkId::new("chacha20poly1305_seal", LEN), |b| {
        b.iter(|| {
            let nonce = counter_nonce(counter);
            counter += 1;
            black_box(cipher.encrypt_in_place_detached(&nonce.into(), &[], black_box(&mut buf)))
        });
    });
    group.finish();
}

criterion::criterion_group! {
    name = benches;
    config = sentrymesh_benches::criterion();
    targets = aead
}
criterion::criterion_main!(benches);
