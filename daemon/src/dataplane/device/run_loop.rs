//! The run loop: a thread of its own that waits on the TUN device, the UDP
//! socket and a waker with `epoll`, and serves them in turn.
//!
//! ```text
//!   tokio (UAPI socket, signals, reload)          data-path thread
//!   ------------------------------------          ----------------
//!   commands.recv() --> inbox.send(Command) -+--> epoll_wait(tun, socket, waker, deadline)
//!   shutdown        --> inbox.send(Stop)     |       waker           -> inbox: control, stop
//!                       waker.wake() --------+       tun readable    -> drain_tun
//!   done.await  <-- the loop's result                socket readable -> drain_socket
//!                                                    deadline        -> engine timers, MTU,
//!                                                                       session log
//! ```
//!
//! One drain reads a bounded number of batches from the TUN device or the
//! socket, and handles a bounded number of queued handshake messages, so
//! neither side starves the other and a handshake flood cannot hold the
//! data back. The poller is edge-triggered: it tells of new readiness only,
//! so when a drain leaves work behind, the next wait has a zero timeout and
//! the next turn resumes it.
//!
//! The clock is read once a turn, when `epoll_wait` returns, and that
//! reading is the `now` of everything the turn does; the next wait is
//! computed from it too (so it may last the turn's length too long, a few
//! microseconds against timers of the protocol's 100 ms granularity).
//!
//! Each turn beats the device's
//! [`Heartbeat`](crate::dataplane::heartbeat::Heartbeat) with that reading,
//! so a thread stuck in a turn stops feeding systemd's watchdog. An idle
//! loop turns at least every [`MTU_CHECK_INTERVAL`], and then reads the
//! MTU again, logs the sessions that changed
//! ([`SessionWatch`](crate::dataplane::sessions::SessionWatch)), and gives
//! the memory of peers removed since back to the system
//! ([`release_free_memory`](crate::sys::memory::release_free_memory)).
//!
//! A thread rather than a task: after the tunnel has been idle a while, the
//! first packet used to wait ~25 µs in the async runtime (its driver, the
//! select over six futures, the readiness bookkeeping, all cold in the
//! caches) before the TUN device was read. The thread goes from `epoll_wait`
//! straight to the read.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::mpsc::{self as std_mpsc, TryRecvError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use tokio::sync::{oneshot, watch};

use super::{Device, MTU_CHECK_INTERVAL};
use crate::dataplane::handle::{Command, Commands};
use crate::sys::tun::Tun;
use crate::sys::udp::DataSocket;

const TUN: Token = Token(0);
const SOCKET: Token = Token(1);
const WAKER: Token = Token(2);

/// What reaches the data-path thread from the runtime.
enum Inbox {
    Command(Command),
    Stop,
}

impl Device<Tun, DataSocket> {
    /// Runs the interface on a thread of its own until `shutdown` turns true,
    /// the TUN device goes away, or every [`DeviceHandle`] is dropped; the
    /// handles' commands are relayed to it as they come.
    ///
    /// [`DeviceHandle`]: crate::dataplane::handle::DeviceHandle
    ///
    /// # Errors
    ///
    /// When the thread cannot start, or the TUN device or the socket fails
    /// for good.
    pub(crate) async fn run(
        self,
        mut commands: Commands,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let poll = Poll::new().context("creating the event poller")?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).context("creating a waker")?);
        let (inbox, inbox_rx) = std_mpsc::channel();
        let (done_tx, mut done) = oneshot::channel();
        std::thread::Builder::new()
            .name("sentrymesh-data".into())
            .spawn(move || {
                let _ = done_tx.send(self.run_blocking(poll, &inbox_rx));
            })
            .context("starting the data-path thread")?;
        let send = |message: Inbox| {
            // A send fails only once the thread has ended, which `done` tells.
            let _ = inbox.send(message);
            if let Err(error) = waker.wake() {
                tracing::error!("waking the data-path thread: {error}");
            }
        };
        loop {
            tokio::select! {
                result = &mut done => {
                    return result.unwrap_or_else(|_| Err(anyhow!("the data-path thread panicked")));
                }
                command = commands.recv() => match command {
                    Some(command) => send(Inbox::Command(command)),
                    None => break,
                },
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        send(Inbox::Stop);
        done.await
            .unwrap_or_else(|_| Err(anyhow!("the data-path thread panicked")))
    }

    /// The data-path thread: waits for the TUN device, the socket, the
    /// waker or the next deadline, serves what is ready, and sends what the
    /// engine queued.
    fn run_blocking(mut self, mut poll: Poll, inbox: &std_mpsc::Receiver<Inbox>) -> Result<()> {
        let registry = poll.registry();
        registry
            .register(
                &mut SourceFd(&self.tun.as_raw_fd()),
                TUN,
                Interest::READABLE,
            )
            .context("watching the TUN device")?;
        registry
            .register(
                &mut SourceFd(&self.socket.as_raw_fd()),
                SOCKET,
                Interest::READABLE,
            )
            .context("watching the UDP socket")?;
        let mut events = Events::with_capacity(8);
        let mut now = Instant::now();
        let mut mtu_check = now + MTU_CHECK_INTERVAL;
        loop {
            let engine_deadline = self.interface.engine().poll_timeout();
            let deadline = [engine_deadline, self.shedding.deadline()]
                .into_iter()
                .flatten()
                .fold(mtu_check, Instant::min);
            // Work left from the last turn (a drain cut short, handshake
            // messages waiting) is resumed at once: the poller only tells
            // of new readiness.
            let timeout = if self.tun_pending || self.socket_has_work() {
                Duration::ZERO
            } else {
                deadline.saturating_duration_since(now)
            };
            if let Err(error) = poll.poll(&mut events, Some(timeout)) {
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error).context("waiting for packets");
                }
            }
            now = Instant::now();
            self.heartbeat.beat(now);
            for event in &events {
                match event.token() {
                    TUN => self.tun_pending = true,
                    SOCKET => self.socket_pending = true,
                    _ => loop {
                        match inbox.try_recv() {
                            Ok(Inbox::Command(command)) => self.serve_command(command, now),
                            Ok(Inbox::Stop) | Err(TryRecvError::Disconnected) => {
                                tracing::debug!("dropped packets: {:?}", self.drops);
                                return Ok(());
                            }
                            Err(TryRecvError::Empty) => break,
                        }
                    },
                }
            }
            if std::mem::take(&mut self.socket_replaced) {
                // The old socket left the poller when it was closed.
                poll.registry()
                    .register(
                        &mut SourceFd(&self.socket.as_raw_fd()),
                        SOCKET,
                        Interest::READABLE,
                    )
                    .context("watching the new UDP socket")?;
                self.socket_pending = true;
            }
            if self.tun_pending && !self.drain_tun(now)? {
                tracing::info!("the TUN device is gone; stopping");
                return Ok(());
            }
            if self.socket_has_work() {
                self.drain_socket(now);
            }
            if mtu_check <= now {
                self.check_mtu();
                self.log_session_changes(now);
                self.release_memory_of_removed_peers();
                mtu_check = now + MTU_CHECK_INTERVAL;
            }
            if engine_deadline.is_some_and(|at| at <= now) {
                self.interface.engine_mut().handle_timeout(now);
            }
            self.adjust_shedding(now);
            // What the timers or a control request queued (a new peer's
            // handshake, a keepalive), in one batched send.
            self.send_queued(now);
        }
    }
}
