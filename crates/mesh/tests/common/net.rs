//! The in-process mesh the integration tests run: several operators'
//! producers and sentries, each a [`Mesh`], their gossip delivered in
//! virtual time the way a tunnel would carry it — to a host only when that
//! host accepts the sender as a peer — and every message a host receives
//! recorded, so the tests can check what another operator's host ever got
//! to see.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sentrymesh_mesh::{
    GossipError, GossipMessage, HostCard, Mesh, Object, Overlay, PeerEvent, PeerSpec, Role,
    SignedCard, Store, TrustPolicy, WgPublicKey, bundle,
};

use super::{NOW, SignCard, operator, wg_key};

/// Host `i` of operator `op`: overlay address 198.18.`op`.`i` (in its
/// operator's range, [`range`]), endpoint 198.19.`op`.`i`:51820 unless
/// hidden.
pub(crate) fn card(op: u8, name: &str, role: Role, i: u8) -> SignedCard {
    card_with(op, name, role, i, |_| {})
}

/// [`card`], changed by `edit` before its operator signs it.
pub(crate) fn card_with(
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
pub(crate) fn hosts_of(op: u8) -> [SignedCard; 3] {
    [
        card(op, "producer", Role::Producer, 1),
        card(op, "sentry-1", Role::Sentry, 2),
        card(op, "sentry-2", Role::Sentry, 3),
    ]
}

/// Operator `op`'s overlay range: 198.18.`op`.0/24, in the mesh overlay
/// 198.18.0.0/16.
pub(crate) fn range(op: u8) -> sentrymesh_mesh::Cidr {
    format!("198.18.{op}.0/24").parse().unwrap()
}

pub(crate) fn policy(op: u8, direct: &[u8], k: usize) -> TrustPolicy {
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
pub(crate) struct Member {
    pub(crate) op: u8,
    pub(crate) mesh: Mesh,
    /// The peers as the daemon would have configured them from the events.
    pub(crate) configured: BTreeMap<WgPublicKey, PeerSpec>,
    /// Every message delivered to it, with its sender.
    pub(crate) received: Vec<(WgPublicKey, Vec<u8>)>,
    /// Every peer removal it reported.
    pub(crate) removed: Vec<WgPublicKey>,
}

impl Member {
    pub(crate) fn key(&self) -> WgPublicKey {
        self.mesh.local_card().card().wg_public_key
    }

    pub(crate) fn name(&self) -> String {
        format!("{}/{}", self.op, self.mesh.local_card().card().name)
    }

    pub(crate) fn peer_names(&self) -> BTreeSet<String> {
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
pub(crate) struct Net {
    pub(crate) members: Vec<Member>,
    pub(crate) now: u64,
    /// Messages to a host that does not (yet) accept the sender.
    pub(crate) dropped: usize,
}

impl Net {
    /// Operators `ops`, each host trusting operators by `policy_of`. Each
    /// host starts knowing its own operator's cards; each sentry also knows
    /// the first sentry of every other operator, from a sealed bundle.
    pub(crate) fn launch(ops: &[u8], policy_of: impl Fn(u8) -> TrustPolicy) -> Self {
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

    pub(crate) fn join(&mut self, op: u8, own: SignedCard, policy: TrustPolicy, store: Store) {
        let mesh = Mesh::new(own, policy, store, self.now).unwrap();
        self.members.push(Member {
            op,
            mesh,
            configured: BTreeMap::new(),
            received: Vec::new(),
            removed: Vec::new(),
        });
    }

    pub(crate) fn at(&mut self, op: u8, name: &str) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.op == op && m.mesh.local_card().card().name == name)
            .unwrap()
    }

    /// Hands `object` to one member, as its operator would through the
    /// control socket, at the current time.
    pub(crate) fn hand(&mut self, op: u8, name: &str, object: impl Into<Object>) {
        let now = self.now;
        self.at(op, name).mesh.insert(object, now).unwrap();
    }

    pub(crate) fn apply_events(&mut self) {
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
    pub(crate) fn deliver(&mut self) -> usize {
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
                    match member.mesh.handle_message(from, &bytes, self.now) {
                        Ok(()) => {}
                        // A sender that a test made flood this host: gossip
                        // drops what is over its budget, and asks again later.
                        Err(GossipError::OverBudget { .. }) => {
                            self.dropped += 1;
                            continue;
                        }
                        Err(error) => panic!("{}: {error}", member.name()),
                    }
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
    pub(crate) fn run_for(&mut self, secs: u64) {
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
    pub(crate) fn sessions(&self, op: u8, name: &str) -> BTreeSet<String> {
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
    pub(crate) fn everyone_holds(&self, object: &Object, except: &[WgPublicKey]) -> bool {
        let id = object.id();
        self.members
            .iter()
            .filter(|m| !except.contains(&m.key()))
            .all(|m| m.mesh.store().contains(&id))
    }

    /// Every member's peers are the ones its events configured.
    pub(crate) fn assert_events_match(&self) {
        for m in &self.members {
            let peers: BTreeMap<WgPublicKey, PeerSpec> =
                m.mesh.peers().map(|p| (p.public_key, p.clone())).collect();
            assert_eq!(m.configured, peers, "{}", m.name());
        }
    }

    /// No message any host received carried a hidden host of another
    /// operator: not its card, not its card's id, not its key (not even in
    /// a revocation), not its overlay address.
    pub(crate) fn assert_no_hidden_leaks(&self) {
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

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every operator trusts every other directly.
pub(crate) fn everyone(ops: &'static [u8]) -> impl Fn(u8) -> TrustPolicy {
    move |op| {
        let others: Vec<u8> = ops.iter().filter(|&&o| o != op).copied().collect();
        policy(op, &others, 1)
    }
}

pub(crate) const THREE: &[u8] = &[1, 2, 3];

pub(crate) fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn converged_three() -> Net {
    let mut net = Net::launch(THREE, everyone(THREE));
    net.run_for(10);
    net
}
