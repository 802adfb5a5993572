//! Logs, once per operator, an introduction from an operator this host
//! does not admit, with what keeps it out: which vouches are missing and
//! whose they could be (`sentrymesh status` shows the same). Once per
//! operator, not per introduction: a host introduces itself every five
//! seconds, and a flood of introductions sealed to this host could claim
//! any number of operators, so the operators logged are a bounded set.
//!
//! The operator is the one the introduction claims: it is dropped before
//! any signature is checked, so the line says "claims". No address is
//! logged: the operator and its missing vouches are what an operator needs
//! to act on.

use std::collections::{BTreeMap, BTreeSet};

use sentrymesh_mesh::{Admission, Admissions, OperatorId};

/// The most operators logged; after that, one line says so and no more.
const MAX_LOGGED: usize = 256;

/// The operators logged so far.
#[derive(Debug, Default)]
pub(super) struct UnadmittedLog {
    logged: BTreeSet<OperatorId>,
    full: bool,
}

impl UnadmittedLog {
    /// The line to log for an introduction claiming `operator`, standing
    /// as `admissions` say, with `aliases` for its name; `None` when it was
    /// logged before, is admitted (meanwhile), or the set is full and said
    /// so already.
    pub(super) fn line(
        &mut self,
        operator: OperatorId,
        admissions: &Admissions,
        aliases: &BTreeMap<OperatorId, String>,
    ) -> Option<String> {
        let Admission::NotAdmitted(reason) = admissions.of(&operator) else {
            return None;
        };
        if self.logged.contains(&operator) {
            return None;
        }
        if self.logged.len() >= MAX_LOGGED {
            if self.full {
                return None;
            }
            self.full = true;
            return Some(format!(
                "introductions claim more than {MAX_LOGGED} operators this host does not admit; \
                 no more are logged (sentrymesh status lists the cards it knows)"
            ));
        }
        self.logged.insert(operator);
        let alias = aliases
            .get(&operator)
            .map(|alias| format!(" ({alias})"))
            .unwrap_or_default();
        Some(format!(
            "an introduction claims operator {operator}{alias}, which this host does not admit: \
             {reason}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use sentrymesh_mesh::{OperatorSecret, Overlay, TrustPolicy, Vouch};
    use sentrymesh_types::UnixTime;

    use super::*;

    /// Operator number `n`.
    fn secret(n: u16) -> OperatorSecret {
        let mut seed = [7; 32];
        seed[..2].copy_from_slice(&n.to_le_bytes());
        OperatorSecret::from_seed(seed)
    }

    fn id(n: u16) -> OperatorId {
        secret(n).operator_id()
    }

    #[test]
    fn each_operator_is_logged_once_with_its_missing_vouches() {
        let (own, direct, outsider) = (id(1), id(2), id(3));
        let overlay = Overlay::new(
            "198.19.0.0/16".parse().unwrap(),
            [
                (own, "198.19.1.0/24".parse().unwrap()),
                (direct, "198.19.2.0/24".parse().unwrap()),
            ],
        )
        .unwrap();
        let policy = TrustPolicy::new(own, [direct], 2, overlay).unwrap();
        let vouch = Vouch {
            voucher: direct,
            subject: outsider,
            overlay: "198.19.3.0/24".parse().unwrap(),
            issued_at: UnixTime(1_777_593_600),
        }
        .sign(&secret(2))
        .unwrap();
        let admissions = policy.admissions([&vouch], []);
        let aliases = BTreeMap::from([(outsider, "carol".to_owned())]);
        let mut log = UnadmittedLog::default();
        let line = log.line(outsider, &admissions, &aliases).unwrap();
        assert!(line.contains("(carol)"), "{line}");
        assert!(line.contains("1 of the 2 vouches"), "{line}");
        assert!(
            line.contains(&own.to_string()),
            "whose vouch is missing: {line}"
        );
        assert_eq!(log.line(outsider, &admissions, &aliases), None, "once");
        assert_eq!(log.line(direct, &admissions, &aliases), None, "admitted");

        // Bounded: past the limit, one line says so, then nothing.
        for n in 10..400 {
            log.line(id(n), &admissions, &aliases);
        }
        assert_eq!(log.logged.len(), MAX_LOGGED);
        assert!(log.full);
        assert_eq!(log.line(id(4), &admissions, &aliases), None);
    }
}
