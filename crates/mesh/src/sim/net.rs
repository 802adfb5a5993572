//! [`Net`]: N nodes on one simulated network under one virtual clock.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;
use sentrymesh_types::{PublicKey, UnixTime};

use crate::gossip::{Gossip, GossipError};

/// After this many rounds of [`Net::run_until_quiet`] without quiet, the
/// nodes are answering each other forever.
const MAX_ROUNDS: usize = 100_000;

/// What the harness drives: a gossiping state machine, sans-IO, as
/// [`Gossip`] and [`Mesh`](crate::Mesh) are.
pub trait Node {
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
    /// How many seconds a message takes, drawn uniformly from the range;
    /// `0..=0` delivers each at once, in the order it was sent.
    pub delay: RangeInclusive<u64>,
}

impl Default for Conditions {
    /// A perfect network: nothing lost, nothing delayed.
    fn default() -> Self {
        Self {
            loss_per_mille: 0,
            delay: 0..=0,
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

/// A message the net delivered, as [`Net::log`] records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// When it arrived.
    pub at: UnixTime,
    /// The index of the sender in [`Net::hosts`].
    pub from: usize,
    /// The index of the recipient.
    pub to: usize,
    /// The message.
    pub bytes: Vec<u8>,
}

/// A message on its way, until its arrival time.
#[derive(Debug)]
struct InFlight {
    from: usize,
    to: usize,
    bytes: Vec<u8>,
}

/// N nodes on a simulated network with one virtual clock — connlib's
/// `sim_net` for the mesh.
///
/// Everything is deterministic: nodes are served in the order they joined,
/// messages in flight are ordered by arrival time and then by the order
/// they were sent, and loss and delay come from the RNG passed to
/// [`Net::new`]. On a perfect network (the default [`Conditions`]) a message
/// is handed over as soon as its sender emits it.
#[derive(Debug)]
pub struct Net<N> {
    /// The nodes, in the order they joined. Change the nodes, not their
    /// keys: messages are routed by the key each was added with.
    pub hosts: Vec<Host<N>>,
    /// The virtual clock, in Unix seconds. A test may set it forward by
    /// hand to hand messages over later without running timers.
    pub now: UnixTime,
    /// What the network does to messages.
    pub conditions: Conditions,
    /// Messages that went nowhere: to a key no node has, to a node that
    /// does not accept the sender, over the recipient's budget, or lost.
    pub dropped: usize,
    rng: ChaCha8Rng,
    /// Where each key's node is in `hosts`: a message is routed by a
    /// lookup, not a scan, in a net of a thousand.
    by_key: BTreeMap<PublicKey, usize>,
    /// Messages on their way, by (arrival time, sequence number).
    in_flight: BTreeMap<(UnixTime, u64), InFlight>,
    sent: u64,
    /// Every delivered message, when recording.
    log: Option<Vec<Delivery>>,
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
            rng,
            by_key: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            sent: 0,
            log: None,
        }
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

    /// Drains every node's output and delivers what is due at the current
    /// time, until no node has anything to send and nothing in flight is
    /// due; time does not move. Returns how many messages were delivered.
    ///
    /// # Panics
    ///
    /// If a node refuses a message for any reason but its sender's budget
    /// (a bug the test should see), or the nodes never go quiet.
    pub fn deliver(&mut self) -> usize {
        let mut delivered = 0;
        for _ in 0..MAX_ROUNDS {
            self.settle();
            let mut quiet = true;
            for from in 0..self.hosts.len() {
                while let Some((to, bytes)) = self.hosts[from].node.poll_transmit() {
                    quiet = false;
                    delivered += self.transmit(from, &to, bytes);
                }
            }
            delivered += self.deliver_due();
            if quiet {
                self.settle();
                return delivered;
            }
        }
        panic!("the nodes did not go quiet after {MAX_ROUNDS} rounds");
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
            let Some(&(at, _)) = self.in_flight.keys().next() else {
                return delivered;
            };
            self.advance_to(at);
            delivered += self.deliver();
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
        let end = self.now.saturating_add(secs);
        loop {
            self.deliver();
            let timeout = self.nodes().filter_map(N::poll_timeout).min();
            let arrival = self.in_flight.keys().next().map(|&(at, _)| at);
            match timeout.into_iter().chain(arrival).min() {
                Some(next) if next <= end => self.advance_to(next),
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
    }

    /// Moves the clock to `at` (never back) and runs the timers due.
    fn advance_to(&mut self, at: UnixTime) {
        self.now = self.now.max(at);
        let now = self.now;
        for node in self.nodes_mut() {
            if node.poll_timeout().is_some_and(|due| due <= now) {
                node.handle_timeout(now);
            }
        }
    }

    fn settle(&mut self) {
        self.nodes_mut().for_each(N::settle);
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
        let (low, high) = self.conditions.delay.clone().into_inner();
        if high == 0 {
            return self.hand_over(from, to, bytes);
        }
        let delay = low + self.rng.next_u64() % (high.saturating_sub(low) + 1);
        self.sent += 1;
        self.in_flight.insert(
            (self.now.saturating_add(delay), self.sent),
            InFlight { from, to, bytes },
        );
        0
    }

    /// Delivers what is in flight and due by now; returns how many arrived.
    fn deliver_due(&mut self) -> usize {
        let mut delivered = 0;
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let InFlight { from, to, bytes } = entry.remove();
            delivered += self.hand_over(from, to, bytes);
        }
        delivered
    }

    /// Gives a message to its recipient if it accepts the sender; returns 1
    /// when it took it.
    fn hand_over(&mut self, from: usize, to: usize, bytes: Vec<u8>) -> usize {
        let sender = self.hosts[from].key;
        let recipient = &mut self.hosts[to].node;
        // The tunnel: no session unless the recipient admits the sender.
        if !recipient.accepts(&sender) {
            self.dropped += 1;
            return 0;
        }
        match recipient.handle_message(sender, &bytes, self.now) {
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
