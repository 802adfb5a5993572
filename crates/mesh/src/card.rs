//! Host cards: what an operator states about one of its hosts, signed.
//!
//! A [`HostCard`] is the plain statement — name, role, WireGuard key,
//! overlay addresses, endpoints, allowed IPs, validity window, serial and
//! optional chain p2p address. [`HostCard::issue`] validates it, proves
//! with the host's WireGuard private key that the key is the host's (see
//! [`crate::possession`] and the `## Proof of possession` notes of the
//! crate), and signs the encoding and the proof with the operator's key,
//! giving a [`SignedCard`].
//!
//! A `SignedCard` value is always valid, always carries a proof that
//! verifies under its WireGuard key and a signature that verifies under
//! its own operator: [`SignedCard::decode`] and [`SignedCard::from_text`]
//! check all three before returning one, so there is no unverified card to
//! forget to check. A card whose WireGuard key is of low order or not
//! canonical is invalid: a tunnel cannot peer with it. Whether the card is valid *now* is a
//! separate question, answered by [`SignedCard::check_valid_at`], and whether
//! its operator is trusted is the trust policy's.
//!
//! A newer card for the same host key (a higher serial from the same
//! operator) supersedes an older one: [`SignedCard::supersedes`].
//!
//! The encoding, after the format version byte: operator id (32), name,
//! role (1: producer, 2: bios, 3: sentry, 4: full), WireGuard key (32),
//! addresses, endpoints, allowed IPs, `not_before`, `not_after`, serial
//! (`u64` each), then a chain p2p tag — `0`: none, `1`: the id and port
//! follow, `2`: the id, port and a nodeos peer key follow (a tag added
//! after the first cards, whose encodings it leaves unchanged); the 64-byte
//! proof of possession follows, then the operator's 64-byte signature over
//! all that precedes it.

use std::collections::BTreeSet;
use std::fmt;

use rand_core::CryptoRngCore;
use sentrymesh_types::{
    CLOCK_SKEW, InterfaceAddress, IpNet, KeyDefect, PrivateKey, PublicKey, UnixTime,
};

use crate::armour::{self, ArmourError, ArmourKind};
use crate::codec::{self, DecodeError, Reader, Writer};
use crate::endpoint::{ChainP2p, Endpoint, EndpointHost, is_dns_label};
use crate::identity::{Domain, OperatorId, OperatorSecret, is_blank_signature};
use crate::possession::{self, PROOF_LEN};
use crate::role::Role;

mod request;

pub use request::CardRequest;

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
    pub wg_public_key: PublicKey,
    /// The host's overlay addresses with their subnets (at least one); each
    /// is also routed to the host as a single address.
    pub addresses: Vec<InterfaceAddress>,
    /// Where the host is reached over UDP; none for hidden roles.
    pub endpoints: Vec<Endpoint>,
    /// Networks routed to the host besides its own addresses (an [`IpNet`]
    /// has no host bits, so a typo such as `198.18.1.1/24` for
    /// `198.18.1.0/24` is refused where it is parsed or decoded).
    pub allowed_ips: Vec<IpNet>,
    /// Valid from this time (Unix seconds).
    pub not_before: UnixTime,
    /// Valid until just before this time (Unix seconds).
    pub not_after: UnixTime,
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
    /// An endpoint address that reaches no other host, or is checked as
    /// another address than the one sent to (see
    /// [`crate::unreachable_reason`]).
    #[error(
        "host `{host}` has the endpoint {endpoint}, {reason}: give an address other hosts reach it at"
    )]
    EndpointAddress {
        /// The host's name.
        host: String,
        /// The endpoint as written.
        endpoint: String,
        /// What the address is.
        reason: &'static str,
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
    /// A WireGuard key of low order: no tunnel can peer with it.
    #[error("host `{host}` has a WireGuard public key of low order, which no tunnel can peer with")]
    LowOrderKey {
        /// The host's name.
        host: String,
    },
    /// A WireGuard key that is not the canonical encoding of a point.
    #[error("host `{host}` has a WireGuard public key that is not canonical (not below 2^255-19)")]
    NonCanonicalKey {
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
    /// The WireGuard private key given is not the one of the card's public
    /// key.
    #[error(
        "the WireGuard private key given is not the one of the public key on the card for host \
         `{host}`"
    )]
    NotTheHostKey {
        /// The host's name.
        host: String,
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
    /// The proof of possession does not verify under the card's WireGuard
    /// key: whoever made the card does not hold the key it names.
    #[error(
        "the card for host `{host}` of operator {operator} has no valid proof that its host \
         holds the WireGuard key it names"
    )]
    BadProof {
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
    /// without host bits, a WireGuard key that is canonical and not of low
    /// order, and a validity window that is not empty.
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
        for endpoint in &self.endpoints {
            if let EndpointHost::Ip(ip) = endpoint.host {
                if let Some(reason) = crate::endpoint::unreachable_reason(ip) {
                    return Err(InvalidCard::EndpointAddress {
                        host: host(),
                        endpoint: endpoint.to_string(),
                        reason,
                    });
                }
            }
        }
        if let Some(endpoint) = self.endpoints.iter().find(|e| !e.is_valid()) {
            return Err(InvalidCard::Endpoint {
                host: host(),
                endpoint: endpoint.to_string(),
            });
        }
        if self.not_before >= self.not_after {
            return Err(InvalidCard::EmptyValidity {
                host: host(),
                not_before: self.not_before,
                not_after: self.not_after,
            });
        }
        match self.wg_public_key.defect() {
            None => {}
            Some(KeyDefect::Zero) => return Err(InvalidCard::ZeroKey { host: host() }),
            Some(KeyDefect::LowOrder) => return Err(InvalidCard::LowOrderKey { host: host() }),
            Some(KeyDefect::NonCanonical) => {
                return Err(InvalidCard::NonCanonicalKey { host: host() });
            }
        }
        if self.chain_p2p.as_ref().is_some_and(|p2p| !p2p.is_valid()) {
            return Err(InvalidCard::ChainP2p { host: host() });
        }
        Ok(())
    }

    /// Validates the card, proves with `host_key` (the host's WireGuard
    /// private key) that the host holds the key the card names, and signs
    /// the card and the proof with its operator's key, `operator`. The
    /// proof's nonce comes from `rng`.
    ///
    /// # Errors
    ///
    /// [`SignCardError::NotTheOperator`] when `operator` is not the key of
    /// `self.operator`; [`SignCardError::Invalid`] when the card is
    /// invalid; [`SignCardError::NotTheHostKey`] when `host_key` is not the
    /// private key of `self.wg_public_key`.
    pub fn issue(
        &self,
        operator: &OperatorSecret,
        host_key: &PrivateKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<SignedCard, SignCardError> {
        let signer = operator.operator_id();
        if signer != self.operator {
            return Err(SignCardError::NotTheOperator {
                host: self.name.clone(),
                card_operator: self.operator,
                signer,
            });
        }
        self.validate()?;
        if host_key.public_key() != self.wg_public_key {
            return Err(SignCardError::NotTheHostKey {
                host: self.name.clone(),
            });
        }
        Ok(self.issue_unchecked(operator, host_key, rng))
    }

    /// The card signed by `operator` with a proof made by `prover`, whether
    /// or not either is the card's: what a rival operator can make.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn forge(
        &self,
        operator: &OperatorSecret,
        prover: &PrivateKey,
        rng: &mut impl CryptoRngCore,
    ) -> SignedCard {
        self.issue_unchecked(operator, prover, rng)
    }

    /// Encodes, proves and signs; the caller checked the keys and the card.
    fn issue_unchecked(
        &self,
        operator: &OperatorSecret,
        host_key: &PrivateKey,
        rng: &mut impl CryptoRngCore,
    ) -> SignedCard {
        SignedCard::sign_proved(self.clone(), self.prove(host_key, rng), operator)
    }

    /// The body followed by the proof of possession `host_key` makes over
    /// it; the caller checked the key and the card.
    fn prove(&self, host_key: &PrivateKey, rng: &mut impl CryptoRngCore) -> Vec<u8> {
        let mut w = Writer::versioned();
        self.encode(&mut w);
        let proof = possession::prove(host_key, &self.operator, w.as_slice(), rng);
        w.array(&proof);
        w.into_bytes()
    }

    /// The card in `proved` (body and proof), checked: well-formed, valid,
    /// and proved by the holder of its key.
    fn decode_proved(proved: &[u8]) -> Result<Self, ParseCardError> {
        let body_len = proved
            .len()
            .checked_sub(PROOF_LEN)
            .ok_or(DecodeError::Truncated {
                field: "proof of possession",
            })?;
        let (body, proof) = proved.split_at(body_len);
        let mut r = Reader::new(body);
        r.version()?;
        let card = HostCard::decode(&mut r)?;
        r.finish()?;
        card.validate()?;
        let mut proof_bytes = [0u8; PROOF_LEN];
        proof_bytes.copy_from_slice(proof);
        if !possession::verify(&card.wg_public_key, &card.operator, body, &proof_bytes) {
            return Err(ParseCardError::BadProof {
                host: card.name,
                operator: card.operator,
            });
        }
        Ok(card)
    }

    /// Writes the fields; the caller has validated the card.
    fn encode(&self, w: &mut Writer) {
        w.array(self.operator.as_bytes());
        w.str(&self.name);
        w.u8(self.role.tag());
        w.array(self.wg_public_key.as_bytes());
        w.count(self.addresses.len());
        self.addresses.iter().for_each(|a| w.interface_address(a));
        w.count(self.endpoints.len());
        self.endpoints.iter().for_each(|e| e.encode(w));
        w.count(self.allowed_ips.len());
        self.allowed_ips.iter().for_each(|a| w.ip_net(a));
        w.time(self.not_before);
        w.time(self.not_after);
        w.u64(self.serial);
        ChainP2p::encode_optional(self.chain_p2p.as_ref(), w);
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
        let wg_public_key = PublicKey::from_bytes(r.array("WireGuard public key")?);
        let count = r.count("address list", MAX_ADDRESSES)?;
        let addresses = read_list(count, || r.interface_address("address"))?;
        let count = r.count("endpoint list", MAX_ENDPOINTS)?;
        let endpoints = read_list(count, || Endpoint::decode(r))?;
        let count = r.count("allowed IP list", MAX_ALLOWED_IPS)?;
        let allowed_ips = read_list(count, || r.ip_net("allowed IP"))?;
        let not_before = r.time("start of validity")?;
        let not_after = r.time("end of validity")?;
        let serial = r.u64("serial")?;
        let chain_p2p = ChainP2p::decode_optional(r)?;
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

/// `count` items read with `read`, in a vector with room for exactly
/// them: collecting into a `Result` starts with room for four, and a
/// card's lists live as long as the card (and a revoked one beyond it).
fn read_list<T>(
    count: usize,
    mut read: impl FnMut() -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut list = Vec::with_capacity(count);
    for _ in 0..count {
        list.push(read()?);
    }
    Ok(list)
}

/// The WireGuard key a card's encoding names, read without decoding or
/// verifying anything: the format version, operator id, name and role
/// before it are skipped, not checked. For refusing a card that would need
/// room its operator has no more of before paying for its proof and
/// signature; `None` when the bytes end first or the name is longer than
/// any card's.
pub(crate) fn claimed_key(encoded: &[u8]) -> Option<PublicKey> {
    let mut r = Reader::new(encoded);
    r.u8("format version").ok()?;
    r.array::<32>("operator id").ok()?;
    r.bytes("host name", MAX_NAME_LEN).ok()?;
    r.u8("role").ok()?;
    r.array("WireGuard public key")
        .ok()
        .map(PublicKey::from_bytes)
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
    /// The canonical encoding: body, the 64-byte proof of possession, then
    /// the 64-byte signature.
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

    /// The binary encoding, proof and signature included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// The card in its binary encoding, checked: well-formed, valid, signed
    /// by the operator it names, and with a proof that its issuer holds the
    /// WireGuard key it names.
    ///
    /// # Errors
    ///
    /// [`ParseCardError`] saying what is malformed or invalid, that the
    /// signature is missing or does not verify, or that the proof does not.
    pub fn decode(bytes: &[u8]) -> Result<Self, ParseCardError> {
        if bytes.len() > MAX_CARD_LEN {
            return Err(DecodeError::TooLong {
                field: "card",
                len: bytes.len(),
                max: MAX_CARD_LEN,
            }
            .into());
        }
        let (proved, signature) = codec::split_signature(bytes)?;
        let card = HostCard::decode_proved(proved)?;
        if is_blank_signature(&signature) {
            return Err(ParseCardError::Unsigned { host: card.name });
        }
        if card
            .operator
            .verify(Domain::Card, proved, &signature)
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

    /// `card` with its body and proof `proved`, signed by `operator`; the
    /// caller checked the card, the proof and the operator.
    fn sign_proved(card: HostCard, mut proved: Vec<u8>, operator: &OperatorSecret) -> Self {
        let signature = operator.sign(Domain::Card, &proved);
        proved.extend_from_slice(&signature);
        Self {
            card,
            encoded: proved,
        }
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
    pub fn check_valid_at(&self, now: UnixTime) -> Result<(), CardTimeError> {
        if now.saturating_add(CLOCK_SKEW) < self.card.not_before {
            return Err(CardTimeError::NotYetValid {
                host: self.card.name.clone(),
                not_before: self.card.not_before,
            });
        }
        if now >= self.card.not_after {
            return Err(CardTimeError::Expired {
                host: self.card.name.clone(),
                expired_at: self.card.not_after,
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
mod tests;
