//! Peers' endpoint names, resolved off the member's loop.
//!
//! A public card's endpoint may be a DNS name, and any admitted operator,
//! a rival among them, chooses the names its cards give. Were the member to
//! wait for each lookup, a rival's cards naming a name server that never
//! answers would hold it, one resolver timeout after another, and it would
//! handle no gossip, revocation, introduction or reload meanwhile. So:
//!
//! * a peer is configured at once, without its endpoint while its name is
//!   being resolved (it can still be reached when it initiates), and the
//!   endpoint is set when the name resolves ([`Resolver::complete`]);
//! * lookups run on blocking threads, at most [`MAX_IN_FLIGHT`] at once: a
//!   lookup that hangs keeps its slot until the system resolver gives up,
//!   so a rival's names hold a few threads, never more; the member gives up
//!   waiting after [`LOOKUP_TIMEOUT`];
//! * each name's addresses are kept for [`ADDRESSES_TTL`], a failure for
//!   [`FAILURE_TTL`], and a name cached or being resolved is not looked up
//!   again: re-issuing cards brings no new lookup;
//! * a resolved address is used in its canonical form, and only when it
//!   lies outside the overlay and names another host
//!   ([`sentrymesh_mesh::underlay_address`]).
//!
//! A hidden host (producer, bios) resolves no name: its plaintext query,
//! from its address and naming its operator's sentry, would tell anyone on
//! the path which host is a producer. It uses only the IP endpoints of the
//! hosts it peers with, and says once for each name it skips that the
//! sentry's card should give an IP endpoint.
//!
//! The cost of the defence: while a rival's names hang, they hold the
//! slots, and an honest peer's name waits for one; that peer is still
//! added, reached when it initiates, and an IP endpoint never waits.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sentrymesh_mesh::{Endpoint, EndpointHost, underlay_address};
use sentrymesh_types::IpNet;
use tokio::sync::{Semaphore, mpsc};

/// The longest the member waits for one lookup.
pub(super) const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// The most lookups running at once, hung ones included.
pub(super) const MAX_IN_FLIGHT: usize = 4;
/// How long a name's addresses are used before it is looked up again.
const ADDRESSES_TTL: Duration = Duration::from_secs(300);
/// How long a name that failed to resolve is not looked up again.
const FAILURE_TTL: Duration = Duration::from_secs(60);
/// The most names kept: beyond it, expired entries go, then any settled
/// one (a name the store's cards no longer give is never asked for again).
const MAX_NAMES: usize = 4096;

/// Resolves a name to its addresses, blocking: the system resolver, or a
/// test's.
pub(super) trait Lookup: Send + Sync + 'static {
    /// The addresses of `name`.
    ///
    /// # Errors
    ///
    /// When the name does not resolve.
    fn lookup(&self, name: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The system resolver (`getaddrinfo`: /etc/hosts, then DNS).
pub(super) struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, name: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok((name, 0)
            .to_socket_addrs()?
            .map(|address| address.ip())
            .collect())
    }
}

/// A lookup's outcome, for [`Resolver::complete`].
#[derive(Debug)]
pub(super) struct Resolved {
    name: String,
    addresses: Result<Vec<IpAddr>, String>,
}

impl Resolved {
    /// The name looked up.
    pub(super) fn name(&self) -> &str {
        &self.name
    }
}

/// What is known of one name.
#[derive(Debug)]
enum Entry {
    /// Being looked up.
    Pending,
    /// Its addresses, used until `until`.
    Resolved {
        addresses: Vec<IpAddr>,
        until: Instant,
    },
    /// It did not resolve; not looked up again before `until`.
    Failed { until: Instant },
}

/// The endpoint names of the member's peers: looked up off its loop, their
/// outcomes cached (see the module docs).
pub(super) struct Resolver {
    lookup: Arc<dyn Lookup>,
    timeout: Duration,
    slots: Arc<Semaphore>,
    names: BTreeMap<String, Entry>,
    /// Names a hidden host skipped, each said once.
    skipped: BTreeSet<String>,
    outcomes: mpsc::UnboundedSender<Resolved>,
    received: mpsc::UnboundedReceiver<Resolved>,
}

impl Resolver {
    /// A resolver asking `lookup`, giving up on a lookup after `timeout`.
    pub(super) fn new(lookup: Arc<dyn Lookup>, timeout: Duration) -> Self {
        let (outcomes, received) = mpsc::unbounded_channel();
        Self {
            lookup,
            timeout,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            names: BTreeMap::new(),
            skipped: BTreeSet::new(),
            outcomes,
            received,
        }
    }

    /// The address to give the interface for the endpoint of peer
    /// `peer`, or `None` for now: an address endpoint at once (when it may
    /// be used); a name from the cache, or else looked up in the
    /// background, its outcome coming from [`Self::next`]. A `hidden` host
    /// resolves no name. Never waits.
    pub(super) fn endpoint(
        &mut self,
        endpoint: &Endpoint,
        peer: &str,
        overlay: IpNet,
        hidden: bool,
        now: Instant,
    ) -> Option<SocketAddr> {
        let name = match &endpoint.host {
            EndpointHost::Ip(ip) => {
                return underlay_address(*ip, overlay).map(|ip| SocketAddr::new(ip, endpoint.port));
            }
            EndpointHost::Name(name) => name,
        };
        if hidden {
            if self.skipped.insert(name.clone()) {
                tracing::warn!(
                    "the endpoint of peer {peer} is the name {name}, which a hidden host does not \
                     resolve (its DNS query would show the path which host is hidden): give the \
                     sentry an IP endpoint in its card for its hidden hosts"
                );
            }
            return None;
        }
        match self.names.get(name) {
            Some(Entry::Pending) => None,
            Some(Entry::Resolved { addresses, until }) if now < *until => {
                let usable = addresses
                    .iter()
                    .find_map(|ip| underlay_address(*ip, overlay));
                if usable.is_none() {
                    tracing::debug!(
                        "{name}, the endpoint of peer {peer}, resolves to no address outside \
                         the overlay {overlay} that names another host"
                    );
                }
                usable.map(|ip| SocketAddr::new(ip, endpoint.port))
            }
            Some(Entry::Failed { until }) if now < *until => None,
            _ => {
                self.start(name.clone(), now);
                None
            }
        }
    }

    /// The next lookup's outcome; pending while none has ended.
    pub(super) async fn next(&mut self) -> Resolved {
        match self.received.recv().await {
            Some(resolved) => resolved,
            // The resolver holds a sender: the channel never closes.
            None => std::future::pending().await,
        }
    }

    /// Keeps `resolved`: from now on [`Self::endpoint`] answers for its
    /// name from it.
    pub(super) fn complete(&mut self, resolved: Resolved, now: Instant) {
        let entry = match resolved.addresses {
            Ok(addresses) if !addresses.is_empty() => Entry::Resolved {
                addresses,
                until: now + ADDRESSES_TTL,
            },
            Ok(_) => {
                tracing::warn!("{} resolves to no address", resolved.name);
                Entry::Failed {
                    until: now + FAILURE_TTL,
                }
            }
            Err(error) => {
                tracing::warn!("resolving {}: {error}", resolved.name);
                Entry::Failed {
                    until: now + FAILURE_TTL,
                }
            }
        };
        self.names.insert(resolved.name, entry);
    }

    /// Looks `name` up on a blocking thread once a slot is free, and sends
    /// the outcome (a timeout is a failure) to [`Self::next`].
    fn start(&mut self, name: String, now: Instant) {
        if self.names.len() >= MAX_NAMES {
            self.names.retain(|_, entry| match entry {
                Entry::Pending => true,
                Entry::Resolved { until, .. } | Entry::Failed { until } => now < *until,
            });
        }
        if self.names.len() >= MAX_NAMES {
            let settled = self
                .names
                .iter()
                .find(|(_, entry)| !matches!(entry, Entry::Pending))
                .map(|(name, _)| name.clone());
            if let Some(settled) = settled {
                self.names.remove(&settled);
            }
        }
        self.names.insert(name.clone(), Entry::Pending);
        let (lookup, slots, timeout) = (self.lookup.clone(), self.slots.clone(), self.timeout);
        let outcomes = self.outcomes.clone();
        tokio::spawn(async move {
            let addresses = match slots.acquire_owned().await {
                Ok(slot) => {
                    let asked = name.clone();
                    // The slot goes with the thread, freed when the lookup
                    // ends, however long after the timeout that is.
                    let work = tokio::task::spawn_blocking(move || {
                        let _slot = slot;
                        lookup.lookup(&asked)
                    });
                    match tokio::time::timeout(timeout, work).await {
                        Ok(Ok(Ok(addresses))) => Ok(addresses),
                        Ok(Ok(Err(error))) => Err(error.to_string()),
                        Ok(Err(error)) => Err(format!("the lookup failed: {error}")),
                        Err(_) => Err(format!("no answer in {} s", timeout.as_secs_f32())),
                    }
                }
                Err(_) => Err("the resolver is closed".to_owned()),
            };
            // The member may have stopped; then nobody waits for it.
            let _ = outcomes.send(Resolved { name, addresses });
        });
    }
}

#[cfg(test)]
mod tests;
