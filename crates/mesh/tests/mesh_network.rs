//! Whole meshes in one process: several operators' producers and sentries,
//! each a [`Mesh`], their gossip delivered in virtual time the way a tunnel
//! would carry it — to a host only when that host accepts the sender as a
//! peer — and every message a host receives recorded, so the tests can
//! check what another operator's host ever got to see.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sentrymesh_mesh::{
    GossipError, GossipMessage, HostCard, InsertError, Mesh, Object, Overlay, PeerEvent, PeerSpec,
    Revocation, RevocationTarget, Role, SignedCard, Store, TrustPolicy, Vouch, WgPublicKey, bundle,
};

use common::{NOW, SignCard, operator, wg_key};

/// Host `i` of operator `op`: overlay address 198.18.`op`.`i` (in its
/// operator's range, [`range`]), endpoint 198.19.`op`.`i`:51820 unless
/// hidden.
fn card(op: u8, name: &str, role: Role, i: u8) -> SignedCard {
    card_with(op, name, role, i, |_| {})
}

/// [`card`], changed by `edit` before its operator signs it.
fn card_with(
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
    let mut card = HostCard {
        operator: secret.operator_id(),
        name: name.into(),
        role,
        wg_public_key: wg_key(key),
        addresses: vec![format!("198.18.{op}.{i}/16").parse().unwrap()],
        endpoints: if role.is_hidden() {
            vec![]
        } else {
            vec![format!("198.19.{op}.{i}:51820").parse().unwrap()]
        },
        allowed_ips: vec![],
        not_before: NOW - 3600,
        not_after: NOW + 30 * 86_400,
        serial: 1,
        chain_p2p: None,
    };
    edit(&mut card);
    card.sign(&secret).unwrap()
}

/// Each operator's hosts: a producer and two sentries.
fn hosts_of(op: u8) -> [SignedCard; 3] {
    [
        card(op, "producer", Role::Producer, 1),
        card(op, "sentry-1", Role::Sentry, 2),
        card(op, "sentry-2", Role::Sentry, 3),
    ]
}

/// Operator `op`'s overlay range: 198.18.`op`.0/24, in the mesh overlay
/// 198.18.0.0/16.
fn range(op: u8) -> sentrymesh_mesh::Cidr {
    format!("198.18.{op}.0/24").parse().unwrap()
}

fn policy(op: u8, direct: &[u8], k: usize) -> TrustPolicy {
    let ranges = std::iter::once(op)
        .chain(direct.iter().copied())
        .map(|o| (operator(o).operator_id(), range(o)));
    let overlay = Overlay::new("198.18.0.0/16".parse().unwrap(), ranges).unwrap();
    TrustPolicy::new(
        operator(op).operator_id(),
        direct.iter().map(|&d| operator(d).operator_id()),
        k,
        overlay,
    )
    .unwrap()
}

/// One member and what the test saw of it.
struct Member {
    op: u8,
    mesh: Mesh,
    /// The peers as the daemon would have configured them from the events.
    configured: BTreeMap<WgPublicKey, PeerSpec>,
    /// Every message delivered to it, with its sender.
    received: Vec<(WgPublicKey, Vec<u8>)>,
    /// Every peer removal it reported.
    removed: Vec<WgPublicKey>,
}

impl Member {
    fn key(&self) -> WgPublicKey {
        self.mesh.local_card().card().wg_public_key
    }

    fn name(&self) -> String {
        format!("{}/{}", self.op, self.mesh.local_card().card().name)
    }

    fn peer_names(&self) -> BTreeSet<String> {
        self.mesh
            .peers()
            .map(|p| {
                let op = (1..=u8::MAX)
                    .find(|&n| operator(n).operator_id() == p.operator)
                    .unwrap();
                format!("{op}/{}", p.name)
            })
            .collect()
    }
}

/// A mesh of members and a virtual clock.
struct Net {
    members: Vec<Member>,
    now: u64,
    /// Messages to a host that does not (yet) accept the sender.
    dropped: usize,
}

impl Net {
    /// Operators `ops`, each host trusting operators by `policy_of`. Each
    /// host starts knowing its own operator's cards; each sentry also knows
    /// the first sentry of every other operator, from a sealed bundle.
    fn launch(ops: &[u8], policy_of: impl Fn(u8) -> TrustPolicy) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut opened: BTreeMap<u8, Vec<SignedCard>> = BTreeMap::new();
        for &op in ops {
            let others: Vec<_> = ops.iter().filter(|&&o| o != op).copied().collect();
            let recipients: Vec<_> = others.iter().map(|&o| operator(o).operator_id()).collect();
            let sealed = bundle::seal(
                &operator(op),
                &recipients,
                &[hosts_of(op)[1].clone()],
                NOW,
                &mut rng,
            )
            .unwrap()
            .to_text();
            for o in others {
                let cards = bundle::open_text(&operator(o), &sealed, NOW).unwrap().cards;
                opened.entry(o).or_default().extend(cards);
            }
        }
        let mut net = Self {
            members: Vec::new(),
            now: NOW,
            dropped: 0,
        };
        for &op in ops {
            for own in hosts_of(op) {
                let mut store = Store::new();
                for c in hosts_of(op) {
                    store.insert_card(c, NOW).unwrap();
                }
                if !own.card().role.is_hidden() {
                    for c in &opened[&op] {
                        store.insert_card(c.clone(), NOW).unwrap();
                    }
                }
                net.join(op, own, policy_of(op), store);
            }
        }
        net
    }

    fn join(&mut self, op: u8, own: SignedCard, policy: TrustPolicy, store: Store) {
        let mesh = Mesh::new(own, policy, store, self.now).unwrap();
        self.members.push(Member {
            op,
            mesh,
            configured: BTreeMap::new(),
            received: Vec::new(),
            removed: Vec::new(),
        });
    }

    fn at(&mut self, op: u8, name: &str) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.op == op && m.mesh.local_card().card().name == name)
            .unwrap()
    }

    /// Hands `object` to one member, as its operator would through the
    /// control socket, at the current time.
    fn hand(&mut self, op: u8, name: &str, object: impl Into<Object>) {
        let now = self.now;
        self.at(op, name).mesh.insert(object, now).unwrap();
    }

    fn apply_events(&mut self) {
        for m in &mut self.members {
            while let Some(event) = m.mesh.poll_event() {
                match event {
                    PeerEvent::Added(spec) => {
                        assert!(m.configured.insert(spec.public_key, spec).is_none());
                    }
                    PeerEvent::Changed(spec) => {
                        assert!(m.configured.insert(spec.public_key, spec).is_some());
                    }
                    PeerEvent::Removed(key) => {
                        assert!(m.configured.remove(&key).is_some());
                        m.removed.push(key);
                    }
                }
            }
        }
    }

    /// Delivers every message, at the current time, until none is left;
    /// returns how many were delivered.
    fn deliver(&mut self) -> usize {
        let mut delivered = 0;
        loop {
            self.apply_events();
            let mut quiet = true;
            for i in 0..self.members.len() {
                while let Some((to, bytes)) = self.members[i].mesh.poll_transmit() {
                    quiet = false;
                    let from = self.members[i].key();
                    let Some(j) = self.members.iter().position(|m| m.key() == to) else {
                        self.dropped += 1;
                        continue;
                    };
                    // The tunnel: no session unless the recipient admits the sender.
                    if !self.members[j].mesh.is_admitted_peer(&from) {
                        self.dropped += 1;
                        continue;
                    }
                    let member = &mut self.members[j];
                    member.mesh.handle_message(from, &bytes, self.now).unwrap();
                    member.received.push((from, bytes));
                    delivered += 1;
                }
            }
            if quiet {
                self.apply_events();
                return delivered;
            }
        }
    }

    /// Runs for `secs` seconds of virtual time, jumping from timeout to
    /// timeout and delivering everything in between.
    fn run_for(&mut self, secs: u64) {
        let end = self.now + secs;
        loop {
            self.deliver();
            let next = self
                .members
                .iter()
                .filter_map(|m| m.mesh.poll_timeout())
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    for m in &mut self.members {
                        if m.mesh.poll_timeout().is_some_and(|at| at <= now) {
                            m.mesh.handle_timeout(now);
                        }
                    }
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
    }

    /// The peers of `member` that also accept it: the sessions a tunnel
    /// could actually set up.
    fn sessions(&self, op: u8, name: &str) -> BTreeSet<String> {
        let member = self
            .members
            .iter()
            .find(|m| m.op == op && m.mesh.local_card().card().name == name)
            .unwrap();
        self.members
            .iter()
            .filter(|other| {
                member.mesh.is_admitted_peer(&other.key())
                    && other.mesh.is_admitted_peer(&member.key())
            })
            .map(Member::name)
            .collect()
    }

    /// Whether every member but those with keys `except` holds `object`.
    fn everyone_holds(&self, object: &Object, except: &[WgPublicKey]) -> bool {
        let id = object.id();
        self.members
            .iter()
            .filter(|m| !except.contains(&m.key()))
            .all(|m| m.mesh.store().contains(&id))
    }

    /// Every member's peers are the ones its events configured.
    fn assert_events_match(&self) {
        for m in &self.members {
            let peers: BTreeMap<WgPublicKey, PeerSpec> =
                m.mesh.peers().map(|p| (p.public_key, p.clone())).collect();
            assert_eq!(m.configured, peers, "{}", m.name());
        }
    }

    /// No message any host received carried a hidden host of another
    /// operator: not its card, not its card's id, not its key (not even in
    /// a revocation), not its overlay address.
    fn assert_no_hidden_leaks(&self) {
        let hidden: Vec<(u8, SignedCard)> = self
            .members
            .iter()
            .map(|m| (m.op, m.mesh.local_card().clone()))
            .filter(|(_, c)| c.card().role.is_hidden())
            .collect();
        let mut checked = 0;
        for m in &self.members {
            let recipient = operator(m.op).operator_id();
            for (_, bytes) in &m.received {
                let message = GossipMessage::decode(bytes).unwrap();
                for (op, h) in hidden.iter().filter(|(op, _)| *op != m.op) {
                    let card = h.card();
                    let IpAddr::V4(address) = card.addresses[0].addr() else {
                        unreachable!()
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
        }
        assert!(checked > 0);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every operator trusts every other directly.
fn everyone(ops: &'static [u8]) -> impl Fn(u8) -> TrustPolicy {
    move |op| {
        let others: Vec<u8> = ops.iter().filter(|&&o| o != op).copied().collect();
        policy(op, &others, 1)
    }
}

const THREE: &[u8] = &[1, 2, 3];

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn converged_three() -> Net {
    let mut net = Net::launch(THREE, everyone(THREE));
    net.run_for(10);
    net
}

#[test]
fn three_operators_converge_with_producers_behind_their_own_sentries() {
    let net = converged_three();
    for m in &net.members {
        let op = m.op;
        let expected = if m.mesh.local_card().card().role == Role::Producer {
            names(&[&format!("{op}/sentry-1"), &format!("{op}/sentry-2")])
        } else {
            let own = m.mesh.local_card().card().name.clone();
            let mut all: BTreeSet<String> = THREE
                .iter()
                .flat_map(|o| [format!("{o}/sentry-1"), format!("{o}/sentry-2")])
                .collect();
            all.insert(format!("{op}/producer"));
            all.remove(&format!("{op}/{own}"));
            all
        };
        assert_eq!(m.peer_names(), expected, "{}", m.name());
        assert!(m.mesh.local_error().is_none());
    }
    net.assert_events_match();
    net.assert_no_hidden_leaks();
    // Each producer keeps its sentries' paths open; sentries reach the
    // producer by the address its handshakes come from.
    let producer = net
        .members
        .iter()
        .find(|m| m.name() == "1/producer")
        .unwrap();
    assert!(
        producer
            .mesh
            .peers()
            .all(|p| p.persistent_keepalive == Some(25) && p.endpoint.is_some())
    );
    let sentry = net
        .members
        .iter()
        .find(|m| m.name() == "1/sentry-1")
        .unwrap();
    let to_producer = sentry.mesh.peer(&producer.key()).unwrap();
    assert_eq!(
        (
            to_producer.endpoint.as_ref(),
            to_producer.persistent_keepalive
        ),
        (None, None)
    );
    assert_eq!(to_producer.allowed_ips, ["198.18.1.1/32".parse().unwrap()]);
}

#[test]
fn no_host_of_another_operator_learns_anything_of_a_producer() {
    let net = converged_three();
    for m in &net.members {
        for other in net.members.iter().filter(|o| o.op != m.op) {
            let other_card = other.mesh.local_card();
            if other_card.card().role.is_hidden() {
                assert!(
                    m.mesh
                        .store()
                        .card(&other_card.card().wg_public_key)
                        .is_none()
                );
                assert!(!m.mesh.is_admitted_peer(&other_card.card().wg_public_key));
            }
        }
    }
    let stats = net
        .members
        .iter()
        .map(|m| m.mesh.stats())
        .fold(0, |n, s| n + s.objects_not_for_us);
    assert_eq!(stats, 0, "no host even tried");
}

#[test]
fn a_key_in_no_admitted_card_gets_no_session() {
    let mut net = converged_three();
    let stranger = WgPublicKey::from_bytes([0x77; 32]);
    let digest = GossipMessage::Digest { ids: vec![] }.encode().unwrap();
    let now = net.now;
    for m in &mut net.members {
        assert!(!m.mesh.is_admitted_peer(&stranger));
        assert_eq!(
            m.mesh.handle_message(stranger, &digest, now),
            Err(GossipError::UnknownPeer { from: stranger })
        );
    }
    // Operator 4 is known to no one: its sentry's messages are dropped.
    let before = net.dropped;
    let s4 = card(4, "sentry-1", Role::Sentry, 2);
    let mut store = Store::new();
    store.insert_card(hosts_of(1)[1].clone(), NOW).unwrap();
    net.join(4, s4.clone(), policy(4, &[1], 1), store);
    net.deliver();
    assert!(net.dropped > before);
    assert!(
        net.members
            .iter()
            .all(|m| !m.mesh.is_admitted_peer(&s4.card().wg_public_key))
    );
}

#[test]
fn an_operator_is_admitted_on_k_vouches_not_on_k_minus_one() {
    // Operators 1, 2 and 3 trust each other and need two vouches for
    // anyone else; operator 4 trusts all three.
    const FOUR: &[u8] = &[1, 2, 3, 4];
    let mut net = Net::launch(FOUR, |op| match op {
        4 => policy(4, &[1, 2, 3], 1),
        _ => {
            let others: Vec<u8> = [1, 2, 3].into_iter().filter(|&o| o != op).collect();
            policy(op, &others, 2)
        }
    });
    net.run_for(10);
    let s4 = hosts_of(4)[1].card().wg_public_key;
    assert!(
        net.members
            .iter()
            .filter(|m| m.op != 4)
            .all(|m| !m.mesh.is_admitted_peer(&s4))
    );

    let vouch = |by: u8| {
        Vouch {
            voucher: operator(by).operator_id(),
            subject: operator(4).operator_id(),
            overlay: range(4),
            issued_at: NOW,
        }
        .sign(&operator(by))
        .unwrap()
    };
    // k - 1 = 1 vouch: operator 2's, introduced at its producer.
    net.hand(2, "producer", vouch(2));
    net.deliver();
    assert!(
        net.members
            .iter()
            .filter(|m| m.op != 4)
            .all(|m| !m.mesh.is_admitted_peer(&s4))
    );
    // k = 2: operator 3's too. Operator 1 trusts both and admits operator
    // 4; operators 2 and 3 each see one vouch from an operator they trust.
    net.hand(3, "sentry-2", vouch(3));
    net.deliver();
    for m in net.members.iter().filter(|m| m.op != 4) {
        let is_sentry = m.mesh.local_card().card().role == Role::Sentry;
        assert_eq!(
            m.mesh.is_admitted_peer(&s4),
            m.op == 1 && is_sentry,
            "{}",
            m.name()
        );
    }
    net.run_for(10);
    assert_eq!(
        net.sessions(4, "sentry-1"),
        names(&["1/sentry-1", "1/sentry-2", "4/producer", "4/sentry-2"])
    );
    net.assert_events_match();
    net.assert_no_hidden_leaks();

    // Operator 3 withdraws its vouch: back to k - 1, and operator 1's
    // sentries drop operator 4's at once.
    let withdrawal = Revocation {
        issuer: operator(3).operator_id(),
        target: RevocationTarget::Vouch(operator(4).operator_id()),
        issued_at: net.now,
    }
    .sign(&operator(3))
    .unwrap();
    net.hand(3, "producer", withdrawal);
    net.deliver();
    assert!(
        net.members
            .iter()
            .filter(|m| m.op != 4)
            .all(|m| !m.mesh.is_admitted_peer(&s4))
    );
    assert_eq!(
        net.sessions(4, "sentry-1"),
        names(&["4/producer", "4/sentry-2"])
    );
    net.assert_events_match();
}

#[test]
fn a_rivals_cards_beyond_its_range_are_relayed_but_route_nothing_anywhere() {
    let mut net = converged_three();
    // Operator 3, admitted everywhere, publishes sentries claiming the
    // world, operator 1's sentry and a slice of operator 2's range.
    let claims = ["0.0.0.0/1", "198.18.1.2/32", "198.18.2.128/25", "::/1"];
    let greedy: Vec<SignedCard> = claims
        .iter()
        .zip(10u8..)
        .map(|(claim, i)| {
            card_with(3, &format!("greedy-{i}"), Role::Sentry, i, |c| {
                c.allowed_ips = vec![claim.parse().unwrap()];
            })
        })
        .collect();
    for c in &greedy {
        net.hand(3, "sentry-1", c.clone());
    }
    net.run_for(10);
    for m in &net.members {
        let sentry = m.mesh.local_card().card().role == Role::Sentry;
        for c in &greedy {
            let object = Object::from(c.clone());
            // Gossip still carries them (they are validly signed by an
            // admitted operator) to every sentry, but no one peers.
            if sentry {
                assert!(m.mesh.store().contains(&object.id()), "{}", m.name());
            }
            assert!(
                !m.mesh.is_admitted_peer(&c.card().wg_public_key),
                "{}",
                m.name()
            );
        }
        for peer in m.mesh.peers() {
            let range = m.mesh.admitted_ranges()[&peer.operator];
            assert!(
                peer.allowed_ips.iter().all(|ip| range.contains(ip)),
                "{} routes {:?} to {}",
                m.name(),
                peer.allowed_ips,
                peer.name
            );
        }
        // Every sentry weighed them and refused each once, and so did
        // operator 3's producer; another producer never peers with another
        // operator's hosts, so never weighs them.
        let weighs = sentry || m.op == 3;
        let expected = if weighs { greedy.len() as u64 } else { 0 };
        assert_eq!(m.mesh.cards_refused(), expected, "{}", m.name());
    }
    net.assert_events_match();
}

#[test]
fn a_new_sentry_introduced_at_one_host_reaches_everyone_and_its_producer() {
    let mut net = converged_three();
    let newcomer = card(1, "sentry-3", Role::Sentry, 4);
    let key = newcomer.card().wg_public_key;
    // The new host starts with its own card and one sentry of its operator.
    let mut store = Store::new();
    store.insert_card(hosts_of(1)[1].clone(), NOW).unwrap();
    net.join(1, newcomer.clone(), everyone(THREE)(1), store);
    // Its card is handed to a host of another operator.
    net.hand(3, "sentry-2", newcomer);
    net.deliver();
    for m in net.members.iter().filter(|m| m.key() != key) {
        // Its own producer and every sentry; not other operators' producers.
        let peers = m.op == 1 || m.mesh.local_card().card().role == Role::Sentry;
        assert_eq!(m.mesh.is_admitted_peer(&key), peers, "{}", m.name());
        assert_eq!(m.configured.contains_key(&key), peers, "{}", m.name());
    }
    net.run_for(10);
    let expected: BTreeSet<String> = THREE
        .iter()
        .flat_map(|o| [format!("{o}/sentry-1"), format!("{o}/sentry-2")])
        .chain(["1/producer".to_string()])
        .collect();
    assert_eq!(net.at(1, "sentry-3").peer_names(), expected);
    net.assert_events_match();
    net.assert_no_hidden_leaks();
}

#[test]
fn a_revocation_introduced_anywhere_removes_the_host_everywhere_at_once() {
    let mut net = converged_three();
    let doomed = hosts_of(2)[2].clone();
    let key = doomed.card().wg_public_key;
    let revocation = Revocation {
        issuer: operator(2).operator_id(),
        target: RevocationTarget::Host(key),
        issued_at: NOW,
    }
    .sign(&operator(2))
    .unwrap();
    // Handed to another operator's producer; no clock moves after that.
    net.hand(1, "producer", revocation.clone());
    let delivered = net.deliver();
    assert!(delivered > 0);
    assert!(net.everyone_holds(&revocation.into(), &[key]));
    for m in net.members.iter().filter(|m| m.key() != key) {
        assert!(!m.mesh.is_admitted_peer(&key), "{}", m.name());
        assert!(!m.configured.contains_key(&key), "{}", m.name());
        assert!(m.mesh.store().card(&key).is_none(), "{}", m.name());
        let had_it = m.op == 2 || m.mesh.local_card().card().role == Role::Sentry;
        assert_eq!(m.removed.contains(&key), had_it, "{}", m.name());
    }
    // A producer revoked by its operator, handed to another operator's
    // sentry, which never knew that producer.
    let producer = hosts_of(1)[0].card().wg_public_key;
    let revocation = Revocation {
        issuer: operator(1).operator_id(),
        target: RevocationTarget::Host(producer),
        issued_at: NOW,
    }
    .sign(&operator(1))
    .unwrap();
    net.hand(3, "sentry-1", revocation.clone());
    net.deliver();
    for m in net.members.iter().filter(|m| m.op == 1) {
        assert!(!m.mesh.is_admitted_peer(&producer), "{}", m.name());
    }
    assert!(net.sessions(1, "producer").is_empty());
    // The revocation names the producer's key, so it went to operator 1's
    // hosts only (its sentries dropped the producer before it could hear
    // why): not to another operator's host that was not handed it.
    let id = Object::from(revocation).id();
    for m in &net.members {
        let expected = (m.op == 1 && m.key() != producer) || m.name() == "3/sentry-1";
        assert_eq!(m.mesh.store().contains(&id), expected, "{}", m.name());
    }
    net.assert_no_hidden_leaks();
    net.assert_events_match();
}

#[test]
fn a_restart_from_the_state_file_forgets_nothing() {
    let mut net = converged_three();
    let doomed = hosts_of(2)[2].clone();
    let revocation = Revocation {
        issuer: operator(2).operator_id(),
        target: RevocationTarget::Host(doomed.card().wg_public_key),
        issued_at: NOW,
    }
    .sign(&operator(2))
    .unwrap();
    net.hand(2, "sentry-1", revocation);
    net.deliver();
    let member = net.at(1, "sentry-1");
    let state = member.mesh.store().encode();
    let peers: Vec<PeerSpec> = member.mesh.peers().cloned().collect();
    let own = hosts_of(1)[1].clone();
    let mut restarted = Mesh::new(
        own,
        everyone(THREE)(1),
        Store::decode(&state).unwrap(),
        NOW + 60,
    )
    .unwrap();
    assert_eq!(restarted.peers().cloned().collect::<Vec<_>>(), peers);
    assert!(matches!(
        restarted.insert(doomed, NOW + 60),
        Err(InsertError::Revoked { .. })
    ));
    // A state file altered on disk is refused, not trusted.
    let mut altered = state.clone();
    let at = altered.len() / 2;
    altered[at] ^= 0x20;
    assert!(Store::decode(&altered).is_err());
}
