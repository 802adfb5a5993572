//! The human format for systemd's journal: `<PRIORITY>target: message
//! fields`, with no timestamp (the journal stamps each line as it arrives)
//! and no colours. systemd reads the `<N>` prefix as the line's syslog
//! priority, so `journalctl -p warning` shows the warnings and errors.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events for systemd's journal; see the [module](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct JournalFormat;

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        write!(
            writer,
            "<{}>{}: ",
            priority(*metadata.level()),
            metadata.target()
        )?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(writer, "{}: ", span.name())?;
            }
        }
        // Through a writer of its own, which has no colours whatever the
        // subscriber was built with.
        let mut fields = String::new();
        ctx.format_fields(Writer::new(&mut fields), event)?;
        writeln!(writer, "{fields}")
    }
}

/// The syslog priority of a level: error 3, warning 4, info 6, debug and
/// trace 7 (syslog has no lower one).
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::tests::capture;

    #[test]
    fn a_line_has_its_priority_and_no_timestamp() {
        let lines = capture(JournalFormat, || {
            tracing::info!(target: "sm", "interface wg0 is up");
            tracing::warn!(target: "sm", peers = 3, "a warning");
            tracing::error!(target: "sm", "an error");
            tracing::debug!(target: "sm", "some detail");
            tracing::trace!(target: "sm", "more detail");
        });
        assert_eq!(
            lines,
            "<6>sm: interface wg0 is up\n<4>sm: a warning peers=3\n<3>sm: an error\n\
             <7>sm: some detail\n<7>sm: more detail\n"
        );
    }
}
