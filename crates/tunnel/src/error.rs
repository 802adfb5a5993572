//! Why a datagram was dropped or a packet could not be sent.

/// Why [`crate::Engine`] refused an input; the caller drops the datagram
/// and may count the reason.
///
/// A datagram refused before it authenticated leaves the engine's state
/// as it was (apart from a cookie reply queued for sending). Only
/// [`Error::InvalidInnerPacket`] comes after authentication: like the kernel,
/// the engine has by then counted the datagram, updated the peer's address
/// and its timers, and recorded the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a WireGuard message: unknown type, non-zero reserved bytes or a
    /// wrong length.
    #[error("malformed message")]
    Malformed,
    /// A handshake message whose `mac1` is wrong: not meant for this key.
    #[error("handshake message with an invalid mac1")]
    InvalidMac1,
    /// Under load, a handshake message without a valid cookie; a cookie
    /// reply was queued for its source.
    #[error("handshake message without a valid cookie while under load")]
    CookieRequired,
    /// Under load, a handshake message from a source over its rate.
    #[error("handshake message over its source's rate limit")]
    RateLimited,
    /// An initiation from a public key that is not a peer.
    #[error("initiation from an unknown public key")]
    UnknownPeer,
    /// A message addressed to a session index that is not ours, or a
    /// response to no handshake in progress.
    #[error("message for an unknown session index")]
    UnknownIndex,
    /// An encrypted field or a data message failed authentication.
    #[error("message failed authentication")]
    Decryption,
    /// A Diffie-Hellman result was all zeros (a low-order public key).
    #[error("low-order public key")]
    LowOrderKey,
    /// An initiation whose timestamp is not newer than the last one accepted.
    #[error("replayed handshake initiation")]
    ReplayedInitiation,
    /// An initiation less than 20 ms after the last one accepted from the peer.
    #[error("handshake initiations faster than 50 per second")]
    InitiationFlood,
    /// A data counter already received, or too far behind the window.
    #[error("replayed or stale data counter")]
    ReplayedCounter,
    /// A data message under a session past `REJECT_AFTER_TIME` or
    /// `REJECT_AFTER_MESSAGES`.
    #[error("data for an expired session")]
    SessionExpired,
    /// A decrypted payload that is neither a keepalive nor a complete IPv4 or
    /// IPv6 packet.
    #[error("decrypted payload is not an IP packet")]
    InvalidInnerPacket,
    /// The output buffer cannot hold the message.
    #[error("buffer too small for the message")]
    BufferTooSmall,
    /// No peer has that id.
    #[error("no such peer")]
    NoSuchPeer,
    /// A peer with that public key exists already.
    #[error("a peer with that public key exists")]
    PeerExists,
    /// The public key of a new peer has low order, or is our own.
    #[error("unusable peer public key")]
    InvalidPeerKey,
    /// Every peer id has been used.
    #[error("too many peers")]
    TooManyPeers,
}
