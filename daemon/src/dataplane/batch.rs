//! The send batch: sealed data, handshakes, keepalives and cookie replies
//! side by side in one buffer, in runs of one destination and one size,
//! all sent with one batched send ([`crate::sys::batch_udp`]).
//!
//! ```text
//!   buf:  [ A A A a | B | C C | A A ... ][ tail: room for one more datagram ]
//!   runs:  (A,1452)  (B,148) (C,96) (A,1452)
//! ```
//!
//! Two rules, each in one place:
//!
//! * [`TxBatch::fits`] decides whether datagrams go into the batch as it is
//!   or the batch is sent first: room in the buffer, and at most
//!   [`MAX_BATCH`] datagrams, so a busy TUN device does not hold sealed
//!   packets back for long. A destination or size that differs from the
//!   last datagram's never sends the batch: it starts a new run.
//! * [`TxBatch::push`] decides whether a datagram joins the last run (one
//!   GSO message) or starts one: the same destination, a size no larger
//!   than the run's, and the run not yet closed by a shorter datagram.
//!   How many datagrams one GSO message can carry is the sender's business
//!   ([`crate::sys::batch_udp::BatchIo::send_runs`] cuts long runs).

use std::net::SocketAddr;

use sentrymesh_tunnel::DATA_OVERHEAD;

use crate::sys::batch_udp::Run;

/// The largest IP packet the TUN device hands over (its MTU can be at most
/// 65535).
pub(crate) const MAX_PACKET: usize = 65_535;
/// Room for one datagram of any kind: a packet with the WireGuard header,
/// padding and tag (handshake messages and cookie replies are smaller).
pub(crate) const SLOT_LEN: usize = MAX_PACKET + DATA_OVERHEAD + 16;
/// At most this many datagrams wait in a batch (the kernel's limit for one
/// UDP segmentation offload send), unless one TCP super packet alone is
/// cut into more.
pub(crate) const MAX_BATCH: usize = 64;
/// Room for a batch of full-size datagrams and one more datagram of any size.
const BUFFER_LEN: usize = MAX_BATCH * 1600 + SLOT_LEN;

/// Datagrams waiting to be sent together.
#[derive(Debug)]
pub(crate) struct TxBatch {
    buf: Vec<u8>,
    /// Bytes of datagrams at the start of `buf`.
    len: usize,
    runs: Vec<Run>,
    /// Datagrams in all runs.
    datagrams: usize,
}

impl Default for TxBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl TxBatch {
    /// An empty batch with its buffer.
    pub(crate) fn new() -> Self {
        Self {
            buf: vec![0; BUFFER_LEN],
            len: 0,
            runs: Vec::with_capacity(MAX_BATCH),
            datagrams: 0,
        }
    }

    /// Whether the batch holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.datagrams == 0
    }

    /// The bytes of datagrams in the batch: where the next one is written.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The datagrams' bytes, for the runs to index.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The runs of datagrams in [`TxBatch::bytes`].
    pub(crate) fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Whether there is room after the datagrams for one more of any size
    /// ([`SLOT_LEN`] bytes); when not, send the batch before writing one.
    pub(crate) fn has_slot(&self) -> bool {
        self.buf.len() - self.len >= SLOT_LEN
    }

    /// The whole buffer, to write datagrams after [`TxBatch::len`] before
    /// they are pushed.
    pub(crate) fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The batch-fit rule: whether `count` more datagrams of `size` bytes
    /// each (the last perhaps shorter) can follow the ones in the batch, or
    /// the batch must be sent first. An empty batch takes any number that
    /// fits its buffer: one TCP super packet is cut into as many as it holds.
    pub(crate) fn fits(&self, size: usize, count: usize) -> bool {
        let bytes = count.saturating_mul(size);
        let room = bytes <= self.buf.len() - self.len;
        room && (self.is_empty() || self.datagrams + count <= MAX_BATCH)
    }

    /// Adds the datagram of `len` bytes written at [`TxBatch::len`], for
    /// `destination`: to the last run when it continues it, else as a new
    /// run. The caller has checked that it [`fits`](TxBatch::fits).
    pub(crate) fn push(&mut self, destination: SocketAddr, len: usize) {
        let start = self.len;
        match self.runs.last_mut() {
            Some(run)
                if run.destination == destination
                    && len <= run.segment_size
                    && run.len == run.datagrams() * run.segment_size =>
            {
                run.len += len;
            }
            _ => self.runs.push(Run {
                destination,
                start,
                len,
                segment_size: len,
            }),
        }
        self.len += len;
        self.datagrams += 1;
    }

    /// Empties the batch, keeping the `len` bytes at `start` (a datagram
    /// written after the batch's end, not yet pushed) as the first bytes of
    /// the buffer.
    pub(crate) fn clear_keeping(&mut self, start: usize, len: usize) {
        self.buf.copy_within(start..start + len, 0);
        self.clear();
    }

    /// Empties the batch.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.datagrams = 0;
        self.runs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, 1], port))
    }

    #[test]
    fn datagrams_of_one_destination_and_size_make_one_run() {
        let mut batch = TxBatch::new();
        for len in [1452, 1452, 1452, 700] {
            assert!(batch.fits(len, 1));
            batch.push(at(1), len);
        }
        // After a shorter one the run is closed; a new size, a new run.
        batch.push(at(1), 700);
        batch.push(at(2), 148);
        batch.push(at(1), 96);
        let runs: Vec<(u16, usize, usize, usize)> = batch
            .runs()
            .iter()
            .map(|run| (run.destination.port(), run.start, run.len, run.segment_size))
            .collect();
        assert_eq!(
            runs,
            [
                (1, 0, 3 * 1452 + 700, 1452),
                (1, 5056, 700, 700),
                (2, 5756, 148, 148),
                (1, 5904, 96, 96)
            ]
        );
        assert_eq!(batch.len(), 6000);
        assert!(batch.has_slot());
    }

    #[test]
    fn the_batch_takes_at_most_max_batch_unless_empty() {
        let mut batch = TxBatch::new();
        assert!(batch.fits(600, 100), "one super packet alone");
        assert!(!batch.fits(SLOT_LEN, 3), "not beyond the buffer");
        for index in 0..MAX_BATCH {
            assert!(batch.fits(96, 1));
            batch.push(at(u16::try_from(index).unwrap()), 96);
        }
        assert!(!batch.fits(96, 1));
        assert_eq!(batch.runs().len(), MAX_BATCH);
        let start = batch.len();
        batch.buf_mut()[start..start + 3].copy_from_slice(b"abc");
        batch.clear_keeping(start, 3);
        assert!(batch.is_empty() && batch.runs().is_empty());
        assert_eq!(&batch.buf_mut()[..3], b"abc");
    }
}
