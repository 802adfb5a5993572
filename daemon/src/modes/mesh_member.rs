//! The mesh member of `sentrymesh up`: drives a [`Mesh`] (the sans-IO
//! store, gossip and peer manager of `sentrymesh-mesh`) with the network,
//! the clock and the state directory, and turns its peer events into the
//! interface's peers and routes.
//!
//! ```text
//!   peers' gossip (overlay, through the tunnel) --> gossip socket --+
//!   new hosts' cards (underlay, public roles)  --> introductions --+--> Mesh
//!   reloads (SIGHUP)                            --------------------+     |
//!                                                                         v
//!   interface <-- DeviceHandle::apply (peers)    <-- PeerEvent  <--------+
//!   routes    <-- Routes (missing added, stale removed)                   |
//!   state dir <-- the store, written atomically (its own thread, at most --+
//!                 once a second, and when the member stops)
//! ```
//!
//! Routes: each peer's allowed IPs are routed into the interface, and they
//! all lie inside the mesh overlay (`[trust] overlay`): the mesh confines
//! each card to its operator's range, so nothing outside the overlay is
//! routed in. The rest of the overlay is made unreachable (an unreachable
//! route, added and removed by the same `Routes` service): a packet for an overlay address no peer holds (a
//! revoked host, another operator's hidden host, one not yet known) is
//! refused at once with "no route to host", instead of leaving by the
//! default route in the clear with an overlay address on the underlay. (A
//! single route of the whole overlay into the interface would do the same,
//! but every such packet would wait for a reply that never comes.) The
//! underlay must lie outside the overlay: a card whose endpoint lies inside
//! is refused, and an endpoint name resolving inside is not used (each
//! address checked as sent to: `::ffff:a.b.c.d` as `a.b.c.d`). Names are
//! resolved off the run loop, with a timeout and few at once (`mesh_member/resolver.rs`):
//! a name server that never answers holds up nothing.
//!
//! Gossip between peers travels through the tunnel, on the overlay
//! addresses their cards give: the gossip socket is bound to the TUN device,
//! so what it hears came through a session, from a source address the
//! sending peer is allowed to use. A message is attributed to the peer whose
//! card holds that address.
//!
//! A new public host introduces itself: until it has a session with a peer
//! it may share its card with, it sends the card, sealed to that peer's
//! WireGuard key, to the peer's underlay address on the introduction port
//! (`mesh_member/introductions.rs`). A public host (sentry, full) that hears one there
//! opens it, drops a sender whose operator it does not admit before checking
//! any signature, checks the card like any gossip, and the mesh spreads it.
//! Under load it answers an introduction that proves no source address with
//! a cookie reply instead; the introducer hears it on the socket its
//! introductions leave from and sends again at once with the cookie's MAC.
//! Hidden hosts (producer, bios) open no introduction socket and send no
//! introduction: on the underlay they send WireGuard messages only (no DNS
//! query either: they use only their sentries' IP endpoints), and
//! reach their own sentries because both sides know each other's cards from
//! the operator's known directory or bundle.

mod introductions;
mod known;
mod links;
mod peer_changes;
mod peer_records;
mod resolver;
mod sessions;
mod snapshot;
mod state_file;
mod status_view;
mod trust_log;
mod unadmitted;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
pub use introductions::IntroductionCounters;
use introductions::{
    Introductions, bind_introduction_port, introduction_socket, recv_from, send_from,
};
use peer_changes::{Change, RefusedPeers};
use peer_records::PeerRecords;
use resolver::{LOOKUP_TIMEOUT, Resolved, Resolver, SystemLookup};
use sentrymesh_mesh::{
    EndpointHost, GossipStats, Mesh, Object, OperatorId, Overlay, PeerEvent, PeerSpec, Received,
    SignedCard, SignedRevocation, TrustPolicy, may_share,
};
use sentrymesh_types::{IpNet, PrivateKey, PublicKey, UnixTime};
use sessions::SessionBook;
pub use snapshot::read_mesh;
use state_file::StateWriter;
use status_view::RecentRefusals;
pub use status_view::Requests;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use trust_log::TrustLog;
use unadmitted::{Heard, UnadmittedLog};

use crate::config::{Config, MeshSettings};
use crate::dataplane::change::{AllowedIpChange, PeerChange, PeerUpdate};
use crate::dataplane::firewall::{From, Local, PeerClass, PeerPolicy};
use crate::dataplane::handle::DeviceHandle;
use crate::modes::routes::Routes;
use crate::sys::sockopt;

/// How often a host without a session to a peer introduces itself again.
const INTRODUCTION_INTERVAL: Duration = Duration::from_secs(5);
/// The longest the member sleeps before it reads the wall clock again.
const MAX_TIMER_WAIT: Duration = Duration::from_secs(1);
/// The largest card file read.
const MAX_CARD_FILE_LEN: u64 = 64 * 1024;
/// Room for the largest gossip message.
const RECEIVE_BUFFER_LEN: usize = 64 * 1024;

/// A reload for a running member: its inputs, and where it answers whether
/// it applied them (all of them) or refused them (all of them).
pub type MeshReload = (MeshInputs, oneshot::Sender<Result<()>>);

/// What the config and the files it names give the mesh: read and checked
/// before anything changes, at start and at each reload.
pub struct MeshInputs {
    card: SignedCard,
    /// The interface's WireGuard private key, which opens introductions (a
    /// reload cannot change it: the card names it).
    wg_secret: PrivateKey,
    policy: TrustPolicy,
    known: Vec<Object>,
    settings: MeshSettings,
}

impl MeshInputs {
    /// Reads this host's card and the known directory of `config`'s mesh,
    /// and checks that the card is this interface's: its WireGuard key, and
    /// each of its addresses on the interface.
    ///
    /// # Errors
    ///
    /// When `config` has no mesh, a file cannot be read or does not verify,
    /// or the card does not fit the interface.
    pub fn read(config: &Config) -> Result<Self> {
        let settings = config
            .mesh
            .clone()
            .ok_or_else(|| anyhow!("the config has no [mesh] section"))?;
        let card = read_card(&settings.card_file)?;
        let own_key = config.interface.private_key.public_key();
        if card.card().wg_public_key.as_bytes() != own_key.as_bytes() {
            bail!(
                "{} is the card of WireGuard key {}, but this interface's private key is for {own_key}",
                settings.card_file.display(),
                card.card().wg_public_key,
            );
        }
        for address in &card.card().addresses {
            if !config
                .interface
                .addresses
                .iter()
                .any(|own| own.addr() == address.addr())
            {
                bail!(
                    "the card's address {address} is not an address of the interface: add it to \
                     [interface] addresses"
                );
            }
        }
        let own = card.card().operator;
        let rules = settings.firewall.inbound.iter();
        let mut rules = rules.chain(settings.firewall.outbound.iter().flatten());
        if rules.any(|rule| rule.from() == From::Operator(own)) {
            bail!(
                "a [firewall] rule names this host's own operator {own} by its id, which matches \
                 only other operators' hosts: write from = \"own\" (with open_to_own = false)"
            );
        }
        if settings.trusted_operators.contains_key(&own) {
            bail!(
                "[trust] operators lists this host's own operator {own}: remove it; its range is \
                 own_overlay"
            );
        }
        let ranges = settings
            .trusted_operators
            .iter()
            .map(|(&id, &range)| (id, range))
            .chain([(own, settings.own_overlay)]);
        let overlay = Overlay::new(settings.overlay, ranges).context("[trust]")?;
        let policy = TrustPolicy::new(
            own,
            settings.trusted_operators.keys().copied(),
            settings.vouch_threshold,
            overlay,
        )
        .context("[trust]")?;
        let known = match &settings.known_dir {
            Some(dir) => known::read(dir)?,
            None => Vec::new(),
        };
        Ok(Self {
            card,
            wg_secret: config.interface.private_key.clone(),
            policy,
            known,
            settings,
        })
    }
}

/// How the log names a host: its card's host name and its operator's id in
/// short form, e.g. `b-sentry-1 of operator 11qYAYKx`.
fn host_label(name: &str, operator: &OperatorId) -> String {
    format!("{name} of operator {}", operator.short())
}

/// Reads and verifies a card file.
fn read_card(path: &std::path::Path) -> Result<SignedCard> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading the card {}", path.display()))?
        .len();
    if len > MAX_CARD_FILE_LEN {
        bail!("{} is too large for a card", path.display());
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the card {}", path.display()))?;
    SignedCard::from_text(&text).with_context(|| format!("the card {} is refused", path.display()))
}

/// The wall-clock time, the mesh's clock.
fn unix_seconds() -> UnixTime {
    UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs()),
    )
}

/// What a mesh member counts, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeshCounters {
    /// The peers its roles and trust give it.
    pub peers: usize,
    /// The operators it admits, its own included.
    pub admitted_operators: usize,
    /// Cards in its store.
    pub cards: usize,
    /// Vouches in its store.
    pub vouches: usize,
    /// Revocations in its store.
    pub revocations: usize,
    /// Cards refused for claiming what their operator's overlay range does
    /// not hold, each counted once.
    pub cards_out_of_range: u64,
    /// What gossip did.
    pub gossip: GossipStats,
    /// What introductions did.
    pub introductions: IntroductionCounters,
    /// Peer changes the interface refused and the member skipped.
    pub peers_refused: u64,
    /// Gossip messages not sent, to peers that have never had a session (a
    /// handshake was started instead; see `mesh_member/sessions.rs`).
    pub gossip_no_session: u64,
}

/// A running member: the mesh and what the daemon keeps beside it. When it
/// is dropped, the last state is written.
pub struct MeshMember {
    mesh: Mesh,
    settings: MeshSettings,
    /// The objects of the known directory, offered again whenever more
    /// operators are admitted: gossip keeps nothing of an operator not
    /// admitted, so a card opened from its bundle waits here.
    known: Vec<Object>,
    /// The operators admitted when the known objects were last offered.
    known_offered_to: BTreeSet<OperatorId>,
    /// Writes the store to the state directory.
    state: StateWriter,
    /// The introduction port, bound at the start (public hosts only), so
    /// a port in use refuses the start before anything changed.
    introduction_port: Option<std::net::UdpSocket>,
    /// What the member keeps of each peer the mesh gave it, removed with
    /// it.
    peer_records: PeerRecords,
    /// Introductions heard, and this host's own sealed.
    introductions: Introductions,
    /// The peers the interface refused.
    refused_peers: RefusedPeers,
    /// Peers' endpoint names, resolved off the run loop.
    resolver: Resolver,
    /// The admissions and revocations logged so far.
    trust_log: TrustLog,
    /// The objects refused lately, for `sentrymesh status`.
    refused: RecentRefusals,
    /// The operators whose introductions were logged as not admitted.
    unadmitted: UnadmittedLog,
    /// The peers' sessions, as the device last told them.
    sessions: SessionBook,
    /// See [`MeshCounters::gossip_no_session`].
    gossip_no_session: u64,
}

impl MeshMember {
    /// Starts the member from `inputs` and the state directory.
    ///
    /// # Errors
    ///
    /// When the state cannot be read or does not verify, or the mesh refuses
    /// this host's card (expired, revoked, another operator's key).
    pub fn start(inputs: MeshInputs) -> Result<Self> {
        let now = unix_seconds();
        let (store, state_lock) = state_file::load(&inputs.settings.state_dir)?;
        let mut mesh = Mesh::new(inputs.card, inputs.policy, store, now)?;
        links::seed(&mut mesh);
        let known = known::sort(inputs.known);
        known::insert(&mut mesh, &known, now);
        let introduction_port = if mesh.local_card().card().role.is_hidden() {
            None
        } else {
            Some(bind_introduction_port(inputs.settings.introduction_port)?)
        };
        Ok(Self {
            introduction_port,
            known_offered_to: mesh.admitted_operators().clone(),
            mesh,
            settings: inputs.settings,
            known,
            state: StateWriter::spawn(state_lock)?,
            peer_records: PeerRecords::new(),
            introductions: Introductions::new(&inputs.wg_secret.to_bytes(), now),
            refused_peers: RefusedPeers::default(),
            resolver: Resolver::new(Arc::new(SystemLookup), LOOKUP_TIMEOUT),
            trust_log: TrustLog::default(),
            refused: RecentRefusals::default(),
            unadmitted: UnadmittedLog::default(),
            sessions: SessionBook::default(),
            gossip_no_session: 0,
        })
    }

    /// Checks `inputs` as [`start`](Self::start) takes them, changing
    /// nothing on the system (`sentrymesh check`): the state directory is
    /// read, not taken, and no port is bound. Known objects the mesh does
    /// not use are logged, as at a start.
    ///
    /// # Errors
    ///
    /// When the state does not verify, or the mesh refuses this host's card
    /// (expired, revoked, another operator's key, out of its range).
    pub fn check(inputs: MeshInputs) -> Result<()> {
        let now = unix_seconds();
        let store = state_file::inspect(&inputs.settings.state_dir)?;
        let mut mesh = Mesh::new(inputs.card, inputs.policy, store, now).with_context(|| {
            format!(
                "the mesh refuses this host's card {}",
                inputs.settings.card_file.display()
            )
        })?;
        known::insert(&mut mesh, &known::sort(inputs.known), now);
        Ok(())
    }

    /// Runs the member on interface `ifname` until `reloads` closes:
    /// configures peers through `device`, routes them through the
    /// interface, applies the inputs of each reload from `reloads`, and
    /// answers each request for its counters or its view from `requests`. The routes
    /// it added go when it stops, however it stops.
    ///
    /// # Errors
    ///
    /// When a socket cannot be opened, or the device's run loop stopped.
    pub async fn run(
        mut self,
        ifname: &str,
        device: DeviceHandle,
        mut reloads: mpsc::Receiver<MeshReload>,
        requests: Requests,
    ) -> Result<()> {
        let Requests {
            mut counters,
            mut views,
        } = requests;
        let mut routes =
            Routes::of_interface(ifname).with_context(|| format!("finding interface {ifname}"))?;
        make_unreachable(&mut routes, self.settings.overlay);
        let local = self.local_address()?;
        let gossip = gossip_socket(ifname, SocketAddr::new(local, self.settings.gossip_port))?;
        let introductions = self
            .introduction_port
            .take()
            .map(introduction_socket)
            .transpose()?;
        // Where this host's introductions leave from: any port, any address.
        let introducer = match UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).await {
            Ok(socket) => socket,
            Err(_) => UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
                .await
                .context("binding the socket introductions leave from")?,
        };
        let mut buf = vec![0u8; RECEIVE_BUFFER_LEN];
        let mut introduction_buf = vec![0u8; RECEIVE_BUFFER_LEN];
        let mut reply_buf = vec![0u8; RECEIVE_BUFFER_LEN];
        let mut introduce = tokio::time::interval(INTRODUCTION_INTERVAL);
        // A round that overran (many peers without a session, a slow
        // machine) is not followed by the missed ones at once.
        introduce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.apply_events(&device, &mut routes).await?;
            self.log_trust_changes();
            self.send_gossip(&gossip, &device).await?;
            while let Some(refusal) = self.mesh.poll_refusal() {
                tracing::debug!("gossip refused object {}: {}", refusal.id, refusal.error);
                self.refused.object(&refusal);
            }
            // Once per card; the text names host, operator and the range,
            // never the prefix at fault (a hidden host's address).
            while let Some(refusal) = self.mesh.poll_card_refusal() {
                tracing::warn!("{refusal}");
                self.refused.card(&refusal);
            }
            self.offer_known();
            let write_at =
                self.state
                    .poll(&self.settings.state_dir, self.mesh.store(), Instant::now());
            let write_due = async {
                match write_at {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let deadline = self.mesh.poll_timeout();
            let timer = async {
                match deadline {
                    Some(at) => {
                        // Wall-clock time, which may step: look again at
                        // least every second.
                        let wait = Duration::from_secs(at.secs_since(unix_seconds()));
                        tokio::time::sleep(wait.min(MAX_TIMER_WAIT)).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = gossip.recv_from(&mut buf) => match received {
                    Ok((len, from)) => self.handle_gossip(from.ip(), &buf[..len]),
                    Err(error) => tracing::debug!("receiving gossip: {error}"),
                },
                received = recv_from(introductions.as_ref(), &mut introduction_buf) => match received {
                    Ok((len, from)) => {
                        if let Some(reply) = self.handle_introduction(from, &introduction_buf[..len]) {
                            send_from(introductions.as_ref(), &reply, from).await;
                        }
                    }
                    Err(error) => tracing::debug!("receiving an introduction: {error}"),
                },
                received = recv_from(Some(&introducer), &mut reply_buf) => match received {
                    Ok((len, from)) => {
                        self.handle_cookie_reply(&introducer, from, &reply_buf[..len]).await;
                    }
                    Err(error) => tracing::debug!("receiving a cookie reply: {error}"),
                },
                () = timer => {
                    if deadline.is_some_and(|at| at <= unix_seconds()) {
                        self.mesh.handle_timeout(unix_seconds());
                    }
                }
                _ = introduce.tick() => {
                    self.introduce_self(&introducer, &device).await?;
                    self.log_unknown_initiators(&device).await?;
                    self.sessions.look(&device, Instant::now()).await?;
                    links::note_sessions(&mut self.mesh, &self.sessions);
                }
                reload = reloads.recv() => match reload {
                    Some((inputs, answer)) => {
                        let result = self.reload(inputs);
                        if result.is_ok() {
                            self.push_policies(&device).await?;
                        }
                        make_unreachable(&mut routes, self.settings.overlay);
                        let _ = answer.send(result);
                    }
                    None => return Ok(()),
                },
                resolved = self.resolver.next() => self.apply_resolved(resolved, &device).await?,
                Some(answer) = counters.recv() => {
                    let _ = answer.send(self.counters());
                }
                Some(answer) = views.recv() => {
                    let _ = answer.send(self.view());
                }
                () = write_due => {}
            }
        }
    }

    fn counters(&self) -> MeshCounters {
        let store = self.mesh.store();
        MeshCounters {
            peers: self.mesh.peers().count(),
            admitted_operators: self.mesh.admitted_operators().len(),
            cards: store.cards().count(),
            vouches: store.vouches().count(),
            revocations: store.revocations().count(),
            cards_out_of_range: self.mesh.cards_refused(),
            gossip: self.mesh.stats(),
            introductions: self.introductions.counters(),
            peers_refused: self.refused_peers.total(),
            gossip_no_session: self.gossip_no_session,
        }
    }

    /// Logs each operator admitted or no longer admitted, and each
    /// revocation learnt, since the last call (see [`TrustLog`]).
    fn log_trust_changes(&mut self) {
        let store = self.mesh.store();
        let changes =
            self.trust_log
                .observe(self.mesh.admitted_operators(), store.generation(), || {
                    store.revocations().map(SignedRevocation::revocation)
                });
        let own_key = self.mesh.local_card().card().wg_public_key;
        for change in changes {
            if change.revokes_host(&own_key) {
                tracing::error!(
                    "{change}: that is this host, so its peers drop it; give it a new key and \
                     card (docs/launch.md, \"Rotating a host's key\")"
                );
            } else {
                tracing::info!("{change}");
            }
        }
    }

    /// This host's overlay address: its card's first.
    fn local_address(&self) -> Result<IpAddr> {
        self.mesh
            .local_card()
            .card()
            .addresses
            .first()
            .map(|address| address.addr())
            .ok_or_else(|| anyhow!("this host's card has no address"))
    }

    /// Applies the peer manager's changes: peers to the device (their
    /// sessions go with them), then the routes of the peers it took. A peer
    /// the interface refuses is skipped, logged and counted (see
    /// [`peer_changes`]), and has no routes.
    async fn apply_events(&mut self, device: &DeviceHandle, routes: &mut Routes) -> Result<()> {
        let mut changes = Vec::new();
        while let Some(event) = self.mesh.poll_event() {
            match event {
                PeerEvent::Added(spec) | PeerEvent::Changed(spec) => {
                    tracing::info!(
                        "mesh peer {} ({}, key {})",
                        host_label(&spec.name, &spec.operator),
                        spec.role,
                        spec.public_key
                    );
                    self.peer_records.insert(
                        spec.public_key,
                        spec.name.clone(),
                        spec.operator,
                        routes_of(&spec).into_boxed_slice(),
                    );
                    let endpoint = self.endpoint_of(&spec);
                    let policy = self.policy_of(&spec);
                    changes.push(Change {
                        change: peer_change(&spec, endpoint, policy),
                        host: Some((spec.name.clone(), spec.operator)),
                    });
                }
                PeerEvent::Removed(key) => {
                    match self.peer_records.remove(&key) {
                        Some(record) => tracing::info!(
                            "mesh peer {} (key {key}) removed, with its sessions",
                            host_label(&record.name, &record.operator)
                        ),
                        None => tracing::info!("mesh peer {key} removed, with its sessions"),
                    }
                    self.introductions.forget(&key);
                    changes.push(Change {
                        change: PeerChange::Remove(key),
                        host: None,
                    });
                }
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        // A peer the interface refused has no routes.
        for key in self.refused_peers.apply(device, changes).await? {
            self.peer_records.clear_routes(&key);
        }
        // Only the networks these changes touched: O(change), not a
        // comparison of every peer's routes. A route the kernel refuses
        // stops no other (and no member): it is tried again with the next
        // change.
        let touched = self.peer_records.take_touched();
        let records = &self.peer_records;
        for refused in routes.update(touched, |net| records.is_routed(net)) {
            tracing::warn!("{:#}", anyhow::Error::new(refused));
        }
        Ok(())
    }

    /// What the firewall lets `spec` open to this host and this host to it:
    /// the rules of `[firewall]` for its card's operator, role and chain
    /// p2p port.
    fn policy_of(&self, spec: &PeerSpec) -> PeerPolicy {
        let own = self.mesh.local_card().card();
        let local = Local {
            operator: own.operator,
            chain_p2p_port: own.chain_p2p.as_ref().map(|chain| chain.port),
            gossip_port: self.settings.gossip_port,
        };
        let chain_p2p_port = self
            .mesh
            .store()
            .card(&spec.public_key)
            .and_then(|card| card.card().chain_p2p.as_ref().map(|chain| chain.port));
        let class = PeerClass {
            operator: spec.operator,
            role: spec.role,
            chain_p2p_port,
        };
        self.settings.firewall.policy(&local, &class)
    }

    /// Gives every peer its policy again, after a reload: the rules, this
    /// host's card or the gossip port may have changed. Sessions stay, and
    /// so do the flows the new policies still allow.
    async fn push_policies(&mut self, device: &DeviceHandle) -> Result<()> {
        let specs: Vec<PeerSpec> = self.mesh.peers().cloned().collect();
        let changes = specs
            .iter()
            .map(|spec| Change {
                change: PeerChange::Set(PeerUpdate {
                    update_only: true,
                    policy: Some(self.policy_of(spec)),
                    ..PeerUpdate::new(spec.public_key)
                }),
                host: Some((spec.name.clone(), spec.operator)),
            })
            .collect();
        self.refused_peers.apply(device, changes).await?;
        Ok(())
    }

    /// The address to give the interface for `spec`'s endpoint, or `None`
    /// for now: never waits for a name to resolve, and a hidden host
    /// resolves none (see [`resolver`]).
    fn endpoint_of(&mut self, spec: &PeerSpec) -> Option<SocketAddr> {
        let hidden = self.mesh.local_card().card().role.is_hidden();
        self.resolver.endpoint(
            spec.endpoint.as_ref()?,
            &spec.name,
            self.settings.overlay,
            hidden,
            Instant::now(),
        )
    }

    /// Keeps a lookup's outcome, and sets the endpoint of each peer whose
    /// card gives that name and that it resolves for.
    async fn apply_resolved(&mut self, resolved: Resolved, device: &DeviceHandle) -> Result<()> {
        let name = resolved.name().to_owned();
        self.resolver.complete(resolved, Instant::now());
        let named: Vec<PeerSpec> = self
            .mesh
            .peers()
            .filter(|spec| {
                matches!(&spec.endpoint, Some(endpoint)
                    if matches!(&endpoint.host, EndpointHost::Name(host) if *host == name))
            })
            .cloned()
            .collect();
        let mut changes = Vec::new();
        for spec in named {
            let Some(endpoint) = self.endpoint_of(&spec) else {
                continue;
            };
            changes.push(Change {
                change: PeerChange::Set(PeerUpdate {
                    endpoint: Some(endpoint),
                    // Removed meanwhile: not brought back.
                    update_only: true,
                    ..PeerUpdate::new(spec.public_key)
                }),
                host: Some((spec.name.clone(), spec.operator)),
            });
        }
        // A peer the interface refuses here is one it refused when it was
        // added, whose routes went then.
        self.refused_peers.apply(device, changes).await?;
        Ok(())
    }

    /// Sends what gossip queued, each message to its peer's overlay address;
    /// a message to a peer that has never had a session is dropped and
    /// counted, and a handshake with the peer started instead (see
    /// [`sessions`]).
    async fn send_gossip(&mut self, socket: &UdpSocket, device: &DeviceHandle) -> Result<()> {
        let mut looked = false;
        let mut connect = BTreeSet::new();
        while let Some((key, message)) = self.mesh.poll_transmit() {
            if !looked {
                self.sessions.look(device, Instant::now()).await?;
                looked = true;
            }
            if !self.sessions.has_had_session(&key) {
                self.gossip_no_session += 1;
                connect.insert(key);
                continue;
            }
            let Some(address) = self
                .mesh
                .peer(&key)
                .and_then(|spec| spec.addresses.first())
                .map(|address| address.addr())
            else {
                continue;
            };
            let to = SocketAddr::new(address, self.settings.gossip_port);
            if let Err(error) = socket.send_to(&message, to).await {
                tracing::debug!("sending gossip to {to}: {error}");
            }
        }
        if !connect.is_empty() {
            device.connect(connect.into_iter().collect()).await?;
        }
        Ok(())
    }

    /// A gossip message heard through the tunnel from `source`: from the
    /// peer the source is routed to (longest prefix first), the one whose
    /// session the device let it through.
    fn handle_gossip(&mut self, source: IpAddr, message: &[u8]) {
        let Some(from) = self.peer_records.sender_of(source) else {
            tracing::debug!("gossip from {source}, which is no peer's address");
            return;
        };
        if let Err(error) = self.mesh.handle_message(from, message, unix_seconds()) {
            tracing::debug!("gossip from {from} dropped: {error}");
        }
    }

    /// An introduction heard on the introduction port from `source`: its
    /// card is taken when it opens, is fresh, its operator is admitted and
    /// it verifies. Returns the cookie reply to send back to `source`, when
    /// the receiver is under load and the introduction proved no source.
    fn handle_introduction(&mut self, source: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
        let now = unix_seconds();
        let admitted = self.mesh.admitted_operators();
        let heard = self
            .introductions
            .handle(source, bytes, admitted, Instant::now(), now);
        let not_admitted = self.introductions.take_not_admitted();
        if !not_admitted.is_empty() {
            let admissions = self.mesh.admissions();
            for operator in not_admitted {
                if let Some(line) = self.unadmitted.line(
                    Heard::Introduction,
                    operator,
                    &admissions,
                    &self.settings.aliases,
                ) {
                    tracing::warn!("{line}");
                }
            }
        }
        let card = match heard? {
            Received::Card(card) => card,
            Received::CookieReply(reply) => return Some(reply),
        };
        let name = host_label(&card.card().name, &card.card().operator);
        let source = source.ip();
        match self.mesh.insert(card, now) {
            Ok(inserted) if inserted.changed() => {
                tracing::info!("host {name} introduced itself from {source}");
            }
            Ok(_) => {}
            Err(error) => tracing::debug!("the card of {name} from {source} is refused: {error}"),
        }
        None
    }

    /// A datagram heard on `socket`, where this host's introductions leave
    /// from, from `from`: when it is a cookie reply answering the last
    /// introduction sent there, the introduction is sealed again with the
    /// cookie's MAC and sent at once.
    async fn handle_cookie_reply(&mut self, socket: &UdpSocket, from: SocketAddr, bytes: &[u8]) {
        let now = unix_seconds();
        let Some(recipient) = self.introductions.handle_cookie_reply(from, bytes, now) else {
            return;
        };
        let card = self.mesh.local_card().clone();
        if let Some(sealed) = self.introductions.seal(&card, &recipient, from, now) {
            send_from(Some(socket), &sealed, from).await;
        }
    }

    /// Sends this host's card from `socket`, sealed to each peer it may
    /// share it with and has no live session to, to the peer's underlay
    /// address. A hidden host sends nothing.
    async fn introduce_self(&mut self, socket: &UdpSocket, device: &DeviceHandle) -> Result<()> {
        if self.mesh.local_card().card().role.is_hidden() {
            return Ok(());
        }
        let live = device.live_peers().await?;
        let local = self.mesh.local_card();
        let admitted = self.mesh.admitted_operators();
        let targets: Vec<(PublicKey, IpAddr)> = self
            .mesh
            .peers()
            .filter(|spec| !live.contains(&spec.public_key))
            .filter(|spec| may_share(local.card(), &spec.operator, admitted))
            .filter_map(|spec| match &spec.endpoint.as_ref()?.host {
                EndpointHost::Ip(ip) => Some((spec.public_key, ip.to_canonical())),
                EndpointHost::Name(_) => None,
            })
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        let card = local.clone();
        let now = unix_seconds();
        for (key, ip) in targets {
            let destination = SocketAddr::new(ip, self.settings.introduction_port);
            let Some(sealed) = self.introductions.seal(&card, &key, destination, now) else {
                continue;
            };
            send_from(Some(socket), &sealed, destination).await;
        }
        Ok(())
    }

    /// Logs, once per operator, the handshake initiations the interface
    /// refused since the last look whose key is on a card of an operator
    /// this host does not admit (`mesh_member/unadmitted.rs`).
    async fn log_unknown_initiators(&mut self, device: &DeviceHandle) -> Result<()> {
        let keys = device.unknown_initiators().await?;
        if keys.is_empty() {
            return Ok(());
        }
        let admissions = self.mesh.admissions();
        for key in keys {
            let Some(card) = unadmitted::card_of(&key, self.mesh.store(), &self.known) else {
                continue;
            };
            let heard = Heard::Handshake { host: &card.name };
            if let Some(line) =
                self.unadmitted
                    .line(heard, card.operator, &admissions, &self.settings.aliases)
            {
                tracing::warn!("{line}");
            }
        }
        Ok(())
    }

    /// Applies a reload's inputs: the trust policy, this host's card, the
    /// known objects; or, when the mesh refuses the policy or the card,
    /// none of them.
    fn reload(&mut self, inputs: MeshInputs) -> Result<()> {
        let now = unix_seconds();
        // Together, so a new own_overlay and a card in it are one change.
        self.mesh
            .reconfigure(inputs.policy, inputs.card, now)
            .context("the reloaded [trust] and card are refused")?;
        self.known = known::sort(inputs.known);
        known::insert(&mut self.mesh, &self.known, now);
        self.known_offered_to = self.mesh.admitted_operators().clone();
        self.settings = inputs.settings;
        Ok(())
    }

    /// Offers the known objects again when more operators are admitted than
    /// when they were last offered.
    fn offer_known(&mut self) {
        let admitted = self.mesh.admitted_operators();
        if admitted.is_subset(&self.known_offered_to) {
            return;
        }
        self.known_offered_to = admitted.clone();
        known::insert(&mut self.mesh, &self.known, unix_seconds());
    }
}

impl Drop for MeshMember {
    fn drop(&mut self) {
        self.state
            .close(&self.settings.state_dir, self.mesh.store());
    }
}

/// Makes the mesh overlay unreachable (see the module docs), in place of
/// the overlay before; a route of the whole overlay already there (another
/// member's, or the operator's) is kept, and left alone.
fn make_unreachable(routes: &mut Routes, overlay: IpNet) {
    if let Err(error) = routes.set_unreachable(Some(overlay)) {
        tracing::warn!(
            "making the rest of the overlay unreachable: {:#}",
            anyhow::Error::new(error)
        );
    }
}

/// The routes to a peer: its allowed IPs, which the mesh keeps inside the
/// peer's operator's range and so inside `[trust] overlay`.
fn routes_of(spec: &PeerSpec) -> Vec<IpNet> {
    spec.allowed_ips.clone()
}

/// The `set` change that configures the peer `spec`, at `endpoint` when
/// it is known (an endpoint name is resolved off the run loop, and the
/// endpoint set when it resolves: see [`resolver`]), under the firewall's
/// `policy` from its first packet on.
fn peer_change(spec: &PeerSpec, endpoint: Option<SocketAddr>, policy: PeerPolicy) -> PeerChange {
    PeerChange::Set(PeerUpdate {
        policy: Some(policy),
        endpoint,
        persistent_keepalive: Some(spec.persistent_keepalive.unwrap_or(0)),
        replace_allowed_ips: true,
        allowed_ips: routes_of(spec)
            .into_iter()
            .map(AllowedIpChange::Add)
            .collect(),
        ..PeerUpdate::new(spec.public_key)
    })
}

/// The gossip socket: bound to this host's overlay address and to the TUN
/// device, so it hears only what came through the tunnel.
fn gossip_socket(ifname: &str, address: SocketAddr) -> Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(address)
        .with_context(|| format!("binding the gossip socket to {address}"))?;
    sockopt::bind_to_device(&socket, ifname)
        .with_context(|| format!("binding the gossip socket to {ifname}"))?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket).context("registering the gossip socket")
}
