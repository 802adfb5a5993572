//! Per-source token buckets for handshake messages.
//!
//! Under load, a handshake message whose cookie (`mac2`) checked out is still
//! limited per source address, as by the Linux kernel's `ratelimiter.c`: each
//! source has a bucket of tokens counted in nanoseconds, refilled by the time
//! that passes and capped at [`PACKETS_BURSTABLE`] packets' worth; a message
//! costs one packet's worth (a second divided by [`PACKETS_PER_SECOND`]).
//!
//! ```text
//!   source ──► key ──► bucket: tokens += elapsed ns (≤ burst × cost)
//!   IPv4 a.b.c.d           allowed iff tokens ≥ cost, then tokens -= cost
//!   IPv6 /64 prefix
//! ```
//!
//! A source is an IPv4 address, or the /64 prefix of an IPv6 address (one
//! host usually owns a whole /64, so limiting single IPv6 addresses would limit
//! nothing). An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack
//! socket reports for an IPv4 peer) counts as the IPv4 address it maps: its
//! /64 prefix is all zeros, so grouping it by prefix would put every IPv4 peer
//! in one bucket and let one of them starve all the others.
//!
//! Memory is bounded: at most [`MAX_ENTRIES`] sources are tracked. When the
//! table is full, a new source takes the place of the source used least
//! recently, found in O(log n) through a second map ordered by last use.
//! Refusing every new source instead would let anyone who can send from
//! [`MAX_ENTRIES`] addresses a second (spoofed ones, where a limiter sits in
//! front of anything that does not prove the source address) lock every other
//! source out. Eviction hands the evicted source a fresh bucket when it comes
//! back, at most a burst more than it was due; what caps the total work is a
//! budget shared by all sources where the work is expensive (the tunnel's
//! handshakes under load are behind cookies, which prove the source address,
//! and the daemon's introductions behind a global budget of checks).
//! Sources idle for over a second are forgotten, by a sweep that runs inside
//! [`RateLimiter::allow`] at most once a second.
//!
//! Like the rest of the crate, the limiter reads no clock: every call takes
//! `now`, and a `now` earlier than one seen before is treated as no time
//! passing, never as a reason to panic or to mint tokens.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The sustained rate [`RateLimiter::new`] allows per source, in messages per
/// second (the kernel's `PACKETS_PER_SECOND`).
pub const PACKETS_PER_SECOND: u32 = 20;

/// How many messages [`RateLimiter::new`] allows from a source at once after
/// it was quiet (the kernel's `PACKETS_BURSTABLE`).
pub const PACKETS_BURSTABLE: u32 = 5;

/// The most sources a [`RateLimiter`] tracks at once; while that many are
/// tracked, a new source evicts the one used least recently.
///
/// 16 384 entries take about a megabyte. The kernel sizes its table by the
/// machine's memory, up to 65 536 entries; at the default rate a legitimate
/// source needs its entry for only about a second, so 16 384 admits thousands
/// of peers handshaking at the same moment.
pub const MAX_ENTRIES: usize = 16_384;

/// Nanoseconds in a second: the unit of tokens.
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// How often idle sources are swept out (the kernel's garbage collector runs
/// once a second).
const PURGE_INTERVAL: Duration = Duration::from_secs(1);

/// How long a source must be idle before it may be forgotten (the kernel
/// forgets entries idle for over a second).
const IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// A bucket key: who counts as one source.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    /// An IPv4 address, or an IPv4-mapped IPv6 address.
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl Source {
    /// The bucket key of `ip`.
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Source::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(u32::from(v4)),
                // The shift leaves 64 bits, so the cast is lossless.
                None => Source::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// The token bucket of one source.
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
struct Bucket {
    /// Nanoseconds of credit, at most the limiter's `token_max`.
    tokens: u64,
    /// The latest `now` this bucket was credited up to.
    last: Instant,
    /// When the bucket was last used, as a position in the limiter's order of
    /// use: its key in `RateLimiter::by_use`.
    used: u64,
}

impl Bucket {
    /// Credits the time since the last call, then takes one packet's cost if
    /// there is enough.
    fn take(&mut self, now: Instant, packet_cost: u64, token_max: u64) -> bool {
        let elapsed = nanos(now.saturating_duration_since(self.last));
        let tokens = self.tokens.saturating_add(elapsed).min(token_max);
        // Never move backwards: time credited once is not credited again.
        self.last = self.last.max(now);
        let allowed = tokens >= packet_cost;
        self.tokens = if allowed {
            tokens - packet_cost
        } else {
            tokens
        };
        allowed
    }

    /// Whether the bucket was idle for over [`IDLE_TIMEOUT`] and has refilled,
    /// so that forgetting it changes no future answer.
    fn forgettable(&self, now: Instant, token_max: u64) -> bool {
        let idle = now.saturating_duration_since(self.last);
        idle > IDLE_TIMEOUT && self.tokens.saturating_add(nanos(idle)) >= token_max
    }
}

/// A duration in whole nanoseconds, saturating at `u64::MAX` (584 years).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Per-source token buckets deciding which incoming handshake messages are
/// processed while the engine is under load.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use std::time::{Duration, Instant};
/// use sentrymesh_tunnel::RateLimiter;
///
/// let mut limiter = RateLimiter::new();
/// let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// let now = Instant::now();
/// // A burst of five, then one more every 50 ms.
/// assert!((0..5).all(|_| limiter.allow(now, source)));
/// assert!(!limiter.allow(now, source));
/// assert!(limiter.allow(now + Duration::from_millis(50), source));
/// ```
#[cfg_attr(any(test, feature = "testing"), derive(Clone))]
pub struct RateLimiter {
    /// Nanoseconds of credit one message costs.
    packet_cost: u64,
    /// The most credit a bucket holds: the cost of a burst.
    token_max: u64,
    /// The buckets of the sources seen recently, in a deterministic order
    /// that no sender can make degenerate.
    buckets: BTreeMap<Source, Bucket>,
    /// Every tracked source by its bucket's `used`: the first is the one
    /// evicted when the table is full.
    by_use: BTreeMap<u64, Source>,
    /// The next `used` to hand out; it only grows (2^64 uses never come).
    next_use: u64,
    /// When idle buckets were last swept out.
    last_purge: Option<Instant>,
}

impl RateLimiter {
    /// A limiter with the kernel's limits: [`PACKETS_PER_SECOND`] messages a
    /// second per source, in bursts of up to [`PACKETS_BURSTABLE`].
    pub fn new() -> Self {
        Self::with_limits(PACKETS_PER_SECOND, PACKETS_BURSTABLE)
    }

    /// A limiter allowing `packets_per_second` messages a second per source,
    /// in bursts of up to `burst`.
    ///
    /// Both are taken as at least 1. The cost of a message is a second divided
    /// by `packets_per_second` in whole nanoseconds (at least one), so rates
    /// that do not divide a second are rounded up slightly.
    pub fn with_limits(packets_per_second: u32, burst: u32) -> Self {
        let packet_cost = (NANOS_PER_SECOND / u64::from(packets_per_second.max(1))).max(1);
        Self {
            packet_cost,
            token_max: packet_cost.saturating_mul(u64::from(burst.max(1))),
            buckets: BTreeMap::new(),
            by_use: BTreeMap::new(),
            next_use: 0,
            last_purge: None,
        }
    }

    /// Whether a handshake message from `source` received at `now` may be
    /// processed; counts it against the source's bucket if so.
    ///
    /// A source not seen recently starts with a full bucket. While
    /// [`MAX_ENTRIES`] sources are tracked, a new source first evicts the
    /// source used least recently. At most once a second, sources idle for
    /// over a second are forgotten first.
    pub fn allow(&mut self, now: Instant, source: IpAddr) -> bool {
        self.purge_if_due(now);
        let source = Source::of(source);
        if !self.buckets.contains_key(&source) && self.buckets.len() >= MAX_ENTRIES {
            if let Some((_, oldest)) = self.by_use.pop_first() {
                self.buckets.remove(&oldest);
            }
        }
        let used = self.next_use;
        self.next_use += 1;
        self.by_use.insert(used, source);
        let (packet_cost, token_max) = (self.packet_cost, self.token_max);
        match self.buckets.entry(source) {
            Entry::Occupied(bucket) => {
                let bucket = bucket.into_mut();
                self.by_use.remove(&bucket.used);
                bucket.used = used;
                bucket.take(now, packet_cost, token_max)
            }
            Entry::Vacant(slot) => slot
                .insert(Bucket {
                    tokens: token_max,
                    last: now,
                    used,
                })
                .take(now, packet_cost, token_max),
        }
    }

    /// How many sources are tracked, including idle ones not yet forgotten.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Forgets idle, refilled buckets if a second passed since the last sweep.
    fn purge_if_due(&mut self, now: Instant) {
        if let Some(last) = self.last_purge {
            if now.saturating_duration_since(last) < PURGE_INTERVAL {
                return;
            }
        }
        self.last_purge = Some(now);
        let (token_max, by_use) = (self.token_max, &mut self.by_use);
        self.buckets.retain(|_, bucket| {
            let forget = bucket.forgettable(now, token_max);
            if forget {
                by_use.remove(&bucket.used);
            }
            !forget
        });
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RateLimiter {
    /// Shows the limits and how many sources are tracked, never the sources:
    /// peer addresses stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("packet_cost", &Duration::from_nanos(self.packet_cost))
            .field("burst_cost", &Duration::from_nanos(self.token_max))
            .field("sources", &self.buckets.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    const COST: Duration = Duration::from_millis(1000 / PACKETS_PER_SECOND as u64);

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    fn v6(segments: [u16; 8]) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(segments))
    }

    /// The kernel's `timings_test` (`selftest/ratelimiter.c`) in virtual time:
    /// the expected answers for one IPv4 source and one IPv6 /64, each step
    /// also checking that a fresh IPv4 source and a fresh /64 are allowed.
    #[test]
    fn kernel_selftest_timings() {
        let burst = PACKETS_BURSTABLE as usize;
        let mut expected = vec![(true, Duration::ZERO); burst];
        expected.extend([
            (false, Duration::ZERO),
            (true, COST),
            (false, Duration::ZERO),
            (true, COST * 2),
            (true, Duration::ZERO),
            (false, Duration::ZERO),
        ]);
        let mut limiter = RateLimiter::new();
        let mut now = Instant::now();
        let base4 = 8182u32;
        let (hi0, hi1) = (1212u32, 289_188u32);
        for (i, &(result, sleep)) in expected.iter().enumerate() {
            let i = u32::try_from(i).unwrap();
            now += sleep;
            assert_eq!(limiter.allow(now, v4(base4)), result, "v4 step {i}");
            assert!(limiter.allow(now, v4(base4 + i + 1)), "fresh v4 {i}");
            // The low 64 bits change at every step: still the same /64.
            let addr = |hi0: u32| {
                let words = [hi0, hi1, i, i];
                let bits = words
                    .iter()
                    .fold(0u128, |acc, w| acc << 32 | u128::from(*w));
                IpAddr::V6(Ipv6Addr::from(bits))
            };
            assert_eq!(limiter.allow(now, addr(hi0)), result, "v6 step {i}");
            assert!(limiter.allow(now, addr(hi0 + i + 1)), "fresh /64 {i}");
        }
    }

    /// The kernel's `capacity_test`, but past the cap a new source evicts
    /// the least recently used one instead of being refused.
    #[test]
    fn capacity_is_bounded_and_a_new_source_is_never_refused() {
        let mut limiter = RateLimiter::new();
        let now = Instant::now();
        for i in 0..=MAX_ENTRIES {
            let n = u32::try_from(i).unwrap();
            assert!(limiter.allow(now, v4(n)), "source {i}");
        }
        assert_eq!(limiter.len(), MAX_ENTRIES);
        assert_eq!(limiter.by_use.len(), MAX_ENTRIES);
    }

    /// 100 000 spoofed sources within a second, all at the same instant so
    /// no sweep helps: the table stays bounded, a real source arriving after
    /// them is allowed its whole burst, and a source that kept sending all
    /// along kept its bucket, and so its limit.
    #[test]
    fn a_flood_of_spoofed_sources_never_locks_out_a_real_one() {
        let mut limiter = RateLimiter::new();
        let now = Instant::now();
        let steady = v4(0xc612_0001);
        while limiter.allow(now, steady) {}
        // 198.18.0.0/15 holds 131 072 addresses.
        for n in 0..100_000u32 {
            limiter.allow(now, v4(0xc612_0000 + 2 + n));
            if n % 1000 == 0 {
                assert!(
                    !limiter.allow(now, steady),
                    "the drained source stays limited"
                );
            }
            assert!(limiter.len() <= MAX_ENTRIES);
        }
        let real = v4(0xc613_ffff);
        assert!((0..PACKETS_BURSTABLE).all(|_| limiter.allow(now, real)));
        assert!(
            !limiter.allow(now, real),
            "and then limited like any source"
        );
        assert_eq!(limiter.len(), MAX_ENTRIES);
        assert_eq!(limiter.by_use.len(), MAX_ENTRIES);
    }

    #[test]
    fn the_least_recently_used_source_is_evicted() {
        let mut limiter = RateLimiter::new();
        let now = Instant::now();
        for n in 0..MAX_ENTRIES as u32 {
            assert!(limiter.allow(now, v4(n)));
        }
        // Source 0 drains its bucket, so it is the most recently used.
        while limiter.allow(now, v4(0)) {}
        assert!(limiter.allow(now, v4(u32::MAX)));
        assert!(
            !limiter.allow(now, v4(0)),
            "source 0 kept its drained bucket"
        );
        assert!(
            limiter.allow(now, v4(1)) && limiter.len() == MAX_ENTRIES,
            "source 1 was evicted and starts again"
        );
    }

    #[test]
    fn burst_then_refused_then_one_per_fifty_ms() {
        let mut limiter = RateLimiter::default();
        let source = v4(0xc000_0201);
        let t0 = Instant::now();
        for n in 0..5 {
            assert!(limiter.allow(t0, source), "burst packet {n}");
        }
        assert!(!limiter.allow(t0, source), "sixth packet");
        let t1 = t0 + Duration::from_millis(49);
        assert!(!limiter.allow(t1, source), "49 ms is not enough");
        let t2 = t0 + Duration::from_millis(50);
        assert!(limiter.allow(t2, source), "after 50 ms");
        assert!(!limiter.allow(t2, source), "only one after 50 ms");
    }

    #[test]
    fn sustained_rate_over_ten_seconds() {
        let mut limiter = RateLimiter::new();
        let source = v4(1);
        let t0 = Instant::now();
        let allowed = (0..=10_000u64)
            .filter(|ms| limiter.allow(t0 + Duration::from_millis(*ms), source))
            .count();
        assert_eq!(allowed, 20 * 10 + 5);
    }

    #[test]
    fn distinct_ipv4_sources_are_independent() {
        let mut limiter = RateLimiter::new();
        let now = Instant::now();
        let (a, b) = (v4(0x0a00_0001), v4(0x0a00_0002));
        while limiter.allow(now, a) {}
        assert!((0..5).all(|_| limiter.allow(now, b)));
        assert!(!limiter.allow(now, a));
        assert_eq!(limiter.len(), 2);
    }

    #[test]
    fn ipv6_groups_by_slash_64() {
        let mut limiter = RateLimiter::new();
        let now = Instant::now();
        let one = v6([0x2001, 0xdb8, 1, 2, 0, 0, 0, 1]);
        let same_64 = v6([0x2001, 0xdb8, 1, 2, 0xffff, 0xabcd, 0x1234, 0x5678]);
        let other_64 = v6([0x2001, 0xdb8, 1, 3, 0, 0, 0, 1]);
        assert!((0..3).all(|_| limiter.allow(now, one)));
        assert!((0..2).all(|_| limiter.allow(now, same_64)));
        assert!(!limiter.allow(now, one), "the /64 shares one bucket");
        assert!(!limiter.allow(now, same_64), "the /64 shares one bucket");
        assert!((0..5).all(|_| limiter.allow(now, other_64)));
        assert_eq!(limiter.len(), 2);
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_ipv4() {
        let mut limiter = RateLimiter::new();
        let now = Instant::now();
        let plain = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 7).to_ipv6_mapped());
        let other_mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 8).to_ipv6_mapped());
        assert!((0..5).all(|_| limiter.allow(now, mapped)));
        assert!(
            !limiter.allow(now, plain),
            "mapped and plain share a bucket"
        );
        assert!(
            limiter.allow(now, other_mapped),
            "not one /64 for all of IPv4"
        );
        // `::1` and `::ffff:0:1` differ: only the mapped form is IPv4.
        assert!(limiter.allow(now, IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(limiter.len(), 3);
    }

    #[test]
    fn idle_sources_are_purged() {
        let mut limiter = RateLimiter::new();
        let t0 = Instant::now();
        for n in 0..100 {
            assert!(limiter.allow(t0, v4(n)));
        }
        assert_eq!(limiter.len(), 100);
        // A second later, nothing is idle for *over* a second yet.
        let t1 = t0 + Duration::from_secs(1);
        assert!(limiter.allow(t1, v4(1000)));
        assert_eq!(limiter.len(), 101);
        // The next sweep is due a second after the last one.
        let t2 = t1 + Duration::from_millis(999);
        assert!(limiter.allow(t2, v4(1001)));
        assert_eq!(limiter.len(), 102);
        let t3 = t1 + Duration::from_secs(1);
        assert!(limiter.allow(t3, v4(1002)));
        assert_eq!(limiter.len(), 3, "only the recent sources remain");
        let t4 = t3 + Duration::from_secs(10);
        assert!(limiter.allow(t4, v4(1003)));
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn an_idle_but_drained_bucket_is_kept() {
        // At one message a second with a burst of five, a second of idleness
        // refills one token only: forgetting the bucket would hand out four.
        let mut limiter = RateLimiter::with_limits(1, 5);
        let t0 = Instant::now();
        while limiter.allow(t0, v4(1)) {}
        let t1 = t0 + Duration::from_millis(1500);
        assert!(limiter.allow(t1, v4(2)));
        assert_eq!(limiter.len(), 2, "the drained bucket survives the sweep");
        assert!(limiter.allow(t1, v4(1)));
        assert!(!limiter.allow(t1, v4(1)));
    }

    #[test]
    fn cap_holds_and_frees_after_idleness() {
        let mut limiter = RateLimiter::new();
        let t0 = Instant::now();
        for n in 0..MAX_ENTRIES as u32 {
            assert!(limiter.allow(t0, v4(n)));
        }
        assert!(limiter.allow(t0, v4(u32::MAX)), "new source while full");
        assert!(limiter.allow(t0, v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])));
        assert!(limiter.allow(t0, v4(7)), "known sources keep their bucket");
        assert_eq!(limiter.len(), MAX_ENTRIES);
        let t1 = t0 + Duration::from_millis(2001);
        assert!(limiter.allow(t1, v4(u32::MAX)), "after the sweep");
        assert_eq!(limiter.len(), 1);
        assert_eq!(limiter.by_use.len(), 1);
    }

    #[test]
    fn time_going_backwards_neither_panics_nor_mints_tokens() {
        let mut limiter = RateLimiter::new();
        let source = v4(42);
        let t0 = Instant::now();
        let late = t0 + Duration::from_secs(5);
        while limiter.allow(late, source) {}
        assert!(!limiter.allow(t0, source), "earlier now: no time passed");
        assert!(
            !limiter.allow(late, source),
            "the gap is not credited twice"
        );
        assert!(limiter.allow(late + COST, source));
        // A sweep with an earlier `now` forgets nothing and does not panic.
        assert!(limiter.allow(t0, v4(43)));
        assert_eq!(limiter.len(), 2);
    }

    #[test]
    fn limits_are_clamped() {
        let now = Instant::now();
        let mut slow = RateLimiter::with_limits(0, 0);
        assert!(slow.allow(now, v4(1)), "a burst of at least one");
        assert!(!slow.allow(now, v4(1)));
        assert!(slow.allow(now + Duration::from_secs(1), v4(1)));
        let mut fast = RateLimiter::with_limits(u32::MAX, u32::MAX);
        assert!((0..10_000).all(|_| fast.allow(now, v4(1))));
    }

    #[test]
    fn debug_shows_no_addresses() {
        let mut limiter = RateLimiter::new();
        limiter.allow(Instant::now(), v4(0xc633_6407));
        let shown = format!("{limiter:?}");
        assert!(!shown.contains("198"), "{shown}");
        assert!(shown.contains("sources: 1"), "{shown}");
    }

    proptest! {
        /// For any schedule, no source gets more than its burst plus one
        /// message per cost of the time it was seen over.
        #[test]
        fn never_more_than_burst_plus_rate(
            steps in proptest::collection::vec((0u64..400, 0usize..SOURCES), 1..400),
        ) {
            let sources = sources();
            let mut limiter = RateLimiter::new();
            let base = Instant::now();
            let mut offset_ms: u64 = 0;
            // Per bucket: first time seen (ms) and messages allowed.
            let mut seen: BTreeMap<Source, (u64, u64)> = BTreeMap::new();
            for (delta, which) in steps {
                offset_ms += delta;
                let source = sources[which];
                let allowed = limiter.allow(base + Duration::from_millis(offset_ms), source);
                let entry = seen.entry(Source::of(source)).or_insert((offset_ms, 0));
                entry.1 += u64::from(allowed);
                // Forgotten buckets were full, so purges hand out nothing
                // that time had not refilled.
                let bound = u64::from(PACKETS_BURSTABLE) + (offset_ms - entry.0) / 50;
                prop_assert!(entry.1 <= bound, "{} allowed, bound {}", entry.1, bound);
            }
        }

        /// Time going backwards and forwards arbitrarily never panics, and the
        /// table only ever holds the buckets of the sources used.
        #[test]
        fn any_time_order_is_safe(
            steps in proptest::collection::vec((-3000i64..3000, 0usize..SOURCES), 1..400),
        ) {
            let sources = sources();
            let mut limiter = RateLimiter::new();
            let base = Instant::now();
            let mut offset_ms: u64 = 0;
            for (delta, which) in steps {
                offset_ms = offset_ms.saturating_add_signed(delta);
                limiter.allow(base + Duration::from_millis(offset_ms), sources[which]);
                prop_assert!(limiter.len() <= 4);
                prop_assert_eq!(limiter.len(), limiter.by_use.len());
            }
        }
    }

    /// How many addresses [`sources`] returns.
    const SOURCES: usize = 6;

    /// Addresses in four buckets: an IPv4 address and its mapped form, another
    /// IPv4 address, two addresses of one /64 and one of another.
    fn sources() -> [IpAddr; SOURCES] {
        [
            v4(1),
            IpAddr::V6(Ipv4Addr::from(1).to_ipv6_mapped()),
            v4(2),
            v6([0x2001, 0xdb8, 0, 1, 0, 0, 0, 1]),
            v6([0x2001, 0xdb8, 0, 1, 9, 9, 9, 9]),
            v6([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]),
        ]
    }
}
