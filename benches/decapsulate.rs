//! Opening one data message, on an established session.
//!
//! A counter is accepted only once, so every iteration needs a message of
//! its own. All three benches work the same way (`iter_custom`): seal
//! [`BATCH`] messages with consecutive counters into one buffer, untimed,
//! then time opening all of them; repeat until criterion's iteration count
//! is reached. Nothing is copied besides what each API does itself:
//!
//! * `ours`: [`Engine::handle_datagram`] decrypts each message in place.
//! * `boringtun`: `Tunn::decapsulate` reads each message and decrypts it
//!   into one output buffer (it copies, as its API requires).
//! * `ring_open`: `LessSafeKey::open_in_place` of each message's payload,
//!   with the nonce from its header: the floor an engine can reach.
//!
//! Both engines check the inner packet (a valid IPv4 header) and their replay
//! window, as they do for every packet.
//!
//! [`Engine::handle_datagram`]: sentrymesh_tunnel::Engine::handle_datagram

use std::hint::black_box;
use std::time::{Duration, Instant};

use boringtun::noise::TunnResult;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use sentrymesh_benches::{
    BATCH, BUF_LEN, BoringtunPair, SIZES, TAG, counter_nonce, ours_established, ring_key,
};
use sentrymesh_tunnel::sim::{ADDR_A, Pair, ipv4_packet};
use sentrymesh_tunnel::{DATA_HEADER_LEN, DATA_OVERHEAD, Received};

/// Runs `iters` iterations in batches: `seal` fills a batch of `stride`-byte
/// datagrams (untimed), `open` is timed on each one.
fn in_batches(
    iters: u64,
    batch: &mut [u8],
    stride: usize,
    mut seal: impl FnMut(&mut [u8]),
    mut open: impl FnMut(&mut [u8]),
) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH as u64) as usize;
        batch.chunks_exact_mut(stride).take(n).for_each(&mut seal);
        let start = Instant::now();
        batch.chunks_exact_mut(stride).take(n).for_each(&mut open);
        elapsed += start.elapsed();
        left -= n as u64;
    }
    elapsed
}

fn ours(group: &mut BenchmarkGroup<'_, WallTime>, len: usize) {
    let mut pair = ours_established(4);
    let packet = ipv4_packet(len, TAG);
    let stride = pair.a.engine.encapsulated_len(len);
    assert_eq!(stride, len + DATA_OVERHEAD, "no padding up to the MTU");
    let mut batch = vec![0u8; BATCH * stride];
    let now = pair.now;
    group.bench_function(BenchmarkId::new("ours", len), |b| {
        b.iter_custom(|iters| {
            let Pair {
                a: initiator,
                b: responder,
                ..
            } = &mut pair;
            in_batches(
                iters,
                &mut batch,
                stride,
                |datagram| {
                    let sealed =
                        initiator
                            .engine
                            .encapsulate(now, initiator.peer, &packet, datagram);
                    assert!(sealed.is_ok(), "{sealed:?}");
                },
                |datagram| match responder.engine.handle_datagram(now, ADDR_A, datagram) {
                    Ok(Received::Packet { packet, .. }) => {
                        black_box(packet);
                    }
                    other => panic!("dropped: {other:?}"),
                },
            )
        });
    });
}

fn boringtun(group: &mut BenchmarkGroup<'_, WallTime>, len: usize) {
    let mut pair = BoringtunPair::established(5);
    let packet = ipv4_packet(len, TAG);
    let stride = len + DATA_OVERHEAD;
    let mut batch = vec![0u8; BATCH * stride];
    let mut dst = vec![0u8; BUF_LEN];
    group.bench_function(BenchmarkId::new("boringtun", len), |b| {
        b.iter_custom(|iters| {
            let BoringtunPair {
                initiator,
                responder,
                ..
            } = &mut pair;
            in_batches(
                iters,
                &mut batch,
                stride,
                |datagram| {
                    let sealed = initiator.encapsulate(&packet, datagram);
                    assert!(
                        matches!(sealed, TunnResult::WriteToNetwork(_)),
                        "{sealed:?}"
                    );
                },
                |datagram| match responder.decapsulate(None, datagram, &mut dst) {
                    TunnResult::WriteToTunnelV4(packet, _) => {
                        black_box(packet);
                    }
                    other => panic!("dropped: {other:?}"),
                },
            )
        });
    });
}

fn ring_open(group: &mut BenchmarkGroup<'_, WallTime>, len: usize) {
    let key = ring_key(&[0x5a; 32]);
    let packet = ipv4_packet(len, TAG);
    let stride = len + DATA_OVERHEAD;
    let mut batch = vec![0u8; BATCH * stride];
    let mut next_counter = 0u64;
    let nonce = |counter| ring::aead::Nonce::assume_unique_for_key(counter_nonce(counter));
    group.bench_function(BenchmarkId::new("ring_open", len), |b| {
        b.iter_custom(|iters| {
            in_batches(
                iters,
                &mut batch,
                stride,
                |datagram| {
                    let counter = next_counter;
                    next_counter += 1;
                    let (header, rest) = datagram.split_at_mut(DATA_HEADER_LEN);
                    header[8..].copy_from_slice(&counter.to_le_bytes());
                    let (body, tag) = rest.split_at_mut(len);
                    body.copy_from_slice(&packet);
                    let sealed = key
                        .seal_in_place_separate_tag(nonce(counter), ring::aead::Aad::empty(), body)
                        .expect("far below the AEAD length limit");
                    tag.copy_from_slice(sealed.as_ref());
                },
                |datagram| {
                    let (header, rest) = datagram.split_at_mut(DATA_HEADER_LEN);
                    let counter = u64::from_le_bytes(header[8..].try_into().expect("8 bytes"));
                    match key.open_in_place(nonce(counter), ring::aead::Aad::empty(), rest) {
                        Ok(packet) => {
                            black_box(packet);
                        }
                        Err(error) => panic!("not opened: {error:?}"),
                    }
                },
            )
        });
    });
}

fn decapsulate(c: &mut Criterion) {
    let mut group = c.benchmark_group("decapsulate");
    for len in SIZES {
        group.throughput(Throughput::Bytes(len as u64));
        ours(&mut group, len);
        boringtun(&mut group, len);
        ring_open(&mut group, len);
    }
    group.finish();
}

criterion::criterion_group! {
    name = benches;
    config = sentrymesh_benches::criterion();
    targets = decapsulate
}
criterion::criterion_main!(benches);
