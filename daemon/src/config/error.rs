//! Config errors, each located by file, line, column and key, and the
//! translation of the toml crate's byte spans into those.

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config file '{}': {source}", .path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file is not a valid config: a syntax error, a missing, unknown
    /// or repeated key, a bad value, a conflict between peers or a key file
    /// that cannot be used. Holds at least one problem, in file order; the
    /// message shows one a line.
    #[error("{}", DisplayLines(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    /// The located problems (none when the file could not be read).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Self::Read { .. } => &[],
            Self::Invalid(diagnostics) => diagnostics,
        }
    }
}

/// One problem in a config file, shown as `FILE:LINE:COLUMN: KEY: MESSAGE`,
/// e.g. `sm0.toml:12:16: peer[1].allowed_ips[0]: "198.18.0.300/32" is not
/// an IP network`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct Diagnostic {
    /// Where the problem lies.
    pub location: Location,
    /// What is wrong; never the content of a key file.
    pub message: String,
}

/// A place in a config file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// The config file's path, as given.
    pub file: PathBuf,
    /// The line, from 1.
    pub line: usize,
    /// The column in characters, from 1.
    pub column: usize,
    /// The key at fault as a path from the top of the file, e.g.
    /// `interface.mtu` or `peer[1].allowed_ips[0]` (indices count from 0, in
    /// file order); empty for a syntax error outside any key.
    pub key: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        Ok(())
    }
}

/// Writes one diagnostic a line.
struct DisplayLines<'a>(&'a [Diagnostic]);

impl fmt::Display for DisplayLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

/// The text of a config file and its name, to turn spans into locations.
#[derive(Debug, Clone, Copy)]
pub(super) struct Source<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
}

impl Source<'_> {
    /// The location of the byte `offset` (clamped to the text), under `key`.
    pub(super) fn locate(&self, offset: usize, key: impl Into<String>) -> Location {
        let offset = offset.min(self.text.len());
        let before = &self.text.as_bytes()[..offset];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + self
            .text
            .get(line_start..offset)
            .map_or(offset - line_start, |s| s.chars().count());
        Location {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.into(),
        }
    }

    /// The line of the byte `offset`.
    pub(super) fn line(&self, offset: usize) -> usize {
        self.locate(offset, String::new()).line
    }

    /// A diagnostic for the toml crate's error: a syntax error, or a
    /// missing, unknown or mistyped key found while deserializing.
    pub(super) fn toml_error(&self, error: &toml::de::Error) -> Diagnostic {
        let span = error.span().unwrap_or(0..0);
        let mut key = key_at(self.text, &span, is_duplicate(error));
        let raw = error.message().trim();
        let message = if let Some(field) = quoted_after(raw, "missing field ") {
            push_key(&mut key, field);
            "required, but missing".to_owned()
        } else if let Some(rest) = raw.strip_prefix("unknown field ") {
            let hint = if key.ends_with("private_key") || key.ends_with("preshared_key") {
                "; keys are never written into the config: put the key in a file \
                 only its owner can read and name it with `private_key_file` or \
                 `preshared_key_file`"
            } else {
                ""
            };
            let expected = rest.split_once(", ").map_or("", |(_, expected)| expected);
            format!("unknown key; {expected}{hint}")
        } else {
            // Serde's words for TOML's types.
            raw.replace('\n', "; ")
                .replace(" as i128", "")
                .replace("expected i64", "expected an integer")
                .replace("type: map", "type: table")
                .replace("type: sequence", "type: array")
        };
        Diagnostic {
            location: self.locate(span.start, key),
            message,
        }
    }
}

/// The text between the first pair of backquotes after `prefix`.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split_once('`').map(|(quoted, _)| quoted)
}

/// Appends `name` to the key path `key`, quoting it unless it is a bare key.
pub(super) fn push_key(key: &mut String, name: &str) {
    if !key.is_empty() {
        key.push('.');
    }
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.push_str(name);
    } else {
        key.push_str(&format!("{name:?}"));
    }
}

/// Whether the toml crate refused a key or table given twice.
fn is_duplicate(error: &toml::de::Error) -> bool {
    error.message().starts_with("duplicate key")
}

/// The path of the key that `span`, from an error, points at; empty when
/// none is found.
///
/// The toml crate's errors carry a span but not (publicly) the key, so the
/// document is parsed again into spanned tables, as far as it parses, and
/// searched. For an error found while deserializing, the whole document
/// parses and the key is the innermost key or value whose span holds the
/// error's. For a syntax error it is the last key before the error on the
/// same line (`mtu = = 1400`), or for a `duplicate` key the last earlier
/// key of the same name, the one it repeats.
fn key_at(text: &str, span: &Range<usize>, duplicate: bool) -> String {
    if span.is_empty() && span.start == 0 {
        return String::new(); // The whole document, e.g. a missing table.
    }
    let (root, errors) = DeTable::parse_recoverable(text);
    let mut entries = Vec::new();
    visit_table(root.get_ref(), "", &mut entries);

    let best = if errors.is_empty() {
        let holds = |entry: &&Entry| entry.span.start <= span.start && span.end <= entry.span.end;
        // The shortest wins; of equals, the last visited: the deepest.
        entries
            .iter()
            .rev()
            .filter(holds)
            .min_by_key(|entry| entry.span.len())
    } else {
        let line_start = text
            .get(..span.start)
            .and_then(|before| before.rfind('\n'))
            .map_or(0, |i| i + 1);
        let name = text.get(span.clone());
        entries
            .iter()
            .filter(|entry| entry.is_key && entry.span.start <= span.start)
            .filter(|entry| {
                entry.span.start >= line_start
                    || (duplicate && text.get(entry.span.clone()) == name)
            })
            .max_by_key(|entry| entry.span.start)
    };
    best.map(|entry| entry.path.clone()).unwrap_or_default()
}

/// A key or a value of the document, with its span and path.
struct Entry {
    span: Range<usize>,
    path: String,
    is_key: bool,
}

fn visit_table(table: &DeTable<'_>, prefix: &str, entries: &mut Vec<Entry>) {
    for (key, value) in table.iter() {
        let mut path = prefix.to_owned();
        push_key(&mut path, key.get_ref());
        entries.push(Entry {
            span: key.span(),
            path: path.clone(),
            is_key: true,
        });
        visit_value(value, path, entries);
    }
}

/// Visits a value before what it holds, so a deeper entry comes later.
fn visit_value(value: &Spanned<DeValue<'_>>, path: String, entries: &mut Vec<Entry>) {
    entries.push(Entry {
        span: value.span(),
        path: path.clone(),
        is_key: false,
    });
    match value.get_ref() {
        DeValue::Table(table) => visit_table(table, &path, entries),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                visit_value(item, format!("{path}[{i}]"), entries);
            }
        }
        _ => {}
    }
}
