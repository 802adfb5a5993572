//! The cryptographic primitives of WireGuard, wrapped so the protocol code
//! reads like the whitepaper: `DH` and the two AEADs (ChaCha20-Poly1305 for
//! the handshake and the data path, XChaCha20-Poly1305 for cookies).
//! `HASH`, `MAC`, `HMAC` and `KDF1..3` are `sentrymesh_types::blake2s`,
//! which the mesh shares.

pub(crate) mod aead;
pub(crate) mod x25519;
