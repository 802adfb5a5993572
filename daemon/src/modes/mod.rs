//! The ways the daemon runs an interface.
//!
//! [`wg`] is the drop-in for `wireguard-go` that `wg` and `wg-quick`
//! configure; [`up`] is the native mode configured by one TOML file, with
//! the trust mesh's [`mesh_member`] when the file has a `[trust]` section;
//! [`ready`] decides when an interface counts as ready. The native mode
//! and the mesh member install routes through one service, `routes`; the
//! native mode feeds systemd's `watchdog` from its data path's heartbeat.

mod config_changes;
pub mod mesh_member;
pub mod ready;
mod routes;
pub mod up;
mod watchdog;
pub mod wg;
