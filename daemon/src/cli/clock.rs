//! The time the operator commands work at: the system clock in Unix
//! seconds, which `sentrymesh-mesh` takes as `now`.
//!
//! For tests only, the environment variable `SENTRYMESH_NOW` (Unix seconds)
//! replaces the clock, so that a test can open a bundle as it would be
//! opened a year from now. It is not in `--help`, and every command that
//! reads it says so on standard error.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use sentrymesh_types::UnixTime;

/// The environment variable that replaces the system clock, in tests.
pub(crate) const NOW_VAR: &str = "SENTRYMESH_NOW";

/// The current wall-clock time, or `SENTRYMESH_NOW` when it is set.
///
/// # Errors
///
/// When `SENTRYMESH_NOW` is set but not a number of seconds, or the system
/// clock is set before 1970.
pub(crate) fn now() -> Result<UnixTime> {
    let Some(value) = std::env::var_os(NOW_VAR) else {
        return system_now().map(UnixTime);
    };
    let now = parse_override(value.to_str())?;
    tracing::warn!("{NOW_VAR} is set: using {now} as the time instead of the system clock");
    Ok(UnixTime(now))
}

fn system_now() -> Result<u64> {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is set before 1970")?;
    Ok(elapsed.as_secs())
}

fn parse_override(value: Option<&str>) -> Result<u64> {
    match value.map(str::trim) {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => digits
            .parse()
            .with_context(|| format!("{NOW_VAR}={digits} is too large")),
        _ => bail!("{NOW_VAR} must be a time in Unix seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_is_unix_seconds() {
        assert_eq!(parse_override(Some("1777593600")).unwrap(), 1_777_593_600);
        assert_eq!(parse_override(Some(" 0\n")).unwrap(), 0);
        for bad in [Some(""), Some("-1"), Some("1e9"), Some("tomorrow"), None] {
            let message = parse_override(bad).unwrap_err().to_string();
            assert!(message.contains(NOW_VAR), "{message}");
        }
        assert!(parse_override(Some("99999999999999999999")).is_err());
    }

    #[test]
    fn the_system_clock_is_after_2025() {
        assert!(system_now().unwrap() > 1_735_689_600);
    }
}
