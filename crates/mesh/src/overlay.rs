//! Overlay ranges: what each operator's cards may route.
//!
//! A card's addresses and allowed IPs become WireGuard allowed IPs and
//! kernel routes on every host that peers with it. Left unchecked, one
//! admitted operator could claim `0.0.0.0/1`, another operator's endpoint,
//! or a slice of another operator's subnet, and pull that traffic into its
//! tunnel. So the receiving host decides what each operator may claim:
//!
//! * the mesh's overlay range (`[trust] overlay`, e.g. `198.19.0.0/16`),
//!   outside which nothing is ever routed into the interface;
//! * inside it, one range per operator, pairwise disjoint: from the local
//!   configuration for the host's own operator and each directly trusted
//!   operator ([`Overlay`]), and from the vouches for an operator admitted
//!   by vouches ([`crate::TrustPolicy`]);
//! * a card is a peer only when every address (as a host) and every allowed
//!   IP lies inside its operator's range, and no endpoint lies inside the
//!   mesh overlay ([`check_card`]). Since ranges never overlap, a card
//!   inside its own range claims nothing of another operator's.
//!
//! A card that fails is refused whole rather than trimmed: a card that asks
//! for more than its operator was given is a mistake or an attack, and
//! peering with part of it would hide either.

use std::collections::BTreeMap;
use std::net::IpAddr;

use sentrymesh_types::IpNet;

use crate::card::HostCard;
use crate::endpoint::EndpointHost;
use crate::identity::OperatorId;

/// Why an overlay configuration is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OverlayError {
    /// An operator's range outside the mesh overlay.
    #[error("operator {operator}'s overlay range {range} is not inside the mesh overlay {overlay}")]
    OutsideOverlay {
        /// The operator.
        operator: OperatorId,
        /// Its range.
        range: IpNet,
        /// The mesh overlay.
        overlay: IpNet,
    },
    /// Two operators' ranges share addresses.
    #[error(
        "the overlay ranges of operators {first} ({first_range}) and {second} ({second_range}) overlap"
    )]
    Overlap {
        /// One operator.
        first: OperatorId,
        /// Its range.
        first_range: IpNet,
        /// The other.
        second: OperatorId,
        /// Its range.
        second_range: IpNet,
    },
}

/// The mesh overlay and the ranges the local configuration gives operators:
/// each a network inside the overlay, no two overlapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    overlay: IpNet,
    ranges: BTreeMap<OperatorId, IpNet>,
}

impl Overlay {
    /// The mesh overlay `overlay` with a range per operator.
    ///
    /// # Errors
    ///
    /// [`OverlayError::OutsideOverlay`] for a range not inside the overlay; [`OverlayError::Overlap`] for two ranges that share an
    /// address. An operator named twice keeps the last range given.
    pub fn new(
        overlay: IpNet,
        ranges: impl IntoIterator<Item = (OperatorId, IpNet)>,
    ) -> Result<Self, OverlayError> {
        let ranges: BTreeMap<OperatorId, IpNet> = ranges.into_iter().collect();
        for (&operator, &range) in &ranges {
            if !overlay.contains_net(&range) {
                return Err(OverlayError::OutsideOverlay {
                    operator,
                    range,
                    overlay,
                });
            }
        }
        for (i, (&first, &first_range)) in ranges.iter().enumerate() {
            if let Some((&second, &second_range)) = ranges
                .iter()
                .skip(i + 1)
                .find(|(_, range)| range.overlaps(&first_range))
            {
                return Err(OverlayError::Overlap {
                    first,
                    first_range,
                    second,
                    second_range,
                });
            }
        }
        Ok(Self { overlay, ranges })
    }

    /// The mesh overlay: nothing outside it is routed into the interface.
    pub fn overlay(&self) -> IpNet {
        self.overlay
    }

    /// The ranges the configuration gives, by operator.
    pub fn ranges(&self) -> &BTreeMap<OperatorId, IpNet> {
        &self.ranges
    }

    /// The range the configuration gives `operator`.
    pub fn range(&self, operator: &OperatorId) -> Option<IpNet> {
        self.ranges.get(operator).copied()
    }

    /// Whether `range` overlaps a range the configuration gives any
    /// operator.
    pub fn overlaps_configured(&self, range: &IpNet) -> bool {
        self.ranges.values().any(|own| own.overlaps(range))
    }
}

/// Why a card is refused: it claims what its operator was not given. The
/// offending prefix is not carried, so the reason can be logged at any
/// level without a hidden host's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutOfRange {
    /// An address outside the operator's range.
    #[error("an address outside its operator's overlay range {range}")]
    Address {
        /// The operator's range.
        range: IpNet,
    },
    /// An allowed IP outside the operator's range.
    #[error("an allowed IP outside its operator's overlay range {range}")]
    AllowedIp {
        /// The operator's range.
        range: IpNet,
    },
    /// An endpoint inside the mesh overlay: handshakes to it would be routed
    /// into the tunnel, to whichever host holds that overlay address.
    #[error("an endpoint inside the mesh overlay {overlay}")]
    EndpointInOverlay {
        /// The mesh overlay.
        overlay: IpNet,
    },
}

/// Whether `card` keeps inside `range`, its operator's: each address (as a
/// single host) and each allowed IP inside the range, and no endpoint
/// address inside the mesh `overlay`.
///
/// # Errors
///
/// The first [`OutOfRange`] found.
pub fn check_card(card: &HostCard, range: IpNet, overlay: IpNet) -> Result<(), OutOfRange> {
    if card
        .addresses
        .iter()
        .any(|address| !range.contains(address.addr()))
    {
        return Err(OutOfRange::Address { range });
    }
    if card.allowed_ips.iter().any(|net| !range.contains_net(net)) {
        return Err(OutOfRange::AllowedIp { range });
    }
    // In canonical form: `::ffff:a.b.c.d` is sent to as `a.b.c.d`.
    let in_overlay = |ip: &IpAddr| overlay.contains(ip.to_canonical());
    if card.endpoints.iter().any(|endpoint| match &endpoint.host {
        EndpointHost::Ip(ip) => in_overlay(ip),
        EndpointHost::Name(_) => false,
    }) {
        return Err(OutOfRange::EndpointInOverlay { overlay });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::Role;
    use crate::testing::{card, operator};

    fn cidr(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_must_be_disjoint_networks_inside_the_overlay() {
        let (a, b) = (operator(1).operator_id(), operator(2).operator_id());
        let overlay = cidr("198.19.0.0/16");
        let good = Overlay::new(
            overlay,
            [(a, cidr("198.19.1.0/24")), (b, cidr("198.19.2.0/24"))],
        )
        .unwrap();
        assert_eq!(good.range(&a), Some(cidr("198.19.1.0/24")));
        assert_eq!(good.overlay(), overlay);
        assert!(good.overlaps_configured(&cidr("198.19.2.128/25")));
        assert!(good.overlaps_configured(&cidr("198.19.0.0/16")));
        assert!(!good.overlaps_configured(&cidr("198.19.3.0/24")));
        assert!(matches!(
            Overlay::new(overlay, [(a, cidr("198.18.1.0/24"))]),
            Err(OverlayError::OutsideOverlay { .. })
        ));
        assert!(matches!(
            Overlay::new(
                overlay,
                [(a, cidr("198.19.1.0/24")), (b, cidr("198.19.1.64/26"))]
            ),
            Err(OverlayError::Overlap { .. })
        ));
    }

    #[test]
    fn a_card_keeps_inside_its_range() {
        let (range, overlay) = (cidr("198.19.1.0/24"), cidr("198.19.0.0/16"));
        let op = operator(1);
        let mut sentry = card(&op, "sentry", Role::Sentry);
        sentry.addresses = vec!["198.19.1.1/16".parse().unwrap()];
        sentry.allowed_ips = vec![cidr("198.19.1.128/25")];
        assert_eq!(check_card(&sentry, range, overlay), Ok(()));

        for claim in [
            "0.0.0.0/1",
            "128.0.0.0/1",
            "::/1",
            "198.19.2.0/24",
            "198.19.0.0/16",
        ] {
            let mut greedy = sentry.clone();
            greedy.allowed_ips.push(cidr(claim));
            assert_eq!(
                check_card(&greedy, range, overlay),
                Err(OutOfRange::AllowedIp { range }),
                "{claim}"
            );
        }
        let mut elsewhere = sentry.clone();
        elsewhere.addresses.push("198.19.2.1/24".parse().unwrap());
        assert_eq!(
            check_card(&elsewhere, range, overlay),
            Err(OutOfRange::Address { range })
        );
        // An IPv4-mapped endpoint is checked as the IPv4 address it is
        // sent to (and `HostCard::validate` refuses it anyway).
        for endpoint in ["198.19.2.1:51820", "[::ffff:198.19.2.1]:51820"] {
            let mut looping = sentry.clone();
            looping.endpoints = vec![endpoint.parse().unwrap()];
            assert_eq!(
                check_card(&looping, range, overlay),
                Err(OutOfRange::EndpointInOverlay { overlay }),
                "{endpoint}"
            );
        }
        // The reason names the range, never the claim.
        let text = OutOfRange::AllowedIp { range }.to_string();
        assert!(!text.contains("0.0.0.0"), "{text}");
    }
}
