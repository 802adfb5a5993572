//! The cryptographic primitives of WireGuard, wrapped so the protocol code
//! reads like the whitepaper: `HASH`, `MAC`, `HMAC`, `KDF1..3`, `DH` and the
//! two AEADs (ChaCha20-Poly1305 for the handshake and the data path,
//! XChaCha20-Poly1305 for cookies).

pub(crate) mod aead;
pub(crate) mod blake2s;
pub(crate) mod x25519;
