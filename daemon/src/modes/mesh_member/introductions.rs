//! The introduction port of a public host, and this host's own
//! introductions.
//!
//! ```text
//!   datagram from the underlay --> IntroductionReceiver --------------------------> card
//!                                  (MAC, replay; under load and no cookie MAC:
//!                                   a cookie reply back to the source;
//!                                   a cookie MAC: the per-source limiter;
//!                                   budget, decrypt, admitted?, replay?, budget, signature)
//! ```
//!
//! The receiver's budget of checks, shared by all sources, caps the work a
//! flood from any number of (spoofed) sources can cause; under load, only
//! introductions that proved their source address with a cookie are
//! opened, so a spoofed flood cannot spend what real introducers need. The
//! per-source limiter (which evicts the least recently used source, never
//! refusing every new one) is consulted only for those proved sources: a
//! flood spoofing a real introducer's address cannot spend its allowance,
//! and a flood from one real address is held.
//!
//! This host's own card leaves sealed to each recipient's WireGuard key
//! ([`sentrymesh_mesh::introduction`]) through an [`Introducer`], which
//! takes the cookie replies coming back and seals again at once with the
//! cookie's MAC; a hidden host sends none at all. A reply is taken only
//! from the address and port the introduction went to (its first MAC keys
//! the reply, and the address narrows which recipient's to try): a
//! recipient with several addresses that answers from another one has its
//! cookie refused, and such an introducer gets in only while that
//! recipient is not under load.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use anyhow::{Context, Result};
use rand_core::OsRng;
use sentrymesh_mesh::{
    Introducer, IntroducerStats, IntroductionError, IntroductionReceiver, IntroductionStats,
    OperatorId, Received, SignedCard,
};
use sentrymesh_tunnel::RateLimiter;
use sentrymesh_types::{PublicKey, UnixTime};
use tokio::net::UdpSocket;

/// Introductions a second from one proved source address (an IPv4 address
/// or an IPv6 /64) that may be opened.
///
/// A real introducer sends one to each peer every five seconds, and one
/// again at once for each cookie reply; a few hosts behind one address
/// stay well under two a second. The handshake limiter's 20 a second would
/// let seven addresses with cookies spend the whole share of checks kept
/// for proved sources; at two, it takes some sixty.
const PER_SOURCE_PER_SECOND: u32 = 2;
/// How many introductions from one proved source may come at once.
const PER_SOURCE_BURST: u32 = 5;

/// What introductions did, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntroductionCounters {
    /// What the receiver did with the datagrams of the introduction port.
    pub received: IntroductionStats,
    /// What this host's own introductions did: sealed, one for each peer
    /// without a session every five seconds and one again for each cookie
    /// taken, and the cookie replies that came back.
    pub sent: IntroducerStats,
}

/// The receiving side with its per-source limiter, and the sending side.
pub(super) struct Introductions {
    /// Operators claimed by introductions dropped as not admitted, for
    /// the member to log (once each).
    not_admitted: Vec<OperatorId>,
    limiter: RateLimiter,
    receiver: IntroductionReceiver,
    introducer: Introducer,
}

impl Introductions {
    /// Receives for the host with WireGuard private key `wg_secret`, from
    /// `now` (Unix seconds).
    pub(super) fn new(wg_secret: &[u8; 32], now: UnixTime) -> Self {
        Self {
            not_admitted: Vec::new(),
            limiter: RateLimiter::with_limits(PER_SOURCE_PER_SECOND, PER_SOURCE_BURST),
            receiver: IntroductionReceiver::new(wg_secret, now),
            introducer: Introducer::new(),
        }
    }

    /// What the datagram `bytes` heard from `source` at `at` (Unix seconds
    /// `now`) gives: the card in it when it passes the receiver's checks
    /// for an operator in `admitted`, or a cookie reply to send back to
    /// `source`.
    pub(super) fn handle(
        &mut self,
        source: SocketAddr,
        bytes: &[u8],
        admitted: &BTreeSet<OperatorId>,
        at: Instant,
        now: UnixTime,
    ) -> Option<Received> {
        let Self {
            limiter,
            receiver,
            not_admitted,
            ..
        } = self;
        let allow = |ip| limiter.allow(at, ip);
        match receiver.handle_introduction(bytes, source, admitted, now, &mut OsRng, allow) {
            Ok(received) => Some(received),
            Err(IntroductionError::NotAdmitted { operator }) => {
                tracing::debug!(
                    "an introduction from {source} claims operator {operator}, not admitted"
                );
                // Bounded by the member, which takes them after each.
                not_admitted.push(operator);
                None
            }
            Err(error) => {
                tracing::debug!("an introduction from {source} is dropped: {error}");
                None
            }
        }
    }

    /// `card` sealed at `now` to the host whose WireGuard key is
    /// `recipient`, to be sent to `destination`; `None` for a hidden host's
    /// card, or a recipient key that cannot be sealed to.
    pub(super) fn seal(
        &mut self,
        card: &SignedCard,
        recipient: &PublicKey,
        destination: SocketAddr,
        now: UnixTime,
    ) -> Option<Vec<u8>> {
        match self
            .introducer
            .seal(card, recipient, destination, now, &mut OsRng)
        {
            Ok(sealed) => Some(sealed),
            Err(error) => {
                tracing::debug!("no introduction to {recipient}: {error}");
                None
            }
        }
    }

    /// Forgets what the sending side keeps for `recipient`, a peer that
    /// went.
    pub(super) fn forget(&mut self, recipient: &PublicKey) {
        self.introducer.forget(recipient);
    }

    /// The key of the recipient whose cookie reply `bytes`, heard from
    /// `from` at `now`, was taken: this host's introduction to it is to be
    /// sealed and sent again at once.
    pub(super) fn handle_cookie_reply(
        &mut self,
        from: SocketAddr,
        bytes: &[u8],
        now: UnixTime,
    ) -> Option<PublicKey> {
        match self.introducer.handle_cookie_reply(from, bytes, now) {
            Ok(recipient) => Some(recipient),
            Err(error) => {
                tracing::debug!("a cookie reply from {from} is dropped: {error}");
                None
            }
        }
    }

    /// The operators claimed by introductions dropped as not admitted
    /// since the last call.
    pub(super) fn take_not_admitted(&mut self) -> Vec<OperatorId> {
        std::mem::take(&mut self.not_admitted)
    }

    /// What was counted so far.
    pub(super) fn counters(&self) -> IntroductionCounters {
        IntroductionCounters {
            received: self.receiver.stats(),
            sent: self.introducer.stats(),
        }
    }
}

/// Binds the introduction port `port`, on IPv6 and IPv4 where the host has
/// IPv6.
///
/// # Errors
///
/// When the port is in use, or no socket can be bound.
pub(super) fn bind_introduction_port(port: u16) -> Result<std::net::UdpSocket> {
    match std::net::UdpSocket::bind((Ipv6Addr::UNSPECIFIED, port)) {
        Ok(socket) => Ok(socket),
        Err(_) => std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).with_context(|| {
            format!(
                "binding the introduction port {port}; another process listens there: stop it \
                 or choose another [mesh] introduction_port"
            )
        }),
    }
}

/// The introduction socket on `socket` (see [`bind_introduction_port`]),
/// for the runtime.
///
/// # Errors
///
/// When the socket cannot be made non-blocking or registered.
pub(super) fn introduction_socket(socket: std::net::UdpSocket) -> Result<UdpSocket> {
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket).context("registering the introduction socket")
}

/// Sends `bytes` from `socket` to `to` (mapped to the socket's family);
/// a failure is logged, as the loss of a datagram would go unseen.
pub(super) async fn send_from(socket: Option<&UdpSocket>, bytes: &[u8], to: SocketAddr) {
    let Some(socket) = socket else {
        return;
    };
    let is_ipv6 = socket.local_addr().is_ok_and(|local| local.is_ipv6());
    let to = crate::sys::udp::destination_for(is_ipv6, to);
    if let Err(error) = socket.send_to(bytes, to).await {
        tracing::debug!("sending {} bytes to {to}: {error}", bytes.len());
    }
}

/// Receives on `socket`, or waits forever when there is none.
pub(super) async fn recv_from(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => {
            let (len, from) = socket.recv_from(buf).await?;
            Ok((
                len,
                SocketAddr::new(crate::sys::udp::canonical(from).ip(), from.port()),
            ))
        }
        None => std::future::pending().await,
    }
}
