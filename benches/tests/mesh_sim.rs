//! The mesh simulation bench, run small so it cannot rot unseen: 24 hosts
//! (6 operators) with direct trust and with the web of vouches, on lossy,
//! delayed links, must converge in every phase, admit every operator, and
//! show no hidden host to another operator. Nothing here reads the wall
//! clock's figures.

use sentrymesh_benches::meshsim::{self, Report, Setup, Trust};

fn setup(trust: Trust) -> Setup {
    Setup {
        hosts: 24,
        trust,
        seed: 3,
        loss_per_mille: 10,
        delay_ms: 50,
        jitter_ms: 5,
        timeout_virtual_ms: 60_000,
        steady_rounds: 1,
        memo: true,
        workers: 1,
    }
}

#[test]
fn a_small_mesh_converges_in_every_phase_with_no_hidden_host_shown() {
    for trust in [Trust::Direct, Trust::Web] {
        let report = meshsim::run(&setup(trust), &mut |_| {}).expect("a setup that runs");
        let name = trust.name();
        assert!(report.boot.converged(), "{name}: boot {:?}", report.boot);
        assert!(report.new_card.converged(), "{name}: {:?}", report.new_card);
        assert!(
            report.revocation.converged(),
            "{name}: {:?}",
            report.revocation
        );
        assert_eq!((report.admitted_min, report.admitted_max), (6, 6), "{name}");
        assert_eq!(report.violations, 0, "{name}");
        // Every sentry has 18 peers (its producer, its 2 other sentries, 15
        // others'), so in steady state every host sends something.
        let steady = report.steady.expect("a steady state after convergence");
        assert!(
            steady.messages.mean > 0.0 && steady.bytes.max > 0.0,
            "{name}"
        );
        // The new sentry peers with everyone's sentries and its producer.
        assert_eq!(report.new_card.hosts, 1 + 3 + 15, "{name}");
        assert!(report.store_objects.max > 0.0 && report.store_bytes.max > 0.0);
    }
}

/// What a run did, without what it cost (times and processor figures).
fn what_it_did(r: &Report) -> String {
    let per_round = |p: meshsim::PerRound| (p.rounds, p.messages, p.bytes, p.checks);
    format!(
        "{:?}",
        (
            (r.boot, r.new_card, r.revocation),
            (r.admitted_min, r.admitted_max, r.settle_rounds),
            (per_round(r.converging), r.steady.map(per_round)),
            (r.store_objects, r.store_bytes, r.violations),
            (r.dropped, r.over_budget, r.over_quota, r.checks_asked),
            r.virtual_secs,
        )
    )
}

/// The memo changes what a run costs, not what it does: the hosts ask
/// for the same checks, send the same bytes and converge at the same
/// virtual times with it as without, and it makes fewer checks than they
/// ask for.
#[test]
fn the_memo_answers_the_checks_the_hosts_would_make() {
    for trust in [Trust::Direct, Trust::Web] {
        let name = trust.name();
        let with = meshsim::run(&setup(trust), &mut |_| {}).expect("a setup that runs");
        let without = meshsim::run(
            &Setup {
                memo: false,
                ..setup(trust)
            },
            &mut |_| {},
        )
        .expect("a setup that runs");
        assert!(with.memo && !without.memo);
        assert!(with.checks_asked > 0, "{name}");
        assert_eq!(without.checks_made, without.checks_asked, "{name}");
        assert!(
            with.checks_made < with.checks_asked / 4,
            "{name}: {} made of {}",
            with.checks_made,
            with.checks_asked
        );
        assert_eq!(what_it_did(&with), what_it_did(&without), "{name}");
    }
}

/// Workers change how long a run takes, not what it does: hosts run on
/// three threads give the figures they give on one.
#[test]
fn a_run_is_the_same_on_more_workers() {
    for trust in [Trust::Direct, Trust::Web] {
        let one = meshsim::run(&setup(trust), &mut |_| {}).expect("a setup that runs");
        let three = Setup {
            workers: 3,
            ..setup(trust)
        };
        let three = meshsim::run(&three, &mut |_| {}).expect("a setup that runs");
        assert_eq!(what_it_did(&one), what_it_did(&three), "{}", trust.name());
    }
}

#[test]
fn setups_the_fixtures_cannot_build_are_refused() {
    let mut odd = setup(Trust::Direct);
    odd.hosts = 22;
    assert!(meshsim::run(&odd, &mut |_| {}).is_err());
    let mut small_web = setup(Trust::Web);
    small_web.hosts = 20;
    assert!(meshsim::run(&small_web, &mut |_| {}).is_err());
}
