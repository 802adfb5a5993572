//! [`ChainView`]: what the chain config of this host is made from — its
//! own card and the cards of the peers the mesh gives it — and the rules
//! both exports share for picking peers and writing their addresses.

use std::fmt;
use std::net::IpAddr;

use sentrymesh_mesh::{ChainP2p, HostCard, Mesh, Role};

/// This host's card and its mesh peers' cards: the input of the exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainView {
    /// This host's card.
    pub local: HostCard,
    /// The cards of the peers the mesh's roles and trust give this host,
    /// in the order of their names when made by [`ChainView::new`].
    pub peers: Vec<HostCard>,
}

/// A peer the chain node is told of: its card, and its chain p2p address.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChainPeer<'a> {
    /// The peer's card.
    pub(super) card: &'a HostCard,
    /// Its chain p2p address.
    pub(super) p2p: &'a ChainP2p,
    /// Its first overlay address, where the chain node reaches it through
    /// the tunnel.
    address: IpAddr,
}

/// A host and a port, as chain nodes write an address: `198.19.1.1:26656`,
/// `[2001:db8::1]:26656`, `sentry-1.example.net:26656`.
#[derive(Debug, Clone, Copy)]
pub(super) struct HostPort<H>(pub(super) H, pub(super) u16);

impl ChainView {
    /// The view of host `local` with the peers `peers`, put in the order
    /// of their names (then keys), so an export is the same text for the
    /// same mesh.
    pub fn new(local: HostCard, mut peers: Vec<HostCard>) -> Self {
        peers.sort_by(|a, b| {
            (&a.name, a.wg_public_key.as_bytes()).cmp(&(&b.name, b.wg_public_key.as_bytes()))
        });
        Self { local, peers }
    }

    /// The view of `mesh`: its local card and the cards of its peers.
    pub fn of_mesh(mesh: &Mesh) -> Self {
        let peers = mesh
            .peers()
            .filter_map(|spec| mesh.store().card(&spec.public_key))
            .map(|card| card.card().clone())
            .collect();
        Self::new(mesh.local_card().card().clone(), peers)
    }

    /// The peers a chain node may be told of: those with a chain p2p
    /// address, and never another operator's hidden host (the mesh gives
    /// none; this holds even for a view that was given one).
    pub(super) fn chain_peers(&self) -> impl Iterator<Item = ChainPeer<'_>> {
        self.peers
            .iter()
            .filter(|card| card.operator == self.local.operator || !card.role.is_hidden())
            .filter_map(|card| {
                Some(ChainPeer {
                    card,
                    p2p: card.chain_p2p.as_ref()?,
                    address: card.addresses.first()?.addr(),
                })
            })
    }

    /// The peers without a chain p2p address, whom no export can name.
    pub(super) fn peers_without_p2p(&self) -> impl Iterator<Item = &HostCard> {
        self.peers.iter().filter(|card| {
            card.chain_p2p.is_none()
                && (card.operator == self.local.operator || !card.role.is_hidden())
        })
    }

    /// The first line of an export: what it is and whose.
    pub(super) fn heading(&self, what: &str) -> String {
        format!(
            "# sentrymesh export {what}: host {} ({}) of operator {}",
            self.local.name, self.local.role, self.local.operator
        )
    }
}

impl ChainPeer<'_> {
    /// Whether the peer is this operator's and has `role`.
    pub(super) fn is_own(&self, local: &HostCard, role: Role) -> bool {
        self.card.operator == local.operator && self.card.role == role
    }

    /// Where the chain node reaches the peer: its first overlay address
    /// (through the tunnel) and its chain p2p port.
    pub(super) fn overlay_address(&self) -> HostPort<IpAddr> {
        HostPort(self.address, self.p2p.port)
    }
}

impl<H: fmt::Display> fmt::Display for HostPort<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.0.to_string();
        if host.contains(':') {
            write!(f, "[{host}]:{}", self.1)
        } else {
            write!(f, "{host}:{}", self.1)
        }
    }
}
