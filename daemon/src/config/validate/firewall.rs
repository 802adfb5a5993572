//! Checks `[firewall]`: each rule's operator, roles, protocol and ports,
//! refusing a rule that no packet could match (see [`RuleError`]).

use std::collections::BTreeSet;

use sentrymesh_mesh::{OperatorId, Role};
use toml::Spanned;

use super::Checker;
use crate::config::raw::{RawFirewall, RawRule};
use crate::dataplane::firewall::{
    DEFAULT_CONNTRACK_MAX, From, MAX_CONNTRACK, MIN_CONNTRACK, PortRange, Proto, Rule, RuleError,
    Rules,
};

/// The most rules of one direction.
const MAX_RULES: usize = 256;

impl Checker<'_> {
    /// The rules of `[firewall]` (the defaults without it); `None` when a
    /// problem was reported.
    pub(super) fn firewall(&mut self, raw: Option<&Spanned<RawFirewall>>) -> Option<Rules> {
        let Some(raw) = raw else {
            return Some(Rules::default());
        };
        let raw = raw.get_ref();
        let open_to_own = raw.open_to_own.as_ref().is_none_or(|open| *open.get_ref());
        let conntrack_max = match &raw.conntrack_max {
            None => Some(DEFAULT_CONNTRACK_MAX),
            Some(value) => self
                .integer(
                    value,
                    "firewall.conntrack_max",
                    i64::try_from(MIN_CONNTRACK).unwrap_or(i64::MAX)
                        ..=i64::try_from(MAX_CONNTRACK).unwrap_or(i64::MAX),
                    "a number of flows",
                )
                .and_then(|value| usize::try_from(value).ok()),
        };
        let inbound = self.rules(&raw.inbound, "firewall.inbound", open_to_own);
        let outbound = match &raw.outbound {
            None => Some(None),
            Some(rules) => self
                .rules(rules, "firewall.outbound", open_to_own)
                .map(Some),
        };
        Some(Rules {
            open_to_own,
            inbound: inbound?,
            outbound: outbound?,
            conntrack_max: conntrack_max?,
        })
    }

    /// The rules of one direction, `key` naming it.
    fn rules(
        &mut self,
        raw: &[Spanned<RawRule>],
        key: &str,
        open_to_own: bool,
    ) -> Option<Vec<Rule>> {
        if raw.len() > MAX_RULES {
            let message = format!("more than {MAX_RULES} rules");
            self.report(raw[MAX_RULES].span(), key, message);
            return None;
        }
        let rules: Vec<Option<Rule>> = raw
            .iter()
            .enumerate()
            .map(|(i, rule)| self.rule(rule, &format!("{key}[{i}]"), open_to_own))
            .collect();
        rules.into_iter().collect()
    }

    /// One rule.
    fn rule(&mut self, raw: &Spanned<RawRule>, key: &str, open_to_own: bool) -> Option<Rule> {
        let rule = raw.get_ref();
        let from = match rule.from.get_ref().as_str() {
            "operators" => Some(From::Operators),
            "own" if open_to_own => {
                self.report(
                    rule.from.span(),
                    &format!("{key}.from"),
                    RuleError::OwnIsOpen.to_string(),
                );
                None
            }
            "own" => Some(From::Own),
            id => match id.parse::<OperatorId>() {
                Ok(id) => Some(From::Operator(id)),
                Err(_) => {
                    let message = format!(
                        "{id:?} is not \"operators\", \"own\" or an operator id \
                         (`sentrymesh operator show` prints one)"
                    );
                    self.report(rule.from.span(), &format!("{key}.from"), message);
                    None
                }
            },
        };
        let roles = match &rule.roles {
            None => Some(None),
            Some(roles) => self.roles(roles, &format!("{key}.roles")).map(Some),
        };
        let proto = match rule.proto.as_ref() {
            None => Some(Proto::Any),
            Some(proto) => match proto.get_ref().as_str() {
                "any" => Some(Proto::Any),
                "tcp" => Some(Proto::Tcp),
                "udp" => Some(Proto::Udp),
                "icmp" => Some(Proto::Icmp),
                other => {
                    let message = format!("{other:?} is not \"tcp\", \"udp\", \"icmp\" or \"any\"");
                    self.report(proto.span(), &format!("{key}.proto"), message);
                    None
                }
            },
        };
        let ports = match &rule.ports {
            None => Some(None),
            Some(ports) => {
                let parsed = match ports.get_ref() {
                    toml::Value::String(text) => text.parse::<PortRange>(),
                    toml::Value::Integer(port) => u16::try_from(*port)
                        .map_err(|_| RuleError::NotPorts(port.to_string()))
                        .and_then(PortRange::single),
                    other => Err(RuleError::NotPorts(other.to_string())),
                };
                parsed
                    .map_err(|error| {
                        self.report(ports.span(), &format!("{key}.ports"), error.to_string());
                    })
                    .ok()
                    .map(Some)
            }
        };
        match Rule::new(from?, roles?, proto?, ports?) {
            Ok(rule) => Some(rule),
            Err(error) => {
                self.report(raw.span(), key, error.to_string());
                None
            }
        }
    }

    /// A rule's roles.
    fn roles(&mut self, raw: &Spanned<Vec<Spanned<String>>>, key: &str) -> Option<BTreeSet<Role>> {
        let mut roles = BTreeSet::new();
        let mut valid = true;
        for (i, role) in raw.get_ref().iter().enumerate() {
            match Role::ALL
                .iter()
                .find(|known| known.name() == role.get_ref())
            {
                Some(&known) => {
                    roles.insert(known);
                }
                None => {
                    let message = format!(
                        "{:?} is not a role: producer, bios, sentry or full",
                        role.get_ref()
                    );
                    self.report(role.span(), &format!("{key}[{i}]"), message);
                    valid = false;
                }
            }
        }
        valid.then_some(roles)
    }
}
