//! Tests of the allowed-IPs table: the kernel's self-test, edge cases, and a
//! randomized comparison with a naive list.
use proptest::prelude::*;

use super::*;

fn ip4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// An IPv6 address from four 32-bit words, as the kernel self-test's
/// `ip6()`.
fn ip6(a: u32, b: u32, c: u32, d: u32) -> IpAddr {
    let bits = u128::from(a) << 96 | u128::from(b) << 64 | u128::from(c) << 32 | u128::from(d);
    IpAddr::V6(Ipv6Addr::from(bits))
}

/// The network of the first `len` bits of `addr` (host bits cleared).
fn net(addr: IpAddr, len: u8) -> IpNet {
    IpNet::truncating(addr, len).unwrap()
}

fn parse(text: &str) -> IpNet {
    text.parse().unwrap()
}

fn addr(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Checks the trie invariants, that `len` counts the values and that the
/// index of each value's networks is what the tries hold.
fn assert_invariants<T: Copy + Ord + std::fmt::Debug>(table: &AllowedIps<T>) {
    fn check<T>(slot: &Option<Box<Node<T>>>, width: u8) -> usize {
        let Some(node) = slot.as_deref() else {
            return 0;
        };
        assert!(node.len <= width, "prefix longer than the family");
        assert_eq!(node.key, mask(node.key, node.len), "host bits set");
        assert!(
            node.value.is_some() || node.children.iter().all(Option::is_some),
            "a node without a value must branch"
        );
        for (index, child) in node.children.iter().enumerate() {
            if let Some(child) = child.as_deref() {
                assert!(child.len > node.len, "child not longer");
                assert!(
                    common_bits(child.key, node.key) >= node.len,
                    "child outside"
                );
                assert_eq!(
                    bit_at(child.key, node.len),
                    index,
                    "child on the wrong side"
                );
            }
        }
        usize::from(node.value.is_some())
            + node
                .children
                .iter()
                .map(|child| check(child, width))
                .sum::<usize>()
    }
    let count = check(&table.v4, 32) + check(&table.v6, 128);
    assert_eq!(count, table.len(), "len does not count the networks");
    let mut walked: BTreeSet<(T, IpNet)> = BTreeSet::new();
    table.for_each(|net, owner| {
        walked.insert((owner, net));
    });
    assert_eq!(walked, table.by_owner, "the index is not the tries");
}

/// The fixed cases of the Linux kernel's self-test,
/// `drivers/net/wireguard/selftest/allowedips.c`
/// (`wg_allowedips_selftest`), in order: `insert(4, a, 192, 168, 4, 0, 24)`
/// is `t.insert(net(ip4(192, 168, 4, 0), 24), a)`, `test(4, a, ...)` is
/// `lookup == Some(a)`, `test_negative` is `lookup != Some(a)`.
#[test]
fn kernel_selftest() {
    let (a, b, c, d, e, f, g, h) = ('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h');
    let mut t = AllowedIps::new();

    t.insert(net(ip4(192, 168, 4, 0), 24), a);
    t.insert(net(ip4(192, 168, 4, 4), 32), b);
    t.insert(net(ip4(192, 168, 0, 0), 16), c);
    t.insert(net(ip4(192, 95, 5, 64), 27), d);
    // Replaces the previous entry, and the host bits must be masked.
    assert_eq!(t.insert(net(ip4(192, 95, 5, 65), 27), c), Some(d));
    t.insert(net(ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128), d);
    t.insert(net(ip6(0x26075300, 0x60006b00, 0, 0), 64), c);
    t.insert(net(ip4(0, 0, 0, 0), 0), e);
    t.insert(net(ip6(0, 0, 0, 0), 0), e);
    // Replaces the previous entry.
    assert_eq!(t.insert(net(ip6(0, 0, 0, 0), 0), f), Some(e));
    t.insert(net(ip6(0x24046800, 0, 0, 0), 32), g);
    // The host bits must be masked.
    t.insert(
        net(ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), 64),
        h,
    );
    t.insert(
        net(ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), 128),
        a,
    );
    t.insert(
        net(ip6(0x24446800, 0x40e40800, 0xdeaebeef, 0xdefbeef), 128),
        c,
    );
    t.insert(net(ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0), 98), b);
    t.insert(net(ip4(64, 15, 112, 0), 20), g);
    // The host bits must be masked.
    t.insert(net(ip4(64, 15, 123, 211), 25), h);
    t.insert(net(ip4(10, 0, 0, 0), 25), a);
    t.insert(net(ip4(10, 0, 0, 128), 25), b);
    t.insert(net(ip4(10, 1, 0, 0), 30), a);
    t.insert(net(ip4(10, 1, 0, 4), 30), b);
    t.insert(net(ip4(10, 1, 0, 8), 29), c);
    t.insert(net(ip4(10, 1, 0, 16), 29), d);
    assert_invariants(&t);

    let cases = [
        (a, ip4(192, 168, 4, 20)),
        (a, ip4(192, 168, 4, 0)),
        (b, ip4(192, 168, 4, 4)),
        (c, ip4(192, 168, 200, 182)),
        (c, ip4(192, 95, 5, 68)),
        (e, ip4(192, 95, 5, 96)),
        (d, ip6(0x26075300, 0x60006b00, 0, 0xc05f0543)),
        (c, ip6(0x26075300, 0x60006b00, 0, 0xc02e01ee)),
        (f, ip6(0x26075300, 0x60006b01, 0, 0)),
        (g, ip6(0x24046800, 0x40040806, 0, 0x1006)),
        (g, ip6(0x24046800, 0x40040806, 0x1234, 0x5678)),
        (f, ip6(0x240467ff, 0x40040806, 0x1234, 0x5678)),
        (f, ip6(0x24046801, 0x40040806, 0x1234, 0x5678)),
        (h, ip6(0x24046800, 0x40040800, 0x1234, 0x5678)),
        (h, ip6(0x24046800, 0x40040800, 0, 0)),
        (h, ip6(0x24046800, 0x40040800, 0x10101010, 0x10101010)),
        (a, ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef)),
        (g, ip4(64, 15, 116, 26)),
        (g, ip4(64, 15, 127, 3)),
        (g, ip4(64, 15, 123, 1)),
        (h, ip4(64, 15, 123, 128)),
        (h, ip4(64, 15, 123, 129)),
        (a, ip4(10, 0, 0, 52)),
        (b, ip4(10, 0, 0, 220)),
        (a, ip4(10, 1, 0, 2)),
        (b, ip4(10, 1, 0, 6)),
        (c, ip4(10, 1, 0, 10)),
        (d, ip4(10, 1, 0, 20)),
    ];
    for (expected, address) in cases {
        assert_eq!(t.lookup(address), Some(expected), "{address}");
    }

    for first in [1, 64, 128, 192, 255] {
        t.insert(net(ip4(first, 0, 0, 0), 32), a);
    }
    t.remove_value(a);
    for first in [1, 64, 128, 192, 255] {
        assert_ne!(t.lookup(ip4(first, 0, 0, 0)), Some(a));
    }
    assert_invariants(&t);

    // Removal of single networks (added to the self-test with the
    // WGALLOWEDIP_F_REMOVE_ME flag). The kernel's NULL-peer cases have no
    // equivalent here: a value is always a peer.
    t.insert(net(ip4(1, 0, 0, 0), 32), a);
    t.insert(net(ip4(192, 0, 0, 0), 24), a);
    t.insert(
        net(ip6(0x24446801, 0x40e40800, 0xdeaebeef, 0xdefbeef), 128),
        a,
    );
    t.insert(net(ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0), 98), a);
    assert_eq!(t.lookup(ip4(1, 0, 0, 0)), Some(a));
    assert_eq!(t.lookup(ip4(192, 0, 0, 1)), Some(a));
    let v6_host = ip6(0x24446801, 0x40e40800, 0xdeaebeef, 0xdefbeef);
    let in_v6_98 = ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0x10101010);
    assert_eq!(t.lookup(v6_host), Some(a));
    assert_eq!(t.lookup(in_v6_98), Some(a));
    // Must be an exact match to remove.
    assert!(!t.remove(net(ip4(192, 0, 0, 0), 32), a));
    assert_eq!(t.lookup(ip4(192, 0, 0, 1)), Some(a));
    // A different peer has no effect.
    assert!(!t.remove(net(ip4(192, 0, 0, 0), 24), b));
    assert_eq!(t.lookup(ip4(192, 0, 0, 1)), Some(a));
    // An invalid prefix length cannot be expressed.
    assert!(IpNet::truncating(ip4(192, 0, 0, 0), 33).is_err());
    assert!(t.remove(net(ip4(192, 0, 0, 0), 24), a));
    assert_ne!(t.lookup(ip4(192, 0, 0, 1)), Some(a));
    assert!(t.remove(net(ip4(1, 0, 0, 0), 32), a));
    assert_ne!(t.lookup(ip4(1, 0, 0, 0)), Some(a));
    // Must be an exact match to remove.
    assert!(!t.remove(net(v6_host, 96), a));
    assert_eq!(t.lookup(v6_host), Some(a));
    // A different peer has no effect.
    assert!(!t.remove(net(v6_host, 128), b));
    assert_eq!(t.lookup(v6_host), Some(a));
    assert!(IpNet::truncating(v6_host, 129).is_err());
    assert!(t.remove(net(v6_host, 128), a));
    assert_ne!(t.lookup(v6_host), Some(a));
    // Must match the peer to remove.
    let v6_98 = net(ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0), 98);
    assert!(!t.remove(v6_98, b));
    assert_eq!(t.lookup(in_v6_98), Some(a));
    assert!(t.remove(v6_98, a));
    assert_ne!(t.lookup(in_v6_98), Some(a));
    assert_invariants(&t);

    let mut t = AllowedIps::new();
    t.insert(net(ip4(192, 168, 0, 0), 16), a);
    t.insert(net(ip4(192, 168, 0, 0), 24), a);
    t.remove_value(a);
    assert_ne!(t.lookup(ip4(192, 168, 0, 1)), Some(a));
    assert!(t.is_empty());
    assert!(t.v4.is_none(), "branching nodes left behind");

    // The deepest tries: 129 host routes spread over all of the v6 space
    // (the kernel checks its fixed-size stack of nodes with these).
    let mut t = AllowedIps::new();
    let mut hosts = Vec::new();
    for i in 0..64 {
        let part = u64::MAX << i;
        hosts.push(u128::from(u64::MAX) << 64 | u128::from(part));
        hosts.push(u128::from(part) << 64);
    }
    hosts.push(0);
    for host in &hosts {
        assert_eq!(
            t.insert(net(IpAddr::V6(Ipv6Addr::from(*host)), 128), a),
            None
        );
    }
    assert_eq!(t.len(), 129);
    assert_invariants(&t);
    for host in &hosts {
        assert_eq!(t.lookup(IpAddr::V6(Ipv6Addr::from(*host))), Some(a));
    }
    assert_eq!(t.lookup(ip6(0, 0, 0, 1)), None);
    t.remove_value(a);
    assert!(t.is_empty());
    assert!(t.v6.is_none(), "branching nodes left behind");

    // The networks of a peer come back with their host bits cleared.
    let mut t = AllowedIps::new();
    t.insert(net(ip4(192, 95, 5, 93), 27), a);
    t.insert(net(ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128), a);
    t.insert(net(ip4(10, 1, 0, 20), 29), a);
    t.insert(
        net(ip6(0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523), 83),
        a,
    );
    t.insert(
        net(ip6(0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523), 21),
        a,
    );
    assert_eq!(
        t.nets_of(a),
        [
            parse("10.1.0.16/29"),
            parse("192.95.5.64/27"),
            parse("2607:5000::/21"),
            parse("2607:5300:6000:6b00::c05f:543/128"),
            parse("2607:5300:6d8a:6bf8:dab1:e000::/83"),
        ]
    );
    assert_eq!(t.nets_of(b), []);
}

#[test]
fn whole_space_and_host_routes() {
    let mut t = AllowedIps::new();
    assert_eq!(t.lookup(addr("198.18.0.1")), None);
    t.insert(parse("0.0.0.0/0"), 1);
    assert_eq!(t.lookup(addr("0.0.0.0")), Some(1));
    assert_eq!(t.lookup(addr("255.255.255.255")), Some(1));
    assert_eq!(t.lookup(addr("2001:db8::1")), None, "v4 /0 holds no v6");

    t.insert(parse("::/0"), 2);
    assert_eq!(t.lookup(addr("::")), Some(2));
    assert_eq!(
        t.lookup(addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
        Some(2)
    );

    for host in ["0.0.0.0", "198.18.0.1", "255.255.255.255"] {
        t.insert(parse(&format!("{host}/32")), 3);
        assert_eq!(t.lookup(addr(host)), Some(3), "{host}");
    }
    assert_eq!(t.lookup(addr("198.18.0.0")), Some(1));
    assert_eq!(t.lookup(addr("198.18.0.2")), Some(1));
    assert_eq!(t.lookup(addr("255.255.255.254")), Some(1));
    assert_eq!(t.lookup(addr("0.0.0.1")), Some(1));

    for host in [
        "::",
        "2001:db8::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ] {
        t.insert(parse(&format!("{host}/128")), 4);
        assert_eq!(t.lookup(addr(host)), Some(4), "{host}");
    }
    assert_eq!(t.lookup(addr("2001:db8::")), Some(2));
    assert_eq!(t.lookup(addr("2001:db8::2")), Some(2));
    assert_eq!(t.lookup(addr("::1")), Some(2));

    assert_eq!(t.len(), 8);
    assert_eq!(
        t.nets_of(3),
        [
            parse("0.0.0.0/32"),
            parse("198.18.0.1/32"),
            parse("255.255.255.255/32")
        ]
    );
    assert_invariants(&t);

    assert!(t.remove(parse("0.0.0.0/0"), 1));
    assert_eq!(t.lookup(addr("198.18.0.2")), None);
    assert_eq!(t.lookup(addr("198.18.0.1")), Some(3));
    assert!(t.remove(parse("::/0"), 2));
    assert_eq!(t.lookup(addr("2001:db8::2")), None);
    assert_eq!(t.lookup(addr("2001:db8::1")), Some(4));
    assert_invariants(&t);
}

#[test]
fn inserting_again_replaces_the_owner() {
    let mut t = AllowedIps::new();
    let net10 = parse("10.0.0.0/8");
    assert_eq!(t.insert(net10, 1), None);
    assert_eq!(t.insert(net10, 1), Some(1), "same peer again");
    assert_eq!(t.len(), 1);
    assert_eq!(t.insert(net10, 2), Some(1), "moved to another peer");
    assert_eq!(t.len(), 1);
    assert_eq!(t.lookup(addr("10.1.2.3")), Some(2));
    assert_eq!(t.nets_of(1), []);
    assert_eq!(t.nets_of(2), [net10]);
    // The old owner can no longer remove it.
    assert!(!t.remove(net10, 1));
    assert_eq!(t.lookup(addr("10.1.2.3")), Some(2));
    assert_invariants(&t);
}

#[test]
fn removal_needs_the_owner_and_the_exact_network() {
    let mut t = AllowedIps::new();
    t.insert(parse("10.0.0.0/8"), 1);
    t.insert(parse("10.1.0.0/16"), 2);
    t.insert(parse("2001:db8::/32"), 1);

    assert!(!t.remove(parse("10.1.0.0/16"), 1), "owned by another peer");
    assert!(!t.remove(parse("10.1.0.0/24"), 2), "not in the table");
    assert!(!t.remove(parse("10.0.0.0/7"), 1), "contains the network");
    assert!(!t.remove(parse("10.0.0.0/8"), 3), "unknown peer");
    assert!(!t.remove(parse("::ffff:10.0.0.0/104"), 1), "other family");
    assert!(!t.remove(parse("2001:db8::/33"), 1));
    assert_eq!(t.len(), 3);
    assert_eq!(t.lookup(addr("10.1.2.3")), Some(2));

    // The shorter prefix still matches after the longer goes.
    assert!(t.remove(parse("10.1.0.0/16"), 2));
    assert_eq!(t.lookup(addr("10.1.2.3")), Some(1));
    assert!(!t.remove(parse("10.1.0.0/16"), 2), "already gone");
    assert_eq!(t.len(), 2);
    assert_invariants(&t);

    t.insert(parse("10.1.0.0/16"), 2);
    t.insert(parse("10.1.2.0/24"), 3);
    t.remove_value(1);
    assert_eq!(t.lookup(addr("10.1.2.3")), Some(3));
    assert_eq!(t.lookup(addr("10.1.3.3")), Some(2));
    assert_eq!(t.lookup(addr("10.2.0.0")), None);
    assert_eq!(t.lookup(addr("2001:db8::1")), None);
    assert_eq!(t.len(), 2);
    assert_invariants(&t);
    t.remove_value(2);
    t.remove_value(3);
    assert!(t.is_empty());
    assert!(t.v4.is_none() && t.v6.is_none());
}

#[test]
fn v4_mapped_addresses_are_looked_up_as_v6() {
    let mut t = AllowedIps::new();
    t.insert(parse("192.0.2.0/24"), 1);
    assert_eq!(t.lookup(addr("192.0.2.1")), Some(1));
    assert_eq!(t.lookup(addr("::ffff:192.0.2.1")), None);

    t.insert(parse("::ffff:0:0/96"), 2);
    assert_eq!(t.lookup(addr("::ffff:192.0.2.1")), Some(2));
    assert_eq!(t.lookup(addr("192.0.2.1")), Some(1));
    assert_eq!(t.nets_of(2), [parse("::ffff:0.0.0.0/96")]);
}

/// The index of a value's networks reaches the least network and the
/// greatest, and no other value's.
#[test]
fn the_index_holds_the_extreme_networks() {
    let mut t = AllowedIps::new();
    let (least, greatest) = (
        parse("0.0.0.0/0"),
        parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"),
    );
    for owner in [1, 3] {
        t.insert(parse("198.18.0.0/15"), owner);
    }
    t.insert(least, 2);
    t.insert(greatest, 2);
    t.insert(parse("2001:db8::/32"), 2);
    assert_eq!(t.nets_of(2), [least, parse("2001:db8::/32"), greatest]);
    assert_eq!(t.nets_of(3), [parse("198.18.0.0/15")]);
    t.remove_value(2);
    assert_eq!(t.nets_of(2), []);
    assert_eq!(t.lookup(addr("2001:db8::1")), None);
    assert_eq!(t.lookup(addr("198.18.0.1")), Some(3));
    assert_eq!(t.len(), 1);
    assert_invariants(&t);
}

#[test]
fn debug_lists_networks_and_owners() {
    let mut t = AllowedIps::default();
    t.insert(parse("2001:db8::/32"), 2);
    t.insert(parse("10.0.0.0/8"), 1);
    assert_eq!(format!("{t:?}"), r#"{"10.0.0.0/8": 1, "2001:db8::/32": 2}"#);
}

/// The reference: a list scanned for the longest network that holds the
/// address.
#[derive(Default)]
struct Model(Vec<(IpNet, u8)>);

impl Model {
    fn insert(&mut self, net: IpNet, value: u8) -> Option<u8> {
        match self.0.iter_mut().find(|(known, _)| *known == net) {
            Some((_, owner)) => Some(std::mem::replace(owner, value)),
            None => {
                self.0.push((net, value));
                None
            }
        }
    }

    fn remove(&mut self, net: IpNet, value: u8) -> bool {
        let before = self.0.len();
        self.0.retain(|entry| *entry != (net, value));
        self.0.len() != before
    }

    fn remove_value(&mut self, value: u8) {
        self.0.retain(|(_, owner)| *owner != value);
    }

    fn lookup(&self, addr: IpAddr) -> Option<u8> {
        self.0
            .iter()
            .filter(|(net, _)| net.contains(addr))
            .max_by_key(|(net, _)| net.prefix_len())
            .map(|(_, value)| *value)
    }

    fn nets_of(&self, value: u8) -> Vec<IpNet> {
        let mut nets: Vec<IpNet> = self
            .0
            .iter()
            .filter(|(_, owner)| *owner == value)
            .map(|(net, _)| *net)
            .collect();
        nets.sort();
        nets
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert(IpNet, u8),
    Remove(IpNet, u8),
    /// Removes a network of the model, by its owner or by `Some(value)`.
    RemoveKnown(prop::sample::Index, Option<u8>),
    RemoveValue(u8),
}

const VALUES: u8 = 4;

/// `bits` random low bits (at most `width`), mostly few, so that
/// addresses stay near their base.
fn free_bits(width: u32) -> impl Strategy<Value = u32> {
    prop_oneof![3 => 0..=width / 4, 1 => 0..=width]
}

fn v4_addr() -> impl Strategy<Value = IpAddr> {
    let bases = vec![0x0a00_0000_u32, 0x0a00_8000, 0xc0a8_0100, 0xffff_ff00, 0];
    (prop::sample::select(bases), any::<u32>(), free_bits(32)).prop_map(|(base, noise, bits)| {
        let low = u32::MAX.checked_shr(32 - bits).unwrap_or(0);
        IpAddr::V4(Ipv4Addr::from(base ^ (noise & low)))
    })
}

fn v6_addr() -> impl Strategy<Value = IpAddr> {
    let bases = vec![
        u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)),
        u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0)),
        // IPv4-mapped: must not meet the v4 networks.
        u128::from(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0)),
        u128::from(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)),
        0,
    ];
    (prop::sample::select(bases), any::<u128>(), free_bits(128)).prop_map(|(base, noise, bits)| {
        let low = u128::MAX.checked_shr(128 - bits).unwrap_or(0);
        IpAddr::V6(Ipv6Addr::from(base ^ (noise & low)))
    })
}

fn any_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![v4_addr(), v6_addr()]
}

fn any_net() -> impl Strategy<Value = IpNet> {
    prop_oneof![(v4_addr(), 0..=32_u8), (v6_addr(), 0..=128_u8)]
        .prop_map(|(addr, len)| net(addr, len))
}

fn any_op() -> impl Strategy<Value = Op> {
    let value = 0..VALUES;
    prop_oneof![
        6 => (any_net(), value.clone()).prop_map(|(net, value)| Op::Insert(net, value)),
        1 => (any_net(), value.clone()).prop_map(|(net, value)| Op::Remove(net, value)),
        3 => (any::<prop::sample::Index>(), prop::option::of(value.clone()))
            .prop_map(|(index, value)| Op::RemoveKnown(index, value)),
        1 => value.prop_map(Op::RemoveValue),
    ]
}

/// The last address of `net`.
fn last_addr(net: IpNet) -> IpAddr {
    match net.addr() {
        IpAddr::V4(v4) => {
            let host = u32::MAX
                .checked_shr(u32::from(net.prefix_len()))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) | host))
        }
        IpAddr::V6(v6) => {
            let host = u128::MAX
                .checked_shr(u32::from(net.prefix_len()))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) | host))
        }
    }
}

proptest! {
    #[test]
    fn matches_a_linear_scan(
        ops in prop::collection::vec(any_op(), 0..200),
        probes in prop::collection::vec(any_addr(), 64),
    ) {
        let mut table = AllowedIps::new();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Insert(net, value) => {
                    prop_assert_eq!(table.insert(net, value), model.insert(net, value));
                }
                Op::Remove(net, value) => {
                    prop_assert_eq!(table.remove(net, value), model.remove(net, value));
                }
                Op::RemoveKnown(index, value) => {
                    if model.0.is_empty() {
                        continue;
                    }
                    let (net, owner) = model.0[index.index(model.0.len())];
                    let value = value.unwrap_or(owner);
                    prop_assert_eq!(table.remove(net, value), model.remove(net, value));
                }
                Op::RemoveValue(value) => {
                    table.remove_value(value);
                    model.remove_value(value);
                }
            }
            prop_assert_eq!(table.len(), model.0.len());
            assert_invariants(&table);
            for &probe in &probes[..8] {
                prop_assert_eq!(table.lookup(probe), model.lookup(probe), "{}", probe);
            }
        }
        assert_invariants(&table);

        let edges = model.0.iter().flat_map(|(net, _)| [net.addr(), last_addr(*net)]);
        for probe in probes.iter().copied().chain(edges) {
            prop_assert_eq!(table.lookup(probe), model.lookup(probe), "{}", probe);
        }
        for value in 0..VALUES {
            prop_assert_eq!(table.nets_of(value), model.nets_of(value));
        }
        for value in 0..VALUES {
            table.remove_value(value);
        }
        prop_assert!(table.is_empty());
        prop_assert!(table.v4.is_none() && table.v6.is_none());
    }
}

#[test]
fn the_most_specific_network_wins() {
    let mut table = AllowedIps::new();
    table.insert("10.0.0.0/8".parse().unwrap(), 1);
    table.insert("10.1.0.0/16".parse().unwrap(), 2);
    assert_eq!(table.lookup("10.1.2.3".parse().unwrap()), Some(2));
    assert_eq!(table.lookup("10.2.0.1".parse().unwrap()), Some(1));
    assert_eq!(table.lookup("192.0.2.1".parse().unwrap()), None);
}
