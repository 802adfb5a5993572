//! A session: the transport keys of one completed handshake, their counters
//! and the replay window of what was received under them.

use std::time::Instant;

use zeroize::Zeroize;

use crate::crypto::aead::{ChaChaKey, TAG_LEN};
use crate::handshake::SessionKeys;
use crate::messages::{DATA_HEADER_LEN, DataHeader, SessionIndex};
use crate::replay::{REJECT_AFTER_MESSAGES, ReplayWindow};
use crate::timers::{
    REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME, REKEY_ON_RECEIVE_AFTER_TIME,
};

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
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(crate) struct Session {
    pub(crate) local_index: SessionIndex,
    pub(crate) remote_index: SessionIndex,
    sending: ChaChaKey,
    next_send_counter: u64,
    receiving: ChaChaKey,
    replay: ReplayWindow,
    /// Whether we initiated the handshake that made this session.
    pub(crate) initiator: bool,
    /// From then on, the initiator renegotiates when it sends.
    rekey_at: Instant,
    /// From then on, the initiator renegotiates when it receives.
    pub(crate) rekey_on_receive_at: Instant,
    /// From then on, nothing is sent or accepted under this session.
    reject_at: Instant,
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
            sending: ChaChaKey::new(&sending),
            next_send_counter: 0,
            receiving: ChaChaKey::new(&receiving),
            replay: ReplayWindow::new(),
            initiator,
            rekey_at: now + REKEY_AFTER_TIME,
            rekey_on_receive_at: now + REKEY_ON_RECEIVE_AFTER_TIME,
            reject_at: now + REJECT_AFTER_TIME,
        };
        sending.zeroize();
        receiving.zeroize();
        session
    }

    /// Whether this session should be replaced after a send: it carried
    /// `REKEY_AFTER_MESSAGES`, or we initiated it `REKEY_AFTER_TIME` ago.
    #[inline]
    pub(crate) fn wants_rekey(&self, now: Instant) -> bool {
        self.next_send_counter > REKEY_AFTER_MESSAGES || (self.initiator && now >= self.rekey_at)
    }

    /// Whether a message may still be sent under this session.
    #[inline]
    pub(crate) fn can_send(&self, now: Instant) -> bool {
        now < self.reject_at && self.next_send_counter < REJECT_AFTER_MESSAGES
    }

    /// Seals a data message in `buf`: `buf[DATA_HEADER_LEN..len - TAG_LEN]`
    /// holds the padded plaintext; the header and tag are written around it.
    /// The caller has checked [`Session::can_send`].
    #[inline]
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
        self.sending.seal_in_place(
            counter,
            &[],
            body,
            tag.try_into().expect("split at TAG_LEN"),
        );
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
        if now >= self.reject_at {
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
