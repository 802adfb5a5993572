//! Logs, once per operator, an introduction or a handshake from an
//! operator this host does not admit, with what keeps it out: which
//! vouches are missing and whose they could be (`sentrymesh status` shows
//! the same). Once per operator, not per message: a host introduces itself
//! every five seconds and initiates a handshake every five, and a flood
//! could claim any number of operators, so the operators logged are a
//! bounded set, shared by both kinds of message.
//!
//! An introduction's operator is the one it claims: it is dropped before
//! any signature is checked. A handshake initiation from a key that is no
//! peer's is known by the key it names (the data path reads it after
//! `mac1`, [`DeviceHandle::unknown_initiators`]); a card this host holds
//! (in its store or its known directory) for that key names the host and
//! its operator. The initiation proved neither, so the line says "claims"
//! for it too. A key that no card names is not logged: nothing ties it to
//! an operator, and a flood could name endless keys; the data path counts
//! those initiations (`unknown_peer` among the dropped datagrams). No
//! address is logged: the operator and its missing vouches are what an
//! operator needs to act on.
//!
//! [`DeviceHandle::unknown_initiators`]: crate::dataplane::handle::DeviceHandle::unknown_initiators

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sentrymesh_mesh::{Admission, Admissions, HostCard, Object, OperatorId, Store};
use sentrymesh_types::PublicKey;

/// The most operators logged; after that, one line says so and no more.
const MAX_LOGGED: usize = 256;

/// What was heard from an operator this host does not admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Heard<'a> {
    /// An introduction, which claims its operator.
    Introduction,
    /// A handshake initiation from the key of the card of host `host`.
    Handshake {
        /// The host's name on its card.
        host: &'a str,
    },
}

impl fmt::Display for Heard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Heard::Introduction => f.write_str("an introduction claims"),
            Heard::Handshake { host } => {
                write!(f, "a handshake initiation claims to be host {host:?} of")
            }
        }
    }
}

/// The card this host holds for the WireGuard key `key`: in its `store`
/// (admitted operators' cards) or among its `known` directory's objects
/// (where another operator's card waits for its vouches).
pub(super) fn card_of<'a>(
    key: &PublicKey,
    store: &'a Store,
    known: &'a [Object],
) -> Option<&'a HostCard> {
    store.card(key).map(|card| card.card()).or_else(|| {
        known.iter().find_map(|object| match object {
            Object::Card(card) if card.card().wg_public_key == *key => Some(card.card()),
            _ => None,
        })
    })
}

/// The operators logged so far.
#[derive(Debug, Default)]
pub(super) struct UnadmittedLog {
    logged: BTreeSet<OperatorId>,
    full: bool,
}

impl UnadmittedLog {
    /// The line to log for what was `heard` from `operator`, standing as
    /// `admissions` say, with `aliases` for its name; `None` when it was
    /// logged before, is admitted (meanwhile), or the set is full and said
    /// so already.
    pub(super) fn line(
        &mut self,
        heard: Heard<'_>,
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
                "introductions and handshakes claim more than {MAX_LOGGED} operators this host \
                 does not admit; no more are logged (sentrymesh status lists the cards it knows)"
            ));
        }
        self.logged.insert(operator);
        let alias = aliases
            .get(&operator)
            .map(|alias| format!(" ({alias})"))
            .unwrap_or_default();
        Some(format!(
            "{heard} operator {operator}{alias}, which this host does not admit: {reason}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;
    use sentrymesh_mesh::{OperatorSecret, Overlay, Role, TrustPolicy, Vouch};
    use sentrymesh_types::{PrivateKey, UnixTime};

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
        let line = log
            .line(Heard::Introduction, outsider, &admissions, &aliases)
            .unwrap();
        assert!(line.contains("(carol)"), "{line}");
        assert!(line.contains("1 of the 2 vouches"), "{line}");
        assert!(
            line.contains(&own.to_string()),
            "whose vouch is missing: {line}"
        );
        assert_eq!(
            log.line(Heard::Introduction, outsider, &admissions, &aliases),
            None,
            "once"
        );
        assert_eq!(
            log.line(Heard::Introduction, direct, &admissions, &aliases),
            None,
            "admitted"
        );

        // Bounded: past the limit, one line says so, then nothing.
        for n in 10..400 {
            log.line(Heard::Introduction, id(n), &admissions, &aliases);
        }
        assert_eq!(log.logged.len(), MAX_LOGGED);
        assert!(log.full);
        assert_eq!(
            log.line(Heard::Introduction, id(4), &admissions, &aliases),
            None
        );
    }

    /// Host `n` of operator `operator`, issued; its key is `[n; 32]`.
    fn card(operator: u16, name: &str, n: u8) -> Object {
        let key = PrivateKey::from_bytes([n; 32]);
        let card = HostCard {
            operator: id(operator),
            name: name.to_owned(),
            role: Role::Sentry,
            wg_public_key: key.public_key(),
            addresses: vec![format!("198.19.{operator}.{n}/32").parse().unwrap()],
            endpoints: vec![format!("198.18.0.{n}:51820").parse().unwrap()],
            allowed_ips: Vec::new(),
            not_before: UnixTime(0),
            not_after: UnixTime(u64::MAX),
            serial: 1,
            chain_p2p: None,
        };
        let signed = card
            .issue(&secret(operator), &key, &mut ChaCha8Rng::seed_from_u64(1))
            .unwrap();
        Object::Card(signed)
    }

    #[test]
    fn a_handshake_from_a_known_card_names_its_host_and_operator_once() {
        let (own, outsider) = (id(1), id(3));
        let overlay = Overlay::new(
            "198.19.0.0/16".parse().unwrap(),
            [(own, "198.19.1.0/24".parse().unwrap())],
        )
        .unwrap();
        let policy = TrustPolicy::new(own, [], 1, overlay).unwrap();
        let admissions = policy.admissions([], []);
        let mut store = Store::new();
        let Object::Card(own_card) = card(1, "own-sentry", 11) else {
            unreachable!()
        };
        store.insert_card(own_card, UnixTime(1)).unwrap();
        let known = vec![card(3, "rival-sentry", 33), card(3, "rival-other", 34)];

        // The store's cards and the known directory's are both found.
        let own_key = PrivateKey::from_bytes([11; 32]).public_key();
        assert_eq!(
            card_of(&own_key, &store, &known).unwrap().name,
            "own-sentry"
        );
        let rival_key = PrivateKey::from_bytes([33; 32]).public_key();
        let rival = card_of(&rival_key, &store, &known).unwrap();
        assert_eq!(rival.name, "rival-sentry");
        let stranger = PrivateKey::from_bytes([99; 32]).public_key();
        assert!(card_of(&stranger, &store, &known).is_none());

        let mut log = UnadmittedLog::default();
        let heard = Heard::Handshake { host: &rival.name };
        let line = log
            .line(heard, rival.operator, &admissions, &BTreeMap::new())
            .unwrap();
        assert!(
            line.starts_with(
                "a handshake initiation claims to be host \"rival-sentry\" of operator"
            ),
            "{line}"
        );
        assert!(line.contains(&outsider.to_string()), "{line}");
        assert!(line.contains("vouch"), "{line}");
        assert!(!line.contains("198.18."), "no address: {line}");
        // Once per operator, whichever host or message names it next.
        let other = Heard::Handshake {
            host: "rival-other",
        };
        assert_eq!(
            log.line(other, outsider, &admissions, &BTreeMap::new()),
            None
        );
        assert_eq!(
            log.line(Heard::Introduction, outsider, &admissions, &BTreeMap::new()),
            None
        );
        // The own operator is admitted: never logged.
        let heard = Heard::Handshake { host: "own-sentry" };
        assert_eq!(log.line(heard, own, &admissions, &BTreeMap::new()), None);
    }
}
