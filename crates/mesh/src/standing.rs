//! Why a card this host knows gives it no peer, or a peer no session: the
//! rules of [`crate::peers`] and [`TrustPolicy`](crate::TrustPolicy) with their reasons kept,
//! for `sentrymesh status` to show and the daemon to log. Pure functions
//! over a member's state; the daemon only formats what they return.
//!
//! ```text
//!  a card ──► revoked? ──► valid now? ──► operator admitted? ──► roles allow it? ──► inside its range?
//!               │             │              │ (which vouches      │                    │
//!               ▼             ▼              ▼  are missing)       ▼                    ▼
//!            Revoked        Time         NotAdmitted          RoleForbids          OutOfRange      ──► a peer
//!
//!  a peer without a live session ──► NoSession::NoEndpoint (it must call us) | NoSession::NoAnswer
//! ```

use std::collections::BTreeSet;

use sentrymesh_types::{IpNet, PublicKey, UnixTime};

use crate::card::{CardTimeError, HostCard, SignedCard};
use crate::identity::OperatorId;
use crate::member::Mesh;
use crate::overlay::{self, OutOfRange};
use crate::peering::may_peer;
use crate::peers::{LocalCardError, PeerSpec};
use crate::store::Store;
use crate::trust::{Admission, Admissions, NotAdmitted};

/// Why a card this host knows is not one of its peers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoPeer {
    /// This host's own card is revoked or not valid: it has no peers.
    #[error("{0}")]
    LocalCard(LocalCardError),
    /// Its operator revoked its key.
    #[error("revoked by its operator")]
    Revoked,
    /// It is expired or not yet valid.
    #[error("{0}")]
    Time(CardTimeError),
    /// Its operator is not admitted.
    #[error("operator {operator} {reason}")]
    NotAdmitted {
        /// The operator.
        operator: OperatorId,
        /// What keeps it out: which vouches are missing, or a range.
        reason: NotAdmitted,
    },
    /// The roles forbid a peering: a hidden host peers only with its own
    /// operator's public hosts.
    #[error("the roles forbid it (a hidden host peers only with its own operator's public hosts)")]
    RoleForbids,
    /// The card claims what its operator's overlay range does not hold.
    #[error("its card is refused: it has {0}")]
    OutOfRange(OutOfRange),
}

/// Why a peer has no live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoSession {
    /// Its card gives no endpoint (a hidden host, or one not reachable
    /// from here): it must make the handshake, and has not.
    #[error("no endpoint: it has to call this host, and has not")]
    NoEndpoint,
    /// This host dials its endpoint, and no handshake has completed.
    #[error("no answer from its endpoint")]
    NoAnswer,
}

/// One card a member knows, as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardStanding {
    /// The card.
    pub card: HostCard,
    /// How its operator stands.
    pub admission: Admission,
    /// `None` when it is one of the peers; else why not.
    pub no_peer: Option<NoPeer>,
}

/// Why the host of `card`, which this host (card `local`, in the state
/// `store` at `now`, with operators standing as `admissions` and overlay
/// `overlay`) knows, is not its peer; `None` when the peer manager makes
/// it one. `local_error` is this host's own ([`Mesh::local_error`]).
pub fn why_no_peer(
    local: &HostCard,
    local_error: Option<&LocalCardError>,
    card: &SignedCard,
    store: &Store,
    admissions: &Admissions,
    overlay: IpNet,
    now: UnixTime,
) -> Option<NoPeer> {
    if let Some(error) = local_error {
        return Some(NoPeer::LocalCard(error.clone()));
    }
    let host = card.card();
    if store.is_revoked(host) {
        return Some(NoPeer::Revoked);
    }
    if let Err(error) = card.check_valid_at(now) {
        return Some(NoPeer::Time(error));
    }
    if let Admission::NotAdmitted(reason) = admissions.of(&host.operator) {
        return Some(NoPeer::NotAdmitted {
            operator: host.operator,
            reason,
        });
    }
    let admitted: BTreeSet<OperatorId> = admissions.ranges().keys().copied().collect();
    if !may_peer(local, host, &admitted) {
        return Some(NoPeer::RoleForbids);
    }
    let range = admissions.ranges().get(&host.operator)?;
    overlay::check_card(host, *range, overlay)
        .err()
        .map(NoPeer::OutOfRange)
}

/// Why the peer `spec` has no live session, given whether it has one.
pub fn why_no_session(spec: &PeerSpec, live: bool) -> Option<NoSession> {
    match (live, &spec.endpoint) {
        (true, _) => None,
        (false, None) => Some(NoSession::NoEndpoint),
        (false, Some(_)) => Some(NoSession::NoAnswer),
    }
}

impl Mesh {
    /// How the operators stand now: trust paths, and what keeps the
    /// others out.
    pub fn admissions(&self) -> Admissions {
        let store = self.store();
        self.policy()
            .admissions(store.vouches(), store.revocations())
    }

    /// Every card this member knows but its own — those of its store, then
    /// those of `also` (e.g. cards of operators not admitted yet, which
    /// the store does not keep) whose key the store has no card for —
    /// each with how it stands at `now`, ascending by key.
    pub fn card_standings<'a>(
        &'a self,
        also: impl IntoIterator<Item = &'a SignedCard>,
        now: UnixTime,
    ) -> Vec<CardStanding> {
        let store = self.store();
        let admissions = self.admissions();
        let local = self.local_card().card();
        let overlay = self.policy().overlay().overlay();
        let mut seen: BTreeSet<PublicKey> = BTreeSet::from([local.wg_public_key]);
        let mut standings: Vec<CardStanding> = store
            .cards()
            .chain(also)
            .filter(|card| seen.insert(card.card().wg_public_key))
            .map(|card| CardStanding {
                card: card.card().clone(),
                admission: admissions.of(&card.card().operator),
                no_peer: why_no_peer(
                    local,
                    self.local_error(),
                    card,
                    store,
                    &admissions,
                    overlay,
                    now,
                ),
            })
            .collect();
        standings.sort_by_key(|standing| standing.card.wg_public_key);
        standings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::{Revocation, RevocationTarget};
    use crate::role::Role;
    use crate::testing::{NOW, card, operator, operator_range, overlay_of, signed};
    use crate::trust::TrustPolicy;
    use crate::vouch::Vouch;

    /// Host `name` of operator `op`, at 198.19.`op`.`n`/32.
    fn host(op: u8, name: &str, role: Role, n: u8) -> SignedCard {
        let mut c = card(&operator(op), name, role);
        c.addresses = vec![format!("198.19.{op}.{n}/32").parse().unwrap()];
        c.allowed_ips = vec![];
        signed(c, &operator(op))
    }

    fn vouch(by: u8, subject: u8) -> crate::SignedVouch {
        Vouch {
            voucher: operator(by).operator_id(),
            subject: operator(subject).operator_id(),
            overlay: operator_range(subject),
            issued_at: NOW,
        }
        .sign(&operator(by))
        .unwrap()
    }

    /// Operator 1's sentry, trusting 2 and 3 directly with k = 2, and
    /// what it knows of every case.
    #[test]
    fn every_card_stands_as_the_peer_manager_decides() {
        let local = host(1, "s1", Role::Sentry, 1);
        let policy = TrustPolicy::new(
            operator(1).operator_id(),
            [operator(2).operator_id(), operator(3).operator_id()],
            2,
            overlay_of([1, 2, 3]),
        )
        .unwrap();
        let own_producer = host(1, "p1", Role::Producer, 2);
        let direct = host(2, "s2", Role::Sentry, 1);
        let revoked = host(2, "s2-old", Role::Sentry, 2);
        let mut stale = card(&operator(3), "s3-stale", Role::Sentry);
        stale.addresses = vec!["198.19.3.1/32".parse().unwrap()];
        stale.allowed_ips = vec![];
        stale.not_before = NOW - 200 * 86_400;
        stale.not_after = NOW - 86_400;
        let stale = signed(stale, &operator(3));
        let mut outside = card(&operator(3), "s3-wide", Role::Sentry);
        outside.addresses = vec!["198.19.3.2/32".parse().unwrap()];
        outside.allowed_ips = vec!["198.19.0.0/16".parse().unwrap()];
        let outside = signed(outside, &operator(3));
        // Operator 4: one vouch (from 2) of the two it needs; operator 5:
        // vouched by 1 itself and 3.
        let half = host(4, "s4", Role::Sentry, 1);
        let vouched = host(5, "s5", Role::Sentry, 1);

        let mut store = Store::new();
        for c in [&own_producer, &direct, &revoked, &outside] {
            store.insert_card(c.clone(), NOW).unwrap();
        }
        for v in [vouch(2, 4), vouch(1, 5), vouch(3, 5)] {
            store.insert_vouch(v, NOW).unwrap();
        }
        let revocation = Revocation {
            issuer: operator(2).operator_id(),
            target: RevocationTarget::Host(revoked.card().wg_public_key),
            issued_at: NOW,
        }
        .sign(&operator(2))
        .unwrap();
        store.insert_revocation(revocation, NOW).unwrap();
        store.insert_card(vouched.clone(), NOW).unwrap();
        let mesh = Mesh::new(local.clone(), policy, store, NOW).unwrap();

        // The card of operator 4, the expired one and the revoked one wait
        // outside the store (which keeps none of them), as the daemon's
        // known directory keeps them.
        let standings = mesh.card_standings([&half, &stale, &revoked, &local], NOW);
        let by_name = |name: &str| {
            standings
                .iter()
                .find(|s| s.card.name == name)
                .unwrap_or_else(|| panic!("{name} is missing"))
        };
        assert!(standings.iter().all(|s| s.card.name != "s1"), "not its own");
        assert_eq!(standings.len(), 7);
        for standing in &standings {
            // Exactly the peers have no reason.
            assert_eq!(
                standing.no_peer.is_none(),
                mesh.peer(&standing.card.wg_public_key).is_some(),
                "{}: {:?}",
                standing.card.name,
                standing.no_peer
            );
        }
        assert_eq!(by_name("p1").no_peer, None);
        assert_eq!(by_name("s2").no_peer, None);
        assert_eq!(by_name("s2-old").no_peer, Some(NoPeer::Revoked));
        assert!(matches!(
            by_name("s3-stale").no_peer,
            Some(NoPeer::Time(CardTimeError::Expired { .. }))
        ));
        assert!(matches!(
            by_name("s3-wide").no_peer,
            Some(NoPeer::OutOfRange(OutOfRange::AllowedIp { .. }))
        ));
        let Some(NoPeer::NotAdmitted {
            operator: op,
            reason,
        }) = &by_name("s4").no_peer
        else {
            panic!("{:?}", by_name("s4").no_peer);
        };
        assert_eq!(*op, operator(4).operator_id());
        assert!(matches!(
            reason,
            NotAdmitted::MissingVouches { missing: 1, could_vouch, .. }
                if *could_vouch == BTreeSet::from([operator(1).operator_id(), operator(3).operator_id()])
        ));
        let text = by_name("s4").no_peer.as_ref().unwrap().to_string();
        assert!(text.contains("1 of the 2 vouches"), "{text}");
        assert_eq!(by_name("s5").no_peer, None);
        assert!(matches!(
            &by_name("s5").admission,
            Admission::Admitted { path: crate::TrustPath::Vouched { by }, .. } if by.len() == 2
        ));
    }

    #[test]
    fn a_hidden_host_sees_other_operators_forbidden_and_no_peers_without_its_card() {
        let producer = host(1, "p1", Role::Producer, 1);
        let policy = TrustPolicy::new(
            operator(1).operator_id(),
            [operator(2).operator_id()],
            1,
            overlay_of([1, 2]),
        )
        .unwrap();
        let theirs = host(2, "s2", Role::Sentry, 1);
        let own = host(1, "s1", Role::Sentry, 2);
        let mut store = Store::new();
        store.insert_card(theirs.clone(), NOW).unwrap();
        store.insert_card(own.clone(), NOW).unwrap();
        let mesh = Mesh::new(producer.clone(), policy, store, NOW).unwrap();
        let standings = mesh.card_standings([], NOW);
        let of = |c: &SignedCard| {
            standings
                .iter()
                .find(|s| s.card.wg_public_key == c.card().wg_public_key)
                .unwrap()
                .no_peer
                .clone()
        };
        assert_eq!(of(&theirs), Some(NoPeer::RoleForbids));
        assert_eq!(of(&own), None);

        // Once its own key is revoked, every card says so.
        let mut mesh = mesh;
        let revocation = Revocation {
            issuer: operator(1).operator_id(),
            target: RevocationTarget::Host(producer.card().wg_public_key),
            issued_at: NOW,
        }
        .sign(&operator(1))
        .unwrap();
        mesh.insert(revocation, NOW).unwrap();
        let standings = mesh.card_standings([], NOW);
        assert_eq!(standings.len(), 2);
        assert!(
            standings.iter().all(|s| matches!(
                s.no_peer,
                Some(NoPeer::LocalCard(LocalCardError::Revoked { .. }))
            )),
            "{standings:?}"
        );
    }

    #[test]
    fn a_peer_without_a_session_waits_for_a_call_or_an_answer() {
        let spec = |endpoint: Option<&str>| PeerSpec {
            public_key: card(&operator(1), "x", Role::Sentry).wg_public_key,
            operator: operator(1).operator_id(),
            name: "x".into(),
            role: Role::Sentry,
            addresses: vec![],
            endpoint: endpoint.map(|e| e.parse().unwrap()),
            allowed_ips: vec![],
            persistent_keepalive: None,
        };
        assert_eq!(why_no_session(&spec(None), true), None);
        assert_eq!(
            why_no_session(&spec(None), false),
            Some(NoSession::NoEndpoint)
        );
        assert_eq!(
            why_no_session(&spec(Some("198.18.0.1:51820")), false),
            Some(NoSession::NoAnswer)
        );
    }
}
