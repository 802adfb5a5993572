//! The cross-platform userspace API of WireGuard (UAPI): the text protocol
//! that `wg` and `wg-quick` speak over `/var/run/wireguard/IFNAME.sock`, as
//! <https://www.wireguard.com/xplatform/> describes it and wireguard-go
//! implements it (`device/uapi.go`).
//!
//! This module does no I/O and applies nothing: it parses requests and
//! formats replies. It does not open or accept on the socket, read the
//! clock, or touch the device; the daemon does. A `set=1` request parses
//! into the daemon's own typed [`ConfigChange`], which the device applies
//! all or nothing (wireguard-go applies each line as it reads it, so a bad
//! line leaves the lines before it applied); the device's typed refusal, a
//! [`ChangeError`], becomes an [`Errno`] here and nowhere else
//! ([`Errno::of_change`]). The UAPI text is the format `wg` speaks; no part
//! of the daemon uses it to talk to another.
//!
//! [`ConfigChange`]: crate::dataplane::change::ConfigChange
//! [`ChangeError`]: crate::dataplane::change::ChangeError
//!
//! ```text
//!   wg                                 daemon
//!   "get=1\n\n"        ──────────▶  RequestDecoder ──▶ Request::Get
//!   "private_key=…\n…"
//!   "errno=0\n\n"      ◀──────────  write_get_response(&UapiState)
//!
//!   "set=1\n"
//!   "public_key=…\n…"
//!   "\n"               ──────────▶  RequestDecoder ──▶ Request::Set(ConfigChange)
//!                                                     apply all, or none
//!   "errno=-22\n\n"    ◀──────────  write_status(Err(Errno::EINVAL))
//! ```
//!
//! Keys travel as 64 hex digits (not base64), endpoints as `A.B.C.D:PORT` or
//! `[IPV6]:PORT`, allowed IPs as `NET/LEN` (`-NET/LEN` removes one), and
//! every reply ends with `errno=N` and a blank line, `N` 0 or a negated
//! errno ([`Errno`]). The errors and the errno each maps to are listed at
//! [`RequestError::errno`].
//!
//! # The run loop
//!
//! After every read from the connection, feed the bytes to the
//! [`RequestDecoder`] and answer every request it completes: a `get=1`
//! with [`write_get_response`] of the interface's state, a `set=1` with
//! [`write_status`] of the change applied, an error with its errno (when it
//! has one); close when the decoder says so. The UAPI socket's connection
//! loop (`serve_connection` in [`crate::control::socket`]) is that loop.
//!
//! # Limits
//!
//! A line of a set request may be 64 KiB long, its newline included (as in
//! wireguard-go, whose `bufio.Scanner` has that limit), and a request 64 MiB;
//! [`Limits`] changes both. The first line must be `get=1`, `set=1`,
//! `get_status=1` or `reload=1` (sentrymesh's own requests, which
//! `sentrymesh status` and `sentrymesh reload` send and `wg` never does:
//! `docs/status.md`), so it is never longer than 13 bytes.
//!
//! # Differences from wireguard-go
//!
//! They concern requests `wg` does not send:
//!
//! - A set request that ends (the client shuts its side) before its blank
//!   line is refused with `EPROTO`; wireguard-go applies what it read and
//!   answers 0. A cut-short request may be a cut-short peer list.
//! - An endpoint with a named IPv6 zone (`[fe80::1%eth0]:51820`) is refused
//!   with `EINVAL`; numeric zones are taken.
//! - A peer section with `remove=true` or `update_only=true` ignores its
//!   other lines as a whole: the change it parses into keeps none of them.
//! - Over-long requests are refused (see above).
//! - `reload=1` and a blank line, sentrymesh's own request, asks
//!   `sentrymesh up` to re-read its config file; the answer carries what
//!   changed or why the file was refused (`reload.rs`). wireguard-go closes
//!   the connection on it, as on any operation it does not know.

mod decoder;
mod errno;
mod error;
mod get_reply;
mod reload;
mod request;
mod response;
mod wire;

pub(crate) use decoder::{Limits, RequestDecoder};
pub(crate) use errno::Errno;
pub(crate) use error::RequestError;
pub(crate) use get_reply::read_get_reply;
pub(crate) use reload::{ReloadAnswer, ReloadAnswerError, read_reload_answer, write_reload_answer};
pub(crate) use request::Request;
pub(crate) use response::{write_get_response, write_status, write_status_document};

#[cfg(test)]
mod tests;
