//! How the operator commands show cards and bundles to a person: one field
//! a line, labels aligned, lists one entry a line, times as UTC dates.
//!
//! ```text
//! host          sentry-1
//! role          sentry
//! operator      11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
//! wireguard key HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=
//! addresses     198.19.1.2/32
//! endpoints     198.18.1.2:51820
//!               sentry-1.example.net:51820
//! allowed ips   none
//! valid from    2026-05-01 00:00:00 UTC
//! valid until   2027-05-01 00:00:00 UTC
//! serial        1777593600
//! chain p2p     none
//! ```

use std::fmt::{self, Display};

use sentrymesh_mesh::{HostCard, OpenedBundle};

/// Width of the label column: the longest label and a space.
pub(crate) const LABEL_WIDTH: usize = 14;

/// A host card as text for a person, each line starting with `indent`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CardView<'a> {
    card: &'a HostCard,
    indent: &'a str,
}

impl<'a> CardView<'a> {
    /// Shows `card` without indentation.
    pub(crate) fn new(card: &'a HostCard) -> Self {
        Self { card, indent: "" }
    }

    /// Shows `card` with every line indented by `indent`.
    pub(crate) fn indented(card: &'a HostCard, indent: &'a str) -> Self {
        Self { card, indent }
    }

    fn line(&self, f: &mut fmt::Formatter<'_>, label: &str, value: impl Display) -> fmt::Result {
        writeln!(f, "{}{label:<LABEL_WIDTH$}{value}", self.indent)
    }

    /// The label and the first item, then the other items under it.
    fn list<T: Display>(
        &self,
        f: &mut fmt::Formatter<'_>,
        label: &str,
        items: &[T],
        if_empty: &str,
    ) -> fmt::Result {
        let Some((first, rest)) = items.split_first() else {
            return self.line(f, label, if_empty);
        };
        self.line(f, label, first)?;
        rest.iter().try_for_each(|item| self.line(f, "", item))
    }
}

impl Display for CardView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let card = self.card;
        let hidden = card.role.is_hidden();
        self.line(f, "host", &card.name)?;
        if hidden {
            self.line(f, "role", format_args!("{} (hidden)", card.role))?;
        } else {
            self.line(f, "role", card.role)?;
        }
        self.line(f, "operator", card.operator)?;
        self.line(f, "wireguard key", card.wg_public_key)?;
        self.list(f, "addresses", &card.addresses, "none")?;
        let no_endpoint = if hidden { "none (hidden role)" } else { "none" };
        self.list(f, "endpoints", &card.endpoints, no_endpoint)?;
        self.list(f, "allowed ips", &card.allowed_ips, "none")?;
        self.line(f, "valid from", card.not_before)?;
        self.line(f, "valid until", card.not_after)?;
        self.line(f, "serial", card.serial)?;
        match &card.chain_p2p {
            Some(p2p) => {
                self.line(f, "chain p2p", p2p)?;
                match &p2p.nodeos_peer_key {
                    Some(key) => self.line(f, "nodeos key", key),
                    None => Ok(()),
                }
            }
            None => self.line(f, "chain p2p", "none"),
        }
    }
}

/// An opened bundle as text for a person: who sealed it, when, for whom,
/// then each card.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BundleView<'a>(pub &'a OpenedBundle);

impl Display for BundleView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bundle = self.0;
        writeln!(f, "{:<LABEL_WIDTH$}{}", "sender", bundle.sender)?;
        writeln!(f, "{:<LABEL_WIDTH$}{}", "sealed at", bundle.created_at)?;
        for (i, recipient) in bundle.recipients.iter().enumerate() {
            let label = if i == 0 { "recipients" } else { "" };
            writeln!(f, "{label:<LABEL_WIDTH$}{recipient}")?;
        }
        writeln!(f, "{:<LABEL_WIDTH$}{}", "cards", bundle.cards.len())?;
        let count = bundle.cards.len();
        for (i, card) in bundle.cards.iter().enumerate() {
            writeln!(f)?;
            writeln!(f, "card {} of {count}", i + 1)?;
            write!(f, "{}", CardView::indented(card.card(), "  "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use sentrymesh_mesh::{ChainP2p, OperatorSecret, Role, bundle};
    use sentrymesh_types::{PrivateKey, UnixTime};

    use super::*;

    const NOW: UnixTime = UnixTime(1_777_593_600);

    fn card(operator: &OperatorSecret, role: Role) -> HostCard {
        HostCard {
            operator: operator.operator_id(),
            name: "sentry-1".into(),
            role,
            wg_public_key: "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
                .parse()
                .unwrap(),
            addresses: vec!["198.18.1.1/24".parse().unwrap()],
            endpoints: vec![
                "198.18.0.1:51820".parse().unwrap(),
                "sentry-1.example.net:51820".parse().unwrap(),
            ],
            allowed_ips: vec![],
            not_before: NOW,
            not_after: NOW + 365 * 86_400,
            serial: NOW.0,
            chain_p2p: None,
        }
    }

    #[test]
    fn a_card_one_field_a_line() {
        let operator = OperatorSecret::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let id = operator.operator_id();
        let card = card(&operator, Role::Sentry);
        assert_eq!(
            CardView::new(&card).to_string(),
            format!(
                "host          sentry-1\n\
                 role          sentry\n\
                 operator      {id}\n\
                 wireguard key HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\n\
                 addresses     198.18.1.1/24\n\
                 endpoints     198.18.0.1:51820\n\
                 \x20             sentry-1.example.net:51820\n\
                 allowed ips   none\n\
                 valid from    2026-05-01 00:00:00 UTC\n\
                 valid until   2027-05-01 00:00:00 UTC\n\
                 serial        1777593600\n\
                 chain p2p     none\n"
            )
        );
    }

    #[test]
    fn a_hidden_card_says_so() {
        let operator = OperatorSecret::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let mut card = card(&operator, Role::Producer);
        card.endpoints.clear();
        card.allowed_ips = vec!["198.18.64.0/24".parse().unwrap()];
        let mut p2p: ChainP2p = "f3a1c0de@26656".parse().unwrap();
        p2p.nodeos_peer_key = Some(
            "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"
                .parse()
                .unwrap(),
        );
        card.chain_p2p = Some(p2p);
        let shown = CardView::indented(&card, "  ").to_string();
        assert!(
            shown.contains("  role          producer (hidden)\n"),
            "{shown}"
        );
        assert!(
            shown.contains("  endpoints     none (hidden role)\n"),
            "{shown}"
        );
        assert!(
            shown.contains("  allowed ips   198.18.64.0/24\n"),
            "{shown}"
        );
        assert!(
            shown.contains("  chain p2p     f3a1c0de@26656\n"),
            "{shown}"
        );
        assert!(
            shown.contains(
                "  nodeos key    EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV\n"
            ),
            "{shown}"
        );
        assert!(shown.lines().all(|line| line.starts_with("  ")), "{shown}");
    }

    #[test]
    fn a_bundle_with_its_sender_time_recipients_and_cards() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let alice = OperatorSecret::generate(&mut rng);
        let bob = OperatorSecret::generate(&mut rng);
        // The private key of the card's public key, as `wg genkey` wrote it.
        let host_key: PrivateKey = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
            .parse()
            .unwrap();
        let signed = card(&alice, Role::Sentry)
            .issue(&alice, &host_key, &mut rng)
            .unwrap();
        let recipients = [alice.operator_id(), bob.operator_id()];
        let sealed = bundle::seal(&alice, &recipients, &[signed], NOW, &mut rng).unwrap();
        let opened = sealed.open(&bob, NOW).unwrap();
        let shown = BundleView(&opened).to_string();
        let mut sorted = recipients;
        sorted.sort();
        let head = format!(
            "sender        {}\n\
             sealed at     2026-05-01 00:00:00 UTC\n\
             recipients    {}\n\
             \x20             {}\n\
             cards         1\n\
             \n\
             card 1 of 1\n\
             \x20 host          sentry-1\n",
            alice.operator_id(),
            sorted[0],
            sorted[1]
        );
        assert!(shown.starts_with(&head), "{shown}");
    }
}
