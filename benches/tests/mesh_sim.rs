//! The mesh simulation bench, run small so it cannot rot unseen: 24 hosts
//! (6 operators) with direct trust and with the web of vouches, on lossy,
//! delayed links, must converge in every phase, admit every operator, and
//! show no hidden host to another operator. Nothing here reads the wall
//! clock's figures.

use sentrymesh_benches::meshsim::{self, Setup, Trust};

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

#[test]
fn setups_the_fixtures_cannot_build_are_refused() {
    let mut odd = setup(Trust::Direct);
    odd.hosts = 22;
    assert!(meshsim::run(&odd, &mut |_| {}).is_err());
    let mut small_web = setup(Trust::Web);
    small_web.hosts = 20;
    assert!(meshsim::run(&small_web, &mut |_| {}).is_err());
}
