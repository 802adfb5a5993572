//! Why an operator is admitted, or what keeps it out: the same rules as
//! [`TrustPolicy::admitted_ranges`], with their reasons kept, for a host to
//! show (`sentrymesh status`) and log ("which vouches are missing").
//!
//! ```text
//!  TrustPolicy + vouches + withdrawals ──► Admissions ──of(operator)──► Admission::Admitted { path, range }
//!                                                                      Admission::NotAdmitted(NotAdmitted)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sentrymesh_types::IpNet;

use super::TrustPolicy;
use crate::identity::OperatorId;

/// How an admitted operator came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustPath {
    /// The host's own operator: always admitted.
    Local,
    /// Trusted directly by the host's configuration.
    Direct,
    /// Admitted by the standing vouches of these operators, at least `k`
    /// of them, all naming its range.
    Vouched {
        /// The vouchers.
        by: BTreeSet<OperatorId>,
    },
}

/// What keeps an operator out of the mesh as one host sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotAdmitted {
    /// Fewer than `k` operators whose vouches count vouch for it with one
    /// range.
    #[error(
        "not admitted: {} of the {threshold} vouches it needs{}{}; missing {missing} more from \
         any of: {}",
        vouched_by.len(),
        range.map(|range| format!(" for {range}")).unwrap_or_default(),
        Ids(" (from ", vouched_by, ")"),
        Ids("", could_vouch, "")
    )]
    MissingVouches {
        /// The range most of its vouchers name, if any vouch stands.
        range: Option<IpNet>,
        /// The operators whose standing vouches name that range.
        vouched_by: BTreeSet<OperatorId>,
        /// The vouches it needs (`vouch_threshold`).
        threshold: usize,
        /// How many more it needs.
        missing: usize,
        /// The operators whose vouch would count and who have not vouched
        /// for that range: the missing vouches are theirs to sign. When
        /// fewer than `missing`, no vouches can admit it.
        could_vouch: BTreeSet<OperatorId>,
    },
    /// Its vouchers name two or more ranges, each `k` times or more.
    #[error(
        "not admitted: its vouchers name more than one range ({}), each often enough; they must \
         agree on one",
        Nets(ranges)
    )]
    AmbiguousRange {
        /// The ranges named often enough.
        ranges: Vec<IpNet>,
    },
    /// The range its vouchers agree on leaves the overlay or overlaps a
    /// range of the host's configuration.
    #[error(
        "not admitted: the range {range} its vouchers name leaves the overlay or overlaps a \
         range this host's configuration gives"
    )]
    RangeRefused {
        /// The range.
        range: IpNet,
    },
    /// The range its vouchers agree on overlaps that of another operator
    /// admitted by vouches: both are left out.
    #[error(
        "not admitted: its range {range} overlaps that of another operator vouched for ({}); \
         their vouchers must settle it",
        Ids("", with, "")
    )]
    RangeClash {
        /// The range.
        range: IpNet,
        /// The operators whose vouched ranges overlap it.
        with: BTreeSet<OperatorId>,
    },
}

/// How one operator stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Admitted, with its trust path and the overlay range its cards must
    /// keep inside.
    Admitted {
        /// How it came in.
        path: TrustPath,
        /// Its range.
        range: IpNet,
    },
    /// Not admitted, and why.
    NotAdmitted(NotAdmitted),
}

/// Every operator's standing under one policy, vouches and withdrawals
/// ([`TrustPolicy::admissions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admissions {
    local: OperatorId,
    direct: BTreeSet<OperatorId>,
    threshold: usize,
    /// The operators whose vouches count.
    vouchers: BTreeSet<OperatorId>,
    /// subject -> range -> the vouchers naming it.
    standing: BTreeMap<OperatorId, BTreeMap<IpNet, BTreeSet<OperatorId>>>,
    /// Each subject with standing vouches: its range, or what keeps it out.
    vouched: BTreeMap<OperatorId, Result<IpNet, NotAdmitted>>,
    /// The admitted operators and their ranges.
    ranges: BTreeMap<OperatorId, IpNet>,
}

impl Admissions {
    /// Applies the module rules of [`crate::TrustPolicy`] to `standing`.
    pub(super) fn new(
        policy: &TrustPolicy,
        standing: BTreeMap<OperatorId, BTreeMap<IpNet, BTreeSet<OperatorId>>>,
    ) -> Self {
        let threshold = policy.vouch_threshold;
        let overlay = &policy.overlay;
        let mut ranges = overlay.ranges().clone();
        // Each subject's ranges named by at least k vouchers.
        let at_threshold: BTreeMap<OperatorId, Vec<IpNet>> = standing
            .iter()
            .map(|(subject, by_range)| {
                let held = by_range
                    .iter()
                    .filter(|(_, vouchers)| vouchers.len() >= threshold)
                    .map(|(range, _)| *range)
                    .collect();
                (*subject, held)
            })
            .collect();
        // The single ranges at the threshold that the configuration allows.
        let candidates: BTreeMap<OperatorId, IpNet> = at_threshold
            .iter()
            .filter_map(|(subject, held)| match held.as_slice() {
                [range]
                    if overlay.overlay().contains_net(range)
                        && !overlay.overlaps_configured(range) =>
                {
                    Some((*subject, *range))
                }
                _ => None,
            })
            .collect();
        let vouchers: BTreeSet<OperatorId> = std::iter::once(policy.local)
            .chain(policy.direct.iter().copied())
            .collect();
        let mut clashes = clashes(&candidates);
        let mut vouched = BTreeMap::new();
        for (subject, held) in &at_threshold {
            let outcome = match held.as_slice() {
                [] => Err(missing(&standing[subject], threshold, &vouchers)),
                [range] if !candidates.contains_key(subject) => {
                    Err(NotAdmitted::RangeRefused { range: *range })
                }
                [range] => match clashes.remove(subject) {
                    None => {
                        ranges.insert(*subject, *range);
                        Ok(*range)
                    }
                    Some(with) => Err(NotAdmitted::RangeClash {
                        range: *range,
                        with,
                    }),
                },
                several => Err(NotAdmitted::AmbiguousRange {
                    ranges: several.to_vec(),
                }),
            };
            vouched.insert(*subject, outcome);
        }
        Self {
            local: policy.local,
            direct: policy.direct.clone(),
            threshold,
            vouchers,
            standing,
            vouched,
            ranges,
        }
    }

    /// How `operator` stands.
    pub fn of(&self, operator: &OperatorId) -> Admission {
        let admitted = |path| match self.ranges.get(operator) {
            Some(&range) => Admission::Admitted { path, range },
            // TrustPolicy::new gives the local and every direct operator
            // a range; a policy without one admits nobody by that path.
            None => Admission::NotAdmitted(self.no_vouches()),
        };
        if *operator == self.local {
            return admitted(TrustPath::Local);
        }
        if self.direct.contains(operator) {
            return admitted(TrustPath::Direct);
        }
        match self.vouched.get(operator) {
            Some(Ok(range)) => Admission::Admitted {
                path: TrustPath::Vouched {
                    by: self
                        .standing
                        .get(operator)
                        .and_then(|by_range| by_range.get(range))
                        .cloned()
                        .unwrap_or_default(),
                },
                range: *range,
            },
            Some(Err(reason)) => Admission::NotAdmitted(reason.clone()),
            None => Admission::NotAdmitted(self.no_vouches()),
        }
    }

    /// Whether `operator` is admitted.
    pub fn is_admitted(&self, operator: &OperatorId) -> bool {
        self.ranges.contains_key(operator)
    }

    /// The admitted operators and their ranges.
    pub fn ranges(&self) -> &BTreeMap<OperatorId, IpNet> {
        &self.ranges
    }

    /// The admitted operators and their ranges, by value.
    pub fn into_ranges(self) -> BTreeMap<OperatorId, IpNet> {
        self.ranges
    }

    /// What keeps out an operator nobody vouched for.
    fn no_vouches(&self) -> NotAdmitted {
        NotAdmitted::MissingVouches {
            range: None,
            vouched_by: BTreeSet::new(),
            threshold: self.threshold,
            missing: self.threshold,
            could_vouch: self.vouchers.clone(),
        }
    }
}

/// For each candidate whose range overlaps another's, the others: a sweep
/// over the ranges in order, `O(c log c + p)` for `c` candidates and `p`
/// overlapping pairs, not a comparison of every pair. Two networks
/// overlap only when one contains the other, and in the order of
/// [`IpNet`] (by address, then the wider first) a network comes after
/// every network that contains it, with none between that does not
/// contain it too; so the networks still open when one comes — a chain,
/// each containing the next — are exactly those that contain it.
fn clashes(candidates: &BTreeMap<OperatorId, IpNet>) -> BTreeMap<OperatorId, BTreeSet<OperatorId>> {
    let mut sorted: Vec<(IpNet, OperatorId)> = candidates
        .iter()
        .map(|(operator, range)| (*range, *operator))
        .collect();
    sorted.sort_unstable();
    let mut clashes: BTreeMap<OperatorId, BTreeSet<OperatorId>> = BTreeMap::new();
    let mut open: Vec<(IpNet, OperatorId)> = Vec::new();
    for (range, operator) in sorted {
        while open
            .last()
            .is_some_and(|(outer, _)| !outer.contains_net(&range))
        {
            open.pop();
        }
        for &(_, outer) in &open {
            clashes.entry(operator).or_default().insert(outer);
            clashes.entry(outer).or_default().insert(operator);
        }
        open.push((range, operator));
    }
    clashes
}

/// The missing vouches of a subject whose vouchers name no range `k`
/// times: counted against the range most of them name (the lowest of
/// equals).
fn missing(
    by_range: &BTreeMap<IpNet, BTreeSet<OperatorId>>,
    threshold: usize,
    vouchers: &BTreeSet<OperatorId>,
) -> NotAdmitted {
    let best = by_range.iter().fold(
        None::<(&IpNet, &BTreeSet<OperatorId>)>,
        |best, (range, by)| match best {
            Some((_, held)) if held.len() >= by.len() => best,
            _ => Some((range, by)),
        },
    );
    let (range, vouched_by) = match best {
        Some((range, by)) => (Some(*range), by.clone()),
        None => (None, BTreeSet::new()),
    };
    NotAdmitted::MissingVouches {
        range,
        missing: threshold.saturating_sub(vouched_by.len()),
        could_vouch: vouchers.difference(&vouched_by).copied().collect(),
        vouched_by,
        threshold,
    }
}

/// A list of operator ids between a prefix and a suffix; nothing for an
/// empty list when there is a prefix, "none" when there is not.
struct Ids<'a>(&'a str, &'a BTreeSet<OperatorId>, &'a str);

impl fmt::Display for Ids<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(prefix, ids, suffix) = *self;
        if ids.is_empty() {
            return if prefix.is_empty() {
                f.write_str("none")
            } else {
                Ok(())
            };
        }
        f.write_str(prefix)?;
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{id}")?;
        }
        f.write_str(suffix)
    }
}

/// A list of networks, comma-separated.
struct Nets<'a>(&'a [IpNet]);

impl fmt::Display for Nets<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::{Revocation, RevocationTarget};
    use crate::testing::{NOW, operator, operator_range, overlay_of};
    use crate::vouch::Vouch;
    use crate::{SignedRevocation, SignedVouch};

    /// Operator 0's policy: 1..=4 trusted directly, threshold `k`.
    fn policy(k: usize) -> TrustPolicy {
        TrustPolicy::new(
            operator(0).operator_id(),
            (1..=4).map(|n| operator(n).operator_id()),
            k,
            overlay_of(0..=4),
        )
        .unwrap()
    }

    fn vouch(by: u8, subject: u8, range: &str) -> SignedVouch {
        Vouch {
            voucher: operator(by).operator_id(),
            subject: operator(subject).operator_id(),
            overlay: range.parse().unwrap(),
            issued_at: NOW,
        }
        .sign(&operator(by))
        .unwrap()
    }

    fn ids(numbers: &[u8]) -> BTreeSet<OperatorId> {
        numbers.iter().map(|&n| operator(n).operator_id()).collect()
    }

    fn id(n: u8) -> OperatorId {
        operator(n).operator_id()
    }

    #[test]
    fn local_direct_and_vouched_paths() {
        let policy = policy(2);
        let vouches = [
            vouch(1, 20, "198.19.20.0/24"),
            vouch(0, 20, "198.19.20.0/24"),
        ];
        let admissions = policy.admissions(&vouches, []);
        assert_eq!(
            admissions.of(&id(0)),
            Admission::Admitted {
                path: TrustPath::Local,
                range: operator_range(0)
            }
        );
        assert_eq!(
            admissions.of(&id(3)),
            Admission::Admitted {
                path: TrustPath::Direct,
                range: operator_range(3)
            }
        );
        assert_eq!(
            admissions.of(&id(20)),
            Admission::Admitted {
                path: TrustPath::Vouched { by: ids(&[0, 1]) },
                range: "198.19.20.0/24".parse().unwrap()
            }
        );
    }

    #[test]
    fn the_missing_vouches_are_named() {
        let policy = policy(3);
        let vouches = [
            vouch(1, 20, "198.19.20.0/24"),
            vouch(2, 20, "198.19.20.0/24"),
            vouch(3, 20, "198.19.21.0/24"),
            // Not a voucher whose vouch counts.
            vouch(30, 20, "198.19.20.0/24"),
        ];
        let admissions = policy.admissions(&vouches, []);
        let Admission::NotAdmitted(reason) = admissions.of(&id(20)) else {
            panic!("admitted with two vouches of three");
        };
        assert_eq!(
            reason,
            NotAdmitted::MissingVouches {
                range: Some("198.19.20.0/24".parse().unwrap()),
                vouched_by: ids(&[1, 2]),
                threshold: 3,
                missing: 1,
                // 3 vouched for another range: its vouch for this one
                // would count too.
                could_vouch: ids(&[0, 3, 4]),
            }
        );
        let text = reason.to_string();
        assert!(text.contains("2 of the 3 vouches"), "{text}");
        assert!(text.contains(&id(4).to_string()), "{text}");
        assert!(!text.contains(&id(30).to_string()), "{text}");

        // Nobody vouched: every voucher could, the own operator included.
        assert_eq!(
            admissions.of(&id(21)),
            Admission::NotAdmitted(NotAdmitted::MissingVouches {
                range: None,
                vouched_by: BTreeSet::new(),
                threshold: 3,
                missing: 3,
                could_vouch: ids(&[0, 1, 2, 3, 4]),
            })
        );
    }

    #[test]
    fn a_withdrawn_vouch_is_missing_again() {
        let policy = policy(1);
        let vouches = [vouch(2, 20, "198.19.20.0/24")];
        let withdrawal: SignedRevocation = Revocation {
            issuer: id(2),
            target: RevocationTarget::Vouch(id(20)),
            issued_at: NOW + 1,
        }
        .sign(&operator(2))
        .unwrap();
        let admissions = policy.admissions(&vouches, [&withdrawal]);
        assert!(!admissions.is_admitted(&id(20)));
        assert!(matches!(
            admissions.of(&id(20)),
            Admission::NotAdmitted(NotAdmitted::MissingVouches { missing: 1, .. })
        ));
    }

    #[test]
    fn refused_ambiguous_and_clashing_ranges_say_so() {
        let policy = policy(1);
        let vouches = [
            // Operator 2's configured range.
            vouch(1, 20, "198.19.2.0/24"),
            // Two ranges, each at k.
            vouch(1, 21, "198.19.21.0/24"),
            vouch(2, 21, "198.19.31.0/24"),
            // Overlapping ranges of two vouched operators.
            vouch(1, 22, "198.19.22.0/23"),
            vouch(1, 23, "198.19.23.0/24"),
        ];
        let admissions = policy.admissions(&vouches, []);
        assert_eq!(
            admissions.of(&id(20)),
            Admission::NotAdmitted(NotAdmitted::RangeRefused {
                range: "198.19.2.0/24".parse().unwrap()
            })
        );
        assert!(matches!(
            admissions.of(&id(21)),
            Admission::NotAdmitted(NotAdmitted::AmbiguousRange { ranges }) if ranges.len() == 2
        ));
        assert_eq!(
            admissions.of(&id(22)),
            Admission::NotAdmitted(NotAdmitted::RangeClash {
                range: "198.19.22.0/23".parse().unwrap(),
                with: ids(&[23]),
            })
        );
        assert!(!admissions.is_admitted(&id(23)));
    }

    proptest::proptest! {
        /// The sweep finds exactly the pairs of candidates whose ranges
        /// overlap, as comparing every pair does: nested, equal and
        /// disjoint ranges, of both families.
        #[test]
        fn the_clashes_are_every_overlapping_pair(
            picks in proptest::collection::vec((0u8..4, 0u8..=255, 0u8..=10), 0..24),
        ) {
            let candidates: BTreeMap<OperatorId, IpNet> = picks
                .iter()
                .enumerate()
                .map(|(n, &(family, byte, len))| {
                    let range = match family {
                        0 => IpNet::truncating([198, 19, byte, 0].into(), 16 + len),
                        1 => IpNet::truncating([198, byte, 0, 0].into(), 8 + len),
                        2 => IpNet::truncating([0x2001, 0xdb8, u16::from(byte) << 8, 0, 0, 0, 0, 0].into(), 32 + len),
                        _ => IpNet::truncating([10, byte, 0, 0].into(), 32),
                    };
                    (operator(n as u8).operator_id(), range.unwrap())
                })
                .collect();
            let mut expected: BTreeMap<OperatorId, BTreeSet<OperatorId>> = BTreeMap::new();
            for (a, ra) in &candidates {
                for (b, rb) in &candidates {
                    if a != b && ra.overlaps(rb) {
                        expected.entry(*a).or_default().insert(*b);
                    }
                }
            }
            proptest::prop_assert_eq!(clashes(&candidates), expected);
        }
    }

    #[test]
    fn a_threshold_beyond_the_vouchers_can_never_be_met() {
        let policy = policy(9);
        let Admission::NotAdmitted(NotAdmitted::MissingVouches {
            missing,
            could_vouch,
            ..
        }) = policy.admissions([], []).of(&id(20))
        else {
            panic!("admitted with no vouch");
        };
        assert!(missing > could_vouch.len());
    }
}
