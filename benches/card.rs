//! What a card costs a member that receives one: decoding a signed card
//! checks its operator's Ed25519 signature and its host's XEdDSA proof of
//! possession. A signed vouch (one Ed25519 signature) is the baseline, so
//! the proof's share is the difference. Issuing (proof and signature) is
//! measured too, for the operator's side.

use std::hint::black_box;

use criterion::Criterion;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sentrymesh_mesh::{HostCard, OperatorSecret, Role, SignedCard, SignedVouch, Vouch};
use sentrymesh_types::{PrivateKey, UnixTime};

/// 2026-05-01 00:00:00 UTC.
const NOW: UnixTime = UnixTime(1_777_593_600);

fn card(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let alice = OperatorSecret::generate(&mut rng);
    let bob = OperatorSecret::generate(&mut rng);
    let host_key = PrivateKey::from_bytes([7; 32]);
    let card = HostCard {
        operator: alice.operator_id(),
        name: "sentry-1".into(),
        role: Role::Sentry,
        wg_public_key: host_key.public_key(),
        addresses: vec!["198.19.1.1/32".parse().unwrap()],
        endpoints: vec!["198.18.1.1:51820".parse().unwrap()],
        allowed_ips: vec![],
        not_before: NOW,
        not_after: NOW + 86_400,
        serial: 1,
        chain_p2p: None,
    };
    let signed = card.issue(&alice, &host_key, &mut rng).unwrap();
    let vouch = Vouch {
        voucher: alice.operator_id(),
        subject: bob.operator_id(),
        overlay: "198.19.2.0/24".parse().unwrap(),
        issued_at: NOW,
    }
    .sign(&alice)
    .unwrap();
    let mut group = c.benchmark_group("card");
    group.bench_function("decode_card", |b| {
        b.iter(|| SignedCard::decode(black_box(signed.as_bytes())).unwrap());
    });
    group.bench_function("decode_vouch", |b| {
        b.iter(|| SignedVouch::decode(black_box(vouch.as_bytes())).unwrap());
    });
    group.bench_function("issue_card", |b| {
        b.iter(|| black_box(&card).issue(&alice, &host_key, &mut rng).unwrap());
    });
    group.finish();
}

criterion::criterion_group! {
    name = benches;
    config = sentrymesh_benches::criterion();
    targets = card
}
criterion::criterion_main!(benches);
