//! The sentrymesh daemon: everything that touches the operating system
//! around the sans-IO engine of `sentrymesh-tunnel`.
//!
//! The pieces that can be tested without privileges live here as modules; the
//! binary (`main.rs`) parses arguments and runs them.

pub mod allowed_ips;
pub mod batch_udp;
pub mod capabilities;
pub mod config;
pub mod control;
pub mod control_client;
pub mod device;
pub mod interface;
pub mod ipnet;
pub mod keyfile;
pub mod keygen;
pub mod mesh_cli;
pub mod mesh_member;
pub mod metrics;
pub mod native;
pub mod netlink;
pub mod offload;
pub mod ready;
pub mod systemd;
pub mod testnet;
pub mod tun;
pub mod uapi;
pub mod udp;
pub mod userspace;
