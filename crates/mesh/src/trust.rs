//! The web of trust: which operators a host admits to its mesh.
//!
//! A host's [`TrustPolicy`] names its own operator, the operators it trusts
//! directly (typically 6 to 10) and a vouch threshold `k`. The admitted
//! operators are:
//!
//! * the local operator and every directly trusted operator, and
//! * every operator for which at least `k` distinct directly trusted
//!   operators hold a standing vouch.
//!
//! Vouches count only from directly trusted operators: trust is not
//! transitive, so an operator admitted by vouches vouches for no one. A
//! voucher's vouch for a subject stands when its latest vouch for it is
//! newer than its latest withdrawal of it (a [`Revocation`] of
//! [`RevocationTarget::Vouch`]); a withdrawal issued at the same second or
//! later wins. Every vouch and revocation given is already signed and
//! verified: [`SignedVouch`] and [`SignedRevocation`] values always are.
//!
//! [`Revocation`]: crate::Revocation

use std::collections::{BTreeMap, BTreeSet};

use crate::identity::OperatorId;
use crate::revocation::{RevocationTarget, SignedRevocation};
use crate::vouch::SignedVouch;

/// Why a trust policy is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A threshold of zero would admit every operator anyone names.
    #[error("vouch_threshold must be at least 1")]
    ZeroThreshold,
}

/// One host's trust settings: the `[trust]` section of its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    local: OperatorId,
    direct: BTreeSet<OperatorId>,
    vouch_threshold: usize,
}

impl TrustPolicy {
    /// The policy of a host of operator `local` that trusts `direct`
    /// directly and admits others on `vouch_threshold` vouches from them.
    /// A threshold above the number of directly trusted operators admits
    /// no one by vouches.
    ///
    /// # Errors
    ///
    /// [`PolicyError::ZeroThreshold`] when `vouch_threshold` is 0.
    pub fn new(
        local: OperatorId,
        direct: impl IntoIterator<Item = OperatorId>,
        vouch_threshold: usize,
    ) -> Result<Self, PolicyError> {
        if vouch_threshold == 0 {
            return Err(PolicyError::ZeroThreshold);
        }
        Ok(Self {
            local,
            direct: direct.into_iter().collect(),
            vouch_threshold,
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

    /// Every operator admitted given these vouches and revocations (in any
    /// order, duplicates allowed). Revocations of hosts are ignored here.
    pub fn admitted_operators<'a>(
        &self,
        vouches: impl IntoIterator<Item = &'a SignedVouch>,
        revocations: impl IntoIterator<Item = &'a SignedRevocation>,
    ) -> BTreeSet<OperatorId> {
        let mut admitted = self.direct.clone();
        admitted.insert(self.local);

        // (voucher, subject) -> the latest vouch, from direct vouchers for
        // operators not already admitted.
        let mut latest_vouch: BTreeMap<(OperatorId, OperatorId), u64> = BTreeMap::new();
        for vouch in vouches.into_iter().map(SignedVouch::vouch) {
            if self.direct.contains(&vouch.voucher) && !admitted.contains(&vouch.subject) {
                let latest = latest_vouch
                    .entry((vouch.voucher, vouch.subject))
                    .or_default();
                *latest = (*latest).max(vouch.issued_at);
            }
        }
        let mut latest_withdrawal: BTreeMap<(OperatorId, OperatorId), u64> = BTreeMap::new();
        for revocation in revocations.into_iter().map(SignedRevocation::revocation) {
            if let RevocationTarget::Vouch(subject) = revocation.target {
                let latest = latest_withdrawal
                    .entry((revocation.issuer, subject))
                    .or_default();
                *latest = (*latest).max(revocation.issued_at);
            }
        }

        let mut standing: BTreeMap<OperatorId, usize> = BTreeMap::new();
        for (pair, vouched_at) in latest_vouch {
            let withdrawn = latest_withdrawal
                .get(&pair)
                .is_some_and(|&withdrawn_at| withdrawn_at >= vouched_at);
            if !withdrawn {
                *standing.entry(pair.1).or_default() += 1;
            }
        }
        admitted.extend(
            standing
                .into_iter()
                .filter(|&(_, count)| count >= self.vouch_threshold)
                .map(|(subject, _)| subject),
        );
        admitted
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::identity::OperatorSecret;
    use crate::revocation::Revocation;
    use crate::testing::{NOW, operator};
    use crate::vouch::Vouch;

    /// Operators 1..=8 trusted directly by operator 0; 20 and up are outsiders.
    fn setup(k: usize) -> (TrustPolicy, Vec<OperatorSecret>) {
        let local = operator(0);
        let direct: Vec<OperatorSecret> = (1..=8).map(operator).collect();
        let policy = TrustPolicy::new(
            local.operator_id(),
            direct.iter().map(OperatorSecret::operator_id),
            k,
        )
        .unwrap();
        (policy, direct)
    }

    fn vouch(by: &OperatorSecret, subject: &OperatorSecret, at: u64) -> SignedVouch {
        Vouch {
            voucher: by.operator_id(),
            subject: subject.operator_id(),
            issued_at: at,
        }
        .sign(by)
        .unwrap()
    }

    fn withdraw(by: &OperatorSecret, subject: &OperatorSecret, at: u64) -> SignedRevocation {
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
            TrustPolicy::new(operator(0).operator_id(), [], 0),
            Err(PolicyError::ZeroThreshold)
        );
    }

    proptest! {
        /// Whatever the vouches and withdrawals, the result contains the
        /// local and direct operators, contains only operators named, and
        /// admits an outsider exactly when at least k direct operators have
        /// a standing vouch for it (checked against a plain count).
        #[test]
        fn admission_matches_a_plain_count(
            k in 1usize..5,
            events in proptest::collection::vec((0u8..12, 20u8..24, any::<bool>(), 0u64..4), 0..40),
        ) {
            let (policy, _) = setup(k);
            let mut vouches = Vec::new();
            let mut revocations = Vec::new();
            for &(by, subject, is_vouch, at) in &events {
                // Operators 1..=8 are direct; 9..=11 are not.
                let (by, subject) = (operator(by.max(1)), operator(subject));
                if is_vouch {
                    vouches.push(vouch(&by, &subject, at));
                } else {
                    revocations.push(withdraw(&by, &subject, at));
                }
            }
            let admitted = policy.admitted_operators(&vouches, &revocations);
            for subject in 20u8..24 {
                let standing = (1u8..=8).filter(|&by| {
                    let vouched = events.iter().filter(|e| e.0.max(1) == by && e.1 == subject && e.2).map(|e| e.3).max();
                    let withdrawn = events.iter().filter(|e| e.0.max(1) == by && e.1 == subject && !e.2).map(|e| e.3).max();
                    match (vouched, withdrawn) {
                        (Some(v), Some(w)) => v > w,
                        (Some(_), None) => true,
                        _ => false,
                    }
                }).count();
                prop_assert_eq!(admitted.contains(&operator(subject).operator_id()), standing >= k);
            }
            prop_assert!(admitted.contains(&policy.local()));
            prop_assert!(policy.direct().is_subset(&admitted));
            prop_assert!(admitted.len() <= 9 + 4);
        }
    }
}
