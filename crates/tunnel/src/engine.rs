//! The interface: our static identity, its peers, and the routing of
//! datagrams to them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::CryptoRngCore;
use sentrymesh_types::{PrivateKey, PublicKey};

use crate::cookie::CookieChecker;
use crate::error::Error;
use crate::handshake::{LocalIdentity, identify_initiator};
use crate::index_table::IndexTable;
use crate::keys::PresharedKey;
use crate::messages::{
    COOKIE_REPLY_LEN, CookieReply, DATA_HEADER_LEN, DATA_OVERHEAD, DataHeader, Initiation,
    MessageKind, Response, SessionIndex,
};
use crate::peer::{Context, Peer, PeerStats, padded_len};
use crate::peer_slots::PeerSlots;
use crate::rate_limit::RateLimiter;
use crate::staging::{Staging, StagingStats};
use crate::tai64n::WallClock;
use crate::timer_queue::{Entry, TimerQueue};

/// Cookie replies waiting to be sent; more are dropped (they are only an
/// answer to load, and the sender will retry).
const MAX_QUEUED_COOKIE_REPLIES: usize = 64;

/// The most peers an engine holds at once.
const MAX_PEERS: usize = 1 << 24;

/// Distinct static keys of initiations from unknown keys kept until polled
/// ([`Engine::poll_unknown_initiator`]); more are dropped.
const MAX_UNKNOWN_INITIATORS: usize = 64;

/// The engine's source of randomness: any cryptographic RNG that can be
/// copied, so that with the `testing` feature an [`Engine`] is `Clone` (a
/// test or fuzz fixture built once, copied for every case).
trait EngineRng: CryptoRngCore + Send {
    /// An independent copy in the same state: it draws what `self` would.
    #[cfg(any(test, feature = "testing"))]
    fn boxed_clone(&self) -> Box<dyn EngineRng>;
}

impl<R: CryptoRngCore + Clone + Send + 'static> EngineRng for R {
    #[cfg(any(test, feature = "testing"))]
    fn boxed_clone(&self) -> Box<dyn EngineRng> {
        Box::new(self.clone())
    }
}

/// Whether a handshake message's source is still to be charged to the
/// per-source rate limiter under load, or was when it was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rate {
    ToCharge,
    Charged,
}

/// A handle to a peer of an [`Engine`]. A removed peer's slot is reused by
/// a later peer, under a new generation: an id of the removed peer is
/// refused from then on, and never names the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId {
    /// The slot of the engine's peer table.
    pub(crate) slot: u32,
    /// How many peers held the slot before this one.
    pub(crate) generation: u32,
}

/// How to reach a new peer.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The peer's static public key: its identity.
    pub public_key: PublicKey,
    /// The preshared key, or all zeros for none.
    pub preshared_key: PresharedKey,
    /// Where to send initiations until the peer is heard from.
    pub endpoint: Option<SocketAddr>,
    /// Send a keepalive after this much silence, to keep NAT mappings open.
    pub persistent_keepalive: Option<Duration>,
}

impl PeerConfig {
    /// A peer with only a public key.
    pub fn new(public_key: PublicKey) -> Self {
        Self {
            public_key,
            preshared_key: PresharedKey::none(),
            endpoint: None,
            persistent_keepalive: None,
        }
    }
}

/// A datagram to send: `len` bytes of the caller's buffer, to `destination`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The UDP address to send to.
    pub destination: SocketAddr,
    /// The length of the datagram at the start of the buffer.
    pub len: usize,
    /// The peer it belongs to; `None` for a cookie reply to an unknown sender.
    pub peer: Option<PeerId>,
}

/// What became of a packet given to [`Engine::encapsulate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encapsulated {
    /// Sealed into the first `len` bytes of the output buffer: send them to
    /// [`Engine::peer_endpoint`]. (The destination is not returned with
    /// every packet: a caller sending a batch looks it up once.)
    Sealed {
        /// The length of the datagram.
        len: usize,
    },
    /// Kept until a handshake completes; [`Engine::poll_transmit`] will
    /// produce the handshake now and the packet later. It waits within the
    /// interface's staging budget ([`crate::staging`]), which may drop it
    /// (and count it) to make room.
    Queued,
}

/// What an accepted datagram carried.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// An IP packet from `peer`, decrypted in place and stripped of its padding.
    Packet {
        /// The peer that sent it.
        peer: PeerId,
        /// The inner IPv4 or IPv6 packet, inside the caller's datagram buffer.
        packet: &'a mut [u8],
    },
    /// A handshake message, cookie reply or keepalive from `peer`; anything
    /// to answer is ready in [`Engine::poll_transmit`].
    Control(PeerId),
}

/// A WireGuard interface as a state machine.
///
/// A peer's *endpoint* ([`PeerConfig::endpoint`], [`Engine::peer_endpoint`])
/// is where its WireGuard UDP port is reached, as in WireGuard's `endpoint=`.
///
/// After every input (`handle_datagram`, `encapsulate`, `handle_timeout`,
/// configuration changes), drain [`Engine::poll_transmit`] and sleep until
/// [`Engine::poll_timeout`].
///
/// The peers' deadlines wait in a min-heap, rescheduled after every input
/// that touches a peer: [`Engine::poll_timeout`] reads its top, and
/// [`Engine::handle_timeout`] runs only the peers whose deadline passed, so
/// neither grows with idle peers or with peers removed.
pub struct Engine {
    local: LocalIdentity,
    checker: CookieChecker,
    clock: WallClock,
    rng: Box<dyn EngineRng>,
    indices: IndexTable,
    peers: PeerSlots<Peer>,
    timers: TimerQueue,
    /// The peers found due by [`Engine::handle_timeout`]: kept to reuse
    /// the allocation.
    due: Vec<PeerId>,
    by_key: BTreeMap<PublicKey, PeerId>,
    transmit_queue: VecDeque<PeerId>,
    /// Every peer's packets waiting for a session, within one budget.
    staging: Staging,
    cookie_replies: VecDeque<(SocketAddr, [u8; COOKIE_REPLY_LEN])>,
    unknown_initiators: BTreeSet<PublicKey>,
    under_load: bool,
    rate_limiter: RateLimiter,
    mtu: Option<usize>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("public_key", self.local.public_key())
            .field("peers", &self.by_key.len())
            .field("under_load", &self.under_load)
            .finish_non_exhaustive()
    }
}

/// A copy of the engine with the same keys, peers, sessions, timers and
/// RNG state, sharing nothing with the original: both answer the same
/// input the same way. Only for tests and fuzzing (the `testing` feature):
/// a running interface is never copied, as two copies would send under
/// the same nonces.
#[cfg(any(test, feature = "testing"))]
impl Clone for Engine {
    fn clone(&self) -> Self {
        Self {
            local: self.local.clone(),
            checker: self.checker.clone(),
            clock: self.clock,
            rng: self.rng.boxed_clone(),
            indices: self.indices.clone(),
            peers: self.peers.clone(),
            timers: self.timers.clone(),
            due: self.due.clone(),
            by_key: self.by_key.clone(),
            transmit_queue: self.transmit_queue.clone(),
            staging: self.staging.clone(),
            cookie_replies: self.cookie_replies.clone(),
            unknown_initiators: self.unknown_initiators.clone(),
            under_load: self.under_load,
            rate_limiter: self.rate_limiter.clone(),
            mtu: self.mtu,
        }
    }
}

impl Engine {
    /// An interface with the static key `private_key` and no peers.
    ///
    /// `now` and `unix_now` are one reading of the monotonic and the wall
    /// clock: handshake timestamps are derived from them. `rng` supplies
    /// ephemeral keys, cookie secrets, nonces and timer jitter; it is
    /// `Clone` so that an engine can be copied in tests (`OsRng` and the
    /// seeded generators all are).
    pub fn new(
        private_key: PrivateKey,
        rng: impl CryptoRngCore + Clone + Send + 'static,
        now: Instant,
        unix_now: Duration,
    ) -> Self {
        Self::with_peer_limit(private_key, rng, now, unix_now, MAX_PEERS)
    }

    /// An interface as [`Engine::new`] makes it that holds at most
    /// `max_peers` peers at once (at most 2²⁴, the limit of
    /// [`Engine::new`]): a caller that bounds its memory by its peers, or a
    /// test of what happens at the limit.
    pub fn with_peer_limit(
        private_key: PrivateKey,
        rng: impl CryptoRngCore + Clone + Send + 'static,
        now: Instant,
        unix_now: Duration,
        max_peers: usize,
    ) -> Self {
        let local = LocalIdentity::new(private_key);
        Self {
            checker: CookieChecker::new(local.public_key()),
            local,
            clock: WallClock::new(now, unix_now),
            rng: Box::new(rng),
            indices: IndexTable::default(),
            peers: PeerSlots::new(max_peers.min(MAX_PEERS)),
            timers: TimerQueue::default(),
            due: Vec::new(),
            by_key: BTreeMap::new(),
            transmit_queue: VecDeque::new(),
            staging: Staging::default(),
            cookie_replies: VecDeque::new(),
            unknown_initiators: BTreeSet::new(),
            under_load: false,
            rate_limiter: RateLimiter::new(),
            mtu: None,
        }
    }

    /// Our static public key.
    pub fn public_key(&self) -> &PublicKey {
        self.local.public_key()
    }

    /// Replaces the static key. Every session and handshake made with the old
    /// key ends; a peer whose public key is the new one is removed, as a
    /// peer cannot be ourselves.
    pub fn set_private_key(&mut self, private_key: PrivateKey) {
        let local = LocalIdentity::new(private_key);
        if let Some(&id) = self.by_key.get(local.public_key()) {
            self.remove_peer(id);
        }
        self.checker = CookieChecker::new(local.public_key());
        self.local = local;
        for peer in self.peers.values_mut() {
            peer.rekey_identity(&self.local);
        }
    }

    /// Pads data packets to at most `mtu` bytes (the TUN device's MTU), as
    /// the kernel does; without one, packets are padded to a multiple of 16.
    pub fn set_mtu(&mut self, mtu: Option<u16>) {
        self.mtu = mtu.map(usize::from);
    }

    /// The static public key an initiation refused with
    /// [`Error::UnknownPeer`] named, each key once until polled, in key
    /// order; at most 64 wait, more are dropped (the caller counts the
    /// refusals). The key was decrypted from an initiation whose `mac1`
    /// was valid (and, under load, its `mac2` and its source's rate), so
    /// it costs no work a flood without this interface's public key can
    /// cause. It is only a claim: the initiator proved neither that it
    /// holds the key nor where it is.
    pub fn poll_unknown_initiator(&mut self) -> Option<PublicKey> {
        self.unknown_initiators.pop_first()
    }

    /// Under load, handshake messages must carry a valid cookie (`mac2`) and
    /// are rate-limited per source; others get a cookie reply.
    pub fn set_under_load(&mut self, under_load: bool) {
        self.under_load = under_load;
    }

    /// Admits `message`, a handshake message received from `from`, as one
    /// that proves its source and may take room kept for proven messages:
    /// it carries a valid `mac2` (a cookie this engine gave `from` less than
    /// two minutes ago, so `from` is where the sender really is), and
    /// `from`'s token bucket, the one that limits handshakes under load, has
    /// room for it. The bucket is charged then, so a host that got a cookie
    /// for its own address cannot keep that room full with a flood of valid
    /// `mac2`s: it gets its burst and its rate, like any source. It costs
    /// at most two MACs (none for a zero `mac2`) and no Diffie-Hellman. Hand an admitted message to
    /// [`Engine::handle_proven_handshake`], which does not charge it again.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] for anything but an initiation or a response,
    /// [`Error::CookieRequired`] without a valid `mac2` for `from`, and
    /// [`Error::RateLimited`] when `from`'s bucket is empty.
    pub fn admit_proven(
        &mut self,
        now: Instant,
        from: SocketAddr,
        message: &[u8],
    ) -> Result<(), Error> {
        match MessageKind::of(message) {
            Ok(MessageKind::Initiation | MessageKind::Response) => {}
            _ => return Err(Error::Malformed),
        }
        if !self.checker.check_mac2(now, message, from) {
            return Err(Error::CookieRequired);
        }
        if !self.rate_limiter.allow(now, from.ip()) {
            return Err(Error::RateLimited);
        }
        Ok(())
    }

    /// Processes a handshake message that [`Engine::admit_proven`] admitted:
    /// as [`Engine::handle_datagram`] does, except that under load its
    /// source's rate is not charged a second time.
    ///
    /// # Errors
    ///
    /// As [`Engine::handle_datagram`]; [`Error::Malformed`] for anything
    /// but an initiation or a response.
    pub fn handle_proven_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        message: &[u8],
    ) -> Result<PeerId, Error> {
        match MessageKind::of(message) {
            Ok(kind @ (MessageKind::Initiation | MessageKind::Response)) => {
                self.handle_handshake_message(now, from, kind, message, Rate::Charged)
            }
            _ => Err(Error::Malformed),
        }
    }

    /// Adds a peer.
    ///
    /// # Errors
    ///
    /// [`Error::PeerExists`] when a peer has this public key,
    /// [`Error::InvalidPeerKey`] when it is our own or has low order, and
    /// [`Error::TooManyPeers`] when the engine holds as many peers as it
    /// can.
    pub fn add_peer(&mut self, now: Instant, config: PeerConfig) -> Result<PeerId, Error> {
        self.check_new_peer(&config.public_key)?;
        let local = &self.local;
        let id = self
            .peers
            .insert(|id| {
                let mut peer = Peer::new(local, id, config.public_key, config.preshared_key);
                peer.endpoint = config.endpoint;
                peer.set_persistent_keepalive(now, config.persistent_keepalive);
                peer
            })
            .ok_or(Error::TooManyPeers)?;
        self.by_key.insert(config.public_key, id);
        self.schedule(now, id);
        Ok(id)
    }

    /// Whether [`Engine::add_peer`] would accept a peer with this public
    /// key, so a caller can validate a whole configuration before changing
    /// anything.
    ///
    /// # Errors
    ///
    /// As [`Engine::add_peer`].
    pub fn check_new_peer(&self, public_key: &PublicKey) -> Result<(), Error> {
        if self.by_key.contains_key(public_key) {
            return Err(Error::PeerExists);
        }
        if !self.local.can_peer_with(public_key) {
            return Err(Error::InvalidPeerKey);
        }
        if self.peers.room() == 0 {
            return Err(Error::TooManyPeers);
        }
        Ok(())
    }

    /// How many more peers [`Engine::add_peer`] accepts.
    pub fn peer_room(&self) -> usize {
        self.peers.room()
    }

    /// The packets waiting for a session, all peers together, and those
    /// dropped from that wait ([`crate::staging`]).
    pub fn staging_stats(&self) -> StagingStats {
        self.staging.stats()
    }

    /// Removes a peer and erases its keys. Its id is refused from now on,
    /// and its slot is reused by a later peer.
    pub fn remove_peer(&mut self, id: PeerId) -> bool {
        let Some(mut peer) = self.peers.remove(id) else {
            return false;
        };
        peer.release_indices(&mut self.indices);
        self.staging.clear(id);
        self.by_key.remove(peer.public_key());
        self.prune_timers();
        true
    }

    /// Gives back the room its tables keep beyond what they hold: after
    /// many peers went, a table keeps the capacity of the most it held
    /// until this is called. O(peers); the daemon calls it once after a
    /// burst of removals, not per removal.
    pub fn shrink_to_fit(&mut self) {
        self.prune_timers();
        self.indices.shrink_to_fit();
        self.timers.shrink_to_fit();
        self.due.shrink_to_fit();
        self.transmit_queue.shrink_to_fit();
    }

    /// The peer with this public key.
    pub fn peer_id(&self, public_key: &PublicKey) -> Option<PeerId> {
        self.by_key.get(public_key).copied()
    }

    /// Every peer, ordered by public key.
    pub fn peers(&self) -> impl Iterator<Item = (&PublicKey, PeerId)> + '_ {
        self.by_key.iter().map(|(key, &id)| (key, id))
    }

    fn peer(&self, id: PeerId) -> Option<&Peer> {
        self.peers.get(id)
    }

    fn peer_mut(&mut self, id: PeerId) -> Result<&mut Peer, Error> {
        self.peers.get_mut(id).ok_or(Error::NoSuchPeer)
    }

    /// The peer's traffic counters and last handshake time.
    pub fn peer_stats(&self, id: PeerId) -> Option<PeerStats> {
        self.peer(id).map(|p| p.stats)
    }

    /// Where the peer was last heard from (or was configured to be).
    pub fn peer_endpoint(&self, id: PeerId) -> Option<SocketAddr> {
        self.peer(id)?.endpoint
    }

    /// The peer's preshared key.
    pub fn peer_preshared_key(&self, id: PeerId) -> Option<&PresharedKey> {
        self.peer(id).map(Peer::preshared_key)
    }

    /// The peer's persistent keepalive interval.
    pub fn peer_persistent_keepalive(&self, id: PeerId) -> Option<Duration> {
        self.peer(id)?.persistent_keepalive()
    }

    /// Sets where to reach the peer (until it is heard from elsewhere).
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchPeer`].
    pub fn set_peer_endpoint(&mut self, id: PeerId, endpoint: SocketAddr) -> Result<(), Error> {
        self.peer_mut(id)?.endpoint = Some(endpoint);
        Ok(())
    }

    /// Sets the peer's preshared key, used from the next handshake on.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchPeer`].
    pub fn set_peer_preshared_key(&mut self, id: PeerId, psk: PresharedKey) -> Result<(), Error> {
        let peer = self.peers.get_mut(id).ok_or(Error::NoSuchPeer)?;
        peer.set_preshared_key(&self.local, psk);
        Ok(())
    }

    /// Sets the peer's persistent keepalive interval (`None` or zero: off).
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchPeer`].
    pub fn set_peer_persistent_keepalive(
        &mut self,
        now: Instant,
        id: PeerId,
        interval: Option<Duration>,
    ) -> Result<(), Error> {
        self.peer_mut(id)?.set_persistent_keepalive(now, interval);
        self.schedule(now, id);
        Ok(())
    }

    /// Starts a handshake with the peer now (unless one was sent less than
    /// `REKEY_TIMEOUT` ago), as sending a packet would.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchPeer`].
    pub fn connect(&mut self, now: Instant, id: PeerId) -> Result<(), Error> {
        self.peer_mut(id)?.send_keepalive(now);
        self.schedule(now, id);
        Ok(())
    }

    /// The Unix time at `instant`, by the clock given to [`Engine::new`]:
    /// what `wg show` reports as a peer's latest handshake.
    pub fn unix_time(&self, instant: Instant) -> Duration {
        self.clock.unix_time(instant)
    }

    /// The length of the datagram that carries an inner packet of `len` bytes.
    pub fn encapsulated_len(&self, len: usize) -> usize {
        padded_len(len, self.mtu) + DATA_OVERHEAD
    }

    // ----- inputs -------------------------------------------------------

    /// Processes a datagram received from `from`. Data is decrypted in place.
    ///
    /// # Errors
    ///
    /// Why the datagram was dropped; the engine's state is unchanged.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &'a mut [u8],
    ) -> Result<Received<'a>, Error> {
        let kind = MessageKind::of(datagram).map_err(|_| Error::Malformed)?;
        if kind != MessageKind::Data {
            return self
                .handle_handshake_message(now, from, kind, datagram, Rate::ToCharge)
                .map(Received::Control);
        }
        let header = DataHeader::read(datagram);
        let id = self
            .indices
            .owner(header.receiver)
            .ok_or(Error::UnknownIndex)?;
        let peer = self.peers.get_mut(id).ok_or(Error::UnknownIndex)?;
        let len = peer.handle_data(now, from, header.receiver, header.counter, datagram)?;
        if peer.enter_transmit_queue(now, &self.staging) {
            self.transmit_queue.push_back(id);
        }
        self.reschedule(id);
        if len == 0 {
            Ok(Received::Control(id))
        } else {
            Ok(Received::Packet {
                peer: id,
                packet: &mut datagram[DATA_HEADER_LEN..DATA_HEADER_LEN + len],
            })
        }
    }

    /// Handshake messages and cookie replies: rare, and kept off the data path.
    #[cold]
    #[inline(never)]
    fn handle_handshake_message(
        &mut self,
        now: Instant,
        from: SocketAddr,
        kind: MessageKind,
        datagram: &[u8],
        rate: Rate,
    ) -> Result<PeerId, Error> {
        let id = match kind {
            MessageKind::Initiation => self.handle_initiation(now, from, datagram, rate)?,
            MessageKind::Response => self.handle_response(now, from, datagram, rate)?,
            MessageKind::CookieReply => self.handle_cookie_reply(now, datagram)?,
            MessageKind::Data => unreachable!("data is handled by handle_datagram"),
        };
        self.schedule(now, id);
        Ok(id)
    }

    /// The checks every handshake message passes before any Diffie-Hellman:
    /// `mac1`, and under load `mac2` and the per-source rate (unless `rate`
    /// says it was charged already).
    fn admit_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        message: &[u8],
        sender: SessionIndex,
        rate: Rate,
    ) -> Result<(), Error> {
        if !self.checker.check_mac1(message) {
            return Err(Error::InvalidMac1);
        }
        if !self.under_load {
            return Ok(());
        }
        if !self.checker.check_mac2(now, message, from) {
            if self.cookie_replies.len() < MAX_QUEUED_COOKIE_REPLIES {
                let mut reply = [0u8; COOKIE_REPLY_LEN];
                self.checker
                    .write_reply(now, &mut *self.rng, message, sender, from, &mut reply);
                self.cookie_replies.push_back((from, reply));
            }
            return Err(Error::CookieRequired);
        }
        if rate == Rate::ToCharge && !self.rate_limiter.allow(now, from.ip()) {
            return Err(Error::RateLimited);
        }
        Ok(())
    }

    fn handle_initiation(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        rate: Rate,
    ) -> Result<PeerId, Error> {
        let message = Initiation::new_checked(datagram).map_err(|_| Error::Malformed)?;
        self.admit_handshake(now, from, datagram, message.sender(), rate)?;
        let identified = identify_initiator(&self.local, &message)?;
        let Some(id) = self.peer_id(identified.initiator()) else {
            if self.unknown_initiators.len() < MAX_UNKNOWN_INITIATORS {
                self.unknown_initiators.insert(*identified.initiator());
            }
            return Err(Error::UnknownPeer);
        };
        let (peer, mut ctx) = self.split(now, id)?;
        peer.handle_initiation(&mut ctx, from, identified, &message)?;
        Ok(id)
    }

    fn handle_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        rate: Rate,
    ) -> Result<PeerId, Error> {
        let message = Response::new_checked(datagram).map_err(|_| Error::Malformed)?;
        self.admit_handshake(now, from, datagram, message.sender(), rate)?;
        let id = self.owner_of(message.receiver())?;
        let (peer, mut ctx) = self.split(now, id)?;
        peer.handle_response(&mut ctx, from, &message)?;
        Ok(id)
    }

    fn handle_cookie_reply(&mut self, now: Instant, datagram: &[u8]) -> Result<PeerId, Error> {
        let reply = CookieReply::new_checked(datagram).map_err(|_| Error::Malformed)?;
        let id = self.owner_of(reply.receiver())?;
        self.peer_mut(id)?.handle_cookie_reply(now, &reply)?;
        Ok(id)
    }

    /// The peer whose session or handshake has the local index `index`.
    fn owner_of(&self, index: SessionIndex) -> Result<PeerId, Error> {
        let id = self.indices.owner(index).ok_or(Error::UnknownIndex)?;
        match self.peer(id) {
            Some(peer) if peer.owns_index(index) => Ok(id),
            _ => Err(Error::UnknownIndex),
        }
    }

    /// Seals an IP packet for `peer` into `out`.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchPeer`], or [`Error::BufferTooSmall`] when `out` is
    /// shorter than [`Engine::encapsulated_len`] of the packet.
    pub fn encapsulate(
        &mut self,
        now: Instant,
        peer: PeerId,
        packet: &[u8],
        out: &mut [u8],
    ) -> Result<Encapsulated, Error> {
        let total = self.encapsulated_len(packet.len());
        let out = out.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        out[DATA_HEADER_LEN..DATA_HEADER_LEN + packet.len()].copy_from_slice(packet);
        self.encapsulate_in_place(now, peer, out, packet.len())
    }

    /// Seals the IP packet of `len` bytes at `buf[DATA_HEADER_LEN..]` in
    /// place: the header is written before it, padding and tag after it.
    /// Reading packets into buffers at offset [`DATA_HEADER_LEN`] saves a
    /// copy, and sealing many packets of one peer into consecutive slices of
    /// one buffer yields a batch ready for UDP segmentation offload.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchPeer`], or [`Error::BufferTooSmall`] when `buf` is
    /// shorter than [`Engine::encapsulated_len`]`(len)`.
    pub fn encapsulate_in_place(
        &mut self,
        now: Instant,
        peer: PeerId,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Encapsulated, Error> {
        let padded = padded_len(len, self.mtu);
        let total = padded + DATA_OVERHEAD;
        let buf = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        if padded > len {
            buf[DATA_HEADER_LEN + len..DATA_HEADER_LEN + padded].fill(0);
        }
        let state = self.peers.get_mut(peer).ok_or(Error::NoSuchPeer)?;
        let sealed = state.send_data(now, &mut *self.rng, &mut self.staging, buf, len);
        if state.enter_transmit_queue(now, &self.staging) {
            self.transmit_queue.push_back(peer);
        }
        self.reschedule(peer);
        Ok(if sealed {
            Encapsulated::Sealed { len: total }
        } else {
            Encapsulated::Queued
        })
    }

    /// Runs every timer due at `now`: only the peers whose deadline
    /// passed are touched, in the order of their ids.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        while let Some((at, id)) = self.timers.pop_due(now) {
            if let Some(peer) = self.peers.get_mut(id).filter(|p| p.scheduled == Some(at)) {
                // Any other entry of this deadline is stale from now on.
                peer.scheduled = None;
                due.push(id);
            }
        }
        // The order of a scan over the slots, so the randomness drawn
        // (jitter, ephemeral keys) does not depend on the heap's layout.
        due.sort_unstable();
        for &id in &due {
            if let Ok((peer, mut ctx)) = self.split(now, id) {
                peer.handle_timeout(&mut ctx);
            }
            self.schedule(now, id);
        }
        due.clear();
        self.due = due;
        self.prune_timers();
    }

    // ----- outputs ------------------------------------------------------

    /// The earliest instant at which [`Engine::handle_timeout`] has work:
    /// the top of the timer heap, O(1).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|(at, _)| at)
    }

    /// Writes the next datagram to send into `buf` and says where it goes.
    /// `buf` should hold the largest datagram (at least 148 bytes, and
    /// [`Engine::encapsulated_len`] of the largest packet given to
    /// `encapsulate`); a message that does not fit is dropped.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some((destination, reply)) = self.cookie_replies.pop_front() {
            if let Some(out) = buf.get_mut(..COOKIE_REPLY_LEN) {
                out.copy_from_slice(&reply);
                return Some(Transmit {
                    destination,
                    len: COOKIE_REPLY_LEN,
                    peer: None,
                });
            }
        }
        let mtu = self.mtu;
        while let Some(&id) = self.transmit_queue.front() {
            let Ok((peer, mut ctx)) = self.split(now, id) else {
                self.transmit_queue.pop_front();
                continue;
            };
            let sent = peer.poll_transmit(&mut ctx, buf, mtu);
            if !peer.has_pending_output(now, ctx.staging) {
                peer.queued_for_transmit = false;
                self.transmit_queue.pop_front();
            }
            self.reschedule(id);
            if let Ok(Some((destination, len))) = sent {
                return Some(Transmit {
                    destination,
                    len,
                    peer: Some(id),
                });
            }
        }
        None
    }

    /// After an input to the peer: puts it in the transmit queue if it has
    /// something to send, and its deadline in the timer heap.
    fn schedule(&mut self, now: Instant, id: PeerId) {
        if self
            .peers
            .get_mut(id)
            .is_some_and(|peer| peer.enter_transmit_queue(now, &self.staging))
        {
            self.transmit_queue.push_back(id);
        }
        self.reschedule(id);
    }

    /// Pushes the peer's deadline into the timer heap if it changed since
    /// it was last scheduled; the entry of the old one goes stale.
    #[inline]
    fn reschedule(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let deadline = peer.poll_timeout();
        if deadline == peer.scheduled {
            return;
        }
        peer.scheduled = deadline;
        if let Some(at) = deadline {
            self.timers.push(at, id);
        }
        self.prune_timers();
    }

    /// Drops stale entries from the top of the timer heap (and rebuilds it
    /// when they pile up), so its top is the earliest current deadline.
    fn prune_timers(&mut self) {
        let peers = &self.peers;
        self.timers.prune(
            peers.len(),
            |(at, id): Entry| peers.get(id).is_some_and(|p| p.scheduled == Some(at)),
            || {
                peers
                    .iter()
                    .filter_map(|(id, peer)| Some((peer.scheduled?, id)))
            },
        );
    }

    /// The peer and the context its inputs need, borrowed together.
    fn split(&mut self, now: Instant, id: PeerId) -> Result<(&mut Peer, Context<'_>), Error> {
        let peer = self.peers.get_mut(id).ok_or(Error::NoSuchPeer)?;
        let ctx = Context {
            now,
            local: &self.local,
            clock: &self.clock,
            rng: &mut *self.rng,
            indices: &mut self.indices,
            staging: &mut self.staging,
        };
        Ok((peer, ctx))
    }
}

#[cfg(test)]
mod tests;
