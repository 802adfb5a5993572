//! The role rules, as pure functions the daemon and the gossip layer call
//! before they configure a peer or send a card.
//!
//! | local \ remote        | own hidden | own public | other public, admitted | other, not admitted or hidden |
//! |-----------------------|------------|------------|------------------------|-------------------------------|
//! | hidden (producer, bios) | no       | yes        | no                     | no                            |
//! | public (sentry, full) | yes        | yes        | yes                    | no                            |
//!
//! A hidden host therefore peers only with its own operator's sentries and
//! full nodes and accepts no handshake from anyone else; its card — with its
//! address — is shown to no other operator ([`may_share`]), and it has no
//! endpoint to show (the card refuses one). No host peers with itself.

use std::collections::BTreeSet;

use crate::card::HostCard;
use crate::identity::OperatorId;

/// Whether the host of `local` may peer with the host of `remote`, given
/// the operators `local`'s trust policy admits: configure it as a peer,
/// initiate to it, accept its handshakes.
pub fn may_peer(local: &HostCard, remote: &HostCard, admitted: &BTreeSet<OperatorId>) -> bool {
    if local.wg_public_key == remote.wg_public_key {
        return false;
    }
    let same_operator = local.operator == remote.operator;
    match (local.role.is_hidden(), remote.role.is_hidden()) {
        (true, true) => false,
        (true, false) | (false, true) => same_operator,
        (false, false) => same_operator || admitted.contains(&remote.operator),
    }
}

/// Whether `card` may be sent to a host of `recipient`, given the operators
/// the sender admits: a hidden host's card goes only to its own operator's
/// hosts; a public one to its own operator and to admitted operators.
pub fn may_share(card: &HostCard, recipient: &OperatorId, admitted: &BTreeSet<OperatorId>) -> bool {
    if *recipient == card.operator {
        return true;
    }
    !card.role.is_hidden() && admitted.contains(recipient)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::Role::{self, Bios, Full, Producer, Sentry};
    use crate::testing::{card, operator};

    /// Every pair of roles, and whether they may peer when the remote host
    /// is: [own operator's and admitted, own operator's and (nonsensically)
    /// not admitted, another admitted operator's, another operator's not
    /// admitted].
    const PEERING: [(Role, Role, [bool; 4]); 16] = [
        (Producer, Producer, [false, false, false, false]),
        (Producer, Bios, [false, false, false, false]),
        (Producer, Sentry, [true, true, false, false]),
        (Producer, Full, [true, true, false, false]),
        (Bios, Producer, [false, false, false, false]),
        (Bios, Bios, [false, false, false, false]),
        (Bios, Sentry, [true, true, false, false]),
        (Bios, Full, [true, true, false, false]),
        (Sentry, Producer, [true, true, false, false]),
        (Sentry, Bios, [true, true, false, false]),
        (Sentry, Sentry, [true, true, true, false]),
        (Sentry, Full, [true, true, true, false]),
        (Full, Producer, [true, true, false, false]),
        (Full, Bios, [true, true, false, false]),
        (Full, Sentry, [true, true, true, false]),
        (Full, Full, [true, true, true, false]),
    ];

    #[test]
    fn peering_table() {
        let (own, other) = (operator(1), operator(2));
        for (local_role, remote_role, expected) in PEERING {
            let local = card(&own, "local", local_role);
            let cases = [(&own, true), (&own, false), (&other, true), (&other, false)];
            for ((remote_op, admitted), expected) in cases.into_iter().zip(expected) {
                let remote = card(remote_op, "remote", remote_role);
                let mut set = BTreeSet::from([own.operator_id()]);
                if admitted {
                    set.insert(remote_op.operator_id());
                } else if remote_op.operator_id() != own.operator_id() {
                    set.remove(&remote_op.operator_id());
                }
                assert_eq!(
                    may_peer(&local, &remote, &set),
                    expected,
                    "{local_role} -> {remote_role}, same operator: {}, admitted: {admitted}",
                    remote_op.operator_id() == own.operator_id()
                );
                // Each side judging with the other admitted agrees.
                if admitted {
                    let both = BTreeSet::from([own.operator_id(), remote_op.operator_id()]);
                    assert_eq!(
                        may_peer(&remote, &local, &both),
                        may_peer(&local, &remote, &both)
                    );
                }
            }
        }
    }

    #[test]
    fn the_table_covers_every_pair_once() {
        let pairs: BTreeSet<(Role, Role)> = PEERING.iter().map(|&(a, b, _)| (a, b)).collect();
        assert_eq!(pairs.len(), Role::ALL.len() * Role::ALL.len());
    }

    #[test]
    fn no_host_peers_with_itself() {
        let own = operator(1);
        let admitted = BTreeSet::from([own.operator_id()]);
        let sentry = card(&own, "sentry-1", Sentry);
        assert!(!may_peer(&sentry, &sentry, &admitted));
    }

    /// Each role, and whether its card may go to: its own operator, another
    /// admitted operator, an operator not admitted.
    const SHARING: [(Role, [bool; 3]); 4] = [
        (Producer, [true, false, false]),
        (Bios, [true, false, false]),
        (Sentry, [true, true, false]),
        (Full, [true, true, false]),
    ];

    #[test]
    fn sharing_table() {
        let (own, admitted_op, stranger) = (operator(1), operator(2), operator(3));
        let admitted = BTreeSet::from([own.operator_id(), admitted_op.operator_id()]);
        for (role, expected) in SHARING {
            let host = card(&own, "host", role);
            let recipients = [&own, &admitted_op, &stranger];
            for (recipient, expected) in recipients.into_iter().zip(expected) {
                assert_eq!(
                    may_share(&host, &recipient.operator_id(), &admitted),
                    expected,
                    "{role} card to {}",
                    recipient.operator_id()
                );
            }
        }
    }
}
