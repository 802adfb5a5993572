//! Per-source token buckets for handshake messages.
