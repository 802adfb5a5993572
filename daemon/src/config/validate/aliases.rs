//! Checks `[operators]`: a local name for each operator a mesh member
//! knows, `OPERATOR_ID = "alias"`, which `sentrymesh status` shows beside
//! the id. An alias is a label for people, nothing more: trust is given
//! by ids alone.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use sentrymesh_mesh::OperatorId;
use toml::Spanned;

use super::Checker;

/// The longest alias.
const MAX_ALIAS_LEN: usize = 32;
/// The most aliases.
const MAX_ALIASES: usize = 1024;

impl Checker<'_> {
    /// The aliases of `[operators]`, if any; `None` when a problem was
    /// reported.
    pub(super) fn operator_aliases(
        &mut self,
        operators: Option<&Spanned<BTreeMap<String, Spanned<String>>>>,
    ) -> Option<BTreeMap<OperatorId, String>> {
        let Some(operators) = operators else {
            return Some(BTreeMap::new());
        };
        if operators.get_ref().len() > MAX_ALIASES {
            let message = format!("names more than {MAX_ALIASES} operators");
            self.report(operators.span(), "operators", message);
            return None;
        }
        let mut aliases = BTreeMap::new();
        let mut used: BTreeMap<&str, &str> = BTreeMap::new();
        let mut valid = true;
        for (id, alias) in operators.get_ref() {
            let key = format!("operators.{id}");
            let Ok(operator) = id.parse::<OperatorId>() else {
                let message =
                    format!("{id:?} is not an operator id (`sentrymesh operator show` prints one)");
                self.report(alias.span(), &key, message);
                valid = false;
                continue;
            };
            let text = alias.get_ref();
            if let Err(problem) = check_alias(text) {
                self.report(alias.span(), &key, format!("{text:?} {problem}"));
                valid = false;
                continue;
            }
            match used.entry(text) {
                Entry::Occupied(other) => {
                    let message = format!("{text:?} is already the alias of {}", other.get());
                    self.report(alias.span(), &key, message);
                    valid = false;
                }
                Entry::Vacant(entry) => {
                    entry.insert(id);
                    aliases.insert(operator, text.clone());
                }
            }
        }
        valid.then_some(aliases)
    }
}

/// An alias is 1 to 32 letters, digits, `-`, `_` or `.`: it goes into a
/// table column and a log line as it is.
fn check_alias(alias: &str) -> Result<(), String> {
    if alias.is_empty() || alias.len() > MAX_ALIAS_LEN {
        return Err(format!("is not 1 to {MAX_ALIAS_LEN} characters long"));
    }
    if let Some(c) = alias
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "has {c:?}: an alias is letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}
