//! The WireGuard handshake: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s with the
//! WireGuard prologue, a TAI64N timestamp as the initiation's payload and an
//! empty payload in the response.
//!
//! ```text
//! initiator                                   responder
//!   ExpectResponse <- write_initiation ----->  identify_initiator (e, es, s)
//!                                              IdentifiedInitiation::authenticate (ss, timestamp)
//!   consume_response <--------------------- write_response (e, ee, se, psk)
//!   SessionKeys                                SessionKeys
//! ```
//!
//! This module only computes: it does not decide whether a handshake is
//! wanted, replayed or flooding (see `crate::peer`), and leaves `mac1`/`mac2`
//! to `crate::cookie`. A failed step consumes nothing: every state is only
//! replaced once the message it processed has fully verified.

use sentrymesh_types::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::crypto::aead::AuthenticationFailed;
use crate::crypto::x25519::{DhPublic, NonContributory, SecretKey, dh};
use crate::error::Error;
use crate::keys::PresharedKey;
use crate::messages::{INITIATION_LEN, Initiation, RESPONSE_LEN, Response, SessionIndex};
use crate::noise::{CipherKey, SymmetricState};
use crate::tai64n::{TIMESTAMP_LEN, Tai64N};

/// The Noise protocol name of WireGuard.
pub(crate) const CONSTRUCTION: &[u8] = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
/// The Noise prologue of WireGuard.
pub(crate) const IDENTIFIER: &[u8] = b"WireGuard v1 zx2c4 Jason@zx2c4.com";

/// Why a handshake message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeError {
    /// An AEAD field did not verify: wrong keys, or a forged or damaged message.
    Decryption,
    /// A Diffie-Hellman result was all zeros: a low-order public key.
    LowOrderKey,
}

impl From<HandshakeError> for Error {
    fn from(error: HandshakeError) -> Self {
        match error {
            HandshakeError::Decryption => Self::Decryption,
            HandshakeError::LowOrderKey => Self::LowOrderKey,
        }
    }
}

impl From<AuthenticationFailed> for HandshakeError {
    fn from(_: AuthenticationFailed) -> Self {
        Self::Decryption
    }
}

impl From<NonContributory> for HandshakeError {
    fn from(_: NonContributory) -> Self {
        Self::LowOrderKey
    }
}

/// The handshake state every session with `responder` starts from.
fn initial_state(responder: &PublicKey) -> SymmetricState {
    SymmetricState::new(CONSTRUCTION, IDENTIFIER).with_responder(responder.as_bytes())
}

/// Our static identity and what every handshake precomputes from it.
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(crate) struct LocalIdentity {
    private: SecretKey,
    public: PublicKey,
    /// The initial state of handshakes initiated towards us.
    initial: SymmetricState,
}

impl LocalIdentity {
    pub(crate) fn new(private: PrivateKey) -> Self {
        let public = private.public_key();
        Self {
            initial: initial_state(&public),
            private: SecretKey::from_bytes(*private.to_bytes()),
            public,
        }
    }

    pub(crate) fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Whether handshakes with the owner of `remote` can work: it is not us,
    /// and its key has no low order.
    pub(crate) fn can_peer_with(&self, remote: &PublicKey) -> bool {
        *remote != self.public && dh(&self.private, &DhPublic::new(*remote.as_bytes())).is_ok()
    }
}

/// What all handshakes with one peer share.
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(crate) struct PeerSecrets {
    remote: PublicKey,
    /// `remote` prepared for the Diffie-Hellman of every handshake.
    remote_dh: DhPublic,
    /// `DH(S_local, S_remote)`; `None` when the remote key has low order, in
    /// which case every handshake with it fails.
    static_static: Option<Zeroizing<[u8; 32]>>,
    psk: PresharedKey,
    /// The initial state of handshakes we initiate towards this peer.
    initial: SymmetricState,
}

impl PeerSecrets {
    pub(crate) fn new(local: &LocalIdentity, remote: PublicKey, psk: PresharedKey) -> Self {
        let remote_dh = DhPublic::new(*remote.as_bytes());
        Self {
            static_static: dh(&local.private, &remote_dh).ok(),
            initial: initial_state(&remote),
            remote,
            remote_dh,
            psk,
        }
    }

    pub(crate) fn remote(&self) -> &PublicKey {
        &self.remote
    }

    pub(crate) fn psk(&self) -> &PresharedKey {
        &self.psk
    }

    fn static_static(&self) -> Result<&[u8; 32], HandshakeError> {
        self.static_static
            .as_deref()
            .ok_or(HandshakeError::LowOrderKey)
    }
}

/// The transport keys and indices a completed handshake yields.
pub(crate) struct SessionKeys {
    pub(crate) local_index: SessionIndex,
    pub(crate) remote_index: SessionIndex,
    pub(crate) sending: CipherKey,
    pub(crate) receiving: CipherKey,
}

/// An initiator that sent an initiation and waits for the response.
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub(crate) struct ExpectResponse {
    symmetric: SymmetricState,
    ephemeral: SecretKey,
    local_index: SessionIndex,
}

/// Writes an initiation to `peer` into `out` (all but the MACs) and returns
/// the state that waits for its response.
pub(crate) fn write_initiation(
    local: &LocalIdentity,
    peer: &PeerSecrets,
    local_index: SessionIndex,
    ephemeral: SecretKey,
    timestamp: Tai64N,
    out: &mut [u8; INITIATION_LEN],
) -> Result<ExpectResponse, HandshakeError> {
    let static_static = peer.static_static()?;
    let mut symmetric = peer.initial.clone();
    let mut message = Initiation::start(out, local_index);

    // e
    let ephemeral_public = ephemeral.public_key();
    *message.ephemeral_mut() = ephemeral_public;
    symmetric.mix_hash(&ephemeral_public);
    symmetric.mix_chaining_key(&ephemeral_public);
    // es
    let key = symmetric.mix_key(dh(&ephemeral, &peer.remote_dh)?.as_slice());
    // s
    symmetric.encrypt_and_hash(
        &key,
        local.public.as_bytes(),
        message.encrypted_static_mut(),
    );
    // ss
    let key = symmetric.mix_key(static_static);
    // payload: the timestamp
    symmetric.encrypt_and_hash(
        &key,
        timestamp.as_bytes(),
        message.encrypted_timestamp_mut(),
    );

    Ok(ExpectResponse {
        symmetric,
        ephemeral,
        local_index,
    })
}

/// An initiation whose sender's static key has been decrypted, before the
/// sender is known to be a peer or the message known to be authentic.
pub(crate) struct IdentifiedInitiation {
    symmetric: SymmetricState,
    remote_ephemeral: DhPublic,
    sender: SessionIndex,
    initiator: PublicKey,
}

/// Reads the initiator's identity out of `message` (the `e`, `es`, `s` tokens).
pub(crate) fn identify_initiator(
    local: &LocalIdentity,
    message: &Initiation<&[u8]>,
) -> Result<IdentifiedInitiation, HandshakeError> {
    let mut symmetric = local.initial.clone();
    // e
    let remote_ephemeral = message.ephemeral();
    symmetric.mix_hash(remote_ephemeral);
    symmetric.mix_chaining_key(remote_ephemeral);
    let remote_ephemeral = DhPublic::new(*remote_ephemeral);
    // es
    let key = symmetric.mix_key(dh(&local.private, &remote_ephemeral)?.as_slice());
    // s
    let mut initiator = [0u8; 32];
    symmetric.decrypt_and_hash(&key, message.encrypted_static(), &mut initiator)?;
    Ok(IdentifiedInitiation {
        symmetric,
        remote_ephemeral,
        sender: message.sender(),
        initiator: PublicKey::from_bytes(initiator),
    })
}

impl IdentifiedInitiation {
    /// The static public key the initiator claims.
    pub(crate) fn initiator(&self) -> &PublicKey {
        &self.initiator
    }

    /// Authenticates the initiation with the secrets of the peer it claims to
    /// come from (the `ss` token) and reads its timestamp.
    pub(crate) fn authenticate(
        mut self,
        peer: &PeerSecrets,
        message: &Initiation<&[u8]>,
    ) -> Result<AuthenticatedInitiation, HandshakeError> {
        debug_assert_eq!(peer.remote, self.initiator);
        // ss
        let key = self.symmetric.mix_key(peer.static_static()?);
        // payload
        let mut timestamp = [0u8; TIMESTAMP_LEN];
        self.symmetric
            .decrypt_and_hash(&key, message.encrypted_timestamp(), &mut timestamp)?;
        Ok(AuthenticatedInitiation {
            symmetric: self.symmetric,
            remote_ephemeral: self.remote_ephemeral,
            sender: self.sender,
            timestamp: Tai64N::from_bytes(timestamp),
        })
    }
}

/// An initiation proven to come from a known peer.
pub(crate) struct AuthenticatedInitiation {
    symmetric: SymmetricState,
    remote_ephemeral: DhPublic,
    sender: SessionIndex,
    timestamp: Tai64N,
}

impl AuthenticatedInitiation {
    /// The initiator's TAI64N timestamp, for replay protection.
    pub(crate) fn timestamp(&self) -> Tai64N {
        self.timestamp
    }

    /// Writes the response into `out` (all but the MACs) and derives the
    /// session's keys.
    pub(crate) fn write_response(
        mut self,
        peer: &PeerSecrets,
        local_index: SessionIndex,
        ephemeral: SecretKey,
        out: &mut [u8; RESPONSE_LEN],
    ) -> Result<SessionKeys, HandshakeError> {
        let symmetric = &mut self.symmetric;
        let mut message = Response::start(out, local_index, self.sender);
        // e
        let ephemeral_public = ephemeral.public_key();
        *message.ephemeral_mut() = ephemeral_public;
        symmetric.mix_hash(&ephemeral_public);
        symmetric.mix_chaining_key(&ephemeral_public);
        // ee
        symmetric.mix_chaining_key(dh(&ephemeral, &self.remote_ephemeral)?.as_slice());
        // se
        symmetric.mix_chaining_key(dh(&ephemeral, &peer.remote_dh)?.as_slice());
        // psk
        let key = symmetric.mix_key_and_hash(peer.psk.as_bytes());
        // payload: nothing
        symmetric.encrypt_and_hash(&key, &[], message.encrypted_nothing_mut());

        let (initiator_sending, responder_sending) = symmetric.split();
        Ok(SessionKeys {
            local_index,
            remote_index: self.sender,
            sending: responder_sending,
            receiving: initiator_sending,
        })
    }
}

impl ExpectResponse {
    /// The index the response must be addressed to.
    pub(crate) fn local_index(&self) -> SessionIndex {
        self.local_index
    }

    /// Completes the handshake with the response `message`. The state is left
    /// as it was when the response does not verify, so a forged response
    /// cannot cancel the handshake.
    pub(crate) fn consume_response(
        &self,
        local: &LocalIdentity,
        peer: &PeerSecrets,
        message: &Response<&[u8]>,
    ) -> Result<SessionKeys, HandshakeError> {
        let mut symmetric = self.symmetric.clone();
        // e
        let remote_ephemeral = message.ephemeral();
        symmetric.mix_hash(remote_ephemeral);
        symmetric.mix_chaining_key(remote_ephemeral);
        let remote_ephemeral = DhPublic::new(*remote_ephemeral);
        // ee
        symmetric.mix_chaining_key(dh(&self.ephemeral, &remote_ephemeral)?.as_slice());
        // se
        symmetric.mix_chaining_key(dh(&local.private, &remote_ephemeral)?.as_slice());
        // psk
        let key = symmetric.mix_key_and_hash(peer.psk.as_bytes());
        // payload: nothing
        symmetric.decrypt_and_hash(&key, message.encrypted_nothing(), &mut [])?;

        let (initiator_sending, responder_sending) = symmetric.split();
        Ok(SessionKeys {
            local_index: self.local_index,
            remote_index: message.sender(),
            sending: initiator_sending,
            receiving: responder_sending,
        })
    }
}
