//! One WireGuard interface: the engine, the allowed-IPs table, the private
//! key, the listen port and firewall mark; and the rule that a
//! [`ConfigChange`] is applied completely or not at all.
//!
//! Applying a change is split in two: [`Interface::check`] finds every
//! reason to refuse it without changing anything, and [`Interface::commit`]
//! then cannot fail. (wireguard-go applies line by line, so a request that
//! fails half-way stays half-applied; we do not.) Binding a new socket, the
//! one step that can fail for reasons outside the request, happens in
//! between, in the caller.
//!
//! It also answers the two questions of cryptokey routing for the data path:
//! [`Interface::route`] (which peer a packet from the TUN device goes to)
//! and [`Interface::accepts`] (whether a peer may send a packet with its
//! source address); and the firewall's, [`Interface::filter`] (whether a
//! packet to or from a mesh peer is one its policy lets through).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand_core::OsRng;
use sentrymesh_tunnel::ip::IpHeader;
use sentrymesh_tunnel::{Engine, PeerConfig, PeerId};
use sentrymesh_types::{PrivateKey, PublicKey};

use crate::dataplane::allowed_ips::AllowedIps;
use crate::dataplane::change::{AllowedIpChange, ChangeError, ConfigChange, PeerChange};
use crate::dataplane::firewall::{Direction, Dropped, Firewall};
use crate::dataplane::sessions::{PeerSession, SessionView};
use crate::dataplane::state::{DeviceState, PeerState, UapiState};

/// The state of an interface.
#[derive(Debug)]
pub(crate) struct Interface {
    engine: Engine,
    allowed_ips: AllowedIps<PeerId>,
    /// The key set by a change; until then the engine holds a random
    /// key nobody knows, and the interface neither sends nor answers.
    private_key: Option<PrivateKey>,
    listen_port: u16,
    fwmark: Option<u32>,
    /// The mesh peers' policies and the flows they opened.
    firewall: Firewall,
}

impl Interface {
    /// An interface with no key and no peers. `now` and `unix_now` are one
    /// reading of the monotonic and the wall clock.
    pub(crate) fn new(now: Instant, unix_now: Duration) -> Self {
        Self::with_engine(Engine::new(
            PrivateKey::generate(&mut OsRng),
            OsRng,
            now,
            unix_now,
        ))
    }

    /// An interface as [`Interface::new`] makes it, whose engine holds at
    /// most `max_peers` peers.
    #[cfg(test)]
    fn with_peer_limit(now: Instant, unix_now: Duration, max_peers: usize) -> Self {
        Self::with_engine(Engine::with_peer_limit(
            PrivateKey::generate(&mut OsRng),
            OsRng,
            now,
            unix_now,
            max_peers,
        ))
    }

    fn with_engine(engine: Engine) -> Self {
        Self {
            engine,
            allowed_ips: AllowedIps::new(),
            private_key: None,
            listen_port: 0,
            fwmark: None,
            firewall: Firewall::default(),
        }
    }

    /// The engine.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, for the data path.
    pub(crate) fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The peer an IP packet from the TUN device goes to: the one whose
    /// allowed IPs hold its destination address (longest prefix). `None`
    /// for a packet to an address no peer is allowed, or one that is not
    /// IPv4 or IPv6 or too short to have a destination.
    pub(crate) fn route(&self, packet: &[u8]) -> Option<PeerId> {
        let header = IpHeader::new_checked(packet).ok()?;
        self.allowed_ips.lookup(header.destination())
    }

    /// Whether `peer` may have sent `packet`, opened from its datagram: its
    /// source address routes back to `peer` through the allowed IPs. A peer
    /// can send only from addresses it is allowed, so no peer can speak for
    /// another's addresses (nor a rival operator for ours).
    pub(crate) fn accepts(&self, peer: PeerId, packet: &[u8]) -> bool {
        IpHeader::new_checked(packet)
            .is_ok_and(|header| self.allowed_ips.lookup(header.source()) == Some(peer))
    }

    /// Whether `packet`, going `direction` between this host and `peer`,
    /// passes the firewall (see [`Firewall::check`]): always for a peer
    /// without a policy.
    ///
    /// # Errors
    ///
    /// When it is dropped (and counted); with the drop when it is the first
    /// of its kind in a minute, to be logged.
    #[inline]
    pub(crate) fn filter(
        &mut self,
        now: Instant,
        direction: Direction,
        peer: PeerId,
        packet: &[u8],
    ) -> Result<(), Option<Dropped>> {
        self.firewall.check(now, direction, peer, packet)
    }

    /// The firewall.
    pub(crate) fn firewall(&self) -> &Firewall {
        &self.firewall
    }

    /// Whether a private key has been set: without one, nothing is sent or
    /// accepted.
    pub(crate) fn is_configured(&self) -> bool {
        self.private_key.is_some()
    }

    /// The port the socket is bound to.
    pub(crate) fn listen_port(&self) -> u16 {
        self.listen_port
    }

    /// The firewall mark of the socket.
    pub(crate) fn fwmark(&self) -> Option<u32> {
        self.fwmark
    }

    /// Records the port the socket was actually bound to.
    pub(crate) fn set_bound_port(&mut self, port: u16) {
        self.listen_port = port;
    }

    /// A snapshot without secrets, peers ordered by public key.
    pub(crate) fn state(&self) -> DeviceState {
        let engine = &self.engine;
        let peers = engine
            .peers()
            .map(|(public_key, id)| {
                let stats = engine.peer_stats(id).unwrap_or_default();
                PeerState {
                    public_key: *public_key,
                    endpoint: engine.peer_endpoint(id),
                    last_handshake: stats.last_handshake.map(|at| engine.unix_time(at)),
                    rx_bytes: stats.rx_bytes,
                    tx_bytes: stats.tx_bytes,
                    persistent_keepalive: engine
                        .peer_persistent_keepalive(id)
                        .map(|interval| u16::try_from(interval.as_secs()).unwrap_or(u16::MAX)),
                    allowed_ips: self.allowed_ips.nets_of(id),
                }
            })
            .collect();
        DeviceState {
            listen_port: self.listen_port,
            fwmark: self.fwmark,
            peers,
        }
    }

    /// A snapshot with the private and preshared keys, for a UAPI `get`.
    pub(crate) fn uapi_state(&self) -> UapiState {
        let engine = &self.engine;
        let preshared_keys = engine
            .peers()
            .filter_map(|(public_key, id)| {
                let psk = engine.peer_preshared_key(id)?;
                (!psk.is_none()).then(|| (*public_key, psk.clone()))
            })
            .collect();
        UapiState {
            private_key: self.private_key.clone(),
            preshared_keys,
            state: self.state(),
        }
    }

    /// What the session watch needs of each peer, ordered by public key.
    pub(crate) fn session_views(&self) -> impl Iterator<Item = SessionView> + '_ {
        let engine = &self.engine;
        engine.peers().map(|(public_key, id)| SessionView {
            public_key: *public_key,
            last_handshake: engine.peer_stats(id).and_then(|stats| stats.last_handshake),
            endpoint: engine.peer_endpoint(id),
        })
    }

    /// The peers whose last handshake completed less than
    /// `REJECT_AFTER_TIME` before `now`: those with a live session.
    pub(crate) fn live_peers(&self, now: Instant) -> Vec<PublicKey> {
        self.session_views()
            .filter(|view| view.session_at(now) == PeerSession::Live)
            .map(|view| view.public_key)
            .collect()
    }

    /// Each peer's session at `now`, ordered by public key.
    pub(crate) fn sessions(&self, now: Instant) -> Vec<(PublicKey, PeerSession)> {
        self.session_views()
            .map(|view| (view.public_key, view.session_at(now)))
            .collect()
    }

    /// Starts a handshake with each peer of `keys` that has no usable
    /// session, as a packet to it would (unless one went out less than
    /// `REKEY_TIMEOUT` ago), but with no packet: what follows the
    /// handshake is a keepalive. Keys of no peer are skipped.
    pub(crate) fn connect(&mut self, now: Instant, keys: &[PublicKey]) {
        for key in keys {
            if let Some(id) = self.engine.peer_id(key) {
                // The peer was just found.
                let _ = self.engine.connect(now, id);
            }
        }
    }

    /// Finds every reason to refuse `change` without changing anything.
    ///
    /// The room for new peers is counted over the whole change, in the
    /// order [`Interface::commit`] applies it: each peer it creates takes a
    /// place, each peer it removes (one by one, all at once with
    /// `replace_peers`, or by taking the new private key's public key) gives
    /// one back to the peers created after it. So a change that creates more
    /// peers than there is room for is refused whole, never applied up to
    /// the limit, and one that removes peers to make room is not refused.
    ///
    /// # Errors
    ///
    /// [`ChangeError::InvalidPeerKey`] when a new peer's key is a low-order
    /// point, with which no handshake can work, and
    /// [`ChangeError::TooManyPeers`] when the engine would have no room for
    /// a peer the change creates.
    pub(crate) fn check(&self, change: &ConfigChange) -> Result<(), ChangeError> {
        let engine = &self.engine;
        let mut room = engine.peer_room();
        if change.replace_peers {
            room += engine.peers().count();
        }
        // Whether a peer the change names is there after the changes before
        // it; a peer not in the map is as the engine has it.
        let mut present: BTreeMap<PublicKey, bool> = BTreeMap::new();
        let had =
            |public_key: &PublicKey| !change.replace_peers && engine.peer_id(public_key).is_some();
        let own_key = match &change.private_key {
            Some(Some(key)) => {
                let own_key = key.public_key();
                // A peer with the new key goes: a peer cannot be ourselves.
                if had(&own_key) {
                    present.insert(own_key, false);
                    room += 1;
                }
                Some(own_key)
            }
            Some(None) => None,
            None => self.private_key.as_ref().map(PrivateKey::public_key),
        };
        for peer in &change.peers {
            let public_key = *peer.public_key();
            // A peer with our own key is ignored, as wireguard-go does.
            if Some(public_key) == own_key {
                continue;
            }
            let there = *present
                .entry(public_key)
                .or_insert_with(|| had(&public_key));
            match peer {
                PeerChange::Remove(_) => {
                    if there {
                        present.insert(public_key, false);
                        room += 1;
                    }
                }
                PeerChange::Set(update) => {
                    if there || update.update_only {
                        continue;
                    }
                    match engine.check_new_peer(&public_key) {
                        // The room is counted here, not by the engine: it
                        // sees the peers before the change.
                        Ok(())
                        | Err(
                            sentrymesh_tunnel::Error::PeerExists
                            | sentrymesh_tunnel::Error::TooManyPeers,
                        ) => {}
                        Err(_) => return Err(ChangeError::InvalidPeerKey),
                    }
                    room = room.checked_sub(1).ok_or(ChangeError::TooManyPeers)?;
                    present.insert(public_key, true);
                }
            }
        }
        Ok(())
    }

    /// Applies a change that [`Interface::check`] accepted, and returns how
    /// many peers it removed. The listen port and mark are recorded; the
    /// caller has bound the socket they need.
    pub(crate) fn commit(&mut self, now: Instant, change: ConfigChange) -> usize {
        let mut removed = 0;
        match change.private_key {
            // The key we have: sessions stay (wireguard-go does the same).
            Some(Some(key))
                if self.private_key.as_ref().map(PrivateKey::public_key)
                    == Some(key.public_key()) => {}
            Some(Some(key)) => {
                // A peer with the new key goes: a peer cannot be ourselves.
                removed += usize::from(self.engine.peer_id(&key.public_key()).is_some());
                self.engine.set_private_key(key.clone());
                self.private_key = Some(key);
            }
            Some(None) => {
                self.engine
                    .set_private_key(PrivateKey::generate(&mut OsRng));
                self.private_key = None;
            }
            None => {}
        }
        if let Some(fwmark) = change.fwmark {
            self.fwmark = fwmark;
        }
        if let Some(conntrack_max) = change.conntrack_max {
            self.firewall.resize(conntrack_max, now);
        }
        if change.replace_peers {
            let ids: Vec<PeerId> = self.engine.peers().map(|(_, id)| id).collect();
            removed += ids.len();
            for id in ids {
                self.remove_peer(id);
            }
        }
        let own_key = *self.engine.public_key();
        for change in change.peers {
            if *change.public_key() == own_key {
                continue;
            }
            let existing = self.engine.peer_id(change.public_key());
            let change = match change {
                PeerChange::Remove(_) => {
                    if let Some(id) = existing {
                        self.remove_peer(id);
                        removed += 1;
                    }
                    continue;
                }
                PeerChange::Set(update) => update,
            };
            let id = match existing {
                Some(id) => id,
                None if change.update_only => continue,
                None => match self.add_peer(now, change.public_key) {
                    Some(id) => id,
                    None => continue,
                },
            };
            self.update_peer(
                now,
                id,
                change.preshared_key,
                change.endpoint,
                change.persistent_keepalive,
            );
            if let Some(policy) = change.policy {
                self.firewall.set_policy(id, policy);
            }
            if change.replace_allowed_ips {
                self.allowed_ips.remove_value(id);
            }
            for allowed in change.allowed_ips {
                match allowed {
                    AllowedIpChange::Add(net) => {
                        self.allowed_ips.insert(net, id);
                    }
                    AllowedIpChange::Remove(net) => {
                        self.allowed_ips.remove(net, id);
                    }
                }
            }
        }
        removed
    }

    fn add_peer(&mut self, now: Instant, public_key: PublicKey) -> Option<PeerId> {
        // `check` refused every key `add_peer` could refuse.
        self.engine.add_peer(now, PeerConfig::new(public_key)).ok()
    }

    fn update_peer(
        &mut self,
        now: Instant,
        id: PeerId,
        preshared_key: Option<sentrymesh_tunnel::PresharedKey>,
        endpoint: Option<std::net::SocketAddr>,
        persistent_keepalive: Option<u16>,
    ) {
        // The peer exists: it was just found or added.
        if let Some(psk) = preshared_key {
            let _ = self.engine.set_peer_preshared_key(id, psk);
        }
        if let Some(addr) = endpoint {
            let _ = self.engine.set_peer_endpoint(id, addr);
        }
        if let Some(seconds) = persistent_keepalive {
            let interval = (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)));
            let _ = self.engine.set_peer_persistent_keepalive(now, id, interval);
        }
    }

    /// Gives back the room the interface's tables keep for peers that
    /// went (their capacity stays at the most they held until then).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.engine.shrink_to_fit();
        self.firewall.shrink_to_fit();
    }

    fn remove_peer(&mut self, id: PeerId) {
        self.allowed_ips.remove_value(id);
        self.firewall.remove_peer(id);
        self.engine.remove_peer(id);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

    use sentrymesh_tunnel::timers::REJECT_AFTER_TIME;

    use super::*;
    use crate::dataplane::change::PeerUpdate;

    fn key(byte: u8) -> PrivateKey {
        PrivateKey::from_bytes([byte; 32])
    }

    fn peer(byte: u8, nets: &[&str]) -> PeerChange {
        PeerChange::Set(update(byte, nets))
    }

    fn update(byte: u8, nets: &[&str]) -> PeerUpdate {
        let mut change = PeerUpdate::new(key(byte).public_key());
        change.endpoint = Some("198.18.0.2:51820".parse().unwrap());
        change.persistent_keepalive = Some(25);
        change.allowed_ips = nets
            .iter()
            .map(|net| AllowedIpChange::Add(net.parse().unwrap()))
            .collect();
        change
    }

    fn apply(interface: &mut Interface, change: ConfigChange) -> Result<(), ChangeError> {
        interface.check(&change)?;
        interface.commit(Instant::now(), change);
        Ok(())
    }

    #[test]
    fn a_request_applies_completely() {
        let mut interface = Interface::new(Instant::now(), Duration::from_secs(1_700_000_000));
        assert!(!interface.is_configured());
        let request = ConfigChange {
            private_key: Some(Some(key(1))),
            peers: vec![
                peer(2, &["198.18.1.0/24"]),
                peer(3, &["198.18.2.0/24", "2001:2::/64"]),
            ],
            ..ConfigChange::default()
        };
        apply(&mut interface, request).unwrap();
        assert!(interface.is_configured());
        let state = interface.state();
        assert_eq!(state.peers.len(), 2);
        let third = state
            .peers
            .iter()
            .find(|p| p.public_key == key(3).public_key())
            .unwrap();
        assert_eq!(third.allowed_ips.len(), 2);
        assert_eq!(third.persistent_keepalive, Some(25));
        assert_eq!(
            interface.route(&ipv4("198.18.0.1", "198.18.2.9")),
            interface.engine().peer_id(&key(3).public_key())
        );
    }

    /// An IPv4 header from `src` to `dst`.
    fn ipv4(src: &str, dst: &str) -> [u8; 20] {
        let mut packet = [0u8; 20];
        packet[0] = 0x45;
        packet[12..16].copy_from_slice(&src.parse::<Ipv4Addr>().unwrap().octets());
        packet[16..20].copy_from_slice(&dst.parse::<Ipv4Addr>().unwrap().octets());
        packet
    }

    /// An IPv6 header from `src` to `dst`.
    fn ipv6(src: &str, dst: &str) -> [u8; 40] {
        let mut packet = [0u8; 40];
        packet[0] = 0x60;
        packet[8..24].copy_from_slice(&src.parse::<Ipv6Addr>().unwrap().octets());
        packet[24..40].copy_from_slice(&dst.parse::<Ipv6Addr>().unwrap().octets());
        packet
    }

    #[test]
    fn packets_route_by_destination_and_are_accepted_by_source() {
        let mut interface = Interface::new(Instant::now(), Duration::from_secs(1_700_000_000));
        let request = ConfigChange {
            private_key: Some(Some(key(1))),
            peers: vec![
                peer(2, &["198.18.1.0/24", "2001:2::/64"]),
                peer(3, &["198.18.2.0/24"]),
            ],
            ..ConfigChange::default()
        };
        apply(&mut interface, request).unwrap();
        let id = |byte| interface.engine().peer_id(&key(byte).public_key()).unwrap();
        let (two, three) = (id(2), id(3));
        assert_eq!(
            interface.route(&ipv4("198.18.2.1", "198.18.1.7")),
            Some(two)
        );
        assert_eq!(
            interface.route(&ipv4("198.18.1.7", "198.18.2.1")),
            Some(three)
        );
        assert_eq!(interface.route(&ipv6("2001:2::1", "2001:2::2")), Some(two));
        assert_eq!(interface.route(&ipv4("198.18.1.7", "198.18.9.1")), None);
        assert!(interface.accepts(two, &ipv4("198.18.1.7", "198.18.0.1")));
        assert!(interface.accepts(two, &ipv6("2001:2::9", "2001:2::1")));
        // Another peer's source, or one no peer has, is not accepted.
        assert!(!interface.accepts(three, &ipv4("198.18.1.7", "198.18.0.1")));
        assert!(!interface.accepts(two, &ipv4("198.18.9.7", "198.18.0.1")));
        // Cut short, or not IP: neither routed nor accepted.
        let packet = ipv4("198.18.1.7", "198.18.2.1");
        assert_eq!(interface.route(&packet[..19]), None);
        assert!(!interface.accepts(two, &packet[..15]));
        assert_eq!(interface.route(&[0x10; 40]), None);
        assert_eq!(interface.route(&[]), None);
        assert!(!interface.accepts(two, &[]));
    }

    #[test]
    fn a_request_with_one_bad_peer_changes_nothing() {
        let mut interface = Interface::new(Instant::now(), Duration::from_secs(1_700_000_000));
        apply(
            &mut interface,
            ConfigChange {
                private_key: Some(Some(key(1))),
                peers: vec![peer(2, &["198.18.1.0/24"])],
                ..ConfigChange::default()
            },
        )
        .unwrap();
        let before = report(&interface);
        // The all-zero point has low order: no handshake can work with it.
        let low_order = PeerChange::Set(PeerUpdate::new(PublicKey::from_bytes([0; 32])));
        let request = ConfigChange {
            private_key: Some(Some(key(9))),
            replace_peers: true,
            peers: vec![peer(4, &["198.18.4.0/24"]), low_order],
            ..ConfigChange::default()
        };
        assert!(matches!(
            apply(&mut interface, request),
            Err(ChangeError::InvalidPeerKey)
        ));
        assert_eq!(report(&interface), before);
    }

    /// The UAPI `get` of `interface`: everything it holds, keys included.
    fn report(interface: &Interface) -> Vec<u8> {
        let mut out = Vec::new();
        crate::control::uapi::write_get_response(&interface.uapi_state(), &mut out);
        out
    }

    /// An interface holding at most three peers, with peers 2 and 3.
    fn two_of_three() -> Interface {
        let mut interface =
            Interface::with_peer_limit(Instant::now(), Duration::from_secs(1_700_000_000), 3);
        let change = ConfigChange {
            private_key: Some(Some(key(1))),
            peers: vec![peer(2, &["198.19.2.0/24"]), peer(3, &["198.19.3.0/24"])],
            ..ConfigChange::default()
        };
        apply(&mut interface, change).unwrap();
        interface
    }

    /// The public keys of the peers of `interface`, by their key byte.
    fn peer_bytes(interface: &Interface) -> Vec<u8> {
        (0..=u8::MAX)
            .filter(|&byte| {
                interface
                    .engine()
                    .peer_id(&key(byte).public_key())
                    .is_some()
            })
            .collect()
    }

    #[test]
    fn a_request_that_adds_more_peers_than_there_is_room_for_changes_nothing() {
        let mut interface = two_of_three();
        let before = report(&interface);
        // Room for one more: the first new peer fits, the second does not,
        // and neither is added, nor are the changes around them applied.
        let request = ConfigChange {
            private_key: Some(Some(key(9))),
            peers: vec![
                peer(2, &["198.19.12.0/24"]),
                peer(4, &["198.19.4.0/24"]),
                peer(5, &["198.19.5.0/24"]),
            ],
            ..ConfigChange::default()
        };
        assert!(matches!(
            apply(&mut interface, request),
            Err(ChangeError::TooManyPeers)
        ));
        assert_eq!(report(&interface), before);
        // One more fits.
        let request = ConfigChange {
            peers: vec![peer(4, &["198.19.4.0/24"])],
            ..ConfigChange::default()
        };
        apply(&mut interface, request).unwrap();
        assert_eq!(peer_bytes(&interface), [2, 3, 4]);
    }

    #[test]
    fn peers_removed_earlier_in_a_request_make_room_for_later_ones() {
        // Removed one by one, then two added.
        let mut interface = two_of_three();
        let request = ConfigChange {
            peers: vec![
                PeerChange::Remove(key(2).public_key()),
                peer(4, &["198.19.4.0/24"]),
                peer(5, &["198.19.5.0/24"]),
            ],
            ..ConfigChange::default()
        };
        apply(&mut interface, request).unwrap();
        assert_eq!(peer_bytes(&interface), [3, 4, 5]);

        // All replaced by three new ones, at the limit already.
        let request = ConfigChange {
            replace_peers: true,
            peers: vec![
                peer(6, &["198.19.6.0/24"]),
                peer(7, &["198.19.7.0/24"]),
                peer(8, &["198.19.8.0/24"]),
            ],
            ..ConfigChange::default()
        };
        apply(&mut interface, request).unwrap();
        assert_eq!(peer_bytes(&interface), [6, 7, 8]);

        // The new private key's peer goes, which makes room for one.
        let request = ConfigChange {
            private_key: Some(Some(key(8))),
            peers: vec![peer(9, &["198.19.9.0/24"])],
            ..ConfigChange::default()
        };
        apply(&mut interface, request).unwrap();
        assert_eq!(peer_bytes(&interface), [6, 7, 9]);
    }

    #[test]
    fn room_is_counted_in_the_order_the_request_applies() {
        let mut interface = two_of_three();
        let full = ConfigChange {
            peers: vec![peer(4, &["198.19.4.0/24"])],
            ..ConfigChange::default()
        };
        apply(&mut interface, full).unwrap();
        let before = report(&interface);
        // A peer added before the removal that would make room for it has
        // none when it is added: refused whole, the removal too.
        let request = ConfigChange {
            peers: vec![
                peer(5, &["198.19.5.0/24"]),
                PeerChange::Remove(key(2).public_key()),
            ],
            ..ConfigChange::default()
        };
        assert!(matches!(
            apply(&mut interface, request),
            Err(ChangeError::TooManyPeers)
        ));
        assert_eq!(report(&interface), before);
        // A peer removed and added again, and a peer named twice, take one
        // place each; a removal of a peer that is not there makes none.
        let request = ConfigChange {
            peers: vec![
                PeerChange::Remove(key(5).public_key()),
                PeerChange::Remove(key(2).public_key()),
                peer(2, &["198.19.2.0/24"]),
                peer(2, &["198.19.12.0/24"]),
            ],
            ..ConfigChange::default()
        };
        apply(&mut interface, request).unwrap();
        assert_eq!(peer_bytes(&interface), [2, 3, 4]);
        let request = ConfigChange {
            peers: vec![
                PeerChange::Remove(key(5).public_key()),
                peer(6, &["198.19.6.0/24"]),
            ],
            ..ConfigChange::default()
        };
        assert!(matches!(
            apply(&mut interface, request),
            Err(ChangeError::TooManyPeers)
        ));
        assert_eq!(peer_bytes(&interface), [2, 3, 4]);
    }

    #[test]
    fn our_own_key_as_a_peer_is_ignored() {
        let mut interface = Interface::new(Instant::now(), Duration::from_secs(1_700_000_000));
        let request = ConfigChange {
            private_key: Some(Some(key(1))),
            peers: vec![peer(1, &["198.18.1.0/24"]), peer(2, &["198.18.2.0/24"])],
            ..ConfigChange::default()
        };
        apply(&mut interface, request).unwrap();
        let state = interface.state();
        assert_eq!(state.peers.len(), 1);
        assert_eq!(state.peers[0].public_key, key(2).public_key());
    }

    /// Two interfaces that know each other, at 198.18.0.1 and 198.18.0.2,
    /// with a preshared key on the first.
    fn pair(now: Instant) -> [Interface; 2] {
        linked(now, Some(25))
    }

    /// [`pair`], with each peer's persistent keepalive `keepalive` (none:
    /// neither sends anything until asked).
    fn linked(now: Instant, keepalive: Option<u16>) -> [Interface; 2] {
        let unix = Duration::from_secs(1_700_000_000);
        let mut interfaces = [Interface::new(now, unix), Interface::new(now, unix)];
        for (index, interface) in interfaces.iter_mut().enumerate() {
            let other = u8::try_from(2 - index).unwrap();
            let mut peer = update(other, &[&format!("198.19.{other}.0/24")]);
            peer.persistent_keepalive = keepalive;
            peer.endpoint = Some(SocketAddr::from(([198, 18, 0, other], 51820)));
            peer.preshared_key = Some(sentrymesh_tunnel::PresharedKey::from_bytes([7; 32]));
            let change = ConfigChange {
                private_key: Some(Some(key(u8::try_from(index + 1).unwrap()))),
                peers: vec![PeerChange::Set(peer)],
                ..ConfigChange::default()
            };
            apply(interface, change).unwrap();
        }
        interfaces
    }

    /// Carries every datagram either side queued to the other until
    /// neither has one.
    fn exchange(interfaces: &mut [Interface; 2], now: Instant) {
        let mut buf = vec![0u8; 2048];
        loop {
            let mut quiet = true;
            for from in 0..2 {
                let sent = interfaces[from].engine_mut().poll_transmit(now, &mut buf);
                let Some(transmit) = sent else { continue };
                quiet = false;
                let source =
                    SocketAddr::from(([198, 18, 0, u8::try_from(from + 1).unwrap()], 51820));
                let _ = interfaces[1 - from].engine_mut().handle_datagram(
                    now,
                    source,
                    &mut buf[..transmit.len],
                );
            }
            if quiet {
                return;
            }
        }
    }

    #[test]
    fn a_peer_is_live_from_its_handshake_until_reject_after_time() {
        let start = Instant::now();
        let mut interfaces = pair(start);
        assert!(interfaces[0].live_peers(start).is_empty());
        let id = interfaces[0]
            .engine()
            .peer_id(&key(2).public_key())
            .unwrap();
        let mut packet = vec![0u8; 128];
        packet[sentrymesh_tunnel::DATA_HEADER_LEN] = 0x45;
        let queued = interfaces[0]
            .engine_mut()
            .encapsulate_in_place(start, id, &mut packet, 20)
            .unwrap();
        assert_eq!(queued, sentrymesh_tunnel::Encapsulated::Queued);
        exchange(&mut interfaces, start);
        assert_eq!(interfaces[0].live_peers(start), [key(2).public_key()]);
        assert_eq!(interfaces[1].live_peers(start), [key(1).public_key()]);
        let almost = start + REJECT_AFTER_TIME - Duration::from_millis(1);
        assert_eq!(interfaces[0].live_peers(almost).len(), 1);
        assert!(
            interfaces[0]
                .live_peers(start + REJECT_AFTER_TIME)
                .is_empty()
        );
    }

    #[test]
    fn connect_starts_a_handshake_without_a_packet() {
        let start = Instant::now();
        let mut interfaces = linked(start, None);
        let (one, two) = (key(1).public_key(), key(2).public_key());
        exchange(&mut interfaces, start);
        assert_eq!(interfaces[0].sessions(start), [(two, PeerSession::Never)]);
        // A key of no peer is skipped.
        interfaces[0].connect(start, &[key(9).public_key(), two]);
        exchange(&mut interfaces, start);
        assert_eq!(interfaces[0].sessions(start), [(two, PeerSession::Live)]);
        assert_eq!(interfaces[1].sessions(start), [(one, PeerSession::Live)]);
        assert_eq!(
            interfaces[0].engine().staging_stats().packets,
            0,
            "no packet waited for the handshake"
        );
        let later = start + REJECT_AFTER_TIME;
        assert_eq!(interfaces[0].sessions(later), [(two, PeerSession::Expired)]);
        assert!(PeerSession::Expired.ever() && !PeerSession::Never.ever());
    }

    #[test]
    fn only_the_uapi_state_has_keys() {
        let [interface, _] = pair(Instant::now());
        let uapi = interface.uapi_state();
        assert_eq!(
            uapi.private_key.as_ref().map(PrivateKey::public_key),
            Some(key(1).public_key())
        );
        assert_eq!(
            uapi.preshared_keys
                .get(&key(2).public_key())
                .map(|psk| *psk.as_bytes()),
            Some([7; 32])
        );
        // The state every other task gets is the same, less the keys.
        assert_eq!(uapi.state, interface.state());
    }
}
