//! Sealing one inner packet into a data message, on an established session.
//!
//! * `ours_in_place`: [`Engine::encapsulate_in_place`], the daemon's data
//!   path. The packet is written once at `buf[16..]`; each iteration seals
//!   the buffer again (ciphertext of the previous one, which costs the same).
//! * `ours_copy`: [`Engine::encapsulate`], which copies the packet first.
//! * `boringtun`: `Tunn::encapsulate`, which copies too.
//! * `ring_seal`: `LessSafeKey::seal_in_place_separate_tag` of the same bytes
//!   with an incrementing counter nonce: the floor an engine can reach.
//!
//! [`Engine::encapsulate_in_place`]: sentrymesh_tunnel::Engine::encapsulate_in_place
//! [`Engine::encapsulate`]: sentrymesh_tunnel::Engine::encapsulate

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use sentrymesh_benches::{
    BUF_LEN, BoringtunPair, SIZES, TAG, counter_nonce, ours_established, ring_key,
};
use sentrymesh_tunnel::sim::ipv4_packet;
use sentrymesh_tunnel::{DATA_HEADER_LEN, DATA_OVERHEAD, Encapsulated};

/// The Poly1305 tag that ends every data message.
const TAG_LEN: usize = DATA_OVERHEAD - DATA_HEADER_LEN;

fn ours_in_place(group: &mut BenchmarkGroup<'_, WallTime>, len: usize) {
    let mut pair = ours_established(1);
    let mut buf = vec![0u8; BUF_LEN];
    buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len].copy_from_slice(&ipv4_packet(len, TAG));
    let (now, peer) = (pair.now, pair.a.peer);
    let sealed = pair.a.engine.encapsulate_in_place(now, peer, &mut buf, len);
    assert!(
        matches!(sealed, Ok(Encapsulated::Sealed { .. })),
        "{sealed:?}"
    );
    group.bench_function(BenchmarkId::new("ours_in_place", len), |b| {
        b.iter(|| {
            black_box(
                pair.a
                    .engine
                    .encapsulate_in_place(now, peer, black_box(&mut buf), len),
            )
        });
    });
}

fn ours_copy(group: &mut BenchmarkGroup<'_, WallTime>, len: usize) {
    let mut pair = ours_established(2);
    let packet = ipv4_packet(len, TAG);
    let mut out = vec![0u8; BUF_LEN];
    let (now, peer) = (pair.now, pair.a.peer);
    let sealed = pair.a.engine.encapsulate(now, peer, &packet, &mut out);
    assert!(
        matches!(sealed, Ok(Encapsulated::Sealed { .. })),
        "{sealed:?}"
    );
    group.bench_function(BenchmarkId::new("ours_copy", len), |b| {
        b.iter(|| {
            black_box(
                pair.a
                    .engine
                    .encapsulate(now, peer, black_box(&packet), black_box(&mut out)),
            )
        });
    });
}

fn boringtun(group: &mut BenchmarkGroup<'_, WallTime>, len: usize) {
    let mut pair = BoringtunPair::established(3);
    let packet = ipv4_packet(len, TAG);
    let mut out = vec![0u8; BUF_LEN];
    pair.seal(&packet, &mut out);
    group.bench_function(BenchmarkId::new("boringtun", len), |b| {
        b.iter(|| {
            black_box(
                pair.initiator
                    .encapsulate(black_box(&packet), black_box(&mut out)),
            );
        });
    });
}

fn ring_seal(group: &mut BenchmarkGroup<'_, WallTime>, len: usize) {
    let key = ring_key(&[0x5a; 32]);
    let mut buf = vec![0u8; BUF_LEN];
    buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len].copy_from_slice(&ipv4_packet(len, TAG));
    let mut counter = 0u64;
    group.bench_function(BenchmarkId::new("ring_seal", len), |b| {
        b.iter(|| {
            let nonce = ring::aead::Nonce::assume_unique_for_key(counter_nonce(counter));
            counter += 1;
            // A sealed message is the ciphertext followed by its tag, as
            // ring's `seal_in_place_append_tag` makes it: the tag is placed
            // after the ciphertext, as every user of the seal must do.
            let (body, tag) = black_box(&mut buf)[DATA_HEADER_LEN..].split_at_mut(len);
            let sealed = key
                .seal_in_place_separate_tag(nonce, ring::aead::Aad::empty(), body)
                .expect("far below the AEAD length limit");
            tag[..TAG_LEN].copy_from_slice(sealed.as_ref());
            black_box(tag);
        });
    });
}

fn encapsulate(c: &mut Criterion) {
    let mut group = c.benchmark_group("encapsulate");
    for len in SIZES {
        group.throughput(Throughput::Bytes(len as u64));
        ours_in_place(&mut group, len);
        ours_copy(&mut group, len);
        boringtun(&mut group, len);
        ring_seal(&mut group, len);
    }
    group.finish();
}

criterion::criterion_group! {
    name = benches;
    config = sentrymesh_benches::criterion();
    targets = encapsulate
}
criterion::criterion_main!(benches);
