//! [`DeviceHandle`]: how the rest of the daemon talks to a running
//! interface. The run loop owns all of the interface's state; a handle sends
//! it typed commands over a channel and awaits the typed answers. No part of
//! the daemon speaks the UAPI text to the device: that text is for `wg`, and
//! the UAPI socket turns it into the same calls.
//!
//! ```text
//!   native mode ──┐                                    data-path thread
//!   mesh member ──┼── DeviceHandle ──┐
//!   metrics     ──┘                  ├─ Command ──▶ Device::serve_command
//!   UAPI socket ───── UapiHandle ────┘ ◀── answer ──  (check, then commit)
//! ```
//!
//! The interface's private key and its peers' preshared keys leave the run
//! loop for one reader only, the UAPI socket, which answers `wg show` and
//! `wg showconf` with them. That is a matter of types, not of care: only a
//! [`UapiHandle`] can ask for them, [`channel`] makes the one there is,
//! and the native mode, the mesh member and metrics are given a
//! [`DeviceHandle`], whose [`DeviceState`] has no key in it, so no log line
//! or `Debug` of theirs can show one.

use sentrymesh_types::PublicKey;
use tokio::sync::{mpsc, oneshot};

use crate::dataplane::change::{ChangeError, ConfigChange};
use crate::dataplane::device::DeviceCounters;
use crate::dataplane::sessions::PeerSession;
use crate::dataplane::state::{DeviceState, UapiState};

/// How many commands may wait for the run loop.
const QUEUE_LEN: usize = 16;

/// The run loop of the device has stopped; nothing will answer again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the device's run loop stopped")]
pub struct DeviceGone;

/// A cloneable handle to a running interface: its state without secrets,
/// its changes, its live peers and its counters.
#[derive(Debug, Clone)]
pub struct DeviceHandle {
    commands: mpsc::Sender<Command>,
}

/// The handle of the UAPI socket: a [`DeviceHandle`] that can also read the
/// interface's keys, to answer `get=1`.
#[derive(Debug, Clone)]
pub struct UapiHandle {
    device: DeviceHandle,
}

/// The run loop's end of the handles' channel, for
/// [`Device::run`](crate::dataplane::device::Device::run).
#[derive(Debug)]
pub(crate) struct Commands {
    receiver: mpsc::Receiver<Command>,
}

/// A request for the run loop, with where its answer goes.
#[derive(Debug)]
pub(crate) enum Command {
    /// Report the interface, without secrets.
    State(oneshot::Sender<DeviceState>),
    /// Report the interface with its keys, for the UAPI socket.
    UapiState(oneshot::Sender<UapiState>),
    /// Apply a change, all or nothing.
    Apply(ConfigChange, oneshot::Sender<Result<(), ChangeError>>),
    /// The peers with a live session.
    LivePeers(oneshot::Sender<Vec<PublicKey>>),
    /// Each peer's session.
    Sessions(oneshot::Sender<Vec<(PublicKey, PeerSession)>>),
    /// Start a handshake with each of these peers that has no session.
    Connect(Vec<PublicKey>, oneshot::Sender<()>),
    /// What the device counts, for metrics.
    Counters(oneshot::Sender<DeviceCounters>),
    /// The keys of initiations refused as from no peer, since the last ask.
    UnknownInitiators(oneshot::Sender<Vec<PublicKey>>),
}

/// The handles of a new device, and the commands they send for its run loop
/// to serve ([`Device::run`](crate::dataplane::device::Device::run)). Give
/// the [`UapiHandle`] to the UAPI socket and to nothing else.
pub(crate) fn channel() -> (DeviceHandle, UapiHandle, Commands) {
    let (commands, receiver) = mpsc::channel(QUEUE_LEN);
    let device = DeviceHandle { commands };
    let uapi = UapiHandle {
        device: device.clone(),
    };
    (device, uapi, Commands { receiver })
}

impl DeviceHandle {
    /// The interface's state, without its secrets.
    ///
    /// # Errors
    ///
    /// When the run loop has stopped.
    pub async fn state(&self) -> Result<DeviceState, DeviceGone> {
        self.request(Command::State).await
    }

    /// Applies `change` completely, or refuses it and changes nothing.
    ///
    /// # Errors
    ///
    /// What the interface refused, or [`ChangeError::DeviceGone`].
    pub async fn apply(&self, change: ConfigChange) -> Result<(), ChangeError> {
        self.request(|answer| Command::Apply(change, answer))
            .await?
    }

    /// The public keys of the peers with a live session: one whose
    /// handshake completed less than `REJECT_AFTER_TIME` (180 s) ago, by the
    /// device's monotonic clock.
    ///
    /// # Errors
    ///
    /// When the run loop has stopped.
    pub async fn live_peers(&self) -> Result<Vec<PublicKey>, DeviceGone> {
        self.request(Command::LivePeers).await
    }

    /// Each peer's session, ordered by public key: live (a handshake less
    /// than 180 s ago), expired, or never had since the peer was added, by
    /// the device's monotonic clock — the rule of
    /// [`live_peers`](Self::live_peers) and of the session log.
    ///
    /// # Errors
    ///
    /// When the run loop has stopped.
    pub async fn sessions(&self) -> Result<Vec<(PublicKey, PeerSession)>, DeviceGone> {
        self.request(Command::Sessions).await
    }

    /// Starts a handshake with each peer of `keys` that has no usable
    /// session, as a packet to it would (unless one went out less than 5 s
    /// ago), but without a packet to wait for it: a keepalive confirms the
    /// session. Keys of no peer are skipped.
    ///
    /// # Errors
    ///
    /// When the run loop has stopped.
    pub async fn connect(&self, keys: Vec<PublicKey>) -> Result<(), DeviceGone> {
        self.request(|answer| Command::Connect(keys, answer)).await
    }

    /// What the device counts, for metrics: no secret and no endpoint.
    ///
    /// # Errors
    ///
    /// When the run loop has stopped.
    pub async fn counters(&self) -> Result<DeviceCounters, DeviceGone> {
        self.request(Command::Counters).await
    }

    /// The static public keys that handshake initiations refused since the
    /// last call named, each once, at most 64
    /// ([`Engine::poll_unknown_initiator`](sentrymesh_tunnel::Engine::poll_unknown_initiator)):
    /// initiations that carried a valid `mac1` for this interface but came
    /// from a key that is no peer's. Each key is only a claim; the
    /// initiations are counted as `unknown_peer` among the dropped
    /// datagrams either way.
    ///
    /// # Errors
    ///
    /// When the run loop has stopped.
    pub async fn unknown_initiators(&self) -> Result<Vec<PublicKey>, DeviceGone> {
        self.request(Command::UnknownInitiators).await
    }

    /// Whether the run loop has stopped.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// Sends the command `make` builds around its answer's sender, and
    /// awaits the answer: the one round trip every call makes.
    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, DeviceGone> {
        let (answer, reply) = oneshot::channel();
        self.commands
            .send(make(answer))
            .await
            .map_err(|_| DeviceGone)?;
        reply.await.map_err(|_| DeviceGone)
    }
}

impl UapiHandle {
    /// The interface's state with its private and preshared keys, to answer
    /// a UAPI `get=1`. (The keys could stay in the run loop if it rendered
    /// the reply text; but the text format is the UAPI module's, not the
    /// data plane's, and the reply is written into a buffer that is zeroed
    /// after use either way.)
    ///
    /// # Errors
    ///
    /// When the run loop has stopped.
    pub async fn uapi_state(&self) -> Result<UapiState, DeviceGone> {
        self.device.request(Command::UapiState).await
    }

    /// The handle without the keys.
    pub fn device(&self) -> &DeviceHandle {
        &self.device
    }
}

impl Commands {
    /// The next command; `None` once every handle is dropped.
    pub(crate) async fn recv(&mut self) -> Option<Command> {
        self.receiver.recv().await
    }
}
