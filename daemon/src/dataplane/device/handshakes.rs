//! Handshake messages wait in a bounded queue, apart from data, and the
//! backlog tells when the interface is under load.
//!
//! An initiation with a valid `mac1` costs the responder several X25519
//! operations, on the one data-path thread. So the socket's data messages
//! are opened at once, while handshake messages (initiations, responses,
//! cookie replies) are copied into a queue of fixed capacity and handled a
//! budget at a time, after the data of each turn. A full queue drops what
//! comes and counts it, except a message whose `mac2` proves its source
//! (a cookie the engine gave it): room beyond the capacity is kept for
//! those, so a flood from spoofed sources cannot shut out a peer's retry.
//! A proven message is let into that room only if its source's token
//! bucket has room ([`Engine::admit_proven`]), so one host with a cookie
//! for its own address cannot keep the room full either; the message is
//! then not charged again when its turn comes.
//!
//! As in wireguard-go (`QueueHandshakeSize`, `IsUnderLoad`) and the kernel
//! (`under_load`), the interface is under load while the backlog exceeds an
//! eighth of the capacity, and for a second after: under load the engine
//! answers handshake messages without a valid cookie (`mac2`) with a cookie
//! reply, which costs no Diffie-Hellman, and limits each source's rate.
//!
//! ```text
//!   socket -> type 4 (data) ---------------------------> engine -> TUN
//!          -> types 1, 2, 3 -> [ queue, 1024 (+ 64) ] --budget--> engine -> replies
//!                                   |
//!                  backlog > 128 -> under load (until a second after)
//! ```
//!
//! [`Engine::admit_proven`]: sentrymesh_tunnel::Engine::admit_proven

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sentrymesh_tunnel::INITIATION_LEN;

/// Handshake messages that can wait, as in wireguard-go (the kernel: 4096).
pub(super) const QUEUE_CAPACITY: usize = 1024;

/// Room beyond the capacity kept for messages whose source a cookie
/// proves: a flood from spoofed sources, which never receive cookies,
/// cannot take it, so a peer that got a cookie reply gets its retry in.
pub(super) const RESERVED_FOR_PROVEN: usize = 64;

/// A backlog above this puts the interface under load.
const LOAD_THRESHOLD: usize = QUEUE_CAPACITY / 8;

/// How long the interface stays under load after the backlog went down.
const UNDER_LOAD_AFTER: Duration = Duration::from_secs(1);

/// The largest handshake message (an initiation): longer ones are not
/// handshake messages, and the engine refuses them without queueing.
pub(super) const MAX_HANDSHAKE_LEN: usize = INITIATION_LEN;

/// How a waiting handshake message got its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// In the open capacity: the engine checks it from scratch.
    Open,
    /// In the reserved room, once [`Engine::admit_proven`] checked its
    /// cookie and charged its source's rate: hand it to
    /// [`Engine::handle_proven_handshake`].
    ///
    /// [`Engine::admit_proven`]: sentrymesh_tunnel::Engine::admit_proven
    /// [`Engine::handle_proven_handshake`]: sentrymesh_tunnel::Engine::handle_proven_handshake
    Proven,
}

/// One handshake message waiting, with its source.
#[derive(Clone, Copy)]
struct Waiting {
    from: SocketAddr,
    admission: Admission,
    len: usize,
    bytes: [u8; MAX_HANDSHAKE_LEN],
}

/// A ring of handshake messages, allocated once at its full capacity.
pub(super) struct HandshakeQueue {
    slots: Box<[Waiting]>,
    /// The index of the oldest message.
    head: usize,
    /// How many wait.
    len: usize,
    /// When the backlog last went above the threshold, plus a second.
    under_load_until: Option<Instant>,
}

impl HandshakeQueue {
    /// An empty queue of [`QUEUE_CAPACITY`] messages, not under load.
    pub(super) fn new() -> Self {
        let empty = Waiting {
            from: SocketAddr::from(([0, 0, 0, 0], 0)),
            admission: Admission::Open,
            len: 0,
            bytes: [0; MAX_HANDSHAKE_LEN],
        };
        Self {
            slots: vec![empty; QUEUE_CAPACITY + RESERVED_FOR_PROVEN].into_boxed_slice(),
            head: 0,
            len: 0,
            under_load_until: None,
        }
    }

    /// How many messages wait.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether no message waits.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `message` from `from` to the back of the queue; `false` when
    /// [`QUEUE_CAPACITY`] messages wait or the message is longer than any
    /// handshake message (it is not queued then).
    pub(super) fn push(&mut self, from: SocketAddr, message: &[u8]) -> bool {
        self.len < QUEUE_CAPACITY && self.push_within(from, Admission::Open, message)
    }

    /// As [`HandshakeQueue::push`], for a message that
    /// [`Engine::admit_proven`] admitted: it may also take the
    /// [`RESERVED_FOR_PROVEN`] room, and leaves as [`Admission::Proven`].
    ///
    /// [`Engine::admit_proven`]: sentrymesh_tunnel::Engine::admit_proven
    pub(super) fn push_proven(&mut self, from: SocketAddr, message: &[u8]) -> bool {
        self.push_within(from, Admission::Proven, message)
    }

    /// Whether the [`RESERVED_FOR_PROVEN`] room is taken too, so that even
    /// a proven message would be refused: checked before the engine charges
    /// a source's rate for a place the message would not get.
    pub(super) fn reserve_is_full(&self) -> bool {
        self.len == self.slots.len()
    }

    fn push_within(&mut self, from: SocketAddr, admission: Admission, message: &[u8]) -> bool {
        if self.len == self.slots.len() || message.len() > MAX_HANDSHAKE_LEN {
            return false;
        }
        let index = (self.head + self.len) % self.slots.len();
        let slot = &mut self.slots[index];
        slot.from = from;
        slot.admission = admission;
        slot.len = message.len();
        slot.bytes[..message.len()].copy_from_slice(message);
        self.len += 1;
        true
    }

    /// Takes the oldest message into `buf`; returns its source, how it got
    /// its place, and its length.
    pub(super) fn pop_into(
        &mut self,
        buf: &mut [u8; MAX_HANDSHAKE_LEN],
    ) -> Option<(SocketAddr, Admission, usize)> {
        if self.len == 0 {
            return None;
        }
        let slot = &self.slots[self.head];
        buf[..slot.len].copy_from_slice(&slot.bytes[..slot.len]);
        let taken = (slot.from, slot.admission, slot.len);
        self.head = (self.head + 1) % self.slots.len();
        self.len -= 1;
        Some(taken)
    }

    /// Whether the backlog is above an eighth of the capacity.
    pub(super) fn is_backlogged(&self) -> bool {
        self.len > LOAD_THRESHOLD
    }

    /// Whether the interface is under load at `now`: the backlog is above
    /// an eighth of the capacity, or was less than a second ago.
    pub(super) fn under_load(&mut self, now: Instant) -> bool {
        if self.is_backlogged() {
            self.under_load_until = Some(now + UNDER_LOAD_AFTER);
            return true;
        }
        self.under_load_until.is_some_and(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(n: u16) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, 1], n))
    }

    #[test]
    fn messages_leave_in_order_and_a_full_queue_refuses_more() {
        let mut queue = HandshakeQueue::new();
        let mut buf = [0; MAX_HANDSHAKE_LEN];
        // Wrap around the ring a few times.
        for round in 0..3u16 {
            for n in 0..QUEUE_CAPACITY as u16 {
                assert!(queue.push(source(n), &[1, 0, 0, 0, n as u8, round as u8]));
            }
            assert!(!queue.push(source(0), &[1, 0, 0, 0]));
            assert_eq!(queue.len(), QUEUE_CAPACITY);
            // The reserve takes proven messages only, and is bounded too.
            for n in 0..RESERVED_FOR_PROVEN as u16 {
                assert!(queue.push_proven(source(n), &[2, 0, 0, 0, n as u8, round as u8]));
            }
            assert!(queue.reserve_is_full());
            assert!(!queue.push_proven(source(0), &[2, 0, 0, 0]));
            assert!(!queue.push(source(0), &[1, 0, 0, 0]));
            for n in 0..QUEUE_CAPACITY as u16 {
                let (from, admission, len) = queue.pop_into(&mut buf).unwrap();
                assert_eq!(
                    (from, admission, &buf[..len]),
                    (
                        source(n),
                        Admission::Open,
                        &[1, 0, 0, 0, n as u8, round as u8][..]
                    )
                );
            }
            assert!(!queue.reserve_is_full());
            for n in 0..RESERVED_FOR_PROVEN as u16 {
                let (from, admission, len) = queue.pop_into(&mut buf).unwrap();
                assert_eq!(
                    (from, admission, &buf[..len]),
                    (
                        source(n),
                        Admission::Proven,
                        &[2, 0, 0, 0, n as u8, round as u8][..]
                    )
                );
            }
            assert!(queue.is_empty());
            assert_eq!(queue.pop_into(&mut buf), None);
            // Half a queue more, so the next round starts mid-ring.
            for n in 0..100 {
                assert!(queue.push(source(n), &[2, 0, 0, 0]));
            }
            while queue.pop_into(&mut buf).is_some() {}
        }
        assert!(!queue.push(source(1), &[1; MAX_HANDSHAKE_LEN + 1]));
        assert!(queue.push(source(1), &[1; MAX_HANDSHAKE_LEN]));
    }

    #[test]
    fn load_follows_the_backlog_and_lasts_a_second() {
        let start = Instant::now();
        let mut queue = HandshakeQueue::new();
        let mut buf = [0; MAX_HANDSHAKE_LEN];
        for n in 0..LOAD_THRESHOLD as u16 {
            queue.push(source(n), &[1, 0, 0, 0]);
        }
        assert!(!queue.under_load(start), "at the threshold, not above it");
        queue.push(source(0), &[1, 0, 0, 0]);
        assert!(queue.under_load(start));
        while queue.pop_into(&mut buf).is_some() {}
        let later = start + Duration::from_millis(999);
        assert!(queue.under_load(later), "a second after");
        assert!(!queue.under_load(start + UNDER_LOAD_AFTER));
    }
}
