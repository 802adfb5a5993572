//! The routes an interface installed: one service for the native mode (the
//! routes of its configured peers) and the mesh member (the routes of its
//! mesh peers, and the unreachable route of the rest of the overlay).
//!
//! A [`Routes`] remembers which routes it added, and only those are its to
//! remove: a route that was there already (the operator's, another
//! daemon's) is left alone, now and at shutdown. Given the set a mode
//! wants, it adds what is missing and removes what is stale (the native
//! mode, once per configuration); given the networks a change touched, it
//! brings those alone in line (the mesh member, at every change of its
//! peers); when it is dropped, however the mode stopped, it removes
//! everything it added. A
//! daemon killed outright leaves its routes: those through the interface go
//! with the device, and the unreachable route keeps overlay traffic off the
//! underlay until the daemon starts again.

use std::collections::BTreeSet;
use std::io;

use sentrymesh_types::IpNet;

use crate::sys::netlink;

/// A route the kernel would not add.
#[derive(Debug, thiserror::Error)]
#[error("adding a route to {net}")]
pub(crate) struct RouteError {
    /// The route.
    pub(crate) net: IpNet,
    /// What the kernel said.
    #[source]
    pub(crate) source: io::Error,
}

/// The routes one interface installed, removed when this is dropped.
#[derive(Debug)]
pub(crate) struct Routes<K: RouteTable = Netlink> {
    table: K,
    /// The routes through the interface this added.
    installed: BTreeSet<IpNet>,
    /// Routes wanted that were there before this added them: taken as
    /// present, never removed.
    found: BTreeSet<IpNet>,
    /// Routes wanted that the kernel refused: tried again at the next
    /// [`Routes::update`].
    refused: BTreeSet<IpNet>,
    /// The unreachable route this added, if any.
    unreachable: Option<IpNet>,
}

/// Where routes are added and removed: the kernel's main table through
/// rtnetlink, or a stand-in in tests.
pub(crate) trait RouteTable {
    /// Routes `net` through the interface.
    fn add(&mut self, net: IpNet) -> io::Result<()>;
    /// Removes the route to `net` through the interface.
    fn delete(&mut self, net: IpNet) -> io::Result<()>;
    /// Makes `net` unreachable.
    fn add_unreachable(&mut self, net: IpNet) -> io::Result<()>;
    /// Removes the unreachable route to `net`.
    fn delete_unreachable(&mut self, net: IpNet) -> io::Result<()>;
}

/// The kernel's main routing table, for one interface.
#[derive(Debug)]
pub(crate) struct Netlink {
    index: u32,
}

impl RouteTable for Netlink {
    fn add(&mut self, net: IpNet) -> io::Result<()> {
        netlink::add_route(self.index, net)
    }

    fn delete(&mut self, net: IpNet) -> io::Result<()> {
        netlink::delete_route(self.index, net)
    }

    fn add_unreachable(&mut self, net: IpNet) -> io::Result<()> {
        netlink::add_unreachable_route(net)
    }

    fn delete_unreachable(&mut self, net: IpNet) -> io::Result<()> {
        netlink::delete_unreachable_route(net)
    }
}

impl Routes {
    /// The routes of interface `name`, none installed yet.
    ///
    /// # Errors
    ///
    /// When there is no such interface.
    pub(crate) fn of_interface(name: &str) -> io::Result<Self> {
        let index = netlink::interface_index(name)?;
        Ok(Self::new(Netlink { index }))
    }
}

impl<K: RouteTable> Routes<K> {
    /// The routes of `table`, none installed yet.
    pub(crate) fn new(table: K) -> Self {
        Self {
            table,
            installed: BTreeSet::new(),
            found: BTreeSet::new(),
            refused: BTreeSet::new(),
            unreachable: None,
        }
    }

    /// Adds every route of `desired` that is missing, all or none: when the
    /// kernel refuses one, those this call added are removed again. Returns
    /// the routes added, for [`Routes::take_back`].
    ///
    /// # Errors
    ///
    /// The route the kernel refused.
    pub(crate) fn add_missing(
        &mut self,
        desired: &BTreeSet<IpNet>,
    ) -> Result<Vec<IpNet>, RouteError> {
        let mut added = Vec::new();
        for &net in desired {
            match self.add(net) {
                Ok(true) => added.push(net),
                Ok(false) => {}
                Err(error) => {
                    self.take_back(added);
                    return Err(error);
                }
            }
        }
        Ok(added)
    }

    /// Removes the routes [`Routes::add_missing`] added, when what they were
    /// added for was refused.
    pub(crate) fn take_back(&mut self, added: Vec<IpNet>) {
        for net in added {
            self.remove(net);
        }
    }

    /// Removes every route this added that `desired` does not hold, and
    /// forgets the routes found there that it no longer holds.
    pub(crate) fn remove_stale(&mut self, desired: &BTreeSet<IpNet>) {
        let stale: Vec<IpNet> = self.installed.difference(desired).copied().collect();
        for net in stale {
            self.remove(net);
        }
        self.found.retain(|net| desired.contains(net));
    }

    /// Brings the routes to `touched` networks in line with `wanted`, route
    /// by route: adds each wanted one that is missing, removes each
    /// unwanted one this added. A route the kernel refuses is skipped, and
    /// the rest go on: the refusals are returned, to be logged, and tried
    /// again at the next call while still wanted. O((touched + refused) ×
    /// log routes), whatever the number of routes.
    pub(crate) fn update(
        &mut self,
        touched: BTreeSet<IpNet>,
        wanted: impl Fn(&IpNet) -> bool,
    ) -> Vec<RouteError> {
        let mut again = std::mem::take(&mut self.refused);
        again.extend(touched);
        let mut refusals = Vec::new();
        for net in again {
            if !wanted(&net) {
                self.remove(net);
                self.found.remove(&net);
            } else if let Err(error) = self.add(net) {
                self.refused.insert(net);
                refusals.push(error);
            }
        }
        refusals
    }

    /// Makes `net` the unreachable route (`None`: no route), in place of the
    /// one before. A route of `net` already there is kept, and left alone.
    ///
    /// # Errors
    ///
    /// When the kernel refuses the route; the one before is gone then.
    pub(crate) fn set_unreachable(&mut self, net: Option<IpNet>) -> Result<(), RouteError> {
        if net == self.unreachable {
            return Ok(());
        }
        self.remove_unreachable();
        let Some(net) = net else {
            return Ok(());
        };
        match self.table.add_unreachable(net) {
            Ok(()) => self.unreachable = Some(net),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(RouteError { net, source }),
        }
        Ok(())
    }

    /// Adds `net` unless this added it or found it before; `true` when it
    /// was added now.
    fn add(&mut self, net: IpNet) -> Result<bool, RouteError> {
        if self.installed.contains(&net) || self.found.contains(&net) {
            return Ok(false);
        }
        match self.table.add(net) {
            Ok(()) => {
                self.installed.insert(net);
                Ok(true)
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                self.found.insert(net);
                Ok(false)
            }
            Err(source) => Err(RouteError { net, source }),
        }
    }

    fn remove(&mut self, net: IpNet) {
        if self.installed.remove(&net) {
            if let Err(error) = self.table.delete(net) {
                tracing::debug!("removing the route to {net}: {error}");
            }
        }
    }

    fn remove_unreachable(&mut self) {
        if let Some(net) = self.unreachable.take() {
            if let Err(error) = self.table.delete_unreachable(net) {
                tracing::debug!("removing the unreachable route to {net}: {error}");
            }
        }
    }
}

impl<K: RouteTable> Drop for Routes<K> {
    fn drop(&mut self) {
        let installed = std::mem::take(&mut self.installed);
        for net in installed {
            if let Err(error) = self.table.delete(net) {
                tracing::debug!("removing the route to {net}: {error}");
            }
        }
        self.remove_unreachable();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    use super::*;

    /// The kernel's table as a stand-in sees it: each route and whether it
    /// is unreachable; `refuse` holds routes it will not add.
    #[derive(Debug, Default)]
    struct Table {
        routes: BTreeMap<IpNet, bool>,
        refuse: BTreeSet<IpNet>,
    }

    #[derive(Debug, Clone, Default)]
    struct Shared(Rc<RefCell<Table>>);

    impl Shared {
        fn insert(&self, net: IpNet, unreachable: bool) -> io::Result<()> {
            let mut table = self.0.borrow_mut();
            if table.refuse.contains(&net) {
                return Err(io::ErrorKind::InvalidInput.into());
            }
            if table.routes.contains_key(&net) {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            table.routes.insert(net, unreachable);
            Ok(())
        }

        fn delete_kind(&self, net: IpNet, unreachable: bool) -> io::Result<()> {
            let mut table = self.0.borrow_mut();
            match table.routes.get(&net) {
                Some(&kind) if kind == unreachable => {
                    table.routes.remove(&net);
                    Ok(())
                }
                _ => Err(io::ErrorKind::NotFound.into()),
            }
        }

        fn routes(&self) -> Vec<(IpNet, bool)> {
            self.0
                .borrow()
                .routes
                .iter()
                .map(|(&n, &u)| (n, u))
                .collect()
        }
    }

    impl RouteTable for Shared {
        fn add(&mut self, net: IpNet) -> io::Result<()> {
            self.insert(net, false)
        }
        fn delete(&mut self, net: IpNet) -> io::Result<()> {
            self.delete_kind(net, false)
        }
        fn add_unreachable(&mut self, net: IpNet) -> io::Result<()> {
            self.insert(net, true)
        }
        fn delete_unreachable(&mut self, net: IpNet) -> io::Result<()> {
            self.delete_kind(net, true)
        }
    }

    fn nets(list: &[&str]) -> BTreeSet<IpNet> {
        list.iter().map(|net| net.parse().unwrap()).collect()
    }

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    /// Updates `routes` to `desired`, touching the networks `before` or
    /// `desired` hold, as the mesh member does.
    fn update_to(
        routes: &mut Routes<Shared>,
        before: &BTreeSet<IpNet>,
        desired: &BTreeSet<IpNet>,
    ) -> Vec<IpNet> {
        let touched = before.union(desired).copied().collect();
        routes
            .update(touched, |net| desired.contains(net))
            .iter()
            .map(|error| error.net)
            .collect()
    }

    #[test]
    fn update_adds_the_missing_removes_the_stale_and_drop_removes_the_rest() {
        let table = Shared::default();
        let mut routes = Routes::new(table.clone());
        let first = nets(&["198.19.1.0/24", "198.19.2.0/24"]);
        assert!(update_to(&mut routes, &nets(&[]), &first).is_empty());
        let second = nets(&["198.19.2.0/24", "198.19.3.0/24"]);
        assert!(update_to(&mut routes, &first, &second).is_empty());
        assert_eq!(
            table.routes(),
            [(net("198.19.2.0/24"), false), (net("198.19.3.0/24"), false)]
        );
        // Networks not touched are left as they are.
        assert!(routes.update(BTreeSet::new(), |_| false).is_empty());
        assert_eq!(table.routes().len(), 2);
        routes.set_unreachable(Some(net("198.19.0.0/16"))).unwrap();
        drop(routes);
        assert_eq!(table.routes(), []);
    }

    #[test]
    fn a_route_found_there_is_never_removed() {
        let table = Shared::default();
        table.insert(net("198.19.1.0/24"), false).unwrap();
        table.insert(net("198.19.0.0/16"), true).unwrap();
        let mut routes = Routes::new(table.clone());
        let found = nets(&["198.19.1.0/24"]);
        assert!(update_to(&mut routes, &nets(&[]), &found).is_empty());
        routes.set_unreachable(Some(net("198.19.0.0/16"))).unwrap();
        assert!(update_to(&mut routes, &found, &nets(&[])).is_empty());
        drop(routes);
        assert_eq!(
            table.routes(),
            [(net("198.19.0.0/16"), true), (net("198.19.1.0/24"), false)]
        );
    }

    #[test]
    fn update_skips_a_refused_route_goes_on_and_tries_it_again_while_wanted() {
        let table = Shared::default();
        let refused = net("198.19.2.0/24");
        table.0.borrow_mut().refuse.insert(refused);
        let mut routes = Routes::new(table.clone());
        let all = nets(&["198.19.1.0/24", "198.19.2.0/24", "198.19.3.0/24"]);
        assert_eq!(update_to(&mut routes, &nets(&[]), &all), [refused]);
        assert_eq!(table.routes().len(), 2);
        // Still refused, still tried, though no change touched it.
        assert_eq!(update_to(&mut routes, &all, &all), [refused]);
        table.0.borrow_mut().refuse.clear();
        assert!(
            routes
                .update(BTreeSet::new(), |net| all.contains(net))
                .is_empty()
        );
        assert_eq!(table.routes().len(), 3);
        // A refused route no longer wanted is not tried again.
        routes.remove(refused);
        table.0.borrow_mut().refuse.insert(refused);
        let mut rest = all.clone();
        rest.remove(&refused);
        assert_eq!(update_to(&mut routes, &all, &all), [refused]);
        assert!(
            routes
                .update(BTreeSet::new(), |net| rest.contains(net))
                .is_empty()
        );
        assert!(
            routes
                .update(BTreeSet::new(), |net| all.contains(net))
                .is_empty()
        );
        assert_eq!(table.routes().len(), 2);
    }

    #[test]
    fn add_missing_is_all_or_none_and_can_be_taken_back() {
        let table = Shared::default();
        let mut routes = Routes::new(table.clone());
        routes.add_missing(&nets(&["198.19.1.0/24"])).unwrap();
        table.0.borrow_mut().refuse.insert(net("198.19.3.0/24"));
        let error = routes
            .add_missing(&nets(&["198.19.1.0/24", "198.19.2.0/24", "198.19.3.0/24"]))
            .unwrap_err();
        assert_eq!(error.net, net("198.19.3.0/24"));
        assert_eq!(table.routes(), [(net("198.19.1.0/24"), false)]);

        let added = routes
            .add_missing(&nets(&["198.19.1.0/24", "198.19.2.0/24"]))
            .unwrap();
        assert_eq!(added, [net("198.19.2.0/24")]);
        routes.take_back(added);
        assert_eq!(table.routes(), [(net("198.19.1.0/24"), false)]);
        routes.remove_stale(&nets(&[]));
        assert_eq!(table.routes(), []);
    }

    #[test]
    fn the_unreachable_route_moves() {
        let table = Shared::default();
        let mut routes = Routes::new(table.clone());
        routes.set_unreachable(Some(net("198.19.0.0/16"))).unwrap();
        routes.set_unreachable(Some(net("198.18.0.0/15"))).unwrap();
        assert_eq!(table.routes(), [(net("198.18.0.0/15"), true)]);
        routes.set_unreachable(None).unwrap();
        assert_eq!(table.routes(), []);
    }
}
