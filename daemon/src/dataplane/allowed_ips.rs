//! The allowed-IPs table of WireGuard ("cryptokey routing"): which peer owns
//! which IPv4 and IPv6 networks.
//!
//! It does not touch packets, sockets or the clock: the caller hands it an
//! address and gets back the value (the daemon's `PeerId`) whose network
//! holds that address by longest-prefix match. It is used twice per packet:
//!
//! ```text
//!   outbound: TUN --dst addr--> lookup --> peer to encrypt for (none: drop)
//!   inbound:  decrypted from P --src addr--> lookup == Some(P)? (else: drop)
//! ```
//!
//! As in WireGuard, a network belongs to at most one peer: inserting it for
//! another peer moves it there. Networks may nest (`10.0.0.0/8` to one peer,
//! `10.1.0.0/16` to another); the longest prefix wins.
//!
//! # Design
//!
//! Two path-compressed binary tries, one per address family, like the Linux
//! kernel's `allowedips.c`. Keys are `u128`s, IPv4 addresses left-aligned
//! (shifted up by 96 bits), so one implementation serves both families. Each
//! node stores its whole prefix, so checking whether a node is on the path of
//! an address is one XOR and one `leading_zeros`, and a node has a value
//! unless it is a branching point with two children. A lookup walks down from
//! the root, remembering the last node with a value, and stops at the first
//! node that does not match: it reads at most one node per distinct prefix
//! length on its path (33 for IPv4, 129 for IPv6, a handful in practice),
//! allocates nothing and compares no bytes.
//!
//! A per-prefix-length hash table was the alternative. It is simpler to
//! update, but a lookup probes up to 129 tables for IPv6 (or needs the
//! markers of binary search on prefix lengths), hashes every probe, needs
//! `T: Hash`, and its iteration order would have to be sorted away. The trie
//! keeps its networks in order, so [`AllowedIps::nets_of`] is a pre-order
//! walk.
//!
//! Nodes are `Box`ed, not kept in an arena: ownership is plain, removal needs
//! no free list, and a lookup chases one pointer per node either way.
//! Updates (configuration changes) are not on the packet path. Beside the
//! tries, an index holds each value's networks, as the kernel keeps a list
//! of nodes per peer: [`AllowedIps::nets_of`] and
//! [`AllowedIps::remove_value`] cost the networks of that one value, not a
//! walk of the whole table. (They walked it once: a UAPI `get` of 1,000
//! peers with 10 networks each then walked 10,000 networks for each peer,
//! on the data-path thread.)
//!
//! # IPv4-mapped IPv6 addresses
//!
//! The kernel picks the trie by the packet's IP version
//! (`wg_allowedips_lookup_dst` and `_src`: `ETH_P_IP` looks in the v4 trie,
//! `ETH_P_IPV6` in the v6 trie) and never unmaps: an IPv6 packet to
//! `::ffff:192.0.2.1` is routed by the v6 networks (`::ffff:0:0/96`, `::/0`,
//! ...), not by `192.0.2.0/24`. This table does the same, so callers must pass
//! addresses as they are in the header and not canonicalize them.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

use sentrymesh_types::IpNet;

/// A longest-prefix-match table from IPv4 and IPv6 networks to values
/// (peers), as WireGuard's allowed IPs.
///
/// The most specific network that holds an address wins: with
/// `10.0.0.0/8 -> 1` and `10.1.0.0/16 -> 2`, `10.1.2.3` finds 2 and
/// `10.2.0.1` finds 1 (the test `the_most_specific_network_wins`).
///
/// Cloning copies every node (one allocation each): something to do on a
/// configuration change, not per packet.
#[derive(Clone)]
pub(crate) struct AllowedIps<T> {
    v4: Option<Box<Node<T>>>,
    v6: Option<Box<Node<T>>>,
    /// The networks of each value that has any, as (value, network): the
    /// nodes of the tries with a value. One set of pairs, not a set per
    /// value: a set of one network took a B-tree node (over 200 bytes) for
    /// each peer.
    by_owner: BTreeSet<(T, IpNet)>,
    /// The number of networks (nodes with a value).
    len: usize,
}

/// A trie node: the prefix `key/len`, where `key` has its bits after `len`
/// cleared.
///
/// Invariants: a node without a value has two children; a child's prefix
/// is longer than its parent's and extends it, and the child sits in
/// `children[b]`, where `b` is its bit number `len` (of the parent).
#[derive(Clone)]
struct Node<T> {
    key: u128,
    len: u8,
    value: Option<T>,
    children: [Option<Box<Node<T>>>; 2],
}

/// Which trie a node belongs to, to turn its key back into an address.
#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl<T: Copy + Ord> AllowedIps<T> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Self {
            v4: None,
            v6: None,
            by_owner: BTreeSet::new(),
            len: 0,
        }
    }

    /// Gives `net` to `value` and returns its previous owner, if any.
    ///
    /// Only this exact network changes hands: networks that contain it or
    /// that it contains keep their owners.
    pub(crate) fn insert(&mut self, net: IpNet, value: T) -> Option<T> {
        let (key, len) = key_of(net);
        let previous = insert_at(self.root_mut(net.addr()), key, len, value);
        match previous {
            None => self.len += 1,
            Some(owner) if owner != value => self.unindex(net, owner),
            Some(_) => {}
        }
        self.by_owner.insert((value, net));
        previous
    }

    /// Removes exactly `net` if `value` owns it (the `allowed_ip=-NET` form
    /// of the UAPI); returns whether it did.
    ///
    /// A network owned by another value, or one that merely contains or is
    /// contained in `net`, stays.
    pub(crate) fn remove(&mut self, net: IpNet, value: T) -> bool {
        let (key, len) = key_of(net);
        let removed = remove_at(self.root_mut(net.addr()), key, len, value);
        if removed {
            self.len -= 1;
            self.unindex(net, value);
        }
        removed
    }

    /// Removes every network of `value` (the peer is removed, or its allowed
    /// IPs are replaced).
    pub(crate) fn remove_value(&mut self, value: T) {
        let nets: Vec<IpNet> = self
            .by_owner
            .range(owned_by(value))
            .map(|&(_, net)| net)
            .collect();
        for net in nets {
            self.by_owner.remove(&(value, net));
            let (key, len) = key_of(net);
            // The index holds exactly the networks `value` owns.
            let removed = remove_at(self.root_mut(net.addr()), key, len, value);
            debug_assert!(removed, "{net} is indexed but not in the trie");
            self.len -= 1;
        }
    }

    /// The owner of the longest network that holds `addr`.
    ///
    /// An IPv4-mapped IPv6 address is looked up among the IPv6 networks only,
    /// as the kernel does (see the module documentation).
    pub(crate) fn lookup(&self, addr: IpAddr) -> Option<T> {
        let (root, key) = match addr {
            IpAddr::V4(v4) => (&self.v4, v4_key(v4)),
            IpAddr::V6(v6) => (&self.v6, u128::from(v6)),
        };
        let mut node = root.as_deref();
        let mut found = None;
        while let Some(current) = node {
            if !current.covers(key) {
                break;
            }
            if current.value.is_some() {
                found = current.value;
            }
            if current.len == 128 {
                break;
            }
            node = current.children[bit_at(key, current.len)].as_deref();
        }
        found
    }

    /// The networks of `value`, sorted (IPv4 first, then by address, then by
    /// prefix length), for `wg show` and the UAPI's `get`.
    pub(crate) fn nets_of(&self, value: T) -> Vec<IpNet> {
        self.by_owner
            .range(owned_by(value))
            .map(|&(_, net)| net)
            .collect()
    }

    /// The number of networks in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no network.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes `net` out of the index of `owner`, which owned it.
    fn unindex(&mut self, net: IpNet, owner: T) {
        self.by_owner.remove(&(owner, net));
    }

    /// The trie of `addr`'s family.
    fn root_mut(&mut self, addr: IpAddr) -> &mut Option<Box<Node<T>>> {
        match addr {
            IpAddr::V4(_) => &mut self.v4,
            IpAddr::V6(_) => &mut self.v6,
        }
    }

    /// Calls `f` with every network and its owner, in `IpNet` order.
    fn for_each(&self, mut f: impl FnMut(IpNet, T)) {
        walk(&self.v4, Family::V4, &mut f);
        walk(&self.v6, Family::V6, &mut f);
    }
}

/// The entries of `value`'s networks in the index: from the least network,
/// `0.0.0.0/0`, to the greatest, the last IPv6 address.
fn owned_by<T: Copy>(value: T) -> RangeInclusive<(T, IpNet)> {
    // Invariant: a prefix of 0 has no host bits to be set.
    let least = IpNet::new(Ipv4Addr::UNSPECIFIED.into(), 0).expect("0.0.0.0/0");
    let greatest = IpNet::host(Ipv6Addr::from(u128::MAX).into());
    (value, least)..=(value, greatest)
}

impl<T: Copy + Ord> Default for AllowedIps<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy + Ord + fmt::Debug> fmt::Debug for AllowedIps<T> {
    /// The networks and their owners, as a map: `{"10.0.0.0/8": 1, ...}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut entries = Vec::with_capacity(self.len);
        self.for_each(|net, value| entries.push((net.to_string(), value)));
        f.debug_map().entries(entries).finish()
    }
}

impl<T: Copy + Eq> Node<T> {
    fn leaf(key: u128, len: u8, value: T) -> Box<Self> {
        Box::new(Self {
            key,
            len,
            value: Some(value),
            children: [None, None],
        })
    }

    /// Whether `key` starts with this node's prefix.
    fn covers(&self, key: u128) -> bool {
        common_bits(self.key, key) >= self.len
    }
}

/// Inserts `key/len` below `slot`; returns the value it replaced.
fn insert_at<T: Copy + Eq>(
    slot: &mut Option<Box<Node<T>>>,
    key: u128,
    len: u8,
    value: T,
) -> Option<T> {
    let Some(mut node) = slot.take() else {
        *slot = Some(Node::leaf(key, len, value));
        return None;
    };
    let common = common_bits(node.key, key).min(node.len).min(len);
    if common == node.len {
        // `node` is the network itself or one that contains it.
        let previous = if node.len == len {
            node.value.replace(value)
        } else {
            insert_at(&mut node.children[bit_at(key, node.len)], key, len, value)
        };
        *slot = Some(node);
        return previous;
    }
    let mut new = Node::leaf(key, len, value);
    if common == len {
        // The new network contains `node`: it takes `node`'s place.
        let side = bit_at(node.key, len);
        new.children[side] = Some(node);
        *slot = Some(new);
    } else {
        // They part at bit `common`: a branching node without a value.
        let mut branch = Box::new(Node {
            key: mask(key, common),
            len: common,
            value: None,
            children: [None, None],
        });
        let side = bit_at(node.key, common);
        branch.children[side] = Some(node);
        branch.children[bit_at(key, common)] = Some(new);
        *slot = Some(branch);
    }
    None
}

/// Removes `key/len` below `slot` if `value` owns it; returns whether it did.
fn remove_at<T: Copy + Eq>(slot: &mut Option<Box<Node<T>>>, key: u128, len: u8, value: T) -> bool {
    let Some(node) = slot.as_deref_mut() else {
        return false;
    };
    if node.len > len || !node.covers(key) {
        return false;
    }
    let removed = if node.len == len {
        if node.value != Some(value) {
            return false;
        }
        node.value = None;
        true
    } else {
        remove_at(&mut node.children[bit_at(key, node.len)], key, len, value)
    };
    if removed {
        prune(slot);
    }
    removed
}

/// Restores the invariant at `slot` after a removal at or below it: a node
/// without a value and with fewer than two children is replaced by its child
/// (or by nothing).
fn prune<T>(slot: &mut Option<Box<Node<T>>>) {
    let Some(node) = slot.as_deref_mut() else {
        return;
    };
    if node.value.is_some() || node.children.iter().all(Option::is_some) {
        return;
    }
    let [zero, one] = &mut node.children;
    let child = zero.take().or_else(|| one.take());
    *slot = child;
}

/// Calls `f` with every network below `slot` and its owner, in pre-order
/// (a node, then its 0 side, then its 1 side), which is `IpNet` order.
fn walk<T: Copy>(slot: &Option<Box<Node<T>>>, family: Family, f: &mut impl FnMut(IpNet, T)) {
    let Some(node) = slot.as_deref() else {
        return;
    };
    if let Some(value) = node.value {
        f(net_of(family, node.key, node.len), value);
    }
    let [zero, one] = &node.children;
    walk(zero, family, f);
    walk(one, family, f);
}

/// The trie key and prefix length of `net`.
fn key_of(net: IpNet) -> (u128, u8) {
    let key = match net.addr() {
        IpAddr::V4(v4) => v4_key(v4),
        IpAddr::V6(v6) => u128::from(v6),
    };
    (key, net.prefix_len())
}

/// An IPv4 address as a trie key: its 32 bits at the top of a `u128`.
fn v4_key(addr: Ipv4Addr) -> u128 {
    u128::from(u32::from(addr)) << 96
}

/// The network of a node: the inverse of [`key_of`].
fn net_of(family: Family, key: u128, len: u8) -> IpNet {
    let addr = match family {
        // The truncation keeps the 32 bits an IPv4 key has.
        Family::V4 => IpAddr::V4(Ipv4Addr::from((key >> 96) as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(key)),
    };
    // A v4 trie only holds prefixes of IpNets, which are at most 32 bits
    // long, and a node's key has no bits past its length.
    IpNet::new(addr, len).expect("a node's prefix is a network of its family")
}

/// The number of leading bits `a` and `b` share (128 when equal).
fn common_bits(a: u128, b: u128) -> u8 {
    // At most 128: fits.
    (a ^ b).leading_zeros() as u8
}

/// Bit number `index` of `key`, counting from the most significant; `index`
/// is below 128.
fn bit_at(key: u128, index: u8) -> usize {
    usize::from((key >> (127 - u32::from(index))) & 1 == 1)
}

/// `key` with all but its first `len` bits cleared.
fn mask(key: u128, len: u8) -> u128 {
    key & !u128::MAX.checked_shr(u32::from(len)).unwrap_or(0)
}

#[cfg(test)]
mod tests;
