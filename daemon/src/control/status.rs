//! `sentrymesh status`: the interface as this host sees it, as one
//! document — the peers with their sessions and, for a mesh member, their
//! hosts, operators, roles and trust paths, the readiness gate, the
//! admitted operators, the cards without a session and why, and the
//! objects refused. `docs/status.md` documents every field; its `version`
//! changes only when a field changes meaning or goes.
//!
//! ```text
//!  `sentrymesh status` ──"get_status=1\n\n"──► UAPI socket ──► DeviceHandle::state, live_peers
//!                                                          └─► mesh member: MeshView (what it knows)
//!                     ◄──"status=<JSON>\nerrno=0\n\n"──── build(...) = Status
//! ```
//!
//! The mesh decides (`sentrymesh_mesh::standing`, `TrustPolicy::admissions`);
//! this module only names and arranges what it decided. Nothing secret is
//! in a status: no private or preshared key (it is built from a
//! [`DeviceState`], which holds none), and the endpoint of a hidden host
//! (producer, bios) is shown as `"hidden"`, never as its address.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sentrymesh_mesh::{
    Admission, Admissions, CardStanding, HostCard, NoPeer, NoSession, NotAdmitted, OperatorId,
    PeerSpec, TrustPath,
};
use sentrymesh_types::PublicKey;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::dataplane::handle::DeviceHandle;
use crate::dataplane::state::{DeviceState, PeerState};

/// The version of the document; see `docs/status.md`.
pub const STATUS_VERSION: u32 = 1;

/// What `endpoint` says of a hidden host.
pub const HIDDEN: &str = "hidden";

/// The whole status of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// [`STATUS_VERSION`].
    pub version: u32,
    /// The interface's name.
    pub interface: String,
    /// `wg` (configured with `wg`), `native` (`sentrymesh up` with
    /// `[[peer]]` sections) or `mesh` (a mesh member).
    pub mode: String,
    /// The UDP port the interface listens on.
    pub listen_port: u16,
    /// The peers, ascending by public key.
    pub peers: Vec<PeerStatus>,
    /// The readiness gate; `None` for `wg`.
    pub readiness: Option<Readiness>,
    /// What only a mesh member knows; `None` unless `mesh`.
    pub mesh: Option<MeshStatus>,
}

/// One WireGuard peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Its public key, base64.
    pub public_key: String,
    /// Its endpoint, `"hidden"` for a hidden host, `None` when none is
    /// known.
    pub endpoint: Option<String>,
    /// Seconds since its latest handshake; `None` if none completed.
    pub latest_handshake_secs_ago: Option<u64>,
    /// Bytes received from it.
    pub rx_bytes: u64,
    /// Bytes sent to it.
    pub tx_bytes: u64,
    /// `live` (a handshake in the last 180 s), `expired` (an older one)
    /// or `none`.
    pub session: String,
    /// The networks routed to it.
    pub allowed_ips: Vec<String>,
    /// Its host in the mesh; `None` outside a mesh.
    pub mesh: Option<PeerMesh>,
}

/// What a mesh member knows of a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerMesh {
    /// Its host name.
    pub host: String,
    /// Its operator.
    pub operator: OperatorRef,
    /// Its role.
    pub role: String,
    /// How its operator is admitted.
    pub trust: Trust,
    /// Why it has no live session; `None` when it has one.
    pub no_session: Option<Reason>,
}

/// An operator: its id, and its alias from `[operators]` if it has one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OperatorRef {
    /// The operator id, base64.
    pub id: String,
    /// Its local alias.
    pub alias: Option<String>,
}

/// An operator's trust path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trust {
    /// `local`, `direct`, `vouched`, or `none` (not admitted).
    pub path: String,
    /// The vouchers that admit it (for `vouched`).
    pub vouched_by: Vec<OperatorRef>,
}

/// The readiness gate of `[ready] min_trusted_peers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Peers with a live session.
    pub live: usize,
    /// Peers the gate waits for.
    pub required: usize,
    /// Whether `live` reaches `required`.
    pub ready: bool,
}

/// What only a mesh member knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshStatus {
    /// This host's name.
    pub host: String,
    /// This host's operator.
    pub operator: OperatorRef,
    /// This host's role.
    pub role: String,
    /// Why this host has no peers, when its own card is the reason.
    pub own_card_error: Option<String>,
    /// The admitted operators, this host's own first.
    pub admitted_operators: Vec<AdmittedOperator>,
    /// Each card this host knows and has no live session with, and why.
    pub not_connected: Vec<NotConnected>,
    /// Objects refused lately, newest last.
    pub refused: Vec<RefusedObject>,
}

/// An admitted operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmittedOperator {
    /// The operator.
    pub operator: OperatorRef,
    /// How it is admitted.
    pub trust: Trust,
    /// The overlay range its cards may use.
    pub range: String,
}

/// A card without a live session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotConnected {
    /// Its host name.
    pub host: String,
    /// Its WireGuard public key.
    pub public_key: String,
    /// Its operator.
    pub operator: OperatorRef,
    /// Its role.
    pub role: String,
    /// Why there is no session.
    pub reason: Reason,
}

/// Why a card has no session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// A word for programs: `own_card`, `revoked`, `expired`,
    /// `not_yet_valid`, `not_admitted`, `role_forbids`, `out_of_range`,
    /// `no_endpoint`, `no_answer`, `other`.
    pub kind: String,
    /// The reason in a sentence.
    pub message: String,
    /// For `not_admitted` by too few vouches: which are missing.
    pub vouches: Option<MissingVouches>,
}

/// The vouches an operator lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingVouches {
    /// The range most of its vouchers name, if any vouch stands.
    pub range: Option<String>,
    /// The vouches it needs (`vouch_threshold`).
    pub needed: usize,
    /// How many more it needs.
    pub missing: usize,
    /// The operators whose standing vouches it has.
    pub vouched_by: Vec<OperatorRef>,
    /// The operators whose vouches would count and are not there.
    pub could_vouch: Vec<OperatorRef>,
}

/// An object this host refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedObject {
    /// What it was: a host by name, or an object by id.
    pub object: String,
    /// Why it was refused.
    pub reason: String,
}

/// What a mesh member tells the status: what it knows, unformatted.
#[derive(Debug, Clone)]
pub struct MeshView {
    /// This host's card.
    pub local: HostCard,
    /// Why this host has no peers, when its own card is the reason.
    pub local_error: Option<String>,
    /// How every operator stands.
    pub admissions: Admissions,
    /// The peers the mesh gives this host.
    pub peers: Vec<PeerSpec>,
    /// Every card it knows but its own.
    pub standings: Vec<CardStanding>,
    /// Objects refused lately.
    pub refused: Vec<RefusedObject>,
    /// `[operators]`.
    pub aliases: BTreeMap<OperatorId, String>,
}

/// Where the UAPI socket finds what a status needs beyond the device.
#[derive(Debug, Clone)]
pub enum StatusSource {
    /// `sentrymesh wg`: the device is all there is.
    Wg,
    /// `sentrymesh up` with `[[peer]]` sections.
    Native {
        /// `[ready] min_trusted_peers`, as last loaded.
        min_peers: Arc<AtomicUsize>,
    },
    /// A mesh member.
    Mesh {
        /// `[ready] min_trusted_peers`, as last loaded.
        min_peers: Arc<AtomicUsize>,
        /// Where the member answers with its [`MeshView`].
        member: mpsc::Sender<oneshot::Sender<MeshView>>,
    },
}

impl StatusSource {
    /// The status of `interface`, from `device` and this source, at `now`
    /// (since the Unix epoch); `None` when the device or the mesh member
    /// has stopped.
    pub(crate) async fn status(
        &self,
        interface: &str,
        device: &DeviceHandle,
        now: Duration,
    ) -> Option<Status> {
        let state = device.state().await.ok()?;
        let live = device.live_peers().await.ok()?;
        let (mode, min_peers, view) = match self {
            Self::Wg => (Mode::Wg, None, None),
            Self::Native { min_peers } => (Mode::Native, Some(min_peers), None),
            Self::Mesh { min_peers, member } => {
                let (answer, view) = oneshot::channel();
                member.send(answer).await.ok()?;
                (Mode::Mesh, Some(min_peers), Some(view.await.ok()?))
            }
        };
        let required = min_peers.map(|min| min.load(Ordering::Relaxed));
        Some(build(
            interface,
            mode,
            &state,
            &live,
            required,
            view.as_ref(),
            now,
        ))
    }
}

/// How the interface runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `sentrymesh wg`.
    Wg,
    /// `sentrymesh up` with `[[peer]]` sections.
    Native,
    /// A mesh member.
    Mesh,
}

/// The status of `interface` running as `mode`, from the device's `state`
/// and `live` peers, the readiness gate's `required` peers and a mesh
/// member's `view`, at `now` (since the Unix epoch).
pub(crate) fn build(
    interface: &str,
    mode: Mode,
    state: &DeviceState,
    live: &[PublicKey],
    required: Option<usize>,
    view: Option<&MeshView>,
    now: Duration,
) -> Status {
    let names = Names { view };
    let peers = state
        .peers
        .iter()
        .map(|peer| {
            let spec = view.and_then(|view| {
                view.peers
                    .iter()
                    .find(|spec| spec.public_key == peer.public_key)
            });
            peer_status(peer, live.contains(&peer.public_key), spec, &names, now)
        })
        .collect();
    let live_count = state
        .peers
        .iter()
        .filter(|peer| live.contains(&peer.public_key))
        .count();
    Status {
        version: STATUS_VERSION,
        interface: interface.to_owned(),
        mode: match mode {
            Mode::Wg => "wg",
            Mode::Native => "native",
            Mode::Mesh => "mesh",
        }
        .to_owned(),
        listen_port: state.listen_port,
        peers,
        readiness: required.map(|required| Readiness {
            live: live_count,
            required,
            ready: live_count >= required,
        }),
        mesh: view.map(|view| mesh_status(view, state, live, &names)),
    }
}

/// One peer's line.
fn peer_status(
    peer: &PeerState,
    live: bool,
    spec: Option<&PeerSpec>,
    names: &Names<'_>,
    now: Duration,
) -> PeerStatus {
    let hidden = spec.is_some_and(|spec| spec.role.is_hidden());
    let endpoint = if hidden {
        Some(HIDDEN.to_owned())
    } else {
        peer.endpoint.map(|endpoint| endpoint.to_string())
    };
    let age = peer
        .last_handshake
        .map(|at| now.saturating_sub(at).as_secs());
    let session = match (live, peer.last_handshake) {
        (true, _) => "live",
        // Older than the session lifetime, or retired by the device's
        // monotonic clock while the wall clock says it is recent.
        (false, Some(_)) => "expired",
        (false, None) => "none",
    };
    PeerStatus {
        public_key: peer.public_key.to_string(),
        endpoint,
        latest_handshake_secs_ago: age,
        rx_bytes: peer.rx_bytes,
        tx_bytes: peer.tx_bytes,
        session: session.to_owned(),
        allowed_ips: peer.allowed_ips.iter().map(ToString::to_string).collect(),
        mesh: spec.map(|spec| PeerMesh {
            host: spec.name.clone(),
            operator: names.operator(&spec.operator),
            role: spec.role.to_string(),
            trust: names.trust(&spec.operator),
            no_session: sentrymesh_mesh::standing::why_no_session(spec, live)
                .map(no_session_reason),
        }),
    }
}

/// The mesh part.
fn mesh_status(
    view: &MeshView,
    state: &DeviceState,
    live: &[PublicKey],
    names: &Names<'_>,
) -> MeshStatus {
    let own = view.local.operator;
    let mut admitted: Vec<AdmittedOperator> = view
        .admissions
        .ranges()
        .iter()
        .map(|(operator, range)| AdmittedOperator {
            operator: names.operator(operator),
            trust: names.trust(operator),
            range: range.to_string(),
        })
        .collect();
    admitted.sort_by_key(|entry| (entry.operator.id != own.to_string(), entry.operator.clone()));
    let configured: Vec<&PublicKey> = state.peers.iter().map(|peer| &peer.public_key).collect();
    let not_connected = view
        .standings
        .iter()
        .filter_map(|standing| {
            let card = &standing.card;
            let reason = match &standing.no_peer {
                Some(why) => no_peer_reason(why, names),
                None => {
                    let spec = view
                        .peers
                        .iter()
                        .find(|spec| spec.public_key == card.wg_public_key)?;
                    let live = live.contains(&card.wg_public_key)
                        && configured.contains(&&card.wg_public_key);
                    no_session_reason(sentrymesh_mesh::standing::why_no_session(spec, live)?)
                }
            };
            Some(NotConnected {
                host: card.name.clone(),
                public_key: card.wg_public_key.to_string(),
                operator: names.operator(&card.operator),
                role: card.role.to_string(),
                reason,
            })
        })
        .collect();
    MeshStatus {
        host: view.local.name.clone(),
        operator: names.operator(&own),
        role: view.local.role.to_string(),
        own_card_error: view.local_error.clone(),
        admitted_operators: admitted,
        not_connected,
        refused: view.refused.clone(),
    }
}

fn no_session_reason(why: NoSession) -> Reason {
    let kind = match why {
        NoSession::NoEndpoint => "no_endpoint",
        NoSession::NoAnswer => "no_answer",
        _ => "other",
    };
    Reason {
        kind: kind.to_owned(),
        message: why.to_string(),
        vouches: None,
    }
}

fn no_peer_reason(why: &NoPeer, names: &Names<'_>) -> Reason {
    let kind = match why {
        NoPeer::LocalCard(_) => "own_card",
        NoPeer::Revoked => "revoked",
        NoPeer::Time(sentrymesh_mesh::CardTimeError::Expired { .. }) => "expired",
        NoPeer::Time(_) => "not_yet_valid",
        NoPeer::NotAdmitted { .. } => "not_admitted",
        NoPeer::RoleForbids => "role_forbids",
        NoPeer::OutOfRange(_) => "out_of_range",
        _ => "other",
    };
    let vouches = match why {
        NoPeer::NotAdmitted {
            reason:
                NotAdmitted::MissingVouches {
                    range,
                    vouched_by,
                    threshold,
                    missing,
                    could_vouch,
                },
            ..
        } => Some(MissingVouches {
            range: range.map(|range| range.to_string()),
            needed: *threshold,
            missing: *missing,
            vouched_by: vouched_by.iter().map(|id| names.operator(id)).collect(),
            could_vouch: could_vouch.iter().map(|id| names.operator(id)).collect(),
        }),
        _ => None,
    };
    Reason {
        kind: kind.to_owned(),
        message: why.to_string(),
        vouches,
    }
}

/// Operators as the status names them: with their aliases and trust.
struct Names<'a> {
    view: Option<&'a MeshView>,
}

impl Names<'_> {
    fn operator(&self, id: &OperatorId) -> OperatorRef {
        OperatorRef {
            id: id.to_string(),
            alias: self.view.and_then(|view| view.aliases.get(id)).cloned(),
        }
    }

    fn trust(&self, id: &OperatorId) -> Trust {
        let admission = self.view.map(|view| view.admissions.of(id));
        let (path, by) = match admission {
            Some(Admission::Admitted {
                path: TrustPath::Local,
                ..
            }) => ("local", Vec::new()),
            Some(Admission::Admitted {
                path: TrustPath::Direct,
                ..
            }) => ("direct", Vec::new()),
            Some(Admission::Admitted {
                path: TrustPath::Vouched { by },
                ..
            }) => ("vouched", by.iter().map(|id| self.operator(id)).collect()),
            _ => ("none", Vec::new()),
        };
        Trust {
            path: path.to_owned(),
            vouched_by: by,
        }
    }
}

#[cfg(test)]
mod tests;
