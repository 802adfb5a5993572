//! The value type of the config that the rest of the daemon also uses: a
//! TUN device name. (An interface address is `sentrymesh_types::InterfaceAddress`.)

use std::fmt;
use std::str::FromStr;

/// The longest device name Linux accepts (`IFNAMSIZ` less the NUL).
pub const MAX_INTERFACE_NAME_LEN: usize = 15;

/// A network device name: 1 to 15 bytes of `[A-Za-z0-9_.-]`, neither `.`
/// nor `..` (which would name directories under `/sys/class/net`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceName(String);

/// Text that is not a usable device name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceNameError {
    /// The name is empty.
    #[error("an interface name cannot be empty")]
    Empty,
    /// The name is longer than [`MAX_INTERFACE_NAME_LEN`] bytes.
    #[error("an interface name has at most {MAX_INTERFACE_NAME_LEN} bytes, not {0}")]
    TooLong(usize),
    /// The name has a character outside `[A-Za-z0-9_.-]`.
    #[error("an interface name has only letters, digits, '_', '.' and '-', not {0:?}")]
    Character(char),
    /// The name is `.` or `..`.
    #[error("an interface name cannot be \".\" or \"..\"")]
    Dots,
}

impl InterfaceName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for InterfaceName {
    type Err = InterfaceNameError;

    fn from_str(text: &str) -> Result<Self, InterfaceNameError> {
        if text.is_empty() {
            return Err(InterfaceNameError::Empty);
        }
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(InterfaceNameError::Character(c));
        }
        if text.len() > MAX_INTERFACE_NAME_LEN {
            return Err(InterfaceNameError::TooLong(text.len()));
        }
        if text == "." || text == ".." {
            return Err(InterfaceNameError::Dots);
        }
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_linux_rules() {
        for name in ["sm0", "a", "wg-mainnet_1.2", "123456789012345"] {
            assert_eq!(name.parse::<InterfaceName>().unwrap().as_str(), name);
        }
        for (name, error) in [
            ("", InterfaceNameError::Empty),
            ("1234567890123456", InterfaceNameError::TooLong(16)),
            ("sm/0", InterfaceNameError::Character('/')),
            ("sm:0", InterfaceNameError::Character(':')),
            ("smé", InterfaceNameError::Character('é')),
            (".", InterfaceNameError::Dots),
            ("..", InterfaceNameError::Dots),
        ] {
            assert_eq!(name.parse::<InterfaceName>(), Err(error), "{name:?}");
        }
    }
}
