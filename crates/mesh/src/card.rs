//! Host cards: what an operator states about one of its hosts, signed.
//!
//! A [`HostCard`] is the plain statement — name, role, WireGuard key,
//! overlay addresses, endpoints, allowed IPs, validity window, serial and
//! optional chain p2p address. [`HostCard::sign`] validates it and signs its
//! canonical encoding with the operator's key, giving a [`SignedCard`].
//!
//! A `SignedCard` value is always valid and always carries a signature that
//! verifies under the card's own operator: [`SignedCard::decode`] and
//! [`SignedCard::from_text`] check both before returning one, so there is no
//! unverified card to forget to check. Whether the card is valid *now* is a
//! separate question, answered by [`SignedCard::check_valid_at`], and whether
//! its operator is trusted is the trust policy's.
//!
//! A newer card for the same host key (a higher serial from the same
//! operator) supersedes an older one: [`SignedCard::supersedes`].
//!
//! The encoding, after the format version byte: operator id (32), name,
//! role (1: producer, 2: bios, 3: sentry, 4: full), WireGuard key (32),
//! addresses, endpoints, allowed IPs, `not_before`, `not_after`, serial
//! (`u64` each), then a chain p2p flag and, when set, the id and port; the
//! 64-byte signature follows.

use std::collections::BTreeSet;
use std::fmt;

use crate::armour::{self, ArmourError, ArmourKind};
use crate::cidr::Cidr;
use crate::codec::{self, DecodeError, Reader, Writer};
use crate::endpoint::{ChainP2p, Endpoint, is_dns_label};
use crate::identity::{Domain, OperatorId, OperatorSecret, is_blank_signature};
use crate::role::Role;
use crate::time::{CLOCK_SKEW, UnixTime};
use crate::wg_key::WgPublicKey;

/// The most overlay addresses on one card.
pub const MAX_ADDRESSES: usize = 16;
/// The most endpoints on one card.
pub const MAX_ENDPOINTS: usize = 16;
/// The most allowed-IP networks on one card.
pub const MAX_ALLOWED_IPS: usize = 256;
/// The longest host name.
pub const MAX_NAME_LEN: usize = 63;
/// The longest encoded signed card; every valid card is shorter.
pub const MAX_CARD_LEN: usize = 16 * 1024;

/// What an operator states about one host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostCard {
    /// The operator the host belongs to, who signs the card.
    pub operator: OperatorId,
    /// The host's name: a DNS label (lower-case letters, digits, hyphens).
    pub name: String,
    /// What the host does.
    pub role: Role,
    /// The host's WireGuard public key.
    pub wg_public_key: WgPublicKey,
    /// The host's overlay addresses with their subnets (at least one); each
    /// is also routed to the host as a single address.
    pub addresses: Vec<Cidr>,
    /// Where the host is reached over UDP; none for hidden roles.
    pub endpoints: Vec<Endpoint>,
    /// Networks routed to the host besides its own addresses; no host bits.
    pub allowed_ips: Vec<Cidr>,
    /// Valid from this time (Unix seconds).
    pub not_before: u64,
    /// Valid until just before this time (Unix seconds).
    pub not_after: u64,
    /// Orders the operator's cards for one host key: higher supersedes.
    pub serial: u64,
    /// The host's chain peer-to-peer address, if it publishes one.
    pub chain_p2p: Option<ChainP2p>,
}

/// Why a card is not valid, whoever signed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidCard {
    /// The name is not a lower-case DNS label.
    #[error(
        "{0:?} is not a host name: use 1 to 63 lower-case letters, digits and hyphens, \
         not starting or ending with a hyphen"
    )]
    Name(String),
    /// The card lists no overlay address.
    #[error("host `{host}` has no overlay address")]
    NoAddress {
        /// The host's name.
        host: String,
    },
    /// A list over its limit.
    #[error("host `{host}` has {count} {what}, more than the {max} allowed")]
    TooMany {
        /// The host's name.
        host: String,
        /// What the list holds.
        what: &'static str,
        /// Its length.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The same entry twice in a list.
    #[error("host `{host}` lists the {what} {value} twice")]
    Duplicate {
        /// The host's name.
        host: String,
        /// What the list holds.
        what: &'static str,
        /// The repeated entry.
        value: String,
    },
    /// A hidden host with an endpoint.
    #[error("host `{host}` is a {role}, a hidden role: it may publish no endpoint")]
    HiddenEndpoint {
        /// The host's name.
        host: String,
        /// Its role.
        role: Role,
    },
    /// An endpoint with an invalid name or port 0.
    #[error("host `{host}` has the invalid endpoint {endpoint}")]
    Endpoint {
        /// The host's name.
        host: String,
        /// The endpoint as written.
        endpoint: String,
    },
    /// An allowed IP with host bits set.
    #[error("the allowed IP {cidr} of host `{host}` has host bits set; did you mean {network}?")]
    AllowedIpHostBits {
        /// The host's name.
        host: String,
        /// The allowed IP.
        cidr: Cidr,
        /// The network it lies in.
        network: Cidr,
    },
    /// A validity window that ends before it begins.
    #[error(
        "the card for host `{host}` would expire at {not_after}, before it is valid at {not_before}"
    )]
    EmptyValidity {
        /// The host's name.
        host: String,
        /// Start of validity.
        not_before: UnixTime,
        /// End of validity.
        not_after: UnixTime,
    },
    /// An all-zero WireGuard key.
    #[error("host `{host}` has an all-zero WireGuard public key")]
    ZeroKey {
        /// The host's name.
        host: String,
    },
    /// An ill-formed chain p2p address.
    #[error("host `{host}` has an invalid chain p2p address")]
    ChainP2p {
        /// The host's name.
        host: String,
    },
}

/// Why a card could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignCardError {
    /// The key given is not the card's operator's.
    #[error(
        "the card for host `{host}` names operator {card_operator}, but the key given is \
         operator {signer}'s"
    )]
    NotTheOperator {
        /// The host's name.
        host: String,
        /// The operator the card names.
        card_operator: OperatorId,
        /// The operator of the key given.
        signer: OperatorId,
    },
    /// The card is not valid.
    #[error(transparent)]
    Invalid(#[from] InvalidCard),
}

/// Why bytes or text are not a signed card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseCardError {
    /// The text is not an armoured card.
    #[error(transparent)]
    Armour(#[from] ArmourError),
    /// The bytes are not a card encoding.
    #[error("malformed card: {0}")]
    Malformed(#[from] DecodeError),
    /// The card is well-formed but not valid.
    #[error(transparent)]
    Invalid(#[from] InvalidCard),
    /// The signature field is blank.
    #[error("the card for host `{host}` is not signed")]
    Unsigned {
        /// The host's name.
        host: String,
    },
    /// The signature does not verify under the card's operator.
    #[error(
        "signature does not verify: the card for host `{host}` was altered, or not signed by \
         its operator {operator}"
    )]
    BadSignature {
        /// The host's name.
        host: String,
        /// The operator the card names.
        operator: OperatorId,
    },
}

/// Why a card is not valid at a given time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CardTimeError {
    /// Before the card's `not_before` (beyond the allowed clock skew).
    #[error("the card for host `{host}` is not valid until {not_before}")]
    NotYetValid {
        /// The host's name.
        host: String,
        /// Start of validity.
        not_before: UnixTime,
    },
    /// At or after the card's `not_after`.
    #[error("the card for host `{host}` expired at {expired_at}")]
    Expired {
        /// The host's name.
        host: String,
        /// End of validity.
        expired_at: UnixTime,
    },
}

impl HostCard {
    /// Checks the rules every card obeys: a host-name-like name, one to 16
    /// addresses, no endpoint on a hidden role, endpoints and allowed IPs
    /// well-formed and within their limits, no duplicates, allowed IPs
    /// without host bits, a non-zero WireGuard key, and a validity window
    /// that is not empty.
    ///
    /// # Errors
    ///
    /// The first rule broken, as an [`InvalidCard`] naming the host.
    pub fn validate(&self) -> Result<(), InvalidCard> {
        if !is_host_name(&self.name) {
            return Err(InvalidCard::Name(self.name.clone()));
        }
        let host = || self.name.clone();
        if self.addresses.is_empty() {
            return Err(InvalidCard::NoAddress { host: host() });
        }
        check_list(&self.name, "addresses", &self.addresses, MAX_ADDRESSES)?;
        check_list(&self.name, "endpoints", &self.endpoints, MAX_ENDPOINTS)?;
        check_list(
            &self.name,
            "allowed IPs",
            &self.allowed_ips,
            MAX_ALLOWED_IPS,
        )?;
        if self.role.is_hidden() && !self.endpoints.is_empty() {
            return Err(InvalidCard::HiddenEndpoint {
                host: host(),
                role: self.role,
            });
        }
        if let Some(endpoint) = self.endpoints.iter().find(|e| !e.is_valid()) {
            return Err(InvalidCard::Endpoint {
                host: host(),
                endpoint: endpoint.to_string(),
            });
        }
        if let Some(cidr) = self.allowed_ips.iter().find(|c| !c.is_network()) {
            return Err(InvalidCard::AllowedIpHostBits {
                host: host(),
                cidr: *cidr,
                network: cidr.network(),
            });
        }
        if self.not_before >= self.not_after {
            return Err(InvalidCard::EmptyValidity {
                host: host(),
                not_before: UnixTime(self.not_before),
                not_after: UnixTime(self.not_after),
            });
        }
        if self.wg_public_key.is_zero() {
            return Err(InvalidCard::ZeroKey { host: host() });
        }
        if self.chain_p2p.as_ref().is_some_and(|p2p| !p2p.is_valid()) {
            return Err(InvalidCard::ChainP2p { host: host() });
        }
        Ok(())
    }

    /// Validates the card and signs it with its operator's key.
    ///
    /// # Errors
    ///
    /// [`SignCardError::NotTheOperator`] when `secret` is not the key of
    /// `self.operator`; [`SignCardError::Invalid`] when the card is invalid.
    pub fn sign(&self, secret: &OperatorSecret) -> Result<SignedCard, SignCardError> {
        let signer = secret.operator_id();
        if signer != self.operator {
            return Err(SignCardError::NotTheOperator {
                host: self.name.clone(),
                card_operator: self.operator,
                signer,
            });
        }
        self.validate()?;
        let mut w = Writer::versioned();
        self.encode(&mut w);
        let signature = secret.sign(Domain::Card, w.as_slice());
        w.array(&signature);
        Ok(SignedCard {
            card: self.clone(),
            encoded: w.into_bytes(),
        })
    }

    /// Writes the fields; the caller has validated the card.
    fn encode(&self, w: &mut Writer) {
        w.array(self.operator.as_bytes());
        w.str(&self.name);
        w.u8(self.role.tag());
        w.array(self.wg_public_key.as_bytes());
        w.count(self.addresses.len());
        self.addresses.iter().for_each(|a| a.encode(w));
        w.count(self.endpoints.len());
        self.endpoints.iter().for_each(|e| e.encode(w));
        w.count(self.allowed_ips.len());
        self.allowed_ips.iter().for_each(|a| a.encode(w));
        w.u64(self.not_before);
        w.u64(self.not_after);
        w.u64(self.serial);
        w.flag(self.chain_p2p.is_some());
        if let Some(p2p) = &self.chain_p2p {
            p2p.encode(w);
        }
    }

    /// Reads the fields, after the format version.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let operator =
            OperatorId::from_bytes(&r.array("operator id")?).map_err(|_| DecodeError::Invalid {
                field: "operator id",
                reason: "not an Ed25519 public key",
            })?;
        let name = r.str("host name", MAX_NAME_LEN)?.to_owned();
        let role_tag = r.u8("role")?;
        let role = Role::from_tag(role_tag).ok_or(DecodeError::BadValue {
            field: "role",
            value: role_tag.into(),
        })?;
        let wg_public_key = WgPublicKey::from_bytes(r.array("WireGuard public key")?);
        let count = r.count("address list", MAX_ADDRESSES)?;
        let addresses = (0..count)
            .map(|_| Cidr::decode(r, "address"))
            .collect::<Result<_, _>>()?;
        let count = r.count("endpoint list", MAX_ENDPOINTS)?;
        let endpoints = (0..count)
            .map(|_| Endpoint::decode(r))
            .collect::<Result<_, _>>()?;
        let count = r.count("allowed IP list", MAX_ALLOWED_IPS)?;
        let allowed_ips = (0..count)
            .map(|_| Cidr::decode(r, "allowed IP"))
            .collect::<Result<_, _>>()?;
        let not_before = r.u64("start of validity")?;
        let not_after = r.u64("end of validity")?;
        let serial = r.u64("serial")?;
        let chain_p2p = if r.flag("chain p2p flag")? {
            Some(ChainP2p::decode(r)?)
        } else {
            None
        };
        Ok(Self {
            operator,
            name,
            role,
            wg_public_key,
            addresses,
            endpoints,
            allowed_ips,
            not_before,
            not_after,
            serial,
            chain_p2p,
        })
    }
}

/// A lower-case DNS label: the form of a host name.
fn is_host_name(name: &str) -> bool {
    is_dns_label(name) && !name.bytes().any(|b| b.is_ascii_uppercase())
}

fn check_list<T: Ord + fmt::Display>(
    host: &str,
    what: &'static str,
    items: &[T],
    max: usize,
) -> Result<(), InvalidCard> {
    if items.len() > max {
        return Err(InvalidCard::TooMany {
            host: host.to_owned(),
            what,
            count: items.len(),
            max,
        });
    }
    let mut seen = BTreeSet::new();
    if let Some(item) = items.iter().find(|item| !seen.insert(*item)) {
        return Err(InvalidCard::Duplicate {
            host: host.to_owned(),
            what,
            value: item.to_string(),
        });
    }
    Ok(())
}

/// A valid host card with a signature that verifies under its operator.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SignedCard {
    card: HostCard,
    /// The canonical encoding: body, then the 64-byte signature.
    encoded: Vec<u8>,
}

impl SignedCard {
    /// The card.
    pub fn card(&self) -> &HostCard {
        &self.card
    }

    /// The card, without its signature.
    pub fn into_card(self) -> HostCard {
        self.card
    }

    /// The binary encoding, signature included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// The card in its binary encoding, checked: well-formed, valid, and
    /// signed by the operator it names.
    ///
    /// # Errors
    ///
    /// [`ParseCardError`] saying what is malformed or invalid, or that the
    /// signature is missing or does not verify.
    pub fn decode(bytes: &[u8]) -> Result<Self, ParseCardError> {
        if bytes.len() > MAX_CARD_LEN {
            return Err(DecodeError::TooLong {
                field: "card",
                len: bytes.len(),
                max: MAX_CARD_LEN,
            }
            .into());
        }
        let (body, signature) = codec::split_signature(bytes)?;
        let mut r = Reader::new(body);
        r.version()?;
        let card = HostCard::decode(&mut r)?;
        r.finish()?;
        card.validate()?;
        if is_blank_signature(&signature) {
            return Err(ParseCardError::Unsigned { host: card.name });
        }
        if card
            .operator
            .verify(Domain::Card, body, &signature)
            .is_err()
        {
            return Err(ParseCardError::BadSignature {
                host: card.name,
                operator: card.operator,
            });
        }
        Ok(Self {
            card,
            encoded: bytes.to_vec(),
        })
    }

    /// The printable form: `sentrymesh-card v1` and base64.
    pub fn to_text(&self) -> String {
        armour::encode(ArmourKind::Card, &self.encoded)
    }

    /// The card in its printable form, checked as [`SignedCard::decode`]
    /// checks it.
    ///
    /// # Errors
    ///
    /// [`ParseCardError::Armour`] when the text is not an armoured card, and
    /// the errors of [`SignedCard::decode`].
    pub fn from_text(text: &str) -> Result<Self, ParseCardError> {
        Self::decode(&armour::decode(ArmourKind::Card, text)?)
    }

    /// Checks that the card is valid at `now` (Unix seconds). A card is
    /// accepted from [`CLOCK_SKEW`] seconds before its `not_before`, since
    /// the operator's clock may run ahead of ours, until just before its
    /// `not_after`.
    ///
    /// # Errors
    ///
    /// [`CardTimeError`] naming the host and the time it becomes or became
    /// invalid.
    pub fn check_valid_at(&self, now: u64) -> Result<(), CardTimeError> {
        if now.saturating_add(CLOCK_SKEW) < self.card.not_before {
            return Err(CardTimeError::NotYetValid {
                host: self.card.name.clone(),
                not_before: UnixTime(self.card.not_before),
            });
        }
        if now >= self.card.not_after {
            return Err(CardTimeError::Expired {
                host: self.card.name.clone(),
                expired_at: UnixTime(self.card.not_after),
            });
        }
        Ok(())
    }

    /// Whether this card replaces `other`: the same operator and host key,
    /// and a higher serial.
    pub fn supersedes(&self, other: &SignedCard) -> bool {
        self.card.operator == other.card.operator
            && self.card.wg_public_key == other.card.wg_public_key
            && self.card.serial > other.card.serial
    }
}

impl fmt::Debug for SignedCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedCard")
            .field("card", &self.card)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{card, operator};

    #[test]
    fn sign_then_decode() {
        let op = operator(1);
        let signed = card(&op, "sentry-1", Role::Sentry).sign(&op).unwrap();
        let again = SignedCard::decode(signed.as_bytes()).unwrap();
        assert_eq!(again, signed);
        assert_eq!(SignedCard::from_text(&signed.to_text()).unwrap(), signed);
        assert!(signed.to_text().starts_with("sentrymesh-card v1\n"));
    }

    #[test]
    fn the_largest_valid_card_fits_the_limit() {
        let op = operator(1);
        let mut c = card(&op, &"n".repeat(MAX_NAME_LEN), Role::Full);
        c.addresses = (0..MAX_ADDRESSES)
            .map(|i| format!("2001:db8::{i}/64").parse().unwrap())
            .collect();
        c.endpoints = (1..=MAX_ENDPOINTS)
            .map(|port| Endpoint {
                host: crate::endpoint::EndpointHost::Name(format!(
                    "{0}.{0}.{0}.{1}",
                    "a".repeat(63),
                    "b".repeat(61)
                )),
                port: port as u16,
            })
            .collect();
        c.allowed_ips = (0..MAX_ALLOWED_IPS)
            .map(|i| format!("2001:db8:{i:x}::/48").parse().unwrap())
            .collect();
        c.chain_p2p = Some(ChainP2p {
            id: "x".repeat(crate::endpoint::MAX_CHAIN_ID_LEN),
            port: 1,
        });
        let signed = c.sign(&op).unwrap();
        assert!(
            signed.as_bytes().len() <= MAX_CARD_LEN,
            "{}",
            signed.as_bytes().len()
        );
        assert_eq!(SignedCard::decode(signed.as_bytes()).unwrap(), signed);
    }

    #[test]
    fn only_the_cards_operator_signs_it() {
        let (op, other) = (operator(1), operator(2));
        let err = card(&op, "sentry-1", Role::Sentry)
            .sign(&other)
            .unwrap_err();
        assert_eq!(
            err,
            SignCardError::NotTheOperator {
                host: "sentry-1".into(),
                card_operator: op.operator_id(),
                signer: other.operator_id(),
            }
        );
        assert!(err.to_string().contains(&op.operator_id().to_string()));
    }

    #[test]
    fn validation_rules() {
        let op = operator(1);
        let base = card(&op, "sentry-1", Role::Sentry);
        let check = |edit: &dyn Fn(&mut HostCard)| {
            let mut c = base.clone();
            edit(&mut c);
            c.validate().unwrap_err()
        };
        assert!(matches!(
            check(&|c| c.name = "Sentry".into()),
            InvalidCard::Name(_)
        ));
        assert!(matches!(
            check(&|c| c.name = "-x".into()),
            InvalidCard::Name(_)
        ));
        assert!(matches!(
            check(&|c| c.name = "a.b".into()),
            InvalidCard::Name(_)
        ));
        assert!(matches!(
            check(&|c| c.name = "a".repeat(64)),
            InvalidCard::Name(_)
        ));
        assert!(matches!(
            check(&|c| c.addresses.clear()),
            InvalidCard::NoAddress { .. }
        ));
        let err = check(&|c| c.role = Role::Producer);
        assert_eq!(
            err.to_string(),
            "host `sentry-1` is a producer, a hidden role: it may publish no endpoint"
        );
        assert!(matches!(
            check(&|c| c.addresses.push(c.addresses[0])),
            InvalidCard::Duplicate {
                what: "addresses",
                ..
            }
        ));
        let err = check(&|c| c.allowed_ips = vec!["198.18.7.1/24".parse().unwrap()]);
        assert_eq!(
            err.to_string(),
            "the allowed IP 198.18.7.1/24 of host `sentry-1` has host bits set; did you mean 198.18.7.0/24?"
        );
        assert!(matches!(
            check(&|c| c.not_after = c.not_before),
            InvalidCard::EmptyValidity { .. }
        ));
        assert!(matches!(
            check(&|c| c.wg_public_key = WgPublicKey::from_bytes([0; 32])),
            InvalidCard::ZeroKey { .. }
        ));
        assert!(matches!(
            check(&|c| c.endpoints[0].port = 0),
            InvalidCard::Endpoint { .. }
        ));
        assert!(matches!(
            check(&|c| c.endpoints = vec![c.endpoints[0].clone(); MAX_ENDPOINTS + 1]),
            InvalidCard::TooMany {
                what: "endpoints",
                ..
            }
        ));
        assert!(matches!(
            check(&|c| c.chain_p2p = Some(ChainP2p {
                id: "a b".into(),
                port: 1
            })),
            InvalidCard::ChainP2p { .. }
        ));
        let mut hidden = base.clone();
        hidden.role = Role::Bios;
        hidden.endpoints.clear();
        hidden.validate().unwrap();
    }

    #[test]
    fn validity_window_with_skew() {
        let op = operator(1);
        let signed = card(&op, "full-1", Role::Full).sign(&op).unwrap();
        let (nb, na) = (signed.card().not_before, signed.card().not_after);
        assert!(signed.check_valid_at(nb - CLOCK_SKEW).is_ok());
        assert!(signed.check_valid_at(na - 1).is_ok());
        assert_eq!(
            signed.check_valid_at(nb - CLOCK_SKEW - 1),
            Err(CardTimeError::NotYetValid {
                host: "full-1".into(),
                not_before: UnixTime(nb)
            })
        );
        let expired = signed.check_valid_at(na).unwrap_err();
        assert_eq!(
            expired.to_string(),
            format!("the card for host `full-1` expired at {}", UnixTime(na))
        );
        assert!(expired.to_string().contains("expired at 20"));
    }

    #[test]
    fn a_higher_serial_supersedes() {
        let op = operator(1);
        let mut c = card(&op, "sentry-1", Role::Sentry);
        let old = c.sign(&op).unwrap();
        c.serial += 1;
        let new = c.sign(&op).unwrap();
        assert!(new.supersedes(&old));
        assert!(!old.supersedes(&new));
        assert!(!new.supersedes(&new));
        c.wg_public_key = WgPublicKey::from_bytes([9; 32]);
        c.serial += 1;
        assert!(!c.sign(&op).unwrap().supersedes(&old));
    }

    #[test]
    fn forged_and_unsigned_cards_are_refused() {
        let (op, other) = (operator(1), operator(2));
        let signed = card(&op, "sentry-1", Role::Sentry).sign(&op).unwrap();
        let mut bytes = signed.as_bytes().to_vec();
        let sig_start = bytes.len() - 64;
        bytes[sig_start..].fill(0);
        assert_eq!(
            SignedCard::decode(&bytes),
            Err(ParseCardError::Unsigned {
                host: "sentry-1".into()
            })
        );
        // Someone else's signature over the same body.
        let forged_sig = other.sign(Domain::Card, &bytes[..sig_start]);
        bytes[sig_start..].copy_from_slice(&forged_sig);
        let err = SignedCard::decode(&bytes).unwrap_err();
        assert!(matches!(err, ParseCardError::BadSignature { .. }));
        assert!(err.to_string().starts_with("signature does not verify"));
    }

    #[test]
    fn an_invalid_card_is_refused_even_when_signed() {
        let op = operator(1);
        let mut c = card(&op, "producer-1", Role::Producer);
        c.endpoints.push("198.18.0.9:51820".parse().unwrap());
        let mut w = Writer::versioned();
        c.encode(&mut w);
        let signature = op.sign(Domain::Card, w.as_slice());
        w.array(&signature);
        assert!(matches!(
            SignedCard::decode(w.as_slice()),
            Err(ParseCardError::Invalid(InvalidCard::HiddenEndpoint { .. }))
        ));
        c.endpoints.clear();
        assert!(c.sign(&op).is_ok());
    }
}
