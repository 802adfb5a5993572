//! A session: the transport keys of one completed handshake, their counters
//! and the replay window of what was received under them.

use std::time::Instant;

use zeroize::Zeroize;

use crate::crypto::aead::{TAG_LEN, TransportKey};
use crate::handshake::SessionKeys;
use crate::messages::{DATA_HEADER_LEN, DataHeader, SessionIndex};
use crate::replay::{REJECT_AFTER_MESSAGES, ReplayWindow};
use crate::timers::REJECT_AFTER_TIME;

/// Why a session could not open a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The counter was seen before, or fell behind the window.
    Replay,
    /// The tag did not verify.
    Decryption,
    /// The session is older than `REJECT_AFTER_TIME` or used up.
    Expired,
}

/// One direction pair of transport keys with their state.
pub(crate) struct Session {
    pub(crate) local_index: SessionIndex,
    pub(crate) remote_index: SessionIndex,
    sending: TransportKey,
    next_send_counter: u64,
    receiving: TransportKey,
    replay: ReplayWindow,
    pub(crate) created: Instant,
    pub(crate) initiator: bool,
}

impl Session {
    pub(crate) fn new(keys: SessionKeys, now: Instant, initiator: bool) -> Self {
        let SessionKeys {
            local_index,
            remote_index,
            mut sending,
            mut receiving,
        } = keys;
        let session = Self {
            local_index,
            remote_index,
            sending: TransportKey::new(&sending),
            next_send_counter: 0,
            receiving: TransportKey::new(&receiving),
            replay: ReplayWindow::new(),
            created: now,
            initiator,
        };
        sending.zeroize();
        receiving.zeroize();
        session
    }

    /// How many messages were sent under this session.
    pub(crate) fn sent_messages(&self) -> u64 {
        self.next_send_counter
    }

    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.created) >= REJECT_AFTER_TIME
    }

    /// Whether a message may still be sent under this session.
    pub(crate) fn can_send(&self, now: Instant) -> bool {
        !self.expired(now) && self.next_send_counter < REJECT_AFTER_MESSAGES
    }

    /// Seals a data message in `buf`: `buf[DATA_HEADER_LEN..len - TAG_LEN]`
    /// holds the padded plaintext; the header and tag are written around it.
    /// The caller has checked [`Session::can_send`].
    pub(crate) fn seal(&mut self, buf: &mut [u8]) {
        let counter = self.next_send_counter;
        self.next_send_counter += 1;
        let (header, rest) = buf.split_at_mut(DATA_HEADER_LEN);
        let (body, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        DataHeader {
            receiver: self.remote_index,
            counter,
        }
        .write(header.try_into().expect("split at DATA_HEADER_LEN"));
        tag.copy_from_slice(&self.sending.seal_in_place(counter, body));
    }

    /// Opens the payload of a data message in place: `body` is everything
    /// after the header (ciphertext and tag). The counter is recorded only
    /// once the tag verified, so a forgery changes nothing.
    pub(crate) fn open(
        &mut self,
        now: Instant,
        counter: u64,
        body: &mut [u8],
    ) -> Result<(), OpenError> {
        if self.expired(now) {
            return Err(OpenError::Expired);
        }
        if !self.replay.check(counter) {
            return Err(OpenError::Replay);
        }
        self.receiving
            .open_in_place(counter, body)
            .map_err(|_| OpenError::Decryption)?;
        if self.replay.accept(counter) {
            Ok(())
        } else {
            Err(OpenError::Replay)
        }
    }
}
