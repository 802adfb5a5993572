//! The JSON format: one object a line, `{"timestamp":…,"level":…,
//! "target":…,"message":…}` and the event's other fields, for log shippers
//! (Loki, Vector, Elasticsearch) to read without a parser of their own.
//! Field values keep their JSON type where they have one (numbers and
//! booleans); anything else is its text.

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The keys every line has; an event field of the same name is written as
/// `fields.NAME`, so no key appears twice.
const RESERVED: [&str; 4] = ["timestamp", "level", "target", "spans"];

/// Formats events as JSON lines; see the [module](self).
#[derive(Debug, Clone, Copy)]
pub struct JsonFormat {
    /// Where the timestamps come from: the system clock, or a fixed one in
    /// tests.
    clock: fn() -> SystemTime,
}

impl JsonFormat {
    /// Lines stamped with the system clock.
    pub fn new() -> Self {
        Self {
            clock: SystemTime::now,
        }
    }
}

impl Default for JsonFormat {
    fn default() -> Self {
        Self::new()
    }
}

impl<S, N> FormatEvent<S, N> for JsonFormat
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
        let mut line = String::with_capacity(256);
        line.push_str("{\"timestamp\":\"");
        write_rfc3339(&mut line, (self.clock)());
        line.push_str("\",\"level\":\"");
        line.push_str(metadata.level().as_str());
        line.push_str("\",\"target\":");
        push_string(&mut line, metadata.target());
        if let Some(scope) = ctx.event_scope() {
            line.push_str(",\"spans\":[");
            for (i, span) in scope.from_root().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                push_string(&mut line, span.name());
            }
            line.push(']');
        }
        event.record(&mut Fields { line: &mut line });
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

/// Appends each field as `,"name":value`.
struct Fields<'a> {
    line: &'a mut String,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push(',');
        let name = field.name();
        if RESERVED.contains(&name) {
            push_string(self.line, &format!("fields.{name}"));
        } else {
            push_string(self.line, name);
        }
        self.line.push(':');
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_string(self.line, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.line, "{value}");
        } else {
            push_string(self.line, &value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        push_string(self.line, &format!("{value:?}"));
    }
}

/// Appends `text` as a JSON string, quoted and escaped.
fn push_string(line: &mut String, text: &str) {
    line.push('"');
    for c in text.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(line, "\\u{:04x}", u32::from(c));
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

/// Appends `time` as RFC 3339 in UTC to the millisecond,
/// `2026-12-03T10:22:15.123Z` (a time before 1970 as 1970's first instant).
fn write_rfc3339(line: &mut String, time: SystemTime) {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    let _ = write!(
        line,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since_epoch.subsec_millis()
    );
}

/// The Gregorian (year, month, day) of `days` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::logging::tests::capture;

    /// 2026-12-03T10:22:15.123Z.
    fn fixed_clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_796_293_335_123)
    }

    #[test]
    fn a_line_is_one_object_with_typed_fields() {
        let format = JsonFormat { clock: fixed_clock };
        let lines = capture(format, || {
            tracing::info!(target: "sm", peer = "k3y=", live = true, count = 3_u64, delta = -2_i64, "session up");
            tracing::warn!(target: "sm", level = 1_u64, "the \"reserved\" name\tand\na newline \u{1}");
        });
        assert_eq!(
            lines,
            "{\"timestamp\":\"2026-12-03T10:22:15.123Z\",\"level\":\"INFO\",\"target\":\"sm\",\
             \"message\":\"session up\",\"peer\":\"k3y=\",\"live\":true,\"count\":3,\"delta\":-2}\n\
             {\"timestamp\":\"2026-12-03T10:22:15.123Z\",\"level\":\"WARN\",\"target\":\"sm\",\
             \"message\":\"the \\\"reserved\\\" name\\tand\\na newline \\u0001\",\"fields.level\":1}\n"
        );
    }

    #[test]
    fn timestamps_are_utc_dates() {
        let stamp = |secs: u64, millis: u64| {
            let mut line = String::new();
            write_rfc3339(
                &mut line,
                UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis),
            );
            line
        };
        assert_eq!(stamp(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(stamp(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(stamp(1_709_251_199, 999), "2024-02-29T23:59:59.999Z");
        assert_eq!(stamp(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
    }
}
