//! The web of trust as the log tells it: one `info` line when an operator
//! is admitted or no longer is, and one when this host learns a
//! revocation (of a host, or of a vouch), each once. The first look, at
//! start, tells the operators admitted and the revocations known then.
//!
//! The member's loop looks after every input; the admitted operators are
//! compared whole (a handful), the revocations only when the store changed.

use std::collections::BTreeSet;
use std::fmt;

use sentrymesh_mesh::{OperatorId, Revocation, RevocationTarget};
use sentrymesh_types::PublicKey;

/// A change of trust, to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TrustChange {
    /// The operator is admitted: trusted directly, or vouched for by
    /// enough trusted operators.
    Admitted(OperatorId),
    /// The operator is admitted no more; its hosts are no peers.
    NoLongerAdmitted(OperatorId),
    /// A revocation this host did not know.
    Revoked(Revocation),
}

impl fmt::Display for TrustChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustChange::Admitted(operator) => write!(f, "operator {operator} admitted"),
            TrustChange::NoLongerAdmitted(operator) => {
                write!(f, "operator {operator} no longer admitted")
            }
            TrustChange::Revoked(revocation) => write!(
                f,
                "operator {} revoked {}",
                revocation.issuer, revocation.target
            ),
        }
    }
}

impl TrustChange {
    /// Whether this is the revocation of the host whose WireGuard key is
    /// `key`.
    pub(super) fn revokes_host(&self, key: &PublicKey) -> bool {
        matches!(self, TrustChange::Revoked(Revocation {
            target: RevocationTarget::Host(revoked),
            ..
        }) if revoked == key)
    }
}

/// What the log has told; see the [module](self).
#[derive(Debug, Default)]
pub(super) struct TrustLog {
    admitted: BTreeSet<OperatorId>,
    revocations: BTreeSet<Revocation>,
    /// The store's generation when the revocations were last read.
    generation: Option<u64>,
}

impl TrustLog {
    /// Compares the `admitted` operators and, when the store's
    /// `generation` moved, its `revocations`, with what was told; returns
    /// what changed: admissions, withdrawals, then new revocations.
    pub(super) fn observe<'a, I>(
        &mut self,
        admitted: &BTreeSet<OperatorId>,
        generation: u64,
        revocations: impl Fn() -> I,
    ) -> Vec<TrustChange>
    where
        I: IntoIterator<Item = &'a Revocation>,
    {
        let mut changes = Vec::new();
        if *admitted != self.admitted {
            changes.extend(
                admitted
                    .difference(&self.admitted)
                    .map(|&operator| TrustChange::Admitted(operator)),
            );
            changes.extend(
                self.admitted
                    .difference(admitted)
                    .map(|&operator| TrustChange::NoLongerAdmitted(operator)),
            );
            self.admitted.clone_from(admitted);
        }
        if self.generation != Some(generation) {
            self.generation = Some(generation);
            let mut held = 0;
            for revocation in revocations() {
                held += 1;
                if self.revocations.insert(*revocation) {
                    changes.push(TrustChange::Revoked(*revocation));
                }
            }
            // The store dropped some (expired, or superseded): forgotten
            // here too, so the log holds no more than the store.
            if held < self.revocations.len() {
                let known: BTreeSet<&Revocation> = revocations().into_iter().collect();
                self.revocations
                    .retain(|revocation| known.contains(revocation));
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use sentrymesh_mesh::OperatorSecret;
    use sentrymesh_types::UnixTime;

    use super::*;

    fn operator(byte: u8) -> OperatorId {
        OperatorSecret::from_seed([byte; 32]).operator_id()
    }

    fn revoke_host(issuer: u8, host: u8) -> Revocation {
        Revocation {
            issuer: operator(issuer),
            target: RevocationTarget::Host(PublicKey::from_bytes([host; 32])),
            issued_at: UnixTime(1_800_000_000),
        }
    }

    #[test]
    fn each_admission_and_revocation_is_told_once() {
        let mut log = TrustLog::default();
        let admitted: BTreeSet<_> = [operator(1), operator(2)].into();
        let none: Vec<Revocation> = Vec::new();
        let both: Vec<_> = admitted.iter().map(|&o| TrustChange::Admitted(o)).collect();
        assert_eq!(log.observe(&admitted, 0, || none.iter()), both);
        assert_eq!(log.observe(&admitted, 0, || none.iter()), []);
        // A revocation arrives: told once, however often the store changes.
        let known = [revoke_host(1, 9)];
        assert_eq!(
            log.observe(&admitted, 1, || known.iter()),
            [TrustChange::Revoked(known[0])]
        );
        assert_eq!(log.observe(&admitted, 2, || known.iter()), []);
        // Operator 2 loses its vouches, operator 3 gains them.
        let admitted: BTreeSet<_> = [operator(1), operator(3)].into();
        assert_eq!(
            log.observe(&admitted, 2, || known.iter()),
            [
                TrustChange::Admitted(operator(3)),
                TrustChange::NoLongerAdmitted(operator(2))
            ]
        );
    }

    #[test]
    fn a_revocation_the_store_dropped_is_forgotten() {
        let mut log = TrustLog::default();
        let admitted = BTreeSet::new();
        let both = [revoke_host(1, 8), revoke_host(1, 9)];
        assert_eq!(log.observe(&admitted, 1, || both.iter()).len(), 2);
        let one = [revoke_host(1, 9)];
        assert_eq!(log.observe(&admitted, 2, || one.iter()), []);
        assert_eq!(log.revocations.len(), 1);
        // Back in the store: new to the log again.
        assert_eq!(
            log.observe(&admitted, 3, || both.iter()),
            [TrustChange::Revoked(both[0])]
        );
    }

    #[test]
    fn the_revocations_are_read_only_when_the_store_changed() {
        let mut log = TrustLog::default();
        let admitted = BTreeSet::new();
        let none: Vec<Revocation> = Vec::new();
        log.observe(&admitted, 5, || none.iter());
        let unread = || -> std::slice::Iter<'_, Revocation> {
            panic!("the revocations were read although the store did not change")
        };
        assert_eq!(log.observe(&admitted, 5, unread), []);
    }

    #[test]
    fn a_line_names_the_operator_and_what_it_revoked() {
        let revocation = revoke_host(1, 9);
        assert_eq!(
            TrustChange::Revoked(revocation).to_string(),
            format!(
                "operator {} revoked host key {}",
                operator(1),
                PublicKey::from_bytes([9; 32])
            )
        );
    }

    #[test]
    fn the_revocation_of_this_host_is_told_apart() {
        let own = PublicKey::from_bytes([9; 32]);
        assert!(TrustChange::Revoked(revoke_host(1, 9)).revokes_host(&own));
        assert!(!TrustChange::Revoked(revoke_host(1, 8)).revokes_host(&own));
        assert!(!TrustChange::Admitted(operator(1)).revokes_host(&own));
    }
}
