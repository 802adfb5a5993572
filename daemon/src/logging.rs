//! Where the daemon's log lines go and how they look: the human format a
//! terminal or a file reads, the same without timestamps and with syslog
//! priorities under systemd's journal (which stamps every line itself), or
//! one JSON object a line for a log shipper.
//!
//! ```text
//!   --log-format human, stderr a terminal or file:  2026-12-03T10:22:15.123Z  INFO sentrymesh::modes::up: interface wg0 is up
//!   --log-format human, stderr the journal:         <6>sentrymesh::modes::up: interface wg0 is up
//!   --log-format json:                              {"timestamp":"2026-12-03T10:22:15.123Z","level":"INFO","target":"sentrymesh::modes::up","message":"interface wg0 is up"}
//! ```
//!
//! The filter is `RUST_LOG`'s, or wireguard-go's `LOG_LEVEL` (`verbose`,
//! `error`, `silent`), or `info`. At `info` a line is written for each
//! change of state (an interface up or reloaded, a peer's session up,
//! rekeyed, roamed or down, an operator admitted, a host revoked), never
//! for a packet; packets are logged at `trace` only. No level shows a
//! private or preshared key, or a hidden host's address or card (the
//! `logs` integration test greps a whole mesh's trace for them).

use std::io::{self, IsTerminal as _};
use std::os::unix::fs::MetadataExt as _;

use tracing_subscriber::EnvFilter;

pub use journal::JournalFormat;
pub use json::JsonFormat;

mod journal;
mod json;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// For people: a timestamp, the level, where from and the message;
    /// under systemd's journal, the level as a syslog priority (`<6>`) and
    /// no timestamp, since the journal adds its own.
    #[default]
    Human,
    /// One JSON object a line: `timestamp` (RFC 3339, UTC), `level`,
    /// `target`, `message` and the event's other fields.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("`{other}` is not a log format: use human or json")),
        }
    }
}

/// Sets the process's logging up: lines in `format` to standard error,
/// filtered by `RUST_LOG` or `LOG_LEVEL`. Call it once, first thing.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = match std::env::var("LOG_LEVEL").as_deref() {
            Ok("verbose") => "debug",
            Ok("error") => "error",
            Ok("silent") => "off",
            _ => "info",
        };
        EnvFilter::new(level)
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr);
    match format {
        LogFormat::Json => builder.event_format(JsonFormat::new()).init(),
        LogFormat::Human if stderr_is_journal() => builder.event_format(JournalFormat).init(),
        LogFormat::Human => builder.with_ansi(io::stderr().is_terminal()).init(),
    }
}

/// Whether standard error is systemd's journal: `JOURNAL_STREAM` names
/// the device and inode of the stream systemd connected, and standard error
/// is still that stream (a child whose stderr was redirected is not).
fn stderr_is_journal() -> bool {
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(metadata) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    is_journal_stream(&stream, metadata.dev(), metadata.ino())
}

/// Whether `JOURNAL_STREAM`'s `DEVICE:INODE` is the file (`dev`, `ino`).
fn is_journal_stream(stream: &str, dev: u64, ino: u64) -> bool {
    stream
        .split_once(':')
        .and_then(|(device, inode)| Some((device.parse::<u64>().ok()?, inode.parse::<u64>().ok()?)))
        .is_some_and(|(device, inode)| device == dev && inode == ino)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::FormatEvent;
    use tracing_subscriber::fmt::format::DefaultFields;
    use tracing_subscriber::registry::Registry;

    use super::*;

    /// A log destination the test reads back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .expect("not poisoned")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// What `log` logs at any level, in `format`.
    pub(crate) fn capture<F>(format: F, log: impl FnOnce()) -> String
    where
        F: FormatEvent<Registry, DefaultFields> + Send + Sync + 'static,
    {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buffer.0.lock().expect("not poisoned").clone();
        String::from_utf8(bytes).expect("UTF-8")
    }

    #[test]
    fn the_format_is_human_or_json() {
        assert_eq!("human".parse(), Ok(LogFormat::Human));
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert!("JSON".parse::<LogFormat>().is_err());
    }

    #[test]
    fn the_journal_is_the_stream_its_variable_names() {
        assert!(is_journal_stream("8:12345", 8, 12345));
        assert!(!is_journal_stream("8:12345", 8, 12346));
        assert!(!is_journal_stream("8:12345", 9, 12345));
        assert!(!is_journal_stream("8", 8, 12345));
        assert!(!is_journal_stream("", 0, 0));
    }
}
