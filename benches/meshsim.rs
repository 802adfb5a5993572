//! The mesh simulation bench (issue 14, point 3): a launch group of N
//! hosts — N/4 operators, each a hidden producer and three sentries — as
//! real [`Mesh`] members exchanging real gossip
//! bytes on [`sentrymesh_mesh::sim::Net`], sans-IO, on virtual time, with
//! seeded loss and delay. The `mesh-sim` binary runs it; a test runs it
//! small.
//!
//! ```text
//!   boot        every host starts with its operator's cards (and vouches);
//!               a sentry also with the first sentry of each operator it
//!               trusts directly          → until every host has the peers
//!                                          the cards and peering rules give it
//!   settle      rounds until no store changes (at most SETTLE_ROUNDS):
//!               boot's cost per round is measured until here
//!   steady      --steady-rounds rounds with no change, after the rounds new ids are announced in:
//!               bytes, CPU
//!               (this and what follows only when boot converged)
//!   new card    a fourth sentry of one operator, handed to its sentry-1
//!                                        → until every host that should peer
//!                                          with it has it
//!   revocation  one operator revokes its sentry-3, another its producer,
//!               each handed to its sentry-1
//!                                        → until no host has either as a peer
//! ```
//!
//! Throughout, every message a host sends to another operator's host is
//! read (ids only, no signature checked) for a hidden host's card or
//! revocation, and every store is checked for one after each phase: the
//! hidden-filter violations, which must be 0.
//!
//! The signatures of an object are checked once for the whole net, with
//! each host that checks it charged what the check cost (`checks.rs`):
//! the hosts do and report what they would without it, and a run costs
//! each distinct object's check once.

mod checks;
mod fixture;
mod metered;
mod report;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use checks::Checks;
use fixture::Operator;
pub use fixture::{
    HOSTS_PER_OPERATOR, MAX_OPERATORS, MIN_WEB_OPERATORS, SENTRIES, Trust, WEB_THRESHOLD,
};
use metered::{Census, Meter, Metered};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
pub use report::{Convergence, PerRound, Report, Stat, json, table};
use sentrymesh_mesh::gossip::{LAZY_ROUNDS, ROUND};
use sentrymesh_mesh::sim::{Conditions, Member, Net, checks::install};
use sentrymesh_mesh::testing::NOW;
use sentrymesh_mesh::{Mesh, Object, OperatorId, SignedCard, may_peer};
use sentrymesh_types::PublicKey;

/// A gossip round, in milliseconds.
pub const ROUND_MS: u64 = ROUND * 1000;
/// How often the convergence conditions are checked, in virtual
/// milliseconds: the resolution of the times reported.
pub const STEP_MS: u64 = 10;
/// The most rounds waited after boot for the stores to stop changing
/// before the steady state is measured.
pub const SETTLE_ROUNDS: u64 = 5;

/// One run of the bench.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// Hosts at boot: a multiple of 4.
    pub hosts: usize,
    /// How the operators trust each other.
    pub trust: Trust,
    /// The seed of the network's loss and delay.
    pub seed: u64,
    /// Out of 1000 messages, how many are lost.
    pub loss_per_mille: u16,
    /// One-way delay of every link, in milliseconds.
    pub delay_ms: u64,
    /// Each message's delay is drawn uniformly within this many
    /// milliseconds either side of `delay_ms`.
    pub jitter_ms: u64,
    /// Virtual milliseconds each phase may take before it is reported as
    /// not converged (and, for boot, the run ends).
    pub timeout_virtual_ms: u64,
    /// Rounds of the steady state measured.
    pub steady_rounds: u64,
    /// Whether each distinct object's signatures are checked once for
    /// the whole net (each host still charged the check's cost), or on
    /// every host that asks.
    pub memo: bool,
    /// Threads the hosts run on (`Net::set_workers`): the run is the
    /// same with any number.
    pub workers: usize,
}

/// Why a setup cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// Not 4 hosts per operator, or more operators than the fixtures number.
    Hosts(usize),
    /// Too few operators for a web.
    WebTooSmall(usize),
    /// No steady round to measure.
    NoSteadyRound,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hosts(n) => write!(
                f,
                "{n} hosts: the bench needs a multiple of {HOSTS_PER_OPERATOR} from \
                 {HOSTS_PER_OPERATOR} to {}",
                HOSTS_PER_OPERATOR * MAX_OPERATORS
            ),
            Self::WebTooSmall(n) => write!(
                f,
                "{n} hosts: a web needs {} hosts or more ({MIN_WEB_OPERATORS} operators)",
                HOSTS_PER_OPERATOR * MIN_WEB_OPERATORS
            ),
            Self::NoSteadyRound => f.write_str("--steady-rounds must be 1 or more"),
        }
    }
}

impl std::error::Error for SetupError {}

/// Runs `setup`, telling `progress` what it is doing every few seconds of
/// wall time.
///
/// # Errors
///
/// [`SetupError`] when the setup is not one the fixtures can build.
///
/// # Panics
///
/// If a fixture is refused or a member refuses a message for anything but
/// its budget: bugs the run must show.
pub fn run(setup: &Setup, progress: &mut dyn FnMut(&str)) -> Result<Report, SetupError> {
    let operators = setup.hosts / HOSTS_PER_OPERATOR;
    if setup.hosts % HOSTS_PER_OPERATOR != 0 || operators == 0 || operators > MAX_OPERATORS {
        return Err(SetupError::Hosts(setup.hosts));
    }
    if setup.trust == Trust::Web && operators < MIN_WEB_OPERATORS {
        return Err(SetupError::WebTooSmall(setup.hosts));
    }
    if setup.steady_rounds == 0 {
        return Err(SetupError::NoSteadyRound);
    }
    let started = Started {
        wall: Instant::now(),
        cpu: metered::process_cpu(),
    };
    let name = format!("{} hosts, {}", setup.hosts, setup.trust.name());
    let checks = Arc::new(Checks::new(setup.memo));
    let _installed = install(checks.clone());
    let mut sim = Sim::build(setup, operators, checks);
    progress(&format!(
        "{name}: {} members built in {:.1} s",
        sim.net.hosts.len(),
        started.wall.elapsed().as_secs_f64()
    ));
    let timeout = setup.timeout_virtual_ms;

    let boot = sim.boot(&name, timeout, progress);
    let settle_rounds = boot.converged().then(|| sim.settle(&name, progress));
    // Boot costs until the stores are quiet, not only until the peers are
    // there: most objects still flow after that.
    let booted = sim.net.now_millis() - NOW.0 * 1000;
    let converging = sim.meters_since(
        &vec![Meter::default(); setup.hosts],
        booted.div_ceil(ROUND_MS).max(1),
    );
    sim.check_stores();
    let admitted = sim.admitted();
    if !boot.converged() {
        let found = Found {
            boot,
            new_card: Convergence::skipped(),
            revocation: Convergence::skipped(),
            admitted,
            converging,
            settle_rounds,
            steady: None,
        };
        return Ok(sim.report(setup, found, started));
    }
    progress(&format!(
        "{name}: stores quiet after {} more rounds, wall {:.1} s",
        settle_rounds.unwrap_or_default(),
        started.wall.elapsed().as_secs_f64()
    ));
    // New ids are still announced lazily for LAZY_ROUNDS after the last
    // change: the steady state begins after that.
    sim.net.advance(LAZY_ROUNDS * ROUND_MS);
    let before = sim.meters();
    sim.net.advance(setup.steady_rounds * ROUND_MS);
    let steady = sim.meters_since(&before, setup.steady_rounds);
    sim.check_stores();
    progress(&format!(
        "{name}: steady state measured over {} rounds, wall {:.1} s",
        setup.steady_rounds,
        started.wall.elapsed().as_secs_f64()
    ));
    let new_card = sim.new_card(&name, timeout, progress);
    sim.check_stores();
    let revocation = sim.revoke(&name, timeout, progress);
    sim.check_stores();
    let found = Found {
        boot,
        new_card,
        revocation,
        admitted,
        converging,
        settle_rounds,
        steady: Some(steady),
    };
    Ok(sim.report(setup, found, started))
}

/// When a run started, by the wall clock and by the process's processor
/// time.
struct Started {
    wall: Instant,
    cpu: Option<std::time::Duration>,
}

/// What the phases found, for [`Report`].
struct Found {
    boot: Convergence,
    new_card: Convergence,
    revocation: Convergence,
    /// The fewest and the most operators a host admitted after boot.
    admitted: (usize, usize),
    converging: PerRound,
    settle_rounds: Option<u64>,
    steady: Option<PerRound>,
}

/// The net and what the bench knows about it.
struct Sim {
    net: Net<Metered>,
    operators: Vec<Operator>,
    /// Host `i`'s card, as `net.hosts[i]` runs it.
    cards: Vec<SignedCard>,
    /// Every operator: whom every host should admit.
    everyone: BTreeSet<OperatorId>,
    census: Arc<Census>,
    /// The signature checks the hosts ask for.
    checks: Arc<Checks>,
    /// Each host's largest `Store::encode`, sampled after each phase.
    peak_store_bytes: Vec<usize>,
    /// Hidden hosts' objects found in another operator's store.
    store_violations: u64,
}

impl Sim {
    fn build(setup: &Setup, count: usize, checks: Arc<Checks>) -> Self {
        let operators = fixture::operators(count, setup.trust);
        let mut census = Census::default();
        for op in &operators {
            for card in op.hosts.iter().chain([&new_sentry(op.number)]) {
                census.add_host(card.card().wg_public_key, op.number);
            }
            census.add_hidden(Object::from(op.hosts[0].clone()).id(), op.number);
        }
        let (_, producer) = revoked(&operators);
        let producer_op = operators[2 * count / 3].number;
        census.add_hidden(
            Object::from(fixture::revocation(producer_op, &producer)).id(),
            producer_op,
        );
        let census = Arc::new(census);
        let mut net = Net::new(NOW, ChaCha8Rng::seed_from_u64(setup.seed));
        net.set_workers(setup.workers);
        net.conditions = Conditions {
            loss_per_mille: setup.loss_per_mille,
            delay_ms: setup.delay_ms.saturating_sub(setup.jitter_ms)
                ..=setup.delay_ms.saturating_add(setup.jitter_ms),
        };
        let mut cards = Vec::new();
        for op in &operators {
            for (slot, card) in (0..=SENTRIES).zip(&op.hosts) {
                let store = fixture::boot_store(op, slot, &operators);
                add_member(&mut net, &census, op, card.clone(), store);
                cards.push(card.clone());
            }
        }
        Self {
            peak_store_bytes: vec![0; net.hosts.len()],
            everyone: fixture::ids(&operators),
            net,
            operators,
            cards,
            census,
            checks,
            store_violations: 0,
        }
    }

    /// Runs from boot until every host has the peers it should.
    fn boot(&mut self, name: &str, timeout: u64, progress: &mut dyn FnMut(&str)) -> Convergence {
        let expected: Vec<Vec<PublicKey>> = self
            .cards
            .iter()
            .map(|local| {
                let mut peers: Vec<PublicKey> = self
                    .cards
                    .iter()
                    .filter(|remote| may_peer(local.card(), remote.card(), &self.everyone))
                    .map(|remote| remote.card().wg_public_key)
                    .collect();
                peers.sort_unstable();
                peers
            })
            .collect();
        let hosts: Vec<usize> = (0..self.cards.len()).collect();
        let done = |net: &Net<Metered>, host: usize| {
            mesh(net, host)
                .peers()
                .map(|p| p.public_key)
                .eq(expected[host].iter().copied())
        };
        let boot = self.run_until(&format!("{name}, boot"), timeout, &hosts, done, progress);
        self.sample_store_bytes();
        boot
    }

    /// Runs whole rounds after boot until one passes in which no store
    /// changed, at most [`SETTLE_ROUNDS`]; returns how many ran.
    fn settle(&mut self, name: &str, progress: &mut dyn FnMut(&str)) -> u64 {
        let wall = Instant::now();
        for round in 1..=SETTLE_ROUNDS {
            let before = self.generations();
            self.net.advance(ROUND_MS);
            let changed = self
                .generations()
                .iter()
                .zip(&before)
                .filter(|(now, then)| now != then)
                .count();
            progress(&format!(
                "{name}, settle: round {round}, {changed} stores changed, wall {:.1} s",
                wall.elapsed().as_secs_f64()
            ));
            if changed == 0 {
                return round;
            }
        }
        SETTLE_ROUNDS
    }

    /// A fourth sentry of the middle operator boots, and its card is handed
    /// to its operator's sentry-1; runs until every host that should peer
    /// with it has it.
    fn new_card(
        &mut self,
        name: &str,
        timeout: u64,
        progress: &mut dyn FnMut(&str),
    ) -> Convergence {
        let place = self.operators.len() / 2;
        let op = &self.operators[place];
        let card = new_sentry(op.number);
        let key = card.card().wg_public_key;
        let mut store = fixture::boot_store(op, SENTRIES + 1, &self.operators);
        store
            .insert_card(card.clone(), self.net.now)
            .expect("its own card");
        let holders: Vec<usize> = (0..self.cards.len())
            .filter(|&h| may_peer(self.cards[h].card(), card.card(), &self.everyone))
            .collect();
        let census = Arc::clone(&self.census);
        add_member(&mut self.net, &census, op, card.clone(), store);
        self.cards.push(card.clone());
        self.peak_store_bytes.push(0);
        self.hand(place * HOSTS_PER_OPERATOR + 1, card.into());
        let done = |net: &Net<Metered>, host: usize| mesh(net, host).peer(&key).is_some();
        let outcome = self.run_until(
            &format!("{name}, new card"),
            timeout,
            &holders,
            done,
            progress,
        );
        self.sample_store_bytes();
        outcome
    }

    /// One operator revokes its sentry-3 and another its (hidden)
    /// producer, each through its sentry-1; runs until no host has either
    /// as a peer.
    fn revoke(&mut self, name: &str, timeout: u64, progress: &mut dyn FnMut(&str)) -> Convergence {
        let count = self.operators.len();
        let (sentry, producer) = revoked(&self.operators);
        let (sentry_place, producer_place) = (count / 3, 2 * count / 3);
        let keys = [sentry.card().wg_public_key, producer.card().wg_public_key];
        for (place, card) in [(sentry_place, &sentry), (producer_place, &producer)] {
            let revocation = fixture::revocation(self.operators[place].number, card);
            self.hand(place * HOSTS_PER_OPERATOR + 1, revocation.into());
        }
        let hosts: Vec<usize> = (0..self.net.hosts.len()).collect();
        let done = |net: &Net<Metered>, host: usize| {
            let mesh = mesh(net, host);
            keys.iter().all(|key| mesh.peer(key).is_none())
        };
        let outcome = self.run_until(
            &format!("{name}, revocation"),
            timeout,
            &hosts,
            done,
            progress,
        );
        self.sample_store_bytes();
        outcome
    }

    /// Gives host `index` an object, as its operator would through the
    /// control socket.
    fn hand(&mut self, index: usize, object: Object) {
        let now = self.net.now;
        self.net.hosts[index]
            .node
            .member
            .mesh
            .insert(object, now)
            .expect("the host takes its operator's object");
        self.net.wake(index);
    }

    /// Steps the net by [`STEP_MS`] until `done` holds for every host of
    /// `hosts`, or `timeout` virtual milliseconds passed.
    fn run_until(
        &mut self,
        phase: &str,
        timeout: u64,
        hosts: &[usize],
        done: impl Fn(&Net<Metered>, usize) -> bool,
        progress: &mut dyn FnMut(&str),
    ) -> Convergence {
        let (start, wall) = (self.net.now_millis(), Instant::now());
        let mut told = Instant::now();
        // Hosts before the cursor were done when last looked at; the
        // whole list is checked again before it counts as done.
        let mut cursor = 0;
        loop {
            let elapsed = self.net.now_millis() - start;
            while cursor < hosts.len() && done(&self.net, hosts[cursor]) {
                cursor += 1;
            }
            if cursor == hosts.len() {
                match hosts.iter().position(|&h| !done(&self.net, h)) {
                    None => {
                        progress(&format!(
                            "{phase}: all {} hosts in {:.2} virtual s, wall {:.1} s",
                            hosts.len(),
                            elapsed as f64 / 1000.0,
                            wall.elapsed().as_secs_f64()
                        ));
                        return Convergence::reached(elapsed, hosts.len());
                    }
                    Some(first) => cursor = first,
                }
            }
            if elapsed >= timeout {
                let reached = hosts.iter().filter(|&&h| done(&self.net, h)).count();
                progress(&format!(
                    "{phase}: {reached} of {} hosts after {:.2} virtual s (the timeout), wall \
                     {:.1} s",
                    hosts.len(),
                    elapsed as f64 / 1000.0,
                    wall.elapsed().as_secs_f64()
                ));
                return Convergence::timed_out(elapsed, reached, hosts.len());
            }
            if told.elapsed().as_secs() >= 5 {
                told = Instant::now();
                progress(&format!(
                    "{phase}: {cursor} of {} hosts at {:.2} virtual s, wall {:.1} s",
                    hosts.len(),
                    elapsed as f64 / 1000.0,
                    wall.elapsed().as_secs_f64()
                ));
            }
            self.net.advance(STEP_MS);
        }
    }

    /// The fewest and the most operators a host admits (its own counted).
    fn admitted(&self) -> (usize, usize) {
        let counts = self
            .net
            .nodes()
            .map(|n| n.member.mesh.admitted_operators().len());
        let (min, max) = counts.fold((usize::MAX, 0), |(lo, hi), c| (lo.min(c), hi.max(c)));
        (min.min(max), max)
    }

    fn meters(&self) -> Vec<Meter> {
        self.net.nodes().map(|n| n.meter).collect()
    }

    /// What each host did since `before` (hosts added since counted from
    /// zero), per round over `rounds` rounds.
    fn meters_since(&self, before: &[Meter], rounds: u64) -> PerRound {
        let zero = Meter::default();
        let deltas: Vec<Meter> = self
            .net
            .nodes()
            .enumerate()
            .map(|(i, n)| n.meter.since(before.get(i).unwrap_or(&zero)))
            .collect();
        PerRound::of(&deltas, rounds)
    }

    fn generations(&self) -> Vec<u64> {
        self.net
            .nodes()
            .map(|n| n.member.mesh.store().generation())
            .collect()
    }

    fn sample_store_bytes(&mut self) {
        for (peak, node) in self.peak_store_bytes.iter_mut().zip(self.net.nodes()) {
            *peak = (*peak).max(node.member.mesh.store().encode().len());
        }
    }

    /// Counts the hidden hosts' objects in stores of other operators.
    fn check_stores(&mut self) {
        for node in self.net.nodes() {
            let store = node.member.mesh.store();
            self.store_violations += self
                .census
                .hidden()
                .filter(|&(id, &op)| op != node.member.op && store.contains(id))
                .count() as u64;
        }
    }

    fn report(&self, setup: &Setup, found: Found, started: Started) -> Report {
        let Found {
            boot,
            new_card,
            revocation,
            admitted: (admitted_min, admitted_max),
            converging,
            settle_rounds,
            steady,
        } = found;
        let nodes: Vec<&Metered> = self.net.nodes().collect();
        let peak_objects: Vec<f64> = nodes.iter().map(|n| n.meter.peak_objects as f64).collect();
        let peak_bytes: Vec<f64> = self.peak_store_bytes.iter().map(|&b| b as f64).collect();
        let message_violations: u64 = nodes.iter().map(|n| n.meter.violations).sum();
        let stats: Vec<_> = nodes.iter().map(|n| n.member.mesh.stats()).collect();
        Report {
            hosts: setup.hosts,
            operators: self.operators.len(),
            trust: setup.trust,
            seed: setup.seed,
            loss_per_mille: setup.loss_per_mille,
            delay_ms: setup.delay_ms,
            jitter_ms: setup.jitter_ms,
            admitted_min,
            admitted_max,
            boot,
            new_card,
            revocation,
            converging,
            settle_rounds,
            steady,
            store_objects: Stat::of(&peak_objects),
            store_bytes: Stat::of(&peak_bytes),
            violations: message_violations + self.store_violations,
            dropped: self.net.dropped as u64,
            over_budget: stats.iter().map(|s| s.messages_over_budget).sum(),
            over_quota: stats.iter().map(|s| s.objects_over_quota).sum(),
            virtual_secs: self.net.now.secs_since(NOW),
            wall_secs: started.wall.elapsed().as_secs_f64(),
            cpu_secs: match (started.cpu, metered::process_cpu()) {
                (Some(start), Some(end)) => end.saturating_sub(start).as_secs_f64(),
                _ => 0.0,
            },
            member_cpu_secs: nodes.iter().map(|n| n.meter.cpu.as_secs_f64()).sum(),
            memo: setup.memo,
            checks_asked: self.checks.asked(),
            checks_made: self.checks.made(),
        }
    }
}

/// The member at `host`.
fn mesh(net: &Net<Metered>, host: usize) -> &Mesh {
    &net.hosts[host].node.member.mesh
}

/// The new sentry of operator `op`: `sentry-4`.
fn new_sentry(op: u8) -> SignedCard {
    fixture::host(op, SENTRIES + 1)
}

/// The hosts the revocation phase revokes: sentry-3 of the operator a
/// third of the way round, the producer of the one two thirds round.
fn revoked(operators: &[Operator]) -> (SignedCard, SignedCard) {
    let count = operators.len();
    (
        operators[count / 3].hosts[usize::from(SENTRIES)].clone(),
        operators[2 * count / 3].hosts[0].clone(),
    )
}

/// Adds a host of `op` with `card` and `store` to the net, metered.
fn add_member(
    net: &mut Net<Metered>,
    census: &Arc<Census>,
    op: &Operator,
    card: SignedCard,
    store: sentrymesh_mesh::Store,
) {
    let key = card.card().wg_public_key;
    let mesh = Mesh::new(card, op.policy.clone(), store, net.now).expect("a member");
    let member = Member {
        op: op.number,
        mesh,
        configured: Default::default(),
        removed: Vec::new(),
    };
    net.add(key, Metered::new(member, Arc::clone(census)));
}
