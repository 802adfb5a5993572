//! Host roles: what a host does, and so whom it may peer with (the rules
//! themselves are in [`crate::peering`]).

use std::fmt;
use std::str::FromStr;

/// What a host does, which decides whom it may peer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A block producer or validator: hidden.
    Producer,
    /// A BIOS or genesis node that boots a chain: hidden.
    Bios,
    /// A sentry shielding its operator's producers: public.
    Sentry,
    /// A full node: public.
    Full,
}

impl Role {
    /// Every role, in order.
    pub const ALL: [Self; 4] = [Self::Producer, Self::Bios, Self::Sentry, Self::Full];

    /// Whether the role is hidden: no endpoint, peers only with its own
    /// operator's sentries and full nodes, never shown to other operators.
    pub const fn is_hidden(self) -> bool {
        matches!(self, Self::Producer | Self::Bios)
    }

    /// The role's name: `producer`, `bios`, `sentry` or `full`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Producer => "producer",
            Self::Bios => "bios",
            Self::Sentry => "sentry",
            Self::Full => "full",
        }
    }

    pub(crate) const fn tag(self) -> u8 {
        match self {
            Self::Producer => 1,
            Self::Bios => 2,
            Self::Sentry => 3,
            Self::Full => 4,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.tag() == tag)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Text that is not a role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a role: use producer, bios, sentry or full")]
pub struct RoleError(pub String);

impl FromStr for Role {
    type Err = RoleError;

    fn from_str(text: &str) -> Result<Self, RoleError> {
        Self::ALL
            .into_iter()
            .find(|role| role.name() == text.trim())
            .ok_or_else(|| RoleError(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>().unwrap(), role);
            assert_eq!(Role::from_tag(role.tag()), Some(role));
        }
        assert!(Role::Producer.is_hidden() && Role::Bios.is_hidden());
        assert!(!Role::Sentry.is_hidden() && !Role::Full.is_hidden());
        assert_eq!(
            "validator".parse::<Role>().unwrap_err().to_string(),
            "`validator` is not a role: use producer, bios, sentry or full"
        );
        assert_eq!(Role::from_tag(0), None);
    }
}
