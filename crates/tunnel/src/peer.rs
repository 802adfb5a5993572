//! One peer: its handshake, its three session slots, its timers and what it
//! has to send.
//!
//! The rules are the Linux kernel's (`noise.c`, `timers.c`, `send.c`,
//! `receive.c`) and wireguard-go's, which agree:
//!
//! * The initiator uses a session as soon as the response arrives; the
//!   responder keeps its new session in the `next` slot until the first data
//!   message under it confirms the initiator has it.
//! * Packets sent while there is no usable session wait, within the
//!   interface's staging budget ([`crate::staging`]), and trigger a
//!   handshake.
//! * Initiations are retried every `REKEY_TIMEOUT` (plus jitter) and given up
//!   after `REKEY_ATTEMPT_TIME`.
//!
//! An idle peer is small: each session (about 2 KiB, most of it the replay
//! window) lives in an allocation of its own, made when a handshake
//! completes and freed when the session goes, so a peer that never had one
//! weighs about 1 KiB.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::CryptoRngCore;
use sentrymesh_types::PublicKey;

use crate::cookie::CookieJar;
use crate::crypto::x25519::SecretKey;
use crate::engine::PeerId;
use crate::error::Error;
use crate::handshake::{
    ExpectResponse, IdentifiedInitiation, LocalIdentity, PeerSecrets, write_initiation,
};
use crate::index_table::IndexTable;
use crate::ip::IpPacket;
use crate::keys::PresharedKey;
use crate::messages::{
    CookieReply, DATA_HEADER_LEN, DATA_OVERHEAD, INITIATION_LEN, Initiation, RESPONSE_LEN,
    Response, SessionIndex,
};
use crate::session::{OpenError, Session};
use crate::staging::Staging;
use crate::tai64n::{Tai64N, WallClock};
use crate::timers::{MAX_TIMER_HANDSHAKES, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX, Timers};

/// The minimum interval between two initiations accepted from one peer
/// (at most 50 per second).
const MIN_INITIATION_INTERVAL: Duration = Duration::from_millis(20);

/// What one input to a peer needs from the engine around it.
pub(crate) struct Context<'a> {
    pub(crate) now: Instant,
    pub(crate) local: &'a LocalIdentity,
    pub(crate) clock: &'a WallClock,
    pub(crate) rng: &'a mut dyn CryptoRngCore,
    /// The session indices in use, where this peer draws its new ones.
    pub(crate) indices: &'a mut IndexTable,
    /// The packets waiting for a session, this peer's among them.
    pub(crate) staging: &'a mut Staging,
}

/// A random delay in `[0, REKEY_TIMEOUT_JITTER_MAX)`, whole milliseconds.
fn jitter(rng: &mut dyn CryptoRngCore) -> Duration {
    let max = REKEY_TIMEOUT_JITTER_MAX.as_millis() as u32;
    Duration::from_millis(u64::from(rng.next_u32() % max))
}

impl Context<'_> {
    fn ephemeral(&mut self) -> SecretKey {
        SecretKey::random(self.rng)
    }
}

/// The engine's traffic counters and handshake time of a peer, on the
/// engine's monotonic clock ([`Engine::unix_time`](crate::Engine::unix_time)
/// turns the handshake into wall-clock time).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PeerStats {
    /// Bytes of WireGuard datagrams received from the peer and accepted.
    pub rx_bytes: u64,
    /// Bytes of WireGuard datagrams sent to the peer.
    pub tx_bytes: u64,
    /// When the last handshake completed.
    pub last_handshake: Option<Instant>,
}

/// What a peer has to send besides data packets waiting for a session.
#[derive(Default)]
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
struct Outbox {
    response: Option<[u8; RESPONSE_LEN]>,
    initiation: bool,
    /// Send our pending initiation again, as it was (see
    /// [`Peer::keeps_own_initiation`]).
    initiation_again: bool,
    keepalive: bool,
}

/// The engine's state of one peer: its keys, sessions, timers and
/// counters.
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(crate) struct Peer {
    id: PeerId,
    /// The session indices drawn for this peer and not yet given back:
    /// those of its handshake and sessions, and any it dropped since it
    /// last drew one.
    issued: Vec<SessionIndex>,
    secrets: PeerSecrets,
    cookies: CookieJar,
    pub(crate) endpoint: Option<SocketAddr>,
    persistent_keepalive: Option<Duration>,
    handshake: Option<ExpectResponse>,
    /// The initiation that started `handshake`, as sent: public bytes, kept
    /// to send again when both sides initiate at once.
    initiation_sent: Option<[u8; INITIATION_LEN]>,
    previous: Option<Box<Session>>,
    current: Option<Box<Session>>,
    next: Option<Box<Session>>,
    latest_timestamp: Option<Tai64N>,
    last_initiation_consumed: Option<Instant>,
    last_handshake_sent: Option<Instant>,
    timers: Timers,
    outbox: Outbox,
    pub(crate) stats: PeerStats,
    /// Whether the peer sits in the engine's transmit queue.
    pub(crate) queued_for_transmit: bool,
    /// The deadline of the peer's current entry in the engine's timer
    /// queue: its [`Peer::poll_timeout`] when last scheduled.
    pub(crate) scheduled: Option<Instant>,
}

impl Peer {
    pub(crate) fn new(
        local: &LocalIdentity,
        id: PeerId,
        remote: PublicKey,
        psk: PresharedKey,
    ) -> Self {
        Self {
            id,
            issued: Vec::new(),
            secrets: PeerSecrets::new(local, remote, psk),
            cookies: CookieJar::new(&remote),
            endpoint: None,
            persistent_keepalive: None,
            handshake: None,
            initiation_sent: None,
            previous: None,
            current: None,
            next: None,
            latest_timestamp: None,
            last_initiation_consumed: None,
            last_handshake_sent: None,
            timers: Timers::default(),
            outbox: Outbox::default(),
            stats: PeerStats::default(),
            queued_for_transmit: false,
            scheduled: None,
        }
    }

    pub(crate) fn public_key(&self) -> &PublicKey {
        self.secrets.remote()
    }

    /// Whether a data packet could be sealed right now.
    pub(crate) fn has_usable_session(&self, now: Instant) -> bool {
        self.current.as_ref().is_some_and(|s| s.can_send(now))
    }

    pub(crate) fn set_persistent_keepalive(&mut self, now: Instant, interval: Option<Duration>) {
        let interval = interval.filter(|i| !i.is_zero());
        self.persistent_keepalive = interval;
        self.timers.set_persistent_keepalive(now, interval);
        // Like the kernel, a newly set interval sends a keepalive (after a
        // handshake, if need be) at once, so the peer learns our endpoint.
        if interval.is_some() && self.endpoint.is_some() {
            self.send_keepalive(now);
        }
    }

    pub(crate) fn persistent_keepalive(&self) -> Option<Duration> {
        self.persistent_keepalive
    }

    /// Replaces the preshared key; running sessions are unaffected.
    pub(crate) fn preshared_key(&self) -> &PresharedKey {
        self.secrets.psk()
    }

    pub(crate) fn set_preshared_key(&mut self, local: &LocalIdentity, psk: PresharedKey) {
        self.secrets = PeerSecrets::new(local, *self.secrets.remote(), psk);
    }

    /// Recomputes what depends on our static key after it changed, and drops
    /// every session and handshake made with the old one.
    pub(crate) fn rekey_identity(&mut self, local: &LocalIdentity) {
        let psk = self.secrets.psk().clone();
        self.set_preshared_key(local, psk);
        self.erase_keys();
        self.latest_timestamp = None;
        // Traffic may start a handshake under the new key at once.
        self.last_handshake_sent = None;
    }

    fn erase_keys(&mut self) {
        self.handshake = None;
        self.previous = None;
        self.current = None;
        self.next = None;
        self.outbox.response = None;
    }

    /// Draws a random index for a new handshake, first giving back the
    /// ones that no longer name a handshake or session of this peer, so a
    /// peer holds at most five at once.
    fn new_local_index(
        &mut self,
        indices: &mut IndexTable,
        rng: &mut dyn CryptoRngCore,
    ) -> SessionIndex {
        let mut issued = std::mem::take(&mut self.issued);
        issued.retain(|&index| {
            let live = self.owns_index(index);
            if !live {
                indices.release(index);
            }
            live
        });
        let index = indices.allocate(rng, self.id);
        issued.push(index);
        self.issued = issued;
        index
    }

    /// Gives back every index drawn for this peer: it is being removed.
    pub(crate) fn release_indices(&mut self, indices: &mut IndexTable) {
        for index in self.issued.drain(..) {
            indices.release(index);
        }
    }

    /// Whether `index` names one of this peer's sessions or its handshake.
    pub(crate) fn owns_index(&self, index: SessionIndex) -> bool {
        self.handshake
            .as_ref()
            .is_some_and(|h| h.local_index() == index)
            || [&self.previous, &self.current, &self.next]
                .into_iter()
                .flatten()
                .any(|s| s.local_index == index)
    }

    // ----- inputs -------------------------------------------------------

    /// Completes an initiation from this peer and prepares the response.
    pub(crate) fn handle_initiation(
        &mut self,
        ctx: &mut Context<'_>,
        from: SocketAddr,
        identified: IdentifiedInitiation,
        message: &Initiation<&[u8]>,
    ) -> Result<(), Error> {
        let now = ctx.now;
        let initiation = identified.authenticate(&self.secrets, message)?;
        if self
            .latest_timestamp
            .is_some_and(|latest| initiation.timestamp() <= latest)
        {
            return Err(Error::ReplayedInitiation);
        }
        if self
            .last_initiation_consumed
            .is_some_and(|at| now.saturating_duration_since(at) < MIN_INITIATION_INTERVAL)
        {
            return Err(Error::InitiationFlood);
        }
        let timestamp = initiation.timestamp();
        if self.keeps_own_initiation(ctx.local) {
            // Consumed all the same: a replay of it is refused, and it moves
            // the endpoint like any authentic message.
            self.latest_timestamp = Some(timestamp);
            self.last_initiation_consumed = Some(now);
            self.endpoint = Some(from);
            self.stats.rx_bytes += INITIATION_LEN as u64;
            self.outbox.initiation_again = true;
            return Ok(());
        }
        let local_index = self.new_local_index(ctx.indices, ctx.rng);
        let ephemeral = ctx.ephemeral();
        let mut response = [0u8; RESPONSE_LEN];
        let keys =
            initiation.write_response(&self.secrets, local_index, ephemeral, &mut response)?;
        self.cookies.stamp(now, &mut response);

        // The initiation is authentic and fresh: commit.
        self.latest_timestamp = Some(timestamp);
        self.last_initiation_consumed = Some(now);
        self.endpoint = Some(from);
        self.stats.rx_bytes += INITIATION_LEN as u64;
        // A responder's session waits in `next` until the initiator confirms
        // it; an unconfirmed `next` and the `previous` are dropped.
        self.handshake = None;
        self.previous = None;
        self.next = Some(Box::new(Session::new(keys, now, false)));
        self.outbox.response = Some(response);
        self.timers
            .authenticated_packet_traversal(now, self.persistent_keepalive);
        self.timers.authenticated_packet_received();
        self.timers.session_derived(now);
        Ok(())
    }

    /// Whether an initiation from the peer, arriving while ours waits for
    /// its response, leaves ours standing: when both sides initiate at once,
    /// answering both would leave each waiting for a response to an
    /// initiation the other has dropped, until a retry REKEY_TIMEOUT later.
    /// The side with the greater static public key keeps its initiation and
    /// sends it again to where the peer's came from; the other side answers
    /// it, as every WireGuard implementation answers an initiation. Against
    /// a peer that answers both, the outcome is the usual retry.
    fn keeps_own_initiation(&self, local: &LocalIdentity) -> bool {
        self.handshake.is_some()
            && self.initiation_sent.is_some()
            && local.public_key().as_bytes() > self.secrets.remote().as_bytes()
    }

    /// Completes our handshake with the response `message`.
    pub(crate) fn handle_response(
        &mut self,
        ctx: &mut Context<'_>,
        from: SocketAddr,
        message: &Response<&[u8]>,
    ) -> Result<(), Error> {
        let now = ctx.now;
        let handshake = self
            .handshake
            .as_ref()
            .filter(|h| h.local_index() == message.receiver())
            .ok_or(Error::UnknownIndex)?;
        let keys = handshake.consume_response(ctx.local, &self.secrets, message)?;

        self.handshake = None;
        self.endpoint = Some(from);
        self.stats.rx_bytes += RESPONSE_LEN as u64;
        self.stats.last_handshake = Some(now);
        // The initiator may use the session at once. An unconfirmed `next`
        // (from a crossing initiation) becomes `previous`, as in the kernel.
        let session = Box::new(Session::new(keys, now, true));
        self.previous = match self.next.take() {
            Some(next) => Some(next),
            None => self.current.take(),
        };
        self.current = Some(session);
        self.timers
            .authenticated_packet_traversal(now, self.persistent_keepalive);
        self.timers.authenticated_packet_received();
        self.timers.session_derived(now);
        self.timers.handshake_complete();
        // Confirm the session to the responder: staged data, or a keepalive.
        if !ctx.staging.has_packets(self.id) {
            self.outbox.keepalive = true;
        }
        Ok(())
    }

    /// Takes the cookie from a cookie reply addressed to this peer.
    pub(crate) fn handle_cookie_reply(
        &mut self,
        now: Instant,
        reply: &CookieReply<&[u8]>,
    ) -> Result<(), Error> {
        self.cookies
            .handle_reply(now, reply)
            .map_err(|_| Error::Decryption)
    }

    /// Opens a data message addressed to `index`, in place. Returns the
    /// length of the inner packet at `datagram[DATA_HEADER_LEN..]`; zero is a
    /// keepalive.
    #[inline]
    pub(crate) fn handle_data(
        &mut self,
        now: Instant,
        from: SocketAddr,
        index: SessionIndex,
        counter: u64,
        datagram: &mut [u8],
    ) -> Result<usize, Error> {
        let slot = self.session_slot(index).ok_or(Error::UnknownIndex)?;
        let session = match slot {
            Slot::Previous => self.previous.as_mut(),
            Slot::Current => self.current.as_mut(),
            Slot::Next => self.next.as_mut(),
        }
        .ok_or(Error::UnknownIndex)?;
        session
            .open(now, counter, &mut datagram[DATA_HEADER_LEN..])
            .map_err(|e| match e {
                OpenError::Replay => Error::ReplayedCounter,
                OpenError::Decryption => Error::Decryption,
                OpenError::Expired => Error::SessionExpired,
            })?;
        let payload = &datagram[DATA_HEADER_LEN..datagram.len() - crate::crypto::aead::TAG_LEN];
        // Authentic from here on: the peer is at `from`, whatever the payload.
        if self.endpoint != Some(from) {
            self.endpoint = Some(from);
        }
        self.stats.rx_bytes += datagram.len() as u64;
        if slot == Slot::Next {
            self.confirm_next_session(now);
        }
        self.timers
            .authenticated_packet_traversal(now, self.persistent_keepalive);
        self.timers.authenticated_packet_received();
        self.keep_key_fresh_on_receive(now);
        if payload.is_empty() {
            return Ok(0);
        }
        self.timers.data_received(now);
        IpPacket::new_checked(payload)
            .map(|packet| packet.packet_len())
            .map_err(|_| Error::InvalidInnerPacket)
    }

    fn session_slot(&self, index: SessionIndex) -> Option<Slot> {
        let is = |s: &Option<Box<Session>>| s.as_ref().is_some_and(|s| s.local_index == index);
        if is(&self.current) {
            Some(Slot::Current)
        } else if is(&self.next) {
            Some(Slot::Next)
        } else if is(&self.previous) {
            Some(Slot::Previous)
        } else {
            None
        }
    }

    /// The initiator used our `next` session: it becomes `current`.
    fn confirm_next_session(&mut self, now: Instant) {
        self.previous = self.current.take();
        self.current = self.next.take();
        self.stats.last_handshake = Some(now);
        self.timers.handshake_complete();
    }

    /// Seals the packet at `buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len]`,
    /// padded with zeros to `buf.len() - DATA_OVERHEAD`, if a session and an
    /// endpoint allow; otherwise keeps a copy in `staging` for after the
    /// handshake it starts. Returns whether the packet was sealed.
    #[inline]
    pub(crate) fn send_data(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        staging: &mut Staging,
        buf: &mut [u8],
        len: usize,
    ) -> bool {
        let has_endpoint = self.endpoint.is_some();
        match self.current.as_mut().filter(|s| s.can_send(now)) {
            Some(session) if has_endpoint => {
                session.seal(buf);
                self.data_sent(now, rng, buf.len(), len > 0);
                true
            }
            _ => {
                staging.stage(self.id, &buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len]);
                self.send_initiation(now, false);
                false
            }
        }
    }

    /// Bookkeeping after a data message went out under the current session:
    /// counters, timers, and renegotiating a session that is worn out or, for
    /// its initiator, old (the time rule is the initiator's only, so the two
    /// sides do not rekey at once).
    #[inline(always)]
    fn data_sent(
        &mut self,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        datagram_len: usize,
        is_data: bool,
    ) {
        self.stats.tx_bytes += datagram_len as u64;
        self.timers
            .authenticated_packet_traversal(now, self.persistent_keepalive);
        self.timers.authenticated_packet_sent();
        if is_data {
            self.timers.data_sent(now, || jitter(rng));
        }
        if self.current.as_ref().is_some_and(|s| s.wants_rekey(now)) {
            self.send_initiation(now, false);
        }
    }

    /// After receiving: an initiator whose session nears `REJECT_AFTER_TIME`
    /// renegotiates once, so traffic that only flows towards us keeps working.
    fn keep_key_fresh_on_receive(&mut self, now: Instant) {
        if self.timers.sent_last_minute_handshake {
            return;
        }
        let Some(session) = &self.current else { return };
        if session.initiator && now >= session.rekey_on_receive_at {
            self.timers.sent_last_minute_handshake = true;
            self.send_initiation(now, false);
        }
    }

    /// Asks for an initiation to be sent, unless a handshake message went out
    /// less than `REKEY_TIMEOUT` ago. A retry keeps the attempt count.
    fn send_initiation(&mut self, now: Instant, is_retry: bool) {
        if !is_retry {
            self.timers.handshake_attempts = 0;
        }
        let recently = self
            .last_handshake_sent
            .is_some_and(|at| now.saturating_duration_since(at) < REKEY_TIMEOUT);
        if !recently {
            self.outbox.initiation = true;
        }
    }

    /// Queues a keepalive; without a usable session, starts a handshake that
    /// the keepalive follows.
    pub(crate) fn send_keepalive(&mut self, now: Instant) {
        self.outbox.keepalive = true;
        if !self.has_usable_session(now) {
            self.send_initiation(now, false);
        }
    }

    /// Runs the timers due at `ctx.now`.
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now;
        let due = self.timers.handle_timeout(now);
        if due.zero_key_material {
            self.erase_keys();
        }
        if due.retransmit_handshake {
            if self.timers.handshake_attempts > MAX_TIMER_HANDSHAKES {
                self.timers.handshake_abandoned(now);
                ctx.staging.clear(self.id);
                self.outbox.keepalive = false;
            } else {
                self.timers.handshake_attempts += 1;
                self.send_initiation(now, true);
            }
        }
        if due.new_handshake {
            self.send_initiation(now, false);
        }
        if due.send_keepalive || (due.persistent_keepalive && self.persistent_keepalive.is_some()) {
            self.send_keepalive(now);
        }
    }

    /// The earliest timer deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.poll_timeout()
    }

    // ----- outputs ------------------------------------------------------

    /// Marks the peer as queued for transmission when it has something to
    /// send and is not queued yet; returns whether the caller must queue it.
    #[inline]
    pub(crate) fn enter_transmit_queue(&mut self, now: Instant, staging: &Staging) -> bool {
        let enter = !self.queued_for_transmit && self.has_pending_output(now, staging);
        self.queued_for_transmit |= enter;
        enter
    }

    /// Whether [`Peer::poll_transmit`] has something to do.
    pub(crate) fn has_pending_output(&self, now: Instant, staging: &Staging) -> bool {
        self.outbox.response.is_some()
            || self.outbox.initiation
            || self.outbox.initiation_again
            || ((self.outbox.keepalive || staging.has_packets(self.id))
                && self.endpoint.is_some()
                && self.has_usable_session(now))
    }

    /// Writes the next datagram this peer has to send into `buf`; returns its
    /// destination and length.
    pub(crate) fn poll_transmit(
        &mut self,
        ctx: &mut Context<'_>,
        buf: &mut [u8],
        mtu: Option<usize>,
    ) -> Result<Option<(SocketAddr, usize)>, Error> {
        if let Some(response) = self.outbox.response.take() {
            // A response is only made for an initiation, which set the endpoint.
            let endpoint = self.endpoint.expect("endpoint set by the initiation");
            let out = buf.get_mut(..RESPONSE_LEN).ok_or(Error::BufferTooSmall)?;
            out.copy_from_slice(&response);
            // Like the kernel, a response counts as a handshake sent: no
            // initiation of ours crosses it within REKEY_TIMEOUT.
            self.last_handshake_sent = Some(ctx.now);
            self.stats.tx_bytes += RESPONSE_LEN as u64;
            self.timers
                .authenticated_packet_traversal(ctx.now, self.persistent_keepalive);
            self.timers.authenticated_packet_sent();
            return Ok(Some((endpoint, RESPONSE_LEN)));
        }
        if std::mem::take(&mut self.outbox.initiation_again) {
            if let (Some(initiation), Some(endpoint), true) = (
                self.initiation_sent,
                self.endpoint,
                self.handshake.is_some(),
            ) {
                let out = buf.get_mut(..INITIATION_LEN).ok_or(Error::BufferTooSmall)?;
                out.copy_from_slice(&initiation);
                self.stats.tx_bytes += INITIATION_LEN as u64;
                return Ok(Some((endpoint, INITIATION_LEN)));
            }
        }
        if self.outbox.initiation {
            self.outbox.initiation = false;
            if let Some(sent) = self.write_initiation(ctx, buf)? {
                return Ok(Some(sent));
            }
        }
        if !self.has_pending_output(ctx.now, ctx.staging) {
            return Ok(None);
        }
        let endpoint = self.endpoint.expect("checked by has_pending_output");
        let packet = ctx.staging.pop(self.id);
        let len = packet.as_ref().map_or(0, |packet| packet.len());
        let padded = padded_len(len, mtu);
        let total = padded + DATA_OVERHEAD;
        // A packet too large for the caller's buffer is dropped.
        let out = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        if let Some(packet) = &packet {
            out[DATA_HEADER_LEN..DATA_HEADER_LEN + len].copy_from_slice(packet);
        }
        out[DATA_HEADER_LEN + len..DATA_HEADER_LEN + padded].fill(0);
        let session = self
            .current
            .as_mut()
            .expect("checked by has_pending_output");
        session.seal(out);
        // Any data message does a keepalive's job.
        self.outbox.keepalive = false;
        self.data_sent(ctx.now, ctx.rng, total, len > 0);
        Ok(Some((endpoint, total)))
    }

    /// Builds and stamps an initiation into `buf`. Without a known endpoint
    /// nothing is sent, but the attempt counts, so retries and giving up run
    /// their course as if it had been lost.
    fn write_initiation(
        &mut self,
        ctx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Result<Option<(SocketAddr, usize)>, Error> {
        let now = ctx.now;
        self.last_handshake_sent = Some(now);
        let jitter = jitter(ctx.rng);
        self.timers.handshake_initiated(now, jitter);
        self.initiation_sent = None;
        let Some(endpoint) = self.endpoint else {
            return Ok(None);
        };
        let out: &mut [u8; INITIATION_LEN] = buf
            .get_mut(..INITIATION_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(Error::BufferTooSmall)?;
        let local_index = self.new_local_index(ctx.indices, ctx.rng);
        let ephemeral = ctx.ephemeral();
        let timestamp = ctx.clock.timestamp(now);
        let handshake = write_initiation(
            ctx.local,
            &self.secrets,
            local_index,
            ephemeral,
            timestamp,
            out,
        )?;
        self.cookies.stamp(now, out);
        self.handshake = Some(handshake);
        self.initiation_sent = Some(*out);
        self.stats.tx_bytes += INITIATION_LEN as u64;
        self.timers
            .authenticated_packet_traversal(now, self.persistent_keepalive);
        self.timers.authenticated_packet_sent();
        Ok(Some((endpoint, INITIATION_LEN)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Previous,
    Current,
    Next,
}

/// The length of a packet of `len` bytes once padded: to a multiple of 16,
/// but not past the MTU (wireguard-go's `calculatePaddingSize`).
pub(crate) fn padded_len(len: usize, mtu: Option<usize>) -> usize {
    let round_up = |n: usize| n.div_ceil(16) * 16;
    match mtu {
        None | Some(0) => round_up(len),
        Some(mtu) => {
            let last_unit = if len > mtu { len % mtu } else { len };
            let padded = round_up(last_unit).min(mtu);
            len + (padded - last_unit)
        }
    }
}
