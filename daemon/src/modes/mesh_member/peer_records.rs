//! What a member keeps of each peer the mesh gave it, removed with it: its
//! name and operator, to name it in the log when it goes; its routes, and
//! which routes a change touched, so the kernel's routes follow each change
//! and not a comparison of every peer's; and which peer each overlay
//! address belongs to, to tell whom a gossip message came from.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use sentrymesh_mesh::OperatorId;
use sentrymesh_types::{IpNet, PublicKey};

use crate::dataplane::allowed_ips::AllowedIps;

/// What a member keeps of one peer.
pub(super) struct PeerRecord {
    /// Its host name and operator, as its card gives them.
    pub(super) name: String,
    pub(super) operator: OperatorId,
    /// Its routes, none when the interface refused it.
    routes: Box<[IpNet]>,
}

/// The records of every peer, and the peers by the networks they route.
pub(super) struct PeerRecords {
    /// One map, as an entry of a map weighs more than its value here.
    records: BTreeMap<PublicKey, PeerRecord>,
    /// Each peer's routes, by longest prefix, as the interface's table
    /// holds them: the sender of a message from an overlay address in
    /// O(prefix length), not a scan of every peer.
    by_address: AllowedIps<PublicKey>,
    /// How many peers route each network (one, but for a moment while a
    /// network moves from one peer to another).
    users: BTreeMap<IpNet, u32>,
    /// The networks whose routing changed since [`PeerRecords::take_touched`].
    touched: BTreeSet<IpNet>,
}

impl PeerRecords {
    pub(super) fn new() -> Self {
        Self {
            records: BTreeMap::new(),
            by_address: AllowedIps::new(),
            users: BTreeMap::new(),
            touched: BTreeSet::new(),
        }
    }

    /// Records the peer with `key`, replacing what was kept of it.
    /// O((old and new routes) × prefix length).
    pub(super) fn insert(
        &mut self,
        key: PublicKey,
        name: String,
        operator: OperatorId,
        routes: Box<[IpNet]>,
    ) {
        self.by_address.remove_value(key);
        for net in routes.iter() {
            self.by_address.insert(*net, key);
            self.use_route(*net);
        }
        let record = PeerRecord {
            name,
            operator,
            routes,
        };
        if let Some(old) = self.records.insert(key, record) {
            self.release_routes(&old.routes);
        }
    }

    /// Forgets the peer with `key`; returns what was kept of it.
    /// O(routes × prefix length).
    pub(super) fn remove(&mut self, key: &PublicKey) -> Option<PeerRecord> {
        self.by_address.remove_value(*key);
        let record = self.records.remove(key)?;
        self.release_routes(&record.routes);
        Some(record)
    }

    /// Takes the routes of the peer with `key` away: the interface
    /// refused it. O(routes × prefix length).
    pub(super) fn clear_routes(&mut self, key: &PublicKey) {
        if let Some(record) = self.records.get_mut(key) {
            let routes = std::mem::take(&mut record.routes);
            self.by_address.remove_value(*key);
            self.release_routes(&routes);
        }
    }

    /// Whether some peer routes `net`. O(log routes).
    pub(super) fn is_routed(&self, net: &IpNet) -> bool {
        self.users.contains_key(net)
    }

    /// The networks whose routing the changes since the last call touched
    /// (routed now, or no longer), each once.
    pub(super) fn take_touched(&mut self) -> BTreeSet<IpNet> {
        std::mem::take(&mut self.touched)
    }

    fn use_route(&mut self, net: IpNet) {
        *self.users.entry(net).or_default() += 1;
        self.touched.insert(net);
    }

    fn release_routes(&mut self, routes: &[IpNet]) {
        for net in routes {
            if let Some(users) = self.users.get_mut(net) {
                *users -= 1;
                if *users == 0 {
                    self.users.remove(net);
                }
            }
            self.touched.insert(*net);
        }
    }

    /// The peer whose routes hold `source` by longest prefix, as the
    /// interface checked the source of what it decrypted.
    pub(super) fn sender_of(&self, source: IpAddr) -> Option<PublicKey> {
        self.by_address.lookup(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    fn operator() -> OperatorId {
        sentrymesh_mesh::OperatorSecret::from_seed([1; 32]).operator_id()
    }

    #[test]
    fn a_source_is_the_peer_with_the_longest_route_holding_it_until_it_goes() {
        let mut records = PeerRecords::new();
        let wide = [net("198.19.0.0/16")].into();
        let narrow = [net("198.19.1.7/32"), net("fd00::7/128")].into();
        records.insert(key(1), "gateway".into(), operator(), wide);
        records.insert(key(2), "sentry-1".into(), operator(), narrow);
        let [inside, other, v6] =
            ["198.19.1.7", "198.19.2.1", "fd00::7"].map(|a| a.parse().unwrap());
        assert_eq!(records.sender_of(inside), Some(key(2)));
        assert_eq!(records.sender_of(other), Some(key(1)));
        assert_eq!(records.sender_of(v6), Some(key(2)));
        // A change replaces its routes; a refused peer has none.
        records.insert(
            key(2),
            "sentry-1".into(),
            operator(),
            [net("198.19.3.3/32")].into(),
        );
        assert_eq!(records.sender_of(inside), Some(key(1)));
        records.clear_routes(&key(1));
        assert_eq!(records.sender_of(inside), None);
        assert!(records.remove(&key(2)).is_some());
        assert_eq!(records.sender_of("198.19.3.3".parse().unwrap()), None);
        assert!(records.remove(&key(2)).is_none());
    }

    #[test]
    fn a_network_is_routed_while_any_peer_holds_it_and_every_change_is_touched() {
        let mut records = PeerRecords::new();
        let [a, b, c] = ["198.19.1.1/32", "198.19.1.2/32", "198.19.9.0/24"].map(net);
        records.insert(key(1), "sentry-1".into(), operator(), [a, c].into());
        assert_eq!(records.take_touched(), [a, c].into());
        assert!(records.take_touched().is_empty());
        // The network moves to another peer before the first lets it go.
        records.insert(key(2), "sentry-2".into(), operator(), [b, c].into());
        records.insert(key(1), "sentry-1".into(), operator(), [a].into());
        assert_eq!(records.take_touched(), [a, b, c].into());
        assert!(records.is_routed(&a) && records.is_routed(&b) && records.is_routed(&c));
        records.clear_routes(&key(2));
        assert_eq!(records.take_touched(), [b, c].into());
        assert!(!records.is_routed(&b) && !records.is_routed(&c));
        records.remove(&key(1));
        assert_eq!(records.take_touched(), [a].into());
        assert!(!records.is_routed(&a));
    }
}
