//! The web of trust: which operators a host admits to its mesh.
//!
//! A host's [`TrustPolicy`] names its own operator, the operators it trusts
//! directly (typically 6 to 10) and a vouch threshold `k`. The admitted
//! operators are:
//!
//! * the local operator and every directly trusted operator, and
//! * every operator for which at least `k` distinct vouchers — the local
//!   operator and the directly trusted ones — hold a standing vouch.
//!
//! The local operator is always admitted and its vouches always count,
//! whether or not the configuration names it among the directly trusted
//! ones (it need not, and the daemon refuses it there). Vouches count only
//! from those vouchers: trust is not transitive, so an operator admitted
//! by vouches vouches for no one. A
//! voucher's vouch for a subject stands when its latest vouch for it is
//! newer than its latest withdrawal of it (a [`Revocation`] of
//! [`RevocationTarget::Vouch`]); a withdrawal issued at the same second or
//! later wins. Every vouch and revocation given is already signed and
//! verified: [`SignedVouch`] and [`SignedRevocation`] values always are.
//!
//! So the only vouches and withdrawals a host needs are its vouchers',
//! about operators it does not trust directly — `d + 1` at most per
//! operator, with `d` the operators trusted directly — and the store keeps
//! no others (all of its vouchers', its own operator's included, which its
//! hosts publish: [`crate::Store::reserve_room`]). It keeps all of those, not
//! just the first `k` of an admitted operator: the rest keep it admitted
//! when one is withdrawn, and a second range named `k` times must leave
//! it out on every host alike, whatever arrived first.
//!
//! # Overlay ranges
//!
//! Admission comes with an overlay range (see [`crate::overlay`]), the only
//! addresses the operator's cards may route. The local operator and each
//! directly trusted operator get theirs from the policy's [`Overlay`]; the
//! policy is refused unless every one of them has one. An operator admitted
//! by vouches gets the range its vouchers name: each voucher's latest
//! standing vouch names one, and the operator is admitted only when at
//! least `k` of them name the *same* range, and that range
//!
//! * lies inside the mesh overlay,
//! * overlaps no range the local configuration gives (so no vouch, however
//!   many, takes a range from the local operator or a directly trusted one),
//! * and overlaps the range of no other operator admitted by vouches.
//!
//! Two vouched operators whose ranges overlap are both left out, whatever
//! their vouch counts, ids or times: any order between them would be one a
//! rival could aim for (a lower id can be ground, a vouch can be
//! backdated), and leaving both out only waits for their vouchers to fix
//! the clash. So is an operator whose vouchers name two ranges that both
//! reach `k`.
//!
//! [`Revocation`]: crate::Revocation

use std::collections::{BTreeMap, BTreeSet};

use sentrymesh_types::{IpNet, UnixTime};

use crate::identity::OperatorId;
use crate::overlay::Overlay;
use crate::revocation::{RevocationTarget, SignedRevocation};
use crate::vouch::SignedVouch;

mod admission;

pub use admission::{Admission, Admissions, NotAdmitted, TrustPath};

/// Why a trust policy is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A threshold of zero would admit every operator anyone names.
    #[error("vouch_threshold must be at least 1")]
    ZeroThreshold,
    /// The local operator or a directly trusted one without a range.
    #[error("operator {operator} has no overlay range")]
    NoRange {
        /// The operator.
        operator: OperatorId,
    },
    /// A range for an operator neither local nor trusted directly.
    #[error("operator {operator} has an overlay range but is not trusted directly")]
    RangeForUntrusted {
        /// The operator.
        operator: OperatorId,
    },
}

/// One host's trust settings: the `[trust]` section of its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    local: OperatorId,
    direct: BTreeSet<OperatorId>,
    vouch_threshold: usize,
    overlay: Overlay,
}

impl TrustPolicy {
    /// The policy of a host of operator `local` that trusts `direct`
    /// directly and admits others on `vouch_threshold` vouches from them,
    /// with the ranges `overlay` gives the local and direct operators.
    /// A threshold above the number of directly trusted operators admits
    /// no one by vouches.
    ///
    /// # Errors
    ///
    /// [`PolicyError::ZeroThreshold`] when `vouch_threshold` is 0;
    /// [`PolicyError::NoRange`] when `overlay` gives the local operator or
    /// a direct one no range; [`PolicyError::RangeForUntrusted`] when it
    /// gives one to another operator.
    pub fn new(
        local: OperatorId,
        direct: impl IntoIterator<Item = OperatorId>,
        vouch_threshold: usize,
        overlay: Overlay,
    ) -> Result<Self, PolicyError> {
        if vouch_threshold == 0 {
            return Err(PolicyError::ZeroThreshold);
        }
        let direct: BTreeSet<OperatorId> = direct.into_iter().collect();
        if let Some(&operator) = std::iter::once(&local)
            .chain(&direct)
            .find(|operator| overlay.range(operator).is_none())
        {
            return Err(PolicyError::NoRange { operator });
        }
        if let Some(&operator) = overlay
            .ranges()
            .keys()
            .find(|operator| **operator != local && !direct.contains(operator))
        {
            return Err(PolicyError::RangeForUntrusted { operator });
        }
        Ok(Self {
            local,
            direct,
            vouch_threshold,
            overlay,
        })
    }

    /// The host's own operator.
    pub fn local(&self) -> OperatorId {
        self.local
    }

    /// The operators trusted directly.
    pub fn direct(&self) -> &BTreeSet<OperatorId> {
        &self.direct
    }

    /// How many directly trusted operators must vouch for another.
    pub fn vouch_threshold(&self) -> usize {
        self.vouch_threshold
    }

    /// The mesh overlay and the configured ranges.
    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// Every operator admitted given these vouches and revocations (in any
    /// order, duplicates allowed). Revocations of hosts are ignored here.
    pub fn admitted_operators<'a>(
        &self,
        vouches: impl IntoIterator<Item = &'a SignedVouch>,
        revocations: impl IntoIterator<Item = &'a SignedRevocation>,
    ) -> BTreeSet<OperatorId> {
        self.admitted_ranges(vouches, revocations)
            .into_keys()
            .collect()
    }

    /// Every operator admitted given these vouches and revocations, with
    /// the overlay range its cards must keep inside: the ranges of the
    /// local configuration, and for an operator admitted by vouches the
    /// range `k` of its vouchers name alike (the module docs give the
    /// rules).
    pub fn admitted_ranges<'a>(
        &self,
        vouches: impl IntoIterator<Item = &'a SignedVouch>,
        revocations: impl IntoIterator<Item = &'a SignedRevocation>,
    ) -> BTreeMap<OperatorId, IpNet> {
        self.admissions(vouches, revocations).into_ranges()
    }

    /// How every operator stands given these vouches and revocations:
    /// the admitted ones with their trust path, and for any other what
    /// keeps it out (which vouches are missing, a range refused). The
    /// operators admitted are exactly those of
    /// [`TrustPolicy::admitted_ranges`].
    ///
    /// Cost: `O((v + w) log (v + w) + c log c + p)` for `v` vouches and
    /// `w` revocations given, `c` operators vouched for at the threshold
    /// and `p` pairs of them whose ranges overlap. The peer manager
    /// recomputes it from the store once per change of the store (a
    /// gossip message, not an object), and the store holds only the
    /// vouches that can count ([`crate::Store::reserve_room`]): `v` is at
    /// most `d + 1` per operator vouched for, with `d` the operators
    /// trusted directly, not every vouch the mesh has signed.
    pub fn admissions<'a>(
        &self,
        vouches: impl IntoIterator<Item = &'a SignedVouch>,
        revocations: impl IntoIterator<Item = &'a SignedRevocation>,
    ) -> Admissions {
        Admissions::new(self, self.standing_vouches(vouches, revocations))
    }

    /// Whether a vouch signed by `operator` counts: the local operator's
    /// and each directly trusted one's do.
    pub fn is_voucher(&self, operator: &OperatorId) -> bool {
        *operator == self.local || self.direct.contains(operator)
    }

    /// For each operator not configured, the standing vouches for it:
    /// range -> the vouchers whose latest standing vouch names that range.
    fn standing_vouches<'a>(
        &self,
        vouches: impl IntoIterator<Item = &'a SignedVouch>,
        revocations: impl IntoIterator<Item = &'a SignedRevocation>,
    ) -> BTreeMap<OperatorId, BTreeMap<IpNet, BTreeSet<OperatorId>>> {
        let configured = self.overlay.ranges();
        // (voucher, subject) -> the latest vouch and its range, from
        // vouchers that count for operators not already admitted. Two
        // vouches of the same second: the greater range, so the order
        // given does not matter.
        let mut latest_vouch: BTreeMap<(OperatorId, OperatorId), (UnixTime, IpNet)> =
            BTreeMap::new();
        for vouch in vouches.into_iter().map(SignedVouch::vouch) {
            if self.is_voucher(&vouch.voucher) && !configured.contains_key(&vouch.subject) {
                let this = (vouch.issued_at, vouch.overlay);
                latest_vouch
                    .entry((vouch.voucher, vouch.subject))
                    .and_modify(|latest| *latest = (*latest).max(this))
                    .or_insert(this);
            }
        }
        let mut latest_withdrawal: BTreeMap<(OperatorId, OperatorId), UnixTime> = BTreeMap::new();
        for revocation in revocations.into_iter().map(SignedRevocation::revocation) {
            if let RevocationTarget::Vouch(subject) = revocation.target {
                let latest = latest_withdrawal
                    .entry((revocation.issuer, subject))
                    .or_default();
                *latest = (*latest).max(revocation.issued_at);
            }
        }
        let mut standing: BTreeMap<OperatorId, BTreeMap<IpNet, BTreeSet<OperatorId>>> =
            BTreeMap::new();
        for ((voucher, subject), (vouched_at, range)) in latest_vouch {
            let withdrawn = latest_withdrawal
                .get(&(voucher, subject))
                .is_some_and(|&withdrawn_at| withdrawn_at >= vouched_at);
            if !withdrawn {
                standing
                    .entry(subject)
                    .or_default()
                    .entry(range)
                    .or_default()
                    .insert(voucher);
            }
        }
        standing
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::identity::OperatorSecret;
    use crate::revocation::Revocation;
    use crate::testing::{NOW, operator, operator_range, overlay_of};
    use crate::vouch::Vouch;

    /// Operators 1..=8 trusted directly by operator 0; 20 and up are
    /// outsiders. Operator n's range is 198.19.n.0/24.
    fn setup(k: usize) -> (TrustPolicy, Vec<OperatorSecret>) {
        let local = operator(0);
        let direct: Vec<OperatorSecret> = (1..=8).map(operator).collect();
        let policy = TrustPolicy::new(
            local.operator_id(),
            direct.iter().map(OperatorSecret::operator_id),
            k,
            overlay_of(0..=8),
        )
        .unwrap();
        (policy, direct)
    }

    /// A vouch for `subject` naming the range `range`.
    fn vouch_range(
        by: &OperatorSecret,
        subject: &OperatorSecret,
        range: &str,
        at: UnixTime,
    ) -> SignedVouch {
        Vouch {
            voucher: by.operator_id(),
            subject: subject.operator_id(),
            overlay: range.parse().unwrap(),
            issued_at: at,
        }
        .sign(by)
        .unwrap()
    }

    /// A vouch for outsider `subject` (operator 20 + i) naming the range
    /// 198.19.(20 + i).0/24.
    fn vouch(by: &OperatorSecret, subject: &OperatorSecret, at: UnixTime) -> SignedVouch {
        let n = (20u8..40)
            .find(|&n| operator(n).operator_id() == subject.operator_id())
            .expect("an outsider numbered 20 to 39");
        vouch_range(by, subject, &operator_range(n).to_string(), at)
    }

    fn withdraw(by: &OperatorSecret, subject: &OperatorSecret, at: UnixTime) -> SignedRevocation {
        Revocation {
            issuer: by.operator_id(),
            target: RevocationTarget::Vouch(subject.operator_id()),
            issued_at: at,
        }
        .sign(by)
        .unwrap()
    }

    #[test]
    fn local_and_direct_are_always_admitted() {
        let (policy, direct) = setup(3);
        let admitted = policy.admitted_operators([], []);
        assert_eq!(admitted.len(), 9);
        assert!(admitted.contains(&policy.local()));
        assert!(direct.iter().all(|d| admitted.contains(&d.operator_id())));
        assert_eq!(policy.vouch_threshold(), 3);
        assert_eq!(policy.direct().len(), 8);
    }

    #[test]
    fn admitted_with_k_vouches_not_with_k_minus_one() {
        let (policy, direct) = setup(3);
        let outsider = operator(20);
        let two: Vec<_> = direct[..2]
            .iter()
            .map(|d| vouch(d, &outsider, NOW))
            .collect();
        assert!(
            !policy
                .admitted_operators(&two, [])
                .contains(&outsider.operator_id())
        );
        let three: Vec<_> = direct[..3]
            .iter()
            .map(|d| vouch(d, &outsider, NOW))
            .collect();
        assert!(
            policy
                .admitted_operators(&three, [])
                .contains(&outsider.operator_id())
        );
    }

    /// The host's own operator needs no entry of its own among the
    /// directly trusted ones for its vouch to count: a vouch it signed
    /// counts like a directly trusted operator's, towards the same `k`.
    #[test]
    fn the_own_operators_vouch_counts() {
        let (policy, direct) = setup(2);
        let (local, outsider) = (operator(0), operator(20));
        let own = vouch(&local, &outsider, NOW);
        assert!(
            !policy
                .admitted_operators([&own], [])
                .contains(&outsider.operator_id()),
            "one vouch of two"
        );
        let with_one_direct = [own.clone(), vouch(&direct[0], &outsider, NOW)];
        assert!(
            policy
                .admitted_operators(&with_one_direct, [])
                .contains(&outsider.operator_id())
        );
        // Its withdrawal withdraws it, as any voucher's.
        let withdrawn = [withdraw(&local, &outsider, NOW + 1)];
        assert!(
            !policy
                .admitted_operators(&with_one_direct, &withdrawn)
                .contains(&outsider.operator_id())
        );
        // With k = 1, the own operator alone admits.
        let (alone, _) = setup(1);
        assert!(
            alone
                .admitted_operators([&own], [])
                .contains(&outsider.operator_id())
        );
    }

    #[test]
    fn repeated_vouches_from_one_operator_count_once() {
        let (policy, direct) = setup(2);
        let outsider = operator(20);
        let same: Vec<_> = (0..5)
            .map(|i| vouch(&direct[0], &outsider, NOW + i))
            .collect();
        assert!(
            !policy
                .admitted_operators(&same, [])
                .contains(&outsider.operator_id())
        );
    }

    #[test]
    fn vouches_from_outside_the_direct_set_do_not_count() {
        let (policy, direct) = setup(2);
        let (outsider, other) = (operator(20), operator(21));
        let strangers: Vec<OperatorSecret> = (30..40).map(operator).collect();
        let vouches: Vec<_> = strangers.iter().map(|s| vouch(s, &outsider, NOW)).collect();
        assert!(
            !policy
                .admitted_operators(&vouches, [])
                .contains(&outsider.operator_id())
        );

        // No transitivity: `outsider` is admitted by two direct vouches, but
        // its own vouch (with one direct one) does not admit `other`.
        let chain = vec![
            vouch(&direct[0], &outsider, NOW),
            vouch(&direct[1], &outsider, NOW),
            vouch(&outsider, &other, NOW),
            vouch(&direct[2], &other, NOW),
        ];
        let admitted = policy.admitted_operators(&chain, []);
        assert!(admitted.contains(&outsider.operator_id()));
        assert!(!admitted.contains(&other.operator_id()));
    }

    #[test]
    fn withdrawal_and_reinstatement() {
        let (policy, direct) = setup(2);
        let outsider = operator(20);
        let vouches = vec![
            vouch(&direct[0], &outsider, NOW),
            vouch(&direct[1], &outsider, NOW),
        ];
        let id = outsider.operator_id();
        assert!(policy.admitted_operators(&vouches, []).contains(&id));

        // Withdrawn at the same second: the withdrawal wins.
        let same_time = [withdraw(&direct[1], &outsider, NOW)];
        assert!(
            !policy
                .admitted_operators(&vouches, &same_time)
                .contains(&id)
        );
        let later = [withdraw(&direct[1], &outsider, NOW + 10)];
        assert!(!policy.admitted_operators(&vouches, &later).contains(&id));
        // An older withdrawal does not touch a newer vouch.
        let earlier = [withdraw(&direct[1], &outsider, NOW - 10)];
        assert!(policy.admitted_operators(&vouches, &earlier).contains(&id));
        // A fresh vouch after the withdrawal reinstates it.
        let mut renewed = vouches.clone();
        renewed.push(vouch(&direct[1], &outsider, NOW + 20));
        assert!(policy.admitted_operators(&renewed, &later).contains(&id));
        // Someone else's withdrawal withdraws nothing.
        let foreign = [withdraw(&operator(30), &outsider, NOW + 10)];
        assert!(policy.admitted_operators(&vouches, &foreign).contains(&id));
    }

    #[test]
    fn a_zero_threshold_is_refused() {
        assert_eq!(
            TrustPolicy::new(operator(0).operator_id(), [], 0, overlay_of([0])),
            Err(PolicyError::ZeroThreshold)
        );
    }

    #[test]
    fn the_local_and_direct_operators_need_a_range_and_only_they_get_one() {
        let (local, direct, other) = (
            operator(0).operator_id(),
            operator(1).operator_id(),
            operator(2).operator_id(),
        );
        assert_eq!(
            TrustPolicy::new(local, [direct], 1, overlay_of([0])),
            Err(PolicyError::NoRange { operator: direct })
        );
        assert_eq!(
            TrustPolicy::new(local, [direct], 1, overlay_of([1])),
            Err(PolicyError::NoRange { operator: local })
        );
        assert_eq!(
            TrustPolicy::new(local, [direct], 1, overlay_of([0, 1, 2])),
            Err(PolicyError::RangeForUntrusted { operator: other })
        );
        let policy = TrustPolicy::new(local, [direct], 1, overlay_of([0, 1])).unwrap();
        assert_eq!(policy.overlay().range(&direct), Some(operator_range(1)));
        let admitted = policy.admitted_ranges([], []);
        assert_eq!(admitted.get(&local), Some(&operator_range(0)));
        assert_eq!(admitted.get(&direct), Some(&operator_range(1)));
    }

    #[test]
    fn a_vouched_operator_gets_the_range_k_vouchers_name_alike() {
        let (policy, direct) = setup(2);
        let outsider = operator(20);
        let id = outsider.operator_id();
        let agreed = vec![
            vouch_range(&direct[0], &outsider, "198.19.20.0/24", NOW),
            vouch_range(&direct[1], &outsider, "198.19.20.0/24", NOW),
        ];
        assert_eq!(
            policy.admitted_ranges(&agreed, []).get(&id),
            Some(&"198.19.20.0/24".parse().unwrap())
        );
        // Two vouchers naming two ranges: neither reaches k.
        let split = vec![
            vouch_range(&direct[0], &outsider, "198.19.20.0/24", NOW),
            vouch_range(&direct[1], &outsider, "198.19.21.0/24", NOW),
        ];
        assert!(!policy.admitted_operators(&split, []).contains(&id));
        // A voucher's latest vouch is its word: a later one moves it.
        let mut moved = split.clone();
        moved.push(vouch_range(
            &direct[1],
            &outsider,
            "198.19.20.0/24",
            NOW + 1,
        ));
        assert!(policy.admitted_operators(&moved, []).contains(&id));
        // Two ranges that both reach k: ambiguous, left out.
        let both: Vec<_> = direct[..4]
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let range = if i < 2 {
                    "198.19.20.0/24"
                } else {
                    "198.19.21.0/24"
                };
                vouch_range(d, &outsider, range, NOW)
            })
            .collect();
        assert!(!policy.admitted_operators(&both, []).contains(&id));
    }

    #[test]
    fn no_vouches_take_a_configured_range_or_leave_the_overlay() {
        let (policy, direct) = setup(2);
        let outsider = operator(20);
        for range in [
            "198.19.3.0/24",   // operator 3's, trusted directly
            "198.19.0.0/24",   // the local operator's
            "198.19.0.0/20",   // wider, around configured ranges
            "198.19.3.128/25", // a slice of one
            "198.18.0.0/24",   // outside the overlay
            "0.0.0.0/1",
            "::/1",
        ] {
            let vouches: Vec<_> = direct
                .iter()
                .map(|d| vouch_range(d, &outsider, range, NOW))
                .collect();
            assert!(
                !policy
                    .admitted_operators(&vouches, [])
                    .contains(&outsider.operator_id()),
                "{range}"
            );
        }
    }

    #[test]
    fn vouched_operators_with_clashing_ranges_are_both_left_out() {
        let (policy, direct) = setup(2);
        let (first, second, third) = (operator(20), operator(21), operator(22));
        let mut vouches = Vec::new();
        for d in &direct[..2] {
            vouches.push(vouch_range(d, &first, "198.19.20.0/23", NOW));
            vouches.push(vouch_range(d, &second, "198.19.21.0/24", NOW));
            vouches.push(vouch_range(d, &third, "198.19.22.0/24", NOW));
        }
        let admitted = policy.admitted_ranges(&vouches, []);
        assert!(!admitted.contains_key(&first.operator_id()));
        assert!(!admitted.contains_key(&second.operator_id()));
        assert_eq!(
            admitted.get(&third.operator_id()),
            Some(&"198.19.22.0/24".parse().unwrap())
        );
        // Once the clash is withdrawn, the other is admitted.
        let withdrawals = [
            withdraw(&direct[0], &first, NOW + 1),
            withdraw(&direct[1], &first, NOW + 1),
        ];
        let admitted = policy.admitted_ranges(&vouches, &withdrawals);
        assert!(admitted.contains_key(&second.operator_id()));
    }

    proptest! {
        /// Whatever the vouches and withdrawals, the result contains the
        /// local and direct operators, contains only operators named, and
        /// admits an outsider exactly when at least k vouchers (the local
        /// operator and the direct ones) have a standing vouch for it
        /// (checked against a plain count).
        #[test]
        fn admission_matches_a_plain_count(
            k in 1usize..5,
            events in proptest::collection::vec((0u8..12, 20u8..24, any::<bool>(), 0u64..4), 0..40),
        ) {
            let (policy, _) = setup(k);
            let mut vouches = Vec::new();
            let mut revocations = Vec::new();
            for &(by, subject, is_vouch, at) in &events {
                // Operator 0 is the local one, 1..=8 are direct; 9..=11
                // are neither.
                let (by, subject) = (operator(by), operator(subject));
                if is_vouch {
                    vouches.push(vouch(&by, &subject, UnixTime(at)));
                } else {
                    revocations.push(withdraw(&by, &subject, UnixTime(at)));
                }
            }
            let admitted = policy.admitted_operators(&vouches, &revocations);
            for subject in 20u8..24 {
                let standing = (0u8..=8).filter(|&by| {
                    let vouched = events.iter().filter(|e| e.0 == by && e.1 == subject && e.2).map(|e| e.3).max();
                    let withdrawn = events.iter().filter(|e| e.0 == by && e.1 == subject && !e.2).map(|e| e.3).max();
                    match (vouched, withdrawn) {
                        (Some(v), Some(w)) => v > w,
                        (Some(_), None) => true,
                        _ => false,
                    }
                }).count();
                prop_assert_eq!(admitted.contains(&operator(subject).operator_id()), standing >= k);
            }
            prop_assert!(admitted.contains(&policy.local()));
            // The reasons agree with the admission.
            let admissions = policy.admissions(&vouches, &revocations);
            for subject in (0u8..=8).chain(20..24) {
                let id = operator(subject).operator_id();
                prop_assert_eq!(
                    matches!(admissions.of(&id), Admission::Admitted { .. }),
                    admitted.contains(&id)
                );
            }
            prop_assert!(policy.direct().is_subset(&admitted));
            prop_assert!(admitted.len() <= 9 + 4);
            // Every admitted range is inside the overlay, and no two overlap.
            let ranges: Vec<IpNet> = policy.admitted_ranges(&vouches, &revocations).into_values().collect();
            for (i, range) in ranges.iter().enumerate() {
                prop_assert!(policy.overlay().overlay().contains_net(range));
                prop_assert!(ranges[i + 1..].iter().all(|other| !other.overlaps(range)));
            }
        }
    }
}
