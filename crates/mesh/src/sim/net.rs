//! [`Net`]: N nodes on one simulated network under one virtual clock.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;

use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;
use sentrymesh_types::{PublicKey, UnixTime};

use super::schedule::{InFlight, Pending, Queue, Timers};
use super::workers;
use crate::gossip::{Gossip, GossipError};

/// After this many rounds of [`Net::run_until_quiet`] without quiet, the
/// nodes are answering each other forever.
const MAX_ROUNDS: usize = 100_000;
/// Milliseconds in a second of [`UnixTime`].
const MILLIS: u64 = 1000;

/// What the harness drives: a gossiping state machine, sans-IO, as
/// [`Gossip`] and [`Mesh`](crate::Mesh) are; `Send`, as a net with
/// workers runs nodes on several threads.
pub trait Node: Send {
    /// Takes a message from the node whose WireGuard key is `from`.
    ///
    /// # Errors
    ///
    /// Why the node dropped it.
    fn handle_message(
        &mut self,
        from: PublicKey,
        bytes: &[u8],
        now: UnixTime,
    ) -> Result<(), GossipError>;

    /// The next message to send, and to whom.
    fn poll_transmit(&mut self) -> Option<(PublicKey, Vec<u8>)>;

    /// When [`Node::handle_timeout`] next has work.
    fn poll_timeout(&self) -> Option<UnixTime>;

    /// Runs the timers due at `now`.
    fn handle_timeout(&mut self, now: UnixTime);

    /// Whether a message from `from` reaches this node at all: a tunnel
    /// carries it only when the node admits the sender as a peer.
    fn accepts(&self, from: &PublicKey) -> bool;

    /// Called after every round of deliveries, to drain what else the node
    /// reports (peer events).
    fn settle(&mut self) {}

    /// Takes the messages that arrived for this node at one time, in
    /// order: each that reaches it ([`Node::accepts`]) is handled
    /// ([`Node::handle_message`]). A node may override it to do something
    /// around the whole batch, as a bench timing it once.
    fn handle_messages(&mut self, messages: &[(PublicKey, &[u8])], now: UnixTime) -> Vec<Arrival> {
        messages
            .iter()
            .map(|&(from, bytes)| {
                if self.accepts(&from) {
                    Arrival::Handled(self.handle_message(from, bytes, now))
                } else {
                    Arrival::Refused
                }
            })
            .collect()
    }

    /// [`Node::settle`], then every message the node has to send
    /// ([`Node::poll_transmit`]), in order, into `out`. A node may
    /// override it as [`Node::handle_messages`].
    fn poll_output(&mut self, out: &mut Vec<(PublicKey, Vec<u8>)>) {
        self.settle();
        while let Some(message) = self.poll_transmit() {
            out.push(message);
        }
    }
}

/// What became of a message that arrived at its recipient's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// The recipient does not accept the sender: no tunnel carried it.
    Refused,
    /// The recipient took it, and what it said.
    Handled(Result<(), GossipError>),
}

/// The gossip machine alone: every message reaches it, and it refuses
/// strangers itself.
impl Node for Gossip {
    fn handle_message(
        &mut self,
        from: PublicKey,
        bytes: &[u8],
        now: UnixTime,
    ) -> Result<(), GossipError> {
        Gossip::handle_message(self, from, bytes, now)
    }

    fn poll_transmit(&mut self) -> Option<(PublicKey, Vec<u8>)> {
        Gossip::poll_transmit(self)
    }

    fn poll_timeout(&self) -> Option<UnixTime> {
        Gossip::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: UnixTime) {
        Gossip::handle_timeout(self, now);
    }

    fn accepts(&self, _from: &PublicKey) -> bool {
        true
    }
}

/// What the network does to the messages it carries, drawn from the net's
/// seeded RNG: the same seed loses and delays the same messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conditions {
    /// Out of 1000 messages, how many are lost on the way.
    pub loss_per_mille: u16,
    /// How many milliseconds a message takes, drawn uniformly from the
    /// range; `0..=0` delivers each at once, in the order it was sent.
    pub delay_ms: RangeInclusive<u64>,
}

impl Conditions {
    /// Whether every message waits in flight, if only until the end of the
    /// step it was sent in: with no delay at all, each is handed over as
    /// soon as its sender emits it.
    fn queues(&self) -> bool {
        *self.delay_ms.end() > 0
    }
}

impl Default for Conditions {
    /// A perfect network: nothing lost, nothing delayed.
    fn default() -> Self {
        Self {
            loss_per_mille: 0,
            delay_ms: 0..=0,
        }
    }
}

/// A node on the net, with its WireGuard key: where messages to it go.
#[derive(Debug)]
pub struct Host<N> {
    /// The key messages to this node are addressed to.
    pub key: PublicKey,
    /// The machine under test.
    pub node: N,
}

/// A message due at its recipient, as [`Net::deliver_due`] hands it over.
struct Arrived {
    /// Its place among the messages due at the time: the order they
    /// arrived in.
    place: usize,
    /// The index of the sender.
    from: usize,
    /// The sender's key, as the recipient is given it.
    key: PublicKey,
    /// The message.
    bytes: Vec<u8>,
}

/// A message the net delivered, as [`Net::log`] records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// When it arrived (the second the recipient was given).
    pub at: UnixTime,
    /// The index of the sender in [`Net::hosts`].
    pub from: usize,
    /// The index of the recipient.
    pub to: usize,
    /// The message.
    pub bytes: Vec<u8>,
}

/// N nodes on a simulated network with one virtual clock — connlib's
/// `sim_net` for the mesh.
///
/// The clock counts milliseconds, so a link can take 50 ms; the nodes are
/// given its whole seconds ([`Net::now`]), as they take [`UnixTime`].
/// Everything is deterministic: the nodes with work are served in the
/// order they joined, messages in flight are ordered by arrival time and
/// then by the order they were sent, and loss and delay come from the RNG
/// passed to [`Net::new`]. On a perfect network (the default
/// [`Conditions`]) a message is handed over as soon as its sender emits
/// it.
///
/// Only a node that took a message or ran a timer since it was last
/// drained is asked for output, and timers and messages in flight wait in
/// a heap and in buckets by arrival: a step of the net costs what the
/// nodes it wakes do, not a pass over all of them. [`Net::deliver`] and
/// the runs start by draining every node once, for what a test changed in
/// them by hand.
///
/// With [`Net::set_workers`] the nodes a step wakes run on several
/// threads, each call on its own node: the messages that arrive at one
/// time, the timers due at one time, and (when messages are delayed) the
/// draining of every pending node. Their results are taken in the order
/// the nodes joined, so a run is the same with any number of workers.
#[derive(Debug)]
pub struct Net<N> {
    /// The nodes, in the order they joined. Change the nodes, not their
    /// keys: messages are routed by the key each was added with.
    pub hosts: Vec<Host<N>>,
    /// The virtual clock's whole seconds, as the nodes are given them. A
    /// test may set it forward by hand to hand messages over later without
    /// running timers.
    pub now: UnixTime,
    /// What the network does to messages.
    pub conditions: Conditions,
    /// Messages that went nowhere: to a key no node has, to a node that
    /// does not accept the sender, over the recipient's budget, or lost.
    pub dropped: usize,
    /// The clock's milliseconds past [`Net::now`], below 1000.
    millis: u64,
    rng: ChaCha8Rng,
    /// Where each key's node is in `hosts`: a message is routed by a
    /// lookup, not a scan, in a net of a thousand.
    by_key: HashMap<PublicKey, usize>,
    /// Messages on their way.
    in_flight: Queue,
    /// Each node's next timeout.
    timers: Timers,
    /// The nodes to drain.
    pending: Pending,
    /// Every delivered message, when recording.
    log: Option<Vec<Delivery>>,
    /// Threads the nodes a step wakes run on.
    workers: usize,
}

impl<N: Node> Net<N> {
    /// An empty net at `now` on a perfect network, drawing loss and delay
    /// from `rng`, recording nothing.
    pub fn new(now: UnixTime, rng: ChaCha8Rng) -> Self {
        Self {
            hosts: Vec::new(),
            now,
            conditions: Conditions::default(),
            dropped: 0,
            millis: 0,
            rng,
            by_key: HashMap::new(),
            in_flight: Queue::default(),
            timers: Timers::default(),
            pending: Pending::default(),
            log: None,
            workers: 1,
        }
    }

    /// Runs the nodes a step wakes on up to `workers` threads (1, the
    /// default, runs everything on the caller's); each thread has the
    /// caller's [`Checker`](super::Checker), if one is installed.
    pub fn set_workers(&mut self, workers: usize) {
        self.workers = workers.max(1);
    }

    /// Starts recording every delivered message in [`Net::log`] (from now
    /// on; a net of a thousand nodes may prefer not to).
    pub fn record(&mut self) {
        self.log.get_or_insert_with(Vec::new);
    }

    /// Every message delivered since [`Net::record`], in order; empty when
    /// not recording.
    pub fn log(&self) -> &[Delivery] {
        self.log.as_deref().unwrap_or_default()
    }

    /// Adds `node`, reached at `key`; returns its index in [`Net::hosts`].
    ///
    /// # Panics
    ///
    /// If another node is reached at `key` already.
    pub fn add(&mut self, key: PublicKey, node: N) -> usize {
        let index = self.hosts.len();
        assert!(
            self.by_key.insert(key, index).is_none(),
            "two nodes with one key"
        );
        self.hosts.push(Host { key, node });
        self.timers.add_node(index);
        self.pending.mark(index);
        index
    }

    /// The index of the node reached at `key`.
    pub fn index_of(&self, key: &PublicKey) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    /// The nodes, in the order they joined.
    pub fn nodes(&self) -> impl Iterator<Item = &N> {
        self.hosts.iter().map(|host| &host.node)
    }

    /// The nodes, to change.
    pub fn nodes_mut(&mut self) -> impl Iterator<Item = &mut N> {
        self.hosts.iter_mut().map(|host| &mut host.node)
    }

    /// Messages on their way.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The virtual clock, in milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> u64 {
        self.now
            .0
            .saturating_mul(MILLIS)
            .saturating_add(self.millis)
    }

    /// Drains every node's output and delivers what is due at the current
    /// time, until no node has anything to send and nothing in flight is
    /// due; time does not move. Returns how many messages were delivered.
    ///
    /// # Panics
    ///
    /// If a node refuses a message for any reason but its sender's budget
    /// (a bug the test should see), or the nodes never go quiet.
    pub fn deliver(&mut self) -> usize {
        self.pending.mark_all(self.hosts.len());
        self.drain()
    }

    /// [`Net::deliver`], then lets virtual time run (and timers fire) until
    /// nothing is left in flight. Returns how many messages were delivered.
    ///
    /// # Panics
    ///
    /// As [`Net::deliver`]; and if the net never goes quiet, as when
    /// messages take as long as the period of the nodes' timers.
    pub fn run_until_quiet(&mut self) -> usize {
        let mut delivered = self.deliver();
        for _ in 0..MAX_ROUNDS {
            let Some(at) = self.in_flight.next_arrival() else {
                return delivered;
            };
            self.advance_to(at);
            delivered += self.drain();
        }
        panic!("messages were still in flight after {MAX_ROUNDS} arrivals");
    }

    /// Runs for `secs` seconds of virtual time, jumping from one timeout or
    /// arrival to the next and delivering everything due at each.
    ///
    /// # Panics
    ///
    /// As [`Net::deliver`].
    pub fn run_for(&mut self, secs: u64) {
        self.deliver();
        self.advance(secs.saturating_mul(MILLIS));
    }

    /// Marks node `index` to be drained at the next step: after a caller
    /// changed it by hand (gave it an object), before [`Net::advance`].
    ///
    /// # Panics
    ///
    /// If there is no node `index`.
    pub fn wake(&mut self, index: usize) {
        assert!(index < self.hosts.len(), "no node {index}");
        self.pending.mark(index);
    }

    /// Lets `millis` milliseconds of virtual time run as [`Net::run_for`]
    /// does, but without first draining every node: only what a timer, an
    /// arrival or [`Net::wake`] woke is served. For a caller that steps a
    /// large net in small steps; a node changed by hand since the last
    /// step must be woken, or its output waits for its next input.
    ///
    /// # Panics
    ///
    /// As [`Net::deliver`].
    pub fn advance(&mut self, millis: u64) {
        let end = self.now_millis().saturating_add(millis);
        self.drain();
        loop {
            let timeout = self.timers.next();
            let arrival = self.in_flight.next_arrival();
            match timeout.into_iter().chain(arrival).min() {
                Some(next) if next <= end => {
                    self.advance_to(next);
                    self.drain();
                }
                _ => {
                    self.set_clock(end);
                    return;
                }
            }
        }
    }

    /// Drains the pending nodes' output, in the order they joined, and
    /// delivers what is due, until no node is pending. Returns how many
    /// messages were delivered.
    fn drain(&mut self) -> usize {
        let mut delivered = 0;
        for _ in 0..MAX_ROUNDS {
            if self.conditions.queues() {
                self.poll_pending();
            } else {
                delivered += self.poll_pending_in_turn();
            }
            delivered += self.deliver_due();
            if self.pending.is_empty() {
                return delivered;
            }
        }
        panic!("the nodes did not go quiet after {MAX_ROUNDS} rounds");
    }

    /// Drains every pending node (on the workers), then puts what each
    /// sent on the network in the order the nodes joined: as
    /// [`Net::poll_pending_in_turn`] does when every message is queued, as
    /// no node's output then depends on another's.
    fn poll_pending(&mut self) {
        let nodes = self.pending.take_all();
        let jobs = nodes.iter().map(|&index| (index, ())).collect();
        let outputs = workers::run(self.workers, &mut self.hosts, jobs, |node, ()| {
            let mut out = Vec::new();
            node.poll_output(&mut out);
            out
        });
        for (from, out) in nodes.into_iter().zip(outputs) {
            for (to, bytes) in out {
                self.transmit(from, &to, bytes);
            }
            self.arm(from);
        }
    }

    /// Drains the pending nodes one by one in the order they joined, each
    /// message handed over as it is sent when the network does not delay
    /// it (a node drained later in the pass sees it). Returns how many
    /// messages were delivered.
    fn poll_pending_in_turn(&mut self) -> usize {
        let mut delivered = 0;
        let mut cursor = 0;
        while let Some(from) = self.pending.take_from(cursor) {
            cursor = from + 1;
            self.hosts[from].node.settle();
            while let Some((to, bytes)) = self.hosts[from].node.poll_transmit() {
                delivered += self.transmit(from, &to, bytes);
            }
            self.arm(from);
        }
        delivered
    }

    /// Moves the clock to `at` milliseconds (never back) and runs the
    /// timers due (on the workers).
    fn advance_to(&mut self, at: u64) {
        self.set_clock(self.now_millis().max(at));
        let (now, now_millis) = (self.now, self.now_millis());
        let mut due = Vec::new();
        while let Some(index) = self.timers.pop_due(now_millis) {
            due.push(index);
        }
        // Each timer runs on its own node: their order does not matter.
        due.sort_unstable();
        let jobs = due.iter().map(|&index| (index, ())).collect();
        workers::run(self.workers, &mut self.hosts, jobs, |node, ()| {
            node.handle_timeout(now);
        });
        for index in due {
            self.pending.mark(index);
        }
    }

    fn set_clock(&mut self, millis: u64) {
        self.now = UnixTime(millis / MILLIS);
        self.millis = millis % MILLIS;
    }

    /// Arms node `index`'s timer at what it asks for: the start of that
    /// second.
    fn arm(&mut self, index: usize) {
        let due = self.hosts[index].node.poll_timeout();
        self.timers
            .arm(index, due.map(|at| at.0.saturating_mul(MILLIS)));
    }

    /// Puts a message on the network: lost, queued for later, or (on a
    /// network without delay) handed over at once. Returns 1 when it was
    /// delivered now.
    fn transmit(&mut self, from: usize, to: &PublicKey, bytes: Vec<u8>) -> usize {
        let Some(to) = self.index_of(to) else {
            self.dropped += 1;
            return 0;
        };
        let loss = u32::from(self.conditions.loss_per_mille);
        if loss > 0 && self.rng.next_u32() % 1000 < loss {
            self.dropped += 1;
            return 0;
        }
        let (low, high) = self.conditions.delay_ms.clone().into_inner();
        if high == 0 {
            return self.hand_over(from, to, bytes);
        }
        let delay = low + self.rng.next_u64() % (high.saturating_sub(low) + 1);
        let at = self.now_millis().saturating_add(delay);
        self.in_flight.push(at, from, to, bytes);
        0
    }

    /// Delivers what is in flight and due by now, each recipient's
    /// messages in the order they arrived (the recipients on the workers),
    /// and accounts for them in that order; returns how many arrived.
    fn deliver_due(&mut self) -> usize {
        let due = self.in_flight.take_due(self.now_millis());
        if due.is_empty() {
            return 0;
        }
        let count = due.len();
        let mut by_recipient: BTreeMap<usize, Vec<Arrived>> = BTreeMap::new();
        for (place, InFlight { from, to, bytes }) in due.into_iter().enumerate() {
            let key = self.hosts[from].key;
            let arrived = Arrived {
                place,
                from,
                key,
                bytes,
            };
            by_recipient.entry(to).or_default().push(arrived);
        }
        let recipients: Vec<usize> = by_recipient.keys().copied().collect();
        let now = self.now;
        let jobs = by_recipient.into_iter().collect();
        let handled = workers::run(self.workers, &mut self.hosts, jobs, |node, messages| {
            let batch: Vec<(PublicKey, &[u8])> =
                messages.iter().map(|m| (m.key, &m.bytes[..])).collect();
            let arrivals = node.handle_messages(&batch, now);
            (messages, arrivals)
        });
        let mut in_order = Vec::with_capacity(count);
        for (to, (messages, arrivals)) in recipients.into_iter().zip(handled) {
            for (message, arrival) in messages.into_iter().zip(arrivals) {
                in_order.push((to, message, arrival));
            }
        }
        in_order.sort_unstable_by_key(|(_, message, _)| message.place);
        in_order
            .into_iter()
            .map(|(to, message, arrival)| self.account(message.from, to, message.bytes, arrival))
            .sum()
    }

    /// Gives a message to its recipient if it accepts the sender; returns 1
    /// when it took it.
    fn hand_over(&mut self, from: usize, to: usize, bytes: Vec<u8>) -> usize {
        let sender = self.hosts[from].key;
        let recipient = &mut self.hosts[to].node;
        // The tunnel: no session unless the recipient admits the sender.
        let arrival = if recipient.accepts(&sender) {
            Arrival::Handled(recipient.handle_message(sender, &bytes, self.now))
        } else {
            Arrival::Refused
        };
        self.account(from, to, bytes, arrival)
    }

    /// Counts what became of a message from `from` to `to`, marks a
    /// recipient that took it to be drained, and logs it when recording;
    /// returns 1 when the recipient took it.
    ///
    /// # Panics
    ///
    /// If the recipient refused it for any reason but its sender's budget.
    fn account(&mut self, from: usize, to: usize, bytes: Vec<u8>, arrival: Arrival) -> usize {
        let Arrival::Handled(result) = arrival else {
            self.dropped += 1;
            return 0;
        };
        self.pending.mark(to);
        match result {
            Ok(()) => {}
            // A sender that a test made flood this node: gossip drops what
            // is over its budget, and asks again later.
            Err(GossipError::OverBudget { .. }) => {
                self.dropped += 1;
                return 0;
            }
            Err(error) => panic!("node {to} refused a message from node {from}: {error}"),
        }
        if let Some(log) = &mut self.log {
            log.push(Delivery {
                at: self.now,
                from,
                to,
                bytes,
            });
        }
        1
    }
}
