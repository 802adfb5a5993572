//! A complete handshake between two peers that know each other: initiation,
//! response, and the first data message (a keepalive) that confirms the
//! session to the responder, each consumed by the other side.
//!
//! Both run back to back on one pair, each iteration a new handshake:
//!
//! * `ours`: virtual time moves past the end of the last session first
//!   (`REJECT_AFTER_TIME`), so the initiator, which has no usable session,
//!   may initiate at once; the initiation's timestamp grows with that time.
//! * `boringtun`: its initiator starts a new handshake whenever none is in
//!   progress; its timestamps come from the real clock, which advances
//!   between iterations. Its rate limiter never reports load (see
//!   `BoringtunPair`), as ours is not under load.

use std::hint::black_box;

use criterion::Criterion;
use sentrymesh_benches::{BoringtunPair, next_handshake, ours_established};

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    let mut ours = ours_established(6);
    group.bench_function("ours", |b| {
        b.iter(|| next_handshake(black_box(&mut ours)));
    });
    let mut boringtun = BoringtunPair::established(7);
    group.bench_function("boringtun", |b| {
        b.iter(|| black_box(&mut boringtun).handshake());
    });
    group.finish();
}

criterion::criterion_group! {
    name = benches;
    config = sentrymesh_benches::criterion();
    targets = handshake
}
criterion::criterion_main!(benches);
