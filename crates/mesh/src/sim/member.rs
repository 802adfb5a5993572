//! Meshes of operators on a [`Net`]: each node a [`Member`] (one host's
//! [`Mesh`]), its messages carried the way a tunnel would carry them — to
//! a host only when that host admits the sender as a peer — with the cards
//! and trust policies of the [`testing`](crate::testing) fixtures.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use rand_chacha::{ChaCha8Rng, ChaCha20Rng};
use rand_core::SeedableRng;
use sentrymesh_types::{PublicKey, UnixTime};

use super::net::{Net, Node};
use crate::bundle;
use crate::card::{HostCard, SignedCard};
use crate::gossip::{GossipError, GossipMessage};
use crate::member::Mesh;
use crate::object::Object;
use crate::peers::{PeerEvent, PeerSpec};
use crate::role::Role;
use crate::store::Store;
use crate::testing::{NOW, SignCard, operator, overlay_of, wg_key};
use crate::trust::TrustPolicy;

/// Host `i` of operator `op`: overlay address 198.19.`op`.`i` (in its
/// operator's range,
/// [`testing::operator_range`](crate::testing::operator_range)), endpoint
/// 198.18.`op`.`i`:51820 unless hidden, valid from an hour before [`NOW`]
/// for thirty days.
pub fn host_card(op: u8, name: &str, role: Role, i: u8) -> SignedCard {
    host_card_with(op, name, role, i, |_| {})
}

/// [`host_card`], changed by `edit` before its operator signs it.
///
/// # Panics
///
/// If `edit` made a card its operator cannot sign.
pub fn host_card_with(
    op: u8,
    name: &str,
    role: Role,
    i: u8,
    edit: impl FnOnce(&mut HostCard),
) -> SignedCard {
    let secret = operator(op);
    let mut key = [0x5a; 32];
    key[0] = op;
    key[1] = i;
    let address = format!("198.19.{op}.{i}/16");
    let endpoint = format!("198.18.{op}.{i}:51820");
    let mut card = HostCard {
        operator: secret.operator_id(),
        name: name.into(),
        role,
        wg_public_key: wg_key(key),
        addresses: vec![address.parse().expect("an address")],
        endpoints: if role.is_hidden() {
            vec![]
        } else {
            vec![endpoint.parse().expect("an endpoint")]
        },
        allowed_ips: vec![],
        not_before: NOW - 3600,
        not_after: NOW + 30 * 86_400,
        serial: 1,
        chain_p2p: None,
    };
    edit(&mut card);
    card.sign(&secret).expect("a card its operator signs")
}

/// Each operator's hosts: a producer and two sentries.
pub fn hosts_of(op: u8) -> [SignedCard; 3] {
    [
        host_card(op, "producer", Role::Producer, 1),
        host_card(op, "sentry-1", Role::Sentry, 2),
        host_card(op, "sentry-2", Role::Sentry, 3),
    ]
}

/// The trust policy of operator `op`'s hosts: the operators `direct`
/// trusted directly, `k` vouches for any other, every range by
/// [`operator_range`](crate::testing::operator_range).
///
/// # Panics
///
/// If `k` is 0 or more than `direct` holds.
pub fn policy(op: u8, direct: &[u8], k: usize) -> TrustPolicy {
    let overlay = overlay_of(std::iter::once(op).chain(direct.iter().copied()));
    TrustPolicy::new(
        operator(op).operator_id(),
        direct.iter().map(|&d| operator(d).operator_id()),
        k,
        overlay,
    )
    .expect("a trust policy")
}

/// One host of a mesh and what the test saw of it: the simulation's wrapper
/// of one [`Mesh`], which is the member itself.
#[derive(Debug)]
pub struct Member {
    /// Its operator's number (the fixtures' `operator(op)`).
    pub op: u8,
    /// The machine under test.
    pub mesh: Mesh,
    /// The peers as the daemon would have configured them from the events.
    pub configured: BTreeMap<PublicKey, PeerSpec>,
    /// Every peer removal it reported.
    pub removed: Vec<PublicKey>,
}

impl Member {
    /// Its WireGuard key.
    pub fn key(&self) -> PublicKey {
        self.mesh.local_card().card().wg_public_key
    }

    /// `op/name`, as the tests name hosts.
    pub fn name(&self) -> String {
        format!("{}/{}", self.op, self.mesh.local_card().card().name)
    }

    /// Its peers, named `op/name` (operators numbered up to 255).
    ///
    /// # Panics
    ///
    /// If a peer's operator is none of the fixtures' numbered ones.
    pub fn peer_names(&self) -> BTreeSet<String> {
        self.mesh
            .peers()
            .map(|p| {
                let op = (1..=u8::MAX)
                    .find(|&n| operator(n).operator_id() == p.operator)
                    .expect("a numbered operator");
                format!("{op}/{}", p.name)
            })
            .collect()
    }
}

impl Node for Member {
    fn handle_message(
        &mut self,
        from: PublicKey,
        bytes: &[u8],
        now: UnixTime,
    ) -> Result<(), GossipError> {
        self.mesh.handle_message(from, bytes, now)
    }

    fn poll_transmit(&mut self) -> Option<(PublicKey, Vec<u8>)> {
        self.mesh.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<UnixTime> {
        self.mesh.poll_timeout()
    }

    fn handle_timeout(&mut self, now: UnixTime) {
        self.mesh.handle_timeout(now);
    }

    fn accepts(&self, from: &PublicKey) -> bool {
        self.mesh.is_admitted_peer(from)
    }

    /// Applies the peer events as the daemon would, checking that each
    /// adds a new peer, changes a known one or removes a known one.
    fn settle(&mut self) {
        while let Some(event) = self.mesh.poll_event() {
            match event {
                PeerEvent::Added(spec) => {
                    let name = self.name();
                    assert!(
                        self.configured.insert(spec.public_key, spec).is_none(),
                        "{name}: added twice"
                    );
                }
                PeerEvent::Changed(spec) => {
                    let name = self.name();
                    assert!(
                        self.configured.insert(spec.public_key, spec).is_some(),
                        "{name}: changed an unknown peer"
                    );
                }
                PeerEvent::Removed(key) => {
                    let name = self.name();
                    assert!(
                        self.configured.remove(&key).is_some(),
                        "{name}: removed an unknown peer"
                    );
                    self.removed.push(key);
                }
            }
        }
    }
}

impl Net<Member> {
    /// Operators `ops`, each host trusting operators by `policy_of`, on a
    /// perfect network drawing from `rng`, recording every message. Each
    /// host starts knowing its own operator's cards; each sentry also knows
    /// the first sentry of every other operator, from a sealed bundle.
    ///
    /// # Panics
    ///
    /// If a fixture is refused (a bug in the fixtures).
    pub fn launch(ops: &[u8], policy_of: impl Fn(u8) -> TrustPolicy, rng: ChaCha8Rng) -> Self {
        let mut seal_rng = ChaCha20Rng::seed_from_u64(7);
        let mut opened: BTreeMap<u8, Vec<SignedCard>> = BTreeMap::new();
        for &op in ops {
            let others: Vec<u8> = ops.iter().filter(|&&o| o != op).copied().collect();
            let recipients: Vec<_> = others.iter().map(|&o| operator(o).operator_id()).collect();
            let sealed = bundle::seal(
                &operator(op),
                &recipients,
                &[hosts_of(op)[1].clone()],
                NOW,
                &mut seal_rng,
            )
            .expect("a bundle")
            .to_text();
            for o in others {
                let cards = bundle::open_text(&operator(o), &sealed, NOW)
                    .expect("a bundle for o")
                    .cards;
                opened.entry(o).or_default().extend(cards);
            }
        }
        let mut net = Self::new(NOW, rng);
        net.record();
        for &op in ops {
            for own in hosts_of(op) {
                let mut store = Store::new();
                for c in hosts_of(op) {
                    store.insert_card(c, NOW).expect("an own card");
                }
                if !own.card().role.is_hidden() {
                    for c in &opened[&op] {
                        store.insert_card(c.clone(), NOW).expect("an opened card");
                    }
                }
                net.join(op, own, policy_of(op), store);
            }
        }
        net
    }

    /// Adds a host of operator `op` with card `own`, `policy` and `store`,
    /// started at the current time.
    ///
    /// # Panics
    ///
    /// If the mesh refuses to start.
    pub fn join(&mut self, op: u8, own: SignedCard, policy: TrustPolicy, store: Store) {
        let key = own.card().wg_public_key;
        let mesh = Mesh::new(own, policy, store, self.now).expect("a mesh");
        self.add(
            key,
            Member {
                op,
                mesh,
                configured: BTreeMap::new(),
                removed: Vec::new(),
            },
        );
    }

    /// The member `name` of operator `op`.
    ///
    /// # Panics
    ///
    /// If there is none.
    pub fn at(&mut self, op: u8, name: &str) -> &mut Member {
        self.nodes_mut()
            .find(|m| m.op == op && m.mesh.local_card().card().name == name)
            .expect("a member of that name")
    }

    /// Hands `object` to one member, as its operator would through the
    /// control socket, at the current time.
    ///
    /// # Panics
    ///
    /// If the member refuses it.
    pub fn hand(&mut self, op: u8, name: &str, object: impl Into<Object>) {
        let now = self.now;
        self.at(op, name)
            .mesh
            .insert(object, now)
            .expect("the member takes it");
    }

    /// The peers of member `name` of `op` that also accept it: the
    /// sessions a tunnel could actually set up.
    ///
    /// # Panics
    ///
    /// If there is no such member.
    pub fn sessions(&self, op: u8, name: &str) -> BTreeSet<String> {
        let member = self
            .nodes()
            .find(|m| m.op == op && m.mesh.local_card().card().name == name)
            .expect("a member of that name");
        self.nodes()
            .filter(|other| {
                member.mesh.is_admitted_peer(&other.key())
                    && other.mesh.is_admitted_peer(&member.key())
            })
            .map(Member::name)
            .collect()
    }

    /// Whether every member but those with keys `except` holds `object`.
    pub fn everyone_holds(&self, object: &Object, except: &[PublicKey]) -> bool {
        let id = object.id();
        self.nodes()
            .filter(|m| !except.contains(&m.key()))
            .all(|m| m.mesh.store().contains(&id))
    }

    /// Checks that every member's peers are the ones its events configured.
    ///
    /// # Panics
    ///
    /// When they are not.
    pub fn assert_events_match(&self) {
        for m in self.nodes() {
            let peers: BTreeMap<PublicKey, PeerSpec> =
                m.mesh.peers().map(|p| (p.public_key, p.clone())).collect();
            assert_eq!(m.configured, peers, "{}", m.name());
        }
    }

    /// Checks that no message any host received carried a hidden host of
    /// another operator: not its card, not its card's id, not its key (not
    /// even in a revocation), not its overlay address.
    ///
    /// # Panics
    ///
    /// When one did, or nothing was recorded to check.
    pub fn assert_no_hidden_leaks(&self) {
        let hidden: Vec<(u8, SignedCard)> = self
            .nodes()
            .map(|m| (m.op, m.mesh.local_card().clone()))
            .filter(|(_, c)| c.card().role.is_hidden())
            .collect();
        let mut checked = 0;
        for delivery in self.log() {
            let m = &self.hosts[delivery.to].node;
            let bytes = &delivery.bytes[..];
            let recipient = operator(m.op).operator_id();
            let message = GossipMessage::decode(bytes).expect("a message it took");
            for (op, h) in hidden.iter().filter(|(op, _)| *op != m.op) {
                let card = h.card();
                let IpAddr::V4(address) = card.addresses[0].addr() else {
                    unreachable!("the fixtures' addresses are IPv4")
                };
                assert!(
                    !contains(bytes, card.wg_public_key.as_bytes()),
                    "{}",
                    m.name()
                );
                assert!(!contains(bytes, &address.octets()), "{}", m.name());
                let id = Object::from(h.clone()).id();
                match &message {
                    GossipMessage::Digest { ids } | GossipMessage::Want { ids } => {
                        assert!(!ids.contains(&id), "{} got operator {op}'s id", m.name());
                    }
                    GossipMessage::Ranges { ranges, .. } => {
                        for range in ranges {
                            assert!(
                                !range.ids.contains(&id),
                                "{} got operator {op}'s id",
                                m.name()
                            );
                        }
                    }
                    // Hashes of the public view, or of a voucher's
                    // statements: no id, key or address.
                    GossipMessage::Summary { .. }
                    | GossipMessage::Buckets { .. }
                    | GossipMessage::Statements { .. } => {}
                    GossipMessage::Objects { objects } => {
                        for object in objects {
                            if let Object::Card(c) = object {
                                let c = c.card();
                                assert_ne!(c.wg_public_key, card.wg_public_key, "{}", m.name());
                                assert!(
                                    !c.role.is_hidden() || c.operator == recipient,
                                    "{} got a hidden card",
                                    m.name()
                                );
                            }
                        }
                    }
                }
                checked += 1;
            }
        }
        assert!(checked > 0, "no message was recorded to check");
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A policy for each operator of `ops`: every other operator of `ops`
/// trusted directly.
pub fn everyone(ops: &'static [u8]) -> impl Fn(u8) -> TrustPolicy {
    move |op| {
        let others: Vec<u8> = ops.iter().filter(|&&o| o != op).copied().collect();
        policy(op, &others, 1)
    }
}

/// Three operators, the tests' usual launch group.
pub const THREE: &[u8] = &[1, 2, 3];

/// The seed of the tests' networks.
pub fn seed() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(7)
}

/// [`THREE`] operators trusting each other, launched and run for ten
/// virtual seconds: converged.
pub fn converged_three() -> Net<Member> {
    let mut net = Net::launch(THREE, everyone(THREE), seed());
    net.run_for(10);
    net
}

/// Host names, as the assertions on [`Net`]'s views compare them.
pub fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}
