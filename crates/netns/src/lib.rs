//! Linux network-namespace plumbing for sentrymesh's tests and its testnet:
//! one harness both build on (the tests through `sentrymesh-lab`, the lab
//! the daemon's integration tests build), so that creating a host, running a
//! command in it, stopping what runs there and removing it all work, and
//! clean up, the same way everywhere.
//!
//! ```text
//!   Namespace::create ──► ip netns add, lo up          (Drop: stop its processes,
//!   add_veth(a, b)    ──► a veth pair straight between   delete its veths, delete it)
//!                         two namespaces
//!   Namespace::command / ip / spawn_thread ──► work inside it
//!   Process::spawn    ──► a background program with a log (Drop: SIGTERM, then SIGKILL)
//!   run / run_ok      ──► a command with a timeout, its output in files
//!   Pinger / ping_pairs ──► ICMP echo from inside namespaces, in this process
//! ```
//!
//! What it does not do: choose names or addresses (callers make names
//! unique: a namespace name is global to the machine), touch anything in
//! the machine's own namespace but what a caller asks for by name, or
//! wait without a ceiling: every command has a timeout and every wait a
//! bound. It shells out to `ip` (iproute2) rather than speaking netlink: the
//! tests and the testnet need what `ip` does, and its messages are the
//! ones an operator would see.
//!
//! Its `unsafe` is confined to four system calls (`kill`, `geteuid`,
//! `setns`, also in a child about to exec, and `sigaction`), each with a
//! `// SAFETY:` comment.
//!
//! The pieces: [`command`] (running a program with a timeout),
//! [`echo`] (pings between namespaces without a `ping` process each),
//! [`process`] (background programs, signals, waits), [`namespace`]
//! (namespaces and veths), [`neighbours`] (the kernel's neighbour table,
//! which every namespace shares) and [`interrupt`] (Ctrl-C as a request to
//! stop and clean up).

pub mod command;
pub mod echo;
pub mod interrupt;
pub mod namespace;
pub mod neighbours;
pub mod process;

pub use self::command::{COMMAND_TIMEOUT, CommandError, Finished, find_program, run, run_ok};
pub use self::namespace::{Namespace, add_veth, is_root, remove_all, stop_processes_in};
pub use self::process::{Process, is_running, signal, stop_all, wait_until};
